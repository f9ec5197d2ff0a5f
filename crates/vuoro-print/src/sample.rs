//! `vuoro print-sample`: prints a sample ticket so an installer can check a printer's
//! connection, code page number, width and fonts, and tells in plain words what went wrong.

use std::fmt;

use crate::{
    CodePage, Connection, JobOutcome, PaperWidth, PrintError, Printer, PrinterSettings, TicketPrint,
};

/// What to print with [`print_sample_with`].
#[derive(Debug, Clone)]
pub struct SampleRequest {
    /// `file:PATH`, `tcp:HOST:PORT` or `virtual:DIR`.
    pub target: String,
    /// Ticket language.
    pub lang: String,
    /// 58 or 80 (mm).
    pub width_mm: u32,
    /// Code page name (`cp858`).
    pub code_page: String,
    /// `ESC t n` to use; `None` for Epson's number for the code page.
    pub esc_t: Option<u8>,
}

/// The result of a sample print.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SampleOutcome {
    /// What the printer did.
    pub outcome: JobOutcome,
    /// Bytes in the job.
    pub bytes: usize,
    /// `ESC t` number used.
    pub esc_t: u8,
    /// One or two sentences for the installer.
    pub message: String,
}

impl fmt::Display for SampleOutcome {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.message)
    }
}

/// Prints a sample ticket with Epson's `ESC t` number for `code_page`.
pub fn print_sample(
    target: &str,
    lang: &str,
    width: u32,
    code_page: &str,
) -> Result<SampleOutcome, PrintError> {
    print_sample_with(&SampleRequest {
        target: target.to_string(),
        lang: lang.to_string(),
        width_mm: width,
        code_page: code_page.to_string(),
        esc_t: None,
    })
}

/// Prints a sample ticket as asked.
pub fn print_sample_with(req: &SampleRequest) -> Result<SampleOutcome, PrintError> {
    let code_page: CodePage = req.code_page.parse()?;
    let mut settings =
        PrinterSettings::new(Connection::parse(&req.target)?).with_code_page(code_page);
    settings.width = PaperWidth::try_from(req.width_mm)?;
    if let Some(n) = req.esc_t {
        settings.esc_t = n;
    }
    let ticket = sample_ticket(&req.lang, &settings);
    let mut printer = Printer::new(settings);
    let job = printer.render(&ticket)?;
    let outcome = printer.send(&job)?;
    let esc_t = printer.settings().esc_t;
    Ok(SampleOutcome {
        outcome,
        bytes: job.len(),
        esc_t,
        message: message(outcome, code_page, esc_t),
    })
}

/// The sample ticket: the test line shows at a glance whether `ESC t` picked the right page.
pub fn sample_ticket(lang: &str, settings: &PrinterSettings) -> TicketPrint {
    let test_line = match settings.code_page {
        CodePage::Cp866 => "Привет, ёлка! №5",
        CodePage::Cp858 => "Hyvää päivää, Åsa Öberg! 5 €",
        CodePage::Cp850 | CodePage::Cp865 => "Hyvää päivää, Åsa Öberg! ø Ø",
        CodePage::Cp437 => "Hyvää päivää, Åsa Öberg! é ü",
    };
    TicketPrint {
        site_name: "Vuoro print-sample".into(),
        number: "A001".into(),
        service_name: format!(
            "{} = ESC t {}, {} mm",
            settings.code_page,
            settings.esc_t,
            settings.width.mm()
        ),
        wait_hint: test_line.into(),
        people_ahead: 3,
        eta_minutes: Some(12),
        issued_at: "print-sample".into(),
        track_url: "http://127.0.0.1:8080/kiosk/track.html#t=print-sample".into(),
        lang: lang.into(),
        service_name_fi: None,
        wait_hint_fi: None,
    }
}

fn message(outcome: JobOutcome, cp: CodePage, esc_t: u8) -> String {
    match outcome {
        JobOutcome::Printed { near_end } => {
            let mut m = format!(
                "Printed. Check the line \"Hyvää päivää\" (or \"Привет\" for cp866): if its \
                 letters are wrong, this model needs another ESC t number than {esc_t} for {cp}."
            );
            if near_end {
                m.push_str(" The paper is near its end: change the roll soon.");
            }
            m
        }
        JobOutcome::Failed(fault) => {
            format!("Not printed ({}). {}", fault.code(), fault.staff_message())
        }
    }
}
