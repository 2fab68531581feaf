//! The citizen's flows through the real router on a fresh embedded backend: forms that do not
//! take applications, stale form versions, idempotent submission under concurrency, the
//! one-time mail code, who may call what, upload grants, and My Number sealing in drafts.

mod common;

use std::sync::Arc;
use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};
use std::time::Duration;

use async_trait::async_trait;
use axum::http::Method;
use common::*;
use madoguchi_applications::keys::{
    APP_SK, ATTACHMENT_PREFIX, app_pk, draft_sk, owner_pk, upload_pk,
};
use madoguchi_applications::{ApplicationRecord, DraftRecord, Owner};
use madoguchi_domain::ids::ApplicationId;
use madoguchi_fieldcrypt::{Binding, Sealed};
use madoguchi_http::auth::Role;
use madoguchi_ports::{
    Condition, Item, ItemStore, Key, Page, PortResult, QueryRequest, SortKeyCondition, TxOp,
};
use serde_json::{Value, json};

const SLUG: &str = "kosodate-kyufu";
const MIB: u64 = 1024 * 1024;

async fn app_with_form() -> App {
    let app = App::new();
    app.publish(SLUG, 1, "published", definition()).await;
    app
}

fn answers() -> Value {
    json!({"applicant": "山田花子"})
}

fn draft_key(sub: &str, slug: &str) -> Key {
    Key::new(
        owner_pk(&tenant(), &Owner::Account(sub.to_owned())),
        draft_sk(slug),
    )
}

async fn history(app: &App, auth: &Auth) -> Vec<Value> {
    app.get("/my/applications", auth).await.ok(200)["applications"]
        .as_array()
        .unwrap()
        .clone()
}

// ------------------------------------------------------------------------------------------
// Forms that do not take applications

#[tokio::test]
async fn a_closed_form_refuses_every_write_with_form_closed() {
    let app = App::new();
    app.publish(SLUG, 1, "closed", definition()).await;
    let c = app.citizen("closed-1");
    let path = |p: &str| format!("/forms/{SLUG}/{p}");
    for res in [
        app.put_draft(SLUG, &c, 1, answers()).await,
        app.confirm(SLUG, &c, 1, answers()).await,
        app.submit(SLUG, &c, Some("k-1"), 1, answers()).await,
        app.grant(SLUG, &c, "passbook", "a.pdf", 10).await,
        app.start_verification(SLUG, "taro@example.jp").await,
    ] {
        let p = res.problem_of(409, "form-closed");
        assert!(p["detail"].as_str().unwrap().contains("終了"), "{p}");
    }
    // Nothing was stored on the way.
    app.get(&path("draft"), &c).await.problem(404);
    assert!(history(&app, &c).await.is_empty());
    assert!(app.mails_to("taro@example.jp").is_empty());
}

#[tokio::test]
async fn a_form_outside_its_publish_window_refuses_likewise() {
    let app = App::new();
    app.publish(
        "ended",
        1,
        "published",
        with(definition(), "publish_until", json!("2020-04-01T00:00")),
    )
    .await;
    app.publish(
        "not-yet",
        1,
        "published",
        with(definition(), "publish_from", json!("2099-04-01T09:00")),
    )
    .await;
    let c = app.citizen("window-1");
    for (slug, words) in [("ended", "終了"), ("not-yet", "まだ")] {
        for res in [
            app.put_draft(slug, &c, 1, answers()).await,
            app.confirm(slug, &c, 1, answers()).await,
            app.submit(slug, &c, Some("k-1"), 1, answers()).await,
            app.grant(slug, &c, "passbook", "a.pdf", 10).await,
            app.start_verification(slug, "taro@example.jp").await,
        ] {
            let p = res.problem_of(409, "form-closed");
            assert!(p["detail"].as_str().unwrap().contains(words), "{slug}: {p}");
        }
    }
    // The window is read from the clock: once it opens, the same form takes drafts.
    app.clock.set("2099-04-01T00:00:00Z".parse().unwrap()); // 09:00 in Tokyo
    app.put_draft("not-yet", &c, 1, answers()).await.ok(200);
}

#[tokio::test]
async fn archived_and_unknown_forms_are_not_found() {
    let app = App::new();
    app.publish(SLUG, 1, "archived", definition()).await;
    let c = app.citizen("archived-1");
    for slug in [SLUG, "no-such-form", "UPPER", "a", "../etc"] {
        for res in [
            app.put_draft(slug, &c, 1, answers()).await,
            app.confirm(slug, &c, 1, answers()).await,
            app.submit(slug, &c, Some("k-1"), 1, answers()).await,
            app.grant(slug, &c, "passbook", "a.pdf", 10).await,
            app.start_verification(slug, "taro@example.jp").await,
            app.get(&format!("/forms/{slug}/draft"), &c).await,
        ] {
            // "../etc" does not even route; everything else is problem+json.
            if slug == "../etc" {
                assert_eq!(res.status.as_u16(), 404);
            } else {
                res.problem(404);
            }
        }
    }
}

