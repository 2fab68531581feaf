//! Nothing a client sends may crash a look-up.

use proptest::prelude::*;

proptest! {
    #[test]
    fn lookup_never_panics(s in any::<String>()) {
        let _ = madoguchi_postal::lookup(&s);
        let _ = madoguchi_postal::normalize(&s);
        let _ = madoguchi_postal::is_in_municipality(&s, "272060");
        let _ = madoguchi_postal::is_in_municipality("5950025", &s);
    }

    #[test]
    fn digit_strings_normalize_consistently(d in "[0-9０-９]{3}[-－ー‐]?[0-9０-９]{4}") {
        let n = madoguchi_postal::normalize(&d).unwrap();
        prop_assert_eq!(n.len(), 7);
        for e in madoguchi_postal::lookup(&d) {
            prop_assert_eq!(&e.postal_code, &n);
        }
    }

    #[test]
    fn near_codes_never_panic(s in "[〒 ]?[0-9０-９\\-－ー]{0,10}") {
        let _ = madoguchi_postal::lookup(&s);
    }
}
