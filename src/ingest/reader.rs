//! [`DumpReader`]: opens one dump file (plain or gzip), checks its start (BOM, CSV
//! header) and hands out batches of framed records.

use super::csv::CsvFields;
use super::framing::{Bom, Framer, READ_BUFFER_BYTES};
use super::{Compression, DumpFile, DumpFormat, FrameBatch, IngestError, RecordParser};
use crate::asset::{ASSET_COUNT, Asset};
use flate2::read::MultiGzDecoder;
use std::fs::File;
use std::io::{self, Read};

/// Counts the bytes taken from the file, for progress (compressed bytes under gzip).
struct CountingReader {
    file: File,
    count: u64,
}

impl Read for CountingReader {
    fn read(&mut self, buf: &mut [u8]) -> io::Result<usize> {
        let n = self.file.read(buf)?;
        self.count += n as u64;
        Ok(n)
    }
}

enum Input {
    Plain(CountingReader),
    /// Multi-member, because `cat a.gz b.gz` and parallel gzip tools produce several.
    Gzip(MultiGzDecoder<CountingReader>),
}

impl Input {
    fn bytes_read(&self) -> u64 {
        match self {
            Input::Plain(r) => r.count,
            Input::Gzip(r) => r.get_ref().count,
        }
    }
}

impl Read for Input {
    fn read(&mut self, buf: &mut [u8]) -> io::Result<usize> {
        match self {
            Input::Plain(r) => r.read(buf),
            Input::Gzip(r) => r.read(buf),
        }
    }
}

/// Reads one dump file as batches of framed records.
///
/// Made to run in one reader thread: it does only I/O, decompression and framing, while
/// [`RecordParser::parse`] and [`super::validate`] run in workers on the batches.
pub struct DumpReader {
    display: String,
    compression: Compression,
    input: Input,
    framer: Framer,
    parser: RecordParser,
    unknown_columns: Vec<String>,
    /// A read error met after some complete records; returned by the next call.
    pending_error: Option<IngestError>,
    done: bool,
}

impl DumpReader {
    /// Opens a dump file (through gzip when compressed), skips a UTF-8 BOM and, for CSV
    /// with a header row, reads and maps the header.
    ///
    /// Fails when the file is missing, not a regular file, UTF-16, unreadable at its
    /// start, or (CSV) when its header row or catalog `columns` cannot be read, name one
    /// asset twice, or name no identifier. An empty CSV file has no header and yields no
    /// records; that is not an error.
    pub fn open(file: &DumpFile) -> Result<DumpReader, IngestError> {
        Self::open_with_buffer(file, READ_BUFFER_BYTES)
    }

    fn open_with_buffer(file: &DumpFile, buffer_bytes: usize) -> Result<DumpReader, IngestError> {
        let display = file.display.clone();
        let open_error = |source| IngestError::Open { path: display.clone(), source };
        let metadata = std::fs::metadata(&file.path).map_err(open_error)?;
        if !metadata.is_file() {
            let kind = if metadata.is_dir() { "a directory" } else { "a device, pipe or socket" };
            return Err(IngestError::NotRegularFile { path: display, kind });
        }
        let counting = CountingReader { file: File::open(&file.path).map_err(open_error)?, count: 0 };
        let input = match file.compression {
            Compression::None => Input::Plain(counting),
            Compression::Gzip => Input::Gzip(MultiGzDecoder::new(counting)),
        };
        let csv_delimiter = (file.format == DumpFormat::Csv).then_some(file.delimiter);
        let mut reader = DumpReader {
            display,
            compression: file.compression,
            input,
            framer: Framer::new(csv_delimiter, buffer_bytes),
            parser: RecordParser::combo(),
            unknown_columns: Vec::new(),
            pending_error: None,
            done: false,
        };
        match reader.framer.start(&mut reader.input) {
            Ok(Bom::NoneOrUtf8) => {}
            Ok(Bom::Utf16) => {
                return Err(IngestError::Utf16 { path: reader.display });
            }
            Err(e) => return Err(reader.read_error(e)),
        }
        reader.parser = match file.format {
            DumpFormat::Jsonl => RecordParser::jsonl(),
            DumpFormat::Combo => RecordParser::combo(),
            DumpFormat::Csv => {
                let columns = match &file.columns {
                    Some(columns) => Some(columns.clone()),
                    None => reader.read_header(file.delimiter)?,
                };
                match columns {
                    Some(columns) => {
                        let (mapping, unknown) = map_columns(&reader.display, &columns)?;
                        reader.unknown_columns = unknown;
                        RecordParser::csv(file.delimiter, mapping)
                    }
                    None => RecordParser::csv(file.delimiter, Vec::new()),
                }
            }
        };
        Ok(reader)
    }

