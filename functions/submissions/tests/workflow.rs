//! The citizen's moves on their own applications through the real router on a fresh embedded
//! backend: 取下げ (withdraw) and 再提出 after 差戻 (correct the flagged fields), with
//! `If-Match`, the workflow's refusals, another citizen's application, and the 個人番号 that
//! must survive a correction sealed and unchanged.

mod common;

use std::time::Duration;

use axum::http::Method;
use common::*;
use madoguchi_applications::keys::{APP_SK, app_pk, form_apps_pk};
use madoguchi_applications::{
    ApplicationRecord, ApplicationStatus, CorrectionRequest, NotifyMessage, StatusChange,
    application_item,
};
use madoguchi_domain::ids::ApplicationId;
use madoguchi_fieldcrypt::{Binding, Sealed};
use madoguchi_ports::{Condition, Index, ItemStore, Key, QueryRequest};
use serde_json::{Value, json};

const SLUG: &str = "kosodate-kyufu";

/// The test form with a phone number and status notices.
fn workflow_definition() -> Value {
    json!({
        "title": "子育て応援給付金の申請",
        "access": "either",
        "notify": ["received", "status_changed"],
        "items": [
            {"id": "applicant", "type": "text", "label": "氏名", "required": true, "max_length": 50},
            {"id": "phone", "type": "phone", "label": "電話番号", "required": true},
            {"id": "my_number", "type": "my_number", "label": "個人番号"},
            {"id": "passbook", "type": "attachment", "label": "通帳の写し",
             "extensions": ["pdf", "png"], "max_file_mb": 2}
        ]
    })
}

async fn app_with_form() -> App {
    let app = App::new();
    app.publish(SLUG, 1, "published", workflow_definition())
        .await;
    app
}

/// Submits an application and returns its id.
async fn submitted(app: &App, who: &Auth, answers: Value) -> String {
    let done = app.submit(SLUG, who, Some("k-1"), 1, answers).await;
    done.ok(201)["application_id"].as_str().unwrap().to_owned()
}

fn answers(number: &str) -> Value {
    json!({"applicant": "山田花子", "phone": "0725-33-1131", "my_number": number})
}

fn app_key(id: &str) -> Key {
    Key::new(
        app_pk(&tenant(), &ApplicationId::parse(id).unwrap()),
        APP_SK,
    )
}

async fn stored(app: &App, id: &str) -> (ApplicationRecord, u64) {
    let item = app
        .backend
        .items()
        .get(&app_key(id))
        .await
        .unwrap()
        .unwrap();
    assert!(
        item.gsi1.is_some(),
        "every write keeps the staff-list entry"
    );
    (serde_json::from_value(item.data).unwrap(), item.version)
}

/// Staff's side, done directly in the store: read → modify → put with `application_item`.
async fn staff_sets(app: &App, id: &str, change: impl FnOnce(&mut ApplicationRecord)) {
    let (mut record, version) = stored(app, id).await;
    change(&mut record);
    let mut item = application_item(&tenant(), &record);
    item.version = version + 1;
    app.backend
        .items()
        .put(item, Condition::VersionEquals(version))
        .await
        .unwrap();
}

/// Staff move it to review, then return it asking for `fields`.
async fn returned(app: &App, id: &str, fields: &[&str]) {
    staff_sets(app, id, |r| {
        for (from, to, message) in [
            (ApplicationStatus::Received, ApplicationStatus::InReview, ""),
            (
                ApplicationStatus::InReview,
                ApplicationStatus::Returned,
                "電話番号がつながりません。",
            ),
        ] {
            r.timeline.push(StatusChange {
                from,
                to,
                at: "2026-04-02T00:00:00Z".into(),
                by: "staff".into(),
                message: message.into(),
            });
        }
        r.status = ApplicationStatus::Returned;
        r.correction = Some(CorrectionRequest {
            fields: fields.iter().map(|f| (*f).to_owned()).collect(),
            message: "電話番号をご確認ください。".into(),
        });
    })
    .await;
}

fn etag(res: &Res) -> String {
    res.headers["etag"].to_str().unwrap().to_owned()
}

async fn detail(app: &App, who: &Auth, id: &str) -> Res {
    app.get(&format!("/my/applications/{id}"), who).await
}

