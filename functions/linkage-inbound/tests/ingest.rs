//! The ingest end to end on both adapter sets (SQLite + files, and DynamoDB + S3 + KMS on
//! moto): a file dropped as an object with its S3 notification, handled by `handle`; the
//! residents, the reports and every item checked.

#[path = "../../../shared/linkage/tests/common/mod.rs"]
mod common;

use std::collections::BTreeMap;
use std::sync::Arc;
use std::sync::atomic::{AtomicUsize, Ordering};

use async_trait::async_trait;
use aws_lambda_events::sqs::{SqsEvent, SqsMessage};
use common::{bad_my_number, cp932, fields, jumin_header, line};
use madoguchi_domain::tenant::TenantId;
use madoguchi_fieldcrypt::{CachePolicy, FieldCipher};
use madoguchi_linkage::{
    ConversionTable, Layout, LayoutReader, RowOutcome, Summary, errors_csv_header, write_error_rows,
};
use madoguchi_linkage_inbound::{InboundState, handle};
use madoguchi_ports::{
    BlobStore, Clock, Condition, Index, Item, ItemStore, Key, Page, PortError, PortResult,
    QueryRequest, TxOp, query_all,
};
use madoguchi_residents::{FileRef, IngestState, Progress, ResidentStore};
use madoguchi_tests::{Env, contract_tests};

contract_tests!(
    a_mixed_file_is_applied_and_reported_exactly_once,
    a_file_that_is_not_the_layout_is_rejected_whole,
    a_file_killed_mid_way_ends_as_a_clean_run,
    a_run_killed_before_finishing_completes_on_redelivery,
    files_of_a_system_are_applied_in_order,
    a_file_written_again_under_its_key_is_read_as_announced,
);

const GAIJI: &str = r#"{"\uE000": "髙"}"#;

fn tenant() -> TenantId {
    TenantId::parse("272060").unwrap()
}

fn idx(name: &str) -> usize {
    Layout::jumin()
        .columns
        .iter()
        .position(|c| c.name == name)
        .unwrap()
}

fn atena(i: u64) -> String {
    format!("{:010}", 1_000_000 + i)
}

/// Seeds of the mixed file's rows and whether each is valid.
fn mixed_rows() -> Vec<(u64, Vec<String>, bool)> {
    let mut rows = Vec::new();
    // Valid; 方書 with a comma and a line break inside quotes.
    let mut f = fields(1);
    f[idx("address_extra")] = "ハイツ霞が関,101\n号室".to_owned();
    rows.push((1, f, true));
    // Bad 個人番号 check digit.
    let mut f = fields(2);
    f[idx("my_number")] = bad_my_number(2);
    rows.push((2, f, false));
    // Impossible date.
    let mut f = fields(3);
    f[idx("birth_date")] = "R7.02.30".to_owned();
    rows.push((3, f, false));
    // Mapped 外字: valid, converted.
    let mut f = fields(4);
    f[idx("name")] = "\u{E000}橋　一郎".to_owned();
    rows.push((4, f, true));
    // Unmapped 外字.
    let mut f = fields(5);
    f[idx("name")] = "\u{E001}田　花子".to_owned();
    rows.push((5, f, false));
    // Foreign resident, 西暦 birth date.
    rows.push((19, fields(19), true));
    // Wrong field count.
    let mut f = fields(10);
    f.pop();
    rows.push((10, f, false));
    // Plain valid row.
    rows.push((8, fields(8), true));
    rows
}

fn file_text(rows: &[(u64, Vec<String>, bool)], newline: &str) -> String {
    let mut s = format!("{}\r\n", jumin_header());
    for (_, f, _) in rows {
        s.push_str(&line(f));
    }
    s.replace("\r\n", newline)
}

fn utf8_bom_crlf(rows: &[(u64, Vec<String>, bool)]) -> Vec<u8> {
    let mut bytes = b"\xEF\xBB\xBF".to_vec();
    bytes.extend_from_slice(file_text(rows, "\r\n").as_bytes());
    bytes
}

/// The backend pieces one test uses.
struct World {
    items: Arc<dyn ItemStore>,
    blobs: Arc<dyn BlobStore>,
    bucket: String,
    cipher: FieldCipher,
    clock: Arc<dyn Clock>,
    /// Keeps a second embedded data directory alive.
    _dir: Option<tempfile::TempDir>,
}

