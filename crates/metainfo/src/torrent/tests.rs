use super::*;
use crate::bencode::{Value, encode};

fn strs(parts: &[&str]) -> Value {
    Value::List(parts.iter().map(|p| Value::from(*p)).collect())
}

fn file(length: i64, path: &[&str]) -> Value {
    Value::dict(vec![("length", Value::Int(length)), ("path", strs(path))])
}

/// A multi-file info dictionary with `pieces` hashes of 16 KiB pieces.
fn multi(files: Vec<Value>, pieces: usize) -> Vec<(&'static str, Value)> {
    vec![
        ("name", "root".into()),
        ("piece length", Value::Int(16384)),
        ("pieces", Value::Bytes(vec![7; pieces * 20])),
        ("files", Value::List(files)),
    ]
}

fn parse_info(info: Vec<(&str, Value)>) -> Result<Torrent, MetainfoError> {
    Torrent::from_bytes(&encode(&Value::dict(vec![("info", Value::dict(info))])))
}

fn err(info: Vec<(&str, Value)>) -> String {
    parse_info(info).expect_err("should be refused").to_string()
}

fn with(
    mut info: Vec<(&'static str, Value)>,
    key: &'static str,
    value: Option<Value>,
) -> Vec<(&'static str, Value)> {
    info.retain(|(k, _)| *k != key);
    if let Some(v) = value {
        info.push((key, v));
    }
    info
}

fn single() -> Vec<(&'static str, Value)> {
    vec![
        ("name", "a.bin".into()),
        ("piece length", Value::Int(16384)),
        ("pieces", Value::Bytes(vec![1; 40])),
        ("length", Value::Int(20000)),
    ]
}

#[test]
fn single_file_geometry() {
    let t = parse_info(single()).unwrap();
    assert_eq!(t.info.name, "a.bin");
    assert_eq!(t.info.total_size, 20000);
    assert_eq!(t.info.num_pieces(), 2);
    assert_eq!(t.info.piece_size(0), Some(16384));
    assert_eq!(t.info.piece_size(1), Some(20000 - 16384));
    assert_eq!(t.info.piece_size(2), None);
    assert_eq!(t.info.piece_hash(1), Some([1; 20]));
    assert_eq!(t.info.files[0].path, "a.bin");
    assert!(!t.info.multi_file && !t.info.private);
}

#[test]
fn name_errors() {
    assert_eq!(
        err(with(single(), "name", None)),
        MetainfoError::InvalidName.to_string()
    );
    assert_eq!(
        err(with(single(), "name", Some("".into()))),
        MetainfoError::InvalidName.to_string()
    );
    assert_eq!(
        err(with(single(), "name", Some(Value::Int(3)))),
        MetainfoError::InvalidName.to_string()
    );
}

#[test]
fn piece_length_errors() {
    assert_eq!(
        err(with(single(), "piece length", None)),
        "info.piece length is missing"
    );
    for bad in [0, -16384, (MAX_PIECE_LENGTH + 1) as i64] {
        let message = err(with(single(), "piece length", Some(Value::Int(bad))));
        assert!(
            message.starts_with(&format!("info.piece length {bad} is invalid")),
            "{message}"
        );
    }
}

#[test]
fn pieces_errors() {
    assert_eq!(
        err(with(single(), "pieces", Some(Value::Bytes(vec![0; 41])))),
        "info.pieces length 41 is not a multiple of 20"
    );
    assert_eq!(
        err(with(single(), "pieces", Some(Value::Bytes(vec![0; 60])))),
        "info.pieces holds 3 hashes but the total size needs 2"
    );
    assert_eq!(
        err(with(single(), "pieces", None)),
        "info.pieces is missing or not a byte string"
    );
    let huge = with(
        single(),
        "length",
        Some(Value::Int(16384 * (MAX_PIECES as i64 + 1))),
    );
    assert_eq!(
        err(huge),
        format!(
            "torrent has {} pieces, more than the limit of {MAX_PIECES}",
            MAX_PIECES + 1
        )
    );
}

#[test]
fn size_errors() {
    assert_eq!(
        err(with(single(), "length", Some(Value::Int(-1)))),
        "info.length is missing, negative or not an integer"
    );
    assert_eq!(
        err(with(single(), "length", Some(Value::Int(0)))),
        "torrent holds no data (total size is 0)"
    );
    assert_eq!(
        err(multi(
            vec![
                file(i64::MAX, &["a"]),
                file(i64::MAX, &["b"]),
                file(2, &["c"])
            ],
            1
        )),
        "total size overflows 64 bits"
    );
    assert_eq!(err(multi(vec![], 1)), "info.files is empty");
    assert_eq!(
        err(multi(vec![file(-5, &["a"])], 1)),
        "info.files[0]: length is missing, negative or not an integer"
    );
    let both = with(single(), "files", Some(Value::List(vec![file(1, &["a"])])));
    assert_eq!(err(both), "info has both 'length' and 'files'");
    let no_path = Value::dict(vec![("length", Value::Int(1))]);
    assert_eq!(
        err(multi(vec![file(1, &["a"]), no_path], 1)),
        "info.files[1]: path is missing"
    );
    let bad_path = Value::dict(vec![
        ("length", Value::Int(1)),
        ("path", Value::List(vec![Value::Int(1)])),
    ]);
    assert_eq!(
        err(multi(vec![bad_path], 1)),
        "info.files[0]: path is not a list of byte strings"
    );
}

#[test]
fn unsafe_paths_are_sanitized_and_unique() {
    let files = vec![
        file(1, &["..", "..", "etc", "passwd"]),
        file(1, &["/abs"]),
        file(1, &["a\0b"]),
        file(1, &["CON"]),
        file(1, &["etc", "passwd"]),
        file(1, &[]),
    ];
    let t = parse_info(multi(files, 1)).unwrap();
    let paths: Vec<&str> = t.info.files.iter().map(|f| f.path.as_str()).collect();
    assert_eq!(
        paths,
        [
            "root/etc/passwd",
            "root/abs",
            "root/a_b",
            "root/CON_",
            "root/etc/passwd.1",
            "root/_"
        ]
    );
    let t = parse_info(with(single(), "name", Some("../../x".into()))).unwrap();
    assert_eq!(t.info.name, "....x");
}

#[test]
fn pad_files_and_offsets() {
    let pad = Value::dict(vec![
        ("attr", "p".into()),
        ("length", Value::Int(16384 - 100)),
    ]);
    let t = parse_info(multi(vec![file(100, &["a"]), pad, file(5, &["b"])], 2)).unwrap();
    let offsets: Vec<u64> = t.info.files.iter().map(|f| f.offset).collect();
    assert_eq!(offsets, [0, 100, 16384]);
    assert!(t.info.files[1].is_pad());
    let data: Vec<&str> = t.info.data_files().map(|f| f.path.as_str()).collect();
    assert_eq!(data, ["root/a", "root/b"]);
}

fn tree_file(length: i64) -> Value {
    Value::dict(vec![(
        "",
        Value::dict(vec![
            ("length", Value::Int(length)),
            ("pieces root", Value::Bytes(vec![0; 32])),
        ]),
    )])
}

fn hybrid(
    v1_files: Vec<Value>,
    tree: Vec<(&str, Value)>,
    pieces: usize,
) -> Vec<(&'static str, Value)> {
    let mut info = multi(v1_files, pieces);
    info.push(("meta version", Value::Int(2)));
    info.push(("file tree", Value::dict(tree)));
    info
}

#[test]
fn hybrid_torrents_are_checked() {
    let pad = |n| {
        Value::dict(vec![
            ("attr", "p".into()),
            ("length", Value::Int(n)),
            ("path", strs(&[".pad", "x"])),
        ])
    };
    let good = hybrid(
        vec![file(100, &["a"]), pad(16284), file(5, &["d", "b"])],
        vec![
            ("a", tree_file(100)),
            ("d", Value::dict(vec![("b", tree_file(5))])),
        ],
        2,
    );
    assert!(parse_info(good).unwrap().info.hybrid);

    let unaligned = hybrid(
        vec![file(100, &["a"]), file(5, &["b"])],
        vec![("a", tree_file(100)), ("b", tree_file(5))],
        1,
    );
    assert!(err(unaligned).contains("v1 file b does not start on a piece boundary"));

    let renamed = hybrid(vec![file(5, &["a"])], vec![("z", tree_file(5))], 1);
    assert!(err(renamed).contains("v1 has a where v2 has z"));
    let resized = hybrid(vec![file(5, &["a"])], vec![("a", tree_file(6))], 1);
    assert!(err(resized).contains("a is 5 bytes in v1 and 6 in v2"));
    let extra = hybrid(
        vec![file(5, &["a"])],
        vec![("a", tree_file(5)), ("b", tree_file(0))],
        1,
    );
    assert!(err(extra).contains("v1 lists 1 files, v2 lists 2"));
    let broken = hybrid(
        vec![file(5, &["a"])],
        vec![("a", Value::dict(vec![("length", Value::Int(5))]))],
        1,
    );
    assert!(err(broken).starts_with("invalid v2 file tree"));
}

#[test]
fn v2_only_is_refused_naming_bep_52() {
    let mut info = with(single(), "pieces", None);
    info.push(("meta version", Value::Int(2)));
    info.push(("file tree", Value::dict(vec![("a.bin", tree_file(20000))])));
    assert!(matches!(parse_info(info), Err(MetainfoError::V2Only)));
    assert!(MetainfoError::V2Only.to_string().contains("BEP 52"));
}

#[test]
fn outer_fields_and_reencoding() {
    let outer = Value::dict(vec![
        ("announce", "http://a/announce".into()),
        (
            "announce-list",
            Value::List(vec![
                strs(&["http://a/announce", "http://b/announce"]),
                strs(&[]),
                strs(&["udp://c:80"]),
            ]),
        ),
        ("comment", " hello ".into()),
        ("created by", "test".into()),
        ("creation date", Value::Int(1_700_000_000)),
        ("url-list", "http://seed/".into()),
        (
            "info",
            Value::dict(with(single(), "private", Some(Value::Int(1)))),
        ),
    ]);
    let bytes = encode(&outer);
    let t = Torrent::from_bytes(&bytes).unwrap();
    assert_eq!(
        t.trackers,
        vec![
            vec![
                "http://a/announce".to_owned(),
                "http://b/announce".to_owned()
            ],
            vec!["udp://c:80".to_owned()]
        ]
    );
    assert_eq!(t.comment.as_deref(), Some("hello"));
    assert_eq!(t.creation_date, Some(1_700_000_000));
    assert_eq!(t.url_list, ["http://seed/"]);
    assert!(t.info.private);
    // Re-encoding keeps the info dictionary byte for byte and everything else by meaning.
    let again = Torrent::from_bytes(&t.to_bytes()).unwrap();
    assert_eq!(again, t);
    let magnet = t.magnet();
    assert_eq!(magnet.trackers.len(), 3);
    assert_eq!(magnet.exact_length, Some(20000));
}

#[test]
fn unsorted_info_keeps_its_bytes_and_hash() {
    // Keys out of order: accepted, and the info-hash is over the bytes as written.
    let mut bytes = b"d4:infod4:name1:x6:lengthi1e12:piece lengthi16384e6:pieces20:".to_vec();
    bytes.extend_from_slice(&[0; 20]);
    bytes.extend_from_slice(b"ee");
    let t = Torrent::from_bytes(&bytes).unwrap();
    assert_eq!(
        t.info_hash,
        InfoHash::of_info_bytes(&bytes[7..bytes.len() - 1])
    );
    assert_eq!(
        Torrent::from_info_bytes(t.info_bytes.clone(), vec![])
            .unwrap()
            .info_hash,
        t.info_hash
    );
}

#[test]
fn top_level_errors() {
    assert!(matches!(
        Torrent::from_bytes(b"i1e"),
        Err(MetainfoError::NotADictionary)
    ));
    assert!(matches!(
        Torrent::from_bytes(b"de"),
        Err(MetainfoError::MissingInfo)
    ));
    assert!(matches!(
        Torrent::from_bytes(b"d4:infoi1ee"),
        Err(MetainfoError::MissingInfo)
    ));
    let e = Torrent::from_bytes(b"d4:infod").unwrap_err().to_string();
    assert_eq!(e, "bencode at byte 8: input ends in the middle of a value");
}

/// A `.torrent` whose `info.files` has `count` entries, entry `i` written by `entry(i, out)`:
/// bytes written directly, since a million `Value`s would be slow to build in a debug test.
fn torrent_with_files(count: usize, mut entry: impl FnMut(usize, &mut Vec<u8>)) -> Vec<u8> {
    let mut out = Vec::with_capacity(count * 32 + 100);
    out.extend_from_slice(b"d4:infod5:filesl");
    for i in 0..count {
        entry(i, &mut out);
    }
    out.extend_from_slice(b"e4:name4:root12:piece lengthi16384e6:pieces20:");
    out.extend_from_slice(&[7; 20]);
    out.extend_from_slice(b"ee");
    out
}

fn empty_dict(_: usize, out: &mut Vec<u8>) {
    out.extend_from_slice(b"de");
}

#[test]
fn file_count_limit_one_past_the_edge() {
    // Empty dictionaries are the cheapest entries (one bencode value each), so the count is
    // checked here and not the decoder's value limit; the count comes before any entry is read.
    let over = Torrent::from_bytes(&torrent_with_files(MAX_FILES + 1, empty_dict));
    match over {
        Err(MetainfoError::TooManyFiles { count, limit }) => {
            assert_eq!((count, limit), (MAX_FILES + 1, MAX_FILES));
        }
        other => panic!(
            "{} files: expected TooManyFiles, got {other:?}",
            MAX_FILES + 1
        ),
    }
    // Exactly MAX_FILES real entries are accepted: the limit is reachable within the
    // decoder's own value limit.
    let at = torrent_with_files(MAX_FILES, |i, out| {
        let name = format!("{i:x}");
        out.extend_from_slice(format!("d6:lengthi1e4:pathl{}:{name}ee", name.len()).as_bytes());
    });
    let pieces = MAX_FILES.div_ceil(16384);
    let at = fix_pieces(at, pieces);
    let t = Torrent::from_bytes(&at).expect("MAX_FILES one-byte files");
    assert_eq!(t.info.files.len(), MAX_FILES);
}

/// Replaces the one placeholder hash `torrent_with_files` writes with `pieces` of them.
fn fix_pieces(bytes: Vec<u8>, pieces: usize) -> Vec<u8> {
    let tail = b"6:pieces20:";
    let at = bytes
        .windows(tail.len())
        .rposition(|w| w == tail)
        .expect("pieces key");
    let mut out = bytes[..at].to_vec();
    out.extend_from_slice(format!("6:pieces{}:", pieces * 20).as_bytes());
    out.extend(std::iter::repeat_n(7u8, pieces * 20));
    out.extend_from_slice(b"ee");
    out
}

#[test]
fn many_files_are_accepted() {
    // One byte each, one 16 KiB piece in all.
    let count = 16384;
    let bytes = torrent_with_files(count, |i, out| {
        let name = i.to_string();
        out.extend_from_slice(format!("d6:lengthi1e4:pathl{}:{name}ee", name.len()).as_bytes());
    });
    let t = Torrent::from_bytes(&bytes).expect("a torrent of 16384 one-byte files");
    assert_eq!(t.info.files.len(), count);
    assert_eq!(t.info.total_size, count as u64);
    assert_eq!(t.info.files[count - 1].path, format!("root/{}", count - 1));
    assert_eq!(t.info.files[count - 1].offset, count as u64 - 1);
}

#[test]
fn many_files_with_one_name_each_get_the_next_free_suffix() {
    // Looking for a free name from `.1` up every time made this quadratic: 20,000 such
    // files (a 480 KB torrent) took minutes, MAX_FILES of them (12 MB) days.
    let count = 100_000;
    let bytes = torrent_with_files(count, |_, out| {
        out.extend_from_slice(b"d6:lengthi1e4:pathl3:dupee");
    });
    let bytes = fix_pieces(bytes, count.div_ceil(16384));
    let t = Torrent::from_bytes(&bytes).expect("files of one name are renamed");
    assert_eq!(t.info.files[0].path, "root/dup");
    assert_eq!(t.info.files[1].path, "root/dup.1");
    assert_eq!(
        t.info.files[count - 1].path,
        format!("root/dup.{}", count - 1)
    );
}

#[test]
fn a_suffix_taken_by_another_file_is_skipped() {
    let files = vec![
        file(1, &["a.1"]),
        file(1, &["a"]),
        file(1, &["a"]),
        file(1, &["a.2"]),
        file(1, &["a"]),
    ];
    let t = parse_info(multi(files, 1)).unwrap();
    let paths: Vec<&str> = t.info.files.iter().map(|f| f.path.as_str()).collect();
    assert_eq!(
        paths,
        ["root/a.1", "root/a", "root/a.2", "root/a.1.2", "root/a.3"]
    );
}

/// A torrent with `count` distinct trackers, each its own tier of `announce-list`.
fn with_trackers(count: usize) -> Vec<u8> {
    let tiers = (0..count)
        .map(|i| strs(&[&format!("http://t{i}/announce")]))
        .collect();
    encode(&Value::dict(vec![
        ("announce-list", Value::List(tiers)),
        ("info", Value::dict(single())),
    ]))
}

#[test]
fn trackers_past_the_limit_are_ignored_one_past_the_edge() {
    let at = Torrent::from_bytes(&with_trackers(MAX_TRACKERS)).unwrap();
    assert_eq!(at.tracker_urls().len(), MAX_TRACKERS);
    let over = Torrent::from_bytes(&with_trackers(MAX_TRACKERS + 1)).unwrap();
    assert_eq!(over.trackers.len(), MAX_TRACKERS);
    assert_eq!(
        over.tracker_urls(),
        at.tracker_urls(),
        "the first ones are kept"
    );
    // So the torrent's magnet link is one that shoal accepts (at most 256 `tr`).
    let magnet = over.magnet().to_string();
    let parsed: Magnet = magnet.parse().expect("the magnet link of a torrent parses");
    assert_eq!(parsed.trackers.len(), MAX_TRACKERS);
}

#[test]
fn a_huge_announce_list_is_cut_at_the_limit() {
    // Each URL was checked against every one kept before it, and again by `tracker_urls`:
    // 20,000 trackers took 5 s in a debug build, 200,000 (a 5 MB torrent) 100 times that.
    let t = Torrent::from_bytes(&with_trackers(200_000)).unwrap();
    assert_eq!(t.tracker_urls().len(), MAX_TRACKERS);
}

#[test]
fn a_torrent_with_long_tracker_urls_gets_a_magnet_link_that_parses() {
    // 256 trackers of 1,000 bytes each: 256 KB of `tr`, four times what a link may hold.
    let tiers = (0..MAX_TRACKERS)
        .map(|i| strs(&[&format!("http://t{i}.example/{}", "a".repeat(980))]))
        .collect();
    let bytes = encode(&Value::dict(vec![
        ("announce-list", Value::List(tiers)),
        ("info", Value::dict(single())),
    ]));
    let t = Torrent::from_bytes(&bytes).unwrap();
    assert_eq!(
        t.tracker_urls().len(),
        MAX_TRACKERS,
        "the torrent keeps them all"
    );
    let mut magnet = t.magnet();
    let kept = magnet.trackers.len();
    assert!((50..64).contains(&kept), "{kept} trackers in the link");
    assert_eq!(
        magnet.trackers[..],
        t.tracker_urls()[..kept],
        "the first ones"
    );
    // Room for a seeder's listen addresses.
    magnet.peers = (0..8)
        .map(|i| format!("/ip6/2001:db8::{i}/tcp/40000/p2p/12D3KooWGzBKhbsU1sGxKpsWMXuEJnBDTMPo2t8NR1aFPX2xAXXX"))
        .collect();
    let link = magnet.to_string();
    assert!(link.len() <= MAX_MAGNET_LEN, "{} bytes", link.len());
    let parsed: Magnet = link.parse().expect("the magnet link of a torrent parses");
    assert_eq!(parsed.trackers.len(), kept);
}
