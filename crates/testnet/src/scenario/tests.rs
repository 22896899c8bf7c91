use super::*;

const BASE: &str = r#"name = "t"
seed = 7
timeout = "2m"

[content]
size = "32MiB"
piece_length = "256KiB"

[tracker]
enabled = true

[[groups]]
name = "seeders"
role = "seeder"
upload_limit = "4MiB/s"

[[groups]]
name = "leechers"
role = "leecher"
count = 10
join_at = 5
join_spread = "10s"
leave = { after_uploading = 2.0 }
discovery = { pex = false }
magnet = true

[[faults]]
progress = 0.2
action = "kill-tracker"

[[faults]]
at = "30s"
action = "churn"
group = "leechers"
per_minute = 6.0
duration = "60s"
"#;

fn err(text: &str) -> String {
    match Scenario::parse(text) {
        Ok(s) => format!("unexpectedly parsed: {s:?}"),
        Err(e) => e.to_string(),
    }
}

#[test]
fn base_parses_with_defaults() {
    let s = Scenario::parse(BASE).unwrap();
    assert_eq!(s.name, "t");
    assert_eq!(s.seed, 7);
    assert_eq!(s.timeout, Duration::from_secs(120));
    assert_eq!(
        s.content,
        Content {
            size: 32 << 20,
            piece_length: Some(256 << 10),
            files: 1
        }
    );
    assert!(s.tracker.enabled);
    assert_eq!(s.dht.bootstrap_nodes, 1);
    assert_eq!(s.groups[0].count, 1);
    assert_eq!(s.groups[0].upload_limit, Some(4 << 20));
    assert_eq!(s.groups[0].leave, Leave::Never);
    assert_eq!(
        s.groups[0].discovery,
        Discovery {
            dht: true,
            pex: true,
            tracker: true
        }
    );
    let l = &s.groups[1];
    assert_eq!((l.count, l.role, l.magnet), (10, Role::Leecher, true));
    assert_eq!(l.join_at, Duration::from_secs(5));
    assert_eq!(l.join_spread, Duration::from_secs(10));
    assert_eq!(l.leave, Leave::AfterUploading(2.0));
    assert_eq!(
        l.discovery,
        Discovery {
            dht: true,
            pex: false,
            tracker: true
        }
    );
    assert_eq!(
        s.faults[0],
        Fault {
            when: Trigger::Progress(0.2),
            action: FaultAction::KillTracker
        }
    );
    assert_eq!(
        s.faults[1],
        Fault {
            when: Trigger::At(Duration::from_secs(30)),
            action: FaultAction::Churn {
                group: "leechers".into(),
                per_minute: 6.0,
                duration: Duration::from_secs(60)
            }
        }
    );
}

#[test]
fn negative_count_names_key_and_line() {
    let text = BASE.replace("count = 10", "count = -3");
    assert_eq!(
        err(&text),
        "scenario.toml line 20: groups[1].count: expected a positive integer, got -3"
    );
}

#[test]
fn count_over_limit() {
    let text = BASE.replace("count = 10", "count = 5001");
    assert_eq!(
        err(&text),
        "scenario.toml line 20: groups[1].count: expected an integer from 1 to 5000, got 5001"
    );
}

#[test]
fn unknown_key_names_key_table_and_line() {
    let text = BASE.replace("upload_limit = \"4MiB/s\"", "uplod_limit = \"4MiB/s\"");
    let e = err(&text);
    assert!(
        e.starts_with(
            "scenario.toml line 15: unknown key 'uplod_limit' in [[groups]] #1 (groups[0])"
        ),
        "{e}"
    );
}

#[test]
fn unknown_top_level_and_content_keys() {
    let e = err(&format!("colour = 1\n{BASE}"));
    assert!(
        e.starts_with("scenario.toml line 1: unknown key 'colour' in the top level"),
        "{e}"
    );
    let e = err(&BASE.replace("piece_length", "piece_len"));
    assert!(
        e.starts_with("scenario.toml line 7: unknown key 'piece_len' in [content]"),
        "{e}"
    );
}

#[test]
fn unknown_key_in_inline_table() {
    let e = err(&BASE.replace("pex = false", "pexx = false"));
    assert!(
        e.starts_with("scenario.toml line 24: unknown key 'pexx' in 'groups[1].discovery'"),
        "{e}"
    );
    let e = err(&BASE.replace("after_uploading = 2.0", "after_uploadin = 2.0"));
    assert!(
        e.starts_with("scenario.toml line 23: groups[1].leave: expected"),
        "{e}"
    );
}

