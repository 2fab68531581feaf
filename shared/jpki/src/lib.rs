//! Verification core for JPKI (公的個人認証サービス, My Number Card) signatures and card
//! logins.
//!
//! Pure: no I/O, no async, no clock (the caller passes `now`). The caller configures the
//! trust anchors ([`TrustAnchors`], the J-LIS CA certificates of its environment), the CRLs
//! it fetched ([`CrlSet`]) and, where it has access to an OCSP responder, the answers it got
//! ([`ocsp`]); [`verify`] checks a CMS SignedData over a payload (署名用電子証明書),
//! [`verify_login`] a signature over a login challenge (利用者証明用電子証明書), and both
//! return a [`Report`] modelled on ETSI EN 319 102-1.
//!
//! Checks, in order (the first failure decides the report):
//! 1. the CMS parses, holds one SignerInfo and its certificate (FORMAT_FAILURE,
//!    NO_SIGNING_CERTIFICATE_FOUND); for a login, the certificate and signature decode;
//! 2. the digest algorithm is SHA-256 or stronger (CRYPTO_CONSTRAINTS_FAILURE); a login is
//!    SHA-256;
//! 3. attached content equals the payload, and the messageDigest attribute equals the
//!    payload's digest (HASH_FAILURE);
//! 4. the signature over the DER of the signed attributes (or the challenge) verifies with
//!    the signer's RSA key, PKCS#1 v1.5 or PSS (SIG_CRYPTO_FAILURE; CRYPTO_CONSTRAINTS_FAILURE
//!    for short keys or a refused algorithm);
//! 5. a chain from the signer to a trust anchor, each certificate's signature verified, CA
//!    certificates marked as CAs (NO_CERTIFICATE_CHAIN_FOUND, CHAIN_CONSTRAINTS_FAILURE);
//! 6. every certificate of the chain is valid at `now` (OUT_OF_BOUNDS);
//! 7. the signer's key usage allows digitalSignature or nonRepudiation; for a login,
//!    digitalSignature (CHAIN_CONSTRAINTS_FAILURE);
//! 8. revocation of the signer's certificate through a current OCSP answer, or a verified,
//!    fresh CRL of its issuer (REVOKED; TRY_LATER when neither decides and the policy
//!    requires revocation checking).

mod crypto;
mod login;
pub mod ocsp;
mod payload;
mod trust;

use cms::cert::CertificateChoices;
use cms::content_info::ContentInfo;
use cms::signed_data::{SignedData, SignerIdentifier, SignerInfo};
use const_oid::ObjectIdentifier;
use der::asn1::OctetString;
use der::{Decode, Encode};
use jiff::Timestamp;
use serde::{Deserialize, Serialize};
use sha2::{Digest, Sha256};
use x509_cert::Certificate;
use x509_cert::ext::pkix::{BasicConstraints, KeyUsage};

pub use login::{certificate_issuer, verify_login, verify_login_with_revocation};
pub use payload::{BasicFour, basic_four, canonical_payload, oid};
pub use trust::{Crl, CrlSet, TrustAnchors};

use crypto::SigError;

const ID_SIGNED_DATA: ObjectIdentifier = ObjectIdentifier::new_unwrap("1.2.840.113549.1.7.2");
const ID_DATA: ObjectIdentifier = ObjectIdentifier::new_unwrap("1.2.840.113549.1.7.1");
const ID_CONTENT_TYPE: ObjectIdentifier = ObjectIdentifier::new_unwrap("1.2.840.113549.1.9.3");
const ID_MESSAGE_DIGEST: ObjectIdentifier = ObjectIdentifier::new_unwrap("1.2.840.113549.1.9.4");
const ID_CE_SUBJECT_KEY_ID: ObjectIdentifier = ObjectIdentifier::new_unwrap("2.5.29.14");
const ID_CE_KEY_USAGE: ObjectIdentifier = ObjectIdentifier::new_unwrap("2.5.29.15");
const ID_CE_BASIC_CONSTRAINTS: ObjectIdentifier = ObjectIdentifier::new_unwrap("2.5.29.19");
/// Longest chain looked for (signer, intermediates, anchor).
const MAX_CHAIN: usize = 8;

/// Errors of the configuration side (anchors, CRLs); verification itself never errs, it reports.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum JpkiError {
    /// A certificate did not parse.
    #[error("certificate: {0}")]
    Certificate(String),
    /// A CRL did not parse.
    #[error("CRL: {0}")]
    Crl(String),
    /// A CRL's signature could not be verified against its issuer.
    #[error("CRL signature: {0}")]
    CrlSignature(String),
    /// An OCSP request could not be built, or a response is not acceptable.
    #[error("OCSP: {0}")]
    Ocsp(String),
}

