//! The host process on a free port, driven over HTTP like the SPA would, on the embedded
//! adapters or on the AWS adapters against moto. Shared by the end-to-end test files.
#![allow(dead_code)]

use std::path::PathBuf;
use std::process::Stdio;
use std::time::Duration;

use madoguchi_ports::ItemStore;
use tokio::process::{Child, Command};

pub const TENANT: &str = "272060";

pub struct Host {
    pub child: Child,
    /// Everything the host logged (JSON lines on stdout).
    pub logs: std::sync::Arc<std::sync::Mutex<String>>,
    pub base: String,
    pub data_dir: PathBuf,
    _dir: tempfile::TempDir,
    pub endpoint: Option<String>,
}

/// A prefix per test run, so runs sharing one moto server never see each other's data.
pub fn aws_prefix(data_dir: &std::path::Path) -> String {
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

pub fn free_port() -> u16 {
    std::net::TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port()
}

impl Host {
    pub async fn start(endpoint: Option<String>) -> Host {
        Self::start_with(endpoint, &[]).await
    }

    /// [`Host::start`] with extra environment variables for the host process.
    pub async fn start_with(endpoint: Option<String>, env: &[(&str, String)]) -> Host {
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
        for (k, v) in env {
            cmd.env(k, v);
        }
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

    pub fn token(&self, role: &str, tenant: &str, ttl: i64) -> String {
        self.token_for(role, tenant, ttl, "e2e", None)
    }

    /// A development token for `sub` in exactly these departments.
    pub fn token_depts(&self, role: &str, tenant: &str, sub: &str, depts: &[&str]) -> String {
        let mut cmd = std::process::Command::new(env!("CARGO_BIN_EXE_madoguchi"));
        cmd.args([
            "dev-token",
            "--role",
            role,
            "--tenant",
            tenant,
            "--sub",
            sub,
        ])
        .arg("--data-dir")
        .arg(&self.data_dir);
        for d in depts {
            cmd.arg("--dept").arg(d);
        }
        let out = cmd.output().unwrap();
        assert!(
            out.status.success(),
            "{}",
            String::from_utf8_lossy(&out.stderr)
        );
        String::from_utf8(out.stdout).unwrap().trim().to_owned()
    }

    /// A development token for subject `sub`, with an `email` claim when given.
    pub fn token_for(
        &self,
        role: &str,
        tenant: &str,
        ttl: i64,
        sub: &str,
        email: Option<&str>,
    ) -> String {
        let mut cmd = std::process::Command::new(env!("CARGO_BIN_EXE_madoguchi"));
        cmd.args([
            "dev-token",
            "--role",
            role,
            "--tenant",
            tenant,
            "--sub",
            sub,
            "--dept",
            "shimin",
        ])
        .arg(format!("--ttl={ttl}"))
        .arg("--data-dir")
        .arg(&self.data_dir);
        if let Some(email) = email {
            cmd.arg("--email").arg(email);
        }
        let out = cmd.output().unwrap();
        assert!(
            out.status.success(),
            "{}",
            String::from_utf8_lossy(&out.stderr)
        );
        String::from_utf8(out.stdout).unwrap().trim().to_owned()
    }

    /// A second handle on the host's item store (SQLite allows a concurrent reader in WAL
    /// mode; moto is a server).
    pub async fn items(&self) -> std::sync::Arc<dyn ItemStore> {
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

    pub async fn stop(mut self) -> std::process::ExitStatus {
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

pub async fn problem(res: reqwest::Response, status: u16) -> serde_json::Value {
    assert_eq!(res.status().as_u16(), status);
    assert_eq!(res.headers()["content-type"], "application/problem+json");
    let body: serde_json::Value = res.json().await.unwrap();
    assert_eq!(body["status"], status);
    assert!(body["type"].as_str().unwrap().starts_with("https://"));
    body
}

/// The API as one caller: a token and a tenant.
#[allow(dead_code)]
pub struct Api {
    pub c: reqwest::Client,
    pub base: String,
    pub token: String,
    pub tenant: String,
}

#[allow(dead_code)]
impl Api {
    pub fn new(host: &Host, token: String) -> Self {
        Self::for_tenant(host, token, TENANT)
    }
    pub fn for_tenant(host: &Host, token: String, tenant: &str) -> Self {
        Api {
            c: reqwest::Client::new(),
            base: host.base.clone(),
            token,
            tenant: tenant.to_owned(),
        }
    }
    pub async fn send(
        &self,
        method: reqwest::Method,
        path: &str,
        body: Option<serde_json::Value>,
        headers: &[(&str, &str)],
    ) -> reqwest::Response {
        let mut req = self
            .c
            .request(
                method,
                format!("{}/v1/tenants/{}{path}", self.base, self.tenant),
            )
            .bearer_auth(&self.token);
        for (k, v) in headers {
            req = req.header(*k, *v);
        }
        if let Some(b) = body {
            req = req.json(&b);
        }
        req.send().await.unwrap()
    }
    /// Sends and checks the status; the JSON body (or null) and the ETag.
    pub async fn ok(
        &self,
        method: reqwest::Method,
        path: &str,
        body: Option<serde_json::Value>,
        headers: &[(&str, &str)],
        status: u16,
    ) -> (serde_json::Value, Option<String>) {
        let res = self.send(method, path, body, headers).await;
        let got = res.status().as_u16();
        let etag = res
            .headers()
            .get("etag")
            .map(|v| v.to_str().unwrap().trim_matches('"').to_owned());
        let text = res.text().await.unwrap();
        assert_eq!(got, status, "{path}: {text}");
        (
            serde_json::from_str(&text).unwrap_or(serde_json::Value::Null),
            etag,
        )
    }
}