impl World {
    async fn of(env: &Env) -> World {
        let (blobs, bucket) = env.blobs().await;
        let clock: Arc<dyn Clock> = env.clock.clone();
        World {
            items: env.items().await,
            blobs,
            bucket,
            cipher: FieldCipher::new(env.keys().await, clock.clone(), CachePolicy::default()),
            clock,
            _dir: None,
        }
    }

    /// Another, empty item store and bucket with the same keys and clock (so blind indexes,
    /// and hence keys, are the same).
    async fn fresh(env: &Env, same_keys: &World) -> World {
        let clock = same_keys.clock.clone();
        match (env.embedded_backend(), env.aws_backend()) {
            (Some(_), _) => {
                let dir = tempfile::tempdir().unwrap();
                let backend = madoguchi_tests::madoguchi_embedded::EmbeddedBackend::open(
                    dir.path(),
                    "http://127.0.0.1:9",
                    clock.clone(),
                )
                .unwrap();
                World {
                    items: backend.items(),
                    blobs: backend.blobs(&same_keys.bucket),
                    bucket: same_keys.bucket.clone(),
                    cipher: same_keys.cipher.clone(),
                    clock,
                    _dir: Some(dir),
                }
            }
            (None, Some(aws)) => {
                let table = format!("{}-clean", env.prefix);
                let bucket = format!("{}-clean", env.prefix);
                madoguchi_aws::provision::ensure_table(aws.dynamodb_client(), &table)
                    .await
                    .unwrap();
                madoguchi_aws::provision::ensure_bucket(aws.s3_client(), &bucket, aws.region())
                    .await
                    .unwrap();
                World {
                    items: aws.items(&table),
                    blobs: aws.blobs(&bucket),
                    bucket,
                    cipher: same_keys.cipher.clone(),
                    clock,
                    _dir: None,
                }
            }
            _ => unreachable!(),
        }
    }

    fn state(&self) -> InboundState {
        self.state_over(self.items.clone())
    }

    fn state_over(&self, items: Arc<dyn ItemStore>) -> InboundState {
        InboundState::new(
            items,
            self.blobs.clone(),
            self.cipher.clone(),
            self.clock.clone(),
            tenant(),
        )
    }

    async fn put_gaiji(&self) {
        self.blobs
            .put(
                "config/jumin/gaiji.json",
                GAIJI.as_bytes().to_vec().into(),
                None,
            )
            .await
            .unwrap();
    }

    /// Stores the object and returns the notification S3 would send for it (unversioned
    /// bucket: the sequencer names the version).
    async fn drop_file(
        &self,
        system: &str,
        name: &str,
        bytes: Vec<u8>,
        sequencer: &str,
    ) -> SqsEvent {
        let key = format!("inbound/{system}/{name}");
        let meta = self.blobs.put(&key, bytes.into(), None).await.unwrap();
        let body = serde_json::json!({"Records": [{
            "eventVersion": "2.1", "eventSource": "aws:s3", "eventName": "ObjectCreated:Put",
            "eventTime": "2026-11-23T07:00:00.000Z",
            "s3": {"s3SchemaVersion": "1.0", "bucket": {"name": self.bucket},
                   "object": {"key": key, "size": meta.size, "eTag": meta.etag, "sequencer": sequencer}}
        }]});
        let mut message = SqsMessage::default();
        message.message_id = Some(format!("m-{name}"));
        message.body = Some(body.to_string());
        let mut event = SqsEvent::default();
        event.records = vec![message];
        event
    }

    async fn text(&self, key: &str) -> String {
        let (_, mut body) = self.blobs.get(key).await.unwrap();
        let mut s = String::new();
        tokio::io::AsyncReadExt::read_to_string(&mut body, &mut s)
            .await
            .unwrap();
        s
    }

    async fn summary(&self, name: &str) -> Summary {
        serde_json::from_str(
            &self
                .text(&format!("results/jumin/{name}.summary.json"))
                .await,
        )
        .unwrap()
    }

