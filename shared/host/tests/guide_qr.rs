//! The life-event guide and the pre-application QR end to end through the real `madoguchi`
//! binary, on both adapter sets (issue "Done when"): a citizen answers the 転入 guide for a
//! household with a 70-year-old and a 6-year-old, sees the procedures with progress reaching
//! 100 %, enters the household, gets the QR; the entry is gone from storage; the counter opens
//! the code (text and photo) and gets the household; the counts show one 転入 on web.

mod common;

use std::time::Duration;

use base64::Engine;
use common::*;
use madoguchi_ports::QueryRequest;
use reqwest::Method;
use serde_json::{Value, json};

/// Names nobody else in the test uses, to look for in raw storage.
const FAMILY: &str = "出雲崎";
const FAMILY_KANA: &str = "イズモザキ";

fn today() -> jiff::civil::Date {
    jiff::Timestamp::now()
        .to_zoned(jiff::tz::TimeZone::fixed(jiff::tz::offset(9)))
        .date()
}

/// The household: a 70-year-old householder and a 6-year-old grandchild at the move date.
fn household_for_guide(move_date: jiff::civil::Date) -> Value {
    let born = |years: i16, month: i8, day: i8| {
        jiff::civil::date(move_date.year() - years, month, day).to_string()
    };
    json!([
        {"birth_date": born(71, 1, 10), "relationship": "head", "nationality": "japanese", "insurance": "national"},
        {"birth_date": born(7, 1, 20), "relationship": "grandchild", "nationality": "japanese", "insurance": "national"}
    ])
}

async fn anon(
    c: &reqwest::Client,
    method: Method,
    url: String,
    body: Option<Value>,
    token: Option<&str>,
) -> (u16, Value) {
    let mut req = c.request(method, url);
    if let Some(t) = token {
        req = req.header("x-entry-token", t);
    }
    if let Some(b) = body {
        req = req.json(&b);
    }
    let res = req.send().await.unwrap();
    let status = res.status().as_u16();
    let text = res.text().await.unwrap();
    (status, serde_json::from_str(&text).unwrap_or(Value::Null))
}

