//! The ESC/POS commands this crate sends, as byte builders. Nothing else in the crate writes
//! command bytes, and `decode` understands exactly these.

/// `ESC`.
pub const ESC: u8 = 0x1B;
/// `GS`.
pub const GS: u8 = 0x1D;
/// `FS`.
pub const FS: u8 = 0x1C;
/// `DLE`.
pub const DLE: u8 = 0x10;
/// `EOT`.
pub const EOT: u8 = 0x04;
/// Line feed: prints the line buffer.
pub const LF: u8 = 0x0A;

/// `ESC @`: initialise the printer (styles, alignment, code page back to defaults).
pub const INIT: [u8; 2] = [ESC, b'@'];
/// `ESC R 0`: international character set USA, so `[ \ ] { | }` are themselves.
pub const INTERNATIONAL_USA: [u8; 3] = [ESC, b'R', 0];
/// `FS .`: cancel Kanji (double-byte) mode that many clones start in.
pub const CANCEL_KANJI: [u8; 2] = [FS, b'.'];
/// `GS r 1`: send the paper sensor status; its reply means everything before it was processed.
pub const COMPLETION_CHECK: [u8; 3] = [GS, b'r', 1];

/// `ESC t n`: select the character code table.
pub fn code_table(n: u8) -> [u8; 3] {
    [ESC, b't', n]
}

/// Horizontal alignment for `ESC a n`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, serde::Serialize)]
#[serde(rename_all = "snake_case")]
pub enum Align {
    /// Flush left.
    #[default]
    Left,
    /// Centred.
    Center,
    /// Flush right.
    Right,
}

/// `ESC a n`.
pub fn align(a: Align) -> [u8; 3] {
    let n = match a {
        Align::Left => 0,
        Align::Center => 1,
        Align::Right => 2,
    };
    [ESC, b'a', n]
}

/// `ESC E n`: emphasis (bold) on or off.
pub fn bold(on: bool) -> [u8; 3] {
    [ESC, b'E', u8::from(on)]
}

/// `GS ! n`: character size, each multiplier 1..=8.
pub fn size(width: u8, height: u8) -> [u8; 3] {
    let w = width.clamp(1, 8) - 1;
    let h = height.clamp(1, 8) - 1;
    [GS, b'!', (w << 4) | h]
}

/// `ESC d n`: print and feed n lines.
pub fn feed_lines(n: u8) -> [u8; 3] {
    [ESC, b'd', n]
}

/// `GS V 65 n`: feed to the cutter (plus n dots) and cut fully.
pub fn feed_and_cut() -> [u8; 4] {
    [GS, b'V', 65, 0]
}

/// `DLE EOT n`: real-time status query, n = 1..=4.
pub fn status_query(n: u8) -> [u8; 3] {
    [DLE, EOT, n]
}

/// `GS v 0 0 xL xH yL yH d...`: a raster image, `width_bytes` bytes per row, MSB = leftmost dot.
///
/// Printers execute real-time commands (`DLE EOT`, `DLE ENQ`, `DLE DC4`) even when their bytes
/// turn up inside image data. Where the image holds `0x10` followed by `0x04`, `0x05` or
/// `0x14`, the `0x10` (one dot) is cleared, so an image can never query, reset or power off
/// the printer.
pub fn raster(out: &mut Vec<u8>, width_bytes: u16, height: u16, data: &[u8]) {
    debug_assert_eq!(data.len(), usize::from(width_bytes) * usize::from(height));
    let [xl, xh] = width_bytes.to_le_bytes();
    let [yl, yh] = height.to_le_bytes();
    out.extend_from_slice(&[GS, b'v', b'0', 0, xl, xh, yl, yh]);
    let start = out.len();
    out.extend_from_slice(data);
    let body = &mut out[start..];
    for i in 0..body.len().saturating_sub(1) {
        if body[i] == DLE && matches!(body[i + 1], 0x04 | 0x05 | 0x14) {
            body[i] = 0;
        }
    }
}

/// The `GS ( k` sequence that prints a QR code with the printer's own encoder: model 2, module
/// size `module` dots, error correction M, store `data`, print.
pub fn qr(out: &mut Vec<u8>, data: &[u8], module: u8) {
    // fn 165: model 2.
    out.extend_from_slice(&[GS, b'(', b'k', 4, 0, 49, 65, 50, 0]);
    // fn 167: module size.
    out.extend_from_slice(&[GS, b'(', b'k', 3, 0, 49, 67, module]);
    // fn 169: error correction level M (49).
    out.extend_from_slice(&[GS, b'(', b'k', 3, 0, 49, 69, 49]);
    // fn 180: store the data.
    let [pl, ph] = u16::try_from(data.len() + 3)
        .expect("QR payload is bounded by the caller")
        .to_le_bytes();
    out.extend_from_slice(&[GS, b'(', b'k', pl, ph, 49, 80, 48]);
    out.extend_from_slice(data);
    // fn 181: print the stored symbol.
    out.extend_from_slice(&[GS, b'(', b'k', 3, 0, 49, 81, 48]);
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn size_packs_width_high_height_low() {
        assert_eq!(size(1, 1), [GS, b'!', 0x00]);
        assert_eq!(size(2, 1), [GS, b'!', 0x10]);
        assert_eq!(size(8, 8), [GS, b'!', 0x77]);
        assert_eq!(size(9, 0), [GS, b'!', 0x70]);
    }

    #[test]
    fn raster_data_never_holds_real_time_commands() {
        let mut out = Vec::new();
        raster(&mut out, 4, 1, &[0x10, 0x04, 0x10, 0x14]);
        assert_eq!(&out[8..], &[0x00, 0x04, 0x00, 0x14]);
        let mut out = Vec::new();
        raster(&mut out, 2, 1, &[0x10, 0x20]);
        assert_eq!(&out[8..], &[0x10, 0x20]);
    }

    #[test]
    fn qr_store_length_counts_header() {
        let mut out = Vec::new();
        qr(&mut out, b"abc", 6);
        let store = [GS, b'(', b'k', 6, 0, 49, 80, 48, b'a', b'b', b'c'];
        assert!(out.windows(store.len()).any(|w| w == store));
    }
}