#[test]
fn load_names_the_file() {
    let e = Scenario::load(Path::new("/nonexistent/x.toml"))
        .unwrap_err()
        .to_string();
    assert!(
        e.starts_with("cannot read scenario file /nonexistent/x.toml:"),
        "{e}"
    );
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("bad.toml");
    std::fs::write(&path, BASE.replace("count = 10", "count = 0")).unwrap();
    let e = Scenario::load(&path).unwrap_err().to_string();
    assert_eq!(
        e,
        format!(
            "{} line 20: groups[1].count: expected a positive integer, got 0",
            path.display()
        )
    );
}

#[test]
fn bad_rate_size_duration() {
    let e = err(&BASE.replace("\"4MiB/s\"", "\"4 parsecs\""));
    assert!(
        e.starts_with("scenario.toml line 15: groups[0].upload_limit: invalid rate"),
        "{e}"
    );
    let e = err(&BASE.replace("\"32MiB\"", "\"32MiB/s\""));
    assert!(
        e.starts_with("scenario.toml line 6: content.size: expected a size"),
        "{e}"
    );
    let e = err(&BASE.replace("\"32MiB\"", "\"65GiB\""));
    assert!(
        e.contains("line 6: content.size:") && e.contains("64 GiB limit"),
        "{e}"
    );
    let e = err(&BASE.replace("\"10s\"", "\"ten seconds\""));
    assert!(
        e.starts_with("scenario.toml line 22: groups[1].join_spread: expected a duration"),
        "{e}"
    );
    let e = err(&BASE.replace("timeout = \"2m\"", "timeout = 0"));
    assert_eq!(e, "scenario.toml line 3: timeout: must be more than 0");
}

#[test]
fn wrong_type_and_bad_enum() {
    let e = err(&BASE.replace("role = \"leecher\"", "role = \"lurker\""));
    assert_eq!(
        e,
        "scenario.toml line 19: groups[1].role: unknown variant `lurker`, \
         expected one of `seeder`, `leecher`, `free-rider`, `hostile`"
    );
    let e = err(&BASE.replace("magnet = true", "magnet = \"yes\""));
    assert!(
        e.starts_with("scenario.toml line 25: groups[1].magnet: invalid type"),
        "{e}"
    );
    let e = err(&BASE.replace("pex = false", "pex = 3"));
    assert!(
        e.starts_with("scenario.toml line 24: groups[1].discovery.pex: invalid type"),
        "{e}"
    );
    let e = err(&BASE.replace("[[groups]]\nname = \"seeders\"\n", "[[groups]]\n"));
    assert!(
        e.contains("groups[0]") && e.contains("missing field `name`"),
        "{e}"
    );
    let e = err(&BASE.replace("seed = 7", "seed = = 7"));
    assert!(e.starts_with("scenario.toml line 2:"), "{e}");
}

#[test]
fn semantic_checks() {
    let e = err(&BASE.replace("role = \"seeder\"", "role = \"leecher\""));
    assert!(e.contains("no seeder group"), "{e}");
    let e = err(&BASE.replace("name = \"leechers\"", "name = \"seeders\""));
    assert_eq!(
        e,
        "scenario.toml line 18: groups[1].name: another group is already named \"seeders\""
    );
    let e = err(&BASE.replace("group = \"leechers\"", "group = \"lechers\""));
    assert_eq!(
        e,
        "scenario.toml line 34: faults[1].group: no group is named \"lechers\""
    );
    let e = err(&BASE.replace("progress = 0.2", "progress = 1.5"));
    assert_eq!(
        e,
        "scenario.toml line 28: faults[0].progress: expected a fraction from 0.0 to 1.0, got 1.5"
    );
    let e = err(&BASE.replace("after_uploading = 2.0", "after_uploading = 0"));
    assert!(e.starts_with("scenario.toml line 23: groups[1].leave.after_uploading: expected a number of copies greater than 0"), "{e}");
    let e = err(&BASE.replace("upload_limit = \"4MiB/s\"", "magnet = true"));
    assert!(
        e.starts_with("scenario.toml line 15: groups[0].magnet: only groups that download"),
        "{e}"
    );
    let e = err(&BASE.replace("per_minute = 6.0\n", ""));
    assert!(
        e.contains("faults[1].per_minute: churn needs `per_minute`"),
        "{e}"
    );
    let e = err(&BASE.replace("progress = 0.2\n", ""));
    assert!(e.contains("faults[0]: give exactly one of `at`"), "{e}");
}

