//! OCSP (RFC 6960), the pure parts: build a request, check a response. The caller sends the
//! request to the responder it has access to (for JPKI, the J-LIS verification service) and
//! hands the answer back; [`check_ocsp_response`] turns it into [`RevocationFacts`] that
//! [`crate::verify_with_revocation`] and [`crate::verify_login_with_revocation`] accept.

use const_oid::ObjectIdentifier;
use der::asn1::{Any, OctetString};
use der::{Decode, Encode, Header, Reader, SliceReader};
use jiff::{SignedDuration, Timestamp};
use sha1::Sha1;
use sha2::{Digest, Sha256};
use spki::AlgorithmIdentifierOwned;
use x509_cert::Certificate;
use x509_cert::ext::Extension;
use x509_cert::ext::pkix::ExtendedKeyUsage;
use x509_cert::time::Time;
use x509_ocsp::{
    BasicOcspResponse, CertId, CertStatus, OcspGeneralizedTime, OcspRequest, OcspResponse,
    OcspResponseStatus, Request, TbsRequest, Version,
};

use crate::crypto::{self, SigError};
use crate::{
    CertFacts, JpkiError, Policy, RevocationFacts, RevocationSource, RevocationStatus, extension,
    parse_certificate, trust, verify_cert,
};

const ID_PKIX_OCSP_BASIC: ObjectIdentifier = ObjectIdentifier::new_unwrap("1.3.6.1.5.5.7.48.1.1");
const ID_PKIX_OCSP_NONCE: ObjectIdentifier = ObjectIdentifier::new_unwrap("1.3.6.1.5.5.7.48.1.2");
const ID_KP_OCSP_SIGNING: ObjectIdentifier = ObjectIdentifier::new_unwrap("1.3.6.1.5.5.7.3.9");
const ID_CE_EXT_KEY_USAGE: ObjectIdentifier = ObjectIdentifier::new_unwrap("2.5.29.37");
const ID_SHA1: ObjectIdentifier = ObjectIdentifier::new_unwrap("1.3.14.3.2.26");
const ID_SHA256: ObjectIdentifier = ObjectIdentifier::new_unwrap("2.16.840.1.101.3.4.2.1");

/// Clock difference tolerated between us and the responder (thisUpdate in the future).
pub const CLOCK_SKEW: SignedDuration = SignedDuration::from_mins(5);

/// Longest nonce sent (RFC 8954: 1 to 32 octets).
const MAX_NONCE: usize = 32;

fn err(message: impl Into<String>) -> JpkiError {
    JpkiError::Ocsp(message.into())
}

/// A DER OCSPRequest (unsigned) for `cert`, issued by `issuer` (both DER, base64 or PEM),
/// with one CertID and, when given, a nonce extension (1 to 32 bytes; RFC 8954). The CertID
/// hashes the issuer's name and key with SHA-1, like `openssl ocsp` by default: here SHA-1
/// only names the issuer for the responder's lookup (every responder accepts it); nothing
/// is signed or verified with it.
pub fn ocsp_request(
    cert: &[u8],
    issuer: &[u8],
    nonce: Option<&[u8]>,
) -> Result<Vec<u8>, JpkiError> {
    let cert = parse_certificate(cert).map_err(JpkiError::Certificate)?;
    let issuer = parse_certificate(issuer).map_err(JpkiError::Certificate)?;
    if cert.tbs_certificate.issuer != issuer.tbs_certificate.subject {
        return Err(err("the certificate's issuer is not the issuer's subject"));
    }
    let req_cert = cert_id(&cert, &issuer, ID_SHA1)?;
    let request_extensions = match nonce {
        None => None,
        Some(n) if n.is_empty() || n.len() > MAX_NONCE => {
            return Err(err(format!("a nonce has 1 to {MAX_NONCE} bytes")));
        }
        // extnValue holds the DER of an OCTET STRING with the nonce (RFC 6960 4.4.1), as
        // `openssl ocsp -nonce` writes it.
        Some(n) => Some(vec![Extension {
            extn_id: ID_PKIX_OCSP_NONCE,
            critical: false,
            extn_value: OctetString::new(der_err(OctetString::new(n).and_then(|o| o.to_der()))?)
                .map_err(|e| err(e.to_string()))?,
        }]),
    };
    let request = OcspRequest {
        tbs_request: TbsRequest {
            version: Version::V1,
            requestor_name: None,
            request_list: vec![Request {
                req_cert,
                single_request_extensions: None,
            }],
            request_extensions,
        },
        optional_signature: None,
    };
    der_err(request.to_der())
}

fn der_err<T>(r: der::Result<T>) -> Result<T, JpkiError> {
    r.map_err(|e| err(e.to_string()))
}