    /// Every item the ingest of these residents can have written: the registry partition,
    /// each resident's partition, each household's index entries, each lookup partition.
    async fn snapshot(&self, seeds: &[u64]) -> BTreeMap<(String, String), Item> {
        let store = self.state();
        let mut requests = vec![QueryRequest::partition(format!(
            "{}#LINKAGE#IN#jumin",
            tenant().as_str()
        ))];
        for &i in seeds {
            let f = fields(i);
            requests.push(QueryRequest::partition(format!(
                "{}#RES#{}",
                tenant().as_str(),
                atena(i)
            )));
            requests.push(
                QueryRequest::partition(format!(
                    "{}#HH#{}",
                    tenant().as_str(),
                    f[idx("household_number")]
                ))
                .on(Index::Gsi1),
            );
            if let Some(view) = store
                .residents
                .resident(&tenant(), &atena(i))
                .await
                .unwrap()
                && let Some(birth) = view.birth_date
            {
                let pk = store
                    .residents
                    .lookup_partition(&tenant(), birth)
                    .await
                    .unwrap();
                requests.push(QueryRequest::partition(pk));
            }
        }
        let mut out = BTreeMap::new();
        for r in requests {
            let index = r.index;
            for item in query_all(self.items.as_ref(), r.limit(100), 100_000)
                .await
                .unwrap()
            {
                let tag = if index == Index::Gsi1 { "gsi1:" } else { "" };
                out.insert((format!("{tag}{}", item.key.pk), item.key.sk.clone()), item);
            }
        }
        out
    }
}

fn ids(response: &aws_lambda_events::sqs::SqsBatchResponse) -> Vec<String> {
    response
        .batch_item_failures
        .iter()
        .map(|f| f.item_identifier.clone())
        .collect()
}

/// What the reader itself says of the file: the expected errors report and summary.
fn expected_report(bytes: &[u8]) -> (String, Summary) {
    let layout = Layout::jumin();
    let conversion = ConversionTable::from_json(GAIJI).unwrap();
    let mut reader = LayoutReader::new(&layout, &conversion, bytes).unwrap();
    let mut csv = errors_csv_header().as_bytes().to_vec();
    while let Some(row) = reader.next_row().unwrap() {
        if let RowOutcome::Invalid { errors, .. } = row {
            write_error_rows(&mut csv, &errors).unwrap();
        }
    }
    (String::from_utf8(csv).unwrap(), reader.into_summary())
}

async fn a_mixed_file_is_applied_and_reported_exactly_once(env: Env) {
    let w = World::of(&env).await;
    w.put_gaiji().await;
    let st = w.state();
    let rows = mixed_rows();
    let seeds: Vec<u64> = rows.iter().map(|(i, _, _)| *i).collect();

    // The same rows twice: UTF-8 with BOM and CRLF, then CP932 with LF.
    let files = [
        ("mixed-utf8.csv", utf8_bom_crlf(&rows), "0001"),
        ("mixed-cp932.csv", cp932(&file_text(&rows, "\n")), "0002"),
    ];
    for (name, bytes, sequencer) in &files {
        let event = w.drop_file("jumin", name, bytes.clone(), sequencer).await;
        let response = handle(&st, event).await;
        assert!(ids(&response).is_empty(), "{name}");

        let (want_csv, mut want_summary) = expected_report(bytes);
        want_summary.applied = Some(4);
        want_summary.duration_ms = Some(0); // the test clock stands still
        let got_csv = w.text(&format!("results/jumin/{name}.errors.csv")).await;
        assert_eq!(got_csv, want_csv, "{name}");
        assert_eq!(w.summary(name).await, want_summary, "{name}");
        assert_eq!(
            (
                want_summary.rows_read,
                want_summary.valid,
                want_summary.rejected
            ),
            (8, 4, 4)
        );
        // The report's rows and codes, spelled out.
        let lines: Vec<(String, String)> = got_csv
            .lines()
            .skip(1)
            .map(|l| {
                let f: Vec<&str> = l.split(',').collect();
                (f[0].to_owned(), f[2].to_owned())
            })
            .collect();
        assert_eq!(
            lines,
            [
                ("2", "my_number.check_digit"),
                ("3", "date.invalid"),
                ("5", "gaiji.unmapped"),
                ("7", "row.field_count"),
            ]
            .map(|(r, c)| (r.to_owned(), c.to_owned()))
        );
    }

    for (seed, f, valid) in &rows {
        let got = st
            .residents
            .resident(&tenant(), &atena(*seed))
            .await
            .unwrap();
        assert_eq!(got.is_some(), *valid, "row of seed {seed}");
        if let Some(view) = got {
            // Applied by the first file; the second said the same and changed nothing.
            assert_eq!(view.source.key, "inbound/jumin/mixed-utf8.csv");
            if *seed == 4 {
                assert_eq!(view.name, "髙橋　一郎");
            } else {
                assert_eq!(view.name, f[idx("name")]);
            }
        }
    }
    let one = st
        .residents
        .resident(&tenant(), &atena(1))
        .await
        .unwrap()
        .unwrap();
    assert_eq!(one.values["address_extra"], "ハイツ霞が関,101\n号室");

    // The same notification again: no item, no report changes.
    let before = w.snapshot(&seeds).await;
    let report_before = w.text("results/jumin/mixed-utf8.csv.errors.csv").await;
    let summary_before = w.text("results/jumin/mixed-utf8.csv.summary.json").await;
    let (name, bytes, sequencer) = &files[0];
    let event = w.drop_file("jumin", name, bytes.clone(), sequencer).await;
    assert!(ids(&handle(&st, event).await).is_empty());
    assert_eq!(w.snapshot(&seeds).await, before);
    assert_eq!(
        w.text("results/jumin/mixed-utf8.csv.errors.csv").await,
        report_before
    );
    assert_eq!(
        w.text("results/jumin/mixed-utf8.csv.summary.json").await,
        summary_before
    );
}

