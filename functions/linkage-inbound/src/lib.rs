//! The `linkage-inbound` function (前方連携): ingests the files that core systems (基幹系)
//! write under `inbound/<system>/` of the linkage bucket. S3 notifies SQS, SQS invokes this
//! function with a batch; locally the host turns files dropped into `DATA_DIR/inbox/<system>/`
//! into the same notifications.
//!
//! Per announced file:
//! 1. **Registration** ([`register`]): the file gets a per-system sequence number (an atomic
//!    counter) and, in one transaction, its registration `FILE#{key}#{version}` (conditional
//!    on not existing) and a pointer `SEQ#{seq:020}` → (key, version). A redelivered
//!    notification finds the registration and reuses its number.
//! 2. **Order**: files of one system are applied in sequence order. A file is ingested only
//!    when the highest registered sequence number below its own belongs to a file whose
//!    checkpoint is done (or there is none); otherwise its message fails and SQS redelivers it
//!    after the visibility timeout. "Highest registered below", not "seq − 1": a crash between
//!    the counter increment and the transaction leaves a number that nobody holds, which must
//!    not block the system forever.
//! 3. **Ingest** ([`ingest`]): the object is streamed twice through the system's layout
//!    (`madoguchi-linkage`): a validation pass (a file error anywhere rejects the whole file,
//!    nothing applied), then an apply pass in batches to the resident store, with a checkpoint
//!    after each batch so that a redelivery resumes instead of starting over.
//! 4. **Reports** next to the file: `results/<system>/<name>.errors.csv` and, last,
//!    `results/<system>/<name>.summary.json`.
//!
//! Contract with the event source: failures are reported per SQS message
//! (`batchItemFailures`). A transient problem (store or bucket unavailable, the previous file
//! of the system not done yet) fails only that message. A bad file is not a failure: it is
//! rejected with a report and acknowledged. A message that cannot be parsed at all is
//! acknowledged and logged instead of looping until the dead-letter queue.

mod ingest;

use std::sync::Arc;

use aws_lambda_events::sqs::{SqsBatchResponse, SqsEvent};
use madoguchi_domain::tenant::TenantId;
pub use madoguchi_events::decode_s3_key;
use madoguchi_events::{CreatedObject, batch_failures, objects_created};
use madoguchi_ports::blob::check_key;
use madoguchi_ports::{
    BlobStore, Clock, Condition, Item, ItemStore, Key, PortError, QueryRequest, SortKeyCondition,
    TxOp,
};
use madoguchi_residents::{Checkpoints, FieldCipher, FileRef, IngestState, ResidentStore};

pub use ingest::{IngestError, IngestOutcome, errors_key, ingest, summary_key};

/// Valid rows handed to [`ResidentStore::apply`] at a time; a checkpoint follows each batch.
pub const BATCH_ROWS: usize = 1_000;

/// Everything the function needs.
#[derive(Clone)]
pub struct InboundState {
    /// The table: file registry, sequence pointers, checkpoints (and, through `residents`,
    /// the residents).
    pub items: Arc<dyn ItemStore>,
    /// The linkage bucket: the files (`inbound/`), the 外字 tables (`config/<system>/gaiji.json`)
    /// and the reports (`results/`).
    pub blobs: Arc<dyn BlobStore>,
    /// Where valid rows are applied.
    pub residents: ResidentStore,
    /// How far each file got.
    pub checkpoints: Checkpoints,
    pub clock: Arc<dyn Clock>,
    /// The municipality this deployment serves; core-system files carry no tenant themselves.
    pub tenant: TenantId,
    /// Valid rows per apply batch ([`BATCH_ROWS`]; tests use fewer to cross batch boundaries
    /// with small files).
    pub batch_rows: usize,
}

impl InboundState {
    /// The usual wiring: residents and checkpoints over `items`, 個人番号 sealed by `cipher`.
    pub fn new(
        items: Arc<dyn ItemStore>,
        blobs: Arc<dyn BlobStore>,
        cipher: FieldCipher,
        clock: Arc<dyn Clock>,
        tenant: TenantId,
    ) -> Self {
        Self {
            residents: ResidentStore::new(items.clone(), cipher),
            checkpoints: Checkpoints::new(items.clone(), clock.clone()),
            items,
            blobs,
            clock,
            tenant,
            batch_rows: BATCH_ROWS,
        }
    }
}

/// A file announced by a notification.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct InboundFile {
    pub system: String,
    pub key: String,
    /// The part of the key after `inbound/<system>/`; names the reports.
    pub name: String,
    /// Object version id, or the event sequencer / etag when the bucket is unversioned.
    pub version: String,
    pub size: i64,
    /// The S3 version id when the bucket is versioned: the content is read by it, so a file
    /// written again under the same key is still read as it was announced.
    pub version_id: Option<String>,
    /// The announced ETag: without a version id, an object whose ETag differs was replaced
    /// since (its own notification brings the new content).
    pub etag: Option<String>,
}

