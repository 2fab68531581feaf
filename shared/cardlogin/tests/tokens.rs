//! Card-login tokens through the real verification path, on the embedded adapters (SQLite
//! items, local keys).

use std::sync::Arc;

use madoguchi_cardlogin::{CardTokens, trusted_issuer};
use madoguchi_domain::tenant::TenantId;
use madoguchi_embedded::EmbeddedBackend;
use madoguchi_http::auth::{AuthError, Role};
use madoguchi_http::{Authenticator, DevIssuer};
use madoguchi_ports::{Clock, ItemStore, Keys, SystemClock};

struct Fixture {
    _dir: tempfile::TempDir,
    items: Arc<dyn ItemStore>,
    keys: Arc<dyn Keys>,
    clock: Arc<dyn Clock>,
}

fn fixture() -> Fixture {
    let dir = tempfile::tempdir().unwrap();
    let clock: Arc<dyn Clock> = Arc::new(SystemClock);
    let backend = EmbeddedBackend::open(dir.path(), "http://127.0.0.1:1", clock.clone()).unwrap();
    Fixture {
        items: backend.items(),
        keys: backend.keys(),
        clock,
        _dir: dir,
    }
}

fn t(code: &str) -> TenantId {
    TenantId::parse(code).unwrap()
}

#[tokio::test]
async fn a_card_token_is_a_citizen_of_its_tenant() {
    let f = fixture();
    let tokens = CardTokens::new(f.items.clone(), f.keys.clone(), f.clock.clone());
    let auth = Authenticator::new(vec![trusted_issuer(f.items.clone())]);
    let (token, exp) = tokens.issue(&t("272060"), "card-abc", 600).await.unwrap();
    let p = auth.verify(&token).await.unwrap();
    assert_eq!(p.sub, "card-abc");
    assert_eq!(p.tenant, t("272060"));
    assert_eq!(p.role, Role::Citizen);
    assert_eq!(p.expires_at, exp);
    assert!(p.depts.is_empty());

    // A second process (another Lambda instance) uses the same key, not a new one.
    let other = CardTokens::new(f.items.clone(), f.keys.clone(), f.clock.clone());
    let (token2, _) = other.issue(&t("272060"), "card-abc", 600).await.unwrap();
    let kid = |tok: &str| jsonwebtoken::decode_header(tok).unwrap().kid.unwrap();
    assert_eq!(kid(&token), kid(&token2));

    // Each tenant has its own key.
    let (token3, _) = tokens.issue(&t("131016"), "card-abc", 600).await.unwrap();
    assert_ne!(kid(&token), kid(&token3));
    assert!(kid(&token3).starts_with("card-131016-"));
    assert_eq!(auth.verify(&token3).await.unwrap().tenant, t("131016"));
}

#[tokio::test]
async fn expired_and_foreign_tokens_are_refused() {
    let f = fixture();
    let tokens = CardTokens::new(f.items.clone(), f.keys.clone(), f.clock.clone());
    let auth = Authenticator::new(vec![trusted_issuer(f.items.clone())]);
    let (expired, _) = tokens.issue(&t("272060"), "card-abc", -3600).await.unwrap();
    assert!(matches!(
        auth.verify(&expired).await,
        Err(AuthError::Invalid(_))
    ));
    // A key the store does not hold (the development issuer's) is unknown to this issuer.
    let dev = DevIssuer::ephemeral();
    let forged = dev.mint_claims(&serde_json::json!({
        "iss": madoguchi_cardlogin::CARD_ISSUER, "aud": madoguchi_cardlogin::CARD_AUDIENCE,
        "sub": "x", "tenant": "272060", "exp": 4_000_000_000i64,
    }));
    assert_eq!(auth.verify(&forged).await, Err(AuthError::UnknownKey));
}
