//! The ingest of one registered file: layout, 外字 table, validation pass, apply pass with
//! checkpoints, reports.
//!
//! The object is never read whole: each pass opens it again and streams it through the
//! layout reader. The reader is a sync `Read` consumer (CPU-bound decoding and validation),
//! so it runs in `spawn_blocking` over a [`SyncIoBridge`] of the async body; the apply pass
//! sends its rows in batches over a bounded channel, so memory holds at most a few batches
//! whatever the file's size, and reading the next batch overlaps with applying this one.

use std::collections::BTreeMap;
use std::fmt;
use std::sync::Arc;

use bytes::Bytes;
use madoguchi_linkage::{
    ConversionTable, FileError, FileErrorSummary, FileKind, Layout, LayoutReader, Record, RowCheck,
    RowError, RowOutcome, Summary, errors_csv_header, write_error_rows,
};
use madoguchi_ports::{BlobBody, BlobUpload, PortError};
use madoguchi_residents::{ApplyOutcome, Checkpoint, FileRef, IngestState, Progress, RowRejection};
use tokio::sync::mpsc;
use tokio_util::io::SyncIoBridge;

use crate::{InboundFile, InboundState};

/// What became of a file.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum IngestOutcome {
    /// Read to the end; valid rows applied, bad rows reported.
    Ingested {
        rows_read: u64,
        applied: u64,
        rejected: u64,
    },
    /// Rejected whole with a report (file error, unknown system); nothing applied.
    Rejected { code: String },
    /// Its checkpoint was already done: a redelivery, nothing to do.
    AlreadyDone,
}

/// Why a file could not be handled now. Every variant is worth a retry: bad files are not
/// errors but [`IngestOutcome::Rejected`].
#[derive(Debug)]
pub enum IngestError {
    /// The item store or the bucket failed.
    Port(PortError),
    /// The previous file of the system (`previous`) is not done yet.
    Waiting { seq: u64, previous: u64 },
    /// Reading the object failed part-way (network), or the reader task died.
    Read(String),
    /// The system's configuration became unusable while the file was half applied: rejecting
    /// it now would misreport what was applied, so it waits for the configuration to be
    /// fixed.
    Config(String),
}

impl fmt::Display for IngestError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            IngestError::Port(e) => write!(f, "{e}"),
            IngestError::Waiting { seq, previous } => {
                write!(f, "file {seq} waits until file {previous} is done")
            }
            IngestError::Read(e) => write!(f, "reading the file failed: {e}"),
            IngestError::Config(e) => write!(f, "configuration unusable mid-file: {e}"),
        }
    }
}

impl std::error::Error for IngestError {}

impl From<PortError> for IngestError {
    fn from(e: PortError) -> Self {
        IngestError::Port(e)
    }
}

/// Key of a file's errors report: `results/<system>/<name>.errors.csv`.
pub fn errors_key(file: &InboundFile) -> String {
    format!("results/{}/{}.errors.csv", file.system, file.name)
}

/// Key of a file's summary: `results/<system>/<name>.summary.json` (written last).
pub fn summary_key(file: &InboundFile) -> String {
    format!("results/{}/{}.summary.json", file.system, file.name)
}

/// Key of a system's 外字 conversion table.
fn conversion_key(system: &str) -> String {
    format!("config/{system}/gaiji.json")
}

/// The layout of a core system; `None`: no layout known, the file is rejected.
fn layout_for(system: &str) -> Option<Layout> {
    match system {
        "jumin" => Some(Layout::jumin()),
        _ => None,
    }
}

/// A file problem found before any row was applied.
enum Rejection {
    File(Box<Layout>, FileError),
    UnknownSystem,
}

