//! Keys contract: data keys bound to their encryption context, deterministic MACs.

use madoguchi_ports::{EncryptionContext, PortError};
use madoguchi_tests::{Env, contract_tests};

contract_tests!(
    data_key_round_trip,
    data_key_unwrap_refused_under_other_context,
    mac_deterministic_and_context_separated,
);

async fn data_key_round_trip(env: Env) {
    let keys = env.keys().await;
    let ctx = EncryptionContext::new("131016", "my-number");
    let a = keys.generate_data_key(&ctx).await.expect("generate");
    let b = keys.generate_data_key(&ctx).await.expect("generate");
    assert_ne!(*a.plaintext, *b.plaintext, "every data key is fresh");
    assert_ne!(*a.plaintext, [0u8; 32]);
    assert!(!a.wrapped.is_empty());
    assert!(
        !a.wrapped.windows(32).any(|w| w == a.plaintext.as_slice()),
        "the wrapped form does not contain the plain key"
    );
    let unwrapped = keys
        .unwrap_data_key(&a.wrapped, &ctx)
        .await
        .expect("unwrap");
    assert_eq!(*unwrapped, *a.plaintext);
    // Debug output never shows the key.
    assert!(format!("{a:?}").contains("redacted"));
}

async fn data_key_unwrap_refused_under_other_context(env: Env) {
    let keys = env.keys().await;
    let ctx = EncryptionContext::new("131016", "my-number");
    let key = keys.generate_data_key(&ctx).await.unwrap();
    let others = [
        EncryptionContext::new("272094", "my-number"),
        EncryptionContext::new("131016", "bank-account"),
        ctx.clone().with("application", "A-1"),
        EncryptionContext::default(),
    ];
    for other in &others {
        let err = keys
            .unwrap_data_key(&key.wrapped, other)
            .await
            .expect_err("other context must be refused");
        assert!(
            matches!(err, PortError::DecryptionRefused),
            "{other:?}: {err:?}"
        );
    }
    let mut tampered = key.wrapped.clone();
    let last = tampered.len() - 1;
    tampered[last] ^= 0x01;
    let err = keys
        .unwrap_data_key(&tampered, &ctx)
        .await
        .expect_err("tampered");
    assert!(matches!(err, PortError::DecryptionRefused), "{err:?}");
    let err = keys.unwrap_data_key(&[], &ctx).await.expect_err("empty");
    assert!(matches!(err, PortError::DecryptionRefused), "{err:?}");
    // The right context still works afterwards.
    assert_eq!(
        *keys.unwrap_data_key(&key.wrapped, &ctx).await.unwrap(),
        *key.plaintext
    );
}

async fn mac_deterministic_and_context_separated(env: Env) {
    let keys = env.keys().await;
    let ctx = EncryptionContext::new("131016", "blind-index:my-number");
    let number = "123456789018".as_bytes();
    let a = keys.mac(&ctx, number).await.expect("mac");
    let b = keys.mac(&ctx, number).await.expect("mac");
    assert_eq!(a, b, "same context and data, same mac");
    assert_ne!(a, [0u8; 32]);
    let other_data = keys.mac(&ctx, "123456789026".as_bytes()).await.unwrap();
    assert_ne!(a, other_data);
    for other in [
        EncryptionContext::new("272094", "blind-index:my-number"),
        EncryptionContext::new("131016", "blind-index:phone"),
        ctx.clone().with("x", "y"),
    ] {
        let m = keys.mac(&other, number).await.unwrap();
        assert_ne!(a, m, "{other:?} must give an unrelated mac");
    }
    // Context pairs are not confusable by moving text between key and value.
    let tricky_a = EncryptionContext::default().with("a=b", "c");
    let tricky_b = EncryptionContext::default().with("a", "b=c");
    assert_ne!(
        keys.mac(&tricky_a, number).await.unwrap(),
        keys.mac(&tricky_b, number).await.unwrap()
    );
    assert_eq!(
        keys.mac(&ctx, b"").await.unwrap(),
        keys.mac(&ctx, b"").await.unwrap()
    );
}
