//! Japan Post postal codes (郵便番号), bundled compactly.
//!
//! The data is Japan Post's 郵便番号データ (KEN_ALL), converted by
//! `scripts/postal/build.py` into `data/postal.bin` (a small header, then a DEFLATE
//! (zlib) stream of string tables and columns) and compiled into the crate. It is
//! decoded once, on first use, and looked up by binary search. See `docs/postal.md`
//! for the source, the licence note, the format and how to regenerate it.
//!
//! ```
//! let entries = madoguchi_postal::lookup("595-0025");
//! assert_eq!(entries[0].city, "泉大津市");
//! assert_eq!(madoguchi_postal::is_in_municipality("5950025", "272060"), Some(true));
//! ```

use std::sync::OnceLock;

/// The bundle compiled into the crate.
static BUNDLE_BYTES: &[u8] = include_bytes!("../data/postal.bin");

const MAGIC: &[u8; 8] = b"MDPOSTAL";
const FORMAT_VERSION: u16 = 1;

/// One 町域 of a postal code. A code may have several (one per town it covers).
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub struct PostalEntry {
    /// 7 ASCII digits.
    pub postal_code: String,
    /// 5-digit JIS X 0402 code (全国地方公共団体コード without its check digit).
    /// For a ward of a 政令指定都市 this is the ward's code (大阪市北区 = 27127).
    pub municipality: String,
    /// 都道府県, e.g. 大阪府.
    pub prefecture: String,
    /// 市区町村 as Japan Post writes it (郡 included, ward included), e.g. 大阪市北区, 猿島郡境町.
    pub city: String,
    /// 町域, notes removed; empty when Japan Post lists the code for the whole
    /// municipality (「以下に掲載がない場合」).
    pub town: String,
    /// Full-width katakana.
    pub prefecture_kana: String,
    /// Full-width katakana.
    pub city_kana: String,
    /// Full-width katakana; empty when `town` is.
    pub town_kana: String,
}

/// The decoded bundle.
struct Bundle {
    as_of: String,
    codes: Vec<u32>,
    municipalities: Vec<u16>,
    /// Per entry: prefecture, city, town, prefecture_kana, city_kana, town_kana.
    fields: Vec<[u32; 6]>,
    /// The string table: all strings concatenated; string `i` is
    /// `text[offsets[i]..offsets[i + 1]]` (one allocation instead of 166,000).
    text: String,
    offsets: Vec<u32>,
}

fn bundle() -> &'static Bundle {
    static BUNDLE: OnceLock<Bundle> = OnceLock::new();
    BUNDLE.get_or_init(|| {
        // The bundle is a build artefact checked by this crate's tests; a broken one is a
        // packaging error, not an input error.
        decode(BUNDLE_BYTES)
            .unwrap_or_else(|e| panic!("madoguchi-postal: corrupt data/postal.bin: {e}"))
    })
}

struct Reader<'a> {
    buf: &'a [u8],
    pos: usize,
}

impl<'a> Reader<'a> {
    fn take(&mut self, n: usize) -> Result<&'a [u8], String> {
        let end = self.pos.checked_add(n).filter(|&e| e <= self.buf.len());
        let end = end.ok_or_else(|| format!("truncated at byte {}", self.pos))?;
        let s = &self.buf[self.pos..end];
        self.pos = end;
        Ok(s)
    }
    fn u8(&mut self) -> Result<u8, String> {
        Ok(self.take(1)?[0])
    }
    fn u16(&mut self) -> Result<u16, String> {
        let b = self.take(2)?;
        Ok(u16::from_le_bytes([b[0], b[1]]))
    }
    fn u32(&mut self) -> Result<u32, String> {
        let b = self.take(4)?;
        Ok(u32::from_le_bytes([b[0], b[1], b[2], b[3]]))
    }
    fn varint(&mut self) -> Result<u32, String> {
        let mut v: u64 = 0;
        for shift in (0..35).step_by(7) {
            let b = self.u8()?;
            v |= u64::from(b & 0x7f) << shift;
            if b & 0x80 == 0 {
                return u32::try_from(v).map_err(|_| "varint overflow".to_string());
            }
        }
        Err("varint too long".into())
    }
}

