//! End to end through the real `madoguchi` binary: the host process on a free port, driven
//! over HTTP like the SPA would, on the embedded adapters and on the AWS adapters against
//! moto. The same test bodies run on both.

mod common;

use std::time::Duration;

use madoguchi_ports::{QueryRequest, SortKeyCondition};

use common::*;

fn form(title: &str) -> serde_json::Value {
    serde_json::json!({
        "title": title,
        "items": [
            {"id": "name", "type": "name", "label": "氏名", "required": true},
            {"id": "birth_date", "type": "date", "label": "生年月日", "required": true, "help": "和暦でも入力できます"}
        ]
    })
}

async fn health_and_openapi(host: &Host) {
    let c = reqwest::Client::new();
    let res = c
        .get(format!("{}/healthz", host.base))
        .send()
        .await
        .unwrap();
    assert!(res.headers().contains_key("x-request-id"));
    let doc: serde_json::Value = c
        .get(format!("{}/openapi.json", host.base))
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    assert!(doc["paths"]["/v1/tenants/{tenant}/manage/forms/{slug}"]["put"].is_object());
    assert!(doc["paths"]["/v1/tenants/{tenant}/forms/{slug}/applications"]["post"].is_object());
}

async fn tokens_are_checked(host: &Host) -> String {
    let c = reqwest::Client::new();
    let me = format!("{}/v1/me", host.base);
    problem(c.get(&me).send().await.unwrap(), 401).await;
    let good = host.token("staff", TENANT, 600);
    let body: serde_json::Value = c
        .get(&me)
        .bearer_auth(&good)
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    assert_eq!(body["tenant"], TENANT);
    assert_eq!(body["role"], "staff");
    let expired = host.token("staff", TENANT, -600);
    let res = c.get(&me).bearer_auth(&expired).send().await.unwrap();
    assert!(
        res.headers()["www-authenticate"]
            .to_str()
            .unwrap()
            .contains("invalid_token")
    );
    problem(res, 401).await;
    let mut tampered = good.clone().into_bytes();
    let i = tampered.len() - 5;
    tampered[i] = if tampered[i] == b'A' { b'B' } else { b'A' };
    problem(
        c.get(&me)
            .bearer_auth(String::from_utf8(tampered).unwrap())
            .send()
            .await
            .unwrap(),
        401,
    )
    .await;
    good
}

async fn send(
    c: &reqwest::Client,
    method: reqwest::Method,
    url: &str,
    token: &str,
    if_match: Option<u64>,
    body: Option<serde_json::Value>,
) -> reqwest::Response {
    let mut req = c.request(method, url).bearer_auth(token);
    if let Some(body) = body {
        req = req.json(&body);
    }
    if let Some(v) = if_match {
        req = req.header("if-match", format!("\"{v}\""));
    }
    req.send().await.unwrap()
}