async fn a_file_that_is_not_the_layout_is_rejected_whole(env: Env) {
    let w = World::of(&env).await;
    let st = w.state();
    let body: String = (1..4).map(|i| line(&fields(i))).collect();
    let text = format!(
        "{}\r\n{body}",
        jumin_header().replacen("宛名番号", "宛名No", 1)
    );
    let event = w
        .drop_file("jumin", "bad-header.csv", text.into_bytes(), "0001")
        .await;
    assert!(ids(&handle(&st, event).await).is_empty());
    for i in 1..4 {
        assert!(
            st.residents
                .resident(&tenant(), &atena(i))
                .await
                .unwrap()
                .is_none()
        );
    }
    let summary = w.summary("bad-header.csv").await;
    let error = summary.file_error.unwrap();
    assert_eq!(error.code, "file.header");
    assert!(error.message.contains("宛名番号"), "{}", error.message);
    assert_eq!((summary.rows_read, summary.applied), (0, Some(0)));
    let csv = w.text("results/jumin/bad-header.csv.errors.csv").await;
    assert!(csv.starts_with(errors_csv_header()));
    assert!(csv.contains("0,,file.header,"), "{csv}");

    // A rejected file is done: the next file of the system is not blocked by it.
    let good = format!("{}\r\n{}", jumin_header(), line(&fields(1)));
    let event = w
        .drop_file("jumin", "good.csv", good.into_bytes(), "0002")
        .await;
    assert!(ids(&handle(&st, event).await).is_empty());
    assert!(
        st.residents
            .resident(&tenant(), &atena(1))
            .await
            .unwrap()
            .is_some()
    );

    // A system without a layout: rejected whole, with a report under its own name.
    let event = w
        .drop_file("koseki", "a.csv", line(&fields(1)).into_bytes(), "0003")
        .await;
    assert!(ids(&handle(&st, event).await).is_empty());
    let summary: Summary =
        serde_json::from_str(&w.text("results/koseki/a.csv.summary.json").await).unwrap();
    assert_eq!(summary.file_error.unwrap().code, "file.system_unknown");
}

/// Fails every `put_batch` after the first `ok` ones (and, with `fail_finish`, the write
/// that marks a checkpoint done), as a consumer killed mid-file stops
/// writing.
struct DiesAfter {
    inner: Arc<dyn ItemStore>,
    ok: usize,
    calls: AtomicUsize,
    fail_finish: bool,
}

