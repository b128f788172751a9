//! JSON Lines records: one JSON object per line, keys resolved like CSV columns.
//!
//! Values are taken as raw JSON text first, so numbers keep exactly the digits the dump
//! holds (a 20-digit phone number must not go through `f64`), and strings without escapes
//! are borrowed from the record. Keys naming no asset are noted (the build reports them
//! like unknown CSV columns) and skipped without looking at their values: serde_json skips nested values iteratively, so deep nesting costs no stack.

use super::{MAX_UNKNOWN_KEYS_PER_RECORD, RawFields};
use crate::asset::{ASSET_COUNT, Asset};
use serde::de::{self, Deserialize, Deserializer, IgnoredAny, MapAccess, Visitor};
use serde_json::value::RawValue;
use std::borrow::Cow;
use std::fmt;

/// Parses one JSON Lines record.
pub(crate) fn parse(text: &str) -> Result<RawFields<'_>, String> {
    let mut de = serde_json::Deserializer::from_str(text);
    let record = JsonRecord::deserialize(&mut de).map_err(|e| format!("invalid JSON: {e}"))?;
    de.end().map_err(|e| format!("invalid JSON: {e}"))?;
    match record.problem {
        Some(problem) => Err(problem),
        None => Ok(record.fields),
    }
}

/// A string that borrows from the input when it holds no escapes.
struct JsonStr<'a>(Cow<'a, str>);

impl<'de> Deserialize<'de> for JsonStr<'de> {
    fn deserialize<D: Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        struct StrVisitor;
        impl<'de> Visitor<'de> for StrVisitor {
            type Value = JsonStr<'de>;
            fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
                f.write_str("a string")
            }
            fn visit_borrowed_str<E: de::Error>(self, v: &'de str) -> Result<Self::Value, E> {
                Ok(JsonStr(Cow::Borrowed(v)))
            }
            fn visit_str<E: de::Error>(self, v: &str) -> Result<Self::Value, E> {
                Ok(JsonStr(Cow::Owned(v.to_owned())))
            }
            fn visit_string<E: de::Error>(self, v: String) -> Result<Self::Value, E> {
                Ok(JsonStr(Cow::Owned(v)))
            }
        }
        deserializer.deserialize_str(StrVisitor)
    }
}

/// The fields of one object, or the first reason to reject it. The whole object is still
/// consumed after a problem so that a syntax error later on wins (it says more).
#[derive(Default)]
struct JsonRecord<'a> {
    fields: RawFields<'a>,
    problem: Option<String>,
}

impl<'de> Deserialize<'de> for JsonRecord<'de> {
    fn deserialize<D: Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        deserializer.deserialize_map(RecordVisitor)
    }
}

struct RecordVisitor;

impl<'de> Visitor<'de> for RecordVisitor {
    type Value = JsonRecord<'de>;

    fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("a JSON object")
    }

    fn visit_map<A: MapAccess<'de>>(self, mut map: A) -> Result<Self::Value, A::Error> {
        let mut record = JsonRecord::default();
        let mut keys: [Option<Cow<'de, str>>; ASSET_COUNT] = Default::default();
        while let Some(JsonStr(key)) = map.next_key::<JsonStr<'de>>()? {
            let Some(asset) = Asset::from_column(&key) else {
                map.next_value::<IgnoredAny>()?;
                let fields = &mut record.fields;
                let noted = fields.unknown_keys.len() >= MAX_UNKNOWN_KEYS_PER_RECORD
                    || key.trim().is_empty()
                    || fields.unknown_keys.contains(&key);
                if !noted {
                    fields.unknown_keys.push(key);
                }
                continue;
            };
            let raw: &'de RawValue = map.next_value()?;
            if record.problem.is_some() {
                continue;
            }
            let slot = &mut keys[asset.index()];
            if let Some(first) = slot {
                record.problem = Some(if *first == key {
                    format!("key '{key}' appears twice")
                } else {
                    format!("keys '{first}' and '{key}' both give the asset {asset}")
                });
                continue;
            }
            match value_of(raw, &key) {
                Ok(value) => record.fields.values[asset.index()] = value,
                Err(problem) => record.problem = Some(problem),
            }
            *slot = Some(key);
        }
        Ok(record)
    }
}

