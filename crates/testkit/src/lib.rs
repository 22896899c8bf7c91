//! shoal-testkit: what shoal's tests and benchmarks share, so no crate keeps its own copy.
//! A dev-dependency only.

/// `len` deterministic pseudo-random bytes (xorshift64*), so a failing test reproduces from its
/// seed. Any seed works, 0 included.
pub fn pseudo_random(len: usize, seed: u64) -> Vec<u8> {
    let mut state = seed | 1;
    let mut out = Vec::with_capacity(len + 8);
    while out.len() < len {
        state ^= state >> 12;
        state ^= state << 25;
        state ^= state >> 27;
        out.extend_from_slice(&state.wrapping_mul(0x2545_f491_4f6c_dd1d).to_le_bytes());
    }
    out.truncate(len);
    out
}

#[cfg(test)]
mod tests {
    use super::pseudo_random;

    #[test]
    fn deterministic_per_seed_and_not_constant() {
        assert_eq!(pseudo_random(1000, 7), pseudo_random(1000, 7));
        assert_ne!(pseudo_random(1000, 7), pseudo_random(1000, 8));
        let zero = pseudo_random(4096, 0);
        assert_eq!(zero.len(), 4096);
        assert!(zero.iter().any(|&b| b != zero[0]), "seed 0 still varies");
        assert_eq!(pseudo_random(13, 1), pseudo_random(16, 1)[..13]);
    }
}
