//! Scans, findings and risk scores (SPEC §14): `POST /api/v1/scans/`, `GET
//! /api/v1/scans/{id}/`, `GET /api/v1/scans/{id}/findings/` and `GET /api/v1/risk-score/`,
//! scoped to the calling key's organization; and the background scan worker.
//!
//! # Scan types
//!
//! - `full` (the default): every e-mail and every username of the identity;
//! - `quick`: its e-mails only.
//!
//! # Callback and events
//!
//! `callback_url` is checked as a webhook URL is ([`crate::ssrf`], after resolution; a
//! refusal is a `400` naming `callback_url`); the `201` then shows the URL and a
//! `callback_secret`, once, which signs the payloads sent to it. When a scan completes,
//! the same transaction that writes its results queues for the organization's
//! subscribed webhooks (so a crash loses neither):
//!
//! - `finding.new` for each finding that is new for the identity (data: `scan_id`,
//!   `identity_id` and the `finding` as the findings page shows it);
//! - `alert.triggered` when the identity's risk level after the scan is `high` or
//!   `critical` and higher than after its previous calculation (or it had none): data
//!   `rule` (`risk_level_raised`), `identity_id`, `scan_id`, `risk_level`,
//!   `overall_score`, `previous_risk_level`, `previous_score`;
//! - `scan.completed` (also to the scan's callback): the scan's id, identity, type,
//!   counts per severity, new findings, risk score and level, completion time.
//!
//! A failed scan sends nothing.
//!
//! # The worker
//!
//! A scan request only queues a row (`pending`). [`ServerConfig::scan_workers`]
//! (default 1) workers, each on its own thread of the blocking pool, take the oldest
//! pending scan, mark it `running`, check its identifiers (yielding the thread between
//! identifiers; the progress is kept in memory and shown while it runs), then write its
//! findings, counts and the identity's risk in one transaction (`completed`), or record
//! why it failed (`failed`: the identity was deleted meanwhile, the index refused an
//! identifier, the database failed). So a burst of scans waits in the queue and occupies
//! at most `scan_workers` threads, and a scan never waits for the async workers that the
//! check endpoints keep busy. A scan left `running` by a stopped server is queued again at
//! the next start and runs from its beginning (nothing of an unfinished scan is ever
//! written). `scan_workers` 0 queues scans without running them.
//!
//! After its scans, the worker recalculates each organization's risk (see
//! [`engine::combine_risks`]) once the queue is empty or at least every
//! [`ORG_RISK_INTERVAL`], so a burst of scans does not recombine the organization after
//! every one.
//!
//! [`ServerConfig::scan_workers`]: crate::state::ServerConfig::scan_workers

use crate::engine::{self, FindingCategory, RiskAssessment, RiskCategories, RiskLevel, Severity, Trend};
use crate::error::{ApiError, AppPath, AppQuery, JsonBody};
use crate::identities::{blocking, identity_json, new_id, store_error};
use crate::routes::Caller;
use crate::scan_store::{CompletedScan, FindingFilter, ScanStatus, StoredFinding, StoredRisk, StoredScan};
use crate::state::AppState;
use crate::store::{Callback, OutgoingEvent};
use axum::Json;
use axum::extract::State;
use axum::http::StatusCode;
use axum::response::{IntoResponse, Response};
use serde::Deserialize;
use serde_json::{Value, json};
use std::collections::{BTreeSet, HashMap};
use std::sync::{Condvar, Mutex};
use std::time::{Duration, Instant};
use tokio_util::sync::CancellationToken;
use tokio_util::task::TaskTracker;

/// Findings per page of `GET /api/v1/scans/{id}/findings/`.
pub const PER_PAGE: u64 = 25;
/// The scan types, the default first.
pub const SCAN_TYPES: [&str; 2] = ["full", "quick"];
/// The longest an organization's risk waits for recalculation during a burst of scans.
pub const ORG_RISK_INTERVAL: Duration = Duration::from_secs(1);
/// How long an idle worker sleeps before it looks at the queue again (a scan queued by
/// this server wakes it at once; the timeout also bounds how late it notices a stop).
const IDLE_WAIT: Duration = Duration::from_millis(200);
/// Random bytes of a callback's signing secret (before hex).
const CALLBACK_SECRET_BYTES: usize = 32;
/// Highest page number accepted.
const MAX_PAGE: u64 = 1_000_000;

