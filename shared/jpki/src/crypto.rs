//! RSA signature checks shared by signer, certificate and CRL verification.

use const_oid::ObjectIdentifier;
use der::{Decode, Encode};
use rsa::pkcs1::RsaPssParams;
use rsa::pkcs8::DecodePublicKey;
use rsa::traits::PublicKeyParts;
use rsa::{Pkcs1v15Sign, Pss, RsaPublicKey};
use sha2::{Digest, Sha256, Sha384, Sha512};
use spki::{AlgorithmIdentifierOwned, SubjectPublicKeyInfoOwned};

use crate::Policy;

pub(crate) const RSA_ENCRYPTION: ObjectIdentifier =
    ObjectIdentifier::new_unwrap("1.2.840.113549.1.1.1");
const MD5_WITH_RSA: ObjectIdentifier = ObjectIdentifier::new_unwrap("1.2.840.113549.1.1.4");
const SHA1_WITH_RSA: ObjectIdentifier = ObjectIdentifier::new_unwrap("1.2.840.113549.1.1.5");
const MGF1: ObjectIdentifier = ObjectIdentifier::new_unwrap("1.2.840.113549.1.1.8");
const RSASSA_PSS: ObjectIdentifier = ObjectIdentifier::new_unwrap("1.2.840.113549.1.1.10");
const SHA256_WITH_RSA: ObjectIdentifier = ObjectIdentifier::new_unwrap("1.2.840.113549.1.1.11");
const SHA384_WITH_RSA: ObjectIdentifier = ObjectIdentifier::new_unwrap("1.2.840.113549.1.1.12");
const SHA512_WITH_RSA: ObjectIdentifier = ObjectIdentifier::new_unwrap("1.2.840.113549.1.1.13");
const SHA1: ObjectIdentifier = ObjectIdentifier::new_unwrap("1.3.14.3.2.26");
const MD5: ObjectIdentifier = ObjectIdentifier::new_unwrap("1.2.840.113549.2.5");
const SHA256: ObjectIdentifier = ObjectIdentifier::new_unwrap("2.16.840.1.101.3.4.2.1");
const SHA384: ObjectIdentifier = ObjectIdentifier::new_unwrap("2.16.840.1.101.3.4.2.2");
const SHA512: ObjectIdentifier = ObjectIdentifier::new_unwrap("2.16.840.1.101.3.4.2.3");

/// Smallest modulus ever handed to the RSA code, whatever the policy says (keeps the
/// arithmetic away from degenerate keys).
const HARD_MIN_RSA_BITS: usize = 1024;

/// A digest the policy accepts (SHA-256 or stronger).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Hash {
    Sha256,
    Sha384,
    Sha512,
}

impl Hash {
    pub(crate) fn name(self) -> &'static str {
        match self {
            Hash::Sha256 => "SHA-256",
            Hash::Sha384 => "SHA-384",
            Hash::Sha512 => "SHA-512",
        }
    }

    pub(crate) fn digest(self, data: &[u8]) -> Vec<u8> {
        match self {
            Hash::Sha256 => Sha256::digest(data).to_vec(),
            Hash::Sha384 => Sha384::digest(data).to_vec(),
            Hash::Sha512 => Sha512::digest(data).to_vec(),
        }
    }

    fn len(self) -> usize {
        match self {
            Hash::Sha256 => 32,
            Hash::Sha384 => 48,
            Hash::Sha512 => 64,
        }
    }

    fn pkcs1(self) -> Pkcs1v15Sign {
        match self {
            Hash::Sha256 => Pkcs1v15Sign::new::<Sha256>(),
            Hash::Sha384 => Pkcs1v15Sign::new::<Sha384>(),
            Hash::Sha512 => Pkcs1v15Sign::new::<Sha512>(),
        }
    }

    fn pss(self, salt_len: usize) -> Pss {
        match self {
            Hash::Sha256 => Pss::new_with_salt::<Sha256>(salt_len),
            Hash::Sha384 => Pss::new_with_salt::<Sha384>(salt_len),
            Hash::Sha512 => Pss::new_with_salt::<Sha512>(salt_len),
        }
    }
}

/// Why a signature did not verify.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) enum SigError {
    /// The algorithm or key is refused by policy (weak hash, short key, PSS not allowed).
    Constraints(String),
    /// The algorithm or its parameters are not understood.
    Format(String),
    /// The signature value does not verify.
    Crypto,
}

