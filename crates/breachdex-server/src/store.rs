//! The server's own state: organizations' keys, monthly usage, the request log and
//! watched identities (SPEC §14), behind [`StateStore`]. [`SqliteStore`] is the embedded default (one file under
//! `--data`, WAL, a versioned schema); a shared database serving several replicas would
//! be another implementation of the same trait.
//!
//! Nothing here ever holds a key (only its SHA-256) or a queried identifier. A watched
//! identity holds what its owner must see again (name, the identifiers as given) and,
//! for matching, each identifier's derived key of the served index (a hash in hashed
//! modes), never a normalized copy of its own.

use rusqlite::{Connection, OptionalExtension, params};
use std::borrow::Cow;
use std::net::IpAddr;
use std::path::{Path, PathBuf};
use std::sync::{Arc, Mutex};
use std::time::Duration;

/// Name of the database file under the data directory.
pub const DB_FILE: &str = "breachdex-server.sqlite3";

/// Why a state operation failed.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum StoreError {
    /// The data directory cannot be created.
    #[error("cannot create the data directory {path}: {source}")]
    CreateDir {
        /// The directory.
        path: PathBuf,
        /// Why.
        source: std::io::Error,
    },
    /// A database error.
    #[error("state database {path}: {source}")]
    Sqlite {
        /// The database file.
        path: PathBuf,
        /// Why.
        source: rusqlite::Error,
    },
    /// The database was written by a newer version.
    #[error("state database {path} has schema version {found}; this build knows up to {known}: upgrade breachdex")]
    TooNew {
        /// The database file.
        path: PathBuf,
        /// Its version.
        found: i64,
        /// The newest this build knows.
        known: i64,
    },
    /// A limit on key creation was reached.
    #[error("{0}")]
    LimitExceeded(String),
}

/// A key as stored (never the key itself: its SHA-256).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct StoredKey {
    /// Public id (`key_…`).
    pub id: String,
    /// Organization.
    pub org: String,
    /// Label.
    pub name: Option<String>,
    /// SHA-256 of the key.
    pub key_hash: [u8; 32],
    /// Plan name.
    pub plan: String,
    /// Requests per minute.
    pub rpm: u32,
    /// Requests per calendar month; `None`: unlimited.
    pub monthly: Option<u64>,
    /// Last valid day (`YYYY-MM-DD`), if any.
    pub expires: Option<String>,
    /// Unix time from which the key is expired.
    pub expires_at: Option<i64>,
    /// IP allow-list, comma-separated CIDRs (`None`: any address).
    pub allow_ip: Option<String>,
    /// Function allow-list, comma-separated (`None`: all).
    pub functions: Option<String>,
    /// Asset allow-list (`None`: every asset).
    pub allow: Option<String>,
    /// `ASSET=ALG,...`.
    pub hash_assets: Option<String>,
    /// Output salt.
    pub output_salt: Option<String>,
    /// `left` or `right`.
    pub salt_position: String,
    /// Unix time of creation.
    pub created_at: i64,
    /// Unix time of revocation.
    pub revoked_at: Option<i64>,
    /// Active watched identities per organization through this key (`None`: the plan's).
    pub identities: Option<u64>,
}

/// What a watched identity is (SPEC §14).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum IdentityType {
    /// A person's private identity.
    Personal,
    /// A person's work identity.
    Professional,
    /// A company.
    Business,
    /// An alias.
    Alias,
    /// Anything else.
    Other,
}

impl IdentityType {
    /// Every type, in SPEC order.
    pub const ALL: [IdentityType; 5] = [
        IdentityType::Personal,
        IdentityType::Professional,
        IdentityType::Business,
        IdentityType::Alias,
        IdentityType::Other,
    ];

    /// The type's name.
    pub fn name(self) -> &'static str {
        match self {
            IdentityType::Personal => "personal",
            IdentityType::Professional => "professional",
            IdentityType::Business => "business",
            IdentityType::Alias => "alias",
            IdentityType::Other => "other",
        }
    }

    /// Parses a type name.
    pub fn parse(name: &str) -> Option<IdentityType> {
        IdentityType::ALL.into_iter().find(|t| t.name() == name)
    }
}

/// A watched identifier's key for matching: the served index's derived key.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct WatchedKey {
    /// `email` or `username`.
    pub kind: &'static str,
    /// The derived key bytes (the normalized identifier in `plain` mode, else its hash).
    pub key: Vec<u8>,
    /// The index's hash mode the key was derived in (`plain`, `sha256`, ...).
    pub hash_mode: String,
}

/// A watched identity as stored.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct StoredIdentity {
    /// Public id (`idn_…`).
    pub id: String,
    /// Organization.
    pub org: String,
    /// Label.
    pub name: String,
    /// Type.
    pub identity_type: IdentityType,
    /// Full name, as given.
    pub full_name: Option<String>,
    /// E-mail addresses as given (trimmed), in order.
    pub emails: Vec<String>,
    /// Usernames as given (trimmed), in order.
    pub usernames: Vec<String>,
    /// Phone numbers as given (trimmed), in order.
    pub phones: Vec<String>,
    /// Marked as the organization's primary identity.
    pub is_primary: bool,
    /// Unix time of the last scan.
    pub last_scanned: Option<i64>,
    /// Unix time of creation.
    pub created_at: i64,
    /// Unix time of the soft delete.
    pub deleted_at: Option<i64>,
}

/// A registered webhook (SPEC §14). The secret is stored as issued, since signing
/// needs it (see the README, "Monitoring: webhooks").
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct StoredWebhook {
    /// Public id (`whk_…`).
    pub id: String,
    /// Organization.
    pub org: String,
    /// The URL, as registered (checked by [`crate::ssrf`]).
    pub url: String,
    /// Subscribed event names.
    pub events: Vec<String>,
    /// The signing secret (`whsec_…`).
    pub secret: String,
    /// Unix time of creation.
    pub created_at: i64,
    /// Unix time of the deletion.
    pub deleted_at: Option<i64>,
}

/// An event to deliver to an organization's webhooks.
#[derive(Debug, Clone, PartialEq)]
pub struct OutgoingEvent {
    /// The organization whose webhooks subscribed to `event` receive it.
    pub org: String,
    /// The event name (`breach.detected`, ...).
    pub event: String,
    /// Unix time of the event.
    pub timestamp: i64,
    /// The event's `data` object.
    pub data: serde_json::Value,
}

/// A one-off destination of an event besides the organization's webhooks (a scan's
/// `callback_url`), signed with its own secret.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Callback {
    /// The URL (checked by [`crate::ssrf`] when it was given).
    pub url: String,
    /// The secret its payloads are signed with.
    pub secret: String,
}

/// A delivery due for an attempt.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct DueDelivery {
    /// Row id.
    pub id: i64,
    /// Destination.
    pub url: String,
    /// Event name.
    pub event: String,
    /// The exact body to send (signed once, at enqueue time: every attempt sends the
    /// same bytes).
    pub body: Vec<u8>,
    /// The `X-Breachdex-Signature` value.
    pub signature: String,
    /// Attempts made so far.
    pub attempts: u32,
}

/// One logged delivery attempt.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct AttemptLog {
    /// 1 for the first attempt.
    pub attempt: u32,
    /// Unix time in milliseconds when it started.
    pub at_ms: i64,
    /// The receiver's HTTP status, when it answered.
    pub status_code: Option<u16>,
    /// Why it failed, when it did.
    pub error: Option<String>,
    /// How long it took, in milliseconds.
    pub duration_ms: u64,
}

/// What happens to a delivery after an attempt.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum AttemptOutcome {
    /// The receiver answered 2xx: done.
    Delivered,
    /// Failed; try again at this Unix time in milliseconds.
    Retry {
        /// When.
        next_at_ms: i64,
    },
    /// Failed for the last time.
    Failed,
}

/// A delivery with its attempt log, as `GET /api/v1/webhooks/{id}/deliveries/` shows it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct DeliveryView {
    /// Row id.
    pub id: i64,
    /// Event name.
    pub event: String,
    /// `pending`, `delivered`, `failed` or `cancelled` (its webhook was deleted).
    pub status: String,
    /// Unix time in milliseconds of the enqueue.
    pub created_at_ms: i64,
    /// When the next attempt is due (pending ones).
    pub next_at_ms: Option<i64>,
    /// Every attempt, oldest first.
    pub attempts: Vec<AttemptLog>,
}

