//! `docs/openapi.json` is generated from the handlers; this fails when it is stale.

#[test]
fn committed_openapi_matches_the_handlers() {
    let path = concat!(env!("CARGO_MANIFEST_DIR"), "/../../docs/openapi.json");
    let committed = std::fs::read_to_string(path).unwrap_or_default();
    let generated = madoguchi_host::openapi().to_pretty_json().unwrap();
    assert!(
        committed.trim_end() == generated.trim_end(),
        "docs/openapi.json is stale: run `make openapi` and commit the result"
    );
}

#[test]
fn every_error_response_is_problem_json() {
    let doc: serde_json::Value =
        serde_json::from_str(&madoguchi_host::openapi().to_json().unwrap()).unwrap();
    for (path, ops) in doc["paths"].as_object().unwrap() {
        for (method, op) in ops.as_object().unwrap() {
            for (status, res) in op["responses"].as_object().unwrap() {
                if status.starts_with('4') || status.starts_with('5') {
                    assert!(
                        res["content"]["application/problem+json"].is_object(),
                        "{method} {path} {status} is not documented as problem+json"
                    );
                }
            }
        }
    }
}