/// What the verifier accepts.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Policy {
    /// Accept RSASSA-PSS signatures (PKCS#1 v1.5 is always accepted).
    pub allow_pss: bool,
    /// Smallest RSA modulus accepted, in bits (never below 1024 whatever this says).
    pub min_rsa_bits: usize,
    /// Without a fresh CRL of the signer's issuer or a current OCSP answer, answer
    /// INDETERMINATE/TRY_LATER.
    pub require_revocation: bool,
}

impl Default for Policy {
    fn default() -> Self {
        Self {
            allow_pss: true,
            min_rsa_bits: 2048,
            require_revocation: true,
        }
    }
}

/// ETSI EN 319 102-1 main indication.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub enum Indication {
    /// Every check passed.
    #[serde(rename = "TOTAL-PASSED")]
    TotalPassed,
    /// The signature is definitely not valid.
    #[serde(rename = "TOTAL-FAILED")]
    TotalFailed,
    /// Validity cannot be decided with the information available.
    #[serde(rename = "INDETERMINATE")]
    Indeterminate,
}

/// ETSI EN 319 102-1 sub-indication (the subset this verifier produces).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "SCREAMING_SNAKE_CASE")]
pub enum SubIndication {
    /// The signature is not a well-formed CMS SignedData (TOTAL-FAILED).
    FormatFailure,
    /// The signed digest does not match the payload (TOTAL-FAILED).
    HashFailure,
    /// The signature value does not verify with the signer's key (TOTAL-FAILED).
    SigCryptoFailure,
    /// The signer's certificate is revoked (TOTAL-FAILED).
    Revoked,
    /// The signer's certificate is not in the CMS (INDETERMINATE).
    NoSigningCertificateFound,
    /// No chain to a trust anchor (INDETERMINATE).
    NoCertificateChainFound,
    /// A certificate constraint fails: key usage of the signer (TOTAL-FAILED) or a CA
    /// certificate that is not a CA (INDETERMINATE).
    ChainConstraintsFailure,
    /// A certificate of the chain is not valid at the validation time (INDETERMINATE).
    OutOfBounds,
    /// No fresh revocation data (INDETERMINATE).
    TryLater,
    /// An algorithm or key size refused by policy (INDETERMINATE).
    CryptoConstraintsFailure,
}

impl SubIndication {
    fn indication(self) -> Indication {
        match self {
            SubIndication::FormatFailure
            | SubIndication::HashFailure
            | SubIndication::SigCryptoFailure
            | SubIndication::Revoked => Indication::TotalFailed,
            _ => Indication::Indeterminate,
        }
    }
}

/// The facts of one certificate.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct CertFacts {
    /// Subject DN (RFC 4514).
    pub subject: String,
    /// Issuer DN (RFC 4514).
    pub issuer: String,
    /// Serial number, lowercase hex of its DER content octets.
    pub serial_hex: String,
    /// notBefore.
    pub not_before: Timestamp,
    /// notAfter.
    pub not_after: Timestamp,
    /// SHA-256 of the certificate's DER, lowercase hex.
    pub sha256: String,
}

impl CertFacts {
    fn of(cert: &Certificate) -> Self {
        let tbs = &cert.tbs_certificate;
        Self {
            subject: tbs.subject.to_string(),
            issuer: tbs.issuer.to_string(),
            serial_hex: hex::encode(tbs.serial_number.as_bytes()),
            not_before: trust::ts(tbs.validity.not_before),
            not_after: trust::ts(tbs.validity.not_after),
            sha256: hex::encode(Sha256::digest(cert.to_der().unwrap_or_default())),
        }
    }
}

/// Outcome of the revocation check.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize, Default)]
#[serde(rename_all = "snake_case")]
pub enum RevocationStatus {
    /// The check was not reached (an earlier check failed).
    #[default]
    NotChecked,
    /// A fresh CRL of the issuer does not list the serial, or OCSP answered `good`.
    Good,
    /// A fresh CRL of the issuer lists the serial, or OCSP answered `revoked`.
    Revoked,
    /// Nothing decided: no fresh, verified CRL of the issuer is held and no current OCSP
    /// answer (or the responder answered `unknown`).
    Unknown,
}

/// Where a revocation answer came from.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum RevocationSource {
    /// A CRL of the issuer ([`CrlSet`]).
    Crl,
    /// An OCSP response ([`ocsp::check_ocsp_response`]).
    Ocsp,
}

