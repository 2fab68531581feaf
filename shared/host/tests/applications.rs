//! The application service end to end, on both adapter sets (issue "Done when"): staff build
//! and publish a form with every field type and a display condition; a citizen with an
//! account and one verified by mail save drafts, get field errors in Japanese, fix only those,
//! upload attachments (one refused for size, one for lying about its type), submit twice with
//! the same key (one application), get the receipt mail, see it in their history; then the
//! plaintext of every My Number sent is searched for in everything stored and logged.

mod common;

use std::path::Path;
use std::time::Duration;

use base64::Engine;
use common::*;
use reqwest::Method;
use serde_json::{Value, json};

const SLUG: &str = "kosodate-kyufu";

fn definition() -> Value {
    json!({
        "title": "子育て応援給付金の申請",
        "overview": "中学生以下のお子さんを養育している方に給付金を支給します。",
        "contact": "子育て支援課（0725-33-1131）",
        "access": "either",
        "max_total_mb": 3,
        "notify": ["received", "completed"],
        "items": [
            {"id": "h_applicant", "type": "heading", "label": "申請者"},
            {"id": "applicant", "type": "name", "label": "氏名", "required": true, "kana": true},
            {"id": "birth_date", "type": "date", "label": "生年月日", "required": true, "max": "today"},
            {"id": "my_number", "type": "my_number", "label": "個人番号", "required": true},
            {"id": "address", "type": "address", "label": "住所", "required": true},
            {"id": "postal", "type": "postal_code", "label": "郵便番号"},
            {"id": "phone", "type": "phone", "label": "電話番号", "required": true},
            {"id": "email", "type": "email", "label": "連絡用メールアドレス"},
            {"id": "children", "type": "number", "label": "お子さんの人数", "required": true, "min": 1, "max": 10, "integer": true},
            {"id": "relationship", "type": "radio", "label": "続柄", "required": true,
             "options": [{"value": "parent", "label": "父母"}, {"value": "other", "label": "その他"}]},
            {"id": "relationship_other", "type": "text", "label": "続柄（その他）", "required": true,
             "show_if": {"field": "relationship", "equals": "other"}},
            {"id": "payee", "type": "select", "label": "受取方法", "required": true,
             "options": [{"value": "bank", "label": "口座振込"}, {"value": "counter", "label": "窓口"}]},
            {"id": "circumstances", "type": "checkbox", "label": "該当するもの", "max_choices": 2,
             "options": [{"value": "single", "label": "ひとり親"}, {"value": "newborn", "label": "出生"}]},
            {"id": "note", "type": "explanation", "label": "通帳の写しを添付してください。"},
            {"id": "docs", "type": "section", "label": "添付書類", "items": [
                {"id": "passbook", "type": "attachment", "label": "通帳の写し", "required": true,
                 "extensions": ["pdf", "png"], "max_file_mb": 1, "max_files": 3}
            ]},
            {"id": "remarks", "type": "text", "label": "備考", "multiline": true}
        ]
    })
}

/// A valid My Number with a random body, so the plaintext search looks for something new.
fn my_number() -> String {
    let seed = uuid::Uuid::now_v7().as_u128();
    let body: String = (0..11)
        .map(|i| char::from(b'0' + ((seed >> (i * 4)) % 10) as u8))
        .collect();
    let check = madoguchi_domain::mynumber::my_number_check_digit(&body).unwrap();
    format!("{body}{check}")
}

fn answers(my_number: &str) -> Value {
    json!({
        "applicant": {"family": "山田", "given": "花子", "family_kana": "やまだ", "given_kana": "Hanako"},
        "birth_date": "平成2年4月1日",
        "my_number": format!("{}-{}", &my_number[..4], &my_number[4..]),
        "address": {"address": "大阪府泉大津市東雲町9-12"},
        "postal": "595-0013",
        "phone": "0725-33-11",
        "children": "２",
        "relationship": "parent",
        "payee": "bank",
        "circumstances": ["single"]
    })
}

struct Client {
    c: reqwest::Client,
    base: String,
    auth: (String, String),
}