/// A watched identity's new breach, found in the change feed: fires `breach.detected`
/// once per (identity, source).
#[derive(Debug, Clone, PartialEq)]
pub struct Detection {
    /// The identity.
    pub identity_id: String,
    /// Its organization.
    pub org: String,
    /// The source.
    pub source_id: u32,
    /// The event's `data`.
    pub data: serde_json::Value,
    /// The findings of the breach for the identity, recorded with the detection.
    pub findings: Vec<crate::engine::Finding>,
}

/// One row of the request log. Built on every request without allocating (shared
/// strings, static route and method names).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct LogRow {
    /// Unix time in milliseconds.
    pub at_ms: i64,
    /// The key's id, when a known key was presented.
    pub key_id: Option<Arc<str>>,
    /// Its organization.
    pub org: Option<Arc<str>>,
    /// HTTP method.
    pub method: Cow<'static, str>,
    /// The route template (`/api/v1/breach/data/emails/{email}`), never the path.
    pub route: Cow<'static, str>,
    /// HTTP status.
    pub status: u16,
    /// Client address.
    pub client: Option<IpAddr>,
    /// Time to the response head, in microseconds.
    pub latency_us: u64,
}

/// Usage to add: `requests` more for `key_id` in `month` (`YYYY-MM`).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct UsageDelta {
    /// Key id.
    pub key_id: String,
    /// `YYYY-MM`.
    pub month: String,
    /// Requests to add.
    pub requests: u64,
}

/// Limits on key creation.
#[derive(Debug, Clone, Copy)]
pub struct KeyLimits {
    /// Active keys per organization.
    pub active_per_org: u64,
    /// Creations per organization per rolling hour.
    pub creations_per_hour: u64,
}

impl Default for KeyLimits {
    fn default() -> Self {
        KeyLimits { active_per_org: 10, creations_per_hour: 5 }
    }
}

/// The server's state. Every method blocks: call it from a blocking thread.
/// Scans, findings and risk scores are [`ScanStore`](crate::scan_store::ScanStore)'s part.
pub trait StateStore: crate::scan_store::ScanStore + Send + Sync + 'static {
    /// Inserts a key unless the organization is at a limit (checked in the same
    /// transaction, so two concurrent creations cannot both pass).
    fn insert_key(&self, key: &StoredKey, limits: KeyLimits, now: i64) -> Result<(), StoreError>;
    /// The key with this SHA-256, revoked or not.
    fn find_key(&self, key_hash: &[u8; 32]) -> Result<Option<StoredKey>, StoreError>;
    /// Every key (of one organization).
    fn list_keys(&self, org: Option<&str>) -> Result<Vec<StoredKey>, StoreError>;
    /// Revokes a key; `false` when no key has that id. Revoking twice keeps the first time.
    fn revoke_key(&self, id: &str, now: i64) -> Result<bool, StoreError>;
    /// Ids of revoked keys.
    fn revoked_ids(&self) -> Result<Vec<String>, StoreError>;
    /// Whether another process changed the database since the last call.
    fn changed_elsewhere(&self) -> Result<bool, StoreError>;
    /// Requests per key in `month` (`YYYY-MM`).
    fn usage(&self, month: &str) -> Result<Vec<(String, u64)>, StoreError>;
    /// Adds usage and appends log rows, in one transaction.
    fn write_batch(&self, usage: &[UsageDelta], logs: &[LogRow]) -> Result<(), StoreError>;
    /// Deletes log rows older than `before_ms`; returns how many.
    fn prune_logs(&self, before_ms: i64) -> Result<u64, StoreError>;
    /// Log rows from `since_ms` on (of one organization), oldest first.
    fn logs(&self, since_ms: i64, org: Option<&str>, each: &mut dyn FnMut(LogRow)) -> Result<(), StoreError>;
    /// Inserts an identity with the derived keys of its identifiers unless its
    /// organization already has `limit` active ones ([`StoreError::LimitExceeded`];
    /// checked in the same transaction). `limit` `None`: unlimited.
    fn insert_identity(
        &self,
        identity: &StoredIdentity,
        keys: &[WatchedKey],
        limit: Option<u64>,
    ) -> Result<(), StoreError>;
    /// The active identities of `org`, oldest first.
    fn list_identities(&self, org: &str) -> Result<Vec<StoredIdentity>, StoreError>;
    /// The active identity `id` of `org` (`None`: no such active identity in `org`).
    fn identity(&self, org: &str, id: &str) -> Result<Option<StoredIdentity>, StoreError>;
    /// Soft-deletes the active identity `id` of `org` and drops its derived keys;
    /// `false` when `org` has no such active identity.
    fn delete_identity(&self, org: &str, id: &str, now: i64) -> Result<bool, StoreError>;
    /// The derived keys of the active identities of every organization, as
    /// `(identity id, key)`, for matching against the change feed.
    fn watched_keys(&self) -> Result<Vec<(String, WatchedKey)>, StoreError>;
    /// The active identities with these ids, whatever their organization (for the
    /// change-feed matcher).
    fn identities_by_id(&self, ids: &[String]) -> Result<Vec<StoredIdentity>, StoreError>;
    /// Registers a webhook unless its organization already has `limit` active ones
    /// ([`StoreError::LimitExceeded`], checked in the same transaction).
    fn insert_webhook(&self, webhook: &StoredWebhook, limit: Option<u64>) -> Result<(), StoreError>;
    /// The active webhooks of `org`, oldest first.
    fn list_webhooks(&self, org: &str) -> Result<Vec<StoredWebhook>, StoreError>;
    /// Deletes the active webhook `id` of `org` and cancels its pending deliveries;
    /// `false` when `org` has no such webhook.
    fn delete_webhook(&self, org: &str, id: &str, now: i64) -> Result<bool, StoreError>;
    /// Writes one delivery row per active webhook of `event.org` subscribed to
    /// `event.event`, plus one to `callback`, each body signed with its secret; due at
    /// `now_ms`. Returns how many.
    fn enqueue_event(
        &self,
        event: &OutgoingEvent,
        callback: Option<&Callback>,
        now_ms: i64,
    ) -> Result<usize, StoreError>;
    /// Claims up to `limit` pending deliveries due at `now_ms` (their next attempt is
    /// moved to `lease_until_ms`, so that a delivery is not picked twice; a process that
    /// dies during the attempt leaves it due again at the lease's end).
    fn claim_due(&self, now_ms: i64, lease_until_ms: i64, limit: usize) -> Result<Vec<DueDelivery>, StoreError>;
    /// When the next pending delivery is due (Unix milliseconds).
    fn next_due(&self) -> Result<Option<i64>, StoreError>;
    /// Logs an attempt and moves the delivery on by `outcome`, in one transaction.
    fn record_attempt(&self, id: i64, log: &AttemptLog, outcome: AttemptOutcome) -> Result<(), StoreError>;
    /// The latest `limit` deliveries of webhook `webhook_id` of `org`, newest first, with
    /// their attempts; `None` when `org` has no such webhook (deleted ones included).
    fn deliveries(&self, org: &str, webhook_id: &str, limit: usize) -> Result<Option<Vec<DeliveryView>>, StoreError>;
    /// The last index generation whose change feed was matched against the watched
    /// identities (`None`: none yet).
    fn monitored_generation(&self) -> Result<Option<u64>, StoreError>;
    /// In one transaction: for each detection not seen before (per identity and
    /// source), remembers it, records its findings (outside any scan) and enqueues
    /// `breach.detected` (as [`enqueue_event`](Self::enqueue_event)); then sets the
    /// monitored generation to `generation`. Returns the detections that were new.
    fn record_detections(&self, generation: u64, detections: &[Detection], now_ms: i64) -> Result<usize, StoreError>;
}