/// Which CRL or OCSP response answered, and what it said.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, Default)]
pub struct RevocationFacts {
    /// The outcome.
    pub status: RevocationStatus,
    /// The CRL's issuer DN.
    pub crl_issuer: Option<String>,
    /// The CRL's or the OCSP SingleResponse's thisUpdate.
    pub this_update: Option<Timestamp>,
    /// The CRL's or the OCSP SingleResponse's nextUpdate.
    pub next_update: Option<Timestamp>,
    /// When the certificate was revoked, if it was.
    pub revoked_at: Option<Timestamp>,
    /// What answered: a CRL or OCSP (absent when nothing was consulted).
    #[serde(default)]
    pub source: Option<RevocationSource>,
    /// OCSP: subject DN of the certificate that signed the response (the issuer itself or
    /// its delegated responder).
    #[serde(default)]
    pub responder: Option<String>,
    /// OCSP: the response's producedAt.
    #[serde(default)]
    pub produced_at: Option<Timestamp>,
    /// OCSP: whether the response echoed the nonce of the request.
    #[serde(default)]
    pub nonce_matched: bool,
    /// OCSP: SHA-256 (lowercase hex, as [`CertFacts::sha256`]) of the certificate the answer
    /// is about; [`verify_with_revocation`] uses an answer only for that certificate.
    #[serde(default)]
    pub certificate_sha256: Option<String>,
}

/// The verification report, stored with the application and shown to staff.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Report {
    /// Main indication.
    pub indication: Indication,
    /// Sub-indication (absent when TOTAL-PASSED).
    pub sub_indication: Option<SubIndication>,
    /// What failed, in words (English, for staff and logs; no personal data).
    pub detail: Option<String>,
    /// The validation time.
    pub validation_time: Timestamp,
    /// The signer's certificate, when found.
    pub signer: Option<CertFacts>,
    /// The chain from the signer to the anchor, when built.
    pub chain: Vec<CertFacts>,
    /// The digest algorithm (e.g. `SHA-256`).
    pub digest_algorithm: Option<String>,
    /// The signature scheme (e.g. `RSASSA-PKCS1-v1_5 with SHA-256`).
    pub signature_algorithm: Option<String>,
    /// The revocation check.
    pub revocation: RevocationFacts,
    /// 基本4情報 of the signer's certificate, when it carries them.
    pub basic_four: Option<BasicFour>,
}

impl Report {
    fn new(now: Timestamp) -> Self {
        Self {
            indication: Indication::Indeterminate,
            sub_indication: None,
            detail: None,
            validation_time: now,
            signer: None,
            chain: Vec::new(),
            digest_algorithm: None,
            signature_algorithm: None,
            revocation: RevocationFacts::default(),
            basic_four: None,
        }
    }

    fn fail(mut self, sub: SubIndication, detail: impl Into<String>) -> Self {
        self.indication = sub.indication();
        self.sub_indication = Some(sub);
        self.detail = Some(detail.into());
        self
    }

    /// Whether the signature is valid (TOTAL-PASSED).
    pub fn passed(&self) -> bool {
        self.indication == Indication::TotalPassed
    }
}

/// Verify a CMS SignedData (`signature`: DER, base64 or PEM; detached, or attached with
/// content equal to `payload`) over `payload` at time `now`, revocation through `crls`.
/// Never panics; every failure is a [`Report`].
pub fn verify(
    payload: &[u8],
    signature: &[u8],
    anchors: &TrustAnchors,
    crls: &CrlSet,
    policy: &Policy,
    now: Timestamp,
) -> Report {
    verify_with_revocation(payload, signature, anchors, crls, None, policy, now)
}

/// [`verify`], with an OCSP answer for the signer's certificate (from
/// [`ocsp::check_ocsp_response`]) as well as the CRLs. A `good` or `revoked` answer about
/// this very certificate (by [`RevocationFacts::certificate_sha256`]) that is current at
/// `now` decides revocation, except that a fresh CRL listing the serial always gives REVOKED
/// (revocation is final); any other answer falls back to the CRL.
pub fn verify_with_revocation(
    payload: &[u8],
    signature: &[u8],
    anchors: &TrustAnchors,
    crls: &CrlSet,
    ocsp: Option<&RevocationFacts>,
    policy: &Policy,
    now: Timestamp,
) -> Report {
    verify_content(
        Content::Payload(payload),
        signature,
        anchors,
        crls,
        ocsp,
        policy,
        now,
    )
}