/// The queue's in-memory side: the worker's wake-up, the progress of running scans and
/// the organizations whose risk is due for recalculation.
#[derive(Debug, Default)]
pub struct ScanQueue {
    /// Scans queued since a worker last looked, and the workers' wake-up.
    queued: Mutex<u64>,
    wake: Condvar,
    progress: Mutex<HashMap<String, u8>>,
    dirty_orgs: Mutex<BTreeSet<String>>,
}

impl ScanQueue {
    /// Wakes a worker: a scan was queued.
    fn notify(&self) {
        *self.queued.lock().unwrap_or_else(|e| e.into_inner()) += 1;
        self.wake.notify_one();
    }

    /// Waits until a scan is queued or `timeout` passes. Blocking.
    fn wait(&self, timeout: Duration) {
        let mut queued = self.queued.lock().unwrap_or_else(|e| e.into_inner());
        if *queued == 0 {
            queued = self.wake.wait_timeout(queued, timeout).unwrap_or_else(|e| e.into_inner()).0;
        }
        *queued = 0;
    }

    fn set_progress(&self, scan_id: &str, percent: Option<u8>) {
        let mut map = self.progress.lock().unwrap_or_else(|e| e.into_inner());
        match percent {
            Some(p) => {
                map.insert(scan_id.to_string(), p);
            }
            None => {
                map.remove(scan_id);
            }
        }
    }

    fn progress(&self, scan_id: &str) -> Option<u8> {
        self.progress.lock().unwrap_or_else(|e| e.into_inner()).get(scan_id).copied()
    }
}

/// The body of `POST /api/v1/scans/`.
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct NewScan {
    #[serde(default)]
    identity_id: Option<String>,
    #[serde(default)]
    scan_type: Option<String>,
    #[serde(default)]
    callback_url: Option<String>,
}

fn scan_not_found(id: &str) -> ApiError {
    ApiError::NotFound(format!("no scan '{id}' in this organization"))
}

fn identity_not_found(id: &str) -> ApiError {
    ApiError::NotFound(format!("no identity '{id}' in this organization"))
}

/// `POST /api/v1/scans/`: queues a scan of an identity of the key's organization (`201`).
pub async fn create(State(state): State<AppState>, Caller(key): Caller, body: JsonBody) -> Result<Response, ApiError> {
    let new: NewScan = body.parse()?;
    let identity_id = match new.identity_id.as_deref().map(str::trim) {
        Some(id) if !id.is_empty() => id.to_string(),
        _ => return Err(ApiError::field("identity_id", "\"identity_id\" is required")),
    };
    let scan_type = match new.scan_type.as_deref().map(str::trim) {
        None => SCAN_TYPES[0],
        Some(t) => SCAN_TYPES.into_iter().find(|known| *known == t).ok_or_else(|| {
            ApiError::field("scan_type", format!("unknown scan_type '{t}' (one of {})", SCAN_TYPES.join(", ")))
        })?,
    };
    let callback = match new.callback_url.as_deref() {
        None => None,
        Some(url) => {
            let url = crate::webhooks::check_callback_url(&state, "callback_url", url).await?;
            let secret =
                format!("cbsec_{}", crate::keys::random_hex_text(CALLBACK_SECRET_BYTES).map_err(ApiError::Internal)?);
            Some(Callback { url, secret })
        }
    };
    let org = key.org.to_string();
    let store = state.0.store.clone();
    let wanted = identity_id.clone();
    let lookup_org = org.clone();
    let identity = blocking(move || store.identity(&lookup_org, &wanted))
        .await?
        .map_err(store_error)?
        .ok_or_else(|| identity_not_found(&identity_id))?;
    let scan = StoredScan {
        id: new_id("scn")?,
        org,
        identity_id,
        scan_type: scan_type.to_string(),
        status: ScanStatus::Pending,
        error: None,
        generation: None,
        counts: [0; 5],
        created_at: engine::now_unix(),
        started_at: None,
        completed_at: None,
        callback,
    };
    let store = state.0.store.clone();
    let stored = scan.clone();
    blocking(move || store.insert_scan(&stored)).await?.map_err(store_error)?;
    state.0.scans.notify();
    let mut body = json!({
        "scan_id": scan.id,
        "status": scan.status.name(),
        "progress": 0,
        "scan_type": scan.scan_type,
        "identity": identity_json(&identity),
        "created_at": engine::rfc3339(scan.created_at),
    });
    if let (Some(callback), Some(map)) = (&scan.callback, body.as_object_mut()) {
        // Shown once: the callback's payloads are signed with it.
        map.insert("callback_url".into(), json!(callback.url));
        map.insert("callback_secret".into(), json!(callback.secret));
    }
    Ok((StatusCode::CREATED, Json(body)).into_response())
}

