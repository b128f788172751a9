//! The Have I Been Pwned API v3 routes (SPEC §12), so that HIBP's clients work against
//! a local breachdex by changing only their base URL.
//!
//! | route | key | answer |
//! |---|---|---|
//! | `GET /api/v3/breachedaccount/{account}` | yes | `[{"Name"}]` (`truncateResponse`, default true), full breach objects, `404` with an empty body when not pwned |
//! | `GET /api/v3/breaches` | no | every breach object (`domain`, `isSpamList` filters) |
//! | `GET /api/v3/breach/{name}` | no | one breach object, `404` when unknown |
//! | `GET /api/v3/latestbreach` | no | the breach with the greatest `AddedDate` |
//! | `GET /api/v3/dataclasses` | no | every data class of the index, sorted |
//! | `GET /api/v3/subscription/status` | yes | the key's plan as HIBP's subscription object |
//!
//! HIBP's conventions rather than the `/api/v1` ones: the key comes in `hibp-api-key` (the
//! other key headers of SPEC §11 are accepted too); a missing or bad key is `401` with a
//! plain-text reason; a request without `User-Agent` is `403` (plain text); a refused
//! request is `429` with `retry-after` and `{"statusCode": 429, "message": "Rate limit
//! is exceeded. Try again in N seconds."}`; boolean query values are case-insensitive
//! (`true`, `False`), anything else is `400`. Keyed routes belong to the function `hibp`
//! of the key's allow-list and count against its plan; the keyless routes are limited
//! per client address ([`crate::client_limit::ClientLimiter`], `--public-rpm`).

use crate::engine::{self, HibpBreach};
use crate::routes::{LogFacts, presented_key, rate_headers};
use crate::state::{Admission, AppState, KeyEntry, Outcome};
use axum::extract::{ConnectInfo, MatchedPath, Path, RawQuery, Request, State};
use axum::http::{HeaderValue, StatusCode, header};
use axum::middleware::{self, Next};
use axum::response::{IntoResponse, Response};
use axum::routing::get;
use axum::{Json, Router};
use serde::Serialize;
use serde_json::json;
use std::net::SocketAddr;
use std::sync::Arc;

/// The function name of the v3 routes in a key's allow-list.
pub const FUNCTION: &str = "hibp";

/// The v3 route templates, as logged; the first two need a key.
const ROUTES: [&str; 6] = [
    "/api/v3/breachedaccount/{account}",
    "/api/v3/subscription/status",
    "/api/v3/breaches",
    "/api/v3/breach/{name}",
    "/api/v3/latestbreach",
    "/api/v3/dataclasses",
];

/// The v3 routes with their gate (User-Agent, key or per-address limit).
pub fn router(state: AppState) -> Router<AppState> {
    Router::new()
        .route(ROUTES[0], get(breached_account))
        .route(ROUTES[1], get(subscription_status))
        .route(ROUTES[2], get(breaches))
        .route(ROUTES[3], get(breach))
        .route(ROUTES[4], get(latest_breach))
        .route(ROUTES[5], get(data_classes))
        .route_layer(middleware::from_fn_with_state(state, gate))
}

/// The route template a request matched, as a static string for the log.
pub(crate) fn static_route(route: &str) -> Option<&'static str> {
    ROUTES.iter().find(|r| **r == route).copied()
}

fn plain(status: StatusCode, text: &'static str) -> Response {
    (status, [(header::CONTENT_TYPE, HeaderValue::from_static("text/plain; charset=utf-8"))], text).into_response()
}

/// HIBP's 429: `retry-after` and a JSON body with the same number of seconds.
fn too_many(retry_after: u64) -> Response {
    let body = json!({
        "statusCode": 429,
        "message": format!("Rate limit is exceeded. Try again in {retry_after} seconds."),
    });
    let mut response = (StatusCode::TOO_MANY_REQUESTS, Json(body)).into_response();
    response.headers_mut().insert(header::RETRY_AFTER, HeaderValue::from(retry_after));
    response
}

const NO_KEY: &str = "Your request to the API couldn't be authorised: no API key was given. Send the key in the \"hibp-api-key\" header.";
const BAD_KEY: &str =
    "Your request to the API couldn't be authorised: the \"hibp-api-key\" header does not hold a valid API key.";
const INACTIVE_KEY: &str = "Your request to the API couldn't be authorised: this API key is revoked or expired.";
const NO_USER_AGENT: &str =
    "Forbidden: no User-Agent header was given. Send one that names your application, as Have I Been Pwned requires.";
