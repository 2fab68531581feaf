//! Checking a chain: in the table ([`verify`]), against the mirror ([`verify_with_mirror`]),
//! or as a list of records ([`verify_records`]).
//!
//! # How findings are classified
//! Records are read in storage order (sort-key order). Each record is checked on its own
//! (its hash), against the storage order, then the records are put back into `seq` order
//! (within a window of [`REORDER_WINDOW`] records) and every link is checked:
//!
//! | what is seen | kind | at seq |
//! |---|---|---|
//! | a record's hash is not the hash of its content | `Changed` | that record |
//! | record `n + 1` links (`prev`) to a hash other than record `n`'s, while `n` links to `n - 1` | `Changed` (record `n` was rewritten and re-hashed) | `n` |
//! | a record links to neither its predecessor nor its successor | `Inserted` | that record |
//! | two records have the same seq | `Inserted` | that seq |
//! | records after the head's seq | `Inserted` | first one after the head |
//! | seqs missing between two records | `Deleted` | first missing seq |
//! | a record stored right after one with a higher seq | `Reordered` | the record stored late |
//! | (table) a record stored under the sort key of another seq | `Reordered` | that record |
//! | the head's seq is beyond the last record (deleted tail) | `HeadMismatch` | first missing seq |
//! | the head's hash is not the last record's | `HeadMismatch` | last record |
//! | records but no head item | `HeadMismatch` | last record |
//! | (table) an item that is not a record, or an unreadable head (seq 0) | `Unreadable` | from the sort key |
//! | (mirror) a record missing from the mirror, different there, or only there | `MirrorMismatch` | that record |

use std::cmp::Ordering;
use std::collections::{BinaryHeap, HashSet, VecDeque};

use madoguchi_domain::tenant::TenantId;
use madoguchi_ports::{BlobStore, ItemStore, Key, PortError, QueryRequest, SortKeyCondition};
use serde::Serialize;
use serde_json::Value;
use tokio::io::AsyncReadExt;

use crate::{
    AuditError, AuditRecord, GENESIS_HASH, HEAD_SK, Head, MAX_SEQ, RECORD_SK_PREFIX, mirror_key,
    mirror_prefix, parse_12_digits, parse_record_sk, partition, record_sk,
};

/// How far (in records) a record may be out of storage order and still be put back into
/// the chain. A record displaced further is reported `Reordered`, and its place in the chain
/// as `Deleted`.
pub const REORDER_WINDOW: usize = 512;
/// Items per page when reading the table.
const PAGE: usize = 500;
/// Largest mirror object read (a record is far smaller).
const MAX_MIRROR_OBJECT: u64 = 1 << 20;

#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct VerifyReport {
    pub tenant: String,
    /// Records read (including unreadable items).
    pub records: u64,
    /// Highest seq read (0 when none).
    pub last_seq: u64,
    /// In seq order.
    pub findings: Vec<Finding>,
}

impl VerifyReport {
    pub fn ok(&self) -> bool {
        self.findings.is_empty()
    }
}

#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct Finding {
    pub seq: u64,
    pub kind: FindingKind,
    pub message: String,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum FindingKind {
    Changed,
    Deleted,
    Inserted,
    Reordered,
    HeadMismatch,
    MirrorMismatch,
    Unreadable,
}

impl FindingKind {
    pub fn as_str(&self) -> &'static str {
        match self {
            FindingKind::Changed => "changed",
            FindingKind::Deleted => "deleted",
            FindingKind::Inserted => "inserted",
            FindingKind::Reordered => "reordered",
            FindingKind::HeadMismatch => "head_mismatch",
            FindingKind::MirrorMismatch => "mirror_mismatch",
            FindingKind::Unreadable => "unreadable",
        }
    }
}

impl std::fmt::Display for FindingKind {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(self.as_str())
    }
}

/// Pure check of records in storage order (what [`verify`] uses); `head` = (seq, hash) from
/// the head item if any.
pub fn verify_records(
    records: impl IntoIterator<Item = AuditRecord>,
    head: Option<(u64, String)>,
) -> VerifyReport {
    let mut verifier = Verifier::default();
    for record in records {
        verifier.push(&record);
    }
    verifier.finish(match head {
        Some((seq, hash)) => HeadState::Present(seq, hash),
        None => HeadState::Absent,
    })
}