/// Schema migrations; `PRAGMA user_version` is the number applied.
const MIGRATIONS: &[&str] = &[
    // 1: keys, usage, request log.
    "CREATE TABLE keys (
        id TEXT PRIMARY KEY,
        org TEXT NOT NULL,
        name TEXT,
        key_hash BLOB NOT NULL UNIQUE,
        plan TEXT NOT NULL,
        rpm INTEGER NOT NULL,
        monthly INTEGER,
        expires TEXT,
        expires_at INTEGER,
        allow_ip TEXT,
        functions TEXT,
        allow TEXT,
        hash_assets TEXT,
        output_salt TEXT,
        salt_position TEXT NOT NULL,
        created_at INTEGER NOT NULL,
        revoked_at INTEGER
    );
    CREATE INDEX keys_by_org ON keys (org, created_at);
    CREATE TABLE usage (
        key_id TEXT NOT NULL,
        month TEXT NOT NULL,
        requests INTEGER NOT NULL,
        PRIMARY KEY (key_id, month)
    ) WITHOUT ROWID;
    CREATE TABLE request_log (
        id INTEGER PRIMARY KEY,
        at_ms INTEGER NOT NULL,
        key_id TEXT,
        org TEXT,
        method TEXT NOT NULL,
        route TEXT NOT NULL,
        status INTEGER NOT NULL,
        client TEXT,
        latency_us INTEGER NOT NULL
    );
    CREATE INDEX request_log_by_time ON request_log (at_ms);",
    // 2: per-key identity limit; watched identities and their derived keys.
    "ALTER TABLE keys ADD COLUMN identities INTEGER;
    CREATE TABLE identities (
        id TEXT PRIMARY KEY,
        org TEXT NOT NULL,
        name TEXT NOT NULL,
        identity_type TEXT NOT NULL,
        full_name TEXT,
        emails TEXT NOT NULL,
        usernames TEXT NOT NULL,
        phones TEXT NOT NULL,
        is_primary INTEGER NOT NULL,
        last_scanned INTEGER,
        created_at INTEGER NOT NULL,
        deleted_at INTEGER
    );
    CREATE INDEX identities_by_org ON identities (org, deleted_at, created_at);
    CREATE TABLE identity_keys (
        identity_id TEXT NOT NULL REFERENCES identities (id),
        kind TEXT NOT NULL,
        key BLOB NOT NULL,
        hash_mode TEXT NOT NULL,
        PRIMARY KEY (identity_id, kind, key)
    ) WITHOUT ROWID;
    CREATE INDEX identity_keys_by_key ON identity_keys (kind, key);",
    // 3: scans, findings, risk scores.
    crate::scan_store::MIGRATION,
    // 4: webhooks, their delivery queue and attempt log; breach.detected's progress.
    "CREATE TABLE webhooks (
        id TEXT PRIMARY KEY,
        org TEXT NOT NULL,
        url TEXT NOT NULL,
        events TEXT NOT NULL,
        secret TEXT NOT NULL,
        created_at INTEGER NOT NULL,
        deleted_at INTEGER
    );
    CREATE INDEX webhooks_by_org ON webhooks (org, deleted_at, created_at);
    CREATE TABLE deliveries (
        id INTEGER PRIMARY KEY,
        org TEXT NOT NULL,
        webhook_id TEXT,
        url TEXT NOT NULL,
        event TEXT NOT NULL,
        body BLOB NOT NULL,
        signature TEXT NOT NULL,
        status TEXT NOT NULL,
        attempts INTEGER NOT NULL,
        next_at_ms INTEGER,
        created_at_ms INTEGER NOT NULL
    );
    CREATE INDEX deliveries_due ON deliveries (status, next_at_ms);
    CREATE INDEX deliveries_by_webhook ON deliveries (webhook_id, id);
    CREATE TABLE delivery_attempts (
        delivery_id INTEGER NOT NULL REFERENCES deliveries (id),
        attempt INTEGER NOT NULL,
        at_ms INTEGER NOT NULL,
        status_code INTEGER,
        error TEXT,
        duration_ms INTEGER NOT NULL,
        PRIMARY KEY (delivery_id, attempt)
    ) WITHOUT ROWID;
    CREATE TABLE breach_detections (
        identity_id TEXT NOT NULL,
        source_id INTEGER NOT NULL,
        generation INTEGER NOT NULL,
        created_at_ms INTEGER NOT NULL,
        PRIMARY KEY (identity_id, source_id)
    ) WITHOUT ROWID;
    CREATE TABLE monitor_state (
        name TEXT PRIMARY KEY,
        value INTEGER NOT NULL
    ) WITHOUT ROWID;",
    // 5: a scan's callback URL and the secret its payloads are signed with.
    crate::scan_store::MIGRATION_CALLBACK,
];

/// [`StateStore`] in one SQLite file (WAL, `busy_timeout` 5 s).
#[derive(Debug)]
pub struct SqliteStore {
    path: PathBuf,
    conn: Mutex<Connection>,
    data_version: Mutex<Option<i64>>,
}

impl SqliteStore {
    /// Opens (creating the directory and the database on first use) and migrates.
    pub fn open(data_dir: &Path) -> Result<SqliteStore, StoreError> {
        std::fs::create_dir_all(data_dir)
            .map_err(|source| StoreError::CreateDir { path: data_dir.to_path_buf(), source })?;
        let path = data_dir.join(DB_FILE);
        let err = |source| StoreError::Sqlite { path: path.clone(), source };
        let mut conn = Connection::open(&path).map_err(err)?;
        conn.busy_timeout(Duration::from_secs(5)).map_err(err)?;
        conn.pragma_update(None, "journal_mode", "WAL").map_err(err)?;
        conn.pragma_update(None, "synchronous", "NORMAL").map_err(err)?;
        conn.pragma_update(None, "foreign_keys", "ON").map_err(err)?;
        let version: i64 = conn.pragma_query_value(None, "user_version", |r| r.get(0)).map_err(err)?;
        let known = MIGRATIONS.len() as i64;
        if version > known {
            return Err(StoreError::TooNew { path: path.clone(), found: version, known });
        }
        for (i, sql) in MIGRATIONS.iter().enumerate().skip(version.max(0) as usize) {
            let tx = conn.transaction().map_err(err)?;
            tx.execute_batch(sql).map_err(err)?;
            tx.pragma_update(None, "user_version", (i + 1) as i64).map_err(err)?;
            tx.commit().map_err(err)?;
        }
        Ok(SqliteStore { path, conn: Mutex::new(conn), data_version: Mutex::new(None) })
    }

    /// The database file.
    pub fn path(&self) -> &Path {
        &self.path
    }

    pub(crate) fn err(&self, source: rusqlite::Error) -> StoreError {
        StoreError::Sqlite { path: self.path.clone(), source }
    }

    pub(crate) fn conn(&self) -> std::sync::MutexGuard<'_, Connection> {
        self.conn.lock().unwrap_or_else(|e| e.into_inner())
    }
}

const KEY_COLUMNS: &str = "id, org, name, key_hash, plan, rpm, monthly, expires, expires_at, allow_ip, functions, \
     allow, hash_assets, output_salt, salt_position, created_at, revoked_at, identities";

fn key_from_row(row: &rusqlite::Row<'_>) -> rusqlite::Result<StoredKey> {
    let hash: Vec<u8> = row.get(3)?;
    let mut key_hash = [0u8; 32];
    if hash.len() == 32 {
        key_hash.copy_from_slice(&hash);
    }
    let monthly: Option<i64> = row.get(6)?;
    let rpm: i64 = row.get(5)?;
    let identities: Option<i64> = row.get(17)?;
    Ok(StoredKey {
        id: row.get(0)?,
        org: row.get(1)?,
        name: row.get(2)?,
        key_hash,
        plan: row.get(4)?,
        rpm: u32::try_from(rpm).unwrap_or(u32::MAX),
        monthly: monthly.map(|m| u64::try_from(m).unwrap_or(0)),
        expires: row.get(7)?,
        expires_at: row.get(8)?,
        allow_ip: row.get(9)?,
        functions: row.get(10)?,
        allow: row.get(11)?,
        hash_assets: row.get(12)?,
        output_salt: row.get(13)?,
        salt_position: row.get(14)?,
        created_at: row.get(15)?,
        revoked_at: row.get(16)?,
        identities: identities.map(|n| u64::try_from(n).unwrap_or(0)),
    })
}

const IDENTITY_COLUMNS: &str = "id, org, name, identity_type, full_name, emails, usernames, phones, is_primary, \
     last_scanned, created_at, deleted_at";

