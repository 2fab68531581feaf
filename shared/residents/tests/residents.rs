//! The resident store on both adapter sets (SQLite, and DynamoDB + KMS on moto): rows made
//! by `LayoutReader` from CSV in the 住民記録 layout.

use std::sync::Arc;

use jiff::civil::date;
use madoguchi_domain::mynumber::my_number_check_digit;
use madoguchi_domain::tenant::TenantId;
use madoguchi_fieldcrypt::{Binding, CachePolicy, FieldCipher, Sealed};
use madoguchi_linkage::{ConversionTable, Layout, LayoutReader, Record, RowOutcome};
use madoguchi_ports::{
    Condition, Index, Item, ItemStore, Key, Page, PortError, PortResult, QueryRequest, TxOp,
    query_all,
};
use madoguchi_residents::keys::{CURRENT_SK, household_index_pk, resident_pk};
use madoguchi_residents::{
    Checkpoints, FileRef, IngestState, Progress, ResidentStore, ResidentView,
};
use madoguchi_tests::{Env, contract_tests};

contract_tests!(
    residents_and_households_read_back,
    applying_the_same_rows_again_changes_nothing,
    interrupted_apply_completes_when_applied_again,
    later_file_moves_renames_and_records_departure,
    my_number_is_never_stored_in_plain,
    checkpoint_save_with_a_stale_version_fails,
    birth_date_indexes_are_asked_once_per_date,
);

fn tenant() -> TenantId {
    TenantId::parse("131016").expect("tenant")
}

/// A valid 個人番号 from a seed.
fn my_number(seed: u64) -> String {
    let first11 = format!("{:011}", 31_000_000_000 + seed * 7_919);
    let c = my_number_check_digit(&first11).expect("check digit");
    format!("{first11}{c}")
}

/// One person's row; the columns not named here stay empty.
#[derive(Clone)]
struct Person {
    atena: &'static str,
    household: &'static str,
    number: Option<u64>,
    name: &'static str,
    kana: &'static str,
    birth: &'static str,
    relationship: &'static str,
    householder: &'static str,
    status: &'static str,
    change: Option<(&'static str, &'static str)>,
}

impl Person {
    fn fields(&self) -> Vec<String> {
        let mut f = vec![
            self.atena.to_owned(),
            self.household.to_owned(),
            format!("4{:0>10}", self.atena),
            self.number.map(my_number).unwrap_or_default(),
            self.name.to_owned(),
            self.kana.to_owned(),
            self.birth.to_owned(),
            "1".to_owned(),
            self.relationship.to_owned(),
            self.householder.to_owned(),
            "東京都千代田区霞が関1丁目1番1号".to_owned(),
            String::new(),
            "100-8926".to_owned(),
            "R2.04.01".to_owned(),
            self.status.to_owned(),
            self.change.map(|c| c.0).unwrap_or_default().to_owned(),
            self.change.map(|c| c.1).unwrap_or_default().to_owned(),
        ];
        f.extend(std::iter::repeat_n(String::new(), 7));
        f
    }
}

/// Parses a CSV file of these people (header included) into valid records.
fn rows(people: &[Person]) -> Vec<(u64, Record)> {
    let layout = Layout::jumin();
    let header: Vec<&str> = layout.columns.iter().map(|c| c.header_name()).collect();
    let mut csv = header.join(",") + "\r\n";
    for p in people {
        csv.push_str(&p.fields().join(","));
        csv.push_str("\r\n");
    }
    let conversion = ConversionTable::empty();
    let mut reader = LayoutReader::new(&layout, &conversion, csv.as_bytes()).expect("header");
    let mut out = Vec::new();
    while let Some(outcome) = reader.next_row().expect("readable") {
        match outcome {
            RowOutcome::Valid { row_no, record } => out.push((row_no, record)),
            RowOutcome::Invalid { row_no, errors } => panic!("row {row_no} invalid: {errors:?}"),
        }
    }
    assert_eq!(out.len(), people.len());
    out
}

