//! Sending jobs: the network (raw TCP, port 9100), a device or plain file, or a virtual printer
//! directory. Blocking I/O with bounded waits: call it from a thread of its own (or
//! `spawn_blocking`), one job at a time per printer.
//!
//! For printers that can answer (TCP, a character device), each job goes:
//! 1. `DLE EOT 1..4`, each reply awaited for `status_timeout` (no reply: offline);
//! 2. refuse the job when the cover is open, the paper is out or the printer is offline;
//! 3. send the job, which ends with `GS r 1`;
//! 4. wait up to `confirm_timeout` for that reply: only then is the job printed.
//!
//! A job that fails is dropped: nothing is queued here and sent later by itself, so a ticket
//! never comes out of a printer minutes after the customer left. Reprinting is the caller's
//! decision.

use std::collections::VecDeque;
use std::fs::{File, OpenOptions};
use std::io::{self, Read, Write};
use std::net::{TcpStream, ToSocketAddrs};
use std::path::{Path, PathBuf};
use std::sync::mpsc::{self, Receiver, RecvTimeoutError};
use std::time::{Duration, Instant};

use crate::cmd;
use crate::raster::Fonts;
use crate::status::{is_completion_reply, is_status_reply};
use crate::{
    Connection, Fault, JobOutcome, PrintError, PrinterSettings, PrinterStatus, TicketPrint, decode,
    render,
};

/// How long connecting to a network printer may take.
const CONNECT_TIMEOUT: Duration = Duration::from_secs(2);

/// A two-way byte channel to a printer.
trait Link {
    fn send(&mut self, bytes: &[u8]) -> io::Result<()>;
    /// The next byte received before `deadline`, or `None` when none came.
    fn recv(&mut self, deadline: Instant) -> io::Result<Option<u8>>;
}

/// Asks `DLE EOT 1..4`; `Err(Offline)` as soon as one reply does not come in time.
fn query_status(link: &mut dyn Link, timeout: Duration) -> Result<PrinterStatus, Fault> {
    let mut replies = [0u8; 4];
    for (n, reply) in (1u8..=4).zip(replies.iter_mut()) {
        link.send(&cmd::status_query(n))
            .map_err(|_| Fault::Offline)?;
        *reply = wait_for(link, Instant::now() + timeout, is_status_reply).ok_or(Fault::Offline)?;
    }
    Ok(PrinterStatus::from_replies(replies))
}

/// Skips bytes until one matches `want`, or gives up at the deadline or on an error.
fn wait_for(link: &mut dyn Link, deadline: Instant, want: fn(u8) -> bool) -> Option<u8> {
    loop {
        match link.recv(deadline) {
            Ok(Some(b)) if want(b) => return Some(b),
            Ok(Some(b)) => tracing::debug!(byte = b, "printer sent an unexpected byte"),
            Ok(None) => return None,
            Err(e) => {
                tracing::debug!(error = %e, "printer link failed while waiting for a reply");
                return None;
            }
        }
    }
}

/// Runs one job on a link that can answer.
fn run_job(link: &mut dyn Link, job: &[u8], settings: &PrinterSettings) -> JobOutcome {
    let status = match query_status(link, settings.status_timeout) {
        Ok(s) => s,
        Err(fault) => return JobOutcome::Failed(fault),
    };
    if let Some(fault) = status.fault() {
        return JobOutcome::Failed(fault);
    }
    if let Err(e) = link.send(job) {
        tracing::warn!(error = %e, "sending a job to the printer failed");
        return JobOutcome::Failed(Fault::Offline);
    }
    match wait_for(
        link,
        Instant::now() + settings.confirm_timeout,
        is_completion_reply,
    ) {
        // GS r 1 answers with the paper sensor: bits 0-1 near end.
        Some(reply) => JobOutcome::Printed {
            near_end: status.paper_near_end || reply & 0x03 != 0,
        },
        None => JobOutcome::Failed(Fault::NoConfirmation),
    }
}

/// A network printer connection, one per job.
struct TcpLink {
    stream: TcpStream,
    pending: VecDeque<u8>,
}

impl TcpLink {
    fn connect(address: &str) -> io::Result<TcpLink> {
        let mut last = io::Error::new(io::ErrorKind::NotFound, "address resolves to nothing");
        for addr in address.to_socket_addrs()? {
            match TcpStream::connect_timeout(&addr, CONNECT_TIMEOUT) {
                Ok(stream) => {
                    stream.set_nodelay(true)?;
                    stream.set_write_timeout(Some(Duration::from_secs(10)))?;
                    return Ok(TcpLink {
                        stream,
                        pending: VecDeque::new(),
                    });
                }
                Err(e) => last = e,
            }
        }
        Err(last)
    }
}

