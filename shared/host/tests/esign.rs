//! E-signature and card login end to end, on both adapter sets (issue "Done when"): a form
//! requiring a signature gets its locked fields filled from the card's signing certificate
//! (a certificate session), is signed through an application session with a test
//! certificate and accepted with a TOTAL-PASSED report that staff see; a revoked
//! certificate's signature and login are refused with REVOKED; sessions and challenges are
//! single-use; a card login token works on the citizen API.
//!
//! The PKI is made by the openssl CLI at test time (nothing committed is a real person's
//! certificate); signatures are made by `openssl cms -sign` and `openssl dgst -sign`.

mod common;

use base64::Engine;
use common::*;
use madoguchi_tests::pki::Pki;
use reqwest::Method;
use serde_json::{Value, json};
use sha2::{Digest, Sha256};

const SLUG: &str = "juminhyo";

fn definition() -> Value {
    json!({
        "title": "住民票の写し等交付請求",
        "access": "account",
        "signature": "required",
        "items": [
            {"id": "name", "type": "name", "label": "氏名", "required": true, "from_certificate": "name"},
            {"id": "address", "type": "address", "label": "住所", "required": true, "from_certificate": "address"},
            {"id": "birth", "type": "date", "label": "生年月日", "required": true, "from_certificate": "birth_date"},
            {"id": "gender", "type": "radio", "label": "性別", "from_certificate": "gender",
             "options": [{"value": "male", "label": "男性"}, {"value": "female", "label": "女性"}]},
            {"id": "copies", "type": "number", "label": "通数", "required": true, "integer": true, "min": 1, "max": 10}
        ]
    })
}

struct Client {
    c: reqwest::Client,
    base: String,
}

impl Client {
    /// `path` under the tenant; returns status and JSON body.
    async fn call(
        &self,
        method: Method,
        path: &str,
        token: Option<&str>,
        body: Option<Value>,
        headers: &[(&str, &str)],
    ) -> (u16, Value) {
        let url = if path.starts_with("http") {
            path.to_owned()
        } else {
            format!("{}/v1/tenants/{TENANT}{path}", self.base)
        };
        let mut req = self.c.request(method, url);
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
        let text = res.text().await.unwrap();
        (
            status,
            serde_json::from_str(&text).unwrap_or(Value::String(text)),
        )
    }

    async fn expect(
        &self,
        method: Method,
        path: &str,
        token: Option<&str>,
        body: Option<Value>,
        headers: &[(&str, &str)],
        status: u16,
    ) -> Value {
        let (got, v) = self.call(method, path, token, body, headers).await;
        assert_eq!(got, status, "{path}: {v}");
        v
    }
}

fn sha256_hex(b: &[u8]) -> String {
    hex::encode(Sha256::digest(b))
}

/// The app's side of a session: open the link, sign what it says, post the signature.
async fn app_signs(api: &Client, pki: &Pki, link: &str, signer: &str, payload: &[u8]) -> Value {
    let request = api.expect(Method::GET, link, None, None, &[], 200).await;
    assert_eq!(
        request["digest"],
        json!(sha256_hex(payload)),
        "the app signs what the session says"
    );
    assert_eq!(request["digest_algorithm"], "SHA-256");
    let url = request["signature_url"].as_str().unwrap().to_owned();
    api.expect(
        Method::POST,
        &url,
        None,
        Some(json!({"signature": pki.cms(signer, payload)})),
        &[],
        200,
    )
    .await
}

