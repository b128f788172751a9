//! The router: routes of SPEC §11 (and §12's, from [`crate::hibp`]), the key check (authentication, IP and function
//! allow-lists, rate limits) as a `route_layer` so unknown paths stay 404, the request
//! log as an outer layer, and JSON answers for unknown routes and wrong methods.

use crate::engine::{self, IdentityKind, RecordFilter};
use crate::error::{ApiError, AppPath, AppQuery, JsonBody};
use crate::scans;
use crate::state::{AppState, KeyEntry, Outcome};
use crate::store::LogRow;
use crate::{identities, webhooks};
use axum::extract::{ConnectInfo, FromRequestParts, MatchedPath, Request, State};
use axum::http::request::Parts;
use axum::http::{HeaderMap, HeaderName, HeaderValue, Method, StatusCode, header};
use axum::middleware::{self, Next};
use axum::response::{IntoResponse, Response};
use axum::routing::{delete, get, post};
use axum::{Json, Router};
use serde::Deserialize;
use serde_json::json;
use std::borrow::Cow;
use std::collections::BTreeSet;
use std::net::SocketAddr;
use std::sync::Arc;
use std::sync::atomic::Ordering;
use std::time::Instant;

/// Largest request body accepted.
pub const BODY_LIMIT: usize = 64 * 1024;
/// Most identities in one `breach-data` request.
pub const MAX_IDENTITIES: usize = 10;

const X_RATELIMIT_LIMIT: HeaderName = HeaderName::from_static("x-ratelimit-limit");
const X_RATELIMIT_REMAINING: HeaderName = HeaderName::from_static("x-ratelimit-remaining");
const X_RATELIMIT_RESET: HeaderName = HeaderName::from_static("x-ratelimit-reset");

/// The function of the allow-list a route template belongs to.
fn function_of(route: &str) -> Option<&'static str> {
    Some(match route {
        "/api/v1/health/" | "/api/v1/health" => "health",
        "/api/v1/breach-check/" | "/api/v1/breach-check" => "breach-check",
        "/api/v1/breach/data/emails/{email}" | "/api/v1/breach/data/usernames/{username}" => "breach-data",
        "/api/v1/breach/catalog" | "/api/v1/breach/catalog/" | "/api/v1/breach/catalog/{id}" => "catalog",
        "/api/v1/usage/" | "/api/v1/usage" => "usage",
        "/api/v1/identities/" | "/api/v1/identities" | "/api/v1/identities/{id}/" | "/api/v1/identities/{id}" => {
            "identities"
        }
        "/api/v1/scans/"
        | "/api/v1/scans"
        | "/api/v1/scans/{id}/"
        | "/api/v1/scans/{id}"
        | "/api/v1/scans/{id}/findings/"
        | "/api/v1/scans/{id}/findings" => "scans",
        "/api/v1/risk-score/" | "/api/v1/risk-score" => "risk-score",
        "/api/v1/webhooks/"
        | "/api/v1/webhooks"
        | "/api/v1/webhooks/{id}/"
        | "/api/v1/webhooks/{id}"
        | "/api/v1/webhooks/{id}/deliveries/"
        | "/api/v1/webhooks/{id}/deliveries" => "webhooks",
        _ => return None,
    })
}

