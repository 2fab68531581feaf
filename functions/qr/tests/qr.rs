//! The qr function in process, on both adapter sets (embedded SQLite and local keys; the AWS
//! adapters on moto): a household's entry from opening to the code, the proof that nothing
//! of it stays stored, the counter opening it by text and by photo, every refusal with its
//! code and audit record, inactivity expiry, one code per entry, tokens, the key admin.

use std::collections::BTreeSet;
use std::sync::{Arc, Mutex, OnceLock};

use axum::body::Body;
use axum::http::{HeaderMap, Request, StatusCode};
use base64::Engine;
use base64::engine::general_purpose::STANDARD;
use http_body_util::BodyExt;
use jiff::{SignedDuration, Timestamp};
use madoguchi_audit::{AuditAction, AuditLog, AuditRecord};
use madoguchi_domain::date::today_in_tokyo;
use madoguchi_domain::tenant::TenantId;
use madoguchi_fieldcrypt::{CachePolicy, FieldCipher};
use madoguchi_http::Authenticator;
use madoguchi_http::auth::Role;
use madoguchi_http::dev_issuer::{DevIssuer, DevTokenRequest};
use madoguchi_ports::{Clock, ItemStore, Keys, QueryRequest, UuidV7Gen};
use madoguchi_qr::{QrSettings, QrState, router};
use madoguchi_qrseal::{
    Address, Person, PreApplication, Procedure, QrKey, QrKeyring, Relationship, Sex, Validity,
};
use madoguchi_tests::{Env, Kind, contract_tests};
use serde_json::{Value, json};
use tower::ServiceExt;

/// 泉大津市 (大阪府).
const TENANT: &str = "272060";
/// A 泉大津市 postal code.
const IZUMIOTSU: &str = "5950025";
/// 世田谷区, where the household comes from.
const SETAGAYA: &str = "1540001";
/// 千代田区: outside 泉大津市.
const CHIYODA: &str = "1000001";
/// The household's family name and フリガナ: what must never be found in storage.
const FAMILY: &str = "和泉谷";
const FAMILY_KANA: &str = "イズミヤ";

struct Fixture {
    env: Env,
    app: axum::Router,
    items: Arc<dyn ItemStore>,
    keys: Arc<dyn Keys>,
    audit: AuditLog,
    dev: DevIssuer,
}

/// Every log line of this test binary, at every level (one global subscriber: handlers run
/// on the runtime's worker threads).
fn logs() -> &'static Arc<Mutex<Vec<u8>>> {
    static LOGS: OnceLock<Arc<Mutex<Vec<u8>>>> = OnceLock::new();
    LOGS.get_or_init(|| {
        let buf = Arc::new(Mutex::new(Vec::new()));
        let sink = buf.clone();
        let _ = tracing_subscriber::fmt()
            .with_max_level(tracing::Level::TRACE)
            .with_ansi(false)
            .with_writer(move || LogSink(sink.clone()))
            .try_init();
        buf
    })
}

struct LogSink(Arc<Mutex<Vec<u8>>>);

impl std::io::Write for LogSink {
    fn write(&mut self, data: &[u8]) -> std::io::Result<usize> {
        self.0.lock().unwrap().extend_from_slice(data);
        Ok(data.len())
    }
    fn flush(&mut self) -> std::io::Result<()> {
        Ok(())
    }
}

async fn fixture(env: Env) -> Fixture {
    logs();
    let items = env.items().await;
    let keys = env.keys().await;
    let clock: Arc<dyn Clock> = env.clock.clone();
    let cipher = FieldCipher::new(keys.clone(), clock.clone(), CachePolicy::default());
    let audit = AuditLog::new(items.clone(), clock.clone());
    let dev = DevIssuer::ephemeral();
    let state = QrState::new(
        items.clone(),
        keys.clone(),
        Arc::new(cipher),
        audit.clone(),
        Authenticator::shared(vec![dev.trusted()]),
        clock,
        Arc::new(UuidV7Gen),
        QrSettings::default(),
    );
    Fixture {
        env,
        // With the request logging of production, so its lines are checked too.
        app: madoguchi_http::common_layers_with(router(state), None),
        items,
        keys,
        audit,
        dev,
    }
}

fn tenant() -> TenantId {
    TenantId::parse(TENANT).unwrap()
}

impl Fixture {
    /// A bearer token. JWTs are checked against the real time, not the test clock.
    fn token(&self, role: Role, tenant: &str, sub: &str) -> String {
        self.dev.mint(&DevTokenRequest {
            sub: sub.into(),
            tenant: TenantId::parse(tenant).unwrap(),
            role,
            depts: if role == Role::Citizen {
                vec![]
            } else {
                vec!["shimin-ka".into()]
            },
            ttl_seconds: 3600,
            now: Timestamp::now().as_second(),
            email: None,
        })
    }

    fn clerk(&self) -> String {
        self.token(Role::Staff, TENANT, "clerk-1")
    }

    fn admin(&self) -> String {
        self.token(Role::Admin, TENANT, "admin-1")
    }

