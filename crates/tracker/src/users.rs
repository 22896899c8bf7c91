//! Private mode: users with passkeys, and their upload/download accounting persisted to a
//! state file.
//!
//! The users file has one `NAME PASSKEY` per line (separated by spaces or tabs); blank lines
//! and lines starting with `#` are ignored. Names are unique; passkeys are unique, 8 to 64
//! characters from `A-Z a-z 0-9 - _`. A user announces to `http://HOST/announce/PASSKEY`.
//!
//! The state file is JSON, `{"users": {"NAME": {"uploaded": N, "downloaded": N}}}`, written
//! atomically (temporary file, fsync, rename, fsync of the directory). Users in the state file
//! but no longer in the users file keep their line, so removing and re-adding a user loses
//! nothing.

use std::collections::{BTreeMap, HashMap};
use std::fs::File;
use std::io::{self, Read as _, Write as _};
use std::path::{Path, PathBuf};

use serde::{Deserialize, Serialize};

use crate::error::TrackerError;
use crate::swarm::Transfer;

/// Shortest passkey accepted.
pub const MIN_PASSKEY_LEN: usize = 8;
/// Longest passkey accepted.
pub const MAX_PASSKEY_LEN: usize = 64;
/// Most users in a users file.
pub const MAX_USERS: usize = 100_000;
/// Largest users or state file read, in bytes.
pub const MAX_FILE_LEN: u64 = 64 << 20;

/// Users and what they have transferred.
#[derive(Debug)]
pub struct Ledger {
    names: Vec<String>,
    by_passkey: HashMap<Box<[u8]>, usize>,
    totals: BTreeMap<String, UserTotals>,
    dirty: bool,
}

/// One user's totals, as stored in the state file.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct UserTotals {
    pub uploaded: u64,
    pub downloaded: u64,
}

#[derive(Debug, Default, Serialize, Deserialize)]
struct StateFile {
    users: BTreeMap<String, UserTotals>,
}

/// A user, by position in the users file.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct UserId(usize);

impl Ledger {
    /// Parses a users file's text (see the module docs); `path` names it in errors.
    pub fn from_users(text: &str, path: &Path) -> Result<Self, TrackerError> {
        let mut ledger = Self {
            names: Vec::new(),
            by_passkey: HashMap::new(),
            totals: BTreeMap::new(),
            dirty: false,
        };
        for (n, line) in text.lines().enumerate() {
            let line = line.trim();
            if line.is_empty() || line.starts_with('#') {
                continue;
            }
            let bad = |reason: String| TrackerError::UsersFile {
                path: path.to_owned(),
                line: n + 1,
                reason,
            };
            let mut words = line.split_whitespace();
            let (Some(name), Some(passkey), None) = (words.next(), words.next(), words.next())
            else {
                return Err(bad("expected `NAME PASSKEY`".into()));
            };
            let key_ok = (MIN_PASSKEY_LEN..=MAX_PASSKEY_LEN).contains(&passkey.len())
                && passkey
                    .bytes()
                    .all(|b| b.is_ascii_alphanumeric() || b == b'-' || b == b'_');
            if !key_ok {
                return Err(bad(format!(
                    "a passkey is {MIN_PASSKEY_LEN} to {MAX_PASSKEY_LEN} characters from A-Z a-z 0-9 - _"
                )));
            }
            // `totals` holds exactly the names read so far: a lookup, not a scan of them all.
            if ledger.totals.contains_key(name) {
                return Err(bad(format!("user {name:?} is listed twice")));
            }
            if ledger.names.len() == MAX_USERS {
                return Err(bad(format!("more than {MAX_USERS} users")));
            }
            let id = ledger.names.len();
            if ledger
                .by_passkey
                .insert(passkey.as_bytes().into(), id)
                .is_some()
            {
                return Err(bad(format!("the passkey of {name:?} is already in use")));
            }
            ledger.names.push(name.to_owned());
            ledger.totals.insert(name.to_owned(), UserTotals::default());
        }
        Ok(ledger)
    }

    /// Reads the users file and, if it exists, the state file.
    pub fn load(users: &Path, state: &Path) -> Result<Self, TrackerError> {
        let mut ledger = Self::from_users(&read_bounded(users)?, users)?;
        match read_bounded(state) {
            Ok(text) => {
                let saved: StateFile =
                    serde_json::from_str(&text).map_err(|source| TrackerError::StateFile {
                        path: state.to_owned(),
                        source,
                    })?;
                ledger.totals.extend(saved.users);
            }
            Err(TrackerError::Io { source, .. }) if source.kind() == io::ErrorKind::NotFound => {}
            Err(e) => return Err(e),
        }
        Ok(ledger)
    }