async fn withdraw(app: &App, who: &Auth, id: &str, if_match: Option<&str>) -> Res {
    let headers: Vec<(&str, &str)> = if_match.map(|v| ("if-match", v)).into_iter().collect();
    app.call(
        Method::POST,
        &format!("/my/applications/{id}/withdraw"),
        who,
        None,
        &headers,
    )
    .await
}

async fn correct(app: &App, who: &Auth, id: &str, if_match: Option<&str>, answers: Value) -> Res {
    let headers: Vec<(&str, &str)> = if_match.map(|v| ("if-match", v)).into_iter().collect();
    app.call(
        Method::PUT,
        &format!("/my/applications/{id}/correction"),
        who,
        Some(json!({ "answers": answers })),
        &headers,
    )
    .await
}

async fn history_statuses(app: &App, who: &Auth) -> Vec<Value> {
    app.get("/my/applications", who).await.ok(200)["applications"]
        .as_array()
        .unwrap()
        .iter()
        .map(|a| a["status"].clone())
        .collect()
}

/// The notices queued so far (consumed).
async fn notices(app: &App) -> Vec<NotifyMessage> {
    let mut out = Vec::new();
    loop {
        let batch = app
            .state
            .notify
            .receive(10, Duration::from_millis(10))
            .await
            .unwrap();
        if batch.is_empty() {
            return out;
        }
        let receipts: Vec<String> = batch.iter().map(|m| m.receipt.clone()).collect();
        out.extend(
            batch
                .iter()
                .map(|m| serde_json::from_str::<NotifyMessage>(&m.body).unwrap()),
        );
        app.state.notify.delete(&receipts).await.unwrap();
    }
}

// ------------------------------------------------------------------------------------------
// 取下げ

#[tokio::test]
async fn a_received_application_is_withdrawn_and_the_history_says_so() {
    let app = app_with_form().await;
    let c = app.citizen("withdraw-1");
    let id = submitted(&app, &c, answers(&my_number(1))).await;
    assert_eq!(notices(&app).await.len(), 1, "the receipt notice");

    let before = detail(&app, &c, &id).await;
    assert_eq!(before.ok(200)["status"], "received");
    assert_eq!(before.body["status_label"], "受付");
    assert_eq!(before.body["timeline"], json!([]));
    assert_eq!(before.body["correction"], Value::Null);
    assert_eq!(etag(&before), "\"1\"");

    let res = withdraw(&app, &c, &id, Some(&etag(&before))).await;
    let body = res.ok(200);
    assert_eq!(body["status"], "withdrawn");
    assert_eq!(body["status_label"], "取下げ");
    assert_eq!(
        body["timeline"],
        json!([{"from": "received", "from_label": "受付", "to": "withdrawn",
                "to_label": "取下げ", "at": body["timeline"][0]["at"], "by": "citizen",
                "message": ""}])
    );
    assert_eq!(etag(&res), "\"2\"");

    // The detail, the history entry and the record agree; the staff list still has it.
    let after = detail(&app, &c, &id).await;
    assert_eq!(after.ok(200)["status"], "withdrawn");
    assert_eq!(etag(&after), "\"2\"");
    assert_eq!(history_statuses(&app, &c).await, vec![json!("withdrawn")]);
    let (record, version) = stored(&app, &id).await;
    assert_eq!(record.status, ApplicationStatus::Withdrawn);
    assert_eq!(version, 2);
    let listed = app
        .backend
        .items()
        .query(QueryRequest::partition(form_apps_pk(&tenant(), SLUG)).on(Index::Gsi1))
        .await
        .unwrap();
    assert_eq!(listed.items.len(), 1);
    assert_eq!(listed.items[0].data["status"], "withdrawn");

    // The form mails status changes: one notice, numbered by the timeline.
    let queued = notices(&app).await;
    assert_eq!(queued.len(), 1, "{queued:?}");
    assert_eq!(queued[0].event, "status_changed");
    assert_eq!(queued[0].seq, Some(1));
}

#[tokio::test]
async fn withdrawing_twice_is_an_invalid_transition_with_nothing_allowed() {
    let app = app_with_form().await;
    let c = app.citizen("withdraw-2");
    let id = submitted(&app, &c, answers(&my_number(2))).await;
    let first = withdraw(&app, &c, &id, Some("1")).await;
    first.ok(200);
    // With the new version, and with the old one (a retry of the same request): the move
    // is refused for what it is, whatever version the client holds.
    for if_match in [etag(&first), "1".to_owned()] {
        let res = withdraw(&app, &c, &id, Some(&if_match)).await;
        let p = res.problem_of(409, "invalid-transition");
        assert_eq!(p["title"], "この申請は取り下げできません。");
        assert_eq!(p["allowed"], json!([]));
    }
    let (record, version) = stored(&app, &id).await;
    assert_eq!(version, 2, "nothing written twice");
    assert_eq!(record.timeline.len(), 1);
}

