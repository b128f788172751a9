//! The one place that calls the breachdex library: opening and following the published
//! index, checks, records pages (with the API's filters and multi-identity paging),
//! the catalog, asset policies, dates and the clock. Everything else in the server
//! speaks the small types defined here, so a change of the library's API is a change
//! of this file only.

use breachdex::Date;
use breachdex::UnixTime;
use breachdex::{AssetPolicy, RecordOut, RecordsRequest, SaltPosition};
use breachdex::{Index, OpenOptions, Query};
use breachdex::{IndexHandle, Watcher};
use serde::Serialize;
use sha2::{Digest, Sha256};
use std::collections::{BTreeSet, HashMap};
use std::path::{Path, PathBuf};
use std::sync::{Arc, Mutex};
use std::time::Duration;

/// The library's monitoring types (SPEC §14: findings, their categories, risk), as the
/// scans and their store use them.
pub use breachdex::{Finding, FindingCategory, RiskAssessment, RiskCategories, RiskLevel, Severity, Trend};
/// The library's monitoring functions: an organization's risk from its identities', and
/// the recommendations of a risk.
pub use breachdex::{combine as combine_risks, recommendations};

/// The risk of an identity's findings at the Unix time `now` ([`breachdex::assess`]).
pub fn assess_findings(findings: &[Finding], now: i64) -> RiskAssessment {
    breachdex::assess(findings, Date::from_unix_seconds(now))
}

/// Initial capacity of a check result's JSON: a hit with three or four breaches fits.
const CHECK_JSON_CAPACITY: usize = 1024;

/// Most records one page of `breach-data` holds (the library's page size).
pub const PAGE_SIZE: usize = breachdex::MAX_PAGE;

/// Why the index could not be opened.
#[derive(Debug, thiserror::Error)]
pub enum EngineOpenError {
    /// The salt file cannot be read or is too short.
    #[error("salt file {path}: {message}")]
    Salt {
        /// The salt file.
        path: PathBuf,
        /// What is wrong with it.
        message: String,
    },
    /// The index cannot be opened.
    #[error("index {path}: {message}")]
    Open {
        /// The published index path.
        path: PathBuf,
        /// Why.
        message: String,
    },
}

/// An error of a query, as the API reports it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct EngineError {
    /// `validation_error`, `cursor_error` or `internal_error` (damage: the detail is logged,
    /// never sent).
    pub code: &'static str,
    /// One sentence for the client.
    pub message: String,
    /// The request field the error is about, when known.
    pub field: Option<&'static str>,
}

impl EngineError {
    /// From a lookup or records error: its `code()` and its message.
    fn from_query(code: &'static str, e: &dyn std::fmt::Display, field: &'static str) -> EngineError {
        match code {
            "cursor_error" => EngineError { code: "cursor_error", message: e.to_string(), field: Some("cursor") },
            "validation_error" => EngineError { code: "validation_error", message: e.to_string(), field: Some(field) },
            _ => EngineError { code: "internal_error", message: e.to_string(), field: None },
        }
    }

    fn validation(field: &'static str, message: impl Into<String>) -> EngineError {
        EngineError { code: "validation_error", message: message.into(), field: Some(field) }
    }
}

/// Asset names present in each source's records, by source id.
type DataTypes = HashMap<u32, Vec<&'static str>>;

/// The served index: a handle on the published path and its watcher thread.
pub struct Engine {
    handle: Arc<IndexHandle>,
    watcher: Mutex<Option<Watcher>>,
    /// Assets present per source, of the build with this id.
    data_types: Mutex<Option<(String, Arc<DataTypes>)>>,
    /// The Have I Been Pwned breach objects of the build with this id.
    hibp: Mutex<Option<(String, Arc<Vec<HibpBreach>>)>>,
}

impl std::fmt::Debug for Engine {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Engine").field("path", &self.handle.path()).finish_non_exhaustive()
    }
}