    async fn call(
        &self,
        method: &str,
        uri: &str,
        headers: &[(&str, &str)],
        body: Body,
    ) -> (StatusCode, HeaderMap, Value) {
        let mut req = Request::builder().method(method).uri(uri);
        for (k, v) in headers {
            req = req.header(*k, *v);
        }
        let res = self
            .app
            .clone()
            .oneshot(req.body(body).unwrap())
            .await
            .unwrap();
        let status = res.status();
        let headers = res.headers().clone();
        let bytes = res.into_body().collect().await.unwrap().to_bytes();
        let value = serde_json::from_slice(&bytes).unwrap_or(Value::Null);
        (status, headers, value)
    }

    async fn json(
        &self,
        method: &str,
        uri: &str,
        headers: &[(&str, &str)],
        body: Option<Value>,
    ) -> (StatusCode, Value) {
        let mut all = headers.to_vec();
        let body = match body {
            Some(b) => {
                all.push(("content-type", "application/json"));
                Body::from(serde_json::to_vec(&b).unwrap())
            }
            None => Body::empty(),
        };
        let (status, headers, value) = self.call(method, uri, &all, body).await;
        if status.is_client_error() || status.is_server_error() {
            assert_eq!(
                headers.get("content-type").unwrap(),
                "application/problem+json",
                "{method} {uri}"
            );
        }
        (status, value)
    }

    /// Opens an entry; returns its id and token.
    async fn create(&self, procedure: &str) -> (String, String) {
        let (status, body) = self
            .json(
                "POST",
                &format!("/v1/tenants/{TENANT}/pre-applications"),
                &[],
                Some(json!({"procedure": procedure})),
            )
            .await;
        assert_eq!(status, StatusCode::CREATED, "{body}");
        let id = body["id"].as_str().unwrap().to_owned();
        let token = body["token"].as_str().unwrap().to_owned();
        // 256 random bits, base64url.
        assert_eq!(
            base64::engine::general_purpose::URL_SAFE_NO_PAD
                .decode(&token)
                .unwrap()
                .len(),
            32
        );
        (id, token)
    }

    async fn put(&self, id: &str, token: &str, entry: &Value) -> (StatusCode, Value) {
        self.json(
            "PUT",
            &format!("/v1/tenants/{TENANT}/pre-applications/{id}"),
            &[("x-entry-token", token)],
            Some(entry.clone()),
        )
        .await
    }

    async fn get(&self, id: &str, token: &str) -> (StatusCode, Value) {
        self.json(
            "GET",
            &format!("/v1/tenants/{TENANT}/pre-applications/{id}"),
            &[("x-entry-token", token)],
            None,
        )
        .await
    }

    async fn issue(&self, id: &str, token: &str) -> (StatusCode, Value) {
        self.json(
            "POST",
            &format!("/v1/tenants/{TENANT}/pre-applications/{id}/qr"),
            &[("x-entry-token", token)],
            None,
        )
        .await
    }

    async fn open_text(&self, bearer: &str, text: &str) -> (StatusCode, Value) {
        self.json(
            "POST",
            &format!("/v1/tenants/{TENANT}/staff/qr/open"),
            &[("authorization", &format!("Bearer {bearer}"))],
            Some(json!({ "text": text })),
        )
        .await
    }

    async fn open_photo(&self, bearer: &str, image: &[u8]) -> (StatusCode, Value) {
        let boundary = "qr-test-boundary-7d3f";
        let mut body = Vec::new();
        body.extend_from_slice(
            format!(
                "--{boundary}\r\nContent-Disposition: form-data; name=\"photo\"; filename=\"qr.png\"\r\nContent-Type: image/png\r\n\r\n"
            )
            .as_bytes(),
        );
        body.extend_from_slice(image);
        body.extend_from_slice(format!("\r\n--{boundary}--\r\n").as_bytes());
        let (status, _, value) = self
            .call(
                "POST",
                &format!("/v1/tenants/{TENANT}/staff/qr/open"),
                &[
                    ("authorization", &format!("Bearer {bearer}")),
                    (
                        "content-type",
                        &format!("multipart/form-data; boundary={boundary}"),
                    ),
                ],
                Body::from(body),
            )
            .await;
        (status, value)
    }

    /// The audit records of QR openings, in order: (outcome, kid).
    async fn openings(&self) -> Vec<(String, Value)> {
        self.records()
            .await
            .into_iter()
            .filter(|r| r.event.action == AuditAction::QrOpen)
            .filter_map(|r| {
                let outcome = r.event.detail.get("outcome")?.as_str()?.to_owned();
                Some((
                    outcome,
                    r.event.detail.get("kid").cloned().unwrap_or_default(),
                ))
            })
            .collect()
    }

    async fn records(&self) -> Vec<AuditRecord> {
        self.audit.records(&tenant(), 0, 1000).await.unwrap()
    }