impl Link for TcpLink {
    fn send(&mut self, bytes: &[u8]) -> io::Result<()> {
        self.stream.write_all(bytes)?;
        self.stream.flush()
    }

    fn recv(&mut self, deadline: Instant) -> io::Result<Option<u8>> {
        if let Some(b) = self.pending.pop_front() {
            return Ok(Some(b));
        }
        let now = Instant::now();
        if now >= deadline {
            return Ok(None);
        }
        self.stream.set_read_timeout(Some(deadline - now))?;
        let mut buf = [0u8; 64];
        match self.stream.read(&mut buf) {
            Ok(0) => Err(io::ErrorKind::UnexpectedEof.into()),
            Ok(n) => {
                self.pending.extend(&buf[..n]);
                Ok(self.pending.pop_front())
            }
            Err(e)
                if matches!(
                    e.kind(),
                    io::ErrorKind::WouldBlock | io::ErrorKind::TimedOut
                ) =>
            {
                Ok(None)
            }
            Err(e) => Err(e),
        }
    }
}

/// A character device (`/dev/usb/lp0`) opened read-write, with a thread that reads its replies
/// (a file has no read timeout). The link stays open across jobs, so a printer that is powered
/// but silent does not cost a new thread per job; it is reopened only once it is `broken`
/// (unplugged: writes or reads fail).
struct DeviceLink {
    file: File,
    replies: Receiver<Vec<u8>>,
    pending: VecDeque<u8>,
    broken: bool,
}

impl DeviceLink {
    fn open(path: &Path) -> io::Result<DeviceLink> {
        let file = OpenOptions::new().read(true).write(true).open(path)?;
        let mut reader = file.try_clone()?;
        let (tx, rx) = mpsc::channel::<Vec<u8>>();
        std::thread::Builder::new()
            .name("vuoro-print-device-reader".into())
            .spawn(move || {
                let mut buf = [0u8; 64];
                loop {
                    match reader.read(&mut buf) {
                        // Nothing to read: make sure someone still listens, then poll again.
                        Ok(0) => {
                            if tx.send(Vec::new()).is_err() {
                                return;
                            }
                            std::thread::sleep(Duration::from_millis(20));
                        }
                        Ok(n) => {
                            if tx.send(buf[..n].to_vec()).is_err() {
                                return;
                            }
                        }
                        Err(e) if e.kind() == io::ErrorKind::Interrupted => {}
                        Err(_) => return,
                    }
                }
            })?;
        Ok(DeviceLink {
            file,
            replies: rx,
            pending: VecDeque::new(),
            broken: false,
        })
    }

    /// Forgets replies left over from an earlier job.
    fn drain(&mut self) {
        self.pending.clear();
        while self.replies.try_recv().is_ok() {}
    }
}

impl Link for DeviceLink {
    fn send(&mut self, bytes: &[u8]) -> io::Result<()> {
        let result = self.file.write_all(bytes).and_then(|()| self.file.flush());
        self.broken |= result.is_err();
        result
    }

    fn recv(&mut self, deadline: Instant) -> io::Result<Option<u8>> {
        loop {
            if let Some(b) = self.pending.pop_front() {
                return Ok(Some(b));
            }
            let wait = deadline.saturating_duration_since(Instant::now());
            if wait.is_zero() {
                return Ok(None);
            }
            match self.replies.recv_timeout(wait) {
                Ok(chunk) => self.pending.extend(chunk),
                Err(RecvTimeoutError::Timeout) => return Ok(None),
                Err(RecvTimeoutError::Disconnected) => {
                    self.broken = true;
                    return Err(io::ErrorKind::BrokenPipe.into());
                }
            }
        }
    }
}

fn is_char_device(path: &Path) -> bool {
    #[cfg(unix)]
    {
        use std::os::unix::fs::FileTypeExt;
        std::fs::metadata(path).is_ok_and(|m| m.file_type().is_char_device())
    }
    #[cfg(not(unix))]
    {
        let _ = path;
        false
    }
}

/// One configured printer: settings, fonts kept loaded, and an open device if it is one.
pub struct Printer {
    settings: PrinterSettings,
    fonts: Fonts,
    device: Option<DeviceLink>,
}

// A printer is moved to its own thread by the daemon.
const _: fn() = || {
    fn is_send<T: Send + 'static>() {}
    is_send::<Printer>();
};

