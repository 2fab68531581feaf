//! Drives the Lambda handler path with the sample API Gateway (HTTP API v2) events in
//! `events/submissions/`: event JSON -> lambda_http's adapter (what `lambda_http::run` uses)
//! -> our router -> the API Gateway response JSON, over a real SQLite store. The samples hold
//! `{{TOKEN}}` where a citizen's bearer token goes; the test mints one.

mod common;

use common::*;
use lambda_http::request::LambdaRequest;
use lambda_http::{Adapter, Context, LambdaEvent, Service};
use madoguchi_http::{common_layers_with, ops_routes};
use madoguchi_submissions::router;
use serde_json::Value;

const SLUG: &str = "kosodate-kyufu";

fn event(name: &str, token: &str) -> LambdaRequest {
    let path = format!(
        "{}/../../events/submissions/{name}",
        env!("CARGO_MANIFEST_DIR")
    );
    let text = std::fs::read_to_string(path).unwrap();
    assert!(text.contains("{{TOKEN}}"), "{name} has a token placeholder");
    serde_json::from_str(&text.replace("{{TOKEN}}", token)).unwrap()
}

async fn invoke(app: &App, name: &str, token: &str) -> (Value, Value) {
    let lambda = common_layers_with(router(app.state.clone()).merge(ops_routes()), None);
    let mut adapter = Adapter::from(lambda);
    let response = adapter
        .call(LambdaEvent::new(event(name, token), Context::default()))
        .await
        .unwrap();
    let response = serde_json::to_value(response).unwrap();
    let body = response["body"]
        .as_str()
        .and_then(|b| serde_json::from_str(b).ok())
        .unwrap_or(Value::Null);
    (response, body)
}

fn token(app: &App, sub: &str) -> String {
    match app.citizen(sub) {
        Auth::Bearer(t) => t,
        _ => unreachable!(),
    }
}

#[tokio::test]
async fn the_sample_submission_is_received_once_and_listed() {
    let app = App::new();
    app.publish(SLUG, 1, "published", definition()).await;
    let t = token(&app, "lambda-citizen");

    let (res, first) = invoke(&app, "submit.json", &t).await;
    assert_eq!(res["statusCode"], 201, "{res}");
    assert!(res["headers"]["x-request-id"].is_string(), "{res}");
    assert_eq!(first["form_title"], "子育て応援給付金の申請");
    let receipt = first["receipt_number"].as_str().unwrap();
    assert!(madoguchi_domain::receipt::ReceiptNumber::parse(receipt).is_ok());

    // API Gateway retried the same event (same Idempotency-Key): the same receipt, 200.
    let (res, again) = invoke(&app, "submit.json", &t).await;
    assert_eq!(res["statusCode"], 200, "{res}");
    assert_eq!(again, first);

    let (res, list) = invoke(&app, "my-applications.json", &t).await;
    assert_eq!(res["statusCode"], 200, "{res}");
    let apps = list["applications"].as_array().unwrap();
    assert_eq!(apps.len(), 1, "{list}");
    assert_eq!(apps[0]["receipt_number"], first["receipt_number"]);
    assert_eq!(apps[0]["status"], "received");

    // Someone else's token sees an empty history.
    let (res, list) = invoke(&app, "my-applications.json", &token(&app, "other")).await;
    assert_eq!(res["statusCode"], 200);
    assert!(list["applications"].as_array().unwrap().is_empty());
}

#[tokio::test]
async fn without_a_valid_token_the_events_are_problem_json_401() {
    let app = App::new();
    app.publish(SLUG, 1, "published", definition()).await;
    for name in ["submit.json", "my-applications.json"] {
        let (res, body) = invoke(&app, name, "not-a-token").await;
        assert_eq!(res["statusCode"], 401, "{res}");
        assert_eq!(res["headers"]["content-type"], PROBLEM_JSON);
        assert_eq!(body["status"], 401);
        assert!(
            !body["title"].as_str().unwrap().is_ascii(),
            "Japanese title"
        );
    }
}

#[tokio::test]
async fn the_sample_submission_against_a_closed_form_is_409() {
    let app = App::new();
    app.publish(SLUG, 1, "closed", definition()).await;
    let (res, body) = invoke(&app, "submit.json", &token(&app, "late")).await;
    assert_eq!(res["statusCode"], 409, "{res}");
    assert_eq!(res["headers"]["content-type"], PROBLEM_JSON);
    assert!(body["type"].as_str().unwrap().ends_with("form-closed"));
}