    /// Every byte the backend holds: the embedded data directory's files, or every item
    /// of the table as the DynamoDB API returns it (past the item-store port).
    async fn raw_storage(&self) -> Vec<(String, Vec<u8>)> {
        let mut out = Vec::new();
        match self.env.kind {
            Kind::Embedded => {
                let dir = self
                    .env
                    .embedded_backend()
                    .unwrap()
                    .data_dir()
                    .to_path_buf();
                let mut stack = vec![dir];
                while let Some(d) = stack.pop() {
                    for e in std::fs::read_dir(&d).unwrap().flatten() {
                        let path = e.path();
                        if path.is_dir() {
                            stack.push(path);
                        } else {
                            out.push((path.display().to_string(), std::fs::read(&path).unwrap()));
                        }
                    }
                }
            }
            Kind::Aws => {
                let client = self.env.aws_backend().unwrap().dynamodb_client();
                let mut start = None;
                loop {
                    let page = client
                        .scan()
                        .table_name(&self.env.prefix)
                        .consistent_read(true)
                        .set_exclusive_start_key(start)
                        .send()
                        .await
                        .unwrap();
                    for item in page.items() {
                        out.push(("dynamodb item".into(), format!("{item:?}").into_bytes()));
                    }
                    start = page.last_evaluated_key().cloned();
                    if start.is_none() {
                        break;
                    }
                }
            }
        }
        assert!(!out.is_empty(), "the storage scan found nothing at all");
        out
    }

    async fn storage_holds(&self, needle: &str) -> Vec<String> {
        self.raw_storage()
            .await
            .into_iter()
            .filter(|(_, bytes)| contains(bytes, needle.as_bytes()))
            .map(|(name, _)| name)
            .collect()
    }
}

fn contains(hay: &[u8], needle: &[u8]) -> bool {
    hay.windows(needle.len()).any(|w| w == needle)
}

/// An address in the area of a postal code, as the address fill gives it.
fn address_of(code: &str, rest: &str) -> String {
    let entries = madoguchi_postal::lookup(code);
    let e = entries
        .first()
        .unwrap_or_else(|| panic!("postal data has no {code}"));
    let town = if e.town.contains("以下に掲載がない場合") {
        ""
    } else {
        e.town.as_str()
    };
    format!("{}{}{}{rest}", e.prefecture, e.city, town)
}

fn in_days(env: &Env, days: i64) -> String {
    today_in_tokyo(env.clock.now())
        .checked_add(jiff::Span::new().days(days))
        .unwrap()
        .to_string()
}

/// A household of three moving into 泉大津市 from 世田谷区.
fn household(env: &Env) -> Value {
    json!({
        "move_date": in_days(env, 7),
        "old_address": {
            "postal_code": SETAGAYA,
            "address": address_of(SETAGAYA, "1丁目2番3号"),
            "katagaki": "池尻ハイツ201",
        },
        "new_address": {
            "postal_code": IZUMIOTSU,
            "address": address_of(IZUMIOTSU, "4番5号"),
            "katagaki": "",
        },
        "members": [
            {"family_name": FAMILY, "given_name": "晴臣", "family_kana": FAMILY_KANA,
             "given_kana": "ハルオミ", "birth_date": "1980-05-17", "sex": "male",
             "relationship": "householder"},
            {"family_name": FAMILY, "given_name": "碧", "family_kana": FAMILY_KANA,
             "given_kana": "アオイ", "birth_date": "1982-11-03", "sex": "female",
             "relationship": "wife"},
            {"family_name": FAMILY, "given_name": "湊", "family_kana": FAMILY_KANA,
             "given_kana": "ミナト", "birth_date": "2019-07-21", "sex": "male",
             "relationship": "child"},
        ],
        "procedures": ["kokuho", "jidoteate", "shugaku"],
    })
}

fn error_set(problem: &Value) -> BTreeSet<(String, String)> {
    problem["errors"]
        .as_array()
        .unwrap_or_else(|| panic!("no errors in {problem}"))
        .iter()
        .map(|e| {
            let message = e["message"].as_str().unwrap();
            // Japanese, and never the value sent.
            assert!(!message.is_ascii(), "{message}");
            (
                e["field"].as_str().unwrap().to_owned(),
                e["code"].as_str().unwrap().to_owned(),
            )
        })
        .collect()
}

fn set(pairs: &[(&str, &str)]) -> BTreeSet<(String, String)> {
    pairs
        .iter()
        .map(|(a, b)| ((*a).to_owned(), (*b).to_owned()))
        .collect()
}

/// A code that went through a valid entry of the household.
async fn issued_code(f: &Fixture) -> Value {
    let (id, token) = f.create("tennyu").await;
    let (status, body) = f.put(&id, &token, &household(&f.env)).await;
    assert_eq!(status, StatusCode::OK, "{body}");
    let (status, issued) = f.issue(&id, &token).await;
    assert_eq!(status, StatusCode::OK, "{issued}");
    issued
}

/// The refusal code of a 422 opening (in `errors[0].code` and the problem type).
fn refusal(status: StatusCode, body: &Value) -> String {
    assert_eq!(status, StatusCode::UNPROCESSABLE_ENTITY, "{body}");
    let code = body["errors"][0]["code"].as_str().unwrap().to_owned();
    assert_eq!(
        body["type"],
        format!(
            "https://madoguchi.jp/problems/qr-{}",
            code.replace('_', "-")
        )
    );
    assert!(!body["title"].as_str().unwrap().is_ascii());
    code
}

