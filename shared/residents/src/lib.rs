//! The resident store (住民記録): rows of core-system resident files applied to the item
//! store exactly once, read back by 宛名番号, household (世帯), name + birth date, and history;
//! plus the checkpoints that make an ingest resumable.
//!
//! Written over the ports only ([`ItemStore`](madoguchi_ports::ItemStore) and
//! [`FieldCipher`]), so it runs unchanged on DynamoDB and on SQLite. Rows come from
//! `madoguchi-linkage`'s `LayoutReader` with the 住民記録 layout's column names
//! (`atena_number`, `household_number`, `my_number`, `name`, `birth_date`, …; see
//! `shared/linkage/layouts/jumin.json`).
//!
//! # Items
//!
//! | item | pk | sk | gsi1 | data |
//! |---|---|---|---|---|
//! | current state | `{tenant}#RES#{atena}` | `CURRENT` | `{tenant}#HH#{household}` / `{atena}` | `resident` (values, 個人番号 masked + blind index), `source` (file, row), `sealed` (個人番号) |
//! | history entry | `{tenant}#RES#{atena}` | `H#{system}#{seq:020}#{row:020}` | – | `resident`, `source` (no ciphertext) |
//! | lookup entry | `{tenant}#RESFIND#{blind index of the birth date}` | `{atena}` | – | `{}` |
//! | ingest checkpoint | `{tenant}#LINKAGE#IN#{system}` | `CKPT#{key}#{version}` | – | state, rows done, applied, rejected, file seq, time |
//!
//! `atena` is the 宛名番号, `household` the 世帯番号 (both as the file gives them; a row
//! whose values contain `#` or control characters is rejected, not stored).
//!
//! - **個人番号** is sealed with [`FieldCipher`] (AES-256-GCM under the tenant's data key,
//!   bound to the tenant, the record `resident:{atena}` and the column) and kept only in
//!   `CURRENT`; beside the values it appears masked (`********1234`) and as a blind index
//!   (purpose [`MY_NUMBER_INDEX_PURPOSE`], the same as applications use, so a resident can be
//!   matched with an application without decrypting). History entries keep the masked form
//!   and the index, never the ciphertext: a replaced number stays matchable but is not kept.
//!   Views show the masked form only; this crate opens nothing.
//! - **Households**: `CURRENT` carries gsi1 `{tenant}#HH#{household}`, so a household's
//!   members are one index query, and a move to another household moves the entry by the
//!   overwrite of `CURRENT`. [`ResidentStore::household`] lists present members only.
//! - **Name + birth date**: one lookup entry per resident in the partition of their birth
//!   date (its blind index, purpose [`BIRTH_DATE_INDEX_PURPOSE`], so no key holds a date or a
//!   name). [`ResidentStore::find`] reads the partition (a few dozen people per day even in a
//!   large city), then each `CURRENT`, and compares birth date and the folded names there: a
//!   stale entry (birth date corrected) or a former name finds no one, and changing the name
//!   folding needs no re-indexing. The entry is written when a resident first appears or
//!   their birth date changes, not at every name change.
//! - **住民状態 / 異動事由**: a row whose 住民状態 says the person left (転出, 死亡, 職権消除…;
//!   the codes of `jumin.json` are placeholders, marked unconfirmed, read through
//!   [`ResidentCodes`]) is applied like any row: `CURRENT` keeps that state, history keeps
//!   the row, nothing is deleted.
//! - A row is the resident's whole state, in full and delta (差分) files alike: an empty
//!   field clears the value. Whether a vendor's delta means "unchanged" by an empty field is
//!   to be confirmed (`docs/linkage.md`).
//!
//! # Exactly once
//!
//! [`ResidentStore::apply`] reads each named resident's `CURRENT` first, then for each row
//! in row order:
//! 1. **skipped** if `CURRENT.source` is this row or a later row or file of the same system
//!    (a redelivered or resumed file, or an old file delivered late): nothing written;
//! 2. **unchanged** if the row says exactly what `CURRENT` says (values, household, 個人番号
//!    by its blind index): nothing written — a monthly full file costs reads, not writes, for
//!    the residents who did not change;
//! 3. otherwise **applied**: a history entry under a key made of (system, file seq, row), a
//!    lookup entry if needed, and the new `CURRENT` (version + 1, `source` = this row).
//!
//! Every item written is a function of the row and the stored state: no clock, and a
//! 個人番号 whose blind index did not change keeps its stored ciphertext (sealing is
//! randomised). So writing a row again writes identical items. The writes go out in two
//! [`put_batch`](madoguchi_ports::ItemStore::put_batch) calls, history and lookup entries
//! first, `CURRENT` second: if a call fails half-way, a `CURRENT` that names a row implies that
//! row's history entry is stored, and applying the same rows again (which the checkpoint
//! makes the caller do) completes exactly what is missing.
//!
//! # Order and the caller's duties
//!
//! - Files of one system are applied in `FileRef::seq` order. **The caller must not apply
//!   file n + 1 of a system before file n is done** (the `linkage-inbound` function takes a
//!   per-system lease for that; this crate does not). Within a file, rows are applied in row
//!   order, across `apply` calls too.
//! - One consumer per file at a time: [`Checkpoints::save`] is conditional on the version
//!   read, so a second consumer of the same file gets `ConditionFailed` and stops.
//! - The expected loop, per file:
//!
//! ```text
//! let cp = checkpoints.load(tenant, &file)            // Done → nothing to do
//! reader.skip_rows(progress.rows_done)                 // InProgress → resume
//! for each chunk of ~1,000 rows:
//!     outcome = store.apply(tenant, &file, valid rows of the chunk)
//!     cp = checkpoints.save(tenant, &file, &cp, progress)   // ConditionFailed → stop
//! checkpoints.finish(tenant, &file, &cp, summary)
//! ```
//!
//! # Cost
//!
//! Per row: one `CURRENT` read (16 in flight) and, if it changed, two or three items
//! written (history, `CURRENT`, a lookup entry for a new resident) through `put_batch`.
//! `benches/apply.rs` measures rows per second on SQLite and, with `MADOGUCHI_BENCH_AWS=1`,
//! on moto.

