//! The query API on top of the reader: breach checks with severity and risk
//! ([`check`]).

pub mod check;

pub use check::{BreachMatch, CheckResult, RiskLevel, risk_score};
