//! The origin guard in front of every route: right header in, anything else 403 problem+json.

use axum::Router;
use axum::body::Body;
use axum::http::{Request, StatusCode};
use madoguchi_http::origin::OriginGuard;
use madoguchi_http::{common_layers_with, ops_routes};
use tower::ServiceExt;

async fn status(app: &Router, header: Option<&str>) -> (StatusCode, Option<String>) {
    let mut req = Request::get("/healthz");
    if let Some(h) = header {
        req = req.header("x-origin-verify", h);
    }
    let res = app
        .clone()
        .oneshot(req.body(Body::empty()).unwrap())
        .await
        .unwrap();
    let ct = res
        .headers()
        .get("content-type")
        .map(|v| v.to_str().unwrap().to_owned());
    (res.status(), ct)
}

#[tokio::test]
async fn only_requests_through_cloudfront_pass() {
    let app = common_layers_with(ops_routes(), OriginGuard::new("s3cret-new, s3cret-old"));
    assert_eq!(status(&app, Some("s3cret-new")).await.0, StatusCode::OK);
    // During a rotation the old value still works.
    assert_eq!(status(&app, Some("s3cret-old")).await.0, StatusCode::OK);
    for bad in [
        None,
        Some(""),
        Some("s3cret"),
        Some("s3cret-new,s3cret-old"),
        Some("S3CRET-NEW"),
    ] {
        let (code, ct) = status(&app, bad).await;
        assert_eq!(code, StatusCode::FORBIDDEN, "{bad:?}");
        assert_eq!(ct.as_deref(), Some("application/problem+json"));
    }
}

#[tokio::test]
async fn without_a_configured_value_there_is_no_guard() {
    assert!(OriginGuard::new("").is_none());
    assert!(OriginGuard::new(" , ").is_none());
    let app = common_layers_with(ops_routes(), None);
    assert_eq!(status(&app, None).await.0, StatusCode::OK);
}

#[tokio::test]
async fn a_path_no_route_serves_is_a_problem_json_404() {
    let app = common_layers_with(ops_routes(), None);
    let res = app
        .oneshot(
            Request::get("/v1/no/such/route")
                .body(Body::empty())
                .unwrap(),
        )
        .await
        .unwrap();
    assert_eq!(res.status(), StatusCode::NOT_FOUND);
    assert_eq!(res.headers()["content-type"], "application/problem+json");
}
