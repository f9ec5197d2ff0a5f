//! The WebSocket protocol (`GET /api/v1/ws`, docs/api.md): topics, parsed once, and the control messages
//! clients and the daemon exchange. The daemon, the print agent, the test client and the benchmark use
//! these types. [`ASYNCAPI`] describes every message, snapshot and event body included, with JSON Schemas
//! (served at `GET /api/v1/asyncapi.json`).

use std::fmt;
use std::str::FromStr;

use serde::{Deserialize, Serialize};

/// The AsyncAPI 3.0 document of the WebSocket protocol: every topic and every message either side sends,
/// each with a JSON Schema. tests/asyncapi checks every message the daemon sends in the test suites against
/// it, and an end-to-end test that it names every message type and topic kind of this crate.
pub const ASYNCAPI: &str = include_str!("../asyncapi.json");

/// A topic a client subscribes to: `kind:id`.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub enum Topic {
    /// Public: calls and counters of a site.
    Calls(String),
    /// Public: waiting counts and estimates of a site.
    Queues(String),
    /// Public: what to play for each call of a site (the displays that play audio). Never replayed.
    Announcements(String),
    /// Staff: everything of a site, filtered to the user's units.
    Site(String),
    /// Staff of the counter's unit: one counter and its queue.
    Counter(String),
    /// Whoever holds the ticket's token.
    Ticket(String),
    /// That device only (print jobs for a print agent).
    Device(String),
}

/// Makes a topic of one kind from its id.
pub type TopicOf = fn(String) -> Topic;

/// Why a topic does not parse.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum TopicError {
    /// Not `kind:id` with a non-empty id.
    Malformed,
    /// A kind that does not exist.
    UnknownKind(String),
}

impl fmt::Display for TopicError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            TopicError::Malformed => write!(f, "a topic looks like kind:id"),
            TopicError::UnknownKind(k) => write!(f, "no topic kind '{k}'"),
        }
    }
}

impl std::error::Error for TopicError {}

impl Topic {
    /// Every kind with its constructor. Parsing goes through this table, so a kind missing from it cannot
    /// be subscribed to.
    pub const KINDS: [(&'static str, TopicOf); 7] = [
        ("calls", Topic::Calls),
        ("queues", Topic::Queues),
        ("announcements", Topic::Announcements),
        ("site", Topic::Site),
        ("counter", Topic::Counter),
        ("ticket", Topic::Ticket),
        ("device", Topic::Device),
    ];

    pub fn kind(&self) -> &'static str {
        match self {
            Topic::Calls(_) => "calls",
            Topic::Queues(_) => "queues",
            Topic::Announcements(_) => "announcements",
            Topic::Site(_) => "site",
            Topic::Counter(_) => "counter",
            Topic::Ticket(_) => "ticket",
            Topic::Device(_) => "device",
        }
    }

    pub fn id(&self) -> &str {
        match self {
            Topic::Calls(id)
            | Topic::Queues(id)
            | Topic::Announcements(id)
            | Topic::Site(id)
            | Topic::Counter(id)
            | Topic::Ticket(id)
            | Topic::Device(id) => id,
        }
    }

    /// Whether a resume is answered with a fresh snapshot rather than a replay: ticket and queue topics
    /// carry whole states in every event; an announcement missed is not played late.
    pub fn resumes_with_snapshot(&self) -> bool {
        matches!(
            self,
            Topic::Ticket(_) | Topic::Queues(_) | Topic::Announcements(_)
        )
    }
}

impl fmt::Display for Topic {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}:{}", self.kind(), self.id())
    }
}

impl FromStr for Topic {
    type Err = TopicError;

    fn from_str(s: &str) -> Result<Topic, TopicError> {
        let (kind, id) = s.split_once(':').ok_or(TopicError::Malformed)?;
        if id.is_empty() || id.len() > 200 || id.chars().any(char::is_control) {
            return Err(TopicError::Malformed);
        }
        match Topic::KINDS.iter().find(|(k, _)| *k == kind) {
            Some((_, make)) => Ok(make(id.to_string())),
            None => Err(TopicError::UnknownKind(kind.chars().take(40).collect())),
        }
    }
}

impl Serialize for Topic {
    fn serialize<S: serde::Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        s.collect_str(self)
    }
}

impl<'de> Deserialize<'de> for Topic {
    fn deserialize<D: serde::Deserializer<'de>>(d: D) -> Result<Topic, D::Error> {
        let s = String::deserialize(d)?;
        s.parse().map_err(serde::de::Error::custom)
    }
}

/// A printer's state as a print agent reports it.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum PrinterState {
    Online,
    PaperLow,
    PaperOut,
    CoverOpen,
    Offline,
}

impl PrinterState {
    pub fn as_str(self) -> &'static str {
        match self {
            PrinterState::Online => "online",
            PrinterState::PaperLow => "paper_low",
            PrinterState::PaperOut => "paper_out",
            PrinterState::CoverOpen => "cover_open",
            PrinterState::Offline => "offline",
        }
    }
}