/// The router of the whole API over `state`.
pub fn router(state: AppState) -> Router {
    let api = Router::new()
        .route("/api/v1/health/", get(health))
        .route("/api/v1/health", get(health))
        .route("/api/v1/breach-check/", post(breach_check))
        .route("/api/v1/breach-check", post(breach_check))
        .route("/api/v1/breach/data/emails/{email}", get(breach_data_emails))
        .route("/api/v1/breach/data/usernames/{username}", get(breach_data_usernames))
        .route("/api/v1/breach/catalog", get(catalog))
        .route("/api/v1/breach/catalog/", get(catalog))
        .route("/api/v1/breach/catalog/{id}", get(catalog_source))
        .route("/api/v1/usage/", get(usage))
        .route("/api/v1/usage", get(usage))
        .route("/api/v1/identities/", get(identities::list).post(identities::create))
        .route("/api/v1/identities", get(identities::list).post(identities::create))
        .route("/api/v1/identities/{id}/", get(identities::get_one).delete(identities::delete))
        .route("/api/v1/identities/{id}", get(identities::get_one).delete(identities::delete))
        .route("/api/v1/scans/", post(scans::create))
        .route("/api/v1/scans", post(scans::create))
        .route("/api/v1/scans/{id}/", get(scans::get_one))
        .route("/api/v1/scans/{id}", get(scans::get_one))
        .route("/api/v1/scans/{id}/findings/", get(scans::findings))
        .route("/api/v1/scans/{id}/findings", get(scans::findings))
        .route("/api/v1/risk-score/", get(scans::risk_score))
        .route("/api/v1/risk-score", get(scans::risk_score))
        .route("/api/v1/webhooks/", get(webhooks::list).post(webhooks::create).delete(webhooks::delete_on_collection))
        .route("/api/v1/webhooks", get(webhooks::list).post(webhooks::create).delete(webhooks::delete_on_collection))
        .route("/api/v1/webhooks/{id}/", delete(webhooks::delete))
        .route("/api/v1/webhooks/{id}", delete(webhooks::delete))
        .route("/api/v1/webhooks/{id}/deliveries/", get(webhooks::deliveries))
        .route("/api/v1/webhooks/{id}/deliveries", get(webhooks::deliveries))
        .route_layer(middleware::from_fn_with_state(state.clone(), authenticate));
    let mut app = Router::new()
        .route("/healthz", get(healthz))
        .route(crate::passwords::ROUTE, get(crate::passwords::range))
        .merge(api)
        .merge(crate::hibp::router(state.clone()));
    if state.config().metrics {
        app = app.route("/metrics", get(metrics));
    }
    let cors = cors_layer(&state.config().cors_origins);
    let mut app = app
        .fallback(not_found)
        .method_not_allowed_fallback(method_not_allowed)
        .layer(axum::extract::DefaultBodyLimit::max(BODY_LIMIT))
        .layer(middleware::from_fn_with_state(state.clone(), record_request));
    if let Some(cors) = cors {
        app = app.layer(cors);
    }
    app.with_state(state)
}

fn cors_layer(origins: &[String]) -> Option<tower_http::cors::CorsLayer> {
    use tower_http::cors::{AllowOrigin, CorsLayer};
    if origins.is_empty() {
        return None;
    }
    let values: Vec<HeaderValue> = origins.iter().filter_map(|o| HeaderValue::from_str(o).ok()).collect();
    Some(
        CorsLayer::new()
            .allow_origin(AllowOrigin::list(values))
            .allow_methods([Method::GET, Method::POST, Method::DELETE])
            .allow_headers([
                header::AUTHORIZATION,
                header::CONTENT_TYPE,
                HeaderName::from_static("x-api-key"),
                HeaderName::from_static("hibp-api-key"),
            ])
            .expose_headers([X_RATELIMIT_LIMIT, X_RATELIMIT_REMAINING, X_RATELIMIT_RESET, header::RETRY_AFTER]),
    )
}

/// What the request log learns from inner layers, carried on the response.
#[derive(Clone, Debug)]
pub(crate) struct LogFacts {
    pub(crate) route: &'static str,
    pub(crate) key_id: Option<Arc<str>>,
    pub(crate) org: Option<Arc<str>>,
}

fn static_method(method: &Method) -> &'static str {
    match *method {
        Method::GET => "GET",
        Method::POST => "POST",
        Method::PUT => "PUT",
        Method::DELETE => "DELETE",
        Method::HEAD => "HEAD",
        Method::OPTIONS => "OPTIONS",
        Method::PATCH => "PATCH",
        _ => "OTHER",
    }
}

