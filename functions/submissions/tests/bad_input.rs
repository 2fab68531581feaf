//! Nothing a citizen's browser sends may crash the function or leave half a write behind:
//! arbitrary bodies (JSON of every shape, raw bytes, invalid UTF-8, deep nesting, very long
//! strings and arrays, unknown fields), headers and path segments get a 4xx problem+json
//! answer (or a success when they happen to be valid), never a 5xx.

mod common;

use axum::http::{Method, StatusCode};
use common::*;
use madoguchi_applications::keys::{
    APP_SK, HISTORY_PREFIX, SINGLE_SK, app_pk, draft_sk, idempotency_pk, owner_pk,
};
use madoguchi_applications::{
    ApplicationRecord, ApplicationStatus, CorrectionRequest, Owner, application_item,
};
use madoguchi_domain::ids::ApplicationId;
use madoguchi_ports::{Condition, ItemStore, Key, QueryRequest, SortKeyCondition};
use proptest::prelude::*;
use serde_json::{Value, json};

const SLUG: &str = "kosodate-kyufu";
const SUB: &str = "fuzz-citizen";

fn fixture() -> (tokio::runtime::Runtime, App, Auth) {
    let rt = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .unwrap();
    let app = App::new();
    rt.block_on(app.publish(SLUG, 1, "published", definition()));
    let auth = app.citizen(SUB);
    (rt, app, auth)
}

fn owner_partition() -> String {
    owner_pk(&tenant(), &Owner::Account(SUB.to_owned()))
}

async fn draft_exists(app: &App) -> bool {
    app.backend
        .items()
        .get(&Key::new(owner_partition(), draft_sk(SLUG)))
        .await
        .unwrap()
        .is_some()
}

async fn history_len(app: &App) -> usize {
    app.backend
        .items()
        .query(
            QueryRequest::partition(owner_partition())
                .sk(SortKeyCondition::BeginsWith(HISTORY_PREFIX.to_owned())),
        )
        .await
        .unwrap()
        .items
        .len()
}

fn json_value() -> impl Strategy<Value = Value> {
    let leaf = prop_oneof![
        Just(Value::Null),
        any::<bool>().prop_map(Value::from),
        any::<i64>().prop_map(Value::from),
        any::<u64>().prop_map(Value::from),
        any::<f64>()
            .prop_filter("JSON has no NaN", |f| f.is_finite())
            .prop_map(Value::from),
        ".{0,40}".prop_map(Value::from),
        // Plausible answers: digits (My Number, phone), ids, dates, full-width text.
        "[0-9０-９ -]{0,16}".prop_map(Value::from),
        Just(Value::from("01890a5d-ac96-774b-bcce-b302099a8057")),
        Just(Value::from("********9018")),
        Just(Value::from("令和8年11月23日")),
    ];
    leaf.prop_recursive(3, 24, 6, |inner| {
        prop_oneof![
            prop::collection::vec(inner.clone(), 0..6).prop_map(Value::from),
            prop::collection::btree_map(key(), inner, 0..6)
                .prop_map(|m| Value::Object(m.into_iter().collect())),
        ]
    })
}

/// Field ids of the test form, the parts of composite answers, and anything else.
fn key() -> impl Strategy<Value = String> {
    prop_oneof![
        Just("applicant".to_owned()),
        Just("my_number".to_owned()),
        Just("passbook".to_owned()),
        Just("other_doc".to_owned()),
        Just("sealed".to_owned()),
        Just("masked".to_owned()),
        Just("family".to_owned()),
        Just("form_version".to_owned()),
        Just("answers".to_owned()),
        "[a-z_]{1,8}",
        ".{0,8}",
    ]
}

/// Bodies shaped like `{"form_version", "answers"}`, some of them valid.
fn draft_body() -> impl Strategy<Value = Vec<u8>> {
    (
        prop_oneof![
            Just(json!(1)),
            Just(json!(2)),
            Just(json!(-1)),
            Just(json!(1.5)),
            Just(json!("1")),
            json_value()
        ],
        prop::collection::btree_map(key(), json_value(), 0..6),
        proptest::option::of((key(), json_value())),
    )
        .prop_map(|(version, answers, extra)| {
            let mut body = json!({"form_version": version, "answers": answers});
            if let Some((k, v)) = extra {
                body[k] = v;
            }
            body.to_string().into_bytes()
        })
}