const TARO: Person = Person {
    atena: "1000001",
    household: "500001",
    number: Some(1),
    name: "山田　太郎",
    kana: "ヤマダ　タロウ",
    birth: "S50.01.02",
    relationship: "01",
    householder: "山田　太郎",
    status: "1",
    change: None,
};
const HANAKO: Person = Person {
    atena: "1000002",
    household: "500001",
    number: Some(2),
    name: "山田　花子",
    kana: "ヤマダ　ハナコ",
    birth: "S52.03.04",
    relationship: "02",
    householder: "山田　太郎",
    status: "1",
    change: None,
};
const ICHIRO: Person = Person {
    atena: "1000003",
    household: "500001",
    number: None,
    name: "山田　一郎",
    kana: "ヤマダ　イチロウ",
    birth: "H20.05.06",
    relationship: "04",
    householder: "山田　太郎",
    status: "1",
    change: None,
};
const JIRO: Person = Person {
    atena: "1000004",
    household: "500002",
    number: Some(4),
    name: "鈴木　次郎",
    kana: "スズキ　ジロウ",
    birth: "S50.01.02",
    relationship: "01",
    householder: "鈴木　次郎",
    status: "1",
    change: None,
};

/// The first file: two households, the child listed first to show the ordering.
fn first_file() -> Vec<Person> {
    vec![ICHIRO, TARO, HANAKO, JIRO]
}

fn file(seq: u64) -> FileRef {
    FileRef {
        system: "jumin".into(),
        key: format!("inbound/jumin/jumin-{seq:04}.csv"),
        version: format!("v{seq}"),
        seq,
    }
}

struct Fixture {
    items: Arc<dyn ItemStore>,
    cipher: FieldCipher,
    store: ResidentStore,
}

async fn fixture(env: &Env) -> Fixture {
    let items = env.items().await;
    fixture_over(env, items).await
}

async fn fixture_over(env: &Env, items: Arc<dyn ItemStore>) -> Fixture {
    let cipher = FieldCipher::new(env.keys().await, env.clock.clone(), CachePolicy::default());
    let store = ResidentStore::new(items.clone(), cipher.clone());
    Fixture {
        items,
        cipher,
        store,
    }
}

fn atenas(views: &[ResidentView]) -> Vec<&str> {
    views.iter().map(|v| v.atena_number.as_str()).collect()
}

/// Every item of the residents' partitions, the household index partitions and the lookup
/// partitions of their birth dates.
async fn snapshot(fx: &Fixture, people: &[Person]) -> Vec<Item> {
    let t = tenant();
    let mut all = Vec::new();
    let mut households: Vec<&str> = people.iter().map(|p| p.household).collect();
    households.sort_unstable();
    households.dedup();
    for p in people {
        let request = QueryRequest::partition(resident_pk(&t, p.atena));
        all.extend(query_all(fx.items.as_ref(), request, 10_000).await.unwrap());
        let birth = rows(std::slice::from_ref(p))[0]
            .1
            .get("birth_date")
            .unwrap()
            .as_date();
        let pk = fx.store.lookup_partition(&t, birth.unwrap()).await.unwrap();
        all.extend(
            query_all(fx.items.as_ref(), QueryRequest::partition(pk), 10_000)
                .await
                .unwrap(),
        );
    }
    for h in households {
        let request = QueryRequest::partition(household_index_pk(&t, h)).on(Index::Gsi1);
        all.extend(query_all(fx.items.as_ref(), request, 10_000).await.unwrap());
    }
    all.sort_by(|a, b| (&a.key.pk, &a.key.sk).cmp(&(&b.key.pk, &b.key.sk)));
    all
}

