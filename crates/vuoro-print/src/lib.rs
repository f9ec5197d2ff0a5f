//! Vuoro's ticket printing on ESC/POS thermal printers.
//!
//! - [`render_ticket`] lays a [`TicketPrint`] out for one printer's [`PrinterSettings`]: text in
//!   the printer's code page, encoded strictly (never UTF-8); lines the page cannot print
//!   (Arabic, Chinese, Cyrillic without CP866) drawn from a font as raster images; the number
//!   very large; the QR code of the tracking page; feed, cut and a completion check.
//! - [`Printer`] sends jobs over TCP, to a device or file, or to a virtual printer directory,
//!   asks the printer's status first and waits for its confirmation ([`JobOutcome`]).
//! - [`decode`] turns job bytes back into what would be printed; [`fake`] is a scripted fake
//!   network printer for tests.
//! - [`print_sample`] backs `vuoro print-sample`.
//!
//! Nothing here knows about queues or HTTP; the daemon calls it from a blocking thread.

mod cmd;
mod codepage;
pub mod decode;
mod driver;
mod error;
pub mod fake;
mod labels;
mod raster;
mod render;
mod sample;
mod settings;
mod shape;
mod status;
mod ticket;

pub use cmd::Align;
pub use codepage::CodePage;
pub use driver::Printer;
pub use error::PrintError;
pub use labels::{LANGUAGES, Labels, find_labels, labels};
pub use raster::{Bitmap, Fonts, qr_image};
pub use render::{render_ticket, render_ticket_with};
pub use sample::{SampleOutcome, SampleRequest, print_sample, print_sample_with, sample_ticket};
pub use settings::{Connection, PaperWidth, PrinterSettings, default_fonts};
pub use status::{Fault, JobOutcome, PrinterStatus};
pub use ticket::TicketPrint;