mod checkpoint;
pub mod keys;
mod model;
mod normalize;
mod store;

pub use checkpoint::Checkpoints;
pub use model::{
    ApplyOutcome, Checkpoint, FileRef, HistoryEntry, IngestState, Progress, ResidentCodes,
    ResidentView, RowRejection, SourceRow,
};
pub use normalize::fold_name;
pub use store::ResidentStore;

#[doc(no_inline)]
pub use madoguchi_fieldcrypt::FieldCipher;

/// Blind-index purpose of 個人番号 (the same as the applications' index).
pub const MY_NUMBER_INDEX_PURPOSE: &str = "my_number";
/// Blind-index purpose of birth dates (`YYYY-MM-DD`) in lookup keys.
pub const BIRTH_DATE_INDEX_PURPOSE: &str = "resident-birth-date";

/// Column names of the 住民記録 layout this crate reads.
pub mod col {
    /// 宛名番号.
    pub const ATENA: &str = "atena_number";
    /// 世帯番号.
    pub const HOUSEHOLD: &str = "household_number";
    /// 個人番号.
    pub const MY_NUMBER: &str = "my_number";
    /// 氏名.
    pub const NAME: &str = "name";
    /// 氏名フリガナ.
    pub const NAME_KANA: &str = "name_kana";
    /// ローマ字氏名.
    pub const ROMAJI_NAME: &str = "romaji_name";
    /// 通称.
    pub const ALIAS: &str = "alias";
    /// 生年月日.
    pub const BIRTH_DATE: &str = "birth_date";
    /// 続柄.
    pub const RELATIONSHIP: &str = "relationship";
    /// 住民状態.
    pub const RESIDENT_STATUS: &str = "resident_status";
    /// 異動事由.
    pub const CHANGE_REASON: &str = "change_reason";
    /// 異動日.
    pub const CHANGE_DATE: &str = "change_date";
}