/// What `/api/v1/health/` tells about the index.
#[derive(Debug, Clone, Serialize)]
pub struct IndexSummary {
    /// Identifies what is served: the build id of a build, or the generation id of an
    /// index updated by `breachdex add`, `remove` or `compact`.
    pub build_id: String,
    /// The generation served: 1 for a build, one more for each update (SPEC §13).
    pub generation: u64,
    /// Records in it.
    pub records: u64,
    /// Its key hash mode.
    pub hash_mode: String,
}

/// One source of the catalog.
#[derive(Debug, Clone, Serialize)]
pub struct CatalogSource {
    /// Source id.
    pub id: u32,
    /// Slug.
    pub name: String,
    /// Title.
    pub title: String,
    /// Breach date.
    pub date: String,
    /// Description.
    pub description: String,
    /// When it was added.
    pub publish_date: String,
    /// Records of this source in the index.
    pub record_count: u64,
    /// Assets present in its records.
    pub data_types: Vec<&'static str>,
}

/// One source as a Have I Been Pwned breach object (SPEC §12), with HIBP's field names
/// and formats: dates `YYYY-MM-DD`, added and modified times `YYYY-MM-DDT00:00:00Z`.
#[derive(Debug, Clone, Serialize)]
#[serde(rename_all = "PascalCase")]
pub struct HibpBreach {
    /// The source's name (slug).
    pub name: String,
    /// Title.
    pub title: String,
    /// The breached site's domain; empty when the catalog gave none.
    pub domain: String,
    /// Breach date.
    pub breach_date: String,
    /// When it was added.
    pub added_date: String,
    /// When it was last modified.
    pub modified_date: String,
    /// Distinct identities of the source.
    pub pwn_count: u64,
    /// Description.
    pub description: String,
    /// Data classes, sorted.
    pub data_classes: Vec<String>,
    /// Verified.
    pub is_verified: bool,
    /// Fabricated.
    pub is_fabricated: bool,
    /// Sensitive.
    pub is_sensitive: bool,
    /// Retired.
    pub is_retired: bool,
    /// A spam list.
    pub is_spam_list: bool,
    /// From malware.
    pub is_malware: bool,
    /// Always `false`: breachdex has no subscription-free tier.
    pub is_subscription_free: bool,
    /// A stealer log.
    pub is_stealer_log: bool,
    /// URL or path of the logo; empty when the catalog gave none.
    pub logo_path: String,
}

/// The filters and paging of a `breach-data` request, validated.
#[derive(Debug, Clone, Default)]
pub struct RecordFilter {
    /// Only records published on or after this day.
    pub since: Option<Date>,
    /// Only records published on or before this day.
    pub until: Option<Date>,
    /// Only records of breaches whose match severity (as `breach-check` reports it) is
    /// one of these scores.
    pub severity: Option<BTreeSet<u8>>,
    /// Only records of these sources.
    pub source_ids: Option<BTreeSet<u32>>,
}

impl RecordFilter {
    fn is_empty(&self) -> bool {
        self.since.is_none() && self.until.is_none() && self.severity.is_none() && self.source_ids.is_none()
    }

    fn canonical(&self) -> String {
        format!("{:?}|{:?}|{:?}|{:?}", self.since, self.until, self.severity, self.source_ids)
    }
}

/// A source a new generation gave to watched identifiers.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct SourceRef {
    /// Source id.
    pub id: u32,
    /// Slug.
    pub name: String,
    /// Title.
    pub title: String,
    /// Breach date.
    pub breach_date: String,
    /// When it was added.
    pub publish_date: String,
}

/// What the generations after one brought to watched keys ([`Engine::new_breaches`]).
#[derive(Debug, Clone, Default)]
pub struct NewBreaches {
    /// The generation read (the newest of the snapshot).
    pub generation: u64,
    /// Its hash mode.
    pub hash_mode: String,
    /// One hit per (watcher, source), as [`breachdex::WatchList::match_changes`] gives them.
    pub hits: Vec<breachdex::WatchHit>,
    /// The sources of the hits.
    pub sources: HashMap<u32, SourceRef>,
}

/// Which identifier kind a `breach-data` route names.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum IdentityKind {
    /// E-mail addresses.
    Email,
    /// Usernames.
    Username,
}