/// Reads the tenant's whole chain from the item store (paginated, memory proportional to
/// one page) and checks it.
pub async fn verify(items: &dyn ItemStore, tenant: &TenantId) -> Result<VerifyReport, AuditError> {
    verify_inner(items, None, tenant).await
}

/// Also compares with the mirror: a record missing or different in the mirror, or present
/// in the mirror but not the table, is a finding.
pub async fn verify_with_mirror(
    items: &dyn ItemStore,
    mirror: &dyn BlobStore,
    tenant: &TenantId,
) -> Result<VerifyReport, AuditError> {
    verify_inner(items, Some(mirror), tenant).await
}

async fn verify_inner(
    items: &dyn ItemStore,
    mirror: Option<&dyn BlobStore>,
    tenant: &TenantId,
) -> Result<VerifyReport, AuditError> {
    let pk = partition(tenant);
    let head_key = Key::new(&pk, HEAD_SK);
    let mut verifier = Verifier::default();
    let mut mirror = mirror.map(|blobs| MirrorCheck::new(blobs, tenant));
    let mut range = SortKeyCondition::BeginsWith(RECORD_SK_PREFIX.to_owned());
    // Appends may land while we read: read the head after the records, and read on while
    // the head is ahead of what was read (a few times; then what is missing is missing).
    let mut rounds = 0;
    let head = loop {
        scan(items, &pk, range, tenant, &mut verifier, mirror.as_mut()).await?;
        let head = read_head(items, &head_key, &mut verifier).await?;
        let read_up_to = verifier.max_seen.unwrap_or(0);
        match &head {
            HeadState::Present(seq, _) if *seq > read_up_to && rounds < 5 => {
                rounds += 1;
                range = SortKeyCondition::Between(record_sk(read_up_to + 1), record_sk(MAX_SEQ));
            }
            _ => break head,
        }
    };
    if let Some(mirror) = mirror {
        let head_seq = match &head {
            HeadState::Present(seq, _) => *seq,
            _ => 0,
        };
        mirror.finish(items, &pk, head_seq, &mut verifier).await?;
    }
    let mut report = verifier.finish(head);
    report.tenant = tenant.to_string();
    Ok(report)
}

async fn scan(
    items: &dyn ItemStore,
    pk: &str,
    range: SortKeyCondition,
    tenant: &TenantId,
    verifier: &mut Verifier,
    mut mirror: Option<&mut MirrorCheck<'_>>,
) -> Result<(), AuditError> {
    let mut cursor = None;
    loop {
        let page = items
            .query(
                QueryRequest::partition(pk)
                    .sk(range.clone())
                    .limit(PAGE)
                    .after(cursor),
            )
            .await?;
        for item in page.items {
            let sk_seq = parse_record_sk(&item.key.sk);
            let record = serde_json::from_value::<AuditRecord>(item.data.clone()).ok();
            let seq = match &record {
                Some(record) => {
                    check_item(verifier, record, sk_seq, tenant, &item);
                    verifier.push(record);
                    record.seq
                }
                None => {
                    let seq = sk_seq.unwrap_or(0);
                    verifier.unreadable(
                        seq,
                        format!("the item under {} is not a readable record", item.key.sk),
                    );
                    seq
                }
            };
            if let Some(mirror) = mirror.as_deref_mut() {
                mirror
                    .table_entry(verifier, sk_seq, seq, &item.data)
                    .await?;
            }
        }
        match page.next {
            Some(next) => cursor = Some(next),
            None => return Ok(()),
        }
    }
}

/// What the table adds to a record's own checks: where it is stored, whose it is, and that
/// the item holds nothing but the record.
fn check_item(
    verifier: &mut Verifier,
    record: &AuditRecord,
    sk_seq: Option<u64>,
    tenant: &TenantId,
    item: &madoguchi_ports::Item,
) {
    let seq = record.seq;
    match sk_seq {
        Some(at) if at != seq => verifier.add(
            seq,
            FindingKind::Reordered,
            format!("record {seq} is stored under the key of record {at}"),
        ),
        Some(_) => {}
        None => verifier.add(
            seq,
            FindingKind::Inserted,
            format!("record {seq} is stored under an unexpected sort key"),
        ),
    }
    if record.tenant != tenant.as_str() {
        verifier.add(
            seq,
            FindingKind::Inserted,
            format!("record {seq} belongs to tenant {}", record.tenant),
        );
    }
    if record.to_value() != item.data {
        verifier.add(
            seq,
            FindingKind::Changed,
            format!("the item of record {seq} holds fields or values outside the record format"),
        );
    }
    if item.expires_at.is_some() {
        verifier.add(
            seq,
            FindingKind::Changed,
            format!("the item of record {seq} was given an expiry time"),
        );
    }
}