/// What a hostile or broken client sends: everything above plus raw bytes, invalid UTF-8,
/// nesting beyond any parser's patience, very long strings and arrays.
fn body(shaped: BoxedStrategy<Vec<u8>>) -> impl Strategy<Value = Vec<u8>> {
    prop_oneof![
        4 => shaped,
        2 => json_value().prop_map(|v| v.to_string().into_bytes()),
        2 => prop::collection::vec(any::<u8>(), 0..256),
        1 => prop::collection::vec(any::<u8>(), 0..64).prop_map(|bad| {
            let mut b = b"{\"form_version\": 1, \"answers\": {\"applicant\": \"".to_vec();
            b.extend(bad);
            b.extend(b"\xff\xfe\"}, \"email\": \"\xc3\x28@example.jp\", \"file_name\": \"\xed\xa0\x80.pdf\"}");
            b
        }),
        1 => (1usize..20_000).prop_map(|depth| {
            let mut b = b"{\"form_version\": 1, \"answers\": {\"applicant\": ".to_vec();
            b.extend(std::iter::repeat_n(b'[', depth));
            b.extend(std::iter::repeat_n(b']', depth));
            b.extend(b"}}");
            b
        }),
        1 => (0usize..60_000, "[a-zあ0-9\\\\\"\\n]").prop_map(|(n, c)| {
            let long = c.repeat(n);
            json!({"form_version": 1, "answers": {"applicant": long, "my_number": long},
                   "email": long, "field": "passbook", "file_name": long, "size": 1})
                .to_string()
                .into_bytes()
        }),
        1 => (0usize..20_000).prop_map(|n| {
            let ids = vec![json!("01890a5d-ac96-774b-bcce-b302099a8057"); n];
            json!({"form_version": 1, "answers": {"passbook": ids, "applicant": ["x", "x", "x"]}})
                .to_string()
                .into_bytes()
        }),
    ]
}

fn upload_body() -> impl Strategy<Value = Vec<u8>> {
    (
        prop_oneof![key().prop_map(Value::from), json_value()],
        prop_oneof![
            Just(json!("通帳.pdf")),
            Just(json!("../../etc/passwd.pdf")),
            Just(json!("a\u{0}b.pdf")),
            Just(json!("CON.png")),
            ".{0,300}".prop_map(Value::from),
            json_value(),
        ],
        prop_oneof![
            any::<u64>().prop_map(Value::from),
            any::<i64>().prop_map(Value::from),
            (0u64..3 * 1024 * 1024).prop_map(Value::from),
            json_value(),
        ],
        proptest::option::of((key(), json_value())),
    )
        .prop_map(|(field, name, size, extra)| {
            let mut body = json!({"field": field, "file_name": name, "size": size});
            if let Some((k, v)) = extra {
                body[k] = v;
            }
            body.to_string().into_bytes()
        })
}

fn email_body() -> impl Strategy<Value = Vec<u8>> {
    (
        prop_oneof![
            Just(json!("taro@example.jp")),
            Just(json!("taro..@docomo.ne.jp")),
            Just(json!("a@b\r\nBcc: victim@example.jp")),
            "[a-zA-Z0-9.+@\\-]{0,40}".prop_map(Value::from),
            ".{0,300}".prop_map(Value::from),
            json_value(),
        ],
        proptest::option::of((key(), json_value())),
    )
        .prop_map(|(email, extra)| {
            let mut body = json!({"email": email});
            if let Some((k, v)) = extra {
                body[k] = v;
            }
            body.to_string().into_bytes()
        })
}

/// Bodies shaped like `{"answers"}` (a correction), some of them valid.
fn correction_body() -> impl Strategy<Value = Vec<u8>> {
    (
        prop::collection::btree_map(key(), json_value(), 0..6),
        proptest::option::of((key(), json_value())),
    )
        .prop_map(|(answers, extra)| {
            let mut body = json!({ "answers": answers });
            if let Some((k, v)) = extra {
                body[k] = v;
            }
            body.to_string().into_bytes()
        })
}

