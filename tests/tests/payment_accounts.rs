//! `SecretsManagerAccounts` against moto's server mode: secrets are created with the SDK, then
//! read through the adapter.
//!
//! The endpoint is the contract suite's (`madoguchi_tests::aws_endpoint`): it fails with the
//! reason, never skips. Each test uses its own secret prefix, so they run in parallel.

use std::sync::Arc;
use std::time::Duration;

use madoguchi_aws::AwsBackend;
use madoguchi_aws::payment_accounts::DEFAULT_TTL;
use madoguchi_domain::tenant::TenantId;
use madoguchi_payment_gateway::{GatewayAccounts, GatewayError};
use madoguchi_ports::SystemClock;
use madoguchi_tests::aws_endpoint;

/// A backend on moto and a secret prefix of this test's own.
struct Moto {
    backend: AwsBackend,
    prefix: String,
}

impl Moto {
    async fn new() -> Self {
        let backend = AwsBackend::local(&aws_endpoint(), Arc::new(SystemClock)).await;
        let prefix = format!("mdg-{:016x}/payments/", rand::random::<u64>());
        Self { backend, prefix }
    }

    fn name(&self, tenant: TenantId) -> String {
        format!("{}{}", self.prefix, tenant.as_str())
    }

    async fn create(&self, tenant: TenantId, value: &str) {
        self.backend
            .secretsmanager_client()
            .create_secret()
            .name(self.name(tenant))
            .secret_string(value)
            .send()
            .await
            .expect("create secret");
    }

    async fn change(&self, tenant: TenantId, value: &str) {
        self.backend
            .secretsmanager_client()
            .put_secret_value()
            .secret_id(self.name(tenant))
            .secret_string(value)
            .send()
            .await
            .expect("put secret value");
    }

    async fn delete(&self, tenant: TenantId) {
        self.backend
            .secretsmanager_client()
            .delete_secret()
            .secret_id(self.name(tenant))
            .force_delete_without_recovery(true)
            .send()
            .await
            .expect("delete secret");
    }
}

fn tenant(five: &str) -> TenantId {
    TenantId::from_five_digits(five).unwrap()
}

fn json(secret_key: &str, webhook_secret: &str) -> String {
    serde_json::json!({ "secret_key": secret_key, "webhook_secret": webhook_secret }).to_string()
}