async fn residents_and_households_read_back(env: Env) {
    let fx = fixture(&env).await;
    let t = tenant();
    let outcome = fx
        .store
        .apply(&t, &file(1), rows(&first_file()))
        .await
        .unwrap();
    assert_eq!(
        (outcome.applied, outcome.unchanged, outcome.skipped),
        (4, 0, 0)
    );
    assert!(outcome.rejected.is_empty());

    let taro = fx
        .store
        .resident(&t, TARO.atena)
        .await
        .unwrap()
        .expect("taro");
    assert_eq!(taro.name, "山田　太郎");
    assert_eq!(taro.name_kana.as_deref(), Some("ヤマダ　タロウ"));
    assert_eq!(taro.household_number, "500001");
    assert_eq!(taro.birth_date, Some(date(1975, 1, 2)));
    assert!(taro.householder && taro.present);
    let number = my_number(1);
    assert_eq!(
        taro.my_number_masked.as_deref(),
        Some(format!("********{}", &number[8..]).as_str())
    );
    assert!(!taro.values.values().any(|v| v.contains(&number)));
    assert_eq!(taro.values["address"], "東京都千代田区霞が関1丁目1番1号");
    assert_eq!(taro.values["postal_code"], "1008926");
    assert_eq!((taro.source.seq, taro.source.row), (1, 2));
    let ichiro = fx.store.resident(&t, ICHIRO.atena).await.unwrap().unwrap();
    assert_eq!(ichiro.my_number_masked, None);
    assert!(fx.store.resident(&t, "9999999").await.unwrap().is_none());
    assert!(fx.store.resident(&t, "bad#key").await.unwrap().is_none());

    let household = fx.store.household(&t, "500001").await.unwrap();
    assert_eq!(
        atenas(&household),
        [TARO.atena, HANAKO.atena, ICHIRO.atena],
        "世帯主 first, then by 続柄"
    );
    assert_eq!(
        atenas(&fx.store.household(&t, "500002").await.unwrap()),
        [JIRO.atena]
    );
    assert!(fx.store.household(&t, "599999").await.unwrap().is_empty());

    // Name + birth date, in any width or script; two people share the birth date.
    let born = date(1975, 1, 2);
    for query in [
        "山田太郎",
        "山田 太郎",
        "ヤマダ　タロウ",
        "ﾔﾏﾀﾞ ﾀﾛｳ",
        "やまだたろう",
    ] {
        assert_eq!(
            atenas(&fx.store.find(&t, query, born).await.unwrap()),
            [TARO.atena],
            "{query}"
        );
    }
    assert_eq!(
        atenas(&fx.store.find(&t, "鈴木次郎", born).await.unwrap()),
        [JIRO.atena]
    );
    assert!(
        fx.store
            .find(&t, "山田太郎", date(1975, 1, 3))
            .await
            .unwrap()
            .is_empty()
    );
    assert!(fx.store.find(&t, "山田", born).await.unwrap().is_empty());
    assert!(matches!(
        fx.store.find(&t, "　", born).await,
        Err(PortError::Invalid(_))
    ));
}

async fn applying_the_same_rows_again_changes_nothing(env: Env) {
    let fx = fixture(&env).await;
    let t = tenant();
    let people = first_file();
    fx.store.apply(&t, &file(1), rows(&people)).await.unwrap();
    let before = snapshot(&fx, &people).await;
    // 4 CURRENT and 4 history entries; 4 lookup entries, the two in the shared birth-date
    // partition read once per person; 4 CURRENT again through the household index.
    assert_eq!(before.len(), 8 + (2 + 2 + 1 + 1) + 4);

    // Redelivered whole, then resumed half-way (rows 3 and 4 again), then row by row.
    let again = fx.store.apply(&t, &file(1), rows(&people)).await.unwrap();
    assert_eq!((again.applied, again.unchanged, again.skipped), (0, 0, 4));
    let tail: Vec<_> = rows(&people).into_iter().skip(2).collect();
    assert_eq!(fx.store.apply(&t, &file(1), tail).await.unwrap().skipped, 2);
    for row in rows(&people) {
        fx.store.apply(&t, &file(1), vec![row]).await.unwrap();
    }
    assert_eq!(snapshot(&fx, &people).await, before, "every item identical");

    // The same content in a later file: nothing to write either.
    let later = fx.store.apply(&t, &file(2), rows(&people)).await.unwrap();
    assert_eq!((later.applied, later.unchanged, later.skipped), (0, 4, 0));
    assert_eq!(snapshot(&fx, &people).await, before);
}

/// Fails the `n`-th `put_batch` (1-based) after writing its first half: a Lambda timing out
/// in the middle of a batch.
struct BreakBatch {
    inner: Arc<dyn ItemStore>,
    fail_at: usize,
    calls: std::sync::atomic::AtomicUsize,
}