/// [`verify_with_revocation`] when only the SHA-256 of the payload is at hand (a signing
/// session keeps the digest, never the payload). The signer must have used SHA-256 and signed
/// attributes (a signature over the content itself cannot be checked against a digest:
/// HASH_FAILURE); attached content must hash to `sha256`.
pub fn verify_digest_with_revocation(
    sha256: &[u8],
    signature: &[u8],
    anchors: &TrustAnchors,
    crls: &CrlSet,
    ocsp: Option<&RevocationFacts>,
    policy: &Policy,
    now: Timestamp,
) -> Report {
    verify_content(
        Content::Sha256(sha256),
        signature,
        anchors,
        crls,
        ocsp,
        policy,
        now,
    )
}

/// What the signature is checked against.
#[derive(Clone, Copy)]
enum Content<'a> {
    Payload(&'a [u8]),
    /// The SHA-256 of the payload.
    Sha256(&'a [u8]),
}

impl Content<'_> {
    /// Whether `data` is the content.
    fn matches(self, data: &[u8]) -> bool {
        match self {
            Content::Payload(p) => p == data,
            Content::Sha256(d) => Sha256::digest(data).as_slice() == d,
        }
    }

    /// The content's digest with `hash`, if it can be had.
    fn digest(self, hash: crypto::Hash) -> Option<Vec<u8>> {
        match self {
            Content::Payload(p) => Some(hash.digest(p)),
            Content::Sha256(d) if hash == crypto::Hash::Sha256 => Some(d.to_vec()),
            Content::Sha256(_) => None,
        }
    }
}

fn verify_content(
    content: Content<'_>,
    signature: &[u8],
    anchors: &TrustAnchors,
    crls: &CrlSet,
    ocsp: Option<&RevocationFacts>,
    policy: &Policy,
    now: Timestamp,
) -> Report {
    use SubIndication as S;
    let report = Report::new(now);

    // 1. Format.
    let Some(der) = decode_input(signature) else {
        return report.fail(S::FormatFailure, "signature is neither DER nor base64");
    };
    let signed = match parse_signed_data(&der) {
        Ok(s) => s,
        Err(e) => return report.fail(S::FormatFailure, e),
    };
    let Some(info) = single_signer(&signed) else {
        return report.fail(S::FormatFailure, "exactly one SignerInfo is expected");
    };
    if let Err(e) = check_structure(&signed, info) {
        return report.fail(S::FormatFailure, e);
    }
    let certs = cms_certificates(&signed);
    let Some(signer) = certs.iter().copied().find(|c| is_signer(c, &info.sid)) else {
        return report.fail(
            S::NoSigningCertificateFound,
            "the signer's certificate is not in the CMS",
        );
    };
    let mut report = report;
    report.signer = Some(CertFacts::of(signer));
    report.basic_four = payload::basic_four_of(signer);

    // 2. Digest algorithm.
    let hash = match crypto::hash_from_oid(&info.digest_alg.oid) {
        Ok(h) => h,
        Err(e) => return sig_error(report, e),
    };
    report.digest_algorithm = Some(hash.name().to_owned());

    // 3. Content and message digest.
    if let Some(econtent) = &signed.encap_content_info.econtent {
        let econtent_bytes = econtent
            .to_der()
            .ok()
            .and_then(|d| OctetString::from_der(&d).ok());
        match econtent_bytes {
            Some(c) if content.matches(c.as_bytes()) => {}
            Some(_) => {
                return report.fail(S::HashFailure, "encapsulated content differs from payload");
            }
            None => return report.fail(S::FormatFailure, "encapsulated content is not data"),
        }
    }
    let message = match &info.signed_attrs {
        Some(attrs) => {
            let digest = match message_digest(info) {
                Ok(d) => d,
                Err(e) => return report.fail(S::FormatFailure, e),
            };
            let Some(expected) = content.digest(hash) else {
                return report.fail(
                    S::HashFailure,
                    "the payload's SHA-256 cannot check a digest made with another hash",
                );
            };
            if digest != expected {
                return report.fail(S::HashFailure, "messageDigest does not match the payload");
            }
            match attrs.to_der() {
                Ok(d) => d,
                Err(e) => return report.fail(S::FormatFailure, format!("signed attributes: {e}")),
            }
        }
        // Without signed attributes the signature covers the content itself.
        None => match content {
            Content::Payload(p) => p.to_vec(),
            Content::Sha256(_) => {
                return report.fail(
                    S::HashFailure,
                    "without signed attributes the signature cannot be checked against a digest",
                );
            }
        },
    };

    // 4. Signature value.
    let spki = &signer.tbs_certificate.subject_public_key_info;
    match crypto::verify_signature(
        spki,
        &info.signature_algorithm,
        Some(hash),
        &message,
        info.signature.as_bytes(),
        policy,
    ) {
        Ok(scheme) => report.signature_algorithm = Some(scheme.name()),
        Err(SigError::Crypto) => {
            return report.fail(S::SigCryptoFailure, "signature value does not verify");
        }
        Err(e) => return sig_error(report, e),
    }

    check_certificate(
        report,
        signer,
        &certs,
        anchors,
        Revocation { crls, ocsp },
        policy,
        now,
        Usage::Signing,
    )
}

