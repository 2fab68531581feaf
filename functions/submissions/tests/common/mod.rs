//! Test harness shared by the submissions tests: the real router over a fresh embedded
//! backend (SQLite items, filesystem blobs, outbox mail, local keys) in a temporary
//! directory, a development token issuer and a clock the tests move.

#![allow(dead_code)]

use std::sync::Arc;

use axum::Router;
use axum::body::Body;
use axum::http::{HeaderMap, Method, Request, StatusCode};
use base64::Engine;
use http_body_util::BodyExt;
use madoguchi_applications::keys::{FORM_CURRENT_SK, form_pk, form_version_sk};
use madoguchi_domain::tenant::TenantId;
use madoguchi_embedded::{EmbeddedBackend, QueueSettings};
use madoguchi_fieldcrypt::{CachePolicy, FieldCipher};
use madoguchi_http::auth::Role;
use madoguchi_http::dev_issuer::{DevIssuer, DevTokenRequest};
use madoguchi_http::{Authenticator, common_layers_with};
use madoguchi_ports::{Clock, Condition, FixedClock, Item, ItemStore, Key, UuidV7Gen};
use madoguchi_submissions::{Settings, SubmissionsState, router};
use serde_json::{Value, json};
use tower::ServiceExt;

pub const TENANT: &str = "272060";
pub const PROBLEM_JSON: &str = "application/problem+json";

pub fn tenant() -> TenantId {
    TenantId::parse(TENANT).unwrap()
}

/// Another municipality (千代田区), with its check digit.
pub fn other_tenant() -> TenantId {
    TenantId::from_five_digits("13101").unwrap()
}

/// How a request proves who is calling.
#[derive(Debug, Clone)]
pub enum Auth {
    None,
    Bearer(String),
    Proof(String),
}

pub struct App {
    pub router: Router,
    pub state: SubmissionsState,
    pub backend: EmbeddedBackend,
    pub clock: Arc<FixedClock>,
    pub issuer: Arc<DevIssuer>,
    pub dir: tempfile::TempDir,
}

#[derive(Debug)]
pub struct Res {
    pub status: StatusCode,
    pub headers: HeaderMap,
    pub body: Value,
    pub raw: Vec<u8>,
}

impl Res {
    pub fn content_type(&self) -> Option<&str> {
        self.headers
            .get("content-type")
            .and_then(|v| v.to_str().ok())
    }

    /// Asserts a problem+json answer with this status; returns the problem.
    #[track_caller]
    pub fn problem(&self, status: u16) -> &Value {
        assert_eq!(self.status.as_u16(), status, "{}", self.body);
        assert_eq!(self.content_type(), Some(PROBLEM_JSON), "{}", self.body);
        assert_eq!(self.body["status"], status, "{}", self.body);
        let title = self.body["title"].as_str().unwrap_or_default();
        assert!(!title.is_ascii(), "Japanese title: {}", self.body);
        &self.body
    }

    /// Asserts a problem whose `type` ends with `kind`.
    #[track_caller]
    pub fn problem_of(&self, status: u16, kind: &str) -> &Value {
        let p = self.problem(status);
        let t = p["type"].as_str().unwrap_or_default();
        assert!(
            t.ends_with(kind),
            "type {t:?} should end with {kind:?}: {p}"
        );
        p
    }

    /// Asserts a 422 whose errors include `(field, code)`.
    #[track_caller]
    pub fn field_error(&self, field: &str, code: &str) {
        let p = self.problem(422);
        let errors = p["errors"].as_array().cloned().unwrap_or_default();
        assert!(
            errors
                .iter()
                .any(|e| e["field"] == field && e["code"] == code),
            "expected {field}/{code} in {p}"
        );
        for e in &errors {
            assert!(
                !e["message"].as_str().unwrap_or_default().is_ascii(),
                "Japanese message: {e}"
            );
        }
    }

    #[track_caller]
    pub fn ok(&self, status: u16) -> &Value {
        assert_eq!(self.status.as_u16(), status, "{}", self.body);
        &self.body
    }
}

/// The form most tests use: a text, a My Number, two attachment fields (one with an
/// extension list, one with none, which allows every permitted type).
pub fn definition() -> Value {
    json!({
        "title": "子育て応援給付金の申請",
        "access": "either",
        "max_total_mb": 3,
        "notify": ["received"],
        "items": [
            {"id": "applicant", "type": "text", "label": "氏名", "required": true, "max_length": 50},
            {"id": "my_number", "type": "my_number", "label": "個人番号"},
            {"id": "passbook", "type": "attachment", "label": "通帳の写し",
             "extensions": ["pdf", "png"], "max_file_mb": 2, "max_files": 2},
            {"id": "other_doc", "type": "attachment", "label": "その他の書類", "max_file_mb": 1}
        ]
    })
}

pub fn with(mut definition: Value, key: &str, value: Value) -> Value {
    definition[key] = value;
    definition
}

/// A valid My Number made from `seed`.
pub fn my_number(seed: u64) -> String {
    let body = format!("{:011}", seed % 100_000_000_000);
    let check = madoguchi_domain::mynumber::my_number_check_digit(&body).unwrap();
    format!("{body}{check}")
}