#[tokio::test]
async fn a_superseded_form_version_is_told_to_reload() {
    let app = App::new();
    app.publish(SLUG, 1, "published", definition()).await;
    let c = app.citizen("stale-1");
    app.put_draft(SLUG, &c, 1, answers()).await.ok(200);
    // Staff publish version 2 while the citizen is filling in version 1.
    app.publish(SLUG, 2, "published", definition()).await;
    for res in [
        app.put_draft(SLUG, &c, 1, answers()).await,
        app.confirm(SLUG, &c, 1, answers()).await,
        app.submit(SLUG, &c, Some("k-stale"), 1, answers()).await,
    ] {
        let p = res.problem_of(409, "form-version");
        assert!(p["detail"].as_str().unwrap().contains("再読み込み"), "{p}");
    }
    assert!(history(&app, &c).await.is_empty());
    // The same key works once the citizen reloads (a refusal does not burn the key).
    app.submit(SLUG, &c, Some("k-stale"), 2, answers())
        .await
        .ok(201);
}

// ------------------------------------------------------------------------------------------
// Idempotent submission

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn concurrent_submits_with_one_key_make_one_application() {
    let app = app_with_form().await;
    for round in 0..6 {
        let c = app.citizen(&format!("race-{round}"));
        // With a draft both requests use its id; without one each draws its own.
        if round % 2 == 0 {
            app.put_draft(SLUG, &c, 1, answers()).await.ok(200);
        }
        let key = format!("key-{round}");
        let (a, b) = tokio::join!(
            app.submit(SLUG, &c, Some(&key), 1, answers()),
            app.submit(SLUG, &c, Some(&key), 1, answers()),
        );
        let mut statuses = [a.status.as_u16(), b.status.as_u16()];
        statuses.sort();
        assert_eq!(
            statuses,
            [200, 201],
            "round {round}: {} / {}",
            a.body,
            b.body
        );
        assert_eq!(a.body, b.body, "same receipt for both");
        let list = history(&app, &c).await;
        assert_eq!(list.len(), 1, "round {round}: {list:?}");
        assert_eq!(list[0]["receipt_number"], a.body["receipt_number"]);
        assert_eq!(list[0]["id"], a.body["application_id"]);
    }
}

#[tokio::test]
async fn an_idempotency_key_is_required_and_bound_to_its_body() {
    let app = app_with_form().await;
    let c = app.citizen("idem-1");
    let res = app.submit(SLUG, &c, None, 1, answers()).await;
    res.field_error("idempotency-key", "required");
    for bad in ["", "   ", &"x".repeat(129), "a b", "tab\tkey"] {
        let headers = [("idempotency-key", bad)];
        let res = app
            .call(
                Method::POST,
                &format!("/forms/{SLUG}/applications"),
                &c,
                Some(json!({"form_version": 1, "answers": answers()})),
                &headers,
            )
            .await;
        res.field_error("idempotency-key", "required");
    }
    assert!(history(&app, &c).await.is_empty());

    let first = app.submit(SLUG, &c, Some("abc"), 1, answers()).await;
    let first = first.ok(201).clone();
    let receipt = first["receipt_number"].as_str().unwrap();
    assert!(madoguchi_domain::receipt::ReceiptNumber::parse(receipt).is_ok());
    assert_eq!(first["status"], "received");
    let again = app.submit(SLUG, &c, Some("abc"), 1, answers()).await;
    assert_eq!(again.ok(200), &first);
    let other = app
        .submit(SLUG, &c, Some("abc"), 1, json!({"applicant": "山田太郎"}))
        .await;
    other.problem_of(409, "idempotency-key-reused");
    // Keys are per citizen: another citizen's "abc" is a new submission.
    let d = app.citizen("idem-2");
    let theirs = app.submit(SLUG, &d, Some("abc"), 1, answers()).await;
    assert_ne!(theirs.ok(201)["receipt_number"], first["receipt_number"]);
    assert_eq!(history(&app, &c).await.len(), 1);
    assert_eq!(history(&app, &d).await.len(), 1);
}

/// Lets the test decide the interleaving of two submissions: both pass the idempotency check
/// before either writes, and the second one reads the draft only after the first committed
/// (which deleted the draft). Everything is stored by the real SQLite store underneath.
struct Interleave {
    inner: Arc<dyn ItemStore>,
    armed: AtomicBool,
    idem_gets: AtomicUsize,
    draft_gets: AtomicUsize,
    both_checked: tokio::sync::Barrier,
    committed: AtomicBool,
    commit: tokio::sync::Notify,
}

