//! Outbound files end to end on both adapter sets (SQLite + files, and DynamoDB + S3 + KMS on
//! moto): applications as stored by the submissions function, the pending entries a status
//! change writes, a run, and the files read back through their manifests with the layout
//! reader.

use std::collections::BTreeMap;
use std::io::Cursor;
use std::sync::Arc;
use std::sync::atomic::{AtomicUsize, Ordering};

use async_trait::async_trait;
use bytes::Bytes;
use madoguchi_applications::application_item;
use madoguchi_applications::outbox::{
    ExportRecord, ExportState, PendingExport, export_key, outbound_pk, pending_item,
};
use madoguchi_applications::records::ApplicationRecord;
use madoguchi_audit::{AuditAction, AuditLog};
use madoguchi_domain::ids::ApplicationId;
use madoguchi_domain::tenant::TenantId;
use madoguchi_domain::workflow::ApplicationStatus;
use madoguchi_fieldcrypt::{Binding, CachePolicy, FieldCipher};
use madoguchi_linkage::{ConversionTable, LayoutReader, OutboundConfig, RowOutcome};
use madoguchi_linkage_outbound::{Manifest, OutboundState, run};
use madoguchi_ports::blob::{
    BlobBody, BlobMeta, BlobUpload, PresignMethod, Presigned, PresignedPost, UploadPolicy,
};
use madoguchi_ports::{
    BlobStore, Condition, IdGen, Item, ItemStore, Key, Page, PortError, PortResult, QueryRequest,
    SortKeyCondition, TxOp, UuidV7Gen,
};
use madoguchi_tests::{Env, contract_tests};
use sha2::{Digest, Sha256};
use tokio::io::AsyncReadExt;

contract_tests!(
    completed_applications_go_out_once_through_a_manifest,
    a_run_killed_anywhere_ends_with_each_application_in_one_file,
);

fn tenant() -> TenantId {
    TenantId::parse("272060").unwrap()
}

const CONFIG: &str = r#"{
  "systems": {
    "jumin": {
      "layout": {
        "id": "idou", "label": "住民異動届（テスト用）", "encoding": "cp932", "header": true,
        "kind": "full",
        "columns": [
          {"name": "receipt", "label": "受付番号", "type": "text", "required": true},
          {"name": "name", "label": "氏名", "type": "text", "required": true, "max_length": 30},
          {"name": "kana", "label": "氏名フリガナ", "type": "kana"},
          {"name": "birth_date", "label": "生年月日", "type": "date", "date_format": "wareki"},
          {"name": "sex", "label": "性別", "type": "code", "code_table": "sex"},
          {"name": "my_number", "label": "個人番号", "type": "my_number"},
          {"name": "address", "label": "住所", "type": "text"},
          {"name": "moved_on", "label": "異動日", "type": "date", "date_format": "seireki"},
          {"name": "applied_on", "label": "届出日", "type": "date", "date_format": "seireki"},
          {"name": "kind", "label": "届出種別", "type": "text"}
        ],
        "code_tables": {"sex": {"codes": {"1": "男", "2": "女"}}}
      },
      "forms": {
        "tennyu": {
          "columns": {
            "receipt": "app.receipt",
            "name": {"join": ["answers.name.family", "answers.name.given"], "sep": "　"},
            "kana": {"join": ["answers.name.family_kana", "answers.name.given_kana"], "sep": "　"},
            "birth_date": "answers.birth_date",
            "sex": {"from": "answers.sex", "map": {"male": "1", "female": "2"}},
            "my_number": "answers.my_number",
            "address": {"join": ["answers.address.address", "answers.address.building"], "sep": " "},
            "moved_on": "answers.moved_on",
            "applied_on": "app.submitted_at",
            "kind": {"const": "転入"}
          }
        }
      }
    }
  }
}"#;

/// 𠮷 has no Shift_JIS code; the table turns it into 吉.
const GAIJI_OUT: &str = r#"{"𠮷": "吉"}"#;

const MY_NUMBER: &str = "123456789018";

struct World {
    items: Arc<dyn ItemStore>,
    blobs: Arc<dyn BlobStore>,
    cipher: FieldCipher,
    state: OutboundState,
    env: Env,
}

async fn world(env: Env) -> World {
    world_with(env, CONFIG).await
}