/// What the end-entity key must be allowed to do.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Usage {
    /// A 署名用電子証明書: digitalSignature or nonRepudiation.
    Signing,
    /// A 利用者証明用電子証明書: digitalSignature (nonRepudiation is about documents, not
    /// authentication).
    Login,
}

/// The revocation information a verification may use.
#[derive(Clone, Copy)]
struct Revocation<'a> {
    crls: &'a CrlSet,
    ocsp: Option<&'a RevocationFacts>,
}

/// Checks 5 to 8 (chain, validity, key usage, revocation) of an end-entity certificate whose
/// signature already verified; `certs` are the candidate intermediates.
#[allow(clippy::too_many_arguments)]
fn check_certificate(
    mut report: Report,
    signer: &Certificate,
    certs: &[&Certificate],
    anchors: &TrustAnchors,
    revocation: Revocation<'_>,
    policy: &Policy,
    now: Timestamp,
    usage: Usage,
) -> Report {
    use SubIndication as S;

    // 5. Chain.
    let chain = match build_chain(signer, certs, anchors, policy) {
        Ok(c) => c,
        Err((sub, detail)) => return report.fail(sub, detail),
    };
    report.chain = chain.iter().map(|c| CertFacts::of(c)).collect();

    // 6. Validity at `now`.
    for cert in &chain {
        let v = &cert.tbs_certificate.validity;
        let (from, to) = (trust::ts(v.not_before), trust::ts(v.not_after));
        if now < from || now > to {
            let subject = cert.tbs_certificate.subject.to_string();
            return report.fail(
                S::OutOfBounds,
                format!("certificate {subject} is valid from {from} to {to}, not at {now}"),
            );
        }
    }

    // 7. Key usage of the signer (absent: any usage, RFC 5280 4.2.1.3).
    match extension::<KeyUsage>(signer, ID_CE_KEY_USAGE) {
        Err(e) => return report.fail(S::FormatFailure, e),
        Ok(Some(ku)) => {
            let (allowed, wanted) = match usage {
                Usage::Signing => (
                    ku.digital_signature() || ku.non_repudiation(),
                    "neither digitalSignature nor nonRepudiation",
                ),
                Usage::Login => (
                    ku.digital_signature(),
                    "no digitalSignature (required for login)",
                ),
            };
            if !allowed {
                let mut r = report.fail(
                    S::ChainConstraintsFailure,
                    format!("the signer's key usage allows {wanted}"),
                );
                r.indication = Indication::TotalFailed;
                return r;
            }
        }
        Ok(None) => {}
    }

    // 8. Revocation of the signer: OCSP answer or its issuer's CRL.
    let issuer = chain.get(1).copied().unwrap_or(signer);
    let issuer_der = signer.tbs_certificate.issuer.to_der().unwrap_or_default();
    let issuer_spki = issuer
        .tbs_certificate
        .subject_public_key_info
        .to_der()
        .unwrap_or_default();
    let serial = signer.tbs_certificate.serial_number.as_bytes();
    let crl = revocation.crls.get(&issuer_der, &issuer_spki);
    if let Some(crl) = crl {
        report.revocation.source = Some(RevocationSource::Crl);
        report.revocation.crl_issuer = Some(crl.issuer().to_owned());
        report.revocation.this_update = Some(crl.this_update());
        report.revocation.next_update = crl.next_update();
    }
    let fresh = crl.filter(|c| c.is_fresh_at(now));
    // A fresh CRL that lists the serial wins over any OCSP answer: revocation is final.
    if let Some(at) = fresh.and_then(|c| c.is_revoked(serial)) {
        report.revocation.status = RevocationStatus::Revoked;
        report.revocation.revoked_at = Some(at);
        return report.fail(
            S::Revoked,
            format!("the signer's certificate was revoked at {at}"),
        );
    }
    let signer_sha256 = report.signer.as_ref().map(|f| f.sha256.clone());
    let ocsp_answer = revocation
        .ocsp
        .filter(|f| ocsp::usable_for(f, signer_sha256.as_deref(), now));
    if let Some(answer) = ocsp_answer {
        report.revocation = answer.clone();
        if answer.status == RevocationStatus::Revoked {
            let at = answer
                .revoked_at
                .map_or_else(|| "an unknown time".to_owned(), |t| t.to_string());
            return report.fail(
                S::Revoked,
                format!("OCSP: the signer's certificate was revoked at {at}"),
            );
        }
    } else if fresh.is_some() {
        report.revocation.status = RevocationStatus::Good;
    } else {
        report.revocation.status = RevocationStatus::Unknown;
        if policy.require_revocation {
            let why = if crl.is_some() {
                "the issuer's CRL is not fresh at the validation time"
            } else {
                "no verified CRL of the signer's issuer is held"
            };
            let why = if revocation.ocsp.is_some() {
                format!(
                    "{why}, and the OCSP answer does not decide (unknown, stale or about another certificate)"
                )
            } else {
                why.to_owned()
            };
            return report.fail(S::TryLater, why);
        }
    }

    report.indication = Indication::TotalPassed;
    report
}

