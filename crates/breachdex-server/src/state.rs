//! [`AppState`]: the configuration, the served index, the state store, the in-memory
//! key cache with each key's counters, the request-log channel and the metrics: one
//! `Arc`, cloned into every handler.
//!
//! # Rate limits
//!
//! Each key has a fixed one-minute window (aligned to the wall-clock minute) and a
//! calendar-month counter (UTC), both behind one small mutex per key held for a few
//! instructions and never across an `.await`. A fixed window gives exact
//! `X-RateLimit-Remaining` and `X-RateLimit-Reset` values (the count left and the end of
//! the window), which a GCRA limiter such as `governor` can only approximate, and costs
//! one uncontended lock per request; its known weakness (up to twice the limit across a
//! window boundary) is what the plans' per-minute figures tolerate. Refused requests
//! are not counted.

use crate::client_limit::ClientLimiter;
use crate::engine::{self, Engine, Policy};
use crate::keys::{FUNCTIONS, key_hash};
use crate::store::{LogRow, StateStore, StoredKey, UsageDelta};
use ipnet::IpNet;
use std::collections::{HashMap, HashSet};
use std::net::{IpAddr, SocketAddr};
use std::path::PathBuf;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::{Arc, Mutex, RwLock};
use subtle::ConstantTimeEq;
use tokio::sync::mpsc;

// The function allow-list is a bit set of one `u32`.
const _: () = assert!(FUNCTIONS.len() <= 32);

/// Unknown key hashes remembered at most.
pub const MAX_MISSES: usize = 100_000;

/// Default capacity of the request-log queue; rows beyond it are dropped and counted.
pub const LOG_CHANNEL_CAPACITY: usize = 65_536;

/// Default requests to `/range` per minute per client address under
/// `--passwords-require-key`.
pub const DEFAULT_PASSWORDS_RPM: u32 = 600;

/// How the server is configured (the `serve` flags).
#[derive(Debug, Clone)]
pub struct ServerConfig {
    /// The published index path (a directory or a symlink to one).
    pub index: PathBuf,
    /// The index salt file (hashed modes).
    pub salt_file: Option<PathBuf>,
    /// The state directory.
    pub data: PathBuf,
    /// Allowed CORS origins (none: no CORS headers).
    pub cors_origins: Vec<String>,
    /// Days the request log keeps.
    pub log_retention_days: u32,
    /// Proxies whose `X-Forwarded-For` is believed.
    pub trust_proxy: Vec<IpNet>,
    /// Serve `/metrics`.
    pub metrics: bool,
    /// How often the published index path and the key table are looked at again.
    pub refresh_interval: std::time::Duration,
    /// How often usage and the request log are written.
    pub flush_interval: std::time::Duration,
    /// How often rows older than the retention are deleted.
    pub prune_interval: std::time::Duration,
    /// Log rows queued for the writer at most; more are dropped and counted.
    pub log_queue: usize,
    /// `/range` needs a key allowed the `passwords` function, and each client address
    /// gets [`passwords_rpm`](Self::passwords_rpm) of them a minute (without it, `/range`
    /// is open and unlimited, as Pwned Passwords is).
    pub passwords_require_key: bool,
    /// Requests to `/range` per minute per client address when a key is required.
    pub passwords_rpm: u32,
    /// Requests per minute one client address may make to the routes that need no key
    /// (the Have I Been Pwned catalog routes, SPEC §12); at least 1.
    pub public_rpm: u32,
    /// Scan worker tasks (SPEC §14 scans; see [`crate::scans`]): each runs one scan at a
    /// time on one blocking thread. 0 queues scans without running them.
    pub scan_workers: usize,
    /// What webhook and callback URLs may be (`--allow-http-webhooks`,
    /// `--allow-private-webhooks`; [`crate::ssrf`]).
    pub webhook_policy: crate::ssrf::UrlPolicy,
    /// The longest a webhook delivery attempt may take (connection, TLS, request and
    /// the answer's head).
    pub webhook_timeout: std::time::Duration,
    /// The delay after a first failed delivery attempt; it doubles after each next one.
    pub webhook_retry_base: std::time::Duration,
}