/// Decodes a bundle written by `scripts/postal/build.py` (format version 1).
fn decode(bytes: &[u8]) -> Result<Bundle, String> {
    let mut h = Reader { buf: bytes, pos: 0 };
    if h.take(8)? != MAGIC {
        return Err("bad magic".into());
    }
    let version = h.u16()?;
    if version != FORMAT_VERSION {
        return Err(format!(
            "format version {version}, expected {FORMAT_VERSION}"
        ));
    }
    let as_of_len = usize::from(h.u8()?);
    let as_of = std::str::from_utf8(h.take(as_of_len)?)
        .map_err(|_| "as-of date is not UTF-8")?
        .to_owned();
    let _source_sha256 = h.take(32)?;
    let raw_len = h.u32()? as usize;
    let payload = miniz_oxide::inflate::decompress_to_vec_zlib_with_limit(&bytes[h.pos..], raw_len)
        .map_err(|e| format!("inflate: {e:?}"))?;
    if payload.len() != raw_len {
        return Err("decompressed length mismatch".into());
    }

    let mut r = Reader {
        buf: &payload,
        pos: 0,
    };
    let n_strings = r.u32()? as usize;
    let mut offsets = Vec::with_capacity(n_strings.min(payload.len()) + 1);
    offsets.push(0u32);
    let mut total: u32 = 0;
    for _ in 0..n_strings {
        total = total
            .checked_add(r.varint()?)
            .ok_or("string table too long")?;
        offsets.push(total);
    }
    let text =
        std::str::from_utf8(r.take(total as usize)?).map_err(|_| "string table is not UTF-8")?;
    if !offsets.iter().all(|&o| text.is_char_boundary(o as usize)) {
        return Err("string boundary inside a character".into());
    }
    let text = text.to_owned();
    let n = r.u32()? as usize;
    let cap = n.min(payload.len());
    let mut codes = Vec::with_capacity(cap);
    let mut prev: u32 = 0;
    for _ in 0..n {
        prev = prev.checked_add(r.varint()?).ok_or("code overflow")?;
        if prev > 9_999_999 {
            return Err("postal code out of range".into());
        }
        codes.push(prev);
    }
    let mut municipalities = Vec::with_capacity(cap);
    for _ in 0..n {
        municipalities.push(r.u16()?);
    }
    let mut fields = vec![[0u32; 6]; n];
    for col in 0..6 {
        for f in fields.iter_mut() {
            let i = r.varint()?;
            if i as usize >= n_strings {
                return Err("string index out of range".into());
            }
            f[col] = i;
        }
    }
    if r.pos != payload.len() {
        return Err("trailing bytes".into());
    }
    Ok(Bundle {
        as_of,
        codes,
        municipalities,
        fields,
        text,
        offsets,
    })
}

impl Bundle {
    fn entries(&self, code: u32) -> Vec<PostalEntry> {
        let start = self.codes.partition_point(|&c| c < code);
        let end = start + self.codes[start..].partition_point(|&c| c == code);
        (start..end).map(|i| self.entry(i)).collect()
    }

    fn municipalities_of(&self, code: u32) -> &[u16] {
        let start = self.codes.partition_point(|&c| c < code);
        let end = start + self.codes[start..].partition_point(|&c| c == code);
        &self.municipalities[start..end]
    }

    fn string(&self, i: u32) -> &str {
        let i = i as usize;
        &self.text[self.offsets[i] as usize..self.offsets[i + 1] as usize]
    }

    fn entry(&self, i: usize) -> PostalEntry {
        let s = |k: usize| self.string(self.fields[i][k]).to_owned();
        PostalEntry {
            postal_code: format!("{:07}", self.codes[i]),
            municipality: format!("{:05}", self.municipalities[i]),
            prefecture: s(0),
            city: s(1),
            town: s(2),
            prefecture_kana: s(3),
            city_kana: s(4),
            town_kana: s(5),
        }
    }
}

/// Normalizes a postal code to 7 ASCII digits.
///
/// Accepts `1234567`, `123-4567`, full-width digits (`１２３－４５６７`), the common
/// dash look-alikes (`‐ − – — ― － ー`) between the 3rd and 4th digit, a leading `〒`
/// and surrounding white space (including the ideographic space). Anything else is `None`.
pub fn normalize(postal_code: &str) -> Option<String> {
    let s = postal_code.trim();
    let s = s.strip_prefix('〒').unwrap_or(s).trim_start();
    let mut out = String::with_capacity(7);
    let mut dash_seen = false;
    for c in s.chars() {
        let digit = match c {
            '0'..='9' => Some(c),
            '０'..='９' => char::from_u32(u32::from(c) - u32::from('０') + u32::from('0')),
            _ => None,
        };
        match digit {
            Some(d) if out.len() < 7 => out.push(d),
            Some(_) => return None,
            None if is_dash(c) && out.len() == 3 && !dash_seen => dash_seen = true,
            None => return None,
        }
    }
    (out.len() == 7).then_some(out)
}

