//! Combo lists: `identifier:password` per line, split at the first `:` so that passwords
//! may contain colons (identifiers practically never do).

use super::RawFields;
use crate::asset::Asset;
use memchr::memchr;
use std::borrow::Cow;

/// Parses one combo line; the identifier is an e-mail when it contains `@`.
pub(crate) fn parse(text: &str) -> Result<RawFields<'_>, String> {
    let colon = memchr(b':', text.as_bytes()).ok_or("no ':' separator")?;
    let (identifier, password) = match (text.get(..colon), text.get(colon + 1..)) {
        (Some(identifier), Some(password)) => (identifier, password),
        _ => return Err("internal error: bad separator position".to_owned()),
    };
    let mut fields = RawFields::default();
    let kind = if identifier.contains('@') { Asset::Email } else { Asset::Username };
    fields.values[kind.index()] = Some(identifier).filter(|s| !s.is_empty()).map(Cow::Borrowed);
    fields.values[Asset::PasswordPlaintext.index()] = Some(password).filter(|s| !s.is_empty()).map(Cow::Borrowed);
    Ok(fields)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn splits_at_the_first_colon() {
        let f = parse("a@b.c:pa:ss:").unwrap();
        assert_eq!(f.get(Asset::Email), Some("a@b.c"));
        assert_eq!(f.get(Asset::PasswordPlaintext), Some("pa:ss:"));
        assert_eq!(f.get(Asset::Username), None);
        let f = parse("bob:").unwrap();
        assert_eq!(f.get(Asset::Username), Some("bob"));
        assert_eq!(f.get(Asset::PasswordPlaintext), None);
        let f = parse(":secret").unwrap();
        assert_eq!(f.get(Asset::Username), None);
        assert_eq!(f.get(Asset::PasswordPlaintext), Some("secret"));
    }

    #[test]
    fn a_line_without_colon_is_an_error() {
        assert_eq!(parse("a@b.c;pw").unwrap_err(), "no ':' separator");
    }
}