/// Default of [`ServerConfig::public_rpm`]: generous for applications listing breaches,
/// low enough that one address cannot flood the server.
pub const DEFAULT_PUBLIC_RPM: u32 = 120;

impl ServerConfig {
    /// Defaults for an index and a data directory: no CORS, 30 days of log (pruned
    /// hourly), no trusted proxy, no metrics, refresh and flush every second, a queue of
    /// 65,536 log rows, `/range` open to all, [`DEFAULT_PUBLIC_RPM`] keyless requests per
    /// address and minute on the Have I Been Pwned catalog routes, one scan worker,
    /// webhooks to public `https` URLs only, 10 s per delivery attempt, retries 1 s
    /// doubling.
    pub fn new(index: impl Into<PathBuf>, data: impl Into<PathBuf>) -> ServerConfig {
        ServerConfig {
            index: index.into(),
            salt_file: None,
            data: data.into(),
            cors_origins: Vec::new(),
            log_retention_days: 30,
            trust_proxy: Vec::new(),
            metrics: false,
            refresh_interval: std::time::Duration::from_secs(1),
            flush_interval: std::time::Duration::from_secs(1),
            prune_interval: std::time::Duration::from_secs(3600),
            log_queue: LOG_CHANNEL_CAPACITY,
            passwords_require_key: false,
            passwords_rpm: DEFAULT_PASSWORDS_RPM,
            public_rpm: DEFAULT_PUBLIC_RPM,
            scan_workers: 1,
            webhook_policy: crate::ssrf::UrlPolicy::default(),
            webhook_timeout: std::time::Duration::from_secs(10),
            webhook_retry_base: std::time::Duration::from_secs(1),
        }
    }
}

/// Why the server could not start.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum StartError {
    /// The index.
    #[error(transparent)]
    Index(#[from] engine::EngineOpenError),
    /// The state database.
    #[error(transparent)]
    Store(#[from] crate::store::StoreError),
    /// A stored key that this build cannot read.
    #[error("stored key {id}: {message}")]
    BadKey {
        /// Key id.
        id: String,
        /// What is wrong.
        message: String,
    },
    /// TLS certificate or key.
    #[error("TLS: {0}")]
    Tls(String),
    /// The listening socket.
    #[error("listen: {0}")]
    Io(#[from] std::io::Error),
}

/// A key as the server uses it: parsed settings and live counters.
#[derive(Debug)]
pub struct KeyEntry {
    /// Key id.
    pub id: Arc<str>,
    /// Organization.
    pub org: Arc<str>,
    /// Plan name.
    pub plan: String,
    hash: [u8; 32],
    /// Requests per minute.
    pub rpm: u32,
    /// Requests per month (`None`: unlimited).
    pub monthly: Option<u64>,
    expires_at: Option<i64>,
    allow_ip: Option<Vec<IpNet>>,
    /// Bit `i` set: [`FUNCTIONS`]`[i]` is allowed.
    functions: u32,
    /// Active watched identities the organization may have through this key (`None`:
    /// unlimited).
    pub identity_limit: Option<u64>,
    /// The key's asset policy.
    pub policy: Policy,
    revoked: AtomicBool,
    counters: Mutex<Counters>,
}

#[derive(Debug, Default)]
struct Counters {
    minute: i64,
    minute_count: u32,
    month: (i32, u32),
    month_used: u64,
    /// Counted and not yet written, per month.
    unflushed: Vec<((i32, u32), u64)>,
}

/// What the limiter decided, with the `X-RateLimit-*` values.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Admission {
    /// Whether the request may proceed.
    pub outcome: Outcome,
    /// `X-RateLimit-Limit`.
    pub limit: u64,
    /// `X-RateLimit-Remaining`.
    pub remaining: u64,
    /// `X-RateLimit-Reset` (Unix seconds).
    pub reset: i64,
}

/// The limiter's verdict.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Outcome {
    /// Counted; go on.
    Allowed,
    /// The per-minute limit.
    RateLimited,
    /// The monthly quota.
    QuotaExceeded,
}

/// What `/api/v1/usage/` shows.
#[derive(Debug, Clone, Copy)]
pub struct UsageView {
    /// Requests this month.
    pub used: u64,
    /// Start of next month (Unix seconds).
    pub reset: i64,
}