async fn forms_publish_and_read(host: &Host) {
    use reqwest::Method;
    let c = reqwest::Client::new();
    let public = format!("{}/v1/tenants/{TENANT}/forms/juminhyo", host.base);
    let manage = format!("{}/v1/tenants/{TENANT}/manage/forms", host.base);
    let one = format!("{manage}/juminhyo");
    // Form management without departments set up: the tenant administrator.
    let staff = host.token("admin", TENANT, 600);
    let citizen = host.token("citizen", TENANT, 600);
    let other_tenant = host.token("admin", "131016", 600);
    let create = |title: &str| serde_json::json!({"slug": "juminhyo", "definition": form(title)});

    problem(c.get(&public).send().await.unwrap(), 404).await;
    problem(
        send(
            &c,
            Method::POST,
            &manage,
            &citizen,
            None,
            Some(create("住民票")),
        )
        .await,
        403,
    )
    .await;
    problem(
        send(
            &c,
            Method::POST,
            &manage,
            &other_tenant,
            None,
            Some(create("住民票")),
        )
        .await,
        403,
    )
    .await;
    let bad = problem(
        send(
            &c,
            Method::POST,
            &manage,
            &staff,
            None,
            Some(serde_json::json!({"slug": "juminhyo", "definition": {"title": "", "items": []}})),
        )
        .await,
        422,
    )
    .await;
    let fields: Vec<&str> = bad["errors"]
        .as_array()
        .unwrap()
        .iter()
        .map(|e| e["field"].as_str().unwrap())
        .collect();
    assert_eq!(fields, ["definition.title", "definition.items"]);

    let res = send(
        &c,
        Method::POST,
        &manage,
        &staff,
        None,
        Some(create("住民票の写し")),
    )
    .await;
    assert_eq!(res.status().as_u16(), 201);
    problem(
        send(
            &c,
            Method::POST,
            &manage,
            &staff,
            None,
            Some(create("again")),
        )
        .await,
        409,
    )
    .await;
    // Nothing is public before publication.
    problem(c.get(&public).send().await.unwrap(), 404).await;
    let res = send(
        &c,
        Method::POST,
        &format!("{one}/publish"),
        &staff,
        Some(1),
        None,
    )
    .await;
    assert_eq!(res.status().as_u16(), 200);
    let res = send(
        &c,
        Method::PUT,
        &one,
        &staff,
        Some(2),
        Some(form("住民票の写しの交付")),
    )
    .await;
    assert_eq!(res.status().as_u16(), 200);
    // A second editor still holding version 2 loses, visibly.
    problem(
        send(&c, Method::PUT, &one, &staff, Some(2), Some(form("stale"))).await,
        409,
    )
    .await;
    // The edit is not public until published.
    let body: serde_json::Value = c.get(&public).send().await.unwrap().json().await.unwrap();
    assert_eq!(body["definition"]["title"], "住民票の写し");
    let res = send(
        &c,
        Method::POST,
        &format!("{one}/publish"),
        &staff,
        Some(3),
        None,
    )
    .await;
    assert_eq!(res.status().as_u16(), 200);

    let res = c.get(&public).send().await.unwrap();
    assert_eq!(res.headers()["etag"], "\"2\"");
    let body: serde_json::Value = res.json().await.unwrap();
    assert_eq!(body["definition"]["title"], "住民票の写しの交付");
    assert_eq!(body["version"], 2);
    assert_eq!(body["state"], "published");
    // Both versions stay readable for applications made against them.
    let versions = host
        .items()
        .await
        .query(
            QueryRequest::partition(format!("{TENANT}#FORM#juminhyo"))
                .sk(SortKeyCondition::BeginsWith("V#".into())),
        )
        .await
        .unwrap();
    assert_eq!(versions.items.len(), 2);
    let list: serde_json::Value = send(&c, Method::GET, &manage, &staff, None, None)
        .await
        .json()
        .await
        .unwrap();
    assert_eq!(list["forms"][0]["slug"], "juminhyo");
    // Close: still readable, marked closed; archive: gone for citizens.
    let res = send(
        &c,
        Method::POST,
        &format!("{one}/close"),
        &staff,
        Some(4),
        None,
    )
    .await;
    assert_eq!(res.status().as_u16(), 200);
    let body: serde_json::Value = c.get(&public).send().await.unwrap().json().await.unwrap();
    assert_eq!(body["state"], "closed");
    let res = send(
        &c,
        Method::POST,
        &format!("{one}/archive"),
        &staff,
        Some(5),
        None,
    )
    .await;
    assert_eq!(res.status().as_u16(), 200);
    problem(c.get(&public).send().await.unwrap(), 404).await;
    let v1: serde_json::Value = send(
        &c,
        Method::GET,
        &format!("{one}/versions/1"),
        &staff,
        None,
        None,
    )
    .await
    .json()
    .await
    .unwrap();
    assert_eq!(v1["definition"]["title"], "住民票の写し");
}