/// The CertID of `cert` under `issuer` with hash `alg` (SHA-1 or SHA-256).
fn cert_id(
    cert: &Certificate,
    issuer: &Certificate,
    alg: ObjectIdentifier,
) -> Result<CertId, JpkiError> {
    let name = der_err(cert.tbs_certificate.issuer.to_der())?;
    let key = issuer
        .tbs_certificate
        .subject_public_key_info
        .subject_public_key
        .raw_bytes();
    let hash = |data: &[u8]| -> Result<Vec<u8>, JpkiError> {
        match alg {
            ID_SHA1 => Ok(Sha1::digest(data).to_vec()),
            ID_SHA256 => Ok(Sha256::digest(data).to_vec()),
            other => Err(err(format!(
                "CertID hash algorithm {other} is not supported"
            ))),
        }
    };
    Ok(CertId {
        // NULL parameters, as OpenSSL writes them.
        hash_algorithm: AlgorithmIdentifierOwned {
            oid: alg,
            parameters: Some(Any::null()),
        },
        issuer_name_hash: der_err(OctetString::new(hash(&name)?))?,
        issuer_key_hash: der_err(OctetString::new(hash(key)?))?,
        serial_number: cert.tbs_certificate.serial_number.clone(),
    })
}

/// Whether a CertID names `cert` under `issuer` (parameters of the hash algorithm ignored:
/// some responders write NULL, some nothing).
fn names(id: &CertId, cert: &Certificate, issuer: &Certificate) -> bool {
    let Ok(ours) = cert_id(cert, issuer, id.hash_algorithm.oid) else {
        return false;
    };
    ours.issuer_name_hash == id.issuer_name_hash
        && ours.issuer_key_hash == id.issuer_key_hash
        && trust::normalize_serial(ours.serial_number.as_bytes())
            == trust::normalize_serial(id.serial_number.as_bytes())
}

/// Check an OCSP response (DER, base64 or PEM) about `cert`, issued by `issuer`, at `now`,
/// and return what it says (status `good`, `revoked` with its time, or `unknown`).
///
/// Errors when the response is not acceptable: not `successful`; not a BasicOCSPResponse;
/// its signature (algorithm under `policy`) verifies neither with the issuer's key nor with a
/// delegated responder's: a certificate included in the response, issued and signed by
/// `issuer`, with extendedKeyUsage id-kp-OCSPSigning and valid at `now`; `cert` is not
/// signed by `issuer`; no SingleResponse is about `cert`; its thisUpdate is later than
/// `now` + [`CLOCK_SKEW`] or its nextUpdate earlier than `now`; the response echoes a nonce
/// other than `nonce` (a response without one is accepted: many responders pre-produce
/// their answers; [`RevocationFacts::nonce_matched`] says which it was).
pub fn check_ocsp_response(
    response: &[u8],
    cert: &[u8],
    issuer: &[u8],
    nonce: Option<&[u8]>,
    policy: &Policy,
    now: Timestamp,
) -> Result<RevocationFacts, JpkiError> {
    // The response first, so that a fuzzer reaches its parser whatever the certificates.
    let der =
        crate::decode_input(response).ok_or_else(|| err("response is neither DER nor base64"))?;
    let response = OcspResponse::from_der(&der).map_err(|e| err(format!("OCSPResponse: {e}")))?;
    if response.response_status != OcspResponseStatus::Successful {
        return Err(err(format!(
            "the responder answered {:?}",
            response.response_status
        )));
    }
    let bytes = response
        .response_bytes
        .ok_or_else(|| err("a successful response without responseBytes"))?;
    if bytes.response_type != ID_PKIX_OCSP_BASIC {
        return Err(err(format!(
            "response type {} is not id-pkix-ocsp-basic",
            bytes.response_type
        )));
    }
    let basic_der = bytes.response.as_bytes();
    let basic = BasicOcspResponse::from_der(basic_der)
        .map_err(|e| err(format!("BasicOCSPResponse: {e}")))?;
    // The signature covers tbsResponseData as received.
    let tbs = first_element(basic_der).map_err(|e| err(format!("tbsResponseData: {e}")))?;
    let signature = basic
        .signature
        .as_bytes()
        .ok_or_else(|| err("the signature has unused bits"))?;

    let cert = parse_certificate(cert).map_err(JpkiError::Certificate)?;
    let issuer = parse_certificate(issuer).map_err(JpkiError::Certificate)?;
    // Binds the answer to the issuer the caller will find in the chain.
    if cert.tbs_certificate.issuer != issuer.tbs_certificate.subject {
        return Err(err("the certificate's issuer is not the issuer's subject"));
    }
    verify_cert(&cert, &issuer, policy)
        .map_err(|(_, m)| err(format!("the certificate is not signed by the issuer: {m}")))?;

    let responder = response_signer(&basic, tbs, signature, &issuer, policy, now)?;

    let data = &basic.tbs_response_data;
    let single = data
        .responses
        .iter()
        .find(|r| names(&r.cert_id, &cert, &issuer))
        .ok_or_else(|| err("no SingleResponse is about this certificate"))?;
    let this_update = time(single.this_update);
    let next_update = single.next_update.map(time);
    if !not_in_future(this_update, now) {
        return Err(err(format!(
            "thisUpdate {this_update} is later than the validation time {now}"
        )));
    }
    if let Some(next) = next_update
        && next < now
    {
        return Err(err(format!(
            "stale: nextUpdate {next} is before the validation time {now}"
        )));
    }

    let echoed = data
        .response_extensions
        .iter()
        .flatten()
        .find(|e| e.extn_id == ID_PKIX_OCSP_NONCE);
    let nonce_matched = match (nonce, echoed) {
        (Some(sent), Some(ext)) => {
            let value = ext.extn_value.as_bytes();
            let inner = OctetString::from_der(value).ok();
            // Some responders put the bare nonce in extnValue; accept both spellings.
            if inner.as_ref().map(OctetString::as_bytes) == Some(sent) || value == sent {
                true
            } else {
                return Err(err("the response's nonce differs from the request's"));
            }
        }
        _ => false,
    };

    let (status, revoked_at) = match &single.cert_status {
        CertStatus::Good(_) => (RevocationStatus::Good, None),
        CertStatus::Revoked(info) => (RevocationStatus::Revoked, Some(time(info.revocation_time))),
        CertStatus::Unknown(_) => (RevocationStatus::Unknown, None),
    };
    Ok(RevocationFacts {
        status,
        crl_issuer: None,
        this_update: Some(this_update),
        next_update,
        revoked_at,
        source: Some(RevocationSource::Ocsp),
        responder: Some(responder),
        produced_at: Some(time(data.produced_at)),
        nonce_matched,
        certificate_sha256: Some(CertFacts::of(&cert).sha256),
    })
}

