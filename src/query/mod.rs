//! The query layer on top of the reader ([`crate::index`]): breach checks with severity
//! and risk ([`check`]: [`Index::check`], [`Index::check_batch`],
//! [`Index::check_batch_par`]), and record retrieval under an asset policy with cursors
//! ([`records`]: [`Index::records`] with a [`RecordsRequest`]), and Pwned Passwords
//! range answers as text ([`range_text`]). It owns its requests and its errors; lookups
//! fail with the reader's [`crate::index::LookupError`].
//!
//! [`Index::check`]: crate::index::Index::check
//! [`Index::check_batch`]: crate::index::Index::check_batch
//! [`Index::check_batch_par`]: crate::index::Index::check_batch_par
//! [`Index::records`]: crate::index::Index::records

pub mod check;
pub mod range_text;
pub mod records;

pub use check::{BreachMatch, CheckResult, RiskLevel, risk_score};
pub use range_text::{PADDED_RANGE_MAX_LINES, PADDED_RANGE_MIN_LINES, RangeTextSummary};
pub use records::{
    AssetPolicy, AssetPolicyBuilder, HashAlgorithm, MASK, MAX_PAGE, MAX_SALT_CHARS, MIN_SALT_CHARS, PolicyError,
    RecordOut, RecordsError, RecordsPage, RecordsRequest, SaltPosition,
};
