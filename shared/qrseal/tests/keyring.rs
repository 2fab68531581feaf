//! The keyring on the embedded adapters (SQLite items, local key file): seal and open through
//! stored, wrapped keys; rotation, retirement, expiry by a moved clock.

mod common;

use std::sync::Arc;

use common::{household, issued_at, other_tenant, tenant};
use jiff::SignedDuration;
use madoguchi_embedded::EmbeddedBackend;
use madoguchi_ports::{Clock, FixedClock, ItemStore, Keys};
use madoguchi_qrseal::keyring::qr_key_pk;
use madoguchi_qrseal::{KeyringError, OpenError, QrKey, QrKeyring, Validity, seal};
use zeroize::Zeroizing;

struct Fixture {
    _dir: tempfile::TempDir,
    items: Arc<dyn ItemStore>,
    keys: Arc<dyn Keys>,
    clock: Arc<FixedClock>,
}

fn fixture() -> Fixture {
    let dir = tempfile::tempdir().unwrap();
    let clock = Arc::new(FixedClock::new(issued_at()));
    let dyn_clock: Arc<dyn Clock> = clock.clone();
    let backend = EmbeddedBackend::open(dir.path(), "http://127.0.0.1:1", dyn_clock).unwrap();
    Fixture {
        items: backend.items(),
        keys: backend.keys(),
        clock,
        _dir: dir,
    }
}

impl Fixture {
    fn keyring(&self) -> QrKeyring {
        QrKeyring::new(self.items.clone(), self.keys.clone(), self.clock.clone())
    }
}

fn two_weeks() -> Validity {
    Validity::starting(issued_at(), SignedDuration::from_hours(24 * 14)).unwrap()
}

#[tokio::test]
async fn round_trip_through_stored_keys() {
    let f = fixture();
    let ring = f.keyring();
    let app = household(4);
    let sealed = ring.seal(&app, two_weeks()).await.unwrap();
    assert_eq!(sealed.header.kid, 1);
    f.clock.advance(SignedDuration::from_hours(2));
    let opened = ring.open(&tenant(), &sealed.text).await.unwrap();
    assert_eq!(opened.application, app);

    // Another instance (a fresh cache) reads the same wrapped key and opens the code.
    let other = f.keyring();
    assert_eq!(other.current(&tenant()).await.unwrap().kid(), 1);
    assert_eq!(
        other
            .open(&tenant(), &sealed.text)
            .await
            .unwrap()
            .application,
        app
    );

    // The stored record holds only wrapped key material.
    let stored = f
        .items
        .get(&madoguchi_ports::Key::new(
            qr_key_pk(&tenant()),
            "KID#00001",
        ))
        .await
        .unwrap()
        .unwrap();
    assert!(stored.data.get("wrapped").is_some());
    assert_eq!(qr_key_pk(&tenant()), "131016#QRKEY");
}

#[tokio::test]
async fn refusals_through_the_keyring() {
    let f = fixture();
    let ring = f.keyring();
    let sealed = ring.seal(&household(2), two_weeks()).await.unwrap();

    // Tampered: one byte of the ciphertext changed (base45 character swapped).
    let mut text = sealed.text.clone().into_bytes();
    let i = text.len() - 10;
    text[i] = if text[i] == b'0' { b'1' } else { b'0' };
    let tampered = String::from_utf8(text).unwrap();
    assert!(matches!(
        ring.open(&tenant(), &tampered).await,
        Err(OpenError::Tampered | OpenError::Malformed)
    ));

    // Other tenant's counter.
    assert!(matches!(
        ring.open(&other_tenant(), &sealed.text).await,
        Err(OpenError::OtherTenant { .. })
    ));

    // A key id the tenant never had.
    let stranger = QrKey::new(tenant(), 42, Zeroizing::new([1; 32]));
    let forged = seal(&stranger, two_weeks(), &household(2)).unwrap();
    assert!(matches!(
        ring.open(&tenant(), &forged.text).await,
        Err(OpenError::UnknownKey { kid: 42 })
    ));

    // Kid 1 exists, but this secret is not it.
    let impostor = QrKey::new(tenant(), 1, Zeroizing::new([1; 32]));
    let forged = seal(&impostor, two_weeks(), &household(2)).unwrap();
    assert!(matches!(
        ring.open(&tenant(), &forged.text).await,
        Err(OpenError::Tampered)
    ));

    // Key 1's wrapped record copied to kid 2: bound to kid 1 by the encryption context, it
    // does not unwrap as kid 2, so kid 2 stays unknown.
    let pk = qr_key_pk(&tenant());
    let mut copy = f
        .items
        .get(&madoguchi_ports::Key::new(pk.clone(), "KID#00001"))
        .await
        .unwrap()
        .unwrap();
    copy.key = madoguchi_ports::Key::new(pk, "KID#00002");
    copy.data["kid"] = serde_json::json!(2);
    f.items
        .put(copy, madoguchi_ports::Condition::None)
        .await
        .unwrap();
    let moved = QrKey::new(tenant(), 2, Zeroizing::new([1; 32]));
    let forged = seal(&moved, two_weeks(), &household(2)).unwrap();
    assert!(matches!(
        ring.open(&tenant(), &forged.text).await,
        Err(OpenError::UnknownKey { kid: 2 })
    ));

    // Expired: the clock moves past the expiry.
    f.clock.advance(SignedDuration::from_hours(24 * 14));
    assert!(matches!(
        ring.open(&tenant(), &sealed.text).await,
        Err(OpenError::Expired { .. })
    ));
}

