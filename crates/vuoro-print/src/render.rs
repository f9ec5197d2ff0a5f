//! Ticket layout: turns a [`TicketPrint`] into one ESC/POS job for one printer's settings.
//!
//! Every job starts `ESC @`, `ESC R 0`, `FS .`, `ESC t n` and ends with a feed, a cut and
//! `GS r 1` (whose reply tells the driver the job was processed). Each line goes out as
//! code-page text when the page has all its characters, else as a raster image drawn from a
//! font. The customer's lines come first, each followed by its Finnish line when the ticket is
//! in another language.

use crate::cmd::{self, Align};
use crate::labels::labels;
use crate::raster::{self, Fonts, TextStyle};
use crate::{PrintError, PrinterSettings, TicketPrint};

/// Em size of rasterised text at normal size, in dots (font A is 24 dots tall).
const RASTER_PX: f32 = 26.0;
/// Longest track URL put into a QR code.
const MAX_QR_BYTES: usize = 1000;

/// How a line is printed.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct LineStyle {
    /// Alignment (right-to-left raster lines turn `Left` into `Right`).
    pub align: Align,
    /// Emphasised.
    pub bold: bool,
    /// Width multiplier 1..=8.
    pub width: u8,
    /// Height multiplier 1..=8.
    pub height: u8,
}

impl LineStyle {
    const fn new(align: Align) -> LineStyle {
        LineStyle {
            align,
            bold: false,
            width: 1,
            height: 1,
        }
    }
    const fn bold(self) -> LineStyle {
        LineStyle { bold: true, ..self }
    }
    const fn size(self, width: u8, height: u8) -> LineStyle {
        LineStyle {
            width,
            height,
            ..self
        }
    }
}

const CENTER: LineStyle = LineStyle::new(Align::Center);
const LEFT: LineStyle = LineStyle::new(Align::Left);

/// An ESC/POS job being written, remembering the printer's current style so each command is
/// sent only when it changes.
pub struct JobWriter<'a> {
    out: Vec<u8>,
    settings: &'a PrinterSettings,
    fonts: &'a Fonts,
    current: LineStyle,
}

impl<'a> JobWriter<'a> {
    /// Starts a job with the init sequence.
    pub fn start(settings: &'a PrinterSettings, fonts: &'a Fonts) -> JobWriter<'a> {
        let mut out = Vec::with_capacity(4096);
        out.extend_from_slice(&cmd::INIT);
        out.extend_from_slice(&cmd::INTERNATIONAL_USA);
        out.extend_from_slice(&cmd::CANCEL_KANJI);
        out.extend_from_slice(&cmd::code_table(settings.esc_t));
        JobWriter {
            out,
            settings,
            fonts,
            current: LEFT,
        }
    }

    fn set_style(&mut self, style: LineStyle) {
        if style.align != self.current.align {
            self.out.extend_from_slice(&cmd::align(style.align));
        }
        if style.bold != self.current.bold {
            self.out.extend_from_slice(&cmd::bold(style.bold));
        }
        if (style.width, style.height) != (self.current.width, self.current.height) {
            self.out
                .extend_from_slice(&cmd::size(style.width, style.height));
        }
        self.current = style;
    }

    /// One logical line, wrapped to the paper: as text when the code page has every
    /// character, else as images.
    pub fn line(&mut self, text: &str, style: LineStyle) -> Result<(), PrintError> {
        let text = text.trim();
        match self.settings.code_page.encode(text) {
            Some(_) => {
                self.set_style(style);
                let columns = (self.settings.width.columns() / usize::from(style.width)).max(1);
                let rows = raster::wrap(text, |s| s.chars().count() as f32, columns as f32);
                for row in rows {
                    // Encoding cannot fail here: every row is a piece of `text`.
                    let bytes = self.settings.code_page.encode(&row).unwrap_or_default();
                    self.out.extend_from_slice(&bytes);
                    self.out.push(cmd::LF);
                }
            }
            None => {
                let images = raster::text_images(
                    self.fonts,
                    text,
                    TextStyle {
                        px: RASTER_PX * f32::from(style.height),
                        bold: style.bold,
                        align: style.align,
                    },
                    self.settings.width.dots(),
                )?;
                for img in images {
                    self.image(&img);
                }
            }
        }
        Ok(())
    }

    /// A full-width image at the start of a line.
    pub fn image(&mut self, img: &raster::Bitmap) {
        // Alignment does not move a full-width image; keep left so the printer's state is plain.
        self.set_style(LEFT);
        cmd::raster(&mut self.out, img.width_bytes(), img.height(), img.packed());
    }

    /// An empty line at normal size (an empty line at 8x8 would feed 192 dots).
    pub fn blank(&mut self) {
        self.set_style(LineStyle::new(self.current.align));
        self.out.push(cmd::LF);
    }

    /// The QR code: drawn by the printer (`GS ( k`) or sent as an image.
    pub fn qr(&mut self, data: &str) -> Result<(), PrintError> {
        if data.len() > MAX_QR_BYTES {
            return Err(PrintError::Qr(format!(
                "the address is {} bytes; at most {MAX_QR_BYTES} go into a ticket's QR code",
                data.len()
            )));
        }
        if self.settings.qr {
            self.set_style(CENTER);
            let module = if self.settings.width.dots() >= 576 {
                6
            } else {
                5
            };
            cmd::qr(&mut self.out, data.as_bytes(), module);
            // Some printers need a line feed to leave the symbol's line.
            self.out.push(cmd::LF);
        } else {
            let img = raster::qr_image(data, self.settings.width.dots())?;
            self.image(&img);
        }
        Ok(())
    }

    /// Feed, cut and ask for the completion reply; returns the job's bytes.
    pub fn finish(mut self) -> Vec<u8> {
        self.set_style(LEFT);
        self.out.extend_from_slice(&cmd::feed_lines(3));
        self.out.extend_from_slice(&cmd::feed_and_cut());
        self.out.extend_from_slice(&cmd::COMPLETION_CHECK);
        self.out
    }
}