impl App {
    pub fn new() -> Self {
        Self::with_store(|s| s)
    }

    /// The app over the embedded item store as wrapped by `wrap` (to interleave requests).
    pub fn with_store(wrap: impl FnOnce(Arc<dyn ItemStore>) -> Arc<dyn ItemStore>) -> Self {
        let dir = tempfile::tempdir().unwrap();
        let clock = Arc::new(FixedClock::new(jiff::Timestamp::now()));
        let dyn_clock: Arc<dyn Clock> = clock.clone();
        let backend =
            EmbeddedBackend::open(dir.path(), "http://127.0.0.1:9", dyn_clock.clone()).unwrap();
        let issuer = Arc::new(DevIssuer::ephemeral());
        let state = SubmissionsState {
            items: wrap(backend.items()),
            uploads: backend.blobs("attachments"),
            notify: backend.queue("notify", QueueSettings::default()),
            mailer: backend.mailer(),
            cipher: Arc::new(FieldCipher::new(
                backend.keys(),
                dyn_clock.clone(),
                CachePolicy::default(),
            )),
            auth: Authenticator::shared(vec![issuer.trusted()]),
            clock: dyn_clock,
            ids: Arc::new(UuidV7Gen),
            settings: Arc::new(Settings::default()),
        };
        let router = common_layers_with(router(state.clone()), None);
        Self {
            router,
            state,
            backend,
            clock,
            issuer,
            dir,
        }
    }

    /// Writes the `CURRENT` item and the immutable `V#nnnnnn` as the forms function publishes
    /// them.
    pub async fn publish(&self, slug: &str, version: u64, state: &str, definition: Value) {
        let form = json!({
            "tenant": TENANT, "slug": slug, "version": version,
            "published_at": "2026-04-01T00:00:00Z", "state": state, "definition": definition,
        });
        // Fail here, not in the handler, if the test wrote a definition that does not parse.
        serde_json::from_value::<madoguchi_applications::PublishedForm>(form.clone())
            .expect("test definition parses");
        for sk in [FORM_CURRENT_SK.to_owned(), form_version_sk(version)] {
            let key = Key::new(form_pk(&tenant(), slug), sk);
            let mut item = Item::new(key, form.clone());
            item.version = version;
            self.backend
                .items()
                .put(item, Condition::None)
                .await
                .unwrap();
        }
    }

    pub fn token(&self, sub: &str, tenant: TenantId, role: Role, email: Option<&str>) -> String {
        self.issuer.mint(&DevTokenRequest {
            sub: sub.into(),
            tenant,
            role,
            depts: vec![],
            ttl_seconds: 3600,
            now: jiff::Timestamp::now().as_second(),
            email: email.map(str::to_owned),
        })
    }

    pub fn citizen(&self, sub: &str) -> Auth {
        Auth::Bearer(self.token(
            sub,
            tenant(),
            Role::Citizen,
            Some(&format!("{sub}@example.jp")),
        ))
    }

    pub fn staff(&self) -> Auth {
        Auth::Bearer(self.token("staff-1", tenant(), Role::Admin, None))
    }

    pub fn request(
        &self,
        method: Method,
        path: &str,
        auth: &Auth,
        body: Option<Vec<u8>>,
        headers: &[(&str, &str)],
    ) -> Request<Body> {
        let uri = if path.starts_with("/v1/") {
            path.to_owned()
        } else {
            format!("/v1/tenants/{TENANT}{path}")
        };
        let mut req = Request::builder().method(method).uri(uri);
        match auth {
            Auth::None => {}
            Auth::Bearer(t) => req = req.header("authorization", format!("Bearer {t}")),
            Auth::Proof(p) => req = req.header("x-email-proof", p.as_str()),
        }
        if body.is_some() {
            req = req.header("content-type", "application/json");
        }
        for (k, v) in headers {
            req = req.header(*k, *v);
        }
        req.body(body.map(Body::from).unwrap_or_else(Body::empty))
            .unwrap()
    }

    pub async fn send(&self, req: Request<Body>) -> Res {
        send(&self.router, req).await
    }

    pub async fn call(
        &self,
        method: Method,
        path: &str,
        auth: &Auth,
        body: Option<Value>,
        headers: &[(&str, &str)],
    ) -> Res {
        let body = body.map(|b| serde_json::to_vec(&b).unwrap());
        self.send(self.request(method, path, auth, body, headers))
            .await
    }

    pub async fn get(&self, path: &str, auth: &Auth) -> Res {
        self.call(Method::GET, path, auth, None, &[]).await
    }

    pub async fn put_draft(&self, slug: &str, auth: &Auth, version: u64, answers: Value) -> Res {
        self.call(
            Method::PUT,
            &format!("/forms/{slug}/draft"),
            auth,
            Some(json!({"form_version": version, "answers": answers})),
            &[],
        )
        .await
    }

    pub async fn confirm(&self, slug: &str, auth: &Auth, version: u64, answers: Value) -> Res {
        self.call(
            Method::POST,
            &format!("/forms/{slug}/confirm"),
            auth,
            Some(json!({"form_version": version, "answers": answers})),
            &[],
        )
        .await
    }