    /// The header row's column names; `None` for an empty file.
    fn read_header(&mut self, delimiter: u8) -> Result<Option<Vec<String>>, IngestError> {
        let mut batch = FrameBatch::default();
        if let Err(e) = self.framer.fill(&mut self.input, &mut batch, 0, 1) {
            return Err(self.read_error(e));
        }
        let Some(frame) = batch.frames.first() else {
            return Ok(None);
        };
        let bad_header =
            |reason: String| IngestError::BadHeader { path: self.display.clone(), line: frame.line, reason };
        if let Some(reason) = frame.kind.reject_reason() {
            return Err(bad_header(reason));
        }
        let text = std::str::from_utf8(batch.bytes(frame))
            .map_err(|e| bad_header(format!("invalid UTF-8 at byte {}", e.valid_up_to())))?;
        CsvFields::new(text, delimiter)
            .map(|field| field.map(|name| name.into_owned()))
            .collect::<Result<Vec<_>, _>>()
            .map(Some)
            .map_err(bad_header)
    }

    /// Wraps an error of the underlying reader, naming the line reached.
    fn read_error(&self, source: io::Error) -> IngestError {
        let path = self.display.clone();
        let line = self.framer.line();
        let corrupt = matches!(
            source.kind(),
            io::ErrorKind::InvalidInput | io::ErrorKind::InvalidData | io::ErrorKind::UnexpectedEof
        );
        if self.compression == Compression::Gzip && corrupt {
            IngestError::Gzip { path, line, source }
        } else {
            IngestError::Io { path, line, source }
        }
    }

    /// The parser for this file's records.
    pub fn parser(&self) -> RecordParser {
        self.parser.clone()
    }

    /// Columns (CSV) of this file that name no asset, to report once.
    pub fn unknown_columns(&self) -> &[String] {
        &self.unknown_columns
    }

    /// Bytes of the file consumed so far (compressed bytes for `.gz`), for progress.
    pub fn bytes_read(&self) -> u64 {
        self.input.bytes_read()
    }

    /// The next batch of about `target_bytes` of records (at least one record), `None`
    /// at the end.
    ///
    /// On a read or gzip error the complete records read before it are returned first,
    /// then the error (once, naming the line reached), then `None`: the rest of the file
    /// is lost, and the caller should record one reject for it and go on.
    pub fn next_batch(&mut self, target_bytes: usize) -> Result<Option<FrameBatch>, IngestError> {
        if let Some(error) = self.pending_error.take() {
            return Err(error);
        }
        if self.done {
            return Ok(None);
        }
        let mut batch =
            FrameBatch { data: Vec::with_capacity(target_bytes.min(READ_BUFFER_BYTES * 16)), frames: Vec::new() };
        let result = self.framer.fill(&mut self.input, &mut batch, target_bytes, usize::MAX);
        if let Err(source) = result {
            self.done = true;
            let error = self.read_error(source);
            // Drop the record that was cut short by the error.
            batch.data.truncate(batch.frames.last().map_or(0, |f| f.end));
            if batch.frames.is_empty() {
                return Err(error);
            }
            self.pending_error = Some(error);
        }
        if batch.frames.is_empty() {
            self.done = true;
            return Ok(None);
        }
        Ok(Some(batch))
    }
}

