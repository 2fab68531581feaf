//! Field encryption (`madoguchi-fieldcrypt`) over the real `Keys` adapters: the local key file
//! (embedded) and KMS on moto (aws). Plus the measurement of KMS calls per 1,000 sensitive
//! field encryptions, counted on the AWS side of the wire by a [`CountingProxy`].

use std::collections::BTreeMap;
use std::sync::Arc;

use madoguchi_aws::AwsBackend;
use madoguchi_aws::provision::{self, KmsKeyKind};
use madoguchi_domain::tenant::TenantId;
use madoguchi_fieldcrypt::{Binding, CachePolicy, FieldCipher, Sealed};
use madoguchi_ports::{FixedClock, Keys, PortError};
use madoguchi_tests::{CountingProxy, Env, aws_endpoint, contract_tests, with_time_limit};

contract_tests!(
    seal_open_round_trip,
    cross_tenant_open_refused,
    tampered_or_moved_ciphertext_refused,
    blind_index_stable_and_tenant_separated,
);

const FIELD: &str = "my_number";

fn chiyoda() -> TenantId {
    TenantId::parse("131016").expect("tenant")
}

fn osaka_kita() -> TenantId {
    TenantId::from_five_digits("27127").expect("tenant")
}

/// The `i`-th test My Number: 11 digits and the check digit of the 個人番号 rules
/// (weights 2–7, 2–6 from the right, modulo 11).
fn my_number(i: u64) -> String {
    let base = format!("{:011}", 10_000_000_000 + i * 7_919);
    let sum: u32 = base
        .bytes()
        .rev()
        .enumerate()
        .map(|(n, d)| {
            let n = n as u32 + 1;
            let q = if n <= 6 { n + 1 } else { n - 5 };
            u32::from(d - b'0') * q
        })
        .sum();
    let check = match sum % 11 {
        0 | 1 => 0,
        r => 11 - r,
    };
    format!("{base}{check}")
}

fn cipher(env: &Env, keys: Arc<dyn Keys>) -> FieldCipher {
    FieldCipher::new(keys, env.clock.clone(), CachePolicy::default())
}

async fn seal_open_round_trip(env: Env) {
    let keys = env.keys().await;
    let writer = cipher(&env, keys.clone());
    let tenant = chiyoda();
    let number = my_number(1);
    let binding = Binding::new("01J0000000000000000000APP1", FIELD);
    let sealed = writer
        .seal(&tenant, &binding, number.as_bytes())
        .await
        .expect("seal");
    let json = serde_json::to_string(&sealed).unwrap();
    assert!(!json.contains(&number), "{json}");
    assert!(!format!("{sealed:?}").contains(&number));

    // The writer opens with its cached key; a reader with an empty cache unwraps it through
    // the adapter, from the stored JSON.
    let opened = writer.open(&tenant, &binding, &sealed).await.expect("open");
    assert_eq!(opened.as_slice(), number.as_bytes());
    let stored: Sealed = serde_json::from_str(&json).unwrap();
    let reader = cipher(&env, keys.clone());
    let opened = reader.open(&tenant, &binding, &stored).await.expect("open");
    assert_eq!(opened.as_slice(), number.as_bytes());

    // Many fields share a data key; each still opens on its own binding only.
    let other = Binding::new("01J0000000000000000000APP2", FIELD);
    let second = writer
        .seal(&tenant, &other, my_number(2).as_bytes())
        .await
        .unwrap();
    assert_eq!(second.wrapped_key(), sealed.wrapped_key());
    assert_eq!(
        reader
            .open(&tenant, &other, &second)
            .await
            .unwrap()
            .as_slice(),
        my_number(2).as_bytes()
    );
}

async fn cross_tenant_open_refused(env: Env) {
    let keys = env.keys().await;
    let writer = cipher(&env, keys.clone());
    let binding = Binding::new("A-1", FIELD);
    let sealed = writer
        .seal(&chiyoda(), &binding, my_number(3).as_bytes())
        .await
        .unwrap();
    // With the key cached by the writer (refused by the associated data) and from an empty
    // cache (refused by the adapter: the data key's context names the other tenant).
    let reader = cipher(&env, keys.clone());
    for fc in [&writer, &reader] {
        let err = fc
            .open(&osaka_kita(), &binding, &sealed)
            .await
            .expect_err("other tenant");
        assert!(matches!(err, PortError::DecryptionRefused), "{err:?}");
    }
    // A refusal is not cached: the right tenant still opens.
    assert_eq!(
        reader
            .open(&chiyoda(), &binding, &sealed)
            .await
            .unwrap()
            .as_slice(),
        my_number(3).as_bytes()
    );
}