/// A JSON list of strings as stored; damage is an error naming the column.
fn string_list(row: &rusqlite::Row<'_>, column: usize) -> rusqlite::Result<Vec<String>> {
    let text: String = row.get(column)?;
    serde_json::from_str(&text)
        .map_err(|e| rusqlite::Error::FromSqlConversionFailure(column, rusqlite::types::Type::Text, Box::new(e)))
}

fn identity_from_row(row: &rusqlite::Row<'_>) -> rusqlite::Result<StoredIdentity> {
    let kind: String = row.get(3)?;
    let identity_type = IdentityType::parse(&kind).ok_or_else(|| {
        rusqlite::Error::FromSqlConversionFailure(
            3,
            rusqlite::types::Type::Text,
            format!("unknown identity type '{kind}'").into(),
        )
    })?;
    Ok(StoredIdentity {
        id: row.get(0)?,
        org: row.get(1)?,
        name: row.get(2)?,
        identity_type,
        full_name: row.get(4)?,
        emails: string_list(row, 5)?,
        usernames: string_list(row, 6)?,
        phones: string_list(row, 7)?,
        is_primary: row.get::<_, i64>(8)? != 0,
        last_scanned: row.get(9)?,
        created_at: row.get(10)?,
        deleted_at: row.get(11)?,
    })
}

fn json_list(list: &[String]) -> String {
    serde_json::Value::from(list).to_string()
}

const WEBHOOK_COLUMNS: &str = "id, org, url, events, secret, created_at, deleted_at";

fn webhook_from_row(row: &rusqlite::Row<'_>) -> rusqlite::Result<StoredWebhook> {
    Ok(StoredWebhook {
        id: row.get(0)?,
        org: row.get(1)?,
        url: row.get(2)?,
        events: string_list(row, 3)?,
        secret: row.get(4)?,
        created_at: row.get(5)?,
        deleted_at: row.get(6)?,
    })
}

/// Inserts one delivery row: `event` signed with `secret` for `url`.
fn insert_delivery(
    tx: &rusqlite::Transaction<'_>,
    event: &OutgoingEvent,
    webhook_id: Option<&str>,
    url: &str,
    secret: &str,
    now_ms: i64,
) -> rusqlite::Result<()> {
    let signed = crate::webhooks::sign_payload(secret, &event.event, event.timestamp, &event.data);
    tx.prepare_cached(
        "INSERT INTO deliveries (org, webhook_id, url, event, body, signature, status, attempts, next_at_ms, \
         created_at_ms) VALUES (?1, ?2, ?3, ?4, ?5, ?6, 'pending', 0, ?7, ?7)",
    )?
    .execute(params![event.org, webhook_id, url, event.event, signed.body, signed.header, now_ms])?;
    Ok(())
}

/// [`StateStore::enqueue_event`] inside a transaction.
pub(crate) fn enqueue_in(
    tx: &rusqlite::Transaction<'_>,
    event: &OutgoingEvent,
    callback: Option<&Callback>,
    now_ms: i64,
) -> rusqlite::Result<usize> {
    let hooks: Vec<StoredWebhook> = {
        let mut stmt = tx.prepare_cached(&format!(
            "SELECT {WEBHOOK_COLUMNS} FROM webhooks WHERE org = ?1 AND deleted_at IS NULL ORDER BY created_at, rowid"
        ))?;
        let rows = stmt.query_map(params![event.org], webhook_from_row)?;
        rows.collect::<Result<_, _>>()?
    };
    let mut n = 0;
    for hook in hooks.iter().filter(|h| h.events.contains(&event.event)) {
        insert_delivery(tx, event, Some(&hook.id), &hook.url, &hook.secret, now_ms)?;
        n += 1;
    }
    if let Some(cb) = callback {
        insert_delivery(tx, event, None, &cb.url, &cb.secret, now_ms)?;
        n += 1;
    }
    Ok(n)
}

fn attempt_from_row(row: &rusqlite::Row<'_>) -> rusqlite::Result<AttemptLog> {
    let status: Option<i64> = row.get(2)?;
    let duration: i64 = row.get(4)?;
    Ok(AttemptLog {
        attempt: u32::try_from(row.get::<_, i64>(0)?).unwrap_or(0),
        at_ms: row.get(1)?,
        status_code: status.and_then(|s| u16::try_from(s).ok()),
        error: row.get(3)?,
        duration_ms: u64::try_from(duration).unwrap_or(0),
    })
}

/// The `monitor_state` row holding the last generation matched.
const MONITORED_GENERATION: &str = "monitored_generation";

fn log_from_row(row: &rusqlite::Row<'_>) -> rusqlite::Result<LogRow> {
    let status: i64 = row.get(5)?;
    let latency: i64 = row.get(7)?;
    let shared = |s: Option<String>| s.map(Arc::<str>::from);
    let client: Option<String> = row.get(6)?;
    Ok(LogRow {
        at_ms: row.get(0)?,
        key_id: shared(row.get(1)?),
        org: shared(row.get(2)?),
        method: Cow::Owned(row.get(3)?),
        route: Cow::Owned(row.get(4)?),
        status: u16::try_from(status).unwrap_or(0),
        client: client.and_then(|c| c.parse().ok()),
        latency_us: u64::try_from(latency).unwrap_or(0),
    })
}

impl StateStore for SqliteStore {
    fn insert_key(&self, key: &StoredKey, limits: KeyLimits, now: i64) -> Result<(), StoreError> {
        let mut conn = self.conn();
        let tx = conn.transaction_with_behavior(rusqlite::TransactionBehavior::Immediate).map_err(|e| self.err(e))?;
        let active: i64 = tx
            .query_row(
                "SELECT COUNT(*) FROM keys WHERE org = ?1 AND revoked_at IS NULL \
                 AND (expires_at IS NULL OR expires_at > ?2)",
                params![key.org, now],
                |r| r.get(0),
            )
            .map_err(|e| self.err(e))?;
        if active as u64 >= limits.active_per_org {
            return Err(StoreError::LimitExceeded(format!(
                "organization '{}' already has {active} active keys (at most {}); revoke one first",
                key.org, limits.active_per_org
            )));
        }
        let recent: i64 = tx
            .query_row(
                "SELECT COUNT(*) FROM keys WHERE org = ?1 AND created_at > ?2",
                params![key.org, now - 3600],
                |r| r.get(0),
            )
            .map_err(|e| self.err(e))?;
        if recent as u64 >= limits.creations_per_hour {
            return Err(StoreError::LimitExceeded(format!(
                "organization '{}' created {recent} keys in the last hour (at most {}); try again later",
                key.org, limits.creations_per_hour
            )));
        }
        tx.execute(
            &format!("INSERT INTO keys ({KEY_COLUMNS}) VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8, ?9, ?10, ?11, ?12, ?13, ?14, ?15, ?16, ?17, ?18)"),
            params![
                key.id,
                key.org,
                key.name,
                key.key_hash.as_slice(),
                key.plan,
                i64::from(key.rpm),
                key.monthly.map(|m| i64::try_from(m).unwrap_or(i64::MAX)),
                key.expires,
                key.expires_at,
                key.allow_ip,
                key.functions,
                key.allow,
                key.hash_assets,
                key.output_salt,
                key.salt_position,
                key.created_at,
                key.revoked_at,
                key.identities.map(|n| i64::try_from(n).unwrap_or(i64::MAX)),
            ],
        )
        .map_err(|e| self.err(e))?;
        tx.commit().map_err(|e| self.err(e))
    }

    fn find_key(&self, key_hash: &[u8; 32]) -> Result<Option<StoredKey>, StoreError> {
        self.conn()
            .query_row(
                &format!("SELECT {KEY_COLUMNS} FROM keys WHERE key_hash = ?1"),
                params![key_hash.as_slice()],
                key_from_row,
            )
            .optional()
            .map_err(|e| self.err(e))
    }

    fn list_keys(&self, org: Option<&str>) -> Result<Vec<StoredKey>, StoreError> {
        let conn = self.conn();
        let mut stmt = conn
            .prepare(&format!(
                "SELECT {KEY_COLUMNS} FROM keys WHERE ?1 IS NULL OR org = ?1 ORDER BY org, created_at, id"
            ))
            .map_err(|e| self.err(e))?;
        let rows = stmt.query_map(params![org], key_from_row).map_err(|e| self.err(e))?;
        rows.collect::<Result<Vec<_>, _>>().map_err(|e| self.err(e))
    }