impl Rejection {
    fn code(&self) -> &'static str {
        match self {
            Rejection::File(_, e) => e.code(),
            Rejection::UnknownSystem => "file.system_unknown",
        }
    }

    fn report(&self, system: &str) -> (RowError, Summary) {
        match self {
            Rejection::File(layout, e) => (e.to_row_error(), Summary::rejected_file(layout, e)),
            Rejection::UnknownSystem => {
                let message = format!(
                    "連携元システム「{system}」のレイアウトが登録されていません。ファイル全体を取り込みません。"
                );
                let row = RowError {
                    row: 0,
                    column: String::new(),
                    code: self.code().to_owned(),
                    message: message.clone(),
                };
                // No layout: the summary names none (`layout_id` empty).
                let summary = Summary {
                    layout_id: String::new(),
                    kind: FileKind::Full,
                    encoding: None,
                    rows_read: 0,
                    valid: 0,
                    rejected: 0,
                    errors: 0,
                    errors_by_code: BTreeMap::new(),
                    file_error: Some(FileErrorSummary {
                        code: self.code().to_owned(),
                        message,
                    }),
                    applied: None,
                    duration_ms: None,
                };
                (row, summary)
            }
        }
    }
}

fn millis_since(state: &InboundState, started: jiff::Timestamp) -> u64 {
    let ms = state.clock.now().duration_since(started).as_millis();
    u64::try_from(ms.max(0)).unwrap_or(u64::MAX)
}

/// Ingests a registered file whose turn it is (see [`crate::process`]), from `checkpoint`.
pub async fn ingest(
    state: &InboundState,
    file: &InboundFile,
    file_ref: &FileRef,
    checkpoint: Checkpoint,
) -> Result<IngestOutcome, IngestError> {
    let started = state.clock.now();
    let fresh = checkpoint.state == IngestState::NotStarted;
    let Some(layout) = layout_for(&file.system) else {
        return reject(
            state,
            file,
            file_ref,
            checkpoint,
            Rejection::UnknownSystem,
            started,
        )
        .await;
    };
    let conversion = match load_conversion(state, &file.system).await? {
        Ok(c) => c,
        Err(e) if fresh => {
            let rejection = Rejection::File(Box::new(layout), e);
            return reject(state, file, file_ref, checkpoint, rejection, started).await;
        }
        Err(e) => return Err(IngestError::Config(e.to_string())),
    };
    let layout = Arc::new(layout);
    let conversion = Arc::new(conversion);

    // Pass 1 only for a fresh file: a checkpoint exists only after the same (immutable)
    // object version passed it.
    if fresh && let Err(e) = validate(state, file, &layout, &conversion).await? {
        let rejection = Rejection::File(Box::new((*layout).clone()), e);
        return reject(state, file, file_ref, checkpoint, rejection, started).await;
    }
    apply(
        state, file, file_ref, checkpoint, layout, conversion, started,
    )
    .await
}

/// The system's 外字 table: empty when there is none; `Err` when it is not a valid table.
async fn load_conversion(
    state: &InboundState,
    system: &str,
) -> Result<Result<ConversionTable, FileError>, IngestError> {
    let (_, body) = match state.blobs.get(&conversion_key(system)).await {
        Ok(found) => found,
        Err(PortError::NotFound) => return Ok(Ok(ConversionTable::empty())),
        Err(e) => return Err(e.into()),
    };
    // A table of a few hundred characters: read whole.
    let mut json = String::new();
    let mut body = body;
    if let Err(e) = tokio::io::AsyncReadExt::read_to_string(&mut body, &mut json).await {
        if e.kind() == std::io::ErrorKind::InvalidData {
            return Ok(Err(FileError::Layout(
                madoguchi_linkage::LayoutError::Conversion("not UTF-8".into()),
            )));
        }
        return Err(IngestError::Read(e.to_string()));
    }
    Ok(ConversionTable::from_json(&json).map_err(FileError::Layout))
}

