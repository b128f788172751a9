//! `GET /range/{prefix}`: the Pwned Passwords k-anonymity range API (SPEC §12), answered
//! the way `api.pwnedpasswords.com` answers so its clients work unchanged.
//!
//! - `prefix`: exactly 5 hex digits, any case; anything else is `400` with Pwned
//!   Passwords' plain-text reason.
//! - `?mode=sha1` (the default) or `?mode=ntlm`, in any case; another mode is `400`.
//! - `Add-Padding: true` (any case): count-0 lines with random suffixes merged in, to
//!   800-1,000 lines.
//! - The body: `SUFFIX:COUNT\r\n` lines, ascending, `text/plain`, built in one buffer.
//! - An index built without a password index: `404` with a plain-text reason (Pwned
//!   Passwords never answers 404, so a client cannot mistake it for an empty range).
//! - No key, no limit, unless the server runs with `--passwords-require-key`: then a key
//!   (`hibp-api-key`, or the other forms the API takes) allowed the `passwords`
//!   function is needed (`401`/`403` with a plain-text reason) and each client address
//!   gets `passwords_rpm` requests a minute (`429` with `retry-after` and HIBP's JSON
//!   body). The key only authenticates: `/range` does not count against its plan.
//!
//! A range is one contiguous slice of the password file (a few hundred bytes), so it is
//! read on the async thread, like a breach check.

use crate::engine;
use crate::routes::{LogFacts, presented_key};
use crate::state::AppState;
use axum::extract::{ConnectInfo, Path, Query, Request, State};
use axum::http::{HeaderName, HeaderValue, StatusCode, header};
use axum::response::{IntoResponse, Response};
use serde::Deserialize;
use std::net::{IpAddr, Ipv4Addr, SocketAddr};
use std::sync::Arc;

/// The route template.
pub const ROUTE: &str = "/range/{prefix}";
/// Pwned Passwords' answer to a malformed prefix.
pub const BAD_PREFIX: &str = "The hash prefix was not in a valid format";
/// The answer to a mode other than `sha1` and `ntlm`.
pub const BAD_MODE: &str = "The hash mode was not valid: use sha1 or ntlm";
/// The answer when the served index has no password index.
pub const NO_PASSWORD_INDEX: &str =
    "This index has no password index (it was built with --no-password-index); rebuild it without that flag";
/// How long an open range answer may be cached: an hour (a new build is published at
/// most that long before every cache sees it).
pub const CACHE_CONTROL_OPEN: &str = "public, max-age=3600";
/// Answers to keyed requests are not cached by shared caches.
pub const CACHE_CONTROL_KEYED: &str = "private, max-age=3600";

const ADD_PADDING: HeaderName = HeaderName::from_static("add-padding");

#[derive(Deserialize)]
pub(crate) struct RangeParams {
    mode: Option<String>,
}

fn text(status: StatusCode, body: &'static str) -> Response {
    (status, [(header::CONTENT_TYPE, HeaderValue::from_static("text/plain; charset=utf-8"))], body).into_response()
}

/// HIBP's 429: `retry-after` and `{"statusCode": 429, "message": ...}`.
pub fn rate_limited(retry_after: u64) -> Response {
    let body = serde_json::json!({
        "statusCode": 429,
        "message": format!("Rate limit is exceeded. Try again in {retry_after} seconds."),
    });
    let mut response = (StatusCode::TOO_MANY_REQUESTS, axum::Json(body)).into_response();
    response.headers_mut().insert(header::RETRY_AFTER, HeaderValue::from(retry_after));
    response
}

/// What a `/range` request carries besides its path and query.
struct RangeRequest {
    /// The key presented (only read under `--passwords-require-key`).
    key: Option<String>,
    /// The client address, when known.
    client: Option<IpAddr>,
    /// `Add-Padding: true`.
    padded: bool,
}

impl RangeRequest {
    fn of(state: &AppState, request: &Request) -> RangeRequest {
        let headers = request.headers();
        let key = state
            .config()
            .passwords_require_key
            .then(|| presented_key(headers).filter(|k| !k.is_empty()).map(str::to_string))
            .flatten();
        let peer = request.extensions().get::<ConnectInfo<SocketAddr>>().map(|c| c.0);
        let client = state.client_ip(peer, headers.get("x-forwarded-for").and_then(|v| v.to_str().ok()));
        let padded = headers
            .get(ADD_PADDING)
            .and_then(|v| v.to_str().ok())
            .is_some_and(|v| v.trim().eq_ignore_ascii_case("true"));
        RangeRequest { key, client, padded }
    }
}

