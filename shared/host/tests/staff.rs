//! Staff work end to end, on both adapter sets (issue "Done when"): the tenant administrator
//! sets up two departments and grants; staff of the right department work an application
//! through 審査中 → 差戻 → (the citizen corrects) → 完了 with a memo, an audited 個人番号
//! reveal and a CP932 export; staff of the other department and of another tenant see
//! nothing; two concurrent updates give one 409; `madoguchi audit verify` passes, then fails
//! after one audit record is edited in storage.

mod common;

use std::time::Duration;

use common::*;
use madoguchi_ports::{Condition, QueryRequest};
use reqwest::Method;
use serde_json::{Value, json};

const SLUG: &str = "tenshutsu";
const OTHER_TENANT: &str = "131016";

fn definition() -> Value {
    json!({
        "title": "転出届",
        "access": "account",
        "notify": ["received", "status_changed", "correction_requested", "completed"],
        "items": [
            {"id": "applicant", "type": "name", "label": "氏名", "required": true},
            {"id": "my_number", "type": "my_number", "label": "個人番号", "required": true},
            {"id": "phone", "type": "phone", "label": "電話番号", "required": true},
            {"id": "remarks", "type": "text", "label": "備考"}
        ]
    })
}

/// A valid My Number with a fresh body.
fn my_number() -> String {
    let seed = uuid::Uuid::now_v7().as_u128();
    let body: String = (0..11)
        .map(|i| char::from(b'0' + ((seed >> (i * 4)) % 10) as u8))
        .collect();
    let check = madoguchi_domain::mynumber::my_number_check_digit(&body).unwrap();
    format!("{body}{check}")
}