/// An application of the fuzzed citizen, returned by staff for `applicant`, `my_number` and
/// `passbook` (stored at version 2). Returns its id.
async fn returned_application(app: &App, auth: &Auth) -> String {
    let number = my_number(42);
    let done = app
        .submit(
            SLUG,
            auth,
            Some("k-1"),
            1,
            json!({"applicant": "山田花子", "my_number": number}),
        )
        .await;
    let id = done.ok(201)["application_id"].as_str().unwrap().to_owned();
    let key = application_key(&id);
    let item = app.backend.items().get(&key).await.unwrap().unwrap();
    let mut record: ApplicationRecord = serde_json::from_value(item.data).unwrap();
    record.status = ApplicationStatus::Returned;
    record.correction = Some(CorrectionRequest {
        fields: vec!["applicant".into(), "my_number".into(), "passbook".into()],
        message: "ご確認ください。".into(),
    });
    let mut item = application_item(&tenant(), &record);
    item.version = 2;
    app.backend
        .items()
        .put(item, Condition::VersionEquals(1))
        .await
        .unwrap();
    id
}

fn application_key(id: &str) -> Key {
    Key::new(
        app_pk(&tenant(), &ApplicationId::parse(id).unwrap()),
        APP_SK,
    )
}

/// Checks the answer of one request: no 5xx, and every 4xx is problem+json.
fn check(res: &Res) -> Result<(), TestCaseError> {
    prop_assert!(
        !res.status.is_server_error(),
        "status {}: {}",
        res.status,
        res.body
    );
    if res.status.is_client_error() {
        prop_assert_eq!(res.content_type(), Some(PROBLEM_JSON));
        prop_assert_eq!(
            res.body["status"].as_u64(),
            Some(res.status.as_u16() as u64)
        );
    }
    Ok(())
}