#[test]
fn tracker_faults_need_a_tracker() {
    let no_tracker = BASE.replace("enabled = true", "enabled = false");
    let e = err(&no_tracker);
    assert!(
        e.starts_with(
            "scenario.toml line 29: faults[0].action: \"kill-tracker\" needs a tracker, but the scenario runs none"
        ),
        "{e}"
    );
    let e = err(&no_tracker.replace("\"kill-tracker\"", "\"restart-tracker\""));
    assert!(
        e.starts_with(
            "scenario.toml line 29: faults[0].action: \"restart-tracker\" needs a tracker"
        ),
        "{e}"
    );
    // Without the tracker table at all, the same.
    let e = err(&BASE.replace("[tracker]\nenabled = true\n", ""));
    assert!(e.contains("faults[0].action"), "{e}");
}

#[test]
fn seeders_cannot_leave_on_completion() {
    let e = err(&BASE.replace("upload_limit = \"4MiB/s\"", "leave = \"on-completion\""));
    assert!(
        e.starts_with(
            "scenario.toml line 15: groups[0].leave: a seeder is complete from the start"
        ),
        "{e}"
    );
    // Leechers may.
    let s = Scenario::parse(&BASE.replace(
        "leave = { after_uploading = 2.0 }",
        "leave = \"on-completion\"",
    ))
    .unwrap();
    assert_eq!(s.groups[1].leave, Leave::OnCompletion);
}

#[test]
fn size_limit() {
    let text = format!("{BASE}\n#{}", "x".repeat(MAX_SCENARIO_BYTES));
    assert!(matches!(
        Scenario::parse(&text),
        Err(ScenarioError::TooLarge { .. })
    ));
}

#[test]
fn shipped_scenarios_parse() {
    let dir = concat!(env!("CARGO_MANIFEST_DIR"), "/../../testnet/scenarios");
    let mut n = 0;
    for entry in std::fs::read_dir(dir).unwrap() {
        let path = entry.unwrap().path();
        if path.extension().is_some_and(|e| e == "toml") {
            let s = Scenario::load(&path).unwrap_or_else(|e| panic!("{e}"));
            assert_eq!(
                Some(s.name.as_str()),
                path.file_stem().and_then(|s| s.to_str()),
                "{}",
                path.display()
            );
            n += 1;
        }
    }
    assert!(n >= 9, "only {n} scenarios in {dir}");
}

#[test]
fn group_names_that_are_not_plain_file_names_are_refused() {
    // Node directories are `<out>/<run>/nodes/<group>-<n>/`: a separator or `..` in a group
    // name would put a node's data, and its copy of the content, outside the run directory.
    for bad in [
        "../../../tmp/evil",
        "/tmp/evil",
        "a/b",
        "a\\b",
        "a b",
        "x\0y",
    ] {
        let quoted = toml::Value::String(bad.to_owned()).to_string();
        let text = BASE.replace("name = \"leechers\"", &format!("name = {quoted}"));
        let e = err(&text.replace("group = \"leechers\"", &format!("group = {quoted}")));
        assert!(
            e.starts_with("scenario.toml line 18: groups[1].name: ")
                && e.contains("letters, digits"),
            "{bad:?}: {e}"
        );
    }
    let long = "g".repeat(MAX_GROUP_NAME + 1);
    let e = err(&BASE.replace("name = \"leechers\"", &format!("name = {long:?}")));
    assert!(
        e.starts_with("scenario.toml line 18: groups[1].name: ")
            && e.contains(&format!("at most {MAX_GROUP_NAME}")),
        "{e}"
    );
    let ok = "g".repeat(MAX_GROUP_NAME);
    let text = BASE
        .replace("name = \"leechers\"", &format!("name = {ok:?}"))
        .replace("group = \"leechers\"", &format!("group = {ok:?}"));
    assert_eq!(Scenario::parse(&text).unwrap().groups[1].name, ok);
}

