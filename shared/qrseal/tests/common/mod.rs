//! Realistic households for tests and the benchmark (invented people, real-looking data).
#![allow(dead_code)]

use jiff::Timestamp;
use jiff::civil::date;
use madoguchi_domain::tenant::TenantId;
use madoguchi_qrseal::{Address, Person, PreApplication, Procedure, Relationship, Sex};

pub fn tenant() -> TenantId {
    TenantId::parse("131016").unwrap()
}

pub fn other_tenant() -> TenantId {
    TenantId::parse("272060").unwrap()
}

/// 2026-04-01 09:00 JST: the move date below lies within the allowed window.
pub fn issued_at() -> Timestamp {
    "2026-04-01T00:00:00Z".parse().unwrap()
}

#[allow(clippy::too_many_arguments)]
fn person(
    family: &str,
    given: &str,
    family_kana: &str,
    given_kana: &str,
    birth: (i16, i8, i8),
    sex: Sex,
    relationship: Relationship,
) -> Person {
    Person {
        family_name: family.into(),
        given_name: given.into(),
        family_kana: family_kana.into(),
        given_kana: given_kana.into(),
        birth_date: date(birth.0, birth.1, birth.2),
        sex,
        relationship,
        nationality: None,
    }
}

/// The people of a large household, householder first, in the order they join.
pub fn people() -> Vec<Person> {
    vec![
        person(
            "髙橋",
            "健太郎",
            "タカハシ",
            "ケンタロウ",
            (1982, 7, 14),
            Sex::Male,
            Relationship::Householder,
        ),
        person(
            "髙橋",
            "美由紀",
            "タカハシ",
            "ミユキ",
            (1984, 11, 3),
            Sex::Female,
            Relationship::Wife,
        ),
        person(
            "髙橋",
            "蒼",
            "タカハシ",
            "アオイ",
            (2019, 5, 20),
            Sex::Male,
            Relationship::Child,
        ),
        person(
            "髙橋",
            "陽菜",
            "タカハシ",
            "ヒナ",
            (2021, 9, 1),
            Sex::Female,
            Relationship::Child,
        ),
        person(
            "髙橋",
            "茂",
            "タカハシ",
            "シゲル",
            (1955, 2, 28),
            Sex::Male,
            Relationship::Father,
        ),
        person(
            "髙橋",
            "和子",
            "タカハシ",
            "カズコ",
            (1957, 12, 24),
            Sex::Female,
            Relationship::Mother,
        ),
        person(
            "佐々木",
            "千代",
            "ササキ",
            "チヨ",
            (1933, 3, 8),
            Sex::Female,
            Relationship::Other("妻の祖母".into()),
        ),
        Person {
            nationality: Some("VN".into()),
            ..person(
                "グエン",
                "ティ　ラン",
                "グエン",
                "ティ　ラン",
                (1999, 6, 30),
                Sex::Female,
                Relationship::Cohabitant,
            )
        },
        person(
            "髙橋",
            "大翔",
            "タカハシ",
            "ヒロト",
            (2024, 1, 15),
            Sex::Male,
            Relationship::Child,
        ),
        person(
            "髙橋",
            "結衣",
            "タカハシ",
            "ユイ",
            (2025, 8, 8),
            Sex::Female,
            Relationship::Child,
        ),
    ]
}

/// A 転入 of the first `n` people; beyond 10, unrelated 同居人 with distinct names (as in a
/// shared house), so that larger households do not compress unrealistically well.
pub fn household(n: usize) -> PreApplication {
    let mut members: Vec<Person> = people().into_iter().take(n).collect();
    // Names drawn from common name kanji and kana syllables by a fixed LCG: distinct enough
    // that DEFLATE finds little to share, which makes the "largest household" conservative.
    const KANJI: &str = "佐藤鈴木高橋田中渡辺伊山本中村小林加吉松井上清水森池藤原石川前岡長谷坂野村太郎健一美恵子智大輔直樹真由翔悠斗七海拓陽菜結衣蒼";
    const KANA: &str = "アイウエオカキクケコサシスセソタチツテトナニヌネノハヒフヘホマミムメモヤユヨラリルレロワンガギグゲゴザジズゼゾダデドバビブベボパピプペポ";
    let kanji: Vec<char> = KANJI.chars().collect();
    let kana: Vec<char> = KANA.chars().collect();
    let mut seed = 0x2545_F491u32;
    let mut pick = |from: &[char], len: usize| -> String {
        (0..len)
            .map(|_| {
                seed = seed.wrapping_mul(1_664_525).wrapping_add(1_013_904_223);
                from[(seed >> 16) as usize % from.len()]
            })
            .collect()
    };
    let mut i = 0usize;
    while members.len() < n {
        members.push(Person {
            family_name: pick(&kanji, 2),
            given_name: pick(&kanji, 2),
            family_kana: pick(&kana, 4),
            given_kana: pick(&kana, 3),
            birth_date: date(
                1960 + (i * 13 % 45) as i16,
                (i % 12 + 1) as i8,
                (i * 5 % 28 + 1) as i8,
            ),
            sex: if i.is_multiple_of(2) {
                Sex::Male
            } else {
                Sex::Female
            },
            relationship: Relationship::Cohabitant,
            nationality: None,
        });
        i += 1;
    }
    PreApplication {
        tenant: tenant(),
        procedure: Procedure::MoveIn,
        move_date: date(2026, 3, 28),
        old_address: Address {
            postal_code: Some("1540015".into()),
            address: "東京都世田谷区桜新町二丁目15番3号".into(),
            katagaki: "サンハイツ桜新町201号室".into(),
        },
        new_address: Address {
            postal_code: Some("1020074".into()),
            address: "東京都千代田区九段南一丁目2番1号".into(),
            katagaki: "九段レジデンス1203".into(),
        },
        members,
        procedures: [
            "kokuho",
            "kokumin-nenkin",
            "jido-teate",
            "kodomo-iryo",
            "gakko-tenko",
            "kaigo",
            "inkan",
        ]
        .into_iter()
        .take(n.min(7))
        .map(String::from)
        .collect(),
    }
}