const IP_NOT_ALLOWED: &str = "Forbidden: this API key may not be used from this address.";
const FUNCTION_NOT_ALLOWED: &str = "Forbidden: this API key may not call the Have I Been Pwned routes (function hibp).";

/// Route layer of every v3 route: User-Agent, then the key (keyed routes) or the
/// per-address limit (keyless routes).
async fn gate(State(state): State<AppState>, mut request: Request, next: Next) -> Response {
    let route = request.extensions().get::<MatchedPath>().and_then(|m| static_route(m.as_str())).unwrap_or("-");
    let mut facts = LogFacts { route, key_id: None, org: None };
    let finish = |mut response: Response, facts: LogFacts| {
        response.extensions_mut().insert(facts);
        response
    };
    let has_agent = request.headers().get(header::USER_AGENT).is_some_and(|v| !v.as_bytes().trim_ascii().is_empty());
    if !has_agent {
        return finish(plain(StatusCode::FORBIDDEN, NO_USER_AGENT), facts);
    }
    let peer = request.extensions().get::<ConnectInfo<SocketAddr>>().map(|c| c.0);
    let forwarded = request.headers().get("x-forwarded-for").and_then(|v| v.to_str().ok());
    let client = state.client_ip(peer, forwarded);
    let now = engine::now_unix();
    let keyed = route == ROUTES[0] || route == ROUTES[1];
    if !keyed {
        // Without a peer address (a router driven in-process) there is no one to limit.
        let admitted = client.map_or(Ok(()), |ip| state.0.public_limiter.admit(ip, now));
        let response = match admitted {
            Ok(()) => next.run(request).await,
            Err(retry_after) => too_many(retry_after),
        };
        return finish(response, facts);
    }
    let Some(presented) = presented_key(request.headers()).filter(|k| !k.is_empty()) else {
        return finish(plain(StatusCode::UNAUTHORIZED, NO_KEY), facts);
    };
    let entry = match state.find_key(presented).await {
        Ok(Some(entry)) => entry,
        Ok(None) => return finish(plain(StatusCode::UNAUTHORIZED, BAD_KEY), facts),
        Err(detail) => {
            tracing::error!(detail = %detail, "key lookup failed");
            return finish(plain(StatusCode::INTERNAL_SERVER_ERROR, "Internal error."), facts);
        }
    };
    if entry.is_inactive(now) {
        return finish(plain(StatusCode::UNAUTHORIZED, INACTIVE_KEY), facts);
    }
    facts.key_id = Some(entry.id.clone());
    facts.org = Some(entry.org.clone());
    let ip_allowed = match client {
        Some(ip) => entry.allows_ip(ip),
        None => !entry.has_ip_allow_list(),
    };
    let refusal = if !ip_allowed {
        Some(IP_NOT_ALLOWED)
    } else if !entry.allows_function(FUNCTION) {
        Some(FUNCTION_NOT_ALLOWED)
    } else {
        None
    };
    if let Some(text) = refusal {
        let a = entry.admit(now, false);
        let mut response = plain(StatusCode::FORBIDDEN, text);
        rate_headers(&mut response, a.limit, a.remaining, a.reset);
        return finish(response, facts);
    }
    let a = entry.admit(now, true);
    let mut response = match a.outcome {
        Outcome::Allowed => {
            request.extensions_mut().insert(HibpCaller(Arc::clone(&entry)));
            next.run(request).await
        }
        Outcome::RateLimited | Outcome::QuotaExceeded => too_many(retry_after(&a, now)),
    };
    rate_headers(&mut response, a.limit, a.remaining, a.reset);
    finish(response, facts)
}

fn retry_after(a: &Admission, now: i64) -> u64 {
    u64::try_from(a.reset - now).unwrap_or(0).max(1)
}

/// The key of a request that passed [`gate`].
#[derive(Clone, Debug)]
struct HibpCaller(Arc<KeyEntry>);

/// A `400` with a plain-text reason (HIBP's clients read only the status).
fn bad_request(reason: String) -> Response {
    (StatusCode::BAD_REQUEST, [(header::CONTENT_TYPE, HeaderValue::from_static("text/plain; charset=utf-8"))], reason)
        .into_response()
}

fn internal(detail: impl std::fmt::Display) -> Response {
    tracing::error!(detail = %detail, "internal error");
    plain(StatusCode::INTERNAL_SERVER_ERROR, "Internal error.")
}

/// `404` with an empty body: HIBP's "not found" (not pwned, no such breach).
fn not_found() -> Response {
    StatusCode::NOT_FOUND.into_response()
}