// ---------------------------------------------------------------------------------------

async fn household_from_entry_to_counter(env: Env) {
    let f = fixture(env).await;
    let (id, token) = f.create("tennyu").await;
    let (status, body) = f.get(&id, &token).await;
    assert_eq!(status, StatusCode::OK, "{body}");
    assert_eq!(body["procedure"], "tennyu");
    assert_eq!(body["entry"], Value::Null);

    // One katakana error, an impossible date and a new address outside the municipality:
    // all three answered at once, and nothing stored.
    let mut bad = household(&f.env);
    bad["members"][1]["given_kana"] = json!("あおい");
    bad["members"][2]["birth_date"] = json!("2019-02-30");
    bad["new_address"]["postal_code"] = json!(CHIYODA);
    bad["new_address"]["address"] = json!(address_of(CHIYODA, "1番1号"));
    let (status, problem) = f.put(&id, &token, &bad).await;
    assert_eq!(status, StatusCode::UNPROCESSABLE_ENTITY, "{problem}");
    assert_eq!(
        error_set(&problem),
        set(&[
            ("members[1].given_kana", "katakana"),
            ("members[2].birth_date", "invalid_date"),
            ("new_address.postal_code", "outside_municipality"),
        ])
    );
    let (_, body) = f.get(&id, &token).await;
    assert_eq!(body["entry"], Value::Null);

    // The valid entry is stored, and reads back as entered.
    let entry = household(&f.env);
    let (status, body) = f.put(&id, &token, &entry).await;
    assert_eq!(status, StatusCode::OK, "{body}");
    let (status, body) = f.get(&id, &token).await;
    assert_eq!(status, StatusCode::OK);
    assert_eq!(body["entry"], entry);

    // Stored, but sealed: the item is there, the names are not, in any form the backend
    // keeps (SQLite database and WAL files; DynamoDB items).
    let partition = madoguchi_qr::preapp::entry_pk(&tenant(), &id);
    let stored = f
        .items
        .query(QueryRequest::partition(partition.clone()))
        .await
        .unwrap();
    assert_eq!(stored.items.len(), 1);
    assert!(!f.storage_holds(&partition).await.is_empty());
    for name in [FAMILY, FAMILY_KANA, "ハルオミ", "池尻ハイツ"] {
        assert_eq!(f.storage_holds(name).await, Vec::<String>::new(), "{name}");
    }

    // The code: text, SVG, PNG.
    let (status, issued) = f.issue(&id, &token).await;
    assert_eq!(status, StatusCode::OK, "{issued}");
    let text = issued["text"].as_str().unwrap().to_owned();
    assert!(text.starts_with("MDG1:"), "{text}");
    assert!(issued["svg"].as_str().unwrap().contains("<svg"));
    let png = STANDARD
        .decode(issued["png_base64"].as_str().unwrap())
        .unwrap();
    assert!(png.starts_with(b"\x89PNG\r\n\x1a\n"));
    let version = issued["qr_version"].as_i64().unwrap();
    assert!((1..=25).contains(&version), "{version}");
    let expires: Timestamp = issued["expires_at"].as_str().unwrap().parse().unwrap();
    assert_eq!(
        expires.as_second(),
        f.env.clock.now().as_second() + 14 * 24 * 3600
    );

    // Nothing of the entry remains: not through the port, not in the partition, not in the
    // raw storage (the names, nor the entry's partition key).
    let left = f
        .items
        .query(QueryRequest::partition(partition.clone()))
        .await
        .unwrap();
    assert!(left.items.is_empty(), "{:?}", left.items);
    match f.env.kind {
        // DynamoDB deletes at once; SQLite's file may keep the bytes of a deleted row in a
        // free page, but never the names, which were only ever stored sealed.
        Kind::Aws => assert_eq!(f.storage_holds(&partition).await, Vec::<String>::new()),
        Kind::Embedded => {}
    }
    for name in [FAMILY, FAMILY_KANA, "ハルオミ", "池尻ハイツ"] {
        assert_eq!(f.storage_holds(name).await, Vec::<String>::new(), "{name}");
    }
    let (status, _) = f.get(&id, &token).await;
    assert_eq!(status, StatusCode::NOT_FOUND);

    // The counter opens it by the scanned text, and by a photo of the PNG.
    let clerk = f.clerk();
    let (status, opened) = f.open_text(&clerk, &text).await;
    assert_eq!(status, StatusCode::OK, "{opened}");
    assert_eq!(opened["procedure"], "tennyu");
    assert_eq!(opened["procedure_label"], "転入");
    assert_eq!(opened["kid"], 1);
    assert_eq!(opened["move_date"], entry["move_date"]);
    assert_eq!(opened["old_address"], entry["old_address"]);
    assert_eq!(opened["new_address"], entry["new_address"]);
    assert_eq!(opened["procedures"], entry["procedures"]);
    let members = opened["members"].as_array().unwrap();
    assert_eq!(members.len(), 3);
    for (got, sent) in members.iter().zip(entry["members"].as_array().unwrap()) {
        for (k, v) in sent.as_object().unwrap() {
            assert_eq!(&got[k], v, "{k}");
        }
    }
    let labels: Vec<&str> = members
        .iter()
        .map(|m| m["relationship_label"].as_str().unwrap())
        .collect();
    assert_eq!(labels, ["世帯主", "妻", "子"]);
    assert_eq!(members[1]["sex_label"], "女");

    let (status, by_photo) = f.open_photo(&clerk, &png).await;
    assert_eq!(status, StatusCode::OK, "{by_photo}");
    assert_eq!(by_photo, opened);

    // Both openings audited, with the outcome and key id, and no personal data.
    assert_eq!(
        f.openings().await,
        vec![
            ("opened".to_owned(), json!(1)),
            ("opened".to_owned(), json!(1))
        ]
    );
    for r in f.records().await {
        let shown = serde_json::to_string(&r.to_value()).unwrap();
        assert!(
            !shown.contains(FAMILY) && !shown.contains(FAMILY_KANA),
            "{shown}"
        );
    }

    // The logs saw the whole flow (request lines name the route template) and hold nothing
    // of the household, nor the entry token or the code.
    let logged = String::from_utf8_lossy(&logs().lock().unwrap()).into_owned();
    assert!(
        logged.contains("/v1/tenants/{tenant}/pre-applications/{id}/qr"),
        "{logged}"
    );
    for secret in [
        FAMILY,
        FAMILY_KANA,
        "ハルオミ",
        "池尻ハイツ",
        "1980-05-17",
        &token,
        &text,
    ] {
        assert!(!logged.contains(secret), "the logs hold {secret:?}");
    }
}

