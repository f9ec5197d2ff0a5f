//! Drawing what the printer cannot print as text: lines in scripts its code page lacks
//! (Arabic, Chinese, Cyrillic without CP866) are drawn from a TrueType font, and the QR code
//! for printers without `GS ( k`. The result is a 1-bit [`Bitmap`] sent with `GS v 0`.

use std::path::{Path, PathBuf};
use std::sync::OnceLock;

use ab_glyph::{Font, FontVec, GlyphId, PxScale, ScaleFont, point};

use crate::PrintError;
use crate::cmd::Align;
use crate::shape;

/// A 1-bit image, rows packed MSB first (the layout `GS v 0` expects); width is a multiple of 8.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Bitmap {
    width: u16,
    height: u16,
    bits: Vec<u8>,
}

impl Bitmap {
    /// A blank image; `width` is rounded up to a multiple of 8.
    pub fn new(width: u16, height: u16) -> Bitmap {
        let width = width.div_ceil(8) * 8;
        Bitmap {
            width,
            height,
            bits: vec![0; usize::from(width / 8) * usize::from(height)],
        }
    }

    /// Wraps packed rows (`width_bytes` bytes each).
    pub fn from_packed(width_bytes: u16, height: u16, bits: Vec<u8>) -> Option<Bitmap> {
        (bits.len() == usize::from(width_bytes) * usize::from(height)).then_some(Bitmap {
            width: width_bytes * 8,
            height,
            bits,
        })
    }

    /// Width in dots.
    pub fn width(&self) -> u16 {
        self.width
    }

    /// Height in dots.
    pub fn height(&self) -> u16 {
        self.height
    }

    /// Bytes per row.
    pub fn width_bytes(&self) -> u16 {
        self.width / 8
    }

    /// The packed rows.
    pub fn packed(&self) -> &[u8] {
        &self.bits
    }

    /// Blackens a dot; dots outside the image are ignored.
    pub fn set(&mut self, x: i32, y: i32) {
        if x < 0 || y < 0 || x >= i32::from(self.width) || y >= i32::from(self.height) {
            return;
        }
        let (x, y) = (x as usize, y as usize);
        self.bits[y * usize::from(self.width / 8) + x / 8] |= 0x80 >> (x % 8);
    }

    /// Whether a dot is black.
    pub fn get(&self, x: u16, y: u16) -> bool {
        if x >= self.width || y >= self.height {
            return false;
        }
        let (x, y) = (usize::from(x), usize::from(y));
        self.bits[y * usize::from(self.width / 8) + x / 8] & (0x80 >> (x % 8)) != 0
    }

    /// Rows with at least one black dot: a crude check that something was drawn.
    pub fn ink_rows(&self) -> usize {
        let wb = usize::from(self.width / 8).max(1);
        self.bits
            .chunks(wb)
            .filter(|row| row.iter().any(|&b| b != 0))
            .count()
    }

    /// The leftmost and rightmost black columns, if any.
    pub fn ink_columns(&self) -> Option<(u16, u16)> {
        let mut range: Option<(u16, u16)> = None;
        for x in 0..self.width {
            if (0..self.height).any(|y| self.get(x, y)) {
                range = Some(range.map_or((x, x), |(l, _)| (l, x)));
            }
        }
        range
    }

    /// The image as a binary PBM (`P4`) file, viewable with most image tools.
    pub fn to_pbm(&self) -> Vec<u8> {
        let mut out = format!("P4\n{} {}\n", self.width, self.height).into_bytes();
        out.extend_from_slice(&self.bits);
        out
    }
}

/// Fonts loaded lazily from a list of paths, tried in order for each line.
#[derive(Debug)]
pub struct Fonts {
    paths: Vec<PathBuf>,
    loaded: Vec<OnceLock<Result<FontVec, String>>>,
}

impl Fonts {
    /// A font list; nothing is read until a line needs it.
    pub fn new(paths: &[PathBuf]) -> Fonts {
        Fonts {
            paths: paths.to_vec(),
            loaded: paths.iter().map(|_| OnceLock::new()).collect(),
        }
    }

    /// The configured paths.
    pub fn paths(&self) -> &[PathBuf] {
        &self.paths
    }

    fn get(&self, i: usize) -> Result<&FontVec, &str> {
        self.loaded[i]
            .get_or_init(|| load_font(&self.paths[i]))
            .as_ref()
            .map_err(String::as_str)
    }