/// Maps column names to assets; returns the mapping and the unknown (non-empty) names.
fn map_columns(path: &str, columns: &[String]) -> Result<(Vec<Option<Asset>>, Vec<String>), IngestError> {
    let mut first_of: [Option<&String>; ASSET_COUNT] = Default::default();
    let mut mapping = Vec::with_capacity(columns.len());
    let mut unknown = Vec::new();
    for column in columns {
        let asset = Asset::from_column(column);
        match asset {
            Some(asset) => {
                if let Some(first) = first_of[asset.index()] {
                    return Err(IngestError::DuplicateColumn {
                        path: path.to_owned(),
                        asset,
                        first: first.clone(),
                        second: column.clone(),
                    });
                }
                first_of[asset.index()] = Some(column);
            }
            None if column.trim().is_empty() => {}
            None => unknown.push(column.clone()),
        }
        mapping.push(asset);
    }
    if !mapping.iter().flatten().any(|a| a.is_identifier()) {
        if let Some((column, delimiter)) = misread_delimiter(columns) {
            return Err(IngestError::WrongDelimiter { path: path.to_owned(), column: column.clone(), delimiter });
        }
        return Err(IngestError::NoIdentifierColumn { path: path.to_owned(), columns: columns.to_vec() });
    }
    Ok((mapping, unknown))
}

