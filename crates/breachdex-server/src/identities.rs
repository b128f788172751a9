//! Watched identities (SPEC §14): `GET`/`POST /api/v1/identities/` and `GET`/`DELETE
//! /api/v1/identities/{id}/`, scoped to the calling key's organization, limited by the
//! key's plan (or its `--identities`).
//!
//! What is stored (see [`crate::store::StoredIdentity`]): the name, type, full name,
//! the e-mails, usernames and phones as the client gave them (trimmed; the API returns
//! them), and for each e-mail and username the served index's derived key (§5: the
//! salted hash in a hashed index), which is what a match against the change feed
//! (`breachdex::Index::changes`) joins on. A soft delete keeps the row for its history
//! and drops its derived keys.

use crate::engine::{self, IdentityKind};
use crate::error::{ApiError, AppPath, JsonBody};
use crate::routes::Caller;
use crate::state::AppState;
use crate::store::{IdentityType, StoreError, StoredIdentity, WatchedKey};
use axum::Json;
use axum::extract::State;
use axum::http::StatusCode;
use axum::response::{IntoResponse, Response};
use serde::Deserialize;
use serde_json::{Value, json};
use std::collections::HashSet;

/// Most entries in each of `emails`, `usernames` and `phones`.
pub const MAX_LIST: usize = 100;
/// Longest `name` and `full_name`, in characters.
pub const MAX_NAME_CHARS: usize = 200;
/// Longest phone number, in characters.
pub const MAX_PHONE_CHARS: usize = 32;

/// The body of `POST /api/v1/identities/`.
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct NewIdentity {
    /// Required label.
    #[serde(default)]
    pub name: Option<String>,
    /// One of [`IdentityType::ALL`]'s names; default `personal`.
    #[serde(default)]
    pub identity_type: Option<String>,
    /// Full name.
    #[serde(default)]
    pub full_name: Option<String>,
    /// E-mail addresses (§4's rules).
    #[serde(default)]
    pub emails: Vec<String>,
    /// Usernames (§4's rules).
    #[serde(default)]
    pub usernames: Vec<String>,
    /// Phone numbers.
    #[serde(default)]
    pub phones: Vec<String>,
    /// The organization's primary identity.
    #[serde(default)]
    pub is_primary: bool,
}

/// Derives an identifier's key in the served index: `(key, hash mode)`, or why the
/// identifier is invalid ([`crate::engine::Engine::derived_key`]).
pub type Deriver<'a> = &'a dyn Fn(IdentityKind, &str) -> Result<(Vec<u8>, String), String>;

/// A validated identity: what is stored, and the derived keys of its identifiers.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ValidIdentity {
    /// The identity (its `id`, `org` and `created_at` are set by the caller).
    pub identity: StoredIdentity,
    /// One derived key per distinct e-mail and username.
    pub keys: Vec<WatchedKey>,
}

fn text_field(field: &str, value: Option<&str>, required: bool) -> Result<Option<String>, ApiError> {
    let Some(value) = value.map(str::trim) else {
        return if required { Err(ApiError::field(field, format!("\"{field}\" is required"))) } else { Ok(None) };
    };
    if value.is_empty() {
        return if required { Err(ApiError::field(field, format!("\"{field}\" must not be empty"))) } else { Ok(None) };
    }
    if value.chars().count() > MAX_NAME_CHARS || value.chars().any(char::is_control) {
        return Err(ApiError::field(
            field,
            format!("\"{field}\" must be at most {MAX_NAME_CHARS} characters without control characters"),
        ));
    }
    Ok(Some(value.to_string()))
}

fn check_list_len(field: &'static str, list: &[String]) -> Result<(), ApiError> {
    if list.len() > MAX_LIST {
        return Err(ApiError::field(field, format!("\"{field}\" has {} entries; at most {MAX_LIST}", list.len())));
    }
    Ok(())
}

/// A phone number: digits with an optional leading `+` and the separators space, `-`,
/// `.`, `(` and `)`; 3 to 20 digits, at most [`MAX_PHONE_CHARS`] characters.
fn check_phone(phone: &str) -> Result<(), String> {
    let body = phone.strip_prefix('+').unwrap_or(phone);
    let digits = body.chars().filter(char::is_ascii_digit).count();
    if phone.chars().count() > MAX_PHONE_CHARS
        || !(3..=20).contains(&digits)
        || !body.chars().all(|c| c.is_ascii_digit() || matches!(c, ' ' | '-' | '.' | '(' | ')'))
    {
        return Err(format!(
            "'{phone}' is not a phone number (3 to 20 digits, an optional leading +, separators space - . ( ))"
        ));
    }
    Ok(())
}

