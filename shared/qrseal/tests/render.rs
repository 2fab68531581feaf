//! Rendering: PNG read back by rqrr (as a photo would be), JPEG photos, SVG well-formed.

mod common;

use common::{household, issued_at, tenant};
use image::{GrayImage, ImageEncoder, Luma};
use jiff::SignedDuration;
use madoguchi_qrseal::render::{EC_LEVEL, QUIET_ZONE_MODULES};
use madoguchi_qrseal::{
    PhotoError, QrKey, StaticKeys, Validity, decode_photo, open, qr_version, render_png,
    render_svg, seal,
};
use zeroize::Zeroizing;

fn key() -> QrKey {
    QrKey::new(tenant(), 1, Zeroizing::new([5; 32]))
}

fn sealed_text(n: usize) -> String {
    let validity = Validity::starting(issued_at(), SignedDuration::from_hours(24)).unwrap();
    seal(&key(), validity, &household(n)).unwrap().text
}

#[test]
fn png_reads_back_for_households_of_1_to_8() {
    assert_eq!(EC_LEVEL, qrcode::EcLevel::M);
    for n in 1..=8 {
        let text = sealed_text(n);
        let png = render_png(&text, 4).unwrap();
        assert_eq!(&png[..8], b"\x89PNG\r\n\x1a\n");
        let img = image::load_from_memory(&png).unwrap().into_luma8();
        let version = qr_version(&text).unwrap();
        let modules = 17 + 4 * version as u32 + 2 * QUIET_ZONE_MODULES;
        assert_eq!(
            img.width(),
            modules * 4,
            "quiet zone of 4 modules each side"
        );
        // The quiet zone is white.
        assert!((0..img.width()).all(|x| img.get_pixel(x, 0).0[0] == 255));
        assert_eq!(decode_photo(&png).unwrap(), text, "household of {n}");
        let keys = StaticKeys {
            active: vec![key()],
            retired: vec![],
        };
        let opened = open(&keys, &tenant(), &decode_photo(&png).unwrap(), issued_at()).unwrap();
        assert_eq!(opened.application, household(n));
    }
}

#[test]
fn a_jpeg_photo_with_the_code_off_centre_reads() {
    let text = sealed_text(5);
    let png = render_png(&text, 5).unwrap();
    let code = image::load_from_memory(&png).unwrap().into_luma8();
    // A grey desk around the code, as a phone photo would show it.
    let mut photo = GrayImage::from_pixel(code.width() + 400, code.height() + 260, Luma([150]));
    image::imageops::overlay(&mut photo, &code, 250, 90);
    let mut jpeg = Vec::new();
    image::codecs::jpeg::JpegEncoder::new_with_quality(&mut jpeg, 80)
        .write_image(
            photo.as_raw(),
            photo.width(),
            photo.height(),
            image::ExtendedColorType::L8,
        )
        .unwrap();
    assert_eq!(&jpeg[..2], b"\xFF\xD8");
    assert_eq!(decode_photo(&jpeg).unwrap(), text);
}

#[test]
fn photos_without_a_code_or_not_images() {
    let blank = GrayImage::from_pixel(200, 200, Luma([255]));
    let mut png = Vec::new();
    image::codecs::png::PngEncoder::new(&mut png)
        .write_image(blank.as_raw(), 200, 200, image::ExtendedColorType::L8)
        .unwrap();
    assert_eq!(decode_photo(&png), Err(PhotoError::NoCode));
    assert_eq!(decode_photo(b"not an image"), Err(PhotoError::NotAnImage));
    assert_eq!(decode_photo(b""), Err(PhotoError::NotAnImage));
    assert_eq!(
        decode_photo(b"GIF89a\x01\x00\x01\x00"),
        Err(PhotoError::NotAnImage)
    );
    // A truncated PNG.
    let text_png = render_png(&sealed_text(1), 2).unwrap();
    assert_eq!(
        decode_photo(&text_png[..text_png.len() / 2]),
        Err(PhotoError::NotAnImage)
    );
}

#[test]
fn svg_is_well_formed_with_a_quiet_zone() {
    let text = sealed_text(4);
    let svg = render_svg(&text).unwrap();
    let doc = roxmltree::Document::parse(&svg).unwrap();
    let root = doc.root_element();
    assert_eq!(root.tag_name().name(), "svg");
    let width: u32 = root.attribute("width").unwrap().parse().unwrap();
    assert!(width >= 320);
    // One path of dark modules on a white background.
    assert!(doc.descendants().any(|n| n.tag_name().name() == "path"));
    assert!(svg.contains("#ffffff") && svg.contains("#000000"));
    let version = qr_version(&text).unwrap();
    let modules = 17 + 4 * version as u32 + 2 * QUIET_ZONE_MODULES;
    assert_eq!(width % modules, 0, "whole modules, quiet zone included");
}

#[test]
fn rendering_refuses_bad_arguments() {
    assert!(render_png("MDG1:ABC", 0).is_err());
    assert!(render_png("MDG1:ABC", 33).is_err());
    assert!(render_svg(&"A".repeat(5_000)).is_err());
    assert!(qr_version(&"A".repeat(5_000)).is_err());
}
