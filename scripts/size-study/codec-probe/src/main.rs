//! Compresses every block file of a directory (written by `../v1_blocks.py`) with zstd
//! (a prepared dictionary, the given level) and with `lz4_flex`, prints the total sizes
//! and compression speeds, then the time to decompress one block (every 7th block, five
//! rounds): median, p90 and p99 in nanoseconds, and the time to prepare the decoder
//! dictionary.
//!
//! Usage: `codec-probe BLOCK_DIR DICT_FILE LEVEL` (the dictionary from `zstd --train`).

use std::time::Instant;
fn main() {
    let args: Vec<String> = std::env::args().collect();
    assert!(args.len() == 4, "usage: codec-probe BLOCK_DIR DICT_FILE LEVEL");
    let dir = &args[1];
    let dict = std::fs::read(&args[2]).unwrap();
    let level: i32 = args[3].parse().unwrap();
    let mut names: Vec<_> = std::fs::read_dir(dir).unwrap().map(|e| e.unwrap().path()).collect();
    names.sort();
    let blocks: Vec<Vec<u8>> = names.iter().map(|p| std::fs::read(p).unwrap()).collect();
    let t = Instant::now();
    let cdict = zstd::dict::EncoderDictionary::copy(&dict, level);
    let mut comp = zstd::bulk::Compressor::with_prepared_dictionary(&cdict).unwrap();
    let z: Vec<Vec<u8>> = blocks.iter().map(|b| comp.compress(b).unwrap()).collect();
    let ct = t.elapsed();
    let t = Instant::now();
    let l: Vec<Vec<u8>> = blocks.iter().map(|b| lz4_flex::block::compress(b)).collect();
    let lt = t.elapsed();
    let raw: usize = blocks.iter().map(Vec::len).sum();
    let zs: usize = z.iter().map(Vec::len).sum();
    let ls: usize = l.iter().map(Vec::len).sum();
    println!(
        "blocks {} raw {raw} zstd {zs} ({:.1} MB/s compress) lz4_flex {ls} ({:.1} MB/s)",
        blocks.len(),
        raw as f64 / ct.as_secs_f64() / 1e6,
        raw as f64 / lt.as_secs_f64() / 1e6
    );
    let ddict = zstd::dict::DecoderDictionary::copy(&dict);
    let mut dec = zstd::bulk::Decompressor::with_prepared_dictionary(&ddict).unwrap();
    let mut buf = vec![0u8; 4 << 20];
    // Per-block decompression time, sampled over every 7th block, 5 rounds.
    let mut zt = Vec::new();
    let mut lzt = Vec::new();
    for round in 0..5 {
        for i in (round..blocks.len()).step_by(7) {
            let t = Instant::now();
            let n = dec.decompress_to_buffer(&z[i], &mut buf[..blocks[i].len()]).unwrap();
            zt.push(t.elapsed().as_nanos() as f64);
            assert_eq!(n, blocks[i].len());
            let t = Instant::now();
            let n = lz4_flex::block::decompress_into(&l[i], &mut buf[..blocks[i].len()]).unwrap();
            lzt.push(t.elapsed().as_nanos() as f64);
            assert_eq!(n, blocks[i].len());
        }
    }
    let med = |v: &mut Vec<f64>| {
        v.sort_by(|a, b| a.partial_cmp(b).unwrap());
        (v[v.len() / 2], v[v.len() * 9 / 10], v[v.len() * 99 / 100])
    };
    let t = Instant::now();
    let _d = zstd::dict::DecoderDictionary::copy(&dict);
    let prep = t.elapsed();
    println!(
        "zstd decompress per block ns median/p90/p99 {:?}; lz4_flex {:?}; ddict prepare {:?}",
        med(&mut zt),
        med(&mut lzt),
        prep
    );
}
