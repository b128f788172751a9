//! A std-only gzip writer using *stored* (uncompressed) deflate blocks. The output is a
//! valid `.gz` file that any gzip reader accepts, which is what the `.gz` input path of
//! the builder needs for tests and benchmarks; it is not smaller than its input, so do
//! not use it to measure compression ratios.

use std::io::{self, Write};

/// Largest payload of one stored deflate block.
const BLOCK: usize = 65_535;

const fn crc32_table() -> [u32; 256] {
    let mut table = [0u32; 256];
    let mut i = 0;
    while i < 256 {
        let mut c = i as u32;
        let mut k = 0;
        while k < 8 {
            c = if c & 1 != 0 { 0xEDB8_8320 ^ (c >> 1) } else { c >> 1 };
            k += 1;
        }
        table[i] = c;
        i += 1;
    }
    table
}

static CRC_TABLE: [u32; 256] = crc32_table();

/// Updates a CRC-32 (IEEE, as used by gzip) with `data`; start from `0`.
pub fn crc32_update(crc: u32, data: &[u8]) -> u32 {
    let mut c = !crc;
    for &b in data {
        c = CRC_TABLE[((c ^ u32::from(b)) & 0xFF) as usize] ^ (c >> 8);
    }
    !c
}

/// Wraps a writer; bytes written are emitted as a gzip member of stored blocks.
/// Call [`GzipStoredWriter::finish`] to write the trailer.
pub struct GzipStoredWriter<W: Write> {
    inner: W,
    buf: Vec<u8>,
    crc: u32,
    size: u64,
}

impl<W: Write> GzipStoredWriter<W> {
    /// Writes the gzip header (no name, mtime 0 so output is deterministic).
    pub fn new(mut inner: W) -> io::Result<Self> {
        inner.write_all(&[0x1f, 0x8b, 8, 0, 0, 0, 0, 0, 0, 0xff])?;
        Ok(GzipStoredWriter { inner, buf: Vec::with_capacity(BLOCK), crc: 0, size: 0 })
    }

    fn emit_block(&mut self, last: bool) -> io::Result<()> {
        let len = self.buf.len() as u16;
        self.inner.write_all(&[u8::from(last)])?;
        self.inner.write_all(&len.to_le_bytes())?;
        self.inner.write_all(&(!len).to_le_bytes())?;
        self.inner.write_all(&self.buf)?;
        self.buf.clear();
        Ok(())
    }

    /// Writes the final block and the trailer; returns the inner writer.
    pub fn finish(mut self) -> io::Result<W> {
        self.emit_block(true)?;
        self.inner.write_all(&self.crc.to_le_bytes())?;
        self.inner.write_all(&(self.size as u32).to_le_bytes())?;
        self.inner.flush()?;
        Ok(self.inner)
    }
}

impl<W: Write> Write for GzipStoredWriter<W> {
    fn write(&mut self, data: &[u8]) -> io::Result<usize> {
        let take = data.len().min(BLOCK - self.buf.len());
        self.buf.extend_from_slice(&data[..take]);
        self.crc = crc32_update(self.crc, &data[..take]);
        self.size += take as u64;
        if self.buf.len() == BLOCK {
            self.emit_block(false)?;
        }
        Ok(take)
    }

    fn flush(&mut self) -> io::Result<()> {
        self.inner.flush()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn crc_matches_reference() {
        assert_eq!(crc32_update(0, b"123456789"), 0xCBF4_3926);
    }

    #[test]
    fn gunzip_accepts_output() {
        let data: Vec<u8> = (0..200_000u32).map(|i| (i % 251) as u8).collect();
        let mut w = GzipStoredWriter::new(Vec::new()).unwrap();
        w.write_all(&data).unwrap();
        let gz = w.finish().unwrap();
        let dir = std::env::temp_dir().join(format!("breachdex-gen-gz-{}", std::process::id()));
        std::fs::create_dir_all(&dir).unwrap();
        let path = dir.join("t.gz");
        std::fs::write(&path, &gz).unwrap();
        match std::process::Command::new("gzip").arg("-dc").arg(&path).output() {
            Ok(out) => {
                assert!(out.status.success());
                assert_eq!(out.stdout, data);
            }
            Err(_) => eprintln!("gzip not installed; skipping the external check"),
        }
        let _ = std::fs::remove_dir_all(&dir);
    }
}
