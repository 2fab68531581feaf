//! 基本4情報 from a JPKI signing certificate, and the canonical payload an application signs.

use const_oid::ObjectIdentifier;
use der::{Decode, Tag, Tagged};
use serde::{Deserialize, Serialize};
use x509_cert::Certificate;
use x509_cert::ext::pkix::SubjectAltName;
use x509_cert::ext::pkix::name::GeneralName;

const SUBJECT_ALT_NAME: ObjectIdentifier = ObjectIdentifier::new_unwrap("2.5.29.17");

/// JPKI 署名用電子証明書 subjectAltName otherName type ids (arc 1.2.392.200149.8.5.5).
///
/// | OID | content |
/// |---|---|
/// | 1.2.392.200149.8.5.5.1 | 氏名 (name) |
/// | 1.2.392.200149.8.5.5.2 | 氏名代替文字の使用位置情報 (positions of substitute characters in the name) |
/// | 1.2.392.200149.8.5.5.3 | 性別 (gender: 1 男, 2 女, 3 不明) |
/// | 1.2.392.200149.8.5.5.4 | 生年月日 (birth date, `EYYYYMMDD`, E = era code, then the Gregorian date) |
/// | 1.2.392.200149.8.5.5.5 | 住所 (address) |
/// | 1.2.392.200149.8.5.5.6 | 住所代替文字の使用位置情報 (positions of substitute characters in the address) |
///
/// Source: 地方公共団体情報システム機構 (J-LIS), 「公的個人認証サービス プロファイル仕様書」
/// <https://www.j-lis.go.jp/file/13_profile_genkou.pdf> (the primary document; not read
/// directly here), as quoted by "マイナンバーカード（個人番号カード）に含まれている個人情報・
/// 電子証明書の詳細", Japanese PKI Blog <https://pki.world-tls.com/kojinbango-card/>, and
/// matching an `openssl x509 -ext subjectAltName` dump of a real 署名用電子証明書 published in
/// "マイナンバーカードに含まれる2つの電子証明書について調べてみた" (2022). See docs/esign.md.
pub mod oid {
    use const_oid::ObjectIdentifier;
    /// 氏名.
    pub const NAME: ObjectIdentifier = ObjectIdentifier::new_unwrap("1.2.392.200149.8.5.5.1");
    /// 氏名代替文字の使用位置情報.
    pub const NAME_ALT_POSITIONS: ObjectIdentifier =
        ObjectIdentifier::new_unwrap("1.2.392.200149.8.5.5.2");
    /// 性別.
    pub const GENDER: ObjectIdentifier = ObjectIdentifier::new_unwrap("1.2.392.200149.8.5.5.3");
    /// 生年月日.
    pub const BIRTH_DATE: ObjectIdentifier = ObjectIdentifier::new_unwrap("1.2.392.200149.8.5.5.4");
    /// 住所.
    pub const ADDRESS: ObjectIdentifier = ObjectIdentifier::new_unwrap("1.2.392.200149.8.5.5.5");
    /// 住所代替文字の使用位置情報.
    pub const ADDRESS_ALT_POSITIONS: ObjectIdentifier =
        ObjectIdentifier::new_unwrap("1.2.392.200149.8.5.5.6");
}

/// 基本4情報 as written in the certificate, unchanged (no normalisation, no era conversion).
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct BasicFour {
    /// 氏名 (family and given name separated by an ideographic space in real certificates).
    pub name: Option<String>,
    /// 氏名代替文字の使用位置情報: one digit per character, `1` where a character was replaced.
    pub name_alt: Option<String>,
    /// 生年月日, `EYYYYMMDD` (E: 1 明治 2 大正 3 昭和 4 平成 5 令和 0 不明).
    pub birth_date: Option<String>,
    /// 性別: `1` 男, `2` 女, `3` 不明.
    pub gender: Option<String>,
    /// 住所.
    pub address: Option<String>,
    /// 住所代替文字の使用位置情報.
    pub address_alt: Option<String>,
}

/// Read 基本4情報 from a certificate's subjectAltName otherName entries. `None` when the
/// certificate does not parse or carries none of the JPKI entries (e.g. a 利用者証明用
/// certificate). Never panics.
pub fn basic_four(cert_der: &[u8]) -> Option<BasicFour> {
    let cert = Certificate::from_der(cert_der).ok()?;
    basic_four_of(&cert)
}

