//! The set of verified pieces.

/// A fixed-size set of piece indices, stored as BitTorrent stores a bitfield: piece 0 is the
/// high bit of byte 0, spare bits at the end are zero. [`PieceSet::as_bytes`] is therefore
/// exactly what a peer protocol's bitfield message carries.
#[derive(Clone, PartialEq, Eq)]
pub struct PieceSet {
    bytes: Vec<u8>,
    len: u32,
}

impl PieceSet {
    /// An empty set over `len` pieces.
    pub fn new(len: u32) -> Self {
        Self {
            bytes: vec![0; len.div_ceil(8) as usize],
            len,
        }
    }

    /// A set holding all `len` pieces.
    pub fn full(len: u32) -> Self {
        let mut set = Self::new(len);
        for piece in 0..len {
            set.insert(piece);
        }
        set
    }

    /// A set from bitfield bytes; `None` if the length is wrong or a spare bit is set.
    pub fn from_bytes(bytes: &[u8], len: u32) -> Option<Self> {
        if bytes.len() != len.div_ceil(8) as usize {
            return None;
        }
        let spare = (bytes.len() * 8) as u64 - u64::from(len);
        if let Some(last) = bytes.last() {
            if spare > 0 && last & ((1u8 << spare) - 1) != 0 {
                return None;
            }
        }
        Some(Self {
            bytes: bytes.to_vec(),
            len,
        })
    }

    pub fn as_bytes(&self) -> &[u8] {
        &self.bytes
    }

    /// Number of pieces the set ranges over (not the number it holds: see [`PieceSet::count`]).
    pub fn len(&self) -> u32 {
        self.len
    }

    pub fn is_empty(&self) -> bool {
        self.len == 0
    }

    pub fn contains(&self, piece: u32) -> bool {
        piece < self.len && self.bytes[(piece / 8) as usize] & Self::mask(piece) != 0
    }

    /// Adds `piece`; returns whether it was newly added (`false` if present or out of range).
    pub fn insert(&mut self, piece: u32) -> bool {
        if piece >= self.len || self.contains(piece) {
            return false;
        }
        self.bytes[(piece / 8) as usize] |= Self::mask(piece);
        true
    }

    /// Removes `piece`; returns whether it was present.
    pub fn remove(&mut self, piece: u32) -> bool {
        if !self.contains(piece) {
            return false;
        }
        self.bytes[(piece / 8) as usize] &= !Self::mask(piece);
        true
    }

    /// Number of pieces in the set.
    pub fn count(&self) -> u32 {
        self.bytes.iter().map(|b| b.count_ones()).sum()
    }

    pub fn is_full(&self) -> bool {
        self.count() == self.len
    }

    /// The pieces in the set, in increasing order.
    pub fn iter(&self) -> impl Iterator<Item = u32> + '_ {
        (0..self.len).filter(|&piece| self.contains(piece))
    }

    /// Adds every piece of `other` (which must range over as many pieces).
    pub fn union_with(&mut self, other: &PieceSet) {
        for (a, b) in self.bytes.iter_mut().zip(&other.bytes) {
            *a |= b;
        }
    }

    fn mask(piece: u32) -> u8 {
        0x80 >> (piece % 8)
    }
}

impl std::fmt::Debug for PieceSet {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "PieceSet({}/{})", self.count(), self.len)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn bit_order_and_spare_bits() {
        let mut set = PieceSet::new(10);
        assert!(set.insert(0));
        assert!(set.insert(9));
        assert!(!set.insert(9));
        assert!(!set.insert(10));
        assert_eq!(set.as_bytes(), &[0x80, 0x40]);
        assert_eq!(set.count(), 2);
        assert_eq!(set.iter().collect::<Vec<_>>(), [0, 9]);
        assert_eq!(PieceSet::from_bytes(&[0x80, 0x40], 10), Some(set.clone()));
        assert_eq!(
            PieceSet::from_bytes(&[0x80, 0x20], 10),
            None,
            "spare bit set"
        );
        assert_eq!(PieceSet::from_bytes(&[0x80], 10), None, "too short");
        assert_eq!(PieceSet::from_bytes(&[0x80, 0, 0], 10), None, "too long");
        assert!(set.remove(0));
        assert!(!set.remove(0));
        assert!(PieceSet::full(10).is_full());
        assert_eq!(PieceSet::full(16).as_bytes(), &[0xff, 0xff]);
    }
}