#[tokio::test]
async fn withdrawing_needs_the_version_read() {
    let app = app_with_form().await;
    let c = app.citizen("withdraw-3");
    let id = submitted(&app, &c, answers(&my_number(3))).await;
    // Staff moved it to review meanwhile: the citizen's version 1 is stale.
    staff_sets(&app, &id, |r| r.status = ApplicationStatus::InReview).await;
    let p = withdraw(&app, &c, &id, Some("\"1\""))
        .await
        .problem_of(409, "conflict")
        .clone();
    assert_eq!(
        p["title"],
        "ほかの操作で申請が更新されました。もう一度読み込んでください。"
    );
    assert!(p.get("allowed").is_none(), "{p}");
    // Missing: 428; not a version: 422.
    let res = withdraw(&app, &c, &id, None).await;
    res.problem_of(428, "precondition-required");
    assert_eq!(res.body["errors"][0]["field"], "if-match");
    withdraw(&app, &c, &id, Some("latest"))
        .await
        .field_error("if-match", "invalid_format");
    assert_eq!(
        stored(&app, &id).await.0.status,
        ApplicationStatus::InReview
    );
    // With the version now read it goes through, from review too.
    let fresh = etag(&detail(&app, &c, &id).await);
    assert_eq!(fresh, "\"2\"");
    withdraw(&app, &c, &id, Some(&fresh)).await.ok(200);
    assert_eq!(history_statuses(&app, &c).await, vec![json!("withdrawn")]);
}

#[tokio::test]
async fn another_citizens_application_is_not_found() {
    let app = app_with_form().await;
    let a = app.citizen("owner-a");
    let b = app.citizen("owner-b");
    let id = submitted(&app, &a, answers(&my_number(4))).await;
    withdraw(&app, &b, &id, Some("1")).await.problem(404);
    correct(&app, &b, &id, Some("1"), json!({"phone": "090-1234-5678"}))
        .await
        .problem(404);
    for bad in ["not-an-id", "00000000-0000-0000-0000-000000000000"] {
        withdraw(&app, &a, bad, Some("1")).await.problem(404);
    }
    // Staff act through the staff function, never as applicants.
    withdraw(&app, &app.staff(), &id, Some("1"))
        .await
        .problem(403);
    withdraw(&app, &Auth::None, &id, Some("1"))
        .await
        .problem(401);
    assert_eq!(
        stored(&app, &id).await.0.status,
        ApplicationStatus::Received
    );
}

// ------------------------------------------------------------------------------------------
// 差戻 → 再提出