/// Parses `YYYY-MM-DD`.
pub fn parse_date(text: &str) -> Option<Date> {
    text.parse().ok()
}

/// The Unix time now, in seconds.
pub fn now_unix() -> i64 {
    breachdex::now_unix_seconds()
}

/// The Unix time now, in milliseconds.
pub fn now_unix_millis() -> i64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map_or(0, |d| i64::try_from(d.as_millis()).unwrap_or(i64::MAX))
}

/// RFC 3339 UTC text of a Unix time.
pub fn rfc3339(unix: i64) -> String {
    breachdex::rfc3339_utc(unix)
}

/// `YYYY-MM-DD` of a Unix time (UTC).
pub fn day_text(unix: i64) -> String {
    Date::from_unix_seconds(unix).to_string()
}

/// Unix seconds at 00:00 UTC of a date.
pub fn day_start(date: Date) -> i64 {
    i64::from(date.days()) * 86_400
}

/// The calendar month (UTC) of a Unix time as `(year, month)`, and the Unix time at
/// which the next month starts.
pub fn month_of(unix: i64) -> ((i32, u32), i64) {
    let (y, m, _) = Date::from_unix_seconds(unix).ymd();
    let (ny, nm) = if m == 12 { (y + 1, 1) } else { (y, m + 1) };
    let next = Date::from_ymd(ny, nm, 1).map_or(unix + 31 * 86_400, day_start);
    ((y, m), next)
}

/// A validated asset policy, from the `keys create` flags.
pub fn parse_policy(
    allow: Option<&str>,
    hash_assets: Option<&str>,
    output_salt: Option<&str>,
    salt_left: bool,
) -> Result<AssetPolicy, String> {
    let position = if salt_left { SaltPosition::Left } else { SaltPosition::Right };
    AssetPolicy::parse(allow, hash_assets, output_salt, position).map_err(|e| e.to_string())
}

/// Checks that a per-request output salt has the length the library accepts.
pub fn check_output_salt(salt: &str) -> Result<(), String> {
    let chars = salt.chars().count();
    let (min, max) = (breachdex::MIN_SALT_CHARS, breachdex::MAX_SALT_CHARS);
    if (min..=max).contains(&chars) {
        Ok(())
    } else {
        Err(format!("the salt is {chars} characters long; it must be {min} to {max} characters"))
    }
}

/// The asset policy type keys carry.
pub type Policy = AssetPolicy;

impl Engine {
    /// Opens the index published at `path` (a directory or a symlink) and starts a
    /// watcher that swaps in a new build published there within `poll`.
    pub fn open(path: &Path, salt_file: Option<&Path>, poll: Duration) -> Result<Engine, EngineOpenError> {
        let mut options = OpenOptions::default();
        if let Some(salt_path) = salt_file {
            let salt = breachdex::Salt::from_file(salt_path)
                .map_err(|e| EngineOpenError::Salt { path: salt_path.to_path_buf(), message: e.to_string() })?;
            options = OpenOptions::with_salt(salt);
        }
        let handle = IndexHandle::open(path, options)
            .map_err(|e| EngineOpenError::Open { path: path.to_path_buf(), message: e.to_string() })?;
        let handle = Arc::new(handle);
        let watcher = handle.watch(poll);
        Ok(Engine { handle, watcher: Mutex::new(Some(watcher)), data_types: Mutex::new(None), hibp: Mutex::new(None) })
    }

    /// Stops the watcher thread (joins it).
    pub fn stop_watching(&self) {
        let watcher = self.watcher.lock().unwrap_or_else(|e| e.into_inner()).take();
        drop(watcher);
    }

    /// The latest error of the watcher (a publication that could not be opened).
    pub fn watch_error(&self) -> Option<String> {
        self.watcher.lock().unwrap_or_else(|e| e.into_inner()).as_ref().and_then(Watcher::last_error)
    }

    /// The current build, for one request.
    fn current(&self) -> Index {
        self.handle.current()
    }

