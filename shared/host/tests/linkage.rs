//! Core-system linkage through the real `madoguchi` binary, on both adapter sets: a 住民記録
//! file dropped into the inbox is applied; counter staff look a resident and their household
//! up (by 宛名番号, and by name + birth date), audited, while other departments cannot; an
//! application completed by staff goes out as a CP932 file whose manifest, written last,
//! checks out; the staff detail shows it written.

mod common;
#[path = "../../linkage/tests/common/mod.rs"]
mod rows;

use std::io::Cursor;
use std::sync::Arc;
use std::time::Duration;

use bytes::Bytes;
use common::*;
use madoguchi_linkage::{ConversionTable, LayoutReader, OutboundConfig, RowOutcome};
use madoguchi_ports::{BlobStore, QueryRequest, SortKeyCondition, SystemClock};
use reqwest::Method;
use serde_json::{Value, json};
use sha2::{Digest, Sha256};
use tokio::io::AsyncReadExt;

const SLUG: &str = "tennyu";

const OUTBOUND: &str = r#"{
  "systems": {
    "jumin": {
      "layout": {
        "id": "idou", "label": "住民異動届", "encoding": "cp932", "header": true, "kind": "full",
        "columns": [
          {"name": "receipt", "label": "受付番号", "type": "text", "required": true},
          {"name": "name", "label": "氏名", "type": "text", "required": true},
          {"name": "kana", "label": "氏名フリガナ", "type": "kana"},
          {"name": "birth_date", "label": "生年月日", "type": "date", "date_format": "wareki"},
          {"name": "sex", "label": "性別", "type": "code", "code_table": "sex"},
          {"name": "my_number", "label": "個人番号", "type": "my_number"}
        ],
        "code_tables": {"sex": {"codes": {"1": "男", "2": "女"}}}
      },
      "forms": {
        "tennyu": {"columns": {
          "receipt": "app.receipt",
          "name": {"join": ["answers.name.family", "answers.name.given"], "sep": "　"},
          "kana": {"join": ["answers.name.family_kana", "answers.name.given_kana"], "sep": "　"},
          "birth_date": "answers.birth_date",
          "sex": {"from": "answers.sex", "map": {"male": "1", "female": "2"}},
          "my_number": "answers.my_number"
        }}
      }
    }
  }
}"#;

fn definition() -> Value {
    json!({
        "title": "転入届",
        "access": "account",
        "items": [
            {"id": "name", "type": "name", "kana": true, "label": "氏名", "required": true},
            {"id": "birth_date", "type": "date", "label": "生年月日", "required": true},
            {"id": "sex", "type": "radio", "label": "性別", "required": true,
             "options": [{"value": "male", "label": "男"}, {"value": "female", "label": "女"}]},
            {"id": "my_number", "type": "my_number", "label": "個人番号", "required": true}
        ]
    })
}

/// The linkage bucket, and where outbound files land with their key prefix.
async fn stores(host: &Host) -> (Arc<dyn BlobStore>, Arc<dyn BlobStore>, &'static str) {
    let clock = Arc::new(SystemClock);
    match &host.endpoint {
        None => {
            let b = madoguchi_embedded::EmbeddedBackend::open(&host.data_dir, &host.base, clock)
                .unwrap();
            (b.blobs("linkage"), b.outbox(), "")
        }
        Some(ep) => {
            let b = madoguchi_aws::AwsBackend::local(ep, clock).await;
            let linkage = b.blobs(&format!("{}-linkage", aws_prefix(&host.data_dir)));
            (linkage.clone(), linkage, "outbound/")
        }
    }
}

async fn read(blobs: &dyn BlobStore, key: &str) -> Vec<u8> {
    let (_, mut body) = blobs.get(key).await.unwrap();
    let mut out = Vec::new();
    body.read_to_end(&mut out).await.unwrap();
    out
}