async fn tampered_or_moved_ciphertext_refused(env: Env) {
    let keys = env.keys().await;
    let writer = cipher(&env, keys.clone());
    let tenant = chiyoda();
    let binding = Binding::new("A-1", FIELD);
    let sealed = writer
        .seal(&tenant, &binding, my_number(4).as_bytes())
        .await
        .unwrap();
    let reader = cipher(&env, keys.clone());
    for moved in [Binding::new("A-2", FIELD), Binding::new("A-1", "phone")] {
        let err = reader.open(&tenant, &moved, &sealed).await.unwrap_err();
        assert!(matches!(err, PortError::DecryptionRefused), "{err:?}");
    }
    let mut json: serde_json::Value = serde_json::to_value(&sealed).unwrap();
    let ct = json["ct"].as_str().unwrap().to_owned();
    let flipped = if ct.starts_with('A') { "B" } else { "A" };
    json["ct"] = serde_json::Value::String(format!("{flipped}{}", &ct[1..]));
    let tampered: Sealed = serde_json::from_value(json.clone()).unwrap();
    let err = reader.open(&tenant, &binding, &tampered).await.unwrap_err();
    assert!(matches!(err, PortError::DecryptionRefused), "{err:?}");

    // A wrapped key that is not one: refused by the adapter.
    let other = writer
        .seal(&osaka_kita(), &binding, my_number(4).as_bytes())
        .await
        .unwrap();
    let mut json = serde_json::to_value(&sealed).unwrap();
    json["key"] = serde_json::to_value(&other).unwrap()["key"].clone();
    let swapped: Sealed = serde_json::from_value(json).unwrap();
    let err = cipher(&env, keys)
        .open(&tenant, &binding, &swapped)
        .await
        .unwrap_err();
    assert!(matches!(err, PortError::DecryptionRefused), "{err:?}");
}

async fn blind_index_stable_and_tenant_separated(env: Env) {
    let keys = env.keys().await;
    let a = cipher(&env, keys.clone());
    let b = cipher(&env, keys.clone());
    let number = my_number(5);
    let index = a
        .blind_index(&chiyoda(), "my-number", number.as_bytes())
        .await
        .unwrap();
    assert_eq!(index.len(), 64);
    assert!(
        index
            .bytes()
            .all(|c| matches!(c, b'0'..=b'9' | b'a'..=b'f'))
    );
    assert!(!index.contains(&number));
    // Stable across instances and calls.
    assert_eq!(
        index,
        b.blind_index(&chiyoda(), "my-number", number.as_bytes())
            .await
            .unwrap()
    );
    // Separated by tenant, purpose and value.
    for other in [
        a.blind_index(&osaka_kita(), "my-number", number.as_bytes())
            .await
            .unwrap(),
        a.blind_index(&chiyoda(), "phone", number.as_bytes())
            .await
            .unwrap(),
        a.blind_index(&chiyoda(), "my-number", my_number(6).as_bytes())
            .await
            .unwrap(),
    ] {
        assert_ne!(index, other);
    }
}

/// KMS requests by operation between two snapshots of the proxy's counts.
fn kms_delta(
    before: &BTreeMap<String, u64>,
    after: &BTreeMap<String, u64>,
) -> BTreeMap<String, u64> {
    after
        .iter()
        .filter(|(target, _)| target.starts_with("TrentService."))
        .map(|(target, n)| (target.clone(), n - before.get(target).copied().unwrap_or(0)))
        .filter(|(_, n)| *n > 0)
        .collect()
}

fn total(counts: &BTreeMap<String, u64>) -> u64 {
    counts.values().sum()
}

const N: u64 = 1_000;

/// KMS calls per 1,000 sensitive-field encryptions (and 1,000 blind indexes, and 1,000 opens),
/// counted by a proxy between the AWS SDK and moto, with the default cache policy.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn aws_kms_requests_per_1000_field_encryptions() {
    with_time_limit(measure_kms_requests()).await;
}