    /// Build id, record count and hash mode of the current build.
    pub fn summary(&self) -> IndexSummary {
        let index = self.current();
        IndexSummary {
            build_id: index.generation_id().to_string(),
            generation: index.generation(),
            records: index.len(),
            hash_mode: index.hash_mode().to_string(),
        }
    }

    /// A breach check of an e-mail or a username, as JSON bytes (SPEC §7).
    pub fn check_json(&self, kind: IdentityKind, text: &str, now: i64) -> Result<Vec<u8>, EngineError> {
        let index = self.current();
        let (query, field) = match kind {
            IdentityKind::Email => (Query::Email(text), "email"),
            IdentityKind::Username => (Query::Username(text), "username"),
        };
        let result = index
            .check(&query, UnixTime::from_seconds(now))
            .map_err(|e| EngineError::from_query(e.code(), &e, field))?;
        // Sized for a result with a few breaches, so that serializing rarely grows it.
        let mut bytes = Vec::with_capacity(CHECK_JSON_CAPACITY);
        serde_json::to_writer(&mut bytes, &result).map_err(|e| EngineError {
            code: "internal_error",
            message: e.to_string(),
            field: None,
        })?;
        Ok(bytes)
    }

    /// The findings of a scan (SPEC §14): each e-mail, then each username, checked in
    /// the current generation, one [`breachdex::Finding`] per breach, in that order.
    /// `progress(done)` is called after each identifier, and the thread yields there so
    /// that a long scan does not hold a core. Returns the generation id with the
    /// findings.
    pub fn scan_findings(
        &self,
        emails: &[String],
        usernames: &[String],
        progress: &dyn Fn(usize),
    ) -> Result<(String, Vec<breachdex::Finding>), EngineError> {
        let index = self.current();
        let mut findings = Vec::new();
        let identifiers = emails
            .iter()
            .map(|e| (Query::Email(e), "email", e))
            .chain(usernames.iter().map(|u| (Query::Username(u), "username", u)));
        for (done, (query, field, text)) in identifiers.enumerate() {
            // The check time only moves the check's own risk score, which a finding omits.
            let result = index
                .check(&query, UnixTime::from_seconds(0))
                .map_err(|e| EngineError::from_query(e.code(), &e, field))?;
            findings.extend(breachdex::findings_of_check(text, &result));
            progress(done + 1);
            std::thread::yield_now();
        }
        Ok((index.generation_id().to_string(), findings))
    }

    /// The current build's derived key of an e-mail or a username (§4's normalization,
    /// then §5's key: the normalized identifier in `plain` mode, its salted hash
    /// otherwise) and the build's hash mode. `Err`: the identifier is invalid (the
    /// message says why).
    pub fn derived_key(&self, kind: IdentityKind, text: &str) -> Result<(Vec<u8>, String), String> {
        let index = self.current();
        let query = match kind {
            IdentityKind::Email => Query::Email(text),
            IdentityKind::Username => Query::Username(text),
        };
        let (_, key) = index.query_key(&query).map_err(|e| e.to_string())?;
        Ok((key, index.hash_mode().to_string()))
    }

    /// The generation served now and its hash mode.
    pub fn generation(&self) -> (u64, String) {
        let index = self.current();
        (index.generation(), index.hash_mode().to_string())
    }

    /// The watched keys of `watch` that gained a source in the generations after
    /// `since`, read from one snapshot of the served index (its change feed, SPEC §13).
    /// Nothing when `since` is the served generation or later.
    pub fn new_breaches(&self, since: u64, watch: &breachdex::WatchList) -> Result<NewBreaches, String> {
        let index = self.current();
        let mut out = NewBreaches {
            generation: index.generation(),
            hash_mode: index.hash_mode().to_string(),
            ..NewBreaches::default()
        };
        if since == 0 || since >= out.generation || watch.is_empty() {
            return Ok(out);
        }
        let changes = index.changes(since).map_err(|e| e.to_string())?;
        out.hits = watch.match_changes(&changes);
        for hit in &out.hits {
            if out.sources.contains_key(&hit.source_id) {
                continue;
            }
            let source = match index.source(hit.source_id) {
                Some(s) => SourceRef {
                    id: s.id,
                    name: s.name.clone(),
                    title: s.title.clone(),
                    breach_date: s.date.to_string(),
                    publish_date: s.publish_date.to_string(),
                },
                // Gained and already removed again in a later generation: the name only.
                None => SourceRef {
                    id: hit.source_id,
                    name: index.source_name(hit.source_id).unwrap_or_default().to_string(),
                    title: String::new(),
                    breach_date: String::new(),
                    publish_date: String::new(),
                },
            };
            out.sources.insert(hit.source_id, source);
        }
        Ok(out)
    }