async fn world_with(env: Env, config: &str) -> World {
    let items = env.items().await;
    let (blobs, _) = env.blobs().await;
    let cipher = FieldCipher::new(env.keys().await, env.clock.clone(), CachePolicy::default());
    let state = state_over(&env, items.clone(), blobs.clone(), cipher.clone());
    blobs
        .put("config/outbound.json", Bytes::from(config.to_owned()), None)
        .await
        .unwrap();
    blobs
        .put(
            "config/jumin/gaiji-out.json",
            Bytes::from_static(GAIJI_OUT.as_bytes()),
            None,
        )
        .await
        .unwrap();
    World {
        items,
        blobs,
        cipher,
        state,
        env,
    }
}

fn state_over(
    env: &Env,
    items: Arc<dyn ItemStore>,
    blobs: Arc<dyn BlobStore>,
    cipher: FieldCipher,
) -> OutboundState {
    let ids: Arc<dyn IdGen> = Arc::new(UuidV7Gen);
    OutboundState::new(
        items.clone(),
        blobs.clone(),
        blobs,
        "outbound/",
        cipher,
        AuditLog::new(items, env.clock.clone()),
        env.clock.clone(),
        ids,
        tenant(),
    )
}

/// Stores an application of `slug` as the submissions function would.
async fn application(w: &World, slug: &str, n: u32, sex: &str) -> ApplicationRecord {
    let id = ApplicationId::new(uuid::Uuid::now_v7());
    let sealed = w
        .cipher
        .seal(
            &tenant(),
            &Binding {
                record: &id.to_string(),
                field: "my_number",
            },
            MY_NUMBER.as_bytes(),
        )
        .await
        .unwrap();
    let record: ApplicationRecord = serde_json::from_value(serde_json::json!({
        "id": id,
        "tenant": "272060",
        "receipt": format!("R-{n:04}"),
        "slug": slug,
        "form_title": "転入届",
        "form_version": 1,
        "owner": "a-test",
        "status": "completed",
        "submitted_at": "2025-03-31T16:30:00Z",
        "answers": {
            "name": {"family": "𠮷田", "given": format!("太郎{n}"),
                     "family_kana": "ヨシダ", "given_kana": "タロウ"},
            "birth_date": "1955-04-01",
            "sex": sex,
            "my_number": {"sealed": sealed, "masked": "********9018"},
            "address": {"postal_code": "5960001", "address": "岸和田市1-2-3",
                        "building": "ハイツ\"岸和田\",101号"},
            "moved_on": "2025-03-28"
        },
        "summary": [],
        "attachments": [],
        "email": null,
        "blind_indexes": {},
        "notify": []
    }))
    .unwrap();
    w.items
        .put(application_item(&tenant(), &record), Condition::NotExists)
        .await
        .unwrap();
    record
}

async fn pending(w: &World, app: &ApplicationRecord, status: ApplicationStatus, disc: &str) {
    pending_with(w, app, status, None, disc).await;
}

async fn pending_with(
    w: &World,
    app: &ApplicationRecord,
    status: ApplicationStatus,
    reexport: Option<&str>,
    disc: &str,
) {
    let p = PendingExport {
        application: app.id,
        slug: app.slug.clone(),
        status,
        reexport: reexport.map(str::to_owned),
        at: w.env.clock.now_string(),
        by: None,
    };
    w.items
        .put(pending_item(&tenant(), &p, disc), Condition::None)
        .await
        .unwrap();
}

trait NowString {
    fn now_string(&self) -> String;
}
impl NowString for madoguchi_ports::FixedClock {
    fn now_string(&self) -> String {
        madoguchi_ports::Clock::now(self).to_string()
    }
}

async fn read(blobs: &dyn BlobStore, key: &str) -> Vec<u8> {
    let (_, mut body) = blobs.get(key).await.unwrap();
    let mut out = Vec::new();
    body.read_to_end(&mut out).await.unwrap();
    out
}

async fn manifests(blobs: &dyn BlobStore) -> Vec<(String, Manifest)> {
    let mut out = Vec::new();
    for meta in blobs.list("outbound/", None, 1000).await.unwrap() {
        if meta.key.ends_with(".manifest.json") {
            let m: Manifest = serde_json::from_slice(&read(blobs, &meta.key).await).unwrap();
            out.push((meta.key.clone(), m));
        }
    }
    out
}

