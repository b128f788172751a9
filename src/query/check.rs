//! `check`: which breaches an identity appears in, how severe each is, and one risk
//! figure for the whole (SPEC §6, §7).
//!
//! # Risk formula
//!
//! For each matched breach `i` with severity score `sᵢ` (2, 5, 20 or 25) and age
//! `aᵢ` in years between its breach date and the check time (0 when in the future):
//!
//! ```text
//! recencyᵢ = 0.5 + 0.5 · exp(−aᵢ / 4)          (1 when new, halving its weight over time)
//! pᵢ       = 0.7 · (sᵢ / 25) · recencyᵢ         (0.7 at most for one fresh critical breach)
//! risk_score = round(100 · (1 − Π (1 − pᵢ)))    (breaches combine like independent risks)
//! ```
//!
//! `risk_level` is `none` with no breach, else `low` below 25, `medium` below 50,
//! `high` below 75, `critical` from 75. One high-severity breach 2.7 years old scores
//! 42 (medium); two fresh critical breaches score 91. The formula is deterministic for
//! a given check time.

use crate::asset::AssetSet;
use crate::date::{Date, UnixTime};
use crate::index::{Index, LookupError, Matches, Query};
use crate::severity::Severity;
use rayon::prelude::*;
use serde::{Serialize, Serializer};

/// Queries per task of [`Index::check_batch_par`]: large enough that scheduling costs
/// nothing next to the work, small enough to balance the threads.
const PAR_CHUNK: usize = 256;

/// Overall risk of an identity.
#[derive(Copy, Clone, Debug, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize)]
#[serde(rename_all = "lowercase")]
pub enum RiskLevel {
    /// No breach.
    None,
    /// Score below 25.
    Low,
    /// Score 25 to 49.
    Medium,
    /// Score 50 to 74.
    High,
    /// Score 75 and above.
    Critical,
}

impl RiskLevel {
    /// The level of a score, given whether anything matched.
    pub fn of(score: u8, matched: bool) -> RiskLevel {
        match (matched, score) {
            (false, _) => RiskLevel::None,
            (_, 0..=24) => RiskLevel::Low,
            (_, 25..=49) => RiskLevel::Medium,
            (_, 50..=74) => RiskLevel::High,
            _ => RiskLevel::Critical,
        }
    }
}

/// The risk score (0-100) of breaches given as (severity, breach date), checked at
/// `as_of`. See the module docs for the formula.
pub fn risk_score(breaches: impl IntoIterator<Item = (Severity, Date)>, as_of: Date) -> u8 {
    let mut clean = 1.0f64;
    for (severity, date) in breaches {
        let age_years = (date.days_until(as_of).max(0) as f64) / 365.25;
        let recency = 0.5 + 0.5 * (-age_years / 4.0).exp();
        let p = 0.7 * (severity.score() as f64 / 25.0) * recency;
        clean *= 1.0 - p.clamp(0.0, 1.0);
    }
    (100.0 * (1.0 - clean)).round().clamp(0.0, 100.0) as u8
}

fn serialize_assets<S: Serializer>(set: &AssetSet, s: S) -> Result<S::Ok, S::Error> {
    s.collect_seq(set.iter().map(|a| a.name()))
}

fn serialize_date<S: Serializer>(d: &Date, s: S) -> Result<S::Ok, S::Error> {
    s.collect_str(d)
}

/// One breach an identity appears in. Borrows its texts from the index.
#[derive(Clone, Debug, PartialEq, Eq, Serialize)]
pub struct BreachMatch<'a> {
    /// Source slug.
    pub source: &'a str,
    /// Source id.
    pub source_id: u32,
    /// Title.
    pub title: &'a str,
    /// Breach date.
    #[serde(serialize_with = "serialize_date")]
    pub date: Date,
    /// Assets present in this identity's matched records of the source.
    #[serde(serialize_with = "serialize_assets")]
    pub data_types: AssetSet,
    /// Highest severity among the matched records.
    pub severity: Severity,
    /// Its numeric score.
    pub severity_score: u8,
    /// Matched records in this source.
    pub records: u64,
    /// Description.
    pub description: &'a str,
}

/// The result of a check (SPEC §7).
#[derive(Clone, Debug, PartialEq, Eq, Serialize)]
pub struct CheckResult<'a> {
    /// The query as given.
    pub checked: &'a str,
    /// `email`, `username` or `key`.
    pub kind: &'static str,
    /// Number of breaches.
    pub total_breaches: usize,
    /// Breaches, by severity, then date (newest first), then source name.
    pub breaches: Vec<BreachMatch<'a>>,
    /// Risk level.
    pub risk_level: RiskLevel,
    /// Risk score 0-100.
    pub risk_score: u8,
    /// When the check ran (RFC 3339 UTC in JSON).
    pub checked_at: UnixTime,
}

impl Index {
    /// Checks one identity at time `now` (usually [`UnixTime::now`]; a fixed time makes
    /// risk scores reproducible).
    ///
    /// ```no_run
    /// # use breachdex::UnixTime;
    /// # use breachdex::{Index, OpenOptions, Query};
    /// # fn main() -> Result<(), Box<dyn std::error::Error>> {
    /// let index = Index::open(std::path::Path::new("sample-index"), &OpenOptions::default())?;
    /// let result = index.check(&Query::Email("user@example.com"), UnixTime::now())?;
    /// println!("{} breaches, risk {}", result.total_breaches, result.risk_score);
    /// # Ok(())
    /// # }
    /// ```
    pub fn check<'a>(&'a self, query: &Query<'a>, now: UnixTime) -> Result<CheckResult<'a>, LookupError> {
        let matches = self.lookup(query)?;
        self.check_matches(query, matches, now)
    }

