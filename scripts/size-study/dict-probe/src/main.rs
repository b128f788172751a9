//! Reads a built `records.store` (docs/FORMAT.md §3.10, the layout with the `u64`
//! directory), decompresses every block with its dictionary, then for each
//! configuration `DICT_KIB:SAMPLE_MIB:first|spread` trains a dictionary with zstd's
//! `ZDICT_trainFromBuffer` (as the writer does) on the raw blocks of the first
//! `SAMPLE_MIB` MiB (`first`, what the writer does) or on every k-th block, k chosen so
//! that the sample is at most `SAMPLE_MIB` MiB spread over the whole store (`spread`),
//! compresses every block at level 2 as the writer does (content size, no checksum),
//! and prints: training time, compression time (one thread), block data and store bytes
//! (header, dictionary, block data, the file's own directory), the time to prepare the
//! decoder dictionary (mean of 10), and the time to decompress one block (blocks in a
//! pseudo-random order, up to 20,000 per round, 3 rounds: median, p90, p99).
//!
//! Usage: `dict-probe STORE CONFIG...`, e.g.
//! `dict-probe IDX/records.store 64:8:first 64:8:spread 256:32:spread`.
//! The `64:8:first` line reproduces the file's own block data byte count.

use std::time::Instant;
use zstd::zstd_safe::{CParameter, DCtx, DDict};

fn u64_at(b: &[u8], at: usize) -> u64 { u64::from_le_bytes(b[at..at + 8].try_into().unwrap()) }

fn main() {
    let args: Vec<String> = std::env::args().collect();
    let file = std::fs::read(&args[1]).unwrap();
    let body_len = u64_at(&file, 16) as usize;
    let p: Vec<u64> = (0..4).map(|i| u64_at(&file, 24 + 8 * i)).collect();
    let (rows, blocks, dict_len, data_len) = (p[0], p[1] as usize, p[2] as usize, p[3] as usize);
    let body = &file[64..64 + body_len];
    let dict = &body[32..32 + dict_len];
    let data = &body[32 + dict_len..32 + dict_len + data_len];
    let off_at = 32 + dict_len + data_len + (blocks + 1) * 8;
    let dir_len = body_len - (32 + dict_len + data_len);
    let ddict = DDict::create(dict);
    let mut dctx = DCtx::create();
    let mut raws = Vec::with_capacity(blocks);
    for b in 0..blocks {
        let (s, e) = (u64_at(body, off_at + 8 * b) as usize, u64_at(body, off_at + 8 * b + 8) as usize);
        let blk = &data[s..e];
        let raw_len = u32::from_le_bytes(blk[..4].try_into().unwrap()) as usize;
        let mut out = vec![0u8; raw_len];
        let n = dctx.decompress_using_ddict(&mut out[..], &blk[4..], &ddict).unwrap();
        assert_eq!(n, raw_len);
        raws.push(out);
    }
    let total_raw: usize = raws.iter().map(|r| r.len()).sum();
    println!("rows {rows} blocks {blocks} raw {total_raw} dict {dict_len} data {data_len} dir {dir_len}");
    for cfg in &args[2..] {
        let parts: Vec<&str> = cfg.split(':').collect();
        let dkib: usize = parts[0].parse().unwrap();
        let smib: usize = parts[1].parse().unwrap();
        let mode = parts[2];
        let sample_raw = smib << 20;
        let samples: Vec<&[u8]> = match mode {
            "first" => {
                let mut acc = 0;
                raws.iter().take_while(|r| { let t = acc < sample_raw; acc += r.len(); t }).map(|r| &r[..]).collect()
            }
            _ => {
                let stride = total_raw.div_ceil(sample_raw).max(1);
                raws.iter().step_by(stride).map(|r| &r[..]).collect()
            }
        };
        let sbytes: usize = samples.iter().map(|s| s.len()).sum();
        let t = Instant::now();
        let d = zstd::dict::from_samples(&samples, dkib << 10).unwrap_or_default();
        let train = t.elapsed();
        let mut c = zstd::bulk::Compressor::with_dictionary(2, &d).unwrap();
        c.set_parameter(CParameter::ContentSizeFlag(true)).unwrap();
        c.set_parameter(CParameter::ChecksumFlag(false)).unwrap();
        let t = Instant::now();
        let mut frames = Vec::with_capacity(blocks);
        for r in &raws { frames.push(c.compress(r).unwrap()); }
        let comp = t.elapsed();
        let bdata: usize = frames.iter().map(|f| f.len() + 4).sum();
        let t = Instant::now();
        let mut dd = None;
        for _ in 0..10 { dd = Some(DDict::create(&d)); }
        let prep = t.elapsed() / 10;
        let dd = dd.unwrap();
        // Decompression: pseudo-random order, every block once, 3 rounds; per-block times.
        let mut times = Vec::new();
        let mut x: u64 = 0x9E3779B97F4A7C15;
        let mut out = vec![0u8; 1 << 21];
        for _ in 0..3 {
            for _ in 0..blocks.min(20000) {
                x ^= x << 13; x ^= x >> 7; x ^= x << 17;
                let i = (x % blocks as u64) as usize;
                let t = Instant::now();
                let n = dctx.decompress_using_ddict(&mut out[..raws[i].len()], &frames[i], &dd).unwrap();
                times.push(t.elapsed().as_nanos() as u64);
                assert_eq!(n, raws[i].len());
            }
        }
        times.sort();
        let q = |f: f64| times[((times.len() - 1) as f64 * f) as usize] as f64 / 1000.0;
        let store = 32 + d.len() + bdata + dir_len;
        println!(
            "{cfg:>16} samples {:>6} ({:>9} B) dict {:>7} train {:>7.2}s comp {:>5.2}s data {:>10} store {:>10} ({:.2} B/row) prep {:>6.1}us dec med {:.2} p90 {:.2} p99 {:.2}us",
            samples.len(), sbytes, d.len(), train.as_secs_f64(), comp.as_secs_f64(), bdata, store,
            store as f64 / rows as f64, prep.as_secs_f64() * 1e6, q(0.5), q(0.9), q(0.99)
        );
    }
}
