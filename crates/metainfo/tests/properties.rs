//! Property tests for shoal-metainfo: bencode round-trips, and decoders that never panic on
//! hostile input (arbitrary bytes, and valid encodings with a few bytes flipped, inserted or
//! deleted), torrent paths that are always safe, and magnet links that round-trip.
//!
//! 256 cases per property unless `PROPTEST_CASES` says otherwise.

use std::collections::{BTreeSet, HashSet};

use proptest::prelude::*;
use proptest::sample::Index;
use proptest::test_runner::TestCaseError;
use shoal_metainfo::bencode::{DecodeOptions, Value, decode, decode_with, encode};
use shoal_metainfo::{Info, InfoHash, Magnet, MetainfoError, Torrent};

const PIECE_LENGTH: i64 = 16384;

fn config() -> ProptestConfig {
    let cases = std::env::var("PROPTEST_CASES")
        .ok()
        .and_then(|c| c.parse().ok())
        .unwrap_or(256);
    ProptestConfig {
        cases,
        // Failures are reported with their minimal input; nothing is written into the repo.
        failure_persistence: None,
        ..ProptestConfig::default()
    }
}

// ---------------------------------------------------------------------------------------------
// Strategies
// ---------------------------------------------------------------------------------------------

fn int() -> impl Strategy<Value = i64> {
    prop_oneof![
        3 => -20i64..20,
        3 => any::<i64>(),
        1 => prop::sample::select(vec![0, -1, 1, i64::MIN, i64::MIN + 1, i64::MAX, i64::MAX - 1]),
    ]
}

fn byte_string(max: usize) -> impl Strategy<Value = Vec<u8>> {
    prop_oneof![
        prop::collection::vec(any::<u8>(), 0..max),
        // Bytes that look like bencode, to confuse a decoder that peeks into payloads.
        prop::collection::vec(prop::sample::select(b"ilde0123456789:-".to_vec()), 0..max),
    ]
}

/// Any bencode value, nested up to 4 levels deep.
fn value() -> impl Strategy<Value = Value> {
    let leaf = prop_oneof![
        int().prop_map(Value::Int),
        byte_string(24).prop_map(Value::Bytes)
    ];
    leaf.prop_recursive(4, 64, 6, |inner| {
        prop_oneof![
            prop::collection::vec(inner.clone(), 0..6).prop_map(Value::List),
            prop::collection::btree_map(byte_string(8), inner, 0..6).prop_map(Value::Dict),
        ]
    })
}

/// Arbitrary bytes, half of them drawn from the bencode alphabet so that decoding gets past
/// the first byte often enough to be interesting.
fn arbitrary_bytes() -> impl Strategy<Value = Vec<u8>> {
    prop_oneof![
        prop::collection::vec(any::<u8>(), 0..512),
        prop::collection::vec(
            prop::sample::select(b"ilde0123456789:-ab \n".to_vec()),
            0..512
        ),
    ]
}

#[derive(Debug, Clone)]
enum Mutation {
    Flip(Index, u8),
    Set(Index, u8),
    Insert(Index, u8),
    Delete(Index),
    Truncate(Index),
}

fn mutation() -> impl Strategy<Value = Mutation> {
    let interesting = prop_oneof![
        prop::sample::select(b"ilde0123456789:-/.\\\0".to_vec()),
        any::<u8>(),
    ];
    prop_oneof![
        3 => (any::<Index>(), 0u8..8).prop_map(|(i, bit)| Mutation::Flip(i, bit)),
        3 => (any::<Index>(), interesting.clone()).prop_map(|(i, b)| Mutation::Set(i, b)),
        2 => (any::<Index>(), interesting).prop_map(|(i, b)| Mutation::Insert(i, b)),
        2 => any::<Index>().prop_map(Mutation::Delete),
        1 => any::<Index>().prop_map(Mutation::Truncate),
    ]
}

fn mutations() -> impl Strategy<Value = Vec<Mutation>> {
    prop::collection::vec(mutation(), 1..5)
}

fn mutate(mut bytes: Vec<u8>, mutations: &[Mutation]) -> Vec<u8> {
    for m in mutations {
        match m {
            Mutation::Insert(i, b) => {
                let at = i.index(bytes.len() + 1);
                bytes.insert(at, *b);
            }
            _ if bytes.is_empty() => {}
            Mutation::Flip(i, bit) => {
                let at = i.index(bytes.len());
                bytes[at] ^= 1 << bit;
            }
            Mutation::Set(i, b) => {
                let at = i.index(bytes.len());
                bytes[at] = *b;
            }
            Mutation::Delete(i) => {
                bytes.remove(i.index(bytes.len()));
            }
            Mutation::Truncate(i) => bytes.truncate(i.index(bytes.len())),
        }
    }
    bytes
}

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
struct FileSpec {
    path: Vec<Vec<u8>>,
    length: i64,
    attr: Option<Vec<u8>>,
    symlink: Option<Vec<Vec<u8>>>,
}