/// The signer's certificate of a CMS SignedData (DER, base64 or PEM) and the certificate of
/// its issuer (a trust anchor, or an intermediate from the CMS), both DER: what
/// [`ocsp::ocsp_request`] needs before verifying. `None` when the CMS does not parse, its
/// signer certificate is missing or no chain to an anchor is found. It decides nothing:
/// [`verify_with_revocation`] checks everything again.
pub fn signer_and_issuer(signature: &[u8], anchors: &TrustAnchors) -> Option<(Vec<u8>, Vec<u8>)> {
    let der = decode_input(signature)?;
    let signed = parse_signed_data(&der).ok()?;
    let info = single_signer(&signed)?;
    let certs = cms_certificates(&signed);
    let signer = certs.iter().copied().find(|c| is_signer(c, &info.sid))?;
    let issuer = issuer_of(signer, &certs, anchors)?;
    Some((signer.to_der().ok()?, issuer))
}

/// The serial number of a certificate (DER, base64 or PEM) as lowercase hex of its DER
/// content octets, as in [`CertFacts::serial_hex`]. With the issuer DN it names a card's
/// certificate (how a login is linked to a citizen). `None` when it does not parse.
pub fn certificate_serial_hex(cert: &[u8]) -> Option<String> {
    let cert = parse_certificate(cert).ok()?;
    Some(hex::encode(cert.tbs_certificate.serial_number.as_bytes()))
}

/// The DER of the issuer of `cert` along a verified chain to an anchor. Chain building uses
/// a lenient policy: this only looks up; the verification applies the caller's.
fn issuer_of(
    cert: &Certificate,
    certs: &[&Certificate],
    anchors: &TrustAnchors,
) -> Option<Vec<u8>> {
    let lookup = Policy {
        allow_pss: true,
        min_rsa_bits: 0,
        require_revocation: false,
    };
    let chain = build_chain(cert, certs, anchors, &lookup).ok()?;
    chain.get(1)?.to_der().ok()
}

/// A certificate from DER, base64 or PEM.
fn parse_certificate(input: &[u8]) -> Result<Certificate, String> {
    let der = decode_input(input).ok_or("certificate is neither DER nor base64")?;
    crypto::parse(&der, "certificate")
}

fn single_signer(signed: &SignedData) -> Option<&SignerInfo> {
    let mut infos = signed.signer_infos.0.iter();
    match (infos.next(), infos.next()) {
        (Some(info), None) => Some(info),
        _ => None,
    }
}

fn cms_certificates(signed: &SignedData) -> Vec<&Certificate> {
    signed
        .certificates
        .as_ref()
        .map(|set| {
            set.0
                .iter()
                .filter_map(|c| match c {
                    CertificateChoices::Certificate(c) => Some(c),
                    CertificateChoices::Other(_) => None,
                })
                .collect()
        })
        .unwrap_or_default()
}

/// DER as is; otherwise base64 (standard or URL-safe, whitespace and PEM armour ignored).
pub fn decode_input(input: &[u8]) -> Option<Vec<u8>> {
    if input.first() == Some(&0x30) {
        return Some(input.to_vec());
    }
    let der = decode_base64(input)?;
    (der.first() == Some(&0x30)).then_some(der)
}

/// Base64 text (standard or URL-safe, padded or not; whitespace and PEM armour ignored).
fn decode_base64(input: &[u8]) -> Option<Vec<u8>> {
    use base64::Engine;
    use base64::engine::general_purpose::{STANDARD, STANDARD_NO_PAD, URL_SAFE, URL_SAFE_NO_PAD};
    let text = std::str::from_utf8(input).ok()?;
    let body: String = text
        .lines()
        .filter(|l| !l.trim_start().starts_with("-----"))
        .flat_map(|l| l.chars())
        .filter(|c| !c.is_ascii_whitespace())
        .collect();
    let trimmed = body.trim_end_matches('=');
    STANDARD
        .decode(&body)
        .ok()
        .or_else(|| URL_SAFE.decode(&body).ok())
        .or_else(|| STANDARD_NO_PAD.decode(trimmed).ok())
        .or_else(|| URL_SAFE_NO_PAD.decode(trimmed).ok())
}

