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
use crate::splitmix::SplitMix64;

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
        let Some(seed) = padding_seed else {
            let real_lines = range.len();
            out.reserve(real_lines * line_capacity(kind));
            for entry in range {
                let entry = entry?;
                push_line(out, kind, HashKey::of(entry.hash().as_bytes()), entry.count());
            }
            return Ok(RangeTextSummary { real_lines, padding_lines: 0 });
        };

        let mut real = Vec::with_capacity(range.len());
        for entry in range {
            let entry = entry?;
            real.push((HashKey::of(entry.hash().as_bytes()), entry.count()));
        }
        let mut rng = SplitMix64(seed);
        let spread = (PADDED_RANGE_MAX_LINES - PADDED_RANGE_MIN_LINES + 1) as u64;
        let target = PADDED_RANGE_MIN_LINES + (rng.next() % spread) as usize;
        let mut padding = padding_keys(kind, prefix, target.saturating_sub(real.len()), &mut rng);
        // A padding hash equal to a real one gets new low bits; the padding stays
        // ascending (its order is decided by the bits above them, distinct per hash).
        loop {
            let mut collided = false;
            let mut pads = padding.iter_mut().peekable();
            for (key, _) in &real {
                while pads.next_if(|p| **p < *key).is_some() {}
                if let Some(pad) = pads.next_if(|p| **p == *key) {
                    pad.reroll_low_bits(kind, &mut rng);
                    collided = true;
                }
            }
            if !collided {
                break;
            }
        }

        out.reserve((real.len() + padding.len()) * line_capacity(kind));
        let mut pads = padding.iter().peekable();
        for (key, count) in &real {
            while let Some(pad) = pads.next_if(|p| *p < key) {
                push_line(out, kind, *pad, 0);
            }
            push_line(out, kind, *key, *count);
        }
        for pad in pads {
            push_line(out, kind, *pad, 0);
        }
        Ok(RangeTextSummary { real_lines: real.len(), padding_lines: padding.len() })
    }
}

/// A hash as two big-endian integers, ordered as its bytes are: the first 16 bytes and,
/// for SHA-1, the last 4 (0 for NTLM).
#[derive(Copy, Clone, Debug, PartialEq, Eq, PartialOrd, Ord)]
struct HashKey {
    high: u128,
    low: u32,
}

impl HashKey {
    /// From a hash's bytes (16 or 20).
    fn of(hash: &[u8]) -> HashKey {
        let mut high = [0u8; 16];
        let mut low = [0u8; 4];
        for (d, s) in high.iter_mut().chain(low.iter_mut()).zip(hash) {
            *d = *s;
        }
        HashKey { high: u128::from_be_bytes(high), low: u32::from_be_bytes(low) }
    }

    /// New random bits after the first 84 (the prefix and the slice point).
    fn reroll_low_bits(&mut self, kind: PasswordHashKind, rng: &mut SplitMix64) {
        const LOW_44: u128 = (1 << 44) - 1;
        self.high = (self.high & !LOW_44) | (u128::from(rng.next()) & LOW_44);
        self.low = if kind == PasswordHashKind::Sha1 { rng.next() as u32 } else { 0 };
    }
}

/// `want` distinct random hashes of `kind` under `prefix`, ascending: the 64 bits after
/// the prefix of the `n`-th lie in the `n`-th of `want` equal slices of that space.
fn padding_keys(kind: PasswordHashKind, prefix: PasswordPrefix, want: usize, rng: &mut SplitMix64) -> Vec<HashKey> {
    let mut out = Vec::with_capacity(want);
    // The slices are `u64::MAX / want` wide (the last few values of the space unused).
    let slice = u64::MAX / want.max(1) as u64;
    for n in 0..want as u64 {
        // A random point of the slice: the high half of rng × slice, no division.
        let offset = ((u128::from(rng.next()) * u128::from(slice)) >> 64) as u64;
        let middle = n * slice + offset;
        let mut key = HashKey { high: (u128::from(prefix.value()) << 108) | (u128::from(middle) << 44), low: 0 };
        key.reroll_low_bits(kind, rng);
        out.push(key);
    }
    out
}

/// Longest line: 35 suffix digits, `:`, 20 count digits, CRLF.
const LINE_MAX: usize = 64;

/// Bytes reserved per line: the longest suffix, `:`, a count of up to 8 digits, CRLF.
fn line_capacity(kind: PasswordHashKind) -> usize {
    kind.hex_len() - crate::password::PREFIX_HEX_DIGITS + 11
}

/// The two upper-case hex digits of every byte.
const HEX_PAIRS: [[u8; 2]; 256] = {
    let mut pairs = [[0u8; 2]; 256];
    let mut b = 0;
    while b < 256 {
        pairs[b] = [HEX_UPPER[b >> 4], HEX_UPPER[b & 0xF]];
        b += 1;
    }
    pairs
};

