//! [`RecordParser`]: one framed record → raw asset fields, dispatching on the format.

use super::{RawFields, combo, csv::CsvFields, jsonl};
use crate::asset::Asset;
use std::sync::Arc;

/// Parses framed records of one file into asset fields. Cheap to clone and share.
#[derive(Clone, Debug)]
pub struct RecordParser {
    format: Format,
}

#[derive(Clone, Debug)]
enum Format {
    /// `columns[i]` is the asset of column `i`, `None` for a column that is not kept.
    Csv {
        delimiter: u8,
        columns: Arc<[Option<Asset>]>,
    },
    Jsonl,
    Combo,
}

impl RecordParser {
    /// A CSV parser for records of `columns.len()` fields.
    pub(crate) fn csv(delimiter: u8, columns: Vec<Option<Asset>>) -> RecordParser {
        RecordParser { format: Format::Csv { delimiter, columns: columns.into() } }
    }

    /// A JSON Lines parser.
    pub(crate) fn jsonl() -> RecordParser {
        RecordParser { format: Format::Jsonl }
    }

    /// A combo-list parser.
    pub(crate) fn combo() -> RecordParser {
        RecordParser { format: Format::Combo }
    }

    /// Parses one framed record; `Err` carries the reason the line is rejected
    /// (`invalid UTF-8 at byte N`, `broken quoting: ...`, `expected N fields, found M`,
    /// `invalid JSON: ...`, `no ':' separator`, ...). Values are returned as given
    /// (not trimmed); empty values are `None`.
    pub fn parse<'a>(&self, record: &'a [u8]) -> Result<RawFields<'a>, String> {
        let text = std::str::from_utf8(record).map_err(|e| format!("invalid UTF-8 at byte {}", e.valid_up_to()))?;
        match &self.format {
            Format::Csv { delimiter, columns } => parse_csv(text, *delimiter, columns),
            Format::Jsonl => jsonl::parse(text),
            Format::Combo => combo::parse(text),
        }
    }
}

fn parse_csv<'a>(text: &'a str, delimiter: u8, columns: &[Option<Asset>]) -> Result<RawFields<'a>, String> {
    let mut fields = RawFields::default();
    let mut found = 0;
    for (i, value) in CsvFields::new(text, delimiter).enumerate() {
        let value = value?;
        found = i + 1;
        if let Some(Some(asset)) = columns.get(i)
            && !value.is_empty()
        {
            fields.values[asset.index()] = Some(value);
        }
    }
    if found != columns.len() {
        return Err(format!("expected {} fields, found {found}", columns.len()));
    }
    Ok(fields)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn csv_parser() -> RecordParser {
        RecordParser::csv(b',', vec![Some(Asset::Email), None, Some(Asset::PasswordPlaintext)])
    }

    #[test]
    fn csv_keeps_mapped_columns_as_given() {
        let f = csv_parser().parse(b" A@B.c ,ignored,\"p,w\"\"\n2\"").unwrap();
        assert_eq!(f.get(Asset::Email), Some(" A@B.c "));
        assert_eq!(f.get(Asset::PasswordPlaintext), Some("p,w\"\n2"));
        let f = csv_parser().parse(b"a@b.c,,").unwrap();
        assert_eq!(f.get(Asset::PasswordPlaintext), None);
    }

    #[test]
    fn csv_field_count_must_match() {
        assert_eq!(csv_parser().parse(b"a,b").unwrap_err(), "expected 3 fields, found 2");
        assert_eq!(csv_parser().parse(b"a,b,c,d").unwrap_err(), "expected 3 fields, found 4");
        assert!(csv_parser().parse(b"a,\"b\"x,c").unwrap_err().starts_with("broken quoting"));
        assert!(csv_parser().parse(b"a,b,\"c").unwrap_err().starts_with("unclosed quote"));
    }

    #[test]
    fn invalid_utf8_names_the_byte() {
        assert_eq!(csv_parser().parse(b"ab\xFFc,d,e").unwrap_err(), "invalid UTF-8 at byte 2");
        assert_eq!(RecordParser::combo().parse(b"\xC3:x").unwrap_err(), "invalid UTF-8 at byte 0");
        assert_eq!(RecordParser::jsonl().parse(b"{\"a\":\"\xE2\x82\"}").unwrap_err(), "invalid UTF-8 at byte 6");
    }
}