    /// Checks every query at time `now`, in order: the same results as [`Index::check`]
    /// on each query in turn (same breaches, scores and errors), but faster on many
    /// queries because the memory reads of several queries at a time overlap (see
    /// [`Index::lookup_batch`]). Runs on the calling thread; see
    /// [`Index::check_batch_par`] for several threads.
    ///
    /// ```no_run
    /// # use breachdex::UnixTime;
    /// # use breachdex::{Index, OpenOptions, Query};
    /// # fn main() -> Result<(), Box<dyn std::error::Error>> {
    /// let index = Index::open(std::path::Path::new("sample-index"), &OpenOptions::default())?;
    /// let queries = [Query::Email("user@example.com"), Query::Username("bob_99")];
    /// for result in index.check_batch(&queries, UnixTime::now()) {
    ///     match result {
    ///         Ok(r) => println!("{}: {} breaches, risk {}", r.checked, r.total_breaches, r.risk_score),
    ///         Err(e) => println!("{e}"),
    ///     }
    /// }
    /// # Ok(())
    /// # }
    /// ```
    pub fn check_batch<'a>(
        &'a self,
        queries: &[Query<'a>],
        now: UnixTime,
    ) -> Vec<Result<CheckResult<'a>, LookupError>> {
        let mut out = Vec::with_capacity(queries.len());
        self.lookup_groups(queries, |query, found| out.push(found.and_then(|m| self.check_matches(query, m, now))));
        out
    }

    /// [`Index::check_batch`] on the current rayon thread pool: the queries are split
    /// into chunks of a few hundred, checked in parallel, and the results returned in
    /// input order. The thread count is the pool's: run it inside
    /// `rayon::ThreadPool::install` to choose it (the global pool has one thread per
    /// core).
    pub fn check_batch_par<'a>(
        &'a self,
        queries: &[Query<'a>],
        now: UnixTime,
    ) -> Vec<Result<CheckResult<'a>, LookupError>> {
        if queries.len() <= PAR_CHUNK {
            return self.check_batch(queries, now);
        }
        let parts: Vec<Vec<_>> = queries.par_chunks(PAR_CHUNK).map(|chunk| self.check_batch(chunk, now)).collect();
        let mut out = Vec::with_capacity(queries.len());
        for part in parts {
            out.extend(part);
        }
        out
    }

    /// The result of a check whose lookup (`self.lookup(query)`) gave `matches`: reads
    /// the matched rows and groups them by breach. Shared by [`Index::check`] and the
    /// batch path ([`Index::check_batch`]), so both give the same results.
    pub(crate) fn check_matches<'a>(
        &'a self,
        query: &Query<'a>,
        matches: Matches<'a>,
        now: UnixTime,
    ) -> Result<CheckResult<'a>, LookupError> {
        let contiguous = matches.is_contiguous();
        let mut breaches: Vec<BreachMatch<'a>> = Vec::new();
        self.for_each_row_source(matches, |source, assets, severity| {
            // E-mail runs are sorted by source, so the current match is the last one;
            // username postings are not, so search the (few) matches so far.
            let pos = if contiguous {
                breaches.last().filter(|b| b.source_id == source.id).map(|_| breaches.len() - 1)
            } else {
                breaches.iter().position(|b| b.source_id == source.id)
            };
            match pos {
                Some(i) => {
                    let b = &mut breaches[i];
                    b.records += 1;
                    b.data_types = b.data_types.union(assets);
                    if severity > b.severity {
                        b.severity = severity;
                        b.severity_score = severity.score();
                    }
                }
                None => {
                    breaches.push(BreachMatch {
                        source: &source.name,
                        source_id: source.id,
                        title: &source.title,
                        date: source.date,
                        data_types: assets,
                        severity,
                        severity_score: severity.score(),
                        records: 1,
                        description: &source.description,
                    });
                }
            }
        })?;
        breaches
            .sort_by(|a, b| b.severity.cmp(&a.severity).then(b.date.cmp(&a.date)).then_with(|| a.source.cmp(b.source)));
        let score = risk_score(breaches.iter().map(|b| (b.severity, b.date)), now.date());
        Ok(CheckResult {
            checked: query.text(),
            kind: query.kind_name(),
            total_breaches: breaches.len(),
            risk_level: RiskLevel::of(score, !breaches.is_empty()),
            risk_score: score,
            breaches,
            checked_at: now,
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn d(s: &str) -> Date {
        s.parse().unwrap()
    }

    #[test]
    fn spec_example_scores_42_medium() {
        let score = risk_score([(Severity::High, d("2024-03-15"))], d("2026-11-23"));
        assert_eq!(score, 42);
        assert_eq!(RiskLevel::of(score, true), RiskLevel::Medium);
    }

    #[test]
    fn risk_grows_with_severity_count_and_recency() {
        let now = d("2026-11-23");
        let one = |s, date| risk_score([(s, d(date))], now);
        assert_eq!(risk_score([], now), 0);
        assert_eq!(RiskLevel::of(0, false), RiskLevel::None);
        assert!(one(Severity::Low, "2026-01-01") < one(Severity::Medium, "2026-01-01"));
        assert!(one(Severity::High, "2026-01-01") < one(Severity::Critical, "2026-01-01"));
        assert!(one(Severity::High, "2016-01-01") < one(Severity::High, "2026-01-01"));
        assert_eq!(one(Severity::Critical, "2030-01-01"), 70, "future dates count as new");
        let two = risk_score([(Severity::Critical, now), (Severity::Critical, now)], now);
        assert_eq!(two, 91);
        assert_eq!(RiskLevel::of(two, true), RiskLevel::Critical);
        let many_low = risk_score(std::iter::repeat_n((Severity::Low, now), 200), now);
        assert!(many_low <= 100);
    }
}
