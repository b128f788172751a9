//! How a build shares out its memory budget: one place for every split, so the peak
//! resident memory of a build stays near the budget the caller asked for.
//!
//! ```text
//! total ─┬─ reserve        batches in flight, worker output, file buffers, stacks,
//!        │                 and the record store's writer (dictionary samples, blocks
//!        │                 being compressed)
//!        ├─ record sort    the external sort of records (arena 7/8, index 1/8)
//!        │    ├─ merge read      read buffers when spilled runs are merged (1/4)
//!        │    └─ username sort   what the username sorter may hold while writing
//!        ├─ password sort  the password hashes, when the build makes a password
//!        │                 index (1/4 of what is sorted in; held until the
//!        │                 `passwords` phase, which merges with `merge read`; then
//!        │                 the row sort of `passwords.rowrefs` reuses it)
//!        └─ rowref sort    the (document id, row) pairs and password references of
//!                          a build that counts passwords it does not store (1/8 of
//!                          what is sorted in, only then)
//! ```

use super::sort::SLOT_BYTES;

/// Default memory budget: suits a laptop.
pub const DEFAULT_MEMORY_BUDGET: u64 = 1 << 30;
/// Smallest memory budget accepted.
pub const MIN_MEMORY_BUDGET: u64 = 128 << 20;
/// Memory kept outside the sort buffers: framed batches in flight and being parsed,
/// worker output waiting for the sorter, reader and writer buffers (about 30 files of
/// 1 MiB each, 3 MiB more per file while it is checksummed), allocator caches, thread
/// stacks and the program itself. 48 MiB was measured too little at 100M records
/// (peak RSS 18 MiB over a 4 GiB budget while the sort arena was full).
const FIXED_RESERVE: u64 = 96 << 20;
/// The username sorter never gets less than this, even when the record sort left
/// little room.
const MIN_USERNAME_SORT: usize = 16 << 20;
/// Size at which a sorter's block of single pushes is closed (smaller for tiny buffers).
const OPEN_BLOCK_BYTES: usize = 1 << 20;
/// Memory of the record store's writer (format version 2, `records.store`), held while
/// the sorted records are written: the raw blocks kept to train its dictionary (the
/// first 8 MiB of rows), the blocks queued for and being compressed, and its directory.
const RECORD_STORE_RESERVE: u64 = 16 << 20;
/// Smallest buffer a sorter works with.
const MIN_SORTER_BUFFER: usize = 1 << 20;
/// The password sorter's share of what is sorted in: 1 part in this many. A record
/// with a plaintext password gives two password entries of about 70 bytes each with
/// their index slots, usually less than the record's own entry: a quarter keeps the
/// password sort's runs few without taking much from the record sort.
const PASSWORD_SORT_DIVISOR: usize = 4;
/// The rowref join's share of what is sorted in: 1 part in this many. It holds a
/// (document id, row) pair per row and a reference per password hash, about 50 bytes
/// each with their slots, in builds whose records keep few values.
const ROWREF_SORT_DIVISOR: usize = 8;

/// Why a memory budget cannot be used.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum MemoryBudgetError {
    /// Below [`MIN_MEMORY_BUDGET`].
    #[error("a memory budget of {} is below the minimum of {}", human_bytes(*requested), human_bytes(MIN_MEMORY_BUDGET))]
    TooSmall {
        /// The budget asked for, in bytes.
        requested: u64,
    },
    /// More than the machine has: the build would fail to allocate part-way.
    #[error(
        "a memory budget of {} is more than this machine's {} of memory; choose a smaller budget",
        human_bytes(*requested),
        human_bytes(*available)
    )]
    MoreThanMachine {
        /// The budget asked for, in bytes.
        requested: u64,
        /// The machine's memory, in bytes.
        available: u64,
    },
}

