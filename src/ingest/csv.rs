//! RFC 4180 field splitting for one framed CSV record (header or data row).
//!
//! Follows the same rules as the framing state machine: a `"` opens a quoted field only at
//! the start of a field, `""` inside quotes is one quote, and a quoted field may hold
//! delimiters and line ends. Values borrow from the record unless they contain `""`.

use memchr::memchr;
use std::borrow::Cow;

/// Iterator over the fields of one record; yields `Err` (and then stops) on broken
/// quoting.
pub(crate) struct CsvFields<'a> {
    text: &'a str,
    delimiter: u8,
    /// Byte offset of the next field, `None` once the last field was returned.
    next: Option<usize>,
    /// 1-based number of the next field, for messages.
    number: usize,
}

impl<'a> CsvFields<'a> {
    pub(crate) fn new(text: &'a str, delimiter: u8) -> CsvFields<'a> {
        CsvFields { text, delimiter, next: Some(0), number: 1 }
    }

    fn quoted(&self, open: usize) -> Result<(Cow<'a, str>, Option<usize>), String> {
        let bytes = self.text.as_bytes();
        let number = self.number;
        let mut owned: Option<String> = None;
        let mut segment = open + 1;
        let mut from = open + 1;
        loop {
            let rest = bytes.get(from..).unwrap_or_default();
            let Some(k) = memchr(b'"', rest) else {
                return Err(format!("unclosed quote in field {number}"));
            };
            let quote = from + k;
            if bytes.get(quote + 1) == Some(&b'"') {
                // `""`: keep one quote, skip the other.
                let piece = slice(self.text, segment, quote + 1)?;
                owned.get_or_insert_with(String::new).push_str(piece);
                from = quote + 2;
                segment = from;
                continue;
            }
            let tail = slice(self.text, segment, quote)?;
            let value = match owned {
                Some(mut value) => {
                    value.push_str(tail);
                    Cow::Owned(value)
                }
                None => Cow::Borrowed(tail),
            };
            return match bytes.get(quote + 1) {
                None => Ok((value, None)),
                Some(&b) if b == self.delimiter => Ok((value, Some(quote + 2))),
                Some(_) => Err(format!("broken quoting: text after the closing quote of field {number}")),
            };
        }
    }
}

impl<'a> Iterator for CsvFields<'a> {
    type Item = Result<Cow<'a, str>, String>;

    fn next(&mut self) -> Option<Self::Item> {
        let start = self.next?;
        let bytes = self.text.as_bytes();
        let parsed = if bytes.get(start) == Some(&b'"') {
            self.quoted(start)
        } else {
            let rest = bytes.get(start..).unwrap_or_default();
            match memchr(self.delimiter, rest) {
                Some(k) => slice(self.text, start, start + k).map(|v| (Cow::Borrowed(v), Some(start + k + 1))),
                None => slice(self.text, start, bytes.len()).map(|v| (Cow::Borrowed(v), None)),
            }
        };
        self.number += 1;
        match parsed {
            Ok((value, next)) => {
                self.next = next;
                Some(Ok(value))
            }
            Err(reason) => {
                self.next = None;
                Some(Err(reason))
            }
        }
    }
}

/// `text[start..end]`; the bounds are always ASCII positions of `text`, so the error is
/// unreachable, but input bytes must never be able to panic the builder.
fn slice(text: &str, start: usize, end: usize) -> Result<&str, String> {
    text.get(start..end).ok_or_else(|| format!("internal error: bad field bounds {start}..{end}"))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn split(text: &str, delimiter: u8) -> Result<Vec<String>, String> {
        CsvFields::new(text, delimiter).map(|f| f.map(Cow::into_owned)).collect()
    }

    #[test]
    fn splits_rfc4180_fields() {
        assert_eq!(split("a,b,,c", b',').unwrap(), ["a", "b", "", "c"]);
        assert_eq!(split("", b',').unwrap(), [""]);
        assert_eq!(split("a,", b',').unwrap(), ["a", ""]);
        assert_eq!(split("\"a,b\",\"x\"\"y\"\"\",\"l1\nl2\",\"\"", b',').unwrap(), ["a,b", "x\"y\"", "l1\nl2", ""]);
        assert_eq!(split("a\tb\"c\t\"d\te\"", b'\t').unwrap(), ["a", "b\"c", "d\te"]);
        assert_eq!(split(" spaced , kept ", b'|').unwrap(), [" spaced , kept "]);
    }

    #[test]
    fn borrows_unless_unescaping() {
        let fields: Vec<_> = CsvFields::new("\"plain\",\"a\"\"b\"", b',').collect();
        assert!(matches!(fields[0], Ok(Cow::Borrowed("plain"))));
        assert!(matches!(&fields[1], Ok(Cow::Owned(s)) if s == "a\"b"));
    }

    #[test]
    fn rejects_broken_and_unclosed_quotes() {
        assert_eq!(split("a,\"b\"c,d", b',').unwrap_err(), "broken quoting: text after the closing quote of field 2");
        assert_eq!(split("\"abc", b',').unwrap_err(), "unclosed quote in field 1");
        assert_eq!(split("x,\"a\"\"", b',').unwrap_err(), "unclosed quote in field 2");
    }
}