impl std::fmt::Debug for Printer {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Printer")
            .field("settings", &self.settings)
            .field("device_open", &self.device.is_some())
            .finish()
    }
}

impl Printer {
    /// A printer; nothing is opened until the first job.
    pub fn new(settings: PrinterSettings) -> Printer {
        let fonts = Fonts::new(&settings.fonts);
        Printer {
            settings,
            fonts,
            device: None,
        }
    }

    /// The settings.
    pub fn settings(&self) -> &PrinterSettings {
        &self.settings
    }

    /// The ticket's bytes for this printer.
    pub fn render(&self, ticket: &TicketPrint) -> Result<Vec<u8>, PrintError> {
        render::render_ticket_with(ticket, &self.settings, &self.fonts)
    }

    /// Renders and sends one ticket.
    pub fn print_ticket(&mut self, ticket: &TicketPrint) -> Result<JobOutcome, PrintError> {
        let job = self.render(ticket)?;
        self.send(&job)
    }

    /// Sends one job (a `GS r 1` is appended when it does not end with one). `Err` only for
    /// problems on this side (a plain file or directory that cannot be written); a printer
    /// that cannot print gives `Ok(JobOutcome::Failed(_))`.
    pub fn send(&mut self, job: &[u8]) -> Result<JobOutcome, PrintError> {
        let mut owned;
        let job = if job.ends_with(&cmd::COMPLETION_CHECK) {
            job
        } else {
            owned = job.to_vec();
            owned.extend_from_slice(&cmd::COMPLETION_CHECK);
            &owned
        };
        match self.settings.connection.clone() {
            Connection::Tcp { address } => Ok(self.send_tcp(&address, job)),
            Connection::File { path } if is_char_device(&path) => Ok(self.send_device(&path, job)),
            Connection::File { path } => {
                append(&path, job)?;
                Ok(JobOutcome::Printed { near_end: false })
            }
            Connection::Virtual { dir } => {
                write_virtual(&dir, job, &self.settings)?;
                Ok(JobOutcome::Printed { near_end: false })
            }
        }
    }

    /// Asks the printer how it is, without printing. Plain files and virtual printers are
    /// always fine.
    pub fn status(&mut self) -> PrinterStatus {
        let timeout = self.settings.status_timeout;
        match self.settings.connection.clone() {
            Connection::Tcp { address } => match TcpLink::connect(&address) {
                Ok(mut link) => query_status(&mut link, timeout).unwrap_or(PrinterStatus::OFFLINE),
                Err(_) => PrinterStatus::OFFLINE,
            },
            Connection::File { path } if is_char_device(&path) => {
                let Some(link) = self.device(&path) else {
                    return PrinterStatus::OFFLINE;
                };
                let status = query_status(link, timeout).unwrap_or(PrinterStatus::OFFLINE);
                if link.broken {
                    self.device = None;
                }
                status
            }
            Connection::File { .. } | Connection::Virtual { .. } => PrinterStatus::ASSUMED_OK,
        }
    }

    fn send_tcp(&mut self, address: &str, job: &[u8]) -> JobOutcome {
        let mut link = match TcpLink::connect(address) {
            Ok(link) => link,
            Err(e) => {
                tracing::warn!(address, error = %e, "cannot connect to the printer");
                return JobOutcome::Failed(Fault::Offline);
            }
        };
        if self.settings.status {
            run_job(&mut link, job, &self.settings)
        } else {
            match link.send(job) {
                Ok(()) => JobOutcome::Printed { near_end: false },
                Err(_) => JobOutcome::Failed(Fault::Offline),
            }
        }
    }

    fn device(&mut self, path: &Path) -> Option<&mut DeviceLink> {
        if self.device.is_none() {
            match DeviceLink::open(path) {
                Ok(link) => self.device = Some(link),
                Err(e) => {
                    tracing::warn!(path = %path.display(), error = %e,
                        "cannot open the printer device read-write (is the user in group lp?)");
                    return None;
                }
            }
        }
        let link = self.device.as_mut()?;
        link.drain();
        Some(link)
    }

    fn send_device(&mut self, path: &Path, job: &[u8]) -> JobOutcome {
        let settings = self.settings.clone();
        let Some(link) = self.device(path) else {
            return JobOutcome::Failed(Fault::Offline);
        };
        let outcome = if settings.status {
            run_job(link, job, &settings)
        } else {
            match link.send(job) {
                Ok(()) => JobOutcome::Printed { near_end: false },
                Err(_) => JobOutcome::Failed(Fault::Offline),
            }
        };
        if link.broken {
            // Unplugged: open it afresh next time.
            self.device = None;
        }
        outcome
    }
}

