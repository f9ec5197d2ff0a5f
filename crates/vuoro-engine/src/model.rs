//! The engine's data: tickets, counters, commands and events.

use std::collections::{BTreeMap, BTreeSet};

use chrono::{DateTime, NaiveDate, Utc};
use serde::{Deserialize, Serialize};

use crate::ids::{CounterId, DeviceId, ServiceId, SiteId, TicketToken};

pub type TicketId = u64;

#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize, PartialOrd, Ord)]
#[serde(rename_all = "snake_case")]
pub enum TicketState {
    Waiting,
    Called,
    Serving,
    Finished,
    NoShow,
    Cancelled,
    Parked,
}

impl TicketState {
    /// A final state: the ticket's visit is over. A no-show may still be brought back within the tolerance,
    /// after which it stays final.
    pub fn is_final(self) -> bool {
        matches!(
            self,
            TicketState::Finished | TicketState::NoShow | TicketState::Cancelled
        )
    }
    pub fn as_str(self) -> &'static str {
        match self {
            TicketState::Waiting => "waiting",
            TicketState::Called => "called",
            TicketState::Serving => "serving",
            TicketState::Finished => "finished",
            TicketState::NoShow => "no_show",
            TicketState::Cancelled => "cancelled",
            TicketState::Parked => "parked",
        }
    }
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize, Default)]
#[serde(rename_all = "snake_case")]
pub enum Priority {
    #[default]
    Normal,
    /// The customer asked for assistance: called first, never shown as such on public screens.
    Assist,
}

impl Priority {
    /// Sort rank: lower is called first.
    pub fn rank(self) -> u8 {
        match self {
            Priority::Assist => 0,
            Priority::Normal => 1,
        }
    }
}

/// Where a ticket was taken.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Channel {
    /// At a ticket kiosk in the hall.
    Kiosk,
    /// By staff for a customer at the desk.
    Staff,
    /// From the customer's own phone (a service with `remote_join`).
    Remote,
}

impl Channel {
    pub fn as_str(self) -> &'static str {
        match self {
            Channel::Kiosk => "kiosk",
            Channel::Staff => "staff",
            Channel::Remote => "remote",
        }
    }
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize, Default)]
#[serde(rename_all = "snake_case")]
pub enum Position {
    Front,
    Back,
    #[default]
    Original,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize, Default)]
#[serde(rename_all = "snake_case")]
pub enum ReturnTo {
    #[default]
    Counter,
    Queue,
}

#[derive(Debug, Clone, Serialize, Deserialize, PartialEq)]
pub struct Ticket {
    pub id: TicketId,
    pub site: SiteId,
    pub number: String,
    pub series: String,
    pub seq_no: u32,
    pub service: ServiceId,
    pub state: TicketState,
    pub priority: Priority,
    pub lang: String,
    pub token: TicketToken,
    pub channel: Channel,
    pub issued_at: DateTime<Utc>,
    /// Queue order key: lower is earlier. Issue order, or moved by a transfer.
    pub order: i64,
    /// The order key it was issued with (for "original place" transfers).
    pub original_order: i64,
    /// When it started waiting in its current queue.
    pub queued_at: DateTime<Utc>,
    pub counter: Option<CounterId>,
    /// Only this counter may call it (a transfer to a counter).
    pub target_counter: Option<CounterId>,
    pub called_at: Option<DateTime<Utc>>,
    pub served_at: Option<DateTime<Utc>>,
    pub ended_at: Option<DateTime<Utc>>,
    pub recalls: u32,
    /// `counter:<id>` or `service:<id>`: where a transfer came from.
    pub transferred_from: Option<String>,
    pub passed_on_from: Option<ServiceId>,
    /// Services visited before the current one in this visit (pass-ons).
    pub visited: Vec<ServiceId>,
    pub end_reason: Option<String>,
    /// The customer's answer to the feedback question (1..=5), once the visit was finished; None until
    /// then. Feedback is given at most once per visit.
    #[serde(default)]
    pub feedback: Option<u8>,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum CounterStatus {
    Closed,
    Open,
    Calling,
    Serving,
}

impl CounterStatus {
    pub fn as_str(self) -> &'static str {
        match self {
            CounterStatus::Closed => "closed",
            CounterStatus::Open => "open",
            CounterStatus::Calling => "calling",
            CounterStatus::Serving => "serving",
        }
    }
}

#[derive(Debug, Clone, Serialize, Deserialize, PartialEq, Default)]
pub struct CounterState {
    pub open: bool,
    pub user: Option<String>,
    pub current: Option<TicketId>,
    pub opened_at: Option<DateTime<Utc>>,
}