    /// The first font that has a glyph for every visible character of `text`.
    pub fn covering(&self, text: &str) -> Result<&FontVec, PrintError> {
        let mut problems = Vec::new();
        for i in 0..self.paths.len() {
            match self.get(i) {
                Ok(font) => {
                    if text
                        .chars()
                        .filter(|c| !c.is_whitespace())
                        .all(|c| font.glyph_id(c) != GlyphId(0))
                    {
                        return Ok(font);
                    }
                }
                Err(e) => problems.push(e.to_string()),
            }
        }
        let mut missing: Vec<char> = text.chars().filter(|c| !c.is_whitespace()).collect();
        missing.retain(|&c| {
            (0..self.paths.len()).all(|i| self.get(i).map_or(true, |f| f.glyph_id(c) == GlyphId(0)))
        });
        missing.dedup();
        Err(PrintError::NoFont {
            line: text.to_string(),
            missing: missing.into_iter().take(10).collect(),
            fonts: self
                .paths
                .iter()
                .map(|p| p.display().to_string())
                .collect::<Vec<_>>()
                .join(", "),
            problems: problems.join("; "),
        })
    }
}

fn load_font(path: &Path) -> Result<FontVec, String> {
    let data = std::fs::read(path).map_err(|e| format!("{}: {e}", path.display()))?;
    // Index 0 works for plain fonts and for the first face of a collection (.ttc).
    FontVec::try_from_vec_and_index(data, 0)
        .map_err(|_| format!("{}: not a TrueType/OpenType font", path.display()))
}

/// How a rasterised text line looks.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct TextStyle {
    /// Em size in pixels (dots).
    pub px: f32,
    /// Draw each dot twice, one dot apart.
    pub bold: bool,
    /// Where the text sits in the full-width image.
    pub align: Align,
}

/// Draws one logical line of text as full-width images, one per wrapped row. Arabic is shaped,
/// right-to-left lines are reordered and aligned to the right unless centred.
pub fn text_images(
    fonts: &Fonts,
    text: &str,
    style: TextStyle,
    width_dots: u16,
) -> Result<Vec<Bitmap>, PrintError> {
    let rtl = shape::is_rtl_text(text);
    let shaped = if rtl {
        shape::shape_arabic(text)
    } else {
        text.to_string()
    };
    let font = fonts.covering(&shaped)?;
    let scaled = font.as_scaled(PxScale::from(style.px));
    let margin = 4.0;
    let usable = f32::from(width_dots) - 2.0 * margin - 1.0;
    let rows = wrap(&shaped, |s| measure(&scaled, s), usable);
    let align = match (style.align, rtl) {
        (Align::Left, true) => Align::Right,
        (a, _) => a,
    };
    let ascent = scaled.ascent();
    let height = (scaled.ascent() - scaled.descent()).ceil().max(1.0) as u16;
    let mut images = Vec::with_capacity(rows.len());
    for row in rows {
        let visual = shape::visual_order(&row, rtl);
        let w = measure(&scaled, &visual);
        let x0 = match align {
            Align::Left => margin,
            Align::Center => ((f32::from(width_dots) - w) / 2.0).max(margin),
            Align::Right => (f32::from(width_dots) - margin - w).max(margin),
        };
        let mut img = Bitmap::new(width_dots, height);
        let mut caret = x0;
        let mut prev: Option<GlyphId> = None;
        for c in visual.chars() {
            let id = font.glyph_id(c);
            if let Some(p) = prev {
                caret += scaled.kern(p, id);
            }
            let glyph = id.with_scale_and_position(style.px, point(caret, ascent));
            if let Some(outlined) = font.outline_glyph(glyph) {
                let b = outlined.px_bounds();
                outlined.draw(|gx, gy, coverage| {
                    if coverage >= 0.5 {
                        let x = b.min.x as i32 + gx as i32;
                        let y = b.min.y as i32 + gy as i32;
                        img.set(x, y);
                        if style.bold {
                            img.set(x + 1, y);
                        }
                    }
                });
            }
            caret += scaled.h_advance(id);
            prev = Some(id);
        }
        images.push(img);
    }
    Ok(images)
}

fn measure<F: Font, S: ScaleFont<F>>(scaled: &S, text: &str) -> f32 {
    let mut w = 0.0;
    let mut prev: Option<GlyphId> = None;
    for c in text.chars() {
        let id = scaled.glyph_id(c);
        if let Some(p) = prev {
            w += scaled.kern(p, id);
        }
        w += scaled.h_advance(id);
        prev = Some(id);
    }
    w
}