fn parse_signed_data(der: &[u8]) -> Result<SignedData, String> {
    let ci: ContentInfo = crypto::parse(der, "ContentInfo")?;
    if ci.content_type != ID_SIGNED_DATA {
        return Err(format!(
            "content type {} is not signedData",
            ci.content_type
        ));
    }
    let inner = ci
        .content
        .to_der()
        .map_err(|e| format!("SignedData: {e}"))?;
    crypto::parse(&inner, "SignedData")
}

/// RFC 5652 rules for the parts of a SignedData that its signature does not cover, so that
/// a changed byte there is refused too: versions (5.1, 5.3, for the content and certificate
/// kinds this verifier reads), id-data content named by the contentType attribute (11.1),
/// the signer's digest algorithm among digestAlgorithms, digest parameters absent or NULL
/// (RFC 5754 2).
fn check_structure(signed: &SignedData, info: &SignerInfo) -> Result<(), String> {
    use cms::content_info::CmsVersion;
    let econtent_type = signed.encap_content_info.econtent_type;
    if econtent_type != ID_DATA {
        return Err(format!(
            "encapsulated content type {econtent_type} is not id-data"
        ));
    }
    let ski = matches!(info.sid, SignerIdentifier::SubjectKeyIdentifier(_));
    if info.version != if ski { CmsVersion::V3 } else { CmsVersion::V1 } {
        return Err("SignerInfo version does not match its signer identifier".into());
    }
    let other_formats = signed
        .certificates
        .iter()
        .flat_map(|set| set.0.iter())
        .any(|c| matches!(c, CertificateChoices::Other(_)))
        || signed
            .crls
            .iter()
            .flat_map(|set| set.0.iter())
            .any(|c| matches!(c, cms::revocation::RevocationInfoChoice::Other(_)));
    let expected = match (other_formats, ski) {
        (true, _) => CmsVersion::V5,
        (false, true) => CmsVersion::V3,
        (false, false) => CmsVersion::V1,
    };
    if signed.version != expected {
        return Err(format!(
            "SignedData version {:?} where RFC 5652 asks {expected:?}",
            signed.version
        ));
    }
    if !signed
        .digest_algorithms
        .iter()
        .any(|a| a.oid == info.digest_alg.oid)
    {
        return Err("digestAlgorithms does not list the signer's digest algorithm".into());
    }
    let null_or_absent =
        |a: &spki::AlgorithmIdentifierOwned| a.parameters.as_ref().is_none_or(|p| p.is_null());
    if !signed.digest_algorithms.iter().all(null_or_absent) || !null_or_absent(&info.digest_alg) {
        return Err("digest algorithm parameters must be absent or NULL".into());
    }
    if let Some(attrs) = &info.signed_attrs {
        let mut found = attrs.iter().filter(|a| a.oid == ID_CONTENT_TYPE);
        let (Some(attr), None) = (found.next(), found.next()) else {
            return Err("exactly one contentType attribute is expected".into());
        };
        let value = attr
            .values
            .iter()
            .next()
            .filter(|_| attr.values.len() == 1)
            .and_then(|v| v.decode_as::<ObjectIdentifier>().ok());
        if value != Some(econtent_type) {
            return Err("the contentType attribute differs from the content type".into());
        }
    }
    Ok(())
}

fn is_signer(cert: &Certificate, sid: &SignerIdentifier) -> bool {
    match sid {
        SignerIdentifier::IssuerAndSerialNumber(ias) => {
            cert.tbs_certificate.issuer == ias.issuer
                && cert.tbs_certificate.serial_number == ias.serial_number
        }
        SignerIdentifier::SubjectKeyIdentifier(skid) => {
            matches!(
                extension::<x509_cert::ext::pkix::SubjectKeyIdentifier>(cert, ID_CE_SUBJECT_KEY_ID),
                Ok(Some(own)) if own.0 == skid.0
            )
        }
    }
}

fn message_digest(info: &SignerInfo) -> Result<Vec<u8>, String> {
    let attrs = info.signed_attrs.as_ref().ok_or("no signed attributes")?;
    let mut found = attrs.iter().filter(|a| a.oid == ID_MESSAGE_DIGEST);
    let (Some(attr), None) = (found.next(), found.next()) else {
        return Err("exactly one messageDigest attribute is expected".into());
    };
    let mut values = attr.values.iter();
    let (Some(value), None) = (values.next(), values.next()) else {
        return Err("messageDigest must have one value".into());
    };
    let bytes = value.to_der().map_err(|e| e.to_string())?;
    let digest: OctetString = crypto::parse(&bytes, "messageDigest")?;
    Ok(digest.as_bytes().to_vec())
}

