//! The TOML shape of a scenario file (serde structs with `deny_unknown_fields`) and its
//! conversion into [`Scenario`], with every value checked and every error naming its key and
//! line.

use std::collections::BTreeSet;
use std::time::Duration;

use serde::Deserialize;
use toml::{Spanned, Value};

use super::text::Ctx;
use super::{
    BOOTSTRAP_NAME, Content, DhtSpec, Discovery, Fault, FaultAction, Group, Leave, MAX_GROUP_NAME,
    MAX_NODES, Role, Scenario, ScenarioError, TrackerSpec, Trigger,
};

/// Most nodes a group may have.
pub(super) const MAX_COUNT: i64 = 5000;
/// Largest content a scenario may ask for: 64 GiB.
pub(super) const MAX_CONTENT: u64 = 64 << 30;
/// Most files the content may be split into.
const MAX_FILES: i64 = 10_000;
/// Default run timeout.
pub(super) const DEFAULT_TIMEOUT: Duration = Duration::from_secs(300);

pub(super) type Sv = Spanned<Value>;

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub(super) struct RawScenario {
    name: Spanned<String>,
    #[serde(default)]
    seed: Option<Spanned<i64>>,
    #[serde(default)]
    timeout: Option<Sv>,
    content: Spanned<RawContent>,
    #[serde(default)]
    tracker: Option<RawTracker>,
    #[serde(default)]
    dht: Option<RawDht>,
    #[serde(default)]
    groups: Vec<Spanned<RawGroup>>,
    #[serde(default)]
    faults: Vec<Spanned<RawFault>>,
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct RawContent {
    size: Sv,
    #[serde(default)]
    piece_length: Option<Sv>,
    #[serde(default)]
    files: Option<Spanned<i64>>,
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct RawTracker {
    #[serde(default)]
    enabled: bool,
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct RawDht {
    #[serde(default)]
    bootstrap_nodes: Option<Spanned<i64>>,
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct RawGroup {
    name: Spanned<String>,
    role: Spanned<RawRole>,
    #[serde(default)]
    count: Option<Spanned<i64>>,
    #[serde(default)]
    upload_limit: Option<Sv>,
    #[serde(default)]
    download_limit: Option<Sv>,
    #[serde(default)]
    join_at: Option<Sv>,
    #[serde(default)]
    join_spread: Option<Sv>,
    #[serde(default)]
    leave: Option<Sv>,
    #[serde(default)]
    discovery: Option<RawDiscovery>,
    #[serde(default)]
    magnet: Option<Spanned<bool>>,
}

#[derive(Debug, Clone, Copy, Deserialize)]
#[serde(rename_all = "kebab-case")]
enum RawRole {
    Seeder,
    Leecher,
    FreeRider,
    Hostile,
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct RawDiscovery {
    dht: Option<bool>,
    pex: Option<bool>,
    tracker: Option<bool>,
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct RawFault {
    #[serde(default)]
    at: Option<Sv>,
    #[serde(default)]
    progress: Option<Spanned<f64>>,
    action: Spanned<RawAction>,
    #[serde(default)]
    group: Option<Spanned<String>>,
    #[serde(default)]
    count: Option<Spanned<i64>>,
    #[serde(default)]
    per_minute: Option<Spanned<f64>>,
    #[serde(default)]
    duration: Option<Sv>,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Deserialize)]
#[serde(rename_all = "kebab-case")]
enum RawAction {
    KillTracker,
    RestartTracker,
    Kill,
    Pause,
    Resume,
    Churn,
    KillSeedersAfterOneCopy,
}

impl RawScenario {
    /// Checks every value and builds the [`Scenario`].
    pub(super) fn convert(self, cx: &Ctx<'_>) -> Result<Scenario, ScenarioError> {
        let name = self.name.get_ref().trim().to_owned();
        if name.is_empty() {
            return Err(cx.err(self.name.span(), "name", "must not be empty"));
        }
        let seed = match &self.seed {
            Some(s) if *s.get_ref() < 0 => {
                return Err(cx.err(
                    s.span(),
                    "seed",
                    format!("expected a non-negative integer, got {}", s.get_ref()),
                ));
            }
            Some(s) => *s.get_ref() as u64,
            None => 0,
        };
        let timeout = match &self.timeout {
            Some(v) => cx.duration(v, "timeout")?,
            None => DEFAULT_TIMEOUT,
        };
        if timeout.is_zero() {
            let span = self.timeout.as_ref().map(|v| v.span()).unwrap_or_default();
            return Err(cx.err(span, "timeout", "must be more than 0"));
        }
        let content = convert_content(self.content, cx)?;
        let tracker = TrackerSpec {
            enabled: self.tracker.is_some_and(|t| t.enabled),
        };
        let bootstrap_nodes = match self.dht.and_then(|d| d.bootstrap_nodes) {
            Some(n) => cx.int(&n, "dht.bootstrap_nodes", 0, 100)?,
            None => 1,
        };
        let mut groups = Vec::with_capacity(self.groups.len());
        let mut names = BTreeSet::new();
        for (i, g) in self.groups.into_iter().enumerate() {
            let group = convert_group(g.into_inner(), i, &tracker, timeout, cx, &mut names)?;
            groups.push(group);
        }
        // Each group is capped, but not how many groups there are: cap the whole, before the
        // runner plans (and starts) a process per node.
        let total =
            u64::from(bootstrap_nodes) + groups.iter().map(|g| u64::from(g.count)).sum::<u64>();
        if total > MAX_NODES {
            return Err(ScenarioError::Scenario {
                origin: cx.origin.to_owned(),
                message: format!(
                    "{total} nodes in all (groups and DHT bootstrap nodes), more than the limit of \
                     {MAX_NODES}"
                ),
            });
        }
        if !groups
            .iter()
            .any(|g| g.role == Role::Seeder && g.count >= 1)
        {
            return Err(ScenarioError::Scenario {
                origin: cx.origin.to_owned(),
                message:
                    "no seeder group: add a [[groups]] table with role = \"seeder\" and count >= 1"
                        .to_owned(),
            });
        }
        let mut faults = Vec::with_capacity(self.faults.len());
        for (i, f) in self.faults.into_iter().enumerate() {
            faults.push(convert_fault(f, i, &names, &tracker, timeout, cx)?);
        }
        Ok(Scenario {
            name,
            seed,
            timeout,
            content,
            tracker,
            dht: DhtSpec { bootstrap_nodes },
            groups,
            faults,
        })
    }
}

fn convert_content(raw: Spanned<RawContent>, cx: &Ctx<'_>) -> Result<Content, ScenarioError> {
    let raw = raw.into_inner();
    let size = cx.size(&raw.size, "content.size")?;
    if size > MAX_CONTENT {
        return Err(cx.err(
            raw.size.span(),
            "content.size",
            format!("{size} bytes is more than the 64 GiB limit"),
        ));
    }
    let piece_length = match &raw.piece_length {
        Some(v) => {
            let p = cx.size(v, "content.piece_length")?;
            if !p.is_power_of_two() || !(16 * 1024..=64 << 20).contains(&p) {
                return Err(cx.err(
                    v.span(),
                    "content.piece_length",
                    format!("expected a power of two from 16KiB to 64MiB, got {p} bytes"),
                ));
            }
            // Refused now rather than by the torrent, after the content was written and hashed.
            let pieces = size.div_ceil(p);
            if pieces > shoal_metainfo::MAX_PIECES {
                return Err(cx.err(
                    v.span(),
                    "content.piece_length",
                    format!(
                        "{size} bytes in pieces of {p} bytes is {pieces} pieces, more than a \
                         torrent may have ({}); use a larger piece_length",
                        shoal_metainfo::MAX_PIECES
                    ),
                ));
            }
            Some(p)
        }
        None => None,
    };
    let files = match &raw.files {
        Some(f) => cx.int(f, "content.files", 1, MAX_FILES)?,
        None => 1,
    };
    if u64::from(files) > size {
        let span = raw.files.as_ref().map(|f| f.span()).unwrap_or_default();
        return Err(cx.err(
            span,
            "content.files",
            format!("{files} files cannot share {size} bytes"),
        ));
    }
    Ok(Content {
        size,
        piece_length,
        files,
    })
}

fn convert_group(
    raw: RawGroup,
    i: usize,
    tracker: &TrackerSpec,
    timeout: Duration,
    cx: &Ctx<'_>,
    names: &mut BTreeSet<String>,
) -> Result<Group, ScenarioError> {
    let key = |k: &str| format!("groups[{i}].{k}");
    let name = group_name(&raw.name, &key("name"), cx, names)?;
    let role = match raw.role.get_ref() {
        RawRole::Seeder => Role::Seeder,
        RawRole::Leecher => Role::Leecher,
        RawRole::FreeRider => Role::FreeRider,
        RawRole::Hostile => Role::Hostile,
    };
    let count = match &raw.count {
        Some(c) => cx.int(c, &key("count"), 1, MAX_COUNT)?,
        None => 1,
    };
    let rate = |v: &Option<Sv>, k: &str| v.as_ref().map(|v| cx.rate(v, &key(k))).transpose();
    let duration = |v: &Option<Sv>, k: &str| {
        v.as_ref()
            .map(|v| cx.duration(v, &key(k)))
            .transpose()
            .map(Option::unwrap_or_default)
    };
    let leave = match &raw.leave {
        Some(v) => group_leave(v, role, &key("leave"), cx)?,
        None => Leave::Never,
    };
    let d = raw.discovery.unwrap_or(RawDiscovery {
        dht: None,
        pex: None,
        tracker: None,
    });
    let magnet = match &raw.magnet {
        Some(m) if *m.get_ref() && role == Role::Seeder => {
            return Err(cx.err(m.span(), key("magnet"), "only groups that download (leecher, free-rider, hostile) can start from a magnet link"));
        }
        Some(m) => *m.get_ref(),
        None => false,
    };
    let join_at = duration(&raw.join_at, "join_at")?;
    if let Some(v) = raw.join_at.as_ref().filter(|_| join_at >= timeout) {
        // Its nodes would never run, and the run would only say so after the whole timeout.
        return Err(cx.err(
            v.span(),
            key("join_at"),
            format!(
                "{}s is not before the run's timeout ({}s): the group's nodes would never run; \
                 join earlier or raise `timeout`",
                join_at.as_secs_f64(),
                timeout.as_secs_f64()
            ),
        ));
    }
    Ok(Group {
        name,
        count,
        role,
        upload_limit: rate(&raw.upload_limit, "upload_limit")?,
        download_limit: rate(&raw.download_limit, "download_limit")?,
        join_at,
        join_spread: duration(&raw.join_spread, "join_spread")?,
        leave,
        discovery: Discovery {
            dht: d.dht.unwrap_or(true),
            pex: d.pex.unwrap_or(true),
            tracker: d.tracker.unwrap_or(tracker.enabled),
        },
        magnet,
    })
}

/// A group's name: not empty, not taken by another group (it is added to `names`).
fn group_name(
    raw: &Spanned<String>,
    key: &str,
    cx: &Ctx<'_>,
    names: &mut BTreeSet<String>,
) -> Result<String, ScenarioError> {
    let name = raw.get_ref().trim().to_owned();
    if name.is_empty() {
        return Err(cx.err(raw.span(), key, "must not be empty"));
    }
    // Node directories are `nodes/<group>-<n>/` under the run directory: the name must be a
    // plain file name, so that no node writes anywhere else.
    if name.len() > MAX_GROUP_NAME {
        return Err(cx.err(
            raw.span(),
            key,
            format!(
                "{} bytes long; a group name may be at most {MAX_GROUP_NAME}",
                name.len()
            ),
        ));
    }
    if !name
        .chars()
        .all(|c| c.is_ascii_alphanumeric() || matches!(c, '-' | '_' | '.'))
    {
        return Err(cx.err(
            raw.span(),
            key,
            format!(
                "{name:?}: use only letters, digits, '-', '_' and '.' (it names the nodes' \
                 directories)"
            ),
        ));
    }
    if name == BOOTSTRAP_NAME {
        return Err(cx.err(
            raw.span(),
            key,
            format!("{name:?} is reserved for the DHT bootstrap nodes; choose another name"),
        ));
    }
    if !names.insert(name.clone()) {
        return Err(cx.err(
            raw.span(),
            key,
            format!("another group is already named {name:?}"),
        ));
    }
    Ok(name)
}

/// A group's leave condition; `on-completion` makes no sense for seeders, which are complete
/// from the start (it would never fire, or fire at once): an error rather than a silent no-op.
fn group_leave(v: &Sv, role: Role, key: &str, cx: &Ctx<'_>) -> Result<Leave, ScenarioError> {
    let leave = convert_leave(v, key, cx)?;
    if leave == Leave::OnCompletion && role == Role::Seeder {
        return Err(cx.err(
            v.span(),
            key,
            "a seeder is complete from the start, so \"on-completion\" cannot apply: use \
             \"never\", { at = \"60s\" } or { after_uploading = 1.0 }",
        ));
    }
    Ok(leave)
}

fn convert_leave(v: &Sv, key: &str, cx: &Ctx<'_>) -> Result<Leave, ScenarioError> {
    const EXPECTED: &str =
        "expected \"never\", \"on-completion\", { at = \"60s\" } or { after_uploading = 2.0 }";
    match v.get_ref() {
        Value::String(s) if s == "never" => Ok(Leave::Never),
        Value::String(s) if s == "on-completion" => Ok(Leave::OnCompletion),
        Value::Table(t) if t.len() == 1 => {
            if let Some(at) = t.get("at") {
                let at = Spanned::new(v.span(), at.clone());
                return Ok(Leave::At(cx.duration(&at, &format!("{key}.at"))?));
            }
            match t.get("after_uploading") {
                Some(Value::Float(x)) if x.is_finite() && *x > 0.0 && *x <= 1e6 => {
                    Ok(Leave::AfterUploading(*x))
                }
                Some(Value::Integer(x)) if *x > 0 && *x <= 1_000_000 => {
                    Ok(Leave::AfterUploading(*x as f64))
                }
                Some(other) => Err(cx.err(
                    v.span(),
                    format!("{key}.after_uploading"),
                    format!("expected a number of copies greater than 0, got {other}"),
                )),
                None => Err(cx.err(v.span(), key, format!("{EXPECTED}, got {}", v.get_ref()))),
            }
        }
        other => Err(cx.err(v.span(), key, format!("{EXPECTED}, got {other}"))),
    }
}

fn convert_fault(
    raw: Spanned<RawFault>,
    i: usize,
    groups: &BTreeSet<String>,
    tracker: &TrackerSpec,
    timeout: Duration,
    cx: &Ctx<'_>,
) -> Result<Fault, ScenarioError> {
    let fault_span = raw.span();
    let raw = raw.into_inner();
    let key = |k: &str| format!("faults[{i}].{k}");
    let when = fault_trigger(&raw, fault_span, i, cx)?;
    if let (Trigger::At(at), Some(v)) = (when, &raw.at) {
        if at >= timeout {
            return Err(cx.err(
                v.span(),
                key("at"),
                format!(
                    "{}s is not before the run's timeout ({}s): the fault would never fire; \
                     fire it earlier or raise `timeout`",
                    at.as_secs_f64(),
                    timeout.as_secs_f64()
                ),
            ));
        }
    }
    let action = *raw.action.get_ref();
    if matches!(action, RawAction::KillTracker | RawAction::RestartTracker) && !tracker.enabled {
        return Err(cx.err(
            raw.action.span(),
            key("action"),
            format!(
                "{:?} needs a tracker, but the scenario runs none: set `enabled = true` under \
                 [tracker], or drop this fault",
                action.name()
            ),
        ));
    }
    let group = fault_group(&raw, i, groups, cx)?;
    check_fault_keys(&raw, i, cx)?;
    let count = raw
        .count
        .as_ref()
        .map(|c| cx.int(c, &key("count"), 1, MAX_COUNT))
        .transpose()?;
    let action = match action {
        RawAction::KillTracker => FaultAction::KillTracker,
        RawAction::RestartTracker => FaultAction::RestartTracker,
        RawAction::KillSeedersAfterOneCopy => FaultAction::KillSeedersAfterOneCopy,
        RawAction::Kill => FaultAction::Kill { group, count },
        RawAction::Pause => FaultAction::Pause { group, count },
        RawAction::Resume => FaultAction::Resume { group },
        RawAction::Churn => churn(&raw, group, i, cx)?,
    };
    Ok(Fault { when, action })
}

impl RawAction {
    /// The name as written in a scenario file.
    fn name(self) -> &'static str {
        match self {
            RawAction::KillTracker => "kill-tracker",
            RawAction::RestartTracker => "restart-tracker",
            RawAction::Kill => "kill",
            RawAction::Pause => "pause",
            RawAction::Resume => "resume",
            RawAction::Churn => "churn",
            RawAction::KillSeedersAfterOneCopy => "kill-seeders-after-one-copy",
        }
    }

    fn needs_group(self) -> bool {
        matches!(
            self,
            RawAction::Kill | RawAction::Pause | RawAction::Resume | RawAction::Churn
        )
    }
}

/// Exactly one of `at` and `progress`.
fn fault_trigger(
    raw: &RawFault,
    fault_span: std::ops::Range<usize>,
    i: usize,
    cx: &Ctx<'_>,
) -> Result<Trigger, ScenarioError> {
    match (&raw.at, &raw.progress) {
        (Some(at), None) => Ok(Trigger::At(cx.duration(at, &format!("faults[{i}].at"))?)),
        (None, Some(p)) if (0.0..=1.0).contains(p.get_ref()) => Ok(Trigger::Progress(*p.get_ref())),
        (None, Some(p)) => Err(cx.err(
            p.span(),
            format!("faults[{i}].progress"),
            format!("expected a fraction from 0.0 to 1.0, got {}", p.get_ref()),
        )),
        _ => Err(cx.err(
            fault_span,
            format!("faults[{i}]"),
            "give exactly one of `at` (a time) or `progress` (0.0 to 1.0)",
        )),
    }
}

/// The group a fault acts on: required by the actions on nodes, refused by the others.
fn fault_group(
    raw: &RawFault,
    i: usize,
    groups: &BTreeSet<String>,
    cx: &Ctx<'_>,
) -> Result<String, ScenarioError> {
    let key = format!("faults[{i}].group");
    match (&raw.group, raw.action.get_ref().needs_group()) {
        (Some(g), true) if groups.contains(g.get_ref()) => Ok(g.get_ref().clone()),
        (Some(g), true) => Err(cx.err(
            g.span(),
            key,
            format!("no group is named {:?}", g.get_ref()),
        )),
        (None, true) => Err(cx.err(
            raw.action.span(),
            key,
            "this action needs `group`: the name of a [[groups]] entry",
        )),
        (Some(g), false) => Err(cx.err(g.span(), key, "this action does not take a group")),
        (None, false) => Ok(String::new()),
    }
}

/// `count` only for kill and pause; `per_minute` and `duration` only for churn.
fn check_fault_keys(raw: &RawFault, i: usize, cx: &Ctx<'_>) -> Result<(), ScenarioError> {
    let action = *raw.action.get_ref();
    let key = |k: &str| format!("faults[{i}].{k}");
    check_only_for(
        cx,
        &raw.count,
        matches!(action, RawAction::Kill | RawAction::Pause),
        &key("count"),
        "kill and pause",
    )?;
    check_only_for(
        cx,
        &raw.per_minute,
        action == RawAction::Churn,
        &key("per_minute"),
        "churn",
    )?;
    match &raw.duration {
        Some(d) if action != RawAction::Churn => {
            Err(cx.err(d.span(), key("duration"), "only churn takes `duration`"))
        }
        _ => Ok(()),
    }
}

/// A churn fault: `per_minute` and `duration` are required.
fn churn(
    raw: &RawFault,
    group: String,
    i: usize,
    cx: &Ctx<'_>,
) -> Result<FaultAction, ScenarioError> {
    let key = |k: &str| format!("faults[{i}].{k}");
    let missing = |k: &str| cx.err(raw.action.span(), key(k), format!("churn needs `{k}`"));
    let per_minute = raw
        .per_minute
        .as_ref()
        .ok_or_else(|| missing("per_minute"))?;
    let pm = *per_minute.get_ref();
    if !(pm.is_finite() && pm > 0.0 && pm <= 10_000.0) {
        return Err(cx.err(
            per_minute.span(),
            key("per_minute"),
            format!("expected a rate of nodes per minute greater than 0, got {pm}"),
        ));
    }
    let duration = cx.duration(
        raw.duration.as_ref().ok_or_else(|| missing("duration"))?,
        &key("duration"),
    )?;
    Ok(FaultAction::Churn {
        group,
        per_minute: pm,
        duration,
    })
}

fn check_only_for<T>(
    cx: &Ctx<'_>,
    v: &Option<Spanned<T>>,
    allowed: bool,
    key: &str,
    which: &str,
) -> Result<(), ScenarioError> {
    match v {
        Some(v) if !allowed => Err(cx.err(v.span(), key, format!("only {which} take this key"))),
        _ => Ok(()),
    }
}