/// What registration found.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Registration {
    /// First time: registered with this sequence number.
    New(u64),
    /// Registered before (a redelivery): its sequence number.
    Duplicate(u64),
}

impl Registration {
    /// The file's sequence number among the files of its system.
    pub fn seq(&self) -> u64 {
        match self {
            Registration::New(seq) | Registration::Duplicate(seq) => *seq,
        }
    }
}

/// Whether a system name can be part of an item key (it becomes one segment of the
/// registry's partition key, so no `#`) and of a blob key.
fn system_ok(system: &str) -> bool {
    !system.is_empty()
        && system.chars().count() <= 64
        && !system.chars().any(|c| c == '#' || c.is_control())
        && system != "."
        && system != ".."
}

fn parse_file(object: &CreatedObject) -> Result<InboundFile, &'static str> {
    let key = object.key.clone().ok_or("no key")?;
    let mut parts = key.splitn(3, '/');
    let (Some("inbound"), Some(system), Some(name)) = (parts.next(), parts.next(), parts.next())
    else {
        return Err("outside inbound/<system>/");
    };
    if system.is_empty() || name.is_empty() || name.ends_with('/') {
        return Err("outside inbound/<system>/");
    }
    if !system_ok(system) {
        return Err("system name not usable in keys");
    }
    // S3 accepts keys the blob port refuses (`a/../b`, `a//b`): such a file could be neither
    // read nor reported, and retrying would not change that.
    let report = format!("results/{system}/{name}.summary.json");
    if check_key(&key).is_err() || check_key(&report).is_err() {
        return Err("key not usable by the blob store");
    }
    let version = object
        .version_id
        .clone()
        .or_else(|| object.sequencer.clone())
        .or_else(|| object.etag.clone())
        .ok_or("no version, sequencer or etag")?;
    Ok(InboundFile {
        system: system.to_owned(),
        name: name.to_owned(),
        key: key.clone(),
        version,
        size: object.size.unwrap_or(0),
        // S3 writes "null" for objects of an unversioned bucket.
        version_id: object.version_id.clone().filter(|v| v != "null"),
        etag: object.etag.clone(),
    })
}

/// The registry partition of a system (shared with the checkpoints of `madoguchi-residents`).
fn registry_pk(state: &InboundState, system: &str) -> String {
    madoguchi_residents::keys::linkage_inbound_pk(&state.tenant, system)
}

fn registration_sk(file: &InboundFile) -> String {
    format!("FILE#{}#{}", file.key, file.version)
}

/// Sort key of the counter that numbers a system's files. Outside the `SEQ#` range on
/// purpose, so that the pointer query never sees it.
const COUNTER_SK: &str = "COUNTER#SEQ";

fn seq_sk(seq: u64) -> String {
    format!("SEQ#{seq:020}")
}

async fn registered_seq(state: &InboundState, key: &Key) -> Result<Option<u64>, PortError> {
    Ok(state.items.get(key).await?.map(|item| {
        // Registrations made before files were numbered have no `seq`: 0 puts them before
        // every numbered file and gives them no predecessor.
        item.data.get("seq").and_then(|s| s.as_u64()).unwrap_or(0)
    }))
}

/// Registers one file, or finds its earlier registration (same key and version).
pub async fn register(state: &InboundState, file: &InboundFile) -> Result<Registration, PortError> {
    let pk = registry_pk(state, &file.system);
    let key = Key::new(pk.clone(), registration_sk(file));
    // Read first so that a redelivery does not burn a sequence number.
    if let Some(seq) = registered_seq(state, &key).await? {
        return Ok(Registration::Duplicate(seq));
    }
    let n = state
        .items
        .increment(&Key::new(pk.clone(), COUNTER_SK), 1)
        .await?;
    let seq = u64::try_from(n).map_err(|_| PortError::Backend("negative file counter".into()))?;
    let registration = serde_json::json!({
        "system": file.system,
        "key": file.key,
        "version": file.version,
        "size": file.size,
        "seq": seq,
        "status": "received",
        "received_at": state.clock.now().to_string(),
    });
    let pointer = serde_json::json!({ "key": file.key, "version": file.version });
    let ops = vec![
        TxOp::Put(Item::new(key.clone(), registration), Condition::NotExists),
        TxOp::Put(
            Item::new(Key::new(pk, seq_sk(seq)), pointer),
            Condition::NotExists,
        ),
    ];
    match state.items.transact(ops).await {
        Ok(()) => {
            tracing::info!(system = %file.system, seq, size = file.size, "file registered");
            Ok(Registration::New(seq))
        }
        // A concurrent delivery registered it first; ours leaves a gap in the numbers.
        Err(PortError::ConditionFailed { .. }) => match registered_seq(state, &key).await? {
            Some(seq) => Ok(Registration::Duplicate(seq)),
            None => Err(PortError::Backend(
                "file registration raced and vanished".into(),
            )),
        },
        Err(e) => Err(e),
    }
}