async fn walk(host: Host, pki: Pki) {
    let api = Client {
        c: reqwest::Client::new(),
        base: host.base.clone(),
    };
    let admin = host.token_depts("admin", TENANT, "admin-1", &[]);
    let clerk = host.token_depts("staff", TENANT, "clerk-1", &["shimin-ka"]);
    let citizen = host.token_for("citizen", TENANT, 600, "citizen-1", None);
    let org = json!({"departments": [{"id": "shimin-ka", "name": "市民課"}]});
    api.expect(
        Method::PUT,
        "/staff/org",
        Some(admin.as_str()),
        Some(org),
        &[("if-match", "0")],
        200,
    )
    .await;
    api.expect(
        Method::POST,
        "/manage/forms",
        Some(clerk.as_str()),
        Some(json!({"slug": SLUG, "definition": definition(), "department": "shimin-ka"})),
        &[],
        201,
    )
    .await;
    api.expect(
        Method::POST,
        &format!("/manage/forms/{SLUG}/publish"),
        Some(clerk.as_str()),
        None,
        &[("if-match", "1")],
        200,
    )
    .await;
    let form = api
        .expect(
            Method::GET,
            &format!("/forms/{SLUG}"),
            Some(citizen.as_str()),
            None,
            &[],
            200,
        )
        .await;
    let version = form["version"].as_u64().unwrap();

    // 1. The card's 基本4情報 fill the locked fields (a certificate session).
    let opened = api
        .expect(
            Method::POST,
            "/esign/sessions",
            None,
            Some(json!({"form": SLUG})),
            &[],
            201,
        )
        .await;
    let sid = opened["session_id"].as_str().unwrap().to_owned();
    let status_token = opened["status_token"].as_str().unwrap().to_owned();
    assert!(opened["qr_svg"].as_str().unwrap().contains("<svg"));
    let poll = |sid: String, token: String| {
        let api = &api;
        async move {
            api.expect(
                Method::GET,
                &format!("/esign/sessions/{sid}"),
                None,
                None,
                &[("x-session-token", &token)],
                200,
            )
            .await
        }
    };
    assert_eq!(
        poll(sid.clone(), status_token.clone()).await["state"],
        "open"
    );
    let tenant = madoguchi_domain::tenant::TenantId::parse(TENANT).unwrap();
    let nonce_payload = madoguchi_esign::sessions::certificate_payload(
        &tenant,
        &sid,
        &sha256_hex(status_token.as_bytes()),
    );
    let link = opened["app_link"].as_str().unwrap().to_owned();
    let outcome = app_signs(&api, &pki, &link, "hanako", &nonce_payload).await;
    assert_eq!(outcome["indication"], "TOTAL-PASSED", "{outcome}");
    // One signature per session.
    let request = api.call(Method::GET, &link, None, None, &[]).await;
    assert_eq!(request.0, 409);
    let status = poll(sid.clone(), status_token.clone()).await;
    assert_eq!(status["state"], "signed");
    let prefill = status["prefill"].clone();
    assert_eq!(
        prefill,
        json!({
            "name": {"family": "署名", "given": "花子"},
            "address": {"address": "大阪府泉大津市東雲町9番12号"},
            "birth": "1990-04-01",
            "gender": "female"
        })
    );
    // Without the status token nothing is said.
    let (code, _) = api
        .call(
            Method::GET,
            &format!("/esign/sessions/{sid}"),
            None,
            None,
            &[("x-session-token", "guess")],
        )
        .await;
    assert_eq!(code, 404);

    let mut answers = prefill.as_object().unwrap().clone();
    answers.insert("copies".into(), json!(2));
    let answers = Value::Object(answers);
    let body = json!({"form_version": version, "answers": answers});
    let payload = madoguchi_jpki::canonical_payload(SLUG, version, &answers, &[]);

    // 2. Without a signature the form refuses.
    let key = uuid::Uuid::now_v7().to_string();
    let refused = api
        .expect(
            Method::POST,
            &format!("/forms/{SLUG}/applications"),
            Some(citizen.as_str()),
            Some(body.clone()),
            &[("idempotency-key", &key)],
            422,
        )
        .await;
    assert_eq!(refused["errors"][0]["field"], "signature_session");
    assert_eq!(refused["errors"][0]["code"], "required");

    // 3. A revoked certificate's signature: REVOKED, and the session cannot submit.
    let revoked_session = api
        .expect(
            Method::POST,
            &format!("/forms/{SLUG}/signing-sessions"),
            Some(citizen.as_str()),
            Some(body.clone()),
            &[],
            201,
        )
        .await;
    assert_eq!(
        revoked_session["digest"],
        json!(sha256_hex(&payload)),
        "the documented payload"
    );
    let outcome = app_signs(
        &api,
        &pki,
        revoked_session["app_link"].as_str().unwrap(),
        "revoked",
        &payload,
    )
    .await;
    assert_eq!(outcome["indication"], "TOTAL-FAILED", "{outcome}");
    assert_eq!(outcome["sub_indication"], "REVOKED");
    let mut with_revoked = body.clone();
    with_revoked["signature_session"] = revoked_session["session_id"].clone();
    let refused = api
        .expect(
            Method::POST,
            &format!("/forms/{SLUG}/applications"),
            Some(citizen.as_str()),
            Some(with_revoked),
            &[("idempotency-key", &uuid::Uuid::now_v7().to_string())],
            422,
        )
        .await;
    assert_eq!(refused["errors"][0]["code"], "invalid");

    // 4. Signed with the good certificate: the answers changed after signing are refused,
    // the signed ones accepted.
    let session = api
        .expect(
            Method::POST,
            &format!("/forms/{SLUG}/signing-sessions"),
            Some(citizen.as_str()),
            Some(body.clone()),
            &[],
            201,
        )
        .await;
    let outcome = app_signs(
        &api,
        &pki,
        session["app_link"].as_str().unwrap(),
        "hanako",
        &payload,
    )
    .await;
    assert_eq!(outcome["indication"], "TOTAL-PASSED", "{outcome}");
    let mut changed = body.clone();
    changed["answers"]["copies"] = json!(3);
    changed["signature_session"] = session["session_id"].clone();
    let refused = api
        .expect(
            Method::POST,
            &format!("/forms/{SLUG}/applications"),
            Some(citizen.as_str()),
            Some(changed),
            &[("idempotency-key", &uuid::Uuid::now_v7().to_string())],
            422,
        )
        .await;
    assert_eq!(refused["errors"][0]["code"], "content_changed");
    let mut signed = body.clone();
    signed["signature_session"] = session["session_id"].clone();
    let submitted = api
        .expect(
            Method::POST,
            &format!("/forms/{SLUG}/applications"),
            Some(citizen.as_str()),
            Some(signed.clone()),
            &[("idempotency-key", &key)],
            201,
        )
        .await;
    let id = submitted["application_id"].as_str().unwrap().to_owned();
    // The session signed one application: another submission with it is refused.
    let refused = api
        .expect(
            Method::POST,
            &format!("/forms/{SLUG}/applications"),
            Some(citizen.as_str()),
            Some(signed),
            &[("idempotency-key", &uuid::Uuid::now_v7().to_string())],
            422,
        )
        .await;
    assert_eq!(refused["errors"][0]["field"], "signature_session");

    // Staff see the report, the chain and the locked fields checked.
    let detail = api
        .expect(
            Method::GET,
            &format!("/staff/applications/{id}"),
            Some(clerk.as_str()),
            None,
            &[],
            200,
        )
        .await;
    let sig = &detail["signature"];
    assert_eq!(sig["indication"], "TOTAL-PASSED", "{detail}");
    assert_eq!(sig["locks_match"], true);
    assert_eq!(sig["digest"], json!(sha256_hex(&payload)));
    assert_eq!(sig["locks"].as_array().unwrap().len(), 4);
    assert_eq!(sig["report"]["basic_four"]["name"], "署名　花子");
    assert_eq!(sig["report"]["revocation"]["status"], "good");
    assert_eq!(sig["report"]["chain"].as_array().unwrap().len(), 2);

    // 5. Card login: a fresh challenge signed by the user certificate gives a citizen token
    // that the citizen API accepts; the same card is the same citizen next time.
    let login = |signer: &'static str| {
        let api = &api;
        let pki = &pki;
        async move {
            let ch = api
                .expect(Method::POST, "/auth/card/challenges", None, None, &[], 201)
                .await;
            let nonce = base64::engine::general_purpose::URL_SAFE_NO_PAD
                .decode(ch["nonce"].as_str().unwrap())
                .unwrap();
            let proof = json!({
                "challenge_id": ch["challenge_id"],
                "certificate": pki.pem(signer),
                "signature": pki.raw(signer, &nonce),
            });
            (
                api.call(
                    Method::POST,
                    "/auth/card/token",
                    None,
                    Some(proof.clone()),
                    &[],
                )
                .await,
                proof,
            )
        }
    };
    let ((code, first), proof) = login("login").await;
    assert_eq!(code, 200, "{first}");
    assert_eq!(first["new_citizen"], true);
    let token = first["token"].as_str().unwrap().to_owned();
    let history = api
        .expect(
            Method::GET,
            "/my/applications",
            Some(token.as_str()),
            None,
            &[],
            200,
        )
        .await;
    assert_eq!(
        history["applications"].as_array().unwrap().len(),
        0,
        "a new citizen has no history"
    );
    // The challenge was spent.
    let (code, again) = api
        .call(Method::POST, "/auth/card/token", None, Some(proof), &[])
        .await;
    assert_eq!(code, 401, "{again}");
    let ((code, second), _) = login("login").await;
    assert_eq!(code, 200);
    assert_eq!(second["sub"], first["sub"]);
    assert_eq!(second["new_citizen"], false);
    // A revoked user certificate is refused with REVOKED.
    let ((code, refused), _) = login("login-revoked").await;
    assert_eq!(code, 401, "{refused}");
    assert_eq!(refused["errors"][0]["code"], "revoked");
    // A signing certificate cannot log in (another CA, another key usage).
    let ((code, _), _) = login("hanako").await;
    assert_eq!(code, 401);

    host.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn embedded() {
    let pki = Pki::make();
    let host = Host::start_with(None, &pki.env()).await;
    walk(host, pki).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn aws_on_moto() {
    let pki = Pki::make();
    let host = Host::start_with(Some(madoguchi_tests::aws_endpoint()), &pki.env()).await;
    walk(host, pki).await;
}
