//! Card login with the 利用者証明用電子証明書: the card's authentication key signs a
//! challenge from the server (through the JPKI client API), and the server checks that
//! signature and the certificate.

use jiff::Timestamp;
use rsa::traits::PublicKeyParts;
use x509_cert::Certificate;

use crate::crypto::{self, SigError};
use crate::{
    CertFacts, CrlSet, Policy, Report, Revocation, RevocationFacts, SubIndication, TrustAnchors,
    Usage, check_certificate, decode_base64, issuer_of, parse_certificate, payload, sig_error,
};

/// Verify a card login at time `now`, revocation through `crls`: `signature` (raw bytes, or
/// base64) is the user's RSA signature over `challenge` with SHA-256 (RSASSA-PKCS1-v1_5, or
/// RSASSA-PSS if `policy.allow_pss`), made with the key of `certificate` (the user's
/// 利用者証明用電子証明書: DER, base64 or PEM), which must chain through `intermediates` to
/// one of `anchors` (the 利用者証明用認証局 certificates: configure them apart from the signing
/// CAs, so that a signing certificate cannot log in), be valid at `now`, allow
/// digitalSignature and not be revoked. Same checks and [`Report`] as [`crate::verify`];
/// `basic_four` is normally `None`. Never panics.
///
/// The challenge must be fresh, random (16 bytes or more) and used once: that is the
/// caller's job (this function is pure). An empty challenge is a FORMAT_FAILURE.
#[allow(clippy::too_many_arguments)]
pub fn verify_login(
    challenge: &[u8],
    certificate: &[u8],
    signature: &[u8],
    intermediates: &[Vec<u8>],
    anchors: &TrustAnchors,
    crls: &CrlSet,
    policy: &Policy,
    now: Timestamp,
) -> Report {
    verify_login_with_revocation(
        challenge,
        certificate,
        signature,
        intermediates,
        anchors,
        crls,
        None,
        policy,
        now,
    )
}

/// [`verify_login`], with an OCSP answer for the user's certificate (from
/// [`crate::ocsp::check_ocsp_response`]) used as in [`crate::verify_with_revocation`].
#[allow(clippy::too_many_arguments)]
pub fn verify_login_with_revocation(
    challenge: &[u8],
    certificate: &[u8],
    signature: &[u8],
    intermediates: &[Vec<u8>],
    anchors: &TrustAnchors,
    crls: &CrlSet,
    ocsp: Option<&RevocationFacts>,
    policy: &Policy,
    now: Timestamp,
) -> Report {
    use SubIndication as S;
    let report = Report::new(now);

    // 1. Format.
    if challenge.is_empty() {
        return report.fail(S::FormatFailure, "the challenge is empty");
    }
    let cert = match parse_certificate(certificate) {
        Ok(c) => c,
        Err(e) => return report.fail(S::FormatFailure, e),
    };
    let mut others = Vec::with_capacity(intermediates.len());
    for (i, der) in intermediates.iter().enumerate() {
        match parse_certificate(der) {
            Ok(c) => others.push(c),
            Err(e) => return report.fail(S::FormatFailure, format!("intermediate {i}: {e}")),
        }
    }
    let mut report = report;
    report.signer = Some(CertFacts::of(&cert));
    report.basic_four = payload::basic_four_of(&cert);

    // 2. Digest: fixed by the login protocol.
    report.digest_algorithm = Some("SHA-256".to_owned());

    // 4. Signature value over the challenge.
    let key = match crypto::rsa_key(&cert.tbs_certificate.subject_public_key_info, policy) {
        Ok(k) => k,
        Err(e) => return sig_error(report, e),
    };
    let Some(sig) = decode_signature(signature, key.size()) else {
        return report.fail(
            S::FormatFailure,
            format!("the signature is not {} bytes, raw or base64", key.size()),
        );
    };
    match crypto::verify_bare_sha256(&key, challenge, &sig, policy) {
        Ok(scheme) => report.signature_algorithm = Some(scheme.name()),
        Err(SigError::Crypto) => {
            return report.fail(
                S::SigCryptoFailure,
                "the signature over the challenge does not verify",
            );
        }
        Err(e) => return sig_error(report, e),
    }

    // 5 to 8.
    let certs: Vec<&Certificate> = others.iter().collect();
    check_certificate(
        report,
        &cert,
        &certs,
        anchors,
        Revocation { crls, ocsp },
        policy,
        now,
        Usage::Login,
    )
}

/// The DER of the certificate that issued `certificate` (DER, base64 or PEM), found along a
/// verified chain through `intermediates` to `anchors`: with the certificate, what
/// [`crate::ocsp::ocsp_request`] needs before a login is verified. `None` when nothing fits.
pub fn certificate_issuer(
    certificate: &[u8],
    intermediates: &[Vec<u8>],
    anchors: &TrustAnchors,
) -> Option<Vec<u8>> {
    let cert = parse_certificate(certificate).ok()?;
    let others: Vec<Certificate> = intermediates
        .iter()
        .filter_map(|d| parse_certificate(d).ok())
        .collect();
    let refs: Vec<&Certificate> = others.iter().collect();
    issuer_of(&cert, &refs, anchors)
}

/// The signature as exactly `len` bytes (the modulus size): raw, or base64 text.
fn decode_signature(input: &[u8], len: usize) -> Option<Vec<u8>> {
    if input.len() == len {
        return Some(input.to_vec());
    }
    decode_base64(input).filter(|d| d.len() == len)
}