async fn walk(host: Host) {
    let c = reqwest::Client::new();
    let v1 = format!("{}/v1/tenants/{TENANT}", host.base);
    let move_date = today().checked_add(jiff::Span::new().days(7)).unwrap();

    // ---- the guide, as a citizen on the web (no account).
    let (s, started) = anon(
        &c,
        Method::POST,
        format!("{v1}/guide/events/tennyu/start"),
        Some(json!({"channel": "web"})),
        None,
    )
    .await;
    assert_eq!(s, 200, "{started}");
    let mut answers = json!({});
    let mut last = 0;
    let step = loop {
        let (s, step) = anon(
            &c,
            Method::POST,
            format!("{v1}/guide/events/tennyu/evaluate"),
            Some(json!({"answers": answers})),
            None,
        )
        .await;
        assert_eq!(s, 200, "{step}");
        let progress = step["outcome"]["progress"].as_u64().unwrap();
        assert!(progress >= last, "progress went down");
        last = progress;
        let Some(q) = step["outcome"]["next_question"]["id"].as_str() else {
            break step;
        };
        answers[q] = match q {
            "move_date" => json!(move_date.to_string()),
            "household" => household_for_guide(move_date),
            "school" => json!("public"),
            _ => json!(false),
        };
    };
    assert_eq!(step["outcome"]["progress"], 100);
    let procedures: Vec<String> = step["outcome"]["procedures"]
        .as_array()
        .unwrap()
        .iter()
        .map(|p| p["id"].as_str().unwrap().to_owned())
        .collect();
    for want in ["jumin_idou", "kaigo_1go", "shugaku", "jidou_teate"] {
        assert!(
            procedures.contains(&want.to_owned()),
            "{want} missing: {procedures:?}"
        );
    }
    for not in ["kouki", "nenkin_1go"] {
        assert!(
            !procedures.contains(&not.to_owned()),
            "{not} listed: {procedures:?}"
        );
    }
    assert!(step["code"].as_str().unwrap().starts_with("MG1:"));

    // ---- the pre-application: the household entered, the QR issued.
    let (s, created) = anon(
        &c,
        Method::POST,
        format!("{v1}/pre-applications"),
        Some(json!({"procedure": "tennyu"})),
        None,
    )
    .await;
    assert_eq!(s, 201, "{created}");
    let id = created["id"].as_str().unwrap().to_owned();
    let token = created["token"].as_str().unwrap().to_owned();
    let (s, postal) = anon(
        &c,
        Method::GET,
        format!("{v1}/postal-codes/5950025"),
        None,
        None,
    )
    .await;
    assert_eq!(s, 200, "{postal}");
    assert_eq!(postal["in_municipality"], true);
    let town = &postal["entries"][0];
    let new_address = format!(
        "{}{}{}4番5号",
        town["prefecture"].as_str().unwrap(),
        town["city"].as_str().unwrap(),
        town["town"].as_str().unwrap()
    );
    let born = |years: i16| jiff::civil::date(move_date.year() - years, 1, 10).to_string();
    let entry = json!({
        "move_date": move_date.to_string(),
        "old_address": {"postal_code": "1540001", "address": "東京都世田谷区池尻1丁目2番3号", "katagaki": ""},
        "new_address": {"postal_code": "5950025", "address": new_address, "katagaki": "旭ハイツ101"},
        "members": [
            {"family_name": FAMILY, "given_name": "源蔵", "family_kana": FAMILY_KANA, "given_kana": "ゲンゾウ",
             "birth_date": born(71), "sex": "male", "relationship": "householder"},
            {"family_name": FAMILY, "given_name": "陽菜", "family_kana": FAMILY_KANA, "given_kana": "ヒナ",
             "birth_date": born(7), "sex": "female", "relationship": "grandchild"}
        ],
        "procedures": procedures,
    });
    let (s, put) = anon(
        &c,
        Method::PUT,
        format!("{v1}/pre-applications/{id}"),
        Some(entry),
        Some(&token),
    )
    .await;
    assert_eq!(s, 200, "{put}");
    let (s, issued) = anon(
        &c,
        Method::POST,
        format!("{v1}/pre-applications/{id}/qr"),
        None,
        Some(&token),
    )
    .await;
    assert_eq!(s, 200, "{issued}");
    let text = issued["text"].as_str().unwrap().to_owned();
    assert!(text.starts_with("MDG1:"));
    assert!(
        issued["svg"].as_str().unwrap().starts_with("<?xml")
            || issued["svg"].as_str().unwrap().contains("<svg")
    );

    // ---- the entry is gone: its item, and (embedded) any trace in the database file.
    let items = host.items().await;
    let left = items
        .query(QueryRequest::partition(format!("{TENANT}#PREAPP#{id}")))
        .await
        .unwrap();
    assert!(left.items.is_empty(), "the entry outlived its QR");
    let (s, _) = anon(
        &c,
        Method::GET,
        format!("{v1}/pre-applications/{id}"),
        None,
        Some(&token),
    )
    .await;
    assert_eq!(s, 404);
    if host.endpoint.is_none() {
        let mut raw = Vec::new();
        for f in ["madoguchi.sqlite3", "madoguchi.sqlite3-wal"] {
            if let Ok(bytes) = std::fs::read(host.data_dir.join(f)) {
                raw.extend(bytes);
            }
        }
        let needle = FAMILY.as_bytes();
        assert!(
            !raw.windows(needle.len()).any(|w| w == needle),
            "the household's name is still in the database file"
        );
    }

    // ---- the counter opens it: by the scanned text, and by a photo of the PNG.
    let clerk = Api::new(
        &host,
        host.token_depts("staff", TENANT, "clerk-1", &["shimin-ka"]),
    );
    let (opened, _) = clerk
        .ok(
            Method::POST,
            "/staff/qr/open",
            Some(json!({"text": text})),
            &[],
            200,
        )
        .await;
    let names: Vec<String> = opened["members"]
        .as_array()
        .unwrap()
        .iter()
        .map(|m| {
            format!(
                "{}{}",
                m["family_name"].as_str().unwrap(),
                m["given_name"].as_str().unwrap()
            )
        })
        .collect();
    assert_eq!(names, [format!("{FAMILY}源蔵"), format!("{FAMILY}陽菜")]);
    assert_eq!(opened["procedure"], "tennyu");
    assert_eq!(opened["procedures"], json!(procedures));
    let png = base64::engine::general_purpose::STANDARD
        .decode(issued["png_base64"].as_str().unwrap())
        .unwrap();
    let form = reqwest::multipart::Form::new().part(
        "photo",
        reqwest::multipart::Part::bytes(png)
            .file_name("qr.png")
            .mime_str("image/png")
            .unwrap(),
    );
    let res = clerk
        .c
        .post(format!("{v1}/staff/qr/open"))
        .bearer_auth(&clerk.token)
        .multipart(form)
        .send()
        .await
        .unwrap();
    assert_eq!(res.status().as_u16(), 200);
    let by_photo: Value = res.json().await.unwrap();
    assert_eq!(by_photo["members"], opened["members"]);

    // ---- one 転入 on the web today; the openings are audited.
    let day = today().to_string();
    let (counts, _) = clerk
        .ok(
            Method::GET,
            &format!("/staff/guide/counts?from={day}&to={day}"),
            None,
            &[],
            200,
        )
        .await;
    let rows = counts["rows"].as_array().unwrap();
    assert_eq!(rows.len(), 1, "{counts}");
    assert_eq!(
        (
            rows[0]["event"].as_str(),
            rows[0]["channel"].as_str(),
            rows[0]["count"].as_u64()
        ),
        (Some("tennyu"), Some("web"), Some(1))
    );
    let admin = Api::new(&host, host.token_depts("admin", TENANT, "admin-1", &[]));
    let (records, _) = admin
        .ok(Method::GET, "/staff/audit?limit=500", None, &[], 200)
        .await;
    let opens: Vec<&Value> = records["items"]
        .as_array()
        .unwrap()
        .iter()
        .filter(|r| r["action"] == "qr_open")
        .collect();
    assert_eq!(opens.len(), 2);
    assert!(opens.iter().all(|r| r["detail"]["outcome"] == "opened"));
    let all = serde_json::to_string(&records).unwrap();
    assert!(!all.contains(FAMILY));

    let logs = host.logs.clone();
    host.stop().await;
    tokio::time::sleep(Duration::from_millis(50)).await;
    let logs = logs.lock().unwrap().clone();
    for secret in [FAMILY, FAMILY_KANA, text.as_str(), token.as_str()] {
        assert!(!logs.contains(secret), "the logs contain {secret:?}");
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn embedded() {
    walk(Host::start(None).await).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn aws_on_moto() {
    walk(Host::start(Some(madoguchi_tests::aws_endpoint())).await).await;
}
