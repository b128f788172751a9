//! The state of scans, findings and risk scores (SPEC §14) behind [`ScanStore`], and
//! its SQLite implementation on [`SqliteStore`] (tables of migration 3: `scans`,
//! `findings`, `finding_seen`, `risk_history`, `risk_latest`; migration 5 adds a scan's
//! callback URL and secret).
//!
//! - A scan row goes `pending` → `running` → `completed` or `failed` (with a reason).
//!   [`ScanStore::claim_scan`] takes the oldest pending one; at start
//!   [`ScanStore::requeue_running_scans`] puts back those a stopped server left running.
//! - A scan's findings, its counts, the identity's `last_scanned` and its risk row are
//!   written in one transaction ([`ScanStore::complete_scan`]), so an interrupted scan
//!   leaves nothing half-written.
//! - A finding is *new* the first time its identity has its (identifier kind,
//!   identifier, source, category): `finding_seen` remembers each such tuple.
//! - `risk_history` keeps one row per calculation (an identity after each scan, an
//!   organization after the scans of a batch); `risk_latest` the latest per identity, from
//!   which the organization's score is combined.

use crate::engine::{Finding, RiskAssessment, RiskCategories, RiskLevel, Severity, Trend};
use crate::store::{Callback, OutgoingEvent, SqliteStore, StoreError, enqueue_in};
use rusqlite::{OptionalExtension, Transaction, params};

/// Where a scan is.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ScanStatus {
    /// Queued.
    Pending,
    /// Being checked.
    Running,
    /// Done; findings written.
    Completed,
    /// Stopped with a reason.
    Failed,
}

impl ScanStatus {
    /// The status's name.
    pub fn name(self) -> &'static str {
        match self {
            ScanStatus::Pending => "pending",
            ScanStatus::Running => "running",
            ScanStatus::Completed => "completed",
            ScanStatus::Failed => "failed",
        }
    }

    fn parse(name: &str) -> ScanStatus {
        match name {
            "pending" => ScanStatus::Pending,
            "running" => ScanStatus::Running,
            "completed" => ScanStatus::Completed,
            _ => ScanStatus::Failed,
        }
    }
}

/// A scan as stored.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct StoredScan {
    /// Public id (`scn_…`).
    pub id: String,
    /// Organization.
    pub org: String,
    /// The scanned identity.
    pub identity_id: String,
    /// `full` or `quick`.
    pub scan_type: String,
    /// Where it is.
    pub status: ScanStatus,
    /// Why it failed.
    pub error: Option<String>,
    /// The index generation id it ran against.
    pub generation: Option<String>,
    /// Findings, then those of severity critical, high, medium, low.
    pub counts: [u64; 5],
    /// Unix time of the request.
    pub created_at: i64,
    /// Unix time it started running.
    pub started_at: Option<i64>,
    /// Unix time it completed or failed.
    pub completed_at: Option<i64>,
    /// Where `scan.completed` is also sent, with its signing secret.
    pub callback: Option<Callback>,
}

/// A finding as written: its id, and whether it is new.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RecordedFinding {
    /// Public id (`fnd_…`).
    pub id: String,
    /// First time the identity has this (identifier kind, identifier, source, category).
    pub is_new: bool,
}

/// What completing a scan wrote.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct CompletedScan {
    /// The findings, in order.
    pub findings: Vec<RecordedFinding>,
    /// The identity's risk before this scan (`None`: its first calculation).
    pub previous: Option<RiskAssessment>,
}

/// What [`ScanStore::complete_scan`] queues for a completed scan: its events, each with
/// the callback it also goes to (if any), made from the scan's recorded result.
pub type ScanEvents<'a> = dyn Fn(&CompletedScan) -> Vec<(OutgoingEvent, Option<Callback>)> + 'a;

/// A finding as stored.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct StoredFinding {
    /// Public id (`fnd_…`).
    pub id: String,
    /// The scan that found it (`None`: recorded outside a scan).
    pub scan_id: Option<String>,
    /// The identity.
    pub identity_id: String,
    /// `email` or `username`.
    pub identifier_kind: String,
    /// The identifier as the identity holds it.
    pub identifier: String,
    /// The breach's source name.
    pub source: String,
    /// Its id.
    pub source_id: u32,
    /// `credential`, `exposure` or `breach`.
    pub category: String,
    /// Severity score (2, 5, 20, 25).
    pub severity: u8,
    /// One line.
    pub title: String,
    /// What was exposed.
    pub description: String,
    /// What to do.
    pub remediation_steps: Vec<String>,
    /// `open`.
    pub status: String,
    /// First time the identity has this (identifier, source, category).
    pub is_new: bool,
    /// Unix time.
    pub created_at: i64,
}

