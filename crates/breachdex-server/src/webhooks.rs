//! Webhooks (SPEC §14): `POST`/`GET /api/v1/webhooks/`, `DELETE /api/v1/webhooks/{id}/`
//! and `GET /api/v1/webhooks/{id}/deliveries/` (function `webhooks`), scoped to the
//! key's organization; the signed payload; the delivery queue and its dispatcher.
//!
//! # Payload and signatures
//!
//! A delivery is `POST URL` with `Content-Type: application/json`, the headers
//! `X-Breachdex-Event: <event>`, `X-Breachdex-Delivery: <delivery id>` and
//! `X-Breachdex-Signature: sha256=<hex>`, and the body
//!
//! ```text
//! {"event":"<event>","timestamp":"<RFC 3339 UTC>","data":<object>,"signature":"sha256=<64 hex>"}
//! ```
//!
//! written exactly so: no spaces, members in this order, `data` in serde_json's compact
//! form. Both signatures are HMAC-SHA256 keyed with the UTF-8 bytes of the webhook's
//! secret, in lowercase hex:
//! - `X-Breachdex-Signature` over the exact body as sent;
//! - the body's `signature` over the body without that member: the same bytes with
//!   their last 87 bytes (`,"signature":"sha256=` + 64 hex digits + `"}`) replaced by
//!   `}`, that is `{"event":…,"timestamp":…,"data":…}`.
//!
//! Every attempt sends the same bytes (signed once, when the event is queued).
//!
//! # Delivery
//!
//! [`enqueue`] writes one row per subscribed webhook of the organization (and one for
//! an optional callback URL) into the state database and wakes the dispatcher
//! ([`spawn_dispatcher`]). The dispatcher claims due rows, makes each attempt in its
//! own task (at most [`MAX_IN_FLIGHT`] at once, each within the configured timeout, so
//! a slow receiver delays nobody else), re-checks the URL against [`crate::ssrf`] and
//! connects to the checked address, does not follow redirects, and logs every attempt.
//! A `2xx` answer delivers; anything else is retried 1 s, 2 s, 4 s and 8 s later (5
//! attempts), then the delivery is `failed`. The queue is in the database: deliveries
//! due while the server was down are sent when it starts again (at least once: an
//! attempt cut short by a crash is made again).

use crate::engine;
use crate::error::{ApiError, AppPath, AppQuery, JsonBody};
use crate::routes::Caller;
use crate::ssrf::{self, CheckedUrl, UrlPolicy};
use crate::state::AppState;
use crate::store::{
    AttemptLog, AttemptOutcome, Callback, DeliveryView, DueDelivery, OutgoingEvent, StateStore, StoreError,
    StoredWebhook,
};
use axum::Json;
use axum::extract::State;
use axum::http::StatusCode;
use axum::response::{IntoResponse, Response};
use serde::Deserialize;
use serde_json::{Value, json};
use sha2::{Digest, Sha256};
use std::sync::{Arc, OnceLock};
use std::time::{Duration, Instant};
use tokio_util::sync::CancellationToken;
use tokio_util::task::TaskTracker;

/// `scan.completed`: a scan finished.
pub const SCAN_COMPLETED: &str = "scan.completed";
/// `finding.new`: a scan found something new.
pub const FINDING_NEW: &str = "finding.new";
/// `alert.triggered`: an alert rule fired.
pub const ALERT_TRIGGERED: &str = "alert.triggered";
/// `breach.detected`: a new index generation gave a watched identity a breach.
pub const BREACH_DETECTED: &str = "breach.detected";
/// Every event a webhook may subscribe to.
pub const EVENTS: [&str; 4] = [SCAN_COMPLETED, FINDING_NEW, ALERT_TRIGGERED, BREACH_DETECTED];

/// Attempts per delivery.
pub const MAX_ATTEMPTS: u32 = 5;
/// Attempts in flight at once.
pub const MAX_IN_FLIGHT: usize = 32;
/// Deliveries shown by `GET /api/v1/webhooks/{id}/deliveries/` (the latest).
pub const DELIVERIES_SHOWN: usize = 100;
/// Bytes of a webhook secret (before hex).
const SECRET_BYTES: usize = 32;

