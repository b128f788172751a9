//! Monitoring (SPEC §14): the findings of a check, their remediation steps, and the risk
//! of a watched identity and of an organization. Pure functions of check results: the
//! server stores and renders what they give.
//!
//! # Findings
//!
//! A scan checks each e-mail and username of an identity ([`Index::check`](crate::Index::check)); every
//! breach of every check is one [`Finding`], in the check's order (severity, then date,
//! newest first). Its [`FindingCategory`] comes from the `data_types` of the match (the
//! assets present in the identity's matched records of that source):
//!
//! | category | when |
//! |---|---|
//! | `credential` | `password_plaintext` or `password_hash` is present (a password of the identity is exposed) |
//! | `exposure` | no password, and personal data: `full_name`, `phone`, `dob`, `address` or `ip_address` |
//! | `breach` | anything else: the identifier itself (with `target_url`, `salt` or `password_type` at most) |
//!
//! Its severity is the match's (SPEC §6) and its remediation steps depend on severity and
//! category ([`remediation_steps`]).
//!
//! # Risk
//!
//! [`assess`] scores an identity's findings with the check's formula
//! ([`risk_score`](crate::risk_score)): the findings are grouped by breach (source), a
//! breach counting once with the highest severity any of the identity's identifiers has
//! in it, so an e-mail and a username in the same breach are not counted twice.
//!
//! - `overall_score`: the formula over every breach; `risk_level` from it as a check's.
//! - `categories.password`: the formula over the breaches with a `credential` finding,
//!   `categories.exposure` over those with an `exposure` finding, `categories.breach`
//!   over those with a `breach` finding (each breach at its highest severity in that
//!   category).
//!
//! [`combine`] scores an organization from its identities' latest assessments: for the
//! overall score and each category, `round(0.6 · max + 0.4 · mean)` over the identities
//! (the most exposed identity dominates, the others still count); the level follows the
//! same thresholds, `none` when no identity has a finding.
//!
//! [`Trend::of`] compares a score with the previous one of the same identity (or
//! organization): `new` without a previous score, `increasing` when it rose by at least
//! [`TREND_POINTS`] points, `decreasing` when it fell by at least that, else `stable`.

use crate::asset::{Asset, AssetSet};
use crate::date::Date;
use crate::query::{CheckResult, RiskLevel, risk_score};
use crate::severity::Severity;
use std::collections::BTreeMap;

/// What a finding is about (see the module docs for the mapping from the data types).
#[derive(Copy, Clone, Debug, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub enum FindingCategory {
    /// A password of the identity (plaintext or hash) is exposed.
    Credential,
    /// Personal data without a password is exposed.
    Exposure,
    /// The identifier appears in a breach, with nothing more sensitive.
    Breach,
}

impl FindingCategory {
    /// Every category.
    pub const ALL: [FindingCategory; 3] =
        [FindingCategory::Credential, FindingCategory::Exposure, FindingCategory::Breach];

    /// The category's name (`credential`, `exposure`, `breach`).
    pub const fn name(self) -> &'static str {
        match self {
            FindingCategory::Credential => "credential",
            FindingCategory::Exposure => "exposure",
            FindingCategory::Breach => "breach",
        }
    }

    /// Parses a category name.
    pub fn parse(name: &str) -> Option<FindingCategory> {
        FindingCategory::ALL.into_iter().find(|c| c.name() == name)
    }

    /// The category of a match holding these assets.
    pub fn of_assets(assets: AssetSet) -> FindingCategory {
        let has = |a| assets.contains(a);
        if has(Asset::PasswordPlaintext) || has(Asset::PasswordHash) {
            FindingCategory::Credential
        } else if [Asset::FullName, Asset::Phone, Asset::Dob, Asset::Address, Asset::IpAddress].into_iter().any(has) {
            FindingCategory::Exposure
        } else {
            FindingCategory::Breach
        }
    }
}

