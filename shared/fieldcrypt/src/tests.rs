//! Unit tests over an in-memory `Keys` fake that counts its calls.

use std::collections::HashMap;
use std::sync::Mutex;
use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};

use async_trait::async_trait;
use hmac::{Hmac, Mac};
use jiff::{SignedDuration, Timestamp};
use madoguchi_ports::{DataKey, FixedClock};
use sha2::Sha256;

use super::*;

/// Wrapped handle → (plain key, context it was generated under).
type Remembered = HashMap<Vec<u8>, ([u8; 32], EncryptionContext)>;

/// Changes the parts of a `Sealed`: version, wrapped key, nonce, ciphertext.
type Tamper<'a> = dyn Fn(&mut u8, &mut Vec<u8>, &mut Vec<u8>, &mut Vec<u8>) + 'a;

/// In-memory keys: a wrapped key is an opaque random handle remembered with its context.
#[derive(Default)]
struct CountingKeys {
    generates: AtomicUsize,
    unwraps: AtomicUsize,
    macs: AtomicUsize,
    /// Every generate/unwrap waits this long first (lets concurrent callers pile up).
    delay: Duration,
    fail: AtomicBool,
    /// Unwraps without checking the context (to test the associated data on its own).
    ignore_context: bool,
    wrapped: Mutex<Remembered>,
}

impl CountingKeys {
    fn slow(delay: Duration) -> Self {
        Self {
            delay,
            ..Self::default()
        }
    }
    fn counts(&self) -> (usize, usize, usize) {
        (
            self.generates.load(Ordering::SeqCst),
            self.unwraps.load(Ordering::SeqCst),
            self.macs.load(Ordering::SeqCst),
        )
    }
    fn generates(&self) -> usize {
        self.generates.load(Ordering::SeqCst)
    }
    fn unwraps(&self) -> usize {
        self.unwraps.load(Ordering::SeqCst)
    }
}

#[async_trait]
impl Keys for CountingKeys {
    async fn generate_data_key(&self, context: &EncryptionContext) -> PortResult<DataKey> {
        self.generates.fetch_add(1, Ordering::SeqCst);
        if !self.delay.is_zero() {
            tokio::time::sleep(self.delay).await;
        }
        if self.fail.load(Ordering::SeqCst) {
            return Err(PortError::Unavailable("kms throttled".into()));
        }
        let mut key = Zeroizing::new([0u8; 32]);
        rand::rngs::OsRng.fill_bytes(key.as_mut());
        let mut handle = vec![0u8; 40];
        rand::rngs::OsRng.fill_bytes(&mut handle);
        self.wrapped
            .lock()
            .unwrap()
            .insert(handle.clone(), (*key, context.clone()));
        Ok(DataKey {
            plaintext: key,
            wrapped: handle,
        })
    }

    async fn unwrap_data_key(
        &self,
        wrapped: &[u8],
        context: &EncryptionContext,
    ) -> PortResult<Zeroizing<[u8; 32]>> {
        self.unwraps.fetch_add(1, Ordering::SeqCst);
        if !self.delay.is_zero() {
            tokio::time::sleep(self.delay).await;
        }
        let map = self.wrapped.lock().unwrap();
        match map.get(wrapped) {
            Some((key, ctx)) if self.ignore_context || ctx == context => Ok(Zeroizing::new(*key)),
            _ => Err(PortError::DecryptionRefused),
        }
    }

    async fn mac(&self, context: &EncryptionContext, data: &[u8]) -> PortResult<[u8; 32]> {
        self.macs.fetch_add(1, Ordering::SeqCst);
        let mut m = <Hmac<Sha256> as Mac>::new_from_slice(b"fake mac key").unwrap();
        m.update(&context.canonical_bytes());
        m.update(b"\n");
        m.update(data);
        Ok(m.finalize().into_bytes().into())
    }
}

fn tenant(code: &str) -> TenantId {
    TenantId::parse(code).expect("valid tenant code")
}

fn tokyo_chiyoda() -> TenantId {
    tenant("131016")
}

fn osaka_kita() -> TenantId {
    TenantId::from_five_digits("27127").unwrap()
}

fn clock() -> Arc<FixedClock> {
    Arc::new(FixedClock::new(
        Timestamp::from_second(1_767_225_600).unwrap(),
    ))
}

fn setup(policy: CachePolicy) -> (FieldCipher, Arc<CountingKeys>, Arc<FixedClock>) {
    setup_with(CountingKeys::default(), policy)
}