#[async_trait]
impl ItemStore for Interleave {
    async fn put(&self, item: Item, condition: Condition) -> PortResult<()> {
        self.inner.put(item, condition).await
    }
    async fn get_batch(&self, keys: &[Key]) -> PortResult<Vec<Option<Item>>> {
        self.inner.get_batch(keys).await
    }
    async fn get(&self, key: &Key) -> PortResult<Option<Item>> {
        if self.armed.load(Ordering::SeqCst) {
            if key.pk.contains("#IDEM#") && self.idem_gets.fetch_add(1, Ordering::SeqCst) < 2 {
                self.both_checked.wait().await;
            }
            if key.sk.starts_with("DRAFT#") && self.draft_gets.fetch_add(1, Ordering::SeqCst) == 1 {
                let wait = async {
                    while !self.committed.load(Ordering::SeqCst) {
                        let notified = self.commit.notified();
                        if self.committed.load(Ordering::SeqCst) {
                            break;
                        }
                        notified.await;
                    }
                };
                tokio::time::timeout(Duration::from_secs(10), wait)
                    .await
                    .expect("the first submission commits");
            }
        }
        self.inner.get(key).await
    }
    async fn delete(&self, key: &Key, condition: Condition) -> PortResult<()> {
        self.inner.delete(key, condition).await
    }
    async fn query(&self, request: QueryRequest) -> PortResult<Page> {
        self.inner.query(request).await
    }
    async fn transact(&self, ops: Vec<TxOp>) -> PortResult<()> {
        let result = self.inner.transact(ops).await;
        if result.is_ok() {
            self.committed.store(true, Ordering::SeqCst);
            self.commit.notify_waiters();
        }
        result
    }
    async fn increment(&self, key: &Key, by: i64) -> PortResult<i64> {
        self.inner.increment(key, by).await
    }
    async fn put_batch(&self, items: Vec<Item>) -> PortResult<()> {
        self.inner.put_batch(items).await
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_retry_that_loses_the_race_after_the_draft_is_gone_still_gets_the_receipt() {
    let gate: Arc<std::sync::OnceLock<Arc<Interleave>>> = Arc::default();
    let slot = gate.clone();
    let app = App::with_store(move |inner| {
        let store = Arc::new(Interleave {
            inner,
            armed: AtomicBool::new(false),
            idem_gets: AtomicUsize::new(0),
            draft_gets: AtomicUsize::new(0),
            both_checked: tokio::sync::Barrier::new(2),
            committed: AtomicBool::new(false),
            commit: tokio::sync::Notify::new(),
        });
        slot.set(store.clone()).ok();
        store
    });
    app.publish(SLUG, 1, "published", definition()).await;
    let c = app.citizen("race-draft");
    let number = my_number(27_206_000_001);
    let saved = app
        .put_draft(
            SLUG,
            &c,
            1,
            json!({"applicant": "山田花子", "my_number": number}),
        )
        .await;
    // The confirm screen sends the masked number back; only the draft knows the real one.
    let masked = saved.ok(200)["answers"]["my_number"].clone();
    let body = json!({"applicant": "山田花子", "my_number": masked});
    gate.get().unwrap().armed.store(true, Ordering::SeqCst);
    let (a, b) = tokio::join!(
        app.submit(SLUG, &c, Some("one-key"), 1, body.clone()),
        app.submit(SLUG, &c, Some("one-key"), 1, body.clone()),
    );
    let mut statuses = [a.status.as_u16(), b.status.as_u16()];
    statuses.sort();
    assert_eq!(statuses, [200, 201], "{} / {}", a.body, b.body);
    assert_eq!(a.body, b.body);
    assert_eq!(history(&app, &c).await.len(), 1);
}

// ------------------------------------------------------------------------------------------
// The one-time mail code

async fn email_forms(app: &App) {
    app.publish(
        "form-a",
        1,
        "published",
        with(definition(), "access", json!("email")),
    )
    .await;
    app.publish(
        "form-b",
        1,
        "published",
        with(definition(), "access", json!("either")),
    )
    .await;
    app.publish(
        "account-only",
        1,
        "published",
        with(definition(), "access", json!("account")),
    )
    .await;
}

#[tokio::test]
async fn a_proof_lets_a_citizen_apply_without_an_account() {
    let app = App::new();
    email_forms(&app).await;
    let (id, code) = app.code_for("form-a", "Taro@Example.JP").await;
    let (subject, body) = app.mails_to("Taro@example.jp").pop().unwrap();
    assert!(subject.contains("確認コード"), "{subject}");
    assert!(body.contains("10分間"), "{body}");
    let res = app.confirm_code("form-a", &id, &code).await;
    let proof = Auth::Proof(res.ok(201)["proof"].as_str().unwrap().to_owned());
    // Single use.
    app.confirm_code("form-a", &id, &code)
        .await
        .problem_of(404, "code-expired");
    app.put_draft("form-a", &proof, 1, answers()).await.ok(200);
    let done = app.submit("form-a", &proof, Some("k"), 1, answers()).await;
    let id = done.ok(201)["application_id"].as_str().unwrap().to_owned();
    let list = history(&app, &proof).await;
    assert_eq!(list.len(), 1);
    // The proven address is where the receipt goes.
    let item = app
        .backend
        .items()
        .get(&Key::new(
            app_pk(&tenant(), &ApplicationId::parse(&id).unwrap()),
            APP_SK,
        ))
        .await
        .unwrap()
        .unwrap();
    let record: ApplicationRecord = serde_json::from_value(item.data).unwrap();
    assert_eq!(record.email.as_deref(), Some("Taro@example.jp"));
    // A full-width code is understood too.
    let (id, code) = app.code_for("form-a", "hanako@example.jp").await;
    let wide: String = code
        .chars()
        .map(|c| char::from_u32(c as u32 - '0' as u32 + '０' as u32).unwrap())
        .collect();
    app.confirm_code("form-a", &id, &wide).await.ok(201);
}

#[tokio::test]
async fn five_wrong_codes_burn_the_code() {
    let app = App::new();
    email_forms(&app).await;
    let (id, code) = app.code_for("form-a", "taro@example.jp").await;
    let wrong = if code == "000000" { "111111" } else { "000000" };
    for left in (1..=4).rev() {
        let res = app.confirm_code("form-a", &id, wrong).await;
        res.field_error("code", "wrong_code");
        let message = res.body["errors"][0]["message"].as_str().unwrap();
        assert!(message.contains(&format!("あと{left}回")), "{message}");
        assert!(!message.contains(wrong), "the code is not echoed");
    }
    app.confirm_code("form-a", &id, wrong)
        .await
        .problem_of(429, "too-many-attempts");
    // Gone: not even the right code works now.
    app.confirm_code("form-a", &id, &code)
        .await
        .problem_of(404, "code-expired");
}

#[tokio::test]
async fn at_most_five_codes_per_address_and_hour() {
    let app = App::new();
    email_forms(&app).await;
    for _ in 0..5 {
        app.start_verification("form-a", "taro@example.jp")
            .await
            .ok(201);
    }
    app.start_verification("form-a", "taro@example.jp")
        .await
        .problem_of(429, "too-many-codes");
    // Nor by spelling the same mailbox differently, nor through another form.
    app.start_verification("form-a", "TARO@EXAMPLE.JP")
        .await
        .problem_of(429, "too-many-codes");
    app.start_verification("form-b", " Taro@example.jp ")
        .await
        .problem_of(429, "too-many-codes");
    assert_eq!(app.mails_to("taro@example.jp").len(), 5);
    // Someone else is not affected.
    app.start_verification("form-a", "hanako@example.jp")
        .await
        .ok(201);
    // An hour later the address may ask again.
    app.clock.advance(jiff::SignedDuration::from_mins(61));
    app.start_verification("form-a", "taro@example.jp")
        .await
        .ok(201);
    assert_eq!(app.mails_to("taro@example.jp").len(), 6);
}

#[tokio::test]
async fn codes_and_proofs_expire() {
    let app = App::new();
    email_forms(&app).await;
    let (id, code) = app.code_for("form-a", "taro@example.jp").await;
    app.clock.advance(jiff::SignedDuration::from_mins(10));
    app.clock.advance(jiff::SignedDuration::from_secs(1));
    app.confirm_code("form-a", &id, &code)
        .await
        .problem_of(404, "code-expired");

    let proof = app.proof_for("form-a", "hanako@example.jp").await;
    app.put_draft("form-a", &proof, 1, answers()).await.ok(200);
    app.clock.advance(jiff::SignedDuration::from_hours(2));
    app.clock.advance(jiff::SignedDuration::from_secs(1));
    let res = app.put_draft("form-a", &proof, 1, answers()).await;
    res.problem(401);
    // Unknown and malformed verification ids are "gone" too, never a 5xx.
    for id in [
        "00000000-0000-7000-8000-000000000000",
        "not-an-id",
        "%2e%2e",
        "0190a5d0-ac96-774b-bcce-b302099a80570000",
    ] {
        app.confirm_code("form-a", id, "123456")
            .await
            .problem_of(404, "code-expired");
    }
}

#[tokio::test]
async fn a_proof_is_bound_to_its_form_and_forms_choose_the_way_in() {
    let app = App::new();
    email_forms(&app).await;
    let proof_a = app.proof_for("form-a", "taro@example.jp").await;
    // A proof for form A does not open form B, although B takes proofs.
    for res in [
        app.put_draft("form-b", &proof_a, 1, answers()).await,
        app.confirm("form-b", &proof_a, 1, answers()).await,
        app.submit("form-b", &proof_a, Some("k"), 1, answers())
            .await,
        app.grant("form-b", &proof_a, "passbook", "a.pdf", 10).await,
        app.get("/forms/form-b/draft", &proof_a).await,
    ] {
        res.problem_of(403, "access-method");
    }
    // A verification started for form A cannot be confirmed on form B.
    let (id, code) = app.code_for("form-a", "hanako@example.jp").await;
    app.confirm_code("form-b", &id, &code)
        .await
        .problem_of(404, "code-expired");
    app.confirm_code("form-a", &id, &code).await.ok(201);

    // An account-only form mails no codes and refuses proofs.
    app.start_verification("account-only", "jiro@example.jp")
        .await
        .problem_of(403, "access-method");
    assert!(app.mails_to("jiro@example.jp").is_empty());
    let res = app.put_draft("account-only", &proof_a, 1, answers()).await;
    let p = res.problem_of(403, "access-method");
    assert!(p["detail"].as_str().unwrap().contains("アカウント"), "{p}");
    app.put_draft("account-only", &app.citizen("acct-1"), 1, answers())
        .await
        .ok(200);

    // A form republished as account-only stops taking the proofs issued for it.
    app.publish(
        "form-a",
        2,
        "published",
        with(definition(), "access", json!("account")),
    )
    .await;
    app.put_draft("form-a", &proof_a, 2, answers())
        .await
        .problem_of(403, "access-method");

    // An email-only form refuses accounts.
    app.publish(
        "form-b",
        2,
        "published",
        with(definition(), "access", json!("email")),
    )
    .await;
    let account = app.citizen("acct-2");
    for res in [
        app.put_draft("form-b", &account, 2, answers()).await,
        app.submit("form-b", &account, Some("k"), 2, answers())
            .await,
        app.grant("form-b", &account, "passbook", "a.pdf", 10).await,
    ] {
        res.problem_of(403, "access-method");
    }
}

// ------------------------------------------------------------------------------------------
// Who may call

#[tokio::test]
async fn staff_tokens_and_missing_credentials_are_refused() {
    let app = app_with_form().await;
    let staff = app.staff();
    let admin = Auth::Bearer(app.token("admin-1", tenant(), Role::Admin, None));
    for who in [&staff, &admin] {
        for res in [
            app.put_draft(SLUG, who, 1, answers()).await,
            app.submit(SLUG, who, Some("k"), 1, answers()).await,
            app.grant(SLUG, who, "passbook", "a.pdf", 10).await,
            app.get("/my/applications", who).await,
        ] {
            res.problem(403);
        }
    }
    let garbage = [
        Auth::None,
        Auth::Bearer("not-a-jwt".into()),
        Auth::Proof("unknown-proof".into()),
        Auth::Proof("x".repeat(200)),
        Auth::Bearer(
            app.issuer
                .mint(&madoguchi_http::dev_issuer::DevTokenRequest {
                    sub: "late".into(),
                    tenant: tenant(),
                    role: Role::Citizen,
                    depts: vec![],
                    ttl_seconds: -3600,
                    now: jiff::Timestamp::now().as_second(),
                    email: None,
                }),
        ),
    ];
    for who in &garbage {
        for res in [
            app.put_draft(SLUG, who, 1, answers()).await,
            app.confirm(SLUG, who, 1, answers()).await,
            app.submit(SLUG, who, Some("k"), 1, answers()).await,
            app.grant(SLUG, who, "passbook", "a.pdf", 10).await,
            app.get("/my/applications", who).await,
            app.get(&format!("/forms/{SLUG}/draft"), who).await,
        ] {
            res.problem(401);
            assert!(res.headers.contains_key("www-authenticate"), "{who:?}");
        }
    }
}

#[tokio::test]
async fn citizens_see_only_their_own_applications_in_their_own_tenant() {
    let app = app_with_form().await;
    let a = app.citizen("owner-a");
    let b = app.citizen("owner-b");
    let done = app.submit(SLUG, &a, Some("k"), 1, answers()).await;
    let id = done.ok(201)["application_id"].as_str().unwrap().to_owned();
    let detail = app.get(&format!("/my/applications/{id}"), &a).await;
    assert_eq!(detail.ok(200)["form_title"], "子育て応援給付金の申請");
    // Another citizen: not found, never forbidden (existence is not disclosed).
    app.get(&format!("/my/applications/{id}"), &b)
        .await
        .problem(404);
    assert!(history(&app, &b).await.is_empty());
    for bad in ["not-an-id", "00000000-0000-0000-0000-000000000000"] {
        app.get(&format!("/my/applications/{bad}"), &a)
            .await
            .problem(404);
    }
    // Another tenant in the path: the token is for 272060.
    let other = other_tenant();
    let elsewhere = |p: &str| format!("/v1/tenants/{}{p}", other.as_str());
    app.get(&elsewhere(&format!("/my/applications/{id}")), &a)
        .await
        .problem(403);
    app.get(&elsewhere("/my/applications"), &a)
        .await
        .problem(403);
    app.call(
        Method::PUT,
        &elsewhere(&format!("/forms/{SLUG}/draft")),
        &a,
        Some(json!({"form_version": 1, "answers": answers()})),
        &[],
    )
    .await
    .problem(403);
    // A citizen of the other tenant cannot read ours either.
    let foreign = Auth::Bearer(app.token("owner-a", other, Role::Citizen, None));
    app.get(&format!("/my/applications/{id}"), &foreign)
        .await
        .problem(403);
    // Not a municipality at all.
    app.get("/v1/tenants/272061/my/applications", &a)
        .await
        .problem(404);
    // A proof is only known in the tenant that issued it.
    app.publish("form-b", 1, "published", definition()).await;
    let proof = app.proof_for("form-b", "taro@example.jp").await;
    app.get(&elsewhere("/my/applications"), &proof)
        .await
        .problem(401);
}

// ------------------------------------------------------------------------------------------
// Upload grants

#[tokio::test]
async fn upload_grants_refuse_bad_names_types_and_sizes() {
    let app = app_with_form().await;
    let c = app.citizen("uploader-1");
    let cases: &[(&str, &str, u64, &str, &str)] = &[
        (
            "passbook",
            "../../etc/passwd.pdf",
            10,
            "file_name",
            "invalid_char",
        ),
        ("passbook", "a/b.pdf", 10, "file_name", "invalid_char"),
        ("passbook", "a\\b.pdf", 10, "file_name", "invalid_char"),
        ("passbook", "a\0b.pdf", 10, "file_name", "invalid_char"),
        (
            "passbook",
            "a\u{202e}fdp.exe",
            10,
            "file_name",
            "invalid_char",
        ),
        ("passbook", "...", 10, "file_name", "invalid_format"),
        ("passbook", "..", 10, "file_name", "invalid_format"),
        ("passbook", "a..pdf", 10, "file_name", "invalid_format"),
        ("passbook", "", 10, "file_name", "required"),
        ("passbook", "CON.pdf", 10, "file_name", "invalid_format"),
        (
            "passbook",
            "scan.jpg",
            10,
            "file_name",
            "extension_not_allowed",
        ),
        (
            "passbook",
            "virus.exe",
            10,
            "file_name",
            "extension_not_allowed",
        ),
        (
            "passbook",
            "no-extension",
            10,
            "file_name",
            "extension_not_allowed",
        ),
        ("passbook", ".pdf", 10, "file_name", "extension_not_allowed"),
        ("passbook", "a.pdf", 0, "size", "empty"),
        ("passbook", "a.pdf", 2 * MIB + 1, "size", "too_large"),
        ("passbook", "a.pdf", u64::MAX, "size", "too_large"),
        // A field without an extension list takes the allowed types only.
        (
            "other_doc",
            "virus.exe",
            10,
            "file_name",
            "extension_not_allowed",
        ),
        ("other_doc", "a.pdf", MIB + 1, "size", "too_large"),
        ("applicant", "a.pdf", 10, "field", "not_an_attachment"),
        ("my_number", "a.pdf", 10, "field", "not_an_attachment"),
        ("nope", "a.pdf", 10, "field", "unknown_field"),
    ];
    for (field, name, size, err_field, code) in cases {
        let res = app.grant(SLUG, &c, field, name, *size).await;
        assert_eq!(
            res.status.as_u16(),
            422,
            "{field} {name:?} {size}: {}",
            res.body
        );
        res.field_error(err_field, code);
    }
    // Refusals leave nothing behind: no draft was created to file them under.
    app.get(&format!("/forms/{SLUG}/draft"), &c)
        .await
        .problem(404);
    assert!(
        app.backend
            .items()
            .get(&draft_key("uploader-1", SLUG))
            .await
            .unwrap()
            .is_none()
    );
}

#[tokio::test]
async fn upload_grants_count_files_and_the_total() {
    let app = app_with_form().await;
    let c = app.citizen("uploader-2");
    // A field without an extension list takes any allowed type (docs/forms.md: empty = all).
    let granted = app.grant(SLUG, &c, "other_doc", "申請書.PDF", 1000).await;
    let granted = granted.ok(201).clone();
    let id = granted["attachment_id"].as_str().unwrap();
    assert!(
        granted["upload"]["url"]
            .as_str()
            .unwrap()
            .starts_with("http://127.0.0.1:9/")
    );
    let fields = granted["upload"]["fields"].as_array().unwrap();
    let key = fields.iter().find(|f| f[0] == "key").expect("key field");
    assert!(key[1].as_str().unwrap().starts_with("quarantine/272060/"));
    assert!(key[1].as_str().unwrap().ends_with(id));
    let status = app
        .get(&format!("/forms/{SLUG}/attachments/{id}"), &c)
        .await;
    let status = status.ok(200);
    assert_eq!(status["status"], "pending");
    assert_eq!(status["file_name"], "申請書.PDF");
    assert_eq!(status["field"], "other_doc");
    // Another citizen cannot see it.
    app.get(
        &format!("/forms/{SLUG}/attachments/{id}"),
        &app.citizen("uploader-3"),
    )
    .await
    .problem(404);

    // passbook takes two files.
    app.grant(SLUG, &c, "passbook", "1.pdf", 10).await.ok(201);
    app.grant(SLUG, &c, "passbook", "2.png", 10).await.ok(201);
    app.grant(SLUG, &c, "passbook", "3.pdf", 10)
        .await
        .field_error("field", "too_many_files");

    // The total (3 MB) counts every pending and accepted file of the draft.
    let d = app.citizen("uploader-4");
    app.grant(SLUG, &d, "passbook", "big.pdf", 2 * MIB)
        .await
        .ok(201);
    app.grant(SLUG, &d, "other_doc", "b.pdf", MIB + 1)
        .await
        .field_error("size", "too_large");
    app.grant(SLUG, &d, "passbook", "more.pdf", MIB + 1)
        .await
        .field_error("size", "total_exceeded");
    app.grant(SLUG, &d, "passbook", "exact.pdf", MIB)
        .await
        .ok(201);
    app.grant(SLUG, &d, "other_doc", "one-byte.txt", 1)
        .await
        .field_error("size", "total_exceeded");
    let draft: DraftRecord = serde_json::from_value(
        app.backend
            .items()
            .get(&draft_key("uploader-4", SLUG))
            .await
            .unwrap()
            .unwrap()
            .data,
    )
    .unwrap();
    let page = app
        .backend
        .items()
        .query(
            QueryRequest::partition(upload_pk(&tenant(), &draft.draft_id))
                .sk(SortKeyCondition::BeginsWith(ATTACHMENT_PREFIX.to_owned())),
        )
        .await
        .unwrap();
    assert_eq!(page.items.len(), 2, "refused grants record nothing");
}

// ------------------------------------------------------------------------------------------
// My Number in drafts

fn contains(hay: &[u8], needle: &[u8]) -> bool {
    hay.windows(needle.len()).any(|w| w == needle)
}

fn files(dir: &std::path::Path, out: &mut Vec<(String, Vec<u8>)>) {
    for e in std::fs::read_dir(dir).unwrap().flatten() {
        let p = e.path();
        if p.is_dir() {
            files(&p, out);
        } else if let Ok(bytes) = std::fs::read(&p) {
            out.push((p.display().to_string(), bytes));
        }
    }
}

#[tokio::test]
async fn a_my_number_is_sealed_in_drafts_and_shown_masked() {
    let app = app_with_form().await;
    let c = app.citizen("mynumber-1");
    let n = my_number(12_345_678_901);
    let spaced = format!("{} {} {}", &n[..4], &n[4..8], &n[8..]);
    let masked = format!("********{}", &n[8..]);

    // A fresh citizen cannot pass a mask off as a number.
    let checked = app
        .confirm(
            SLUG,
            &c,
            1,
            json!({"applicant": "山田花子", "my_number": masked}),
        )
        .await;
    let checked = checked.ok(200);
    assert_eq!(checked["valid"], false);
    assert!(
        checked["errors"]
            .as_array()
            .unwrap()
            .iter()
            .any(|e| e["field"] == "my_number"),
        "{checked}"
    );

    let saved = app
        .put_draft(
            SLUG,
            &c,
            1,
            json!({"applicant": "山田", "my_number": spaced}),
        )
        .await;
    assert_eq!(saved.ok(200)["answers"]["my_number"], json!(masked));
    let etag = saved.headers["etag"].to_str().unwrap().to_owned();
    assert_eq!(etag, "\"1\"");
    let raw = app
        .backend
        .items()
        .get(&draft_key("mynumber-1", SLUG))
        .await
        .unwrap()
        .unwrap();
    let text = raw.data.to_string();
    assert!(!text.contains(&n) && !text.contains(&spaced), "{text}");
    let sealed_before = raw.data["answers"]["my_number"]["sealed"].clone();
    assert!(sealed_before.is_object(), "{text}");
    let got = app.get(&format!("/forms/{SLUG}/draft"), &c).await;
    assert_eq!(got.ok(200)["answers"]["my_number"], json!(masked));
    assert_eq!(got.body["answers"]["applicant"], "山田");

    // Sending the mask back keeps the sealed number; other answers change.
    let saved = app
        .call(
            Method::PUT,
            &format!("/forms/{SLUG}/draft"),
            &c,
            Some(json!({"form_version": 1, "answers": {"applicant": "山田花子", "my_number": masked}})),
            &[("if-match", &etag)],
        )
        .await;
    assert_eq!(saved.ok(200)["answers"]["my_number"], json!(masked));
    let raw = app
        .backend
        .items()
        .get(&draft_key("mynumber-1", SLUG))
        .await
        .unwrap()
        .unwrap();
    assert_eq!(raw.data["answers"]["my_number"]["sealed"], sealed_before);
    assert_eq!(raw.data["answers"]["applicant"], "山田花子");
    // An outdated If-Match is a conflict, not an overwrite.
    app.call(
        Method::PUT,
        &format!("/forms/{SLUG}/draft"),
        &c,
        Some(json!({"form_version": 1, "answers": {"applicant": "別の画面"}})),
        &[("if-match", &etag)],
    )
    .await
    .problem(409);

    // Confirm understands the mask as the sealed number.
    let body = json!({"applicant": "山田花子", "my_number": masked});
    let checked = app.confirm(SLUG, &c, 1, body.clone()).await;
    let checked = checked.ok(200);
    assert_eq!(checked["valid"], true, "{checked}");
    let row = checked["summary"]
        .as_array()
        .unwrap()
        .iter()
        .find(|r| r["field"] == "my_number")
        .unwrap()
        .clone();
    assert_eq!(row["display"], json!(masked));
    assert!(!checked.to_string().contains(&n));

    // Submitted: sealed under the application, with a blind index, and the mask in history.
    let done = app.submit(SLUG, &c, Some("k"), 1, body).await;
    let id = done.ok(201)["application_id"].as_str().unwrap().to_owned();
    let app_id = ApplicationId::parse(&id).unwrap();
    let item = app
        .backend
        .items()
        .get(&Key::new(app_pk(&tenant(), &app_id), APP_SK))
        .await
        .unwrap()
        .unwrap();
    let text = item.data.to_string();
    assert!(!text.contains(&n) && !text.contains(&spaced), "{text}");
    let record: ApplicationRecord = serde_json::from_value(item.data).unwrap();
    assert!(record.blind_indexes.contains_key("my_number"));
    let sealed: Sealed =
        serde_json::from_value(record.answers["my_number"]["sealed"].clone()).unwrap();
    let plain = app
        .state
        .cipher
        .open(&tenant(), &Binding::new(&id, "my_number"), &sealed)
        .await
        .unwrap();
    assert_eq!(plain.as_slice(), n.as_bytes(), "the number the draft held");
    let detail = app.get(&format!("/my/applications/{id}"), &c).await;
    assert!(detail.ok(200).to_string().contains(&masked));
    assert!(!detail.body.to_string().contains(&n));

    // Whatever was typed, nothing on disk holds it in plain text.
    let mut stored = Vec::new();
    files(app.dir.path(), &mut stored);
    for (what, bytes) in &stored {
        assert!(!contains(bytes, n.as_bytes()), "{what} holds the My Number");
        assert!(
            !contains(bytes, spaced.as_bytes()),
            "{what} holds the My Number"
        );
    }
}

#[tokio::test]
async fn a_new_number_replaces_the_sealed_one_and_garbage_is_sealed_too() {
    let app = app_with_form().await;
    let c = app.citizen("mynumber-2");
    let first = my_number(11_111_111_111);
    let second = my_number(22_222_222_222);
    app.put_draft(SLUG, &c, 1, json!({"my_number": first}))
        .await
        .ok(200);
    let res = app
        .put_draft(SLUG, &c, 1, json!({"my_number": second}))
        .await;
    assert_eq!(
        res.ok(200)["answers"]["my_number"],
        json!(format!("********{}", &second[8..]))
    );
    let checked = app
        .confirm(
            SLUG,
            &c,
            1,
            json!({"applicant": "山田", "my_number": format!("********{}", &second[8..])}),
        )
        .await;
    assert_eq!(checked.ok(200)["valid"], true, "{}", checked.body);
    // A mistyped number is personal data too: sealed, shown fully masked.
    let typo = "12345678";
    let res = app.put_draft(SLUG, &c, 1, json!({"my_number": typo})).await;
    assert_eq!(res.ok(200)["answers"]["my_number"], "************");
    let raw = app
        .backend
        .items()
        .get(&draft_key("mynumber-2", SLUG))
        .await
        .unwrap()
        .unwrap();
    assert!(!raw.data.to_string().contains(typo));
    // Deleting the draft removes it.
    let res = app
        .call(
            Method::DELETE,
            &format!("/forms/{SLUG}/draft"),
            &c,
            None,
            &[],
        )
        .await;
    assert_eq!(res.status.as_u16(), 204);
    app.get(&format!("/forms/{SLUG}/draft"), &c)
        .await
        .problem(404);
}
