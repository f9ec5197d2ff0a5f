//! What a printer says about itself, and what became of a job.
//!
//! `DLE EOT n` (n = 1..=4) is answered with one byte even when the printer is offline; its
//! fixed bits are `0xx1xx10`. `GS r 1` is answered once everything before it was processed;
//! its fixed bits are `0xx0xxxx`, so the two kinds of reply cannot be confused.

use serde::{Serialize, Serializer};

/// The printer's state, from the four `DLE EOT` replies.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, Serialize)]
pub struct PrinterStatus {
    /// Answered and not offline.
    pub online: bool,
    /// The paper cover is open.
    pub cover_open: bool,
    /// No paper: nothing can be printed.
    pub paper_out: bool,
    /// The roll is nearly used up: printing still works.
    pub paper_near_end: bool,
}

impl PrinterStatus {
    /// A printer that did not answer.
    pub const OFFLINE: PrinterStatus = PrinterStatus {
        online: false,
        cover_open: false,
        paper_out: false,
        paper_near_end: false,
    };

    /// A printer that cannot report (plain file, virtual): assumed fine.
    pub const ASSUMED_OK: PrinterStatus = PrinterStatus {
        online: true,
        cover_open: false,
        paper_out: false,
        paper_near_end: false,
    };

    /// Reads the replies to `DLE EOT 1`, `2`, `3` and `4`, in that order.
    pub fn from_replies(replies: [u8; 4]) -> PrinterStatus {
        let [printer, offline_cause, error_cause, paper] = replies;
        // n=3: auto-cutter error, unrecoverable error, auto-recoverable error.
        let error = error_cause & 0x68 != 0;
        PrinterStatus {
            online: printer & 0x08 == 0 && !error,
            cover_open: offline_cause & 0x04 != 0,
            paper_out: offline_cause & 0x20 != 0 || paper & 0x60 != 0,
            paper_near_end: paper & 0x0C != 0,
        }
    }

    /// The fault that stops printing, if any (cover first: closing it is what staff do first).
    pub fn fault(&self) -> Option<Fault> {
        if self.cover_open {
            Some(Fault::CoverOpen)
        } else if self.paper_out {
            Some(Fault::PaperOut)
        } else if !self.online {
            Some(Fault::Offline)
        } else {
            None
        }
    }
}

/// Whether a byte has the fixed bits of a `DLE EOT` reply.
pub fn is_status_reply(b: u8) -> bool {
    b & 0x93 == 0x12
}

/// Whether a byte has the fixed bits of a `GS r 1` reply.
pub fn is_completion_reply(b: u8) -> bool {
    b & 0x90 == 0
}

/// Why a job was not printed. The names are the API's `print.fault` values.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum Fault {
    /// Out of paper.
    PaperOut,
    /// Cover open.
    CoverOpen,
    /// Did not answer, or reported itself offline or in error.
    Offline,
    /// The job was sent but its completion was never confirmed: it may or may not have printed.
    NoConfirmation,
}

impl Fault {
    /// The API code (`paper_out`).
    pub fn code(self) -> &'static str {
        match self {
            Fault::PaperOut => "paper_out",
            Fault::CoverOpen => "cover_open",
            Fault::Offline => "offline",
            Fault::NoConfirmation => "no_confirmation",
        }
    }

    /// What staff should do, in English (the desk and supervisor views translate by `code`).
    pub fn staff_message(self) -> &'static str {
        match self {
            Fault::PaperOut => "The printer is out of paper: load a new roll and close the cover.",
            Fault::CoverOpen => "The printer's cover is open: close it until it clicks.",
            Fault::Offline => {
                "The printer does not answer: check its power, its cable or network, and its error light."
            }
            Fault::NoConfirmation => {
                "The ticket was sent but the printer did not confirm it: check whether it came out (paper jam, cutter)."
            }
        }
    }
}

/// What became of one job.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum JobOutcome {
    /// The printer confirmed the job. `near_end`: the roll is nearly used up.
    Printed {
        /// The roll is nearly used up.
        near_end: bool,
    },
    /// Not printed (or, for `NoConfirmation`, not known to be printed). The job is dropped:
    /// it is never sent later by itself.
    Failed(Fault),
}

impl JobOutcome {
    /// The API's `print.status`: `printed` or `failed`.
    pub fn status(&self) -> &'static str {
        match self {
            JobOutcome::Printed { .. } => "printed",
            JobOutcome::Failed(_) => "failed",
        }
    }

    /// The fault, if it failed.
    pub fn fault(&self) -> Option<Fault> {
        match self {
            JobOutcome::Printed { .. } => None,
            JobOutcome::Failed(f) => Some(*f),
        }
    }
}

/// Serialises as the API's `print` object: `{"status": "printed", "fault": null, "near_end": false}`.
impl Serialize for JobOutcome {
    fn serialize<S: Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        #[derive(Serialize)]
        struct Wire {
            status: &'static str,
            fault: Option<Fault>,
            near_end: bool,
        }
        Wire {
            status: self.status(),
            fault: self.fault(),
            near_end: matches!(self, JobOutcome::Printed { near_end: true }),
        }
        .serialize(s)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn replies_map_to_status() {
        let ok = PrinterStatus::from_replies([0x12, 0x12, 0x12, 0x12]);
        assert_eq!(ok, PrinterStatus::ASSUMED_OK);
        assert_eq!(ok.fault(), None);

        let near = PrinterStatus::from_replies([0x12, 0x12, 0x12, 0x1E]);
        assert!(near.online && near.paper_near_end && !near.paper_out);

        let out = PrinterStatus::from_replies([0x1A, 0x32, 0x12, 0x72]);
        assert!(!out.online && out.paper_out);
        assert_eq!(out.fault(), Some(Fault::PaperOut));

        let cover = PrinterStatus::from_replies([0x1A, 0x16, 0x12, 0x12]);
        assert_eq!(cover.fault(), Some(Fault::CoverOpen));

        let off = PrinterStatus::from_replies([0x1A, 0x12, 0x12, 0x12]);
        assert_eq!(off.fault(), Some(Fault::Offline));

        let cutter = PrinterStatus::from_replies([0x12, 0x12, 0x1A, 0x12]);
        assert_eq!(cutter.fault(), Some(Fault::Offline));
    }

    #[test]
    fn reply_kinds_are_distinguishable() {
        for b in 0..=255u8 {
            assert!(!(is_status_reply(b) && is_completion_reply(b)), "{b:#x}");
        }
        assert!(is_status_reply(0x12) && is_completion_reply(0x00) && is_completion_reply(0x03));
    }

    #[test]
    fn outcome_serialises_like_the_api() {
        let v = serde_json::to_value(JobOutcome::Failed(Fault::PaperOut)).unwrap();
        assert_eq!(v["status"], "failed");
        assert_eq!(v["fault"], "paper_out");
        let v = serde_json::to_value(JobOutcome::Printed { near_end: true }).unwrap();
        assert_eq!(v["status"], "printed");
        assert!(v["fault"].is_null());
        assert_eq!(v["near_end"], true);
    }
}
