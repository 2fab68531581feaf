//! JSON logs on stdout (CloudWatch in AWS). Log levels come from `RUST_LOG`, default `info`.
//! Handlers log ids, routes and counts, never request bodies or personal data.

use tracing_subscriber::EnvFilter;

fn install(with_time: bool) {
    let filter = EnvFilter::try_from_default_env().unwrap_or_else(|_| EnvFilter::new("info"));
    let builder = tracing_subscriber::fmt()
        .json()
        .with_env_filter(filter)
        .with_current_span(true)
        .with_span_list(false)
        .with_target(false);
    // Later calls are ignored, so tests may call this freely.
    let _ = if with_time {
        builder.try_init()
    } else {
        builder.without_time().try_init()
    };
}

/// For Lambda: CloudWatch stamps every line itself.
pub fn init() {
    install(false);
}

/// For the long-running local host: lines carry their own timestamps.
pub fn init_with_time() {
    install(true);
}
