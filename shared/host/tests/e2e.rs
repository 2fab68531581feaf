//! End to end through the real `madoguchi` binary: the host process on a free port, driven
//! over HTTP like the SPA would, on the embedded adapters and on the AWS adapters against
//! moto. The same test bodies run on both.

use std::path::PathBuf;
use std::process::Stdio;
use std::time::Duration;

use madoguchi_ports::{ItemStore, QueryRequest, SortKeyCondition};
use tokio::process::{Child, Command};

const TENANT: &str = "272060";

struct Host {
    child: Child,
    /// Everything the host logged (JSON lines on stdout).
    logs: std::sync::Arc<std::sync::Mutex<String>>,
    base: String,
    data_dir: PathBuf,
    _dir: tempfile::TempDir,
    endpoint: Option<String>,
}

/// A prefix per test run, so runs sharing one moto server never see each other's data.
fn aws_prefix(data_dir: &std::path::Path) -> String {
    let tag: String = data_dir
        .parent()
        .and_then(|p| p.file_name())
        .map(|n| n.to_string_lossy().to_lowercase())
        .unwrap_or_default()
        .chars()
        .filter(|c| c.is_ascii_alphanumeric())
        .collect();
    format!("e2e-{tag}")
}

fn free_port() -> u16 {
    std::net::TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port()
}

impl Host {
    async fn start(endpoint: Option<String>) -> Host {
        let dir = tempfile::tempdir().unwrap();
        let data_dir = dir.path().join("var");
        let port = free_port();
        let mut cmd = Command::new(env!("CARGO_BIN_EXE_madoguchi"));
        cmd.arg("serve")
            .arg("--addr")
            .arg(format!("127.0.0.1:{port}"))
            .arg("--data-dir")
            .arg(&data_dir)
            .arg("--tenant")
            .arg(TENANT)
            .arg("--inbox-interval-ms")
            .arg("100")
            .env("RUST_LOG", "info")
            .stdout(Stdio::piped())
            .stderr(Stdio::inherit())
            .kill_on_drop(true);
        if let Some(ep) = &endpoint {
            cmd.arg("--backend")
                .arg("aws")
                .arg("--endpoint")
                .arg(ep)
                .arg("--aws-prefix")
                .arg(aws_prefix(&data_dir));
            cmd.env("AWS_ACCESS_KEY_ID", "testing")
                .env("AWS_SECRET_ACCESS_KEY", "testing")
                .env("AWS_REGION", "ap-northeast-1");
        }
        let mut child = cmd.spawn().expect("spawn madoguchi");
        let logs = std::sync::Arc::new(std::sync::Mutex::new(String::new()));
        let stdout = child.stdout.take().unwrap();
        let sink = logs.clone();
        tokio::spawn(async move {
            use tokio::io::AsyncBufReadExt;
            let mut lines = tokio::io::BufReader::new(stdout).lines();
            while let Ok(Some(line)) = lines.next_line().await {
                let mut s = sink.lock().unwrap();
                s.push_str(&line);
                s.push('\n');
            }
        });
        let host = Host {
            child,
            logs,
            base: format!("http://127.0.0.1:{port}"),
            data_dir,
            _dir: dir,
            endpoint,
        };
        let client = reqwest::Client::new();
        for _ in 0..300 {
            if let Ok(r) = client.get(format!("{}/healthz", host.base)).send().await
                && r.status().is_success()
            {
                return host;
            }
            tokio::time::sleep(Duration::from_millis(50)).await;
        }
        panic!("madoguchi did not answer /healthz within 15 s");
    }

    fn token(&self, role: &str, tenant: &str, ttl: i64) -> String {
        let out = std::process::Command::new(env!("CARGO_BIN_EXE_madoguchi"))
            .args([
                "dev-token",
                "--role",
                role,
                "--tenant",
                tenant,
                "--sub",
                "e2e",
                "--dept",
                "shimin",
            ])
            .arg(format!("--ttl={ttl}"))
            .arg("--data-dir")
            .arg(&self.data_dir)
            .output()
            .unwrap();
        assert!(
            out.status.success(),
            "{}",
            String::from_utf8_lossy(&out.stderr)
        );
        String::from_utf8(out.stdout).unwrap().trim().to_owned()
    }