#[tokio::test]
async fn rotation_keeps_old_codes_until_retired() {
    let f = fixture();
    let ring = f.keyring();
    let app = household(3);
    let old = ring.seal(&app, two_weeks()).await.unwrap();
    let rotated = ring.rotate(&tenant()).await.unwrap();
    assert_eq!(rotated.kid(), 2);
    let new = ring.seal(&app, two_weeks()).await.unwrap();
    assert_eq!(new.header.kid, 2);

    // Another instance opens codes of both keys.
    let other = f.keyring();
    for code in [&old, &new] {
        assert_eq!(
            other.open(&tenant(), &code.text).await.unwrap().application,
            app
        );
    }

    let listed = ring.list(&tenant()).await.unwrap();
    assert_eq!(
        listed
            .iter()
            .map(|k| (k.kid, k.current))
            .collect::<Vec<_>>(),
        [(1, false), (2, true)]
    );
    assert!(listed.iter().all(|k| k.retired_at.is_none()));

    // The current key cannot be retired; an unknown one cannot either.
    assert!(matches!(
        ring.retire(&tenant(), 2).await,
        Err(KeyringError::CurrentKey { kid: 2 })
    ));
    assert!(matches!(
        ring.retire(&tenant(), 7).await,
        Err(KeyringError::UnknownKey { kid: 7 })
    ));

    ring.retire(&tenant(), 1).await.unwrap();
    ring.retire(&tenant(), 1).await.unwrap(); // idempotent
    assert!(matches!(
        ring.open(&tenant(), &old.text).await,
        Err(OpenError::RetiredKey { kid: 1 })
    ));
    assert_eq!(
        ring.open(&tenant(), &new.text).await.unwrap().application,
        app
    );
    // A fresh instance reads the retirement from the store.
    assert!(matches!(
        f.keyring().open(&tenant(), &old.text).await,
        Err(OpenError::RetiredKey { kid: 1 })
    ));
    // The other instance still holds key 1 unwrapped; once its cache ages out it refuses too.
    f.clock.advance(SignedDuration::from_mins(6));
    assert!(matches!(
        other.open(&tenant(), &old.text).await,
        Err(OpenError::RetiredKey { kid: 1 })
    ));
    let listed = ring.list(&tenant()).await.unwrap();
    assert!(listed[0].retired_at.is_some());
}

#[tokio::test]
async fn each_tenant_has_its_own_keys() {
    let f = fixture();
    let ring = f.keyring();
    let a = ring.current(&tenant()).await.unwrap();
    let b = ring.current(&other_tenant()).await.unwrap();
    assert_eq!((a.tenant(), b.tenant()), (tenant(), other_tenant()));
    // Rotating one tenant leaves the other alone.
    ring.rotate(&tenant()).await.unwrap();
    assert_eq!(ring.current(&other_tenant()).await.unwrap().kid(), 1);
    assert_eq!(ring.list(&other_tenant()).await.unwrap().len(), 1);
}
