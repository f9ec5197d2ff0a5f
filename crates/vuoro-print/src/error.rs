//! The crate's error type: problems on our side (settings, fonts, files). A printer that is out
//! of paper or does not answer is not an error but a [`crate::JobOutcome::Failed`].

/// Why a ticket could not be rendered or handed to a printer.
#[derive(Debug, thiserror::Error)]
pub enum PrintError {
    /// A code page name that is not supported.
    #[error("unknown code page {0:?}; use one of cp437, cp850, cp858, cp865, cp866")]
    UnknownCodePage(String),
    /// A paper width other than 58 or 80 mm.
    #[error("paper width must be 58 or 80 mm, not {0}")]
    BadWidth(u32),
    /// A printer target that is not `tcp:HOST:PORT`, `file:PATH` or `virtual:DIR`.
    #[error("printer {0:?} must be tcp:HOST:PORT, file:PATH or virtual:DIR")]
    BadTarget(String),
    /// Inconsistent printer settings.
    #[error("printer settings: {0}")]
    Settings(String),
    /// No configured font has glyphs for a line the code page cannot print either.
    #[error(
        "no font covers the line {line:?} (missing {missing:?}); fonts tried: {fonts}{}",
        if problems.is_empty() { String::new() } else { format!(" ({problems})") }
    )]
    NoFont {
        /// The line.
        line: String,
        /// Characters no font has (at most 10).
        missing: String,
        /// The font paths tried.
        fonts: String,
        /// Fonts that could not be loaded, and why.
        problems: String,
    },
    /// The QR code could not be made.
    #[error("QR code: {0}")]
    Qr(String),
    /// A file or directory could not be written.
    #[error("{context}: {source}")]
    Io {
        /// What was being done.
        context: String,
        /// The underlying error.
        source: std::io::Error,
    },
}

impl PrintError {
    pub(crate) fn io(context: impl Into<String>, source: std::io::Error) -> PrintError {
        PrintError::Io {
            context: context.into(),
            source,
        }
    }
}