/// Active webhooks per organization on a plan (`starter` 2, `professional` 10,
/// `enterprise` 50; an unknown plan none).
pub fn plan_limit(plan: &str) -> u64 {
    match plan {
        "starter" => 2,
        "professional" => 10,
        "enterprise" => 50,
        _ => 0,
    }
}

/// HMAC-SHA256 (RFC 2104) of `message` keyed with `key`.
pub fn hmac_sha256(key: &[u8], message: &[u8]) -> [u8; 32] {
    const BLOCK: usize = 64;
    let mut block = [0u8; BLOCK];
    if key.len() > BLOCK {
        block[..32].copy_from_slice(&Sha256::digest(key));
    } else {
        block[..key.len()].copy_from_slice(key);
    }
    let mut inner = Sha256::new();
    inner.update(block.map(|b| b ^ 0x36));
    inner.update(message);
    let mut outer = Sha256::new();
    outer.update(block.map(|b| b ^ 0x5c));
    outer.update(inner.finalize());
    outer.finalize().into()
}

/// `sha256=<lowercase hex HMAC-SHA256 of message keyed with secret's UTF-8 bytes>`.
pub fn signature(secret: &str, message: &[u8]) -> String {
    let mac = hmac_sha256(secret.as_bytes(), message);
    format!("sha256={}", breachdex::to_hex(&mac))
}

/// A signed payload: the exact body and its `X-Breachdex-Signature` value.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SignedPayload {
    /// The body to send.
    pub body: Vec<u8>,
    /// The header value: the signature of `body`.
    pub header: String,
}

/// Builds and signs an event's body as the module documentation defines it.
pub fn sign_payload(secret: &str, event: &str, timestamp: i64, data: &Value) -> SignedPayload {
    let unsigned = json!({"event": event, "timestamp": engine::rfc3339(timestamp), "data": data});
    // Members in the documented order, whatever the map's ordering.
    let mut body = Vec::with_capacity(256);
    body.extend_from_slice(b"{\"event\":");
    body.extend_from_slice(unsigned["event"].to_string().as_bytes());
    body.extend_from_slice(b",\"timestamp\":");
    body.extend_from_slice(unsigned["timestamp"].to_string().as_bytes());
    body.extend_from_slice(b",\"data\":");
    body.extend_from_slice(unsigned["data"].to_string().as_bytes());
    body.push(b'}');
    let inner = signature(secret, &body);
    body.pop();
    body.extend_from_slice(b",\"signature\":\"");
    body.extend_from_slice(inner.as_bytes());
    body.extend_from_slice(b"\"}");
    let header = signature(secret, &body);
    SignedPayload { body, header }
}

/// Queues `event` for every webhook of its organization subscribed to it (and for
/// `callback`) and wakes the dispatcher; returns the deliveries written. Blocking:
/// call it from a blocking thread.
pub fn enqueue(state: &AppState, event: &OutgoingEvent, callback: Option<&Callback>) -> Result<usize, StoreError> {
    let n = state.0.store.enqueue_event(event, callback, engine::now_unix_millis())?;
    if n > 0 {
        state.0.webhook_wake.notify_one();
    }
    Ok(n)
}

/// Checks a callback URL as a webhook URL is checked (after resolution); the error is a
/// 400 naming `field`.
pub async fn check_callback_url(state: &AppState, field: &str, url: &str) -> Result<String, ApiError> {
    let checked = ssrf::resolve(url, state.config().webhook_policy)
        .await
        .map_err(|why| ApiError::field(field, format!("\"{field}\" is refused: {why}")))?;
    Ok(checked.url.url)
}

/// The body of `POST /api/v1/webhooks/`.
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct NewWebhook {
    /// The receiver's URL.
    #[serde(default)]
    pub url: Option<String>,
    /// The events to receive (at least one of [`EVENTS`]).
    #[serde(default)]
    pub events: Option<Vec<String>>,
}