    /// Passkey to user, for lookups without holding the ledger (it never changes).
    pub fn passkeys(&self) -> HashMap<Box<[u8]>, UserId> {
        self.by_passkey
            .iter()
            .map(|(key, &id)| (key.clone(), UserId(id)))
            .collect()
    }

    pub fn user(&self, passkey: &[u8]) -> Option<UserId> {
        self.by_passkey.get(passkey).copied().map(UserId)
    }

    pub fn name(&self, user: UserId) -> &str {
        self.names.get(user.0).map_or("", String::as_str)
    }

    pub fn credit(&mut self, user: UserId, transfer: Transfer) {
        if transfer == Transfer::default() {
            return;
        }
        let Some(name) = self.names.get(user.0) else {
            return;
        };
        let totals = self.totals.entry(name.clone()).or_default();
        totals.uploaded = totals.uploaded.saturating_add(transfer.uploaded);
        totals.downloaded = totals.downloaded.saturating_add(transfer.downloaded);
        self.dirty = true;
    }

    pub fn totals(&self, name: &str) -> Option<UserTotals> {
        self.totals.get(name).copied()
    }

    pub fn user_count(&self) -> usize {
        self.names.len()
    }

    /// The state file's bytes if anything changed since the last call, else `None`.
    pub fn take_snapshot(&mut self) -> Option<Vec<u8>> {
        if !self.dirty {
            return None;
        }
        self.dirty = false;
        let state = StateFile {
            users: self.totals.clone(),
        };
        match serde_json::to_vec_pretty(&state) {
            Ok(mut bytes) => {
                bytes.push(b'\n');
                Some(bytes)
            }
            Err(error) => {
                self.dirty = true;
                tracing::error!(%error, "cannot serialize tracker state");
                None
            }
        }
    }

    /// Marks the ledger changed again, after a snapshot failed to reach the disk.
    pub fn mark_dirty(&mut self) {
        self.dirty = true;
    }
}

fn read_bounded(path: &Path) -> Result<String, TrackerError> {
    let io_error = |source| TrackerError::Io {
        path: path.to_owned(),
        source,
    };
    let too_large = |message: String| io_error(io::Error::new(io::ErrorKind::InvalidData, message));
    let file = File::open(path).map_err(io_error)?;
    let len = file.metadata().map_err(io_error)?.len();
    if len > MAX_FILE_LEN {
        return Err(too_large(format!(
            "{len} bytes is more than the {MAX_FILE_LEN}-byte limit"
        )));
    }
    // A pipe or a device has no size, and a file may grow after the check: bound the read too.
    // The length is checked before the text, so a cut multi-byte character at the limit does
    // not turn into a misleading encoding error.
    let mut bytes = Vec::new();
    file.take(MAX_FILE_LEN + 1)
        .read_to_end(&mut bytes)
        .map_err(io_error)?;
    if bytes.len() as u64 > MAX_FILE_LEN {
        return Err(too_large(format!(
            "more than the {MAX_FILE_LEN}-byte limit"
        )));
    }
    String::from_utf8(bytes)
        .map_err(|_| io_error(io::Error::new(io::ErrorKind::InvalidData, "not UTF-8 text")))
}

