//! The Pwned Passwords range answer as text: `SUFFIX:COUNT` lines, CRLF-terminated,
//! ascending, optionally padded with random suffixes of count 0 (Pwned Passwords'
//! `Add-Padding: true`), written into one caller-owned buffer without a per-line
//! allocation ([`Passwords::write_range_text`]).
//!
//! Padding: the answer is brought to a random total between
//! [`PADDED_RANGE_MIN_LINES`] and [`PADDED_RANGE_MAX_LINES`] lines (a range that already
//! holds more real lines gets none). The padding hashes are drawn stratified: the 64
//! bits after the prefix of the `n`-th padding hash lie in the `n`-th of `want` equal
//! slices of that space, so they come out distinct and ascending with no sort; the
//! remaining bits are random. A padding hash equal to a real one (probability about
//! 2^-44 per pair even for NTLM) gets new random low bits until it is not.

use crate::format::passwords::Passwords;
use crate::password::{PasswordError, PasswordHashKind, PasswordPrefix};

/// Lines of a padded range answer at least.
pub const PADDED_RANGE_MIN_LINES: usize = 800;
/// Lines a padded range answer is brought up to at most (a range with more real lines
/// is sent whole, unpadded).
pub const PADDED_RANGE_MAX_LINES: usize = 1000;

/// What [`Passwords::write_range_text`] wrote.
#[derive(Copy, Clone, Debug, PartialEq, Eq)]
pub struct RangeTextSummary {
    /// Lines of real hashes (count ≥ 1).
    pub real_lines: usize,
    /// Padding lines (count 0).
    pub padding_lines: usize,
}

/// Bytes of the widest hash (SHA-1).
const MAX_WIDTH: usize = 20;
const HEX_UPPER: &[u8; 16] = b"0123456789ABCDEF";

impl Passwords<'_> {
    /// Appends the range of `prefix` to `out` as Pwned Passwords' range API answers it:
    /// one `SUFFIX:COUNT\r\n` line per hash of `kind` starting with the prefix, the
    /// suffix in upper-case hex (35 digits for SHA-1, 27 for NTLM), ascending.
    ///
    /// With `padding_seed`, lines with random suffixes and a count of 0 are merged in
    /// (in order) until the answer holds between [`PADDED_RANGE_MIN_LINES`] and
    /// [`PADDED_RANGE_MAX_LINES`] lines; no padding suffix equals a real one. The seed
    /// drives the padding only: give a fresh random one per answer (the server takes it
    /// from the operating system).
    ///
    /// On error (a damaged password file) `out` may hold part of the answer.
    ///
    /// ```
    /// # fn demo(index: &breachdex::Index) -> Result<(), breachdex::PasswordError> {
    /// use breachdex::{PasswordHashKind, PasswordPrefix};
    /// if let Some(passwords) = index.passwords() {
    ///     let mut body = Vec::new();
    ///     let prefix = PasswordPrefix::from_hex("5BAA6")?;
    ///     let written = passwords.write_range_text(PasswordHashKind::Sha1, prefix, Some(42), &mut body)?;
    ///     assert!(written.real_lines + written.padding_lines >= 800);
    /// }
    /// # Ok(())
    /// # }
    /// ```
    pub fn write_range_text(
        &self,
        kind: PasswordHashKind,
        prefix: PasswordPrefix,
        padding_seed: Option<u64>,
        out: &mut Vec<u8>,
    ) -> Result<RangeTextSummary, PasswordError> {
        let range = self.range(kind, prefix)?;
        let real_lines = range.len();
        let mut padding = Vec::new();
        if let Some(seed) = padding_seed {
            let mut rng = SplitMix64(seed);
            let spread = (PADDED_RANGE_MAX_LINES - PADDED_RANGE_MIN_LINES + 1) as u64;
            let target = PADDED_RANGE_MIN_LINES + (rng.next() % spread) as usize;
            padding = padding_hashes(kind, prefix, target.saturating_sub(real_lines), &mut rng);
        }
        let line_len = kind.hex_len() - crate::password::PREFIX_HEX_DIGITS + 3 + 4;
        out.reserve((real_lines + padding.len()) * line_len);

        // Collisions with real hashes are resolved before writing, so the merge below
        // only interleaves.
        if !padding.is_empty() {
            let mut rng = SplitMix64(padding_seed.unwrap_or(0) ^ 0x9E37_79B9_7F4A_7C15);
            loop {
                let mut collided = false;
                let mut pads = padding.iter_mut().peekable();
                for entry in self.range(kind, prefix)? {
                    let entry = entry?;
                    let real = entry.hash().as_bytes();
                    while pads.next_if(|p| p[..kind.width()] < *real).is_some() {}
                    if let Some(pad) = pads.next_if(|p| p[..kind.width()] == *real) {
                        reroll_low_bits(pad, kind, &mut rng);
                        collided = true;
                    }
                }
                if !collided {
                    break;
                }
            }
        }

        let width = kind.width();
        let mut pads = padding.iter().peekable();
        for entry in range {
            let entry = entry?;
            let real = entry.hash().as_bytes();
            while let Some(pad) = pads.next_if(|p| p[..width] < *real) {
                push_line(out, &pad[..width], 0);
            }
            push_line(out, real, entry.count());
        }
        for pad in pads {
            push_line(out, &pad[..width], 0);
        }
        Ok(RangeTextSummary { real_lines, padding_lines: padding.len() })
    }
}