/// The query parameters of a v3 route, percent-decoded, in order. HIBP ignores
/// parameters it does not know; so does this.
fn query_pairs(raw: Option<&str>) -> Vec<(String, String)> {
    let Some(raw) = raw else { return Vec::new() };
    raw.split('&')
        .filter(|p| !p.is_empty())
        .map(|pair| {
            let (name, value) = pair.split_once('=').unwrap_or((pair, ""));
            (percent_decode(name), percent_decode(value))
        })
        .collect()
}

/// `application/x-www-form-urlencoded` decoding: `+` is a space, `%XX` a byte; a bad
/// escape is kept as written; invalid UTF-8 is replaced.
fn percent_decode(text: &str) -> String {
    let bytes = text.as_bytes();
    let mut out = Vec::with_capacity(bytes.len());
    let mut i = 0;
    while let Some(&b) = bytes.get(i) {
        match b {
            b'+' => out.push(b' '),
            b'%' => {
                let hex = bytes.get(i + 1..i + 3).and_then(|h| std::str::from_utf8(h).ok());
                match hex.and_then(|h| u8::from_str_radix(h, 16).ok()) {
                    Some(v) => {
                        out.push(v);
                        i += 2;
                    }
                    None => out.push(b'%'),
                }
            }
            other => out.push(other),
        }
        i += 1;
    }
    String::from_utf8_lossy(&out).into_owned()
}

/// The last value of parameter `name`, if given.
fn param<'a>(pairs: &'a [(String, String)], name: &str) -> Option<&'a str> {
    pairs.iter().rev().find(|(n, _)| n == name).map(|(_, v)| v.as_str())
}

/// A boolean parameter: `true`/`false` in any case; absent (or empty) → `default`;
/// anything else is the reason of a `400`.
fn bool_param(pairs: &[(String, String)], name: &str, default: bool) -> Result<bool, String> {
    match param(pairs, name).map(str::trim) {
        None | Some("") => Ok(default),
        Some(v) if v.eq_ignore_ascii_case("true") => Ok(true),
        Some(v) if v.eq_ignore_ascii_case("false") => Ok(false),
        Some(v) => Err(format!("Bad request: {name} is '{v}'; use true or false (any case).")),
    }
}

/// The `domain` filter: normalized like an e-mail domain; `None` when absent or empty.
/// A value that is no domain name matches no breach.
fn domain_param(pairs: &[(String, String)]) -> Option<Option<String>> {
    let value = param(pairs, "domain").map(str::trim).filter(|v| !v.is_empty())?;
    Some(breachdex::normalize_domain(value).ok())
}

fn matches_domain(breach: &HibpBreach, wanted: &Option<Option<String>>) -> bool {
    match wanted {
        None => true,
        Some(None) => false,
        Some(Some(domain)) => breach.domain == *domain,
    }
}

fn json_response<T: Serialize>(value: &T) -> Response {
    match serde_json::to_vec(value) {
        Ok(bytes) => ([(header::CONTENT_TYPE, HeaderValue::from_static("application/json"))], bytes).into_response(),
        Err(e) => internal(e),
    }
}

async fn breached_account(
    State(state): State<AppState>,
    Path(account): Path<String>,
    RawQuery(raw): RawQuery,
) -> Response {
    let pairs = query_pairs(raw.as_deref());
    let truncate = match bool_param(&pairs, "truncateResponse", true) {
        Ok(v) => v,
        Err(reason) => return bad_request(reason),
    };
    let include_unverified = match bool_param(&pairs, "includeUnverified", true) {
        Ok(v) => v,
        Err(reason) => return bad_request(reason),
    };
    let domain = domain_param(&pairs);
    let (names, all) = match state.0.engine.hibp_account(&account) {
        Ok(found) => found,
        Err(e) if e.code == "validation_error" => {
            return bad_request(format!(
                "Bad request: the account is not a valid e-mail address or username ({}).",
                e.message
            ));
        }
        Err(e) => return internal(e.message),
    };
    // Retired breaches are no longer returned for an account, as on HIBP.
    let mut found: Vec<&HibpBreach> = all
        .iter()
        .filter(|b| names.contains(&b.name))
        .filter(|b| !b.is_retired)
        .filter(|b| include_unverified || b.is_verified)
        .filter(|b| matches_domain(b, &domain))
        .collect();
    if found.is_empty() {
        return not_found();
    }
    found.sort_by(|a, b| a.name.cmp(&b.name));
    if truncate {
        #[derive(Serialize)]
        struct Truncated<'a> {
            #[serde(rename = "Name")]
            name: &'a str,
        }
        json_response(&found.iter().map(|b| Truncated { name: &b.name }).collect::<Vec<_>>())
    } else {
        json_response(&found)
    }
}

