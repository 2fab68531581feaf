//! Card payments of fees (手数料) end to end through the real binary on the embedded backend
//! (issue "Done when"): staff publish a form paid at submission (住民票の写し 300 yen × 通数)
//! and one paid after acceptance; a citizen account pays 900 yen with a new card it saves
//! (a double click charges once) and the application turns from 支払待ち to 受付; staff set,
//! raise and cut the fee of the other application (the citizen is mailed, pays with the saved
//! card, gets the difference refunded); a declined card says why in Japanese and a second
//! card pays; a payment whose 3-D Secure ended while its webhooks were lost is found by the
//! reconciliation schedule; the daily CSV lists every payment and the refund (返金額); an
//! unpaid payment at submission past its time is cancelled by the schedule.

mod common;

use std::time::Duration;

use base64::Engine;
use common::*;
use madoguchi_ports::Condition;
use reqwest::Method;
use serde_json::{Value, json};

const FORM_A: &str = "juminhyo-utsushi";
const FORM_B: &str = "doro-senyo";

fn form_a() -> Value {
    json!({
        "title": "住民票の写しの交付請求",
        "access": "account",
        "items": [
            {"id": "applicant", "type": "name", "label": "請求者氏名", "required": true},
            {"id": "copies", "type": "number", "label": "必要な通数", "required": true,
             "integer": true, "min": 1, "max": 10}
        ],
        "fee": {"timing": "at_submission",
                "lines": [{"label": "住民票の写し", "unit_price": 300, "quantity_field": "copies"}]}
    })
}

fn form_b() -> Value {
    json!({
        "title": "道路占用許可申請",
        "access": "account",
        "items": [
            {"id": "applicant", "type": "name", "label": "申請者氏名", "required": true},
            {"id": "place", "type": "text", "label": "占用場所", "required": true}
        ],
        "fee": {"timing": "after_acceptance",
                "lines": [{"label": "占用料", "unit_price": 0}]}
    })
}

/// Today in Japan (the day of the payment report).
fn japan_today() -> jiff::civil::Date {
    jiff::Timestamp::now()
        .to_zoned(jiff::tz::TimeZone::fixed(jiff::tz::offset(9)))
        .date()
}

