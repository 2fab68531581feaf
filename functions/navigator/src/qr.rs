//! The QR image of a procedure-guide code, as SVG (the SPA shows it; the printed page embeds it).

use qrcode::{EcLevel, QrCode};

/// Level M (15 % recovery): ordinary 2D scanners read it, and a paper fold or a smudge
/// on a printed page does not lose the code.
pub const EC_LEVEL: EcLevel = EcLevel::M;

/// An SVG element (no XML declaration, so it can sit inside HTML), black on white with the
/// quiet zone. `None` only for a text too long for any QR version, which a code never is.
pub fn svg(text: &str) -> Option<String> {
    let code = QrCode::with_error_correction_level(text.as_bytes(), EC_LEVEL).ok()?;
    let svg = code
        .render::<qrcode::render::svg::Color<'_>>()
        .quiet_zone(true)
        .min_dimensions(200, 200)
        .dark_color(qrcode::render::svg::Color("#000000"))
        .light_color(qrcode::render::svg::Color("#ffffff"))
        .build();
    Some(match svg.find("<svg") {
        Some(start) => svg[start..].to_owned(),
        None => svg,
    })
}

#[cfg(test)]
mod tests {
    #[test]
    fn a_code_becomes_an_svg_element() {
        let s = super::svg("MG1:272060:0:TENNYU:JUMIN-IDOU:1234").unwrap();
        assert!(s.starts_with("<svg"), "{s}");
        assert!(s.trim_end().ends_with("</svg>"));
    }
}
