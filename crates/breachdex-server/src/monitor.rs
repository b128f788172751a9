//! `breach.detected` (SPEC §14): when the served index moves to a new generation (a
//! `breachdex add` published under `--index`), the change feed since the last
//! generation processed is matched against the watched identities' derived keys
//! ([`breachdex::WatchList`]), and each (identity, source) gained fires
//! `breach.detected` once to the organization's subscribed webhooks, and records the
//! findings of that breach for the identity (as a scan of the identifier gives them,
//! outside any scan).
//!
//! The last generation processed is kept in the state database and moved in the same
//! transaction that records the detections and queues their deliveries
//! ([`crate::store::StateStore::record_detections`]), so a restart neither repeats nor
//! skips a generation. On the first start the served generation is taken as processed:
//! what an identity already had is a scan's business, not an alert's. An index replaced
//! by one of an older generation (a fresh build) is taken as processed too.
//!
//! Matching runs on a blocking thread, never on the async workers. Logs name counts
//! and generations only, never an identifier.

use crate::engine::{self, Finding, IdentityKind};
use crate::state::AppState;
use crate::store::Detection;
use breachdex::{IdentifierKind, WatchList};
use serde_json::json;
use std::collections::HashMap;
use tokio_util::sync::CancellationToken;
use tokio_util::task::TaskTracker;

/// What one look at the served generation did.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct MonitorRun {
    /// The generation now recorded as processed.
    pub generation: u64,
    /// `breach.detected` events queued (new (identity, source) pairs).
    pub detected: usize,
}

/// Matches the generations after the last processed one, if any, and records the
/// result. Blocking.
pub fn check_blocking(state: &AppState) -> Result<Option<MonitorRun>, String> {
    let store = &state.0.store;
    let engine = &state.0.engine;
    let (served, mode) = engine.generation();
    let last = store.monitored_generation().map_err(|e| e.to_string())?;
    let now_ms = engine::now_unix_millis();
    let since = match last {
        Some(g) if g == served => return Ok(None),
        Some(g) if g < served => g,
        Some(g) => {
            tracing::warn!(processed = g, served, "the served index has an older generation; matching from it on");
            store.record_detections(served, &[], now_ms).map_err(|e| e.to_string())?;
            return Ok(Some(MonitorRun { generation: served, detected: 0 }));
        }
        None => {
            store.record_detections(served, &[], now_ms).map_err(|e| e.to_string())?;
            return Ok(Some(MonitorRun { generation: served, detected: 0 }));
        }
    };
    let watched = store.watched_keys().map_err(|e| e.to_string())?;
    let mut ids: Vec<String> = Vec::new();
    let mut number: HashMap<String, u32> = HashMap::new();
    let mut watch = WatchList::new();
    for (identity, key) in &watched {
        // Keys derived in another hash mode than the served index's cannot match.
        if key.hash_mode != mode {
            continue;
        }
        let n = *number.entry(identity.clone()).or_insert_with(|| {
            ids.push(identity.clone());
            u32::try_from(ids.len() - 1).unwrap_or(u32::MAX)
        });
        let kind = if key.kind == "email" { IdentifierKind::Email } else { IdentifierKind::Username };
        watch.insert(kind, &key.key, n);
    }
    let found = engine.new_breaches(since, &watch)?;
    let hit_ids: Vec<String> = {
        let mut v: Vec<String> = found.hits.iter().filter_map(|h| ids.get(h.watcher as usize)).cloned().collect();
        v.dedup();
        v
    };
    let identities: HashMap<String, crate::store::StoredIdentity> =
        store.identities_by_id(&hit_ids).map_err(|e| e.to_string())?.into_iter().map(|i| (i.id.clone(), i)).collect();
    let mut detections = Vec::with_capacity(found.hits.len());
    for hit in &found.hits {
        let Some(identity) = ids.get(hit.watcher as usize).and_then(|id| identities.get(id)) else { continue };
        let (kind, kind_name, given) = match hit.kind {
            IdentifierKind::Email => (IdentityKind::Email, "email", &identity.emails),
            IdentifierKind::Username => (IdentityKind::Username, "username", &identity.usernames),
        };
        // The identifier as the organization gave it: the one whose derived key matched.
        let value =
            given.iter().find(|text| engine.derived_key(kind, text).is_ok_and(|(key, _)| key == hit.key)).cloned();
        let source = found.sources.get(&hit.source_id);
        // The findings of this breach, as a scan of that identifier gives them.
        let findings: Vec<Finding> = match &value {
            Some(text) => {
                let one = std::slice::from_ref(text);
                let (emails, usernames): (&[String], &[String]) =
                    if kind == IdentityKind::Email { (one, &[]) } else { (&[], one) };
                match engine.scan_findings(emails, usernames, &|_| {}) {
                    Ok((_, all)) => all.into_iter().filter(|f| f.source_id == hit.source_id).collect(),
                    Err(e) => return Err(e.message),
                }
            }
            None => Vec::new(),
        };
        let worst = findings.iter().max_by_key(|f| f.severity.score());
        detections.push(Detection {
            identity_id: identity.id.clone(),
            org: identity.org.clone(),
            source_id: hit.source_id,
            data: json!({
                "identity_id": identity.id,
                "identity_name": identity.name,
                "matched": {"type": kind_name, "value": value},
                "source": source,
                "severity": worst.map(|f| f.severity.label()),
                "category": worst.map(|f| f.category.name()),
                "generation": hit.generation,
            }),
            findings,
        });
    }
    let detected = store.record_detections(found.generation, &detections, now_ms).map_err(|e| e.to_string())?;
    if detected > 0 {
        state.0.webhook_wake.notify_one();
    }
    tracing::info!(
        from = since,
        to = found.generation,
        watched_keys = watch.len(),
        detected,
        "change feed matched against watched identities"
    );
    Ok(Some(MonitorRun { generation: found.generation, detected }))
}

/// Starts the monitor: every refresh interval, [`check_blocking`] on a blocking
/// thread (an error is logged once until it changes, and the generation is tried
/// again on the next tick).
pub fn spawn_monitor(tracker: &TaskTracker, state: &AppState, stop: CancellationToken) {
    crate::spawn_ticker(
        tracker,
        state,
        stop,
        "matching the change feed against watched identities failed; retrying",
        |state| check_blocking(state).err(),
    );
}
