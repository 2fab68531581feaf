//! The authorization matrix: every route of the API × every kind of caller, compared with the
//! expected table kept in `docs/authz-matrix.md`.
//!
//! Callers: no token, an expired token, a token for another audience, an unsigned token
//! (`alg: none`), a token signed by another key, a citizen, staff of the department that owns
//! the form, staff of another department, staff of another tenant, the tenant administrator.
//!
//! A cell is `ok` when the request got past authentication and authorization (any answer but
//! 401, 403 or 404: a 409 from a deliberately stale `If-Match` counts as `ok`, since it comes
//! after the check), else the status. Requests carry valid bodies and `If-Match: 999`, so an
//! allowed change is refused as stale and the data stays as set up.
//!
//! Regenerate the table after a deliberate change with
//! `MADOGUCHI_WRITE_MATRIX=1 cargo test -p madoguchi-host --test authz_matrix` and review the
//! diff: every new `ok` is a new permission.

use std::collections::BTreeMap;
use std::time::Duration;

use base64::Engine;
use madoguchi_domain::tenant::TenantId;
use madoguchi_host::{BackendKind, HostConfig};
use madoguchi_http::Authenticator;
use madoguchi_http::auth::Role;
use madoguchi_http::dev_issuer::{DEV_AUDIENCE, DEV_ISSUER, DevIssuer, DevTokenRequest};
use serde_json::{Value, json};

const TENANT: &str = "272060";
const OTHER_TENANT: &str = "131016";
const SLUG: &str = "tenshutsu";
const TABLE: &str = "docs/authz-matrix.md";

const CALLERS: [&str; 10] = [
    "none",
    "expired",
    "wrong_audience",
    "alg_none",
    "other_key",
    "citizen",
    "staff_dept",
    "staff_other_dept",
    "staff_other_tenant",
    "admin",
];