#[tokio::test]
async fn a_returned_application_is_corrected_and_back_in_review() {
    let app = app_with_form().await;
    let c = app.citizen("correct-1");
    let number = my_number(5);
    let id = submitted(&app, &c, answers(&number)).await;
    let (before, _) = stored(&app, &id).await;
    returned(&app, &id, &["phone"]).await;
    notices(&app).await;

    // The detail says what to correct, with the field's label and definition.
    let res = detail(&app, &c, &id).await;
    let body = res.ok(200);
    assert_eq!(body["status"], "returned");
    assert_eq!(body["status_label"], "差戻");
    assert_eq!(body["correction"]["message"], "電話番号をご確認ください。");
    let field = &body["correction"]["fields"][0];
    assert_eq!(field["field"], "phone");
    assert_eq!(field["label"], "電話番号");
    assert_eq!(
        field["display"], "0725331131",
        "fixed lines outside 03/06 show as digits"
    );
    assert_eq!(field["item"]["type"], "phone");
    assert_eq!(body["timeline"][1]["to_label"], "差戻");
    assert_eq!(body["timeline"][1]["message"], "電話番号がつながりません。");
    assert!(!body.to_string().contains(&number));
    assert_eq!(etag(&res), "\"2\"");

    let res = correct(
        &app,
        &c,
        &id,
        Some("\"2\""),
        json!({"phone": "090-1234-5678"}),
    )
    .await;
    let body = res.ok(200).clone();
    assert_eq!(body["status"], "in_review");
    assert_eq!(body["correction"], Value::Null);
    let last = body["timeline"].as_array().unwrap().last().unwrap().clone();
    assert_eq!(last["from"], "returned");
    assert_eq!(last["to"], "in_review");
    assert_eq!(last["by"], "citizen");
    assert_eq!(last["message"], "修正して再提出");
    let phone = body["summary"]
        .as_array()
        .unwrap()
        .iter()
        .find(|r| r["field"] == "phone")
        .unwrap()
        .clone();
    assert_eq!(phone["display"], "090-1234-5678");
    assert!(!body.to_string().contains(&number));
    assert_eq!(etag(&res), "\"3\"");
    assert_eq!(history_statuses(&app, &c).await, vec![json!("in_review")]);

    // The record: phone replaced, everything else as it was, the 個人番号 sealed anew and
    // still the same number.
    let (after, version) = stored(&app, &id).await;
    assert_eq!(version, 3);
    assert_eq!(after.status, ApplicationStatus::InReview);
    assert_eq!(after.correction, None);
    assert_eq!(after.answers["phone"], "09012345678");
    assert_eq!(after.answers["applicant"], before.answers["applicant"]);
    assert_eq!(after.applicant_name.as_deref(), Some("山田花子"));
    assert_eq!(after.blind_indexes, before.blind_indexes);
    assert_ne!(
        after.answers["my_number"]["sealed"], before.answers["my_number"]["sealed"],
        "sealed anew"
    );
    assert_eq!(
        after.answers["my_number"]["masked"],
        before.answers["my_number"]["masked"]
    );
    let sealed: Sealed =
        serde_json::from_value(after.answers["my_number"]["sealed"].clone()).unwrap();
    let plain = app
        .state
        .cipher
        .open(&tenant(), &Binding::new(&id, "my_number"), &sealed)
        .await
        .unwrap();
    assert_eq!(plain.as_slice(), number.as_bytes());
    let item = app
        .backend
        .items()
        .get(&app_key(&id))
        .await
        .unwrap()
        .unwrap();
    assert!(!item.data.to_string().contains(&number));

    let queued = notices(&app).await;
    assert_eq!(queued.len(), 1, "{queued:?}");
    assert_eq!(queued[0].event, "status_changed");
    assert_eq!(queued[0].seq, Some(3));

    // A replay of the same correction finds it in review: refused, nothing changes.
    for if_match in ["\"3\"", "\"2\""] {
        let res = correct(
            &app,
            &c,
            &id,
            Some(if_match),
            json!({"phone": "090-1234-5678"}),
        )
        .await;
        let p = res.problem_of(409, "invalid-transition");
        assert_eq!(p["allowed"], json!(["withdrawn"]));
    }
    assert_eq!(stored(&app, &id).await.1, 3);
}

#[tokio::test]
async fn only_flagged_fields_may_be_corrected() {
    let app = app_with_form().await;
    let c = app.citizen("correct-2");
    let number = my_number(6);
    let id = submitted(&app, &c, answers(&number)).await;
    returned(&app, &id, &["phone", "passbook", "my_number"]).await;

    // Not flagged, an attachment (even flagged), unknown: not correctable, not echoed.
    let res = correct(
        &app,
        &c,
        &id,
        Some("2"),
        json!({"applicant": "山田太郎", "passbook": [], "nope": "x", "../x": 1}),
    )
    .await;
    for field in ["applicant", "passbook", "nope", "answers"] {
        res.field_error(field, "not_correctable");
    }
    assert!(
        res.body["errors"]
            .as_array()
            .unwrap()
            .iter()
            .all(|e| e["message"] == "この項目は修正できません。")
    );
    assert!(!res.body.to_string().contains("../x"));

    // A flagged field with a wrong value: the validator's error, per field.
    correct(&app, &c, &id, Some("2"), json!({"phone": "123"}))
        .await
        .field_error("phone", "invalid_format");
    correct(&app, &c, &id, Some("2"), json!({"phone": null}))
        .await
        .field_error("phone", "required");
    let good = my_number(10);
    let last = (good.as_bytes()[11] - b'0' + 1) % 10;
    let wrong = format!("{}{last}", &good[..11]);
    correct(&app, &c, &id, Some("2"), json!({ "my_number": wrong }))
        .await
        .field_error("my_number", "check_digit");
    assert_eq!(
        stored(&app, &id).await.0.status,
        ApplicationStatus::Returned
    );

    // Missing and stale versions.
    correct(&app, &c, &id, None, json!({"phone": "090-1234-5678"}))
        .await
        .problem_of(428, "precondition-required");
    correct(&app, &c, &id, Some("1"), json!({"phone": "090-1234-5678"}))
        .await
        .problem_of(409, "conflict");

    // The mask sent back keeps the stored number; a new number replaces it.
    let masked = format!("********{}", &number[8..]);
    let res = correct(
        &app,
        &c,
        &id,
        Some("2"),
        json!({"phone": "090-1234-5678", "my_number": masked}),
    )
    .await;
    res.ok(200);
    let (record, _) = stored(&app, &id).await;
    let sealed: Sealed =
        serde_json::from_value(record.answers["my_number"]["sealed"].clone()).unwrap();
    let plain = app
        .state
        .cipher
        .open(&tenant(), &Binding::new(&id, "my_number"), &sealed)
        .await
        .unwrap();
    assert_eq!(plain.as_slice(), number.as_bytes());
}

