//! A decoder for exactly the ESC/POS commands this crate sends: it turns job bytes back into
//! what the printer would print (text lines with their styles, images, QR payloads, cut) so
//! tests, the virtual printer and the fake printer can check the output as a reader would.
//! Any other byte sequence is an error: the decoder is deliberately strict.

use std::fmt;

use crate::CodePage;
use crate::cmd::{Align, DLE, EOT, ESC, FS, GS, LF};
use crate::raster::Bitmap;

/// A printed line of text.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Line {
    /// The text, decoded from the code page.
    pub text: String,
    /// The bytes as sent.
    pub bytes: Vec<u8>,
    /// Emphasised.
    pub bold: bool,
    /// `GS !` width multiplier.
    pub width: u8,
    /// `GS !` height multiplier.
    pub height: u8,
    /// `ESC a` alignment.
    pub align: Align,
}

/// A `GS v 0` raster image.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Raster {
    /// The image.
    pub bitmap: Bitmap,
}

impl Raster {
    /// Width in dots.
    pub fn width(&self) -> u16 {
        self.bitmap.width()
    }
    /// Height in dots.
    pub fn height(&self) -> u16 {
        self.bitmap.height()
    }
    /// Rows with ink.
    pub fn ink_rows(&self) -> usize {
        self.bitmap.ink_rows()
    }
}

/// A QR code printed by the printer (`GS ( k`).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Qr {
    /// The stored data.
    pub payload: Vec<u8>,
    /// Module size in dots.
    pub module: u8,
    /// Error correction byte (48 = L, 49 = M, 50 = Q, 51 = H).
    pub ec: u8,
}

impl Qr {
    /// The payload as text.
    pub fn text(&self) -> String {
        String::from_utf8_lossy(&self.payload).into_owned()
    }
}

/// One decoded command or line, in order.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Item {
    /// `ESC @`.
    Init,
    /// `ESC R n`.
    International(u8),
    /// `FS .`.
    CancelKanji,
    /// `ESC t n`.
    CodeTable(u8),
    /// Text up to a line feed (an empty line is a line with no text).
    Line(Line),
    /// `GS v 0`.
    Raster(Raster),
    /// `GS ( k` print, with the data stored before it.
    Qr(Qr),
    /// `ESC d n`.
    Feed(u8),
    /// `GS V`: `full` for a full cut.
    Cut {
        /// Full (not partial) cut.
        full: bool,
    },
    /// `DLE EOT n`.
    StatusQuery(u8),
    /// `GS r 1`.
    CompletionCheck,
}

/// Where and why decoding stopped.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct DecodeError {
    /// Byte offset of the command that could not be decoded.
    pub offset: usize,
    /// What was wrong.
    pub message: String,
}

impl fmt::Display for DecodeError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "at byte {}: {}", self.offset, self.message)
    }
}

impl std::error::Error for DecodeError {}

/// Everything in a byte stream, in order.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct Decoded {
    /// The items.
    pub items: Vec<Item>,
}

impl Decoded {
    /// The text lines (empty lines included).
    pub fn lines(&self) -> impl Iterator<Item = &Line> {
        self.items.iter().filter_map(|i| match i {
            Item::Line(l) => Some(l),
            _ => None,
        })
    }

    /// The non-empty text lines' texts.
    pub fn texts(&self) -> Vec<&str> {
        self.lines()
            .map(|l| l.text.as_str())
            .filter(|t| !t.is_empty())
            .collect()
    }

    /// The raster images.
    pub fn rasters(&self) -> Vec<&Raster> {
        self.items
            .iter()
            .filter_map(|i| match i {
                Item::Raster(r) => Some(r),
                _ => None,
            })
            .collect()
    }

    /// The QR codes the printer draws.
    pub fn qrs(&self) -> Vec<&Qr> {
        self.items
            .iter()
            .filter_map(|i| match i {
                Item::Qr(q) => Some(q),
                _ => None,
            })
            .collect()
    }

    /// The `ESC t` numbers selected.
    pub fn code_tables(&self) -> Vec<u8> {
        self.items
            .iter()
            .filter_map(|i| match i {
                Item::CodeTable(n) => Some(*n),
                _ => None,
            })
            .collect()
    }

    /// Whether the items start with `ESC @`, `ESC R 0`, `FS .`, `ESC t n`.
    pub fn starts_with_init_sequence(&self) -> bool {
        matches!(
            self.items.as_slice(),
            [
                Item::Init,
                Item::International(0),
                Item::CancelKanji,
                Item::CodeTable(_),
                ..
            ]
        )
    }

    /// Whether the items end with a cut followed by `GS r 1`.
    pub fn ends_with_cut_and_check(&self) -> bool {
        matches!(
            self.items.as_slice(),
            [.., Item::Cut { .. }, Item::CompletionCheck]
        )
    }

