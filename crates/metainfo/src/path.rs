//! Turning untrusted path components from a torrent into names that are safe to create.
//!
//! Whatever the torrent says, the result is a relative path of plain names: no `..`, no `.`,
//! no separators, no NUL or control characters, no reserved device names, no empty names, and
//! no name longer than [`MAX_COMPONENT_BYTES`]. Two files never map to the same path, and a
//! file never takes the place of a directory another file needs ([`UniquePaths`]).

use std::collections::HashMap;

/// Longest name written, in bytes (Linux allows 255; this leaves room for a `.N` suffix).
pub const MAX_COMPONENT_BYTES: usize = 240;

/// Names Windows reserves for devices; a file with one of them as its stem cannot be created
/// there, so they get a `_` appended everywhere, keeping downloads portable.
const RESERVED: [&str; 22] = [
    "CON", "PRN", "AUX", "NUL", "COM1", "COM2", "COM3", "COM4", "COM5", "COM6", "COM7", "COM8",
    "COM9", "LPT1", "LPT2", "LPT3", "LPT4", "LPT5", "LPT6", "LPT7", "LPT8", "LPT9",
];

/// Sanitizes one path component. `None` means the component is dropped (`.`, `..`, or
/// nothing but separators); an empty component becomes `_`.
pub fn sanitize_component(raw: &[u8]) -> Option<String> {
    if raw.is_empty() {
        return Some("_".to_owned());
    }
    // Almost every name is already fine: take it as it is, in one allocation.
    if let Ok(text) = std::str::from_utf8(raw) {
        if is_plain(text) {
            return Some(text.to_owned());
        }
    }
    let text = String::from_utf8_lossy(raw);
    let mut name: String = text
        .chars()
        .filter(|c| *c != '/' && *c != '\\')
        .map(|c| if c.is_control() { '_' } else { c })
        .collect();
    if name.is_empty() || name == "." || name == ".." {
        return None;
    }
    if is_reserved(&name) {
        let (stem, ext) = split_extension(&name);
        name = format!("{stem}_{ext}");
    }
    Some(truncate_name(name, MAX_COMPONENT_BYTES))
}

/// A name that needs no change at all.
fn is_plain(name: &str) -> bool {
    name.len() <= MAX_COMPONENT_BYTES
        && name != "."
        && name != ".."
        && !name
            .chars()
            .any(|c| c == '/' || c == '\\' || c.is_control())
        && !is_reserved(name)
}

fn is_reserved(name: &str) -> bool {
    let (stem, _) = split_extension(name);
    stem.len() <= 4 && RESERVED.iter().any(|r| r.eq_ignore_ascii_case(stem))
}

/// Sanitizes a whole path: each component, dropping those that vanish. An empty result
/// becomes `["_"]` so every file still has a name.
pub fn sanitize_components<'a>(raw: impl IntoIterator<Item = &'a [u8]>) -> Vec<String> {
    let mut parts: Vec<String> = raw.into_iter().filter_map(sanitize_component).collect();
    if parts.is_empty() {
        parts.push("_".to_owned());
    }
    parts
}

/// Splits `name` into stem and extension (with its dot). A leading dot is not an extension.
fn split_extension(name: &str) -> (&str, &str) {
    match name.rfind('.') {
        Some(dot) if dot > 0 && name.len() - dot <= 16 => name.split_at(dot),
        _ => (name, ""),
    }
}

/// Shortens `name` to at most `max` bytes on a character boundary, keeping a short extension.
fn truncate_name(name: String, max: usize) -> String {
    if name.len() <= max {
        return name;
    }
    let (stem, ext) = split_extension(&name);
    let mut cut = max - ext.len();
    while !stem.is_char_boundary(cut) {
        cut -= 1;
    }
    format!("{}{}", &stem[..cut], ext)
}

fn push_component(path: &mut String, name: &str) {
    if !path.is_empty() {
        path.push('/');
    }
    path.push_str(name);
}

fn with_suffix(name: &str, n: usize) -> String {
    let (stem, ext) = split_extension(name);
    truncate_name(format!("{stem}.{n}{ext}"), MAX_COMPONENT_BYTES + 8)
}

/// A directory placed by [`UniquePaths`], by number; [`ROOT`] is the download directory.
type DirId = usize;
const ROOT: DirId = 0;

/// What a name in a directory stands for.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Entry {
    File,
    Dir(DirId),
}

/// Hands out paths so that no two files share one and no file sits where a directory must go.
/// A later file that collides is renamed `name.1.ext`, `name.2.ext`, … (as libtorrent does).
///
/// Names are kept per directory (a tree), not as whole paths: a path then costs the length of
/// its own components, where one copy of every ancestor's full path would cost its length
/// squared (a 60 KB `path` list of one-byte names would hold 400 MB).
#[derive(Debug, Default)]
pub struct UniquePaths {
    /// Every name placed, under the directory that holds it.
    entries: HashMap<(DirId, String), Entry>,
    /// A directory renamed because a file had its name: (parent, original name) -> new name.
    moved_dirs: HashMap<(DirId, String), String>,
    /// The suffix a colliding (directory, name) tries first. Names are never given back, so
    /// every smaller suffix is still taken: many files of one name cost one step each, not a
    /// search from `.1` each (quadratic in their number).
    next_suffix: HashMap<(DirId, String), usize>,
    /// Directories created so far (the last one's [`DirId`]).
    dirs: DirId,
}

