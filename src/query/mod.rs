//! The query API on top of the reader: breach checks with severity and risk
//! ([`check`]), and record retrieval under an asset policy with cursors ([`records`]).

pub mod check;
pub mod records;

pub use check::{BreachMatch, CheckResult, RiskLevel, risk_score};
pub use records::{AssetPolicy, AssetPolicyBuilder, HashAlgorithm, PolicyError, RecordOut, RecordsPage, SaltPosition};
