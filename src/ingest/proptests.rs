//! Property: for any bytes, framing and parsing never panic, and every physical line is
//! either blank or covered by exactly one frame.

use super::framing::tests::frame_all;
use super::validate::validate_with;
use super::{FrameKind, RecordParser};
use crate::asset::Asset;
use crate::normalize::KeyError;
use proptest::prelude::*;
use std::borrow::Cow;

/// Accepts every identifier: the real normalizers are tested in their own module.
fn any_key(s: &str) -> Result<Cow<'_, str>, KeyError> {
    Ok(Cow::Borrowed(s))
}

fn physical_lines(input: &[u8]) -> u64 {
    let newlines = input.iter().filter(|&&b| b == b'\n').count() as u64;
    newlines + u64::from(input.last().is_some_and(|&b| b != b'\n'))
}

/// Bytes rich in the characters framing and parsing care about.
fn dump_bytes() -> impl Strategy<Value = Vec<u8>> {
    let interesting = prop::sample::select(vec![
        b'"', b',', b'\n', b'\r', b':', b'{', b'}', b'a', b'@', b' ', 0xFF, 0xC3, 0xBC, 0xEF, 0xBB, 0xBF,
    ]);
    prop::collection::vec(prop_oneof![interesting, any::<u8>()], 0..300)
}

proptest! {
    #[test]
    fn frames_cover_every_line_and_parsing_never_panics(
        input in dump_bytes(),
        csv in any::<bool>(),
        buffer in 3usize..64,
        step in 1usize..17,
    ) {
        let delimiter = csv.then_some(b',');
        // A UTF-16 byte order mark makes the whole file an error, not frames.
        prop_assume!(!input.starts_with(b"\xFF\xFE") && !input.starts_with(b"\xFE\xFF"));
        let (frames, blank) = frame_all(&input, delimiter, buffer, step, 16);
        let covered: u64 = frames.iter().map(|f| u64::from(f.1)).sum();
        prop_assert_eq!(covered + blank, physical_lines(&input));
        let mut next_line = 1;
        for (line, lines, bytes, kind) in &frames {
            prop_assert!(*line >= next_line);
            prop_assert!(*lines >= 1);
            prop_assert_eq!(*kind, FrameKind::Record);
            prop_assert!(!bytes.is_empty());
            next_line = line + u64::from(*lines);
        }
        let csv_parser = RecordParser::csv(b',', vec![Some(Asset::Email), None, Some(Asset::Username)]);
        for parser in [csv_parser, RecordParser::jsonl(), RecordParser::combo()] {
            for (_, _, bytes, _) in &frames {
                let _ = parser
                    .parse(bytes)
                    .map(|fields| validate_with(fields, any_key, any_key));
            }
        }
    }
}