    /// The Pwned Passwords range of a 5-hex-digit prefix (any case) in the current
    /// build, as the body of `/range/{prefix}`: `SUFFIX:COUNT\r\n` lines of the SHA-1
    /// hashes (or NTLM with `ntlm`), padded with count-0 lines to 800-1,000 lines when a
    /// `padding_seed` is given. `Ok(None)`: the build has no password index.
    pub fn password_range(
        &self,
        prefix: &str,
        ntlm: bool,
        padding_seed: Option<u64>,
    ) -> Result<Option<Vec<u8>>, EngineError> {
        let prefix =
            breachdex::PasswordPrefix::from_hex(prefix).map_err(|e| EngineError::from_query(e.code(), &e, "prefix"))?;
        let index = self.current();
        let Some(passwords) = index.passwords() else { return Ok(None) };
        let kind = if ntlm { breachdex::PasswordHashKind::Ntlm } else { breachdex::PasswordHashKind::Sha1 };
        let mut body = Vec::new();
        passwords
            .write_range_text(kind, prefix, padding_seed, &mut body)
            .map_err(|e| EngineError::from_query(e.code(), &e, "prefix"))?;
        Ok(Some(body))
    }

    /// The sources of the current build, ascending by id. Data types are computed once
    /// per build (one pass over the rows) and cached.
    pub fn catalog(&self) -> Result<Vec<CatalogSource>, EngineError> {
        let index = self.current();
        let types = self.data_types(&index)?;
        Ok(index
            .sources()
            .iter()
            .map(|s| CatalogSource {
                id: s.id,
                name: s.name.clone(),
                title: s.title.clone(),
                date: s.date.to_string(),
                description: s.description.clone(),
                publish_date: s.publish_date.to_string(),
                record_count: s.records,
                data_types: types.get(&s.id).cloned().unwrap_or_default(),
            })
            .collect())
    }

    /// Every source of the current build as a Have I Been Pwned breach object, ascending
    /// by source id; computed once per build and cached. Data classes come from the index
    /// (the catalog's, else derived from the assets); an index built before assets were
    /// recorded gets them from one pass over its rows.
    pub fn hibp_breaches(&self) -> Result<Arc<Vec<HibpBreach>>, EngineError> {
        self.hibp_breaches_of(&self.current())
    }

    fn hibp_breaches_of(&self, index: &Index) -> Result<Arc<Vec<HibpBreach>>, EngineError> {
        let build_id = index.content_id();
        if let Some((id, breaches)) = &*self.hibp.lock().unwrap_or_else(|e| e.into_inner())
            && id.as_str() == build_id
        {
            return Ok(Arc::clone(breaches));
        }
        let scanned =
            if index.sources().iter().any(|s| s.data_classes.is_none()) { Some(self.asset_sets(index)?) } else { None };
        let iso = |d: Date| format!("{d}T00:00:00Z");
        let breaches: Vec<HibpBreach> = index
            .sources()
            .iter()
            .map(|s| HibpBreach {
                name: s.name.clone(),
                title: s.title.clone(),
                domain: s.domain.clone().unwrap_or_default(),
                breach_date: s.date.to_string(),
                added_date: iso(s.added_date),
                modified_date: iso(s.modified_date),
                pwn_count: s.pwn_count,
                description: s.description.clone(),
                data_classes: s.data_classes.clone().unwrap_or_else(|| {
                    let assets = scanned.as_ref().and_then(|m| m.get(&s.id)).copied().unwrap_or_default();
                    breachdex::data_classes_of(assets).into_iter().map(str::to_owned).collect()
                }),
                is_verified: s.verified,
                is_fabricated: s.fabricated,
                is_sensitive: s.sensitive,
                is_retired: s.retired,
                is_spam_list: s.spam_list,
                is_malware: s.malware,
                is_subscription_free: false,
                is_stealer_log: s.stealer_log,
                logo_path: s.logo_path.clone().unwrap_or_default(),
            })
            .collect();
        let breaches = Arc::new(breaches);
        *self.hibp.lock().unwrap_or_else(|e| e.into_inner()) = Some((build_id.to_string(), Arc::clone(&breaches)));
        Ok(breaches)
    }

