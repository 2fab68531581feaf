//! Baseline for the cold-start bench: the smallest possible `lambda_runtime`
//! function (a `service_fn` that echoes the event JSON back).
//!
//! Every Madoguchi function is measured against this binary, built with the
//! same release profile, so the ratio shows what our own code adds to init.

use lambda_runtime::{Error, LambdaEvent, service_fn};
use serde_json::Value;

async fn echo(event: LambdaEvent<Value>) -> Result<Value, Error> {
    Ok(event.payload)
}

#[tokio::main]
async fn main() -> Result<(), Error> {
    lambda_runtime::run(service_fn(echo)).await
}