fn expect_config(result: Result<impl std::fmt::Debug, GatewayError>) -> String {
    match result {
        Err(e @ GatewayError::Config(_)) => {
            assert!(!e.is_retryable());
            format!("{e} / {e:?}")
        }
        other => panic!("expected GatewayError::Config, got {other:?}"),
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn reads_each_tenants_own_credentials() {
    let moto = Moto::new().await;
    let (chiyoda, chuo) = (tenant("13101"), tenant("13102"));
    moto.create(chiyoda, &json("sk_test_chiyoda", "whsec_chiyoda"))
        .await;
    moto.create(chuo, &json("sk_test_chuo", "whsec_chuo")).await;
    let accounts = moto.backend.payment_accounts(&moto.prefix, DEFAULT_TTL);
    assert_eq!(accounts.secret_name(&chiyoda), moto.name(chiyoda));

    let a = accounts.credentials(&chiyoda).await.unwrap();
    assert_eq!(a.secret_key.expose(), "sk_test_chiyoda");
    assert_eq!(a.webhook_secret.expose(), "whsec_chiyoda");
    let b = accounts.credentials(&chuo).await.unwrap();
    assert_eq!(b.secret_key.expose(), "sk_test_chuo");
    assert_eq!(b.webhook_secret.expose(), "whsec_chuo");
    assert!(
        !format!("{a:?}").contains("chiyoda"),
        "Debug shows no secret"
    );

    // Many tasks at once, both tenants, cold and warm: each gets its own.
    let fresh = moto.backend.payment_accounts(&moto.prefix, DEFAULT_TTL);
    let mut tasks = Vec::new();
    for i in 0..20 {
        let accounts = fresh.clone();
        let (t, want) = if i % 2 == 0 {
            (chiyoda, "sk_test_chiyoda")
        } else {
            (chuo, "sk_test_chuo")
        };
        tasks.push(tokio::spawn(async move {
            let c = accounts.credentials(&t).await.unwrap();
            assert_eq!(c.secret_key.expose(), want);
        }));
    }
    for t in tasks {
        t.await.unwrap();
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_tenant_without_a_secret_is_config_and_remembered_briefly() {
    let moto = Moto::new().await;
    let (chiyoda, chuo) = (tenant("13101"), tenant("13102"));
    moto.create(chiyoda, &json("sk_test_chiyoda", "whsec_chiyoda"))
        .await;
    let accounts = moto.backend.payment_accounts(&moto.prefix, DEFAULT_TTL);
    let shown = expect_config(accounts.credentials(&chuo).await);
    assert!(
        shown.contains("no gateway account for tenant 131024"),
        "{shown}"
    );
    assert!(
        !shown.contains("chiyoda"),
        "no fallback to another tenant: {shown}"
    );

    // Created now: this instance still remembers "none" (for up to 30 s)...
    moto.create(chuo, &json("sk_test_chuo", "whsec_chuo")).await;
    expect_config(accounts.credentials(&chuo).await);
    // ...until told to forget; an instance without a cache sees it at once.
    let uncached = moto.backend.payment_accounts(&moto.prefix, Duration::ZERO);
    assert_eq!(
        uncached
            .credentials(&chuo)
            .await
            .unwrap()
            .secret_key
            .expose(),
        "sk_test_chuo"
    );
    accounts.invalidate(&chuo);
    assert_eq!(
        accounts
            .credentials(&chuo)
            .await
            .unwrap()
            .secret_key
            .expose(),
        "sk_test_chuo"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_malformed_secret_is_config_and_the_error_shows_no_value() {
    let moto = Moto::new().await;
    let accounts = moto.backend.payment_accounts(&moto.prefix, DEFAULT_TTL);
    let bad = [
        ("13101", "sk_live_LEAKME not json".to_owned()),
        ("13102", r#"{"secret_key":"sk_live_LEAKME"}"#.to_owned()),
        ("13103", json("sk_live_LEAKME", "")),
        ("13104", json("sk_live_LEAKME", "whsec_LEAKME\n")),
        (
            "13105",
            r#"{"secret_key":"sk_live_LEAKME","webhook_secret":42424242}"#.to_owned(),
        ),
        ("13106", r#"{"secret_key":"sk_live_LEAKME","#.to_owned()),
    ];
    for (five, value) in &bad {
        let t = tenant(five);
        moto.create(t, value).await;
        let shown = expect_config(accounts.credentials(&t).await);
        assert!(shown.contains(t.as_str()), "names the tenant: {shown}");
        for leak in ["LEAKME", "42424242", "sk_live", "whsec_"] {
            assert!(!shown.contains(leak), "{leak} in {shown}");
        }
    }
    // Not cached: once the secret is fixed, the next call reads it.
    let t = tenant("13102");
    moto.change(t, &json("sk_test_fixed", "whsec_fixed")).await;
    assert_eq!(
        accounts.credentials(&t).await.unwrap().secret_key.expose(),
        "sk_test_fixed"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn credentials_are_cached_for_the_ttl() {
    let moto = Moto::new().await;
    let t = tenant("13101");
    moto.create(t, &json("sk_test_one", "whsec_one")).await;
    let cached = moto.backend.payment_accounts(&moto.prefix, DEFAULT_TTL);
    let uncached = moto.backend.payment_accounts(&moto.prefix, Duration::ZERO);
    assert_eq!(
        cached.credentials(&t).await.unwrap().secret_key.expose(),
        "sk_test_one"
    );
    assert_eq!(
        uncached.credentials(&t).await.unwrap().secret_key.expose(),
        "sk_test_one"
    );

    moto.change(t, &json("sk_test_two", "whsec_two")).await;
    let c = cached.credentials(&t).await.unwrap();
    assert_eq!(c.secret_key.expose(), "sk_test_one");
    assert_eq!(c.webhook_secret.expose(), "whsec_one");
    let u = uncached.credentials(&t).await.unwrap();
    assert_eq!(u.secret_key.expose(), "sk_test_two");
    assert_eq!(u.webhook_secret.expose(), "whsec_two");

    moto.delete(t).await;
    assert_eq!(
        cached.credentials(&t).await.unwrap().secret_key.expose(),
        "sk_test_one"
    );
    let shown = expect_config(uncached.credentials(&t).await);
    assert!(shown.contains("no gateway account"), "{shown}");

    // invalidate() drops the cached entry.
    cached.invalidate(&t);
    expect_config(cached.credentials(&t).await);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_unreachable_secret_store_is_a_retryable_transport_error() {
    // A loopback port with nothing listening: connections are refused.
    let port = std::net::TcpListener::bind((std::net::Ipv4Addr::LOCALHOST, 0))
        .unwrap()
        .local_addr()
        .unwrap()
        .port();
    let backend =
        AwsBackend::local(&format!("http://127.0.0.1:{port}"), Arc::new(SystemClock)).await;
    let accounts = backend.payment_accounts("mdg-unreachable/payments/", DEFAULT_TTL);
    match accounts.credentials(&tenant("13101")).await {
        Err(e @ GatewayError::Transport(_)) => assert!(e.is_retryable()),
        other => panic!("expected GatewayError::Transport, got {other:?}"),
    }
}