/// Polls `f` every 100 ms until it gives `Some`, for at most `secs` seconds.
async fn until<T, F, Fut>(secs: u64, what: &str, mut f: F) -> T
where
    F: FnMut() -> Fut,
    Fut: std::future::Future<Output = Option<T>>,
{
    let deadline = tokio::time::Instant::now() + Duration::from_secs(secs);
    loop {
        if let Some(v) = f().await {
            return v;
        }
        assert!(
            tokio::time::Instant::now() < deadline,
            "{what}: not within {secs} s"
        );
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
}

/// The mails in the embedded outbox to `to`, as (subject, body), RFC 2047 subject and
/// base64 body decoded.
fn mails_to(host: &Host, to: &str) -> Vec<(String, String)> {
    let Ok(entries) = std::fs::read_dir(host.data_dir.join("outbox")) else {
        return vec![];
    };
    let mut out = Vec::new();
    for e in entries {
        let path = e.unwrap().path();
        if path.extension().is_none_or(|x| x != "eml") {
            continue;
        }
        let Ok(text) = std::fs::read_to_string(&path) else {
            continue;
        };
        let Some((head, body)) = text.split_once("\r\n\r\n") else {
            continue;
        };
        if !head.contains(to) {
            continue;
        }
        let head = head.replace("\r\n ", " ");
        let subject: String = head
            .lines()
            .find(|l| l.starts_with("Subject:"))
            .unwrap_or("")
            .split_whitespace()
            .filter_map(|w| {
                let inner = w.strip_prefix("=?UTF-8?B?")?.strip_suffix("?=")?;
                base64::engine::general_purpose::STANDARD.decode(inner).ok()
            })
            .map(|b| String::from_utf8_lossy(&b).into_owned())
            .collect();
        let b64: String = body.split_whitespace().collect();
        let body = base64::engine::general_purpose::STANDARD
            .decode(b64)
            .map(|b| String::from_utf8_lossy(&b).into_owned())
            .unwrap_or_else(|_| body.to_owned());
        out.push((subject, body));
    }
    out
}

/// Waits for a mail to `to` whose subject holds both needles; returns its body.
async fn wait_mail(host: &Host, to: &str, subject: &str, receipt: &str) -> String {
    until(15, &format!("mail {subject} {receipt}"), || async {
        mails_to(host, to)
            .into_iter()
            .find(|(s, _)| s.contains(subject) && s.contains(receipt))
            .map(|(_, b)| b)
    })
    .await
}

fn count_mails(host: &Host, to: &str, subject: &str, receipt: &str) -> usize {
    mails_to(host, to)
        .into_iter()
        .filter(|(s, _)| s.contains(subject) && s.contains(receipt))
        .count()
}

/// Submits `answers` to `slug` as the citizen; the answer (status 201).
async fn submit(citizen: &Api, slug: &str, answers: Value) -> Value {
    let (form, _) = citizen
        .ok(Method::GET, &format!("/forms/{slug}"), None, &[], 200)
        .await;
    let version = form["version"].as_u64().unwrap();
    let key = uuid::Uuid::now_v7().to_string();
    let (submitted, _) = citizen
        .ok(
            Method::POST,
            &format!("/forms/{slug}/applications"),
            Some(json!({"form_version": version, "answers": answers})),
            &[("idempotency-key", &key)],
            201,
        )
        .await;
    submitted
}

fn copies(n: u32) -> Value {
    json!({"applicant": {"family": "山田", "given": "花子"}, "copies": n})
}

async fn app_status(citizen: &Api, id: &str) -> String {
    let (mine, _) = citizen
        .ok(
            Method::GET,
            &format!("/my/applications/{id}"),
            None,
            &[],
            200,
        )
        .await;
    mine["status"].as_str().unwrap().to_owned()
}

async fn wait_app_status(citizen: &Api, id: &str, want: &str) {
    until(30, &format!("application {id} {want}"), || async {
        (app_status(citizen, id).await == want).then_some(())
    })
    .await
}

/// One row of the daily report: (受付番号, 種別, 金額, 申請ID).
type Row = (String, String, i64, String);

async fn daily_rows(staff: &Api, slug: &str, days: &[jiff::civil::Date]) -> Vec<Row> {
    let mut rows = Vec::new();
    for day in days {
        let res = staff
            .send(
                Method::GET,
                &format!("/staff/forms/{slug}/payments.csv?date={day}"),
                None,
                &[],
            )
            .await;
        assert_eq!(res.status().as_u16(), 200);
        assert!(
            res.headers()["content-type"]
                .to_str()
                .unwrap()
                .starts_with("text/csv"),
        );
        let bytes = res.bytes().await.unwrap();
        assert!(bytes.starts_with(b"\xEF\xBB\xBF"), "UTF-8 BOM");
        let text = String::from_utf8(bytes[3..].to_vec()).unwrap();
        let mut lines = text.lines().map(|l| l.trim_end_matches('\r'));
        assert_eq!(
            lines.next().unwrap(),
            "日時,受付番号,様式,種別,入金額,返金額,決済ID,申請ID,連番"
        );
        for line in lines.filter(|l| !l.is_empty()) {
            let cells: Vec<&str> = line.split(',').collect();
            assert_eq!(cells.len(), 9, "{line}");
            // Plain non-negative numbers in one of the two columns: Excel sums them.
            let number = |c: &str| -> i64 { if c.is_empty() { 0 } else { c.parse().unwrap() } };
            let (paid, refunded) = (number(cells[4]), number(cells[5]));
            assert!((paid > 0) != (refunded > 0), "one of the two: {line}");
            assert!(!cells[6].is_empty(), "a gateway id: {line}");
            rows.push((
                cells[1].to_owned(),
                cells[3].to_owned(),
                paid - refunded,
                cells[7].to_owned(),
            ));
        }
    }
    rows
}

fn sum(items: &Value, status: &str) -> i64 {
    items
        .as_array()
        .unwrap()
        .iter()
        .filter(|x| x["status"] == status)
        .map(|x| x["amount"].as_i64().unwrap())
        .sum()
}

async fn pay(citizen: &Api, id: &str, body: Value) -> reqwest::Response {
    citizen
        .send(
            Method::POST,
            &format!("/my/applications/{id}/payment"),
            Some(body),
            &[],
        )
        .await
}

async fn pay_ok(citizen: &Api, id: &str, body: Value, status: u16) -> Value {
    citizen
        .ok(
            Method::POST,
            &format!("/my/applications/{id}/payment"),
            Some(body),
            &[],
            status,
        )
        .await
        .0
}

/// Waits for a logged reconciliation run whose report does not say `not` (e.g.
/// `ledgers_fixed: 0`): proof the schedule, not a webhook, did the work.
async fn reconciliation_logged(host: &Host, not: &str) {
    until(
        15,
        &format!("a reconciliation run without {not:?}"),
        || async {
            host.logs
                .lock()
                .unwrap()
                .lines()
                .any(|l| l.contains("reconciliation run") && !l.contains(not))
                .then_some(())
        },
    )
    .await
}

async fn walk(host: &Host) {
    let first_day = japan_today();
    let admin = Api::new(host, host.token_depts("admin", TENANT, "admin-1", &[]));
    let clerk = Api::new(
        host,
        host.token_depts("staff", TENANT, "clerk-1", &["shimin-ka"]),
    );
    let cashier = Api::new(
        host,
        host.token_depts("staff", TENANT, "cashier-1", &["kaikei"]),
    );
    let viewer = Api::new(
        host,
        host.token_depts("staff", TENANT, "viewer-1", &["fukushi"]),
    );
    let mail = "hanako.pay@example.jp";
    let citizen = Api::new(
        host,
        host.token_for("citizen", TENANT, 600, "citizen-pay", Some(mail)),
    );

    // ---- 1. Departments, two forms with fees, grants: 会計課 may process and export,
    // 福祉課 only view.
    admin
        .ok(
            Method::PUT,
            "/staff/org",
            Some(json!({"departments": [
                {"id": "shimin-ka", "name": "市民課"},
                {"id": "kaikei", "name": "会計課"},
                {"id": "fukushi", "name": "福祉課"}
            ]})),
            &[("if-match", "0")],
            200,
        )
        .await;
    for (slug, definition) in [(FORM_A, form_a()), (FORM_B, form_b())] {
        clerk
            .ok(
                Method::POST,
                "/manage/forms",
                Some(json!({"slug": slug, "definition": definition, "department": "shimin-ka"})),
                &[],
                201,
            )
            .await;
        clerk
            .ok(
                Method::POST,
                &format!("/manage/forms/{slug}/publish"),
                None,
                &[("if-match", "1")],
                200,
            )
            .await;
        let (grants, etag) = admin
            .ok(
                Method::GET,
                &format!("/staff/forms/{slug}/grants"),
                None,
                &[],
                200,
            )
            .await;
        let mut g = grants.clone();
        g["grants"]["kaikei"] = json!(["process", "export"]);
        g["grants"]["fukushi"] = json!(["view"]);
        let (g, _) = admin
            .ok(
                Method::PUT,
                &format!("/staff/forms/{slug}/grants"),
                Some(g),
                &[("if-match", etag.as_deref().unwrap())],
                200,
            )
            .await;
        assert_eq!(g["grants"]["kaikei"], json!(["view", "process", "export"]));
    }

    // ---- 2. Form A, 3 copies: 900 yen at submission.
    let a1 = submit(&citizen, FORM_A, copies(3)).await;
    assert_eq!(a1["status"], "payment_pending", "{a1}");
    assert_eq!(a1["fee"], 900);
    let pay_by: jiff::Timestamp = a1["pay_by"].as_str().unwrap().parse().unwrap();
    let submitted_at: jiff::Timestamp = a1["submitted_at"].as_str().unwrap().parse().unwrap();
    // The time to pay the host was started with (MADOGUCHI_PAYMENT_PENDING_MINUTES=45).
    let window = pay_by.duration_since(submitted_at).as_secs();
    assert!((2695..=2705).contains(&window), "{a1}");
    let a1_id = a1["application_id"].as_str().unwrap().to_owned();
    let a1_receipt = a1["receipt_number"].as_str().unwrap().to_owned();
    assert_eq!(app_status(&citizen, &a1_id).await, "payment_pending");
    let (shown, _) = citizen
        .ok(
            Method::GET,
            &format!("/my/applications/{a1_id}/payment"),
            None,
            &[],
            200,
        )
        .await;
    assert_eq!(
        (
            shown["status"].as_str(),
            shown["fee"].as_i64(),
            shown["due"].as_i64()
        ),
        (Some("unpaid"), Some(900), Some(900)),
        "{shown}"
    );
    assert_eq!(shown["payable"], true);
    assert_eq!(shown["sandbox"], true);
    assert_eq!(
        shown["lines"],
        json!([{"label": "住民票の写し", "unit_price": 300, "quantity": 3, "amount": 900}])
    );
    // Staff cannot change a fee paid at submission while it waits.
    cashier
        .ok(
            Method::PUT,
            &format!("/staff/applications/{a1_id}/fee"),
            Some(json!({"amount": 100, "reason": "x"})),
            &[],
            409,
        )
        .await;
    // The receipt mail waits for the payment.
    assert_eq!(count_mails(host, mail, "受付完了", &a1_receipt), 0);

    let paid = pay_ok(
        &citizen,
        &a1_id,
        json!({"payment_method": "pm_card_visa", "save_card": true}),
        200,
    )
    .await;
    assert_eq!(paid["payment"]["status"], "paid", "{paid}");
    assert_eq!(paid["payment"]["paid"], 900);
    assert_eq!(paid["payment"]["due"], 0);
    assert_eq!(paid["charge_status"], "succeeded");
    // The double click: the same request again finds the payment, charges nothing.
    let again = pay_ok(
        &citizen,
        &a1_id,
        json!({"payment_method": "pm_card_visa", "save_card": true}),
        200,
    )
    .await;
    assert_eq!(again["payment"]["paid"], 900, "{again}");
    assert_eq!(again["charge_seq"], paid["charge_seq"]);
    wait_app_status(&citizen, &a1_id, "received").await;
    let (staff_view, _) = cashier
        .ok(
            Method::GET,
            &format!("/staff/applications/{a1_id}/payment"),
            None,
            &[],
            200,
        )
        .await;
    let charges = staff_view["charges"].as_array().unwrap();
    assert_eq!(charges.len(), 1, "{staff_view}");
    assert_eq!(charges[0]["status"], "succeeded");
    assert_eq!(charges[0]["amount"], 900);
    assert!(charges[0]["gateway_id"].as_str().is_some());
    assert_eq!(staff_view["paid"], 900);
    let receipt_mail = wait_mail(host, mail, "受付完了", &a1_receipt).await;
    assert!(receipt_mail.contains(&a1_receipt));
    let (cards, _) = citizen
        .ok(Method::GET, "/my/payment-methods", None, &[], 200)
        .await;
    let list = cards["cards"].as_array().unwrap();
    assert_eq!(list.len(), 1, "{cards}");
    assert_eq!(list[0]["brand"], "visa");
    assert_eq!(list[0]["last4"].as_str().map(str::len), Some(4), "{cards}");
    assert_eq!(list[0]["default"], true);
    assert!(!cards.to_string().contains("4242424242424242"));
    // The citizen changes the saved card: a new one through a setup intent (the sandbox page
    // stands in for the gateway's library), made the default, the old one removed.
    let visa = list[0]["id"].as_str().unwrap().to_owned();
    let (setup, _) = citizen
        .ok(Method::POST, "/my/payment-methods/setup", None, &[], 201)
        .await;
    assert_eq!(setup["sandbox"], true);
    let seti = setup["setup_intent"].as_str().unwrap();
    let confirmed = reqwest::Client::new()
        .post(format!(
            "{}/_sandbox/payments/setup/{TENANT}/{seti}",
            host.base
        ))
        .json(&json!({"token": "pm_card_mastercard"}))
        .send()
        .await
        .unwrap();
    assert_eq!(confirmed.status().as_u16(), 200);
    let (cards, _) = citizen
        .ok(Method::GET, "/my/payment-methods", None, &[], 200)
        .await;
    let master = cards["cards"]
        .as_array()
        .unwrap()
        .iter()
        .find(|c| c["brand"] == "mastercard")
        .unwrap_or_else(|| panic!("{cards}"))["id"]
        .as_str()
        .unwrap()
        .to_owned();
    let (cards, _) = citizen
        .ok(
            Method::PUT,
            &format!("/my/payment-methods/{master}/default"),
            None,
            &[],
            200,
        )
        .await;
    let default: Vec<&Value> = cards["cards"]
        .as_array()
        .unwrap()
        .iter()
        .filter(|c| c["default"] == true)
        .collect();
    assert_eq!(default.len(), 1, "{cards}");
    assert_eq!(default[0]["id"], master.as_str());
    let removed = citizen
        .send(
            Method::DELETE,
            &format!("/my/payment-methods/{visa}"),
            None,
            &[],
        )
        .await;
    assert_eq!(removed.status().as_u16(), 204);
    // Another citizen's card, or one already gone, is not the caller's: 404.
    let again = citizen
        .send(
            Method::DELETE,
            &format!("/my/payment-methods/{visa}"),
            None,
            &[],
        )
        .await;
    assert_eq!(again.status().as_u16(), 404);
    let (cards, _) = citizen
        .ok(Method::GET, "/my/payment-methods", None, &[], 200)
        .await;
    assert_eq!(cards["cards"].as_array().unwrap().len(), 1, "{cards}");
    assert_eq!(cards["cards"][0]["brand"], "mastercard");

    // ---- 3. Form B: received at once; staff set 1,000 yen, raise to 1,500, cut to 700.
    let b1 = submit(
        &citizen,
        FORM_B,
        json!({"applicant": {"family": "山田", "given": "花子"}, "place": "東雲町9番地先"}),
    )
    .await;
    assert_eq!(b1["status"], "received", "{b1}");
    assert_eq!(
        b1["fee"], 0,
        "the form's own amount, not yet asked for: {b1}"
    );
    assert!(b1.get("pay_by").is_none(), "{b1}");
    let b1_id = b1["application_id"].as_str().unwrap().to_owned();
    let b1_receipt = b1["receipt_number"].as_str().unwrap().to_owned();
    let fee = format!("/staff/applications/{b1_id}/fee");
    // View only (福祉課): the application is not theirs to charge.
    viewer
        .ok(
            Method::PUT,
            &fee,
            Some(json!({"amount": 1000, "reason": "占用料（1か月）"})),
            &[],
            404,
        )
        .await;
    cashier
        .ok(
            Method::PUT,
            &fee,
            Some(json!({"amount": 10, "reason": "x"})),
            &[],
            422,
        )
        .await;
    let (set, _) = cashier
        .ok(
            Method::PUT,
            &fee,
            Some(json!({"amount": 1000, "reason": "占用料（1か月）"})),
            &[],
            200,
        )
        .await;
    assert_eq!(
        (
            set["fee"].as_i64(),
            set["due"].as_i64(),
            set["status"].as_str()
        ),
        (Some(1000), Some(1000), Some("unpaid")),
        "{set}"
    );
    let asked = wait_mail(host, mail, "お支払いのお願い", &b1_receipt).await;
    assert!(asked.contains("1,000円"), "{asked}");
    let paid = pay_ok(&citizen, &b1_id, json!({"use_saved_card": true}), 200).await;
    assert_eq!(
        (
            paid["payment"]["status"].as_str(),
            paid["payment"]["paid"].as_i64()
        ),
        (Some("paid"), Some(1000)),
        "{paid}"
    );
    let (set, _) = cashier
        .ok(
            Method::PUT,
            &fee,
            Some(json!({"amount": 1500, "reason": "占用面積の訂正"})),
            &[],
            200,
        )
        .await;
    assert_eq!(
        (set["due"].as_i64(), set["paid"].as_i64()),
        (Some(500), Some(1000))
    );
    until(15, "the second payment request", || async {
        (count_mails(host, mail, "お支払いのお願い", &b1_receipt) >= 2).then_some(())
    })
    .await;
    assert!(
        mails_to(host, mail)
            .iter()
            .any(|(s, b)| s.contains(&b1_receipt) && b.contains("お支払いいただく金額: 500円")),
        "a mail asks for the 500 yen difference"
    );
    let paid = pay_ok(&citizen, &b1_id, json!({"use_saved_card": true}), 200).await;
    assert_eq!(
        (
            paid["payment"]["status"].as_str(),
            paid["payment"]["paid"].as_i64(),
            paid["payment"]["due"].as_i64()
        ),
        (Some("paid"), Some(1500), Some(0)),
        "{paid}"
    );
    // The staff's reason is for staff only.
    assert!(!paid.to_string().contains("占用面積の訂正"), "{paid}");
    cashier
        .ok(
            Method::PUT,
            &fee,
            Some(json!({"amount": 700, "reason": "減免適用"})),
            &[],
            200,
        )
        .await;
    let refunded = until(30, "the 800 yen refund", || async {
        let (v, _) = cashier
            .ok(
                Method::GET,
                &format!("/staff/applications/{b1_id}/payment"),
                None,
                &[],
                200,
            )
            .await;
        (sum(&v["refunds"], "succeeded") == 800).then_some(v)
    })
    .await;
    assert_eq!(refunded["status"], "paid", "{refunded}");
    assert_eq!(refunded["fee"], 700);
    assert_eq!(refunded["paid"], 1500);
    assert_eq!(refunded["refunded"], 800);
    assert_eq!(refunded["due"], 0);
    assert_eq!(sum(&refunded["charges"], "succeeded"), 1500);
    assert_eq!(
        refunded["refunds"].as_array().unwrap().len(),
        refunded["refunds"]
            .as_array()
            .unwrap()
            .iter()
            .filter(|r| r["status"] == "succeeded")
            .count(),
        "{refunded}"
    );
    let notice = wait_mail(host, mail, "返金のお知らせ", &b1_receipt).await;
    assert!(notice.contains("700円"), "{notice}");

    // ---- 4. A declined card, then another card.
    let a2 = submit(&citizen, FORM_A, copies(1)).await;
    assert_eq!(a2["fee"], 300);
    let a2_id = a2["application_id"].as_str().unwrap().to_owned();
    let res = pay(
        &citizen,
        &a2_id,
        json!({"payment_method": "pm_card_chargeDeclinedInsufficientFunds"}),
    )
    .await;
    let p = problem(res, 402).await;
    assert_eq!(p["errors"][0]["code"], "card.insufficient_funds", "{p}");
    let message = p["errors"][0]["message"].as_str().unwrap();
    assert!(message.contains("利用可能額"), "{p}");
    assert_eq!(app_status(&citizen, &a2_id).await, "payment_pending");
    let (shown, _) = citizen
        .ok(
            Method::GET,
            &format!("/my/applications/{a2_id}/payment"),
            None,
            &[],
            200,
        )
        .await;
    assert_eq!(
        (
            shown["status"].as_str(),
            shown["due"].as_i64(),
            shown["paid"].as_i64()
        ),
        (Some("unpaid"), Some(300), Some(0)),
        "{shown}"
    );
    assert_eq!(shown["charges"][0]["failure"], "insufficient_funds");
    let paid = pay_ok(
        &citizen,
        &a2_id,
        json!({"payment_method": "pm_card_visa"}),
        200,
    )
    .await;
    assert_eq!(paid["payment"]["paid"], 300, "{paid}");
    wait_app_status(&citizen, &a2_id, "received").await;

    // ---- 5. 3-D Secure finished while the webhooks are lost: the schedule finds it.
    let a3 = submit(&citizen, FORM_A, copies(2)).await;
    let a3_id = a3["application_id"].as_str().unwrap().to_owned();
    let a3_receipt = a3["receipt_number"].as_str().unwrap().to_owned();
    let sandbox = reqwest::Client::new();
    let res = sandbox
        .post(format!(
            "{}/_sandbox/payments/webhooks/drop-next",
            host.base
        ))
        .json(&json!({"count": 10}))
        .send()
        .await
        .unwrap();
    assert_eq!(res.status().as_u16(), 200);
    let waiting = pay_ok(
        &citizen,
        &a3_id,
        json!({"payment_method": "pm_card_threeDSecureRequired"}),
        202,
    )
    .await;
    assert_eq!(waiting["charge_status"], "requires_action", "{waiting}");
    assert_eq!(waiting["payment"]["status"], "in_progress");
    let redirect = waiting["redirect_url"].as_str().unwrap().to_owned();
    assert!(
        redirect.starts_with(&format!("{}/_sandbox/payments/3ds/{TENANT}/", host.base)),
        "{redirect}"
    );
    // Waiting for the citizen: the schedule leaves it in progress.
    tokio::time::sleep(Duration::from_millis(800)).await;
    assert_eq!(app_status(&citizen, &a3_id).await, "payment_pending");
    let (shown, _) = citizen
        .ok(
            Method::GET,
            &format!("/my/applications/{a3_id}/payment"),
            None,
            &[],
            200,
        )
        .await;
    assert_eq!(shown["status"], "in_progress", "{shown}");
    let page = sandbox.get(&redirect).send().await.unwrap();
    assert_eq!(page.status().as_u16(), 200);
    assert!(page.text().await.unwrap().contains("サンドボックス"));
    let done: Value = sandbox
        .post(format!("{redirect}?result=succeed"))
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    assert_eq!(done["status"], "succeeded", "{done}");
    // The succeeded webhook was lost …
    until(15, "the webhook dropped on purpose", || async {
        host.logs
            .lock()
            .unwrap()
            .contains("webhook dropped on purpose")
            .then_some(())
    })
    .await;
    // … the reconciliation reads the intent back: paid, and the application received.
    let reconciled = until(30, "reconciled payment", || async {
        let (v, _) = citizen
            .ok(
                Method::GET,
                &format!("/my/applications/{a3_id}/payment"),
                None,
                &[],
                200,
            )
            .await;
        (v["status"] == "paid").then_some(v)
    })
    .await;
    assert_eq!(reconciled["paid"], 600, "{reconciled}");
    reconciliation_logged(host, "ledgers_fixed: 0").await;
    wait_app_status(&citizen, &a3_id, "received").await;
    wait_mail(host, mail, "受付完了", &a3_receipt).await;
    // Deliveries back to normal for what follows.
    sandbox
        .post(format!(
            "{}/_sandbox/payments/webhooks/drop-next",
            host.base
        ))
        .json(&json!({"count": 0}))
        .send()
        .await
        .unwrap();

    // ---- 6. The daily report (Japan date): every payment, the refund negative.
    let mut days = vec![first_day];
    if japan_today() != first_day {
        days.push(japan_today());
    }
    let rows_a = daily_rows(&cashier, FORM_A, &days).await;
    let mut payments_a: Vec<(String, i64)> = rows_a
        .iter()
        .map(|(_, kind, amount, app)| {
            assert_eq!(kind, "決済");
            (app.clone(), *amount)
        })
        .collect();
    payments_a.sort();
    let mut want = vec![
        (a1_id.clone(), 900),
        (a2_id.clone(), 300),
        (a3_id.clone(), 600),
    ];
    want.sort();
    assert_eq!(payments_a, want, "{rows_a:?}");
    assert!(rows_a.iter().any(|(r, ..)| r == &a1_receipt));
    let rows_b = daily_rows(&cashier, FORM_B, &days).await;
    let charged: Vec<i64> = rows_b
        .iter()
        .filter(|(_, kind, ..)| kind == "決済")
        .map(|r| r.2)
        .collect();
    assert_eq!(charged, [1000, 500], "{rows_b:?}");
    let refunds: Vec<i64> = rows_b
        .iter()
        .filter(|(_, kind, ..)| kind == "返金")
        .map(|r| r.2)
        .collect();
    assert!(refunds.iter().all(|a| *a < 0), "{rows_b:?}");
    assert_eq!(refunds.iter().sum::<i64>(), -800, "{rows_b:?}");
    assert!(rows_b.iter().all(|r| r.0 == b1_receipt && r.3 == b1_id));
    // 福祉課 may view, not export.
    let res = viewer
        .send(
            Method::GET,
            &format!("/staff/forms/{FORM_A}/payments.csv?date={first_day}"),
            None,
            &[],
        )
        .await;
    problem(res, 403).await;

    // ---- 7. Unpaid past its time: the schedule cancels it (the time is moved back in
    // storage rather than waited for).
    let a4 = submit(&citizen, FORM_A, copies(1)).await;
    let a4_id = a4["application_id"].as_str().unwrap().to_owned();
    let a4_receipt = a4["receipt_number"].as_str().unwrap().to_owned();
    let items = host.items().await;
    let key = madoguchi_payment_ledger::keys::ledger_key(
        &madoguchi_domain::tenant::TenantId::parse(TENANT).unwrap(),
        &madoguchi_domain::ids::ApplicationId::parse(&a4_id).unwrap(),
    );
    let mut ledger = items.get(&key).await.unwrap().expect("the ledger");
    assert!(ledger.data["expires_at"].is_string(), "{}", ledger.data);
    ledger.data["expires_at"] = json!(
        jiff::Timestamp::now()
            .checked_sub(jiff::SignedDuration::from_secs(1))
            .unwrap()
            .to_string()
    );
    let v = ledger.version;
    ledger.version = v + 1;
    items
        .put(ledger, Condition::VersionEquals(v))
        .await
        .unwrap();
    wait_app_status(&citizen, &a4_id, "cancelled").await;
    let (shown, _) = citizen
        .ok(
            Method::GET,
            &format!("/my/applications/{a4_id}/payment"),
            None,
            &[],
            200,
        )
        .await;
    assert_eq!(shown["status"], "cancelled", "{shown}");
    let res = pay(&citizen, &a4_id, json!({"use_saved_card": true})).await;
    let p = problem(res, 409).await;
    assert!(
        p["type"].as_str().unwrap().ends_with("payment-cancelled"),
        "{p}"
    );
    reconciliation_logged(host, "cancelled: 0").await;
    let cancelled = wait_mail(host, mail, "申請取消", &a4_receipt).await;
    assert!(cancelled.contains("請求はありません"), "{cancelled}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn embedded() {
    let host = Host::start_with(
        None,
        &[
            ("MADOGUCHI_PAYMENTS_INTERVAL_MS", "300".to_owned()),
            ("MADOGUCHI_PAYMENT_PENDING_MINUTES", "45".to_owned()),
        ],
    )
    .await;
    tokio::time::timeout(Duration::from_secs(180), walk(&host))
        .await
        .expect("the payments walk within 3 minutes");
    let logs = host.logs.clone();
    let status = host.stop().await;
    assert!(status.success());
    let logs = logs.lock().unwrap().clone();
    for s in ["山田", "hanako.pay@example.jp", "東雲町"] {
        assert!(!logs.contains(s), "the logs hold {s:?}");
    }
}