#[async_trait]
impl ItemStore for DiesAfter {
    async fn put(&self, item: Item, condition: Condition) -> PortResult<()> {
        if self.fail_finish && item.key.sk.starts_with("CKPT#") && item.data["state"] == "done" {
            return Err(PortError::Unavailable(
                "test: killed before finishing".into(),
            ));
        }
        self.inner.put(item, condition).await
    }
    async fn get_batch(&self, keys: &[Key]) -> PortResult<Vec<Option<Item>>> {
        self.inner.get_batch(keys).await
    }
    async fn get(&self, key: &Key) -> PortResult<Option<Item>> {
        self.inner.get(key).await
    }
    async fn delete(&self, key: &Key, condition: Condition) -> PortResult<()> {
        self.inner.delete(key, condition).await
    }
    async fn query(&self, request: QueryRequest) -> PortResult<Page> {
        self.inner.query(request).await
    }
    async fn transact(&self, ops: Vec<TxOp>) -> PortResult<()> {
        self.inner.transact(ops).await
    }
    async fn increment(&self, key: &Key, by: i64) -> PortResult<i64> {
        self.inner.increment(key, by).await
    }
    async fn put_batch(&self, items: Vec<Item>) -> PortResult<()> {
        if self.calls.fetch_add(1, Ordering::SeqCst) >= self.ok {
            return Err(PortError::Unavailable("test: killed".into()));
        }
        self.inner.put_batch(items).await
    }
}

fn dies_after(inner: &Arc<dyn ItemStore>, ok: usize) -> Arc<dyn ItemStore> {
    Arc::new(DiesAfter {
        inner: inner.clone(),
        ok,
        calls: AtomicUsize::new(0),
        fail_finish: false,
    })
}

/// 18 rows (seeds 100..118), four of them invalid (every fifth seed), in CP932.
fn long_file() -> (Vec<u8>, Vec<u64>) {
    let seeds: Vec<u64> = (100..118).collect();
    let mut text = format!("{}\r\n", jumin_header());
    for &i in &seeds {
        let mut f = fields(i);
        if i % 5 == 0 {
            f[idx("my_number")] = bad_my_number(i);
        }
        text.push_str(&line(&f));
    }
    (cp932(&text), seeds)
}

/// Items as compared across stores: the checkpoint's version counts its saves (more when a
/// run was interrupted) and a sealed 個人番号 is randomised ciphertext, so both are left out.
fn comparable(snapshot: BTreeMap<(String, String), Item>) -> BTreeMap<(String, String), Item> {
    snapshot
        .into_iter()
        .map(|(k, mut item)| {
            if item.key.sk.starts_with("CKPT#") {
                item.version = 0;
            }
            if let Some(map) = item.data.as_object_mut() {
                map.remove("sealed");
            }
            (k, item)
        })
        .collect()
}