    fn revoke_key(&self, id: &str, now: i64) -> Result<bool, StoreError> {
        let conn = self.conn();
        let exists: bool = conn
            .query_row("SELECT COUNT(*) FROM keys WHERE id = ?1", params![id], |r| r.get::<_, i64>(0))
            .map_err(|e| self.err(e))?
            > 0;
        conn.execute("UPDATE keys SET revoked_at = ?2 WHERE id = ?1 AND revoked_at IS NULL", params![id, now])
            .map_err(|e| self.err(e))?;
        Ok(exists)
    }

    fn revoked_ids(&self) -> Result<Vec<String>, StoreError> {
        let conn = self.conn();
        let mut stmt = conn.prepare("SELECT id FROM keys WHERE revoked_at IS NOT NULL").map_err(|e| self.err(e))?;
        let rows = stmt.query_map([], |r| r.get(0)).map_err(|e| self.err(e))?;
        rows.collect::<Result<Vec<_>, _>>().map_err(|e| self.err(e))
    }

    fn changed_elsewhere(&self) -> Result<bool, StoreError> {
        let version: i64 =
            self.conn().pragma_query_value(None, "data_version", |r| r.get(0)).map_err(|e| self.err(e))?;
        let mut last = self.data_version.lock().unwrap_or_else(|e| e.into_inner());
        let changed = last.is_some_and(|v| v != version);
        *last = Some(version);
        Ok(changed)
    }

    fn usage(&self, month: &str) -> Result<Vec<(String, u64)>, StoreError> {
        let conn = self.conn();
        let mut stmt = conn.prepare("SELECT key_id, requests FROM usage WHERE month = ?1").map_err(|e| self.err(e))?;
        let rows = stmt
            .query_map(params![month], |r| {
                Ok((r.get::<_, String>(0)?, u64::try_from(r.get::<_, i64>(1)?).unwrap_or(0)))
            })
            .map_err(|e| self.err(e))?;
        rows.collect::<Result<Vec<_>, _>>().map_err(|e| self.err(e))
    }

    fn write_batch(&self, usage: &[UsageDelta], logs: &[LogRow]) -> Result<(), StoreError> {
        if usage.is_empty() && logs.is_empty() {
            return Ok(());
        }
        let mut conn = self.conn();
        let tx = conn.transaction().map_err(|e| self.err(e))?;
        {
            let mut add = tx
                .prepare_cached(
                    "INSERT INTO usage (key_id, month, requests) VALUES (?1, ?2, ?3) \
                     ON CONFLICT (key_id, month) DO UPDATE SET requests = requests + excluded.requests",
                )
                .map_err(|e| self.err(e))?;
            for u in usage {
                add.execute(params![u.key_id, u.month, i64::try_from(u.requests).unwrap_or(i64::MAX)])
                    .map_err(|e| self.err(e))?;
            }
            let mut log = tx
                .prepare_cached(
                    "INSERT INTO request_log (at_ms, key_id, org, method, route, status, client, latency_us) \
                     VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8)",
                )
                .map_err(|e| self.err(e))?;
            for l in logs {
                log.execute(params![
                    l.at_ms,
                    l.key_id.as_deref(),
                    l.org.as_deref(),
                    l.method.as_ref(),
                    l.route.as_ref(),
                    i64::from(l.status),
                    l.client.map(|c| c.to_string()),
                    i64::try_from(l.latency_us).unwrap_or(i64::MAX)
                ])
                .map_err(|e| self.err(e))?;
            }
        }
        tx.commit().map_err(|e| self.err(e))
    }

    fn prune_logs(&self, before_ms: i64) -> Result<u64, StoreError> {
        let n = self
            .conn()
            .execute("DELETE FROM request_log WHERE at_ms < ?1", params![before_ms])
            .map_err(|e| self.err(e))?;
        Ok(n as u64)
    }

    fn logs(&self, since_ms: i64, org: Option<&str>, each: &mut dyn FnMut(LogRow)) -> Result<(), StoreError> {
        let conn = self.conn();
        let mut stmt = conn
            .prepare(
                "SELECT at_ms, key_id, org, method, route, status, client, latency_us FROM request_log \
                 WHERE at_ms >= ?1 AND (?2 IS NULL OR org = ?2) ORDER BY at_ms, id",
            )
            .map_err(|e| self.err(e))?;
        let rows = stmt.query_map(params![since_ms, org], log_from_row).map_err(|e| self.err(e))?;
        for row in rows {
            each(row.map_err(|e| self.err(e))?);
        }
        Ok(())
    }

    fn insert_identity(
        &self,
        identity: &StoredIdentity,
        keys: &[WatchedKey],
        limit: Option<u64>,
    ) -> Result<(), StoreError> {
        let mut conn = self.conn();
        let tx = conn.transaction_with_behavior(rusqlite::TransactionBehavior::Immediate).map_err(|e| self.err(e))?;
        if let Some(limit) = limit {
            let active: i64 = tx
                .query_row(
                    "SELECT COUNT(*) FROM identities WHERE org = ?1 AND deleted_at IS NULL",
                    params![identity.org],
                    |r| r.get(0),
                )
                .map_err(|e| self.err(e))?;
            if u64::try_from(active).unwrap_or(0) >= limit {
                return Err(StoreError::LimitExceeded(format!(
                    "the organization already watches {active} identities, the most this key allows ({limit}: \
                     its plan's or its --identities); delete one or use a key with a larger limit"
                )));
            }
        }
        tx.execute(
            &format!(
                "INSERT INTO identities ({IDENTITY_COLUMNS}) VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8, ?9, ?10, ?11, ?12)"
            ),
            params![
                identity.id,
                identity.org,
                identity.name,
                identity.identity_type.name(),
                identity.full_name,
                json_list(&identity.emails),
                json_list(&identity.usernames),
                json_list(&identity.phones),
                i64::from(identity.is_primary),
                identity.last_scanned,
                identity.created_at,
                identity.deleted_at,
            ],
        )
        .map_err(|e| self.err(e))?;
        {
            let mut add = tx
                .prepare_cached(
                    "INSERT OR IGNORE INTO identity_keys (identity_id, kind, key, hash_mode) VALUES (?1, ?2, ?3, ?4)",
                )
                .map_err(|e| self.err(e))?;
            for k in keys {
                add.execute(params![identity.id, k.kind, k.key, k.hash_mode]).map_err(|e| self.err(e))?;
            }
        }
        tx.commit().map_err(|e| self.err(e))
    }

    fn list_identities(&self, org: &str) -> Result<Vec<StoredIdentity>, StoreError> {
        let conn = self.conn();
        let mut stmt = conn
            .prepare(&format!(
                "SELECT {IDENTITY_COLUMNS} FROM identities WHERE org = ?1 AND deleted_at IS NULL \
                 ORDER BY created_at, rowid"
            ))
            .map_err(|e| self.err(e))?;
        let rows = stmt.query_map(params![org], identity_from_row).map_err(|e| self.err(e))?;
        rows.collect::<Result<Vec<_>, _>>().map_err(|e| self.err(e))
    }

    fn identity(&self, org: &str, id: &str) -> Result<Option<StoredIdentity>, StoreError> {
        self.conn()
            .query_row(
                &format!("SELECT {IDENTITY_COLUMNS} FROM identities WHERE id = ?1 AND org = ?2 AND deleted_at IS NULL"),
                params![id, org],
                identity_from_row,
            )
            .optional()
            .map_err(|e| self.err(e))
    }

    fn delete_identity(&self, org: &str, id: &str, now: i64) -> Result<bool, StoreError> {
        let mut conn = self.conn();
        let tx = conn.transaction_with_behavior(rusqlite::TransactionBehavior::Immediate).map_err(|e| self.err(e))?;
        let n = tx
            .execute(
                "UPDATE identities SET deleted_at = ?3 WHERE id = ?1 AND org = ?2 AND deleted_at IS NULL",
                params![id, org, now],
            )
            .map_err(|e| self.err(e))?;
        if n > 0 {
            tx.execute("DELETE FROM identity_keys WHERE identity_id = ?1", params![id]).map_err(|e| self.err(e))?;
        }
        tx.commit().map_err(|e| self.err(e))?;
        Ok(n > 0)
    }