/// A build's memory budget and how it is shared out. Every share is derived from
/// `total` here; nothing else in the builder does memory arithmetic.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct MemoryBudget {
    /// The whole budget, in bytes, as asked for.
    pub total: u64,
    /// Kept outside the sort buffers (see the module docs); `total - reserve` is sorted in.
    pub reserve: u64,
    /// The record sorter's buffer, in bytes (split further by [`SorterShares::of`]).
    pub record_sort: usize,
    /// Read buffers for merging spilled runs, in bytes (spread over the runs).
    pub merge_read: usize,
    /// The password sorter's buffer, in bytes (0 until [`MemoryBudget::with_password_index`]).
    pub password_sort: usize,
    /// The buffer of the sort joining rows to password references for
    /// `passwords.rowrefs`, in bytes (0 until [`MemoryBudget::with_row_refs`]).
    pub rowref_sort: usize,
}

impl MemoryBudget {
    /// The shares of `total` bytes, checked against [`MIN_MEMORY_BUDGET`] and, where the
    /// platform tells it, against the machine's memory.
    pub fn new(total: u64) -> Result<MemoryBudget, MemoryBudgetError> {
        MemoryBudget::with_machine_memory(total, machine_memory())
    }

    /// [`MemoryBudget::new`] for a machine with `machine` bytes of memory (`None`: unknown,
    /// not checked).
    pub fn with_machine_memory(total: u64, machine: Option<u64>) -> Result<MemoryBudget, MemoryBudgetError> {
        if total < MIN_MEMORY_BUDGET {
            return Err(MemoryBudgetError::TooSmall { requested: total });
        }
        if let Some(available) = machine.filter(|&m| total > m) {
            return Err(MemoryBudgetError::MoreThanMachine { requested: total, available });
        }
        let reserve = FIXED_RESERVE + RECORD_STORE_RESERVE;
        let record_sort = usize::try_from(total - reserve).unwrap_or(usize::MAX);
        Ok(MemoryBudget { total, reserve, record_sort, merge_read: record_sort / 4, password_sort: 0, rowref_sort: 0 })
    }

    /// The shares of a build that also makes the password index: the password sorter's
    /// buffer is carved out of the record sort (which keeps the rest), so the total is
    /// unchanged.
    pub fn with_password_index(self) -> MemoryBudget {
        let sorted = self.record_sort + self.password_sort;
        let password_sort = (sorted / PASSWORD_SORT_DIVISOR).max(MIN_SORTER_BUFFER);
        let record_sort = sorted.saturating_sub(password_sort);
        MemoryBudget { record_sort, merge_read: record_sort / 4, password_sort, ..self }
    }

    /// The shares of a build that also writes `passwords.rowrefs`: the buffer of its
    /// (document id, row) join is carved out of the record sort, as the password
    /// sorter's is; the total is unchanged.
    pub fn with_row_refs(self) -> MemoryBudget {
        let sorted = self.record_sort + self.rowref_sort;
        let rowref_sort = (sorted / ROWREF_SORT_DIVISOR).max(MIN_SORTER_BUFFER);
        let record_sort = sorted.saturating_sub(rowref_sort);
        MemoryBudget { record_sort, merge_read: record_sort / 4, rowref_sort, ..self }
    }

    /// The username sorter's buffer, fixed once the records are sorted: when the record
    /// sort spilled, its merge holds only `merge_read`; otherwise its buffered bytes
    /// (`records_buffered`) stay in memory while the usernames are collected.
    pub fn username_sort(&self, records_spilled: bool, records_buffered: usize) -> usize {
        let in_use = if records_spilled { self.merge_read } else { records_buffered };
        self.record_sort.saturating_sub(in_use).max(MIN_USERNAME_SORT)
    }
}

/// How one sorter's buffer is split between entry bytes and their index.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct SorterShares {
    /// The block collecting entries pushed one by one (1/16 of the buffer, at most 1 MiB).
    pub open_block: usize,
    /// Entry bytes held before a spill (7/8 of the buffer, less the open block).
    pub arena: usize,
    /// Index slots held before a spill (1/8 of the buffer).
    pub index_slots: usize,
}