/// Map a digest algorithm OID to an accepted hash, or say why not.
pub(crate) fn hash_from_oid(oid: &ObjectIdentifier) -> Result<Hash, SigError> {
    match *oid {
        SHA256 => Ok(Hash::Sha256),
        SHA384 => Ok(Hash::Sha384),
        SHA512 => Ok(Hash::Sha512),
        SHA1 => Err(SigError::Constraints("SHA-1 is refused by policy".into())),
        MD5 => Err(SigError::Constraints("MD5 is refused by policy".into())),
        other => Err(SigError::Format(format!(
            "unsupported digest algorithm {other}"
        ))),
    }
}

/// The signature scheme named by an AlgorithmIdentifier.
pub(crate) enum Scheme {
    Pkcs1(Hash),
    Pss { hash: Hash, salt_len: usize },
}

impl Scheme {
    pub(crate) fn name(&self) -> String {
        match self {
            Scheme::Pkcs1(h) => format!("RSASSA-PKCS1-v1_5 with {}", h.name()),
            Scheme::Pss { hash, salt_len } => {
                format!("RSASSA-PSS with {} (MGF1, salt {salt_len})", hash.name())
            }
        }
    }

    fn hash(&self) -> Hash {
        match self {
            Scheme::Pkcs1(h) | Scheme::Pss { hash: h, .. } => *h,
        }
    }
}

/// Resolve a signature algorithm. `digest_hint` is the SignerInfo's digestAlgorithm, needed
/// when the algorithm is plain `rsaEncryption` (as CMS writes it).
pub(crate) fn scheme(
    alg: &AlgorithmIdentifierOwned,
    digest_hint: Option<Hash>,
    policy: &Policy,
) -> Result<Scheme, SigError> {
    // RFC 4055 5: PKCS#1 v1.5 identifiers carry NULL parameters (absent is tolerated).
    if matches!(
        alg.oid,
        SHA256_WITH_RSA | SHA384_WITH_RSA | SHA512_WITH_RSA | RSA_ENCRYPTION
    ) && !alg.parameters.as_ref().is_none_or(|p| p.is_null())
    {
        return Err(SigError::Format(format!(
            "parameters of {} must be NULL or absent",
            alg.oid
        )));
    }
    match alg.oid {
        SHA256_WITH_RSA => Ok(Scheme::Pkcs1(Hash::Sha256)),
        SHA384_WITH_RSA => Ok(Scheme::Pkcs1(Hash::Sha384)),
        SHA512_WITH_RSA => Ok(Scheme::Pkcs1(Hash::Sha512)),
        SHA1_WITH_RSA => Err(SigError::Constraints(
            "sha1WithRSAEncryption is refused by policy".into(),
        )),
        MD5_WITH_RSA => Err(SigError::Constraints(
            "md5WithRSAEncryption is refused by policy".into(),
        )),
        RSA_ENCRYPTION => digest_hint
            .map(Scheme::Pkcs1)
            .ok_or_else(|| SigError::Format("rsaEncryption without a digest algorithm".into())),
        RSASSA_PSS => {
            if !policy.allow_pss {
                return Err(SigError::Constraints(
                    "RSASSA-PSS is not allowed by policy".into(),
                ));
            }
            let params = alg
                .parameters
                .as_ref()
                .ok_or_else(|| SigError::Format("RSASSA-PSS without parameters".into()))?
                .to_der()
                .map_err(|e| SigError::Format(format!("RSASSA-PSS parameters: {e}")))?;
            let params = RsaPssParams::try_from(params.as_slice())
                .map_err(|e| SigError::Format(format!("RSASSA-PSS parameters: {e}")))?;
            let hash = hash_from_oid(&params.hash.oid)?;
            // RFC 4055 2.1: hash identifiers with NULL or absent parameters.
            let plain = |p: Option<der::AnyRef<'_>>| p.is_none_or(|p| p.is_null());
            if !plain(params.hash.parameters)
                || !plain(params.mask_gen.parameters.and_then(|h| h.parameters))
            {
                return Err(SigError::Format(
                    "RSASSA-PSS hash parameters must be NULL or absent".into(),
                ));
            }
            if params.mask_gen.oid != MGF1 {
                return Err(SigError::Format(
                    "RSASSA-PSS mask generation is not MGF1".into(),
                ));
            }
            let mgf_hash = params
                .mask_gen
                .parameters
                .as_ref()
                .map(|p| hash_from_oid(&p.oid))
                .transpose()?;
            if mgf_hash != Some(hash) {
                return Err(SigError::Format(
                    "RSASSA-PSS MGF1 hash differs from the hash".into(),
                ));
            }
            if let Some(hint) = digest_hint
                && hint != hash
            {
                return Err(SigError::Format(
                    "RSASSA-PSS hash differs from the digest algorithm".into(),
                ));
            }
            Ok(Scheme::Pss {
                hash,
                salt_len: usize::from(params.salt_len),
            })
        }
        other => Err(SigError::Format(format!(
            "unsupported signature algorithm {other}"
        ))),
    }
}