async fn measure_kms_requests() {
    let proxy = CountingProxy::start(&aws_endpoint())
        .await
        .expect("start proxy");
    let clock = Arc::new(FixedClock::new(jiff::Timestamp::now()));
    let backend = AwsBackend::local(proxy.url(), clock.clone()).await;
    let prefix = format!("mdg-{}", uuid::Uuid::now_v7().simple());
    let kms = backend.kms_client();
    let data =
        provision::ensure_kms_key(kms, &format!("alias/{prefix}-data"), KmsKeyKind::DataKeys)
            .await
            .expect("provision data key");
    let mac = provision::ensure_kms_key(kms, &format!("alias/{prefix}-mac"), KmsKeyKind::Mac)
        .await
        .expect("provision mac key");
    let keys: Arc<dyn Keys> = backend.keys(&data, &mac);
    assert!(
        proxy.kms_requests() > 0,
        "provisioning went through the proxy"
    );
    let policy = CachePolicy::default();
    let fc = FieldCipher::new(keys.clone(), clock.clone(), policy);
    let tenant = chiyoda();
    let records: Vec<String> = (0..N).map(|i| format!("app-{i:05}")).collect();
    let numbers: Vec<String> = (0..N).map(my_number).collect();

    // 1. Seal 1,000 My Numbers under distinct bindings, with a blind index each.
    let start = proxy.counts();
    let mut sealed = Vec::new();
    let mut indexes = Vec::new();
    let mut after_first = BTreeMap::new();
    for (i, (record, number)) in records.iter().zip(&numbers).enumerate() {
        let binding = Binding::new(record, FIELD);
        sealed.push(fc.seal(&tenant, &binding, number.as_bytes()).await.unwrap());
        indexes.push(
            fc.blind_index(&tenant, "my-number", number.as_bytes())
                .await
                .unwrap(),
        );
        if i == 0 {
            after_first = proxy.counts();
        }
    }
    let sealed_counts = proxy.counts();
    let first = kms_delta(&start, &after_first);
    let rest = kms_delta(&after_first, &sealed_counts);
    let seal_phase = kms_delta(&start, &sealed_counts);
    eprintln!(
        "fieldcrypt KMS requests: {N} seals + {N} blind indexes (one tenant, distinct \
         bindings, policy {policy:?}): total {} {seal_phase:?}; first seal+index {}; the \
         other {} seals+indexes {}",
        total(&seal_phase),
        total(&first),
        N - 1,
        total(&rest),
    );
    assert_eq!(
        seal_phase,
        BTreeMap::from([
            ("TrentService.GenerateDataKey".to_owned(), 1),
            ("TrentService.GenerateMac".to_owned(), 1),
        ]),
        "one data key and one MAC subkey for the whole burst"
    );
    assert_eq!(total(&rest), 0, "no KMS request after the first");
    assert!(
        sealed
            .iter()
            .all(|s| s.wrapped_key() == sealed[0].wrapped_key())
    );
    let distinct: std::collections::BTreeSet<_> = indexes.iter().collect();
    assert_eq!(
        distinct.len(),
        numbers.len(),
        "distinct numbers, distinct indexes"
    );

    // 2a. Open all 1,000 in the process that sealed them (its opening cache holds the key).
    let before = proxy.counts();
    for ((record, number), s) in records.iter().zip(&numbers).zip(&sealed) {
        let opened = fc
            .open(&tenant, &Binding::new(record, FIELD), s)
            .await
            .unwrap();
        assert_eq!(opened.as_slice(), number.as_bytes());
    }
    let same_process = kms_delta(&before, &proxy.counts());

    // 2b. Open all 1,000 from a cold cache (another Lambda environment, from stored JSON).
    let reader = FieldCipher::new(keys.clone(), clock.clone(), policy);
    let before = proxy.counts();
    for ((record, number), s) in records.iter().zip(&numbers).zip(&sealed) {
        let stored: Sealed = serde_json::from_str(&serde_json::to_string(s).unwrap()).unwrap();
        let opened = reader
            .open(&tenant, &Binding::new(record, FIELD), &stored)
            .await
            .unwrap();
        assert_eq!(opened.as_slice(), number.as_bytes());
    }
    let cold_reader = kms_delta(&before, &proxy.counts());
    eprintln!(
        "fieldcrypt KMS requests: {N} opens by the sealing process: {} {same_process:?}; \
         {N} opens from a cold cache: {} {cold_reader:?}",
        total(&same_process),
        total(&cold_reader),
    );
    assert_eq!(total(&same_process), 0);
    assert_eq!(
        cold_reader,
        BTreeMap::from([("TrentService.Decrypt".to_owned(), 1)])
    );

    // 3. 100 concurrent seals for another tenant on a cold cache: one GenerateDataKey.
    let other = osaka_kita();
    let before = proxy.counts();
    let tasks: Vec<_> = (0..100)
        .map(|i| {
            let fc = fc.clone();
            tokio::spawn(async move {
                let record = format!("burst-{i}");
                fc.seal(
                    &other,
                    &Binding::new(&record, FIELD),
                    my_number(i).as_bytes(),
                )
                .await
                .unwrap()
            })
        })
        .collect();
    for task in tasks {
        task.await.unwrap();
    }
    let burst = kms_delta(&before, &proxy.counts());
    eprintln!(
        "fieldcrypt KMS requests: 100 concurrent seals on a cold cache: {} {burst:?}",
        total(&burst)
    );
    assert_eq!(
        burst,
        BTreeMap::from([("TrentService.GenerateDataKey".to_owned(), 1)])
    );

    // 4. 100 concurrent blind indexes for that tenant on the adapter's cold MAC cache: one
    //    GenerateMac (the adapter derives each context's subkey once, whoever asks first).
    let before = proxy.counts();
    let tasks: Vec<_> = (0..100)
        .map(|i| {
            let fc = fc.clone();
            tokio::spawn(async move {
                fc.blind_index(&other, "my_number", my_number(i).as_bytes())
                    .await
                    .unwrap()
            })
        })
        .collect();
    for task in tasks {
        task.await.unwrap();
    }
    let burst = kms_delta(&before, &proxy.counts());
    eprintln!(
        "fieldcrypt KMS requests: 100 concurrent blind indexes on a cold cache: {} {burst:?}",
        total(&burst)
    );
    assert_eq!(
        burst,
        BTreeMap::from([("TrentService.GenerateMac".to_owned(), 1)])
    );
}
