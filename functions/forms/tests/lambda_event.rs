//! Drives the Lambda handler path with the sample API Gateway event in `events/forms/`:
//! event JSON -> lambda_http's adapter (what `lambda_http::run` uses) -> our router -> the
//! API Gateway response JSON. The store is a real SQLite file.

use std::sync::Arc;

use lambda_http::request::LambdaRequest;
use lambda_http::{Adapter, Context, LambdaEvent, Service};
use madoguchi_applications::PublishedForm;
use madoguchi_forms::{FormsState, router};
use madoguchi_http::{Authenticator, common_layers, ops_routes};
use madoguchi_ports::{Clock, Condition, Item, Key, SystemClock};

fn event(name: &str) -> LambdaRequest {
    let path = format!("{}/../../events/forms/{name}", env!("CARGO_MANIFEST_DIR"));
    serde_json::from_str(&std::fs::read_to_string(path).unwrap()).unwrap()
}

async fn invoke(state: FormsState, name: &str) -> serde_json::Value {
    let app = common_layers(router(state).merge(ops_routes()));
    let mut adapter = Adapter::from(app);
    let response = adapter
        .call(LambdaEvent::new(event(name), Context::default()))
        .await
        .unwrap();
    serde_json::to_value(response).unwrap()
}

fn state(dir: &std::path::Path) -> FormsState {
    let clock: Arc<dyn Clock> = Arc::new(SystemClock);
    let backend =
        madoguchi_embedded::EmbeddedBackend::open(dir, "http://127.0.0.1:9", clock.clone())
            .unwrap();
    FormsState {
        items: backend.items(),
        auth: Authenticator::shared(vec![]),
        audit: madoguchi_audit::AuditLog::new(backend.items(), clock.clone()),
        clock,
    }
}

#[tokio::test]
async fn the_sample_event_reads_a_published_form() {
    let dir = tempfile::tempdir().unwrap();
    let state = state(dir.path());
    let form = serde_json::json!({
        "tenant": "272060", "slug": "juminhyo", "version": 3, "published_at": "2026-11-23T00:00:00Z",
        "state": "published",
        "definition": {"title": "住民票の写しの交付申請", "items": [{"id": "name", "type": "name", "label": "氏名", "required": true}]}
    });
    let mut item = Item::new(Key::new("272060#FORM#juminhyo", "CURRENT"), form);
    item.version = 3;
    state.items.put(item, Condition::NotExists).await.unwrap();

    let res = invoke(state, "get-form.json").await;
    assert_eq!(res["statusCode"], 200, "{res}");
    assert_eq!(res["headers"]["etag"], "\"3\"");
    assert!(
        res["headers"]["x-request-id"].is_string(),
        "request id header: {res}"
    );
    let body: PublishedForm = serde_json::from_str(res["body"].as_str().unwrap()).unwrap();
    assert_eq!(body.definition.title, "住民票の写しの交付申請");
    assert_eq!(body.version, 3);
}

#[tokio::test]
async fn a_missing_form_is_problem_json_404() {
    let dir = tempfile::tempdir().unwrap();
    let res = invoke(state(dir.path()), "get-form.json").await;
    assert_eq!(res["statusCode"], 404);
    assert_eq!(res["headers"]["content-type"], "application/problem+json");
    let body: serde_json::Value = serde_json::from_str(res["body"].as_str().unwrap()).unwrap();
    assert_eq!(body["status"], 404);
    assert!(
        !body["title"].as_str().unwrap().is_ascii(),
        "Japanese title"
    );
}

#[tokio::test]
async fn the_health_event_answers() {
    let dir = tempfile::tempdir().unwrap();
    let res = invoke(state(dir.path()), "healthz.json").await;
    assert_eq!(res["statusCode"], 200);
    assert_eq!(res["body"], "{\"status\":\"ok\"}");
}
