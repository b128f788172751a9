//! API keys: plans, the function names of the allow-list, generation (`bdx_` and 32
//! random bytes in hex, shown once), hashing (only SHA-256 is stored), and the key
//! administration behind `breachdex keys create|list|revoke` and `breachdex logs`.

use crate::engine;
use crate::store::{KeyLimits, LogRow, SqliteStore, StateStore, StoreError, StoredKey};
use ipnet::IpNet;
use serde_json::{Value, json};
use sha2::{Digest, Sha256};
use std::path::Path;

/// Prefix of every key.
pub const KEY_PREFIX: &str = "bdx_";
/// Random bytes in a key.
pub const KEY_RANDOM_BYTES: usize = 32;

/// A plan: requests per minute and per calendar month.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Plan {
    /// 10 per minute, 1,000 per month.
    Starter,
    /// 60 per minute, 10,000 per month.
    Professional,
    /// 300 per minute, unlimited per month.
    Enterprise,
}

impl Plan {
    /// The plan's name.
    pub fn name(self) -> &'static str {
        match self {
            Plan::Starter => "starter",
            Plan::Professional => "professional",
            Plan::Enterprise => "enterprise",
        }
    }

    /// Parses a plan name.
    pub fn parse(name: &str) -> Option<Plan> {
        match name {
            "starter" => Some(Plan::Starter),
            "professional" => Some(Plan::Professional),
            "enterprise" => Some(Plan::Enterprise),
            _ => None,
        }
    }

    /// Requests per minute.
    pub fn rpm(self) -> u32 {
        match self {
            Plan::Starter => 10,
            Plan::Professional => 60,
            Plan::Enterprise => 300,
        }
    }

    /// Active watched identities per organization (SPEC §14); `None`: unlimited.
    pub fn identities(self) -> Option<u64> {
        match self {
            Plan::Starter => Some(5),
            Plan::Professional => Some(50),
            Plan::Enterprise => None,
        }
    }

    /// Requests per month; `None`: unlimited.
    pub fn monthly(self) -> Option<u64> {
        match self {
            Plan::Starter => Some(1_000),
            Plan::Professional => Some(10_000),
            Plan::Enterprise => None,
        }
    }
}

/// The functions of the allow-list, in SPEC order.
pub const FUNCTIONS: [&str; 11] = [
    "health",
    "breach-check",
    "breach-data",
    "catalog",
    "usage",
    "hibp",
    "passwords",
    "identities",
    "scans",
    "risk-score",
    "webhooks",
];

/// SHA-256 of a key as presented.
pub fn key_hash(key: &str) -> [u8; 32] {
    Sha256::digest(key.as_bytes()).into()
}

fn random_hex(bytes: usize) -> Result<String, AdminError> {
    random_hex_text(bytes).map_err(AdminError::Random)
}

/// `bytes` random bytes from the operating system, in lowercase hex (ids, keys and
/// webhook secrets); the error says why no random bytes could be read.
pub fn random_hex_text(bytes: usize) -> Result<String, String> {
    let mut buf = vec![0u8; bytes];
    getrandom::fill(&mut buf).map_err(|e| format!("cannot read random bytes: {e}"))?;
    Ok(buf.iter().map(|b| format!("{b:02x}")).collect())
}

/// Why a key administration command failed.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum AdminError {
    /// An invalid option value.
    #[error("{0}")]
    Validation(String),
    /// A key limit (active keys, creations per hour).
    #[error("{0}")]
    LimitExceeded(String),
    /// No key with that id.
    #[error("no key with id '{0}'")]
    NotFound(String),
    /// The system's random source failed.
    #[error("cannot read random bytes: {0}")]
    Random(String),
    /// The state database.
    #[error(transparent)]
    Store(StoreError),
}

impl From<StoreError> for AdminError {
    fn from(e: StoreError) -> AdminError {
        match e {
            StoreError::LimitExceeded(m) => AdminError::LimitExceeded(m),
            other => AdminError::Store(other),
        }
    }
}

impl AdminError {
    /// The JSON error code (`validation_error`, `limit_exceeded`, `not_found`,
    /// `internal_error`).
    pub fn code(&self) -> &'static str {
        match self {
            AdminError::Validation(_) => "validation_error",
            AdminError::LimitExceeded(_) => "limit_exceeded",
            AdminError::NotFound(_) => "not_found",
            AdminError::Random(_) | AdminError::Store(_) => "internal_error",
        }
    }
}

