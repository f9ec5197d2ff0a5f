//! Vuoro's reports, computed from the committed event log.
//!
//! - `facts`: the pure fold from events to visit facts (one per ticket and queue) and counter time.
//! - `cells`: facts summed per site, local hour, service, counter and staff member: the aggregates that
//!   are kept for good once ticket-level detail is purged.
//! - `report`: cells summed into report tables (JSON rows, CSV).
//! - `store`: the reports' side of the database, through `vuoro_store::Database` only: folding complete
//!   days into the rollups, the tail of the current day computed on the fly, the retention purge, the
//!   audit trail.
//! - `cli`: `vuoro report` and `vuoro purge`.
//!
//! This crate reads the engine's event types and reaches the database only through vuoro-store's
//! `Database` trait; the engine and the daemon's write path do not depend on it. See docs/reports.md and docs/privacy.md.

pub mod cells;
pub mod cli;
pub mod facts;
pub mod report;
pub mod store;

pub use facts::{Fact, Folder, Outcome, facts_for};
pub use report::{Group, Query, Table};