#[derive(Debug, Clone, Serialize, Deserialize, PartialEq)]
pub struct ServiceState {
    /// False when a supervisor stopped new tickets.
    pub accepting: bool,
    /// Moving average of service time (seconds), from the service's finished tickets.
    pub avg_service_secs: f64,
    pub served_today: u32,
    /// Moving average of the time a ticket holds a counter, from call to finish (seconds); 0 until one
    /// has been measured. The wait estimate plays the queues forward with it (eta.rs).
    #[serde(default)]
    pub avg_busy_secs: f64,
    /// Tickets measured into `avg_busy_secs` (a plain mean until there are enough for the moving average).
    #[serde(default)]
    pub busy_samples: u64,
}

#[derive(Debug, Clone, Serialize, Deserialize, PartialEq)]
pub struct SiteState {
    pub date: NaiveDate,
    /// Time of the latest event at this site: the estimates' "now" when no time is given.
    #[serde(default)]
    pub last_at: Option<DateTime<Utc>>,
    /// Alerts not yet cleared, by id (the seq that raised them).
    #[serde(default)]
    pub alerts: BTreeMap<u64, Alert>,
    /// Latest status per printing device.
    #[serde(default)]
    pub printers: BTreeMap<DeviceId, DeviceStatus>,
    /// Latest status per hall display (`online`, `frozen`, `offline`: vuoro-server's displays.rs).
    #[serde(default)]
    pub displays: BTreeMap<String, DeviceStatus>,
    /// Next number to try per series letter.
    pub series_next: BTreeMap<String, u32>,
    pub next_order: i64,
    /// Today's tickets, all states.
    pub tickets: BTreeMap<TicketId, Ticket>,
    pub counters: BTreeMap<CounterId, CounterState>,
    pub services: BTreeMap<ServiceId, ServiceState>,
    /// "client\u{1f}key" -> ticket, for today's Idempotency-Keys.
    pub idempotency: BTreeMap<String, TicketId>,
    /// Today's feedback answers: how many gave 1, 2, 3, 4 and 5 (the public open data's day totals).
    #[serde(default)]
    pub feedback: [u32; 5],
    /// Waiting tickets per service, in call order: (priority rank, order, id). Derived; rebuilt on load.
    #[serde(skip)]
    pub waiting: BTreeMap<ServiceId, BTreeSet<(u8, i64, TicketId)>>,
    /// Numbers in use by non-final tickets, per series. Derived; rebuilt on load.
    #[serde(skip)]
    pub active_numbers: BTreeMap<String, BTreeSet<u32>>,
    /// Waiting tickets sent to one counter, per counter, in call order. Derived; rebuilt on load.
    #[serde(skip)]
    pub targeted: BTreeMap<CounterId, BTreeSet<(u8, i64, TicketId)>>,
}

#[derive(Debug, Clone, Serialize, Deserialize, PartialEq)]
pub struct Alert {
    pub id: u64,
    pub kind: String,
    pub device: Option<DeviceId>,
    pub service: Option<ServiceId>,
    pub message: String,
    pub at: DateTime<Utc>,
}

/// The last status a printing device or a hall display reported, and when.
#[derive(Debug, Clone, Serialize, Deserialize, PartialEq)]
pub struct DeviceStatus {
    pub status: String,
    pub detail: Option<String>,
    pub at: DateTime<Utc>,
}

/// Who asked for a change: recorded on every event for the audit trail.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Actor {
    pub kind: ActorKind,
    pub id: Option<String>,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum ActorKind {
    /// A member of staff (`id`: the username).
    User,
    /// A kiosk, display or print agent (`id`: the device id).
    Device,
    /// Someone without an identity: a customer's phone.
    Public,
    /// The daemon itself (the tick, start-up).
    System,
}

impl ActorKind {
    pub fn as_str(self) -> &'static str {
        match self {
            ActorKind::User => "user",
            ActorKind::Device => "device",
            ActorKind::Public => "public",
            ActorKind::System => "system",
        }
    }
}

impl Actor {
    pub fn system() -> Actor {
        Actor {
            kind: ActorKind::System,
            id: None,
        }
    }
    pub fn user(name: &str) -> Actor {
        Actor {
            kind: ActorKind::User,
            id: Some(name.into()),
        }
    }
    pub fn device(id: &str) -> Actor {
        Actor {
            kind: ActorKind::Device,
            id: Some(id.into()),
        }
    }
    pub fn public() -> Actor {
        Actor {
            kind: ActorKind::Public,
            id: None,
        }
    }
    /// A stable key for idempotency scopes.
    pub fn key(&self) -> String {
        format!(
            "{}:{}",
            self.kind.as_str(),
            self.id.as_deref().unwrap_or("")
        )
    }
}

