//! Magnet links: any link round-trips through its text form (hex or base32 info-hash, any
//! case of scheme), and parsing never panics on arbitrary or magnet-like strings.

use std::collections::BTreeSet;

use proptest::prelude::*;
use shoal_metainfo::{InfoHash, Magnet};

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

proptest! {
    #![proptest_config(crate::config())]

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