async fn read_head(
    items: &dyn ItemStore,
    key: &Key,
    verifier: &mut Verifier,
) -> Result<HeadState, AuditError> {
    Ok(match items.get(key).await? {
        None => HeadState::Absent,
        Some(item) => match serde_json::from_value::<Head>(item.data) {
            Ok(head) => HeadState::Present(head.seq, head.hash),
            Err(_) => {
                verifier.add(
                    0,
                    FindingKind::Unreadable,
                    "the head item is not readable".to_owned(),
                );
                HeadState::Unreadable
            }
        },
    })
}

pub(crate) enum HeadState {
    Absent,
    Unreadable,
    Present(u64, String),
}

/// A record reduced to what the chain checks need.
#[derive(Debug, Clone)]
struct Node {
    seq: u64,
    prev: String,
    hash: String,
    hash_ok: bool,
}

/// A node waiting in the reorder window; the heap pops the smallest (seq, storage index).
struct Pending {
    seq: u64,
    index: u64,
    node: Node,
}

impl PartialEq for Pending {
    fn eq(&self, other: &Self) -> bool {
        (self.seq, self.index) == (other.seq, other.index)
    }
}
impl Eq for Pending {}
impl PartialOrd for Pending {
    fn partial_cmp(&self, other: &Self) -> Option<Ordering> {
        Some(self.cmp(other))
    }
}
impl Ord for Pending {
    fn cmp(&self, other: &Self) -> Ordering {
        (other.seq, other.index).cmp(&(self.seq, self.index))
    }
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Link {
    /// `prev` is the predecessor's hash.
    Fine,
    /// `prev` is something else.
    Broken,
    /// No direct predecessor to compare with (a gap), or nothing follows.
    Unknown,
}

/// The link from record `a` to record `b` (`b == a + 1` unless `Unknown`).
#[derive(Debug, Clone, Copy)]
struct Edge {
    link: Link,
    a: u64,
    b: u64,
    /// `a` is the start of the chain (seq 0, hash of 64 zeros).
    a_genesis: bool,
    /// `b` is the head item.
    b_head: bool,
}

struct Chain {
    last_seq: u64,
    last_hash: String,
    last_genesis: bool,
    /// The link into the record before the last one.
    before: Link,
    /// The link into the last record, decided once the next link is known.
    current: Option<Edge>,
}

impl Default for Chain {
    fn default() -> Self {
        Self {
            last_seq: 0,
            last_hash: GENESIS_HASH.to_owned(),
            last_genesis: true,
            before: Link::Fine,
            current: None,
        }
    }
}

/// Streaming verifier: memory is the reorder window plus the findings.
#[derive(Default)]
pub(crate) struct Verifier {
    tenant: Option<String>,
    records: u64,
    max_seen: Option<u64>,
    /// Seq of the record stored just before (storage order).
    last_stored: Option<u64>,
    next_index: u64,
    window: BinaryHeap<Pending>,
    /// Records of one seq, waiting for the next seq to choose the one that belongs.
    group: Vec<Node>,
    chain: Chain,
    findings: Vec<Finding>,
    reported: HashSet<(u64, FindingKind)>,
    unreadable: HashSet<u64>,
}

impl Verifier {
    /// One finding per (seq, kind): the first message wins.
    fn add(&mut self, seq: u64, kind: FindingKind, message: String) {
        if self.reported.insert((seq, kind)) {
            self.findings.push(Finding { seq, kind, message });
        }
    }

    fn unreadable(&mut self, seq: u64, message: String) {
        self.records += 1;
        self.unreadable.insert(seq);
        self.add(seq, FindingKind::Unreadable, message);
    }

