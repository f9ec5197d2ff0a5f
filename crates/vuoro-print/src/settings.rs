//! Per-printer settings, read from a TOML table in the site config, for example
//!
//! ```toml
//! [printers.kiosk-1]
//! kind = "tcp"
//! address = "192.0.2.10:9100"
//! code_page = "cp858"
//! esc_t = 19
//! width_mm = 80
//! qr = true
//! ```
//!
//! `kind = "file"` takes `path` (a device such as `/dev/usb/lp0`, or a plain file) and
//! `kind = "virtual"` takes `dir`. Settings are checked when they are read: a value of
//! [`PrinterSettings`] is always usable.

use std::path::PathBuf;
use std::time::Duration;

use serde::{Deserialize, Serialize};

use crate::{CodePage, PrintError};

/// Where the bytes go.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
#[serde(tag = "kind", rename_all = "snake_case")]
pub enum Connection {
    /// A network printer (raw port 9100), `HOST:PORT`.
    Tcp {
        /// `HOST:PORT`.
        address: String,
    },
    /// A device file (`/dev/usb/lp0`) or a plain file.
    File {
        /// The path.
        path: PathBuf,
    },
    /// A directory that gets each job's bytes and a readable rendering.
    Virtual {
        /// The directory.
        dir: PathBuf,
    },
}

impl Connection {
    /// Parses `tcp:HOST:PORT`, `file:PATH` or `virtual:DIR`.
    pub fn parse(target: &str) -> Result<Connection, PrintError> {
        let bad = || PrintError::BadTarget(target.to_string());
        let (kind, rest) = target.split_once(':').ok_or_else(bad)?;
        if rest.is_empty() {
            return Err(bad());
        }
        match kind {
            "tcp"
                if rest
                    .rsplit_once(':')
                    .is_some_and(|(h, p)| !h.is_empty() && p.parse::<u16>().is_ok()) =>
            {
                Ok(Connection::Tcp {
                    address: rest.to_string(),
                })
            }
            "file" => Ok(Connection::File {
                path: PathBuf::from(rest),
            }),
            "virtual" => Ok(Connection::Virtual {
                dir: PathBuf::from(rest),
            }),
            _ => Err(bad()),
        }
    }
}

/// Paper roll width.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(try_from = "u32", into = "u32")]
pub enum PaperWidth {
    /// 58 mm roll: 384 dots, 32 characters of font A.
    Mm58,
    /// 80 mm roll: 576 dots, 48 characters of font A.
    Mm80,
}

impl PaperWidth {
    /// Printable dots per line at 203 dpi.
    pub fn dots(self) -> u16 {
        match self {
            PaperWidth::Mm58 => 384,
            PaperWidth::Mm80 => 576,
        }
    }

    /// Characters per line in font A (12 dots wide) at normal size.
    pub fn columns(self) -> usize {
        usize::from(self.dots() / 12)
    }

    /// The roll width in millimetres.
    pub fn mm(self) -> u32 {
        match self {
            PaperWidth::Mm58 => 58,
            PaperWidth::Mm80 => 80,
        }
    }
}

impl TryFrom<u32> for PaperWidth {
    type Error = PrintError;
    fn try_from(mm: u32) -> Result<Self, Self::Error> {
        match mm {
            58 => Ok(PaperWidth::Mm58),
            80 => Ok(PaperWidth::Mm80),
            other => Err(PrintError::BadWidth(other)),
        }
    }
}

impl From<PaperWidth> for u32 {
    fn from(w: PaperWidth) -> u32 {
        w.mm()
    }
}

/// The fonts tried, in order, for lines the code page cannot print: DejaVu Sans (Latin,
/// Cyrillic, Arabic) from `fonts-dejavu-core`, then WenQuanYi Micro Hei (Chinese) from
/// `fonts-wqy-microhei`, then Droid Sans Fallback from `fonts-droid-fallback`.
pub fn default_fonts() -> Vec<PathBuf> {
    [
        "/usr/share/fonts/truetype/dejavu/DejaVuSans.ttf",
        "/usr/share/fonts/truetype/wqy/wqy-microhei.ttc",
        "/usr/share/fonts/truetype/droid/DroidSansFallbackFull.ttf",
    ]
    .into_iter()
    .map(PathBuf::from)
    .collect()
}

/// One printer's settings. Build it by deserialising or with [`PrinterSettings::new`].
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(try_from = "RawSettings", into = "RawSettings")]
pub struct PrinterSettings {
    /// Where the bytes go.
    pub connection: Connection,
    /// The code page text is encoded in.
    pub code_page: CodePage,
    /// The `ESC t n` number that selects `code_page` on this model.
    pub esc_t: u8,
    /// Roll width.
    pub width: PaperWidth,
    /// Let the printer draw the QR code (`GS ( k`); `false` sends it as an image (for clones
    /// that lack QR support).
    pub qr: bool,
    /// Fonts for rasterised lines, tried in order.
    pub fonts: Vec<PathBuf>,
    /// Ask the printer for its status before a job and wait for `GS r 1` after it. Turn off
    /// only for a device that cannot answer (one-way USB adapters): then a written job counts
    /// as printed.
    pub status: bool,
    /// How long each `DLE EOT` reply may take before the printer counts as offline.
    pub status_timeout: Duration,
    /// How long the `GS r 1` reply may take after the job was sent.
    pub confirm_timeout: Duration,
}