/// Validates the events: a non-empty list of [`EVENTS`] names, none twice.
pub fn validate_events(events: Option<&[String]>) -> Result<Vec<String>, ApiError> {
    let Some(events) = events else {
        return Err(ApiError::field("events", format!("\"events\" is required: a list of {}", EVENTS.join(", "))));
    };
    if events.is_empty() {
        return Err(ApiError::field("events", format!("\"events\" is empty: give some of {}", EVENTS.join(", "))));
    }
    let mut out: Vec<String> = Vec::with_capacity(events.len());
    for (index, e) in events.iter().enumerate() {
        let e = e.trim();
        if !EVENTS.contains(&e) {
            return Err(ApiError::ListItem {
                field: "events",
                index,
                message: format!("events[{index}] '{e}' is not an event (one of {})", EVENTS.join(", ")),
            });
        }
        if out.iter().any(|o| o == e) {
            return Err(ApiError::ListItem {
                field: "events",
                index,
                message: format!("events[{index}] '{e}' is listed twice"),
            });
        }
        out.push(e.to_string());
    }
    Ok(out)
}

fn webhook_json(w: &StoredWebhook) -> Value {
    json!({
        "id": w.id,
        "url": w.url,
        "events": w.events,
        "is_active": w.deleted_at.is_none(),
        "created_at": engine::rfc3339(w.created_at),
    })
}

fn store_error(e: StoreError) -> ApiError {
    ApiError::Internal(e.to_string())
}

async fn blocking<T: Send + 'static>(
    f: impl FnOnce() -> Result<T, StoreError> + Send + 'static,
) -> Result<Result<T, StoreError>, ApiError> {
    tokio::task::spawn_blocking(f).await.map_err(|e| ApiError::Internal(e.to_string()))
}

/// `POST /api/v1/webhooks/`: registers one (`201` with the secret, shown only here).
pub async fn create(State(state): State<AppState>, Caller(key): Caller, body: JsonBody) -> Result<Response, ApiError> {
    let new: NewWebhook = body.parse()?;
    let events = validate_events(new.events.as_deref())?;
    let url = new.url.as_deref().ok_or_else(|| ApiError::field("url", "\"url\" is required"))?;
    let url = check_callback_url(&state, "url", url).await?;
    let secret = format!("whsec_{}", crate::keys::random_hex_text(SECRET_BYTES).map_err(ApiError::Internal)?);
    let webhook = StoredWebhook {
        id: crate::identities::new_id("whk")?,
        org: key.org.to_string(),
        url,
        events,
        secret,
        created_at: engine::now_unix(),
        deleted_at: None,
    };
    let limit = plan_limit(&key.plan);
    let store = state.0.store.clone();
    let stored = webhook.clone();
    match blocking(move || store.insert_webhook(&stored, Some(limit))).await? {
        Ok(()) => {
            let mut answer = webhook_json(&webhook);
            answer["secret"] = Value::from(webhook.secret);
            Ok((StatusCode::CREATED, Json(answer)).into_response())
        }
        Err(StoreError::LimitExceeded(message)) => Err(ApiError::LimitExceeded { message, limit }),
        Err(e) => Err(store_error(e)),
    }
}

/// `GET /api/v1/webhooks/`: the organization's active webhooks (never their secrets).
pub async fn list(State(state): State<AppState>, Caller(key): Caller) -> Result<Json<Value>, ApiError> {
    let org = key.org.to_string();
    let store = state.0.store.clone();
    let all = blocking(move || store.list_webhooks(&org)).await?.map_err(store_error)?;
    let hooks: Vec<Value> = all.iter().map(webhook_json).collect();
    Ok(Json(json!({ "count": hooks.len(), "webhooks": hooks })))
}

fn not_found(id: &str) -> ApiError {
    ApiError::NotFound(format!("no webhook '{id}' in this organization"))
}

/// `DELETE /api/v1/webhooks/{id}/`: deletes it and cancels its pending deliveries (`204`).
pub async fn delete(
    State(state): State<AppState>,
    Caller(key): Caller,
    AppPath(id): AppPath<String>,
) -> Result<StatusCode, ApiError> {
    delete_one(&state, key.org.to_string(), id).await
}

/// The id of `DELETE /api/v1/webhooks/?id=…`.
#[derive(Debug, Deserialize)]
pub struct DeleteQuery {
    /// The webhook's id.
    pub id: Option<String>,
}

