//! The navigator through its router, on both adapter sets (embedded SQLite, and the AWS
//! adapters on moto): a citizen walks the 転入 guide of the standard rules, counts, staff
//! saving guides, counter visits, and who may reach the staff routes.

use std::sync::Arc;

use axum::body::Body;
use axum::http::{Request, StatusCode};
use madoguchi_audit::AuditLog;
use madoguchi_domain::tenant::TenantId;
use madoguchi_guide::{GuideCode, STANDARD_JSON};
use madoguchi_http::Authenticator;
use madoguchi_http::auth::Role;
use madoguchi_http::dev_issuer::{DevIssuer, DevTokenRequest};
use madoguchi_navigator::{NavigatorState, router};
use madoguchi_ports::{ItemStore, UuidV7Gen};
use madoguchi_tests::{Env, contract_tests};
use serde_json::{Value, json};
use tower::ServiceExt;

const TENANT: &str = "272060";
const OTHER_TENANT: &str = "131016";
/// 00:30 on 2026-06-01 in Japan, still 31 May in UTC: counts go to the Japan day.
const NOW: &str = "2026-05-31T15:30:00Z";
const TODAY: &str = "2026-06-01";

struct Fx {
    env: Env,
    app: axum::Router,
    audit: AuditLog,
    issuer: DevIssuer,
}

struct Res {
    status: StatusCode,
    headers: axum::http::HeaderMap,
    bytes: Vec<u8>,
}

impl Res {
    fn json(&self) -> Value {
        serde_json::from_slice(&self.bytes).unwrap_or(Value::Null)
    }
    fn text(&self) -> String {
        String::from_utf8(self.bytes.clone()).unwrap()
    }
    fn header(&self, name: &str) -> &str {
        self.headers
            .get(name)
            .and_then(|v| v.to_str().ok())
            .unwrap_or("")
    }
}

async fn fixture(env: Env) -> Fx {
    env.clock.set(NOW.parse().unwrap());
    let items: Arc<dyn ItemStore> = env.items().await;
    let issuer = DevIssuer::ephemeral();
    let audit = AuditLog::new(items.clone(), env.clock.clone());
    let state = NavigatorState {
        items,
        audit: audit.clone(),
        auth: Authenticator::shared(vec![issuer.trusted()]),
        clock: env.clock.clone(),
        ids: Arc::new(UuidV7Gen),
    };
    Fx {
        env,
        app: router(state),
        audit,
        issuer,
    }
}

impl Fx {
    fn token(&self, sub: &str, role: Role, tenant: &str) -> String {
        self.issuer.mint(&DevTokenRequest {
            sub: sub.into(),
            tenant: TenantId::parse(tenant).unwrap(),
            role,
            depts: vec![],
            ttl_seconds: 3600,
            now: jiff::Timestamp::now().as_second(),
            email: None,
        })
    }
    fn admin(&self) -> String {
        self.token("admin-1", Role::Admin, TENANT)
    }
    fn clerk(&self) -> String {
        self.token("clerk-1", Role::Staff, TENANT)
    }

    async fn call(
        &self,
        method: &str,
        path: &str,
        token: Option<&str>,
        if_match: Option<&str>,
        body: Option<Vec<u8>>,
    ) -> Res {
        let mut req = Request::builder()
            .method(method)
            .uri(format!("/v1/tenants/{TENANT}{path}"));
        if let Some(t) = token {
            req = req.header("authorization", format!("Bearer {t}"));
        }
        if let Some(v) = if_match {
            req = req.header("if-match", v);
        }
        let body = match body {
            Some(b) => {
                req = req.header("content-type", "application/json");
                Body::from(b)
            }
            None => Body::empty(),
        };
        let res = self
            .app
            .clone()
            .oneshot(req.body(body).unwrap())
            .await
            .unwrap();
        let status = res.status();
        let headers = res.headers().clone();
        let bytes = axum::body::to_bytes(res.into_body(), usize::MAX)
            .await
            .unwrap()
            .to_vec();
        Res {
            status,
            headers,
            bytes,
        }
    }