    /// The names of the sources in which an e-mail (text with `@`) or a username appears,
    /// with the breach objects of the same build. An invalid identifier is a
    /// `validation_error`.
    pub fn hibp_account(&self, account: &str) -> Result<(Vec<String>, Arc<Vec<HibpBreach>>), EngineError> {
        let index = self.current();
        let (query, field) = if account.contains('@') {
            (Query::Email(account), "email")
        } else {
            (Query::Username(account), "username")
        };
        let matches = index.lookup(&query).map_err(|e| EngineError::from_query(e.code(), &e, field))?;
        let mut ids: Vec<u32> = Vec::new();
        for row_id in matches {
            let row = index.row_meta(row_id).map_err(|e| EngineError::from_query(e.code(), &e, field))?;
            ids.push(row.source_id);
        }
        ids.sort_unstable();
        ids.dedup();
        let names = ids.iter().filter_map(|id| index.source(*id)).map(|s| s.name.clone()).collect();
        Ok((names, self.hibp_breaches_of(&index)?))
    }

    /// Assets present per source: from the manifest, or one pass over the rows of an
    /// index built before the manifest recorded them.
    fn asset_sets(&self, index: &Index) -> Result<HashMap<u32, breachdex::AssetSet>, EngineError> {
        if index.sources().iter().all(|s| s.assets.is_some()) {
            return Ok(index.sources().iter().map(|s| (s.id, s.assets.unwrap_or_default())).collect());
        }
        let mut sets: HashMap<u32, breachdex::AssetSet> = HashMap::new();
        for row_id in 0..index.len() {
            let row = index.row_meta(row_id).map_err(|e| EngineError::from_query(e.code(), &e, "index"))?;
            let set = sets.entry(row.source_id).or_insert(breachdex::AssetSet::EMPTY);
            *set = set.union(row.assets);
        }
        Ok(sets)
    }

    fn data_types(&self, index: &Index) -> Result<Arc<DataTypes>, EngineError> {
        let build_id = index.content_id();
        if let Some((id, types)) = &*self.data_types.lock().unwrap_or_else(|e| e.into_inner())
            && id.as_str() == build_id
        {
            return Ok(Arc::clone(types));
        }
        let sets = self.asset_sets(index)?;
        let types: DataTypes =
            sets.into_iter().map(|(id, set)| (id, set.iter().map(breachdex::Asset::name).collect())).collect();
        let types = Arc::new(types);
        *self.data_types.lock().unwrap_or_else(|e| e.into_inner()) = Some((build_id.to_string(), Arc::clone(&types)));
        Ok(types)
    }