/// One breach of one identifier of a watched identity.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Finding {
    /// `email` or `username`.
    pub identifier_kind: &'static str,
    /// The identifier as the identity holds it.
    pub identifier: String,
    /// The breach's source name (slug).
    pub source: String,
    /// Its source id.
    pub source_id: u32,
    /// The breach's date.
    pub breach_date: Date,
    /// Assets present in the identifier's matched records of the source.
    pub data_types: AssetSet,
    /// Matched records.
    pub records: u64,
    /// The match's severity (SPEC §6).
    pub severity: Severity,
    /// What the finding is about.
    pub category: FindingCategory,
    /// One line: the identifier and the breach.
    pub title: String,
    /// What was exposed, when, in how many records.
    pub description: String,
    /// What to do ([`remediation_steps`]).
    pub remediation_steps: Vec<&'static str>,
}

/// The findings of one check of an identifier (`identifier` as the identity holds it,
/// which may differ from the normalized text the check echoes): one per breach, in the
/// check's order.
pub fn findings_of_check(identifier: &str, check: &CheckResult<'_>) -> Vec<Finding> {
    check
        .breaches
        .iter()
        .map(|b| {
            let category = FindingCategory::of_assets(b.data_types);
            let exposed: Vec<&str> = b.data_types.iter().map(Asset::name).collect();
            let records = if b.records == 1 { "1 record".to_string() } else { format!("{} records", b.records) };
            Finding {
                identifier_kind: check.kind,
                identifier: identifier.to_string(),
                source: b.source.to_string(),
                source_id: b.source_id,
                breach_date: b.date,
                data_types: b.data_types,
                records: b.records,
                severity: b.severity,
                category,
                title: format!("{identifier} found in {}", b.title),
                description: format!(
                    "{} ({}, {}): {}. Exposed: {}; {records}.",
                    b.title,
                    b.source,
                    b.date,
                    b.description,
                    exposed.join(", ")
                ),
                remediation_steps: remediation_steps(b.severity, category),
            }
        })
        .collect()
}

/// What to do about a finding, most urgent first: the category's steps, then those of
/// the severity.
pub fn remediation_steps(severity: Severity, category: FindingCategory) -> Vec<&'static str> {
    let mut steps: Vec<&'static str> = Vec::new();
    match category {
        FindingCategory::Credential => {
            steps.push("Change the password of this account now");
            steps.push("Change it on every other site where the same or a similar password is used");
            steps.push("Turn on two-factor authentication for this account");
        }
        FindingCategory::Exposure => {
            steps.push("Expect phishing and social-engineering attempts that use the exposed personal data");
            steps.push("Check the account and connected services for activity you do not recognize");
        }
        FindingCategory::Breach => {
            steps.push("Be wary of e-mails and messages that mention this service");
        }
    }
    match severity {
        Severity::Critical => {
            steps.push("Sign out of every session of the named site and review its recent activity");
            steps.push("Scan the devices used with it for malware: the credential was probably stolen from one");
        }
        Severity::High => steps.push("Assume the password is known to attackers: never use it again"),
        Severity::Medium if category == FindingCategory::Credential => {
            steps.push("The password was stored with a slow hash; change it anyway if it is weak or reused");
        }
        Severity::Medium => steps.push("Consider a credit freeze or fraud alert if identity documents may be affected"),
        Severity::Low => steps.push("No immediate action needed beyond watching for phishing"),
    }
    steps
}

/// Risk scores by category (0-100 each; see the module docs).
#[derive(Copy, Clone, Debug, Default, PartialEq, Eq)]
pub struct RiskCategories {
    /// Breaches exposing the identifiers only.
    pub breach: u8,
    /// Breaches exposing personal data without a password.
    pub exposure: u8,
    /// Breaches exposing a password.
    pub password: u8,
}

/// The risk of an identity or an organization at one time.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct RiskAssessment {
    /// 0-100.
    pub overall_score: u8,
    /// From the score, `none` without any finding.
    pub risk_level: RiskLevel,
    /// Scores by category.
    pub categories: RiskCategories,
    /// The highest severity among the findings.
    pub worst: Option<Severity>,
    /// Findings assessed.
    pub findings: u64,
}