    async fn post(&self, path: &str, token: Option<&str>, body: Value) -> Res {
        self.call(
            "POST",
            path,
            token,
            None,
            Some(body.to_string().into_bytes()),
        )
        .await
    }

    async fn get(&self, path: &str, token: Option<&str>) -> Res {
        self.call("GET", path, token, None, None).await
    }

    async fn counts(&self, from: &str, to: &str) -> Value {
        let res = self
            .get(
                &format!("/staff/guide/counts?from={from}&to={to}"),
                Some(&self.clerk()),
            )
            .await;
        assert_eq!(res.status, StatusCode::OK, "{}", res.text());
        res.json()
    }
}

/// The done-when household's answer to each question the guide asks.
fn answer(question: &str) -> Value {
    match question {
        "move_date" => json!("令和8年6月1日"),
        "household" => json!([
            { "birth_date": "1956-03-10", "relationship": "head", "nationality": "japanese", "insurance": "national" },
            { "birth_date": "2019-11-20", "relationship": "grandchild", "nationality": "japanese", "insurance": "national" }
        ]),
        "school" => json!("public"),
        "mynumber_card" | "care_certified" | "seal" => json!(false),
        other => panic!("unexpected question {other}"),
    }
}

/// Answers the 転入 guide step by step, as the SPA does; returns the last step.
async fn walk_tennyu(f: &Fx) -> Value {
    let mut answers = json!({});
    let mut last_progress = 0;
    for _ in 0..20 {
        let res = f
            .post(
                "/guide/events/tennyu/evaluate",
                None,
                json!({ "answers": answers }),
            )
            .await;
        assert_eq!(res.status, StatusCode::OK, "{}", res.text());
        assert_eq!(res.header("cache-control"), "no-store");
        let step = res.json();
        let out = &step["outcome"];
        let progress = out["progress"].as_u64().unwrap();
        assert!(progress >= last_progress, "progress went down: {step}");
        last_progress = progress;
        match out["next_question"]["id"].as_str() {
            Some(q) => {
                assert!(progress < 100);
                assert!(step.get("code").is_none(), "a code before the end");
                answers[q] = answer(q);
            }
            None => return step,
        }
    }
    panic!("the guide did not end");
}

fn ids(step: &Value) -> Vec<String> {
    step["outcome"]["procedures"]
        .as_array()
        .unwrap()
        .iter()
        .map(|p| p["id"].as_str().unwrap().to_owned())
        .collect()
}