pub(crate) fn basic_four_of(cert: &Certificate) -> Option<BasicFour> {
    let ext = cert
        .tbs_certificate
        .extensions
        .as_ref()?
        .iter()
        .find(|e| e.extn_id == SUBJECT_ALT_NAME)?;
    let san = SubjectAltName::from_der(ext.extn_value.as_bytes()).ok()?;
    let mut out = BasicFour::default();
    let mut found = false;
    for name in &san.0 {
        let GeneralName::OtherName(other) = name else {
            continue;
        };
        let slot = match other.type_id {
            oid::NAME => &mut out.name,
            oid::NAME_ALT_POSITIONS => &mut out.name_alt,
            oid::GENDER => &mut out.gender,
            oid::BIRTH_DATE => &mut out.birth_date,
            oid::ADDRESS => &mut out.address,
            oid::ADDRESS_ALT_POSITIONS => &mut out.address_alt,
            _ => continue,
        };
        let text = match other.value.tag() {
            Tag::Utf8String | Tag::PrintableString | Tag::Ia5String | Tag::VisibleString => {
                std::str::from_utf8(other.value.value()).ok()
            }
            _ => None,
        };
        if let Some(text) = text {
            *slot = Some(text.to_owned());
            found = true;
        }
    }
    found.then_some(out)
}

/// The bytes an application's signature covers: the RFC 8785 (JCS) canonical JSON of
///
/// ```json
/// {"answers": <answers>, "attachments": [{"id": "<id>", "sha256": "<hex>"}, ...],
///  "form": "<form_slug>", "version": <form_version>}
/// ```
///
/// with attachments sorted by id then digest, digests lowercased. See docs/esign.md.
pub fn canonical_payload(
    form_slug: &str,
    form_version: u64,
    answers: &serde_json::Value,
    attachments_sha256: &[(String, String)],
) -> Vec<u8> {
    let mut attachments: Vec<(&str, String)> = attachments_sha256
        .iter()
        .map(|(id, digest)| (id.as_str(), digest.to_ascii_lowercase()))
        .collect();
    attachments.sort();
    let attachments: Vec<serde_json::Value> = attachments
        .into_iter()
        .map(|(id, sha256)| serde_json::json!({ "id": id, "sha256": sha256 }))
        .collect();
    let doc = serde_json::json!({
        "form": form_slug,
        "version": form_version,
        "answers": answers,
        "attachments": attachments,
    });
    // A serde_json::Value holds no NaN or infinity, the only values JCS cannot write.
    serde_json_canonicalizer::to_vec(&doc).expect("a serde_json::Value is always canonicalizable")
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn canonical_payload_is_rfc8785() {
        let answers = serde_json::json!({
            "氏名": "署名　花子",
            "b": [1, 2.5, 1e21, true, null],
            "a": {"z": "\u{0007}\"\\/", "y": 100},
        });
        let bytes = canonical_payload(
            "tenkyo",
            3,
            &answers,
            &[("b".into(), "ABCDEF".into()), ("a".into(), "0123".into())],
        );
        let expected = "{\"answers\":{\"a\":{\"y\":100,\"z\":\"\\u0007\\\"\\\\/\"},\"b\":[1,2.5,1e+21,true,null],\"氏名\":\"署名　花子\"},\"attachments\":[{\"id\":\"a\",\"sha256\":\"0123\"},{\"id\":\"b\",\"sha256\":\"abcdef\"}],\"form\":\"tenkyo\",\"version\":3}";
        assert_eq!(String::from_utf8(bytes).unwrap(), expected);
    }

    #[test]
    fn canonical_payload_ignores_key_order_and_attachment_order() {
        let a: serde_json::Value = serde_json::from_str(r#"{"x":1,"y":{"b":2,"a":1}}"#).unwrap();
        let b: serde_json::Value = serde_json::from_str(r#"{"y":{"a":1,"b":2},"x":1.0}"#).unwrap();
        let at1 = [
            ("1".to_string(), "aa".to_string()),
            ("2".to_string(), "bb".to_string()),
        ];
        let at2 = [
            ("2".to_string(), "BB".to_string()),
            ("1".to_string(), "aa".to_string()),
        ];
        assert_eq!(
            canonical_payload("f", 1, &a, &at1),
            canonical_payload("f", 1, &b, &at2)
        );
    }

    #[test]
    fn basic_four_of_garbage_is_none() {
        assert_eq!(basic_four(b""), None);
        assert_eq!(basic_four(&[0x30, 0x03, 0x02, 0x01, 0x00]), None);
    }
}