    fn watched_keys(&self) -> Result<Vec<(String, WatchedKey)>, StoreError> {
        let conn = self.conn();
        let mut stmt = conn
            .prepare(
                "SELECT k.identity_id, k.kind, k.key, k.hash_mode FROM identity_keys k \
                 JOIN identities i ON i.id = k.identity_id WHERE i.deleted_at IS NULL ORDER BY k.kind, k.key",
            )
            .map_err(|e| self.err(e))?;
        let rows = stmt
            .query_map([], |r| {
                let kind: String = r.get(1)?;
                let kind = if kind == "email" { "email" } else { "username" };
                Ok((r.get(0)?, WatchedKey { kind, key: r.get(2)?, hash_mode: r.get(3)? }))
            })
            .map_err(|e| self.err(e))?;
        rows.collect::<Result<Vec<_>, _>>().map_err(|e| self.err(e))
    }

    fn identities_by_id(&self, ids: &[String]) -> Result<Vec<StoredIdentity>, StoreError> {
        let conn = self.conn();
        let mut stmt = conn
            .prepare_cached(&format!("SELECT {IDENTITY_COLUMNS} FROM identities WHERE id = ?1 AND deleted_at IS NULL"))
            .map_err(|e| self.err(e))?;
        let mut out = Vec::with_capacity(ids.len());
        for id in ids {
            if let Some(i) = stmt.query_row(params![id], identity_from_row).optional().map_err(|e| self.err(e))? {
                out.push(i);
            }
        }
        Ok(out)
    }

    fn insert_webhook(&self, webhook: &StoredWebhook, limit: Option<u64>) -> Result<(), StoreError> {
        let mut conn = self.conn();
        let tx = conn.transaction_with_behavior(rusqlite::TransactionBehavior::Immediate).map_err(|e| self.err(e))?;
        if let Some(limit) = limit {
            let active: i64 = tx
                .query_row(
                    "SELECT COUNT(*) FROM webhooks WHERE org = ?1 AND deleted_at IS NULL",
                    params![webhook.org],
                    |r| r.get(0),
                )
                .map_err(|e| self.err(e))?;
            if u64::try_from(active).unwrap_or(0) >= limit {
                return Err(StoreError::LimitExceeded(format!(
                    "the organization already has {active} webhooks, the most its plan allows ({limit}); \
                     delete one or use a key of a larger plan"
                )));
            }
        }
        tx.execute(
            &format!("INSERT INTO webhooks ({WEBHOOK_COLUMNS}) VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7)"),
            params![
                webhook.id,
                webhook.org,
                webhook.url,
                json_list(&webhook.events),
                webhook.secret,
                webhook.created_at,
                webhook.deleted_at
            ],
        )
        .map_err(|e| self.err(e))?;
        tx.commit().map_err(|e| self.err(e))
    }

    fn list_webhooks(&self, org: &str) -> Result<Vec<StoredWebhook>, StoreError> {
        let conn = self.conn();
        let mut stmt = conn
            .prepare(&format!(
                "SELECT {WEBHOOK_COLUMNS} FROM webhooks WHERE org = ?1 AND deleted_at IS NULL ORDER BY created_at, rowid"
            ))
            .map_err(|e| self.err(e))?;
        let rows = stmt.query_map(params![org], webhook_from_row).map_err(|e| self.err(e))?;
        rows.collect::<Result<Vec<_>, _>>().map_err(|e| self.err(e))
    }

    fn delete_webhook(&self, org: &str, id: &str, now: i64) -> Result<bool, StoreError> {
        let mut conn = self.conn();
        let tx = conn.transaction_with_behavior(rusqlite::TransactionBehavior::Immediate).map_err(|e| self.err(e))?;
        let n = tx
            .execute(
                "UPDATE webhooks SET deleted_at = ?3 WHERE id = ?1 AND org = ?2 AND deleted_at IS NULL",
                params![id, org, now],
            )
            .map_err(|e| self.err(e))?;
        if n > 0 {
            tx.execute(
                "UPDATE deliveries SET status = 'cancelled', next_at_ms = NULL WHERE webhook_id = ?1 AND status = 'pending'",
                params![id],
            )
            .map_err(|e| self.err(e))?;
        }
        tx.commit().map_err(|e| self.err(e))?;
        Ok(n > 0)
    }

    fn enqueue_event(
        &self,
        event: &OutgoingEvent,
        callback: Option<&Callback>,
        now_ms: i64,
    ) -> Result<usize, StoreError> {
        let mut conn = self.conn();
        let tx = conn.transaction_with_behavior(rusqlite::TransactionBehavior::Immediate).map_err(|e| self.err(e))?;
        let n = enqueue_in(&tx, event, callback, now_ms).map_err(|e| self.err(e))?;
        tx.commit().map_err(|e| self.err(e))?;
        Ok(n)
    }

    fn claim_due(&self, now_ms: i64, lease_until_ms: i64, limit: usize) -> Result<Vec<DueDelivery>, StoreError> {
        let mut conn = self.conn();
        let tx = conn.transaction_with_behavior(rusqlite::TransactionBehavior::Immediate).map_err(|e| self.err(e))?;
        let due: Vec<DueDelivery> = {
            let mut stmt = tx
                .prepare_cached(
                    "SELECT id, url, event, body, signature, attempts FROM deliveries \
                     WHERE status = 'pending' AND next_at_ms <= ?1 ORDER BY next_at_ms, id LIMIT ?2",
                )
                .map_err(|e| self.err(e))?;
            let rows = stmt
                .query_map(params![now_ms, i64::try_from(limit).unwrap_or(i64::MAX)], |r| {
                    Ok(DueDelivery {
                        id: r.get(0)?,
                        url: r.get(1)?,
                        event: r.get(2)?,
                        body: r.get(3)?,
                        signature: r.get(4)?,
                        attempts: u32::try_from(r.get::<_, i64>(5)?).unwrap_or(u32::MAX),
                    })
                })
                .map_err(|e| self.err(e))?;
            rows.collect::<Result<_, _>>().map_err(|e| self.err(e))?
        };
        {
            let mut lease =
                tx.prepare_cached("UPDATE deliveries SET next_at_ms = ?2 WHERE id = ?1").map_err(|e| self.err(e))?;
            for d in &due {
                lease.execute(params![d.id, lease_until_ms]).map_err(|e| self.err(e))?;
            }
        }
        tx.commit().map_err(|e| self.err(e))?;
        Ok(due)
    }

    fn next_due(&self) -> Result<Option<i64>, StoreError> {
        self.conn()
            .query_row("SELECT MIN(next_at_ms) FROM deliveries WHERE status = 'pending'", [], |r| r.get(0))
            .map_err(|e| self.err(e))
    }

    fn record_attempt(&self, id: i64, log: &AttemptLog, outcome: AttemptOutcome) -> Result<(), StoreError> {
        let mut conn = self.conn();
        let tx = conn.transaction_with_behavior(rusqlite::TransactionBehavior::Immediate).map_err(|e| self.err(e))?;
        tx.execute(
            "INSERT OR REPLACE INTO delivery_attempts (delivery_id, attempt, at_ms, status_code, error, duration_ms) \
             VALUES (?1, ?2, ?3, ?4, ?5, ?6)",
            params![
                id,
                i64::from(log.attempt),
                log.at_ms,
                log.status_code.map(i64::from),
                log.error,
                i64::try_from(log.duration_ms).unwrap_or(i64::MAX)
            ],
        )
        .map_err(|e| self.err(e))?;
        let (status, next) = match outcome {
            AttemptOutcome::Delivered => ("delivered", None),
            AttemptOutcome::Retry { next_at_ms } => ("pending", Some(next_at_ms)),
            AttemptOutcome::Failed => ("failed", None),
        };
        // A delivery cancelled meanwhile (its webhook deleted) stays cancelled.
        tx.execute(
            "UPDATE deliveries SET attempts = ?2, status = CASE WHEN status = 'cancelled' THEN status ELSE ?3 END, \
             next_at_ms = CASE WHEN status = 'cancelled' THEN NULL ELSE ?4 END WHERE id = ?1",
            params![id, i64::from(log.attempt), status, next],
        )
        .map_err(|e| self.err(e))?;
        tx.commit().map_err(|e| self.err(e))
    }