async fn a_file_killed_mid_way_ends_as_a_clean_run(env: Env) {
    let w = World::of(&env).await;
    let (bytes, seeds) = long_file();

    // Batches of 4 valid rows, two `put_batch` calls each: the fifth call is the history of
    // the third batch, the sixth (its residents' CURRENT) dies.
    let mut killed = w.state_over(dies_after(&w.items, 5));
    killed.batch_rows = 4;
    let event = w
        .drop_file("jumin", "long.csv", bytes.clone(), "0001")
        .await;
    assert_eq!(ids(&handle(&killed, event.clone()).await), ["m-long.csv"]);
    // Part of the file is in, not all of it.
    let present = |st: InboundState| async move {
        let mut n = 0;
        for &i in &(100..118).collect::<Vec<u64>>() {
            n += usize::from(
                st.residents
                    .resident(&tenant(), &atena(i))
                    .await
                    .unwrap()
                    .is_some(),
            );
        }
        n
    };
    let partial = present(w.state()).await;
    assert_eq!(partial, 8);
    // Two batches of four valid rows were checkpointed (rows 1–10, rows 1 and 6 invalid).
    let file = FileRef {
        system: "jumin".into(),
        key: "inbound/jumin/long.csv".into(),
        version: "0001".into(),
        seq: 1,
    };
    let checkpoint = w.state().checkpoints.load(&tenant(), &file).await.unwrap();
    assert_eq!(
        checkpoint.state,
        IngestState::InProgress(Progress {
            rows_done: 10,
            applied: 8,
            rejected: 2
        })
    );

    // Redelivered to a healthy consumer: continues from the checkpoint.
    let mut healthy = w.state();
    healthy.batch_rows = 4;
    assert!(ids(&handle(&healthy, event).await).is_empty());
    assert_eq!(present(w.state()).await, 14);

    // A clean single run of the same file in a fresh store.
    let clean = World::fresh(&env, &w).await;
    let event = clean.drop_file("jumin", "long.csv", bytes, "0001").await;
    let mut st = clean.state();
    st.batch_rows = 4;
    assert!(ids(&handle(&st, event).await).is_empty());

    let got = comparable(w.snapshot(&seeds).await);
    let want = comparable(clean.snapshot(&seeds).await);
    assert_eq!(got.len(), want.len());
    for ((k, a), (_, b)) in got.iter().zip(&want) {
        assert_eq!(a, b, "{k:?}");
    }
    assert_eq!(got, want);
    // Sealed 個人番号 are there for the same residents in both (ciphertext differs by
    // design; rows without a 個人番号 have none).
    let sealed = |snapshot: BTreeMap<(String, String), Item>| {
        snapshot
            .into_iter()
            .filter(|(_, item)| item.data.get("sealed").is_some())
            .map(|(k, _)| k)
            .collect::<Vec<_>>()
    };
    let got_sealed = sealed(w.snapshot(&seeds).await);
    assert!(!got_sealed.is_empty());
    assert_eq!(got_sealed, sealed(clean.snapshot(&seeds).await));
    // The regenerated report equals the clean run's.
    for key in [
        "results/jumin/long.csv.errors.csv",
        "results/jumin/long.csv.summary.json",
    ] {
        assert_eq!(w.text(key).await, clean.text(key).await, "{key}");
    }
    let summary = w.summary("long.csv").await;
    assert_eq!(
        (summary.rows_read, summary.applied, summary.rejected),
        (18, Some(14), 4)
    );
}

async fn files_of_a_system_are_applied_in_order(env: Env) {
    let w = World::of(&env).await;
    let first = format!(
        "{}\r\n{}{}",
        jumin_header(),
        line(&fields(1)),
        line(&fields(2))
    );
    // File 2 moves resident 1 to another address.
    let mut moved = fields(1);
    moved[idx("address")] = "大阪府御坊市1番地".to_owned();
    let second = format!("{}\r\n{}", jumin_header(), line(&moved));

    // File 1 arrives and dies half-way (after its first batch of one row).
    let mut dying = w.state_over(dies_after(&w.items, 2));
    dying.batch_rows = 1;
    let one = w
        .drop_file("jumin", "1.csv", first.into_bytes(), "0001")
        .await;
    assert_eq!(ids(&handle(&dying, one.clone()).await), ["m-1.csv"]);

    // A number taken by a delivery that crashed before registering: a gap.
    let counter = Key::new(
        format!("{}#LINKAGE#IN#jumin", tenant().as_str()),
        "COUNTER#SEQ",
    );
    assert_eq!(w.items.increment(&counter, 1).await.unwrap(), 2);

    // File 2 arrives before file 1 is done: its message fails, nothing of it applied.
    let st = w.state();
    let two = w
        .drop_file("jumin", "2.csv", second.into_bytes(), "0002")
        .await;
    assert_eq!(ids(&handle(&st, two.clone()).await), ["m-2.csv"]);
    let r1 = st
        .residents
        .resident(&tenant(), &atena(1))
        .await
        .unwrap()
        .unwrap();
    assert_eq!(r1.source.key, "inbound/jumin/1.csv");

    // File 1 redelivered and finished; then file 2 goes through (past the gap).
    assert!(ids(&handle(&st, one).await).is_empty());
    assert!(ids(&handle(&st, two).await).is_empty());
    let r1 = st
        .residents
        .resident(&tenant(), &atena(1))
        .await
        .unwrap()
        .unwrap();
    assert_eq!(r1.source.key, "inbound/jumin/2.csv");
    assert_eq!(r1.source.seq, 3);
    assert_eq!(r1.values["address"], "大阪府御坊市1番地");
    assert!(
        st.residents
            .resident(&tenant(), &atena(2))
            .await
            .unwrap()
            .is_some()
    );
}