/// A decoded extension, `Ok(None)` when absent.
fn extension<T: for<'a> Decode<'a>>(
    cert: &Certificate,
    id: ObjectIdentifier,
) -> Result<Option<T>, String> {
    let Some(ext) = cert
        .tbs_certificate
        .extensions
        .as_ref()
        .and_then(|exts| exts.iter().find(|e| e.extn_id == id))
    else {
        return Ok(None);
    };
    T::from_der(ext.extn_value.as_bytes())
        .map(Some)
        .map_err(|e| format!("extension {id}: {e}"))
}

/// The chain signer → … → anchor, each link's signature verified.
fn build_chain<'a>(
    signer: &'a Certificate,
    certs: &[&'a Certificate],
    anchors: &'a TrustAnchors,
    policy: &Policy,
) -> Result<Vec<&'a Certificate>, (SubIndication, String)> {
    use SubIndication as S;
    let mut chain = vec![signer];
    let mut current = signer;
    let mut last_problem: Option<(SubIndication, String)> = None;
    while chain.len() < MAX_CHAIN {
        // A trust anchor that signed the current certificate ends the chain.
        if anchors.certs.iter().any(|a| a == current) && chain.len() > 1 {
            return Ok(chain);
        }
        for anchor in &anchors.certs {
            if anchor.tbs_certificate.subject != current.tbs_certificate.issuer {
                continue;
            }
            match verify_cert(current, anchor, policy) {
                Ok(()) => {
                    chain.push(anchor);
                    return Ok(chain);
                }
                Err(p) => last_problem = Some(p),
            }
        }
        // Otherwise an intermediate from the CMS.
        let next = certs.iter().copied().find(|c| {
            !chain.iter().any(|seen| seen == c)
                && c.tbs_certificate.subject == current.tbs_certificate.issuer
                && verify_cert(current, c, policy).is_ok()
        });
        let Some(next) = next else {
            break;
        };
        match extension::<BasicConstraints>(next, ID_CE_BASIC_CONSTRAINTS) {
            Ok(Some(bc)) if bc.ca => {}
            _ => {
                return Err((
                    S::ChainConstraintsFailure,
                    format!(
                        "intermediate {} is not a CA certificate",
                        next.tbs_certificate.subject
                    ),
                ));
            }
        }
        chain.push(next);
        current = next;
    }
    Err(last_problem.unwrap_or((
        S::NoCertificateChainFound,
        "no chain from the signer to a trust anchor".into(),
    )))
}

fn verify_cert(
    cert: &Certificate,
    issuer: &Certificate,
    policy: &Policy,
) -> Result<(), (SubIndication, String)> {
    use SubIndication as S;
    // RFC 5280 4.1.1.2: the unsigned copy must equal the signed one.
    if cert.signature_algorithm != cert.tbs_certificate.signature {
        return Err((
            S::NoCertificateChainFound,
            format!(
                "the signature algorithm of {} differs from the one it signed",
                cert.tbs_certificate.subject
            ),
        ));
    }
    let tbs = cert
        .tbs_certificate
        .to_der()
        .map_err(|e| (S::FormatFailure, e.to_string()))?;
    let Some(sig) = cert.signature.as_bytes() else {
        return Err((
            S::FormatFailure,
            "certificate signature has unused bits".into(),
        ));
    };
    crypto::verify_signature(
        &issuer.tbs_certificate.subject_public_key_info,
        &cert.signature_algorithm,
        None,
        &tbs,
        sig,
        policy,
    )
    .map(|_| ())
    .map_err(|e| match e {
        SigError::Constraints(m) => (S::CryptoConstraintsFailure, m),
        SigError::Format(m) => (S::NoCertificateChainFound, m),
        SigError::Crypto => (
            S::NoCertificateChainFound,
            format!(
                "the signature of {} does not verify with the key of {}",
                cert.tbs_certificate.subject, issuer.tbs_certificate.subject
            ),
        ),
    })
}

fn sig_error(report: Report, e: SigError) -> Report {
    match e {
        SigError::Constraints(m) => report.fail(SubIndication::CryptoConstraintsFailure, m),
        SigError::Format(m) => report.fail(SubIndication::FormatFailure, m),
        SigError::Crypto => {
            report.fail(SubIndication::SigCryptoFailure, "signature does not verify")
        }
    }
}
