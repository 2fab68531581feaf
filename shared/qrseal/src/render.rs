//! QR rendering (PNG, SVG) and reading a photo of a code.
//!
//! Error correction level M (about 15 % of the code words recoverable). The code is shown on
//! a phone screen or printed fresh on A4 at home, not worn like a shipping label, so the
//! extra redundancy of Q (25 %) buys little; it would cost 2–4 versions for a household of
//! 1–8 (measured in `benches/seal.rs`: 4 members are version 13 at M, 17 at Q), i.e. smaller
//! modules at the same printed size, which is what ordinary scanners and phone cameras
//! actually miss. M is also the level phone scanners and QR generators default to.

use std::io::Cursor;

use image::{GrayImage, ImageEncoder, ImageReader, Limits, Luma};
use qrcode::{EcLevel, QrCode, Version};

/// The error correction level of every code this crate renders.
pub const EC_LEVEL: EcLevel = EcLevel::M;
/// The largest QR version [`crate::seal`] produces: 117×117 modules, 1,853 alphanumeric
/// characters at level M. Phone cameras and counter scanners read it from a screen or an A4
/// print; the densest versions (up to 40, 177×177) need a large, sharp print, so a household
/// that does not fit is told so rather than given a code that fails at the counter.
pub const MAX_QR_VERSION: i16 = 25;
/// Quiet zone on each side, in modules (ISO/IEC 18004 asks for 4).
pub const QUIET_ZONE_MODULES: u32 = 4;
/// Photos larger than this on either side are scaled down before detection: it keeps the
/// detector's time bounded, and a code filling a fraction of a phone photo still has modules
/// several pixels wide at this size.
pub const PHOTO_MAX_SIDE: u32 = 2048;

#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum RenderError {
    #[error("the text does not fit a QR code at level M")]
    TooLong,
    #[error("module size must be 1–32 pixels")]
    ModuleSize,
    #[error("PNG encoding failed")]
    Png,
}

#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum PhotoError {
    #[error("not a PNG or JPEG image")]
    NotAnImage,
    #[error("the image is too large")]
    TooLarge,
    #[error("no QR code found in the image")]
    NoCode,
    #[error("a QR code was found but could not be read")]
    Unreadable,
}

/// The QR version the text needs at [`EC_LEVEL`] (the smallest that holds it).
pub fn qr_version(text: &str) -> Result<i16, RenderError> {
    // `encode_auto` sizes the bit stream without building the symbol (no mask search).
    match qrcode::bits::encode_auto(text.as_bytes(), EC_LEVEL) {
        Ok(bits) => match bits.version() {
            Version::Normal(v) => Ok(v),
            Version::Micro(_) => Err(RenderError::TooLong),
        },
        Err(_) => Err(RenderError::TooLong),
    }
}

/// Whether the text fits [`MAX_QR_VERSION`] at [`EC_LEVEL`].
pub fn fits(text: &str) -> bool {
    qr_version(text).is_ok_and(|v| v <= MAX_QR_VERSION)
}

fn code(text: &str) -> Result<QrCode, RenderError> {
    QrCode::with_error_correction_level(text.as_bytes(), EC_LEVEL).map_err(|_| RenderError::TooLong)
}

/// An SVG document of the code, black on white, with the quiet zone, at least 320 px wide.
pub fn render_svg(text: &str) -> Result<String, RenderError> {
    Ok(code(text)?
        .render::<qrcode::render::svg::Color<'_>>()
        .quiet_zone(true)
        .min_dimensions(320, 320)
        .dark_color(qrcode::render::svg::Color("#000000"))
        .light_color(qrcode::render::svg::Color("#ffffff"))
        .build())
}

/// A greyscale PNG of the code, `module_px` pixels a module, with the quiet zone.
pub fn render_png(text: &str, module_px: u32) -> Result<Vec<u8>, RenderError> {
    // 32 px a module keeps even a version 40 image under 6,000 px a side.
    if !(1..=32).contains(&module_px) {
        return Err(RenderError::ModuleSize);
    }
    let code = code(text)?;
    let width = u32::try_from(code.width()).map_err(|_| RenderError::TooLong)?;
    let colors = code.to_colors();
    let side = (width + 2 * QUIET_ZONE_MODULES) * module_px;
    let img = GrayImage::from_fn(side, side, |x, y| {
        let (mx, my) = (x / module_px, y / module_px);
        let inside = |m: u32| (QUIET_ZONE_MODULES..QUIET_ZONE_MODULES + width).contains(&m);
        let dark = inside(mx)
            && inside(my)
            && colors
                .get(((my - QUIET_ZONE_MODULES) * width + (mx - QUIET_ZONE_MODULES)) as usize)
                .is_some_and(|c| *c == qrcode::Color::Dark);
        Luma([if dark { 0 } else { 255 }])
    });
    let mut out = Vec::new();
    image::codecs::png::PngEncoder::new(&mut out)
        .write_image(img.as_raw(), side, side, image::ExtendedColorType::L8)
        .map_err(|_| RenderError::Png)?;
    Ok(out)
}

/// Reads the first QR code in a PNG or JPEG photo and returns its text (not yet opened:
/// pass it to [`crate::open`]).
pub fn decode_photo(bytes: &[u8]) -> Result<String, PhotoError> {
    let mut limits = Limits::default();
    // A 48-megapixel phone photo is 8,000 px wide; refuse anything beyond before decoding.
    limits.max_image_width = Some(10_000);
    limits.max_image_height = Some(10_000);
    limits.max_alloc = Some(256 * 1024 * 1024);
    let mut reader = ImageReader::new(Cursor::new(bytes))
        .with_guessed_format()
        .map_err(|_| PhotoError::NotAnImage)?;
    match reader.format() {
        Some(image::ImageFormat::Png | image::ImageFormat::Jpeg) => {}
        _ => return Err(PhotoError::NotAnImage),
    }
    reader.limits(limits);
    let img = reader.decode().map_err(|e| match e {
        image::ImageError::Limits(_) => PhotoError::TooLarge,
        _ => PhotoError::NotAnImage,
    })?;
    let mut grey = img.into_luma8();
    if grey.width().max(grey.height()) > PHOTO_MAX_SIDE {
        let scale = f64::from(PHOTO_MAX_SIDE) / f64::from(grey.width().max(grey.height()));
        let w = ((f64::from(grey.width()) * scale) as u32).max(1);
        let h = ((f64::from(grey.height()) * scale) as u32).max(1);
        grey = image::imageops::resize(&grey, w, h, image::imageops::FilterType::Triangle);
    }
    let (w, h) = (grey.width() as usize, grey.height() as usize);
    let mut prepared =
        rqrr::PreparedImage::prepare_from_greyscale(w, h, |x, y| grey.as_raw()[y * w + x]);
    let grids = prepared.detect_grids();
    if grids.is_empty() {
        return Err(PhotoError::NoCode);
    }
    grids
        .iter()
        .find_map(|g| g.decode().ok().map(|(_, text)| text))
        .ok_or(PhotoError::Unreadable)
}
