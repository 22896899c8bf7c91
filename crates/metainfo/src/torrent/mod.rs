//! `.torrent` files (BEP 3) and their info dictionary: parsing, validation and re-encoding.

mod files;
mod hybrid;

use std::collections::HashSet;

use crate::bencode::{self, DecodeOptions, Node, Value};
use crate::error::MetainfoError;
use crate::geometry::PieceGeometry;
use crate::info_hash::InfoHash;
use crate::magnet::{MAX_MAGNET_LEN, Magnet};

pub use files::{FileAttr, FileEntry, MAX_FILES};

/// Most pieces accepted (2^21: 40 MiB of hashes), as in libtorrent.
pub const MAX_PIECES: u64 = 1 << 21;
/// Largest piece length accepted when reading a torrent (512 MiB).
pub const MAX_PIECE_LENGTH: u64 = 1 << 29;
/// Most tracker URLs kept from a torrent (`announce-list`, or `announce`); the rest are ignored.
/// The same as the most `tr` a magnet link may hold, so that a torrent's
/// [`magnet`](Torrent::magnet) link is one shoal accepts.
pub const MAX_TRACKERS: usize = crate::magnet::MAX_MAGNET_LIST;
/// Room a torrent's magnet link leaves for the peers (`x.pe`) a seeder adds to it: trackers
/// past `MAX_MAGNET_LEN` less this are left out of the link (the `.torrent` keeps them).
const MAGNET_PEER_ROOM: usize = 4096;

/// A validated info dictionary: what defines the content and its identity.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Info {
    /// Sanitized name: the file name (single-file) or top directory (multi-file).
    pub name: String,
    pub piece_length: u64,
    /// Concatenated 20-byte SHA-1 piece hashes.
    pieces: Vec<u8>,
    /// Every file in piece-space order, pad files included (see [`FileAttr::pad`]).
    pub files: Vec<FileEntry>,
    pub total_size: u64,
    /// BEP 27: only trackers and explicitly given peers may be used.
    pub private: bool,
    /// Written with `files` (a directory) rather than `length`.
    pub multi_file: bool,
    /// A hybrid v1+v2 torrent (its v2 part was checked against the v1 part, then set aside).
    pub hybrid: bool,
    geometry: PieceGeometry,
}

impl Info {
    /// Parses and validates an info dictionary given as its exact bytes; returns it with its
    /// info-hash (SHA-1 of exactly these bytes).
    pub fn from_bytes(bytes: &[u8]) -> Result<(InfoHash, Info), MetainfoError> {
        let doc = bencode::decode_with(bytes, DecodeOptions::TORRENT_FILE)?;
        let info_hash = InfoHash::of_info_bytes(bytes);
        let info = Self::from_node(doc.root(), &info_hash)?;
        Ok((info_hash, info))
    }

    fn from_node(info: Node<'_, '_>, info_hash: &InfoHash) -> Result<Info, MetainfoError> {
        if !info.is_dict() {
            return Err(MetainfoError::MissingInfo);
        }
        let raw_name = info
            .get(b"name.utf-8")
            .and_then(|n| n.as_bytes())
            .filter(|n| !n.is_empty())
            .or_else(|| info.get(b"name").and_then(|n| n.as_bytes()))
            .filter(|n| !n.is_empty())
            .ok_or(MetainfoError::InvalidName)?;
        // A name that sanitizes to nothing (e.g. "..") is replaced by the info-hash, as
        // libtorrent does, so the content still gets a directory of its own.
        let name = files::sanitize_name(raw_name).unwrap_or_else(|| info_hash.to_hex());

        let piece_length = parse_piece_length(info)?;
        let is_v2 = info.get(b"meta version").and_then(|v| v.as_int()) == Some(2)
            || info.get(b"file tree").is_some();
        let pieces = match info.get(b"pieces") {
            None if is_v2 => return Err(MetainfoError::V2Only),
            None => return Err(MetainfoError::MissingPieces),
            Some(p) => p.as_bytes().ok_or(MetainfoError::MissingPieces)?,
        };
        if pieces.len() % 20 != 0 {
            return Err(MetainfoError::PiecesLength { len: pieces.len() });
        }

        let list = files::parse_files(info, &name)?;
        if list.total_size == 0 {
            return Err(MetainfoError::EmptyTorrent);
        }
        let expected = list.total_size.div_ceil(piece_length);
        if expected > MAX_PIECES {
            return Err(MetainfoError::TooManyPieces {
                count: expected,
                limit: MAX_PIECES,
            });
        }
        let geometry = PieceGeometry::new(piece_length, list.total_size).ok_or(
            MetainfoError::TooManyPieces {
                count: expected,
                limit: MAX_PIECES,
            },
        )?;
        let actual = (pieces.len() / 20) as u64;
        if actual != expected {
            return Err(MetainfoError::PieceCountMismatch { expected, actual });
        }
        let multi_file = info.get(b"files").is_some();
        if is_v2 {
            let single = (!multi_file).then_some(list.total_size);
            hybrid::check(info, raw_name, piece_length, &list.raw, single)?;
        }
        Ok(Info {
            name,
            piece_length,
            pieces: pieces.to_vec(),
            files: list.entries,
            total_size: list.total_size,
            private: info.get(b"private").and_then(|p| p.as_int()) == Some(1),
            multi_file,
            hybrid: is_v2,
            geometry,
        })
    }