/// What a client sends.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(tag = "type", rename_all = "snake_case")]
pub enum ClientMsg {
    /// Subscribe; with `after`, resume after that seq (a replay, or a snapshot when too old).
    Subscribe {
        topic: Topic,
        #[serde(default, skip_serializing_if = "Option::is_none")]
        after: Option<u64>,
    },
    Unsubscribe {
        topic: Topic,
    },
    /// Credentials after connecting (a device or staff token).
    Auth {
        token: String,
    },
    Ping,
    /// A hall display says which it is (its configured id), so supervisors see it online.
    Hello {
        display: String,
    },
    /// A hall display's page says it has drawn frames since its last report (it sends one every
    /// `rendering_report_seconds` of its display entry, only when its frame callbacks ran). A display whose
    /// reports stop while its socket stays open is `frozen`.
    Rendering,
    /// A print agent's outcome for a job it was sent.
    PrintResult {
        job: u64,
        outcome: serde_json::Value,
    },
    /// A print agent's printer status.
    PrinterStatus {
        status: PrinterState,
    },
}

/// Codes of `error` messages.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum ErrorCode {
    Malformed,
    Unauthenticated,
    Forbidden,
    NotFound,
    RateLimited,
}

/// A topic's message: the topic's state as of `seq` (the first message after a subscription, or after
/// falling behind), or one committed event. `T` is the topic's snapshot or event body (asyncapi.json says
/// which for each topic). The daemon serializes each once and shares the text with every subscriber.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(tag = "type", rename_all = "snake_case")]
pub enum TopicMsg<T> {
    Snapshot { topic: String, seq: u64, data: T },
    Event { topic: String, seq: u64, event: T },
}

impl<T: Serialize> TopicMsg<T> {
    pub fn to_json(&self) -> String {
        serde_json::to_string(self).expect("a topic message serializes")
    }
}

/// What the daemon sends besides snapshots and events (which it writes itself, once per message for
/// every subscriber: docs/api.md).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(tag = "type", rename_all = "snake_case")]
pub enum ServerMsg {
    Pong,
    Heartbeat {
        seq: u64,
    },
    Error {
        topic: Option<Topic>,
        code: ErrorCode,
        message: String,
    },
    /// The hall's config changed (the admin console or API): names, hours and services may differ, so
    /// clients fetch what they show again. Sent to every connection.
    ConfigChanged {
        version: u64,
    },
}

impl ServerMsg {
    pub fn error(topic: Option<&Topic>, code: ErrorCode, message: impl Into<String>) -> ServerMsg {
        ServerMsg::Error {
            topic: topic.cloned(),
            code,
            message: message.into(),
        }
    }

    pub fn to_json(&self) -> String {
        serde_json::to_string(self).expect("a server message serializes")
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn topics_parse_once_and_print_back() {
        for s in [
            "calls:iso-omena",
            "queues:s",
            "site:s",
            "counter:c5",
            "ticket:abc",
            "device:kiosk-1",
            "announcements:s",
        ] {
            let t: Topic = s.parse().unwrap();
            assert_eq!(t.to_string(), s);
        }
        assert_eq!("nothing".parse::<Topic>(), Err(TopicError::Malformed));
        assert_eq!("calls:".parse::<Topic>(), Err(TopicError::Malformed));
        assert_eq!(
            "weather:s".parse::<Topic>(),
            Err(TopicError::UnknownKind("weather".into()))
        );
        for (kind, make) in Topic::KINDS {
            assert_eq!(make("x".into()).kind(), kind);
        }
        assert!(Topic::Ticket("t".into()).resumes_with_snapshot());
        assert!(!Topic::Calls("s".into()).resumes_with_snapshot());
    }

    #[test]
    fn client_messages_are_the_documented_json() {
        let m: ClientMsg =
            serde_json::from_str(r#"{"type": "subscribe", "topic": "calls:s", "after": 7}"#)
                .unwrap();
        assert_eq!(
            m,
            ClientMsg::Subscribe {
                topic: Topic::Calls("s".into()),
                after: Some(7)
            }
        );
        let bad = serde_json::from_str::<ClientMsg>(r#"{"type": "subscribe", "topic": "x"}"#);
        assert!(bad.is_err());
        let st: ClientMsg =
            serde_json::from_str(r#"{"type": "printer_status", "status": "paper_out"}"#).unwrap();
        assert_eq!(
            st,
            ClientMsg::PrinterStatus {
                status: PrinterState::PaperOut
            }
        );
        let r: ClientMsg = serde_json::from_str(r#"{"type": "rendering"}"#).unwrap();
        assert_eq!(r, ClientMsg::Rendering);
        assert_eq!(
            serde_json::to_string(&ClientMsg::Rendering).unwrap(),
            r#"{"type":"rendering"}"#
        );
        assert_eq!(
            ServerMsg::error(None, ErrorCode::NotFound, "no").to_json(),
            r#"{"type":"error","topic":null,"code":"not_found","message":"no"}"#
        );
    }
}