/// Validates a request: `name` required; `identity_type` known; every e-mail and
/// username valid by §4 (an error names the field and the entry's position), none
/// twice (after normalization); phones well-formed. `derive` gives an identifier's
/// derived key and hash mode, or why it is invalid.
pub fn validate(new: &NewIdentity, derive: Deriver<'_>) -> Result<ValidIdentity, ApiError> {
    let name = text_field("name", new.name.as_deref(), true)?.unwrap_or_default();
    let full_name = text_field("full_name", new.full_name.as_deref(), false)?;
    let identity_type = match new.identity_type.as_deref().map(str::trim) {
        None => IdentityType::Personal,
        Some(t) => IdentityType::parse(t).ok_or_else(|| {
            let known: Vec<&str> = IdentityType::ALL.iter().map(|t| t.name()).collect();
            ApiError::field("identity_type", format!("unknown identity_type '{t}' (one of {})", known.join(", ")))
        })?,
    };
    let mut keys = Vec::new();
    let mut lists = [Vec::new(), Vec::new()];
    for (slot, (field, kind, values, what)) in [
        ("emails", IdentityKind::Email, &new.emails, "e-mail address"),
        ("usernames", IdentityKind::Username, &new.usernames, "username"),
    ]
    .into_iter()
    .enumerate()
    {
        check_list_len(field, values)?;
        let mut seen: HashSet<Vec<u8>> = HashSet::new();
        for (index, value) in values.iter().enumerate() {
            let item = |message: String| ApiError::ListItem { field, index, message };
            let (key, hash_mode) =
                derive(kind, value).map_err(|why| item(format!("{field}[{index}] is not a valid {what}: {why}")))?;
            if !seen.insert(key.clone()) {
                return Err(item(format!("{field}[{index}] is the same {what} as an earlier entry")));
            }
            let kind = if kind == IdentityKind::Email { "email" } else { "username" };
            keys.push(WatchedKey { kind, key, hash_mode });
            if let Some(list) = lists.get_mut(slot) {
                list.push(value.trim().to_string());
            }
        }
    }
    let [emails, usernames] = lists;
    check_list_len("phones", &new.phones)?;
    let mut phones = Vec::with_capacity(new.phones.len());
    for (index, phone) in new.phones.iter().enumerate() {
        let phone = phone.trim();
        check_phone(phone).map_err(|why| ApiError::ListItem {
            field: "phones",
            index,
            message: format!("phones[{index}] is invalid: {why}"),
        })?;
        phones.push(phone.to_string());
    }
    Ok(ValidIdentity {
        identity: StoredIdentity {
            id: String::new(),
            org: String::new(),
            name,
            identity_type,
            full_name,
            emails,
            usernames,
            phones,
            is_primary: new.is_primary,
            last_scanned: None,
            created_at: 0,
            deleted_at: None,
        },
        keys,
    })
}

/// An identity as the API shows it.
pub fn identity_json(i: &StoredIdentity) -> Value {
    json!({
        "id": i.id,
        "name": i.name,
        "identity_type": i.identity_type.name(),
        "full_name": i.full_name,
        "emails": i.emails,
        "usernames": i.usernames,
        "phones": i.phones,
        "is_primary": i.is_primary,
        "is_active": i.deleted_at.is_none(),
        "last_scanned": i.last_scanned.map(engine::rfc3339),
        "created_at": engine::rfc3339(i.created_at),
    })
}

/// A new public id: `prefix` and 12 random bytes in hex.
pub(crate) fn new_id(prefix: &str) -> Result<String, ApiError> {
    Ok(format!("{prefix}_{}", crate::keys::random_hex_text(12).map_err(ApiError::Internal)?))
}

/// Runs a blocking store call off the async workers.
pub(crate) async fn blocking<T: Send + 'static>(
    f: impl FnOnce() -> Result<T, StoreError> + Send + 'static,
) -> Result<Result<T, StoreError>, ApiError> {
    tokio::task::spawn_blocking(f).await.map_err(|e| ApiError::Internal(e.to_string()))
}

pub(crate) fn store_error(e: StoreError) -> ApiError {
    ApiError::Internal(e.to_string())
}

/// `GET /api/v1/identities/`: the active identities of the key's organization.
pub async fn list(State(state): State<AppState>, Caller(key): Caller) -> Result<Json<Value>, ApiError> {
    let org = key.org.to_string();
    let store = state.0.store.clone();
    let all = blocking(move || store.list_identities(&org)).await?.map_err(store_error)?;
    let identities: Vec<Value> = all.iter().map(identity_json).collect();
    Ok(Json(json!({ "count": identities.len(), "identities": identities })))
}