    pub fn num_pieces(&self) -> usize {
        self.pieces.len() / 20
    }

    /// The SHA-1 hash piece `index` must have.
    pub fn piece_hash(&self, index: usize) -> Option<[u8; 20]> {
        let chunk = self.pieces.get(index * 20..index * 20 + 20)?;
        chunk.try_into().ok()
    }

    /// The length of piece `index`: `piece_length`, except for a shorter last piece.
    pub fn piece_size(&self, index: usize) -> Option<u64> {
        let start = (index as u64).checked_mul(self.piece_length)?;
        (start < self.total_size).then(|| (self.total_size - start).min(self.piece_length))
    }

    /// The piece space. Always present: validation guarantees a non-zero size and at most
    /// [`MAX_PIECES`] pieces of at most [`MAX_PIECE_LENGTH`] bytes.
    pub fn geometry(&self) -> PieceGeometry {
        self.geometry
    }

    /// Files that hold data on disk (pad files left out).
    pub fn data_files(&self) -> impl Iterator<Item = &FileEntry> {
        self.files.iter().filter(|f| !f.is_pad())
    }
}

fn parse_piece_length(info: Node<'_, '_>) -> Result<u64, MetainfoError> {
    let node = info
        .get(b"piece length")
        .ok_or(MetainfoError::MissingPieceLength)?;
    let invalid = |value| MetainfoError::InvalidPieceLength {
        value,
        max: MAX_PIECE_LENGTH,
    };
    let value = node.as_int().ok_or_else(|| invalid(0))?;
    match u64::try_from(value) {
        Ok(v) if (1..=MAX_PIECE_LENGTH).contains(&v) => Ok(v),
        _ => Err(invalid(value)),
    }
}

/// A `.torrent` file: the info dictionary (kept byte-exact) and what surrounds it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Torrent {
    pub info_hash: InfoHash,
    /// The info dictionary's exact bytes, as hashed and as served to magnet-link peers.
    pub info_bytes: Vec<u8>,
    pub info: Info,
    /// Tracker tiers (BEP 12); a lone `announce` is one tier of one. At most
    /// [`MAX_TRACKERS`] URLs in all, without repeats.
    pub trackers: Vec<Vec<String>>,
    pub comment: Option<String>,
    pub created_by: Option<String>,
    /// Seconds since the Unix epoch.
    pub creation_date: Option<i64>,
    /// Web seeds (BEP 19), kept for display.
    pub url_list: Vec<String>,
}

fn text(node: Option<Node<'_, '_>>) -> Option<String> {
    let bytes = node?.as_bytes()?;
    Some(String::from_utf8_lossy(bytes).trim().to_owned()).filter(|s| !s.is_empty())
}

impl Torrent {
    /// Parses a `.torrent` file.
    pub fn from_bytes(bytes: &[u8]) -> Result<Torrent, MetainfoError> {
        let doc = bencode::decode_with(bytes, DecodeOptions::TORRENT_FILE)?;
        let root = doc.root();
        if !root.is_dict() {
            return Err(MetainfoError::NotADictionary);
        }
        let info_node = root.get(b"info").ok_or(MetainfoError::MissingInfo)?;
        let info_bytes = info_node.raw();
        let info_hash = InfoHash::of_info_bytes(info_bytes);
        let info = Info::from_node(info_node, &info_hash)?;
        let url_list = match root.get(b"url-list") {
            Some(n) if n.is_list() => n
                .as_list()
                .into_iter()
                .flatten()
                .filter_map(|u| text(Some(u)))
                .collect(),
            other => text(other).into_iter().collect(),
        };
        Ok(Torrent {
            info_hash,
            info_bytes: info_bytes.to_vec(),
            info,
            trackers: parse_trackers(root),
            comment: text(root.get(b"comment.utf-8")).or_else(|| text(root.get(b"comment"))),
            created_by: text(root.get(b"created by")),
            creation_date: root.get(b"creation date").and_then(|d| d.as_int()),
            url_list,
        })
    }