/// A column that is really several columns joined by another delimiter than the one the
/// file was read with (`mail;pass` read as CSV with `,`): the first column one of whose
/// parts, split at `;`, `|`, tab or `,`, names an identifier, with that delimiter.
fn misread_delimiter(columns: &[String]) -> Option<(&String, char)> {
    columns.iter().find_map(|column| {
        [';', '|', '\t', ',']
            .into_iter()
            .find(|&d| {
                column.contains(d)
                    && column.split(d).any(|part| Asset::from_column(part).is_some_and(Asset::is_identifier))
            })
            .map(|d| (column, d))
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::ingest::Frame;
    use flate2::Compression as Level;
    use flate2::write::GzEncoder;
    use std::io::Write;
    use std::path::Path;

    fn dump(dir: &Path, name: &str, format: DumpFormat, bytes: &[u8]) -> DumpFile {
        let path = dir.join(name);
        let compression = if name.ends_with(".gz") {
            let mut enc = GzEncoder::new(Vec::new(), Level::fast());
            enc.write_all(bytes).unwrap();
            std::fs::write(&path, enc.finish().unwrap()).unwrap();
            Compression::Gzip
        } else {
            std::fs::write(&path, bytes).unwrap();
            Compression::None
        };
        DumpFile { display: name.to_owned(), path, format, compression, delimiter: b',', columns: None }
    }

    /// Every frame of the file as (line, lines, parse result rendered as text).
    fn read_all(reader: &mut DumpReader) -> Vec<(u64, u32, String)> {
        let parser = reader.parser();
        let mut out = Vec::new();
        while let Some(batch) = reader.next_batch(10).unwrap() {
            for frame in &batch.frames {
                out.push((frame.line, frame.lines, render(&parser, &batch, frame)));
            }
        }
        out
    }

    fn render(parser: &RecordParser, batch: &FrameBatch, frame: &Frame) -> String {
        if let Some(reason) = frame.kind.reject_reason() {
            return format!("reject: {reason}");
        }
        match parser.parse(batch.bytes(frame)) {
            Ok(fields) => Asset::ALL
                .iter()
                .filter_map(|a| fields.get(*a).map(|v| format!("{a}={v}")))
                .collect::<Vec<_>>()
                .join(" "),
            Err(reason) => format!("reject: {reason}"),
        }
    }

    #[test]
    fn csv_with_bom_crlf_blank_lines_and_quoted_newlines() {
        let dir = tempfile::tempdir().unwrap();
        let text = b"\xEF\xBB\xBFE-Mail,Password,Colour,\r\n\r\na@b.c,\"pw,1\",red,\r\n\"x@y.z\",\"two\r\nlines\",\"\"\"q\"\"\",\n\nbad,\"q\"x,,\nshort\n";
        for name in ["d.csv", "d.csv.gz"] {
            let file = dump(dir.path(), name, DumpFormat::Csv, text);
            let mut reader = DumpReader::open(&file).unwrap();
            assert_eq!(reader.unknown_columns(), ["Colour"]);
            assert_eq!(
                read_all(&mut reader),
                [
                    (3, 1, "email=a@b.c password_plaintext=pw,1".to_owned()),
                    (4, 2, "email=x@y.z password_plaintext=two\r\nlines".to_owned()),
                    (7, 1, "reject: broken quoting: text after the closing quote of field 2".to_owned()),
                    (8, 1, "reject: expected 4 fields, found 1".to_owned()),
                ],
                "{name}"
            );
            assert!(reader.bytes_read() > 0);
            assert!(reader.next_batch(10).unwrap().is_none());
        }
    }

    #[test]
    fn csv_with_catalog_columns_and_delimiter() {
        let dir = tempfile::tempdir().unwrap();
        let mut file = dump(dir.path(), "d.txt", DumpFormat::Csv, b"bob\tpw\tx\n");
        file.delimiter = b'\t';
        file.columns = Some(vec!["user".into(), "pass".into(), "".into()]);
        let mut reader = DumpReader::open(&file).unwrap();
        assert!(reader.unknown_columns().is_empty());
        assert_eq!(read_all(&mut reader), [(1, 1, "username=bob password_plaintext=pw".to_owned())]);
    }

    #[test]
    fn header_errors() {
        let dir = tempfile::tempdir().unwrap();
        let file = dump(dir.path(), "dup.csv", DumpFormat::Csv, b"email,name,Mail\n");
        let err = DumpReader::open(&file).err().unwrap();
        assert_eq!(
            err.to_string(),
            "dup.csv: columns 'email' and 'Mail' both name the asset email; rename or remove one of them"
        );
        let file = dump(dir.path(), "noid.csv", DumpFormat::Csv, b"password,hash\nx,y\n");
        let err = DumpReader::open(&file).err().unwrap();
        assert!(matches!(err, IngestError::NoIdentifierColumn { .. }));
        assert!(err.to_string().starts_with(
            "noid.csv: no column names an identifier (email or username); the columns are [password, hash]"
        ));
        let file = dump(dir.path(), "q.csv", DumpFormat::Csv, b"\n\nemail,\"pw\n");
        let err = DumpReader::open(&file).err().unwrap();
        assert_eq!(err.to_string(), "q.csv: cannot read the CSV header row (line 3): unclosed quote in field 2");
        let file = dump(dir.path(), "u.csv", DumpFormat::Csv, b"em\xFFail\n");
        assert!(DumpReader::open(&file).err().unwrap().to_string().contains("invalid UTF-8 at byte 2"));
    }

    #[test]
    fn a_header_joined_by_another_delimiter_suggests_it() {
        let dir = tempfile::tempdir().unwrap();
        let file = dump(dir.path(), "semi.csv", DumpFormat::Csv, b"mail;pass\na@b.c;x\n");
        let err = DumpReader::open(&file).err().unwrap();
        assert!(matches!(err, IngestError::WrongDelimiter { delimiter: ';', .. }), "{err}");
        assert_eq!(
            err.to_string(),
            "semi.csv: no column names an identifier, but the header column 'mail;pass' looks like several \
             columns separated by ';'; add \"delimiter\": \";\" to this file in the catalog"
        );
        let file = dump(dir.path(), "tab.csv", DumpFormat::Csv, b"user\tpw\n");
        assert!(DumpReader::open(&file).err().unwrap().to_string().contains("\"delimiter\": \"tab\""));
        // Without an identifier among the parts there is nothing to suggest.
        let file = dump(dir.path(), "none.csv", DumpFormat::Csv, b"colour;size\n");
        assert!(matches!(DumpReader::open(&file).err().unwrap(), IngestError::NoIdentifierColumn { .. }));
    }

    #[test]
    fn empty_csv_has_no_records() {
        let dir = tempfile::tempdir().unwrap();
        for text in [&b""[..], b"\xEF\xBB\xBF", b"\n\r\n"] {
            let file = dump(dir.path(), "e.csv", DumpFormat::Csv, text);
            let mut reader = DumpReader::open(&file).unwrap();
            assert!(reader.next_batch(100).unwrap().is_none());
        }
    }

    #[test]
    fn utf16_missing_and_non_regular_files() {
        let dir = tempfile::tempdir().unwrap();
        let file = dump(dir.path(), "w.csv", DumpFormat::Csv, b"\xFF\xFEe\0m\0");
        let err = DumpReader::open(&file).err().unwrap();
        assert!(err.to_string().contains("UTF-16 is not supported, convert the file to UTF-8"));
        let mut missing = file.clone();
        missing.path = dir.path().join("nope.csv");
        missing.display = "nope.csv".into();
        assert!(matches!(DumpReader::open(&missing), Err(IngestError::Open { .. })));
        let mut directory = file.clone();
        directory.path = dir.path().to_owned();
        let err = DumpReader::open(&directory).err().unwrap();
        assert!(err.to_string().ends_with("is a directory, not a regular file"));
        if Path::new("/dev/zero").exists() {
            let mut device = file;
            device.path = "/dev/zero".into();
            assert!(matches!(DumpReader::open(&device), Err(IngestError::NotRegularFile { .. })));
        }
    }

    #[test]
    fn jsonl_and_combo_files() {
        let dir = tempfile::tempdir().unwrap();
        let file = dump(
            dir.path(),
            "d.jsonl.gz",
            DumpFormat::Jsonl,
            b"{\"mail\":\"a@b.c\",\"x\":[1]}\r\n\n{\"email\":[]}\nnot json\n",
        );
        let mut reader = DumpReader::open(&file).unwrap();
        let got = read_all(&mut reader);
        assert_eq!(got[0], (1, 1, "email=a@b.c".to_owned()));
        assert_eq!(got[1].0, 3);
        assert!(got[1].2.contains("key 'email' holds an array"));
        assert!(got[2].2.starts_with("reject: invalid JSON"));
        let file = dump(dir.path(), "c.txt", DumpFormat::Combo, b"a@b.c:p:w\r\nbob:\nnothing\n");
        let mut reader = DumpReader::open(&file).unwrap();
        assert_eq!(
            read_all(&mut reader),
            [
                (1, 1, "email=a@b.c password_plaintext=p:w".to_owned()),
                (2, 1, "username=bob".to_owned()),
                (3, 1, "reject: no ':' separator".to_owned()),
            ]
        );
    }

    #[test]
    fn small_buffers_give_the_same_frames() {
        let dir = tempfile::tempdir().unwrap();
        let text = b"email,pw\n\"a\n@b.c\",\"x\"\"\"\r\n\nc@d.e,\"p\nq\"\n";
        let file = dump(dir.path(), "s.csv", DumpFormat::Csv, text);
        let reference = read_all(&mut DumpReader::open(&file).unwrap());
        assert_eq!(reference.len(), 2);
        for buffer in 3..12 {
            let got = read_all(&mut DumpReader::open_with_buffer(&file, buffer).unwrap());
            assert_eq!(got, reference, "buffer {buffer}");
        }
    }

    #[test]
    fn corrupt_gzip_returns_records_then_an_error_then_the_end() {
        let dir = tempfile::tempdir().unwrap();
        let mut text = Vec::new();
        for i in 0..20_000 {
            text.extend_from_slice(format!("user{i}:password{i}\n").as_bytes());
        }
        let file = dump(dir.path(), "t.txt.gz", DumpFormat::Combo, &text);
        let whole = std::fs::read(&file.path).unwrap();
        std::fs::write(&file.path, &whole[..whole.len() / 2]).unwrap();
        let mut reader = DumpReader::open_with_buffer(&file, 4096).unwrap();
        let mut records = 0;
        let err = loop {
            match reader.next_batch(1000) {
                Ok(Some(batch)) => records += batch.frames.len(),
                Ok(None) => panic!("truncated gzip must be an error"),
                Err(e) => break e,
            }
        };
        assert!(records > 0);
        assert!(matches!(err, IngestError::Gzip { .. }), "{err:?}");
        assert_eq!(err.line(), Some(records as u64 + 1));
        assert!(err.to_string().starts_with("t.txt.gz: gzip data is corrupt or truncated at line"));
        assert!(reader.next_batch(1000).unwrap().is_none());
    }
}