fn static_route(route: &str) -> &'static str {
    const ROUTES: [&str; 34] = [
        "/api/v1/health/",
        "/api/v1/health",
        "/api/v1/breach-check/",
        "/api/v1/breach-check",
        "/api/v1/breach/data/emails/{email}",
        "/api/v1/breach/data/usernames/{username}",
        "/api/v1/breach/catalog",
        "/api/v1/breach/catalog/",
        "/api/v1/breach/catalog/{id}",
        "/api/v1/usage/",
        "/api/v1/usage",
        "/api/v1/identities/",
        "/api/v1/identities",
        "/api/v1/identities/{id}/",
        "/api/v1/identities/{id}",
        "/api/v1/scans/",
        "/api/v1/scans",
        "/api/v1/scans/{id}/",
        "/api/v1/scans/{id}",
        "/api/v1/scans/{id}/findings/",
        "/api/v1/scans/{id}/findings",
        "/api/v1/risk-score/",
        "/api/v1/risk-score",
        "/api/v1/webhooks/",
        "/api/v1/webhooks",
        "/api/v1/webhooks/{id}/",
        "/api/v1/webhooks/{id}",
        "/api/v1/webhooks/{id}/deliveries/",
        "/api/v1/webhooks/{id}/deliveries",
        "/healthz",
        "/metrics",
        crate::passwords::ROUTE,
        "-",
        "-",
    ];
    ROUTES.iter().find(|r| **r == route).copied().unwrap_or("-")
}

/// Outer layer: times the request and queues one log row (route template only).
async fn record_request(State(state): State<AppState>, request: Request, next: Next) -> Response {
    let started = Instant::now();
    let method = static_method(request.method());
    let peer = request.extensions().get::<ConnectInfo<SocketAddr>>().map(|c| c.0);
    // Resolved before the request moves on; X-Forwarded-For is read only from a
    // trusted proxy.
    let client = state.client_ip(peer, request.headers().get("x-forwarded-for").and_then(|v| v.to_str().ok()));
    let response = next.run(request).await;
    let latency_us = u64::try_from(started.elapsed().as_micros()).unwrap_or(u64::MAX);
    let status = response.status().as_u16();
    let facts = response.extensions().get::<LogFacts>().cloned();
    let route = facts.as_ref().map_or("-", |f| f.route);
    if let Some(slot) = state.0.metrics.responses.get(usize::from(status / 100).saturating_sub(1)) {
        slot.fetch_add(1, Ordering::Relaxed);
    }
    tracing::debug!(method = %method, route, status, latency_us, "request");
    if route == "/healthz" || route == "/metrics" {
        return response;
    }
    let (key_id, org) = facts.map_or((None, None), |f| (f.key_id, f.org));
    state.log(LogRow {
        at_ms: engine::now_unix_millis(),
        key_id,
        org,
        method: method.into(),
        route: route.into(),
        status,
        client,
        latency_us,
    });
    response
}

/// The key of an authenticated request, for handlers.
#[derive(Clone, Debug)]
pub struct Caller(pub Arc<KeyEntry>);

impl<S: Send + Sync> FromRequestParts<S> for Caller {
    type Rejection = ApiError;

    async fn from_request_parts(parts: &mut Parts, _: &S) -> Result<Self, ApiError> {
        parts.extensions.get::<Caller>().cloned().ok_or(ApiError::Unauthenticated("an API key is required"))
    }
}

pub(crate) fn presented_key(headers: &HeaderMap) -> Option<&str> {
    if let Some(v) = headers.get(header::AUTHORIZATION).and_then(|v| v.to_str().ok()) {
        let v = v.trim();
        if let Some(key) = v.strip_prefix("Bearer ").or_else(|| v.strip_prefix("bearer ")) {
            return Some(key.trim());
        }
    }
    ["x-api-key", "hibp-api-key"].iter().find_map(|h| headers.get(*h).and_then(|v| v.to_str().ok()).map(str::trim))
}