async fn breaches(State(state): State<AppState>, RawQuery(raw): RawQuery) -> Response {
    let pairs = query_pairs(raw.as_deref());
    let spam = match param(&pairs, "isSpamList").map(str::trim).filter(|v| !v.is_empty()) {
        None => None,
        Some(_) => match bool_param(&pairs, "isSpamList", false) {
            Ok(v) => Some(v),
            Err(reason) => return bad_request(reason),
        },
    };
    let domain = domain_param(&pairs);
    let all = match state.0.engine.hibp_breaches() {
        Ok(all) => all,
        Err(e) => return internal(e.message),
    };
    let list: Vec<&HibpBreach> = all
        .iter()
        .filter(|b| matches_domain(b, &domain))
        .filter(|b| spam.is_none_or(|s| b.is_spam_list == s))
        .collect();
    json_response(&list)
}

async fn breach(State(state): State<AppState>, Path(name): Path<String>) -> Response {
    let all = match state.0.engine.hibp_breaches() {
        Ok(all) => all,
        Err(e) => return internal(e.message),
    };
    let wanted = name.trim();
    match all.iter().find(|b| b.name.eq_ignore_ascii_case(wanted)) {
        Some(b) => json_response(b),
        None => not_found(),
    }
}

async fn latest_breach(State(state): State<AppState>) -> Response {
    let all = match state.0.engine.hibp_breaches() {
        Ok(all) => all,
        Err(e) => return internal(e.message),
    };
    // The greatest added date; among equals, the last in source-id order. The text
    // compares like the date (fixed-width ISO form).
    match all.iter().enumerate().max_by(|(i, a), (j, b)| a.added_date.cmp(&b.added_date).then(i.cmp(j))) {
        Some((_, b)) => json_response(b),
        None => not_found(),
    }
}

async fn data_classes(State(state): State<AppState>) -> Response {
    let all = match state.0.engine.hibp_breaches() {
        Ok(all) => all,
        Err(e) => return internal(e.message),
    };
    let mut classes: Vec<&str> = all.iter().flat_map(|b| b.data_classes.iter().map(String::as_str)).collect();
    classes.sort_unstable();
    classes.dedup();
    json_response(&classes)
}

async fn subscription_status(request: Request) -> Response {
    let Some(HibpCaller(key)) = request.extensions().get::<HibpCaller>().cloned() else {
        return plain(StatusCode::UNAUTHORIZED, NO_KEY);
    };
    let mut name = key.plan.clone();
    if let Some(first) = name.get_mut(..1) {
        first.make_ascii_uppercase();
    }
    let monthly = match key.monthly {
        Some(m) => format!("{m} requests per calendar month (UTC)"),
        None => "no monthly limit".to_string(),
    };
    let until = key.expires_at().map(|at| engine::rfc3339(at).trim_end_matches('Z').to_string());
    json_response(&json!({
        "SubscriptionName": name,
        "Description": format!("breachdex {} key: {} requests per minute, {monthly}.", key.plan, key.rpm),
        "SubscribedUntil": until,
        "Rpm": key.rpm,
        "DomainSearchMaxBreachedAccounts": 0,
        "IncludesStealerLogs": true,
    }))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn query_values_are_decoded_and_booleans_read_in_any_case() {
        let pairs = query_pairs(Some("truncateResponse=FALSE&domain=Example%2Ecom&x&includeUnverified=True+"));
        assert_eq!(param(&pairs, "domain"), Some("Example.com"));
        assert_eq!(param(&pairs, "x"), Some(""));
        assert!(!bool_param(&pairs, "truncateResponse", true).unwrap());
        assert!(bool_param(&pairs, "includeUnverified", false).unwrap());
        assert!(bool_param(&pairs, "absent", true).unwrap());
        let bad = query_pairs(Some("truncateResponse=yes"));
        assert!(bool_param(&bad, "truncateResponse", true).unwrap_err().contains("truncateResponse is 'yes'"));
        assert_eq!(percent_decode("a%zz%4"), "a%zz%4", "bad escapes are kept");
        assert_eq!(percent_decode("%C3%BC"), "ü");
    }

    #[test]
    fn domain_filters_normalize_both_sides() {
        let pairs = query_pairs(Some("domain=B%C3%BCcher.DE."));
        assert_eq!(domain_param(&pairs), Some(Some("xn--bcher-kva.de".to_string())));
        assert_eq!(domain_param(&query_pairs(Some("domain="))), None, "empty: no filter");
        assert_eq!(domain_param(&query_pairs(Some("domain=-x-.com"))), Some(None), "no domain: matches nothing");
    }
}