/// Opens the object as announced: by its version id in a versioned bucket, else the current
/// object if its ETag is still the announced one. `Err(Ok(file error))` when it is gone
/// (deleted, or replaced in an unversioned store): a permanent problem of this file, reported
/// like any other; a replacement is processed under its own notification.
async fn open(
    state: &InboundState,
    file: &InboundFile,
) -> Result<Result<BlobBody, FileError>, IngestError> {
    let mut by_version = file.version_id.is_some();
    let got = match &file.version_id {
        Some(version) => match state.blobs.get_version(&file.key, version).await {
            // A store that keeps no versions (embedded, fed a hand-made S3 event): the
            // current object, checked by its ETag below.
            Err(PortError::Invalid(_)) => {
                by_version = false;
                state.blobs.get(&file.key).await
            }
            other => other,
        },
        None => state.blobs.get(&file.key).await,
    };
    let gone = |what: &str| {
        Ok(Err(FileError::Io(std::io::Error::new(
            std::io::ErrorKind::NotFound,
            what.to_owned(),
        ))))
    };
    match got {
        Ok((meta, body)) => {
            let unquoted = |e: &str| e.trim_matches('"').to_owned();
            if !by_version
                && let Some(announced) = &file.etag
                && !meta.etag.is_empty()
                && unquoted(&meta.etag) != unquoted(announced)
            {
                return gone("object replaced since the notification");
            }
            Ok(Ok(body))
        }
        Err(PortError::NotFound) => gone("object not found"),
        Err(e) => Err(e.into()),
    }
}

/// A file error that comes from reading the object (the network), not from its content:
/// worth a retry, not a rejection.
fn transient(e: &FileError) -> bool {
    matches!(e, FileError::Io(io) if io.kind() != std::io::ErrorKind::NotFound)
}

/// Pass 1: every row checked (`check_next_row`, no values built); `Ok(Err(_))` rejects the
/// file.
async fn validate(
    state: &InboundState,
    file: &InboundFile,
    layout: &Arc<Layout>,
    conversion: &Arc<ConversionTable>,
) -> Result<Result<(), FileError>, IngestError> {
    let body = match open(state, file).await? {
        Ok(body) => body,
        Err(e) => return Ok(Err(e)),
    };
    let (layout, conversion) = (Arc::clone(layout), Arc::clone(conversion));
    let result = tokio::task::spawn_blocking(move || -> Result<(), FileError> {
        let mut reader = LayoutReader::new(&layout, &conversion, SyncIoBridge::new(body))?;
        while reader.check_next_row()?.is_some() {}
        Ok(())
    })
    .await
    .map_err(|e| IngestError::Read(format!("validation task: {e}")))?;
    match result {
        Err(e) if transient(&e) => Err(IngestError::Read(e.to_string())),
        other => Ok(other),
    }
}

/// A run of rows from the reader task.
struct Batch {
    /// Rows before the checkpoint: only their errors matter (the report is regenerated);
    /// nothing is applied.
    replay: bool,
    rows: Vec<(u64, Record)>,
    errors: Vec<RowError>,
    /// Data rows read up to the end of this batch.
    rows_read: u64,
    /// Rows the reader rejected up to the end of this batch.
    reader_rejected: u64,
}

enum Msg {
    Batch(Batch),
    End(Box<Summary>),
}

/// The reader task of pass 2: rows up to `replay_rows` checked only, the rest read with
/// values, sent in batches of at most `batch_rows` valid rows.
fn read_rows(
    body: BlobBody,
    layout: &Layout,
    conversion: &ConversionTable,
    replay_rows: u64,
    batch_rows: usize,
    tx: &mpsc::Sender<Result<Msg, FileError>>,
) -> Result<(), FileError> {
    let mut reader = LayoutReader::new(layout, conversion, SyncIoBridge::new(body))?;
    let new_batch = |replay: bool| Batch {
        replay,
        rows: Vec::new(),
        errors: Vec::new(),
        rows_read: 0,
        reader_rejected: 0,
    };
    let mut batch = new_batch(replay_rows > 0);
    // A closed channel means the consumer gave up (an apply failed): stop reading.
    let send = |msg: Msg| tx.blocking_send(Ok(msg)).is_ok();
    loop {
        let replay = reader.position().row < replay_rows;
        if replay != batch.replay
            && !send(Msg::Batch(std::mem::replace(&mut batch, new_batch(replay))))
        {
            return Ok(());
        }
        let more = if replay {
            match reader.check_next_row()? {
                None => false,
                Some(RowCheck::Valid { .. }) => true,
                Some(RowCheck::Invalid { errors, .. }) => {
                    batch.errors.extend(errors);
                    true
                }
            }
        } else {
            match reader.next_row()? {
                None => false,
                Some(RowOutcome::Valid { row_no, record }) => {
                    batch.rows.push((row_no, record));
                    true
                }
                Some(RowOutcome::Invalid { errors, .. }) => {
                    batch.errors.extend(errors);
                    true
                }
            }
        };
        if !more {
            break;
        }
        batch.rows_read = reader.position().row;
        batch.reader_rejected = reader.summary().rejected;
        // Errors bound the batch too, so a file of bad rows does not pile them up.
        if (batch.rows.len() >= batch_rows || batch.errors.len() >= batch_rows)
            && !send(Msg::Batch(std::mem::replace(&mut batch, new_batch(replay))))
        {
            return Ok(());
        }
    }
    if (batch.rows_read > 0 || !batch.errors.is_empty()) && !send(Msg::Batch(batch)) {
        return Ok(());
    }
    send(Msg::End(Box::new(reader.into_summary())));
    Ok(())
}