/// The risk of an identity's findings at `as_of` (see the module docs).
pub fn assess(findings: &[Finding], as_of: Date) -> RiskAssessment {
    // Per source: the highest severity and the date, overall and per category.
    let mut overall: BTreeMap<u32, (Severity, Date)> = BTreeMap::new();
    let mut by_category: [BTreeMap<u32, (Severity, Date)>; 3] = Default::default();
    for f in findings {
        let slot = FindingCategory::ALL.iter().position(|c| *c == f.category).unwrap_or(0);
        for map in [&mut overall].into_iter().chain(by_category.get_mut(slot)) {
            let entry = map.entry(f.source_id).or_insert((f.severity, f.breach_date));
            entry.0 = entry.0.max(f.severity);
        }
    }
    let score = |m: &BTreeMap<u32, (Severity, Date)>| risk_score(m.values().copied(), as_of);
    let [credential, exposure, breach] = &by_category;
    let overall_score = score(&overall);
    RiskAssessment {
        overall_score,
        risk_level: RiskLevel::of(overall_score, !findings.is_empty()),
        categories: RiskCategories { breach: score(breach), exposure: score(exposure), password: score(credential) },
        worst: findings.iter().map(|f| f.severity).max(),
        findings: findings.len() as u64,
    }
}

/// The risk of an organization from its identities' latest assessments (see the module
/// docs); no identity: a score of 0, level `none`.
pub fn combine(identities: &[RiskAssessment]) -> RiskAssessment {
    let blend = |pick: &dyn Fn(&RiskAssessment) -> u8| -> u8 {
        let max = identities.iter().map(pick).max().unwrap_or(0);
        if identities.is_empty() {
            return 0;
        }
        let mean = identities.iter().map(|a| f64::from(pick(a))).sum::<f64>() / identities.len() as f64;
        (0.6 * f64::from(max) + 0.4 * mean).round().clamp(0.0, 100.0) as u8
    };
    let findings: u64 = identities.iter().map(|a| a.findings).sum();
    let overall_score = blend(&|a| a.overall_score);
    RiskAssessment {
        overall_score,
        risk_level: RiskLevel::of(overall_score, findings > 0),
        categories: RiskCategories {
            breach: blend(&|a| a.categories.breach),
            exposure: blend(&|a| a.categories.exposure),
            password: blend(&|a| a.categories.password),
        },
        worst: identities.iter().filter_map(|a| a.worst).max(),
        findings,
    }
}

/// What to do about an assessment, most urgent first.
pub fn recommendations(risk: &RiskAssessment) -> Vec<&'static str> {
    let mut out = Vec::new();
    if risk.findings == 0 {
        out.push("No breach found: keep monitoring, new breaches are matched as they are added");
        return out;
    }
    if risk.worst == Some(Severity::Critical) {
        out.push(
            "A password was stolen together with the site it is for: change it and check that device for malware now",
        );
    }
    if risk.categories.password > 0 {
        out.push("Change every exposed password, stop reusing passwords, and use a password manager");
        out.push("Turn on two-factor authentication wherever it is offered");
    }
    if risk.categories.exposure > 0 {
        out.push("Personal data is exposed: watch for phishing and fraud, consider a credit freeze");
    }
    if risk.categories.breach > 0 {
        out.push("The identifiers appear in breaches: be wary of messages that mention those services");
    }
    out
}

/// Points a score must move to count as a trend.
pub const TREND_POINTS: u8 = 5;

/// How a risk score moved since the previous calculation.
#[derive(Copy, Clone, Debug, PartialEq, Eq)]
pub enum Trend {
    /// No previous score.
    New,
    /// Up by at least [`TREND_POINTS`].
    Increasing,
    /// Down by at least [`TREND_POINTS`].
    Decreasing,
    /// Within [`TREND_POINTS`] of the previous score.
    Stable,
}