/// The RSA public key of a certificate, checked against the policy's minimum size.
pub(crate) fn rsa_key(
    spki: &SubjectPublicKeyInfoOwned,
    policy: &Policy,
) -> Result<RsaPublicKey, SigError> {
    if spki.algorithm.oid != RSA_ENCRYPTION {
        return Err(SigError::Constraints(format!(
            "public key algorithm {} is not RSA",
            spki.algorithm.oid
        )));
    }
    let der = spki
        .to_der()
        .map_err(|e| SigError::Format(format!("public key: {e}")))?;
    let key = RsaPublicKey::from_public_key_der(&der)
        .map_err(|e| SigError::Format(format!("RSA public key: {e}")))?;
    let bits = key.n().bits();
    if bits < policy.min_rsa_bits.max(HARD_MIN_RSA_BITS) {
        return Err(SigError::Constraints(format!(
            "RSA key of {bits} bits is shorter than {} bits",
            policy.min_rsa_bits.max(HARD_MIN_RSA_BITS)
        )));
    }
    Ok(key)
}

/// Verify `signature` over `message` with `spki` under `alg`.
pub(crate) fn verify_signature(
    spki: &SubjectPublicKeyInfoOwned,
    alg: &AlgorithmIdentifierOwned,
    digest_hint: Option<Hash>,
    message: &[u8],
    signature: &[u8],
    policy: &Policy,
) -> Result<Scheme, SigError> {
    let scheme = scheme(alg, digest_hint, policy)?;
    let key = rsa_key(spki, policy)?;
    let hashed = scheme.hash().digest(message);
    let ok = match &scheme {
        Scheme::Pkcs1(h) => key.verify(h.pkcs1(), &hashed, signature).is_ok(),
        Scheme::Pss { hash, salt_len } => {
            // RFC 8017 9.1.2: emLen >= hLen + sLen + 2; refuse before the RSA code sees it.
            let em_len = key.size();
            if em_len < hash.len() + salt_len + 2 {
                false
            } else {
                key.verify(hash.pss(*salt_len), &hashed, signature).is_ok()
            }
        }
    };
    if ok {
        Ok(scheme)
    } else {
        Err(SigError::Crypto)
    }
}

/// Verify a bare RSA signature over `message` with SHA-256, as a card's authentication key
/// makes one for a login challenge (no algorithm identifier comes with it): PKCS#1 v1.5
/// first, then PSS (MGF1-SHA-256) with a salt of the hash length, then the largest salt
/// (OpenSSL's default when signing). A PSS signature under a policy without PSS, and a
/// PKCS#1 v1.5 signature over a SHA-1 digest, are refused as constraints, not as bad values.
pub(crate) fn verify_bare_sha256(
    key: &RsaPublicKey,
    message: &[u8],
    signature: &[u8],
    policy: &Policy,
) -> Result<Scheme, SigError> {
    let hash = Hash::Sha256;
    let hashed = hash.digest(message);
    if key.verify(hash.pkcs1(), &hashed, signature).is_ok() {
        return Ok(Scheme::Pkcs1(hash));
    }
    // RFC 8017 9.1: emLen = ceil((modBits - 1) / 8), and emLen >= hLen + sLen + 2.
    let em_len = key.n().bits().saturating_sub(1).div_ceil(8);
    let max_salt = em_len.saturating_sub(hash.len() + 2);
    for salt_len in [hash.len(), max_salt] {
        if salt_len > max_salt {
            continue;
        }
        if key.verify(hash.pss(salt_len), &hashed, signature).is_ok() {
            if !policy.allow_pss {
                return Err(SigError::Constraints(
                    "RSASSA-PSS is not allowed by policy".into(),
                ));
            }
            return Ok(Scheme::Pss { hash, salt_len });
        }
    }
    let sha1 = <sha1::Sha1 as Digest>::digest(message);
    if key
        .verify(Pkcs1v15Sign::new::<sha1::Sha1>(), &sha1, signature)
        .is_ok()
    {
        return Err(SigError::Constraints("SHA-1 is refused by policy".into()));
    }
    Err(SigError::Crypto)
}

/// Parse a DER value, mapping the error to text.
pub(crate) fn parse<'a, T: Decode<'a>>(der: &'a [u8], what: &str) -> Result<T, String> {
    T::from_der(der).map_err(|e| format!("{what}: {e}"))
}
