//! Framing: cutting a byte stream into records without parsing them.
//!
//! A record is a physical line, except in CSV, where a quoted field may hold line ends:
//! a small state machine (the same one the CSV parser follows) tells a line end inside
//! quotes from one that ends the record. Only line ends and quotes are looked at, with
//! `memchr`, so framing runs at memory speed and stays the one cheap sequential step.
//!
//! Memory is bounded: a record is copied into the batch as it is scanned, and once it
//! passes [`MAX_RECORD_BYTES`] only its first [`MAX_REJECT_RAW_BYTES`] are kept and
//! framing resyncs at the next line end, whatever the quote state.

use super::{Frame, FrameBatch, FrameKind, MAX_RECORD_BYTES, MAX_REJECT_RAW_BYTES};
use memchr::{memchr, memchr2};
use std::io::{self, Read};

/// Size of the read buffer: large, so that reads (and gzip calls) are few.
pub(crate) const READ_BUFFER_BYTES: usize = 256 * 1024;

/// Where the CSV state machine stands; mirrors the field parser in `csv.rs`.
#[derive(Copy, Clone, Debug, PartialEq, Eq)]
enum CsvState {
    /// At the start of a field: a `"` here opens a quoted field.
    FieldStart,
    /// Inside an unquoted field: a `"` here is an ordinary byte.
    Unquoted,
    /// Inside a quoted field: line ends and delimiters belong to the value.
    Quoted,
    /// Just after a `"` inside a quoted field: either `""` or the closing quote.
    QuoteInQuoted,
}

/// Byte order mark found at the start of the input.
#[derive(Copy, Clone, Debug, PartialEq, Eq)]
pub(crate) enum Bom {
    /// None (or one that was skipped: UTF-8).
    NoneOrUtf8,
    /// UTF-16, either byte order: the input cannot be read.
    Utf16,
}

/// Cuts a byte stream into [`Frame`]s. The caller owns the stream so the framer can be
/// driven from a file, a gzip decoder or, in tests, a slice.
pub(crate) struct Framer {
    buf: Box<[u8]>,
    pos: usize,
    end: usize,
    eof: bool,
    finished: bool,
    /// `Some(delimiter)` for CSV, which needs the quote-aware scan.
    csv_delimiter: Option<u8>,
    /// 1-based physical line at the read position.
    line: u64,
    /// Blank lines skipped so far (they still count in line numbers).
    blank_lines: u64,
    /// A skipped BOM makes line 1 a line even when nothing else is on it.
    bom_on_line: bool,
    rec: Pending,
}

/// The record being framed.
#[derive(Copy, Clone, Debug)]
struct Pending {
    /// Offset of its first byte in the batch data.
    start: usize,
    line: u64,
    lines: u32,
    /// Bytes seen so far (more than those kept once `too_long`).
    len: u64,
    too_long: bool,
    /// Last byte seen, to drop a CR before the LF of a too-long line.
    last_byte: u8,
    state: CsvState,
}

impl Pending {
    fn new(line: u64) -> Pending {
        Pending { start: 0, line, lines: 1, len: 0, too_long: false, last_byte: 0, state: CsvState::FieldStart }
    }
}

impl Framer {
    /// A framer reading through a buffer of `buffer_bytes` (at least 3, to see a BOM).
    pub(crate) fn new(csv_delimiter: Option<u8>, buffer_bytes: usize) -> Framer {
        Framer {
            buf: vec![0; buffer_bytes.max(3)].into_boxed_slice(),
            pos: 0,
            end: 0,
            eof: false,
            finished: false,
            csv_delimiter,
            line: 1,
            blank_lines: 0,
            bom_on_line: false,
            rec: Pending::new(1),
        }
    }

    /// Reads the first bytes and skips a UTF-8 BOM; must be called once, first.
    pub(crate) fn start<R: Read + ?Sized>(&mut self, src: &mut R) -> io::Result<Bom> {
        while self.end < 3 && !self.eof {
            let Some(space) = self.buf.get_mut(self.end..) else {
                break;
            };
            match src.read(space) {
                Ok(0) => self.eof = true,
                Ok(n) => self.end = (self.end + n).min(self.buf.len()),
                Err(e) if e.kind() == io::ErrorKind::Interrupted => {}
                Err(e) => return Err(e),
            }
        }
        let head = self.buf.get(..self.end).unwrap_or_default();
        if head.starts_with(&[0xEF, 0xBB, 0xBF]) {
            self.pos = 3;
            self.bom_on_line = true;
        } else if head.starts_with(&[0xFF, 0xFE]) || head.starts_with(&[0xFE, 0xFF]) {
            return Ok(Bom::Utf16);
        }
        Ok(Bom::NoneOrUtf8)
    }

