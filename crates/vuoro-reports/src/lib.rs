//! Vuoro's reports, computed from the committed event log.
//!
//! - `facts`: the pure fold from events to visit facts (one per ticket and queue) and counter time.
//! - `cells`: facts summed per site, local hour, service, counter and staff member: the aggregates that
//!   are kept for good once ticket-level detail is purged.
//! - `report`: cells summed into report tables (JSON rows, CSV).
//! - `store`: the SQLite side: folding complete days into `report_cells`, the tail of the current day
//!   computed on the fly, the retention purge, ticket tokens blanked once their day is over, the audit trail.
//! - `cli`: `vuoro report` and `vuoro purge`.
//!
//! This crate reads the engine's event types and the store's tables; the engine and the daemon's write
//! path do not depend on it. See docs/reports.md and docs/privacy.md.

pub mod cells;
pub mod cli;
pub mod facts;
pub mod report;
pub mod store;

pub use facts::{Fact, Folder, Outcome, facts_for};
pub use report::{Group, Query, Table};
