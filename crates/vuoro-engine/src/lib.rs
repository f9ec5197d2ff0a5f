//! Vuoro's queue engine: a deterministic state machine.
//!
//! Commands go in with the current time as an argument; events come out. The engine reads no clock, does no
//! I/O and draws no random numbers (ticket tokens are passed in). Applying the same events to a fresh
//! engine rebuilds the same state: that is how the daemon starts up (snapshot + the events after it) and how
//! the read side follows the writer.

pub mod config;
mod engine;
pub use engine::State;
pub mod eta;
pub mod ids;
mod model;
pub mod view;

pub use config::{ConfigError, Hall};
pub use engine::{Conflict, Engine, EngineError};
pub use ids::{BadId, CounterId, DeviceId, ServiceId, SiteId, TicketToken, UnitId};
pub use model::*;
