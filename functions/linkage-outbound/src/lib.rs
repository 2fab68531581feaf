//! The `linkage-outbound` function (後方連携): accepted applications as files for core
//! systems, each application exactly once per system.
//!
//! Staff status changes leave a pending entry in the same transaction as the change
//! ([`madoguchi_applications::outbox`]) and nudge this function through its queue; a schedule
//! runs it too, so a lost nudge only delays a file. One [`run`]:
//!
//! 1. **Recover** batches an earlier run left unfinished (an `OPEN#` pointer): a sealed batch
//!    is written again (the same applications, the same file names), an open one older than
//!    the lease is sealed first.
//! 2. **Claim**: for each pending entry, the systems whose mapping (`config/outbound.json`)
//!    takes the form at that status. The application's row is built and checked against the
//!    layout first; one that does not fit gets a `failed` export record (visible to staff,
//!    retried by a re-export) and sends nothing. A fitting one is claimed in one transaction:
//!    its export record (conditional: not exported before, or the version a re-export read),
//!    a member entry of the system's open batch, and a check that the batch is still open.
//!    Then the pending entry is deleted.
//! 3. **Seal and write** each batch: sealed (no claim can join after), then the data file
//!    `…/<system>/<date>/<batch>.csv`, then its manifest `<batch>.manifest.json` (file name,
//!    rows, SHA-256) **last**, so that a reader who waits for the manifest never takes a
//!    half-written file. Then the export records become `written` and the batch is closed.
//!
//! Every step is conditional or idempotent: a crash anywhere ends, after the next run, with
//! each application in exactly one file (re-exports aside), and a rewrite of a sealed batch
//! gives the same rows.

mod rows;

use std::collections::BTreeMap;
use std::sync::Arc;
use std::time::Duration;

use bytes::Bytes;
use madoguchi_applications::keys::{APP_SK, app_pk};
use madoguchi_applications::outbox::{
    ExportRecord, ExportState, PENDING_PREFIX, PendingExport, export_key, outbound_pk,
};
use madoguchi_applications::records::ApplicationRecord;
use madoguchi_audit::{AuditAction, AuditEvent, AuditLog};
use madoguchi_domain::ids::ApplicationId;
use madoguchi_domain::tenant::TenantId;
use madoguchi_fieldcrypt::FieldCipher;
use madoguchi_linkage::{ConversionTable, FileWriter, OutboundConfig, SystemSpec};
use madoguchi_ports::{
    BlobStore, Clock, Condition, IdGen, Item, ItemStore, Key, PortError, QueryRequest,
    SortKeyCondition, TxOp,
};
use serde::{Deserialize, Serialize};
use sha2::{Digest, Sha256};

/// Where the configuration lives in the linkage bucket.
pub const CONFIG_KEY: &str = "config/outbound.json";
/// The conversion table applied before encoding, per system (`髙` → `高` for a CP932
/// system); absent means none.
pub fn conversion_key(system: &str) -> String {
    format!("config/{system}/gaiji-out.json")
}
/// Who appears in audit records.
pub const ACTOR: &str = "system:linkage-outbound";

/// Everything the function needs.
#[derive(Clone)]
pub struct OutboundState {
    /// The table: pending entries, batches, export records; the applications.
    pub items: Arc<dyn ItemStore>,
    /// The linkage bucket, for `config/`.
    pub config: Arc<dyn BlobStore>,
    /// Where files go: the linkage bucket with prefix `outbound/` in AWS, `DATA_DIR/outbox`
    /// with no prefix embedded.
    pub out: Arc<dyn BlobStore>,
    pub out_prefix: String,
    pub cipher: FieldCipher,
    pub audit: AuditLog,
    pub clock: Arc<dyn Clock>,
    pub ids: Arc<dyn IdGen>,
    /// The municipality this deployment serves.
    pub tenant: TenantId,
    /// An open batch older than this belongs to a run that died: another run seals it.
    /// Longer than the function's timeout.
    pub lease: Duration,
    /// Pending entries one run looks at (the rest wait for the next run).
    pub max_pending: usize,
}