impl Trend {
    /// The trend from the `previous` score (if any) to `current`.
    pub fn of(previous: Option<u8>, current: u8) -> Trend {
        let Some(previous) = previous else { return Trend::New };
        let moved = i16::from(current) - i16::from(previous);
        let points = i16::from(TREND_POINTS);
        if moved >= points {
            Trend::Increasing
        } else if moved <= -points {
            Trend::Decreasing
        } else {
            Trend::Stable
        }
    }

    /// The trend's name (`new`, `increasing`, `decreasing`, `stable`).
    pub const fn name(self) -> &'static str {
        match self {
            Trend::New => "new",
            Trend::Increasing => "increasing",
            Trend::Decreasing => "decreasing",
            Trend::Stable => "stable",
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::date::UnixTime;
    use crate::query::BreachMatch;

    fn set(list: &str) -> AssetSet {
        AssetSet::parse_list(list).unwrap()
    }

    fn d(s: &str) -> Date {
        s.parse().unwrap()
    }

    #[test]
    fn categories_follow_the_data_types() {
        for (list, category) in [
            ("email,password", FindingCategory::Credential),
            ("email,hash,password_type", FindingCategory::Credential),
            ("username,password,url", FindingCategory::Credential),
            ("email,phone", FindingCategory::Exposure),
            ("email,name", FindingCategory::Exposure),
            ("username,ip", FindingCategory::Exposure),
            ("email", FindingCategory::Breach),
            ("email,username,url", FindingCategory::Breach),
        ] {
            assert_eq!(FindingCategory::of_assets(set(list)), category, "{list}");
        }
        for c in FindingCategory::ALL {
            assert_eq!(FindingCategory::parse(c.name()), Some(c));
        }
        assert_eq!(FindingCategory::parse("credentials"), None);
    }

    fn breach(source: &'static str, id: u32, date: &str, assets: &str, severity: Severity) -> BreachMatch<'static> {
        BreachMatch {
            source,
            source_id: id,
            title: source,
            date: d(date),
            data_types: set(assets),
            severity,
            severity_score: severity.score(),
            records: 2,
            description: "described",
        }
    }

    fn check(kind: &'static str, breaches: Vec<BreachMatch<'static>>) -> CheckResult<'static> {
        CheckResult {
            checked: "x",
            kind,
            total_breaches: breaches.len(),
            breaches,
            risk_level: RiskLevel::None,
            risk_score: 0,
            checked_at: UnixTime::from_seconds(0),
        }
    }

    #[test]
    fn one_finding_per_breach_in_the_checks_order() {
        let c = check(
            "email",
            vec![
                breach("stealer", 2, "2025-01-20", "email,password,url", Severity::Critical),
                breach("forum", 3, "2019-07-04", "email,phone", Severity::Medium),
            ],
        );
        let f = findings_of_check("Alice@Example.com", &c);
        assert_eq!(f.len(), 2);
        assert_eq!(
            (f[0].source.as_str(), f[0].category, f[0].severity),
            ("stealer", FindingCategory::Credential, Severity::Critical)
        );
        assert_eq!(
            (f[1].source.as_str(), f[1].category, f[1].severity),
            ("forum", FindingCategory::Exposure, Severity::Medium)
        );
        assert_eq!(f[0].identifier, "Alice@Example.com");
        assert_eq!(f[0].identifier_kind, "email");
        assert!(f[0].title.contains("Alice@Example.com") && f[0].description.contains("target_url"), "{f:?}");
        assert_eq!(f[0].remediation_steps, remediation_steps(Severity::Critical, FindingCategory::Credential));
        assert_eq!(findings_of_check("Alice@Example.com", &c), f, "deterministic");
    }

    #[test]
    fn remediation_depends_on_severity_and_category() {
        let all: Vec<Vec<&str>> = [Severity::Low, Severity::Medium, Severity::High, Severity::Critical]
            .into_iter()
            .flat_map(|s| FindingCategory::ALL.into_iter().map(move |c| remediation_steps(s, c)))
            .collect();
        for (i, a) in all.iter().enumerate() {
            assert!(!a.is_empty());
            for b in all.iter().skip(i + 1) {
                assert_ne!(a, b, "every (severity, category) pair has its own steps");
            }
        }
    }

    fn finding(source_id: u32, severity: Severity, category: FindingCategory, date: &str) -> Finding {
        Finding {
            identifier_kind: "email",
            identifier: "a@example.org".into(),
            source: format!("s{source_id}"),
            source_id,
            breach_date: d(date),
            data_types: AssetSet::EMPTY,
            records: 1,
            severity,
            category,
            title: String::new(),
            description: String::new(),
            remediation_steps: Vec::new(),
        }
    }

    #[test]
    fn a_breach_counts_once_per_identity_at_its_highest_severity() {
        let now = d("2026-11-23");
        let one = assess(&[finding(1, Severity::High, FindingCategory::Credential, "2024-03-15")], now);
        assert_eq!((one.overall_score, one.risk_level), (42, RiskLevel::Medium), "SPEC §7's example");
        assert_eq!(one.categories, RiskCategories { breach: 0, exposure: 0, password: 42 });
        let twice = assess(
            &[
                finding(1, Severity::High, FindingCategory::Credential, "2024-03-15"),
                finding(1, Severity::Low, FindingCategory::Breach, "2024-03-15"),
            ],
            now,
        );
        assert_eq!(twice.overall_score, 42, "the same breach through a username adds nothing");
        assert!(twice.categories.breach > 0);
        assert_eq!(twice.worst, Some(Severity::High));
        assert_eq!(twice.findings, 2);
        let none = assess(&[], now);
        assert_eq!((none.overall_score, none.risk_level, none.worst), (0, RiskLevel::None, None));
        let more = assess(
            &[
                finding(1, Severity::High, FindingCategory::Credential, "2024-03-15"),
                finding(2, Severity::Medium, FindingCategory::Exposure, "2025-01-01"),
            ],
            now,
        );
        assert!(more.overall_score > one.overall_score);
    }

    #[test]
    fn an_organization_blends_its_worst_and_mean_identity() {
        let a = |score: u8, findings: u64| RiskAssessment {
            overall_score: score,
            risk_level: RiskLevel::of(score, findings > 0),
            categories: RiskCategories { breach: score / 2, exposure: 0, password: score },
            worst: (findings > 0).then_some(Severity::High),
            findings,
        };
        let org = combine(&[a(80, 3), a(0, 0), a(40, 1)]);
        // 0.6 · 80 + 0.4 · 40 = 64.
        assert_eq!((org.overall_score, org.risk_level), (64, RiskLevel::High));
        assert_eq!(org.categories.password, 64);
        assert_eq!(org.categories.breach, 32);
        assert_eq!(org.findings, 4);
        assert_eq!(combine(&[]).risk_level, RiskLevel::None);
        assert_eq!(combine(&[a(0, 0)]).overall_score, 0);
    }

    #[test]
    fn trends_need_five_points() {
        assert_eq!(Trend::of(None, 40), Trend::New);
        assert_eq!(Trend::of(Some(40), 45), Trend::Increasing);
        assert_eq!(Trend::of(Some(40), 44), Trend::Stable);
        assert_eq!(Trend::of(Some(40), 35), Trend::Decreasing);
        assert_eq!(Trend::of(Some(2), 0), Trend::Stable);
        assert_eq!(Trend::of(Some(255), 255), Trend::Stable);
    }

    #[test]
    fn recommendations_follow_the_assessment() {
        let now = d("2026-11-23");
        let clean = recommendations(&assess(&[], now));
        assert_eq!(clean.len(), 1);
        let critical =
            recommendations(&assess(&[finding(1, Severity::Critical, FindingCategory::Credential, "2025-01-01")], now));
        assert!(critical.len() >= 3 && critical[0].contains("malware"), "{critical:?}");
        let exposure =
            recommendations(&assess(&[finding(1, Severity::Medium, FindingCategory::Exposure, "2025-01-01")], now));
        assert!(exposure.iter().all(|r| !r.contains("password")), "{exposure:?}");
    }
}