fn month_text((y, m): (i32, u32)) -> String {
    format!("{y:04}-{m:02}")
}

impl KeyEntry {
    fn from_stored(k: &StoredKey, used_this_month: u64, now: i64) -> Result<KeyEntry, String> {
        let allow_ip = match &k.allow_ip {
            None => None,
            Some(list) => Some(crate::keys::parse_cidrs(list)?),
        };
        let functions = match &k.functions {
            None => u32::MAX,
            Some(list) => {
                let names = crate::keys::parse_functions(list)?;
                names.iter().fold(0u32, |acc, n| acc | FUNCTIONS.iter().position(|f| f == n).map_or(0, |i| 1 << i))
            }
        };
        let policy = engine::parse_policy(
            k.allow.as_deref(),
            k.hash_assets.as_deref(),
            k.output_salt.as_deref(),
            k.salt_position == "left",
        )?;
        let (month, _) = engine::month_of(now);
        Ok(KeyEntry {
            id: Arc::from(k.id.as_str()),
            org: Arc::from(k.org.as_str()),
            plan: k.plan.clone(),
            hash: k.key_hash,
            rpm: k.rpm,
            monthly: k.monthly,
            expires_at: k.expires_at,
            allow_ip,
            functions,
            identity_limit: crate::keys::identity_limit(k),
            policy,
            revoked: AtomicBool::new(k.revoked_at.is_some()),
            counters: Mutex::new(Counters { month, month_used: used_this_month, ..Counters::default() }),
        })
    }

    /// When the key expires (Unix seconds), if it does.
    pub fn expires_at(&self) -> Option<i64> {
        self.expires_at
    }

    /// Whether the key is revoked or expired at `now`.
    pub fn is_inactive(&self, now: i64) -> bool {
        self.revoked.load(Ordering::Relaxed) || self.expires_at.is_some_and(|at| at <= now)
    }

    /// Whether `ip` may use the key.
    pub fn allows_ip(&self, ip: IpAddr) -> bool {
        let ip = match ip {
            IpAddr::V6(v6) => v6.to_ipv4_mapped().map_or(ip, IpAddr::V4),
            v4 => v4,
        };
        self.allow_ip.as_ref().is_none_or(|nets| nets.iter().any(|n| n.contains(&ip)))
    }

    /// Whether the key is limited to some addresses.
    pub fn has_ip_allow_list(&self) -> bool {
        self.allow_ip.is_some()
    }

    /// Whether the key may call `function`.
    pub fn allows_function(&self, function: &str) -> bool {
        FUNCTIONS.iter().position(|f| *f == function).is_some_and(|i| self.functions & (1 << i) != 0)
    }

    /// Counts one request if the limits allow it (`count`), or only reports.
    pub fn admit(&self, now: i64, count: bool) -> Admission {
        let minute = now.div_euclid(60);
        let minute_reset = (minute + 1) * 60;
        let (month, month_reset) = engine::month_of(now);
        let mut c = self.counters.lock().unwrap_or_else(|e| e.into_inner());
        if c.minute != minute {
            c.minute = minute;
            c.minute_count = 0;
        }
        if c.month != month {
            c.month = month;
            c.month_used = 0;
        }
        let minute_left = u64::from(self.rpm.saturating_sub(c.minute_count));
        let month_left = self.monthly.map(|m| m.saturating_sub(c.month_used));
        if month_left == Some(0) {
            let limit = self.monthly.unwrap_or(0);
            return Admission { outcome: Outcome::QuotaExceeded, limit, remaining: 0, reset: month_reset };
        }
        if minute_left == 0 {
            return Admission {
                outcome: Outcome::RateLimited,
                limit: u64::from(self.rpm),
                remaining: 0,
                reset: minute_reset,
            };
        }
        if !count {
            return Admission {
                outcome: Outcome::Allowed,
                limit: u64::from(self.rpm),
                remaining: minute_left,
                reset: minute_reset,
            };
        }
        c.minute_count += 1;
        c.month_used += 1;
        match c.unflushed.iter_mut().find(|(m, _)| *m == month) {
            Some((_, n)) => *n += 1,
            None => c.unflushed.push((month, 1)),
        }
        Admission {
            outcome: Outcome::Allowed,
            limit: u64::from(self.rpm),
            remaining: minute_left - 1,
            reset: minute_reset,
        }
    }