fn scan_json(scan: &StoredScan, progress: Option<u8>) -> Value {
    let progress = match scan.status {
        ScanStatus::Completed => 100,
        ScanStatus::Pending => 0,
        ScanStatus::Running | ScanStatus::Failed => progress.unwrap_or(0),
    };
    let [findings, critical, high, medium, low] = scan.counts;
    json!({
        "scan_id": scan.id,
        "identity_id": scan.identity_id,
        "scan_type": scan.scan_type,
        "status": scan.status.name(),
        "progress": progress,
        "findings_count": findings,
        "critical_count": critical,
        "high_count": high,
        "medium_count": medium,
        "low_count": low,
        "generation": scan.generation,
        "error": scan.error,
        "created_at": engine::rfc3339(scan.created_at),
        "started_at": scan.started_at.map(engine::rfc3339),
        "completed_at": scan.completed_at.map(engine::rfc3339),
    })
}

async fn find_scan(state: &AppState, org: &str, id: &str) -> Result<StoredScan, ApiError> {
    let store = state.0.store.clone();
    let (org, wanted) = (org.to_string(), id.to_string());
    blocking(move || store.scan(&org, &wanted)).await?.map_err(store_error)?.ok_or_else(|| scan_not_found(id))
}

/// `GET /api/v1/scans/{id}/`: a scan of the key's organization, with its progress.
pub async fn get_one(
    State(state): State<AppState>,
    Caller(key): Caller,
    AppPath(id): AppPath<String>,
) -> Result<Json<Value>, ApiError> {
    let scan = find_scan(&state, &key.org, &id).await?;
    Ok(Json(scan_json(&scan, state.0.scans.progress(&scan.id))))
}

/// The query of `GET /api/v1/scans/{id}/findings/`.
#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct FindingsParams {
    severity: Option<String>,
    category: Option<String>,
    page: Option<String>,
}

/// Validates the findings filters: `severity` a comma list of labels (`critical`, `high`,
/// `medium`, `low`) or scores (25, 20, 5, 2); `category` a comma list of `credential`,
/// `exposure`, `breach`; `page` a number from 1. An error names the parameter.
fn parse_findings_params(p: &FindingsParams) -> Result<(FindingFilter, u64), ApiError> {
    let list = |text: &str| -> Vec<String> { text.split(',').map(|s| s.trim().to_ascii_lowercase()).collect() };
    let severities = match &p.severity {
        None => None,
        Some(text) => Some(
            list(text)
                .iter()
                .map(|s| {
                    Severity::parse(s).map(Severity::score).ok_or_else(|| {
                        ApiError::field(
                            "severity",
                            format!("severity '{s}' is not one of critical, high, medium, low (or 25, 20, 5, 2)"),
                        )
                    })
                })
                .collect::<Result<Vec<u8>, ApiError>>()?,
        ),
    };
    let categories = match &p.category {
        None => None,
        Some(text) => Some(
            list(text)
                .into_iter()
                .map(|c| match FindingCategory::parse(&c) {
                    Some(known) => Ok(known.name().to_string()),
                    None => Err(ApiError::field(
                        "category",
                        format!("category '{c}' is not one of credential, exposure, breach"),
                    )),
                })
                .collect::<Result<Vec<String>, ApiError>>()?,
        ),
    };
    let page = match &p.page {
        None => 1,
        Some(text) => match text.trim().parse::<u64>() {
            Ok(n @ 1..=MAX_PAGE) => n,
            _ => return Err(ApiError::field("page", format!("page '{text}' is not a number from 1 to {MAX_PAGE}"))),
        },
    };
    Ok((FindingFilter { severities, categories }, page))
}

fn finding_json(f: &StoredFinding) -> Value {
    json!({
        "id": f.id,
        "title": f.title,
        "description": f.description,
        "severity": Severity::from_score(f.severity).map_or("low", Severity::label),
        "severity_score": f.severity,
        "category": f.category,
        "status": f.status,
        "source": f.source,
        "source_id": f.source_id,
        "identifier": f.identifier,
        "identifier_kind": f.identifier_kind,
        "is_new": f.is_new,
        "remediation_steps": f.remediation_steps,
        "created_at": engine::rfc3339(f.created_at),
    })
}