async fn a_citizen_walks_the_tennyu_guide_to_a_code(env: Env) {
    let f = fixture(env).await;
    let list = f.get("/guide", None).await;
    assert_eq!(list.status, StatusCode::OK);
    assert!(
        list.json()["events"]
            .as_array()
            .unwrap()
            .iter()
            .any(|e| e["id"] == "tennyu")
    );

    let started = f
        .post(
            "/guide/events/tennyu/start",
            None,
            json!({"channel": "web"}),
        )
        .await;
    assert_eq!(started.status, StatusCode::OK, "{}", started.text());
    let started = started.json();
    assert_eq!(started["date"], TODAY);
    assert_eq!(started["outcome"]["progress"], 0);
    assert_eq!(started["outcome"]["next_question"]["id"], "move_date");

    let last = walk_tennyu(&f).await;
    let out = &last["outcome"];
    assert_eq!(out["complete"], true);
    assert_eq!(out["progress"], 100);
    let got = ids(&last);
    for want in [
        "jumin_idou",
        "kokuho_kanyu",
        "kaigo_1go",
        "jidou_teate",
        "shugaku",
        "kodomo_iryo",
    ] {
        assert!(got.contains(&want.to_owned()), "missing {want} in {got:?}");
    }
    for not in ["kouki", "nenkin_1go"] {
        assert!(
            !got.contains(&not.to_owned()),
            "unexpected {not} in {got:?}"
        );
    }
    assert_eq!(out["procedures"][0]["due"], "2026-06-15");
    assert_eq!(last["version"], 0);
    let code = last["code"].as_str().unwrap();
    assert!(code.starts_with("MG1:272060:0:TENNYU:"), "{code}");
    let decoded = GuideCode::decode(code).unwrap();
    assert_eq!(decoded.procedures, got);
    assert!(last["qr_svg"].as_str().unwrap().starts_with("<svg"));

    // The printable page carries the procedures, the code and its QR.
    let mut answers = json!({});
    for q in [
        "move_date",
        "household",
        "mynumber_card",
        "school",
        "care_certified",
        "seal",
    ] {
        answers[q] = answer(q);
    }
    let page = f
        .post(
            "/guide/events/tennyu/print",
            None,
            json!({ "answers": answers }),
        )
        .await;
    assert_eq!(page.status, StatusCode::OK);
    assert_eq!(page.header("content-type"), "text/html; charset=utf-8");
    let html = page.text();
    assert!(html.contains("介護保険"), "{html}");
    assert!(html.contains(code));
    assert!(html.contains("<svg"));

    // Exactly one 転入 on web.
    let report = f.counts(TODAY, TODAY).await;
    assert_eq!(
        report["rows"],
        json!([{"date": TODAY, "event": "tennyu", "event_name": "転入（市外から引っ越してきた）", "channel": "web", "count": 1}])
    );
    assert_eq!(report["total"], 1);

    // Answers are not kept: no birth date is anywhere in the embedded store's files.
    if let Some(backend) = f.env.embedded_backend() {
        let mut stack = vec![backend.data_dir().to_path_buf()];
        let mut files = 0;
        while let Some(path) = stack.pop() {
            if path.is_dir() {
                for entry in std::fs::read_dir(&path).unwrap() {
                    stack.push(entry.unwrap().path());
                }
            } else {
                files += 1;
                let bytes = std::fs::read(&path).unwrap();
                for secret in ["1956-03-10", "2019-11-20"] {
                    assert!(
                        !bytes.windows(secret.len()).any(|w| w == secret.as_bytes()),
                        "{secret} in {}",
                        path.display()
                    );
                }
            }
        }
        assert!(files > 0);
    }
}

async fn bad_input_is_a_422_never_a_500(env: Env) {
    let f = fixture(env).await;
    let path = "/guide/events/tennyu/evaluate";
    // Not JSON at all, with or without a content type.
    for body in [
        b"{not json".to_vec(),
        b"\xff\xfe".to_vec(),
        b"[1,2]".to_vec(),
    ] {
        let res = f.call("POST", path, None, None, Some(body)).await;
        assert_eq!(
            res.status,
            StatusCode::UNPROCESSABLE_ENTITY,
            "{}",
            res.text()
        );
        assert_eq!(res.header("content-type"), "application/problem+json");
    }
    // Bad answers: Japanese messages per field, the input not repeated.
    let res = f
        .post(
            path,
            None,
            json!({"answers": {"move_date": "2026-13-45", "household": [
                {"birth_date": "1990-01-01", "relationship": "cousin", "nationality": "japanese", "insurance": "national"}
            ], "nonsense": 1}}),
        )
        .await;
    assert_eq!(
        res.status,
        StatusCode::UNPROCESSABLE_ENTITY,
        "{}",
        res.text()
    );
    let problem = res.json();
    let fields: Vec<&str> = problem["errors"]
        .as_array()
        .unwrap()
        .iter()
        .map(|e| e["field"].as_str().unwrap())
        .collect();
    assert!(fields.contains(&"move_date"), "{problem}");
    assert!(fields.contains(&"nonsense"), "{problem}");
    assert!(!res.text().contains("2026-13-45"));
    assert!(!res.text().contains("cousin"));
    let res = f.post(path, None, json!({"answers": "everything"})).await;
    assert_eq!(res.status, StatusCode::UNPROCESSABLE_ENTITY);
    // Unknown event, unknown tenant.
    let res = f.post("/guide/events/nope/evaluate", None, json!({})).await;
    assert_eq!(res.status, StatusCode::NOT_FOUND);
    let res = f
        .app
        .clone()
        .oneshot(
            Request::get("/v1/tenants/123456/guide")
                .body(Body::empty())
                .unwrap(),
        )
        .await
        .unwrap();
    assert_eq!(res.status(), StatusCode::NOT_FOUND);
    // An empty body is "no answers yet".
    let res = f.call("POST", path, None, None, Some(vec![])).await;
    assert_eq!(res.status, StatusCode::OK);
    assert_eq!(res.json()["outcome"]["progress"], 0);
}