/// `DELETE /api/v1/webhooks/` with the webhook's id in the query (`?id=whk_…`) or in a
/// JSON body (`{"id": "whk_…"}`): the same as `DELETE /api/v1/webhooks/{id}/`, for
/// clients that remove on the collection's path.
pub async fn delete_on_collection(
    State(state): State<AppState>,
    Caller(key): Caller,
    AppQuery(query): AppQuery<DeleteQuery>,
    body: axum::body::Bytes,
) -> Result<StatusCode, ApiError> {
    #[derive(Deserialize)]
    struct Body {
        id: String,
    }
    let id = match query.id {
        Some(id) => id,
        None if body.iter().all(u8::is_ascii_whitespace) => {
            return Err(ApiError::field("id", "name the webhook to delete: ?id=whk_… or the body {\"id\": \"whk_…\"}"));
        }
        None => JsonBody(body).parse::<Body>()?.id,
    };
    delete_one(&state, key.org.to_string(), id).await
}

async fn delete_one(state: &AppState, org: String, id: String) -> Result<StatusCode, ApiError> {
    let store = state.0.store.clone();
    let wanted = id.clone();
    let now = engine::now_unix();
    if blocking(move || store.delete_webhook(&org, &wanted, now)).await?.map_err(store_error)? {
        Ok(StatusCode::NO_CONTENT)
    } else {
        Err(not_found(&id))
    }
}

fn delivery_json(d: &DeliveryView) -> Value {
    let attempts: Vec<Value> = d
        .attempts
        .iter()
        .map(|a| {
            json!({
                "attempt": a.attempt,
                "at": engine::rfc3339(a.at_ms.div_euclid(1000)),
                "status_code": a.status_code,
                "error": a.error,
                "duration_ms": a.duration_ms,
            })
        })
        .collect();
    json!({
        "id": format!("dlv_{}", d.id),
        "event": d.event,
        "status": d.status,
        "created_at": engine::rfc3339(d.created_at_ms.div_euclid(1000)),
        "next_attempt_at": d.next_at_ms.map(|t| engine::rfc3339(t.div_euclid(1000))),
        "attempts": attempts,
    })
}

/// `GET /api/v1/webhooks/{id}/deliveries/`: the webhook's latest [`DELIVERIES_SHOWN`]
/// deliveries, newest first, each with every attempt (deleted webhooks included).
pub async fn deliveries(
    State(state): State<AppState>,
    Caller(key): Caller,
    AppPath(id): AppPath<String>,
) -> Result<Json<Value>, ApiError> {
    let org = key.org.to_string();
    let store = state.0.store.clone();
    let wanted = id.clone();
    match blocking(move || store.deliveries(&org, &wanted, DELIVERIES_SHOWN)).await?.map_err(store_error)? {
        Some(list) => {
            let items: Vec<Value> = list.iter().map(delivery_json).collect();
            Ok(Json(json!({ "webhook_id": id, "count": items.len(), "deliveries": items })))
        }
        None => Err(not_found(&id)),
    }
}

/// When attempt `attempt` (1-based) failed: the next one is `base · 2^(attempt-1)`
/// later, or `None` after [`MAX_ATTEMPTS`].
pub fn retry_delay(attempt: u32, base: Duration) -> Option<Duration> {
    if attempt >= MAX_ATTEMPTS {
        return None;
    }
    Some(base.saturating_mul(1u32 << attempt.saturating_sub(1).min(16)))
}

