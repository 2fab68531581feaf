//! The audit log (監査ログ): an append-only, hash-chained record per tenant of who read,
//! decrypted, exported or changed what.
//!
//! - Every record names its actor and its objects by id only: no names, no My Number, no
//!   free text from citizens. `detail` carries ids, counts and codes.
//! - Records form one chain per tenant: record `n` carries `prev`, the hash of record `n - 1`
//!   (64 zeros for record 1), and `hash`, the SHA-256 of its own canonical form
//!   ([`AuditRecord::canonical_bytes`]). Anyone holding the records can re-check the chain
//!   offline (docs/audit.md has the byte form and a script).
//! - Storage is the single table (every key tenant-first): a head item
//!   `{tenant}#AUDIT` / `HEAD` with `{seq, hash}` of the last record, and one item per record
//!   `{tenant}#AUDIT` / `R#{seq:012}`. An append writes the new head (conditional on the head
//!   it read) and the record (conditional on its absence) in one transaction, so concurrent
//!   appends serialise into a gap-free chain.
//! - With [`AuditLog::with_mirror`] every record is also written to a blob store
//!   (`audit/{tenant}/{seq:012}.json`); in AWS that is the audit bucket under S3 Object Lock
//!   (compliance mode), which nobody can rewrite within the retention period.
//! - [`verify`] / [`verify_with_mirror`] read a tenant's chain and say, per sequence number,
//!   what was changed, deleted, inserted or reordered.

mod canonical;
mod verify;

use std::collections::HashMap;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use bytes::Bytes;
use madoguchi_domain::tenant::TenantId;
use madoguchi_ports::{
    BlobStore, Clock, Condition, Item, ItemStore, Key, PortError, QueryRequest, SortKeyCondition,
    TxOp,
};
use serde::{Deserialize, Serialize};
use serde_json::{Map, Value};

pub use madoguchi_domain::ids::ApplicationId;
pub use verify::{Finding, FindingKind, VerifyReport, verify, verify_records, verify_with_mirror};

/// `prev` of the first record of every chain.
pub const GENESIS_HASH: &str = "0000000000000000000000000000000000000000000000000000000000000000";
/// Sort key of the head item.
pub const HEAD_SK: &str = "HEAD";
/// Prefix of the records' sort keys (`R#{seq:012}`).
pub const RECORD_SK_PREFIX: &str = "R#";
/// Largest sequence number (12 digits keep the sort keys in numeric order).
pub const MAX_SEQ: u64 = 999_999_999_999;
/// How often an append tries before it gives up with [`AuditError::Contended`].
pub const MAX_APPEND_ATTEMPTS: u32 = 20;
/// How often an append retries after `Unavailable` (e.g. DynamoDB's `TransactionConflict`).
const MAX_UNAVAILABLE: u32 = 5;
/// Writes of one record to the mirror (the first and 3 retries).
const MIRROR_ATTEMPTS: u32 = 4;

/// What was done. The serialized names (`snake_case`) are the ones in the records.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum AuditAction {
    /// A staff member signed in.
    StaffLogin,
    /// An application's detail was shown to staff.
    ApplicationRead,
    /// A list of applications was shown to staff.
    ApplicationList,
    /// A 個人番号 (My Number) was decrypted for display.
    MyNumberDecrypt,
    /// A CSV (or other) export.
    Export,
    /// An application's status changed.
    StatusChange,
    /// A staff memo was added or changed.
    Memo,
    /// Staff attached a file to an application.
    StaffAttachment,
    /// A permission (grant) was given or taken.
    GrantChange,
    /// Departments (組織) changed.
    OrgChange,
    /// The staff directory changed.
    StaffDirectoryChange,
    FormCreate,
    FormUpdate,
    FormPublish,
    FormClose,
    FormArchive,
    /// Somebody verified this audit log.
    AuditVerify,
    /// A resident record (住民記録) was looked up.
    ResidentLookup,
    /// A pre-application QR (事前申請QR) was opened at the counter (whatever the outcome).
    QrOpen,
    /// A per-tenant key (e.g. the QR keys) was rotated or retired.
    KeyChange,
    /// The life-event guide (ライフイベント案内) was changed.
    GuideChange,
    /// Staff set or changed an application's fee (手数料).
    FeeChange,
}