pub(crate) fn rate_headers(response: &mut Response, limit: u64, remaining: u64, reset: i64) {
    let h = response.headers_mut();
    h.insert(X_RATELIMIT_LIMIT, HeaderValue::from(limit));
    h.insert(X_RATELIMIT_REMAINING, HeaderValue::from(remaining));
    h.insert(X_RATELIMIT_RESET, HeaderValue::from(reset));
}

/// Route layer of every `/api/v1` route: key, IP allow-list, function allow-list, limits.
async fn authenticate(State(state): State<AppState>, mut request: Request, next: Next) -> Response {
    let route = static_route(request.extensions().get::<MatchedPath>().map_or("-", MatchedPath::as_str));
    let mut facts = LogFacts { route, key_id: None, org: None };
    let with_facts = |mut response: Response, facts: LogFacts| {
        response.extensions_mut().insert(facts);
        response
    };
    let Some(presented) = presented_key(request.headers()).filter(|k| !k.is_empty()) else {
        let e =
            ApiError::Unauthenticated("an API key is required (Authorization: Bearer KEY, x-api-key or hibp-api-key)");
        return with_facts(e.into_response(), facts);
    };
    let entry = match state.find_key(presented).await {
        Ok(Some(entry)) => entry,
        Ok(None) => {
            return with_facts(ApiError::Unauthenticated("invalid API key").into_response(), facts);
        }
        Err(detail) => return with_facts(ApiError::Internal(detail).into_response(), facts),
    };
    let now = engine::now_unix();
    if entry.is_inactive(now) {
        return with_facts(ApiError::Unauthenticated("this API key is revoked or expired").into_response(), facts);
    }
    facts.key_id = Some(entry.id.clone());
    facts.org = Some(entry.org.clone());
    let peer = request.extensions().get::<ConnectInfo<SocketAddr>>().map(|c| c.0);
    let forwarded = request.headers().get("x-forwarded-for").and_then(|v| v.to_str().ok());
    let ip_allowed = match state.client_ip(peer, forwarded) {
        Some(ip) => entry.allows_ip(ip),
        // No peer address (a router driven without a socket): only keys without an
        // IP allow-list pass.
        None => !entry.has_ip_allow_list(),
    };
    let refusal = (!ip_allowed).then_some(ApiError::IpNotAllowed).or_else(|| match function_of(route) {
        Some(f) if entry.allows_function(f) => None,
        Some(f) => Some(ApiError::FunctionNotAllowed(f)),
        None => Some(ApiError::NotFound("no such route".into())),
    });
    if let Some(e) = refusal {
        let a = entry.admit(now, false);
        let mut response = e.into_response();
        rate_headers(&mut response, a.limit, a.remaining, a.reset);
        return with_facts(response, facts);
    }
    let a = entry.admit(now, true);
    let retry_after = u64::try_from(a.reset - now).unwrap_or(0).max(1);
    let refused = match a.outcome {
        Outcome::Allowed => None,
        Outcome::RateLimited => Some(ApiError::RateLimited { retry_after }),
        Outcome::QuotaExceeded => Some(ApiError::QuotaExceeded { retry_after }),
    };
    let mut response = match refused {
        Some(e) => e.into_response(),
        None => {
            request.extensions_mut().insert(Caller(entry));
            next.run(request).await
        }
    };
    rate_headers(&mut response, a.limit, a.remaining, a.reset);
    with_facts(response, facts)
}

async fn healthz() -> Response {
    let mut r = (StatusCode::OK, "ok").into_response();
    r.extensions_mut().insert(LogFacts { route: "/healthz", key_id: None, org: None });
    r
}