/// Starts the dispatcher: claims due deliveries (at start, then whenever woken by
/// [`enqueue`], when the next one falls due, and at least every refresh interval),
/// sends each in its own task, logs the attempt.
pub fn spawn_dispatcher(tracker: &TaskTracker, state: &AppState, stop: CancellationToken) {
    let state = state.clone();
    let attempts = tracker.clone();
    tracker.spawn(async move {
        let slots = Arc::new(tokio::sync::Semaphore::new(MAX_IN_FLIGHT));
        let timeout = state.config().webhook_timeout;
        // A claimed delivery is due again after this if its attempt never reports.
        let lease_ms = i64::try_from(timeout.as_millis()).unwrap_or(i64::MAX / 4).saturating_add(5_000);
        let refresh_ms = i64::try_from(state.config().refresh_interval.as_millis()).unwrap_or(1_000).max(10);
        loop {
            let free = slots.available_permits();
            let inner = state.clone();
            let claimed =
                tokio::task::spawn_blocking(move || -> Result<(Vec<DueDelivery>, Option<i64>), StoreError> {
                    let now = engine::now_unix_millis();
                    let due = if free > 0 { inner.0.store.claim_due(now, now + lease_ms, free)? } else { Vec::new() };
                    Ok((due, inner.0.store.next_due()?))
                })
                .await;
            let next_due = match claimed {
                Ok(Ok((due, next))) => {
                    for d in due {
                        let Ok(permit) = Arc::clone(&slots).acquire_owned().await else { return };
                        let state = state.clone();
                        // Shutdown waits for attempts in flight (each ends within the
                        // timeout), so that every attempt made is logged.
                        attempts.spawn(async move {
                            attempt(&state, d).await;
                            drop(permit);
                        });
                    }
                    next
                }
                Ok(Err(e)) => {
                    tracing::error!(error = %e, "webhook queue read failed");
                    Some(engine::now_unix_millis() + 1_000)
                }
                Err(e) => {
                    tracing::error!(error = %e, "webhook queue task failed");
                    Some(engine::now_unix_millis() + 1_000)
                }
            };
            // Sleep until the next due delivery, a wake-up or stop, and at most one
            // refresh interval (deliveries queued by another process are found then).
            let wait_ms = next_due.map_or(refresh_ms, |t| (t - engine::now_unix_millis()).clamp(10, refresh_ms));
            let wait = Duration::from_millis(u64::try_from(wait_ms).unwrap_or(1_000));
            tokio::select! {
                () = stop.cancelled() => return,
                () = state.0.webhook_wake.notified() => {}
                () = tokio::time::sleep(wait) => {}
            }
        }
    });
}

/// One attempt of `d`, logged, with its outcome stored.
async fn attempt(state: &AppState, d: DueDelivery) {
    let started_ms = engine::now_unix_millis();
    let started = Instant::now();
    let config = state.config();
    let result = tokio::time::timeout(config.webhook_timeout, send(config.webhook_policy, &d)).await;
    let (status_code, error) = match result {
        Ok(Ok(status)) if (200..300).contains(&status) => (Some(status), None),
        Ok(Ok(status)) => (Some(status), Some(format!("the receiver answered HTTP {status}"))),
        Ok(Err(e)) => (None, Some(e)),
        Err(_) => (None, Some(format!("no answer within {:?}", config.webhook_timeout))),
    };
    let number = d.attempts.saturating_add(1);
    let outcome = match (&error, retry_delay(number, config.webhook_retry_base)) {
        (None, _) => AttemptOutcome::Delivered,
        (Some(_), Some(delay)) => AttemptOutcome::Retry {
            next_at_ms: engine::now_unix_millis() + i64::try_from(delay.as_millis()).unwrap_or(i64::MAX / 4),
        },
        (Some(_), None) => AttemptOutcome::Failed,
    };
    if let Some(e) = &error {
        // The URL's host only: a path may carry a token of the receiver.
        let host = ssrf::parse(&d.url, UrlPolicy { allow_http: true, allow_private: true }).map(|u| u.host);
        tracing::warn!(delivery = d.id, event = %d.event, host = %host.unwrap_or_default(), attempt = number,
            error = %e, "webhook delivery attempt failed");
    }
    let log = AttemptLog {
        attempt: number,
        at_ms: started_ms,
        status_code,
        error,
        duration_ms: u64::try_from(started.elapsed().as_millis()).unwrap_or(u64::MAX),
    };
    let store: Arc<dyn StateStore> = Arc::clone(&state.0.store);
    let id = d.id;
    match tokio::task::spawn_blocking(move || store.record_attempt(id, &log, outcome)).await {
        Ok(Ok(())) => {
            if matches!(outcome, AttemptOutcome::Retry { .. }) {
                state.0.webhook_wake.notify_one();
            }
        }
        Ok(Err(e)) => tracing::error!(error = %e, "webhook attempt not recorded"),
        Err(e) => tracing::error!(error = %e, "webhook attempt task failed"),
    }
}