impl Client {
    fn url(&self, path: &str) -> String {
        format!("{}/v1/tenants/{TENANT}{path}", self.base)
    }
    async fn send(&self, method: Method, path: &str, body: Option<Value>) -> reqwest::Response {
        self.send_with(method, path, body, &[]).await
    }
    async fn send_with(
        &self,
        method: Method,
        path: &str,
        body: Option<Value>,
        headers: &[(&str, &str)],
    ) -> reqwest::Response {
        let mut req = self
            .c
            .request(method, self.url(path))
            .header(&self.auth.0, &self.auth.1);
        for (k, v) in headers {
            req = req.header(*k, *v);
        }
        if let Some(b) = body {
            req = req.json(&b);
        }
        req.send().await.unwrap()
    }
    async fn json(&self, method: Method, path: &str, body: Option<Value>, status: u16) -> Value {
        let res = self.send(method, path, body).await;
        let got = res.status().as_u16();
        let text = res.text().await.unwrap();
        assert_eq!(got, status, "{path}: {text}");
        serde_json::from_str(&text).unwrap_or(Value::Null)
    }
}

async fn staff_publish(host: &Host) -> u64 {
    let staff = host.token("admin", TENANT, 600);
    let c = Client {
        c: reqwest::Client::new(),
        base: host.base.clone(),
        auth: ("authorization".into(), format!("Bearer {staff}")),
    };
    // A definition with an 11 MB file limit is refused, naming the setting.
    let mut too_big = definition();
    too_big["items"][14]["items"][0]["max_file_mb"] = json!(11);
    let res = c
        .send(
            Method::POST,
            "/manage/forms",
            Some(json!({"slug": SLUG, "definition": too_big})),
        )
        .await;
    let body = problem(res, 422).await;
    assert!(
        body["errors"]
            .as_array()
            .unwrap()
            .iter()
            .any(|e| e["field"] == "definition.items[14].items[0].max_file_mb"),
        "{body}"
    );
    c.json(
        Method::POST,
        "/manage/forms",
        Some(json!({"slug": SLUG, "definition": definition()})),
        201,
    )
    .await;
    let res = c
        .send_with(
            Method::POST,
            &format!("/manage/forms/{SLUG}/publish"),
            None,
            &[("if-match", "1")],
        )
        .await;
    assert_eq!(res.status().as_u16(), 200);
    let form: Value = reqwest::get(c.url(&format!("/forms/{SLUG}")))
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    form["version"].as_u64().unwrap()
}

/// Uploads `bytes` as `name` to the attachment field; returns the attachment id and the
/// HTTP status of the upload itself.
async fn upload(c: &Client, name: &str, declared: u64, bytes: Vec<u8>) -> (String, u16) {
    let granted = c
        .json(
            Method::POST,
            &format!("/forms/{SLUG}/attachments"),
            Some(json!({"field": "passbook", "file_name": name, "size": declared})),
            201,
        )
        .await;
    let mut form = reqwest::multipart::Form::new();
    for pair in granted["upload"]["fields"].as_array().unwrap() {
        form = form.text(
            pair[0].as_str().unwrap().to_owned(),
            pair[1].as_str().unwrap().to_owned(),
        );
    }
    form = form.part(
        "file",
        reqwest::multipart::Part::bytes(bytes).file_name(name.to_owned()),
    );
    let res =
        c.c.post(granted["upload"]["url"].as_str().unwrap())
            .multipart(form)
            .send()
            .await
            .unwrap();
    (
        granted["attachment_id"].as_str().unwrap().to_owned(),
        res.status().as_u16(),
    )
}