/// `GET /api/v1/scans/{id}/findings/`: a page of a scan's findings, in the scan's order.
pub async fn findings(
    State(state): State<AppState>,
    Caller(key): Caller,
    AppPath(id): AppPath<String>,
    AppQuery(params): AppQuery<FindingsParams>,
) -> Result<Json<Value>, ApiError> {
    let (filter, page) = parse_findings_params(&params)?;
    let scan = find_scan(&state, &key.org, &id).await?;
    let store = state.0.store.clone();
    let scan_id = scan.id.clone();
    let (total, rows) =
        blocking(move || store.findings_page(&scan_id, &filter, page, PER_PAGE)).await?.map_err(store_error)?;
    let findings: Vec<Value> = rows.iter().map(finding_json).collect();
    Ok(Json(json!({
        "scan_id": scan.id,
        "total_findings": total,
        "page": page,
        "per_page": PER_PAGE,
        "findings": findings,
    })))
}

/// The query of `GET /api/v1/risk-score/`.
#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct RiskParams {
    identity_id: Option<String>,
}

fn risk_json(identity_id: Option<&str>, risk: Option<&StoredRisk>) -> Value {
    let empty = RiskAssessment {
        overall_score: 0,
        risk_level: RiskLevel::None,
        categories: RiskCategories::default(),
        worst: None,
        findings: 0,
    };
    let a = risk.map_or(&empty, |r| &r.assessment);
    let recommendations: Vec<String> = match risk {
        Some(r) => r.recommendations.clone(),
        None => vec!["No scan has completed yet: start one with POST /api/v1/scans/".to_string()],
    };
    json!({
        "scope": if identity_id.is_some() { "identity" } else { "organization" },
        "identity_id": identity_id,
        "overall_score": a.overall_score,
        "risk_level": a.risk_level,
        "trend": risk.map_or(Trend::New, |r| r.trend).name(),
        "categories": {
            "breach": a.categories.breach,
            "exposure": a.categories.exposure,
            "password": a.categories.password,
        },
        "findings_count": a.findings,
        "recommendations": recommendations,
        "last_calculated": risk.map(|r| engine::rfc3339(r.calculated_at)),
    })
}

/// `GET /api/v1/risk-score/`: the latest risk of an identity (`?identity_id=`) or of the
/// key's organization.
pub async fn risk_score(
    State(state): State<AppState>,
    Caller(key): Caller,
    AppQuery(params): AppQuery<RiskParams>,
) -> Result<Json<Value>, ApiError> {
    let org = key.org.to_string();
    let identity_id = match params.identity_id.as_deref().map(str::trim) {
        Some("") => {
            return Err(ApiError::field("identity_id", "identity_id is empty; leave it out for the organization"));
        }
        other => other.map(str::to_string),
    };
    let store = state.0.store.clone();
    let wanted = identity_id.clone();
    let risk = blocking(move || {
        if let Some(id) = &wanted
            && store.identity(&org, id)?.is_none()
        {
            return Ok(Err(()));
        }
        store.latest_risk(&org, wanted.as_deref()).map(Ok)
    })
    .await?
    .map_err(store_error)?;
    match risk {
        Ok(risk) => Ok(Json(risk_json(identity_id.as_deref(), risk.as_ref()))),
        Err(()) => Err(identity_not_found(identity_id.as_deref().unwrap_or_default())),
    }
}

/// Starts the configured number of scan workers, each on a thread of the blocking pool
/// tracked by `tracker`; they stop after their current scan when `stop` is cancelled.
pub fn spawn_workers(tracker: &TaskTracker, state: &AppState, stop: CancellationToken) {
    for _ in 0..state.config().scan_workers {
        let state = state.clone();
        let stop = stop.clone();
        tracker.spawn_blocking(move || worker(&state, &stop));
    }
}

/// A worker's loop. It runs on its own thread from claim to completion, so a scan never
/// waits for an async worker that the check endpoints keep busy. Blocking.
fn worker(state: &AppState, stop: &CancellationToken) {
    let mut last_org_risk = Instant::now();
    while !stop.is_cancelled() {
        match state.0.store.claim_scan(engine::now_unix()) {
            Ok(Some(scan)) => {
                run_scan(state, &scan);
                if last_org_risk.elapsed() >= ORG_RISK_INTERVAL {
                    recalculate_orgs(state);
                    last_org_risk = Instant::now();
                }
            }
            Ok(None) => {
                recalculate_orgs(state);
                last_org_risk = Instant::now();
                state.0.scans.wait(IDLE_WAIT);
            }
            Err(e) => {
                tracing::error!(error = %e, "cannot take a scan from the queue");
                std::thread::sleep(Duration::from_secs(1));
            }
        }
    }
}