/// The handler of [`ROUTE`].
pub(crate) async fn range(
    State(state): State<AppState>,
    prefix: Result<Path<String>, axum::extract::rejection::PathRejection>,
    params: Result<Query<RangeParams>, axum::extract::rejection::QueryRejection>,
    request: Request,
) -> Response {
    let asked = RangeRequest::of(&state, &request);
    drop(request);
    let mut facts = LogFacts { route: ROUTE, key_id: None, org: None };
    let mut response = answer(&state, prefix, params, asked, &mut facts).await;
    response.extensions_mut().insert(facts);
    response
}

async fn answer(
    state: &AppState,
    prefix: Result<Path<String>, axum::extract::rejection::PathRejection>,
    params: Result<Query<RangeParams>, axum::extract::rejection::QueryRejection>,
    asked: RangeRequest,
    facts: &mut LogFacts,
) -> Response {
    let keyed = state.config().passwords_require_key;
    if keyed && let Err(refusal) = admit(state, &asked, facts).await {
        return refusal;
    }
    let ntlm = match params {
        Ok(Query(RangeParams { mode: None })) => false,
        Ok(Query(RangeParams { mode: Some(m) })) if m.eq_ignore_ascii_case("sha1") => false,
        Ok(Query(RangeParams { mode: Some(m) })) if m.eq_ignore_ascii_case("ntlm") => true,
        _ => return text(StatusCode::BAD_REQUEST, BAD_MODE),
    };
    let Ok(Path(prefix)) = prefix else { return text(StatusCode::BAD_REQUEST, BAD_PREFIX) };
    let seed = if asked.padded {
        match getrandom::u64() {
            Ok(seed) => Some(seed),
            Err(e) => return crate::ApiError::Internal(format!("no random padding seed: {e}")).into_response(),
        }
    } else {
        None
    };
    match state.0.engine.password_range(&prefix, ntlm, seed) {
        Ok(Some(body)) => {
            let cache = if keyed { CACHE_CONTROL_KEYED } else { CACHE_CONTROL_OPEN };
            (
                [
                    (header::CONTENT_TYPE, HeaderValue::from_static("text/plain")),
                    (header::CACHE_CONTROL, HeaderValue::from_static(cache)),
                    (header::VARY, HeaderValue::from_static("Add-Padding")),
                ],
                body,
            )
                .into_response()
        }
        Ok(None) => text(StatusCode::NOT_FOUND, NO_PASSWORD_INDEX),
        Err(e) if e.code == "validation_error" => text(StatusCode::BAD_REQUEST, BAD_PREFIX),
        Err(e) => crate::ApiError::from(e).into_response(),
    }
}

/// Under `--passwords-require-key`: the key, its IP and function allow-lists, then the
/// client address's minute.
async fn admit(state: &AppState, asked: &RangeRequest, facts: &mut LogFacts) -> Result<(), Response> {
    let Some(presented) = asked.key.as_deref() else {
        return Err(text(StatusCode::UNAUTHORIZED, "Access denied due to missing hibp-api-key."));
    };
    let entry = match state.find_key(presented).await {
        Ok(Some(entry)) => entry,
        Ok(None) => return Err(text(StatusCode::UNAUTHORIZED, "Access denied due to invalid hibp-api-key.")),
        Err(detail) => return Err(crate::ApiError::Internal(detail).into_response()),
    };
    let now = engine::now_unix();
    if entry.is_inactive(now) {
        return Err(text(StatusCode::UNAUTHORIZED, "Access denied due to a revoked or expired hibp-api-key."));
    }
    facts.key_id = Some(Arc::clone(&entry.id));
    facts.org = Some(Arc::clone(&entry.org));
    let ip_allowed = match asked.client {
        Some(ip) => entry.allows_ip(ip),
        // No peer address (a router driven without a socket): only keys without an IP
        // allow-list pass.
        None => !entry.has_ip_allow_list(),
    };
    if !ip_allowed {
        return Err(text(StatusCode::FORBIDDEN, "This hibp-api-key may not be used from this address."));
    }
    if !entry.allows_function("passwords") {
        return Err(text(StatusCode::FORBIDDEN, "This hibp-api-key may not call the passwords function."));
    }
    // Without a peer address every such request shares one window.
    let client = asked.client.unwrap_or(IpAddr::V4(Ipv4Addr::UNSPECIFIED));
    state.0.range_limiter.admit(client, now).map_err(rate_limited)
}