    pub async fn submit(
        &self,
        slug: &str,
        auth: &Auth,
        key: Option<&str>,
        version: u64,
        answers: Value,
    ) -> Res {
        let headers: Vec<(&str, &str)> = key.map(|k| ("idempotency-key", k)).into_iter().collect();
        self.call(
            Method::POST,
            &format!("/forms/{slug}/applications"),
            auth,
            Some(json!({"form_version": version, "answers": answers})),
            &headers,
        )
        .await
    }

    pub async fn grant(
        &self,
        slug: &str,
        auth: &Auth,
        field: &str,
        file_name: &str,
        size: u64,
    ) -> Res {
        self.call(
            Method::POST,
            &format!("/forms/{slug}/attachments"),
            auth,
            Some(json!({"field": field, "file_name": file_name, "size": size})),
            &[],
        )
        .await
    }

    pub async fn start_verification(&self, slug: &str, email: &str) -> Res {
        self.call(
            Method::POST,
            &format!("/forms/{slug}/email-verifications"),
            &Auth::None,
            Some(json!({"email": email})),
            &[],
        )
        .await
    }

    pub async fn confirm_code(&self, slug: &str, id: &str, code: &str) -> Res {
        self.call(
            Method::POST,
            &format!("/forms/{slug}/email-verifications/{id}/confirm"),
            &Auth::None,
            Some(json!({"code": code})),
            &[],
        )
        .await
    }

    /// Mails in the outbox addressed to `to`: (subject, body) decoded.
    pub fn mails_to(&self, to: &str) -> Vec<(String, String)> {
        read_outbox(&self.dir.path().join("outbox"), to)
    }

    /// Mails a code to `email` for `slug` and returns (verification id, code).
    pub async fn code_for(&self, slug: &str, email: &str) -> (String, String) {
        let before = self.mails_to(email).len();
        let res = self.start_verification(slug, email).await;
        let id = res.ok(201)["verification_id"].as_str().unwrap().to_owned();
        let mails = self.mails_to(email);
        assert_eq!(mails.len(), before + 1, "one code mail per start");
        let body = &mails.last().unwrap().1;
        let code: String = body
            .split("確認コード: ")
            .nth(1)
            .expect("code in the mail")
            .chars()
            .take(6)
            .collect();
        assert!(code.chars().all(|c| c.is_ascii_digit()), "{code}");
        (id, code)
    }

    /// A proof of `email` for `slug`, through the one-time code.
    pub async fn proof_for(&self, slug: &str, email: &str) -> Auth {
        let (id, code) = self.code_for(slug, email).await;
        let res = self.confirm_code(slug, &id, &code).await;
        Auth::Proof(res.ok(201)["proof"].as_str().unwrap().to_owned())
    }
}

pub async fn send(router: &Router, req: Request<Body>) -> Res {
    let res = router.clone().oneshot(req).await.unwrap();
    let status = res.status();
    let headers = res.headers().clone();
    let raw = res.into_body().collect().await.unwrap().to_bytes().to_vec();
    let body = serde_json::from_slice(&raw).unwrap_or(Value::Null);
    Res {
        status,
        headers,
        body,
        raw,
    }
}

fn decode_words(s: &str) -> String {
    let mut bytes = Vec::new();
    for w in s.split_whitespace() {
        if let Some(inner) = w
            .strip_prefix("=?UTF-8?B?")
            .and_then(|w| w.strip_suffix("?="))
        {
            bytes.extend(
                base64::engine::general_purpose::STANDARD
                    .decode(inner)
                    .unwrap(),
            );
        } else {
            bytes.extend(w.as_bytes());
        }
    }
    String::from_utf8(bytes).unwrap()
}

/// (subject, body) of every `.eml` in `dir` addressed to `to`, oldest first.
pub fn read_outbox(dir: &std::path::Path, to: &str) -> Vec<(String, String)> {
    let Ok(entries) = std::fs::read_dir(dir) else {
        return vec![];
    };
    let mut paths: Vec<_> = entries
        .flatten()
        .map(|e| e.path())
        .filter(|p| p.extension().is_some_and(|e| e == "eml"))
        .collect();
    paths.sort();
    let mut out = Vec::new();
    for p in paths {
        let text = std::fs::read_to_string(&p).unwrap();
        let (head, body) = text.split_once("\r\n\r\n").unwrap();
        let unfolded = head.replace("\r\n ", " ");
        // Mailboxes are matched case-insensitively, as mail systems do.
        let addressed = unfolded
            .lines()
            .any(|l| l.starts_with("To: ") && l.to_lowercase().contains(&to.to_lowercase()));
        if !addressed {
            continue;
        }
        let subject = unfolded
            .lines()
            .find_map(|l| l.strip_prefix("Subject: "))
            .map(decode_words)
            .unwrap_or_default();
        let b64: String = body.split_whitespace().collect();
        let body = base64::engine::general_purpose::STANDARD
            .decode(b64)
            .unwrap();
        out.push((subject, String::from_utf8(body).unwrap()));
    }
    out
}