/// Runs one claimed scan to `completed` or `failed`. Blocking.
fn run_scan(state: &AppState, scan: &StoredScan) {
    let queue = &state.0.scans;
    queue.set_progress(&scan.id, Some(0));
    let outcome = scan_once(state, scan);
    let store = &state.0.store;
    match outcome {
        Ok(()) => {
            queue.dirty_orgs.lock().unwrap_or_else(|e| e.into_inner()).insert(scan.org.clone());
        }
        Err(reason) => {
            tracing::warn!(scan = %scan.id, reason = %reason, "scan failed");
            if let Err(e) = store.fail_scan(&scan.id, &reason, engine::now_unix()) {
                tracing::error!(scan = %scan.id, error = %e, "cannot record a failed scan");
            }
        }
    }
    queue.set_progress(&scan.id, None);
}

fn scan_once(state: &AppState, scan: &StoredScan) -> Result<(), String> {
    let store = &state.0.store;
    let internal = |e: crate::store::StoreError| format!("the state database failed: {e}");
    let Some(identity) = store.identity(&scan.org, &scan.identity_id).map_err(internal)? else {
        return Err(format!("identity {} was deleted before the scan ran", scan.identity_id));
    };
    let usernames: &[String] = if scan.scan_type == "quick" { &[] } else { &identity.usernames };
    let total = identity.emails.len() + usernames.len();
    let queue = &state.0.scans;
    let progress = |done: usize| {
        let percent = (done * 100).checked_div(total).unwrap_or(100);
        queue.set_progress(&scan.id, Some(u8::try_from(percent).unwrap_or(100)));
    };
    let (generation, findings) = state
        .0
        .engine
        .scan_findings(&identity.emails, usernames, &progress)
        .map_err(|e| format!("the index refused an identifier of the identity: {}", e.message))?;
    let now = engine::now_unix();
    let risk = engine::assess_findings(&findings, now);
    let recommendations = engine::recommendations(&risk);
    let events = |done: &CompletedScan| scan_events(scan, &findings, &risk, done, now);
    let (_, queued) =
        store.complete_scan(scan, &generation, &findings, &risk, &recommendations, now, &events).map_err(internal)?;
    if queued > 0 {
        state.0.webhook_wake.notify_one();
    }
    Ok(())
}

/// Whether a risk change raises an alert: the level is now high or critical and was lower
/// before (or there was no earlier calculation).
fn alert_due(previous: Option<&RiskAssessment>, now: &RiskAssessment) -> bool {
    now.risk_level >= RiskLevel::High && previous.is_none_or(|p| p.risk_level < now.risk_level)
}

/// The `data` of a `finding.new` event: the scan that found it (`null` for a finding
/// recorded by `breach.detected` after a new generation), the identity and the finding
/// as the findings page shows it.
pub(crate) fn finding_new_data(
    scan_id: Option<&str>,
    identity_id: &str,
    f: &engine::Finding,
    finding_id: &str,
    now: i64,
) -> Value {
    json!({
        "scan_id": scan_id,
        "identity_id": identity_id,
        "finding": {
            "id": finding_id,
            "title": f.title,
            "description": f.description,
            "severity": f.severity.label(),
            "severity_score": f.severity.score(),
            "category": f.category.name(),
            "status": "open",
            "source": f.source,
            "source_id": f.source_id,
            "identifier": f.identifier,
            "identifier_kind": f.identifier_kind,
            "remediation_steps": f.remediation_steps,
            "created_at": engine::rfc3339(now),
        },
    })
}

