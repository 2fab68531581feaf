//! What callers hand in and get back.

use std::collections::{BTreeMap, BTreeSet};
use std::fmt;

use jiff::civil::Date;
use madoguchi_linkage::Layout;
use serde::{Deserialize, Serialize};

/// One core-system file, as registered by `linkage-inbound`.
///
/// `seq` orders the files of one `system`: the caller assigns it (e.g. a per-system counter
/// taken when the file is registered) and applies file `n + 1` only after file `n` is done.
#[derive(Debug, Clone, PartialEq, Eq, Hash, Serialize, Deserialize)]
pub struct FileRef {
    /// The core system (`inbound/<system>/…`), e.g. `jumin`. No `#`.
    pub system: String,
    /// The object key.
    pub key: String,
    /// The object version (or sequencer / etag, as the registry keys it).
    pub version: String,
    /// Position of the file among the files of its system.
    pub seq: u64,
}

/// The file and row a resident's state came from.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct SourceRow {
    pub system: String,
    pub key: String,
    pub version: String,
    pub seq: u64,
    /// Data row number in the file (1 = first row after the header).
    pub row: u64,
}

impl SourceRow {
    pub(crate) fn new(file: &FileRef, row: u64) -> Self {
        Self {
            system: file.system.clone(),
            key: file.key.clone(),
            version: file.version.clone(),
            seq: file.seq,
            row,
        }
    }

    /// Whether this state already reflects `(file, row)`: same system, and the same or a
    /// later file position.
    pub(crate) fn covers(&self, file: &FileRef, row: u64) -> bool {
        self.system == file.system && (self.seq, self.row) >= (file.seq, row)
    }
}

/// What one [`crate::ResidentStore::apply`] call did.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize)]
pub struct ApplyOutcome {
    /// Rows that changed a resident (or created one): a history entry and the new `CURRENT`
    /// were written.
    pub applied: u64,
    /// Rows that said exactly what the resident's `CURRENT` already says: nothing written.
    pub unchanged: u64,
    /// Rows already reflected: the resident's `CURRENT` came from this row or from a later
    /// row or file of the same system (a redelivered or resumed file). Nothing written.
    pub skipped: u64,
    /// Rows that cannot be keyed (no usable 宛名番号 or 世帯番号). Nothing written for them.
    pub rejected: Vec<RowRejection>,
}

/// A row the store could not apply. Carries no field value.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct RowRejection {
    pub row: u64,
    /// `resident.atena_number` or `resident.household_number`.
    pub code: &'static str,
    /// Japanese, for the errors report.
    pub message: &'static str,
}

/// A resident as staff see them. 個人番号 appears masked only.
///
/// Holds personal data: its `Debug` shows only the 宛名番号, the 世帯番号 and the state, so
/// that a stray `{:?}` in a log line leaks nothing more.
#[derive(Clone, PartialEq, Eq, Serialize)]
pub struct ResidentView {
    /// 宛名番号.
    pub atena_number: String,
    /// 世帯番号.
    pub household_number: String,
    /// 氏名.
    pub name: String,
    /// 氏名フリガナ.
    pub name_kana: Option<String>,
    /// 生年月日.
    pub birth_date: Option<Date>,
    /// 続柄 (code).
    pub relationship: Option<String>,
    /// Whether the 続柄 is 世帯主 ([`ResidentCodes`]).
    pub householder: bool,
    /// 住民状態 (code).
    pub resident_status: Option<String>,
    /// Whether the 住民状態 says the person still lives here (not 転出, 死亡, 消除…).
    pub present: bool,
    /// 個人番号, masked (`********1234`).
    pub my_number_masked: Option<String>,
    /// Every other column of the row as stored (layout names; dates as `YYYY-MM-DD`; empty
    /// fields absent). Never the 個人番号.
    pub values: BTreeMap<String, String>,
    /// The file and row this state came from.
    pub source: SourceRow,
}

impl fmt::Debug for ResidentView {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("ResidentView")
            .field("atena_number", &self.atena_number)
            .field("household_number", &self.household_number)
            .field("present", &self.present)
            .field("source", &self.source)
            .finish_non_exhaustive()
    }
}

/// One applied row of a resident's history, oldest first.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct HistoryEntry {
    /// 異動事由 (code), if the row had one.
    pub change_reason: Option<String>,
    /// 異動日, if the row had one.
    pub change_date: Option<Date>,
    /// The resident as that row described them (its `source` is the row).
    pub state: ResidentView,
}

/// Which codes of the (unconfirmed) code tables mean "世帯主" and "still a resident".
///
/// The default reads them from the shipped 住民記録 layout by label: 続柄 codes labelled
/// `世帯主`, 住民状態 codes labelled `住民`. A vendor's layout with other codes changes the
/// data, not this crate ([`ResidentCodes::from_layout`]).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ResidentCodes {
    householder: BTreeSet<String>,
    present: BTreeSet<String>,
}

impl ResidentCodes {
    /// Explicit code sets.
    pub fn new(
        householder: impl IntoIterator<Item = impl Into<String>>,
        present: impl IntoIterator<Item = impl Into<String>>,
    ) -> Self {
        Self {
            householder: householder.into_iter().map(Into::into).collect(),
            present: present.into_iter().map(Into::into).collect(),
        }
    }

    /// From a layout's code tables: the codes of the `relationship` column labelled `世帯主`
    /// and of the `resident_status` column labelled `住民`.
    pub fn from_layout(layout: &Layout) -> Self {
        let codes = |column: &str, label: &str| -> BTreeSet<String> {
            layout
                .columns
                .iter()
                .find(|c| c.name == column)
                .and_then(|c| c.code_table.as_ref())
                .and_then(|t| layout.code_tables.get(t))
                .map(|t| {
                    t.codes
                        .iter()
                        .filter(|(_, l)| l.as_str() == label)
                        .map(|(code, _)| code.clone())
                        .collect()
                })
                .unwrap_or_default()
        };
        Self {
            householder: codes(crate::col::RELATIONSHIP, "世帯主"),
            present: codes(crate::col::RESIDENT_STATUS, "住民"),
        }
    }

    /// Whether a 続柄 code is 世帯主.
    pub fn is_householder(&self, relationship: Option<&str>) -> bool {
        relationship.is_some_and(|r| self.householder.contains(r))
    }

    /// Whether a 住民状態 code means the person still lives here. A row without a 住民状態
    /// (a layout without the column) counts as present.
    pub fn is_present(&self, status: Option<&str>) -> bool {
        status.is_none_or(|s| self.present.contains(s))
    }
}

impl Default for ResidentCodes {
    fn default() -> Self {
        Self::from_layout(&Layout::jumin())
    }
}

/// Progress of one file's ingest, as the checkpoint records it.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct Progress {
    /// Data rows read so far (valid and invalid): where a resumed ingest continues
    /// (`LayoutReader::skip_rows`).
    pub rows_done: u64,
    /// Rows applied so far (the caller decides whether unchanged rows count).
    pub applied: u64,
    /// Rows rejected so far (validation errors and [`RowRejection`]s).
    pub rejected: u64,
}

/// Where a file's ingest stands.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum IngestState {
    NotStarted,
    InProgress(Progress),
    /// Finished; the summary of the whole file.
    Done(Progress),
}

/// A file's checkpoint as read: its state and the version the next save must match.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Checkpoint {
    pub state: IngestState,
    /// 0 while not started (no item yet).
    pub version: u64,
}