#[derive(Debug, Clone, Serialize, Deserialize, PartialEq)]
pub struct Event {
    pub seq: u64,
    pub at: DateTime<Utc>,
    pub site: SiteId,
    pub actor: Actor,
    #[serde(flatten)]
    pub kind: EventKind,
}

#[derive(Debug, Clone, Serialize, Deserialize, PartialEq)]
#[serde(tag = "kind", rename_all = "snake_case")]
pub enum EventKind {
    DayStarted {
        date: NaiveDate,
    },
    TicketIssued {
        ticket: TicketId,
        number: String,
        series: String,
        seq_no: u32,
        service: ServiceId,
        lang: String,
        priority: Priority,
        token: TicketToken,
        channel: Channel,
        idempotency: Option<String>,
        order: i64,
    },
    TicketCalled {
        ticket: TicketId,
        counter: CounterId,
    },
    TicketRecalled {
        ticket: TicketId,
        counter: CounterId,
    },
    TicketServed {
        ticket: TicketId,
        counter: CounterId,
    },
    TicketFinished {
        ticket: TicketId,
        counter: CounterId,
        /// Passed on to this service in the same visit, keeping the number.
        next_service: Option<ServiceId>,
        order: Option<i64>,
    },
    TicketNoShow {
        ticket: TicketId,
        counter: CounterId,
    },
    TicketReturned {
        ticket: TicketId,
        /// Back to this counter as called; None: back to its queue at `order`.
        counter: Option<CounterId>,
        order: Option<i64>,
    },
    TicketTransferred {
        ticket: TicketId,
        from_counter: Option<CounterId>,
        from_service: ServiceId,
        service: ServiceId,
        target_counter: Option<CounterId>,
        order: i64,
    },
    TicketParked {
        ticket: TicketId,
        counter: CounterId,
    },
    TicketCancelled {
        ticket: TicketId,
        reason: String,
    },
    CounterOpened {
        counter: CounterId,
        user: Option<String>,
    },
    CounterClosed {
        counter: CounterId,
    },
    ServiceAccepting {
        service: ServiceId,
        accepting: bool,
    },
    /// Something staff should see: a kiosk's "Ask staff", a printer fault, a long wait.
    #[serde(rename = "alert")]
    AlertRaised {
        alert: u64,
        alert_kind: String,
        device: Option<DeviceId>,
        service: Option<ServiceId>,
        message: String,
    },
    AlertCleared {
        alert: u64,
    },
    /// A hall display connected (`online`), its page stopped rendering with its socket open (`frozen`), or
    /// its last connection closed (`offline`).
    DisplayStatus {
        /// The hall display's id (`[[site.display]]`).
        device: String,
        status: String,
    },
    /// The customer answered the feedback question after a finished visit (once per visit). Names the
    /// service and the counter that finished the visit, never the staff member. The comment is never
    /// published on a topic.
    FeedbackGiven {
        ticket: TicketId,
        service: ServiceId,
        counter: Option<CounterId>,
        /// 1 (very unhappy) ..= 5 (very happy).
        rating: u8,
        /// Trimmed, at most `FEEDBACK_COMMENT_MAX` characters; None when empty.
        comment: Option<String>,
    },
    /// A printer's status changed (see vuoro-print).
    PrinterStatus {
        device: DeviceId,
        status: String,
        detail: Option<String>,
    },
}