async fn inbox_files_arrive_once(host: &Host) {
    let dir = host.data_dir.join("inbox").join("jumin");
    std::fs::create_dir_all(&dir).unwrap();
    let path = dir.join("20261123 差分.csv");
    // Written under a temporary name and renamed, as a core system's transfer would.
    std::fs::write(dir.join(".incoming.part"), "宛名番号,氏名\n1,窓口花子\n").unwrap();
    std::fs::rename(dir.join(".incoming.part"), &path).unwrap();
    let items = host.items().await;
    let pk = format!("{TENANT}#LINKAGE#IN#jumin");
    let mut all = Vec::new();
    let sk_starts = |items: &[madoguchi_ports::Item], prefix: &str| {
        items
            .iter()
            .filter(|i| i.key.sk.starts_with(prefix))
            .cloned()
            .collect::<Vec<_>>()
    };
    for _ in 0..200 {
        all = items
            .query(QueryRequest::partition(pk.clone()))
            .await
            .unwrap()
            .items;
        // Registered, and its ingest finished (this two-column file is not the 住民記録
        // layout: it is rejected whole, with a report).
        if !sk_starts(&all, "CKPT#").is_empty() && !path.exists() {
            break;
        }
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    let found = sk_starts(&all, "FILE#");
    assert_eq!(found.len(), 1, "one registration for one file");
    assert_eq!(found[0].data["key"], "inbound/jumin/20261123 差分.csv");
    let checkpoint = sk_starts(&all, "CKPT#");
    assert_eq!(checkpoint.len(), 1, "{all:?}");
    assert_eq!(checkpoint[0].data["state"], "done");
    assert!(!path.exists(), "the inbox file is removed once taken");
}

async fn shutdown_is_clean(host: Host) -> String {
    let logs = host.logs.clone();
    let status = host.stop().await;
    assert!(status.success(), "exit status {status:?}");
    tokio::time::sleep(Duration::from_millis(100)).await;
    let logs = logs.lock().unwrap().clone();
    assert!(
        logs.contains("madoguchi stopped"),
        "clean shutdown is logged"
    );
    logs
}

/// What the tests sent that counts as personal data or a secret must not be in the logs.
fn logs_hold_no_personal_data(logs: &str, secrets: &[&str]) {
    assert!(logs.lines().count() > 5, "logs were captured");
    for line in logs.lines() {
        serde_json::from_str::<serde_json::Value>(line).expect("every log line is JSON");
    }
    for s in secrets {
        assert!(!logs.contains(s), "the logs contain {s:?}");
    }
}

async fn run_all(host: Host) {
    health_and_openapi(&host).await;
    let token = tokens_are_checked(&host).await;
    forms_publish_and_read(&host).await;
    inbox_files_arrive_once(&host).await;
    let logs = shutdown_is_clean(host).await;
    assert!(logs.contains("file registered"));
    let token_signature = token.rsplit('.').next().unwrap().to_owned();
    logs_hold_no_personal_data(&logs, &["窓口花子", "20261123 差分", &token_signature]);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn embedded() {
    run_all(Host::start(None).await).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn aws_on_moto() {
    run_all(Host::start(Some(madoguchi_tests::aws_endpoint())).await).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn embedded_presigned_urls_are_served() {
    let host = Host::start(None).await;
    let backend = madoguchi_embedded::EmbeddedBackend::open(
        &host.data_dir,
        &host.base,
        std::sync::Arc::new(madoguchi_ports::SystemClock),
    )
    .unwrap();
    let blobs = backend.blobs("scratch");
    use madoguchi_ports::{BlobStore, PresignMethod};
    let key = format!("{TENANT}/applications/a1/証明書.pdf");
    let put = blobs
        .presign(&key, PresignMethod::Put, Duration::from_secs(60))
        .await
        .unwrap();
    let c = reqwest::Client::new();
    let body = vec![7u8; 3 * 1024 * 1024];
    let res = c
        .put(&put.url)
        .header("content-type", "application/pdf")
        .body(body.clone())
        .send()
        .await
        .unwrap();
    assert_eq!(res.status().as_u16(), 200, "{}", res.text().await.unwrap());
    let get = blobs
        .presign(&key, PresignMethod::Get, Duration::from_secs(60))
        .await
        .unwrap();
    let res = c.get(&get.url).send().await.unwrap();
    assert_eq!(res.headers()["content-type"], "application/pdf");
    assert_eq!(res.bytes().await.unwrap().as_ref(), body.as_slice());
    // The PUT link does not download, and a changed signature is refused.
    problem(c.get(&put.url).send().await.unwrap(), 403).await;
    let tampered = get.url.replace("X-Signature=", "X-Signature=00");
    problem(c.get(&tampered).send().await.unwrap(), 403).await;
    shutdown_is_clean(host).await;
}