/// The events of a completed scan, queued in its transaction: `finding.new` for each new
/// finding, `alert.triggered` when [`alert_due`], and `scan.completed` (also to the
/// scan's callback).
fn scan_events(
    scan: &StoredScan,
    findings: &[engine::Finding],
    risk: &RiskAssessment,
    done: &CompletedScan,
    now: i64,
) -> Vec<(OutgoingEvent, Option<Callback>)> {
    let mut events = Vec::new();
    let event = |name: &str, data: Value| OutgoingEvent {
        org: scan.org.clone(),
        event: name.to_string(),
        timestamp: now,
        data,
    };
    for (f, recorded) in findings.iter().zip(&done.findings).filter(|(_, r)| r.is_new) {
        let data = finding_new_data(Some(&scan.id), &scan.identity_id, f, &recorded.id, now);
        events.push((event(crate::webhooks::FINDING_NEW, data), None));
    }
    if alert_due(done.previous.as_ref(), risk) {
        let data = json!({
            "rule": "risk_level_raised",
            "identity_id": scan.identity_id,
            "scan_id": scan.id,
            "risk_level": risk.risk_level,
            "overall_score": risk.overall_score,
            "previous_risk_level": done.previous.as_ref().map(|p| p.risk_level),
            "previous_score": done.previous.as_ref().map(|p| p.overall_score),
        });
        events.push((event(crate::webhooks::ALERT_TRIGGERED, data), None));
    }
    let of = |s: Severity| findings.iter().filter(|f| f.severity == s).count();
    let data = json!({
        "scan_id": scan.id,
        "identity_id": scan.identity_id,
        "scan_type": scan.scan_type,
        "status": ScanStatus::Completed.name(),
        "findings_count": findings.len(),
        "new_findings_count": done.findings.iter().filter(|r| r.is_new).count(),
        "critical_count": of(Severity::Critical),
        "high_count": of(Severity::High),
        "medium_count": of(Severity::Medium),
        "low_count": of(Severity::Low),
        "overall_score": risk.overall_score,
        "risk_level": risk.risk_level,
        "completed_at": engine::rfc3339(now),
    });
    events.push((event(crate::webhooks::SCAN_COMPLETED, data), scan.callback.clone()));
    events
}

/// Recombines the risk of every organization with scans completed since the last time.
/// Blocking.
fn recalculate_orgs(state: &AppState) {
    let orgs = std::mem::take(&mut *state.0.scans.dirty_orgs.lock().unwrap_or_else(|e| e.into_inner()));
    let store = &state.0.store;
    for org in orgs {
        let result = store.identity_risks(&org).and_then(|risks| {
            let combined = engine::combine_risks(&risks);
            store.record_org_risk(&org, &combined, &engine::recommendations(&combined), engine::now_unix())
        });
        if let Err(e) = result {
            tracing::error!(error = %e, "cannot record an organization's risk");
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn risk(score: u8) -> RiskAssessment {
        RiskAssessment {
            overall_score: score,
            risk_level: RiskLevel::of(score, score > 0),
            categories: RiskCategories::default(),
            worst: None,
            findings: u64::from(score > 0),
        }
    }

    #[test]
    fn an_alert_fires_when_the_level_rises_to_high_or_critical() {
        assert!(alert_due(None, &risk(60)), "first calculation, high");
        assert!(alert_due(None, &risk(80)), "first calculation, critical");
        assert!(!alert_due(None, &risk(40)), "medium");
        assert!(alert_due(Some(&risk(40)), &risk(60)), "medium to high");
        assert!(alert_due(Some(&risk(60)), &risk(80)), "high to critical");
        assert!(!alert_due(Some(&risk(60)), &risk(70)), "high stays high");
        assert!(!alert_due(Some(&risk(80)), &risk(60)), "critical to high falls");
    }

    fn params(severity: Option<&str>, category: Option<&str>, page: Option<&str>) -> FindingsParams {
        FindingsParams {
            severity: severity.map(str::to_string),
            category: category.map(str::to_string),
            page: page.map(str::to_string),
        }
    }

    fn field_of(e: ApiError) -> Option<String> {
        match e {
            ApiError::Validation { field, .. } => field,
            _ => None,
        }
    }

    #[test]
    fn findings_filters_are_validated_and_name_the_parameter() {
        let (filter, page) =
            parse_findings_params(&params(Some("High, 25"), Some("credential,exposure"), Some("3"))).unwrap();
        assert_eq!(filter.severities, Some(vec![20, 25]));
        assert_eq!(filter.categories, Some(vec!["credential".to_string(), "exposure".to_string()]));
        assert_eq!(page, 3);
        assert_eq!(parse_findings_params(&params(None, None, None)).unwrap(), (FindingFilter::default(), 1));
        for (p, field) in [
            (params(Some("severe"), None, None), "severity"),
            (params(Some("7"), None, None), "severity"),
            (params(None, Some("password"), None), "category"),
            (params(None, None, Some("0")), "page"),
            (params(None, None, Some("two")), "page"),
            (params(None, None, Some("-1")), "page"),
        ] {
            let e = parse_findings_params(&p).unwrap_err();
            assert_eq!(field_of(e).as_deref(), Some(field));
        }
    }
}