    /// A second handle on the host's item store (SQLite allows a concurrent reader in WAL
    /// mode; moto is a server).
    async fn items(&self) -> std::sync::Arc<dyn ItemStore> {
        let clock = std::sync::Arc::new(madoguchi_ports::SystemClock);
        match &self.endpoint {
            None => madoguchi_embedded::EmbeddedBackend::open(&self.data_dir, &self.base, clock)
                .unwrap()
                .items(),
            Some(ep) => madoguchi_aws::AwsBackend::local(ep, clock)
                .await
                .items(&aws_prefix(&self.data_dir)),
        }
    }

    async fn stop(mut self) -> std::process::ExitStatus {
        let pid = self.child.id().unwrap() as i32;
        // SAFETY-free: kill(1) via the command line keeps the test free of libc.
        let status = std::process::Command::new("kill")
            .arg("-TERM")
            .arg(pid.to_string())
            .status()
            .unwrap();
        assert!(status.success());
        tokio::time::timeout(Duration::from_secs(15), self.child.wait())
            .await
            .expect("madoguchi did not stop within 15 s of SIGTERM")
            .unwrap()
    }
}

async fn problem(res: reqwest::Response, status: u16) -> serde_json::Value {
    assert_eq!(res.status().as_u16(), status);
    assert_eq!(res.headers()["content-type"], "application/problem+json");
    let body: serde_json::Value = res.json().await.unwrap();
    assert_eq!(body["status"], status);
    assert!(body["type"].as_str().unwrap().starts_with("https://"));
    body
}

fn form(title: &str) -> serde_json::Value {
    serde_json::json!({
        "title": title,
        "fields": [
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
    assert!(doc["paths"]["/v1/tenants/{tenant}/forms/{slug}"]["put"].is_object());
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

async fn put(
    c: &reqwest::Client,
    url: &str,
    token: &str,
    if_match: Option<u64>,
    body: serde_json::Value,
) -> reqwest::Response {
    let mut req = c.put(url).bearer_auth(token).json(&body);
    if let Some(v) = if_match {
        req = req.header("if-match", format!("\"{v}\""));
    }
    req.send().await.unwrap()
}

async fn forms_publish_and_read(host: &Host) {
    let c = reqwest::Client::new();
    let url = format!("{}/v1/tenants/{TENANT}/forms/juminhyo", host.base);
    let staff = host.token("staff", TENANT, 600);
    let citizen = host.token("citizen", TENANT, 600);
    let other_tenant = host.token("staff", "131016", 600);

    problem(c.get(&url).send().await.unwrap(), 404).await;
    problem(put(&c, &url, &citizen, None, form("住民票")).await, 403).await;
    problem(
        put(&c, &url, &other_tenant, None, form("住民票")).await,
        403,
    )
    .await;
    let bad = problem(
        put(
            &c,
            &url,
            &staff,
            None,
            serde_json::json!({"title": "", "fields": []}),
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
    assert_eq!(fields, ["title", "fields"]);

    let res = put(&c, &url, &staff, None, form("住民票の写し")).await;
    assert_eq!(res.status().as_u16(), 201);
    problem(put(&c, &url, &staff, None, form("again")).await, 409).await;
    let res = put(&c, &url, &staff, Some(1), form("住民票の写しの交付")).await;
    assert_eq!(res.status().as_u16(), 200);
    // A second editor still holding version 1 loses, visibly.
    problem(put(&c, &url, &staff, Some(1), form("stale")).await, 409).await;

    let res = c.get(&url).send().await.unwrap();
    assert_eq!(res.headers()["etag"], "\"2\"");
    let body: serde_json::Value = res.json().await.unwrap();
    assert_eq!(body["definition"]["title"], "住民票の写しの交付");
    assert_eq!(body["version"], 2);
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
    let mut found = Vec::new();
    for _ in 0..200 {
        found = items
            .query(QueryRequest::partition(pk.clone()))
            .await
            .unwrap()
            .items;
        if !found.is_empty() && !path.exists() {
            break;
        }
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    assert_eq!(found.len(), 1, "one registration for one file");
    assert_eq!(found[0].data["key"], "inbound/jumin/20261123 差分.csv");
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
    let blobs = backend.blobs("attachments");
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
