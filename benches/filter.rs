//! The key filter of incremental updates (`keys.filter`, docs/FORMAT.md §10.4): the
//! hash of a key (once per query), and one probe of a filter, for keys present and
//! absent, at three sizes: 125,000 keys (a small segment), 1M and 8M keys (a union
//! filter of several segments: 1.5 MB and 12 MB, the last beyond most L2 and some L3
//! caches). Probes cycle through 65,536 precomputed hashes in random order, so
//! consecutive probes touch unrelated blocks as queries do.
//!
//! Baseline, in the same run: a binary search of the probe's hash among the present
//! keys' hashes, sorted (`Vec<u64>::binary_search`, 8 bytes per key): what a lookup in
//! a segment's sorted key map costs at least, which a filter miss saves.
//!
//! Run: `cargo bench --bench filter`.

use breachdex::IdentifierKind;
use breachdex::internals::filter::{self, FilterBuilder, FilterReader};
use breachdex::internals::{Bytes, FORMAT_VERSION, FileView};
use criterion::{Criterion, Throughput, criterion_group, criterion_main};
use std::hint::black_box;

const SEED: u64 = 0x0123_4567_89ab_cdef;
const PROBES: usize = 1 << 16;

fn email(i: u64) -> String {
    format!("user.{i}@example-{}.org", i % 1000)
}

/// A written and reopened filter of `keys` e-mail keys.
fn filter_of(keys: u64) -> FilterReader {
    let mut builder = FilterBuilder::new(keys, 0, SEED);
    for i in 0..keys {
        builder.insert(IdentifierKind::Email, filter::hash(IdentifierKind::Email, email(i).as_bytes(), SEED));
    }
    let dir = tempfile::tempdir().expect("temp dir");
    let path = dir.path().join(filter::SEGMENT_FILE_NAME);
    builder.write(&path, filter::SEGMENT_KIND).expect("write the filter");
    let bytes = Bytes::from_vec(std::fs::read(&path).expect("read the filter"));
    let view =
        FileView::parse_version(filter::SEGMENT_FILE_NAME, bytes, filter::SEGMENT_KIND, FORMAT_VERSION).expect("frame");
    FilterReader::new(view, SEED).expect("open the filter")
}

/// `PROBES` hashes of keys `i` for `i` in `range`, in a scrambled order.
fn hashes(range: std::ops::Range<u64>) -> Vec<u64> {
    let span = range.end - range.start;
    (0..PROBES as u64)
        .map(|j| {
            let i = range.start + (j.wrapping_mul(0x9e37_79b9_7f4a_7c15) >> 11) % span;
            filter::hash(IdentifierKind::Email, email(i).as_bytes(), SEED)
        })
        .collect()
}

fn bench(c: &mut Criterion) {
    let mut group = c.benchmark_group("filter");
    group.throughput(Throughput::Elements(1));
    let key = email(123_456);
    group.bench_function("hash (27-byte e-mail)", |b| {
        b.iter(|| filter::hash(IdentifierKind::Email, black_box(key.as_bytes()), SEED))
    });
    for keys in [125_000u64, 1_000_000, 8_000_000] {
        let reader = filter_of(keys);
        let present = hashes(0..keys);
        let absent = hashes(keys..keys * 2);
        for (what, probes) in [("present", &present), ("absent", &absent)] {
            let mut i = 0usize;
            group.bench_function(format!("probe {what}, {keys} keys"), |b| {
                b.iter(|| {
                    i = (i + 1) & (PROBES - 1);
                    reader.may_contain(IdentifierKind::Email, black_box(probes[i]))
                })
            });
        }
        let mut sorted: Vec<u64> =
            (0..keys).map(|i| filter::hash(IdentifierKind::Email, email(i).as_bytes(), SEED)).collect();
        sorted.sort_unstable();
        let mut i = 0usize;
        group.bench_function(format!("baseline: sorted-hash binary search, absent, {keys} keys"), |b| {
            b.iter(|| {
                i = (i + 1) & (PROBES - 1);
                sorted.binary_search(&black_box(absent[i])).is_ok()
            })
        });
        drop(sorted);
        let positives = absent.iter().filter(|&&h| reader.may_contain(IdentifierKind::Email, h)).count();
        eprintln!(
            "{keys} keys, {} blocks: {:.1} bits per key, {:.3}% false positives over {PROBES} absent keys",
            reader.blocks(IdentifierKind::Email),
            512.0 * reader.blocks(IdentifierKind::Email) as f64 / keys as f64,
            100.0 * positives as f64 / PROBES as f64
        );
    }
    group.finish();
}

criterion_group!(benches, bench);
criterion_main!(benches);