impl AuditAction {
    pub const ALL: [AuditAction; 22] = [
        AuditAction::StaffLogin,
        AuditAction::ApplicationRead,
        AuditAction::ApplicationList,
        AuditAction::MyNumberDecrypt,
        AuditAction::Export,
        AuditAction::StatusChange,
        AuditAction::Memo,
        AuditAction::StaffAttachment,
        AuditAction::GrantChange,
        AuditAction::OrgChange,
        AuditAction::StaffDirectoryChange,
        AuditAction::FormCreate,
        AuditAction::FormUpdate,
        AuditAction::FormPublish,
        AuditAction::FormClose,
        AuditAction::FormArchive,
        AuditAction::AuditVerify,
        AuditAction::ResidentLookup,
        AuditAction::QrOpen,
        AuditAction::KeyChange,
        AuditAction::GuideChange,
        AuditAction::FeeChange,
    ];

    /// The name used in records (the serde name).
    pub fn as_str(&self) -> &'static str {
        match self {
            AuditAction::StaffLogin => "staff_login",
            AuditAction::ApplicationRead => "application_read",
            AuditAction::ApplicationList => "application_list",
            AuditAction::MyNumberDecrypt => "my_number_decrypt",
            AuditAction::Export => "export",
            AuditAction::StatusChange => "status_change",
            AuditAction::Memo => "memo",
            AuditAction::StaffAttachment => "staff_attachment",
            AuditAction::GrantChange => "grant_change",
            AuditAction::OrgChange => "org_change",
            AuditAction::StaffDirectoryChange => "staff_directory_change",
            AuditAction::FormCreate => "form_create",
            AuditAction::FormUpdate => "form_update",
            AuditAction::FormPublish => "form_publish",
            AuditAction::FormClose => "form_close",
            AuditAction::FormArchive => "form_archive",
            AuditAction::AuditVerify => "audit_verify",
            AuditAction::ResidentLookup => "resident_lookup",
            AuditAction::QrOpen => "qr_open",
            AuditAction::KeyChange => "key_change",
            AuditAction::GuideChange => "guide_change",
            AuditAction::FeeChange => "fee_change",
        }
    }
}

impl std::fmt::Display for AuditAction {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(self.as_str())
    }
}

/// One thing to record, before it gets its place in the chain.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct AuditEvent {
    pub action: AuditAction,
    /// Who: the staff member's subject id (an id, never a name), or "system".
    pub actor: String,
    /// The form's slug, when the action concerns one form.
    pub form: Option<String>,
    pub application: Option<ApplicationId>,
    /// Ids, counts, codes only (e.g. `{"from":"received","to":"in_review"}`,
    /// `{"columns":[...],"rows":123}`). Never names, My Numbers or citizens' free text.
    /// Prefer integers to floats: see docs/audit.md.
    pub detail: Map<String, Value>,
}

impl AuditEvent {
    pub fn new(action: AuditAction, actor: impl Into<String>) -> Self {
        Self {
            action,
            actor: actor.into(),
            form: None,
            application: None,
            detail: Map::new(),
        }
    }

    pub fn form(mut self, slug: &str) -> Self {
        self.form = Some(slug.to_owned());
        self
    }

    pub fn application(mut self, id: ApplicationId) -> Self {
        self.application = Some(id);
        self
    }

    pub fn detail(mut self, key: &str, value: impl Into<Value>) -> Self {
        self.detail.insert(key.to_owned(), value.into());
        self
    }
}