fn is_dash(c: char) -> bool {
    matches!(
        c,
        '-' | '\u{2010}'
            | '\u{2011}'
            | '\u{2012}'
            | '\u{2013}'
            | '\u{2014}'
            | '\u{2015}'
            | '\u{2212}'
            | '\u{FF0D}'
            | '\u{30FC}'
            | '\u{FF70}'
    )
}

fn parse_code(postal_code: &str) -> Option<u32> {
    normalize(postal_code)?.parse().ok()
}

/// All entries (町域) of a postal code, in Japan Post's order. Empty when the code is
/// unknown or malformed. See [`normalize`] for the accepted spellings.
pub fn lookup(postal_code: &str) -> Vec<PostalEntry> {
    match parse_code(postal_code) {
        Some(code) => bundle().entries(code),
        None => Vec::new(),
    }
}

/// The 20 政令指定都市 (designated cities): city-level code and name. Their wards have
/// codes of their own in the same prefecture's x1xx block, numbered after the city's
/// code (大阪市 27100: 北区 27127 …; 堺市 27140: 堺区 27141 …).
const DESIGNATED_CITIES: [(u16, &str); 20] = [
    (1100, "札幌市"),
    (4100, "仙台市"),
    (11100, "さいたま市"),
    (12100, "千葉市"),
    (14100, "横浜市"),
    (14130, "川崎市"),
    (14150, "相模原市"),
    (15100, "新潟市"),
    (22100, "静岡市"),
    (22130, "浜松市"),
    (23100, "名古屋市"),
    (26100, "京都市"),
    (27100, "大阪市"),
    (27140, "堺市"),
    (28100, "神戸市"),
    (33100, "岡山市"),
    (34100, "広島市"),
    (40100, "北九州市"),
    (40130, "福岡市"),
    (43100, "熊本市"),
];

/// The designated city a ward code belongs to: the nearest designated-city code below it
/// in the same prefecture's 100–199 block.
fn designated_city_of(ward: u16) -> Option<u16> {
    if !(100..200).contains(&(ward % 1000)) {
        return None;
    }
    DESIGNATED_CITIES
        .iter()
        .map(|&(c, _)| c)
        .filter(|&c| c / 1000 == ward / 1000 && c < ward)
        .max()
}

/// Whether `municipality` (an entry's 5-digit code) lies inside the tenant `tenant5`.
fn inside(municipality: u16, tenant5: u16) -> bool {
    municipality == tenant5 || designated_city_of(municipality) == Some(tenant5)
}

/// Whether the postal code lies in the tenant's municipality.
///
/// `tenant_code` is the 6-digit 全国地方公共団体コード (the check digit is not verified;
/// the first 5 digits are compared; a 5-digit code is accepted too). Rules:
///
/// * `None` when the postal code is unknown or malformed.
/// * `Some(true)` when **any** entry of the code has the tenant's municipality code, or
///   when the tenant is a 政令指定都市 (city-level code such as 大阪市 271004) and an
///   entry is one of its wards (大阪市北区 27127). A ward tenant (271276) contains only
///   its own ward; the city contains all of them.
/// * `Some(false)` otherwise, including when `tenant_code` is not 5 or 6 ASCII digits.
pub fn is_in_municipality(postal_code: &str, tenant_code: &str) -> Option<bool> {
    let code = parse_code(postal_code)?;
    let munis = bundle().municipalities_of(code);
    if munis.is_empty() {
        return None;
    }
    let t = tenant_code.trim();
    let tenant5 = match t.len() {
        5 | 6 if t.bytes().all(|b| b.is_ascii_digit()) => t[..5].parse::<u16>().ok(),
        _ => None,
    };
    let Some(tenant5) = tenant5 else {
        return Some(false);
    };
    Some(munis.iter().any(|&m| inside(m, tenant5)))
}

/// The date of the bundled data (`YYYY-MM-DD`), as given to the build script.
pub fn data_as_of() -> &'static str {
    &bundle().as_of
}