/// Reads a manifest's data file, checks it against the manifest, parses it with the layout.
async fn rows_of(
    blobs: &dyn BlobStore,
    manifest_key: &str,
    m: &Manifest,
) -> Vec<BTreeMap<String, String>> {
    let folder = manifest_key.rsplit_once('/').unwrap().0;
    let data = read(blobs, &format!("{folder}/{}", m.file)).await;
    assert_eq!(data.len() as u64, m.bytes);
    assert_eq!(hex::encode(Sha256::digest(&data)), m.sha256);
    let config = OutboundConfig::from_json(CONFIG).unwrap();
    let layout = &config.systems["jumin"].layout;
    let table = ConversionTable::empty();
    let mut reader = LayoutReader::new(layout, &table, Cursor::new(data)).unwrap();
    let mut rows = Vec::new();
    while let Some(outcome) = reader.next_row().unwrap() {
        let RowOutcome::Valid { record, .. } = outcome else {
            panic!("invalid row in our own file: {outcome:?}");
        };
        let mut row = BTreeMap::new();
        for (k, v) in record.iter() {
            let text = match v {
                madoguchi_linkage::Value::MyNumber(n) => n.expose().to_owned(),
                madoguchi_linkage::Value::Date(d) => d.to_string(),
                other => other.as_str().unwrap_or("").to_owned(),
            };
            row.insert(k.to_owned(), text);
        }
        rows.push(row);
    }
    assert_eq!(rows.len() as u64, m.rows);
    rows
}

async fn export_of(w: &World, app: &ApplicationRecord) -> Option<ExportRecord> {
    w.items
        .get(&export_key(&tenant(), &app.id, "jumin"))
        .await
        .unwrap()
        .map(|i| serde_json::from_value(i.data).unwrap())
}

async fn pending_left(items: &dyn ItemStore) -> usize {
    items
        .query(
            QueryRequest::partition(outbound_pk(&tenant()))
                .sk(SortKeyCondition::BeginsWith("PENDING#".into())),
        )
        .await
        .unwrap()
        .items
        .len()
}

async fn completed_applications_go_out_once_through_a_manifest(env: Env) {
    let w = world(env).await;
    let a = application(&w, "tennyu", 1, "male").await;
    let b = application(&w, "tennyu", 2, "other").await; // not in the code map
    let c = application(&w, "kofu", 3, "female").await; // a form no system takes
    pending(&w, &a, ApplicationStatus::InReview, "2").await; // not the status that sends
    pending(&w, &a, ApplicationStatus::Completed, "3").await;
    pending(&w, &b, ApplicationStatus::Completed, "3").await;
    pending(&w, &c, ApplicationStatus::Completed, "3").await;

    let report = run(&w.state).await.unwrap();
    assert_eq!(report.pending, 4);
    assert_eq!(report.claimed, 1);
    assert_eq!(report.failed, 1);
    assert_eq!(report.files.len(), 1);
    assert_eq!(pending_left(&*w.items).await, 0);

    let ms = manifests(&*w.blobs).await;
    assert_eq!(ms.len(), 1);
    let (mkey, m) = &ms[0];
    // outbound/<system>/<day in Japan>/<batch>.manifest.json
    let day = w
        .env
        .clock
        .now_string()
        .parse::<jiff::Timestamp>()
        .unwrap()
        .to_zoned(jiff::tz::TimeZone::fixed(jiff::tz::offset(9)))
        .date()
        .to_string();
    assert!(
        mkey.starts_with(&format!("outbound/jumin/{day}/")),
        "{mkey}"
    );
    assert_eq!(m.encoding, "cp932");
    assert_eq!(m.layout, "idou");
    assert_eq!(m.applications.len(), 1);
    assert_eq!(m.applications[0].id, a.id);
    assert_eq!(m.applications[0].generation, 1);
    let rows = rows_of(&*w.blobs, mkey, m).await;
    let row = &rows[0];
    assert_eq!(row["receipt"], "R-0001");
    assert_eq!(
        row["name"], "吉田　太郎1",
        "𠮷 through the conversion table"
    );
    assert_eq!(row["kana"], "ヨシダ　タロウ");
    assert_eq!(row["birth_date"], "1955-04-01");
    assert_eq!(row["sex"], "1");
    assert_eq!(
        row["my_number"], MY_NUMBER,
        "the sealed answer, opened for the file"
    );
    assert_eq!(row["address"], "岸和田市1-2-3 ハイツ\"岸和田\",101号");
    assert_eq!(row["moved_on"], "2025-03-28");
    // 2025-03-31T16:30Z is 1 April in Japan.
    assert_eq!(row["applied_on"], "2025-04-01");
    assert_eq!(row["kind"], "転入");

    let ea = export_of(&w, &a).await.unwrap();
    assert_eq!(ea.state, ExportState::Written);
    assert_eq!(ea.generation, 1);
    assert!(ea.file.as_deref().unwrap().ends_with(&m.file));
    let eb = export_of(&w, &b).await.unwrap();
    assert_eq!(eb.state, ExportState::Failed);
    assert_eq!(eb.errors[0].code, "map.missing");
    assert_eq!(eb.errors[0].column, "性別");
    assert!(export_of(&w, &c).await.is_none());

    // The export is audited, naming the file and the application, not its data.
    let records = w
        .state
        .audit
        .records(&tenant(), 0, 100)
        .await
        .unwrap()
        .into_iter()
        .filter(|r| r.event.action == AuditAction::Export)
        .collect::<Vec<_>>();
    assert_eq!(records.len(), 1);
    let detail = serde_json::to_string(&records[0].event.detail).unwrap();
    assert!(detail.contains(&a.id.to_string()));
    assert!(!detail.contains(MY_NUMBER));

    // Nothing new: a run changes nothing. The same status again: not sent twice.
    assert_eq!(run(&w.state).await.unwrap().files.len(), 0);
    pending(&w, &a, ApplicationStatus::Completed, "5").await;
    let again = run(&w.state).await.unwrap();
    assert_eq!((again.claimed, again.files.len()), (0, 0));
    assert_eq!(manifests(&*w.blobs).await.len(), 1);

    // A re-export sends it once more, as generation 2; the same request seen twice (a rerun
    // after a crash between claim and cleanup) sends nothing more.
    pending_with(&w, &a, ApplicationStatus::Completed, Some("jumin"), "R1").await;
    let re = run(&w.state).await.unwrap();
    assert_eq!((re.claimed, re.files.len()), (1, 1));
    pending_with(&w, &a, ApplicationStatus::Completed, Some("jumin"), "R1").await;
    assert_eq!(run(&w.state).await.unwrap().claimed, 0);
    let ms = manifests(&*w.blobs).await;
    assert_eq!(ms.len(), 2);
    let generations: Vec<u32> = ms
        .iter()
        .flat_map(|(_, m)| m.applications.iter().map(|e| e.generation))
        .collect();
    assert_eq!(
        {
            let mut g = generations.clone();
            g.sort();
            g
        },
        [1, 2]
    );
    assert_eq!(export_of(&w, &a).await.unwrap().generation, 2);
}