fn setup_with(
    keys: CountingKeys,
    policy: CachePolicy,
) -> (FieldCipher, Arc<CountingKeys>, Arc<FixedClock>) {
    let keys = Arc::new(keys);
    let clock = clock();
    let cipher = FieldCipher::new(keys.clone(), clock.clone(), policy);
    (cipher, keys, clock)
}

const NUMBER: &[u8] = b"123456789018";

fn refused<T: fmt::Debug>(r: PortResult<T>) {
    match r {
        Err(PortError::DecryptionRefused) => {}
        other => panic!("expected DecryptionRefused, got {other:?}"),
    }
}

#[test]
fn field_cipher_is_send_sync_clone() {
    fn check<T: Send + Sync + Clone + 'static>() {}
    check::<FieldCipher>();
    check::<Sealed>();
}

#[test]
fn tenant_codes_in_tests_are_valid() {
    assert_ne!(tokyo_chiyoda(), osaka_kita());
}

#[tokio::test]
async fn seal_open_round_trip() {
    let (fc, keys, _) = setup(CachePolicy::default());
    let t = tokyo_chiyoda();
    let b = Binding::new("app-1", "my_number");
    let sealed = fc.seal(&t, &b, NUMBER).await.unwrap();
    assert_eq!(sealed.version(), SEALED_VERSION);
    assert_eq!(sealed.nonce().len(), 12);
    assert_eq!(sealed.ciphertext().len(), NUMBER.len() + 16);
    assert!(
        !sealed
            .ciphertext()
            .windows(NUMBER.len())
            .any(|w| w == NUMBER)
    );
    assert_eq!(fc.open(&t, &b, &sealed).await.unwrap().as_slice(), NUMBER);
    // Empty values round-trip too.
    let empty = fc.seal(&t, &b, b"").await.unwrap();
    assert!(fc.open(&t, &b, &empty).await.unwrap().is_empty());
    // One data key; the sealing key also primed the opening cache.
    assert_eq!(keys.counts(), (1, 0, 0));
}

#[tokio::test]
async fn same_value_seals_differently_each_time() {
    let (fc, _, _) = setup(CachePolicy::default());
    let t = tokyo_chiyoda();
    let b = Binding::new("app-1", "my_number");
    let a = fc.seal(&t, &b, NUMBER).await.unwrap();
    let c = fc.seal(&t, &b, NUMBER).await.unwrap();
    assert_eq!(a.wrapped_key(), c.wrapped_key(), "same cached data key");
    assert_ne!(a.nonce(), c.nonce());
    assert_ne!(a.ciphertext(), c.ciphertext());
}

#[tokio::test]
async fn cache_hit_and_miss_by_age() {
    let policy = CachePolicy {
        max_age: Duration::from_secs(300),
        ..CachePolicy::default()
    };
    let (fc, keys, clock) = setup(policy);
    let t = tokyo_chiyoda();
    let b = Binding::new("app-1", "my_number");
    let first = fc.seal(&t, &b, NUMBER).await.unwrap();
    clock.advance(SignedDuration::from_secs(299));
    let second = fc.seal(&t, &b, NUMBER).await.unwrap();
    assert_eq!(keys.generates(), 1, "299 s old: still cached");
    assert_eq!(first.wrapped_key(), second.wrapped_key());
    clock.advance(SignedDuration::from_secs(1));
    let third = fc.seal(&t, &b, NUMBER).await.unwrap();
    assert_eq!(keys.generates(), 2, "300 s old: expired");
    assert_ne!(first.wrapped_key(), third.wrapped_key());

    // Opening: the key of `first` expired from the opening cache too, so it is unwrapped
    // once, then served from the cache until it expires again.
    for _ in 0..3 {
        assert_eq!(fc.open(&t, &b, &first).await.unwrap().as_slice(), NUMBER);
    }
    assert_eq!(keys.unwraps(), 1);
    // `third`'s key came from this process's seal: no unwrap at all.
    fc.open(&t, &b, &third).await.unwrap();
    assert_eq!(keys.unwraps(), 1);
    clock.advance(SignedDuration::from_secs(300));
    fc.open(&t, &b, &first).await.unwrap();
    assert_eq!(keys.unwraps(), 2, "opening keys expire by age");
}