/// The text of one asset value: strings as they are, numbers as written, `null` and `""`
/// as absent; anything else cannot be an asset value.
fn value_of<'de>(raw: &'de RawValue, key: &str) -> Result<Option<Cow<'de, str>>, String> {
    let text = raw.get();
    let kind = match text.as_bytes().first() {
        Some(b'"') => {
            let JsonStr(value) =
                serde_json::from_str::<JsonStr<'de>>(text).map_err(|e| format!("invalid JSON: {e}"))?;
            return Ok(Some(value).filter(|v| !v.is_empty()));
        }
        Some(b'-' | b'0'..=b'9') => return Ok(Some(Cow::Borrowed(text))),
        Some(b'n') => return Ok(None),
        Some(b't' | b'f') => "a boolean",
        Some(b'[') => "an array",
        _ => "an object",
    };
    Err(format!("key '{key}' holds {kind}; expected a string or a number"))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn ok(text: &str) -> RawFields<'_> {
        parse(text).unwrap()
    }

    #[test]
    fn strings_numbers_nulls_and_aliases() {
        let f = ok(
            r#"{"E-Mail": "a@b.c", "pass": "p\"w", "phone": 49151123456789012345, "dob": null, "name": "", "hash": -1.5e3}"#,
        );
        assert_eq!(f.get(Asset::Email), Some("a@b.c"));
        assert_eq!(f.get(Asset::PasswordPlaintext), Some("p\"w"));
        assert_eq!(f.get(Asset::Phone), Some("49151123456789012345"));
        assert_eq!(f.get(Asset::PasswordHash), Some("-1.5e3"));
        assert_eq!(f.get(Asset::Dob), None);
        assert_eq!(f.get(Asset::FullName), None);
        assert!(matches!(f.values[Asset::Email.index()], Some(Cow::Borrowed(_))));
    }

    #[test]
    fn unknown_keys_are_noted_once_per_record() {
        let f = ok(r#"{"colour": "red", "email": "a@b.c", "colour": "blue", "pw": "x", " ": 1, "size": 9}"#);
        assert_eq!(f.unknown_keys, ["colour", "size"]);
        assert_eq!(f.get(Asset::PasswordPlaintext), Some("x"));
        let many: Vec<String> = (0..20).map(|i| format!(r#""k{i}": 1"#)).collect();
        let text = format!("{{{}}}", many.join(", "));
        assert_eq!(ok(&text).unknown_keys.len(), MAX_UNKNOWN_KEYS_PER_RECORD);
    }

    #[test]
    fn unknown_keys_are_ignored_whatever_they_hold() {
        let f = ok(r#"{"colour": {"deep": [1, {"x": null}]}, "user": "bob", "flag": true}"#);
        assert_eq!(f.get(Asset::Username), Some("bob"));
        assert_eq!(f, {
            let mut expected = RawFields::default();
            expected.values[Asset::Username.index()] = Some(Cow::Borrowed("bob"));
            expected.unknown_keys = vec![Cow::Borrowed("colour"), Cow::Borrowed("flag")];
            expected
        });
    }

    #[test]
    fn compound_values_of_assets_are_errors_naming_the_key() {
        assert_eq!(
            parse(r#"{"email": ["a@b.c"]}"#).unwrap_err(),
            "key 'email' holds an array; expected a string or a number"
        );
        assert_eq!(
            parse(r#"{"Login": {"x": 1}}"#).unwrap_err(),
            "key 'Login' holds an object; expected a string or a number"
        );
        assert_eq!(parse(r#"{"ip": false}"#).unwrap_err(), "key 'ip' holds a boolean; expected a string or a number");
    }

    #[test]
    fn one_asset_twice_is_an_error() {
        assert_eq!(
            parse(r#"{"email": "a@b.c", "mail": "d@e.f"}"#).unwrap_err(),
            "keys 'email' and 'mail' both give the asset email"
        );
        assert_eq!(parse(r#"{"email": "a@b.c", "email": null}"#).unwrap_err(), "key 'email' appears twice");
    }

    #[test]
    fn syntax_errors_and_non_objects() {
        assert!(parse(r#"{"email": "a@b.c""#).unwrap_err().starts_with("invalid JSON: "));
        assert!(parse(r#"{"email": "a@b.c"} trailing"#).unwrap_err().starts_with("invalid JSON: "));
        assert!(parse(r#"["email"]"#).unwrap_err().contains("expected a JSON object"));
        assert!(parse("42").unwrap_err().contains("expected a JSON object"));
        assert!(parse("").unwrap_err().starts_with("invalid JSON: "));
    }

    #[test]
    fn deep_nesting_does_not_overflow_the_stack() {
        let depth = 10_000;
        let nested = format!("{}{}", "[".repeat(depth), "]".repeat(depth));
        // Under a key naming no asset the value is skipped iteratively: fine.
        let text = format!(r#"{{"email": "a@b.c", "junk": {nested}}}"#);
        assert_eq!(parse(&text).unwrap().get(Asset::Email), Some("a@b.c"));
        // Under an asset key it is an array: rejected, naming the key.
        let text = format!(r#"{{"email": {nested}}}"#);
        assert!(parse(&text).unwrap_err().contains("key 'email' holds an array"));
        // At the top level it is not an object.
        assert!(parse(&nested).is_err());
        let objects = format!("{}1{}", r#"{"a":"#.repeat(depth), "}".repeat(depth));
        assert!(parse(&objects).is_ok());
        let unbalanced = "{\"a\":".repeat(depth);
        assert!(parse(&unbalanced).is_err());
    }
}
