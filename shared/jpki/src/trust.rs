//! Trust anchors and certificate revocation lists.

use std::collections::HashMap;

use der::{Decode, DecodePem, Encode};
use jiff::Timestamp;
use spki::AlgorithmIdentifierOwned;
use x509_cert::Certificate;
use x509_cert::crl::CertificateList;
use x509_cert::name::Name;
use x509_cert::time::Time;

use crate::crypto::{self, SigError};
use crate::{JpkiError, Policy};

/// The certificates a signature chain must end in: for JPKI, the 署名用認証局 (signing CA)
/// certificates published by J-LIS. They are configured per environment (a PEM bundle or
/// DER files loaded by the caller) and never compiled into the code.
#[derive(Debug, Clone, Default)]
pub struct TrustAnchors {
    pub(crate) certs: Vec<Certificate>,
}

impl TrustAnchors {
    /// Anchors from a PEM bundle (`-----BEGIN CERTIFICATE-----` blocks).
    ///
    /// Each block is decoded on its own (`Certificate::from_pem`): x509-cert 0.2.5's
    /// `load_pem_chain` underflows on input that is empty after its trailing line breaks (found
    /// by the `jpki` fuzz target), and a bundle comes from configuration, not from us.
    pub fn from_pem_bundle(pem: &[u8]) -> Result<Self, JpkiError> {
        const BEGIN: &[u8] = b"-----BEGIN CERTIFICATE-----";
        const END: &[u8] = b"-----END CERTIFICATE-----";
        let find = |hay: &[u8], needle: &[u8]| hay.windows(needle.len()).position(|w| w == needle);
        let mut certs = Vec::new();
        let mut rest = pem;
        while let Some(start) = find(rest, BEGIN) {
            let block = &rest[start..];
            let end = find(block, END)
                .ok_or_else(|| JpkiError::Certificate("PEM bundle: unterminated block".into()))?
                + END.len();
            let cert = Certificate::from_pem(&block[..end])
                .map_err(|e| JpkiError::Certificate(format!("PEM bundle: {e}")))?;
            certs.push(cert);
            rest = &block[end..];
        }
        if certs.is_empty() {
            return Err(JpkiError::Certificate(
                "PEM bundle holds no certificate".into(),
            ));
        }
        Ok(Self { certs })
    }

    /// Anchors from DER certificates.
    pub fn from_der(ders: Vec<Vec<u8>>) -> Result<Self, JpkiError> {
        let certs = ders
            .iter()
            .map(|d| Certificate::from_der(d).map_err(|e| JpkiError::Certificate(e.to_string())))
            .collect::<Result<Vec<_>, _>>()?;
        Ok(Self { certs })
    }

    /// How many anchors there are.
    pub fn len(&self) -> usize {
        self.certs.len()
    }

    /// Whether there is none.
    pub fn is_empty(&self) -> bool {
        self.certs.is_empty()
    }
}

/// Convert an X.509 time to a timestamp.
pub(crate) fn ts(t: Time) -> Timestamp {
    let secs = i64::try_from(t.to_unix_duration().as_secs()).unwrap_or(i64::MAX);
    Timestamp::from_second(secs).unwrap_or(Timestamp::MAX)
}

/// A serial number as compared: the unsigned magnitude without leading zero bytes.
pub(crate) fn normalize_serial(serial: &[u8]) -> &[u8] {
    let start = serial.iter().position(|b| *b != 0).unwrap_or(serial.len());
    &serial[start..]
}

/// A parsed certificate revocation list. Lookups are a binary search over the serials,
/// sorted once when the list is built.
#[derive(Debug, Clone)]
pub struct Crl {
    issuer_der: Vec<u8>,
    issuer: String,
    this_update: Timestamp,
    next_update: Option<Timestamp>,
    /// (normalized serial, revocation time), sorted by serial.
    entries: Vec<(Box<[u8]>, Timestamp)>,
    tbs_der: Vec<u8>,
    signature_algorithm: Option<AlgorithmIdentifierOwned>,
    signature: Vec<u8>,
}