    /// This month's usage.
    pub fn usage(&self, now: i64) -> UsageView {
        let (month, reset) = engine::month_of(now);
        let c = self.counters.lock().unwrap_or_else(|e| e.into_inner());
        UsageView { used: if c.month == month { c.month_used } else { 0 }, reset }
    }

    fn take_unflushed(&self, out: &mut Vec<UsageDelta>) {
        let mut c = self.counters.lock().unwrap_or_else(|e| e.into_inner());
        for (month, n) in c.unflushed.drain(..) {
            out.push(UsageDelta { key_id: self.id.to_string(), month: month_text(month), requests: n });
        }
    }
}

/// Counters exported on `/metrics`.
#[derive(Debug, Default)]
pub struct Metrics {
    /// Responses by status class (1xx..5xx at 0..4).
    pub responses: [AtomicU64; 5],
    /// Log rows dropped because the channel was full.
    pub log_rows_dropped: AtomicU64,
    /// Log rows written.
    pub log_rows_written: AtomicU64,
    /// Failed state writes.
    pub store_errors: AtomicU64,
}

/// Everything the handlers share.
#[derive(Clone)]
pub struct AppState(pub(crate) Arc<Inner>);

impl std::fmt::Debug for AppState {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("AppState").field("config", &self.0.config).finish_non_exhaustive()
    }
}

pub(crate) struct Inner {
    pub config: ServerConfig,
    pub engine: Engine,
    pub store: Arc<dyn StateStore>,
    pub keys: RwLock<HashMap<[u8; 32], Arc<KeyEntry>>>,
    /// Hashes of keys the store did not know, so a flood of wrong keys does not reach
    /// the database; cleared when the database changes (a key created meanwhile is then
    /// found within one refresh interval) and when it grows past [`MAX_MISSES`].
    pub misses: Mutex<HashSet<[u8; 32]>>,
    pub log_tx: mpsc::Sender<LogRow>,
    pub log_rx: Mutex<Option<mpsc::Receiver<LogRow>>>,
    pub metrics: Metrics,
    /// `/range` requests per client address (used under `--passwords-require-key`).
    pub range_limiter: ClientLimiter,
    /// Requests per client address on the Have I Been Pwned routes that need no key.
    pub public_limiter: ClientLimiter,
    /// The scan queue's wake-up, progress and due organization risks.
    pub scans: crate::scans::ScanQueue,
    /// Wakes the webhook dispatcher when deliveries are queued.
    pub webhook_wake: tokio::sync::Notify,
}

impl AppState {
    /// Opens the index and the state database (creating `--data` on first start) and
    /// loads every key with this month's usage.
    pub fn open(config: ServerConfig) -> Result<AppState, StartError> {
        let store = crate::store::SqliteStore::open(&config.data)?;
        AppState::with_store(config, Arc::new(store))
    }

    /// Like [`AppState::open`] with another state store.
    pub fn with_store(config: ServerConfig, store: Arc<dyn StateStore>) -> Result<AppState, StartError> {
        let engine = Engine::open(&config.index, config.salt_file.as_deref(), config.refresh_interval)?;
        let now = engine::now_unix();
        let (month, _) = engine::month_of(now);
        let usage: HashMap<String, u64> = store.usage(&month_text(month))?.into_iter().collect();
        // Scans a stopped server left running start again from their beginning.
        let requeued = store.requeue_running_scans()?;
        if requeued > 0 {
            tracing::info!(scans = requeued, "scans interrupted by the last stop are queued again");
        }
        // Prime the change detector, so the first refresh only sees later changes.
        store.changed_elsewhere()?;
        let mut keys = HashMap::new();
        for k in store.list_keys(None)? {
            if k.revoked_at.is_some() {
                continue;
            }
            let used = usage.get(&k.id).copied().unwrap_or(0);
            let entry = KeyEntry::from_stored(&k, used, now)
                .map_err(|message| StartError::BadKey { id: k.id.clone(), message })?;
            keys.insert(k.key_hash, Arc::new(entry));
        }
        let (log_tx, log_rx) = mpsc::channel(config.log_queue.max(1));
        let range_limiter = ClientLimiter::new(config.passwords_rpm);
        let public_limiter = ClientLimiter::new(config.public_rpm.max(1));
        Ok(AppState(Arc::new(Inner {
            config,
            engine,
            store,
            keys: RwLock::new(keys),
            misses: Mutex::new(HashSet::new()),
            log_tx,
            log_rx: Mutex::new(Some(log_rx)),
            public_limiter,
            metrics: Metrics::default(),
            range_limiter,
            scans: crate::scans::ScanQueue::default(),
            webhook_wake: tokio::sync::Notify::new(),
        })))
    }