async fn refused_codes_are_audited(env: Env) {
    let f = fixture(env).await;
    let clerk = f.clerk();
    let issued = issued_code(&f).await;
    let text = issued["text"].as_str().unwrap().to_owned();

    // Tampered: one base45 digit of the tag changed by one (still valid base45).
    let mut chars: Vec<char> = text.chars().collect();
    let groups = (chars.len() - 5) / 3;
    let at = 5 + 3 * (groups - 2);
    let alphabet: Vec<char> = "0123456789ABCDEFGHIJKLMNOPQRSTUVWXYZ $%*+-./:"
        .chars()
        .collect();
    let i = alphabet.iter().position(|c| *c == chars[at]).unwrap();
    chars[at] = alphabet[if i == 0 { 1 } else { i - 1 }];
    let tampered: String = chars.into_iter().collect();
    let (status, body) = f.open_text(&clerk, &tampered).await;
    assert_eq!(refusal(status, &body), "tampered");

    // Not ours at all.
    let (status, body) = f.open_text(&clerk, "https://example.jp/").await;
    assert_eq!(refusal(status, &body), "not_ours");

    // Another municipality's code (千代田区), sealed with its own key.
    let keyring = QrKeyring::new(f.items.clone(), f.keys.clone(), f.env.clock.clone());
    let today = today_in_tokyo(f.env.clock.now());
    let person = Person {
        family_name: "千代".into(),
        given_name: "一".into(),
        family_kana: "チヨ".into(),
        given_kana: "ハジメ".into(),
        birth_date: jiff::civil::date(1990, 1, 1),
        sex: Sex::Male,
        relationship: Relationship::Householder,
        nationality: None,
    };
    let address = Address {
        postal_code: Some(CHIYODA.into()),
        address: address_of(CHIYODA, "1番1号"),
        katagaki: String::new(),
    };
    let other = PreApplication {
        tenant: TenantId::parse("131016").unwrap(),
        procedure: Procedure::MoveWithin,
        move_date: today,
        old_address: address.clone(),
        new_address: address,
        members: vec![person],
        procedures: vec![],
    };
    let sealed = keyring
        .seal(
            &other,
            Validity::starting(f.env.clock.now(), SignedDuration::from_hours(24)).unwrap(),
        )
        .await
        .unwrap();
    let (status, body) = f.open_text(&clerk, &sealed.text).await;
    assert_eq!(refusal(status, &body), "other_tenant");

    // A key id this municipality never had (sealed outside the keyring).
    let mut ours = other.clone();
    ours.tenant = tenant();
    let stray = QrKey::new(tenant(), 9, zeroize::Zeroizing::new([7u8; 32]));
    let unknown = madoguchi_qrseal::seal(
        &stray,
        Validity::starting(f.env.clock.now(), SignedDuration::from_hours(24)).unwrap(),
        &ours,
    )
    .unwrap();
    let (status, body) = f.open_text(&clerk, &unknown.text).await;
    assert_eq!(refusal(status, &body), "unknown_key");

    // A photo without a code.
    let (status, body) = f.open_photo(&clerk, b"GIF89a, not a photo").await;
    assert_eq!(refusal(status, &body), "photo_not_an_image");

    // A retired key: rotate, retire key 1; the code sealed under it is refused.
    let admin = f.admin();
    let auth = format!("Bearer {admin}");
    let (status, body) = f
        .json(
            "POST",
            &format!("/v1/tenants/{TENANT}/staff/qr/keys/rotate"),
            &[("authorization", &auth)],
            None,
        )
        .await;
    assert_eq!(status, StatusCode::OK, "{body}");
    assert_eq!(body["kid"], 2);
    let (status, body) = f
        .json(
            "POST",
            &format!("/v1/tenants/{TENANT}/staff/qr/keys/1/retire"),
            &[("authorization", &auth)],
            None,
        )
        .await;
    assert_eq!(status, StatusCode::OK, "{body}");
    let (status, body) = f.open_text(&clerk, &text).await;
    assert_eq!(refusal(status, &body), "retired_key");

    // Expired: a code of the new key, opened after its 14 days.
    let fresh = issued_code(&f).await;
    let fresh_text = fresh["text"].as_str().unwrap().to_owned();
    let (status, body) = f.open_text(&clerk, &fresh_text).await;
    assert_eq!(status, StatusCode::OK, "{body}");
    assert_eq!(body["kid"], 2);
    f.env.clock.advance(SignedDuration::from_hours(14 * 24));
    let (status, body) = f.open_text(&clerk, &fresh_text).await;
    assert_eq!(refusal(status, &body), "expired");

    // Each opening audited, in order, with the key id the code names.
    assert_eq!(
        f.openings().await,
        vec![
            ("tampered".to_owned(), json!(1)),
            ("not_ours".to_owned(), Value::Null),
            ("other_tenant".to_owned(), json!(1)),
            ("unknown_key".to_owned(), json!(9)),
            ("photo_not_an_image".to_owned(), Value::Null),
            ("retired_key".to_owned(), json!(1)),
            ("opened".to_owned(), json!(2)),
            ("expired".to_owned(), json!(2)),
        ]
    );

    // Only staff of this municipality open codes; nothing is recorded for the others.
    let citizen = f.token(Role::Citizen, TENANT, "citizen-1");
    let (status, _) = f.open_text(&citizen, &fresh_text).await;
    assert_eq!(status, StatusCode::FORBIDDEN);
    let elsewhere = f.token(Role::Staff, "131016", "clerk-9");
    let (status, _) = f.open_text(&elsewhere, &fresh_text).await;
    assert_eq!(status, StatusCode::FORBIDDEN);
    let (status, _) = f
        .json(
            "POST",
            &format!("/v1/tenants/{TENANT}/staff/qr/open"),
            &[],
            Some(json!({ "text": fresh_text })),
        )
        .await;
    assert_eq!(status, StatusCode::UNAUTHORIZED);
    assert_eq!(f.openings().await.len(), 8);
}