    /// The 1-based physical line at the read position.
    pub(crate) fn line(&self) -> u64 {
        self.line
    }

    /// Blank lines skipped so far.
    #[cfg(test)]
    pub(crate) fn blank_lines(&self) -> u64 {
        self.blank_lines
    }

    /// Appends frames to `batch` until it holds `max_frames` frames, or at least
    /// `target_bytes` of data, or the input ends. Frames are whole: a record is never
    /// split across batches. After an error the framer must not be used again.
    pub(crate) fn fill<R: Read + ?Sized>(
        &mut self,
        src: &mut R,
        batch: &mut FrameBatch,
        target_bytes: usize,
        max_frames: usize,
    ) -> io::Result<()> {
        while !self.finished {
            // Only between records: a record is never split across batches.
            let between_records = self.rec.len == 0;
            if between_records
                && !batch.frames.is_empty()
                && (batch.frames.len() >= max_frames || batch.data.len() >= target_bytes)
            {
                return Ok(());
            }
            if self.pos < self.end {
                self.step(batch);
            } else if self.eof {
                self.finish(batch);
            } else {
                self.refill(src)?;
            }
        }
        Ok(())
    }

    fn refill<R: Read + ?Sized>(&mut self, src: &mut R) -> io::Result<()> {
        loop {
            match src.read(&mut self.buf) {
                Ok(0) => {
                    self.eof = true;
                    return Ok(());
                }
                Ok(n) => {
                    self.pos = 0;
                    self.end = n.min(self.buf.len());
                    return Ok(());
                }
                Err(e) if e.kind() == io::ErrorKind::Interrupted => {}
                Err(e) => return Err(e),
            }
        }
    }

    /// Consumes buffered bytes up to the end of one record or the end of the buffer.
    fn step(&mut self, batch: &mut FrameBatch) {
        let avail = self.buf.get(self.pos..self.end).unwrap_or_default();
        if self.rec.len == 0 {
            self.rec.start = batch.data.len();
        }
        if self.rec.too_long {
            // Resync: only the next line end matters now, not the quote state.
            let (chunk, terminated) = match memchr(b'\n', avail) {
                Some(k) => (avail.get(..k).unwrap_or_default(), true),
                None => (avail, false),
            };
            if let Some(&last) = chunk.last() {
                self.rec.last_byte = last;
            }
            self.rec.len += chunk.len() as u64;
            self.pos += chunk.len() + usize::from(terminated);
            if terminated {
                self.line += 1;
                self.end_record(batch);
            }
            return;
        }

        // Never look further than one byte past the limit: that byte proves the record
        // too long, and scanning no further keeps the held bytes bounded.
        let room = (MAX_RECORD_BYTES as u64 + 1).saturating_sub(self.rec.len);
        let window_len = avail.len().min(usize::try_from(room).unwrap_or(usize::MAX));
        let window = avail.get(..window_len).unwrap_or_default();
        let (terminator, embedded) = match self.csv_delimiter {
            Some(delimiter) => scan_csv(window, delimiter, &mut self.rec.state),
            None => (memchr(b'\n', window), 0),
        };
        self.rec.lines = self.rec.lines.saturating_add(embedded);
        self.line += u64::from(embedded);
        let chunk = match terminator {
            Some(k) => window.get(..k).unwrap_or_default(),
            None => window,
        };
        if let Some(&last) = chunk.last() {
            self.rec.last_byte = last;
        }
        let new_len = self.rec.len + chunk.len() as u64;
        if new_len > MAX_RECORD_BYTES as u64 {
            // Keep only the prefix the rejects file shows.
            let kept = batch.data.len().saturating_sub(self.rec.start);
            let want = MAX_REJECT_RAW_BYTES.saturating_sub(kept);
            batch.data.truncate(self.rec.start + kept.min(MAX_REJECT_RAW_BYTES));
            batch.data.extend_from_slice(chunk.get(..want.min(chunk.len())).unwrap_or_default());
            self.rec.too_long = true;
        } else {
            batch.data.extend_from_slice(chunk);
        }
        self.rec.len = new_len;
        self.pos += chunk.len();
        if terminator.is_some() {
            self.pos += 1;
            self.line += 1;
            self.end_record(batch);
        }
    }