// ---------------------------------------------------------------------------------------
// Crashes

/// Counts every write (item puts, deletes, transactions; blob puts) and fails the one
/// numbered `crash_at` as a process dying there would: that write does not happen.
struct Crash {
    writes: AtomicUsize,
    crash_at: usize,
}

impl Crash {
    fn hit(&self) -> PortResult<()> {
        let n = self.writes.fetch_add(1, Ordering::SeqCst) + 1;
        if n == self.crash_at {
            Err(PortError::Unavailable("test: crashed here".into()))
        } else {
            Ok(())
        }
    }
}

struct CrashingItems(Arc<dyn ItemStore>, Arc<Crash>);

#[async_trait]
impl ItemStore for CrashingItems {
    async fn put(&self, item: Item, condition: Condition) -> PortResult<()> {
        self.1.hit()?;
        self.0.put(item, condition).await
    }
    async fn get_batch(&self, keys: &[Key]) -> PortResult<Vec<Option<Item>>> {
        self.0.get_batch(keys).await
    }
    async fn get(&self, key: &Key) -> PortResult<Option<Item>> {
        self.0.get(key).await
    }
    async fn delete(&self, key: &Key, condition: Condition) -> PortResult<()> {
        self.1.hit()?;
        self.0.delete(key, condition).await
    }
    async fn query(&self, request: QueryRequest) -> PortResult<Page> {
        self.0.query(request).await
    }
    async fn transact(&self, ops: Vec<TxOp>) -> PortResult<()> {
        self.1.hit()?;
        self.0.transact(ops).await
    }
    async fn increment(&self, key: &Key, by: i64) -> PortResult<i64> {
        self.1.hit()?;
        self.0.increment(key, by).await
    }
    async fn put_batch(&self, items: Vec<Item>) -> PortResult<()> {
        self.1.hit()?;
        self.0.put_batch(items).await
    }
}

struct CrashingBlobs(Arc<dyn BlobStore>, Arc<Crash>);