    /// How many cuts.
    pub fn cuts(&self) -> usize {
        self.items
            .iter()
            .filter(|i| matches!(i, Item::Cut { .. }))
            .count()
    }

    /// Splits a stream of several jobs at each `ESC @` (items before the first go first).
    pub fn jobs(&self) -> Vec<Decoded> {
        let mut jobs: Vec<Decoded> = Vec::new();
        for item in &self.items {
            if *item == Item::Init || jobs.is_empty() {
                jobs.push(Decoded::default());
            }
            if let Some(job) = jobs.last_mut() {
                job.items.push(item.clone());
            }
        }
        jobs.retain(|j| !j.items.is_empty());
        jobs
    }

    /// A readable rendering: one printed line per line, images and QR codes described.
    pub fn to_text(&self) -> String {
        let mut out = String::new();
        for item in &self.items {
            match item {
                Item::Line(l) => {
                    let mut marks = Vec::new();
                    if l.bold {
                        marks.push("bold".to_string());
                    }
                    if (l.width, l.height) != (1, 1) {
                        marks.push(format!("{}x{}", l.width, l.height));
                    }
                    let pad = match l.align {
                        Align::Left => "",
                        Align::Center => "    ",
                        Align::Right => "        ",
                    };
                    if marks.is_empty() {
                        out.push_str(&format!("{pad}{}\n", l.text));
                    } else {
                        out.push_str(&format!("{pad}{}    [{}]\n", l.text, marks.join(", ")));
                    }
                }
                Item::Raster(r) => out.push_str(&format!(
                    "[image {}x{} dots, {} rows with ink]\n",
                    r.width(),
                    r.height(),
                    r.ink_rows()
                )),
                Item::Qr(q) => out.push_str(&format!("[QR {}]\n", q.text())),
                Item::Cut { full } => {
                    out.push_str(if *full { "[cut]\n" } else { "[partial cut]\n" })
                }
                Item::Feed(n) => out.push_str(&"\n".repeat(usize::from(*n))),
                Item::CodeTable(n) => out.push_str(&format!("[ESC t {n}]\n")),
                Item::StatusQuery(n) => out.push_str(&format!("[DLE EOT {n}]\n")),
                Item::CompletionCheck => out.push_str("[GS r 1]\n"),
                Item::Init | Item::International(_) | Item::CancelKanji => {}
            }
        }
        out
    }
}

/// Decodes a whole stream; text is read in `code_page`.
pub fn decode(bytes: &[u8], code_page: CodePage) -> Result<Decoded, DecodeError> {
    let (decoded, used) = decode_prefix(bytes, code_page)?;
    if used < bytes.len() {
        return Err(DecodeError {
            offset: used,
            message: "the stream ends inside a command or line".into(),
        });
    }
    Ok(decoded)
}

/// Decodes as much of `bytes` as forms complete commands and lines; returns the items and how
/// many bytes they used. The rest is an incomplete command or a line without its line feed
/// (for a reader that receives bytes in pieces).
pub fn decode_prefix(bytes: &[u8], code_page: CodePage) -> Result<(Decoded, usize), DecodeError> {
    let mut d = Decoder {
        bytes,
        code_page,
        pos: 0,
        items: Vec::new(),
        bold: false,
        width: 1,
        height: 1,
        align: Align::Left,
        qr_data: None,
        qr_module: 3,
        qr_ec: 48,
        text: Vec::new(),
        text_start: 0,
        used: 0,
    };
    d.run()?;
    Ok((Decoded { items: d.items }, d.used))
}

struct Decoder<'a> {
    bytes: &'a [u8],
    code_page: CodePage,
    pos: usize,
    items: Vec<Item>,
    bold: bool,
    width: u8,
    height: u8,
    align: Align,
    qr_data: Option<Vec<u8>>,
    qr_module: u8,
    qr_ec: u8,
    /// Text bytes of the current line and where it started.
    text: Vec<u8>,
    text_start: usize,
    /// Bytes fully decoded so far (a pending line is not counted).
    used: usize,
}

/// A command cut short by the end of the input.
struct Incomplete;