/// What `keys create` asks for (the flags, unvalidated).
#[derive(Debug, Clone, Default)]
pub struct NewKey {
    /// Organization.
    pub org: String,
    /// Label.
    pub name: Option<String>,
    /// Plan name (default `starter`).
    pub plan: Option<String>,
    /// Per-minute override.
    pub rpm: Option<u32>,
    /// Monthly override (0: unlimited is not allowed; use enterprise).
    pub monthly: Option<u64>,
    /// Last valid day, `YYYY-MM-DD`.
    pub expires: Option<String>,
    /// CIDRs, comma-separated.
    pub allow_ip: Option<String>,
    /// Functions, comma-separated.
    pub functions: Option<String>,
    /// Asset allow-list.
    pub allow: Option<String>,
    /// `ASSET=ALG,...`.
    pub hash_assets: Option<String>,
    /// Output salt.
    pub output_salt: Option<String>,
    /// `left` or `right`.
    pub salt_position: Option<String>,
    /// Active watched identities of the organization this key may reach (overrides the
    /// plan's; at least 1).
    pub identities: Option<u64>,
}

/// Parses a comma list of CIDRs (a bare address is a /32 or /128).
pub fn parse_cidrs(list: &str) -> Result<Vec<IpNet>, String> {
    list.split(',')
        .map(str::trim)
        .filter(|p| !p.is_empty())
        .map(|p| {
            p.parse::<IpNet>()
                .or_else(|_| p.parse::<std::net::IpAddr>().map(IpNet::from))
                .map_err(|_| format!("'{p}' is not an IPv4 or IPv6 address or CIDR"))
        })
        .collect()
}

/// Parses a comma list of function names.
pub fn parse_functions(list: &str) -> Result<Vec<&'static str>, String> {
    let mut out = Vec::new();
    for name in list.split(',').map(str::trim).filter(|p| !p.is_empty()) {
        let f = FUNCTIONS
            .iter()
            .find(|f| **f == name)
            .ok_or_else(|| format!("unknown function '{name}' (known: {})", FUNCTIONS.join(", ")))?;
        out.push(*f);
    }
    Ok(out)
}

/// Validates `new`, generates a key and stores its hash. Returns the JSON object to
/// print (`key` included: the only time it is shown).
pub fn create_key(store: &dyn StateStore, new: &NewKey, now: i64) -> Result<Value, AdminError> {
    let v = |m: String| AdminError::Validation(m);
    let org = new.org.trim();
    if org.is_empty() || org.len() > 200 || org.chars().any(char::is_control) {
        return Err(v("--org must be 1 to 200 printable characters".into()));
    }
    let plan_name = new.plan.as_deref().unwrap_or("starter");
    let plan = Plan::parse(plan_name)
        .ok_or_else(|| v(format!("unknown plan '{plan_name}' (starter, professional, enterprise)")))?;
    let rpm = new.rpm.unwrap_or(plan.rpm());
    if rpm == 0 {
        return Err(v("--rpm must be at least 1".into()));
    }
    let monthly = match new.monthly {
        Some(0) => return Err(v("--monthly must be at least 1".into())),
        Some(n) => Some(n),
        None => plan.monthly(),
    };
    if new.identities == Some(0) {
        return Err(v("--identities must be at least 1".into()));
    }
    let (expires, expires_at) = match new.expires.as_deref() {
        None => (None, None),
        Some(text) => {
            let day = engine::parse_date(text).ok_or_else(|| v(format!("--expires '{text}' is not YYYY-MM-DD")))?;
            // Valid through the whole day (UTC).
            let at = engine::day_start(day) + 86_400;
            if at <= now {
                return Err(v(format!("--expires {text} is in the past")));
            }
            (Some(text.to_string()), Some(at))
        }
    };
    let allow_ip = match new.allow_ip.as_deref() {
        None => None,
        Some(list) => {
            let nets = parse_cidrs(list).map_err(|m| v(format!("--allow-ip: {m}")))?;
            if nets.is_empty() {
                return Err(v("--allow-ip is empty".into()));
            }
            Some(nets.iter().map(ToString::to_string).collect::<Vec<_>>().join(","))
        }
    };
    let functions = match new.functions.as_deref() {
        None => None,
        Some(list) => {
            let fs = parse_functions(list).map_err(|m| v(format!("--functions: {m}")))?;
            if fs.is_empty() {
                return Err(v("--functions is empty".into()));
            }
            Some(fs.join(","))
        }
    };
    let position = new.salt_position.as_deref().unwrap_or("right");
    if position != "left" && position != "right" {
        return Err(v(format!("--salt-position '{position}' must be left or right")));
    }
    engine::parse_policy(
        new.allow.as_deref(),
        new.hash_assets.as_deref(),
        new.output_salt.as_deref(),
        position == "left",
    )
    .map_err(|m| v(format!("asset policy: {m}")))?;

    let key = format!("{KEY_PREFIX}{}", random_hex(KEY_RANDOM_BYTES)?);
    let stored = StoredKey {
        id: format!("key_{}", random_hex(8)?),
        org: org.to_string(),
        name: new.name.clone(),
        key_hash: key_hash(&key),
        plan: plan.name().to_string(),
        rpm,
        monthly,
        expires,
        expires_at,
        allow_ip,
        functions,
        allow: new.allow.clone(),
        hash_assets: new.hash_assets.clone(),
        output_salt: new.output_salt.clone(),
        salt_position: position.to_string(),
        created_at: now,
        revoked_at: None,
        identities: new.identities,
    };
    store.insert_key(&stored, KeyLimits::default(), now)?;
    let mut out = key_json(&stored, now);
    if let Value::Object(map) = &mut out {
        map.insert("key".into(), Value::String(key));
    }
    Ok(out)
}