#[async_trait]
impl BlobStore for CrashingBlobs {
    async fn put(&self, key: &str, body: Bytes, ct: Option<&str>) -> PortResult<BlobMeta> {
        self.1.hit()?;
        self.0.put(key, body, ct).await
    }
    async fn get(&self, key: &str) -> PortResult<(BlobMeta, BlobBody)> {
        self.0.get(key).await
    }
    async fn get_version(&self, key: &str, version: &str) -> PortResult<(BlobMeta, BlobBody)> {
        self.0.get_version(key, version).await
    }
    async fn head(&self, key: &str) -> PortResult<Option<BlobMeta>> {
        self.0.head(key).await
    }
    async fn delete(&self, key: &str) -> PortResult<()> {
        self.1.hit()?;
        self.0.delete(key).await
    }
    async fn list(
        &self,
        prefix: &str,
        start_after: Option<&str>,
        limit: usize,
    ) -> PortResult<Vec<BlobMeta>> {
        self.0.list(prefix, start_after, limit).await
    }
    async fn presign(
        &self,
        key: &str,
        method: PresignMethod,
        expires_in: std::time::Duration,
    ) -> PortResult<Presigned> {
        self.0.presign(key, method, expires_in).await
    }
    async fn presign_post(&self, policy: &UploadPolicy) -> PortResult<PresignedPost> {
        self.0.presign_post(policy).await
    }
    async fn upload(
        &self,
        key: &str,
        content_type: Option<&str>,
    ) -> PortResult<Box<dyn BlobUpload>> {
        self.0.upload(key, content_type).await
    }
}

/// One scenario: three applications to send, a run that dies at write `crash_at` (0: never),
/// then healthy runs (the clock moved past the lease) until nothing is open. Returns the
/// writes the crashing run counted and checks the end state.
async fn crash_scenario(env: Env, crash_at: usize) -> usize {
    let w = world(env).await;
    let mut apps = Vec::new();
    for n in 1..=3 {
        let app = application(&w, "tennyu", n, "female").await;
        pending(&w, &app, ApplicationStatus::Completed, "3").await;
        apps.push(app);
    }
    let crash = Arc::new(Crash {
        writes: AtomicUsize::new(0),
        crash_at,
    });
    let crashing = state_over(
        &w.env,
        Arc::new(CrashingItems(w.items.clone(), crash.clone())),
        Arc::new(CrashingBlobs(w.blobs.clone(), crash.clone())),
        w.cipher.clone(),
    );
    let first = run(&crashing).await;
    let writes = crash.writes.load(Ordering::SeqCst);
    // A failed write is mostly the end of the run (an error); the audit log retries its own
    // appends, so a crash there can also be survived. Either way the end state must hold.
    if crash_at == 0 {
        assert!(first.is_ok(), "{first:?}");
    }
    // Healthy runs: the first within the dead run's lease, then one after it.
    run(&w.state).await.unwrap();
    w.env.clock.advance(jiff::SignedDuration::from_mins(17));
    run(&w.state).await.unwrap();
    assert_eq!(pending_left(&*w.items).await, 0, "crash at {crash_at}");
    let open = w
        .items
        .query(
            QueryRequest::partition(outbound_pk(&tenant()))
                .sk(SortKeyCondition::BeginsWith("OPEN#".into())),
        )
        .await
        .unwrap();
    assert!(
        open.items.is_empty(),
        "crash at {crash_at}: a batch left open"
    );
    // Each application in exactly one file, its row intact; each export record written.
    let mut seen: BTreeMap<String, usize> = BTreeMap::new();
    for (key, m) in manifests(&*w.blobs).await {
        let rows = rows_of(&*w.blobs, &key, &m).await;
        for (entry, row) in m.applications.iter().zip(&rows) {
            *seen.entry(entry.receipt.clone()).or_default() += 1;
            assert_eq!(row["receipt"], entry.receipt);
            assert_eq!(row["my_number"], MY_NUMBER);
        }
    }
    let expected: BTreeMap<String, usize> = apps.iter().map(|a| (a.receipt.clone(), 1)).collect();
    assert_eq!(seen, expected, "crash at {crash_at}");
    for app in &apps {
        let e = export_of(&w, app).await.unwrap();
        assert_eq!(e.state, ExportState::Written, "crash at {crash_at}");
    }
    writes
}