proptest! {
    #![proptest_config(ProptestConfig { cases: 64, ..ProptestConfig::default() })]

    #[test]
    fn draft_saves_never_fail_the_server(body in body(draft_body().boxed())) {
        let (rt, app, auth) = fixture();
        let path = format!("/forms/{SLUG}/draft");
        let res = rt.block_on(app.send(app.request(Method::PUT, &path, &auth, Some(body), &[])));
        check(&res)?;
        if res.status.is_client_error() {
            prop_assert!(!rt.block_on(draft_exists(&app)), "a refused draft was stored");
        } else {
            prop_assert_eq!(res.status, StatusCode::OK);
        }
    }

    #[test]
    fn confirms_never_fail_the_server(body in body(draft_body().boxed())) {
        let (rt, app, auth) = fixture();
        let path = format!("/forms/{SLUG}/confirm");
        let res = rt.block_on(app.send(app.request(Method::POST, &path, &auth, Some(body), &[])));
        check(&res)?;
        if res.status == StatusCode::OK {
            prop_assert!(res.body["valid"].is_boolean());
            prop_assert!(res.body["errors"].is_array());
        }
        // Confirming writes nothing.
        prop_assert!(!rt.block_on(draft_exists(&app)));
    }

    #[test]
    fn submissions_never_fail_the_server_nor_half_write(
        body in body(draft_body().boxed()),
        key in prop_oneof![Just("k-1".to_owned()), "[ -~]{0,140}"],
    ) {
        let (rt, app, auth) = fixture();
        let path = format!("/forms/{SLUG}/applications");
        let headers = [("idempotency-key", key.as_str())];
        let res = rt.block_on(app.send(app.request(Method::POST, &path, &auth, Some(body), &headers)));
        check(&res)?;
        let stored = rt.block_on(history_len(&app));
        let idem = rt.block_on(app.backend.items().get(&Key::new(
            idempotency_pk(&tenant(), &Owner::Account(SUB.to_owned()), key.trim()),
            SINGLE_SK,
        ))).unwrap();
        if res.status == StatusCode::CREATED {
            prop_assert_eq!(stored, 1);
            prop_assert!(idem.is_some());
        } else {
            prop_assert!(res.status.is_client_error(), "status {}", res.status);
            prop_assert_eq!(stored, 0, "a refused submission left an application");
            prop_assert!(idem.is_none(), "a refused submission used up its key");
        }
    }

    #[test]
    fn upload_grants_never_fail_the_server(body in body(upload_body().boxed())) {
        let (rt, app, auth) = fixture();
        let path = format!("/forms/{SLUG}/attachments");
        let res = rt.block_on(app.send(app.request(Method::POST, &path, &auth, Some(body), &[])));
        check(&res)?;
        if res.status.is_client_error() {
            // Refused before anything was filed (a fresh draft has no files to count).
            prop_assert!(!rt.block_on(draft_exists(&app)));
        } else {
            prop_assert_eq!(res.status, StatusCode::CREATED);
        }
    }

    #[test]
    fn code_requests_never_fail_the_server(body in body(email_body().boxed())) {
        let (rt, app, _) = fixture();
        let path = format!("/forms/{SLUG}/email-verifications");
        let res = rt.block_on(app.send(app.request(Method::POST, &path, &Auth::None, Some(body), &[])));
        check(&res)?;
        let mails = std::fs::read_dir(app.dir.path().join("outbox")).unwrap().count();
        if res.status.is_client_error() {
            prop_assert_eq!(mails, 0, "a refused request sent mail");
        } else {
            prop_assert_eq!(res.status, StatusCode::CREATED);
            prop_assert_eq!(mails, 1);
        }
    }

    #[test]
    fn code_confirmations_never_fail_the_server(
        id in prop_oneof![".{0,40}", "[0-9a-f-]{36}", Just("01890a5d-ac96-774b-bcce-b302099a8057".to_owned())],
        body in prop_oneof![
            ".{0,20}".prop_map(|c| json!({"code": c}).to_string().into_bytes()),
            json_value().prop_map(|v| v.to_string().into_bytes()),
            prop::collection::vec(any::<u8>(), 0..64),
        ],
    ) {
        let (rt, app, _) = fixture();
        let id: String = id.chars().map(|c| if c.is_alphanumeric() || c == '-' { c } else { 'x' }).collect();
        let path = format!("/forms/{SLUG}/email-verifications/{id}/confirm");
        let res = rt.block_on(app.send(app.request(Method::POST, &path, &Auth::None, Some(body), &[])));
        check(&res)?;
        prop_assert!(res.status.is_client_error(), "status {}", res.status);
    }

    #[test]
    fn corrections_never_fail_the_server_nor_half_write(
        body in body(correction_body().boxed()),
        if_match in prop_oneof![4 => Just("2".to_owned()), 1 => "[ -~]{0,12}"],
    ) {
        let (rt, app, auth) = fixture();
        let id = rt.block_on(returned_application(&app, &auth));
        let path = format!("/my/applications/{id}/correction");
        let headers = [("if-match", if_match.as_str())];
        let res = rt.block_on(app.send(app.request(Method::PUT, &path, &auth, Some(body), &headers)));
        check(&res)?;
        let item = rt.block_on(app.backend.items().get(&application_key(&id))).unwrap().unwrap();
        let record: ApplicationRecord = serde_json::from_value(item.data).unwrap();
        if res.status == StatusCode::OK {
            prop_assert_eq!(record.status, ApplicationStatus::InReview);
            prop_assert_eq!(item.version, 3);
        } else {
            prop_assert!(res.status.is_client_error(), "status {}", res.status);
            prop_assert_eq!(record.status, ApplicationStatus::Returned);
            prop_assert_eq!(item.version, 2, "a refused correction changed the application");
        }
    }

    #[test]
    fn arbitrary_paths_never_fail_the_server(
        tenant_segment in prop_oneof![Just(TENANT.to_owned()), "[0-9a-z%#.]{0,10}"],
        slug in prop_oneof![Just(SLUG.to_owned()), "[a-zA-Z0-9%._~-]{0,70}"],
        id in "[a-zA-Z0-9%._~-]{0,40}",
        route in 0usize..6,
        cursor in proptest::option::of("[a-zA-Z0-9%._~=-]{0,80}"),
    ) {
        let (rt, app, auth) = fixture();
        let path = match route {
            0 => format!("/v1/tenants/{tenant_segment}/forms/{slug}/draft"),
            1 => format!("/v1/tenants/{tenant_segment}/forms/{slug}/attachments/{id}"),
            2 => format!("/v1/tenants/{tenant_segment}/my/applications/{id}"),
            3 => match &cursor {
                Some(c) => format!("/v1/tenants/{tenant_segment}/my/applications?cursor={c}&limit=0"),
                None => format!("/v1/tenants/{tenant_segment}/my/applications?limit=999999999999999999999"),
            },
            5 => format!("/v1/tenants/{tenant_segment}/my/applications/{id}/withdraw"),
            _ => format!("/v1/tenants/{tenant_segment}/forms/{slug}/draft"),
        };
        let method = match route {
            4 => Method::DELETE,
            5 => Method::POST,
            _ => Method::GET,
        };
        let req = match axum::http::Request::builder()
            .method(method)
            .uri(&path)
            .header("authorization", match &auth { Auth::Bearer(t) => format!("Bearer {t}"), _ => unreachable!() })
            .body(axum::body::Body::empty())
        {
            Ok(req) => req,
            Err(_) => return Ok(()),
        };
        let res = rt.block_on(app.send(req));
        prop_assert!(!res.status.is_server_error(), "{path}: {} {}", res.status, res.body);
        // Every answer of ours is problem+json; only the router's own "no such route" is bare.
        let unrouted = res.status == StatusCode::NOT_FOUND && res.raw.is_empty();
        if res.status.is_client_error() && !unrouted {
            prop_assert_eq!(res.content_type(), Some(PROBLEM_JSON), "{} {}: {:?}", path, res.status, String::from_utf8_lossy(&res.raw));
        }
    }
}