fn append(path: &Path, job: &[u8]) -> Result<(), PrintError> {
    let mut f = OpenOptions::new()
        .create(true)
        .append(true)
        .open(path)
        .map_err(|e| PrintError::io(format!("opening {}", path.display()), e))?;
    f.write_all(job)
        .map_err(|e| PrintError::io(format!("writing {}", path.display()), e))
}

/// Writes `<n>.bin` (the bytes) and `<n>.txt` (what would be printed) into `dir`, and a PBM
/// picture of each raster image (`<n>-<k>.pbm`). Returns the job's file stem.
fn write_virtual(
    dir: &Path,
    job: &[u8],
    settings: &PrinterSettings,
) -> Result<PathBuf, PrintError> {
    let ctx = |what: &str, p: &Path| format!("{what} {}", p.display());
    std::fs::create_dir_all(dir).map_err(|e| PrintError::io(ctx("creating", dir), e))?;
    let next = std::fs::read_dir(dir)
        .map_err(|e| PrintError::io(ctx("reading", dir), e))?
        .filter_map(|e| e.ok())
        .filter_map(|e| {
            let name = e.file_name().into_string().ok()?;
            name.strip_suffix(".bin")?.parse::<u64>().ok()
        })
        .max()
        .unwrap_or(0)
        + 1;
    let stem = dir.join(next.to_string());
    let bin = stem.with_extension("bin");
    std::fs::write(&bin, job).map_err(|e| PrintError::io(ctx("writing", &bin), e))?;
    let text = match decode::decode(job, settings.code_page) {
        Ok(d) => {
            for (k, r) in d.rasters().iter().enumerate() {
                let pbm = dir.join(format!("{next}-{}.pbm", k + 1));
                std::fs::write(&pbm, r.bitmap.to_pbm())
                    .map_err(|e| PrintError::io(ctx("writing", &pbm), e))?;
            }
            d.to_text()
        }
        Err(e) => format!("(could not decode the job: {e})\n"),
    };
    let txt = stem.with_extension("txt");
    std::fs::write(&txt, text).map_err(|e| PrintError::io(ctx("writing", &txt), e))?;
    Ok(stem)
}

#[cfg(test)]
mod tests {
    use super::*;

    /// A scripted link: replies come from a queue, in order, each only after a send.
    struct Scripted {
        sent: Vec<u8>,
        replies: VecDeque<Option<u8>>,
        ready: VecDeque<u8>,
    }

    impl Link for Scripted {
        fn send(&mut self, bytes: &[u8]) -> io::Result<()> {
            self.sent.extend_from_slice(bytes);
            if let Some(Some(b)) = self.replies.pop_front() {
                self.ready.push_back(b);
            }
            Ok(())
        }
        fn recv(&mut self, _deadline: Instant) -> io::Result<Option<u8>> {
            Ok(self.ready.pop_front())
        }
    }

    fn settings() -> PrinterSettings {
        PrinterSettings::new(Connection::Virtual { dir: "/tmp".into() })
    }

    #[test]
    fn stray_bytes_are_skipped() {
        let mut link = Scripted {
            sent: Vec::new(),
            // An ASB-like 0x00 before the real status byte of DLE EOT 1 would be a completion
            // byte, not a status one: it is skipped.
            replies: [Some(0x12), Some(0x12), Some(0x12), Some(0x12), Some(0x00)].into(),
            ready: [0x00].into(),
        };
        let out = run_job(&mut link, b"x\n", &settings());
        assert_eq!(out, JobOutcome::Printed { near_end: false });
        assert!(link.sent.ends_with(b"x\n"));
    }

    #[test]
    fn completion_reply_reports_near_end() {
        let mut link = Scripted {
            sent: Vec::new(),
            replies: [Some(0x12), Some(0x12), Some(0x12), Some(0x12), Some(0x03)].into(),
            ready: VecDeque::new(),
        };
        let out = run_job(&mut link, b"x\n", &settings());
        assert_eq!(out, JobOutcome::Printed { near_end: true });
    }

    #[test]
    fn refused_job_is_not_sent() {
        let mut link = Scripted {
            sent: Vec::new(),
            replies: [Some(0x1A), Some(0x32), Some(0x12), Some(0x72)].into(),
            ready: VecDeque::new(),
        };
        let out = run_job(&mut link, b"secret\n", &settings());
        assert_eq!(out, JobOutcome::Failed(Fault::PaperOut));
        assert!(!link.sent.windows(6).any(|w| w == b"secret"));
    }
}
