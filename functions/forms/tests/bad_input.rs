//! Nothing a client sends may crash the function or reach storage half-checked: arbitrary
//! bodies, headers and path segments get a 4xx problem+json answer, never a 5xx.

use std::sync::Arc;

use axum::body::Body;
use axum::http::{Request, StatusCode};
use madoguchi_forms::{FormsState, router};
use madoguchi_http::auth::Role;
use madoguchi_http::dev_issuer::{DevIssuer, DevTokenRequest};
use madoguchi_http::{Authenticator, common_layers};
use madoguchi_ports::{Clock, SystemClock};
use proptest::prelude::*;
use tower::ServiceExt;

struct Fixture {
    app: axum::Router,
    token: String,
    _dir: tempfile::TempDir,
}

fn fixture() -> Fixture {
    let dir = tempfile::tempdir().unwrap();
    let clock: Arc<dyn Clock> = Arc::new(SystemClock);
    let backend =
        madoguchi_embedded::EmbeddedBackend::open(dir.path(), "http://127.0.0.1:9", clock.clone())
            .unwrap();
    let issuer = DevIssuer::ephemeral();
    let token = issuer.mint(&DevTokenRequest {
        sub: "staff-1".into(),
        tenant: madoguchi_domain::tenant::TenantId::parse("272060").unwrap(),
        role: Role::Admin,
        depts: vec![],
        ttl_seconds: 3600,
        now: jiff::Timestamp::now().as_second(),
        email: None,
    });
    let app = common_layers(router(FormsState {
        items: backend.items(),
        auth: Authenticator::shared(vec![issuer.trusted()]),
        audit: madoguchi_audit::AuditLog::new(backend.items(), clock.clone()),
        clock,
    }));
    Fixture {
        app,
        token,
        _dir: dir,
    }
}

fn json_value() -> impl Strategy<Value = serde_json::Value> {
    let leaf = prop_oneof![
        Just(serde_json::Value::Null),
        any::<bool>().prop_map(serde_json::Value::from),
        any::<i64>().prop_map(serde_json::Value::from),
        ".{0,40}".prop_map(serde_json::Value::from),
    ];
    leaf.prop_recursive(3, 24, 6, |inner| {
        prop_oneof![
            prop::collection::vec(inner.clone(), 0..6).prop_map(serde_json::Value::from),
            prop::collection::btree_map(
                prop_oneof![
                    Just("slug".to_owned()),
                    Just("definition".to_owned()),
                    Just("title".to_owned()),
                    Just("items".to_owned()),
                    Just("show_if".to_owned()),
                    Just("field".to_owned()),
                    Just("equals".to_owned()),
                    Just("id".to_owned()),
                    Just("type".to_owned()),
                    Just("label".to_owned()),
                    Just("required".to_owned()),
                    "[a-z]{1,8}"
                ],
                inner,
                0..6
            )
            .prop_map(|m| serde_json::Value::Object(m.into_iter().collect())),
        ]
    })
}

async fn send(app: &axum::Router, req: Request<Body>) -> (StatusCode, Option<String>) {
    let res = app.clone().oneshot(req).await.unwrap();
    let ct = res
        .headers()
        .get("content-type")
        .map(|v| v.to_str().unwrap().to_owned());
    (res.status(), ct)
}

proptest! {
    #![proptest_config(ProptestConfig { cases: 96, ..ProptestConfig::default() })]

    #[test]
    fn arbitrary_bodies_get_a_client_error(body in prop_oneof![
        json_value().prop_map(|v| v.to_string().into_bytes()),
        prop::collection::vec(any::<u8>(), 0..256),
    ], if_match in proptest::option::of(".{0,12}")) {
        let rt = tokio::runtime::Builder::new_current_thread().enable_all().build().unwrap();
        let f = fixture();
        let (status, ct) = rt.block_on(async {
            let mut req = Request::post("/v1/tenants/272060/manage/forms")
                .header("authorization", format!("Bearer {}", f.token))
                .header("content-type", "application/json");
            if let Some(h) = if_match
                .as_deref()
                .and_then(|v| axum::http::HeaderValue::from_str(v).ok())
            {
                req = req.header("if-match", h);
            }
            send(&f.app, req.body(Body::from(body)).unwrap()).await
        });
        // A valid definition may be created (201); anything else is the client's problem.
        prop_assert!(status == StatusCode::CREATED || status.is_client_error(), "status {status}");
        if status.is_client_error() {
            prop_assert_eq!(ct.as_deref(), Some("application/problem+json"));
        }
    }

    #[test]
    fn arbitrary_paths_never_fail_the_server(tenant in "[0-9a-z%#.]{0,10}", slug in "[a-zA-Z0-9%._~-]{0,70}") {
        let rt = tokio::runtime::Builder::new_current_thread().enable_all().build().unwrap();
        let f = fixture();
        let (status, _) = rt.block_on(async {
            let uri = format!("/v1/tenants/{tenant}/forms/{slug}");
            match Request::get(uri).body(Body::empty()) {
                Ok(req) => send(&f.app, req).await,
                Err(_) => (StatusCode::BAD_REQUEST, None),
            }
        });
        prop_assert!(status.is_client_error(), "status {status}");
    }
}