#[tokio::test]
async fn clock_going_backwards_expires_rather_than_extends() {
    let (fc, keys, clock) = setup(CachePolicy::default());
    let t = tokyo_chiyoda();
    let b = Binding::new("app-1", "my_number");
    fc.seal(&t, &b, NUMBER).await.unwrap();
    clock.advance(SignedDuration::from_secs(-1));
    fc.seal(&t, &b, NUMBER).await.unwrap();
    assert_eq!(keys.generates(), 2);
}

#[tokio::test]
async fn cache_hit_and_miss_by_use_count() {
    let policy = CachePolicy {
        max_uses: 3,
        ..CachePolicy::default()
    };
    let (fc, keys, _) = setup(policy);
    let t = tokyo_chiyoda();
    let mut wrapped = Vec::new();
    for i in 0..7 {
        let record = format!("app-{i}");
        let s = fc
            .seal(&t, &Binding::new(&record, "my_number"), NUMBER)
            .await
            .unwrap();
        wrapped.push(s.wrapped_key().to_vec());
    }
    // Uses 1-3 on key A, 4-6 on key B, 7 on key C.
    assert_eq!(keys.generates(), 3);
    assert_eq!(wrapped[0], wrapped[2]);
    assert_ne!(wrapped[2], wrapped[3]);
    assert_eq!(wrapped[3], wrapped[5]);
    assert_ne!(wrapped[5], wrapped[6]);
}

#[tokio::test]
async fn single_use_and_disabled_policies_call_kms_every_time() {
    for policy in [
        CachePolicy {
            max_uses: 1,
            ..CachePolicy::default()
        },
        CachePolicy {
            max_uses: 0,
            ..CachePolicy::default()
        },
        CachePolicy {
            max_age: Duration::ZERO,
            ..CachePolicy::default()
        },
        CachePolicy {
            max_entries: 0,
            ..CachePolicy::default()
        },
    ] {
        let (fc, keys, _) = setup(policy);
        let t = tokyo_chiyoda();
        let b = Binding::new("app-1", "my_number");
        let mut sealed = Vec::new();
        for _ in 0..4 {
            sealed.push(fc.seal(&t, &b, NUMBER).await.unwrap());
        }
        assert_eq!(keys.generates(), 4, "{policy:?}");
        for s in &sealed {
            assert_eq!(fc.open(&t, &b, s).await.unwrap().as_slice(), NUMBER);
        }
    }
}

#[tokio::test]
async fn eviction_by_number_of_entries_is_least_recently_used() {
    let policy = CachePolicy {
        max_entries: 2,
        ..CachePolicy::default()
    };
    let (fc, keys, _) = setup(policy);
    let b = Binding::new("app-1", "my_number");
    let [a, o, c] = [
        tokyo_chiyoda(),
        osaka_kita(),
        TenantId::from_five_digits("01100").unwrap(),
    ];
    fc.seal(&a, &b, NUMBER).await.unwrap();
    fc.seal(&o, &b, NUMBER).await.unwrap();
    fc.seal(&a, &b, NUMBER).await.unwrap(); // a is now the most recently used
    assert_eq!(keys.generates(), 2);
    fc.seal(&c, &b, NUMBER).await.unwrap(); // evicts o
    assert_eq!(keys.generates(), 3);
    assert_eq!(fc.inner.sealing.len(), 2);
    fc.seal(&a, &b, NUMBER).await.unwrap();
    assert_eq!(keys.generates(), 3, "a was kept");
    fc.seal(&o, &b, NUMBER).await.unwrap();
    assert_eq!(keys.generates(), 4, "o had been evicted");
    assert_eq!(fc.inner.sealing.len(), 2);
    assert!(fc.inner.opening.len() <= 2);
}