async fn audit_verify(host: &Host) -> (i32, String) {
    let mut cmd = tokio::process::Command::new(env!("CARGO_BIN_EXE_madoguchi"));
    cmd.args(["audit", "verify", "--tenant", TENANT])
        .arg("--data-dir")
        .arg(&host.data_dir);
    if let Some(ep) = &host.endpoint {
        cmd.args(["--backend", "aws", "--endpoint", ep])
            .arg("--aws-prefix")
            .arg(aws_prefix(&host.data_dir))
            .env("AWS_ACCESS_KEY_ID", "testing")
            .env("AWS_SECRET_ACCESS_KEY", "testing")
            .env("AWS_REGION", "ap-northeast-1");
    }
    let out = cmd.output().await.unwrap();
    let text = format!(
        "{}{}",
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
    (out.status.code().unwrap_or(-1), text)
}

async fn walk(host: Host) {
    let admin = Api::new(&host, host.token_depts("admin", TENANT, "admin-1", &[]));
    let clerk = Api::new(
        &host,
        host.token_depts("staff", TENANT, "clerk-1", &["shimin-ka"]),
    );
    let clerk2 = Api::new(
        &host,
        host.token_depts("staff", TENANT, "clerk-2", &["shimin-ka"]),
    );
    let welfare = Api::new(
        &host,
        host.token_depts("staff", TENANT, "welfare-1", &["fukushi"]),
    );
    let stranger = Api::for_tenant(
        &host,
        host.token_depts("admin", OTHER_TENANT, "admin-x", &["shimin-ka"]),
        TENANT,
    );
    let citizen_token = host.token_for(
        "citizen",
        TENANT,
        600,
        "citizen-1",
        Some("hanako@example.jp"),
    );
    let citizen = Api::new(&host, citizen_token);

    // The administrator sets up the tree; staff cannot.
    let org = json!({"departments": [
        {"id": "shimin", "name": "市民部"},
        {"id": "shimin-ka", "name": "市民課", "parent": "shimin"},
        {"id": "fukushi", "name": "福祉課"}
    ]});
    clerk
        .ok(
            Method::PUT,
            "/staff/org",
            Some(org.clone()),
            &[("if-match", "0")],
            403,
        )
        .await;
    let looped = json!({"departments": [
        {"id": "a", "name": "A", "parent": "b"}, {"id": "b", "name": "B", "parent": "a"}
    ]});
    let (p, _) = admin
        .ok(
            Method::PUT,
            "/staff/org",
            Some(looped),
            &[("if-match", "0")],
            422,
        )
        .await;
    assert_eq!(p["errors"][0]["code"], "dept.cycle");
    admin
        .ok(
            Method::PUT,
            "/staff/org",
            Some(org),
            &[("if-match", "0")],
            200,
        )
        .await;

    // The clerk creates the form for their own department (not for another), publishes it.
    clerk
        .ok(
            Method::POST,
            "/manage/forms",
            Some(json!({"slug": SLUG, "definition": definition(), "department": "fukushi"})),
            &[],
            403,
        )
        .await;
    clerk
        .ok(
            Method::POST,
            "/manage/forms",
            Some(json!({"slug": SLUG, "definition": definition(), "department": "shimin-ka"})),
            &[],
            201,
        )
        .await;
    welfare
        .ok(
            Method::POST,
            &format!("/manage/forms/{SLUG}/publish"),
            None,
            &[("if-match", "1")],
            403,
        )
        .await;
    clerk
        .ok(
            Method::POST,
            &format!("/manage/forms/{SLUG}/publish"),
            None,
            &[("if-match", "1")],
            200,
        )
        .await;
    // The administrator adds the 個人番号 permission for 市民部 (covering 市民課).
    let (grants, etag) = admin
        .ok(
            Method::GET,
            &format!("/staff/forms/{SLUG}/grants"),
            None,
            &[],
            200,
        )
        .await;
    assert_eq!(grants["owner"], "shimin-ka");
    let mut g = grants.clone();
    g["grants"]["shimin"] = json!(["decrypt"]);
    let (g, _) = admin
        .ok(
            Method::PUT,
            &format!("/staff/forms/{SLUG}/grants"),
            Some(g),
            &[("if-match", etag.as_deref().unwrap())],
            200,
        )
        .await;
    assert_eq!(g["grants"]["shimin"], json!(["view", "decrypt"]));

    // A citizen applies; the name carries a character CP932 cannot hold.
    let number = my_number();
    let answers = json!({
        "applicant": {"family": "𠮷田", "given": "花子"},
        "my_number": number,
        "phone": "0725-33-1131"
    });
    let (form, _) = citizen
        .ok(Method::GET, &format!("/forms/{SLUG}"), None, &[], 200)
        .await;
    let version = form["version"].as_u64().unwrap();
    let key = uuid::Uuid::now_v7().to_string();
    let (submitted, _) = citizen
        .ok(
            Method::POST,
            &format!("/forms/{SLUG}/applications"),
            Some(json!({"form_version": version, "answers": answers})),
            &[("idempotency-key", &key)],
            201,
        )
        .await;
    let id = submitted["application_id"].as_str().unwrap().to_owned();
    let receipt = submitted["receipt_number"].as_str().unwrap().to_owned();
    let app = format!("/staff/applications/{id}");

    // Who sees what.
    let (list, _) = clerk
        .ok(
            Method::GET,
            &format!("/staff/applications?form={SLUG}"),
            None,
            &[],
            200,
        )
        .await;
    assert_eq!(list["items"].as_array().unwrap().len(), 1);
    assert_eq!(list["items"][0]["receipt"], json!(receipt));
    assert_eq!(list["items"][0]["applicant_name"], "𠮷田\u{3000}花子");
    let (by_name, _) = clerk
        .ok(
            Method::GET,
            "/staff/applications?name=%E8%8A%B1%E5%AD%90",
            None,
            &[],
            200,
        )
        .await;
    assert_eq!(by_name["items"].as_array().unwrap().len(), 1);
    let (list, _) = welfare
        .ok(Method::GET, "/staff/applications", None, &[], 200)
        .await;
    assert_eq!(list["items"], json!([]));
    welfare
        .ok(
            Method::GET,
            &format!("/staff/applications?form={SLUG}"),
            None,
            &[],
            403,
        )
        .await;
    welfare.ok(Method::GET, &app, None, &[], 404).await;
    welfare
        .ok(
            Method::GET,
            &format!("/staff/applications?receipt={receipt}"),
            None,
            &[],
            200,
        )
        .await
        .0["items"]
        .as_array()
        .unwrap()
        .is_empty()
        .then_some(())
        .expect("the other department finds nothing by receipt number");
    stranger.ok(Method::GET, &app, None, &[], 404).await;
    stranger
        .ok(Method::GET, "/staff/applications", None, &[], 403)
        .await;
    citizen.ok(Method::GET, &app, None, &[], 404).await;

    // Detail: 個人番号 masked.
    let (detail, etag) = clerk.ok(Method::GET, &app, None, &[], 200).await;
    let v1 = etag.unwrap();
    let row = detail["rows"]
        .as_array()
        .unwrap()
        .iter()
        .find(|r| r["field"] == "my_number")
        .unwrap()
        .clone();
    assert_eq!(row["sensitive"], true);
    assert_eq!(row["display"], format!("********{}", &number[8..]));
    assert!(!detail.to_string().contains(&number));
    assert_eq!(detail["allowed_moves"], json!(["in_review", "rejected"]));

    // An invalid move lists the allowed ones.
    let (p, _) = clerk
        .ok(
            Method::POST,
            &format!("{app}/status"),
            Some(json!({"to": "completed"})),
            &[("if-match", &v1)],
            409,
        )
        .await;
    let allowed: Vec<&str> = p["errors"]
        .as_array()
        .unwrap()
        .iter()
        .map(|e| e["message"].as_str().unwrap())
        .collect();
    assert_eq!(allowed, ["in_review", "rejected"]);

    // Two staff move it at once from the same version: one wins, one gets 409.
    let status = format!("{app}/status");
    let stale = [("if-match", v1.as_str())];
    let (a, b) = tokio::join!(
        clerk.send(
            Method::POST,
            &status,
            Some(json!({"to": "in_review"})),
            &stale
        ),
        clerk2.send(
            Method::POST,
            &status,
            Some(json!({"to": "in_review"})),
            &stale
        ),
    );
    let mut codes = [a.status().as_u16(), b.status().as_u16()];
    codes.sort();
    assert_eq!(codes, [200, 409]);
    let (detail, etag) = clerk.ok(Method::GET, &app, None, &[], 200).await;
    assert_eq!(detail["status"], "in_review");
    let v = etag.unwrap();

    // 差戻: the phone number, with a reason.
    clerk
        .ok(
            Method::POST,
            &status,
            Some(json!({"to": "returned", "fields": ["phone"]})),
            &[("if-match", &v)],
            422,
        )
        .await;
    let (detail, etag) = clerk
        .ok(
            Method::POST,
            &status,
            Some(json!({"to": "returned", "fields": ["phone"], "message": "電話番号がつながりません。"})),
            &[("if-match", &v)],
            200,
        )
        .await;
    assert_eq!(detail["status"], "returned");
    assert!(etag.is_some());

    // The citizen is told, sees what to fix, and fixes only that.
    let (mine, citizen_etag) = citizen
        .ok(
            Method::GET,
            &format!("/my/applications/{id}"),
            None,
            &[],
            200,
        )
        .await;
    assert_eq!(mine["status"], "returned");
    assert!(!mine.to_string().contains("memo"));
    let citizen_etag = citizen_etag.unwrap();
    citizen
        .ok(
            Method::PUT,
            &format!("/my/applications/{id}/correction"),
            Some(json!({"answers": {"remarks": "x"}})),
            &[("if-match", &citizen_etag)],
            422,
        )
        .await;
    citizen
        .ok(
            Method::PUT,
            &format!("/my/applications/{id}/correction"),
            Some(json!({"answers": {"phone": "0725-33-1132"}})),
            &[("if-match", &citizen_etag)],
            200,
        )
        .await;
    wait_mail_containing(&host, "hanako@example.jp", "修正のお願い").await;

    // Back with staff: memo, reveal (audited), completion.
    let (detail, etag) = clerk.ok(Method::GET, &app, None, &[], 200).await;
    assert_eq!(detail["status"], "in_review");
    let phone = detail["rows"]
        .as_array()
        .unwrap()
        .iter()
        .find(|r| r["field"] == "phone")
        .unwrap()["display"]
        .clone();
    assert!(phone.as_str().unwrap().ends_with("1132"), "{phone}");
    clerk
        .ok(
            Method::POST,
            &format!("{app}/memos"),
            Some(json!({"text": "電話で本人確認済み"})),
            &[],
            201,
        )
        .await;
    welfare
        .ok(
            Method::POST,
            &format!("{app}/memos"),
            Some(json!({"text": "x"})),
            &[],
            404,
        )
        .await;
    let (memos, _) = clerk
        .ok(Method::GET, &format!("{app}/memos"), None, &[], 200)
        .await;
    assert_eq!(memos["items"][0]["text"], "電話で本人確認済み");
    assert_eq!(memos["items"][0]["author"], "clerk-1");
    let (revealed, _) = clerk
        .ok(
            Method::POST,
            &format!("{app}/decrypt"),
            Some(json!({"field": "my_number", "reason": "core_system_entry", "reference": "R8-1234"})),
            &[],
            200,
        )
        .await;
    assert_eq!(revealed["value"], json!(number));
    clerk
        .ok(
            Method::POST,
            &format!("{app}/decrypt"),
            Some(json!({"field": "phone", "reason": "identity_check"})),
            &[],
            422,
        )
        .await;
    let (_, v) = clerk
        .ok(
            Method::POST,
            &status,
            Some(json!({"to": "completed"})),
            &[("if-match", etag.as_deref().unwrap())],
            200,
        )
        .await;
    assert!(v.is_some());
    wait_mail_containing(&host, "hanako@example.jp", "手続完了").await;
    let (mine, _) = citizen
        .ok(
            Method::GET,
            &format!("/my/applications/{id}"),
            None,
            &[],
            200,
        )
        .await;
    assert_eq!(mine["status"], "completed");
    citizen
        .ok(
            Method::POST,
            &format!("/my/applications/{id}/withdraw"),
            None,
            &[("if-match", "99")],
            409,
        )
        .await;

    // Export in CP932: the unholdable character is replaced and reported; 個人番号 masked.
    let today = jiff::Zoned::now()
        .with_time_zone(jiff::tz::TimeZone::fixed(jiff::tz::offset(9)))
        .date();
    let (export, _) = clerk
        .ok(
            Method::POST,
            "/staff/exports",
            Some(json!({
                "form": SLUG, "from": today.yesterday().unwrap().to_string(), "to": today.to_string(),
                "columns": ["receipt", "applicant_name", "my_number", "phone", "status"],
                "encoding": "cp932"
            })),
            &[],
            201,
        )
        .await;
    assert_eq!(export["rows"], 1);
    assert_eq!(export["substitutions_total"], 1);
    assert_eq!(export["substitutions"][0]["code_point"], "U+20BB7");
    let bytes = reqwest::get(export["download_url"].as_str().unwrap())
        .await
        .unwrap()
        .bytes()
        .await
        .unwrap();
    let (text, _, bad) = encoding_rs::SHIFT_JIS.decode(&bytes);
    assert!(!bad);
    assert!(text.contains(&receipt), "{text}");
    assert!(text.contains("〓田\u{3000}花子"), "{text}");
    assert!(text.contains("完了"));
    assert!(!text.contains(&number));
    welfare
        .ok(
            Method::POST,
            "/staff/exports",
            Some(json!({"form": SLUG, "from": "2026-01-01", "to": "2026-12-31", "columns": ["receipt"]})),
            &[],
            403,
        )
        .await;

    // Reports count it.
    let (report, _) = clerk
        .ok(Method::GET, "/staff/reports", None, &[], 200)
        .await;
    assert_eq!(report["total"], 1, "{report}");
    assert_eq!(report["completed"], 1);
    let base = format!("{}/v1/tenants/{TENANT}/staff/reports", host.base);
    let csv = reqwest::Client::new()
        .get(format!("{base}/usage.csv"))
        .bearer_auth(&clerk.token)
        .send()
        .await
        .unwrap()
        .text()
        .await
        .unwrap();
    assert!(csv.contains("転出届"), "{csv}");
    let svg = reqwest::Client::new()
        .get(format!("{base}/usage.svg"))
        .bearer_auth(&clerk.token)
        .send()
        .await
        .unwrap();
    assert_eq!(svg.headers()["content-type"], "image/svg+xml");
    assert!(svg.text().await.unwrap().contains("<svg"));

    // A staff file: stored, listed, downloaded through a short-lived link.
    let pdf = b"%PDF-1.7\n1 0 obj\n<<>>\nendobj\ntrailer\n<<>>\n%%EOF\n".to_vec();
    let res = reqwest::Client::new()
        .post(format!(
            "{}/v1/tenants/{TENANT}{app}/staff-files",
            host.base
        ))
        .bearer_auth(&clerk.token)
        .header("x-file-name", "%E4%BA%A4%E4%BB%98%E8%A8%98%E9%8C%B2.pdf")
        .body(pdf.clone())
        .send()
        .await
        .unwrap();
    assert_eq!(res.status().as_u16(), 201);
    let file: Value = res.json().await.unwrap();
    assert_eq!(file["file_name"], "交付記録.pdf");
    let (link, _) = clerk
        .ok(
            Method::GET,
            &format!("{app}/files/{}", file["id"].as_str().unwrap()),
            None,
            &[],
            200,
        )
        .await;
    let got = reqwest::get(link["url"].as_str().unwrap())
        .await
        .unwrap()
        .bytes()
        .await
        .unwrap();
    assert_eq!(got.as_ref(), pdf.as_slice());
    welfare
        .ok(
            Method::GET,
            &format!("{app}/files/{}", file["id"].as_str().unwrap()),
            None,
            &[],
            404,
        )
        .await;

    // The audit trail holds the reveal and the export, and nothing personal.
    let (records, _) = admin
        .ok(Method::GET, "/staff/audit?limit=500", None, &[], 200)
        .await;
    let actions: Vec<&str> = records["items"]
        .as_array()
        .unwrap()
        .iter()
        .map(|r| r["action"].as_str().unwrap())
        .collect();
    for needed in [
        "org_change",
        "form_create",
        "form_publish",
        "grant_change",
        "staff_login",
        "application_read",
        "status_change",
        "memo",
        "my_number_decrypt",
        "export",
    ] {
        assert!(
            actions.contains(&needed),
            "{needed} missing from {actions:?}"
        );
    }
    // Hashes are hex and may contain any digits: look at everything else.
    let mut stripped = records.clone();
    for r in stripped["items"].as_array_mut().unwrap() {
        let o = r.as_object_mut().unwrap();
        o.remove("hash");
        o.remove("prev");
    }
    let dump = stripped.to_string();
    for secret in [
        number.as_str(),
        "花子",
        "𠮷田",
        "0725331",
        "0725-33",
        "hanako@",
    ] {
        assert!(!dump.contains(secret), "{secret} in the audit log: {dump}");
    }
    clerk.ok(Method::GET, "/staff/audit", None, &[], 403).await;
    let (report, _) = admin
        .ok(Method::POST, "/staff/audit/verify", None, &[], 200)
        .await;
    assert_eq!(report["findings"], json!([]), "{report}");

    // Offline verification passes, then catches an edited record and says where.
    let (code, out) = audit_verify(&host).await;
    assert_eq!(code, 0, "{out}");
    let items = host.items().await;
    let pk = format!("{TENANT}#AUDIT");
    let page = items
        .query(QueryRequest::partition(pk.clone()).limit(1000))
        .await
        .unwrap();
    let mut victim = page
        .items
        .into_iter()
        .find(|i| i.data["action"] == "my_number_decrypt")
        .expect("the reveal is recorded");
    let seq = victim.data["seq"].as_u64().unwrap();
    victim.data["actor"] = json!("someone-else");
    items.put(victim, Condition::None).await.unwrap();
    let (code, out) = audit_verify(&host).await;
    assert_eq!(code, 1, "{out}");
    assert!(out.contains(&format!("seq {seq}")), "{out}");

    let status = host.stop().await;
    assert!(status.success());
}

async fn wait_mail_containing(host: &Host, to: &str, needle: &str) {
    for _ in 0..100 {
        let found = match &host.endpoint {
            None => std::fs::read_dir(host.data_dir.join("outbox"))
                .into_iter()
                .flatten()
                .filter_map(|e| std::fs::read_to_string(e.ok()?.path()).ok())
                .any(|m| m.contains(to) && decoded_subject(&m).contains(needle)),
            Some(ep) => {
                let data: Value = reqwest::get(format!("{ep}/moto-api/data.json"))
                    .await
                    .unwrap()
                    .json()
                    .await
                    .unwrap();
                // moto keeps each sent message as an object: one that names the address and
                // has the subject among its strings.
                let mut found = false;
                for list in data["ses"].as_object().into_iter().flat_map(|m| m.values()) {
                    for m in list.as_array().into_iter().flatten() {
                        let mut strings = Vec::new();
                        collect(m, &mut strings);
                        if strings.iter().any(|s| s.contains(to))
                            && strings.iter().any(|s| s.contains(needle))
                        {
                            found = true;
                        }
                    }
                }
                found
            }
        };
        if found {
            return;
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    panic!("no mail to {to} about {needle:?}");
}

fn collect(v: &Value, out: &mut Vec<String>) {
    match v {
        Value::String(s) => out.push(s.clone()),
        Value::Array(a) => a.iter().for_each(|x| collect(x, out)),
        Value::Object(o) => o.values().for_each(|x| collect(x, out)),
        _ => {}
    }
}

/// The subject of a local outbox message (RFC 2047 encoded words decoded).
fn decoded_subject(message: &str) -> String {
    use base64::Engine;
    let head = message
        .split("\r\n\r\n")
        .next()
        .unwrap_or("")
        .replace("\r\n ", " ");
    let Some(line) = head.lines().find(|l| l.starts_with("Subject:")) else {
        return String::new();
    };
    line.split_whitespace()
        .filter_map(|w| {
            let inner = w.strip_prefix("=?UTF-8?B?")?.strip_suffix("?=")?;
            base64::engine::general_purpose::STANDARD.decode(inner).ok()
        })
        .map(|b| String::from_utf8_lossy(&b).into_owned())
        .collect()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn embedded() {
    walk(Host::start(None).await).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn aws_on_moto() {
    walk(Host::start(Some(madoguchi_tests::aws_endpoint())).await).await;
}
