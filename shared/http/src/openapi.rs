//! The OpenAPI document, generated from the handlers with utoipa. Each function contributes
//! its own document; [`merged`] joins them into the one the host serves at `/openapi.json`
//! and that is committed as `docs/openapi.json`.

use utoipa::OpenApi;
use utoipa::openapi::security::{ApiKey, ApiKeyValue, HttpAuthScheme, HttpBuilder, SecurityScheme};

#[derive(OpenApi)]
#[openapi(
    info(
        title = "Madoguchi API",
        description = "Online applications and the write-less counter for Japanese municipalities.",
        license(name = "Apache-2.0")
    ),
    paths(crate::healthz),
    components(schemas(
        crate::Health,
        crate::problem::ProblemDoc,
        crate::problem::FieldErrorDoc
    ))
)]
struct CommonApi;

/// Joins the common document with every function's document, adds the security schemes:
/// `bearer` (a JWT of the citizen or staff pool) and `email_proof` (the proof of address a
/// citizen without an account gets from a one-time mail code).
pub fn merged(
    parts: impl IntoIterator<Item = utoipa::openapi::OpenApi>,
) -> utoipa::openapi::OpenApi {
    let mut doc = CommonApi::openapi();
    for part in parts {
        doc.merge(part);
    }
    let components = doc.components.get_or_insert_with(Default::default);
    components.add_security_scheme(
        "bearer",
        SecurityScheme::Http(
            HttpBuilder::new()
                .scheme(HttpAuthScheme::Bearer)
                .bearer_format("JWT")
                .build(),
        ),
    );
    components.add_security_scheme(
        "email_proof",
        SecurityScheme::ApiKey(ApiKey::Header(ApiKeyValue::with_description(
            "x-email-proof",
            "proof of address from POST …/email-verifications/{id}/confirm",
        ))),
    );
    doc.info.version = env!("CARGO_PKG_VERSION").to_owned();
    doc
}