#[tokio::test]
async fn opening_cache_is_bounded_by_entries() {
    let policy = CachePolicy {
        max_uses: 1,
        max_entries: 5,
        ..CachePolicy::default()
    };
    let (writer, keys, _) = setup(policy);
    let t = tokyo_chiyoda();
    let b = Binding::new("app-1", "my_number");
    let mut sealed = Vec::new();
    for _ in 0..20 {
        sealed.push(writer.seal(&t, &b, NUMBER).await.unwrap());
    }
    assert_eq!(keys.generates(), 20);
    assert_eq!(writer.inner.opening.len(), 5);
    let reader = FieldCipher::new(keys.clone(), clock(), policy);
    for s in &sealed {
        reader.open(&t, &b, s).await.unwrap();
        assert!(reader.inner.opening.len() <= 5);
    }
    assert_eq!(keys.unwraps(), 20);
    // The last five are cached, the first is not any more.
    for s in &sealed[15..] {
        reader.open(&t, &b, s).await.unwrap();
    }
    assert_eq!(keys.unwraps(), 20);
    reader.open(&t, &b, &sealed[0]).await.unwrap();
    assert_eq!(keys.unwraps(), 21);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn no_stampede_on_a_cold_cache() {
    let (fc, keys, _) = setup_with(
        CountingKeys::slow(Duration::from_millis(50)),
        CachePolicy::default(),
    );
    let t = tokyo_chiyoda();
    let tasks: Vec<_> = (0..100)
        .map(|i| {
            let fc = fc.clone();
            tokio::spawn(async move {
                let record = format!("app-{i}");
                let b = Binding::new(&record, "my_number");
                let s = fc.seal(&t, &b, NUMBER).await.unwrap();
                (record, s)
            })
        })
        .collect();
    let mut sealed = Vec::new();
    for task in tasks {
        sealed.push(task.await.unwrap());
    }
    assert_eq!(keys.generates(), 1, "100 concurrent seals, one data key");
    assert!(
        sealed
            .iter()
            .all(|(_, s)| s.wrapped_key() == sealed[0].1.wrapped_key())
    );

    // 100 concurrent opens on another cold instance: one unwrap.
    let reader = FieldCipher::new(keys.clone(), clock(), CachePolicy::default());
    let tasks: Vec<_> = sealed
        .into_iter()
        .map(|(record, s)| {
            let reader = reader.clone();
            tokio::spawn(async move {
                let b = Binding::new(&record, "my_number");
                reader.open(&t, &b, &s).await.unwrap()
            })
        })
        .collect();
    for task in tasks {
        assert_eq!(task.await.unwrap().as_slice(), NUMBER);
    }
    assert_eq!(keys.unwraps(), 1, "100 concurrent opens, one unwrap");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn concurrent_seals_respect_the_use_limit() {
    let policy = CachePolicy {
        max_uses: 10,
        ..CachePolicy::default()
    };
    let (fc, keys, _) = setup_with(CountingKeys::slow(Duration::from_millis(5)), policy);
    let t = tokyo_chiyoda();
    let tasks: Vec<_> = (0..100)
        .map(|i| {
            let fc = fc.clone();
            tokio::spawn(async move {
                let record = format!("app-{i}");
                fc.seal(&t, &Binding::new(&record, "f"), NUMBER)
                    .await
                    .unwrap()
                    .wrapped_key()
                    .to_vec()
            })
        })
        .collect();
    let mut per_key: HashMap<Vec<u8>, usize> = HashMap::new();
    for task in tasks {
        *per_key.entry(task.await.unwrap()).or_default() += 1;
    }
    assert!(per_key.values().all(|&n| n <= 10), "{per_key:?}");
    assert_eq!(keys.generates(), 10);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn a_failed_generate_is_shared_by_its_waiters_and_not_cached() {
    let (fc, keys, _) = setup_with(
        CountingKeys::slow(Duration::from_millis(50)),
        CachePolicy::default(),
    );
    keys.fail.store(true, Ordering::SeqCst);
    let t = tokyo_chiyoda();
    let tasks: Vec<_> = (0..20)
        .map(|_| {
            let fc = fc.clone();
            tokio::spawn(async move { fc.seal(&t, &Binding::new("a", "f"), NUMBER).await })
        })
        .collect();
    for task in tasks {
        assert!(matches!(
            task.await.unwrap(),
            Err(PortError::Unavailable(_))
        ));
    }
    assert_eq!(keys.generates(), 1, "one KMS call for the whole wave");
    keys.fail.store(false, Ordering::SeqCst);
    fc.seal(&t, &Binding::new("a", "f"), NUMBER).await.unwrap();
    assert_eq!(keys.generates(), 2, "the failure was not cached");
}

#[tokio::test]
async fn a_cancelled_generate_does_not_wedge_the_cache() {
    let (fc, keys, _) = setup_with(
        CountingKeys::slow(Duration::from_millis(200)),
        CachePolicy::default(),
    );
    let t = tokyo_chiyoda();
    let b = Binding::new("a", "f");
    let cancelled = tokio::time::timeout(Duration::from_millis(20), fc.seal(&t, &b, NUMBER)).await;
    assert!(cancelled.is_err());
    let s = fc.seal(&t, &b, NUMBER).await.unwrap();
    assert_eq!(fc.open(&t, &b, &s).await.unwrap().as_slice(), NUMBER);
    assert_eq!(keys.generates(), 2);
}

#[tokio::test]
async fn binding_mismatch_is_refused() {
    let (fc, _, _) = setup(CachePolicy::default());
    let t = tokyo_chiyoda();
    let b = Binding::new("app-1", "my_number");
    let sealed = fc.seal(&t, &b, NUMBER).await.unwrap();
    refused(
        fc.open(&t, &Binding::new("app-2", "my_number"), &sealed)
            .await,
    );
    refused(fc.open(&t, &Binding::new("app-1", "phone"), &sealed).await);
    // Pieces cannot move between record and field.
    refused(
        fc.open(&t, &Binding::new("app-1m", "y_number"), &sealed)
            .await,
    );
    refused(fc.open(&osaka_kita(), &b, &sealed).await);
    // A fresh reader (nothing cached) refuses the other tenant at the key layer too.
    let (reader, keys, _) = setup(CachePolicy::default());
    let sealed = reader.seal(&t, &b, NUMBER).await.unwrap();
    let reader2 = FieldCipher::new(keys.clone(), clock(), CachePolicy::default());
    refused(reader2.open(&osaka_kita(), &b, &sealed).await);
    assert_eq!(
        reader2.open(&t, &b, &sealed).await.unwrap().as_slice(),
        NUMBER
    );
}

#[tokio::test]
async fn associated_data_binds_the_tenant_even_if_the_key_layer_did_not() {
    let keys = CountingKeys {
        ignore_context: true,
        ..CountingKeys::default()
    };
    let (fc, keys, _) = setup_with(keys, CachePolicy::default());
    let b = Binding::new("app-1", "my_number");
    let sealed = fc.seal(&tokyo_chiyoda(), &b, NUMBER).await.unwrap();
    let reader = FieldCipher::new(keys.clone(), clock(), CachePolicy::default());
    refused(reader.open(&osaka_kita(), &b, &sealed).await);
    assert_eq!(keys.unwraps(), 1, "the key unwrapped; GCM refused");
}

#[tokio::test]
async fn empty_binding_is_invalid() {
    let (fc, keys, _) = setup(CachePolicy::default());
    let t = tokyo_chiyoda();
    for b in [Binding::new("", "f"), Binding::new("r", "")] {
        assert!(matches!(
            fc.seal(&t, &b, NUMBER).await,
            Err(PortError::Invalid(_))
        ));
    }
    assert_eq!(keys.generates(), 0);
}

#[tokio::test]
async fn tampered_ciphertext_is_refused() {
    let (fc, _, _) = setup(CachePolicy::default());
    let t = tokyo_chiyoda();
    let b = Binding::new("app-1", "my_number");
    let good = fc.seal(&t, &b, NUMBER).await.unwrap();
    let other = fc
        .seal(&t, &Binding::new("app-2", "my_number"), b"999999999999")
        .await
        .unwrap();
    let tamper = |f: &Tamper<'_>| {
        let mut s = good.clone();
        let (v, k, n, c) = s.parts_mut();
        f(v, k, n, c);
        s
    };
    let cases = [
        tamper(&|_, _, _, c| c[0] ^= 1),
        tamper(&|_, _, _, c| *c.last_mut().unwrap() ^= 0x80), // the tag
        tamper(&|_, _, n, _| n[3] ^= 1),
        tamper(&|_, k, _, _| k[0] ^= 1),
        tamper(&|_, _, _, c| c.truncate(c.len() - 1)),
        tamper(&|_, _, _, c| c.truncate(15)),
        tamper(&|_, _, _, c| c.push(0)),
        tamper(&|_, _, n, _| n.push(0)),
        tamper(&|_, k, _, _| k.clear()),
        tamper(&|_, k, _, _| k.resize(MAX_WRAPPED_KEY + 1, 0)),
        tamper(&|_, _, _, c| c.clone_from(&other.ciphertext().to_vec())),
    ];
    for s in &cases {
        refused(fc.open(&t, &b, s).await);
    }
    let wrong_version = tamper(&|v, _, _, _| *v = 2);
    assert!(matches!(
        fc.open(&t, &b, &wrong_version).await,
        Err(PortError::Invalid(_))
    ));
    // The original still opens.
    assert_eq!(fc.open(&t, &b, &good).await.unwrap().as_slice(), NUMBER);
}

#[tokio::test]
async fn sealed_round_trips_through_json() {
    let (fc, keys, _) = setup(CachePolicy::default());
    let t = tokyo_chiyoda();
    let b = Binding::new("app-1", "my_number");
    let sealed = fc.seal(&t, &b, NUMBER).await.unwrap();
    let json = serde_json::to_string(&sealed).unwrap();
    assert!(!json.contains("123456789018"));
    let value: serde_json::Value = serde_json::from_str(&json).unwrap();
    let obj = value.as_object().unwrap();
    assert_eq!(obj.len(), 4, "{json}");
    assert_eq!(obj["v"], 1);
    for field in ["key", "nonce", "ct"] {
        assert!(obj[field].is_string(), "{field}");
    }
    let back: Sealed = serde_json::from_str(&json).unwrap();
    assert_eq!(back, sealed);
    let reader = FieldCipher::new(keys.clone(), clock(), CachePolicy::default());
    assert_eq!(reader.open(&t, &b, &back).await.unwrap().as_slice(), NUMBER);

    // Bad base64 and missing fields are rejected when parsing.
    assert!(
        serde_json::from_str::<Sealed>(r#"{"v":1,"key":"!!","nonce":"AAAA","ct":"AAAA"}"#).is_err()
    );
    assert!(serde_json::from_str::<Sealed>(r#"{"v":1,"key":"AAAA"}"#).is_err());
}

#[tokio::test]
async fn debug_output_never_shows_values_or_keys() {
    let (fc, _, _) = setup(CachePolicy::default());
    let t = tokyo_chiyoda();
    let b = Binding::new("app-1", "my_number");
    let sealed = fc.seal(&t, &b, NUMBER).await.unwrap();
    let opened = fc.open(&t, &b, &sealed).await.unwrap();
    let key = fc
        .inner
        .sealing
        .get_or_load(&t.as_str().to_owned(), || async {
            Err(PortError::NotFound)
        })
        .await
        .unwrap()
        .key;
    let hex_key = hex::encode(key.plaintext.as_ref());
    for text in [
        format!("{sealed:?}"),
        format!("{fc:?}"),
        format!("{key:?}"),
        format!("{b:?}"),
    ] {
        assert!(!text.contains("123456789018"), "{text}");
        assert!(!text.contains(&hex_key), "{text}");
        assert!(
            !text.contains(&format!("{:?}", key.plaintext.as_ref())),
            "{text}"
        );
    }
    assert_eq!(opened.as_slice(), NUMBER);
}

#[tokio::test]
async fn blind_index_is_stable_and_separated() {
    let (fc, keys, _) = setup(CachePolicy::default());
    let (a, o) = (tokyo_chiyoda(), osaka_kita());
    let x = fc.blind_index(&a, "my-number", NUMBER).await.unwrap();
    assert_eq!(x.len(), 64);
    assert!(
        x.bytes()
            .all(|c| c.is_ascii_digit() || (b'a'..=b'f').contains(&c))
    );
    assert_eq!(x, fc.blind_index(&a, "my-number", NUMBER).await.unwrap());
    assert_ne!(x, fc.blind_index(&o, "my-number", NUMBER).await.unwrap());
    assert_ne!(x, fc.blind_index(&a, "phone", NUMBER).await.unwrap());
    assert_ne!(
        x,
        fc.blind_index(&a, "my-number", b"123456789026")
            .await
            .unwrap()
    );
    assert!(!x.contains("123456789018"));
    assert!(matches!(
        fc.blind_index(&a, "", NUMBER).await,
        Err(PortError::Invalid(_))
    ));
    assert_eq!(keys.counts().0, 0, "blind indexes need no data key");
}

#[tokio::test]
async fn clear_cache_forgets_keys() {
    let (fc, keys, _) = setup(CachePolicy::default());
    let t = tokyo_chiyoda();
    let b = Binding::new("app-1", "my_number");
    let s = fc.seal(&t, &b, NUMBER).await.unwrap();
    fc.clear_cache();
    assert_eq!(fc.inner.sealing.len(), 0);
    assert_eq!(fc.inner.opening.len(), 0);
    fc.open(&t, &b, &s).await.unwrap();
    fc.seal(&t, &b, NUMBER).await.unwrap();
    assert_eq!(keys.counts(), (2, 1, 0));
}