/// Which findings of a scan a page holds.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct FindingFilter {
    /// Only these severity scores.
    pub severities: Option<Vec<u8>>,
    /// Only these categories.
    pub categories: Option<Vec<String>>,
}

/// A risk calculation as stored.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct StoredRisk {
    /// The score and its parts.
    pub assessment: RiskAssessment,
    /// From the previous calculation of the same identity (or organization).
    pub trend: Trend,
    /// What to do.
    pub recommendations: Vec<String>,
    /// Unix time.
    pub calculated_at: i64,
}

/// Scans, findings and risk scores. Every method blocks: call it from a blocking thread.
pub trait ScanStore {
    /// Queues a scan.
    fn insert_scan(&self, scan: &StoredScan) -> Result<(), StoreError>;
    /// The scan `id` of `org`.
    fn scan(&self, org: &str, id: &str) -> Result<Option<StoredScan>, StoreError>;
    /// Marks the oldest pending scan running (at `now`) and returns it.
    fn claim_scan(&self, now: i64) -> Result<Option<StoredScan>, StoreError>;
    /// Puts scans left running by a stopped server back to pending; returns how many.
    fn requeue_running_scans(&self) -> Result<u64, StoreError>;
    /// Marks a scan failed with a reason.
    fn fail_scan(&self, id: &str, reason: &str, now: i64) -> Result<(), StoreError>;
    /// Completes a running scan in one transaction: its findings (in order), counts and
    /// generation, the identity's `last_scanned`, the identity's risk row (its trend
    /// from the previous one), and the webhook deliveries of the events `events` makes
    /// of the result (each with its callback, if any), so that a crash loses neither
    /// the scan's results nor its events. Returns the findings' ids and novelty, in
    /// order, the identity's previous risk, and how many deliveries were queued.
    #[allow(clippy::too_many_arguments)]
    fn complete_scan(
        &self,
        scan: &StoredScan,
        generation: &str,
        findings: &[Finding],
        risk: &RiskAssessment,
        recommendations: &[&str],
        now: i64,
        events: &ScanEvents<'_>,
    ) -> Result<(CompletedScan, usize), StoreError>;
    /// One page (from 1) of `per_page` findings of a scan that pass `filter`, in the
    /// scan's order, and how many pass in all.
    fn findings_page(
        &self,
        scan_id: &str,
        filter: &FindingFilter,
        page: u64,
        per_page: u64,
    ) -> Result<(u64, Vec<StoredFinding>), StoreError>;
    /// The latest risk of an identity of `org`, or of `org` itself (`identity_id` `None`).
    fn latest_risk(&self, org: &str, identity_id: Option<&str>) -> Result<Option<StoredRisk>, StoreError>;
    /// The latest risk of each active identity of `org` that has one.
    fn identity_risks(&self, org: &str) -> Result<Vec<RiskAssessment>, StoreError>;
    /// Appends a risk row for `org` itself (trend from its previous one) and returns it.
    fn record_org_risk(
        &self,
        org: &str,
        risk: &RiskAssessment,
        recommendations: &[&str],
        now: i64,
    ) -> Result<StoredRisk, StoreError>;
}