/// The https client configuration (Mozilla's roots from `webpki-roots`, ring), built once.
fn tls_connector() -> Result<tokio_rustls::TlsConnector, String> {
    static CONNECTOR: OnceLock<Result<tokio_rustls::TlsConnector, String>> = OnceLock::new();
    CONNECTOR
        .get_or_init(|| {
            let roots = tokio_rustls::rustls::RootCertStore { roots: webpki_roots::TLS_SERVER_ROOTS.to_vec() };
            let provider = Arc::new(tokio_rustls::rustls::crypto::ring::default_provider());
            let config = tokio_rustls::rustls::ClientConfig::builder_with_provider(provider)
                .with_safe_default_protocol_versions()
                .map_err(|e| format!("TLS client configuration: {e}"))?
                .with_root_certificates(roots)
                .with_no_client_auth();
            Ok(tokio_rustls::TlsConnector::from(Arc::new(config)))
        })
        .clone()
}

/// Sends `d` once: resolves and checks the URL, connects to a checked address, and
/// returns the answer's status (redirects are not followed).
async fn send(policy: UrlPolicy, d: &DueDelivery) -> Result<u16, String> {
    let checked: CheckedUrl = ssrf::resolve(&d.url, policy).await?;
    let mut last_error = String::from("no address");
    for addr in &checked.addrs {
        let stream = match tokio::net::TcpStream::connect(addr).await {
            Ok(s) => s,
            Err(e) => {
                last_error = format!("cannot connect to {addr}: {e}");
                continue;
            }
        };
        let _ = stream.set_nodelay(true);
        return if checked.url.https {
            let name = rustls_pki_types::ServerName::try_from(checked.url.host.clone())
                .map_err(|e| format!("'{}' is not a TLS server name: {e}", checked.url.host))?;
            let tls = tls_connector()?.connect(name, stream).await.map_err(|e| format!("TLS with {addr}: {e}"))?;
            post(hyper_util::rt::TokioIo::new(tls), &checked, d).await
        } else {
            post(hyper_util::rt::TokioIo::new(stream), &checked, d).await
        };
    }
    Err(last_error)
}