async fn ingest_residents(host: &Host) {
    let mut text = format!("{}\r\n", rows::jumin_header());
    // Rows 3, 4 and 5 share 世帯番号 0000500001 (row 3 is its 世帯主); row 6 lives elsewhere.
    for i in 3..=6 {
        text.push_str(&rows::line(&rows::fields(i)));
    }
    let dir = host.data_dir.join("inbox").join("jumin");
    std::fs::create_dir_all(&dir).unwrap();
    std::fs::write(dir.join(".part"), text).unwrap();
    std::fs::rename(dir.join(".part"), dir.join("full-20261201.csv")).unwrap();
    let items = host.items().await;
    for _ in 0..300 {
        let done = items
            .query(
                QueryRequest::partition(format!("{TENANT}#LINKAGE#IN#jumin"))
                    .sk(SortKeyCondition::BeginsWith("CKPT#".into())),
            )
            .await
            .unwrap()
            .items
            .iter()
            .any(|i| i.data["state"] == "done");
        if done {
            return;
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    panic!("the resident file was not applied within 30 s");
}

async fn walk(host: Host) {
    let admin = Api::new(&host, host.token_depts("admin", TENANT, "admin-1", &[]));
    let clerk = Api::new(
        &host,
        host.token_depts("staff", TENANT, "clerk-1", &["shimin-ka"]),
    );
    let welfare = Api::new(
        &host,
        host.token_depts("staff", TENANT, "welfare-1", &["fukushi"]),
    );
    let citizen = Api::new(
        &host,
        host.token_for("citizen", TENANT, 600, "citizen-1", Some("taro@example.jp")),
    );
    // 市民課 works the counter: the administrator lets it look residents up.
    let org = json!({"departments": [
        {"id": "shimin-ka", "name": "市民課", "resident_lookup": true},
        {"id": "fukushi", "name": "福祉課"}
    ]});
    admin
        .ok(
            Method::PUT,
            "/staff/org",
            Some(org),
            &[("if-match", "0")],
            200,
        )
        .await;

    // ---- in: the 住民記録 file, then counter look-ups.
    ingest_residents(&host).await;
    let (found, _) = clerk
        .ok(Method::GET, "/staff/residents/0001000004", None, &[], 200)
        .await;
    assert_eq!(found["resident"]["atena_number"], "0001000004");
    assert_eq!(found["resident"]["name"], "田中　翔太");
    let household: Vec<&str> = found["household"]
        .as_array()
        .unwrap()
        .iter()
        .map(|m| m["atena_number"].as_str().unwrap())
        .collect();
    assert_eq!(
        household,
        ["0001000003", "0001000004", "0001000005"],
        "世帯主 first"
    );
    assert_eq!(found["household"][0]["householder"], true);
    let masked = found["resident"]["my_number_masked"].as_str().unwrap();
    assert!(masked.starts_with("****") && masked.len() == 12, "{masked}");
    clerk
        .ok(Method::GET, "/staff/residents/0009999999", None, &[], 404)
        .await;
    // By name (folded: hiragana, no space) and birth date: row 3 is 高橋 美咲, 1943-04-04.
    let (matches, _) = clerk
        .ok(
            Method::POST,
            "/staff/residents/search",
            Some(json!({"name": "たかはしみさき", "birth_date": "1943-04-04"})),
            &[],
            200,
        )
        .await;
    assert_eq!(matches["residents"].as_array().unwrap().len(), 1);
    assert_eq!(matches["residents"][0]["atena_number"], "0001000003");
    let (p, _) = clerk
        .ok(
            Method::POST,
            "/staff/residents/search",
            Some(json!({"name": "", "birth_date": "1943-02-30"})),
            &[],
            422,
        )
        .await;
    let fields: Vec<&str> = p["errors"]
        .as_array()
        .unwrap()
        .iter()
        .map(|e| e["field"].as_str().unwrap())
        .collect();
    assert_eq!(fields, ["name", "birth_date"]);
    // Need to know: another department, the administrator, a citizen: no.
    welfare
        .ok(Method::GET, "/staff/residents/0001000004", None, &[], 403)
        .await;
    admin
        .ok(Method::GET, "/staff/residents/0001000004", None, &[], 403)
        .await;
    citizen
        .ok(Method::GET, "/staff/residents/0001000004", None, &[], 403)
        .await;

    // ---- out: a completed 転入届 goes to the 住民記録 system.
    let (linkage, outbox, prefix) = stores(&host).await;
    linkage
        .put(
            "config/outbound.json",
            Bytes::from_static(OUTBOUND.as_bytes()),
            None,
        )
        .await
        .unwrap();
    clerk
        .ok(
            Method::POST,
            "/manage/forms",
            Some(json!({"slug": SLUG, "definition": definition(), "department": "shimin-ka"})),
            &[],
            201,
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
    let number = rows::my_number(4242);
    let answers = json!({
        "name": {"family": "窓口", "given": "太郎", "family_kana": "マドグチ", "given_kana": "タロウ"},
        "birth_date": "1960-05-01",
        "sex": "male",
        "my_number": number
    });
    let (submitted, _) = citizen
        .ok(
            Method::POST,
            &format!("/forms/{SLUG}/applications"),
            Some(json!({"form_version": 1, "answers": answers})),
            &[("idempotency-key", "linkage-1")],
            201,
        )
        .await;
    let id = submitted["application_id"].as_str().unwrap().to_owned();
    let receipt = submitted["receipt_number"].as_str().unwrap().to_owned();
    let app = format!("/staff/applications/{id}");
    let (_, etag) = clerk.ok(Method::GET, &app, None, &[], 200).await;
    let (_, etag) = clerk
        .ok(
            Method::POST,
            &format!("{app}/status"),
            Some(json!({"to": "in_review"})),
            &[("if-match", etag.as_deref().unwrap())],
            200,
        )
        .await;
    // In review is not what sends it; completion is.
    clerk
        .ok(
            Method::POST,
            &format!("{app}/status"),
            Some(json!({"to": "completed"})),
            &[("if-match", etag.as_deref().unwrap())],
            200,
        )
        .await;
    let mut manifests = Vec::new();
    for _ in 0..300 {
        manifests = outbox
            .list(&format!("{prefix}jumin/"), None, 100)
            .await
            .unwrap()
            .into_iter()
            .filter(|m| m.key.ends_with(".manifest.json"))
            .collect();
        if !manifests.is_empty() {
            break;
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    assert_eq!(manifests.len(), 1, "one file for one completed application");
    let manifest: Value = serde_json::from_slice(&read(&*outbox, &manifests[0].key).await).unwrap();
    let folder = manifests[0].key.rsplit_once('/').unwrap().0;
    let data = read(
        &*outbox,
        &format!("{folder}/{}", manifest["file"].as_str().unwrap()),
    )
    .await;
    assert_eq!(manifest["rows"], 1);
    assert_eq!(manifest["sha256"], hex::encode(Sha256::digest(&data)));
    assert_eq!(manifest["applications"][0]["receipt"], json!(receipt));
    let config = OutboundConfig::from_json(OUTBOUND).unwrap();
    let table = ConversionTable::empty();
    let mut reader =
        LayoutReader::new(&config.systems["jumin"].layout, &table, Cursor::new(data)).unwrap();
    let Some(RowOutcome::Valid { record, .. }) = reader.next_row().unwrap() else {
        panic!("the file's row does not read back");
    };
    assert_eq!(
        record.get("name").and_then(|v| v.as_str()),
        Some("窓口　太郎")
    );
    assert_eq!(record.get("sex").and_then(|v| v.as_str()), Some("1"));
    match record.get("my_number") {
        Some(madoguchi_linkage::Value::MyNumber(n)) => assert_eq!(n.expose(), number),
        other => panic!("個人番号 column: {other:?}"),
    }
    assert!(reader.next_row().unwrap().is_none());
    let (detail, _) = clerk.ok(Method::GET, &app, None, &[], 200).await;
    assert_eq!(detail["linkage"][0]["system"], "jumin");
    assert_eq!(detail["linkage"][0]["state"], "written");

    // Every look-up is in the audit log, with who and which 宛名番号, never a name.
    let (records, _) = admin
        .ok(Method::GET, "/staff/audit?limit=500", None, &[], 200)
        .await;
    let lookups: Vec<&Value> = records["items"]
        .as_array()
        .unwrap()
        .iter()
        .filter(|r| r["action"] == "resident_lookup")
        .collect();
    assert_eq!(lookups.len(), 3, "two by number (one a miss), one by name");
    assert_eq!(
        lookups[0]["detail"]["found"],
        json!(["0001000004", "0001000003", "0001000005"])
    );
    let exports = records["items"]
        .as_array()
        .unwrap()
        .iter()
        .filter(|r| r["action"] == "export" && r["actor"] == "system:linkage-outbound")
        .count();
    assert_eq!(exports, 1);
    let all = serde_json::to_string(&records).unwrap();
    assert!(!all.contains("高橋") && !all.contains("たかはし") && !all.contains(&number));

    let logs = host.logs.clone();
    host.stop().await;
    let logs = logs.lock().unwrap().clone();
    for secret in ["田中", "高橋", "たかはし", "窓口　太郎", number.as_str()] {
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