impl EventKind {
    pub fn name(&self) -> &'static str {
        match self {
            EventKind::DayStarted { .. } => "day_started",
            EventKind::TicketIssued { .. } => "ticket_issued",
            EventKind::TicketCalled { .. } => "ticket_called",
            EventKind::TicketRecalled { .. } => "ticket_recalled",
            EventKind::TicketServed { .. } => "ticket_served",
            EventKind::TicketFinished { .. } => "ticket_finished",
            EventKind::TicketNoShow { .. } => "ticket_no_show",
            EventKind::TicketReturned { .. } => "ticket_returned",
            EventKind::TicketTransferred { .. } => "ticket_transferred",
            EventKind::TicketParked { .. } => "ticket_parked",
            EventKind::TicketCancelled { .. } => "ticket_cancelled",
            EventKind::CounterOpened { .. } => "counter_opened",
            EventKind::CounterClosed { .. } => "counter_closed",
            EventKind::ServiceAccepting { .. } => "service_accepting",
            EventKind::AlertRaised { .. } => "alert",
            EventKind::AlertCleared { .. } => "alert_cleared",
            EventKind::PrinterStatus { .. } => "printer_status",
            EventKind::DisplayStatus { .. } => "display_status",
            EventKind::FeedbackGiven { .. } => "feedback_given",
        }
    }

    /// The ticket this event is about, if any.
    pub fn ticket(&self) -> Option<TicketId> {
        match self {
            EventKind::TicketIssued { ticket, .. }
            | EventKind::TicketCalled { ticket, .. }
            | EventKind::TicketRecalled { ticket, .. }
            | EventKind::TicketServed { ticket, .. }
            | EventKind::TicketFinished { ticket, .. }
            | EventKind::TicketNoShow { ticket, .. }
            | EventKind::TicketReturned { ticket, .. }
            | EventKind::TicketTransferred { ticket, .. }
            | EventKind::TicketParked { ticket, .. }
            | EventKind::TicketCancelled { ticket, .. }
            | EventKind::FeedbackGiven { ticket, .. } => Some(*ticket),
            _ => None,
        }
    }

    /// The counter this event is about, if any.
    pub fn counter(&self) -> Option<&str> {
        match self {
            EventKind::TicketCalled { counter, .. }
            | EventKind::TicketRecalled { counter, .. }
            | EventKind::TicketServed { counter, .. }
            | EventKind::TicketFinished { counter, .. }
            | EventKind::TicketNoShow { counter, .. }
            | EventKind::TicketParked { counter, .. }
            | EventKind::CounterOpened { counter, .. }
            | EventKind::CounterClosed { counter } => Some(counter),
            EventKind::TicketReturned { counter, .. } => counter.as_deref(),
            EventKind::TicketTransferred { from_counter, .. } => from_counter.as_deref(),
            _ => None,
        }
    }
}

/// The longest feedback comment accepted, in characters.
pub const FEEDBACK_COMMENT_MAX: usize = 500;

/// How a ticket is named in a command: by id or by its number today.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub enum TicketRef {
    Id(TicketId),
    Number(String),
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub enum TransferTarget {
    Service(ServiceId),
    Counter(CounterId),
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub enum CounterVerb {
    Open,
    Close,
    CallNext,
    Call(TicketRef),
    Recall,
    Start,
    Finish {
        next_service: Option<ServiceId>,
        position: Position,
    },
    NoShow,
    Transfer {
        ticket: Option<TicketRef>,
        to: TransferTarget,
        position: Position,
    },
    Park,
    Return {
        ticket: TicketRef,
        to: ReturnTo,
    },
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub enum Command {
    Issue {
        site: SiteId,
        service: ServiceId,
        lang: String,
        priority: Priority,
        /// A fresh random token (at least 128 bits), drawn by the caller.
        token: TicketToken,
        channel: Channel,
        idempotency: Option<String>,
    },
    Counter {
        counter: CounterId,
        verb: CounterVerb,
    },
    /// The customer cancels their own ticket.
    Cancel {
        token: TicketToken,
    },
    /// The customer answers the feedback question about their finished visit: a rating 1..=5 and an
    /// optional comment (trimmed; at most `FEEDBACK_COMMENT_MAX` characters).
    Feedback {
        token: TicketToken,
        rating: u8,
        comment: Option<String>,
    },
    SetAccepting {
        site: SiteId,
        service: ServiceId,
        accepting: bool,
    },
    MoveWaiting {
        site: SiteId,
        from: ServiceId,
        to: ServiceId,
    },
    EndDay {
        site: SiteId,
    },
    /// Lets time pass: rolls sites over to a new local day.
    Tick,
    RaiseAlert {
        site: SiteId,
        kind: String,
        device: Option<DeviceId>,
        service: Option<ServiceId>,
        message: String,
    },
    ClearAlert {
        site: SiteId,
        alert: u64,
    },
    DisplayStatus {
        site: SiteId,
        /// The hall display's id (`[[site.display]]`).
        device: String,
        status: String,
    },
    /// A printer's status; a fault raises the device's printer alert (with `alert` as its words) unless
    /// one is open, `online` clears it: status and alert in one command, one commit.
    PrinterStatus {
        site: SiteId,
        device: DeviceId,
        status: String,
        detail: Option<String>,
        alert: Option<String>,
    },
}

/// What a command produced, for the caller's answer.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Outcome {
    Ticket {
        site: SiteId,
        id: TicketId,
        created: bool,
    },
    Counter {
        site: SiteId,
        counter: CounterId,
        ticket: Option<TicketId>,
    },
    /// call-next with nobody waiting.
    NobodyWaiting {
        site: SiteId,
        counter: CounterId,
    },
    Done,
}