async fn a_run_killed_before_finishing_completes_on_redelivery(env: Env) {
    let w = World::of(&env).await;
    let (bytes, seeds) = long_file();
    // Every row applied and checkpointed, the reports written, then killed before the
    // checkpoint is marked done.
    let mut killed = w.state_over(Arc::new(DiesAfter {
        inner: w.items.clone(),
        ok: usize::MAX,
        calls: AtomicUsize::new(0),
        fail_finish: true,
    }));
    killed.batch_rows = 4;
    let event = w
        .drop_file("jumin", "long.csv", bytes.clone(), "0001")
        .await;
    assert_eq!(ids(&handle(&killed, event.clone()).await), ["m-long.csv"]);

    // The redelivery replays the whole file (check only), rewrites the reports, finishes.
    let mut healthy = w.state();
    healthy.batch_rows = 4;
    assert!(ids(&handle(&healthy, event).await).is_empty());

    let clean = World::fresh(&env, &w).await;
    let event = clean.drop_file("jumin", "long.csv", bytes, "0001").await;
    let mut st = clean.state();
    st.batch_rows = 4;
    assert!(ids(&handle(&st, event).await).is_empty());
    assert_eq!(
        comparable(w.snapshot(&seeds).await),
        comparable(clean.snapshot(&seeds).await)
    );
    for key in [
        "results/jumin/long.csv.errors.csv",
        "results/jumin/long.csv.summary.json",
    ] {
        assert_eq!(w.text(key).await, clean.text(key).await, "{key}");
    }
}

/// A core system writes `full.csv` twice before we read it. In a versioned bucket (the
/// linkage bucket is one) each notification's version is read: both files apply, in order,
/// each with its own rows. Without versions (the embedded store) the first notification finds
/// a different object than announced and is rejected with a report; the second applies.
async fn a_file_written_again_under_its_key_is_read_as_announced(env: Env) {
    let w = World::of(&env).await;
    let versioned = env.enable_versioning(&w.bucket).await;
    let file = |seeds: &[u64]| {
        let mut s = format!("{}\r\n", jumin_header());
        for &i in seeds {
            s.push_str(&line(&fields(i)));
        }
        s.into_bytes()
    };
    let mut first = w
        .drop_file("jumin", "full.csv", file(&[31, 32]), "01")
        .await;
    let mut second = w.drop_file("jumin", "full.csv", file(&[33]), "02").await;
    // The notifications carry the version ids S3 gave the two writes.
    let ids = env.version_ids(&w.bucket, "inbound/jumin/full.csv").await;
    for (event, id) in [(&mut first, ids.first()), (&mut second, ids.get(1))] {
        if let Some(id) = id {
            let msg = &mut event.records[0];
            let mut body: serde_json::Value =
                serde_json::from_str(msg.body.as_deref().unwrap()).unwrap();
            body["Records"][0]["s3"]["object"]["versionId"] = id.clone().into();
            msg.body = Some(body.to_string());
        }
    }
    let state = w.state();
    let store = ResidentStore::new(w.items.clone(), w.cipher.clone());
    assert!(handle(&state, first).await.batch_item_failures.is_empty());
    let after_first: Vec<bool> = futures::future::join_all([31, 32, 33].map(|i| {
        let store = &store;
        async move {
            store
                .resident(&tenant(), &atena(i))
                .await
                .unwrap()
                .is_some()
        }
    }))
    .await;
    if versioned {
        assert_eq!(after_first, [true, true, false], "the first version's rows");
    } else {
        assert_eq!(
            after_first,
            [false, false, false],
            "nothing from a replaced object"
        );
    }
    assert!(handle(&state, second).await.batch_item_failures.is_empty());
    let resident = |i| {
        let store = &store;
        async move { store.resident(&tenant(), &atena(i)).await.unwrap() }
    };
    assert!(resident(33).await.is_some(), "the second file applied");
    assert_eq!(resident(31).await.is_some(), versioned);
    // Two registrations, two reports; the names are the same, so the second report stands.
    let files = w
        .items
        .query(
            QueryRequest::partition(format!("{}#LINKAGE#IN#jumin", tenant().as_str())).sk(
                madoguchi_ports::SortKeyCondition::BeginsWith("FILE#".into()),
            ),
        )
        .await
        .unwrap();
    assert_eq!(files.items.len(), 2);
    let summary = w.summary("full.csv").await;
    assert_eq!(summary.applied, Some(1), "{summary:?}");
}
