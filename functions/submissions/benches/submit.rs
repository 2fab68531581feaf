//! The submission path, measured (`make bench`): validate + encrypt + persist, through the
//! router as a request, on the embedded adapters (real SQLite file, real local key file).
//!
//! Prints p50 / p90 / p99 / max latency, the sequential rate and the rate with 4 concurrent
//! clients. Then it counts, on the wire in front of moto's KMS (started by the tests crate),
//! the KMS requests that 1,000 submissions carrying a 個人番号 make through the KMS adapter.
//!
//! A benchmark, not a test: it asserts nothing about time.

use std::sync::Arc;
use std::time::{Duration, Instant};

use axum::body::Body;
use axum::http::Request;
use madoguchi_applications::keys::{FORM_CURRENT_SK, form_pk};
use madoguchi_applications::{FormState, PublishedForm};
use madoguchi_domain::form::parse_definition;
use madoguchi_domain::tenant::TenantId;
use madoguchi_fieldcrypt::{CachePolicy, FieldCipher};
use madoguchi_http::Authenticator;
use madoguchi_http::auth::Role;
use madoguchi_http::dev_issuer::{DevIssuer, DevTokenRequest};
use madoguchi_ports::{
    BlobStore, Clock, Condition, Item, ItemStore, Key, Keys, Mailer, Queue, SystemClock, UuidV7Gen,
};
use madoguchi_submissions::{Settings, SubmissionsState, router};
use serde_json::json;
use tower::ServiceExt;

const TENANT: &str = "272060";
const SLUG: &str = "bench-form";

fn definition() -> serde_json::Value {
    json!({
        "title": "住民票の写しの交付申請",
        "items": [
            {"id": "applicant", "type": "name", "label": "氏名", "required": true, "kana": true},
            {"id": "birth_date", "type": "date", "label": "生年月日", "required": true},
            {"id": "my_number", "type": "my_number", "label": "個人番号", "required": true},
            {"id": "address", "type": "address", "label": "住所", "required": true},
            {"id": "phone", "type": "phone", "label": "電話番号", "required": true},
            {"id": "email", "type": "email", "label": "メールアドレス"},
            {"id": "copies", "type": "number", "label": "通数", "required": true, "min": 1, "max": 10, "integer": true},
            {"id": "purpose", "type": "select", "label": "使用目的", "required": true,
             "options": [{"value": "job", "label": "就職"}, {"value": "other", "label": "その他"}]},
            {"id": "purpose_other", "type": "text", "label": "使用目的（その他）", "required": true,
             "show_if": {"field": "purpose", "equals": "other"}},
            {"id": "items", "type": "checkbox", "label": "記載事項",
             "options": [{"value": "household", "label": "世帯全員"}, {"value": "honseki", "label": "本籍"}]},
            {"id": "remarks", "type": "text", "label": "備考", "multiline": true}
        ]
    })
}

fn my_number(i: u64) -> String {
    let body = format!("{:011}", 10_000_000_000u64 + i * 7919);
    let check = madoguchi_domain::mynumber::my_number_check_digit(&body).expect("11 digits");
    format!("{body}{check}")
}

fn answers(i: u64) -> serde_json::Value {
    json!({
        "applicant": {"family": "窓口", "given": "花子", "family_kana": "マドグチ", "given_kana": "ハナコ"},
        "birth_date": "平成2年4月1日",
        "my_number": my_number(i),
        "address": {"postal_code": "595-0013", "address": "大阪府泉大津市宮町2-25"},
        "phone": "0725-33-1131",
        "email": "hanako@example.jp",
        "copies": "2",
        "purpose": "other",
        "purpose_other": "年金の手続",
        "items": ["household"],
        "remarks": "よろしくお願いします。"
    })
}

struct Ports {
    items: Arc<dyn ItemStore>,
    uploads: Arc<dyn BlobStore>,
    notify: Arc<dyn Queue>,
    mailer: Arc<dyn Mailer>,
    keys: Arc<dyn Keys>,
}