async fn a_run_killed_anywhere_ends_with_each_application_in_one_file(env: Env) {
    let aws = env.aws_backend().is_some();
    let total = crash_scenario(env, 0).await;
    assert!(total > 10, "a clean run makes {total} writes");
    // Every write of a clean run is a place to die; on moto every other one, for time.
    let step = if aws { 2 } else { 1 };
    for crash_at in (1..=total).step_by(step) {
        let env = if aws {
            Env::aws().await
        } else {
            Env::embedded().await
        };
        crash_scenario(env, crash_at).await;
    }
}

/// The example in docs/examples/outbound.json (what the README copies for `make dev`) takes a
/// request made with docs/examples/form-juminhyo.json.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_documented_example_sends_a_juminhyo_request() {
    let path = madoguchi_tests::workspace_root().join("docs/examples/outbound.json");
    let example = std::fs::read_to_string(path).unwrap();
    let w = world_with(Env::embedded().await, &example).await;
    let id = ApplicationId::new(uuid::Uuid::now_v7());
    let record: ApplicationRecord = serde_json::from_value(serde_json::json!({
        "id": id, "tenant": "272060", "receipt": "R-0100", "slug": "juminhyo",
        "form_title": "住民票の写しの交付申請", "form_version": 1, "owner": "a-test",
        "status": "completed", "submitted_at": "2026-12-01T01:00:00Z",
        "answers": {
            "name": {"family": "窓口", "given": "花子", "family_kana": "マドグチ", "given_kana": "ハナコ"},
            "birth_date": "1990-04-01",
            "address": {"postal_code": "5950025", "address": "大阪府泉大津市東雲町9-12", "building": ""},
            "phone": "0725-33-1131", "copies": 2, "purpose": "job", "id_document": []
        },
        "summary": [], "attachments": [], "email": null, "blind_indexes": {}, "notify": []
    }))
    .unwrap();
    w.items
        .put(application_item(&tenant(), &record), Condition::NotExists)
        .await
        .unwrap();
    pending(&w, &record, ApplicationStatus::Completed, "3").await;
    let report = run(&w.state).await.unwrap();
    assert_eq!((report.claimed, report.failed), (1, 0), "{report:?}");
    let ms = manifests(&*w.blobs).await;
    assert_eq!(ms.len(), 1);
    assert!(ms[0].0.starts_with("outbound/shomei/"), "{}", ms[0].0);
    let folder = ms[0].0.rsplit_once('/').unwrap().0;
    let data = read(&*w.blobs, &format!("{folder}/{}", ms[0].1.file)).await;
    let (text, _, bad) = encoding_rs::SHIFT_JIS.decode(&data);
    assert!(!bad);
    assert_eq!(
        text.lines().nth(1).unwrap(),
        "R-0100,01,窓口　花子,マドグチ　ハナコ,H2.04.01,5950025,大阪府泉大津市東雲町9-12,2,1,,20261201"
    );
}

/// The sample events the Lambda receives (`events/linkage-outbound/scheduled.json`, and an SQS
/// nudge) each start a run; with nothing configured and nothing pending it succeeds.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_schedule_and_a_nudge_each_run_it() {
    let env = Env::embedded().await;
    let items = env.items().await;
    let (blobs, _) = env.blobs().await;
    let cipher = FieldCipher::new(env.keys().await, env.clock.clone(), CachePolicy::default());
    let state = state_over(&env, items, blobs, cipher);
    let path = madoguchi_tests::workspace_root().join("events/linkage-outbound/scheduled.json");
    let scheduled: serde_json::Value =
        serde_json::from_str(&std::fs::read_to_string(path).unwrap()).unwrap();
    let answer = madoguchi_linkage_outbound::handle(&state, scheduled).await;
    assert_eq!(answer, serde_json::json!({"batchItemFailures": []}));
    let nudge =
        serde_json::json!({"Records": [{"messageId": "m1", "body": "{\"tenant\":\"272060\"}"}]});
    let answer = madoguchi_linkage_outbound::handle(&state, nudge).await;
    assert_eq!(answer, serde_json::json!({"batchItemFailures": []}));
    // A configuration that does not parse fails the run, and with it the nudge (redelivered).
    state
        .config
        .put(
            "config/outbound.json",
            Bytes::from_static(b"{\"systems\": 1}"),
            None,
        )
        .await
        .unwrap();
    let nudge = serde_json::json!({"Records": [{"messageId": "m2", "body": "{}"}]});
    let answer = madoguchi_linkage_outbound::handle(&state, nudge).await;
    assert_eq!(
        answer,
        serde_json::json!({"batchItemFailures": [{"itemIdentifier": "m2"}]})
    );
}