impl FileSpec {
    /// Whether the torrent makes this a link (whose length then counts as 0).
    fn is_link(&self) -> bool {
        self.symlink.is_some() && self.attr.as_ref().is_some_and(|a| a.contains(&b'l'))
    }
}

#[derive(Debug, Clone)]
struct TorrentSpec {
    name: Vec<u8>,
    /// `None`: a single-file torrent of `length` bytes.
    files: Option<Vec<FileSpec>>,
    length: i64,
    private: bool,
    announce: Option<String>,
    announce_list: Vec<Vec<String>>,
    comment: Option<Vec<u8>>,
    creation_date: Option<i64>,
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

fn torrent_spec() -> impl Strategy<Value = TorrentSpec> {
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
    fn total_size(&self) -> u64 {
        match &self.files {
            None => self.length as u64,
            Some(files) => files
                .iter()
                .filter(|f| !f.is_link())
                .map(|f| f.length as u64)
                .sum(),
        }
    }

    fn num_pieces(&self) -> u64 {
        self.total_size().div_ceil(PIECE_LENGTH as u64)
    }

    fn info(&self) -> Value {
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

    fn encode(&self) -> Vec<u8> {
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

fn magnet() -> impl Strategy<Value = Magnet> {
    let distinct = |s: BTreeSet<String>| s.into_iter().collect::<Vec<_>>();
    (
        any::<[u8; 20]>(),
        prop::option::of(".{1,24}"),
        prop::collection::btree_set(".{1,24}", 0..4).prop_map(distinct),
        prop::collection::btree_set(
            prop_oneof![
                "/ip4/[0-9.]{1,15}/tcp/[0-9]{1,5}(/p2p/[A-Za-z0-9]{1,12})?",
                "[0-9.]{1,15}:[0-9]{1,5}",
                ".{1,16}",
            ],
            0..4,
        )
        .prop_map(distinct),
        prop::option::of(any::<u64>()),
    )
        .prop_map(
            |(hash, display_name, trackers, peers, exact_length)| Magnet {
                info_hash: InfoHash(hash),
                display_name,
                trackers,
                peers,
                exact_length,
            },
        )
}

/// Strings that look enough like magnet links to reach the parameter parsing.
fn magnet_like() -> impl Strategy<Value = String> {
    let param = prop_oneof![
        "xt=urn:btih:[0-9a-fA-F]{38,41}",
        "xt=urn:btih:[A-Za-z2-7]{31,33}",
        "xt=urn:btmh:[0-9a-f]{0,8}",
        "(dn|tr|x\\.pe|ws|kt)=[^&]{0,12}",
        "xl=-?[0-9]{0,22}",
        "[a-z.]{0,4}(=[a-z%0-9A-F+]{0,6})?",
        "%[0-9A-Fa-f]{0,2}",
        ".{0,8}",
    ];
    let scheme = prop_oneof![
        3 => Just("magnet:?"),
        1 => prop::sample::select(vec!["MAGNET:?", "Magnet:?", "magnet:", "", "magnet:?&"]),
    ];
    // Half the links start with a valid info-hash, so that the rest of the link gets parsed.
    let xt = prop::option::of("xt=urn:btih:([0-9a-fA-F]{40}|[A-Za-z2-7]{32})&");
    (scheme, xt, prop::collection::vec(param, 0..8)).prop_map(|(scheme, xt, params)| {
        format!("{scheme}{}{}", xt.unwrap_or_default(), params.join("&"))
    })
}

// ---------------------------------------------------------------------------------------------
// Checks shared by several properties
// ---------------------------------------------------------------------------------------------

/// Decodes `input` strictly and with the `.torrent` options. Neither may panic; every error
/// must point inside the input (or just past its end); every success must describe the whole
/// input and survive a re-encode.
fn check_decode(input: &[u8]) -> Result<(), TestCaseError> {
    match decode(input) {
        Ok(doc) => {
            let root = doc.root();
            prop_assert_eq!(root.span(), 0..input.len());
            let value = root.to_value();
            // Strict decoding only accepts canonical bencode, which the encoder reproduces.
            prop_assert_eq!(encode(&value), input);
            // Whatever strict decoding accepts, the lenient options accept too.
            let lenient = decode_with(input, DecodeOptions::TORRENT_FILE);
            prop_assert!(
                lenient.is_ok(),
                "strict ok but lenient failed: {:?}",
                lenient.err()
            );
        }
        Err(e) => prop_assert!(e.offset <= input.len(), "{e} in {} bytes", input.len()),
    }
    match decode_with(input, DecodeOptions::TORRENT_FILE) {
        Ok(doc) => {
            let root = doc.root();
            let span = root.span();
            prop_assert_eq!(span.start, 0);
            prop_assert!(input[span.end..].iter().all(u8::is_ascii_whitespace));
            prop_assert_eq!(root.raw(), &input[span]);
            let value = root.to_value();
            let canonical = encode(&value);
            let again = decode(&canonical);
            prop_assert!(
                again.is_ok(),
                "re-encoding does not decode: {:?}",
                again.err()
            );
            if let Ok(again) = again {
                prop_assert_eq!(again.root().to_value(), value);
            }
        }
        Err(e) => prop_assert!(e.offset <= input.len(), "{e} in {} bytes", input.len()),
    }
    Ok(())
}

fn check_component(what: &str, c: &str) -> Result<(), TestCaseError> {
    prop_assert!(!c.is_empty(), "{what}: empty component");
    prop_assert!(c != "." && c != "..", "{what}: component {c:?}");
    prop_assert!(
        !c.contains(['/', '\\', '\0']),
        "{what}: component {c:?} holds a separator or NUL"
    );
    Ok(())
}

/// What must hold of every torrent `Torrent::from_bytes` accepts.
fn check_torrent(input: &[u8], t: &Torrent) -> Result<(), TestCaseError> {
    check_component("name", &t.info.name)?;
    prop_assert!(!t.info.files.is_empty());
    let mut real_paths = HashSet::new();
    let mut offset = 0u64;
    for file in &t.info.files {
        prop_assert!(!file.path.is_empty(), "file with an empty path");
        for c in file.components() {
            check_component("file path", c)?;
        }
        if let Some(target) = &file.attr.symlink {
            for c in target.split('/') {
                check_component("symlink target", c)?;
            }
        }
        prop_assert_eq!(file.offset, offset);
        offset += file.length;
        if !file.is_pad() {
            prop_assert!(
                real_paths.insert(file.components().collect::<Vec<_>>()),
                "two files share the path {:?}",
                file.path
            );
        }
    }
    prop_assert_eq!(offset, t.info.total_size);
    prop_assert!(t.info.total_size > 0);
    // No file sits where another file needs a directory.
    for path in &real_paths {
        for len in 1..path.len() {
            prop_assert!(
                !real_paths.contains(&path[..len]),
                "{:?} is a file and a directory of {:?}",
                &path[..len],
                path
            );
        }
    }
    prop_assert_eq!(
        t.info.total_size.div_ceil(t.info.piece_length),
        t.info.num_pieces() as u64
    );

    // The info dictionary is a byte-exact slice of the input, and its hash is the info-hash.
    prop_assert!(
        input
            .windows(t.info_bytes.len())
            .any(|w| w == t.info_bytes.as_slice())
    );
    prop_assert_eq!(t.info_hash, InfoHash::of_info_bytes(&t.info_bytes));
    let standalone = Info::from_bytes(&t.info_bytes);
    prop_assert!(standalone.is_ok(), "info alone: {:?}", standalone.err());
    if let Ok((hash, info)) = standalone {
        prop_assert_eq!(hash, t.info_hash);
        prop_assert_eq!(&info, &t.info);
    }

    // Writing the torrent out and reading it back changes nothing.
    let reread = Torrent::from_bytes(&t.to_bytes());
    prop_assert!(
        reread.is_ok(),
        "to_bytes does not parse: {:?}",
        reread.err()
    );
    if let Ok(reread) = reread {
        prop_assert_eq!(&reread, t);
    }

    // And its magnet link round-trips.
    let magnet = t.magnet();
    let parsed = magnet.to_string().parse::<Magnet>();
    prop_assert!(parsed.is_ok(), "{}: {:?}", magnet, parsed.err());
    if let Ok(parsed) = parsed {
        prop_assert_eq!(parsed, magnet);
    }
    Ok(())
}

fn check_torrent_bytes(input: &[u8]) -> Result<(), TestCaseError> {
    if let Ok(t) = Torrent::from_bytes(input) {
        check_torrent(input, &t)?;
    }
    Ok(())
}

// ---------------------------------------------------------------------------------------------
// Properties
// ---------------------------------------------------------------------------------------------

proptest! {
    #![proptest_config(config())]

    #[test]
    fn bencode_round_trips(v in value()) {
        let encoded = encode(&v);
        let doc = decode(&encoded);
        prop_assert!(doc.is_ok(), "{:?}: {:?}", String::from_utf8_lossy(&encoded), doc.err());
        if let Ok(doc) = doc {
            prop_assert_eq!(doc.root().span(), 0..encoded.len());
            prop_assert_eq!(doc.root().raw(), encoded.as_slice());
            prop_assert_eq!(doc.root().to_value(), v.clone());
        }
        // The `.torrent` options read canonical input the same way, trailing newline or not.
        let mut with_newline = encoded.clone();
        with_newline.extend_from_slice(b"\r\n");
        let lenient = decode_with(&with_newline, DecodeOptions::TORRENT_FILE);
        prop_assert!(lenient.is_ok(), "{:?}", lenient.err());
        if let Ok(doc) = lenient {
            prop_assert_eq!(doc.root().span(), 0..encoded.len());
            prop_assert_eq!(doc.root().to_value(), v);
        }
        // Strict decoding refuses that newline, and says where it is.
        let strict = decode(&with_newline);
        prop_assert_eq!(strict.map(|_| ()).map_err(|e| e.offset), Err(encoded.len()));
    }

    #[test]
    fn bencode_decode_never_panics_on_arbitrary_bytes(input in arbitrary_bytes()) {
        check_decode(&input)?;
    }

    #[test]
    fn bencode_decode_never_panics_on_mutated_encodings(v in value(), muts in mutations()) {
        let input = mutate(encode(&v), &muts);
        check_decode(&input)?;
    }

    #[test]
    fn torrent_from_valid_spec(spec in torrent_spec()) {
        let input = spec.encode();
        let parsed = Torrent::from_bytes(&input);
        if spec.total_size() == 0 {
            prop_assert!(
                matches!(parsed, Err(MetainfoError::EmptyTorrent)),
                "empty torrent: {:?}",
                parsed
            );
            return Ok(());
        }
        prop_assert!(parsed.is_ok(), "valid torrent rejected: {:?}", parsed.err());
        if let Ok(t) = parsed {
            let info = encode(&spec.info());
            prop_assert_eq!(&t.info_bytes, &info);
            prop_assert_eq!(t.info_hash, InfoHash::of_info_bytes(&info));
            prop_assert_eq!(t.info.total_size, spec.total_size());
            prop_assert_eq!(t.info.num_pieces() as u64, spec.num_pieces());
            prop_assert_eq!(t.info.piece_length, PIECE_LENGTH as u64);
            prop_assert_eq!(t.info.private, spec.private);
            prop_assert_eq!(t.info.multi_file, spec.files.is_some());
            prop_assert_eq!(t.info.files.len(), spec.files.as_ref().map_or(1, Vec::len));
            check_torrent(&input, &t)?;
        }
    }

    #[test]
    fn torrent_never_panics_on_arbitrary_bytes(input in arbitrary_bytes()) {
        check_torrent_bytes(&input)?;
    }

    #[test]
    fn torrent_never_panics_on_mutated_torrents(spec in torrent_spec(), muts in mutations()) {
        let input = mutate(spec.encode(), &muts);
        check_torrent_bytes(&input)?;
    }

    #[test]
    fn magnet_parse_never_panics(uri in prop_oneof![any::<String>(), magnet_like()]) {
        // Anything that parses prints as a link that parses back to the same thing.
        if let Ok(m) = uri.parse::<Magnet>() {
            let text = m.to_string();
            let again = text.parse::<Magnet>();
            prop_assert!(again.is_ok(), "{} -> {}: {:?}", uri, text, again.err());
            if let Ok(again) = again {
                prop_assert_eq!(again, m);
            }
        }
    }

    #[test]
    fn magnet_round_trips(m in magnet()) {
        let text = m.to_string();
        let parsed = text.parse::<Magnet>();
        prop_assert!(parsed.is_ok(), "{}: {:?}", text, parsed.err());
        if let Ok(parsed) = parsed {
            prop_assert_eq!(&parsed, &m);
        }
        // The base32 form of the info-hash and an upper-case scheme mean the same link.
        let hex = m.info_hash.to_hex();
        let b32 = text
            .replacen(&hex, &m.info_hash.to_base32(), 1)
            .replacen("magnet:?", "MAGNET:?", 1);
        let parsed = b32.parse::<Magnet>();
        prop_assert!(parsed.is_ok(), "{}: {:?}", b32, parsed.err());
        if let Ok(parsed) = parsed {
            prop_assert_eq!(parsed, m);
        }
    }
}

/// The mutation generator reaches both outcomes: without this, mutations that always broke the
/// input (or never did) would let the "never panics" properties pass vacuously.
#[test]
fn mutated_inputs_are_not_all_rejected() {
    use proptest::strategy::ValueTree;
    use proptest::test_runner::TestRunner;

    let mut runner = TestRunner::deterministic();
    let strategy = (torrent_spec(), mutations());
    let (mut parsed, mut rejected) = (0, 0);
    for _ in 0..200 {
        let (spec, muts) = strategy
            .new_tree(&mut runner)
            .expect("strategy makes values")
            .current();
        match Torrent::from_bytes(&mutate(spec.encode(), &muts)) {
            Ok(_) => parsed += 1,
            Err(_) => rejected += 1,
        }
    }
    assert!(parsed > 0, "no mutated torrent parsed");
    assert!(rejected > 0, "every mutated torrent parsed");
}