/// Appends `SUFFIX:COUNT\r\n`: the hex digits of the hash after the 5-digit prefix.
/// The line is written in place in `out`'s spare room (grown by [`LINE_MAX`] zeroes,
/// then cut to the line), so no call copies it.
#[inline]
fn push_line(out: &mut Vec<u8>, kind: PasswordHashKind, key: HashKey, count: u64) {
    let start = out.len();
    out.resize(start + LINE_MAX, 0);
    let written = match out.get_mut(start..).and_then(|rest| <&mut [u8; LINE_MAX]>::try_from(rest).ok()) {
        Some(line) => fill_line(line, kind, key, count),
        None => 0,
    };
    out.truncate(start + written);
}

/// Writes one line into `line`; returns its length.
#[inline]
fn fill_line(line: &mut [u8; LINE_MAX], kind: PasswordHashKind, key: HashKey, count: u64) -> usize {
    let bytes = key.high.to_be_bytes();
    // Digit 5 is the low nibble of byte 2; whole bytes follow.
    line[0] = HEX_UPPER[usize::from(bytes[2] & 0xF)];
    for i in 0..13 {
        let [hi, lo] = HEX_PAIRS[usize::from(bytes[3 + i])];
        line[1 + 2 * i] = hi;
        line[2 + 2 * i] = lo;
    }
    let mut at = 27;
    if kind == PasswordHashKind::Sha1 {
        for (i, b) in key.low.to_be_bytes().into_iter().enumerate() {
            let [hi, lo] = HEX_PAIRS[usize::from(b)];
            line[27 + 2 * i] = hi;
            line[28 + 2 * i] = lo;
        }
        at = 35;
    }
    line[at] = b':';
    at += 1;
    let digits = decimal_digits(count);
    if let Some(slots) = line.get_mut(at..at + digits) {
        let mut n = count;
        for slot in slots.iter_mut().rev() {
            *slot = b'0' + (n % 10) as u8;
            n /= 10;
        }
    }
    at += digits;
    if let Some(end) = line.get_mut(at..at + 2) {
        end.copy_from_slice(b"\r\n");
    }
    at + 2
}

/// Decimal digits of `n` (1 for 0).
#[inline]
fn decimal_digits(mut n: u64) -> usize {
    let mut digits = 1;
    while n >= 10 {
        n /= 10;
        digits += 1;
    }
    digits
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::PasswordHash;

    #[test]
    fn decimal_and_hex_lines() {
        let mut line = Vec::new();
        let zero = HashKey { high: 0, low: 0 };
        for (count, text) in [(0, "0"), (9, "9"), (10, "10"), (1_234_567_890, "1234567890")] {
            push_line(&mut line, PasswordHashKind::Ntlm, zero, count);
            assert_eq!(line, format!("{}:{text}\r\n", "0".repeat(27)).as_bytes());
            line.clear();
        }
        push_line(&mut line, PasswordHashKind::Sha1, zero, u64::MAX);
        assert_eq!(line, format!("{}:{}\r\n", "0".repeat(35), u64::MAX).as_bytes());
        assert!(line.len() <= LINE_MAX);
        line.clear();
        let sha1 = PasswordHash::sha1_of("password");
        push_line(&mut line, PasswordHashKind::Sha1, HashKey::of(sha1.as_bytes()), 3);
        assert_eq!(line, b"1E4C9B93F3F0682250B6CF8331B7EE68FD8:3\r\n");
        line.clear();
        let ntlm = PasswordHash::ntlm_of("password");
        push_line(&mut line, PasswordHashKind::Ntlm, HashKey::of(ntlm.as_bytes()), 0);
        assert_eq!(line, b"7EAEE8FB117AD06BDD830B7586C:0\r\n");
    }

    #[test]
    fn keys_order_as_bytes_do() {
        let hashes: Vec<PasswordHash> = (0..200).map(|i| PasswordHash::sha1_of(&i.to_string())).collect();
        for a in &hashes {
            for b in &hashes[..20] {
                assert_eq!(HashKey::of(a.as_bytes()).cmp(&HashKey::of(b.as_bytes())), a.as_bytes().cmp(b.as_bytes()));
            }
        }
    }

    #[test]
    fn padding_keys_are_ascending_distinct_and_under_the_prefix() {
        for kind in PasswordHashKind::ALL {
            for want in [0usize, 1, 2, 799, 1000] {
                let prefix = PasswordPrefix::from_hex("ABCDE").unwrap_or_else(|e| panic!("{e}"));
                let pads = padding_keys(kind, prefix, want, &mut SplitMix64(want as u64));
                assert_eq!(pads.len(), want);
                assert!(pads.windows(2).all(|pair| pair[0] < pair[1]), "{kind} ascending and distinct");
                for pad in &pads {
                    let mut bytes = pad.high.to_be_bytes().to_vec();
                    bytes.extend_from_slice(&pad.low.to_be_bytes()[..kind.width() - 16]);
                    let hash = PasswordHash::from_bytes(kind, &bytes).unwrap();
                    assert_eq!(hash.prefix(), prefix);
                    if kind == PasswordHashKind::Ntlm {
                        assert_eq!(pad.low, 0);
                    }
                }
            }
        }
    }
}