async fn counts_per_event_and_channel_are_exact(env: Env) {
    let f = fixture(env).await;
    for (event, channel) in [("tennyu", "web"), ("tennyu", "line"), ("shussei", "kiosk")] {
        let res = f
            .post(
                &format!("/guide/events/{event}/start"),
                None,
                json!({"channel": channel}),
            )
            .await;
        assert_eq!(res.status, StatusCode::OK, "{}", res.text());
    }
    let res = f
        .post(
            "/guide/events/tennyu/start",
            None,
            json!({"channel": "fax"}),
        )
        .await;
    assert_eq!(res.status, StatusCode::UNPROCESSABLE_ENTITY);
    assert_eq!(res.json()["errors"][0]["field"], "channel");
    let res = f
        .post("/guide/events/nope/start", None, json!({"channel": "web"}))
        .await;
    assert_eq!(res.status, StatusCode::NOT_FOUND);

    // Twenty at once count twenty.
    let mut set = tokio::task::JoinSet::new();
    for _ in 0..20 {
        let app = f.app.clone();
        set.spawn(async move {
            let req = Request::post(format!("/v1/tenants/{TENANT}/guide/events/tenkyo/start"))
                .header("content-type", "application/json")
                .body(Body::from(r#"{"channel":"kiosk"}"#))
                .unwrap();
            app.oneshot(req).await.unwrap().status()
        });
    }
    while let Some(status) = set.join_next().await {
        assert_eq!(status.unwrap(), StatusCode::OK);
    }

    let report = f.counts("2026-05-01", TODAY).await;
    let mut rows: Vec<(String, String, i64)> = report["rows"]
        .as_array()
        .unwrap()
        .iter()
        .map(|r| {
            assert_eq!(r["date"], TODAY);
            (
                r["event"].as_str().unwrap().to_owned(),
                r["channel"].as_str().unwrap().to_owned(),
                r["count"].as_i64().unwrap(),
            )
        })
        .collect();
    // Rows come by day, event, then channel in the order web, line, kiosk.
    assert_eq!(rows[2].1, "web");
    rows.sort();
    let mut want = vec![
        ("shussei".to_owned(), "kiosk".to_owned(), 1),
        ("tenkyo".to_owned(), "kiosk".to_owned(), 20),
        ("tennyu".to_owned(), "line".to_owned(), 1),
        ("tennyu".to_owned(), "web".to_owned(), 1),
    ];
    want.sort();
    assert_eq!(rows, want);
    assert_eq!(report["total"], 23);

    // The day before (in Japan) saw nothing.
    let report = f.counts("2026-05-31", "2026-05-31").await;
    assert_eq!(report["rows"], json!([]));

    // CSV for Excel.
    let csv = f
        .get(
            &format!("/staff/guide/counts.csv?from={TODAY}&to={TODAY}"),
            Some(&f.clerk()),
        )
        .await;
    assert_eq!(csv.status, StatusCode::OK);
    assert_eq!(csv.header("content-type"), "text/csv; charset=utf-8");
    assert!(csv.bytes.starts_with(b"\xef\xbb\xbf"));
    let text = String::from_utf8(csv.bytes[3..].to_vec()).unwrap();
    let lines: Vec<&str> = text.split("\r\n").collect();
    assert_eq!(lines[0], "日付,ライフイベント,経路,件数");
    assert!(
        lines.contains(&"2026-06-01,転入（市外から引っ越してきた）,Web,1"),
        "{text}"
    );
    assert!(lines.contains(&"2026-06-01,転居（市内で引っ越した）,キオスク端末,20"));
    assert_eq!(lines.len(), 6, "{text}"); // header, 4 rows, the empty piece after the last CRLF

    // Ranges.
    for (query, field) in [
        ("from=2026-06-02&to=2026-06-01", "to"),
        ("from=2025-01-01&to=2026-06-01", "to"),
        ("to=2026-06-01", "from"),
        ("from=2026-6-1&to=2026-06-01", "from"),
    ] {
        let res = f
            .get(&format!("/staff/guide/counts?{query}"), Some(&f.clerk()))
            .await;
        assert_eq!(res.status, StatusCode::UNPROCESSABLE_ENTITY, "{query}");
        assert_eq!(res.json()["errors"][0]["field"], field, "{query}");
    }
    // A leap year's 366 days are fine.
    let res = f
        .get(
            "/staff/guide/counts?from=2027-06-02&to=2028-06-01",
            Some(&f.clerk()),
        )
        .await;
    assert_eq!(res.status, StatusCode::OK, "{}", res.text());
}

async fn staff_save_a_checked_guide(env: Env) {
    let f = fixture(env).await;
    let (admin, clerk) = (f.admin(), f.clerk());
    let res = f.get("/staff/guide", Some(&clerk)).await;
    assert_eq!(res.status, StatusCode::OK);
    assert_eq!(res.header("etag"), "\"0\"");
    let doc = res.json();
    assert_eq!(doc["standard"], true);
    assert_eq!(doc["version"], 0);
    assert_eq!(doc["guide"]["events"][0]["id"], "tennyu");

    let mut guide: Value = serde_json::from_str(STANDARD_JSON).unwrap();
    guide["name"] = json!("道志村 手続きガイド");
    let body = guide.to_string().into_bytes();

    // Only the administrator saves.
    let res = f
        .call(
            "PUT",
            "/staff/guide",
            Some(&clerk),
            Some("0"),
            Some(body.clone()),
        )
        .await;
    assert_eq!(res.status, StatusCode::FORBIDDEN);
    // If-Match is required.
    let res = f
        .call(
            "PUT",
            "/staff/guide",
            Some(&admin),
            None,
            Some(body.clone()),
        )
        .await;
    assert_eq!(res.status, StatusCode::PRECONDITION_REQUIRED);

    // A failing example case blocks the save and is named.
    let mut failing = guide.clone();
    let case_name = failing["cases"][0]["name"].as_str().unwrap().to_owned();
    let expect = failing["cases"][0]["expect"].as_array_mut().unwrap();
    expect.retain(|p| p != "kaigo_1go");
    let res = f
        .call(
            "PUT",
            "/staff/guide",
            Some(&admin),
            Some("0"),
            Some(failing.to_string().into_bytes()),
        )
        .await;
    assert_eq!(
        res.status,
        StatusCode::UNPROCESSABLE_ENTITY,
        "{}",
        res.text()
    );
    assert_eq!(res.header("content-type"), "application/problem+json");
    let problem = res.json();
    let err = &problem["errors"][0];
    assert_eq!(err["field"], "cases[0]", "{problem}");
    assert_eq!(err["code"], "case_failed");
    assert!(
        err["message"].as_str().unwrap().contains(&case_name),
        "{problem}"
    );
    assert!(err["message"].as_str().unwrap().contains("kaigo_1go"));
    // Not JSON: one invalid_json error.
    let res = f
        .call(
            "PUT",
            "/staff/guide",
            Some(&admin),
            Some("0"),
            Some(b"{".to_vec()),
        )
        .await;
    assert_eq!(res.status, StatusCode::UNPROCESSABLE_ENTITY);
    assert_eq!(res.json()["errors"][0]["code"], "invalid_json");
    // Still the standard guide.
    assert_eq!(
        f.get("/staff/guide", Some(&clerk)).await.json()["standard"],
        true
    );

    // A good guide is saved as version 1 and then served.
    let res = f
        .call(
            "PUT",
            "/staff/guide",
            Some(&admin),
            Some("0"),
            Some(body.clone()),
        )
        .await;
    assert_eq!(res.status, StatusCode::OK, "{}", res.text());
    assert_eq!(res.header("etag"), "\"1\"");
    let res = f.get("/staff/guide", Some(&clerk)).await;
    assert_eq!(res.header("etag"), "\"1\"");
    let doc = res.json();
    assert_eq!(doc["standard"], false);
    assert_eq!(doc["guide"]["name"], "道志村 手続きガイド");
    assert_eq!(doc["guide"]["version"], 1);
    assert_eq!(
        f.get("/guide", None).await.json()["name"],
        "道志村 手続きガイド"
    );
    // Codes now name version 1.
    assert!(
        walk_tennyu(&f).await["code"]
            .as_str()
            .unwrap()
            .starts_with("MG1:272060:1:TENNYU:")
    );

    // A stale If-Match loses.
    let res = f
        .call(
            "PUT",
            "/staff/guide",
            Some(&admin),
            Some("0"),
            Some(body.clone()),
        )
        .await;
    assert_eq!(res.status, StatusCode::CONFLICT);
    let res = f
        .call("PUT", "/staff/guide", Some(&admin), Some("1"), Some(body))
        .await;
    assert_eq!(res.status, StatusCode::OK);
    assert_eq!(res.header("etag"), "\"2\"");

    // Each save is audited, without the guide itself.
    let records = f
        .audit
        .records(&TenantId::parse(TENANT).unwrap(), 0, 100)
        .await
        .unwrap();
    let saves: Vec<Value> = records
        .iter()
        .map(|r| serde_json::to_value(&r.event).unwrap())
        .filter(|e| e["action"] == "guide_change")
        .collect();
    assert_eq!(saves.len(), 2, "{saves:?}");
    assert_eq!(saves[0]["detail"], json!({"guide": true, "version": 1}));
    assert_eq!(saves[1]["actor"], "admin-1");
}

async fn a_counter_visit_ticks_procedures(env: Env) {
    let f = fixture(env).await;
    let clerk = f.clerk();
    let code = walk_tennyu(&f).await["code"].as_str().unwrap().to_owned();

    let res = f
        .post(
            "/staff/guide/visits",
            Some(&clerk),
            json!({"code": code.to_lowercase()}),
        )
        .await;
    assert_eq!(res.status, StatusCode::CREATED, "{}", res.text());
    assert_eq!(res.header("etag"), "\"1\"");
    let visit = res.json();
    let id = visit["id"].as_str().unwrap().to_owned();
    assert_eq!(visit["event"], "tennyu");
    assert_eq!(visit["procedures"].as_array().unwrap().len(), 6);
    let first = &visit["procedures"][0];
    assert_eq!(first["id"], "jumin_idou");
    assert!(!first["name"].as_str().unwrap().is_empty());
    assert!(!first["department"].as_str().unwrap().is_empty());
    assert_eq!(first["done"], false);
    assert_eq!(visit["done"], json!([]));
    assert_eq!(visit["left"].as_array().unwrap().len(), 6);

    let ticks = format!("/staff/guide/visits/{id}/ticks");
    let tick = |procedure: &str, done: bool| {
        json!({"procedure": procedure, "done": done})
            .to_string()
            .into_bytes()
    };
    let res = f
        .call(
            "POST",
            &ticks,
            Some(&clerk),
            Some("1"),
            Some(tick("jumin_idou", true)),
        )
        .await;
    assert_eq!(res.status, StatusCode::OK, "{}", res.text());
    assert_eq!(res.header("etag"), "\"2\"");
    assert_eq!(res.json()["done"], json!(["jumin_idou"]));
    // Another counter still holding version 1 loses.
    let res = f
        .call(
            "POST",
            &ticks,
            Some(&clerk),
            Some("1"),
            Some(tick("kaigo_1go", true)),
        )
        .await;
    assert_eq!(res.status, StatusCode::CONFLICT);
    // A procedure not in the visit.
    let res = f
        .call(
            "POST",
            &ticks,
            Some(&clerk),
            Some("2"),
            Some(tick("kouki", true)),
        )
        .await;
    assert_eq!(res.status, StatusCode::UNPROCESSABLE_ENTITY);
    assert_eq!(res.json()["errors"][0]["field"], "procedure");
    // Missing If-Match.
    let res = f
        .call(
            "POST",
            &ticks,
            Some(&clerk),
            None,
            Some(tick("kaigo_1go", true)),
        )
        .await;
    assert_eq!(res.status, StatusCode::PRECONDITION_REQUIRED);
    let res = f
        .call(
            "POST",
            &ticks,
            Some(&clerk),
            Some("2"),
            Some(tick("kaigo_1go", true)),
        )
        .await;
    assert_eq!(res.status, StatusCode::OK);
    // Undo a mistaken tick.
    let res = f
        .call(
            "POST",
            &ticks,
            Some(&clerk),
            Some("3"),
            Some(tick("jumin_idou", false)),
        )
        .await;
    assert_eq!(res.status, StatusCode::OK);

    let res = f
        .get(&format!("/staff/guide/visits/{id}"), Some(&clerk))
        .await;
    assert_eq!(res.status, StatusCode::OK);
    assert_eq!(res.header("etag"), "\"4\"");
    let visit = res.json();
    assert_eq!(visit["done"], json!(["kaigo_1go"]));
    assert_eq!(visit["left"].as_array().unwrap().len(), 5);
    assert_eq!(visit["complete"], false);

    // A retried scan with the same Idempotency-Key answers the same visit, as it is now.
    let scan = |key: &str, code: &str| {
        let req = Request::post(format!("/v1/tenants/{TENANT}/staff/guide/visits"))
            .header("authorization", format!("Bearer {clerk}"))
            .header("content-type", "application/json")
            .header("idempotency-key", key)
            .body(Body::from(json!({ "code": code }).to_string()))
            .unwrap();
        f.app.clone().oneshot(req)
    };
    let key = "0b7c6c1e-9a7d-4f57-8f0e-2f6f3c1d2a10";
    let first = scan(key, &code).await.unwrap();
    assert_eq!(first.status(), StatusCode::CREATED);
    let first: Value = serde_json::from_slice(
        &axum::body::to_bytes(first.into_body(), usize::MAX)
            .await
            .unwrap(),
    )
    .unwrap();
    assert_ne!(first["id"], json!(id));
    let again = scan(key, &code).await.unwrap();
    assert_eq!(again.status(), StatusCode::CREATED);
    let again: Value = serde_json::from_slice(
        &axum::body::to_bytes(again.into_body(), usize::MAX)
            .await
            .unwrap(),
    )
    .unwrap();
    assert_eq!(again["id"], first["id"]);
    let other_code = GuideCode {
        tenant: TenantId::parse(TENANT).unwrap(),
        version: 0,
        event: "shussei".into(),
        procedures: vec!["shussei_todoke".into()],
    }
    .encode();
    for (key, code) in [
        (key, other_code.as_str()),
        ("no spaces please", code.as_str()),
    ] {
        let res = scan(key, code).await.unwrap();
        assert_eq!(res.status(), StatusCode::UNPROCESSABLE_ENTITY, "{key}");
    }

    // Codes that are not this tenant's, or not codes.
    let other = GuideCode {
        tenant: TenantId::parse(OTHER_TENANT).unwrap(),
        version: 0,
        event: "tennyu".into(),
        procedures: vec!["jumin_idou".into()],
    }
    .encode();
    let res = f
        .post("/staff/guide/visits", Some(&clerk), json!({"code": other}))
        .await;
    assert_eq!(res.status, StatusCode::UNPROCESSABLE_ENTITY);
    assert_eq!(res.json()["errors"][0]["code"], "other_tenant");
    let last = if code.ends_with('0') { '1' } else { '0' };
    let damaged = format!("{}{last}", &code[..code.len() - 1]);
    for (bad, why) in [("hello", "not_a_code"), (damaged.as_str(), "corrupted")] {
        let res = f
            .post("/staff/guide/visits", Some(&clerk), json!({"code": bad}))
            .await;
        assert_eq!(res.status, StatusCode::UNPROCESSABLE_ENTITY, "{bad}");
        assert_eq!(res.json()["errors"][0]["field"], "code");
        assert_eq!(res.json()["errors"][0]["code"], why, "{bad}");
    }
    for id in ["not-a-uuid", "01890a5d-ac96-774b-bcce-b302099a8057"] {
        let res = f
            .get(&format!("/staff/guide/visits/{id}"), Some(&clerk))
            .await;
        assert_eq!(res.status, StatusCode::NOT_FOUND, "{id}");
    }
}

async fn staff_routes_refuse_citizens_and_strangers(env: Env) {
    let f = fixture(env).await;
    let citizen = f.token("citizen-1", Role::Citizen, TENANT);
    let stranger = f.token("admin-9", Role::Admin, OTHER_TENANT);
    let visit = "01890a5d-ac96-774b-bcce-b302099a8057";
    let routes: Vec<(&str, String, Option<Vec<u8>>)> = vec![
        ("GET", "/staff/guide".into(), None),
        (
            "PUT",
            "/staff/guide".into(),
            Some(STANDARD_JSON.as_bytes().to_vec()),
        ),
        (
            "GET",
            format!("/staff/guide/counts?from={TODAY}&to={TODAY}"),
            None,
        ),
        (
            "GET",
            format!("/staff/guide/counts.csv?from={TODAY}&to={TODAY}"),
            None,
        ),
        (
            "POST",
            "/staff/guide/visits".into(),
            Some(br#"{"code":"x"}"#.to_vec()),
        ),
        ("GET", format!("/staff/guide/visits/{visit}"), None),
        (
            "POST",
            format!("/staff/guide/visits/{visit}/ticks"),
            Some(br#"{"procedure":"jumin_idou","done":true}"#.to_vec()),
        ),
    ];
    for (method, path, body) in routes {
        let res = f.call(method, &path, None, Some("1"), body.clone()).await;
        assert_eq!(res.status, StatusCode::UNAUTHORIZED, "{method} {path}");
        assert_eq!(res.header("content-type"), "application/problem+json");
        for (who, token) in [("citizen", &citizen), ("other tenant", &stranger)] {
            let res = f
                .call(method, &path, Some(token), Some("1"), body.clone())
                .await;
            assert_eq!(res.status, StatusCode::FORBIDDEN, "{who}: {method} {path}");
        }
    }
    // Nothing was saved on the way.
    assert_eq!(
        f.get("/staff/guide", Some(&f.clerk())).await.json()["standard"],
        true
    );
}

contract_tests!(
    a_citizen_walks_the_tennyu_guide_to_a_code,
    bad_input_is_a_422_never_a_500,
    counts_per_event_and_channel_are_exact,
    staff_save_a_checked_guide,
    a_counter_visit_ticks_procedures,
    staff_routes_refuse_citizens_and_strangers,
);

#[test]
fn openapi_documents_every_route_and_every_error_as_problem_json() {
    let doc = serde_json::to_value(madoguchi_navigator::openapi()).unwrap();
    let paths = doc["paths"].as_object().unwrap();
    assert_eq!(paths.len(), 10, "{:?}", paths.keys().collect::<Vec<_>>());
    let mut operations = 0;
    for (path, item) in paths {
        assert!(path.starts_with("/v1/tenants/{tenant}/"), "{path}");
        for (method, op) in item.as_object().unwrap() {
            if !["get", "put", "post"].contains(&method.as_str()) {
                continue;
            }
            operations += 1;
            assert_eq!(op["tags"], json!(["navigator"]), "{method} {path}");
            for (status, res) in op["responses"].as_object().unwrap() {
                if status.starts_with('4') || status.starts_with('5') {
                    assert!(
                        res["content"].get("application/problem+json").is_some(),
                        "{method} {path} {status}"
                    );
                }
            }
        }
    }
    assert_eq!(operations, 11);
}
