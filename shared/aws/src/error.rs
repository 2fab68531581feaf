//! Mapping SDK errors onto [`PortError`].
//!
//! Only the service's error code (and the HTTP status class) is looked at and kept: error
//! messages can echo request contents, so they are neither returned nor logged.
//!
//! | SDK error | port error |
//! |---|---|
//! | timeout, dispatch failure (connection), unparseable response | `Unavailable` |
//! | throttling codes, 5xx, `*InternalError`, `TransactionConflict` | `Unavailable` |
//! | `ConditionalCheckFailedException` | `ConditionFailed { index: None }` |
//! | "does not exist" codes (`NoSuchKey`, `NotFound`, `ResourceNotFoundException`, ...) | `NotFound` |
//! | anything else | `Backend(code)` |

use aws_sdk_dynamodb::config::http::HttpResponse;
use aws_sdk_dynamodb::error::{ProvideErrorMetadata, SdkError};
use madoguchi_ports::PortError;

const THROTTLING: &[&str] = &[
    "Throttling",
    "ThrottlingException",
    "ThrottledException",
    "RequestThrottledException",
    "TooManyRequestsException",
    "ProvisionedThroughputExceededException",
    "RequestLimitExceeded",
    "RequestThrottled",
    "SlowDown",
    "PriorRequestNotComplete",
    "TransactionConflictException",
    "TransactionInProgressException",
    "LimitExceededException",
    "ServiceUnavailable",
    "ServiceUnavailableException",
    "InternalError",
    "InternalFailure",
    "InternalServerError",
    "KMSInternalException",
    "DependencyTimeoutException",
    "KMSInvalidStateException",
];

const NOT_FOUND: &[&str] = &[
    "NoSuchKey",
    "NotFound",
    "NoSuchBucket",
    "ResourceNotFoundException",
    "NotFoundException",
    "QueueDoesNotExist",
    "AWS.SimpleQueueService.NonExistentQueue",
];

/// Classifies an error code (already known to come from the service).
pub fn from_code(code: Option<&str>, status: Option<u16>) -> PortError {
    match code {
        Some("ConditionalCheckFailedException") => PortError::ConditionFailed { index: None },
        Some(c) if THROTTLING.contains(&c) => PortError::Unavailable(c.to_owned()),
        Some(c) if NOT_FOUND.contains(&c) => PortError::NotFound,
        _ if status.is_some_and(|s| s >= 500) => {
            PortError::Unavailable(code.unwrap_or("server error").to_owned())
        }
        _ if status == Some(404) => PortError::NotFound,
        Some(c) => PortError::Backend(c.to_owned()),
        None => PortError::Backend(format!(
            "unknown error (http status {})",
            status
                .map(|s| s.to_string())
                .unwrap_or_else(|| "none".into())
        )),
    }
}

/// Maps any SDK error (all `aws-sdk-*` crates share the `SdkError` and raw response types)
/// and logs its code with the service and operation.
pub fn map_sdk<E>(
    service: &'static str,
    operation: &'static str,
    err: &SdkError<E, HttpResponse>,
) -> PortError
where
    E: ProvideErrorMetadata,
{
    let mapped = match err {
        SdkError::TimeoutError(_) => PortError::Unavailable("timeout".into()),
        SdkError::DispatchFailure(_) => PortError::Unavailable("dispatch failure".into()),
        SdkError::ResponseError(_) => PortError::Unavailable("unreadable response".into()),
        SdkError::ServiceError(e) => from_code(e.err().code(), Some(e.raw().status().as_u16())),
        SdkError::ConstructionFailure(_) => {
            PortError::Backend("request construction failed".into())
        }
        _ => PortError::Backend("unknown sdk error".into()),
    };
    match &mapped {
        PortError::ConditionFailed { .. } | PortError::NotFound => {
            tracing::debug!(service, operation, error = %mapped, "aws call refused")
        }
        _ => tracing::warn!(service, operation, error = %mapped, "aws call failed"),
    }
    mapped
}

/// Shorthand for a client-side failure to build a request or read a response field.
pub(crate) fn malformed(what: &str) -> PortError {
    PortError::Backend(format!("malformed {what}"))
}