#[test]
fn a_group_cannot_take_the_bootstrap_nodes_names() {
    // Bootstrap nodes live in `nodes/bootstrap-<n>/`: a group named "bootstrap" would share
    // their directories (and their identities).
    let e = err(&BASE.replace("name = \"leechers\"", "name = \"bootstrap\""));
    assert!(
        e.starts_with("scenario.toml line 18: groups[1].name: \"bootstrap\" is reserved"),
        "{e}"
    );
}

#[test]
fn total_node_count_is_capped() {
    let group =
        |i: usize| format!("[[groups]]\nname = \"g{i}\"\nrole = \"leecher\"\ncount = 5000\n");
    let many: String = (0..MAX_NODES as usize / 5000 + 1).map(group).collect();
    let text = BASE.replacen("[[faults]]", &format!("{many}\n[[faults]]"), 1);
    let e = err(&text);
    let total = 12 + (MAX_NODES / 5000 + 1) * 5000; // + bootstrap, seeder, 10 leechers
    assert_eq!(
        e,
        format!(
            "scenario.toml: {total} nodes in all (groups and DHT bootstrap nodes), more than the \
             limit of {MAX_NODES}"
        )
    );
    // Exactly at the limit (with the bootstrap node) is fine.
    let at: String = (0..(MAX_NODES as usize - 12) / 5000).map(group).collect();
    let rest = (MAX_NODES - 12) % 5000;
    let text = BASE.replacen(
        "[[faults]]",
        &format!(
            "{at}[[groups]]\nname = \"rest\"\nrole = \"leecher\"\ncount = {rest}\n\n[[faults]]"
        ),
        1,
    );
    Scenario::parse(&text).unwrap();
}

#[test]
fn more_pieces_than_a_torrent_may_have_are_refused_before_generating() {
    // 64 GiB in 16 KiB pieces is 4 Mi pieces: the torrent could never be made, and finding
    // out only after writing and hashing 64 GiB is no way to say so.
    let text = BASE
        .replace("\"32MiB\"", "\"64GiB\"")
        .replace("\"256KiB\"", "\"16KiB\"");
    let e = err(&text);
    assert_eq!(
        e,
        format!(
            "scenario.toml line 7: content.piece_length: 68719476736 bytes in pieces of 16384 \
             bytes is 4194304 pieces, more than a torrent may have ({}); use a larger piece_length",
            shoal_metainfo::MAX_PIECES
        )
    );
    // The largest piece count that is allowed parses.
    let at = format!("{}", shoal_metainfo::MAX_PIECES * 16384);
    let text = BASE
        .replace("\"32MiB\"", &at)
        .replace("\"256KiB\"", "\"16KiB\"");
    Scenario::parse(&text).unwrap();
}

#[test]
fn load_reads_at_most_the_limit_from_a_stream() {
    // A character device (or a pipe) has no length to check first: `shoal testnet run
    // /dev/zero` must stop at the limit, not read forever.
    let e = Scenario::load(Path::new("/dev/zero")).unwrap_err();
    match e {
        ScenarioError::TooLarge { origin, len, limit } => {
            assert_eq!(origin, "/dev/zero");
            assert_eq!(limit, MAX_SCENARIO_BYTES);
            assert!(len > MAX_SCENARIO_BYTES);
        }
        other => panic!("{other}"),
    }
}

#[test]
fn joins_and_faults_after_the_timeout_are_refused() {
    // timeout = "2m": a group joining then, or a fault at that time, could never take part;
    // the run would only end, failed, after the whole timeout.
    let e = err(&BASE.replace("join_at = 5", "join_at = 120"));
    assert_eq!(
        e,
        "scenario.toml line 21: groups[1].join_at: 120s is not before the run's timeout \
         (120s): the group's nodes would never run; join earlier or raise `timeout`"
    );
    let e = err(&BASE.replace("at = \"30s\"", "at = \"3h\""));
    assert_eq!(
        e,
        "scenario.toml line 32: faults[1].at: 10800s is not before the run's timeout \
         (120s): the fault would never fire; fire it earlier or raise `timeout`"
    );
    // Just before the timeout is allowed.
    let s = Scenario::parse(&BASE.replace("join_at = 5", "join_at = 119.5")).unwrap();
    assert_eq!(s.groups[1].join_at, Duration::from_secs_f64(119.5));
}