/// The number of entries (postal code × 町域) in the bundle.
pub fn entry_count() -> usize {
    bundle().codes.len()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn normalize_spellings() {
        assert_eq!(normalize("5950025").as_deref(), Some("5950025"));
        assert_eq!(normalize("595-0025").as_deref(), Some("5950025"));
        assert_eq!(normalize("５９５－００２５").as_deref(), Some("5950025"));
        assert_eq!(normalize("５９５ー００２５").as_deref(), Some("5950025"));
        assert_eq!(normalize(" 〒595-0025　").as_deref(), Some("5950025"));
        assert_eq!(normalize("〒 5950025").as_deref(), Some("5950025"));
        for bad in [
            "",
            "595002",
            "59500255",
            "5950-025",
            "595--0025",
            "-5950025",
            "595 0025",
            "５9５a００２５",
            "٥٩٥٠٠٢٥",
        ] {
            assert_eq!(normalize(bad), None, "{bad:?}");
        }
    }

    #[test]
    fn designated_city_rule() {
        assert_eq!(designated_city_of(27127), Some(27100)); // 大阪市北区
        assert_eq!(designated_city_of(27128), Some(27100)); // 大阪市中央区
        assert_eq!(designated_city_of(27141), Some(27140)); // 堺市堺区
        assert_eq!(designated_city_of(14131), Some(14130)); // 川崎市川崎区
        assert_eq!(designated_city_of(14118), Some(14100)); // 横浜市都筑区
        assert_eq!(designated_city_of(22140), Some(22130)); // 浜松市天竜区 (2024)
        assert_eq!(designated_city_of(27206), None); // 泉大津市
        assert_eq!(designated_city_of(13101), None); // 千代田区: 特別区 are municipalities
        assert!(inside(27127, 27100));
        assert!(!inside(27141, 27100));
        assert!(!inside(27100, 27127));
    }

    /// Every ward code in the bundled data (x1xx block) falls to a designated city whose
    /// name starts the ward's `city` (浜松市 22130 ⊃ 浜松市天竜区 22140, 大阪市 27100 ⊃
    /// 大阪市北区 27127, 堺市 27140 ⊃ 堺市堺区 27141), and every designated city has wards.
    #[test]
    fn every_ward_in_the_data_belongs_to_the_right_designated_city() {
        let b = bundle();
        let mut with_wards = std::collections::BTreeSet::new();
        for i in 0..b.codes.len() {
            let m = b.municipalities[i];
            // 東京都's 特別区 (13101–13123) are municipalities of their own.
            if !(100..200).contains(&(m % 1000)) || m / 1000 == 13 {
                assert_eq!(designated_city_of(m), None);
                continue;
            }
            let city = b.string(b.fields[i][1]);
            let owner = designated_city_of(m)
                .unwrap_or_else(|| panic!("{m:05} {city}: no designated city"));
            let name = DESIGNATED_CITIES.iter().find(|d| d.0 == owner).unwrap().1;
            assert!(city.starts_with(name), "{m:05} {city} assigned to {name}");
            with_wards.insert(owner);
        }
        assert_eq!(with_wards.len(), DESIGNATED_CITIES.len());
    }

    #[test]
    fn rejects_corrupt_bundles() {
        assert!(decode(b"").is_err());
        assert!(decode(&BUNDLE_BYTES[..BUNDLE_BYTES.len() / 2]).is_err());
        let mut b = BUNDLE_BYTES.to_vec();
        b[8] = 99;
        assert!(decode(&b).is_err());
    }

    /// The script's output for the synthetic KEN_ALL fixture decodes to the entries the
    /// script reports (`--dump-json`): the Python writer and the Rust reader agree.
    #[test]
    fn decodes_what_the_script_writes() {
        let root = concat!(env!("CARGO_MANIFEST_DIR"), "/../..");
        let dir = tempfile::tempdir().unwrap();
        let bin = dir.path().join("fixture.bin");
        let dump = dir.path().join("fixture.json");
        let status = std::process::Command::new("python3")
            .arg(format!("{root}/scripts/postal/build.py"))
            .arg("--ken-all")
            .arg(format!(
                "{root}/scripts/postal/fixtures/ken_all_sample.cp932.csv"
            ))
            .args(["--as-of", "2000-01-02", "--out"])
            .arg(&bin)
            .arg("--dump-json")
            .arg(&dump)
            .stdout(std::process::Stdio::null())
            .status()
            .expect("python3 runs");
        assert!(status.success());
        let b = decode(&std::fs::read(&bin).unwrap()).unwrap();
        assert_eq!(b.as_of, "2000-01-02");
        let dumped: Vec<serde_json::Value> =
            serde_json::from_slice(&std::fs::read(&dump).unwrap()).unwrap();
        assert_eq!(dumped.len(), b.codes.len());
        for (i, d) in dumped.iter().enumerate() {
            let e = b.entry(i);
            let got = serde_json::json!({
                "postal_code": e.postal_code, "municipality": e.municipality,
                "prefecture": e.prefecture, "city": e.city, "town": e.town,
                "prefecture_kana": e.prefecture_kana, "city_kana": e.city_kana, "town_kana": e.town_kana,
            });
            assert_eq!(&got, d);
        }
    }
}