/// The ESC/POS bytes of one ticket for one printer. Fonts are read from `settings.fonts` only
/// if a line needs them; a long-lived [`crate::Printer`] keeps them loaded instead.
pub fn render_ticket(
    ticket: &TicketPrint,
    settings: &PrinterSettings,
) -> Result<Vec<u8>, PrintError> {
    render_ticket_with(ticket, settings, &Fonts::new(&settings.fonts))
}

/// [`render_ticket`] with fonts that are already loaded.
pub fn render_ticket_with(
    ticket: &TicketPrint,
    settings: &PrinterSettings,
    fonts: &Fonts,
) -> Result<Vec<u8>, PrintError> {
    let l = labels(&ticket.lang);
    // The Finnish line under each customer line; none when the ticket is in Finnish.
    let fi = (l.lang != "fi").then(|| labels("fi"));
    let mut job = JobWriter::start(settings, fonts);

    job.line(&ticket.site_name, CENTER.bold())?;
    job.line(&ticket.service_name, CENTER.bold().size(1, 2))?;
    if fi.is_some()
        && let Some(name) = &ticket.service_name_fi
        && name != &ticket.service_name
    {
        job.line(name, CENTER)?;
    }
    job.blank();

    job.line(l.your_number, CENTER)?;
    if let Some(fi) = fi {
        job.line(fi.your_number, CENTER)?;
    }
    let m = number_size(&ticket.number, settings);
    job.line(&ticket.number, CENTER.bold().size(m, m))?;
    job.blank();

    if !ticket.wait_hint.trim().is_empty() {
        job.line(&ticket.wait_hint, CENTER.bold())?;
    }
    if fi.is_some()
        && let Some(hint) = &ticket.wait_hint_fi
        && hint != &ticket.wait_hint
        && !hint.trim().is_empty()
    {
        job.line(hint, CENTER)?;
    }
    job.line(l.wait_for_call, CENTER)?;
    if let Some(fi) = fi {
        job.line(fi.wait_for_call, CENTER)?;
    }
    job.blank();

    let ahead = ticket.people_ahead;
    job.line(&format!("{}: {ahead}", l.people_ahead), LEFT)?;
    if let Some(fi) = fi {
        job.line(&format!("{}: {ahead}", fi.people_ahead), LEFT)?;
    }
    if let Some(eta) = ticket.eta_minutes {
        job.line(&format!("{}: {eta} {}", l.estimated_wait, l.minutes), LEFT)?;
        if let Some(fi) = fi {
            job.line(
                &format!("{}: {eta} {}", fi.estimated_wait, fi.minutes),
                LEFT,
            )?;
        }
    }
    job.line(&format!("{}: {}", l.issued, ticket.issued_at), LEFT)?;
    if let Some(fi) = fi {
        job.line(&format!("{}: {}", fi.issued, ticket.issued_at), LEFT)?;
    }
    job.blank();

    job.qr(&ticket.track_url)?;
    job.line(l.follow_on_phone, CENTER)?;
    if let Some(fi) = fi {
        job.line(fi.follow_on_phone, CENTER)?;
    }
    Ok(job.finish())
}

/// The largest `GS !` multiplier (1..=8) at which the number fits on one line.
fn number_size(number: &str, settings: &PrinterSettings) -> u8 {
    let len = number.chars().count().max(1);
    u8::try_from((settings.width.columns() / len).clamp(1, 8)).unwrap_or(1)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::{Connection, PaperWidth};

    #[test]
    fn number_size_fits_width() {
        let mut s = PrinterSettings::new(Connection::Virtual { dir: "/tmp".into() });
        assert_eq!(number_size("A042", &s), 8);
        s.width = PaperWidth::Mm58;
        assert_eq!(number_size("A042", &s), 8);
        assert_eq!(number_size("A1234", &s), 6);
        assert_eq!(number_size("", &s), 8);
    }
}