/// The file that must be done before `file` may be applied: the highest registered sequence
/// number below `file.seq`, if any.
pub async fn predecessor(
    state: &InboundState,
    file: &FileRef,
) -> Result<Option<FileRef>, PortError> {
    if file.seq <= 1 {
        return Ok(None);
    }
    let request = QueryRequest::partition(registry_pk(state, &file.system))
        .sk(SortKeyCondition::Between(seq_sk(0), seq_sk(file.seq - 1)))
        .descending()
        .limit(1);
    let page = state.items.query(request).await?;
    let Some(item) = page.items.into_iter().next() else {
        return Ok(None);
    };
    let seq = item
        .key
        .sk
        .strip_prefix("SEQ#")
        .and_then(|s| s.parse::<u64>().ok());
    let text = |name: &str| {
        item.data
            .get(name)
            .and_then(|v| v.as_str())
            .map(str::to_owned)
    };
    match (seq, text("key"), text("version")) {
        (Some(seq), Some(key), Some(version)) => Ok(Some(FileRef {
            system: file.system.clone(),
            key,
            version,
            seq,
        })),
        _ => Err(PortError::Backend("malformed file sequence pointer".into())),
    }
}

/// Registers, orders and ingests one announced file.
pub async fn process(
    state: &InboundState,
    file: &InboundFile,
) -> Result<IngestOutcome, IngestError> {
    let registration = register(state, file).await?;
    let file_ref = FileRef {
        system: file.system.clone(),
        key: file.key.clone(),
        version: file.version.clone(),
        seq: registration.seq(),
    };
    let checkpoint = state.checkpoints.load(&state.tenant, &file_ref).await?;
    if let IngestState::Done(_) = checkpoint.state {
        return Ok(IngestOutcome::AlreadyDone);
    }
    if let Some(previous) = predecessor(state, &file_ref).await? {
        let done = matches!(
            state
                .checkpoints
                .load(&state.tenant, &previous)
                .await?
                .state,
            IngestState::Done(_)
        );
        if !done {
            return Err(IngestError::Waiting {
                seq: file_ref.seq,
                previous: previous.seq,
            });
        }
    }
    ingest(state, file, &file_ref, checkpoint).await
}

/// Handles one SQS batch with Lambda's partial-failure contract.
pub async fn handle(state: &InboundState, event: SqsEvent) -> SqsBatchResponse {
    let mut failures = Vec::new();
    for message in event.records {
        let id = message.message_id.clone().unwrap_or_default();
        let body = message.body.as_deref().unwrap_or("");
        let Ok(objects) = objects_created(body) else {
            tracing::warn!(message_id = %id, "not an S3 notification; dropped");
            continue;
        };
        let mut failed = false;
        for object in objects {
            let file = match parse_file(&object) {
                Ok(file) => file,
                Err(reason) => {
                    tracing::warn!(message_id = %id, reason, "object ignored");
                    continue;
                }
            };
            match process(state, &file).await {
                Ok(outcome) => tracing::info!(
                    system = %file.system,
                    size = file.size,
                    outcome = ?outcome,
                    "inbound file handled"
                ),
                Err(e @ IngestError::Waiting { .. }) => {
                    tracing::info!(message_id = %id, system = %file.system, reason = %e, "file waits for its predecessor; will retry");
                    failed = true;
                }
                Err(e) => {
                    tracing::warn!(message_id = %id, system = %file.system, error = %e, "ingest failed; will retry");
                    failed = true;
                }
            }
        }
        if failed {
            failures.push(id);
        }
    }
    batch_failures(failures)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn only_inbound_system_files_are_taken() {
        let obj = |k: &str| CreatedObject {
            bucket: None,
            key: Some(k.into()),
            size: Some(3),
            etag: Some("e".into()),
            version_id: None,
            sequencer: Some("0055".into()),
        };
        let file = parse_file(&obj("inbound/jumin/a.csv")).unwrap();
        assert_eq!(
            (
                file.system.as_str(),
                file.name.as_str(),
                file.version.as_str()
            ),
            ("jumin", "a.csv", "0055")
        );
        assert!(parse_file(&obj("results/a.csv")).is_err());
        assert!(parse_file(&obj("inbound//a.csv")).is_err());
        assert!(parse_file(&obj("inbound/jumin")).is_err());
        assert!(parse_file(&obj("inbound/ju#min/a.csv")).is_err());
        assert!(parse_file(&obj("inbound/../a.csv")).is_err());
        assert!(parse_file(&obj("inbound/jumin/a/../b.csv")).is_err());
        assert!(parse_file(&obj("inbound/jumin/a//b.csv")).is_err());
    }

    #[test]
    fn sequence_pointers_sort_numerically() {
        assert!(seq_sk(9) < seq_sk(10));
        assert!(!COUNTER_SK.starts_with("SEQ#"));
    }
}