impl Crl {
    /// Parse a DER CRL (its signature is checked when it joins a [`CrlSet`]).
    pub fn parse(der: &[u8]) -> Result<Self, JpkiError> {
        let list = CertificateList::from_der(der).map_err(|e| JpkiError::Crl(e.to_string()))?;
        // RFC 5280 5.1.1.2: the unsigned copy must equal the signed one.
        if list.signature_algorithm != list.tbs_cert_list.signature {
            return Err(JpkiError::Crl(
                "signatureAlgorithm differs from the signed one".into(),
            ));
        }
        let tbs_der = list
            .tbs_cert_list
            .to_der()
            .map_err(|e| JpkiError::Crl(e.to_string()))?;
        let issuer_der = list
            .tbs_cert_list
            .issuer
            .to_der()
            .map_err(|e| JpkiError::Crl(e.to_string()))?;
        let signature = list
            .signature
            .as_bytes()
            .ok_or_else(|| JpkiError::Crl("signature has unused bits".into()))?
            .to_vec();
        let entries = list
            .tbs_cert_list
            .revoked_certificates
            .unwrap_or_default()
            .into_iter()
            .map(|r| {
                (
                    normalize_serial(r.serial_number.as_bytes()).into(),
                    ts(r.revocation_date),
                )
            });
        Ok(Self {
            issuer: list.tbs_cert_list.issuer.to_string(),
            issuer_der,
            this_update: ts(list.tbs_cert_list.this_update),
            next_update: list.tbs_cert_list.next_update.map(ts),
            entries: sorted(entries),
            tbs_der,
            signature_algorithm: Some(list.signature_algorithm),
            signature,
        })
    }

    /// An unsigned CRL built from a list, for tests and measurements. It answers
    /// [`Crl::is_revoked`] like a parsed one but can never join a [`CrlSet`] (it carries no
    /// signature). `issuer` is an RFC 4514 name such as `CN=Test CA,C=JP`.
    pub fn from_entries(
        issuer: &str,
        this_update: Timestamp,
        next_update: Option<Timestamp>,
        entries: impl IntoIterator<Item = (Vec<u8>, Timestamp)>,
    ) -> Result<Self, JpkiError> {
        let name: Name = issuer
            .parse()
            .map_err(|e| JpkiError::Crl(format!("issuer: {e}")))?;
        let issuer_der = name.to_der().map_err(|e| JpkiError::Crl(e.to_string()))?;
        let entries = entries
            .into_iter()
            .map(|(s, t)| (normalize_serial(&s).into(), t));
        Ok(Self {
            issuer: name.to_string(),
            issuer_der,
            this_update,
            next_update,
            entries: sorted(entries),
            tbs_der: Vec::new(),
            signature_algorithm: None,
            signature: Vec::new(),
        })
    }

    /// The issuer's distinguished name (RFC 4514).
    pub fn issuer(&self) -> &str {
        &self.issuer
    }

    /// thisUpdate.
    pub fn this_update(&self) -> Timestamp {
        self.this_update
    }

    /// nextUpdate (a CRL without one is never considered fresh).
    pub fn next_update(&self) -> Option<Timestamp> {
        self.next_update
    }

    /// How many serials are listed.
    pub fn len(&self) -> usize {
        self.entries.len()
    }

    /// Whether no serial is listed.
    pub fn is_empty(&self) -> bool {
        self.entries.is_empty()
    }

    /// The revocation time when `serial` (big-endian bytes; leading zeros ignored) is listed.
    pub fn is_revoked(&self, serial: &[u8]) -> Option<Timestamp> {
        let key = normalize_serial(serial);
        self.entries
            .binary_search_by(|(s, _)| s.as_ref().cmp(key))
            .ok()
            .and_then(|i| self.entries.get(i))
            .map(|(_, t)| *t)
    }

    /// Whether the CRL may be used at `now`: thisUpdate ≤ now ≤ nextUpdate.
    pub fn is_fresh_at(&self, now: Timestamp) -> bool {
        self.this_update <= now && self.next_update.is_some_and(|n| now <= n)
    }
}

fn sorted(entries: impl Iterator<Item = (Box<[u8]>, Timestamp)>) -> Vec<(Box<[u8]>, Timestamp)> {
    let mut v: Vec<_> = entries.collect();
    // Shorter magnitude = smaller number; compare as bytes within one length. The order only
    // has to be consistent with the binary search, which uses the same comparison.
    v.sort_by(|a, b| a.0.cmp(&b.0));
    v.dedup_by(|a, b| a.0 == b.0);
    v
}

#[derive(Debug, Clone)]
struct VerifiedCrl {
    crl: Crl,
    /// DER of the SubjectPublicKeyInfo that verified the CRL's signature.
    issuer_spki: Vec<u8>,
}

/// The CRLs available now, each verified against its issuer's certificate when added, keyed
/// by issuer name. Freshness (nextUpdate ≥ now) is checked at each verification, since a set
/// is cached across time.
#[derive(Debug, Clone, Default)]
pub struct CrlSet {
    by_issuer: HashMap<Vec<u8>, VerifiedCrl>,
}

impl CrlSet {
    /// An empty set (every revocation check then answers TRY_LATER).
    pub fn new() -> Self {
        Self::default()
    }