fn rejection_row(r: &RowRejection) -> RowError {
    RowError {
        row: r.row,
        column: String::new(),
        code: r.code.to_owned(),
        message: r.message.to_owned(),
    }
}

async fn write_errors(
    upload: &mut Box<dyn BlobUpload>,
    errors: &[RowError],
) -> Result<(), IngestError> {
    if errors.is_empty() {
        return Ok(());
    }
    let mut buf = Vec::new();
    write_error_rows(&mut buf, errors).map_err(|e| IngestError::Read(e.to_string()))?;
    upload.write(Bytes::from(buf)).await?;
    Ok(())
}

/// [`ResidentStore::apply`](madoguchi_residents::ResidentStore::apply) of one batch.
async fn apply_rows(
    state: &InboundState,
    file_ref: &FileRef,
    rows: Vec<(u64, Record)>,
) -> Result<ApplyOutcome, IngestError> {
    state
        .residents
        .apply(&state.tenant, file_ref, rows)
        .await
        .map_err(IngestError::Port)
}

/// Pass 2: applies valid rows batch by batch after the checkpoint, regenerates the report.
async fn apply(
    state: &InboundState,
    file: &InboundFile,
    file_ref: &FileRef,
    mut checkpoint: Checkpoint,
    layout: Arc<Layout>,
    conversion: Arc<ConversionTable>,
    started: jiff::Timestamp,
) -> Result<IngestOutcome, IngestError> {
    let previous = match checkpoint.state {
        IngestState::InProgress(p) => p,
        _ => Progress::default(),
    };
    let body = match open(state, file).await? {
        Ok(body) => body,
        // Gone after it passed pass 1 (or after a checkpoint): nothing can be completed, and
        // another object version would be another file.
        Err(e) => return Err(IngestError::Read(e.to_string())),
    };
    let mut upload = state
        .blobs
        .upload(&errors_key(file), Some("text/csv; charset=utf-8"))
        .await?;
    upload
        .write(Bytes::from_static(errors_csv_header().as_bytes()))
        .await?;

    let (tx, mut rx) = mpsc::channel::<Result<Msg, FileError>>(2);
    let batch_rows = state.batch_rows.max(1);
    let replay_rows = previous.rows_done;
    let reader = tokio::task::spawn_blocking(move || {
        if let Err(e) = read_rows(body, &layout, &conversion, replay_rows, batch_rows, &tx) {
            let _ = tx.blocking_send(Err(e));
        }
    });

    let mut applied = previous.applied;
    // Store rejections before the checkpoint: the saved `rejected` minus the reader's part,
    // known once the replay is over. (With the 住民記録 layout the store rejects nothing the
    // reader accepted: 宛名番号 and 世帯番号 are required digits.)
    let mut replay_reader_rejected = 0;
    let mut store_rejected = 0;
    let mut store_codes: BTreeMap<String, u64> = BTreeMap::new();
    let mut summary = None;
    while let Some(msg) = rx.recv().await {
        let batch = match msg {
            Ok(Msg::Batch(batch)) => batch,
            Ok(Msg::End(s)) => {
                summary = Some(*s);
                break;
            }
            Err(e) => return Err(IngestError::Read(e.to_string())),
        };
        if batch.replay {
            replay_reader_rejected = batch.reader_rejected;
            write_errors(&mut upload, &batch.errors).await?;
            continue;
        }
        let store_rejected_before = previous.rejected.saturating_sub(replay_reader_rejected);
        let valid = batch.rows.len() as u64;
        let outcome = if batch.rows.is_empty() {
            Default::default()
        } else {
            apply_rows(state, file_ref, batch.rows).await?
        };
        let rejected_here = outcome.rejected.len() as u64;
        // "Applied" = taken by the store (written, unchanged, or already there from an
        // interrupted run), so the count does not depend on where a run was interrupted.
        applied += valid - rejected_here;
        store_rejected += rejected_here;
        let mut errors = batch.errors;
        for r in &outcome.rejected {
            *store_codes.entry(r.code.to_owned()).or_default() += 1;
            errors.push(rejection_row(r));
        }
        // Row order in the report; the sort is stable, so a row's errors keep their order.
        errors.sort_by_key(|e| e.row);
        write_errors(&mut upload, &errors).await?;
        checkpoint = state
            .checkpoints
            .save(
                &state.tenant,
                file_ref,
                &checkpoint,
                Progress {
                    rows_done: batch.rows_read,
                    applied,
                    rejected: batch.reader_rejected + store_rejected_before + store_rejected,
                },
            )
            .await?;
    }
    reader
        .await
        .map_err(|e| IngestError::Read(format!("reader task: {e}")))?;
    let Some(mut summary) = summary else {
        return Err(IngestError::Read("the reader stopped early".into()));
    };
    let store_total = previous.rejected.saturating_sub(replay_reader_rejected) + store_rejected;
    summary.valid = summary.valid.saturating_sub(store_total);
    summary.rejected += store_total;
    summary.errors += store_total;
    for (code, n) in store_codes {
        *summary.errors_by_code.entry(code).or_default() += n;
    }
    summary.applied = Some(applied);
    summary.duration_ms = Some(millis_since(state, started));
    upload.finish().await?;
    write_summary(state, file, &summary).await?;
    let progress = Progress {
        rows_done: summary.rows_read,
        applied,
        rejected: summary.rejected,
    };
    state
        .checkpoints
        .finish(&state.tenant, file_ref, &checkpoint, progress)
        .await?;
    Ok(IngestOutcome::Ingested {
        rows_read: summary.rows_read,
        applied,
        rejected: summary.rejected,
    })
}