    /// The next record in storage order.
    fn push(&mut self, record: &AuditRecord) {
        self.records += 1;
        if self.tenant.is_none() {
            self.tenant = Some(record.tenant.clone());
        }
        let seq = record.seq;
        let hash_ok = record.compute_hash() == record.hash;
        if !hash_ok {
            self.add(
                seq,
                FindingKind::Changed,
                format!("record {seq} does not match its hash: its content was changed"),
            );
        }
        if seq == 0 {
            self.add(
                0,
                FindingKind::Inserted,
                "a record has seq 0, which the log never writes".to_owned(),
            );
            return;
        }
        if let Some(before) = self.last_stored
            && seq < before
        {
            self.add(
                seq,
                FindingKind::Reordered,
                format!("record {seq} is stored after record {before}"),
            );
        }
        self.last_stored = Some(seq);
        self.max_seen = Some(self.max_seen.map_or(seq, |m| m.max(seq)));
        self.window.push(Pending {
            seq,
            index: self.next_index,
            node: Node {
                seq,
                prev: record.prev.clone(),
                hash: record.hash.clone(),
                hash_ok,
            },
        });
        self.next_index += 1;
        if self.window.len() > REORDER_WINDOW
            && let Some(p) = self.window.pop()
        {
            self.in_seq_order(p.node);
        }
    }

    /// The next record in seq order.
    fn in_seq_order(&mut self, node: Node) {
        match self.group.first().map(|g| g.seq) {
            None => self.group.push(node),
            Some(seq) if node.seq == seq => self.group.push(node),
            Some(seq) if node.seq < seq => {
                let late = node.seq;
                self.add(
                    late,
                    FindingKind::Reordered,
                    format!("record {late} is stored too far from its place to be linked"),
                );
            }
            Some(_) => {
                let group = std::mem::take(&mut self.group);
                self.resolve(group, Some((node.seq, node.prev.as_str())));
                self.group.push(node);
            }
        }
    }

    /// Chooses the record of a seq (several when records were inserted) and links it in.
    /// `next` = (seq, prev) of what follows, to prefer the record the chain goes on from.
    fn resolve(&mut self, mut group: Vec<Node>, next: Option<(u64, &str)>) {
        if group.is_empty() {
            return;
        }
        let seq = group[0].seq;
        if seq <= self.chain.last_seq {
            return;
        }
        let chosen = if group.len() == 1 {
            group.swap_remove(0)
        } else {
            let links_back = self.chain.last_seq + 1 == seq;
            let score = |n: &Node| {
                let fwd = next.is_some_and(|(s, p)| s == seq + 1 && p == n.hash);
                let back = links_back && n.prev == self.chain.last_hash;
                2 * u8::from(fwd) + u8::from(back) + u8::from(n.hash_ok)
            };
            let mut best = 0;
            for i in 1..group.len() {
                if score(&group[i]) > score(&group[best]) {
                    best = i;
                }
            }
            let count = group.len();
            self.add(
                seq,
                FindingKind::Inserted,
                format!("{count} records have seq {seq}; only one belongs to the chain"),
            );
            group.swap_remove(best)
        };
        self.link(chosen.seq, &chosen.prev, chosen.hash, false);
    }

    /// Links the next node (seq above the last one) to the chain.
    fn link(&mut self, seq: u64, prev: &str, hash: String, head: bool) {
        let a = self.chain.last_seq;
        let link = if seq == a + 1 {
            if prev == self.chain.last_hash {
                Link::Fine
            } else {
                Link::Broken
            }
        } else {
            self.gap(a + 1, seq - 1, head);
            Link::Unknown
        };
        let edge = Edge {
            link,
            a,
            b: seq,
            a_genesis: self.chain.last_genesis,
            b_head: head,
        };
        if let Some(current) = self.chain.current.take() {
            self.decide(current, self.chain.before, link);
            self.chain.before = current.link;
        }
        self.chain.current = Some(edge);
        self.chain.last_seq = seq;
        self.chain.last_hash = hash;
        self.chain.last_genesis = false;
    }

    fn gap(&mut self, first: u64, last: u64, head: bool) {
        let which = if first == last {
            format!("record {first} is missing")
        } else {
            format!("records {first} to {last} are missing")
        };
        if head {
            self.add(
                first,
                FindingKind::HeadMismatch,
                format!("the head counts {last} records; {which}"),
            );
        } else if !(first == last && self.unreadable.contains(&first)) {
            self.add(first, FindingKind::Deleted, which);
        }
    }