    /// Add a CRL after checking its signature with the certificate among `issuers` whose
    /// subject is the CRL's issuer. A CRL replaces the one held for the same issuer unless
    /// the held one is newer (later thisUpdate).
    pub fn insert(
        &mut self,
        crl: Crl,
        issuers: &TrustAnchors,
        policy: &Policy,
    ) -> Result<(), JpkiError> {
        let alg = crl
            .signature_algorithm
            .as_ref()
            .ok_or_else(|| JpkiError::CrlSignature("CRL carries no signature".into()))?;
        let mut last = String::from("no certificate of the CRL's issuer among the issuers");
        let mut verified_by = None;
        for cert in &issuers.certs {
            let subject = cert.tbs_certificate.subject.to_der().unwrap_or_default();
            if subject != crl.issuer_der {
                continue;
            }
            let spki = &cert.tbs_certificate.subject_public_key_info;
            match crypto::verify_signature(spki, alg, None, &crl.tbs_der, &crl.signature, policy) {
                Ok(_) => {
                    verified_by = Some(spki.to_der().unwrap_or_default());
                    break;
                }
                Err(SigError::Crypto) => last = "CRL signature does not verify".into(),
                Err(SigError::Constraints(m) | SigError::Format(m)) => last = m,
            }
        }
        let issuer_spki = verified_by.ok_or(JpkiError::CrlSignature(last))?;
        if let Some(held) = self.by_issuer.get(&crl.issuer_der)
            && held.crl.this_update > crl.this_update
        {
            return Ok(());
        }
        self.by_issuer
            .insert(crl.issuer_der.clone(), VerifiedCrl { crl, issuer_spki });
        Ok(())
    }

    /// How many issuers have a CRL.
    pub fn len(&self) -> usize {
        self.by_issuer.len()
    }

    /// Whether no CRL is held.
    pub fn is_empty(&self) -> bool {
        self.by_issuer.is_empty()
    }

    /// The CRL held for `issuer_der` that was verified with `issuer_spki_der`.
    pub(crate) fn get(&self, issuer_der: &[u8], issuer_spki_der: &[u8]) -> Option<&Crl> {
        self.by_issuer
            .get(issuer_der)
            .filter(|v| v.issuer_spki == issuer_spki_der)
            .map(|v| &v.crl)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn million_entry_crl_lookup() {
        let t0 = Timestamp::from_second(1_700_000_000).unwrap();
        // Serials like JPKI's: a few bytes, here every other number from 2^24 so that the
        // odd neighbours are absent.
        let serial = |i: u64| (0x0100_0000u64 + 2 * i).to_be_bytes().to_vec();
        let entries = (0..1_000_000u64).map(|i| (serial(i), t0));
        let built = std::time::Instant::now();
        let crl = Crl::from_entries("CN=Test CA,C=JP", t0, None, entries).unwrap();
        let built = built.elapsed();
        assert_eq!(crl.len(), 1_000_000);

        let probes = 100_000u64;
        let started = std::time::Instant::now();
        let mut hits = 0;
        for i in 0..probes {
            let n = i * 10;
            if crl.is_revoked(&serial(n)).is_some() {
                hits += 1;
            }
            assert_eq!(
                crl.is_revoked(&(0x0100_0001u64 + 2 * n).to_be_bytes()),
                None
            );
        }
        let per_lookup = started.elapsed() / (2 * probes as u32);
        assert_eq!(hits, probes);
        // Leading zero bytes and a sign byte do not change the answer.
        assert_eq!(crl.is_revoked(&[0, 0, 0x01, 0, 0, 0]), Some(t0));
        assert_eq!(crl.is_revoked(&[0x01, 0, 0, 0]), Some(t0));
        assert_eq!(crl.is_revoked(&[]), None);
        println!("1,000,000-entry CRL: built in {built:?}, lookup {per_lookup:?} each");
    }

    #[test]
    fn pem_bundles_without_certificates_are_errors_not_panics() {
        // The first input is what the fuzz target found (an underflow in x509-cert's chain
        // loader on line breaks alone).
        for input in [
            &b"\n"[..],
            b"",
            b"\r\n\r\n",
            b"-----BEGIN CERTIFICATE-----",
            b"-----BEGIN CERTIFICATE-----\nAAAA\n-----END CERTIFICATE-----\n",
            b"garbage",
        ] {
            assert!(TrustAnchors::from_pem_bundle(input).is_err(), "{input:?}");
        }
    }

    #[test]
    fn serial_normalisation() {
        assert_eq!(normalize_serial(&[0, 0x80, 1]), &[0x80, 1]);
        assert_eq!(normalize_serial(&[0, 0]), &[] as &[u8]);
    }
}