async fn unfinished_entry_expires_after_inactivity(env: Env) {
    let f = fixture(env).await;
    let (id, token) = f.create("tennyu").await;
    let entry = household(&f.env);
    // Each write moves the expiry: 29 minutes, a write, 29 more minutes is still fine.
    f.env.clock.advance(SignedDuration::from_mins(29));
    let (status, body) = f.put(&id, &token, &entry).await;
    assert_eq!(status, StatusCode::OK, "{body}");
    f.env.clock.advance(SignedDuration::from_mins(29));
    let (status, body) = f.get(&id, &token).await;
    assert_eq!(status, StatusCode::OK, "{body}");
    assert_eq!(body["entry"], entry);
    // A refused write is activity too.
    let mut bad = entry.clone();
    bad["move_date"] = json!("2026-02-30");
    let (status, _) = f.put(&id, &token, &bad).await;
    assert_eq!(status, StatusCode::UNPROCESSABLE_ENTITY);
    f.env.clock.advance(SignedDuration::from_mins(29));
    let (status, _) = f.get(&id, &token).await;
    assert_eq!(status, StatusCode::OK);
    // 30 minutes without a write: gone, for reading, writing and issuing alike.
    f.env.clock.advance(SignedDuration::from_mins(1));
    let (status, body) = f.get(&id, &token).await;
    assert_eq!(status, StatusCode::NOT_FOUND, "{body}");
    assert_eq!(
        body["type"],
        "https://madoguchi.jp/problems/pre-application-not-found"
    );
    let (status, _) = f.put(&id, &token, &entry).await;
    assert_eq!(status, StatusCode::NOT_FOUND);
    let (status, _) = f.issue(&id, &token).await;
    assert_eq!(status, StatusCode::NOT_FOUND);
    // And through the port as well.
    let got = f
        .items
        .get(&madoguchi_ports::Key::new(
            madoguchi_qr::preapp::entry_pk(&tenant(), &id),
            "_",
        ))
        .await
        .unwrap();
    assert!(got.is_none());
}

