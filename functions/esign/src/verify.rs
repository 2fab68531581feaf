//! The I/O around the pure verifier: current CRLs from the cache, an OCSP answer when a
//! responder is configured, then `madoguchi_jpki`.

use base64::Engine;
use madoguchi_jpki::Report;

use crate::trust::TrustSet;

/// Verifies a CMS signature over the payload whose SHA-256 is `digest`.
pub async fn verify_signature(
    trust: &TrustSet,
    digest: &[u8],
    signature: &[u8],
    now: jiff::Timestamp,
) -> Report {
    let crls = trust.crls(now).await;
    let ocsp = match madoguchi_jpki::signer_and_issuer(signature, &trust.anchors) {
        Some((cert, issuer)) => trust.ocsp(&cert, &issuer, now).await,
        None => None,
    };
    madoguchi_jpki::verify_digest_with_revocation(
        digest,
        signature,
        &trust.anchors,
        &crls,
        ocsp.as_ref(),
        &trust.policy,
        now,
    )
}

/// Verifies a card-login signature (raw RSA over `challenge`) by the user certificate.
pub async fn verify_login(
    trust: &TrustSet,
    challenge: &[u8],
    certificate: &[u8],
    signature: &[u8],
    now: jiff::Timestamp,
) -> Report {
    let crls = trust.crls(now).await;
    let ocsp = match (
        decode(certificate),
        madoguchi_jpki::certificate_issuer(certificate, &[], &trust.anchors),
    ) {
        (Some(cert), Some(issuer)) => trust.ocsp(&cert, &issuer, now).await,
        _ => None,
    };
    madoguchi_jpki::verify_login_with_revocation(
        challenge,
        certificate,
        signature,
        &[],
        &trust.anchors,
        &crls,
        ocsp.as_ref(),
        &trust.policy,
        now,
    )
}

/// DER of a certificate or CMS given as DER, base64 or PEM.
pub fn decode(input: &[u8]) -> Option<Vec<u8>> {
    madoguchi_jpki::decode_input(input)
}

/// The DER of a signature as posted (base64 or PEM), for keeping with the session.
pub fn signature_der(input: &[u8]) -> Option<Vec<u8>> {
    decode(input).or_else(|| base64::engine::general_purpose::STANDARD.decode(input).ok())
}
