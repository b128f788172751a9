//! SplitMix64 (Steele, Lea and Flood): a small, fast 64-bit generator, and its output
//! function as a mixer. Used where spread is needed, never secrecy: the padding lines of
//! Pwned Passwords ranges and the hash set of the hot-row writer.

/// The generator's increment (2^64 divided by the golden ratio, odd).
const GAMMA: u64 = 0x9E37_79B9_7F4A_7C15;

/// The output function of SplitMix64 applied to `z + GAMMA`: a bijection of `u64` whose
/// every output bit depends on every input bit, in a few cycles.
#[inline]
pub(crate) fn mix(value: u64) -> u64 {
    let mut z = value.wrapping_add(GAMMA);
    z = (z ^ (z >> 30)).wrapping_mul(0xBF58_476D_1CE4_E5B9);
    z = (z ^ (z >> 27)).wrapping_mul(0x94D0_49BB_1331_11EB);
    z ^ (z >> 31)
}

/// The SplitMix64 generator seeded with its state.
pub(crate) struct SplitMix64(pub(crate) u64);

impl SplitMix64 {
    /// The next value of the sequence.
    #[inline]
    pub(crate) fn next(&mut self) -> u64 {
        let out = mix(self.0);
        self.0 = self.0.wrapping_add(GAMMA);
        out
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn generator_gives_the_reference_sequence() {
        // The first outputs of SplitMix64 seeded with 0 (the reference implementation).
        let mut g = SplitMix64(0);
        assert_eq!(g.next(), 0xE220_A839_7B1D_CDAF);
        assert_eq!(g.next(), 0x6E78_9E6A_A1B9_65F4);
        assert_eq!(g.next(), 0x06C4_5D18_8009_454F);
    }
}