/// A record of the chain, as stored (table item data and mirror object).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct AuditRecord {
    /// 1, 2, 3, ... per tenant, without gaps.
    pub seq: u64,
    /// When it was appended: RFC 3339 in UTC, from the log's clock.
    pub at: String,
    /// The tenant's 全国地方公共団体コード.
    pub tenant: String,
    #[serde(flatten)]
    pub event: AuditEvent,
    /// `hash` of the previous record; [`GENESIS_HASH`] for record 1.
    pub prev: String,
    /// Lowercase hex SHA-256 of [`AuditRecord::canonical_bytes`].
    pub hash: String,
}

impl AuditRecord {
    /// The bytes `hash` is computed over: the record as a JSON object without `hash`, keys
    /// sorted by their UTF-8 bytes at every level, no whitespace (docs/audit.md).
    pub fn canonical_bytes(&self) -> Vec<u8> {
        let mut value = self.to_value();
        if let Value::Object(map) = &mut value {
            map.remove("hash");
        }
        canonical::to_canonical_vec(&value)
    }

    /// Hex SHA-256 of [`AuditRecord::canonical_bytes`]: what `hash` must be.
    pub fn compute_hash(&self) -> String {
        canonical::sha256_hex(&self.canonical_bytes())
    }

    /// The record as the JSON object that is stored (every field, `null` for absent
    /// `form` / `application`).
    pub fn to_value(&self) -> Value {
        let mut map = Map::new();
        map.insert("seq".into(), Value::from(self.seq));
        map.insert("at".into(), Value::from(self.at.clone()));
        map.insert("tenant".into(), Value::from(self.tenant.clone()));
        map.insert("action".into(), Value::from(self.event.action.as_str()));
        map.insert("actor".into(), Value::from(self.event.actor.clone()));
        map.insert(
            "form".into(),
            self.event.form.clone().map_or(Value::Null, Value::from),
        );
        map.insert(
            "application".into(),
            self.event
                .application
                .map_or(Value::Null, |a| Value::from(a.to_string())),
        );
        map.insert("detail".into(), Value::Object(self.event.detail.clone()));
        map.insert("prev".into(), Value::from(self.prev.clone()));
        map.insert("hash".into(), Value::from(self.hash.clone()));
        Value::Object(map)
    }
}

#[derive(Debug, thiserror::Error)]
pub enum AuditError {
    #[error("audit log storage: {0}")]
    Port(#[from] PortError),
    /// Every attempt lost the race for the next sequence number. Nothing was recorded; the
    /// caller should fail the action it wanted to record (fail closed).
    #[error("audit log contended: no sequence number after {MAX_APPEND_ATTEMPTS} attempts")]
    Contended,
}

/// The partition of a tenant's audit log: `{tenant}#AUDIT`.
pub fn partition(tenant: &TenantId) -> String {
    tenant.key(&["AUDIT"])
}

/// The sort key of record `seq`: `R#` and 12 digits.
pub fn record_sk(seq: u64) -> String {
    format!("{RECORD_SK_PREFIX}{seq:012}")
}

/// The sequence number of a record sort key in exactly the form [`record_sk`] writes.
pub fn parse_record_sk(sk: &str) -> Option<u64> {
    let digits = sk.strip_prefix(RECORD_SK_PREFIX)?;
    parse_12_digits(digits)
}

/// The mirror's key of record `seq`: `audit/{tenant}/{seq:012}.json`.
pub fn mirror_key(tenant: &str, seq: u64) -> String {
    format!("{}{seq:012}.json", mirror_prefix(tenant))
}

/// The mirror's key prefix of a tenant: `audit/{tenant}/`.
pub fn mirror_prefix(tenant: &str) -> String {
    format!("audit/{tenant}/")
}

fn parse_12_digits(digits: &str) -> Option<u64> {
    if digits.len() == 12 && digits.bytes().all(|b| b.is_ascii_digit()) {
        digits.parse().ok()
    } else {
        None
    }
}

/// The head item's data.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
struct Head {
    seq: u64,
    hash: String,
}

/// Appends to and reads the audit log of any tenant.
///
/// Clones share one queue per tenant: appends through the same log (and its clones) wait
/// for each other instead of racing for the same sequence number. Appends from other
/// processes (other Lambda instances) race, and the conditional transaction decides.
#[derive(Clone)]
pub struct AuditLog {
    items: Arc<dyn ItemStore>,
    clock: Arc<dyn Clock>,
    mirror: Option<Arc<dyn BlobStore>>,
    queues: Arc<Mutex<HashMap<TenantId, Arc<tokio::sync::Mutex<()>>>>>,
}

impl std::fmt::Debug for AuditLog {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("AuditLog")
            .field("mirror", &self.mirror.is_some())
            .finish_non_exhaustive()
    }
}