    fn deliveries(&self, org: &str, webhook_id: &str, limit: usize) -> Result<Option<Vec<DeliveryView>>, StoreError> {
        let conn = self.conn();
        let known: Option<i64> = conn
            .query_row("SELECT 1 FROM webhooks WHERE id = ?1 AND org = ?2", params![webhook_id, org], |r| r.get(0))
            .optional()
            .map_err(|e| self.err(e))?;
        if known.is_none() {
            return Ok(None);
        }
        let mut stmt = conn
            .prepare(
                "SELECT id, event, status, created_at_ms, next_at_ms FROM deliveries WHERE webhook_id = ?1 \
                 ORDER BY id DESC LIMIT ?2",
            )
            .map_err(|e| self.err(e))?;
        let rows = stmt
            .query_map(params![webhook_id, i64::try_from(limit).unwrap_or(i64::MAX)], |r| {
                let status: String = r.get(2)?;
                Ok(DeliveryView {
                    id: r.get(0)?,
                    event: r.get(1)?,
                    next_at_ms: if status == "pending" { r.get(4)? } else { None },
                    status,
                    created_at_ms: r.get(3)?,
                    attempts: Vec::new(),
                })
            })
            .map_err(|e| self.err(e))?;
        let mut out: Vec<DeliveryView> = rows.collect::<Result<_, _>>().map_err(|e| self.err(e))?;
        let mut attempts = conn
            .prepare(
                "SELECT attempt, at_ms, status_code, error, duration_ms FROM delivery_attempts \
                 WHERE delivery_id = ?1 ORDER BY attempt",
            )
            .map_err(|e| self.err(e))?;
        for d in &mut out {
            let rows = attempts.query_map(params![d.id], attempt_from_row).map_err(|e| self.err(e))?;
            d.attempts = rows.collect::<Result<_, _>>().map_err(|e| self.err(e))?;
        }
        Ok(Some(out))
    }

    fn monitored_generation(&self) -> Result<Option<u64>, StoreError> {
        let value: Option<i64> = self
            .conn()
            .query_row("SELECT value FROM monitor_state WHERE name = ?1", params![MONITORED_GENERATION], |r| r.get(0))
            .optional()
            .map_err(|e| self.err(e))?;
        Ok(value.map(|v| u64::try_from(v).unwrap_or(0)))
    }