    /// The configuration.
    pub fn config(&self) -> &ServerConfig {
        &self.0.config
    }

    /// The key presented, looked up by its SHA-256: in memory, else (a key created
    /// while serving) in the store. `None`: unknown.
    pub(crate) async fn find_key(&self, presented: &str) -> Result<Option<Arc<KeyEntry>>, String> {
        let hash = key_hash(presented);
        let cached = self.0.keys.read().unwrap_or_else(|e| e.into_inner()).get(&hash).cloned();
        let entry = match cached {
            Some(e) => e,
            None if self.0.misses.lock().unwrap_or_else(|e| e.into_inner()).contains(&hash) => return Ok(None),
            None => {
                let inner = Arc::clone(&self.0);
                let loaded = tokio::task::spawn_blocking(move || -> Result<Option<Arc<KeyEntry>>, String> {
                    let Some(k) = inner.store.find_key(&hash).map_err(|e| e.to_string())? else {
                        let mut misses = inner.misses.lock().unwrap_or_else(|e| e.into_inner());
                        if misses.len() >= MAX_MISSES {
                            misses.clear();
                        }
                        misses.insert(hash);
                        return Ok(None);
                    };
                    let now = engine::now_unix();
                    let (month, _) = engine::month_of(now);
                    let used = inner
                        .store
                        .usage(&month_text(month))
                        .map_err(|e| e.to_string())?
                        .into_iter()
                        .find(|(id, _)| *id == k.id)
                        .map_or(0, |(_, n)| n);
                    let entry = Arc::new(KeyEntry::from_stored(&k, used, now)?);
                    let mut keys = inner.keys.write().unwrap_or_else(|e| e.into_inner());
                    // A concurrent miss may have loaded it first: keep that one's counters.
                    Ok(Some(Arc::clone(keys.entry(hash).or_insert(entry))))
                })
                .await
                .map_err(|e| e.to_string())??;
                match loaded {
                    Some(e) => e,
                    None => return Ok(None),
                }
            }
        };
        // The map lookup compared digests already; compare again in constant time so no
        // code path depends on a data-dependent comparison of key material.
        if bool::from(entry.hash.ct_eq(&hash)) { Ok(Some(entry)) } else { Ok(None) }
    }

    /// When the database changed elsewhere (`breachdex keys create|revoke`): marks
    /// revoked keys as revoked and forgets unknown keys. Blocking.
    pub(crate) fn refresh_keys_blocking(&self) -> Result<(), String> {
        if !self.0.store.changed_elsewhere().map_err(|e| e.to_string())? {
            return Ok(());
        }
        self.0.misses.lock().unwrap_or_else(|e| e.into_inner()).clear();
        let revoked = self.0.store.revoked_ids().map_err(|e| e.to_string())?;
        let keys = self.0.keys.read().unwrap_or_else(|e| e.into_inner());
        for entry in keys.values() {
            if revoked.iter().any(|id| **id == *entry.id) {
                entry.revoked.store(true, Ordering::Relaxed);
            }
        }
        Ok(())
    }

    /// Every key's uncounted usage.
    pub(crate) fn take_usage(&self) -> Vec<UsageDelta> {
        let mut out = Vec::new();
        for entry in self.0.keys.read().unwrap_or_else(|e| e.into_inner()).values() {
            entry.take_unflushed(&mut out);
        }
        out
    }