impl AuditLog {
    pub fn new(items: Arc<dyn ItemStore>, clock: Arc<dyn Clock>) -> Self {
        Self {
            items,
            clock,
            mirror: None,
            queues: Arc::default(),
        }
    }

    /// The queue appends for `tenant` wait in.
    fn queue(&self, tenant: &TenantId) -> Arc<tokio::sync::Mutex<()>> {
        let mut queues = self.queues.lock().unwrap_or_else(|e| e.into_inner());
        queues.entry(*tenant).or_default().clone()
    }

    /// Also write every record to this blob store (in AWS: the audit bucket with S3 Object
    /// Lock) at `audit/{tenant}/{seq:012}.json`.
    pub fn with_mirror(mut self, blobs: Arc<dyn BlobStore>) -> Self {
        self.mirror = Some(blobs);
        self
    }

    /// Appends `event` as the tenant's next record and returns it.
    ///
    /// Waits for earlier appends through this log (or a clone) for the same tenant; then
    /// reads the head and writes head and record in one transaction conditional on that
    /// head. An append from another process that won the race makes this one read again
    /// after a short random pause (at most [`MAX_APPEND_ATTEMPTS`] attempts, then
    /// [`AuditError::Contended`]).
    /// The mirror is written after the transaction; a mirror failure is logged and does not
    /// fail the append (the table is the chain; [`verify_with_mirror`] reports the gap).
    ///
    /// Integral floats in `detail` are stored as integers (`2.0` becomes `2`) so that the
    /// record reads back the same from DynamoDB, which normalises numbers.
    pub async fn append(
        &self,
        tenant: &TenantId,
        mut event: AuditEvent,
    ) -> Result<AuditRecord, AuditError> {
        canonical::normalize_map(&mut event.detail);
        let queue = self.queue(tenant);
        let record = {
            let _turn = queue.lock().await;
            self.append_to_table(tenant, event).await?
        };
        self.write_mirror(&record).await;
        Ok(record)
    }

    async fn append_to_table(
        &self,
        tenant: &TenantId,
        event: AuditEvent,
    ) -> Result<AuditRecord, AuditError> {
        let pk = partition(tenant);
        let head_key = Key::new(&pk, HEAD_SK);
        let mut unavailable = 0;
        let mut attempt = 0;
        loop {
            attempt += 1;
            let head = self.items.get(&head_key).await?;
            let (seq, prev, version, condition) = match &head {
                None => (1, GENESIS_HASH.to_owned(), 1, Condition::NotExists),
                Some(item) => {
                    let head: Head = serde_json::from_value(item.data.clone()).map_err(|_| {
                        PortError::Backend(format!(
                            "audit head of {tenant} is unreadable; run `madoguchi audit verify`"
                        ))
                    })?;
                    let seq = head
                        .seq
                        .checked_add(1)
                        .filter(|s| *s <= MAX_SEQ)
                        .ok_or_else(|| {
                            PortError::Invalid(format!("audit log of {tenant} is full"))
                        })?;
                    (
                        seq,
                        head.hash,
                        item.version + 1,
                        Condition::VersionEquals(item.version),
                    )
                }
            };
            let mut record = AuditRecord {
                seq,
                at: self.clock.now().to_string(),
                tenant: tenant.to_string(),
                event: event.clone(),
                prev,
                hash: String::new(),
            };
            record.hash = record.compute_hash();
            let mut head_item = Item::new(
                head_key.clone(),
                serde_json::json!({ "seq": seq, "hash": record.hash }),
            );
            head_item.version = version;
            let record_item = Item::new(Key::new(&pk, record_sk(seq)), record.to_value());
            let ops = vec![
                TxOp::Put(head_item, condition),
                TxOp::Put(record_item, Condition::NotExists),
            ];
            match self.items.transact(ops).await {
                Ok(()) => return Ok(record),
                Err(e) if e.is_condition_failed() => {
                    if attempt >= MAX_APPEND_ATTEMPTS {
                        tracing::warn!(tenant = %tenant, attempts = attempt, "audit append contended");
                        return Err(AuditError::Contended);
                    }
                }
                // A timeout may hide a commit; the retry then records the event twice,
                // which an audit log prefers to not at all.
                Err(PortError::Unavailable(why)) => {
                    unavailable += 1;
                    if unavailable > MAX_UNAVAILABLE || attempt >= MAX_APPEND_ATTEMPTS {
                        return Err(PortError::Unavailable(why).into());
                    }
                }
                Err(e) => return Err(e.into()),
            }
            tokio::time::sleep(backoff(attempt)).await;
        }
    }