impl SorterShares {
    /// The split of a sorter buffer of `buffer` bytes (at least 1 MiB is used).
    pub fn of(buffer: usize) -> SorterShares {
        let buffer = buffer.max(MIN_SORTER_BUFFER);
        let open_block = OPEN_BLOCK_BYTES.min(buffer / 16);
        SorterShares { open_block, arena: buffer / 8 * 7 - open_block, index_slots: (buffer / 8 / SLOT_BYTES).max(1) }
    }
}

/// The machine's memory in bytes: `MemTotal` of `/proc/meminfo` on Linux, `None` where
/// it cannot be read.
pub fn machine_memory() -> Option<u64> {
    let text = std::fs::read_to_string("/proc/meminfo").ok()?;
    meminfo_total(&text)
}

/// `MemTotal` of `/proc/meminfo` text, in bytes.
fn meminfo_total(text: &str) -> Option<u64> {
    let line = text.lines().find(|l| l.starts_with("MemTotal:"))?;
    let mut words = line.trim_start_matches("MemTotal:").split_whitespace();
    let value: u64 = words.next()?.parse().ok()?;
    match words.next() {
        Some("kB") => value.checked_mul(1024),
        None => Some(value),
        Some(_) => None,
    }
}

/// Bytes as a short human size (`512 MiB`, `1.5 GiB`, `100 TiB`).
pub(crate) fn human_bytes(bytes: u64) -> String {
    const UNITS: [&str; 5] = ["bytes", "KiB", "MiB", "GiB", "TiB"];
    let mut value = bytes as f64;
    let mut unit = 0;
    while value >= 1024.0 && unit + 1 < UNITS.len() {
        value /= 1024.0;
        unit += 1;
    }
    let name = UNITS.get(unit).copied().unwrap_or("bytes");
    if unit == 0 || value.fract() < 0.05 { format!("{value:.0} {name}") } else { format!("{value:.1} {name}") }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn shares_add_up_to_the_budget() {
        let b = MemoryBudget::with_machine_memory(1 << 30, None).unwrap();
        assert_eq!(b.reserve as usize + b.record_sort, 1 << 30);
        assert_eq!(b.merge_read, b.record_sort / 4);
        assert_eq!(b.username_sort(true, 0), b.record_sort - b.merge_read);
        assert_eq!(b.username_sort(false, b.record_sort), MIN_USERNAME_SORT);
        let p = b.with_password_index();
        assert_eq!(p.reserve as usize + p.record_sort + p.password_sort, 1 << 30);
        assert_eq!(p.password_sort, b.record_sort / 4);
        assert_eq!(p.with_password_index(), p, "applying it twice changes nothing");
        let r = p.with_row_refs();
        assert_eq!(r.reserve as usize + r.record_sort + r.password_sort + r.rowref_sort, 1 << 30);
        assert_eq!(r.with_row_refs(), r, "applying it twice changes nothing");
        let s = SorterShares::of(64 << 20);
        let used = s.open_block + s.arena + s.index_slots * SLOT_BYTES;
        assert!(used <= 64 << 20 && used > (64 << 20) - SLOT_BYTES, "{used}");
    }

    #[test]
    fn refuses_too_little_and_more_than_the_machine() {
        let err = MemoryBudget::with_machine_memory(1 << 20, None).unwrap_err();
        assert_eq!(err.to_string(), "a memory budget of 1 MiB is below the minimum of 128 MiB");
        let err = MemoryBudget::with_machine_memory(100 << 40, Some(8 << 30)).unwrap_err();
        assert_eq!(
            err.to_string(),
            "a memory budget of 100 TiB is more than this machine's 8 GiB of memory; choose a smaller budget"
        );
        assert!(MemoryBudget::with_machine_memory(8 << 30, Some(8 << 30)).is_ok());
    }

    #[test]
    fn reads_memtotal() {
        assert_eq!(meminfo_total("MemTotal:       16318512 kB\nMemFree: 1 kB\n"), Some(16_318_512 * 1024));
        assert_eq!(meminfo_total("MemFree: 1 kB\n"), None);
        assert_eq!(human_bytes(1536 << 20), "1.5 GiB");
        assert_eq!(human_bytes(100), "100 bytes");
    }
}