async fn app(ports: Ports, clock: Arc<dyn Clock>) -> (axum::Router, String) {
    let tenant = TenantId::parse(TENANT).unwrap();
    let def = parse_definition(&definition()).expect("bench form parses");
    let form = PublishedForm {
        tenant: TENANT.into(),
        slug: SLUG.into(),
        version: 1,
        published_at: clock.now().to_string(),
        state: FormState::Published,
        definition: def,
    };
    ports
        .items
        .put(
            Item::new(
                Key::new(form_pk(&tenant, SLUG), FORM_CURRENT_SK),
                serde_json::to_value(&form).unwrap(),
            ),
            Condition::None,
        )
        .await
        .unwrap();
    let issuer = DevIssuer::ephemeral();
    let token = issuer.mint(&DevTokenRequest {
        sub: "bench".into(),
        tenant,
        role: Role::Citizen,
        depts: vec![],
        ttl_seconds: 3600,
        now: clock.now().as_second(),
        email: Some("hanako@example.jp".into()),
    });
    let state = SubmissionsState {
        items: ports.items,
        uploads: ports.uploads,
        notify: ports.notify,
        mailer: ports.mailer,
        cipher: Arc::new(FieldCipher::new(
            ports.keys,
            clock.clone(),
            CachePolicy::default(),
        )),
        auth: Authenticator::shared(vec![issuer.trusted()]),
        clock,
        ids: Arc::new(UuidV7Gen),
        settings: Arc::new(Settings::default()),
    };
    (router(state), token)
}

async fn submit(app: &axum::Router, token: &str, i: u64) -> Duration {
    let body = json!({"form_version": 1, "answers": answers(i)}).to_string();
    let start = Instant::now();
    // A 503 (the backend unavailable after the SDK's own retries) is retried with the same
    // idempotency key, as the SPA does; the latency counts every attempt.
    for _attempt in 0..3 {
        let req = Request::post(format!("/v1/tenants/{TENANT}/forms/{SLUG}/applications"))
            .header("authorization", format!("Bearer {token}"))
            .header("content-type", "application/json")
            .header("idempotency-key", format!("bench-{i}"))
            .body(Body::from(body.clone()))
            .unwrap();
        let res = app.clone().oneshot(req).await.unwrap();
        match res.status().as_u16() {
            // 200 is a submission already received (e.g. the SDK retried a transaction whose
            // answer it did not get, and the retry found it stored): received all the same.
            200 | 201 => return start.elapsed(),
            503 => tokio::time::sleep(Duration::from_millis(200)).await,
            other => panic!("submission {i} refused: {other}"),
        }
    }
    panic!("submission {i}: backend unavailable three times");
}

fn percentile(sorted: &[Duration], p: f64) -> Duration {
    let idx = ((sorted.len() as f64 - 1.0) * p).round() as usize;
    sorted[idx]
}

fn ms(d: Duration) -> String {
    format!("{:.3} ms", d.as_secs_f64() * 1000.0)
}

async fn embedded(scale: u64) {
    let dir = tempfile::tempdir().unwrap();
    let clock: Arc<dyn Clock> = Arc::new(SystemClock);
    let backend =
        madoguchi_embedded::EmbeddedBackend::open(dir.path(), "http://127.0.0.1:9", clock.clone())
            .unwrap();
    let settings = madoguchi_embedded::QueueSettings {
        visibility_timeout: Duration::from_secs(60),
        max_receives: 5,
    };
    let ports = Ports {
        items: backend.items(),
        uploads: backend.blobs("attachments"),
        notify: backend.queue("notify", settings),
        mailer: backend.mailer(),
        keys: backend.keys(),
    };
    let (app, token) = app(ports, clock).await;
    let warmup = 200 / scale;
    let n = 3000u64 / scale;
    for i in 0..warmup {
        submit(&app, &token, i).await;
    }
    let mut lat = Vec::with_capacity(n as usize);
    let start = Instant::now();
    for i in warmup..warmup + n {
        lat.push(submit(&app, &token, i).await);
    }
    let elapsed = start.elapsed();
    lat.sort();
    println!(
        "submission (embedded, sequential, n={n}): p50 {} · p90 {} · p99 {} · max {} · {:.0} submissions/s",
        ms(percentile(&lat, 0.50)),
        ms(percentile(&lat, 0.90)),
        ms(percentile(&lat, 0.99)),
        ms(*lat.last().unwrap()),
        n as f64 / elapsed.as_secs_f64()
    );
    // Throughput with concurrent clients (SQLite serialises the writes).
    let clients = 4u64;
    let per = 750u64 / scale;
    let start = Instant::now();
    let mut tasks = tokio::task::JoinSet::new();
    for c in 0..clients {
        let app = app.clone();
        let token = token.clone();
        tasks.spawn(async move {
            let mut v = Vec::new();
            for i in 0..per {
                v.push(submit(&app, &token, 1_000_000 + c * per + i).await);
            }
            v
        });
    }
    let mut lat = Vec::new();
    while let Some(v) = tasks.join_next().await {
        lat.extend(v.unwrap());
    }
    let elapsed = start.elapsed();
    lat.sort();
    println!(
        "submission (embedded, {clients} concurrent clients, n={}): p50 {} · p99 {} · {:.0} submissions/s",
        clients * per,
        ms(percentile(&lat, 0.50)),
        ms(percentile(&lat, 0.99)),
        (clients * per) as f64 / elapsed.as_secs_f64()
    );
}