async fn one_code_per_entry_and_tokens_checked(env: Env) {
    let f = fixture(env).await;
    let (id, token) = f.create("tennyu").await;
    // Nothing entered yet: no code.
    let (status, body) = f.issue(&id, &token).await;
    assert_eq!(status, StatusCode::UNPROCESSABLE_ENTITY);
    assert_eq!(error_set(&body), set(&[("entry", "required")]));
    let (status, body) = f.put(&id, &token, &household(&f.env)).await;
    assert_eq!(status, StatusCode::OK, "{body}");

    // A wrong token, no token, an unknown id, an id that is none: the same 404, so nothing
    // confirms that the entry exists.
    let (_, other_token) = f.create("tennyu").await;
    let unknown = uuid::Uuid::now_v7().to_string();
    let uri = |id: &str| format!("/v1/tenants/{TENANT}/pre-applications/{id}");
    let mut answers = Vec::new();
    for (id, headers) in [
        (id.as_str(), vec![("x-entry-token", other_token.as_str())]),
        (id.as_str(), vec![("x-entry-token", "")]),
        (id.as_str(), vec![]),
        (unknown.as_str(), vec![("x-entry-token", token.as_str())]),
        ("not-an-id", vec![("x-entry-token", token.as_str())]),
    ] {
        for (method, path, body) in [
            ("GET", uri(id), None),
            ("PUT", uri(id), Some(household(&f.env))),
            ("POST", format!("{}/qr", uri(id)), None),
        ] {
            let (status, problem) = f.json(method, &path, &headers, body).await;
            assert_eq!(status, StatusCode::NOT_FOUND, "{method} {path} {problem}");
            answers.push(problem);
        }
    }
    assert!(answers.windows(2).all(|w| w[0] == w[1]), "{answers:?}");

    // The right token issues once; the second time there is nothing left.
    let (status, body) = f.issue(&id, &token).await;
    assert_eq!(status, StatusCode::OK, "{body}");
    let (status, body) = f.issue(&id, &token).await;
    assert_eq!(status, StatusCode::NOT_FOUND, "{body}");
    assert_eq!(body, answers[0]);
}

async fn postal_codes_and_address_checks(env: Env) {
    let f = fixture(env).await;
    let (status, body) = f
        .json(
            "GET",
            &format!("/v1/tenants/{TENANT}/postal-codes/595-0025"),
            &[],
            None,
        )
        .await;
    assert_eq!(status, StatusCode::OK, "{body}");
    assert_eq!(body["postal_code"], IZUMIOTSU);
    assert_eq!(body["in_municipality"], true);
    assert_eq!(body["entries"][0]["city"], "泉大津市");
    let (status, body) = f
        .json(
            "GET",
            &format!("/v1/tenants/{TENANT}/postal-codes/{CHIYODA}"),
            &[],
            None,
        )
        .await;
    assert_eq!(status, StatusCode::OK, "{body}");
    assert_eq!(body["in_municipality"], false);
    let (status, _) = f
        .json(
            "GET",
            &format!("/v1/tenants/{TENANT}/postal-codes/0000000"),
            &[],
            None,
        )
        .await;
    assert_eq!(status, StatusCode::NOT_FOUND);
    let (status, _) = f
        .json(
            "GET",
            &format!("/v1/tenants/{TENANT}/postal-codes/abc"),
            &[],
            None,
        )
        .await;
    assert_eq!(status, StatusCode::UNPROCESSABLE_ENTITY);

    // 転出: the old address must be ours; the postal code must match the address text; an
    // unknown code is said so; a hyphenated code is accepted and stored as 7 digits.
    let (id, token) = f.create("tenshutsu").await;
    let mut moving_out = household(&f.env);
    let ours = moving_out["new_address"].clone();
    moving_out["new_address"] = moving_out["old_address"].clone();
    moving_out["old_address"] = ours;
    let mut bad = moving_out.clone();
    bad["old_address"]["address"] = json!(address_of(SETAGAYA, "1番"));
    bad["new_address"]["postal_code"] = json!("0000000");
    let (status, problem) = f.put(&id, &token, &bad).await;
    assert_eq!(status, StatusCode::UNPROCESSABLE_ENTITY);
    assert_eq!(
        error_set(&problem),
        set(&[
            ("old_address.address", "postal_code_mismatch"),
            ("new_address.postal_code", "unknown"),
        ])
    );
    moving_out["old_address"]["postal_code"] = json!("595-0025");
    let (status, body) = f.put(&id, &token, &moving_out).await;
    assert_eq!(status, StatusCode::OK, "{body}");
    assert_eq!(body["entry"]["old_address"]["postal_code"], IZUMIOTSU);

    // 転入 with the new address outside: refused; an unknown procedure: refused.
    let (id, token) = f.create("tennyu").await;
    let (status, problem) = f.put(&id, &token, &moving_out).await;
    assert_eq!(status, StatusCode::UNPROCESSABLE_ENTITY);
    assert_eq!(
        error_set(&problem),
        set(&[("new_address.postal_code", "outside_municipality")])
    );
    let (status, problem) = f
        .json(
            "POST",
            &format!("/v1/tenants/{TENANT}/pre-applications"),
            &[],
            Some(json!({"procedure": "move_to_mars"})),
        )
        .await;
    assert_eq!(status, StatusCode::UNPROCESSABLE_ENTITY);
    assert_eq!(error_set(&problem), set(&[("procedure", "invalid")]));
}