#[tokio::test]
async fn a_new_my_number_in_a_correction_is_sealed_with_a_new_blind_index() {
    let app = app_with_form().await;
    let c = app.citizen("correct-3");
    let id = submitted(&app, &c, answers(&my_number(7))).await;
    let (before, _) = stored(&app, &id).await;
    returned(&app, &id, &["my_number"]).await;
    let new = my_number(8);
    let res = correct(&app, &c, &id, Some("2"), json!({ "my_number": new })).await;
    assert!(!res.ok(200).to_string().contains(&new));
    let (after, _) = stored(&app, &id).await;
    assert_ne!(after.blind_indexes, before.blind_indexes);
    let sealed: Sealed =
        serde_json::from_value(after.answers["my_number"]["sealed"].clone()).unwrap();
    let plain = app
        .state
        .cipher
        .open(&tenant(), &Binding::new(&id, "my_number"), &sealed)
        .await
        .unwrap();
    assert_eq!(plain.as_slice(), new.as_bytes());
}

#[tokio::test]
async fn correcting_what_was_not_returned_is_an_invalid_transition() {
    let app = app_with_form().await;
    let c = app.citizen("correct-4");
    let id = submitted(&app, &c, answers(&my_number(9))).await;
    let p = correct(&app, &c, &id, Some("1"), json!({"phone": "090-1234-5678"}))
        .await
        .problem_of(409, "invalid-transition")
        .clone();
    assert_eq!(p["allowed"], json!(["withdrawn"]));
    assert_eq!(p["title"], "この申請は現在修正できません。");
    // Withdrawn while returned: the request for a correction is gone with it.
    returned(&app, &id, &["phone"]).await;
    let res = withdraw(&app, &c, &id, Some("2")).await;
    assert_eq!(res.ok(200)["correction"], Value::Null);
    assert_eq!(stored(&app, &id).await.0.correction, None);
    correct(&app, &c, &id, Some("3"), json!({"phone": "090-1234-5678"}))
        .await
        .problem_of(409, "invalid-transition");
}

#[test]
fn the_moves_are_documented_with_problem_responses() {
    let doc = serde_json::to_value(madoguchi_submissions::openapi()).unwrap();
    let base = "/v1/tenants/{tenant}/my/applications/{id}";
    for (path, method) in [
        (format!("{base}/withdraw"), "post"),
        (format!("{base}/correction"), "put"),
    ] {
        let op = &doc["paths"][&path][method];
        assert!(op.is_object(), "{method} {path} is documented");
        assert!(op["responses"]["200"]["headers"]["etag"].is_object());
        for status in ["404", "409", "428"] {
            assert!(
                op["responses"][status]["content"]["application/problem+json"].is_object(),
                "{method} {path} {status}"
            );
        }
        let params: Vec<&str> = op["parameters"]
            .as_array()
            .unwrap()
            .iter()
            .filter_map(|p| p["name"].as_str())
            .collect();
        assert!(params.contains(&"if-match"), "{params:?}");
    }
    assert!(doc["paths"][base]["get"]["responses"]["200"]["headers"]["etag"].is_object());
    let schemas = &doc["components"]["schemas"];
    assert!(schemas["InvalidTransitionProblem"]["properties"]["allowed"].is_object());
    assert!(schemas["ApplicationView"]["properties"]["timeline"].is_object());
}