/// Migration 3 (appended to the store's `MIGRATIONS`).
pub(crate) const MIGRATION: &str = "CREATE TABLE scans (
        seq INTEGER PRIMARY KEY,
        id TEXT NOT NULL UNIQUE,
        org TEXT NOT NULL,
        identity_id TEXT NOT NULL,
        scan_type TEXT NOT NULL,
        status TEXT NOT NULL,
        error TEXT,
        generation TEXT,
        findings_count INTEGER NOT NULL DEFAULT 0,
        critical_count INTEGER NOT NULL DEFAULT 0,
        high_count INTEGER NOT NULL DEFAULT 0,
        medium_count INTEGER NOT NULL DEFAULT 0,
        low_count INTEGER NOT NULL DEFAULT 0,
        created_at INTEGER NOT NULL,
        started_at INTEGER,
        completed_at INTEGER
    );
    CREATE INDEX scans_by_status ON scans (status, seq);
    CREATE TABLE findings (
        seq INTEGER PRIMARY KEY,
        id TEXT NOT NULL UNIQUE,
        org TEXT NOT NULL,
        identity_id TEXT NOT NULL,
        scan_id TEXT,
        position INTEGER NOT NULL,
        identifier_kind TEXT NOT NULL,
        identifier TEXT NOT NULL,
        source TEXT NOT NULL,
        source_id INTEGER NOT NULL,
        category TEXT NOT NULL,
        severity INTEGER NOT NULL,
        title TEXT NOT NULL,
        description TEXT NOT NULL,
        remediation TEXT NOT NULL,
        status TEXT NOT NULL,
        is_new INTEGER NOT NULL,
        created_at INTEGER NOT NULL
    );
    CREATE INDEX findings_by_scan ON findings (scan_id, position);
    CREATE INDEX findings_by_identity ON findings (identity_id, seq);
    CREATE TABLE finding_seen (
        identity_id TEXT NOT NULL,
        identifier_kind TEXT NOT NULL,
        identifier TEXT NOT NULL,
        source TEXT NOT NULL,
        category TEXT NOT NULL,
        first_seen INTEGER NOT NULL,
        PRIMARY KEY (identity_id, identifier_kind, identifier, source, category)
    ) WITHOUT ROWID;
    CREATE TABLE risk_history (
        id INTEGER PRIMARY KEY,
        org TEXT NOT NULL,
        identity_id TEXT,
        overall INTEGER NOT NULL,
        breach INTEGER NOT NULL,
        exposure INTEGER NOT NULL,
        password INTEGER NOT NULL,
        worst INTEGER,
        findings INTEGER NOT NULL,
        trend TEXT NOT NULL,
        recommendations TEXT NOT NULL,
        calculated_at INTEGER NOT NULL
    );
    CREATE INDEX risk_history_by_subject ON risk_history (org, identity_id, id);
    CREATE TABLE risk_latest (
        identity_id TEXT PRIMARY KEY,
        org TEXT NOT NULL,
        history_id INTEGER NOT NULL
    );
    CREATE INDEX risk_latest_by_org ON risk_latest (org);";

/// Migration 5 (appended to the store's `MIGRATIONS`): a scan's callback.
pub(crate) const MIGRATION_CALLBACK: &str = "ALTER TABLE scans ADD COLUMN callback_url TEXT;
    ALTER TABLE scans ADD COLUMN callback_secret TEXT;";

const SCAN_COLUMNS: &str = "id, org, identity_id, scan_type, status, error, generation, findings_count, \
     critical_count, high_count, medium_count, low_count, created_at, started_at, completed_at, callback_url, \
     callback_secret";

fn count(v: i64) -> u64 {
    u64::try_from(v).unwrap_or(0)
}

fn scan_from_row(r: &rusqlite::Row<'_>) -> rusqlite::Result<StoredScan> {
    let status: String = r.get(4)?;
    Ok(StoredScan {
        id: r.get(0)?,
        org: r.get(1)?,
        identity_id: r.get(2)?,
        scan_type: r.get(3)?,
        status: ScanStatus::parse(&status),
        error: r.get(5)?,
        generation: r.get(6)?,
        counts: [count(r.get(7)?), count(r.get(8)?), count(r.get(9)?), count(r.get(10)?), count(r.get(11)?)],
        created_at: r.get(12)?,
        started_at: r.get(13)?,
        completed_at: r.get(14)?,
        callback: match (r.get::<_, Option<String>>(15)?, r.get::<_, Option<String>>(16)?) {
            (Some(url), Some(secret)) => Some(Callback { url, secret }),
            _ => None,
        },
    })
}

const FINDING_COLUMNS: &str = "id, scan_id, identity_id, identifier_kind, identifier, source, source_id, category, \
     severity, title, description, remediation, status, is_new, created_at";