#[tokio::test]
async fn bodies_over_512_kib_are_413_problem_json() {
    let app = App::new();
    app.publish(SLUG, 1, "published", definition()).await;
    let auth = app.citizen(SUB);
    let big = json!({"form_version": 1, "answers": {"applicant": "あ".repeat(200 * 1024)}})
        .to_string()
        .into_bytes();
    assert!(big.len() > 512 * 1024);
    let routes = [
        (Method::PUT, "draft", &auth),
        (Method::POST, "confirm", &auth),
        (Method::POST, "applications", &auth),
        (Method::POST, "attachments", &auth),
        (Method::POST, "email-verifications", &Auth::None),
    ];
    for (method, route, who) in routes {
        let path = format!("/forms/{SLUG}/{route}");
        let res = app
            .send(app.request(
                method,
                &path,
                who,
                Some(big.clone()),
                &[("idempotency-key", "k")],
            ))
            .await;
        res.problem(413);
    }
    assert!(!draft_exists(&app).await);
    assert_eq!(history_len(&app).await, 0);
    // Just under the limit is read (and refused for its content, not its size).
    let fits = json!({"form_version": 1, "answers": {"applicant": "a".repeat(500 * 1024)}})
        .to_string()
        .into_bytes();
    assert!(fits.len() < 512 * 1024);
    let res = app
        .send(app.request(
            Method::PUT,
            &format!("/forms/{SLUG}/draft"),
            &auth,
            Some(fits),
            &[],
        ))
        .await;
    res.field_error("applicant", "too_long");
}

#[tokio::test]
async fn undecodable_path_segments_and_queries_are_problem_json() {
    let app = App::new();
    app.publish(SLUG, 1, "published", definition()).await;
    let auth = app.citizen(SUB);
    for path in [
        format!("/forms/{SLUG}/attachments/%ff"),
        format!("/forms/{SLUG}/attachments/%C0%AF"),
        "/my/applications/%ff%fe".to_owned(),
        "/forms/%ff/draft".to_owned(),
    ] {
        app.get(&path, &auth).await.problem(404);
    }
    for query in [
        "limit=x",
        "limit=-1",
        "limit=99999999999999999999999",
        "limit=1&limit=2",
    ] {
        app.get(&format!("/my/applications?{query}"), &auth)
            .await
            .field_error("query", "invalid");
    }
    // A cursor that is not ours is refused by the store, as a field error.
    for cursor in ["bm90LWEtY3Vyc29y", "%ff", "", "x"] {
        app.get(&format!("/my/applications?cursor={cursor}"), &auth)
            .await
            .field_error("cursor", "invalid");
    }
    app.get("/my/applications?limit=0", &auth).await.ok(200);
}