    /// Says which record a broken link points at, knowing the links on either side.
    fn decide(&mut self, edge: Edge, before: Link, after: Link) {
        if edge.link != Link::Broken {
            return;
        }
        let Edge { a, b, .. } = edge;
        if after == Link::Broken && !edge.b_head {
            self.add(
                b,
                FindingKind::Inserted,
                format!(
                    "record {b} links neither to record {a} nor to what follows: \
                     it was not written by the log"
                ),
            );
        } else if before == Link::Broken {
            // Record `a` fits neither neighbour: reported when its first link was decided.
        } else if edge.b_head && edge.a_genesis {
            self.add(
                0,
                FindingKind::HeadMismatch,
                "the head counts no records but its hash is not 64 zeros".to_owned(),
            );
        } else if edge.b_head {
            self.add(
                a,
                FindingKind::HeadMismatch,
                format!(
                    "the head's hash is not record {a}'s: record {a} or the head was rewritten"
                ),
            );
        } else if edge.a_genesis {
            self.add(
                b,
                FindingKind::Changed,
                format!("record {b} does not start the chain: its prev is not 64 zeros"),
            );
        } else {
            self.add(
                a,
                FindingKind::Changed,
                format!(
                    "record {b} links to a different record {a}: record {a} was rewritten \
                     and given a new hash"
                ),
            );
        }
    }

    fn finish(mut self, head: HeadState) -> VerifyReport {
        while let Some(p) = self.window.pop() {
            self.in_seq_order(p.node);
        }
        let group = std::mem::take(&mut self.group);
        match &head {
            HeadState::Present(seq, hash) => {
                self.resolve(group, Some((seq.saturating_add(1), hash.as_str())))
            }
            _ => self.resolve(group, None),
        }
        match head {
            HeadState::Present(seq, _) if seq < self.chain.last_seq => {
                let (first, last) = (seq + 1, self.chain.last_seq);
                let which = if first == last {
                    format!("record {first} is")
                } else {
                    format!("records {first} to {last} are")
                };
                self.add(
                    first,
                    FindingKind::Inserted,
                    format!("{which} beyond the head, which counts {seq} records"),
                );
            }
            HeadState::Present(seq, hash) => {
                self.link(seq.saturating_add(1), &hash, String::new(), true);
            }
            HeadState::Absent if self.chain.last_seq > 0 => {
                let last = self.chain.last_seq;
                self.add(
                    last,
                    FindingKind::HeadMismatch,
                    "there are records but no head item".to_owned(),
                );
            }
            HeadState::Absent | HeadState::Unreadable => {}
        }
        if let Some(current) = self.chain.current.take() {
            self.decide(current, self.chain.before, Link::Unknown);
        }
        self.findings.sort_by_key(|f| f.seq);
        VerifyReport {
            tenant: self.tenant.unwrap_or_default(),
            records: self.records,
            last_seq: self.max_seen.unwrap_or(0),
            findings: self.findings,
        }
    }
}

/// Walks the mirror's listing alongside the table (both in seq order).
struct MirrorCheck<'a> {
    blobs: &'a dyn BlobStore,
    tenant: String,
    prefix: String,
    listed: VecDeque<String>,
    start_after: Option<String>,
    listing_done: bool,
    /// Table records not (yet) in the mirror; looked at again at the end, since an append
    /// writes the mirror just after the table.
    missing: Vec<(u64, Value)>,
}

enum Fetched {
    Missing,
    Unreadable,
    Record(Value),
}

impl<'a> MirrorCheck<'a> {
    fn new(blobs: &'a dyn BlobStore, tenant: &TenantId) -> Self {
        let prefix = mirror_prefix(tenant.as_str());
        Self {
            blobs,
            tenant: tenant.to_string(),
            prefix,
            listed: VecDeque::new(),
            start_after: None,
            listing_done: false,
            missing: Vec::new(),
        }
    }