fn finding_from_row(r: &rusqlite::Row<'_>) -> rusqlite::Result<StoredFinding> {
    let remediation: String = r.get(11)?;
    Ok(StoredFinding {
        id: r.get(0)?,
        scan_id: r.get(1)?,
        identity_id: r.get(2)?,
        identifier_kind: r.get(3)?,
        identifier: r.get(4)?,
        source: r.get(5)?,
        source_id: u32::try_from(r.get::<_, i64>(6)?).unwrap_or(0),
        category: r.get(7)?,
        severity: u8::try_from(r.get::<_, i64>(8)?).unwrap_or(0),
        title: r.get(9)?,
        description: r.get(10)?,
        remediation_steps: serde_json::from_str(&remediation).unwrap_or_default(),
        status: r.get(12)?,
        is_new: r.get::<_, i64>(13)? != 0,
        created_at: r.get(14)?,
    })
}

const RISK_COLUMNS: &str =
    "overall, breach, exposure, password, worst, findings, trend, recommendations, calculated_at";

fn score(v: i64) -> u8 {
    u8::try_from(v.clamp(0, 100)).unwrap_or(0)
}

/// The latest risk calculation of an identity (`None`: of the organization), read by `map`.
fn latest_risk_row<T>(
    conn: &rusqlite::Connection,
    org: &str,
    identity_id: Option<&str>,
    map: fn(&rusqlite::Row<'_>) -> rusqlite::Result<T>,
) -> rusqlite::Result<Option<T>> {
    conn.query_row(
        &format!(
            "SELECT {RISK_COLUMNS} FROM risk_history WHERE org = ?1 AND identity_id IS ?2 ORDER BY id DESC LIMIT 1"
        ),
        params![org, identity_id],
        map,
    )
    .optional()
}

fn assessment_from_row(r: &rusqlite::Row<'_>) -> rusqlite::Result<RiskAssessment> {
    let overall = score(r.get(0)?);
    let findings = count(r.get(5)?);
    let worst: Option<i64> = r.get(4)?;
    Ok(RiskAssessment {
        overall_score: overall,
        risk_level: RiskLevel::of(overall, findings > 0),
        categories: RiskCategories { breach: score(r.get(1)?), exposure: score(r.get(2)?), password: score(r.get(3)?) },
        worst: worst.and_then(|w| u8::try_from(w).ok()).and_then(Severity::from_score),
        findings,
    })
}

fn trend_of(name: &str) -> Trend {
    [Trend::Increasing, Trend::Decreasing, Trend::Stable].into_iter().find(|t| t.name() == name).unwrap_or(Trend::New)
}

fn risk_from_row(r: &rusqlite::Row<'_>) -> rusqlite::Result<StoredRisk> {
    let trend: String = r.get(6)?;
    let recommendations: String = r.get(7)?;
    Ok(StoredRisk {
        assessment: assessment_from_row(r)?,
        trend: trend_of(&trend),
        recommendations: serde_json::from_str(&recommendations).unwrap_or_default(),
        calculated_at: r.get(8)?,
    })
}

fn json_text<T: serde::Serialize + ?Sized>(value: &T) -> String {
    serde_json::to_string(value).unwrap_or_else(|_| "[]".into())
}

impl SqliteStore {
    /// Inserts findings in order inside `tx`; returns which are new.
    pub(crate) fn insert_findings(
        &self,
        tx: &Transaction<'_>,
        org: &str,
        identity_id: &str,
        scan_id: Option<&str>,
        findings: &[Finding],
        now: i64,
    ) -> Result<Vec<RecordedFinding>, StoreError> {
        let mut seen = tx
            .prepare_cached(
                "INSERT OR IGNORE INTO finding_seen (identity_id, identifier_kind, identifier, source, category, \
                 first_seen) VALUES (?1, ?2, ?3, ?4, ?5, ?6)",
            )
            .map_err(|e| self.err(e))?;
        let mut add = tx
            .prepare_cached(
                "INSERT INTO findings (id, org, identity_id, scan_id, position, identifier_kind, identifier, source, \
                 source_id, category, severity, title, description, remediation, status, is_new, created_at) \
                 VALUES ('fnd_' || lower(hex(randomblob(12))), ?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8, ?9, ?10, ?11, ?12, \
                 ?13, 'open', ?14, ?15) RETURNING id",
            )
            .map_err(|e| self.err(e))?;
        let mut new = Vec::with_capacity(findings.len());
        for (position, f) in findings.iter().enumerate() {
            let category = f.category.name();
            let is_new = seen
                .execute(params![identity_id, f.identifier_kind, f.identifier, f.source, category, now])
                .map_err(|e| self.err(e))?
                > 0;
            let id: String = add
                .query_row(
                    params![
                        org,
                        identity_id,
                        scan_id,
                        position as i64,
                        f.identifier_kind,
                        f.identifier,
                        f.source,
                        i64::from(f.source_id),
                        category,
                        i64::from(f.severity.score()),
                        f.title,
                        f.description,
                        json_text(&f.remediation_steps),
                        i64::from(is_new),
                        now
                    ],
                    |r| r.get(0),
                )
                .map_err(|e| self.err(e))?;
            new.push(RecordedFinding { id, is_new });
        }
        Ok(new)
    }

    /// Appends a risk row inside `tx` (its trend from the subject's previous row).
    fn insert_risk(
        &self,
        tx: &Transaction<'_>,
        org: &str,
        identity_id: Option<&str>,
        risk: &RiskAssessment,
        recommendations: &[&str],
        now: i64,
    ) -> Result<(StoredRisk, Option<RiskAssessment>), StoreError> {
        let previous = latest_risk_row(tx, org, identity_id, assessment_from_row).map_err(|e| self.err(e))?;
        let trend = Trend::of(previous.as_ref().map(|p| p.overall_score), risk.overall_score);
        tx.execute(
            "INSERT INTO risk_history (org, identity_id, overall, breach, exposure, password, worst, findings, trend, \
             recommendations, calculated_at) VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8, ?9, ?10, ?11)",
            params![
                org,
                identity_id,
                i64::from(risk.overall_score),
                i64::from(risk.categories.breach),
                i64::from(risk.categories.exposure),
                i64::from(risk.categories.password),
                risk.worst.map(|s| i64::from(s.score())),
                i64::try_from(risk.findings).unwrap_or(i64::MAX),
                trend.name(),
                json_text(recommendations),
                now
            ],
        )
        .map_err(|e| self.err(e))?;
        if let Some(identity_id) = identity_id {
            let id = tx.last_insert_rowid();
            tx.execute(
                "INSERT INTO risk_latest (identity_id, org, history_id) VALUES (?1, ?2, ?3) \
                 ON CONFLICT (identity_id) DO UPDATE SET history_id = excluded.history_id",
                params![identity_id, org, id],
            )
            .map_err(|e| self.err(e))?;
        }
        let stored = StoredRisk {
            assessment: risk.clone(),
            trend,
            recommendations: recommendations.iter().map(|r| (*r).to_string()).collect(),
            calculated_at: now,
        };
        Ok((stored, previous))
    }
}

impl ScanStore for SqliteStore {
    fn insert_scan(&self, scan: &StoredScan) -> Result<(), StoreError> {
        self.conn()
            .execute(
                "INSERT INTO scans (id, org, identity_id, scan_type, status, created_at, callback_url, callback_secret) \
                 VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8)",
                params![
                    scan.id,
                    scan.org,
                    scan.identity_id,
                    scan.scan_type,
                    scan.status.name(),
                    scan.created_at,
                    scan.callback.as_ref().map(|c| c.url.as_str()),
                    scan.callback.as_ref().map(|c| c.secret.as_str())
                ],
            )
            .map_err(|e| self.err(e))?;
        Ok(())
    }

    fn scan(&self, org: &str, id: &str) -> Result<Option<StoredScan>, StoreError> {
        self.conn()
            .query_row(
                &format!("SELECT {SCAN_COLUMNS} FROM scans WHERE id = ?1 AND org = ?2"),
                params![id, org],
                scan_from_row,
            )
            .optional()
            .map_err(|e| self.err(e))
    }

    fn claim_scan(&self, now: i64) -> Result<Option<StoredScan>, StoreError> {
        self.conn()
            .query_row(
                &format!(
                    "UPDATE scans SET status = 'running', started_at = ?1 WHERE seq = \
                     (SELECT seq FROM scans WHERE status = 'pending' ORDER BY seq LIMIT 1) RETURNING {SCAN_COLUMNS}"
                ),
                params![now],
                scan_from_row,
            )
            .optional()
            .map_err(|e| self.err(e))
    }

    fn requeue_running_scans(&self) -> Result<u64, StoreError> {
        let n = self
            .conn()
            .execute("UPDATE scans SET status = 'pending', started_at = NULL WHERE status = 'running'", [])
            .map_err(|e| self.err(e))?;
        Ok(n as u64)
    }

    fn fail_scan(&self, id: &str, reason: &str, now: i64) -> Result<(), StoreError> {
        self.conn()
            .execute(
                "UPDATE scans SET status = 'failed', error = ?2, completed_at = ?3 WHERE id = ?1",
                params![id, reason, now],
            )
            .map_err(|e| self.err(e))?;
        Ok(())
    }

    fn complete_scan(
        &self,
        scan: &StoredScan,
        generation: &str,
        findings: &[Finding],
        risk: &RiskAssessment,
        recommendations: &[&str],
        now: i64,
        events: &ScanEvents<'_>,
    ) -> Result<(CompletedScan, usize), StoreError> {
        let mut conn = self.conn();
        let tx = conn.transaction_with_behavior(rusqlite::TransactionBehavior::Immediate).map_err(|e| self.err(e))?;
        let new = self.insert_findings(&tx, &scan.org, &scan.identity_id, Some(&scan.id), findings, now)?;
        let of = |s: Severity| findings.iter().filter(|f| f.severity == s).count() as i64;
        tx.execute(
            "UPDATE scans SET status = 'completed', generation = ?2, findings_count = ?3, critical_count = ?4, \
             high_count = ?5, medium_count = ?6, low_count = ?7, completed_at = ?8 WHERE id = ?1",
            params![
                scan.id,
                generation,
                findings.len() as i64,
                of(Severity::Critical),
                of(Severity::High),
                of(Severity::Medium),
                of(Severity::Low),
                now
            ],
        )
        .map_err(|e| self.err(e))?;
        tx.execute("UPDATE identities SET last_scanned = ?2 WHERE id = ?1", params![scan.identity_id, now])
            .map_err(|e| self.err(e))?;
        let (_, previous) = self.insert_risk(&tx, &scan.org, Some(&scan.identity_id), risk, recommendations, now)?;
        let done = CompletedScan { findings: new, previous };
        let now_ms = now.saturating_mul(1000);
        let mut queued = 0;
        for (event, callback) in events(&done) {
            queued += enqueue_in(&tx, &event, callback.as_ref(), now_ms).map_err(|e| self.err(e))?;
        }
        tx.commit().map_err(|e| self.err(e))?;
        Ok((done, queued))
    }

    fn findings_page(
        &self,
        scan_id: &str,
        filter: &FindingFilter,
        page: u64,
        per_page: u64,
    ) -> Result<(u64, Vec<StoredFinding>), StoreError> {
        // Lists as ",a,b," so that one parameter holds any number of values.
        let list = |items: Vec<String>| format!(",{},", items.join(","));
        let severities = filter.severities.as_ref().map(|s| list(s.iter().map(u8::to_string).collect()));
        let categories = filter.categories.clone().map(list);
        let condition = "scan_id = ?1 AND (?2 IS NULL OR instr(?2, ',' || severity || ',') > 0) \
             AND (?3 IS NULL OR instr(?3, ',' || category || ',') > 0)";
        let conn = self.conn();
        let total: i64 = conn
            .query_row(
                &format!("SELECT COUNT(*) FROM findings WHERE {condition}"),
                params![scan_id, severities, categories],
                |r| r.get(0),
            )
            .map_err(|e| self.err(e))?;
        let offset = i64::try_from(page.saturating_sub(1).saturating_mul(per_page)).unwrap_or(i64::MAX);
        let mut stmt = conn
            .prepare_cached(&format!(
                "SELECT {FINDING_COLUMNS} FROM findings WHERE {condition} ORDER BY position LIMIT ?4 OFFSET ?5"
            ))
            .map_err(|e| self.err(e))?;
        let rows = stmt
            .query_map(
                params![scan_id, severities, categories, i64::try_from(per_page).unwrap_or(i64::MAX), offset],
                finding_from_row,
            )
            .map_err(|e| self.err(e))?;
        let found = rows.collect::<Result<Vec<_>, _>>().map_err(|e| self.err(e))?;
        Ok((count(total), found))
    }

    fn latest_risk(&self, org: &str, identity_id: Option<&str>) -> Result<Option<StoredRisk>, StoreError> {
        latest_risk_row(&self.conn(), org, identity_id, risk_from_row).map_err(|e| self.err(e))
    }

    fn identity_risks(&self, org: &str) -> Result<Vec<RiskAssessment>, StoreError> {
        let conn = self.conn();
        let mut stmt = conn
            .prepare_cached(&format!(
                "SELECT {RISK_COLUMNS} FROM risk_latest l JOIN risk_history h ON h.id = l.history_id \
                 JOIN identities i ON i.id = l.identity_id \
                 WHERE l.org = ?1 AND i.deleted_at IS NULL ORDER BY l.identity_id"
            ))
            .map_err(|e| self.err(e))?;
        let rows = stmt.query_map(params![org], assessment_from_row).map_err(|e| self.err(e))?;
        rows.collect::<Result<Vec<_>, _>>().map_err(|e| self.err(e))
    }

    fn record_org_risk(
        &self,
        org: &str,
        risk: &RiskAssessment,
        recommendations: &[&str],
        now: i64,
    ) -> Result<StoredRisk, StoreError> {
        let mut conn = self.conn();
        let tx = conn.transaction_with_behavior(rusqlite::TransactionBehavior::Immediate).map_err(|e| self.err(e))?;
        let (stored, _) = self.insert_risk(&tx, org, None, risk, recommendations, now)?;
        tx.commit().map_err(|e| self.err(e))?;
        Ok(stored)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::engine::FindingCategory;
    use crate::store::{IdentityType, StateStore, StoredIdentity};
    use breachdex::AssetSet;

    fn identity(id: &str, org: &str) -> StoredIdentity {
        StoredIdentity {
            id: id.into(),
            org: org.into(),
            name: id.into(),
            identity_type: IdentityType::Personal,
            full_name: None,
            emails: vec![format!("{id}@example.org")],
            usernames: Vec::new(),
            phones: Vec::new(),
            is_primary: false,
            last_scanned: None,
            created_at: 0,
            deleted_at: None,
        }
    }

    fn scan(id: &str, org: &str, identity_id: &str, created_at: i64) -> StoredScan {
        StoredScan {
            id: id.into(),
            org: org.into(),
            identity_id: identity_id.into(),
            scan_type: "full".into(),
            status: ScanStatus::Pending,
            error: None,
            generation: None,
            counts: [0; 5],
            created_at,
            started_at: None,
            completed_at: None,
            callback: None,
        }
    }

    fn finding(source: &str, severity: Severity, category: FindingCategory) -> Finding {
        Finding {
            identifier_kind: "email",
            identifier: "i1@example.org".into(),
            source: source.into(),
            source_id: 1,
            breach_date: "2024-01-01".parse().unwrap(),
            data_types: AssetSet::EMPTY,
            records: 1,
            severity,
            category,
            title: format!("found in {source}"),
            description: "d".into(),
            remediation_steps: vec!["step one", "step two"],
        }
    }

    #[test]
    fn scans_are_claimed_in_order_requeued_and_completed_with_new_findings() {
        let dir = tempfile::tempdir().unwrap();
        let store = SqliteStore::open(dir.path()).unwrap();
        store.insert_identity(&identity("i1", "acme"), &[], None).unwrap();
        store.insert_scan(&scan("s1", "acme", "i1", 1)).unwrap();
        store.insert_scan(&scan("s2", "acme", "i1", 2)).unwrap();
        assert_eq!(store.scan("other", "s1").unwrap(), None, "another organization's scan");
        let first = store.claim_scan(10).unwrap().unwrap();
        assert_eq!((first.id.as_str(), first.status, first.started_at), ("s1", ScanStatus::Running, Some(10)));
        assert_eq!(store.requeue_running_scans().unwrap(), 1);
        assert_eq!(store.claim_scan(11).unwrap().unwrap().id, "s1", "requeued, still first");
        let findings = [
            finding("a", Severity::Critical, FindingCategory::Credential),
            finding("b", Severity::Low, FindingCategory::Breach),
        ];
        let risk = crate::engine::assess_findings(&findings, 1_767_225_600);
        // The scan's events are queued in its transaction, made from its recorded findings.
        let callback = Callback { url: "https://hooks.example/cb".into(), secret: "whsec_test".into() };
        let events = |done: &CompletedScan| {
            let data = serde_json::json!({ "finding_ids": done.findings.iter().map(|f| &f.id).collect::<Vec<_>>() });
            let event = OutgoingEvent { org: "acme".into(), event: "scan.completed".into(), timestamp: 12, data };
            vec![(event, Some(callback.clone()))]
        };
        assert_eq!(store.next_due().unwrap(), None);
        let (done, queued) = store.complete_scan(&first, "gen-1", &findings, &risk, &["do it"], 12, &events).unwrap();
        assert_eq!(queued, 1, "the callback's delivery (the organization has no webhook)");
        assert_eq!(store.next_due().unwrap(), Some(12_000), "due at the scan's completion");
        let new: Vec<bool> = done.findings.iter().map(|f| f.is_new).collect();
        assert_eq!((new, done.previous), (vec![true, true], None));
        assert!(done.findings.iter().all(|f| f.id.starts_with("fnd_")) && done.findings[0].id != done.findings[1].id);
        let done = store.scan("acme", "s1").unwrap().unwrap();
        assert_eq!((done.status, done.counts, done.completed_at), (ScanStatus::Completed, [2, 1, 0, 0, 1], Some(12)));
        assert_eq!(store.identity("acme", "i1").unwrap().unwrap().last_scanned, Some(12));

        let second = store.claim_scan(13).unwrap().unwrap();
        assert_eq!(second.id, "s2");
        assert_eq!(store.claim_scan(13).unwrap(), None, "nothing pending");
        let (done, queued) =
            store.complete_scan(&second, "gen-1", &findings[..1], &risk, &[], 14, &|_| Vec::new()).unwrap();
        assert_eq!(queued, 0);
        assert!(!done.findings[0].is_new, "seen in the first scan");
        assert_eq!(done.previous.as_ref(), Some(&risk), "the first scan's risk");
        let latest = store.latest_risk("acme", Some("i1")).unwrap().unwrap();
        assert_eq!((latest.trend, latest.calculated_at), (Trend::Stable, 14));
        assert_eq!(store.latest_risk("acme", None).unwrap(), None, "no organization row yet");
        assert_eq!(store.identity_risks("acme").unwrap(), vec![risk.clone()]);
        let org = store.record_org_risk("acme", &risk, &["r"], 15).unwrap();
        assert_eq!(org.trend, Trend::New);
        assert_eq!(store.latest_risk("acme", None).unwrap(), Some(org));

        store.fail_scan("s2", "gone", 16).unwrap();
        let failed = store.scan("acme", "s2").unwrap().unwrap();
        assert_eq!((failed.status, failed.error.as_deref()), (ScanStatus::Failed, Some("gone")));
    }

    #[test]
    fn findings_pages_keep_the_scan_order_and_filter() {
        let dir = tempfile::tempdir().unwrap();
        let store = SqliteStore::open(dir.path()).unwrap();
        store.insert_identity(&identity("i1", "acme"), &[], None).unwrap();
        store.insert_scan(&scan("s1", "acme", "i1", 1)).unwrap();
        let claimed = store.claim_scan(2).unwrap().unwrap();
        let findings: Vec<Finding> = (0..30)
            .map(|i| {
                let (s, c) = if i % 3 == 0 {
                    (Severity::High, FindingCategory::Credential)
                } else {
                    (Severity::Medium, FindingCategory::Exposure)
                };
                finding(&format!("src{i:02}"), s, c)
            })
            .collect();
        let risk = crate::engine::assess_findings(&findings, 1_767_225_600);
        store.complete_scan(&claimed, "g", &findings, &risk, &[], 3, &|_| Vec::new()).unwrap();
        let (total, page1) = store.findings_page("s1", &FindingFilter::default(), 1, 25).unwrap();
        let (_, page2) = store.findings_page("s1", &FindingFilter::default(), 2, 25).unwrap();
        assert_eq!((total, page1.len(), page2.len()), (30, 25, 5));
        let sources: Vec<String> = page1.iter().chain(&page2).map(|f| f.source.clone()).collect();
        let expected: Vec<String> = findings.iter().map(|f| f.source.clone()).collect();
        assert_eq!(sources, expected);
        assert_eq!(page1[0].remediation_steps, ["step one", "step two"]);
        let high = FindingFilter { severities: Some(vec![20]), categories: None };
        let (total, rows) = store.findings_page("s1", &high, 1, 25).unwrap();
        assert_eq!(total, 10);
        assert!(rows.iter().all(|f| f.severity == 20 && f.category == "credential"));
        let both = FindingFilter { severities: Some(vec![20, 5]), categories: Some(vec!["exposure".into()]) };
        assert_eq!(store.findings_page("s1", &both, 1, 25).unwrap().0, 20);
        assert_eq!(store.findings_page("s1", &FindingFilter::default(), 3, 25).unwrap().1, []);
    }
}