async fn kms_calls_on_aws(scale: u64) {
    let endpoint = madoguchi_tests::aws_endpoint();
    let proxy = madoguchi_tests::CountingProxy::start(&endpoint)
        .await
        .unwrap();
    let clock: Arc<dyn Clock> = Arc::new(SystemClock);
    let aws = madoguchi_aws::AwsBackend::local(proxy.url(), clock.clone()).await;
    let prefix = format!("bench-{}", uuid::Uuid::now_v7().simple())
        .chars()
        .take(24)
        .collect::<String>();
    let kms = aws.kms_client();
    let data = madoguchi_aws::provision::ensure_kms_key(
        kms,
        &format!("alias/{prefix}-data"),
        madoguchi_aws::provision::KmsKeyKind::DataKeys,
    )
    .await
    .unwrap();
    let mac = madoguchi_aws::provision::ensure_kms_key(
        kms,
        &format!("alias/{prefix}-mac"),
        madoguchi_aws::provision::KmsKeyKind::Mac,
    )
    .await
    .unwrap();
    // KMS is the AWS adapter, counted on the wire; the other ports are embedded, because
    // moto's TransactWriteItems deep-copies the whole table on every call (to roll back), so
    // thousands of submissions there slow each one down until the SDK times out. The KMS
    // requests a submission makes do not depend on where its items are stored.
    let dir = tempfile::tempdir().unwrap();
    let local =
        madoguchi_embedded::EmbeddedBackend::open(dir.path(), "http://127.0.0.1:9", clock.clone())
            .unwrap();
    let settings = madoguchi_embedded::QueueSettings {
        visibility_timeout: Duration::from_secs(60),
        max_receives: 5,
    };
    let ports = Ports {
        items: local.items(),
        uploads: local.blobs("attachments"),
        notify: local.queue("notify", settings),
        mailer: local.mailer(),
        keys: aws.keys(&data, &mac),
    };
    let (app, token) = app(ports, clock).await;
    let before = proxy.kms_requests();
    let n = 1000u64 / scale;
    let start = Instant::now();
    for i in 0..n {
        submit(&app, &token, i).await;
    }
    let first = proxy.kms_requests() - before;
    for i in n..2 * n {
        submit(&app, &token, i).await;
    }
    let second = proxy.kms_requests() - before - first;
    println!(
        "KMS requests on the wire (KMS adapter on moto): first {n} submissions with a 個人番号 {first} (cold caches), next {n} {second} ({:.1} s for {} submissions on moto)",
        start.elapsed().as_secs_f64(),
        2 * n
    );
}

fn main() {
    // `cargo bench` passes `--bench`; `cargo test --all-targets` runs this binary without it,
    // and then it only checks that the benchmark still works, on a hundredth of the load.
    let args: Vec<String> = std::env::args().collect();
    let scale = if args.iter().any(|a| a == "--bench") {
        1
    } else {
        100
    };
    // `--embedded-only` / `--aws-only` pick one part.
    let skip_aws = args.iter().any(|a| a == "--embedded-only");
    let skip_embedded = args.iter().any(|a| a == "--aws-only");
    let rt = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_all()
        .build()
        .unwrap();
    if !skip_embedded {
        rt.block_on(embedded(scale));
    }
    if !skip_aws {
        rt.block_on(kms_calls_on_aws(scale));
    }
}