async fn metrics(State(state): State<AppState>) -> Response {
    let m = &state.0.metrics;
    let mut text = String::new();
    text.push_str("# HELP breachdex_responses_total Responses by status class.\n");
    text.push_str("# TYPE breachdex_responses_total counter\n");
    for (i, n) in m.responses.iter().enumerate() {
        text.push_str(&format!("breachdex_responses_total{{class=\"{}xx\"}} {}\n", i + 1, n.load(Ordering::Relaxed)));
    }
    let counters = [
        ("breachdex_log_rows_dropped_total", "Request-log rows dropped (channel full).", &m.log_rows_dropped),
        ("breachdex_log_rows_written_total", "Request-log rows written.", &m.log_rows_written),
        ("breachdex_state_write_errors_total", "Failed state database writes.", &m.store_errors),
    ];
    for (name, help, value) in counters {
        text.push_str(&format!(
            "# HELP {name} {help}\n# TYPE {name} counter\n{name} {}\n",
            value.load(Ordering::Relaxed)
        ));
    }
    let summary = state.0.engine.summary();
    text.push_str(&format!(
        "# HELP breachdex_index_records Records in the served index.\n# TYPE breachdex_index_records gauge\nbreachdex_index_records {}\n",
        summary.records
    ));
    let mut r = ([(header::CONTENT_TYPE, "text/plain; version=0.0.4")], text).into_response();
    r.extensions_mut().insert(LogFacts { route: "/metrics", key_id: None, org: None });
    r
}

async fn not_found() -> ApiError {
    ApiError::NotFound("no such route".into())
}

async fn method_not_allowed() -> ApiError {
    ApiError::MethodNotAllowed
}

async fn health(State(state): State<AppState>, Caller(key): Caller) -> Json<serde_json::Value> {
    let now = engine::now_unix();
    Json(json!({
        "status": "ok",
        "api_version": "v1",
        "authenticated": true,
        "user": &*key.org,
        "timestamp": engine::rfc3339(now),
        "index": state.0.engine.summary(),
    }))
}

/// The breach-check body; strings without escapes are borrowed from the request bytes.
#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct CheckBody<'a> {
    #[serde(borrow, default)]
    email: Option<Cow<'a, str>>,
    #[serde(borrow, default)]
    username: Option<Cow<'a, str>>,
}

async fn breach_check(
    State(state): State<AppState>,
    Caller(_key): Caller,
    body: JsonBody,
) -> Result<Response, ApiError> {
    let body: CheckBody<'_> = body.parse()?;
    let (kind, text) = match (&body.email, &body.username) {
        (Some(e), None) => (IdentityKind::Email, e),
        (None, Some(u)) => (IdentityKind::Username, u),
        _ => return Err(ApiError::field("body", "give exactly one of \"email\" and \"username\"")),
    };
    // A check takes about a microsecond: answered inline, no blocking pool.
    let bytes = state.0.engine.check_json(kind, text.as_ref(), engine::now_unix())?;
    Ok(([(header::CONTENT_TYPE, HeaderValue::from_static("application/json"))], bytes).into_response())
}

#[derive(Deserialize, Default)]
#[serde(deny_unknown_fields)]
struct DataParams {
    since: Option<String>,
    until: Option<String>,
    severity: Option<String>,
    source_id: Option<String>,
    salt: Option<String>,
    cursor: Option<String>,
}

fn parse_filter(p: &DataParams) -> Result<RecordFilter, ApiError> {
    let date = |field: &str, v: &Option<String>| -> Result<_, ApiError> {
        match v {
            None => Ok(None),
            Some(t) => engine::parse_date(t)
                .map(Some)
                .ok_or_else(|| ApiError::field(field, format!("{field} '{t}' is not a date YYYY-MM-DD"))),
        }
    };
    let since = date("since", &p.since)?;
    let until = date("until", &p.until)?;
    let severity = match &p.severity {
        None => None,
        Some(t) => Some(engine::parse_severity_list(t).map_err(ApiError::from)?),
    };
    let source_ids = match &p.source_id {
        None => None,
        Some(t) => {
            let mut ids = BTreeSet::new();
            for part in t.split(',').map(str::trim) {
                let id = part.parse::<u32>().map_err(|_| {
                    ApiError::field(
                        "source_id",
                        format!("source_id '{part}' is not a source id (a comma list of numbers)"),
                    )
                })?;
                ids.insert(id);
            }
            Some(ids)
        }
    };
    Ok(RecordFilter { since, until, severity, source_ids })
}

