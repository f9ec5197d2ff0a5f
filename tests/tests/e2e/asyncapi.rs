//! The AsyncAPI document of the WebSocket protocol (crates/vuoro-protocol/asyncapi.json), as the daemon
//! serves it, names every message type, topic kind and word of the protocol's types and every event kind
//! of the engine: a variant added without documenting it fails here. (tests/asyncapi checks every message
//! the daemon sends in the test suites against the document's schemas.)

use std::collections::BTreeSet;

use serde::de::DeserializeOwned;

use super::*;

/// The variants serde knows for `T`, read from its answer to one it does not know ("unknown variant
/// `x`, expected one of `a`, `b`"). `probe` is JSON with the unknown variant `?`.
fn variants<T: DeserializeOwned + std::fmt::Debug>(probe: &str) -> BTreeSet<String> {
    let err = serde_json::from_str::<T>(probe)
        .expect_err("an unknown variant is refused")
        .to_string();
    let expected = err
        .split_once("expected")
        .unwrap_or_else(|| panic!("serde names the variants: {err}"))
        .1;
    let words: BTreeSet<String> = expected
        .split('`')
        .skip(1)
        .step_by(2)
        .map(str::to_string)
        .collect();
    assert!(!words.is_empty(), "no variants in: {err}");
    words
}

/// Follows a local `$ref` (`#/a/b`) within the document.
fn resolve<'a>(doc: &'a Value, v: &'a Value) -> &'a Value {
    match v["$ref"].as_str() {
        Some(r) => {
            let target = doc
                .pointer(r.trim_start_matches('#'))
                .unwrap_or_else(|| panic!("dangling $ref {r}"));
            resolve(doc, target)
        }
        None => v,
    }
}

/// The payload schemas of the messages of operations with `action` on `channel`.
fn payloads<'a>(doc: &'a Value, action: &str, channel: &str) -> Vec<&'a Value> {
    let mut out = Vec::new();
    for op in doc["operations"].as_object().expect("operations").values() {
        if op["action"] != action || op["channel"]["$ref"] != format!("#/channels/{channel}") {
            continue;
        }
        for m in op["messages"].as_array().expect("messages") {
            out.push(resolve(doc, &resolve(doc, m)["payload"]));
        }
    }
    out
}

/// The `const` of property `prop` of each schema (following `$ref` and `oneOf`).
fn consts(doc: &Value, schemas: &[&Value], prop: &str) -> BTreeSet<String> {
    let mut out = BTreeSet::new();
    for s in schemas {
        let s = resolve(doc, s);
        if let Some(alts) = s["oneOf"].as_array() {
            out.extend(consts(doc, &alts.iter().collect::<Vec<_>>(), prop));
        }
        let p = resolve(doc, &s["properties"][prop]);
        if let Some(c) = p["const"].as_str() {
            out.insert(c.to_string());
        }
        for w in p["enum"].as_array().into_iter().flatten() {
            out.extend(w.as_str().map(str::to_string));
        }
    }
    out
}

fn words(doc: &Value, schema: &str) -> BTreeSet<String> {
    let s = resolve(doc, &doc["components"]["schemas"][schema]);
    s["enum"]
        .as_array()
        .unwrap_or_else(|| panic!("{schema} has an enum"))
        .iter()
        .filter_map(|w| w.as_str().map(str::to_string))
        .collect()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_asyncapi_document_names_every_message_topic_and_event_kind() {
    let dir = TempDir::new("asyncapi");
    let app = spawn_app_in(DEMO, &dir.0).await;
    let served = app.http().get("/api/v1/asyncapi.json").await.unwrap();
    assert_eq!(served.status, 200, "public, like openapi.json");
    let doc = served.json();
    let file: Value = serde_json::from_str(vuoro_protocol::ASYNCAPI).unwrap();
    assert_eq!(doc, file, "the daemon serves the protocol crate's document");
    assert!(doc["asyncapi"].as_str().unwrap().starts_with("3."));

    // What clients send: exactly the client messages.
    let client = consts(&doc, &payloads(&doc, "receive", "socket"), "type");
    assert_eq!(
        client,
        variants::<vuoro_protocol::ClientMsg>(r#"{"type": "?"}"#),
        "client messages"
    );
    // What the daemon sends besides topics: every server message.
    let control = consts(&doc, &payloads(&doc, "send", "socket"), "type");
    assert_eq!(
        control,
        variants::<vuoro_protocol::ServerMsg>(r#"{"type": "?"}"#),
        "server messages"
    );

    // Every topic kind is a channel that sends snapshots and events, and every channel but the socket
    // is a topic kind.
    let channels = doc["channels"].as_object().unwrap();
    let kinds: BTreeSet<String> = vuoro_protocol::Topic::KINDS
        .iter()
        .map(|(k, _)| k.to_string())
        .collect();
    let documented: BTreeSet<String> = channels
        .iter()
        .filter(|(name, _)| *name != "socket")
        .map(|(_, ch)| {
            let address = ch["address"].as_str().unwrap();
            address.split_once(':').expect("kind:{id}").0.to_string()
        })
        .collect();
    assert_eq!(documented, kinds, "topic kinds");
    for kind in &kinds {
        let types = consts(&doc, &payloads(&doc, "send", kind), "type");
        assert_eq!(
            types,
            BTreeSet::from(["event".to_string(), "snapshot".to_string()]),
            "{kind}"
        );
    }

    // Staff topics carry every event kind of the engine.
    let staff = consts(&doc, &[&doc["components"]["schemas"]["StaffEvent"]], "kind");
    assert_eq!(
        staff,
        variants::<vuoro_engine::EventKind>(r#"{"kind": "?"}"#),
        "staff event kinds"
    );

    // The protocol's words.
    assert_eq!(
        words(&doc, "ErrorCode"),
        variants::<vuoro_protocol::ErrorCode>(r#""?""#)
    );
    assert_eq!(
        words(&doc, "PrinterState"),
        variants::<vuoro_protocol::PrinterState>(r#""?""#)
    );
    assert_eq!(
        words(&doc, "TicketState"),
        variants::<vuoro_engine::TicketState>(r#""?""#)
    );
    assert_eq!(
        words(&doc, "Priority"),
        variants::<vuoro_engine::Priority>(r#""?""#)
    );
    assert_eq!(
        words(&doc, "Channel"),
        variants::<vuoro_engine::Channel>(r#""?""#)
    );
    assert_eq!(
        words(&doc, "CounterStatus"),
        variants::<vuoro_engine::CounterStatus>(r#""?""#)
    );
    app.stop().await;
}