/// A key's public description (never the key).
pub fn key_json(k: &StoredKey, now: i64) -> Value {
    let status = if k.revoked_at.is_some() {
        "revoked"
    } else if k.expires_at.is_some_and(|at| at <= now) {
        "expired"
    } else {
        "active"
    };
    json!({
        "id": k.id,
        "org": k.org,
        "name": k.name,
        "plan": k.plan,
        "rate_limit_per_minute": k.rpm,
        "monthly_limit": k.monthly,
        "identity_limit": identity_limit(k),
        "expires": k.expires,
        "allow_ip": k.allow_ip.as_deref().map(|s| s.split(',').collect::<Vec<_>>()),
        "functions": k.functions.as_deref().map_or_else(|| FUNCTIONS.to_vec(), |s| s.split(',').collect()),
        "allow": k.allow,
        "hash_assets": k.hash_assets,
        "output_salt": k.output_salt,
        "salt_position": k.salt_position,
        "created_at": engine::rfc3339(k.created_at),
        "revoked_at": k.revoked_at.map(engine::rfc3339),
        "status": status,
    })
}

/// The active identities a key's organization may watch through it: the key's
/// `--identities`, else its plan's; `None`: unlimited.
pub fn identity_limit(k: &StoredKey) -> Option<u64> {
    k.identities.or_else(|| Plan::parse(&k.plan).map_or(Some(0), Plan::identities))
}

/// Opens the state database under `data_dir` (creating it on first use).
pub fn open_store(data_dir: &Path) -> Result<SqliteStore, AdminError> {
    Ok(SqliteStore::open(data_dir)?)
}

/// Every key (of one organization), as JSON objects.
pub fn list_keys(store: &dyn StateStore, org: Option<&str>, now: i64) -> Result<Vec<Value>, AdminError> {
    Ok(store.list_keys(org)?.iter().map(|k| key_json(k, now)).collect())
}

/// Revokes the key `id`; an error when there is none.
pub fn revoke_key(store: &dyn StateStore, id: &str, now: i64) -> Result<Value, AdminError> {
    if !store.revoke_key(id, now)? {
        return Err(AdminError::NotFound(id.to_string()));
    }
    Ok(json!({"id": id, "revoked": true}))
}

/// The request log from `since` (`YYYY-MM-DD`, UTC) on, of one organization, one JSON
/// object per row, oldest first.
pub fn logs(
    store: &dyn StateStore,
    since: Option<&str>,
    org: Option<&str>,
    each: &mut dyn FnMut(Value),
) -> Result<(), AdminError> {
    let since_ms = match since {
        None => 0,
        Some(text) => {
            let day = engine::parse_date(text)
                .ok_or_else(|| AdminError::Validation(format!("--since '{text}' is not YYYY-MM-DD")))?;
            engine::day_start(day) * 1000
        }
    };
    store.logs(since_ms, org, &mut |row: LogRow| each(log_json(&row)))?;
    Ok(())
}

fn log_json(row: &LogRow) -> Value {
    json!({
        "time": format!("{}.{:03}Z", engine::rfc3339(row.at_ms.div_euclid(1000)).trim_end_matches('Z'), row.at_ms.rem_euclid(1000)),
        "key_id": row.key_id.as_deref(),
        "org": row.org.as_deref(),
        "method": row.method,
        "route": row.route,
        "status": row.status,
        "client": row.client.map(|c| c.to_string()),
        "latency_ms": row.latency_us as f64 / 1000.0,
    })
}