    /// Queues a log row; never waits (a full channel drops the row and counts it).
    pub(crate) fn log(&self, row: LogRow) {
        if self.0.log_tx.try_send(row).is_err() {
            self.0.metrics.log_rows_dropped.fetch_add(1, Ordering::Relaxed);
        }
    }

    /// The client address: the peer, or the right-most `X-Forwarded-For` address that
    /// is not a trusted proxy when the peer is one.
    pub(crate) fn client_ip(&self, peer: Option<SocketAddr>, forwarded: Option<&str>) -> Option<IpAddr> {
        let peer_ip = peer.map(|p| p.ip())?;
        let trusted = |ip: &IpAddr| self.0.config.trust_proxy.iter().any(|n| n.contains(ip));
        if !trusted(&peer_ip) {
            return Some(peer_ip);
        }
        let Some(list) = forwarded else { return Some(peer_ip) };
        let hops: Vec<IpAddr> = list.split(',').filter_map(|h| h.trim().parse().ok()).collect();
        hops.iter().rev().find(|ip| !trusted(ip)).or(hops.first()).copied().or(Some(peer_ip))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn entry(rpm: u32, monthly: Option<u64>, used: u64, now: i64) -> KeyEntry {
        let stored = StoredKey {
            id: "key_t".into(),
            org: "acme".into(),
            name: None,
            key_hash: [7; 32],
            plan: "starter".into(),
            rpm,
            monthly,
            expires: None,
            expires_at: None,
            allow_ip: Some("10.0.0.0/8,::1".into()),
            functions: Some("usage,catalog".into()),
            allow: None,
            hash_assets: None,
            output_salt: None,
            salt_position: "right".into(),
            created_at: now,
            revoked_at: None,
            identities: None,
        };
        KeyEntry::from_stored(&stored, used, now).unwrap()
    }

    #[test]
    fn the_minute_window_and_month_quota_count_only_admitted_requests() {
        // 2026-12-31T23:59:00Z: one minute before a new month.
        let now = 1_798_761_540;
        let e = entry(2, Some(3), 1, now);
        let a = e.admit(now, true);
        assert_eq!((a.outcome, a.limit, a.remaining, a.reset), (Outcome::Allowed, 2, 1, now + 60));
        assert_eq!(e.admit(now + 1, true).remaining, 0);
        assert_eq!(e.admit(now + 2, true).outcome, Outcome::QuotaExceeded, "1 + 2 = 3 used");
        assert_eq!(e.usage(now).used, 3);
        // The next minute is also the next month: both reset.
        let next = now + 60;
        let a = e.admit(next, true);
        assert_eq!((a.outcome, a.remaining), (Outcome::Allowed, 1));
        assert_eq!(e.usage(next).used, 1);
        assert_eq!(e.admit(next, true).outcome, Outcome::Allowed);
        let refused = e.admit(next, true);
        assert_eq!((refused.outcome, refused.reset), (Outcome::RateLimited, next + 60));
        assert_eq!(e.usage(next).used, 2, "refused requests are not counted");
        let mut deltas = Vec::new();
        e.take_unflushed(&mut deltas);
        let months: Vec<(&str, u64)> = deltas.iter().map(|d| (d.month.as_str(), d.requests)).collect();
        assert_eq!(months, [("2026-12", 2), ("2027-01", 2)]);
        e.take_unflushed(&mut deltas);
        assert_eq!(deltas.len(), 2, "taken once");
    }

    #[test]
    fn allow_lists_match_addresses_and_functions() {
        let e = entry(10, None, 0, 0);
        assert!(e.allows_ip("10.2.3.4".parse().unwrap()));
        assert!(e.allows_ip("::ffff:10.2.3.4".parse().unwrap()), "IPv4-mapped IPv6");
        assert!(e.allows_ip("::1".parse().unwrap()));
        assert!(!e.allows_ip("11.0.0.1".parse().unwrap()));
        assert!(e.allows_function("usage") && e.allows_function("catalog"));
        assert!(!e.allows_function("breach-check") && !e.allows_function("nonsense"));
    }
}
