//! Valid torrents described as data ([`TorrentSpec`]), with the nastiest path components
//! other clients have met, and encoded to `.torrent` bytes.

use proptest::prelude::*;
use shoal_metainfo::bencode::{Value, encode};

use crate::bytes::byte_string;

/// The piece length of every generated torrent.
pub const PIECE_LENGTH: i64 = 16384;

/// One path component, from the ones that have broken other clients and from random bytes.
fn component() -> impl Strategy<Value = Vec<u8>> {
    let nasty: Vec<Vec<u8>> = [
        &b""[..],
        b".",
        b"..",
        b"/",
        b"\\",
        b"a/b",
        b"..\\..",
        b"../etc",
        b"/etc/passwd",
        b"C:\\x",
        b"CON",
        b"nul.txt",
        b"a\0b",
        b"\n",
        b"file.txt",
        b"dir",
        b"\xc3\xa9",
        b"\xff\xfe",
        b".pad",
    ]
    .iter()
    .map(|c| c.to_vec())
    .chain(std::iter::once(vec![b'x'; 300]))
    .collect();
    prop_oneof![
        3 => prop::sample::select(nasty),
        2 => "[a-c./\\\\]{0,4}".prop_map(String::into_bytes),
        1 => prop::collection::vec(any::<u8>(), 0..12),
    ]
}

#[derive(Debug, Clone)]
pub struct FileSpec {
    pub path: Vec<Vec<u8>>,
    pub length: i64,
    pub attr: Option<Vec<u8>>,
    pub symlink: Option<Vec<Vec<u8>>>,
}

impl FileSpec {
    /// Whether the torrent makes this a link (whose length then counts as 0).
    pub fn is_link(&self) -> bool {
        self.symlink.is_some() && self.attr.as_ref().is_some_and(|a| a.contains(&b'l'))
    }
}

#[derive(Debug, Clone)]
pub struct TorrentSpec {
    pub name: Vec<u8>,
    /// `None`: a single-file torrent of `length` bytes.
    pub files: Option<Vec<FileSpec>>,
    pub length: i64,
    pub private: bool,
    pub announce: Option<String>,
    pub announce_list: Vec<Vec<String>>,
    pub comment: Option<Vec<u8>>,
    pub creation_date: Option<i64>,
}

fn file_spec() -> impl Strategy<Value = FileSpec> {
    let attr = prop::option::of(prop::sample::select(vec![
        b"p".to_vec(),
        b"x".to_vec(),
        b"h".to_vec(),
        b"xh".to_vec(),
        b"l".to_vec(),
        b"lx".to_vec(),
    ]));
    (
        prop::collection::vec(component(), 0..4),
        0i64..40_000,
        attr,
        prop::option::of(prop::collection::vec(component(), 0..3)),
    )
        .prop_map(|(path, length, attr, symlink)| FileSpec {
            path,
            length,
            attr,
            symlink,
        })
}

fn tracker() -> impl Strategy<Value = String> {
    prop_oneof![
        "(http|udp)://[a-c]{1,3}\\.example(:[0-9]{1,4})?/announce",
        " ?[a-z]{0,3} ?",
    ]
}

pub fn torrent_spec() -> impl Strategy<Value = TorrentSpec> {
    (
        prop::collection::vec(component(), 1..3).prop_map(|parts| parts.concat()),
        prop::option::of(prop::collection::vec(file_spec(), 1..6)),
        1i64..100_000,
        any::<bool>(),
        prop::option::of(tracker()),
        prop::collection::vec(prop::collection::vec(tracker(), 0..3), 0..3),
        prop::option::of(byte_string(16)),
        prop::option::of(any::<i64>()),
    )
        .prop_map(
            |(name, files, length, private, announce, announce_list, comment, creation_date)| {
                // The name must not be empty for the torrent to be valid.
                let name = if name.is_empty() { b"n".to_vec() } else { name };
                TorrentSpec {
                    name,
                    files,
                    length,
                    private,
                    announce,
                    announce_list,
                    comment,
                    creation_date,
                }
            },
        )
}

fn bytes_list(parts: &[Vec<u8>]) -> Value {
    Value::List(parts.iter().cloned().map(Value::Bytes).collect())
}

impl TorrentSpec {
    /// The total size the torrent describes.
    pub fn total_size(&self) -> u64 {
        match &self.files {
            None => self.length as u64,
            Some(files) => files
                .iter()
                .filter(|f| !f.is_link())
                .map(|f| f.length as u64)
                .sum(),
        }
    }

    pub fn num_pieces(&self) -> u64 {
        self.total_size().div_ceil(PIECE_LENGTH as u64)
    }

    pub fn info(&self) -> Value {
        let pieces: Vec<u8> = (0..self.num_pieces() * 20).map(|i| i as u8).collect();
        let mut info = vec![
            ("name", Value::Bytes(self.name.clone())),
            ("piece length", Value::Int(PIECE_LENGTH)),
            ("pieces", Value::Bytes(pieces)),
        ];
        if self.private {
            info.push(("private", Value::Int(1)));
        }
        match &self.files {
            None => info.push(("length", Value::Int(self.length))),
            Some(files) => {
                let list = files.iter().map(|f| {
                    let mut entry = vec![
                        ("length", Value::Int(f.length)),
                        ("path", bytes_list(&f.path)),
                    ];
                    if let Some(attr) = &f.attr {
                        entry.push(("attr", Value::Bytes(attr.clone())));
                    }
                    if let Some(target) = &f.symlink {
                        entry.push(("symlink path", bytes_list(target)));
                    }
                    Value::dict(entry)
                });
                info.push(("files", Value::List(list.collect())));
            }
        }
        Value::dict(info)
    }

    pub fn encode(&self) -> Vec<u8> {
        let mut root = vec![("info", self.info())];
        if let Some(url) = &self.announce {
            root.push(("announce", url.as_str().into()));
        }
        if !self.announce_list.is_empty() {
            let tiers = self
                .announce_list
                .iter()
                .map(|tier| Value::List(tier.iter().map(|u| u.as_str().into()).collect()));
            root.push(("announce-list", Value::List(tiers.collect())));
        }
        if let Some(comment) = &self.comment {
            root.push(("comment", Value::Bytes(comment.clone())));
        }
        if let Some(date) = self.creation_date {
            root.push(("creation date", Value::Int(date)));
        }
        encode(&Value::dict(root))
    }
}