    /// The next listed key and its seq (`None` for a key not named like a record).
    async fn peek(&mut self) -> Result<Option<(Option<u64>, String)>, AuditError> {
        if self.listed.is_empty() && !self.listing_done {
            let page = self
                .blobs
                .list(&self.prefix, self.start_after.as_deref(), 1000)
                .await?;
            if page.is_empty() {
                self.listing_done = true;
            }
            self.start_after = page.last().map(|m| m.key.clone());
            self.listed.extend(page.into_iter().map(|m| m.key));
        }
        Ok(self
            .listed
            .front()
            .map(|key| (self.seq_of(key), key.clone())))
    }

    fn seq_of(&self, key: &str) -> Option<u64> {
        let name = key.strip_prefix(&self.prefix)?.strip_suffix(".json")?;
        parse_12_digits(name)
    }

    async fn fetch(&self, key: &str) -> Result<Fetched, AuditError> {
        let (_, body) = match self.blobs.get(key).await {
            Ok(found) => found,
            Err(PortError::NotFound) => return Ok(Fetched::Missing),
            Err(e) => return Err(e.into()),
        };
        let mut bytes = Vec::new();
        body.take(MAX_MIRROR_OBJECT)
            .read_to_end(&mut bytes)
            .await
            .map_err(|e| PortError::Backend(format!("reading the audit mirror: {e}")))?;
        Ok(match serde_json::from_slice::<Value>(&bytes) {
            Ok(value) => Fetched::Record(value),
            Err(_) => Fetched::Unreadable,
        })
    }

    /// Reports a listed key that has no item in the table (`seq` known).
    fn only_in_mirror(verifier: &mut Verifier, seq: Option<u64>, key: &str) {
        match seq {
            Some(seq) => verifier.add(
                seq,
                FindingKind::MirrorMismatch,
                format!("record {seq} is in the mirror but not in the table"),
            ),
            None => verifier.add(
                0,
                FindingKind::MirrorMismatch,
                format!("the mirror holds an object not named like a record: {key}"),
            ),
        }
    }

    /// The table item under record key `sk_seq` (`None`: an unexpected sort key), holding
    /// record `seq`.
    async fn table_entry(
        &mut self,
        verifier: &mut Verifier,
        sk_seq: Option<u64>,
        seq: u64,
        data: &Value,
    ) -> Result<(), AuditError> {
        let Some(at) = sk_seq else {
            verifier.add(
                seq,
                FindingKind::MirrorMismatch,
                format!("record {seq} (under an unexpected sort key) is not in the mirror"),
            );
            return Ok(());
        };
        while let Some((listed_seq, key)) = self.peek().await? {
            match listed_seq {
                Some(s) if s == at => {
                    self.listed.pop_front();
                    let fetched = self.fetch(&key).await?;
                    Self::compare(verifier, at, data, fetched);
                    return Ok(());
                }
                Some(s) if s > at => break,
                _ => {
                    self.listed.pop_front();
                    Self::only_in_mirror(verifier, listed_seq, &key);
                }
            }
        }
        self.missing.push((at, data.clone()));
        Ok(())
    }

    fn compare(verifier: &mut Verifier, seq: u64, data: &Value, fetched: Fetched) {
        let message = match fetched {
            Fetched::Record(value) if value == *data => return,
            Fetched::Record(_) => format!("record {seq} differs from its copy in the mirror"),
            Fetched::Unreadable => format!("the mirror's copy of record {seq} is unreadable"),
            Fetched::Missing => format!("record {seq} is not in the mirror"),
        };
        verifier.add(seq, FindingKind::MirrorMismatch, message);
    }

    async fn finish(
        mut self,
        items: &dyn ItemStore,
        pk: &str,
        head_seq: u64,
        verifier: &mut Verifier,
    ) -> Result<(), AuditError> {
        while let Some((seq, key)) = self.peek().await? {
            self.listed.pop_front();
            // Appended after the table was read: not part of this verification.
            if let Some(s) = seq
                && s > head_seq
                && items.get(&Key::new(pk, record_sk(s))).await?.is_some()
            {
                continue;
            }
            Self::only_in_mirror(verifier, seq, &key);
        }
        for (seq, data) in std::mem::take(&mut self.missing) {
            let fetched = self.fetch(&mirror_key(&self.tenant, seq)).await?;
            Self::compare(verifier, seq, &data, fetched);
        }
        Ok(())
    }
}