async fn key_admin(env: Env) {
    let f = fixture(env).await;
    let admin = format!("Bearer {}", f.admin());
    let clerk = format!("Bearer {}", f.clerk());
    let keys = format!("/v1/tenants/{TENANT}/staff/qr/keys");
    let (status, body) = f
        .json("GET", &keys, &[("authorization", &admin)], None)
        .await;
    assert_eq!(status, StatusCode::OK, "{body}");
    assert_eq!(body["keys"], json!([]));
    // A clerk opens codes but does not manage keys.
    for (method, path) in [
        ("GET", keys.clone()),
        ("POST", format!("{keys}/rotate")),
        ("POST", format!("{keys}/1/retire")),
    ] {
        let (status, _) = f
            .json(method, &path, &[("authorization", &clerk)], None)
            .await;
        assert_eq!(status, StatusCode::FORBIDDEN, "{method} {path}");
    }
    let (status, body) = f
        .json(
            "POST",
            &format!("{keys}/rotate"),
            &[("authorization", &admin)],
            None,
        )
        .await;
    assert_eq!(status, StatusCode::OK, "{body}");
    assert_eq!(body["kid"], 1);
    let (status, body) = f
        .json(
            "POST",
            &format!("{keys}/rotate"),
            &[("authorization", &admin)],
            None,
        )
        .await;
    assert_eq!(body["kid"], 2, "{status} {body}");
    // The current key cannot be retired; an unknown one is not there.
    let (status, _) = f
        .json(
            "POST",
            &format!("{keys}/2/retire"),
            &[("authorization", &admin)],
            None,
        )
        .await;
    assert_eq!(status, StatusCode::CONFLICT);
    let (status, _) = f
        .json(
            "POST",
            &format!("{keys}/9/retire"),
            &[("authorization", &admin)],
            None,
        )
        .await;
    assert_eq!(status, StatusCode::NOT_FOUND);
    let (status, _) = f
        .json(
            "POST",
            &format!("{keys}/1/retire"),
            &[("authorization", &admin)],
            None,
        )
        .await;
    assert_eq!(status, StatusCode::OK);
    let (_, body) = f
        .json("GET", &keys, &[("authorization", &admin)], None)
        .await;
    let listed: Vec<(i64, bool, bool)> = body["keys"]
        .as_array()
        .unwrap()
        .iter()
        .map(|k| {
            (
                k["kid"].as_i64().unwrap(),
                k["current"].as_bool().unwrap(),
                !k["retired_at"].is_null(),
            )
        })
        .collect();
    assert_eq!(listed, vec![(1, false, true), (2, true, false)]);
    assert!(!body.to_string().contains("wrapped"));
    let changes: Vec<Value> = f
        .records()
        .await
        .into_iter()
        .filter(|r| r.event.action == AuditAction::KeyChange)
        .map(|r| Value::Object(r.event.detail))
        .collect();
    assert_eq!(
        changes,
        vec![
            json!({"qr_key": "rotate", "kid": 1}),
            json!({"qr_key": "rotate", "kid": 2}),
            json!({"qr_key": "retire", "kid": 1}),
        ]
    );
}

async fn household_too_large_for_one_code_is_told_at_entry(env: Env) {
    let f = fixture(env).await;
    let (id, token) = f.create("tennyu").await;
    let mut entry = household(&f.env);
    // Eight members with names of 30 distinct characters: DEFLATE cannot shrink them and the
    // code would need a version above 25.
    let text = |start: u32, step: u32, span: u32, k: u32| -> String {
        (0..30)
            .map(|i| char::from_u32(start + (k * 97 + i * step) % span).unwrap())
            .collect()
    };
    let members: Vec<Value> = (0..8)
        .map(|k| {
            json!({
                "family_name": text(0x4E00, 13, 5000, k),
                "given_name": text(0x5E00, 11, 5000, k),
                "family_kana": text(0x30A1, 7, 90, k),
                "given_kana": text(0x30A1, 11, 90, k),
                "birth_date": "1980-01-01",
                "sex": "female",
                "relationship": if k == 0 { "householder" } else { "cohabitant" },
            })
        })
        .collect();
    entry["members"] = json!(members);
    let (status, problem) = f.put(&id, &token, &entry).await;
    assert_eq!(status, StatusCode::UNPROCESSABLE_ENTITY, "{problem}");
    assert_eq!(error_set(&problem), set(&[("members", "too_large")]));
    // Three of them fit.
    entry["members"] = json!(members[..3]);
    let (status, problem) = f.put(&id, &token, &entry).await;
    assert_eq!(status, StatusCode::OK, "{problem}");
    let (status, issued) = f.issue(&id, &token).await;
    assert_eq!(status, StatusCode::OK, "{issued}");
}

contract_tests!(
    household_too_large_for_one_code_is_told_at_entry,
    household_from_entry_to_counter,
    refused_codes_are_audited,
    unfinished_entry_expires_after_inactivity,
    one_code_per_entry_and_tokens_checked,
    postal_codes_and_address_checks,
    key_admin,
);