    /// Closes the pending record: a frame, or a blank line when it holds nothing.
    fn end_record(&mut self, batch: &mut FrameBatch) {
        let rec = self.rec;
        if rec.too_long {
            let total_len = rec.len.saturating_sub(u64::from(rec.last_byte == b'\r'));
            batch.frames.push(Frame {
                line: rec.line,
                lines: rec.lines,
                start: rec.start,
                end: batch.data.len(),
                kind: FrameKind::TooLong { total_len },
            });
        } else {
            if rec.len > 0 && batch.data.last() == Some(&b'\r') {
                batch.data.pop();
            }
            if batch.data.len() > rec.start {
                batch.frames.push(Frame {
                    line: rec.line,
                    lines: rec.lines,
                    start: rec.start,
                    end: batch.data.len(),
                    kind: FrameKind::Record,
                });
            } else {
                self.blank_lines += 1;
            }
        }
        self.bom_on_line = false;
        self.rec = Pending::new(self.line);
    }

    /// End of input: the last line may lack its line end.
    fn finish(&mut self, batch: &mut FrameBatch) {
        if self.rec.len > 0 {
            // A quote still open at the end swallowed the input's last line end: that
            // line end only ends the last line, it is neither record text nor a line of
            // its own (the frame would claim one line more than the input has).
            let open_quote = self.rec.state == CsvState::Quoted && !self.rec.too_long;
            if open_quote && batch.data.len() > self.rec.start && batch.data.last() == Some(&b'\n') {
                batch.data.pop();
                self.rec.len -= 1;
                self.rec.lines = self.rec.lines.saturating_sub(1).max(1);
                self.line = self.line.saturating_sub(1).max(self.rec.line);
            }
            self.end_record(batch);
        } else if self.bom_on_line {
            self.blank_lines += 1;
            self.bom_on_line = false;
        }
        self.finished = true;
    }
}

/// Scans CSV bytes from `state`; returns the offset of the line end that ends the record
/// (if any) and how many line ends inside quoted fields were passed before it.
fn scan_csv(window: &[u8], delimiter: u8, state: &mut CsvState) -> (Option<usize>, u32) {
    let mut embedded = 0u32;
    let mut i = 0;
    loop {
        let rest = window.get(i..).unwrap_or_default();
        match *state {
            CsvState::Quoted => match memchr2(b'"', b'\n', rest) {
                None => return (None, embedded),
                Some(k) => {
                    if rest.get(k) == Some(&b'\n') {
                        embedded = embedded.saturating_add(1);
                    } else {
                        *state = CsvState::QuoteInQuoted;
                    }
                    i += k + 1;
                }
            },
            CsvState::QuoteInQuoted => match rest.first() {
                None => return (None, embedded),
                Some(b'\n') => {
                    *state = CsvState::FieldStart;
                    return (Some(i), embedded);
                }
                Some(&b) => {
                    *state = if b == b'"' {
                        CsvState::Quoted
                    } else if b == delimiter {
                        CsvState::FieldStart
                    } else {
                        // Text after a closing quote: the parser rejects the record;
                        // framing just goes on to the line end.
                        CsvState::Unquoted
                    };
                    i += 1;
                }
            },
            CsvState::FieldStart | CsvState::Unquoted => match memchr2(b'"', b'\n', rest) {
                None => {
                    if let Some(&last) = rest.last() {
                        *state = if last == delimiter { CsvState::FieldStart } else { CsvState::Unquoted };
                    }
                    return (None, embedded);
                }
                Some(k) => {
                    if rest.get(k) == Some(&b'\n') {
                        *state = CsvState::FieldStart;
                        return (Some(i + k), embedded);
                    }
                    let at_field_start = match k.checked_sub(1) {
                        None => *state == CsvState::FieldStart,
                        Some(before) => rest.get(before) == Some(&delimiter),
                    };
                    *state = if at_field_start { CsvState::Quoted } else { CsvState::Unquoted };
                    i += k + 1;
                }
            },
        }
    }
}

#[cfg(test)]
pub(crate) mod tests {
    use super::*;

