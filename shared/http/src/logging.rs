//! JSON logs on stdout (CloudWatch in AWS). Log levels come from `RUST_LOG`, default `info`.
//! Handlers log ids, routes and counts, never request bodies or personal data.

use tracing_subscriber::EnvFilter;

/// Installs the JSON subscriber once; later calls are ignored (tests call it freely).
pub fn init() {
    let filter = EnvFilter::try_from_default_env().unwrap_or_else(|_| EnvFilter::new("info"));
    let _ = tracing_subscriber::fmt()
        .json()
        .with_env_filter(filter)
        .with_current_span(true)
        .with_span_list(false)
        .with_target(false)
        .without_time()
        .try_init();
}

/// Like [`init`] but with timestamps, for the long-running local host.
pub fn init_with_time() {
    let filter = EnvFilter::try_from_default_env().unwrap_or_else(|_| EnvFilter::new("info"));
    let _ = tracing_subscriber::fmt()
        .json()
        .with_env_filter(filter)
        .with_current_span(true)
        .with_span_list(false)
        .with_target(false)
        .try_init();
}