async fn post<IO>(io: IO, url: &CheckedUrl, d: &DueDelivery) -> Result<u16, String>
where
    IO: hyper::rt::Read + hyper::rt::Write + Unpin + Send + 'static,
{
    let (mut sender, conn) =
        hyper::client::conn::http1::handshake(io).await.map_err(|e| format!("HTTP handshake: {e}"))?;
    let conn = tokio::spawn(conn);
    let default_port = if url.url.https { 443 } else { 80 };
    let host = match (url.url.host.contains(':'), url.url.port == default_port) {
        (false, true) => url.url.host.clone(),
        (false, false) => format!("{}:{}", url.url.host, url.url.port),
        (true, true) => format!("[{}]", url.url.host),
        (true, false) => format!("[{}]:{}", url.url.host, url.url.port),
    };
    let request = hyper::Request::post(url.url.path_and_query.as_str())
        .header(hyper::header::HOST, host)
        .header(hyper::header::CONTENT_TYPE, "application/json")
        .header(hyper::header::USER_AGENT, concat!("breachdex/", env!("CARGO_PKG_VERSION")))
        .header("x-breachdex-event", d.event.as_str())
        .header("x-breachdex-delivery", format!("dlv_{}", d.id))
        .header("x-breachdex-signature", d.signature.as_str())
        .body(axum::body::Body::from(d.body.clone()))
        .map_err(|e| format!("cannot build the request: {e}"))?;
    let answer = sender.send_request(request).await.map_err(|e| format!("HTTP: {e}"));
    conn.abort();
    Ok(answer?.status().as_u16())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn hex(bytes: &[u8]) -> String {
        breachdex::to_hex(bytes)
    }

    fn unhex(text: &str) -> Vec<u8> {
        (0..text.len()).step_by(2).map(|i| u8::from_str_radix(&text[i..i + 2], 16).unwrap()).collect()
    }

    #[test]
    fn hmac_sha256_matches_rfc_4231() {
        // Test cases 1, 2, 3, 4, 6 and 7 (5 is truncated output).
        let cases: [(Vec<u8>, Vec<u8>, &str); 6] = [
            (vec![0x0b; 20], b"Hi There".to_vec(), "b0344c61d8db38535ca8afceaf0bf12b881dc200c9833da726e9376c2e32cff7"),
            (
                b"Jefe".to_vec(),
                b"what do ya want for nothing?".to_vec(),
                "5bdcc146bf60754e6a042426089575c75a003f089d2739839dec58b964ec3843",
            ),
            (vec![0xaa; 20], vec![0xdd; 50], "773ea91e36800e46854db8ebd09181a72959098b3ef8c122d9635514ced565fe"),
            (
                unhex("0102030405060708090a0b0c0d0e0f10111213141516171819"),
                vec![0xcd; 50],
                "82558a389a443c0ea4cc819899f2083a85f0faa3e578f8077a2e3ff46729665b",
            ),
            (
                vec![0xaa; 131],
                b"Test Using Larger Than Block-Size Key - Hash Key First".to_vec(),
                "60e431591ee0b67f0d8a26aacbf5b77f8e0bc6213728c5140546040f0ee37f54",
            ),
            (
                vec![0xaa; 131],
                b"This is a test using a larger than block-size key and a larger than block-size data. The key needs to be hashed before being used by the HMAC algorithm.".to_vec(),
                "9b09ffa71b942fcb27635fbcd5b0e944bfdc63644f0713938a7f51535c3a35e2",
            ),
        ];
        for (key, data, expected) in cases {
            assert_eq!(hex(&hmac_sha256(&key, &data)), expected);
        }
    }

    #[test]
    fn the_body_signature_covers_the_body_without_it_and_the_header_the_whole_body() {
        let data = json!({"identity_id": "idn_1", "source": {"id": 3, "name": "x"}});
        let signed = sign_payload("whsec_k", BREACH_DETECTED, 1_800_000_000, &data);
        let body = std::str::from_utf8(&signed.body).unwrap();
        assert!(
            body.starts_with(r#"{"event":"breach.detected","timestamp":"2027-01-15T08:00:00Z","data":{"#),
            "{body}"
        );
        let parsed: Value = serde_json::from_slice(&signed.body).unwrap();
        assert_eq!(parsed["data"], data);
        assert_eq!(signed.header, signature("whsec_k", &signed.body));
        let (unsigned, suffix) = body.split_at(body.len() - 87);
        assert!(suffix.starts_with(r#","signature":"sha256="#) && suffix.ends_with("\"}"), "{suffix}");
        let unsigned = format!("{unsigned}}}");
        assert_eq!(parsed["signature"].as_str(), Some(signature("whsec_k", unsigned.as_bytes()).as_str()));
        assert_ne!(signed.header, signature("whsec_other", &signed.body));
    }

    #[test]
    fn events_are_validated_and_retries_double_from_the_base() {
        let list = |v: &[&str]| v.iter().map(|s| s.to_string()).collect::<Vec<_>>();
        assert_eq!(validate_events(Some(&list(&[" breach.detected", "scan.completed"]))).unwrap().len(), 2);
        assert!(matches!(validate_events(None), Err(ApiError::Validation { .. })));
        assert!(matches!(validate_events(Some(&[])), Err(ApiError::Validation { .. })));
        let e = validate_events(Some(&list(&["scan.completed", "scan.exploded"])));
        assert!(matches!(e, Err(ApiError::ListItem { field: "events", index: 1, .. })), "{e:?}");
        let e = validate_events(Some(&list(&["finding.new", "finding.new"])));
        assert!(matches!(e, Err(ApiError::ListItem { index: 1, .. })), "{e:?}");
        let base = Duration::from_secs(1);
        let delays: Vec<Option<u64>> = (1..=MAX_ATTEMPTS).map(|a| retry_delay(a, base).map(|d| d.as_secs())).collect();
        assert_eq!(delays, [Some(1), Some(2), Some(4), Some(8), None]);
    }
}