async fn wait_attachment(c: &Client, id: &str, until: &[&str]) -> Value {
    for _ in 0..200 {
        let v = c
            .json(
                Method::GET,
                &format!("/forms/{SLUG}/attachments/{id}"),
                None,
                200,
            )
            .await;
        if until.contains(&v["status"].as_str().unwrap()) {
            return v;
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    panic!("attachment {id} never reached {until:?}");
}

/// Tags the attachment's object as GuardDuty Malware Protection does when its scan ends.
async fn guardduty_tags(host: &Host, endpoint: &str, attachment: &str, status: &str) {
    let clock = std::sync::Arc::new(madoguchi_ports::SystemClock);
    let aws = madoguchi_aws::AwsBackend::local(endpoint, clock).await;
    let bucket = format!("{}-attachments", aws_prefix(&host.data_dir));
    let objects = aws
        .s3_client()
        .list_objects_v2()
        .bucket(&bucket)
        .prefix("quarantine/")
        .send()
        .await
        .unwrap();
    let key = objects
        .contents()
        .iter()
        .filter_map(|o| o.key())
        .find(|k| k.ends_with(attachment))
        .expect("the uploaded object")
        .to_owned();
    let tag = aws_sdk_s3::types::Tag::builder()
        .key("GuardDutyMalwareScanStatus")
        .value(status)
        .build()
        .unwrap();
    aws.s3_client()
        .put_object_tagging()
        .bucket(&bucket)
        .key(&key)
        .tagging(
            aws_sdk_s3::types::Tagging::builder()
                .tag_set(tag)
                .build()
                .unwrap(),
        )
        .send()
        .await
        .unwrap();
}

async fn wait_scan(c: &Client, id: &str, scan: &str) {
    for _ in 0..200 {
        let v = c
            .json(
                Method::GET,
                &format!("/forms/{SLUG}/attachments/{id}"),
                None,
                200,
            )
            .await;
        if v["scan"] == scan {
            return;
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    panic!("attachment {id} never scanned {scan}");
}

fn png(size: usize) -> Vec<u8> {
    let mut v = b"\x89PNG\r\n\x1a\n\0\0\0\rIHDR".to_vec();
    v.resize(size, 7);
    v
}

/// One citizen's walk; returns the receipt number.
async fn apply(host: &Host, c: &Client, version: u64, number: &str) -> (String, String) {
    let form = format!("/forms/{SLUG}");
    // Draft with a mistake or two; the My Number comes back masked.
    let draft = c
        .json(
            Method::PUT,
            &format!("{form}/draft"),
            Some(json!({"form_version": version, "answers": answers(number)})),
            200,
        )
        .await;
    assert_eq!(
        draft["answers"]["my_number"],
        format!("********{}", &number[8..])
    );
    let draft = c
        .json(Method::GET, &format!("{form}/draft"), None, 200)
        .await;
    assert_eq!(
        draft["answers"]["my_number"],
        format!("********{}", &number[8..])
    );

    // Attachments: refused at the grant for size and extension, refused on arrival for a
    // lying type, and (AWS and embedded alike) a file larger than granted never becomes
    // accepted; one good file.
    let res = c
        .send(
            Method::POST,
            &format!("{form}/attachments"),
            Some(json!({"field": "passbook", "file_name": "通帳.png", "size": 2 * 1024 * 1024})),
        )
        .await;
    let body = problem(res, 422).await;
    assert_eq!(body["errors"][0]["code"], "too_large");
    let res = c
        .send(
            Method::POST,
            &format!("{form}/attachments"),
            Some(json!({"field": "passbook", "file_name": "virus.exe", "size": 10})),
        )
        .await;
    assert_eq!(
        problem(res, 422).await["errors"][0]["code"],
        "extension_not_allowed"
    );
    let (liar, status) = upload(c, "通帳.pdf", 2000, png(2000)).await;
    assert_eq!(status, 204);
    let refused = wait_attachment(c, &liar, &["refused"]).await;
    assert!(
        refused["message"].as_str().unwrap().contains("拡張子"),
        "{refused}"
    );
    let (big, status) = upload(c, "大きい.png", 1000, png(1024 * 1024 + 10)).await;
    if status == 204 {
        // The store let it in (moto does not check the policy's size range): the checker
        // refuses it by its real size.
        let v = wait_attachment(c, &big, &["refused"]).await;
        assert!(v["message"].as_str().unwrap().contains("大きすぎ"), "{v}");
    } else {
        assert!((400..500).contains(&status), "upload status {status}");
    }
    let (good, status) = upload(c, "通帳 表紙.png", 5000, png(5000)).await;
    assert_eq!(status, 204);
    let accepted = wait_attachment(c, &good, &["accepted", "refused"]).await;
    assert_eq!(accepted["status"], "accepted", "{accepted}");
    match &host.endpoint {
        None => assert_eq!(accepted["scan"], "not_scanned"),
        Some(ep) => {
            // No GuardDuty on moto: play its part by tagging, as it does when a scan ends.
            assert_eq!(accepted["scan"], "pending");
            guardduty_tags(host, ep, &good, "NO_THREATS_FOUND").await;
            wait_scan(c, &good, "clean").await;
            let (bad, status) = upload(c, "ウイルス.png", 3000, png(3000)).await;
            assert_eq!(status, 204);
            wait_attachment(c, &bad, &["accepted"]).await;
            guardduty_tags(host, ep, &bad, "THREATS_FOUND").await;
            let v = wait_attachment(c, &bad, &["refused"]).await;
            assert!(v["message"].as_str().unwrap().contains("ウイルス"), "{v}");
        }
    }

    // Confirm: every error per field, in Japanese.
    let masked = format!("********{}", &number[8..]);
    let mut a = answers(number);
    a["my_number"] = json!(masked);
    a["passbook"] = json!([liar]);
    let checked = c
        .json(
            Method::POST,
            &format!("{form}/confirm"),
            Some(json!({"form_version": version, "answers": a})),
            200,
        )
        .await;
    assert_eq!(checked["valid"], false);
    let mut fields: Vec<(String, String)> = checked["errors"]
        .as_array()
        .unwrap()
        .iter()
        .map(|e| {
            assert!(!e["message"].as_str().unwrap().is_ascii(), "Japanese: {e}");
            (
                e["field"].as_str().unwrap().to_owned(),
                e["code"].as_str().unwrap().to_owned(),
            )
        })
        .collect();
    fields.sort();
    assert_eq!(
        fields,
        [
            ("applicant.given_kana".to_owned(), "not_katakana".to_owned()),
            ("passbook".to_owned(), "attachment_refused".to_owned()),
            ("phone".to_owned(), "invalid_format".to_owned()),
        ]
    );
    // Fix only those.
    a["applicant"]["given_kana"] = json!("ハナコ");
    a["phone"] = json!("0725-33-1131");
    a["passbook"] = json!([good]);
    let checked = c
        .json(
            Method::POST,
            &format!("{form}/confirm"),
            Some(json!({"form_version": version, "answers": a})),
            200,
        )
        .await;
    assert_eq!(checked["valid"], true, "{checked}");
    let summary = checked["summary"].as_array().unwrap();
    let row = |f: &str| summary.iter().find(|r| r["field"] == f).unwrap()["display"].clone();
    assert_eq!(row("my_number"), json!(masked));
    assert_eq!(row("birth_date"), json!("平成2年4月1日（1990年4月1日）"));

    // Submit twice with the same key: one application. Without a key: refused.
    let body = json!({"form_version": version, "answers": a});
    let res = c
        .send(
            Method::POST,
            &format!("{form}/applications"),
            Some(body.clone()),
        )
        .await;
    problem(res, 422).await;
    let key = uuid::Uuid::now_v7().to_string();
    let hdr = [("idempotency-key", key.as_str())];
    let first = c
        .send_with(
            Method::POST,
            &format!("{form}/applications"),
            Some(body.clone()),
            &hdr,
        )
        .await;
    assert_eq!(first.status().as_u16(), 201);
    let first: Value = first.json().await.unwrap();
    let second = c
        .send_with(
            Method::POST,
            &format!("{form}/applications"),
            Some(body.clone()),
            &hdr,
        )
        .await;
    assert_eq!(second.status().as_u16(), 200);
    let second: Value = second.json().await.unwrap();
    assert_eq!(first, second);
    let receipt = first["receipt_number"].as_str().unwrap().to_owned();
    assert!(madoguchi_domain::receipt::ReceiptNumber::parse(&receipt).is_ok());
    // The draft is gone with the submission; a stale version is told to reload.
    problem(
        c.send(Method::GET, &format!("{form}/draft"), None).await,
        404,
    )
    .await;
    let stale = json!({"form_version": version + 1, "answers": a});
    let res = c
        .send_with(
            Method::POST,
            &format!("{form}/applications"),
            Some(stale),
            &[("idempotency-key", "other")],
        )
        .await;
    let p = problem(res, 409).await;
    assert!(p["detail"].as_str().unwrap().contains("再読み込み"));

    // History.
    let list = c.json(Method::GET, "/my/applications", None, 200).await;
    assert_eq!(list["applications"].as_array().unwrap().len(), 1);
    assert_eq!(list["applications"][0]["receipt_number"], json!(receipt));
    let id = first["application_id"].as_str().unwrap().to_owned();
    let detail = c
        .json(Method::GET, &format!("/my/applications/{id}"), None, 200)
        .await;
    let rows = detail["summary"].as_array().unwrap();
    assert!(rows.iter().any(|r| r["display"] == json!(masked)));
    assert_eq!(detail["attachments"][0]["file_name"], "通帳 表紙.png");
    (receipt, id)
}

/// Mail sent to `to` (embedded: the outbox; AWS: moto's SES), as (subject-ish, body) text.
async fn mails_to(host: &Host, to: &str) -> Vec<String> {
    match &host.endpoint {
        None => {
            let dir = host.data_dir.join("outbox");
            let Ok(entries) = std::fs::read_dir(&dir) else {
                return vec![];
            };
            let mut out = Vec::new();
            for e in entries {
                // Mail only: the outbox also holds the core systems' folders.
                let path = e.unwrap().path();
                if path.extension().is_none_or(|x| x != "eml") {
                    continue;
                }
                let text = std::fs::read_to_string(path).unwrap();
                let Some((head, body)) = text.split_once("\r\n\r\n") else {
                    continue;
                };
                if !head.contains(to) {
                    continue;
                }
                let b64: String = body.split_whitespace().collect();
                let body = base64::engine::general_purpose::STANDARD
                    .decode(b64)
                    .unwrap();
                out.push(String::from_utf8(body).unwrap());
            }
            out
        }
        Some(ep) => {
            let data: Value = reqwest::get(format!("{ep}/moto-api/data.json"))
                .await
                .unwrap()
                .json()
                .await
                .unwrap();
            let mut out = Vec::new();
            collect_strings(&data["ses"], &mut |s| {
                if s.contains(to) || s.contains("受付番号") || s.contains("確認コード") {
                    out.push(s.to_owned());
                }
            });
            // moto keeps messages as objects; keep those mentioning the address.
            let mut messages = Vec::new();
            if let Some(models) = data["ses"].as_object() {
                for list in models.values() {
                    for m in list.as_array().into_iter().flatten() {
                        let text = m.to_string();
                        if text.contains(to) {
                            messages.push(text);
                        }
                    }
                }
            }
            messages
        }
    }
}

fn collect_strings(v: &Value, f: &mut impl FnMut(&str)) {
    match v {
        Value::String(s) => f(s),
        Value::Array(a) => a.iter().for_each(|x| collect_strings(x, f)),
        Value::Object(o) => o.values().for_each(|x| collect_strings(x, f)),
        _ => {}
    }
}

async fn wait_mail(host: &Host, to: &str, needle: &str) -> String {
    for _ in 0..100 {
        if let Some(m) = mails_to(host, to)
            .await
            .into_iter()
            .find(|m| m.contains(needle))
        {
            return m;
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    panic!("no mail to {to} containing {needle:?}");
}

async fn email_citizen(host: &Host, address: &str) -> Client {
    let c = reqwest::Client::new();
    let url = format!(
        "{}/v1/tenants/{TENANT}/forms/{SLUG}/email-verifications",
        host.base
    );
    let bad = c
        .post(&url)
        .json(&json!({"email": "not-an-address"}))
        .send()
        .await
        .unwrap();
    problem(bad, 422).await;
    let res = c
        .post(&url)
        .json(&json!({"email": address}))
        .send()
        .await
        .unwrap();
    assert_eq!(res.status().as_u16(), 201);
    let started: Value = res.json().await.unwrap();
    let id = started["verification_id"].as_str().unwrap();
    let mail = wait_mail(host, address, "確認コード").await;
    let code: String = mail
        .split("確認コード: ")
        .nth(1)
        .expect("code in the mail")
        .chars()
        .take(6)
        .collect();
    let confirm = format!("{url}/{id}/confirm");
    let wrong = if code == "000000" { "111111" } else { "000000" };
    let res = c
        .post(&confirm)
        .json(&json!({"code": wrong}))
        .send()
        .await
        .unwrap();
    let p = problem(res, 422).await;
    assert_eq!(p["errors"][0]["code"], "wrong_code");
    let res = c
        .post(&confirm)
        .json(&json!({"code": code}))
        .send()
        .await
        .unwrap();
    assert_eq!(res.status().as_u16(), 201);
    let proof: Value = res.json().await.unwrap();
    // Single use.
    problem(
        c.post(&confirm)
            .json(&json!({"code": code}))
            .send()
            .await
            .unwrap(),
        404,
    )
    .await;
    Client {
        c,
        base: host.base.clone(),
        auth: (
            "x-email-proof".into(),
            proof["proof"].as_str().unwrap().to_owned(),
        ),
    }
}

/// Every file under `dir`, as bytes.
fn files(dir: &Path, out: &mut Vec<(String, Vec<u8>)>) {
    for e in std::fs::read_dir(dir).unwrap().flatten() {
        let p = e.path();
        if p.is_dir() {
            files(&p, out);
        } else if let Ok(bytes) = std::fs::read(&p) {
            out.push((p.display().to_string(), bytes));
        }
    }
}

fn contains(hay: &[u8], needle: &[u8]) -> bool {
    hay.windows(needle.len()).any(|w| w == needle)
}

/// Everything stored: the data directory (SQLite files with their WAL, blobs, outbox), or on
/// AWS every item of the table and every object of every bucket.
async fn stored(host: &Host) -> Vec<(String, Vec<u8>)> {
    let mut out = Vec::new();
    files(&host.data_dir, &mut out);
    if let Some(ep) = &host.endpoint {
        let clock = std::sync::Arc::new(madoguchi_ports::SystemClock);
        let aws = madoguchi_aws::AwsBackend::local(ep, clock).await;
        let prefix = aws_prefix(&host.data_dir);
        let mut start = None;
        loop {
            let page = aws
                .dynamodb_client()
                .scan()
                .table_name(&prefix)
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
        let buckets = aws.s3_client().list_buckets().send().await.unwrap();
        for b in buckets.buckets() {
            let name = b.name().unwrap_or_default();
            if !name.starts_with(&prefix) {
                continue;
            }
            let objects = aws
                .s3_client()
                .list_objects_v2()
                .bucket(name)
                .send()
                .await
                .unwrap();
            for o in objects.contents() {
                let key = o.key().unwrap();
                let body = aws
                    .s3_client()
                    .get_object()
                    .bucket(name)
                    .key(key)
                    .send()
                    .await
                    .unwrap();
                let bytes = body.body.collect().await.unwrap().into_bytes().to_vec();
                out.push((format!("s3://{name}/{key}"), bytes));
            }
        }
    }
    out
}

async fn walk(host: Host) {
    let version = staff_publish(&host).await;
    let token = host.token_for(
        "citizen",
        TENANT,
        600,
        "citizen-a",
        Some("hanako@example.jp"),
    );
    let account = Client {
        c: reqwest::Client::new(),
        base: host.base.clone(),
        auth: ("authorization".into(), format!("Bearer {token}")),
    };
    let n1 = my_number();
    let (receipt_a, id_a) = apply(&host, &account, version, &n1).await;
    let mail = wait_mail(&host, "hanako@example.jp", &receipt_a).await;
    assert!(mail.contains("子育て応援給付金の申請"), "{mail}");

    let by_mail = email_citizen(&host, "taro@example.jp").await;
    let n2 = my_number();
    let (receipt_b, _) = apply(&host, &by_mail, version, &n2).await;
    assert_ne!(receipt_a, receipt_b);
    wait_mail(&host, "taro@example.jp", &receipt_b).await;
    // Exactly one receipt mail each, although each submission was sent twice.
    tokio::time::sleep(Duration::from_millis(500)).await;
    let receipts = mails_to(&host, "hanako@example.jp")
        .await
        .into_iter()
        .filter(|m| m.contains(&receipt_a))
        .count();
    assert_eq!(receipts, 1);

    // Another citizen's application is not found.
    problem(
        by_mail
            .send(Method::GET, &format!("/my/applications/{id_a}"), None)
            .await,
        404,
    )
    .await;

    // The plaintext search: nothing stored or logged holds a My Number sent.
    let logs = host.logs.clone();
    let stored = stored(&host).await;
    assert!(stored.len() > 3);
    for n in [&n1, &n2] {
        let spaced = format!("{}-{}", &n[..4], &n[4..]);
        for (what, bytes) in &stored {
            assert!(!contains(bytes, n.as_bytes()), "{what} holds a My Number");
            assert!(
                !contains(bytes, spaced.as_bytes()),
                "{what} holds a My Number"
            );
        }
    }
    let status = host.stop().await;
    assert!(status.success());
    let logs = logs.lock().unwrap().clone();
    assert!(logs.contains("application received"));
    for n in [&n1, &n2] {
        assert!(!logs.contains(n.as_str()), "the logs hold a My Number");
    }
    for s in ["山田", "hanako@example.jp", "taro@example.jp", "東雲町"] {
        assert!(!logs.contains(s), "the logs hold {s:?}");
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