/// Greedy word wrap in logical order; a word wider than the line (Chinese has no spaces) is
/// broken between characters.
pub fn wrap(text: &str, width_of: impl Fn(&str) -> f32, max: f32) -> Vec<String> {
    let mut rows: Vec<String> = Vec::new();
    let mut current = String::new();
    for word in text.split(' ').filter(|w| !w.is_empty()) {
        let candidate = if current.is_empty() {
            word.to_string()
        } else {
            format!("{current} {word}")
        };
        if width_of(&candidate) <= max {
            current = candidate;
            continue;
        }
        if !current.is_empty() {
            rows.push(std::mem::take(&mut current));
        }
        if width_of(word) <= max {
            current = word.to_string();
            continue;
        }
        for c in word.chars() {
            current.push(c);
            if width_of(&current) > max && current.chars().count() > 1 {
                current.pop();
                rows.push(std::mem::replace(&mut current, c.to_string()));
            }
        }
    }
    if !current.is_empty() || rows.is_empty() {
        rows.push(current);
    }
    rows
}

/// The QR code of `data` as a full-width image, centred, with a 4-module quiet zone.
pub fn qr_image(data: &str, width_dots: u16) -> Result<Bitmap, PrintError> {
    let code = qrcode::QrCode::with_error_correction_level(data, qrcode::EcLevel::M)
        .map_err(|e| PrintError::Qr(e.to_string()))?;
    let modules = code.width();
    let colors = code.to_colors();
    let span = modules + 8;
    let module = (usize::from(width_dots) * 3 / 4 / span).clamp(1, 6);
    let size = span * module;
    if size > usize::from(width_dots) {
        return Err(PrintError::Qr(format!(
            "{modules} modules do not fit {width_dots} dots"
        )));
    }
    let height = u16::try_from(size).map_err(|e| PrintError::Qr(e.to_string()))?;
    let mut img = Bitmap::new(width_dots, height);
    let left = (usize::from(width_dots) - size) / 2 + 4 * module;
    for (i, color) in colors.iter().enumerate() {
        if *color != qrcode::Color::Dark {
            continue;
        }
        let (mx, my) = (i % modules, i / modules);
        for dy in 0..module {
            for dx in 0..module {
                img.set(
                    (left + mx * module + dx) as i32,
                    ((4 + my) * module + dy) as i32,
                );
            }
        }
    }
    Ok(img)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn bitmap_packs_msb_first() {
        let mut b = Bitmap::new(10, 2);
        assert_eq!(b.width(), 16);
        b.set(0, 0);
        b.set(9, 1);
        b.set(99, 0);
        assert_eq!(b.packed(), &[0x80, 0, 0, 0x40]);
        assert_eq!(b.ink_rows(), 2);
        assert_eq!(b.ink_columns(), Some((0, 9)));
        assert!(b.get(9, 1) && !b.get(8, 1));
    }

    #[test]
    fn wrap_breaks_words_and_long_runs() {
        let w = |s: &str| s.chars().count() as f32;
        assert_eq!(wrap("aa bb cc", w, 5.0), vec!["aa bb", "cc"]);
        assert_eq!(wrap("abcdefg", w, 3.0), vec!["abc", "def", "g"]);
        assert_eq!(wrap("", w, 3.0), vec![""]);
    }

    #[test]
    fn qr_image_is_square_and_centred() {
        let img = qr_image("http://127.0.0.1:8080/kiosk/track.html#t=0123", 576).unwrap();
        let (l, r) = img.ink_columns().unwrap();
        let left_gap = l;
        let right_gap = img.width() - 1 - r;
        assert!(left_gap.abs_diff(right_gap) <= 1, "{left_gap} {right_gap}");
        let rows: Vec<u16> = (0..img.height())
            .filter(|&y| (0..img.width()).any(|x| img.get(x, y)))
            .collect();
        let tall = rows.last().unwrap() - rows.first().unwrap() + 1;
        assert_eq!(r - l + 1, tall, "square");
    }

    #[test]
    fn missing_font_is_a_clear_error() {
        let fonts = Fonts::new(&[PathBuf::from("/nonexistent/font.ttf")]);
        let err = fonts.covering("مرحبا").unwrap_err().to_string();
        assert!(err.contains("/nonexistent/font.ttf"), "{err}");
    }
}