/// `POST /api/v1/identities/`: creates one (`201` with the identity).
pub async fn create(State(state): State<AppState>, Caller(key): Caller, body: JsonBody) -> Result<Response, ApiError> {
    let new: NewIdentity = body.parse()?;
    let engine = &state.0.engine;
    let mut valid = validate(&new, &|kind, text| engine.derived_key(kind, text))?;
    valid.identity.id = new_id("idn")?;
    valid.identity.org = key.org.to_string();
    valid.identity.created_at = engine::now_unix();
    let limit = key.identity_limit;
    let store = state.0.store.clone();
    let stored = valid.identity.clone();
    match blocking(move || store.insert_identity(&valid.identity, &valid.keys, limit)).await? {
        Ok(()) => Ok((StatusCode::CREATED, Json(identity_json(&stored))).into_response()),
        Err(StoreError::LimitExceeded(message)) => Err(ApiError::LimitExceeded { message, limit: limit.unwrap_or(0) }),
        Err(e) => Err(store_error(e)),
    }
}

fn not_found(id: &str) -> ApiError {
    ApiError::NotFound(format!("no identity '{id}' in this organization"))
}

/// `GET /api/v1/identities/{id}/`: one active identity of the key's organization.
pub async fn get_one(
    State(state): State<AppState>,
    Caller(key): Caller,
    AppPath(id): AppPath<String>,
) -> Result<Json<Value>, ApiError> {
    let org = key.org.to_string();
    let store = state.0.store.clone();
    let wanted = id.clone();
    match blocking(move || store.identity(&org, &wanted)).await?.map_err(store_error)? {
        Some(identity) => Ok(Json(identity_json(&identity))),
        None => Err(not_found(&id)),
    }
}

/// `DELETE /api/v1/identities/{id}/`: soft delete (`204`).
pub async fn delete(
    State(state): State<AppState>,
    Caller(key): Caller,
    AppPath(id): AppPath<String>,
) -> Result<StatusCode, ApiError> {
    let org = key.org.to_string();
    let store = state.0.store.clone();
    let wanted = id.clone();
    let now = engine::now_unix();
    if blocking(move || store.delete_identity(&org, &wanted, now)).await?.map_err(store_error)? {
        Ok(StatusCode::NO_CONTENT)
    } else {
        Err(not_found(&id))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn plain(kind: IdentityKind, text: &str) -> Result<(Vec<u8>, String), String> {
        let key = match kind {
            IdentityKind::Email => breachdex::normalize_email(text).map_err(|e| e.to_string())?,
            IdentityKind::Username => breachdex::normalize_username(text).map_err(|e| e.to_string())?,
        };
        Ok((key.as_bytes().to_vec(), "plain".into()))
    }

    fn body(json: Value) -> NewIdentity {
        serde_json::from_value(json).unwrap()
    }

    #[test]
    fn identifiers_are_kept_as_given_and_keyed_by_normalization() {
        let v = validate(
            &body(json!({"name": " Alice ", "identity_type": "alias", "emails": [" Alice@Bücher.DE "],
                "usernames": ["Alice99"], "phones": ["+1 (555) 010-2030"]})),
            &plain,
        )
        .unwrap();
        assert_eq!(v.identity.name, "Alice");
        assert_eq!(v.identity.identity_type, IdentityType::Alias);
        assert_eq!(v.identity.emails, ["Alice@Bücher.DE"]);
        let keys: Vec<(&str, &[u8])> = v.keys.iter().map(|k| (k.kind, k.key.as_slice())).collect();
        assert_eq!(keys, [("email", &b"alice@xn--bcher-kva.de"[..]), ("username", &b"alice99"[..])]);
    }

    #[test]
    fn invalid_entries_name_the_field_and_position() {
        let e = validate(&body(json!({"name": "x", "emails": ["a@example.org", "not-an-address"]})), &plain);
        assert!(matches!(e, Err(ApiError::ListItem { field: "emails", index: 1, .. })), "{e:?}");
        let e = validate(&body(json!({"name": "x", "usernames": ["Bob", " bob "]})), &plain);
        assert!(matches!(e, Err(ApiError::ListItem { field: "usernames", index: 1, .. })), "{e:?}");
        let e = validate(&body(json!({"name": "x", "phones": ["call me", "+1 555"]})), &plain);
        assert!(matches!(e, Err(ApiError::ListItem { field: "phones", index: 0, .. })), "{e:?}");
        for (json, field) in [
            (json!({}), "name"),
            (json!({"name": "  "}), "name"),
            (json!({"name": "x", "identity_type": "robot"}), "identity_type"),
        ] {
            let e = validate(&body(json), &plain);
            assert!(matches!(&e, Err(ApiError::Validation { field: Some(f), .. }) if f == field), "{e:?}");
        }
        let many: Vec<String> = (0..=MAX_LIST).map(|i| format!("u{i}")).collect();
        let e = validate(&body(json!({"name": "x", "usernames": many})), &plain);
        assert!(matches!(&e, Err(ApiError::Validation { field: Some(f), .. }) if f == "usernames"), "{e:?}");
    }
}