impl OutboundState {
    /// The usual settings: a 16-minute lease (Lambda's limit is 15), 2,000 entries a run.
    #[allow(clippy::too_many_arguments)]
    pub fn new(
        items: Arc<dyn ItemStore>,
        config: Arc<dyn BlobStore>,
        out: Arc<dyn BlobStore>,
        out_prefix: &str,
        cipher: FieldCipher,
        audit: AuditLog,
        clock: Arc<dyn Clock>,
        ids: Arc<dyn IdGen>,
        tenant: TenantId,
    ) -> Self {
        Self {
            items,
            config,
            out,
            out_prefix: out_prefix.to_owned(),
            cipher,
            audit,
            clock,
            ids,
            tenant,
            lease: Duration::from_secs(16 * 60),
            max_pending: 2_000,
        }
    }
}

/// Why a run stopped. Everything it did before stays done; the next run continues.
#[derive(Debug, thiserror::Error)]
pub enum RunError {
    #[error("store: {0}")]
    Store(#[from] PortError),
    #[error("config/outbound.json: {0}")]
    Config(String),
    #[error("batch {batch}: {reason}")]
    Batch { batch: String, reason: String },
}

/// What one run did.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize)]
pub struct RunReport {
    /// Pending entries looked at.
    pub pending: usize,
    /// Applications claimed into a batch.
    pub claimed: usize,
    /// Applications that do not fit their layout (a `failed` export record each).
    pub failed: usize,
    /// Files written (data + manifest).
    pub files: Vec<WrittenFile>,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct WrittenFile {
    pub system: String,
    /// Key of the data file.
    pub key: String,
    pub manifest: String,
    pub rows: u64,
}

/// The manifest written after each data file.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Manifest {
    /// The data file's name (same folder).
    pub file: String,
    pub rows: u64,
    pub bytes: u64,
    /// SHA-256 of the data file, lower-case hex.
    pub sha256: String,
    pub system: String,
    pub layout: String,
    pub encoding: String,
    pub batch: String,
    pub created_at: String,
    /// The applications in the file, in row order (ids and 受付番号: no personal data).
    pub applications: Vec<ManifestEntry>,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct ManifestEntry {
    pub id: ApplicationId,
    pub receipt: String,
    /// 1 the first time, more for a re-export.
    pub generation: u32,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
enum BatchState {
    Open,
    Sealed,
    Written,
}

#[derive(Debug, Clone, Serialize, Deserialize)]
struct BatchRecord {
    system: String,
    state: BatchState,
    created_at: String,
    /// Day in Japan of `created_at`: the file's folder.
    date: String,
}

#[derive(Debug, Clone, Serialize, Deserialize)]
struct Member {
    application: ApplicationId,
    generation: u32,
}

fn batch_key(tenant: &TenantId, batch: &str) -> Key {
    Key::new(outbound_pk(tenant), format!("BATCH#{batch}"))
}
fn open_key(tenant: &TenantId, batch: &str) -> Key {
    Key::new(outbound_pk(tenant), format!("OPEN#{batch}"))
}
fn member_prefix(batch: &str) -> String {
    format!("MEMBER#{batch}#")
}

/// The key of a system's data file and of its manifest.
pub fn file_keys(prefix: &str, system: &str, date: &str, batch: &str) -> (String, String) {
    (
        format!("{prefix}{system}/{date}/{batch}.csv"),
        format!("{prefix}{system}/{date}/{batch}.manifest.json"),
    )
}

fn jst_date(ts: jiff::Timestamp) -> String {
    ts.to_zoned(jiff::tz::TimeZone::fixed(jiff::tz::offset(9)))
        .date()
        .to_string()
}

/// A loaded configuration: the spec and conversion table of each system.
struct Loaded {
    config: OutboundConfig,
    conversions: BTreeMap<String, ConversionTable>,
}

async fn read_text(blobs: &dyn BlobStore, key: &str) -> Result<Option<String>, RunError> {
    let (_, mut body) = match blobs.get(key).await {
        Ok(x) => x,
        Err(PortError::NotFound) => return Ok(None),
        Err(e) => return Err(e.into()),
    };
    let mut bytes = Vec::new();
    tokio::io::AsyncReadExt::read_to_end(&mut body, &mut bytes)
        .await
        .map_err(|e| RunError::Config(format!("{key}: {e}")))?;
    String::from_utf8(bytes)
        .map(Some)
        .map_err(|_| RunError::Config(format!("{key} is not UTF-8")))
}

async fn load_config(state: &OutboundState) -> Result<Option<Loaded>, RunError> {
    let Some(json) = read_text(&*state.config, CONFIG_KEY).await? else {
        return Ok(None);
    };
    let config = OutboundConfig::from_json(&json).map_err(|e| RunError::Config(e.to_string()))?;
    let mut conversions = BTreeMap::new();
    for system in config.systems.keys() {
        let table = match read_text(&*state.config, &conversion_key(system)).await? {
            Some(json) => ConversionTable::from_json(&json)
                .map_err(|e| RunError::Config(format!("{system}: {e}")))?,
            None => ConversionTable::empty(),
        };
        conversions.insert(system.clone(), table);
    }
    Ok(Some(Loaded {
        config,
        conversions,
    }))
}

async fn load_application(
    state: &OutboundState,
    id: &ApplicationId,
) -> Result<Option<ApplicationRecord>, RunError> {
    let Some(item) = state
        .items
        .get(&Key::new(app_pk(&state.tenant, id), APP_SK))
        .await?
    else {
        return Ok(None);
    };
    serde_json::from_value(item.data)
        .map(Some)
        .map_err(|e| RunError::Store(PortError::Backend(format!("application record: {e}"))))
}

/// One run: recover, claim, seal and write. With no `config/outbound.json` nothing is
/// configured to go anywhere: pending entries are dropped (an application completed before
/// a system was configured is sent by a re-export).
pub async fn run(state: &OutboundState) -> Result<RunReport, RunError> {
    let mut report = RunReport::default();
    let loaded = load_config(state).await?;
    // 1. Recover.
    let open = state
        .items
        .query(
            QueryRequest::partition(outbound_pk(&state.tenant))
                .sk(SortKeyCondition::BeginsWith("OPEN#".into())),
        )
        .await?;
    for item in open.items {
        let batch = item.key.sk.trim_start_matches("OPEN#").to_owned();
        if let Some(file) = finish_batch(state, loaded.as_ref(), &batch, false).await? {
            report.files.push(file);
        }
    }
    // 2. Claim.
    let mut batches: BTreeMap<String, (String, u64)> = BTreeMap::new();
    let mut cursor = None;
    loop {
        let page = state
            .items
            .query(
                QueryRequest::partition(outbound_pk(&state.tenant))
                    .sk(SortKeyCondition::BeginsWith(PENDING_PREFIX.into()))
                    .limit(100)
                    .after(cursor.take()),
            )
            .await?;
        for item in page.items {
            report.pending += 1;
            let pending: Option<PendingExport> = serde_json::from_value(item.data).ok();
            if let Some(pending) = pending {
                claim_pending(
                    state,
                    loaded.as_ref(),
                    &pending,
                    &item.key.sk,
                    &mut batches,
                    &mut report,
                )
                .await?;
            } else {
                tracing::error!(sk = %item.key.sk, "unreadable pending export dropped");
            }
            state.items.delete(&item.key, Condition::None).await?;
        }
        cursor = page.next;
        if cursor.is_none() || report.pending >= state.max_pending {
            break;
        }
    }
    // 3. Seal and write this run's batches.
    for (batch, _) in batches.values() {
        if let Some(file) = finish_batch(state, loaded.as_ref(), batch, true).await? {
            report.files.push(file);
        }
    }
    Ok(report)
}

/// Claims one pending entry for each system that takes it.
async fn claim_pending(
    state: &OutboundState,
    loaded: Option<&Loaded>,
    pending: &PendingExport,
    request: &str,
    batches: &mut BTreeMap<String, (String, u64)>,
    report: &mut RunReport,
) -> Result<(), RunError> {
    let Some(loaded) = loaded else {
        return Ok(());
    };
    let Some(record) = load_application(state, &pending.application).await? else {
        return Ok(());
    };
    let targets: Vec<(&str, &SystemSpec)> = match &pending.reexport {
        Some(system) => loaded
            .config
            .systems
            .get_key_value(system)
            .filter(|(_, spec)| spec.forms.contains_key(&record.slug))
            .map(|(s, spec)| (s.as_str(), spec))
            .into_iter()
            .collect(),
        None => loaded
            .config
            .targets(&record.slug, pending.status)
            .map(|(s, spec, _)| (s, spec))
            .collect(),
    };
    for (system, spec) in targets {
        let mapping = &spec.forms[&record.slug];
        let key = export_key(&state.tenant, &record.id, system);
        let existing = state.items.get(&key).await?;
        let previous: Option<ExportRecord> = existing
            .as_ref()
            .and_then(|i| serde_json::from_value(i.data.clone()).ok());
        let (condition, generation) = match (&existing, &pending.reexport) {
            (None, _) => (Condition::NotExists, 1),
            // Exported (or tried) before: only a re-export sends it again, and only once
            // per request (a rerun of this entry finds its own claim).
            (Some(_), None) => continue,
            (Some(item), Some(_)) => {
                if previous.as_ref().and_then(|p| p.request.as_deref()) == Some(request) {
                    continue;
                }
                (
                    Condition::VersionEquals(item.version),
                    previous.as_ref().map_or(1, |p| p.generation + 1),
                )
            }
        };
        let next_version = existing.as_ref().map_or(1, |i| i.version + 1);
        let conversion = &loaded.conversions[system];
        let writer = FileWriter::new(&spec.layout, conversion, spec.line_ending)
            .map_err(|e| RunError::Config(format!("{system}: {e}")))?;
        // The mapping, then the layout's own checks on the row (as the reader would see it).
        let row = rows::build_row(&state.cipher, &state.tenant, &spec.layout, mapping, &record)
            .await?
            .and_then(|values| {
                writer
                    .check(&values)
                    .map(|_| values)
                    .map_err(rows::from_row_errors)
            });
        let now = state.clock.now().to_string();
        let mut export = ExportRecord {
            system: system.to_owned(),
            generation,
            state: ExportState::Claimed,
            batch: None,
            file: None,
            at: now,
            errors: vec![],
            request: None,
        };
        if let Err(errors) = row {
            export.state = ExportState::Failed;
            export.errors = errors;
            let mut item = export_item(&key, &export, request);
            item.version = next_version;
            match state.items.put(item, condition).await {
                Ok(()) | Err(PortError::ConditionFailed { .. }) => {}
                Err(e) => return Err(e.into()),
            }
            report.failed += 1;
            tracing::warn!(application = %record.id, system, "application does not fit the layout; not sent");
            continue;
        }
        // Into this run's open batch of the system; a batch sealed under us (another run
        // took it for dead) means a fresh one.
        for _attempt in 0..2 {
            let (batch, batch_version) = match batches.get(system) {
                Some(b) => b.clone(),
                None => {
                    let b = open_batch(state, system).await?;
                    batches.insert(system.to_owned(), b.clone());
                    b
                }
            };
            export.batch = Some(batch.clone());
            let mut item = export_item(&key, &export, request);
            item.version = next_version;
            let member = Item::new(
                Key::new(
                    outbound_pk(&state.tenant),
                    format!("{}{}", member_prefix(&batch), record.id),
                ),
                serde_json::to_value(Member {
                    application: record.id,
                    generation,
                })
                .expect("serializable member"),
            );
            let tx = vec![
                TxOp::Put(item, condition),
                TxOp::Put(member, Condition::NotExists),
                TxOp::Check(
                    batch_key(&state.tenant, &batch),
                    Condition::VersionEquals(batch_version),
                ),
            ];
            match state.items.transact(tx).await {
                Ok(()) => {
                    report.claimed += 1;
                    break;
                }
                // The batch was sealed under us (op 2): claim into a fresh one.
                Err(PortError::ConditionFailed { index: Some(2) }) => {
                    batches.remove(system);
                }
                Err(PortError::ConditionFailed { index: None }) => {
                    // The adapter could not say which: look.
                    let current = state.items.get(&batch_key(&state.tenant, &batch)).await?;
                    if current.is_some_and(|b| b.version == batch_version) {
                        break;
                    }
                    batches.remove(system);
                }
                // Claimed by someone else meanwhile.
                Err(PortError::ConditionFailed { .. }) => break,
                Err(e) => return Err(e.into()),
            }
        }
    }
    Ok(())
}

fn export_item(key: &Key, export: &ExportRecord, request: &str) -> Item {
    let mut export = export.clone();
    export.request = Some(request.to_owned());
    Item::new(
        key.clone(),
        serde_json::to_value(&export).expect("serializable export record"),
    )
}

async fn open_batch(state: &OutboundState, system: &str) -> Result<(String, u64), RunError> {
    let now = state.clock.now();
    let batch = state.ids.new_id().to_string();
    let record = BatchRecord {
        system: system.to_owned(),
        state: BatchState::Open,
        created_at: now.to_string(),
        date: jst_date(now),
    };
    state
        .items
        .transact(vec![
            TxOp::Put(
                Item::new(
                    batch_key(&state.tenant, &batch),
                    serde_json::to_value(&record).expect("serializable batch"),
                ),
                Condition::NotExists,
            ),
            TxOp::Put(
                Item::new(
                    open_key(&state.tenant, &batch),
                    serde_json::json!({ "system": system }),
                ),
                Condition::NotExists,
            ),
        ])
        .await?;
    Ok((batch, 1))
}

/// Seals (if `ours`, or if the batch outlived its lease) and writes one batch. `None` when
/// there is nothing to write yet (someone else's batch, still within its lease).
async fn finish_batch(
    state: &OutboundState,
    loaded: Option<&Loaded>,
    batch: &str,
    ours: bool,
) -> Result<Option<WrittenFile>, RunError> {
    let key = batch_key(&state.tenant, batch);
    let Some(item) = state.items.get(&key).await? else {
        state
            .items
            .delete(&open_key(&state.tenant, batch), Condition::None)
            .await?;
        return Ok(None);
    };
    let mut version = item.version;
    let mut record: BatchRecord =
        serde_json::from_value(item.data).map_err(|e| RunError::Batch {
            batch: batch.to_owned(),
            reason: e.to_string(),
        })?;
    if record.state == BatchState::Open {
        let created: jiff::Timestamp = record.created_at.parse().map_err(|_| RunError::Batch {
            batch: batch.to_owned(),
            reason: "bad created_at".into(),
        })?;
        let age = state.clock.now().duration_since(created);
        if !ours && age < jiff::SignedDuration::try_from(state.lease).unwrap_or_default() {
            return Ok(None);
        }
        record.state = BatchState::Sealed;
        let mut sealed = Item::new(
            key.clone(),
            serde_json::to_value(&record).expect("serializable batch"),
        );
        sealed.version = version + 1;
        match state
            .items
            .put(sealed, Condition::VersionEquals(version))
            .await
        {
            Ok(()) => version += 1,
            // Someone else sealed it meanwhile: they write it.
            Err(PortError::ConditionFailed { .. }) => return Ok(None),
            Err(e) => return Err(e.into()),
        }
    }
    if record.state == BatchState::Written {
        state
            .items
            .delete(&open_key(&state.tenant, batch), Condition::None)
            .await?;
        return Ok(None);
    }
    let Some(loaded) = loaded else {
        return Err(RunError::Config(
            "a batch waits to be written but config/outbound.json is gone".into(),
        ));
    };
    let spec = loaded
        .config
        .systems
        .get(&record.system)
        .ok_or_else(|| RunError::Batch {
            batch: batch.to_owned(),
            reason: format!("system {} is no longer configured", record.system),
        })?;
    let conversion = &loaded.conversions[&record.system];
    // The members, in application-id order: a rewrite gives the same rows in the same order.
    let mut members = Vec::new();
    let mut cursor = None;
    loop {
        let page = state
            .items
            .query(
                QueryRequest::partition(outbound_pk(&state.tenant))
                    .sk(SortKeyCondition::BeginsWith(member_prefix(batch)))
                    .after(cursor.take()),
            )
            .await?;
        for item in page.items {
            let m: Member = serde_json::from_value(item.data).map_err(|e| RunError::Batch {
                batch: batch.to_owned(),
                reason: e.to_string(),
            })?;
            members.push(m);
        }
        cursor = page.next;
        if cursor.is_none() {
            break;
        }
    }
    members.sort_by_key(|m| m.application.to_string());
    let mut file = None;
    if !members.is_empty() {
        let mut writer = FileWriter::new(&spec.layout, conversion, spec.line_ending)
            .map_err(|e| RunError::Config(format!("{}: {e}", record.system)))?;
        let mut entries = Vec::with_capacity(members.len());
        for m in &members {
            let app = load_application(state, &m.application)
                .await?
                .ok_or_else(|| RunError::Batch {
                    batch: batch.to_owned(),
                    reason: format!("application {} is gone", m.application),
                })?;
            let mapping = spec.forms.get(&app.slug).ok_or_else(|| RunError::Batch {
                batch: batch.to_owned(),
                reason: format!("form {} is no longer mapped", app.slug),
            })?;
            let values = rows::build_row(&state.cipher, &state.tenant, &spec.layout, mapping, &app)
                .await?
                .map_err(|errors| RunError::Batch {
                    batch: batch.to_owned(),
                    reason: format!(
                        "application {} no longer fits the layout: {}",
                        m.application,
                        errors
                            .iter()
                            .map(|e| e.code.as_str())
                            .collect::<Vec<_>>()
                            .join(", ")
                    ),
                })?;
            writer.push(&values).map_err(|errors| RunError::Batch {
                batch: batch.to_owned(),
                reason: format!(
                    "row of {}: {}",
                    m.application,
                    rows::from_row_errors(errors)
                        .iter()
                        .map(|e| e.code.clone())
                        .collect::<Vec<_>>()
                        .join(", ")
                ),
            })?;
            entries.push(ManifestEntry {
                id: app.id,
                receipt: app.receipt.clone(),
                generation: m.generation,
            });
        }
        let rows = writer.rows();
        let bytes = writer.finish();
        let (data_key, manifest_key) =
            file_keys(&state.out_prefix, &record.system, &record.date, batch);
        let name = data_key.rsplit('/').next().unwrap_or(&data_key).to_owned();
        let manifest = Manifest {
            file: name,
            rows,
            bytes: bytes.len() as u64,
            sha256: hex::encode(Sha256::digest(&bytes)),
            system: record.system.clone(),
            layout: spec.layout.id.clone(),
            encoding: match spec.layout.encoding {
                madoguchi_linkage::EncodingSpec::Cp932 => "cp932",
                _ => "utf8",
            }
            .into(),
            batch: batch.to_owned(),
            created_at: record.created_at.clone(),
            applications: entries,
        };
        // Audited before anything leaves: no record, no file.
        let ids: Vec<String> = members.iter().map(|m| m.application.to_string()).collect();
        state
            .audit
            .append(
                &state.tenant,
                AuditEvent::new(AuditAction::Export, ACTOR)
                    .detail("system", record.system.as_str())
                    .detail("file", data_key.as_str())
                    .detail("rows", rows)
                    .detail("applications", ids),
            )
            .await
            .map_err(|e| RunError::Batch {
                batch: batch.to_owned(),
                reason: format!("audit: {e}"),
            })?;
        state
            .out
            .put(&data_key, Bytes::from(bytes), Some("text/csv"))
            .await?;
        let manifest_json = serde_json::to_vec_pretty(&manifest).expect("serializable manifest");
        state
            .out
            .put(
                &manifest_key,
                Bytes::from(manifest_json),
                Some("application/json"),
            )
            .await?;
        for m in &members {
            let key = export_key(&state.tenant, &m.application, &record.system);
            let Some(item) = state.items.get(&key).await? else {
                continue;
            };
            let mut export: ExportRecord = match serde_json::from_value(item.data.clone()) {
                Ok(e) => e,
                Err(_) => continue,
            };
            if export.batch.as_deref() != Some(batch) || export.state != ExportState::Claimed {
                continue;
            }
            export.state = ExportState::Written;
            export.file = Some(data_key.clone());
            let mut updated = Item::new(key, serde_json::to_value(&export).expect("export"));
            updated.version = item.version + 1;
            match state
                .items
                .put(updated, Condition::VersionEquals(item.version))
                .await
            {
                Ok(()) | Err(PortError::ConditionFailed { .. }) => {}
                Err(e) => return Err(e.into()),
            }
        }
        file = Some(WrittenFile {
            system: record.system.clone(),
            key: data_key,
            manifest: manifest_key,
            rows,
        });
    }
    record.state = BatchState::Written;
    let mut written = Item::new(key, serde_json::to_value(&record).expect("batch"));
    written.version = version + 1;
    state
        .items
        .transact(vec![
            TxOp::Put(written, Condition::VersionEquals(version)),
            TxOp::Delete(open_key(&state.tenant, batch), Condition::None),
        ])
        .await?;
    Ok(file)
}

/// An SQS batch of nudges (the local host's consumer): one run for the batch; if it fails,
/// every message is reported failed and redelivered.
pub async fn handle_sqs(
    state: &OutboundState,
    event: aws_lambda_events::sqs::SqsEvent,
) -> aws_lambda_events::sqs::SqsBatchResponse {
    let value = serde_json::to_value(&event).unwrap_or_default();
    let answer = handle(state, value).await;
    serde_json::from_value(answer).unwrap_or_default()
}

/// What the queue and the schedule send: anything at all means "run". The body is not
/// trusted for anything but logging.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct Nudge {
    pub tenant: String,
    pub reason: String,
}

/// The Lambda entry: an SQS batch (nudges from status changes) or an EventBridge scheduled
/// event. One run serves the whole batch; if it fails, every message of the batch is
/// reported failed so SQS redelivers (the schedule would catch up anyway).
pub async fn handle(state: &OutboundState, event: serde_json::Value) -> serde_json::Value {
    let records: Vec<String> = event
        .get("Records")
        .and_then(|r| r.as_array())
        .map(|r| {
            r.iter()
                .filter_map(|m| m.get("messageId").and_then(|v| v.as_str()))
                .map(str::to_owned)
                .collect()
        })
        .unwrap_or_default();
    match run(state).await {
        Ok(report) => {
            tracing::info!(
                pending = report.pending,
                claimed = report.claimed,
                failed = report.failed,
                files = report.files.len(),
                "outbound run done"
            );
            serde_json::json!({ "batchItemFailures": [] })
        }
        Err(e) => {
            tracing::error!(error = %e, "outbound run failed; the next run continues");
            let failures: Vec<serde_json::Value> = records
                .iter()
                .map(|id| serde_json::json!({ "itemIdentifier": id }))
                .collect();
            serde_json::json!({ "batchItemFailures": failures })
        }
    }
}
