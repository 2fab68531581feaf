//! Shared helpers: a realistic 住民記録 row generator and CP932 encoding (with the
//! user-defined area, which encoding_rs's encoder refuses).
#![allow(dead_code)]

use std::io::{self, Read};

use madoguchi_domain::mynumber::my_number_check_digit;

/// The header line of the shipped jumin layout.
pub fn jumin_header() -> String {
    let layout = madoguchi_linkage::Layout::jumin();
    let names: Vec<&str> = layout.columns.iter().map(|c| c.header_name()).collect();
    names.join(",")
}

/// A valid 個人番号 derived from `seed`.
pub fn my_number(seed: u64) -> String {
    let first11 = format!("{:011}", seed % 100_000_000_000);
    let c = my_number_check_digit(&first11).unwrap();
    format!("{first11}{c}")
}

/// The same number with a wrong check digit.
pub fn bad_my_number(seed: u64) -> String {
    let good = my_number(seed);
    let c = good.as_bytes()[11] - b'0';
    format!("{}{}", &good[..11], (c + 1) % 10)
}

const SURNAMES: [(&str, &str); 6] = [
    ("山田", "ヤマダ"),
    ("佐藤", "サトウ"),
    ("鈴木", "スズキ"),
    ("高橋", "タカハシ"),
    ("田中", "タナカ"),
    ("渡辺", "ワタナベ"),
];
const GIVEN: [(&str, &str); 5] = [
    ("太郎", "タロウ"),
    ("花子", "ハナコ"),
    ("一郎", "イチロウ"),
    ("美咲", "ミサキ"),
    ("翔太", "ショウタ"),
];

/// The 24 fields of a valid row (Japanese resident, or foreign every 20th row).
pub fn fields(i: u64) -> Vec<String> {
    let (sn, sk) = SURNAMES[(i % 6) as usize];
    let (gn, gk) = GIVEN[(i % 5) as usize];
    let foreign = i % 20 == 19;
    let year = 1940 + (i % 80);
    let month = 1 + i % 12;
    let day = 1 + i % 28;
    let birth = if foreign {
        format!("{year:04}-{month:02}-{day:02}")
    } else if year >= 1989 {
        format!("H{}.{month:02}.{day:02}", year - 1988)
    } else {
        format!("S{}.{month:02}.{day:02}", year - 1925)
    };
    let mut f = vec![
        format!("{:010}", 1_000_000 + i),
        format!("{:010}", 500_000 + i / 3),
        format!("{:011}", 40_000_000_000 + i),
        if i.is_multiple_of(7) {
            String::new()
        } else {
            my_number(i)
        },
        if foreign {
            "NGUYEN VAN AN".to_owned()
        } else {
            format!("{sn}　{gn}")
        },
        if foreign {
            "グエン　ヴァン　アン".to_owned()
        } else {
            format!("{sk}　{gk}")
        },
        birth,
        ["1", "2"][(i % 2) as usize].to_owned(),
        if i.is_multiple_of(3) {
            "01".to_owned()
        } else {
            "04".to_owned()
        },
        format!("{sn}　太郎"),
        format!(
            "東京都千代田区霞が関{}丁目{}番{}号",
            1 + i % 3,
            1 + i % 30,
            1 + i % 20
        ),
        if i.is_multiple_of(4) {
            format!("ハイツ霞が関{}号室", 100 + i % 50)
        } else {
            String::new()
        },
        format!("100-{:04}", 8900 + i % 100),
        format!("R{}.04.01", 2 + i % 6),
        "1".to_owned(),
        if i.is_multiple_of(5) {
            "10".to_owned()
        } else {
            String::new()
        },
        if i.is_multiple_of(5) {
            "R7.04.01".to_owned()
        } else {
            String::new()
        },
    ];
    if foreign {
        f.extend([
            "NGUYEN VAN AN".to_owned(),
            String::new(),
            "ベトナム".to_owned(),
            "技術・人文知識・国際業務".to_owned(),
            "3年".to_owned(),
            "2027-03-31".to_owned(),
            "AB12345678CD".to_owned(),
        ]);
    } else {
        f.extend(std::iter::repeat_n(String::new(), 7));
    }
    f
}

/// One CSV line: fields quoted when they need it, CRLF.
pub fn line(fields: &[String]) -> String {
    let mut s = String::new();
    for (i, f) in fields.iter().enumerate() {
        if i > 0 {
            s.push(',');
        }
        if f.contains([',', '"', '\n', '\r']) {
            s.push('"');
            s.push_str(&f.replace('"', "\"\""));
            s.push('"');
        } else {
            s.push_str(f);
        }
    }
    s.push_str("\r\n");
    s
}

/// CP932 bytes; private-use U+E000–U+E757 go to the user-defined area (F040–F9FC)
/// as the WHATWG decoder maps it back.
pub fn cp932(s: &str) -> Vec<u8> {
    let mut out = Vec::new();
    let mut buf = [0u8; 4];
    for c in s.chars() {
        let cp = c as u32;
        if (0xE000..=0xE757).contains(&cp) {
            let pointer = 8836 + (cp - 0xE000);
            let lead = pointer / 188;
            let trail = pointer % 188;
            out.push((lead + if lead < 0x1F { 0x81 } else { 0xC1 }) as u8);
            out.push((trail + if trail < 0x3F { 0x40 } else { 0x41 }) as u8);
        } else {
            let (bytes, _, unmappable) = encoding_rs::SHIFT_JIS.encode(c.encode_utf8(&mut buf));
            assert!(!unmappable, "{c:?} is not in CP932");
            out.extend_from_slice(&bytes);
        }
    }
    out
}

/// A `Read` that generates a header and `rows` rows on the fly (UTF-8), so that a
/// huge file never exists in memory.
pub struct Generated {
    next: u64,
    rows: u64,
    buf: Vec<u8>,
    pos: usize,
    pub bytes: u64,
}

impl Generated {
    pub fn new(rows: u64) -> Self {
        let header = format!("{}\r\n", jumin_header()).into_bytes();
        Generated {
            next: 0,
            rows,
            buf: header,
            pos: 0,
            bytes: 0,
        }
    }
}

impl Read for Generated {
    fn read(&mut self, out: &mut [u8]) -> io::Result<usize> {
        if self.pos == self.buf.len() {
            if self.next == self.rows {
                return Ok(0);
            }
            self.buf.clear();
            self.buf
                .extend_from_slice(line(&fields(self.next)).as_bytes());
            self.pos = 0;
            self.next += 1;
        }
        let n = out.len().min(self.buf.len() - self.pos);
        out[..n].copy_from_slice(&self.buf[self.pos..self.pos + n]);
        self.pos += n;
        self.bytes += n as u64;
        Ok(n)
    }
}
