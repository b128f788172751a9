//! Any bytes as an `fst` map (SPEC §9): `breachdex::internals::fst_safe` lookups, walks
//! run together (`walk_interleaved`, with the lone lookups' answers and errors) and full
//! streams return values or errors, never a panic, a hang or an out-of-bounds read; on
//! valid maps they agree with the `fst` crate.
//!
//! Input layout: `[op, key_len, key…, rest…]` (`key` is cut short if the input is).
//! - `op % 3 == 0`: `rest` is the whole FST;
//! - `op % 3 == 1`: `rest` is the node area: it is framed as a version-3 FST whose root
//!   is its last byte and whose declared key count is `op >> 2` (so every input gets
//!   past the trailer check into the node decoder);
//! - `op % 3 == 2`: `rest` split at `\n` is a key set: a valid map is built from it
//!   (values from the keys' bytes), then `key` and every key are looked up and the map
//!   streamed, and the answers must equal `fst::Map`'s.

#![no_main]

use breachdex::internals::fst_safe::{FstMeta, get, walk_interleaved};
use libfuzzer_sys::fuzz_target;

fn exercise(fst: &[u8], key: &[u8]) {
    let _ = get(fst, key);
    let Ok(meta) = FstMeta::parse(fst) else { return };
    let alone = [meta.get(fst, key), meta.get(fst, b""), meta.get(fst, key.get(..key.len() / 2).unwrap_or_default())];
    // The same lookups walked together: the same answers and errors.
    let mut walks =
        [meta.walk(fst, key), meta.walk(fst, b""), meta.walk(fst, key.get(..key.len() / 2).unwrap_or_default())];
    walk_interleaved(&mut walks);
    assert_eq!(walks.map(|w| w.answer()), alone.map(Some));
    // Bounded by the declared key count (at most 63 or the fst's own count in mode 0,
    // which a small input cannot make large without making the trailer inconsistent).
    let mut stream = meta.stream(fst);
    let mut keys = 0u64;
    while let Ok(Some(_)) = stream.next() {
        keys += 1;
        if keys > 1 << 20 {
            break;
        }
    }
}

fn differential(rest: &[u8], key: &[u8]) {
    let mut keys: Vec<&[u8]> = rest.split(|&b| b == b'\n').collect();
    keys.sort();
    keys.dedup();
    let value = |k: &[u8]| k.iter().fold(k.len() as u64, |v, &b| v.rotate_left(9) ^ u64::from(b).wrapping_mul(0x9e37));
    let mut builder = fst::MapBuilder::memory();
    for k in &keys {
        builder.insert(k, value(k)).unwrap();
    }
    let bytes = builder.into_inner().unwrap();
    let map = fst::Map::new(bytes.clone()).unwrap();
    let meta = FstMeta::parse(&bytes).expect("a valid FST parses");
    assert_eq!(meta.get(&bytes, key).unwrap(), map.get(key), "{key:?}");
    for k in &keys {
        assert_eq!(meta.get(&bytes, k).unwrap(), Some(value(k)), "{k:?}");
    }
    let mut stream = meta.stream(&bytes);
    let mut n = 0;
    while let Some((k, v)) = stream.next().unwrap() {
        assert_eq!((k, v), (keys[n], value(keys[n])));
        n += 1;
    }
    assert_eq!(n, keys.len());
}

fuzz_target!(|data: &[u8]| {
    let [op, key_len, tail @ ..] = data else { return };
    let (key, rest) = tail.split_at((*key_len as usize).min(tail.len()));
    match op % 3 {
        0 => exercise(rest, key),
        1 => {
            let mut fst = Vec::with_capacity(rest.len() + 37);
            fst.extend_from_slice(&3u64.to_le_bytes());
            fst.extend_from_slice(&0u64.to_le_bytes());
            fst.extend_from_slice(rest);
            if rest.is_empty() {
                fst.push(0);
            }
            let root = fst.len() as u64 - 1;
            fst.extend_from_slice(&u64::from(op >> 2).to_le_bytes());
            fst.extend_from_slice(&root.to_le_bytes());
            fst.extend_from_slice(&[0; 4]);
            exercise(&fst, key);
        }
        _ => differential(rest, key),
    }
});
