use super::*;
use crate::error::BencodeErrorKind as K;

fn err(input: &[u8]) -> (usize, K) {
    let e = decode(input).expect_err("input should be rejected");
    (e.offset, e.kind)
}

#[test]
fn decodes_every_kind_with_spans() {
    let input = b"d1:ai-42e1:bl3:xyzi0ee1:cdee";
    let doc = decode(input).unwrap();
    let root = doc.root();
    assert_eq!(root.span(), 0..input.len());
    assert_eq!(root.get(b"a").unwrap().as_int(), Some(-42));
    let list = root.get(b"b").unwrap();
    assert_eq!(list.raw(), b"l3:xyzi0ee");
    let items: Vec<_> = list.as_list().unwrap().collect();
    assert_eq!(items[0].as_bytes(), Some(&b"xyz"[..]));
    assert_eq!(items[1].as_int(), Some(0));
    assert_eq!(root.get(b"c").unwrap().raw(), b"de");
    assert!(root.get(b"zz").is_none());
}

#[test]
fn integer_extremes() {
    assert_eq!(
        decode(b"i9223372036854775807e").unwrap().root().as_int(),
        Some(i64::MAX)
    );
    assert_eq!(
        decode(b"i-9223372036854775808e").unwrap().root().as_int(),
        Some(i64::MIN)
    );
    assert_eq!(err(b"i9223372036854775808e").1, K::IntegerOverflow);
    assert_eq!(err(b"i-9223372036854775809e").1, K::IntegerOverflow);
}

#[test]
fn rejects_non_canonical_integers() {
    assert_eq!(err(b"i03e"), (1, K::LeadingZero));
    assert_eq!(err(b"i-03e"), (2, K::LeadingZero));
    assert_eq!(err(b"i-0e"), (0, K::NegativeZero));
    assert_eq!(err(b"ie"), (0, K::EmptyInteger));
    assert_eq!(err(b"i-e"), (0, K::EmptyInteger));
    assert_eq!(err(b"i1x2e"), (2, K::UnexpectedByte(b'x')));
    assert_eq!(err(b"i12"), (3, K::UnexpectedEnd));
}

#[test]
fn rejects_bad_strings() {
    assert_eq!(err(b"5:abc"), (0, K::LengthPastEnd { len: 5 }));
    assert_eq!(err(b"03:abc"), (0, K::LengthLeadingZero));
    assert_eq!(err(b"3abc"), (1, K::UnexpectedByte(b'a')));
    assert_eq!(err(b"99999999999999999999999:a"), (0, K::IntegerOverflow));
    assert_eq!(decode(b"0:").unwrap().root().as_bytes(), Some(&b""[..]));
}

#[test]
fn rejects_bad_dictionaries() {
    assert_eq!(err(b"d1:bi1e1:ai2ee"), (7, K::UnsortedKey));
    assert_eq!(err(b"d1:ai1e1:ai2ee"), (7, K::DuplicateKey));
    assert_eq!(err(b"di1ei2ee"), (1, K::KeyNotString));
    assert_eq!(err(b"d1:ae"), (4, K::MissingValue));
    assert_eq!(err(b"d1:ai1e"), (7, K::UnexpectedEnd));
}

#[test]
fn torrent_options_allow_unsorted_but_not_duplicate_keys() {
    let opts = DecodeOptions::TORRENT_FILE;
    let doc = decode_with(b"d1:bi1e1:ai2ee", opts).unwrap();
    assert_eq!(doc.root().get(b"a").unwrap().as_int(), Some(2));
    let e = decode_with(b"d1:bi1e1:ai2e1:bi3ee", opts).unwrap_err();
    assert_eq!(e.kind, K::DuplicateKey);
    // Non-adjacent duplicate, keys out of order.
    let e = decode_with(b"d1:ci1e1:ai2e1:ci3ee", opts).unwrap_err();
    assert_eq!((e.offset, e.kind), (13, K::DuplicateKey));
}

#[test]
fn trailing_bytes() {
    assert_eq!(err(b"i1ei2e"), (3, K::TrailingBytes { count: 3 }));
    assert_eq!(err(b"i1e\n"), (3, K::TrailingBytes { count: 1 }));
    let opts = DecodeOptions::TORRENT_FILE;
    assert!(decode_with(b"de\r\n", opts).is_ok());
    let e = decode_with(b"de\nx", opts).unwrap_err();
    assert_eq!(e.kind, K::TrailingBytes { count: 2 });
}

#[test]
fn structural_errors() {
    assert_eq!(err(b""), (0, K::UnexpectedEnd));
    assert_eq!(err(b"e"), (0, K::UnexpectedByte(b'e')));
    assert_eq!(err(b"x"), (0, K::UnexpectedByte(b'x')));
    assert_eq!(err(b"l"), (1, K::UnexpectedEnd));
    assert_eq!(err(b"lli1e"), (5, K::UnexpectedEnd));
}

fn nested(depth: usize) -> Vec<u8> {
    let mut v = vec![b'l'; depth];
    v.extend(std::iter::repeat_n(b'e', depth));
    v
}

#[test]
fn depth_limit_is_exact() {
    let limits = DecodeLimits {
        max_depth: 10,
        ..DecodeLimits::default()
    };
    let opts = DecodeOptions {
        limits,
        ..DecodeOptions::default()
    };
    assert!(decode_with(&nested(10), opts).is_ok());
    let e = decode_with(&nested(11), opts).unwrap_err();
    assert_eq!((e.offset, e.kind), (10, K::TooDeep { limit: 10 }));
    // The default limit stops a million-deep input without touching the stack.
    let e = decode(&nested(1_000_000)).unwrap_err();
    assert_eq!(e.kind, K::TooDeep { limit: 100 });
}

#[test]
fn value_and_size_limits_are_exact() {
    let opts = |max_values, max_input| DecodeOptions {
        limits: DecodeLimits {
            max_values,
            max_input,
            max_depth: 100,
        },
        ..DecodeOptions::default()
    };
    // "li1ei2ee" holds three values: the list and two integers.
    assert!(decode_with(b"li1ei2ee", opts(3, 100)).is_ok());
    let e = decode_with(b"li1ei2ee", opts(2, 100)).unwrap_err();
    assert_eq!((e.offset, e.kind), (4, K::TooManyValues { limit: 2 }));
    assert!(decode_with(b"li1ei2ee", opts(10, 8)).is_ok());
    let e = decode_with(b"li1ei2ee", opts(10, 7)).unwrap_err();
    assert_eq!(e.kind, K::TooLarge { len: 8, limit: 7 });
}

#[test]
fn encode_is_canonical_and_round_trips() {
    let mut map = BTreeMap::new();
    map.insert(b"zeta".to_vec(), Value::Int(-7));
    map.insert(
        b"alpha".to_vec(),
        Value::List(vec!["x".into(), Value::Int(0)]),
    );
    let value = Value::Dict(map);
    let bytes = encode(&value);
    assert_eq!(bytes, b"d5:alphal1:xi0ee4:zetai-7ee");
    assert_eq!(decode(&bytes).unwrap().root().to_value(), value);
}

#[test]
fn error_message_names_offset_and_problem() {
    let e = decode(b"d1:bi1e1:ai2ee").unwrap_err();
    assert_eq!(
        e.to_string(),
        "bencode at byte 7: dictionary key is out of sorted order"
    );
}