async fn write_summary(
    state: &InboundState,
    file: &InboundFile,
    summary: &Summary,
) -> Result<(), IngestError> {
    let json = serde_json::to_vec_pretty(summary)
        .map_err(|e| IngestError::Port(PortError::Invalid(e.to_string())))?;
    let mut upload = state
        .blobs
        .upload(&summary_key(file), Some("application/json"))
        .await?;
    upload.write(Bytes::from(json)).await?;
    upload.finish().await?;
    Ok(())
}

/// Rejects a file whole: the report says why, the checkpoint is done (so the next file of
/// the system may go), nothing applied.
async fn reject(
    state: &InboundState,
    file: &InboundFile,
    file_ref: &FileRef,
    checkpoint: Checkpoint,
    rejection: Rejection,
    started: jiff::Timestamp,
) -> Result<IngestOutcome, IngestError> {
    if let IngestState::InProgress(_) = checkpoint.state {
        // Rows were applied by an earlier run; a rejection would misreport that.
        return Err(IngestError::Config(format!(
            "{} after rows were applied",
            rejection.code()
        )));
    }
    let (row, mut summary) = rejection.report(&file.system);
    summary.applied = Some(0);
    summary.duration_ms = Some(millis_since(state, started));
    let mut upload = state
        .blobs
        .upload(&errors_key(file), Some("text/csv; charset=utf-8"))
        .await?;
    upload
        .write(Bytes::from_static(errors_csv_header().as_bytes()))
        .await?;
    write_errors(&mut upload, std::slice::from_ref(&row)).await?;
    upload.finish().await?;
    write_summary(state, file, &summary).await?;
    state
        .checkpoints
        .finish(&state.tenant, file_ref, &checkpoint, Progress::default())
        .await?;
    tracing::warn!(system = %file.system, code = rejection.code(), "file rejected whole");
    Ok(IngestOutcome::Rejected {
        code: rejection.code().to_owned(),
    })
}
