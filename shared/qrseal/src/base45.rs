//! Base45 (RFC 9285): bytes as characters of the QR alphanumeric set, so a QR code holds
//! them in alphanumeric mode (5.5 bits a character, 8.25 bits a byte) and any scanner can
//! pass the text on, even as keystrokes. A few lines, so written here rather than a crate.

const ALPHABET: &[u8; 45] = b"0123456789ABCDEFGHIJKLMNOPQRSTUVWXYZ $%*+-./:";

pub fn encode(bytes: &[u8]) -> String {
    let mut out = String::with_capacity(bytes.len().div_ceil(2) * 3);
    let mut push = |v: u32| out.push(char::from(ALPHABET[(v % 45) as usize]));
    for pair in bytes.chunks(2) {
        match *pair {
            [a, b] => {
                let n = u32::from(a) << 8 | u32::from(b);
                push(n);
                push(n / 45);
                push(n / 2025);
            }
            [a] => {
                let n = u32::from(a);
                push(n);
                push(n / 45);
            }
            _ => {}
        }
    }
    out
}

fn value(c: u8) -> Option<u32> {
    ALPHABET.iter().position(|&a| a == c).map(|v| v as u32)
}

/// `None` for a character outside the set, a dangling character, or a group whose value
/// does not fit its bytes.
pub fn decode(text: &str) -> Option<Vec<u8>> {
    let mut out = Vec::with_capacity(text.len() / 3 * 2 + 1);
    for group in text.as_bytes().chunks(3) {
        match *group {
            [c, d, e] => {
                let n = value(c)? + value(d)? * 45 + value(e)? * 2025;
                let n = u16::try_from(n).ok()?;
                out.extend_from_slice(&n.to_be_bytes());
            }
            [c, d] => {
                let n = value(c)? + value(d)? * 45;
                out.push(u8::try_from(n).ok()?);
            }
            _ => return None,
        }
    }
    Some(out)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn rfc_9285_examples() {
        for (bytes, text) in [
            (&b"AB"[..], "BB8"),
            (b"Hello!!", "%69 VD92EX0"),
            (b"base-45", "UJCLQE7W581"),
            (b"ietf!", "QED8WEX0"),
            (b"", ""),
        ] {
            assert_eq!(encode(bytes), text);
            assert_eq!(decode(text).as_deref(), Some(bytes));
        }
        assert_eq!(decode("GGW"), None); // 65535 + 1
        assert_eq!(decode("ZZ"), None); // more than a byte
        assert_eq!(decode("A"), None);
        assert_eq!(decode("aBC"), None);
    }

    #[test]
    fn every_byte_pair_round_trips() {
        for a in 0..=255u8 {
            for b in [0u8, 1, 44, 45, 127, 200, 255] {
                assert_eq!(decode(&encode(&[a, b])).unwrap(), [a, b]);
                assert_eq!(decode(&encode(&[a])).unwrap(), [a]);
            }
        }
    }
}