struct Tokens(BTreeMap<&'static str, Option<String>>);

fn request(tenant: &str, sub: &str, role: Role, depts: &[&str], ttl: i64) -> DevTokenRequest {
    DevTokenRequest {
        sub: sub.into(),
        tenant: TenantId::parse(tenant).unwrap(),
        role,
        depts: depts.iter().map(|d| d.to_string()).collect(),
        ttl_seconds: ttl,
        now: jiff::Timestamp::now().as_second(),
        email: Some(format!("{sub}@example.jp")),
    }
}

fn tokens(dev: &DevIssuer) -> Tokens {
    let now = jiff::Timestamp::now().as_second();
    let claims = |aud: &str| {
        json!({"iss": DEV_ISSUER, "aud": aud, "sub": "clerk-1", "tenant": TENANT, "role": "staff",
               "depts": ["shimin-ka"], "iat": now, "exp": now + 600})
    };
    let b64 = |v: &Value| base64::engine::general_purpose::URL_SAFE_NO_PAD.encode(v.to_string());
    let unsigned = format!(
        "{}.{}.",
        b64(&json!({"alg": "none", "typ": "JWT", "kid": dev.kid()})),
        b64(&claims(DEV_AUDIENCE))
    );
    let stranger = DevIssuer::ephemeral();
    let mut t = BTreeMap::new();
    t.insert("none", None);
    t.insert(
        "expired",
        Some(dev.mint(&request(
            TENANT,
            "clerk-1",
            Role::Staff,
            &["shimin-ka"],
            -3600,
        ))),
    );
    t.insert(
        "wrong_audience",
        Some(dev.mint_claims(&claims("someone-else"))),
    );
    t.insert("alg_none", Some(unsigned));
    t.insert(
        "other_key",
        Some(stranger.mint(&request(
            TENANT,
            "clerk-1",
            Role::Staff,
            &["shimin-ka"],
            600,
        ))),
    );
    t.insert(
        "citizen",
        Some(dev.mint(&request(TENANT, "citizen-1", Role::Citizen, &[], 600))),
    );
    t.insert(
        "staff_dept",
        Some(dev.mint(&request(
            TENANT,
            "clerk-1",
            Role::Staff,
            &["shimin-ka"],
            600,
        ))),
    );
    t.insert(
        "staff_other_dept",
        Some(dev.mint(&request(
            TENANT,
            "welfare-1",
            Role::Staff,
            &["fukushi"],
            600,
        ))),
    );
    t.insert(
        "staff_other_tenant",
        Some(dev.mint(&request(
            OTHER_TENANT,
            "clerk-x",
            Role::Staff,
            &["shimin-ka"],
            600,
        ))),
    );
    t.insert(
        "admin",
        Some(dev.mint(&request(TENANT, "admin-1", Role::Admin, &[], 600))),
    );
    Tokens(t)
}

struct Ids {
    application: String,
    staff_file: String,
}

fn definition() -> Value {
    json!({
        "title": "転出届",
        "access": "either",
        "notify": ["received"],
        "items": [
            {"id": "applicant", "type": "name", "label": "氏名", "required": true},
            {"id": "my_number", "type": "my_number", "label": "個人番号", "required": true},
            {"id": "phone", "type": "phone", "label": "電話番号", "required": true}
        ]
    })
}

async fn call(
    base: &str,
    token: Option<&str>,
    method: &str,
    path: &str,
    body: Option<Value>,
    headers: &[(&str, &str)],
) -> (u16, String) {
    let c = reqwest::Client::new();
    let mut req = c.request(method.parse().unwrap(), format!("{base}{path}"));
    if let Some(t) = token {
        req = req.bearer_auth(t);
    }
    for (k, v) in headers {
        req = req.header(*k, *v);
    }
    if let Some(b) = body {
        req = req.json(&b);
    }
    let res = req.send().await.unwrap();
    let status = res.status().as_u16();
    (status, res.text().await.unwrap())
}

async fn setup(base: &str, t: &Tokens) -> Ids {
    let admin = t.0["admin"].as_deref();
    let clerk = t.0["staff_dept"].as_deref();
    let citizen = t.0["citizen"].as_deref();
    let v1 = format!("/v1/tenants/{TENANT}");
    let org = json!({"departments": [
        {"id": "shimin", "name": "市民部"},
        {"id": "shimin-ka", "name": "市民課", "parent": "shimin", "resident_lookup": true},
        {"id": "fukushi", "name": "福祉課"}
    ]});
    let (s, b) = call(
        base,
        admin,
        "PUT",
        &format!("{v1}/staff/org"),
        Some(org),
        &[("if-match", "0")],
    )
    .await;
    assert_eq!(s, 200, "{b}");
    let create = json!({"slug": SLUG, "definition": definition(), "department": "shimin-ka"});
    let (s, b) = call(
        base,
        clerk,
        "POST",
        &format!("{v1}/manage/forms"),
        Some(create),
        &[],
    )
    .await;
    assert_eq!(s, 201, "{b}");
    let (s, b) = call(
        base,
        clerk,
        "POST",
        &format!("{v1}/manage/forms/{SLUG}/publish"),
        None,
        &[("if-match", "1")],
    )
    .await;
    assert_eq!(s, 200, "{b}");
    // 市民部 (above 市民課) may reveal 個人番号.
    let grants = json!({"owner": "shimin-ka", "grants": {
        "shimin-ka": ["view", "process", "export", "manage"], "shimin": ["decrypt"]}});
    let (s, b) = call(
        base,
        admin,
        "PUT",
        &format!("{v1}/staff/forms/{SLUG}/grants"),
        Some(grants),
        &[("if-match", "1")],
    )
    .await;
    assert_eq!(s, 200, "{b}");
    let answers = json!({"applicant": {"family": "山田", "given": "花子"}, "my_number": "123456789018", "phone": "0725-33-1131"});
    let (s, b) = call(
        base,
        citizen,
        "POST",
        &format!("{v1}/forms/{SLUG}/applications"),
        Some(json!({"form_version": 1, "answers": answers})),
        &[("idempotency-key", "matrix-1")],
    )
    .await;
    assert_eq!(s, 201, "{b}");
    let application = serde_json::from_str::<Value>(&b).unwrap()["application_id"]
        .as_str()
        .unwrap()
        .to_owned();
    // The citizen also keeps a draft of the same form.
    let (s, b) = call(
        base,
        citizen,
        "PUT",
        &format!("{v1}/forms/{SLUG}/draft"),
        Some(json!({"form_version": 1, "answers": {"phone": "0725-33-1131"}})),
        &[],
    )
    .await;
    assert_eq!(s, 200, "{b}");
    let res = reqwest::Client::new()
        .post(format!(
            "{base}{v1}/staff/applications/{application}/staff-files"
        ))
        .bearer_auth(clerk.unwrap())
        .header("x-file-name", "memo.pdf")
        .header("content-type", "application/pdf")
        .body(
            b"%PDF-1.7\n%\xe2\xe3\xcf\xd3\n1 0 obj\n<<>>\nendobj\ntrailer\n<<>>\n%%EOF\n".to_vec(),
        )
        .send()
        .await
        .unwrap();
    let status = res.status().as_u16();
    let text = res.text().await.unwrap();
    assert_eq!(status, 201, "{text}");
    let staff_file = serde_json::from_str::<Value>(&text).unwrap()["id"]
        .as_str()
        .unwrap()
        .to_owned();
    Ids {
        application,
        staff_file,
    }
}

/// The concrete request for a route: path parameters filled in, a valid body, and a stale
/// `If-Match` on changes.
fn concrete(method: &str, template: &str, ids: &Ids) -> (String, Option<Value>) {
    let path = template
        .replace("{tenant}", TENANT)
        .replace("{slug}", SLUG)
        .replace("{id}", &ids.application)
        .replace("{file}", &ids.staff_file)
        .replace("{attachment}", "01900000-0000-7000-8000-000000000000")
        .replace("{version}", "1")
        .replace("{sub}", "clerk-9")
        .replace("{atena}", "0000000001")
        .replace("{event}", "tennyu")
        .replace("{kid}", "1")
        .replace("{code}", "5950025")
        .replace("{verification}", "01900000-0000-7000-8000-000000000000")
        .replace("{pm}", "pm_card_visa")
        .replace("payments.csv", "payments.csv?date=2026-12-01");
    let body = match (method, template) {
        ("POST", t) if t.ends_with("/manage/forms") => {
            Some(json!({"slug": SLUG, "definition": definition(), "department": "shimin-ka"}))
        }
        ("PUT", t) if t.ends_with("/manage/forms/{slug}") => Some(definition()),
        ("POST", t) if t.ends_with("/status") => Some(json!({"to": "in_review"})),
        ("POST", t) if t.ends_with("/decrypt") => {
            Some(json!({"field": "my_number", "reason": "identity_check"}))
        }
        ("POST", t) if t.ends_with("/memos") => Some(json!({"text": "確認済み"})),
        ("POST", t) if t.ends_with("/residents/search") => {
            Some(json!({"name": "山田花子", "birth_date": "1990-01-01"}))
        }
        ("POST", t) if t.ends_with("/linkage-exports") => Some(json!({"system": "jumin"})),
        ("POST", t) if t.ends_with("/start") => Some(json!({"channel": "web"})),
        ("POST", t) if t.ends_with("/evaluate") || t.ends_with("/print") => {
            Some(json!({"answers": {}}))
        }
        ("PUT", t) if t.ends_with("/staff/guide") => Some(json!({"schema": 1})),
        ("POST", t) if t.ends_with("/staff/guide/visits") => Some(json!({"code": "MG1:x"})),
        ("POST", t) if t.ends_with("/ticks") => Some(json!({"procedure": "x", "done": true})),
        ("POST", t) if t.ends_with("/staff/qr/open") => Some(json!({"text": "MDG1:x"})),
        ("POST", t) if t.ends_with("/pre-applications") => Some(json!({"procedure": "tennyu"})),
        ("PUT", t) if t.ends_with("/pre-applications/{id}") => Some(json!({})),
        ("POST", t) if t.ends_with("/exports") => Some(json!({
            "form": SLUG, "from": "2026-01-01", "to": "2026-12-31", "columns": ["receipt"]
        })),
        ("PUT", t) if t.ends_with("/staff/org") => Some(json!({"departments": []})),
        ("PUT", t) if t.ends_with("/members/{sub}") => {
            Some(json!({"depts": ["fukushi"], "active": true}))
        }
        ("PUT", t) if t.ends_with("/grants") => {
            Some(json!({"owner": "shimin-ka", "grants": {"shimin-ka": ["view"]}}))
        }
        ("PUT", t) if t.ends_with("/draft") => {
            Some(json!({"form_version": 1, "answers": {"phone": "0725-33-1131"}}))
        }
        ("POST", t) if t.ends_with("/applications") => {
            Some(json!({"form_version": 1, "answers": {}}))
        }
        ("POST", t) if t.ends_with("/confirm") && t.contains("email-verifications") => {
            Some(json!({"code": "000000"}))
        }
        ("POST", t) if t.ends_with("/email-verifications") => {
            Some(json!({"email": "matrix@example.jp"}))
        }
        ("POST", t) if t.ends_with("/confirm") => Some(json!({"form_version": 1, "answers": {}})),
        ("POST", t) if t.ends_with("/attachments") => {
            Some(json!({"field": "phone", "file_name": "a.pdf", "size": 10}))
        }
        ("POST", t) if t.ends_with("/signing-sessions") => {
            Some(json!({"form_version": 1, "answers": {}}))
        }
        ("POST", t) if t.ends_with("/esign/sessions") => Some(json!({"form": SLUG})),
        ("POST", t) if t.ends_with("/signature") => Some(json!({"signature": "MA=="})),
        ("POST" | "PUT", t)
            if t.ends_with("/auth/card/token") || t.ends_with("/auth/card/link") =>
        {
            Some(json!({"challenge_id": "x", "certificate": "MA==", "signature": "MA=="}))
        }
        ("PUT", t) if t.ends_with("/fee") => Some(json!({"amount": 1000, "reason": "matrix"})),
        ("POST", t) if t.ends_with("/payment") => Some(json!({"payment_method": "pm_card_visa"})),
        ("PUT", t) if t.ends_with("/correction") => {
            Some(json!({"answers": {"phone": "0725-33-1132"}}))
        }
        _ => None,
    };
    (path, body)
}

fn cell(status: u16) -> String {
    match status {
        401 | 403 | 404 => status.to_string(),
        _ => "ok".into(),
    }
}

fn render(rows: &BTreeMap<String, BTreeMap<String, String>>) -> String {
    let mut out = String::from(
        "# Authorization matrix\n\n\
         Every API route × every kind of caller, as `shared/host/tests/authz_matrix.rs` \
         measures it against the running host (embedded adapters). `ok`: the request passed \
         authentication and authorization; `401`: no valid credential; `403`: authenticated \
         but not allowed; `404`: the resource does not exist *for this caller* (an application \
         of another department or tenant is never confirmed to exist).\n\n\
         The decisions come from one pure function, `madoguchi_domain::authz::authorize`; \
         this table is its contract over HTTP. The test fails on any difference, so a new \
         permission shows up here as a reviewed change.\n\n",
    );
    out.push_str(&format!("| route | {} |\n", CALLERS.join(" | ")));
    out.push_str(&format!("|---|{}\n", "---|".repeat(CALLERS.len())));
    for (route, cells) in rows {
        let line: Vec<&str> = CALLERS.iter().map(|c| cells[*c].as_str()).collect();
        out.push_str(&format!("| `{route}` | {} |\n", line.join(" | ")));
    }
    out
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn every_route_for_every_caller() {
    let dir = tempfile::tempdir().unwrap();
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let base = format!("http://{}", listener.local_addr().unwrap());
    let config = HostConfig {
        addr: listener.local_addr().unwrap(),
        data_dir: dir.path().to_owned(),
        backend: BackendKind::Embedded,
        endpoint: None,
        tenant: TenantId::parse(TENANT).unwrap(),
        public_url: Some(base.clone()),
        inbox_interval: Duration::from_secs(3600),
        outbound_interval: Duration::from_secs(3600),
        payments_interval: Duration::from_secs(3600),
        aws_prefix: "matrix".into(),
    };
    let wiring = madoguchi_host::wire(&config, &base).await.unwrap();
    let dev = DevIssuer::ephemeral();
    let auth = Authenticator::shared(vec![dev.trusted()]);
    let app = madoguchi_host::router(&wiring, auth, Some(&dev));
    tokio::spawn(async move { axum::serve(listener, app).await.unwrap() });

    let t = tokens(&dev);
    let ids = setup(&base, &t).await;

    let doc = serde_json::to_value(madoguchi_host::openapi()).unwrap();
    let mut rows: BTreeMap<String, BTreeMap<String, String>> = BTreeMap::new();
    let paths = doc["paths"].as_object().unwrap();
    // Reads first, deletions last, so a delete does not turn later reads into 404s.
    for method in ["get", "put", "post", "patch", "delete"] {
        for (template, ops) in paths {
            if ops.get(method).is_none() {
                continue;
            }
            let m = method.to_uppercase();
            let (path, body) = concrete(&m, template, &ids);
            let mut cells = BTreeMap::new();
            for caller in CALLERS {
                let (status, _) = call(
                    &base,
                    t.0[caller].as_deref(),
                    &m,
                    &path,
                    body.clone(),
                    &[("if-match", "999")],
                )
                .await;
                cells.insert(caller.to_owned(), cell(status));
            }
            rows.insert(format!("{m} {template}"), cells);
        }
    }
    let actual = render(&rows);
    let file = std::path::Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("../..")
        .join(TABLE);
    if std::env::var_os("MADOGUCHI_WRITE_MATRIX").is_some() {
        std::fs::write(&file, &actual).unwrap();
    }
    let expected = std::fs::read_to_string(&file).unwrap_or_default();
    if expected != actual {
        // Say exactly which cells differ, most dangerous first.
        let mut report = Vec::new();
        let want: BTreeMap<String, Vec<String>> = expected
            .lines()
            .filter(|l| l.starts_with("| `"))
            .map(|l| {
                let parts: Vec<String> = l.split('|').map(|p| p.trim().to_owned()).collect();
                (
                    parts[1].trim_matches('`').to_owned(),
                    parts[2..2 + CALLERS.len()].to_vec(),
                )
            })
            .collect();
        for (route, cells) in &rows {
            for (i, caller) in CALLERS.iter().enumerate() {
                let got = &cells[*caller];
                let exp = want.get(route).map(|w| w[i].as_str()).unwrap_or("(no row)");
                if got != exp {
                    let kind = if got == "ok" {
                        "UNEXPECTED ALLOW"
                    } else {
                        "difference"
                    };
                    report.push(format!(
                        "{kind}: {route} as {caller}: expected {exp}, got {got}"
                    ));
                }
            }
        }
        for route in want.keys() {
            if !rows.contains_key(route) {
                report.push(format!("route in the table but not served: {route}"));
            }
        }
        report.sort_by_key(|l| !l.starts_with("UNEXPECTED"));
        panic!(
            "the authorization matrix differs from {TABLE}:\n{}\n\nactual table:\n{actual}",
            report.join("\n")
        );
    }
    let allows = rows
        .values()
        .flat_map(|c| c.values())
        .filter(|c| c.as_str() == "ok")
        .count();
    assert!(allows > 0);
    drop(wiring);
}