    /// One page of records of one or more identities, under `policy`, filtered, as JSON
    /// bytes `{"hits", "cursor", "results"}` (SPEC §7, §11).
    ///
    /// Records come identity by identity in the order given, each identity's in the
    /// library's order (source id, then document id). Without filters `hits` is the sum of
    /// the identities' records; with filters, of those that pass. The cursor is
    /// `IDX.LIBCURSOR.TAG`: the identity to resume at, the library's cursor within it
    /// (bound to that identity, the policy, the output salt and the build), and a tag
    /// binding both to the whole request (every identity and the filters), so a cursor of
    /// another request is an error, never wrong data.
    pub fn records_json(
        &self,
        kind: IdentityKind,
        identities: &[&str],
        policy: &AssetPolicy,
        salt: Option<&str>,
        filter: &RecordFilter,
        cursor: Option<&str>,
    ) -> Result<Vec<u8>, EngineError> {
        let index = self.current();
        let field = match kind {
            IdentityKind::Email => "email",
            IdentityKind::Username => "username",
        };
        let query_of = |text| match kind {
            IdentityKind::Email => Query::Email(text),
            IdentityKind::Username => Query::Username(text),
        };
        let binding = request_binding(kind, identities, filter, salt, index.content_id());
        let (start_identity, mut start_cursor) = match cursor.filter(|c| !c.is_empty()) {
            Some(c) => decode_cursor(c, &binding, identities.len())?,
            None => (0, String::new()),
        };

        let mut hits: u64 = 0;
        let mut passes_of = Vec::with_capacity(identities.len());
        for text in identities {
            let query = query_of(text);
            let severities = match &filter.severity {
                Some(wanted) => Some(source_severities(&index, &query, wanted, field)?),
                None => None,
            };
            let passes = move |source_id: u32, publish: Date| {
                filter.since.is_none_or(|d| publish >= d)
                    && filter.until.is_none_or(|d| publish <= d)
                    && filter.source_ids.as_ref().is_none_or(|ids| ids.contains(&source_id))
                    && severities.as_ref().is_none_or(|ids| ids.contains(&source_id))
            };
            hits += count_hits(&index, &query, policy, salt, filter, &passes, field)?;
            passes_of.push(passes);
        }

        let mut results: Vec<RecordOut<'_>> = Vec::new();
        let mut next: Option<String> = None;
        'identities: for (i, (text, passes)) in identities.iter().zip(&passes_of).enumerate().skip(start_identity) {
            let query = query_of(text);
            let mut lib_cursor = if i == start_identity { std::mem::take(&mut start_cursor) } else { String::new() };
            loop {
                let c = Some(&lib_cursor).filter(|c| !c.is_empty()).map(String::as_str);
                let page = index
                    .records(&request(query, policy, c, None, salt))
                    .map_err(|e| EngineError::from_query(e.code(), &e, field))?;
                for (j, record) in page.results.into_iter().enumerate() {
                    if !passes(record.source_id, record.publish_date) {
                        continue;
                    }
                    if results.len() >= PAGE_SIZE {
                        // More remain: the next page starts at this record. The library's
                        // cursor for it is the one ending a page of `j` records from `c`.
                        let resume = if j == 0 {
                            lib_cursor.clone()
                        } else {
                            index
                                .records(&request(query, policy, c, Some(j), salt))
                                .map_err(|e| EngineError::from_query(e.code(), &e, field))?
                                .cursor
                        };
                        next = Some(encode_cursor(i, &resume, &binding));
                        break 'identities;
                    }
                    results.push(record);
                }
                if page.cursor.is_empty() {
                    break;
                }
                lib_cursor = page.cursor;
            }
        }
        #[derive(Serialize)]
        struct Page<'a> {
            hits: u64,
            cursor: String,
            results: Vec<RecordOut<'a>>,
        }
        let page = Page { hits, cursor: next.unwrap_or_default(), results };
        serde_json::to_vec(&page).map_err(|e| EngineError {
            code: "internal_error",
            message: e.to_string(),
            field: None,
        })
    }
}

/// Records of one identity that pass the filter (or all of them without a filter).
fn count_hits(
    index: &Index,
    query: &Query<'_>,
    policy: &AssetPolicy,
    salt: Option<&str>,
    filter: &RecordFilter,
    passes: &dyn Fn(u32, Date) -> bool,
    field: &'static str,
) -> Result<u64, EngineError> {
    let mut cursor = String::new();
    let mut hits = 0;
    // Without a filter the first page's `hits` is the answer: ask for one record.
    let limit = if filter.is_empty() { Some(1) } else { None };
    loop {
        let c = Some(&cursor).filter(|c| !c.is_empty()).map(String::as_str);
        let page = index
            .records(&request(*query, policy, c, limit, salt))
            .map_err(|e| EngineError::from_query(e.code(), &e, field))?;
        if filter.is_empty() {
            return Ok(page.hits);
        }
        hits += page.results.iter().filter(|r| passes(r.source_id, r.publish_date)).count() as u64;
        if page.cursor.is_empty() {
            return Ok(hits);
        }
        cursor = page.cursor;
    }
}