/// Replaces `path` with `bytes` so a crash leaves either the old or the new file: write a
/// temporary file beside it, fsync it, rename it over `path`, fsync the directory.
pub fn write_atomic(path: &Path, bytes: &[u8]) -> Result<(), TrackerError> {
    let io_error = |source| TrackerError::Io {
        path: path.to_owned(),
        source,
    };
    let dir = match path.parent() {
        Some(p) if !p.as_os_str().is_empty() => p.to_owned(),
        _ => PathBuf::from("."),
    };
    let mut tmp_name = path.file_name().unwrap_or_default().to_owned();
    tmp_name.push(format!(".tmp-{}", std::process::id()));
    let tmp = dir.join(tmp_name);
    let written = File::create(&tmp)
        .and_then(|mut file| {
            file.write_all(bytes)?;
            file.sync_all()
        })
        .and_then(|()| std::fs::rename(&tmp, path));
    if let Err(e) = written {
        let _ = std::fs::remove_file(&tmp);
        return Err(io_error(e));
    }
    // Makes the rename itself durable; not every platform can open a directory.
    if let Ok(dir) = File::open(&dir) {
        let _ = dir.sync_all();
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    const USERS: &str = "# name passkey\nalice  aaaaaaaa11111111\n\n\tbob\tB-b_0000bbbb\n";

    fn reason(text: &str) -> String {
        Ledger::from_users(text, Path::new("users"))
            .unwrap_err()
            .to_string()
    }

    #[test]
    fn parses_users() {
        let ledger = Ledger::from_users(USERS, Path::new("users")).unwrap();
        assert_eq!(ledger.user_count(), 2);
        let bob = ledger.user(b"B-b_0000bbbb").unwrap();
        assert_eq!(ledger.name(bob), "bob");
        assert!(ledger.user(b"aaaaaaaa1111111").is_none());
        assert!(ledger.user(b"").is_none());
    }

    #[test]
    fn bad_users_files_say_where() {
        assert_eq!(reason("alice\n"), "users line 1: expected `NAME PASSKEY`");
        assert_eq!(
            reason("#\nalice key1key1 extra\n"),
            "users line 2: expected `NAME PASSKEY`"
        );
        let short = "users line 1: a passkey is 8 to 64 characters from A-Z a-z 0-9 - _";
        assert_eq!(reason("alice 1234567\n"), short);
        assert_eq!(reason(&format!("alice {}\n", "k".repeat(65))), short);
        assert_eq!(reason("alice 1234567/\n"), short);
        assert!(Ledger::from_users(&format!("a {}", "k".repeat(64)), Path::new("u")).is_ok());
        assert_eq!(
            reason("alice 12345678\nalice 87654321\n"),
            "users line 2: user \"alice\" is listed twice"
        );
        assert_eq!(
            reason("alice 12345678\nbob 12345678\n"),
            "users line 2: the passkey of \"bob\" is already in use"
        );
    }

    #[test]
    fn user_limit_one_past_the_edge() {
        // Each name was compared with every name before it: a file at the limit took
        // 5 billion comparisons to load.
        let line = |i: usize| format!("user{i} key{i:0>8}\n");
        let mut text: String = (0..MAX_USERS).map(line).collect();
        let ledger = Ledger::from_users(&text, Path::new("users")).unwrap();
        assert_eq!(ledger.user_count(), MAX_USERS);
        text.push_str(&line(MAX_USERS));
        assert_eq!(
            reason(&text),
            format!("users line {}: more than {MAX_USERS} users", MAX_USERS + 1)
        );
    }

    #[cfg(target_os = "linux")]
    #[test]
    fn a_file_that_reports_no_size_is_read_only_up_to_the_limit() {
        // A pipe (`--users <(...)`) or a device has no size to check first: the read itself
        // must stop at the limit.
        let err = read_bounded(Path::new("/dev/zero")).unwrap_err();
        assert_eq!(
            err.to_string(),
            format!("/dev/zero: more than the {MAX_FILE_LEN}-byte limit")
        );
    }

    #[test]
    fn totals_survive_a_reload() {
        let dir = tempfile::tempdir().unwrap();
        let users = dir.path().join("users");
        let state = dir.path().join("state.json");
        std::fs::write(&users, USERS).unwrap();
        let mut ledger = Ledger::load(&users, &state).unwrap();
        assert!(ledger.take_snapshot().is_none(), "nothing changed yet");
        let alice = ledger.user(b"aaaaaaaa11111111").unwrap();
        ledger.credit(
            alice,
            Transfer {
                uploaded: 10,
                downloaded: 3,
            },
        );
        write_atomic(&state, &ledger.take_snapshot().unwrap()).unwrap();
        assert!(ledger.take_snapshot().is_none());
        let names: Vec<_> = std::fs::read_dir(dir.path())
            .unwrap()
            .map(|e| e.unwrap().file_name())
            .collect();
        assert_eq!(names.len(), 2, "no temporary file left: {names:?}");
        let ledger = Ledger::load(&users, &state).unwrap();
        let totals = UserTotals {
            uploaded: 10,
            downloaded: 3,
        };
        assert_eq!(ledger.totals("alice"), Some(totals));
        assert_eq!(ledger.totals("bob"), Some(UserTotals::default()));
        std::fs::write(&state, "not json").unwrap();
        assert!(matches!(
            Ledger::load(&users, &state),
            Err(TrackerError::StateFile { .. })
        ));
    }
}