/// `want` distinct random hashes of `kind` under `prefix`, ascending.
fn padding_hashes(
    kind: PasswordHashKind,
    prefix: PasswordPrefix,
    want: usize,
    rng: &mut SplitMix64,
) -> Vec<[u8; MAX_WIDTH]> {
    let mut out = Vec::with_capacity(want);
    let slice = (1u128 << 64) / want.max(1) as u128;
    for n in 0..want {
        // The 64 bits after the prefix: a random point of the n-th slice.
        let middle = (n as u128 * slice + u128::from(rng.next()) % slice.max(1)) as u64;
        let top = (u128::from(prefix.value()) << 108) | (u128::from(middle) << 44);
        let mut hash = [0u8; MAX_WIDTH];
        hash[..16].copy_from_slice(&top.to_be_bytes());
        reroll_low_bits(&mut hash, kind, rng);
        out.push(hash);
    }
    out
}

/// New random bits after the first 84 (prefix and slice point) of a padding hash.
fn reroll_low_bits(hash: &mut [u8; MAX_WIDTH], kind: PasswordHashKind, rng: &mut SplitMix64) {
    let low = rng.next().to_be_bytes();
    // Bits 84..128: the low nibble of byte 10 and bytes 11..16.
    hash[10] = (hash[10] & 0xF0) | (low[0] & 0x0F);
    hash[11..16].copy_from_slice(&low[1..6]);
    if kind == PasswordHashKind::Sha1 {
        hash[16..20].copy_from_slice(&rng.next().to_be_bytes()[..4]);
    } else {
        hash[16..20].fill(0);
    }
}

/// Appends `SUFFIX:COUNT\r\n`: the hex digits of `hash` after the 5-digit prefix.
#[inline]
fn push_line(out: &mut Vec<u8>, hash: &[u8], count: u64) {
    // Digit 5 is the low nibble of byte 2; whole bytes follow.
    if let Some((&third, rest)) = hash.get(2..).and_then(<[u8]>::split_first) {
        out.push(HEX_UPPER[usize::from(third & 0x0F)]);
        for &b in rest {
            out.push(HEX_UPPER[usize::from(b >> 4)]);
            out.push(HEX_UPPER[usize::from(b & 0x0F)]);
        }
    }
    out.push(b':');
    push_decimal(out, count);
    out.extend_from_slice(b"\r\n");
}

/// Appends the decimal digits of `n`.
#[inline]
fn push_decimal(out: &mut Vec<u8>, mut n: u64) {
    let mut digits = [0u8; 20];
    let mut at = digits.len();
    loop {
        at -= 1;
        digits[at] = b'0' + (n % 10) as u8;
        n /= 10;
        if n == 0 {
            break;
        }
    }
    out.extend_from_slice(&digits[at..]);
}

/// SplitMix64 (Steele, Lea and Flood): a small, fast generator; the padding needs
/// spread, not secrecy (padding lines are recognisable by their count of 0 anyway).
struct SplitMix64(u64);

impl SplitMix64 {
    #[inline]
    fn next(&mut self) -> u64 {
        self.0 = self.0.wrapping_add(0x9E37_79B9_7F4A_7C15);
        let mut z = self.0;
        z = (z ^ (z >> 30)).wrapping_mul(0xBF58_476D_1CE4_E5B9);
        z = (z ^ (z >> 27)).wrapping_mul(0x94D0_49BB_1331_11EB);
        z ^ (z >> 31)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn decimal_and_hex_lines() {
        let mut out = Vec::new();
        push_decimal(&mut out, 0);
        push_decimal(&mut out, 1_234_567_890);
        push_decimal(&mut out, u64::MAX);
        assert_eq!(out, b"0123456789018446744073709551615");
        let mut line = Vec::new();
        let hash = crate::PasswordHash::sha1_of("password");
        push_line(&mut line, hash.as_bytes(), 3);
        assert_eq!(line, b"1E4C9B93F3F0682250B6CF8331B7EE68FD8:3\r\n");
    }

    #[test]
    fn padding_hashes_are_ascending_distinct_and_under_the_prefix() {
        for kind in PasswordHashKind::ALL {
            for want in [0usize, 1, 2, 799, 1000] {
                let prefix = PasswordPrefix::from_hex("ABCDE").unwrap_or_else(|e| panic!("{e}"));
                let pads = padding_hashes(kind, prefix, want, &mut SplitMix64(want as u64));
                assert_eq!(pads.len(), want);
                for pair in pads.windows(2) {
                    assert!(pair[0][..kind.width()] < pair[1][..kind.width()], "{kind} ascending and distinct");
                }
                for pad in &pads {
                    let hash = crate::PasswordHash::from_bytes(kind, &pad[..kind.width()]).unwrap();
                    assert_eq!(hash.prefix(), prefix);
                    assert!(pad[kind.width()..].iter().all(|b| *b == 0));
                }
            }
        }
    }
}