impl UniquePaths {
    /// Places a sanitized path (at least one component), returning it `/`-joined, renamed where
    /// it collided.
    pub fn place(&mut self, mut parts: Vec<String>) -> String {
        let Some(last) = parts.len().checked_sub(1) else {
            return String::new();
        };
        let mut path = String::with_capacity(parts.iter().map(|p| p.len() + 1).sum());
        let mut dir = ROOT;
        for part in &mut parts[..last] {
            if let Some(moved) = self.moved_dirs.get(&(dir, part.clone())) {
                *part = moved.clone();
            }
            dir = match self.entries.get(&(dir, part.clone())) {
                Some(&Entry::Dir(id)) => id,
                Some(&Entry::File) => {
                    let fresh = self.free_name(dir, part);
                    let original = std::mem::replace(part, fresh.clone());
                    self.moved_dirs.insert((dir, original), fresh);
                    self.add_dir(dir, part.clone())
                }
                None => self.add_dir(dir, part.clone()),
            };
            push_component(&mut path, part);
        }
        let mut name = std::mem::take(&mut parts[last]);
        if self.entries.contains_key(&(dir, name.clone())) {
            name = self.free_name(dir, &name);
        }
        push_component(&mut path, &name);
        self.entries.insert((dir, name), Entry::File);
        path
    }

    fn add_dir(&mut self, parent: DirId, name: String) -> DirId {
        self.dirs += 1;
        self.entries.insert((parent, name), Entry::Dir(self.dirs));
        self.dirs
    }

    /// Bytes of names this value holds (for tests of its memory use).
    #[cfg(test)]
    fn held_bytes(&self) -> usize {
        let entries: usize = self.entries.keys().map(|(_, k)| k.len()).sum();
        let moved: usize = self
            .moved_dirs
            .iter()
            .map(|((_, k), v)| k.len() + v.len())
            .sum();
        let suffixes: usize = self.next_suffix.keys().map(|(_, k)| k.len()).sum();
        entries + moved + suffixes
    }

    /// The first `name.N.ext` not yet used in `dir`.
    fn free_name(&mut self, dir: DirId, name: &str) -> String {
        let start = self
            .next_suffix
            .get(&(dir, name.to_owned()))
            .copied()
            .unwrap_or(1);
        let free = (start..)
            .map(|n| (n, with_suffix(name, n)))
            .find(|(_, candidate)| !self.entries.contains_key(&(dir, candidate.clone())));
        match free {
            Some((n, candidate)) => {
                self.next_suffix.insert((dir, name.to_owned()), n + 1);
                candidate
            }
            None => name.to_owned(),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn s(parts: &[&[u8]]) -> Vec<String> {
        sanitize_components(parts.iter().copied())
    }

    #[test]
    fn traversal_and_separators_are_removed() {
        assert_eq!(s(&[b"..", b"..", b"bar"]), ["bar"]);
        assert_eq!(s(&[b"/", b"/", b"bar"]), ["bar"]);
        assert_eq!(s(&[b"\\", b"bar"]), ["bar"]);
        assert_eq!(s(&[b"/etc", b"passwd"]), ["etc", "passwd"]);
        assert_eq!(s(&[b"abc/../../def", b"bar"]), ["abc....def", "bar"]);
        assert_eq!(s(&[b"."]), ["_"]);
        assert_eq!(s(&[b"", b""]), ["_", "_"]);
    }

    #[test]
    fn nul_control_and_reserved_names() {
        assert_eq!(s(&[b"a\0b\nc"]), ["a_b_c"]);
        assert_eq!(s(&[b"CON"]), ["CON_"]);
        assert_eq!(s(&[b"lpt1.txt"]), ["lpt1_.txt"]);
        assert_eq!(s(&[b"CONSOLE"]), ["CONSOLE"]);
    }

    #[test]
    fn long_names_are_cut_keeping_the_extension() {
        let long = format!("{}.mkv", "é".repeat(200));
        let out = sanitize_component(long.as_bytes()).unwrap();
        assert!(out.len() <= MAX_COMPONENT_BYTES, "{}", out.len());
        assert!(out.ends_with(".mkv"));
    }

    #[test]
    fn collisions_are_renamed() {
        let mut paths = UniquePaths::default();
        let p = |v: &[&str]| v.iter().map(|x| x.to_string()).collect::<Vec<_>>();
        assert_eq!(paths.place(p(&["a", "bar.txt"])), "a/bar.txt");
        assert_eq!(paths.place(p(&["a", "bar.txt"])), "a/bar.1.txt");
        assert_eq!(paths.place(p(&["a", "bar.txt"])), "a/bar.2.txt");
        // A file where a directory already is.
        assert_eq!(paths.place(p(&["a"])), "a.1");
        // A directory where a file already is: the directory moves, consistently.
        assert_eq!(paths.place(p(&["f"])), "f");
        assert_eq!(paths.place(p(&["f", "x"])), "f.1/x");
        assert_eq!(paths.place(p(&["f", "y"])), "f.1/y");
    }

    #[test]
    fn a_deep_path_is_held_in_space_proportional_to_its_length() {
        // 20,000 one-byte components: a 60 KB `path` list in a .torrent. Keeping every
        // ancestor directory as its own full path would hold 20,000² bytes (400 MB).
        let depth = 20_000;
        let mut paths = UniquePaths::default();
        let placed = paths.place(vec!["a".to_owned(); depth]);
        assert_eq!(placed.len(), 2 * depth - 1);
        let held = paths.held_bytes();
        assert!(
            held <= 4 * placed.len(),
            "{held} bytes held for a path of {} bytes",
            placed.len()
        );
        // Still one namespace: the same deep path again is renamed at its last component.
        let again = paths.place(vec!["a".to_owned(); depth]);
        assert_eq!(again, format!("{}.1", placed));
    }
}
