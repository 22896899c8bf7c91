//! A fixed-length set of piece indexes, stored as BitTorrent's bitfield (high bit first).

/// Which pieces a peer has. Its length is fixed at creation; spare bits in the last byte are
/// always zero (a decoded bitfield with spare bits set is rejected by validation). It has no
/// serde impls on purpose: the wire format (`repr.rs`) builds it through [`Bitfield::from_bytes`],
/// which keeps the byte count consistent with `len`.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub struct Bitfield {
    bits: Vec<u8>,
    len: u32,
}

impl Bitfield {
    /// An empty set over `len` pieces.
    pub fn new(len: u32) -> Self {
        Self {
            bits: vec![0; (len as usize).div_ceil(8)],
            len,
        }
    }

    /// The full set over `len` pieces.
    pub fn full(len: u32) -> Self {
        let mut field = Self::new(len);
        field.bits.fill(0xff);
        field.clear_spare_bits();
        field
    }

    /// From BitTorrent's byte form; `None` if the byte count does not fit `len`.
    pub fn from_bytes(bytes: Vec<u8>, len: u32) -> Option<Self> {
        (bytes.len() == (len as usize).div_ceil(8)).then_some(Self { bits: bytes, len })
    }

    pub fn as_bytes(&self) -> &[u8] {
        &self.bits
    }

    /// Number of pieces the set ranges over.
    pub fn len(&self) -> u32 {
        self.len
    }

    pub fn is_empty(&self) -> bool {
        self.len == 0
    }

    pub fn get(&self, index: u32) -> bool {
        index < self.len && self.bits[(index / 8) as usize] & (0x80 >> (index % 8)) != 0
    }

    /// Adds or removes `index`; returns whether it changed anything. Out of range does nothing.
    pub fn set(&mut self, index: u32, value: bool) -> bool {
        if index >= self.len || self.get(index) == value {
            return false;
        }
        self.bits[(index / 8) as usize] ^= 0x80 >> (index % 8);
        true
    }

    /// How many pieces are in the set.
    pub fn count(&self) -> u32 {
        self.bits.iter().map(|b| b.count_ones()).sum()
    }

    /// Whether every piece is in the set. Stops at the first missing byte, so it is cheap for
    /// the usual incomplete set (the engine asks on every Have).
    pub fn is_full(&self) -> bool {
        let whole = (self.len / 8) as usize;
        let rest = self.len % 8;
        let (bytes, last) = self.bits.split_at(whole.min(self.bits.len()));
        bytes.iter().all(|&b| b == 0xff) && (rest == 0 || last.first() == Some(&!(0xff_u8 >> rest)))
    }

    /// Whether any bit past `len` is set (a malformed bitfield from a peer).
    pub fn has_spare_bits(&self) -> bool {
        let used = self.len % 8;
        used != 0 && self.bits.last().is_some_and(|b| b & (0xff >> used) != 0)
    }

    /// The pieces in the set, in increasing order.
    pub fn ones(&self) -> impl Iterator<Item = u32> + '_ {
        (0..self.len).filter(|&i| self.get(i))
    }

    fn clear_spare_bits(&mut self) {
        let used = self.len % 8;
        if let (Some(last), true) = (self.bits.last_mut(), used != 0) {
            *last &= !(0xff >> used);
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn set_get_count() {
        let mut b = Bitfield::new(10);
        assert_eq!(b.as_bytes().len(), 2);
        assert!(b.set(0, true) && b.set(9, true));
        assert!(!b.set(9, true));
        assert!(!b.set(10, true));
        assert_eq!(b.as_bytes(), &[0x80, 0x40]);
        assert_eq!(b.count(), 2);
        assert_eq!(b.ones().collect::<Vec<_>>(), [0, 9]);
        assert!(b.set(0, false));
        assert!(!b.get(0) && b.get(9) && !b.get(100));
    }

    #[test]
    fn full_has_no_spare_bits() {
        let b = Bitfield::full(10);
        assert_eq!(b.as_bytes(), &[0xff, 0xc0]);
        assert!(b.is_full() && !b.has_spare_bits());
        let bad = Bitfield::from_bytes(vec![0xff, 0xe0], 10).unwrap();
        assert!(bad.has_spare_bits());
        assert!(Bitfield::from_bytes(vec![0; 3], 10).is_none());
        assert!(Bitfield::full(16).is_full());
        assert!(Bitfield::new(0).is_full());
        let mut almost = Bitfield::full(10);
        almost.set(9, false);
        assert!(!almost.is_full());
        almost.set(0, false);
        almost.set(9, true);
        assert!(!almost.is_full());
        assert!(!bad.is_full(), "a spare bit is not a piece");
    }
}