impl PrinterSettings {
    /// Settings with the defaults: CP858 with Epson's `ESC t 19`, 80 mm, printer-drawn QR,
    /// the default fonts, status on, 1 s per status reply and 2 s for the confirmation.
    pub fn new(connection: Connection) -> PrinterSettings {
        PrinterSettings {
            connection,
            code_page: CodePage::Cp858,
            esc_t: CodePage::Cp858.epson_esc_t(),
            width: PaperWidth::Mm80,
            qr: true,
            fonts: default_fonts(),
            status: true,
            status_timeout: Duration::from_millis(1000),
            confirm_timeout: Duration::from_millis(2000),
        }
    }

    /// Sets the code page and, with it, Epson's `ESC t` number for it.
    pub fn with_code_page(mut self, code_page: CodePage) -> PrinterSettings {
        self.code_page = code_page;
        self.esc_t = code_page.epson_esc_t();
        self
    }
}

/// The settings as written in TOML.
#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
struct RawSettings {
    kind: String,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    address: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    path: Option<PathBuf>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    dir: Option<PathBuf>,
    #[serde(default = "default_code_page")]
    code_page: CodePage,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    esc_t: Option<u8>,
    #[serde(default = "default_width")]
    width_mm: PaperWidth,
    #[serde(default = "yes")]
    qr: bool,
    #[serde(default = "default_fonts")]
    fonts: Vec<PathBuf>,
    #[serde(default = "yes")]
    status: bool,
    #[serde(default = "default_status_ms")]
    status_timeout_ms: u64,
    #[serde(default = "default_confirm_ms")]
    confirm_timeout_ms: u64,
}

fn default_code_page() -> CodePage {
    CodePage::Cp858
}
fn default_width() -> PaperWidth {
    PaperWidth::Mm80
}
fn yes() -> bool {
    true
}
fn default_status_ms() -> u64 {
    1000
}
fn default_confirm_ms() -> u64 {
    2000
}

impl TryFrom<RawSettings> for PrinterSettings {
    type Error = PrintError;

    fn try_from(raw: RawSettings) -> Result<Self, Self::Error> {
        let need =
            |field: &str| PrintError::Settings(format!("kind = \"{}\" needs `{field}`", raw.kind));
        let stray = |field: &str| {
            PrintError::Settings(format!(
                "`{field}` does not apply to kind = \"{}\"",
                raw.kind
            ))
        };
        let connection = match raw.kind.as_str() {
            "tcp" => {
                if raw.path.is_some() {
                    return Err(stray("path"));
                }
                if raw.dir.is_some() {
                    return Err(stray("dir"));
                }
                let address = raw.address.clone().ok_or_else(|| need("address"))?;
                Connection::parse(&format!("tcp:{address}"))?
            }
            "file" => {
                if raw.address.is_some() {
                    return Err(stray("address"));
                }
                if raw.dir.is_some() {
                    return Err(stray("dir"));
                }
                Connection::File {
                    path: raw.path.clone().ok_or_else(|| need("path"))?,
                }
            }
            "virtual" => {
                if raw.address.is_some() {
                    return Err(stray("address"));
                }
                if raw.path.is_some() {
                    return Err(stray("path"));
                }
                Connection::Virtual {
                    dir: raw.dir.clone().ok_or_else(|| need("dir"))?,
                }
            }
            other => {
                return Err(PrintError::Settings(format!(
                    "unknown printer kind {other:?}; use \"tcp\", \"file\" or \"virtual\""
                )));
            }
        };
        if raw.fonts.is_empty() {
            return Err(PrintError::Settings(
                "`fonts` must list at least one font".into(),
            ));
        }
        if raw.status_timeout_ms == 0 || raw.confirm_timeout_ms == 0 {
            return Err(PrintError::Settings("timeouts must be above 0 ms".into()));
        }
        Ok(PrinterSettings {
            connection,
            code_page: raw.code_page,
            esc_t: raw.esc_t.unwrap_or(raw.code_page.epson_esc_t()),
            width: raw.width_mm,
            qr: raw.qr,
            fonts: raw.fonts,
            status: raw.status,
            status_timeout: Duration::from_millis(raw.status_timeout_ms),
            confirm_timeout: Duration::from_millis(raw.confirm_timeout_ms),
        })
    }
}

impl From<PrinterSettings> for RawSettings {
    fn from(s: PrinterSettings) -> RawSettings {
        let (kind, address, path, dir) = match s.connection {
            Connection::Tcp { address } => ("tcp", Some(address), None, None),
            Connection::File { path } => ("file", None, Some(path), None),
            Connection::Virtual { dir } => ("virtual", None, None, Some(dir)),
        };
        RawSettings {
            kind: kind.to_string(),
            address,
            path,
            dir,
            code_page: s.code_page,
            esc_t: Some(s.esc_t),
            width_mm: s.width,
            qr: s.qr,
            fonts: s.fonts,
            status: s.status,
            status_timeout_ms: u64::try_from(s.status_timeout.as_millis()).unwrap_or(u64::MAX),
            confirm_timeout_ms: u64::try_from(s.confirm_timeout.as_millis()).unwrap_or(u64::MAX),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn targets_parse() {
        assert_eq!(
            Connection::parse("tcp:127.0.0.1:9100").unwrap(),
            Connection::Tcp {
                address: "127.0.0.1:9100".into()
            }
        );
        assert_eq!(
            Connection::parse("file:/dev/usb/lp0").unwrap(),
            Connection::File {
                path: "/dev/usb/lp0".into()
            }
        );
        for bad in ["tcp:host", "tcp::9100", "usb:1", "file:", "lp0"] {
            assert!(Connection::parse(bad).is_err(), "{bad}");
        }
    }

    #[test]
    fn widths() {
        assert_eq!(PaperWidth::try_from(58).unwrap().dots(), 384);
        assert_eq!(PaperWidth::try_from(80).unwrap().columns(), 48);
        assert!(PaperWidth::try_from(76).is_err());
    }
}
