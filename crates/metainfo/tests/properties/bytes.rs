//! Byte-level inputs shared by the properties: arbitrary bytes, byte strings, and mutations
//! (bits flipped, bytes set, inserted or deleted, truncation) applied to valid encodings.

use proptest::prelude::*;
use proptest::sample::Index;

pub fn byte_string(max: usize) -> impl Strategy<Value = Vec<u8>> {
    prop_oneof![
        prop::collection::vec(any::<u8>(), 0..max),
        // Bytes that look like bencode, to confuse a decoder that peeks into payloads.
        prop::collection::vec(prop::sample::select(b"ilde0123456789:-".to_vec()), 0..max),
    ]
}

/// Arbitrary bytes, half of them drawn from the bencode alphabet so that decoding gets past
/// the first byte often enough to be interesting.
pub fn arbitrary_bytes() -> impl Strategy<Value = Vec<u8>> {
    prop_oneof![
        prop::collection::vec(any::<u8>(), 0..512),
        prop::collection::vec(
            prop::sample::select(b"ilde0123456789:-ab \n".to_vec()),
            0..512
        ),
    ]
}

#[derive(Debug, Clone)]
pub enum Mutation {
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

pub fn mutations() -> impl Strategy<Value = Vec<Mutation>> {
    prop::collection::vec(mutation(), 1..5)
}

pub fn mutate(mut bytes: Vec<u8>, mutations: &[Mutation]) -> Vec<u8> {
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