    fn record_detections(&self, generation: u64, detections: &[Detection], now_ms: i64) -> Result<usize, StoreError> {
        let mut conn = self.conn();
        let tx = conn.transaction_with_behavior(rusqlite::TransactionBehavior::Immediate).map_err(|e| self.err(e))?;
        let g = i64::try_from(generation).unwrap_or(i64::MAX);
        let mut new = 0;
        for d in detections {
            let inserted = tx
                .prepare_cached(
                    "INSERT OR IGNORE INTO breach_detections (identity_id, source_id, generation, created_at_ms) \
                     VALUES (?1, ?2, ?3, ?4)",
                )
                .and_then(|mut s| s.execute(params![d.identity_id, i64::from(d.source_id), g, now_ms]))
                .map_err(|e| self.err(e))?;
            if inserted == 0 {
                continue;
            }
            new += 1;
            let now = now_ms.div_euclid(1000);
            let recorded = self.insert_findings(&tx, &d.org, &d.identity_id, None, &d.findings, now)?;
            let event = OutgoingEvent {
                org: d.org.clone(),
                event: crate::webhooks::BREACH_DETECTED.to_string(),
                timestamp: now,
                data: d.data.clone(),
            };
            enqueue_in(&tx, &event, None, now_ms).map_err(|e| self.err(e))?;
            // The breach's findings that the identity did not have: `finding.new`, as after a scan.
            for (f, r) in d.findings.iter().zip(&recorded).filter(|(_, r)| r.is_new) {
                let event = OutgoingEvent {
                    org: d.org.clone(),
                    event: crate::webhooks::FINDING_NEW.to_string(),
                    timestamp: now,
                    data: crate::scans::finding_new_data(None, &d.identity_id, f, &r.id, now),
                };
                enqueue_in(&tx, &event, None, now_ms).map_err(|e| self.err(e))?;
            }
        }
        tx.execute(
            "INSERT INTO monitor_state (name, value) VALUES (?1, ?2) \
             ON CONFLICT (name) DO UPDATE SET value = excluded.value",
            params![MONITORED_GENERATION, g],
        )
        .map_err(|e| self.err(e))?;
        tx.commit().map_err(|e| self.err(e))?;
        Ok(new)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn key(id: &str, org: &str, created_at: i64) -> StoredKey {
        let mut key_hash = [0u8; 32];
        key_hash[..id.len().min(32)].copy_from_slice(&id.as_bytes()[..id.len().min(32)]);
        StoredKey {
            id: id.into(),
            org: org.into(),
            name: None,
            key_hash,
            plan: "starter".into(),
            rpm: 10,
            monthly: Some(1000),
            expires: None,
            expires_at: None,
            allow_ip: None,
            functions: None,
            allow: None,
            hash_assets: None,
            output_salt: None,
            salt_position: "right".into(),
            created_at,
            revoked_at: None,
            identities: None,
        }
    }

    #[test]
    fn creation_limits_hold_per_org_and_reopen_keeps_state() {
        let dir = tempfile::tempdir().unwrap();
        let store = SqliteStore::open(dir.path()).unwrap();
        let limits = KeyLimits::default();
        let t0 = 1_000_000;
        for i in 0..5 {
            store.insert_key(&key(&format!("a{i}"), "acme", t0), limits, t0).unwrap();
        }
        let sixth = store.insert_key(&key("a5", "acme", t0), limits, t0);
        assert!(matches!(sixth, Err(StoreError::LimitExceeded(m)) if m.contains("last hour")));
        store.insert_key(&key("b0", "other", t0), limits, t0).unwrap();
        // An hour later five more fit, then the active limit (10) stops the eleventh.
        let t1 = t0 + 3601;
        for i in 5..10 {
            store.insert_key(&key(&format!("a{i}"), "acme", t1), limits, t1).unwrap();
        }
        let t2 = t1 + 3601;
        let eleventh = store.insert_key(&key("a10", "acme", t2), limits, t2);
        assert!(matches!(eleventh, Err(StoreError::LimitExceeded(m)) if m.contains("active keys")));
        assert!(store.revoke_key("a0", t2).unwrap());
        assert!(!store.revoke_key("nope", t2).unwrap());
        store.insert_key(&key("a10", "acme", t2), limits, t2).unwrap();
        drop(store);
        let store = SqliteStore::open(dir.path()).unwrap();
        assert_eq!(store.list_keys(Some("acme")).unwrap().len(), 11);
        assert_eq!(store.revoked_ids().unwrap(), vec!["a0".to_string()]);
    }

    #[test]
    fn usage_adds_up_and_old_logs_are_pruned() {
        let dir = tempfile::tempdir().unwrap();
        let store = SqliteStore::open(dir.path()).unwrap();
        let delta = |n| UsageDelta { key_id: "k".into(), month: "2026-12".into(), requests: n };
        let row = |at_ms| LogRow {
            at_ms,
            key_id: Some("k".into()),
            org: Some("acme".into()),
            method: "GET".into(),
            route: "/api/v1/usage/".into(),
            status: 200,
            client: Some([127, 0, 0, 1].into()),
            latency_us: 10,
        };
        store.write_batch(&[delta(3)], &[row(1_000), row(5_000)]).unwrap();
        store.write_batch(&[delta(4)], &[]).unwrap();
        assert_eq!(store.usage("2026-12").unwrap(), vec![("k".to_string(), 7)]);
        assert_eq!(store.prune_logs(2_000).unwrap(), 1);
        let mut seen = Vec::new();
        store.logs(0, Some("acme"), &mut |r| seen.push(r.at_ms)).unwrap();
        assert_eq!(seen, vec![5_000]);
    }

    fn identity(id: &str, org: &str, created_at: i64) -> StoredIdentity {
        StoredIdentity {
            id: id.into(),
            org: org.into(),
            name: format!("name of {id}"),
            identity_type: IdentityType::Business,
            full_name: None,
            emails: vec![format!("{id}@Example.org")],
            usernames: Vec::new(),
            phones: vec!["+1 555 0100".into()],
            is_primary: false,
            last_scanned: None,
            created_at,
            deleted_at: None,
        }
    }

    fn watched(id: &str) -> WatchedKey {
        WatchedKey { kind: "email", key: format!("{id}@example.org").into_bytes(), hash_mode: "plain".into() }
    }

    #[test]
    fn identities_are_limited_scoped_to_their_organization_and_soft_deleted() {
        let dir = tempfile::tempdir().unwrap();
        let store = SqliteStore::open(dir.path()).unwrap();
        for (i, id) in ["i1", "i2"].iter().enumerate() {
            store.insert_identity(&identity(id, "acme", i as i64), &[watched(id)], Some(2)).unwrap();
        }
        let third = store.insert_identity(&identity("i3", "acme", 3), &[watched("i3")], Some(2));
        assert!(matches!(third, Err(StoreError::LimitExceeded(m)) if m.contains("allows (2:")));
        store.insert_identity(&identity("o1", "other", 4), &[watched("o1")], Some(2)).unwrap();
        store.insert_identity(&identity("i3", "acme", 5), &[watched("i3")], None).unwrap();
        let ids = |org| store.list_identities(org).unwrap().into_iter().map(|i| i.id).collect::<Vec<_>>();
        assert_eq!(ids("acme"), ["i1", "i2", "i3"]);
        assert_eq!(store.identity("acme", "i1").unwrap(), Some(identity("i1", "acme", 0)), "read back whole");
        assert_eq!(store.identity("other", "i1").unwrap(), None, "another organization's");
        assert!(!store.delete_identity("other", "i1", 9).unwrap());
        assert!(store.delete_identity("acme", "i1", 9).unwrap());
        assert!(!store.delete_identity("acme", "i1", 10).unwrap(), "deleted once");
        assert_eq!(store.identity("acme", "i1").unwrap(), None);
        let watching: Vec<String> = store.watched_keys().unwrap().into_iter().map(|(id, _)| id).collect();
        assert_eq!(watching, ["i2", "i3", "o1"], "the deleted identity's keys are gone");
        drop(store);
        let store = SqliteStore::open(dir.path()).unwrap();
        assert_eq!(store.list_identities("acme").unwrap().len(), 2, "kept across a reopen");
    }

    fn webhook(id: &str, org: &str, events: &[&str]) -> StoredWebhook {
        StoredWebhook {
            id: id.into(),
            org: org.into(),
            url: format!("https://{id}.example/in"),
            events: events.iter().map(|e| e.to_string()).collect(),
            secret: format!("whsec_{id}"),
            created_at: 1,
            deleted_at: None,
        }
    }

    #[test]
    fn events_queue_per_subscribed_webhook_and_attempts_move_them_on_across_a_reopen() {
        let dir = tempfile::tempdir().unwrap();
        let store = SqliteStore::open(dir.path()).unwrap();
        store.insert_webhook(&webhook("w1", "acme", &["breach.detected"]), Some(2)).unwrap();
        store.insert_webhook(&webhook("w2", "acme", &["scan.completed"]), Some(2)).unwrap();
        let third = store.insert_webhook(&webhook("w3", "acme", &["scan.completed"]), Some(2));
        assert!(matches!(third, Err(StoreError::LimitExceeded(_))), "{third:?}");
        store.insert_webhook(&webhook("o1", "other", &["breach.detected"]), Some(2)).unwrap();
        let event = OutgoingEvent {
            org: "acme".into(),
            event: "breach.detected".into(),
            timestamp: 5,
            data: serde_json::json!({"n": 1}),
        };
        let callback = Callback { url: "https://cb.example/".into(), secret: "cb".into() };
        assert_eq!(store.enqueue_event(&event, Some(&callback), 1_000).unwrap(), 2, "w1 and the callback");
        assert_eq!(store.next_due().unwrap(), Some(1_000));
        assert!(store.claim_due(999, 5_000, 10).unwrap().is_empty(), "not due yet");
        let due = store.claim_due(1_000, 5_000, 10).unwrap();
        let urls: Vec<&str> = due.iter().map(|d| d.url.as_str()).collect();
        assert_eq!(urls, ["https://w1.example/in", "https://cb.example/"]);
        let signed = crate::webhooks::sign_payload("whsec_w1", "breach.detected", 5, &event.data);
        assert_eq!((&due[0].body, &due[0].signature), (&signed.body, &signed.header), "signed with w1's secret");
        assert!(store.claim_due(2_000, 6_000, 10).unwrap().is_empty(), "leased");
        let log = |attempt, status| AttemptLog {
            attempt,
            at_ms: 2_000,
            status_code: Some(status),
            error: None,
            duration_ms: 3,
        };
        store.record_attempt(due[0].id, &log(1, 500), AttemptOutcome::Retry { next_at_ms: 3_000 }).unwrap();
        store.record_attempt(due[1].id, &log(1, 204), AttemptOutcome::Delivered).unwrap();
        drop(store);
        let store = SqliteStore::open(dir.path()).unwrap();
        let again = store.claim_due(3_000, 9_000, 10).unwrap();
        assert_eq!((again.len(), again[0].id, again[0].attempts), (1, due[0].id, 1), "resumed after a reopen");
        store.record_attempt(again[0].id, &log(2, 200), AttemptOutcome::Delivered).unwrap();
        assert_eq!(store.next_due().unwrap(), None);
        let views = store.deliveries("acme", "w1", 10).unwrap().unwrap();
        assert_eq!(views.len(), 1);
        assert_eq!(views[0].status, "delivered");
        let codes: Vec<Option<u16>> = views[0].attempts.iter().map(|a| a.status_code).collect();
        assert_eq!(codes, [Some(500), Some(200)]);
        assert_eq!(store.deliveries("other", "w1", 10).unwrap(), None, "another organization's webhook");
        // Deleting a webhook cancels what it still had pending.
        store.enqueue_event(&event, None, 10_000).unwrap();
        assert!(!store.delete_webhook("other", "w1", 11).unwrap());
        assert!(store.delete_webhook("acme", "w1", 11).unwrap());
        assert_eq!(store.next_due().unwrap(), None);
        assert_eq!(store.list_webhooks("acme").unwrap().len(), 1);
    }

    #[test]
    fn a_detection_fires_once_per_identity_and_source_and_moves_the_generation_with_it() {
        let dir = tempfile::tempdir().unwrap();
        let store = SqliteStore::open(dir.path()).unwrap();
        store.insert_webhook(&webhook("w1", "acme", &["breach.detected"]), None).unwrap();
        assert_eq!(store.monitored_generation().unwrap(), None);
        let hit = |source_id| Detection {
            identity_id: "i1".into(),
            org: "acme".into(),
            source_id,
            data: serde_json::json!({"source": source_id}),
            findings: Vec::new(),
        };
        assert_eq!(store.record_detections(2, &[hit(7), hit(8)], 1_000).unwrap(), 2);
        assert_eq!(store.monitored_generation().unwrap(), Some(2));
        assert_eq!(store.record_detections(3, &[hit(7), hit(9)], 2_000).unwrap(), 1, "7 was told already");
        assert_eq!(store.monitored_generation().unwrap(), Some(3));
        assert_eq!(store.claim_due(2_000, 3_000, 10).unwrap().len(), 3);
    }

    #[test]
    fn a_database_of_a_newer_schema_is_refused_and_reopening_migrates_nothing_twice() {
        let dir = tempfile::tempdir().unwrap();
        drop(SqliteStore::open(dir.path()).unwrap());
        drop(SqliteStore::open(dir.path()).unwrap());
        let conn = Connection::open(dir.path().join(DB_FILE)).unwrap();
        let version: i64 = conn.pragma_query_value(None, "user_version", |r| r.get(0)).unwrap();
        assert_eq!(version, MIGRATIONS.len() as i64);
        let mode: String = conn.pragma_query_value(None, "journal_mode", |r| r.get(0)).unwrap();
        assert_eq!(mode, "wal");
        conn.pragma_update(None, "user_version", 99).unwrap();
        drop(conn);
        let e = SqliteStore::open(dir.path()).unwrap_err().to_string();
        assert!(e.contains("schema version 99") && e.contains("upgrade breachdex"), "{e}");
    }
}