    /// A torrent around info bytes fetched from peers (magnet links), with trackers if known.
    pub fn from_info_bytes(
        info_bytes: Vec<u8>,
        trackers: Vec<Vec<String>>,
    ) -> Result<Torrent, MetainfoError> {
        let (info_hash, info) = Info::from_bytes(&info_bytes)?;
        Ok(Torrent {
            info_hash,
            info_bytes,
            info,
            trackers,
            comment: None,
            created_by: None,
            creation_date: None,
            url_list: Vec::new(),
        })
    }

    /// Every tracker URL, tier by tier, without repeats.
    pub fn tracker_urls(&self) -> Vec<String> {
        let mut urls: Vec<String> = Vec::new();
        for url in self.trackers.iter().flatten() {
            if !urls.contains(url) {
                urls.push(url.clone());
            }
        }
        urls
    }

    /// The magnet link for this torrent: info-hash, name, trackers and exact length. Trackers
    /// that would make the link longer than a magnet link may be (with room for a few `x.pe`
    /// peers) are left out.
    pub fn magnet(&self) -> Magnet {
        let mut magnet = Magnet {
            info_hash: self.info_hash,
            display_name: Some(self.info.name.clone()),
            trackers: self.tracker_urls(),
            peers: Vec::new(),
            exact_length: Some(self.info.total_size),
        };
        magnet.trim_trackers(MAX_MAGNET_LEN - MAGNET_PEER_ROOM);
        magnet
    }

    /// Encodes the torrent as a `.torrent` file. The info dictionary is written byte for byte
    /// as it was read, so the info-hash never changes.
    pub fn to_bytes(&self) -> Vec<u8> {
        let mut entries: Vec<(&[u8], Vec<u8>)> = vec![(b"info", self.info_bytes.clone())];
        let mut put =
            |key: &'static [u8], value: Value| entries.push((key, bencode::encode(&value)));
        if let Some(first) = self.trackers.first().and_then(|t| t.first()) {
            put(b"announce", first.as_str().into());
        }
        if self.trackers.iter().map(Vec::len).sum::<usize>() > 1 {
            let tiers = self
                .trackers
                .iter()
                .map(|tier| Value::List(tier.iter().map(|u| u.as_str().into()).collect()));
            put(b"announce-list", Value::List(tiers.collect()));
        }
        if let Some(comment) = &self.comment {
            put(b"comment", comment.as_str().into());
        }
        if let Some(created_by) = &self.created_by {
            put(b"created by", created_by.as_str().into());
        }
        if let Some(date) = self.creation_date {
            put(b"creation date", Value::Int(date));
        }
        if !self.url_list.is_empty() {
            let urls = self.url_list.iter().map(|u| u.as_str().into()).collect();
            put(b"url-list", Value::List(urls));
        }
        entries.sort_by(|a, b| a.0.cmp(b.0));
        let mut out = vec![b'd'];
        for (key, value) in entries {
            bencode::encode_into(&Value::bytes(key), &mut out);
            out.extend_from_slice(&value);
        }
        out.push(b'e');
        out
    }
}

/// `announce-list` tiers when present and usable (BEP 12), else `announce`. Malformed entries
/// are skipped, as other clients do: trackers are hints, not part of the content's identity.
/// Reading stops at [`MAX_TRACKERS`] URLs, so a huge list costs nothing past them.
fn parse_trackers(root: Node<'_, '_>) -> Vec<Vec<String>> {
    let mut seen: HashSet<String> = HashSet::new();
    let mut tiers = Vec::new();
    for tier in root
        .get(b"announce-list")
        .and_then(|l| l.as_list())
        .into_iter()
        .flatten()
    {
        if seen.len() >= MAX_TRACKERS {
            break;
        }
        let mut urls = Vec::new();
        for url in tier
            .as_list()
            .into_iter()
            .flatten()
            .filter_map(|u| text(Some(u)))
        {
            if seen.len() >= MAX_TRACKERS {
                break;
            }
            if seen.insert(url.clone()) {
                urls.push(url);
            }
        }
        if !urls.is_empty() {
            tiers.push(urls);
        }
    }
    if tiers.is_empty() {
        if let Some(url) = text(root.get(b"announce")) {
            tiers.push(vec![url]);
        }
    }
    tiers
}

#[cfg(test)]
mod tests;