    /// Records in seq order starting after `after_seq`, at most `limit` (for a staff audit
    /// view). An unreadable record is an error (`PortError::Backend`) that points at
    /// `madoguchi audit verify`.
    pub async fn records(
        &self,
        tenant: &TenantId,
        after_seq: u64,
        limit: usize,
    ) -> Result<Vec<AuditRecord>, AuditError> {
        let mut out = Vec::new();
        let Some(from) = after_seq.checked_add(1).filter(|s| *s <= MAX_SEQ) else {
            return Ok(out);
        };
        if limit == 0 {
            return Ok(out);
        }
        let mut cursor = None;
        loop {
            let want = (limit - out.len()).min(1000);
            let page = self
                .items
                .query(
                    QueryRequest::partition(partition(tenant))
                        .sk(SortKeyCondition::Between(
                            record_sk(from),
                            record_sk(MAX_SEQ),
                        ))
                        .limit(want)
                        .after(cursor),
                )
                .await?;
            for item in page.items {
                let record: AuditRecord = serde_json::from_value(item.data).map_err(|_| {
                    PortError::Backend(format!(
                        "audit record {} of {tenant} is unreadable; run `madoguchi audit verify`",
                        item.key.sk
                    ))
                })?;
                out.push(record);
                if out.len() == limit {
                    return Ok(out);
                }
            }
            match page.next {
                Some(next) => cursor = Some(next),
                None => return Ok(out),
            }
        }
    }

    async fn write_mirror(&self, record: &AuditRecord) {
        let Some(mirror) = &self.mirror else {
            return;
        };
        let key = mirror_key(&record.tenant, record.seq);
        let body = Bytes::from(canonical::to_canonical_vec(&record.to_value()));
        let mut last = None;
        for attempt in 0..MIRROR_ATTEMPTS {
            if attempt > 0 {
                tokio::time::sleep(Duration::from_millis(50 << (attempt - 1))).await;
            }
            match mirror
                .put(&key, body.clone(), Some("application/json"))
                .await
            {
                Ok(_) => return,
                Err(e) => last = Some(e),
            }
        }
        // Port errors never carry personal data; the record itself is not logged.
        tracing::error!(
            tenant = %record.tenant,
            seq = record.seq,
            error = %last.map(|e| e.to_string()).unwrap_or_default(),
            "audit record not written to the mirror; `madoguchi audit verify` will report it"
        );
    }
}

/// Random pause before attempt `attempt + 1`: up to 5 ms · 2^(attempt-1), at most 500 ms.
fn backoff(attempt: u32) -> Duration {
    use rand::Rng;
    let cap = (5u64 << attempt.saturating_sub(1).min(7)).min(500);
    Duration::from_millis(rand::thread_rng().gen_range(1..=cap))
}

#[cfg(test)]
mod tests;