/// One `records` call of the library.
fn request<'r>(
    query: Query<'r>,
    policy: &'r AssetPolicy,
    cursor: Option<&'r str>,
    limit: Option<usize>,
    output_salt: Option<&'r str>,
) -> RecordsRequest<'r> {
    RecordsRequest { cursor, limit, output_salt, ..RecordsRequest::new(query, policy) }
}

/// Sources whose match severity for this identity is one of `wanted`.
fn source_severities(
    index: &Index,
    query: &Query<'_>,
    wanted: &BTreeSet<u8>,
    field: &'static str,
) -> Result<BTreeSet<u32>, EngineError> {
    let check =
        index.check(query, UnixTime::from_seconds(0)).map_err(|e| EngineError::from_query(e.code(), &e, field))?;
    Ok(check.breaches.iter().filter(|b| wanted.contains(&b.severity_score)).map(|b| b.source_id).collect())
}

fn request_binding(
    kind: IdentityKind,
    identities: &[&str],
    filter: &RecordFilter,
    salt: Option<&str>,
    build_id: &str,
) -> [u8; 32] {
    let mut h = Sha256::new();
    h.update(b"breachdex-server-records-cursor-v1\0");
    h.update([kind as u8]);
    h.update((identities.len() as u64).to_le_bytes());
    for text in identities {
        h.update((text.len() as u64).to_le_bytes());
        h.update(text.as_bytes());
    }
    let filter = filter.canonical();
    h.update((filter.len() as u64).to_le_bytes());
    h.update(filter.as_bytes());
    match salt {
        Some(s) => {
            h.update([1]);
            h.update((s.len() as u64).to_le_bytes());
            h.update(s.as_bytes());
        }
        None => h.update([0]),
    }
    h.update(build_id.as_bytes());
    h.finalize().into()
}

fn tag(identity: usize, lib_cursor: &str, binding: &[u8; 32]) -> String {
    let mut h = Sha256::new();
    h.update(binding);
    h.update((identity as u64).to_le_bytes());
    h.update(lib_cursor.as_bytes());
    let digest = h.finalize();
    digest.iter().take(8).map(|b| format!("{b:02x}")).collect()
}

fn encode_cursor(identity: usize, lib_cursor: &str, binding: &[u8; 32]) -> String {
    format!("{identity}.{lib_cursor}.{}", tag(identity, lib_cursor, binding))
}

fn decode_cursor(cursor: &str, binding: &[u8; 32], identities: usize) -> Result<(usize, String), EngineError> {
    let bad = |why: &str| EngineError {
        code: "cursor_error",
        message: format!("invalid cursor: {why}; start again without a cursor"),
        field: Some("cursor"),
    };
    let mut parts = cursor.split('.');
    let (Some(idx), Some(lib), Some(given), None) = (parts.next(), parts.next(), parts.next(), parts.next()) else {
        return Err(bad("not a breach-data cursor"));
    };
    let identity: usize = idx.parse().map_err(|_| bad("not a breach-data cursor"))?;
    if identity >= identities {
        return Err(bad("not a breach-data cursor"));
    }
    let expected = tag(identity, lib, binding);
    // Not a secret, so no constant-time compare is needed.
    if expected != given {
        return Err(bad("it belongs to another query, policy, salt, filter or index build"));
    }
    Ok((identity, lib.to_string()))
}

/// Validates a severity list parameter (`2,5,20,25`).
pub fn parse_severity_list(text: &str) -> Result<BTreeSet<u8>, EngineError> {
    let mut set = BTreeSet::new();
    for part in text.split(',').map(str::trim) {
        match part.parse::<u8>() {
            Ok(score @ (2 | 5 | 20 | 25)) => {
                set.insert(score);
            }
            _ => {
                return Err(EngineError::validation(
                    "severity",
                    format!("severity '{part}' is not one of 2, 5, 20, 25 (a comma list)"),
                ));
            }
        }
    }
    Ok(set)
}