async fn breach_data(
    state: AppState,
    key: Arc<KeyEntry>,
    kind: IdentityKind,
    list: String,
    params: DataParams,
) -> Result<Response, ApiError> {
    let field = match kind {
        IdentityKind::Email => "email",
        IdentityKind::Username => "username",
    };
    let identities: Vec<String> = list.split(',').map(|s| s.trim().to_string()).collect();
    if identities.len() > MAX_IDENTITIES {
        return Err(ApiError::field(field, format!("at most {MAX_IDENTITIES} comma-separated identities per request")));
    }
    if identities.iter().any(String::is_empty) {
        return Err(ApiError::field(field, "an empty identity in the list"));
    }
    let filter = parse_filter(&params)?;
    if let Some(salt) = &params.salt {
        engine::check_output_salt(salt).map_err(|m| ApiError::field("salt", m))?;
    }
    // Pages of up to 1,000 records, hashed outputs: off the async threads.
    let task = tokio::task::spawn_blocking(move || {
        let refs: Vec<&str> = identities.iter().map(String::as_str).collect();
        state.0.engine.records_json(kind, &refs, &key.policy, params.salt.as_deref(), &filter, params.cursor.as_deref())
    });
    let bytes = task.await.map_err(|e| ApiError::Internal(e.to_string()))??;
    Ok(([(header::CONTENT_TYPE, HeaderValue::from_static("application/json"))], bytes).into_response())
}

async fn breach_data_emails(
    State(state): State<AppState>,
    Caller(key): Caller,
    AppPath(list): AppPath<String>,
    AppQuery(params): AppQuery<DataParams>,
) -> Result<Response, ApiError> {
    breach_data(state, key, IdentityKind::Email, list, params).await
}

async fn breach_data_usernames(
    State(state): State<AppState>,
    Caller(key): Caller,
    AppPath(list): AppPath<String>,
    AppQuery(params): AppQuery<DataParams>,
) -> Result<Response, ApiError> {
    breach_data(state, key, IdentityKind::Username, list, params).await
}

async fn catalog(State(state): State<AppState>, Caller(_key): Caller) -> Result<Json<serde_json::Value>, ApiError> {
    let task = tokio::task::spawn_blocking(move || state.0.engine.catalog());
    let sources = task.await.map_err(|e| ApiError::Internal(e.to_string()))??;
    Ok(Json(json!({ "total": sources.len(), "sources": sources })))
}

async fn catalog_source(
    State(state): State<AppState>,
    Caller(_key): Caller,
    AppPath(id): AppPath<String>,
) -> Result<Json<serde_json::Value>, ApiError> {
    let id: u32 = id.parse().map_err(|_| ApiError::field("id", format!("'{id}' is not a source id (a number)")))?;
    let task = tokio::task::spawn_blocking(move || state.0.engine.catalog());
    let sources = task.await.map_err(|e| ApiError::Internal(e.to_string()))??;
    let source = sources
        .into_iter()
        .find(|s| s.id == id)
        .ok_or_else(|| ApiError::NotFound(format!("no source with id {id}")))?;
    Ok(Json(serde_json::to_value(source).map_err(|e| ApiError::Internal(e.to_string()))?))
}

async fn usage(Caller(key): Caller) -> Json<serde_json::Value> {
    let now = engine::now_unix();
    let view = key.usage(now);
    let remaining = key.monthly.map(|m| m.saturating_sub(view.used));
    Json(json!({
        "plan": key.plan,
        "requests_used": view.used,
        "requests_limit": key.monthly,
        "requests_remaining": remaining,
        "rate_limit_per_minute": key.rpm,
        "usage_reset_date": engine::day_text(view.reset),
        "is_active": !key.is_inactive(now),
    }))
}