/// The subject of the certificate whose key verifies the response: the issuer, or a
/// delegated responder included in the response (RFC 6960 4.2.2.2).
fn response_signer(
    basic: &BasicOcspResponse,
    tbs: &[u8],
    signature: &[u8],
    issuer: &Certificate,
    policy: &Policy,
    now: Timestamp,
) -> Result<String, JpkiError> {
    let verifies = |cert: &Certificate| {
        crypto::verify_signature(
            &cert.tbs_certificate.subject_public_key_info,
            &basic.signature_algorithm,
            None,
            tbs,
            signature,
            policy,
        )
    };
    match verifies(issuer) {
        Ok(_) => return Ok(issuer.tbs_certificate.subject.to_string()),
        // The algorithm is refused whoever signed.
        Err(SigError::Constraints(m)) => return Err(err(format!("response signature: {m}"))),
        Err(_) => {}
    }
    for candidate in basic.certs.iter().flatten() {
        if verifies(candidate).is_err() {
            continue;
        }
        let subject = candidate.tbs_certificate.subject.to_string();
        if candidate.tbs_certificate.issuer != issuer.tbs_certificate.subject {
            return Err(err(format!(
                "the responder {subject} is not issued by the certificate's issuer"
            )));
        }
        verify_cert(candidate, issuer, policy).map_err(|(_, m)| {
            err(format!(
                "the responder {subject} is not signed by the issuer: {m}"
            ))
        })?;
        let delegated = matches!(
            extension::<ExtendedKeyUsage>(candidate, ID_CE_EXT_KEY_USAGE),
            Ok(Some(eku)) if eku.0.contains(&ID_KP_OCSP_SIGNING)
        );
        if !delegated {
            return Err(err(format!(
                "the responder {subject} lacks extendedKeyUsage id-kp-OCSPSigning"
            )));
        }
        let v = &candidate.tbs_certificate.validity;
        let (from, to) = (trust::ts(v.not_before), trust::ts(v.not_after));
        if now < from || now > to {
            return Err(err(format!(
                "the responder {subject} is valid from {from} to {to}, not at {now}"
            )));
        }
        return Ok(subject);
    }
    Err(err(
        "the response's signature verifies neither with the issuer's key nor with an included responder's",
    ))
}

/// Whether `facts` may decide revocation of the certificate whose SHA-256 is `cert_sha256`
/// at `now`: a checked OCSP answer about it, `good` or `revoked`, still current.
pub(crate) fn usable_for(
    facts: &RevocationFacts,
    cert_sha256: Option<&str>,
    now: Timestamp,
) -> bool {
    facts.source == Some(RevocationSource::Ocsp)
        && matches!(
            facts.status,
            RevocationStatus::Good | RevocationStatus::Revoked
        )
        && cert_sha256.is_some()
        && facts.certificate_sha256.as_deref() == cert_sha256
        && facts.this_update.is_some_and(|t| not_in_future(t, now))
        && facts.next_update.is_none_or(|next| now <= next)
}

/// thisUpdate ≤ now + skew.
fn not_in_future(this_update: Timestamp, now: Timestamp) -> bool {
    this_update
        .checked_sub(CLOCK_SKEW)
        .map_or(true, |t| t <= now)
}

fn time(t: OcspGeneralizedTime) -> Timestamp {
    trust::ts(Time::GeneralTime(t.0))
}

/// The complete first element (TLV) inside a DER SEQUENCE, as encoded.
fn first_element(der: &[u8]) -> der::Result<&[u8]> {
    let mut reader = SliceReader::new(der)?;
    let _sequence = Header::decode(&mut reader)?;
    reader.tlv_bytes()
}