    /// A reader that hands out at most `step` bytes per call, to split records across
    /// reads at every possible point.
    pub(crate) struct Trickle<'a> {
        pub(crate) data: &'a [u8],
        pub(crate) step: usize,
    }

    impl Read for Trickle<'_> {
        fn read(&mut self, out: &mut [u8]) -> io::Result<usize> {
            let n = self.step.min(out.len()).min(self.data.len());
            let (head, tail) = self.data.split_at(n);
            out[..n].copy_from_slice(head);
            self.data = tail;
            Ok(n)
        }
    }

    /// (line, lines, bytes, kind) of one frame.
    pub(crate) type FrameTuple = (u64, u32, Vec<u8>, FrameKind);

    /// Frames all of `input`; returns every frame and the blank-line count.
    pub(crate) fn frame_all(
        input: &[u8],
        csv: Option<u8>,
        buffer: usize,
        step: usize,
        target: usize,
    ) -> (Vec<FrameTuple>, u64) {
        let mut src = Trickle { data: input, step };
        let mut framer = Framer::new(csv, buffer);
        assert_eq!(framer.start(&mut src).unwrap(), Bom::NoneOrUtf8);
        let mut out = Vec::new();
        loop {
            let mut batch = FrameBatch::default();
            framer.fill(&mut src, &mut batch, target, usize::MAX).unwrap();
            if batch.frames.is_empty() {
                break;
            }
            for f in &batch.frames {
                out.push((f.line, f.lines, batch.bytes(f).to_vec(), f.kind));
            }
        }
        (out, framer.blank_lines())
    }

    fn lines_of(input: &[u8], csv: Option<u8>) -> Vec<(u64, u32, String)> {
        let (frames, _) = frame_all(input, csv, READ_BUFFER_BYTES, usize::MAX, 1 << 20);
        frames
            .into_iter()
            .map(|(l, n, b, k)| {
                assert_eq!(k, FrameKind::Record);
                (l, n, String::from_utf8(b).unwrap())
            })
            .collect()
    }

    fn owned(v: &[(u64, u32, &str)]) -> Vec<(u64, u32, String)> {
        v.iter().map(|(l, n, s)| (*l, *n, s.to_string())).collect()
    }

    #[test]
    fn lines_crlf_blank_and_missing_final_newline() {
        let got = lines_of(b"a\r\n\r\n\nb\nc", None);
        assert_eq!(got, owned(&[(1, 1, "a"), (4, 1, "b"), (5, 1, "c")]));
        let (_, blank) = frame_all(b"a\r\n\r\n\nb\nc", None, 64, 64, 64);
        assert_eq!(blank, 2);
    }

    #[test]
    fn utf8_bom_is_skipped_and_utf16_detected() {
        assert_eq!(lines_of(b"\xEF\xBB\xBFx\ny\n", None), owned(&[(1, 1, "x"), (2, 1, "y")]));
        let mut framer = Framer::new(None, 16);
        let mut src: &[u8] = b"\xFF\xFEa\0";
        assert_eq!(framer.start(&mut src).unwrap(), Bom::Utf16);
        let mut framer = Framer::new(None, 16);
        let mut src: &[u8] = b"\xFE\xFF\0a";
        assert_eq!(framer.start(&mut src).unwrap(), Bom::Utf16);
    }

    #[test]
    fn csv_quoted_newlines_span_lines() {
        let input = b"h1,h2\n\"multi\nline\",x\n\"a\"\"b\",\"c,d\"\r\nlast,\"q\n\n\"\nend,1";
        let got = lines_of(input, Some(b','));
        assert_eq!(
            got,
            owned(&[
                (1, 1, "h1,h2"),
                (2, 2, "\"multi\nline\",x"),
                (4, 1, "\"a\"\"b\",\"c,d\""),
                (5, 3, "last,\"q\n\n\""),
                (8, 1, "end,1"),
            ])
        );
    }

    #[test]
    fn quote_only_opens_at_field_start() {
        // The `"` inside `ab"c` is an ordinary byte, so the line end ends the record.
        let got = lines_of(b"ab\"c,d\nnext,1\n", Some(b','));
        assert_eq!(got, owned(&[(1, 1, "ab\"c,d"), (2, 1, "next,1")]));
        let got = lines_of(b"x;\"a\nb\";c\n", Some(b';'));
        assert_eq!(got, owned(&[(1, 2, "x;\"a\nb\";c")]));
    }

    #[test]
    fn unclosed_quote_at_eof_is_one_record() {
        let got = lines_of(b"a,b\n\"open,x\nmore\n", Some(b','));
        assert_eq!(got, owned(&[(1, 1, "a,b"), (2, 2, "\"open,x\nmore")]));
        // Found by fuzzing (parse_csv): the input's last line end was kept in the record
        // and counted as one more line; trailing blank lines inside the quote still count.
        let got = lines_of(b"\"open\r\n\r\n\n", Some(b','));
        assert_eq!(got, owned(&[(1, 3, "\"open\r\n\r\n")]));
        let got = lines_of(b"x\n\"\n", Some(b','));
        assert_eq!(got, owned(&[(1, 1, "x"), (2, 1, "\"")]));
    }

    #[test]
    fn too_long_line_is_cut_and_framing_resyncs() {
        let mut input = b"first\n".to_vec();
        input.extend(std::iter::repeat_n(b'x', MAX_RECORD_BYTES + 10));
        input.extend_from_slice(b"\r\nafter\n");
        for buffer in [READ_BUFFER_BYTES, 1000] {
            let (frames, _) = frame_all(&input, None, buffer, usize::MAX, 1 << 16);
            assert_eq!(frames.len(), 3);
            assert_eq!(frames[0].2, b"first");
            assert_eq!(frames[1].0, 2);
            assert_eq!(frames[1].3, FrameKind::TooLong { total_len: (MAX_RECORD_BYTES + 10) as u64 });
            assert_eq!(frames[1].2.len(), MAX_REJECT_RAW_BYTES);
            assert_eq!((frames[2].0, frames[2].2.as_slice()), (3, &b"after"[..]));
        }
    }

    #[test]
    fn unclosed_quote_costs_at_most_one_record_limit() {
        // An unclosed quote swallows lines only until the record limit; then the next
        // line end resyncs and later lines are framed again.
        let mut input = b"a,\"open\n".to_vec();
        let filler = b"filler line\n";
        let count = MAX_RECORD_BYTES / filler.len() + 2;
        for _ in 0..count {
            input.extend_from_slice(filler);
        }
        let (frames, blank) = frame_all(&input, Some(b','), 4096, usize::MAX, 1 << 16);
        assert!(matches!(frames[0].3, FrameKind::TooLong { .. }));
        assert_eq!(frames[0].0, 1);
        assert!(frames.len() > 1);
        assert_eq!(frames.last().unwrap().2, b"filler line");
        let total: u64 = frames.iter().map(|f| u64::from(f.1)).sum::<u64>() + blank;
        assert_eq!(total, count as u64 + 1);
    }

    #[test]
    fn record_of_exactly_the_limit_is_kept() {
        let mut input = vec![b'y'; MAX_RECORD_BYTES];
        input.extend_from_slice(b"\nz");
        let (frames, _) = frame_all(&input, None, 777, usize::MAX, 1 << 22);
        assert_eq!(frames[0].3, FrameKind::Record);
        assert_eq!(frames[0].2.len(), MAX_RECORD_BYTES);
        assert_eq!(frames[1].2, b"z");
    }

    #[test]
    fn a_record_in_progress_never_ends_a_batch() {
        // Found by the property test: a batch filled up while a quoted record was still
        // open, and the record's start was lost.
        let input = b",,,,\n\",\n\"\"\"\x0b\0\r\0\r\"\r\r\r\r\"";
        let (frames, blank) = frame_all(input, Some(b','), 3, 3, 16);
        assert_eq!(blank, 0);
        assert_eq!(frames.iter().map(|f| (f.0, f.1)).collect::<Vec<_>>(), [(1, 1), (2, 2)]);
        assert_eq!(frames[1].2, &input[5..]);
    }

    #[test]
    fn batch_and_read_boundaries_do_not_change_frames() {
        let input: &[u8] = b"\xEF\xBB\xBFemail,pw\r\n\"a\nb\",\"x\"\"y\"\n\n c , d \nq\"q,\"\"\r\n\"\",\"\"\n\"tail";
        let reference = frame_all(input, Some(b','), READ_BUFFER_BYTES, usize::MAX, 1 << 20);
        for buffer in 1..8 {
            for step in 1..5 {
                for target in [0, 1, 5, 100] {
                    let got = frame_all(input, Some(b','), buffer, step, target);
                    assert_eq!(got, reference, "buffer {buffer} step {step} target {target}");
                }
            }
        }
    }
}