#[async_trait::async_trait]
impl ItemStore for BreakBatch {
    async fn put(&self, item: Item, condition: Condition) -> PortResult<()> {
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
    async fn put_batch(&self, mut items: Vec<Item>) -> PortResult<()> {
        let n = self.calls.fetch_add(1, std::sync::atomic::Ordering::SeqCst) + 1;
        if n != self.fail_at {
            return self.inner.put_batch(items).await;
        }
        items.truncate(items.len() / 2);
        self.inner.put_batch(items).await?;
        Err(PortError::Unavailable("test: interrupted".into()))
    }
}

async fn interrupted_apply_completes_when_applied_again(env: Env) {
    let items = env.items().await;
    let people = first_file();
    let t = tenant();
    // Interrupted in the first batch (history), then in the second (CURRENT).
    for fail_at in [1, 2] {
        let broken = Arc::new(BreakBatch {
            inner: items.clone(),
            fail_at,
            calls: Default::default(),
        });
        let fx = fixture_over(&env, broken).await;
        let err = fx.store.apply(&t, &file(1), rows(&people)).await;
        assert!(matches!(err, Err(PortError::Unavailable(_))), "{err:?}");
    }
    // The redelivery completes what is missing, and only that.
    let fx = fixture_over(&env, items).await;
    let outcome = fx.store.apply(&t, &file(1), rows(&people)).await.unwrap();
    assert_eq!(outcome.applied + outcome.skipped, 4);
    assert!(
        outcome.skipped >= 1,
        "half of the CURRENT items were written"
    );
    let done = snapshot(&fx, &people).await;
    fx.store.apply(&t, &file(1), rows(&people)).await.unwrap();
    assert_eq!(snapshot(&fx, &people).await, done);
    for p in &people {
        let view = fx
            .store
            .resident(&t, p.atena)
            .await
            .unwrap()
            .expect("stored");
        assert_eq!(view.name, p.name);
        let history = fx.store.history(&t, p.atena).await.unwrap();
        assert_eq!(history.len(), 1, "{}", p.atena);
        assert_eq!(history[0].state.source, view.source);
    }
    assert_eq!(
        atenas(&fx.store.household(&t, "500001").await.unwrap()),
        [TARO.atena, HANAKO.atena, ICHIRO.atena]
    );
}

async fn later_file_moves_renames_and_records_departure(env: Env) {
    let fx = fixture(&env).await;
    let t = tenant();
    fx.store
        .apply(&t, &file(1), rows(&first_file()))
        .await
        .unwrap();

    // 差分: 一郎 moves into 次郎's household, 太郎 changes his name, 花子 moves away (転出).
    let moved = Person {
        household: "500002",
        relationship: "30",
        householder: "鈴木　次郎",
        change: Some(("21", "R7.04.01")),
        ..ICHIRO
    };
    let renamed = Person {
        name: "佐藤　太郎",
        kana: "サトウ　タロウ",
        householder: "佐藤　太郎",
        change: Some(("52", "R7.04.02")),
        ..TARO
    };
    let left = Person {
        status: "2",
        change: Some(("30", "R7.04.03")),
        ..HANAKO
    };
    let outcome = fx
        .store
        .apply(&t, &file(2), rows(&[moved, renamed, left]))
        .await
        .unwrap();
    assert_eq!(outcome.applied, 3);

    assert_eq!(
        atenas(&fx.store.household(&t, "500001").await.unwrap()),
        [TARO.atena],
        "the child moved out, the spouse left"
    );
    assert_eq!(
        atenas(&fx.store.household(&t, "500002").await.unwrap()),
        [JIRO.atena, ICHIRO.atena]
    );
    let hanako = fx.store.resident(&t, HANAKO.atena).await.unwrap().unwrap();
    assert!(!hanako.present, "kept, with the state of the row");
    assert_eq!(hanako.resident_status.as_deref(), Some("2"));

    let born = date(1975, 1, 2);
    assert!(
        fx.store
            .find(&t, "山田太郎", born)
            .await
            .unwrap()
            .is_empty(),
        "the old name finds no one"
    );
    assert!(
        fx.store
            .find(&t, "ヤマダタロウ", born)
            .await
            .unwrap()
            .is_empty()
    );
    assert_eq!(
        atenas(&fx.store.find(&t, "佐藤太郎", born).await.unwrap()),
        [TARO.atena]
    );
    assert_eq!(
        atenas(&fx.store.find(&t, "サトウ タロウ", born).await.unwrap()),
        [TARO.atena]
    );

    let history = fx.store.history(&t, TARO.atena).await.unwrap();
    let seen: Vec<(u64, u64, &str)> = history
        .iter()
        .map(|h| {
            (
                h.state.source.seq,
                h.state.source.row,
                h.state.name.as_str(),
            )
        })
        .collect();
    assert_eq!(seen, [(1, 2, "山田　太郎"), (2, 2, "佐藤　太郎")]);
    assert_eq!(history[1].change_reason.as_deref(), Some("52"));
    assert_eq!(history[1].change_date, Some(date(2025, 4, 2)));
    let left_history = fx.store.history(&t, HANAKO.atena).await.unwrap();
    assert_eq!(left_history.len(), 2);
    assert!(left_history[0].state.present && !left_history[1].state.present);

    // File 1 delivered again late: older than what is stored, so nothing moves back.
    let late = fx
        .store
        .apply(&t, &file(1), rows(&first_file()))
        .await
        .unwrap();
    assert_eq!((late.applied, late.skipped + late.unchanged), (0, 4));
    assert_eq!(
        atenas(&fx.store.household(&t, "500002").await.unwrap()),
        [JIRO.atena, ICHIRO.atena]
    );
    assert_eq!(fx.store.history(&t, TARO.atena).await.unwrap().len(), 2);
}

async fn my_number_is_never_stored_in_plain(env: Env) {
    let fx = fixture(&env).await;
    let t = tenant();
    let people = first_file();
    fx.store.apply(&t, &file(1), rows(&people)).await.unwrap();
    let items = snapshot(&fx, &people).await;
    let numbers: Vec<String> = people
        .iter()
        .filter_map(|p| p.number)
        .map(my_number)
        .collect();
    for item in &items {
        let stored = serde_json::to_string(item).unwrap();
        for n in &numbers {
            assert!(
                !stored.contains(n.as_str()),
                "plain 個人番号 in {}",
                item.key.sk
            );
        }
    }
    // It is there, sealed and bound to the resident: it opens for the right record only.
    let current = fx
        .items
        .get(&Key::new(resident_pk(&t, TARO.atena), CURRENT_SK))
        .await
        .unwrap()
        .unwrap();
    let sealed: Sealed =
        serde_json::from_value(current.data["sealed"]["my_number"].clone()).unwrap();
    let record = format!("resident:{}", TARO.atena);
    let plain = fx
        .cipher
        .open(&t, &Binding::new(&record, "my_number"), &sealed)
        .await
        .unwrap();
    assert_eq!(plain.as_slice(), my_number(1).as_bytes());
    let other = format!("resident:{}", HANAKO.atena);
    assert!(matches!(
        fx.cipher
            .open(&t, &Binding::new(&other, "my_number"), &sealed)
            .await,
        Err(PortError::DecryptionRefused)
    ));
    // And matchable without decrypting, as applications index it.
    let index = fx
        .cipher
        .blind_index(
            &t,
            madoguchi_residents::MY_NUMBER_INDEX_PURPOSE,
            my_number(1).as_bytes(),
        )
        .await
        .unwrap();
    assert_eq!(
        current.data["resident"]["numbers"]["my_number"]["index"],
        serde_json::json!(index)
    );
}

async fn checkpoint_save_with_a_stale_version_fails(env: Env) {
    let items = env.items().await;
    let checkpoints = Checkpoints::new(items.clone(), env.clock.clone());
    let t = tenant();
    let f = file(7);
    let start = checkpoints.load(&t, &f).await.unwrap();
    assert_eq!(start.state, IngestState::NotStarted);
    assert_eq!(start.version, 0);

    let p = |rows_done, applied, rejected| Progress {
        rows_done,
        applied,
        rejected,
    };
    let first = checkpoints
        .save(&t, &f, &start, p(1000, 990, 10))
        .await
        .unwrap();
    assert_eq!(first.state, IngestState::InProgress(p(1000, 990, 10)));
    // A second consumer that also started from nothing cannot advance the file.
    let err = checkpoints
        .save(&t, &f, &start, p(1000, 1000, 0))
        .await
        .unwrap_err();
    assert!(err.is_condition_failed(), "{err:?}");
    let second = checkpoints
        .save(&t, &f, &first, p(2000, 1985, 15))
        .await
        .unwrap();
    let err = checkpoints
        .save(&t, &f, &first, p(3000, 2985, 15))
        .await
        .unwrap_err();
    assert!(err.is_condition_failed(), "stale version: {err:?}");
    assert!(matches!(
        checkpoints.save(&t, &f, &second, p(1500, 0, 0)).await,
        Err(PortError::Invalid(_))
    ));
    assert_eq!(checkpoints.load(&t, &f).await.unwrap(), second);

    let done = checkpoints
        .finish(&t, &f, &second, p(2500, 2480, 20))
        .await
        .unwrap();
    assert_eq!(checkpoints.load(&t, &f).await.unwrap(), done);
    assert_eq!(done.state, IngestState::Done(p(2500, 2480, 20)));
    assert!(matches!(
        checkpoints.save(&t, &f, &done, p(2600, 0, 0)).await,
        Err(PortError::Invalid(_))
    ));
    let err = checkpoints
        .finish(&t, &f, &second, p(2500, 2480, 20))
        .await
        .unwrap_err();
    assert!(err.is_condition_failed(), "{err:?}");

    // Another version of the same object is another file; the registration record of
    // `linkage-inbound` in the same partition is left alone.
    let registration = Key::new(
        madoguchi_residents::keys::linkage_inbound_pk(&t, "jumin"),
        format!("FILE#{}#{}", f.key, f.version),
    );
    items
        .put(
            Item::new(
                registration.clone(),
                serde_json::json!({"status": "received"}),
            ),
            Condition::NotExists,
        )
        .await
        .unwrap();
    let other = FileRef {
        version: "v8".into(),
        ..f.clone()
    };
    assert_eq!(
        checkpoints.load(&t, &other).await.unwrap().state,
        IngestState::NotStarted
    );
    assert_eq!(
        items.get(&registration).await.unwrap().unwrap().data,
        serde_json::json!({"status": "received"})
    );
}

/// Counts blind-index requests (KMS `GenerateMac` in AWS).
struct CountingKeys {
    inner: Arc<dyn madoguchi_ports::Keys>,
    macs: std::sync::atomic::AtomicUsize,
}

#[async_trait::async_trait]
impl madoguchi_ports::Keys for CountingKeys {
    async fn generate_data_key(
        &self,
        context: &madoguchi_ports::EncryptionContext,
    ) -> PortResult<madoguchi_ports::DataKey> {
        self.inner.generate_data_key(context).await
    }
    async fn unwrap_data_key(
        &self,
        wrapped: &[u8],
        context: &madoguchi_ports::EncryptionContext,
    ) -> PortResult<zeroize::Zeroizing<[u8; 32]>> {
        self.inner.unwrap_data_key(wrapped, context).await
    }
    async fn mac(
        &self,
        context: &madoguchi_ports::EncryptionContext,
        data: &[u8],
    ) -> PortResult<[u8; 32]> {
        self.macs.fetch_add(1, std::sync::atomic::Ordering::SeqCst);
        self.inner.mac(context, data).await
    }
}

/// A second file of other people born on the same days asks for the 個人番号 indexes only:
/// the birth dates' indexes are remembered (a city has some 30,000 of them, not a million).
async fn birth_date_indexes_are_asked_once_per_date(env: Env) {
    let keys = Arc::new(CountingKeys {
        inner: env.keys().await,
        macs: Default::default(),
    });
    let cipher = FieldCipher::new(keys.clone(), env.clock.clone(), CachePolicy::default());
    let store = ResidentStore::new(env.items().await, cipher);
    let first = first_file();
    store
        .apply(&tenant(), &file(1), rows(&first))
        .await
        .unwrap();
    let numbers = first.iter().filter(|p| p.number.is_some()).count();
    let births: std::collections::BTreeSet<&str> = first.iter().map(|p| p.birth).collect();
    let counted = keys.macs.swap(0, std::sync::atomic::Ordering::SeqCst);
    assert_eq!(counted, numbers + births.len());
    let others = vec![
        Person {
            atena: "1000901",
            number: Some(901),
            ..TARO
        },
        Person {
            atena: "1000902",
            number: Some(902),
            ..HANAKO
        },
        Person {
            atena: "1000903",
            number: None,
            ..ICHIRO
        },
    ];
    let outcome = store
        .apply(&tenant(), &file(2), rows(&others))
        .await
        .unwrap();
    assert_eq!(outcome.applied, 3);
    assert_eq!(
        keys.macs.load(std::sync::atomic::Ordering::SeqCst),
        2,
        "two 個人番号, no date"
    );
    // And they are found by name and birth date like anyone else.
    let found = store
        .find(&tenant(), TARO.name, date(1975, 1, 2))
        .await
        .unwrap();
    assert_eq!(atenas(&found), ["1000001", "1000901"]);
}