impl Decoder<'_> {
    fn run(&mut self) -> Result<(), DecodeError> {
        while self.pos < self.bytes.len() {
            let start = self.pos;
            match self.step() {
                Ok(()) => {}
                Err(Some(e)) => return Err(e),
                Err(None) => {
                    // Incomplete command: stop before it.
                    self.pos = start;
                    return Ok(());
                }
            }
            if self.text.is_empty() {
                self.used = self.pos;
            }
        }
        Ok(())
    }

    fn err(&self, offset: usize, message: impl Into<String>) -> Option<DecodeError> {
        Some(DecodeError {
            offset,
            message: message.into(),
        })
    }

    fn take(&mut self, n: usize) -> Result<&[u8], Incomplete> {
        if self.pos + n > self.bytes.len() {
            return Err(Incomplete);
        }
        let s = &self.bytes[self.pos..self.pos + n];
        self.pos += n;
        Ok(s)
    }

    fn byte(&mut self) -> Result<u8, Incomplete> {
        self.take(1).map(|s| s[0])
    }

    /// A command other than text and LF may only come at the start of a line.
    fn at_line_start(&self, offset: usize, what: &str) -> Result<(), Option<DecodeError>> {
        if self.text.is_empty() {
            Ok(())
        } else {
            Err(self.err(offset, format!("{what} in the middle of a text line")))
        }
    }

    fn step(&mut self) -> Result<(), Option<DecodeError>> {
        let at = self.pos;
        let b = self.byte().map_err(|_| None)?;
        let inc = |_: Incomplete| None;
        match b {
            LF => {
                let bytes = std::mem::take(&mut self.text);
                let text = bytes
                    .iter()
                    .map(|&b| self.code_page.decode_byte(b))
                    .collect();
                self.items.push(Item::Line(Line {
                    text,
                    bytes,
                    bold: self.bold,
                    width: self.width,
                    height: self.height,
                    align: self.align,
                }));
            }
            0x20..=0x7E | 0x80..=0xFF => {
                if self.text.is_empty() {
                    self.text_start = at;
                }
                self.text.push(b);
            }
            ESC => {
                let c = self.byte().map_err(inc)?;
                match c {
                    b'@' => {
                        self.at_line_start(at, "ESC @")?;
                        self.bold = false;
                        self.width = 1;
                        self.height = 1;
                        self.align = Align::Left;
                        self.items.push(Item::Init);
                    }
                    b'R' => {
                        let n = self.byte().map_err(inc)?;
                        self.items.push(Item::International(n));
                    }
                    b't' => {
                        let n = self.byte().map_err(inc)?;
                        self.items.push(Item::CodeTable(n));
                    }
                    b'a' => {
                        let n = self.byte().map_err(inc)?;
                        self.at_line_start(at, "ESC a")?;
                        self.align = match n {
                            0 | b'0' => Align::Left,
                            1 | b'1' => Align::Center,
                            2 | b'2' => Align::Right,
                            _ => return Err(self.err(at, format!("ESC a {n}"))),
                        };
                    }
                    b'E' => {
                        let n = self.byte().map_err(inc)?;
                        self.bold = n & 1 == 1;
                    }
                    b'd' => {
                        let n = self.byte().map_err(inc)?;
                        self.at_line_start(at, "ESC d")?;
                        self.items.push(Item::Feed(n));
                    }
                    _ => return Err(self.err(at, format!("unknown command ESC {c:#04x}"))),
                }
            }
            FS => {
                let c = self.byte().map_err(inc)?;
                if c != b'.' {
                    return Err(self.err(at, format!("unknown command FS {c:#04x}")));
                }
                self.items.push(Item::CancelKanji);
            }
            DLE => {
                let c = self.byte().map_err(inc)?;
                let n = self.byte().map_err(inc)?;
                if c != EOT || !(1..=4).contains(&n) {
                    return Err(self.err(at, format!("unknown command DLE {c:#04x} {n}")));
                }
                self.items.push(Item::StatusQuery(n));
            }
            GS => self.gs(at)?,
            _ => return Err(self.err(at, format!("control byte {b:#04x} in text"))),
        }
        Ok(())
    }

    fn gs(&mut self, at: usize) -> Result<(), Option<DecodeError>> {
        let inc = |_: Incomplete| None;
        let c = self.byte().map_err(inc)?;
        match c {
            b'!' => {
                let n = self.byte().map_err(inc)?;
                self.width = (n >> 4) + 1;
                self.height = (n & 0x0F) + 1;
                if self.width > 8 || self.height > 8 {
                    return Err(self.err(at, format!("GS ! {n:#04x}")));
                }
            }
            b'V' => {
                let m = self.byte().map_err(inc)?;
                self.at_line_start(at, "GS V")?;
                let full = match m {
                    0 | 48 => true,
                    1 | 49 => false,
                    65 | 66 => {
                        self.byte().map_err(inc)?;
                        m == 65
                    }
                    _ => return Err(self.err(at, format!("GS V {m}"))),
                };
                self.items.push(Item::Cut { full });
            }
            b'r' => {
                let n = self.byte().map_err(inc)?;
                if n != 1 && n != b'1' {
                    return Err(self.err(at, format!("GS r {n}")));
                }
                self.items.push(Item::CompletionCheck);
            }
            b'v' => {
                let head = self.take(6).map_err(inc)?;
                let (zero, m) = (head[0], head[1]);
                let wb = u16::from_le_bytes([head[2], head[3]]);
                let h = u16::from_le_bytes([head[4], head[5]]);
                if zero != b'0' || m != 0 {
                    return Err(self.err(at, format!("GS v {zero} {m}")));
                }
                self.at_line_start(at, "GS v 0")?;
                let data = self
                    .take(usize::from(wb) * usize::from(h))
                    .map_err(inc)?
                    .to_vec();
                let bitmap =
                    Bitmap::from_packed(wb, h, data).ok_or_else(|| self.err(at, "raster size"))?;
                self.items.push(Item::Raster(Raster { bitmap }));
            }
            b'(' => {
                let head = self.take(5).map_err(inc)?;
                let (k, pl, ph, cn, f) = (head[0], head[1], head[2], head[3], head[4]);
                if k != b'k' || cn != 49 {
                    return Err(self.err(at, format!("GS ( {k:#04x} cn={cn}")));
                }
                let len = usize::from(u16::from_le_bytes([pl, ph]));
                if len < 3 {
                    return Err(self.err(at, "GS ( k with too short a length"));
                }
                let rest = self.take(len - 2).map_err(inc)?.to_vec();
                match (f, rest.as_slice()) {
                    (65, [50, 0]) => {}
                    (67, [module]) => self.qr_module = *module,
                    (69, [ec]) => self.qr_ec = *ec,
                    (80, [48, data @ ..]) => self.qr_data = Some(data.to_vec()),
                    (81, [48]) => {
                        self.at_line_start(at, "QR print")?;
                        let payload = self
                            .qr_data
                            .clone()
                            .ok_or_else(|| self.err(at, "QR print without stored data"))?;
                        self.items.push(Item::Qr(Qr {
                            payload,
                            module: self.qr_module,
                            ec: self.qr_ec,
                        }));
                    }
                    _ => return Err(self.err(at, format!("GS ( k function {f} {rest:?}"))),
                }
            }
            _ => return Err(self.err(at, format!("unknown command GS {c:#04x}"))),
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::cmd;

    #[test]
    fn decodes_styles_and_text() {
        let mut b = Vec::new();
        b.extend_from_slice(&cmd::INIT);
        b.extend_from_slice(&cmd::INTERNATIONAL_USA);
        b.extend_from_slice(&cmd::CANCEL_KANJI);
        b.extend_from_slice(&cmd::code_table(19));
        b.extend_from_slice(&cmd::align(Align::Center));
        b.extend_from_slice(&cmd::bold(true));
        b.extend_from_slice(&cmd::size(2, 3));
        b.extend_from_slice(&[b'H', 0x84, b'\n']);
        b.extend_from_slice(&cmd::feed_and_cut());
        b.extend_from_slice(&cmd::COMPLETION_CHECK);
        let d = decode(&b, CodePage::Cp858).unwrap();
        assert!(d.starts_with_init_sequence());
        assert!(d.ends_with_cut_and_check());
        let line = d.lines().next().unwrap();
        assert_eq!(line.text, "Hä");
        assert!(line.bold);
        assert_eq!((line.width, line.height, line.align), (2, 3, Align::Center));
        assert_eq!(d.code_tables(), vec![19]);
    }

    #[test]
    fn rejects_unknown_and_truncated() {
        let e = decode(&[0x1B, b'Z', 0], CodePage::Cp437).unwrap_err();
        assert_eq!(e.offset, 0);
        assert!(decode(&[b'a', 0x07, b'\n'], CodePage::Cp437).is_err());
        assert!(decode(&[0x1D, b'v', b'0', 0, 1, 0, 2, 0, 0xFF], CodePage::Cp437).is_err());
        assert!(decode(b"no line feed", CodePage::Cp437).is_err());
    }

    #[test]
    fn prefix_stops_before_incomplete_command() {
        let mut b = b"ok\n".to_vec();
        b.extend_from_slice(&cmd::status_query(2));
        b.extend_from_slice(&[0x1D, b'r']);
        let (d, used) = decode_prefix(&b, CodePage::Cp437).unwrap();
        assert_eq!(used, 6);
        assert_eq!(d.items.last(), Some(&Item::StatusQuery(2)));
    }

    #[test]
    fn qr_round_trip() {
        let mut b = Vec::new();
        cmd::qr(&mut b, b"http://x/#t=1", 6);
        let d = decode(&b, CodePage::Cp437).unwrap();
        let qr = d.qrs()[0];
        assert_eq!(qr.text(), "http://x/#t=1");
        assert_eq!((qr.module, qr.ec), (6, 49));
    }
}
