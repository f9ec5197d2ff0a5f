//! Fuzzing what clients send on the WebSocket: random bytes and mutations of every kind of valid message,
//! read as the daemon reads them (`ClientMsg`, `Topic`). Reading never panics; what reads is a message
//! that writes back to itself; a topic that parses prints back to the same text. Bounded by the number of
//! cases (proptest, on stable Rust: no coverage guidance), so it runs in every test run.

use proptest::prelude::*;
use vuoro_protocol::{ClientMsg, Topic};

/// One valid message of each kind, as clients send them.
const VALID: &[&str] = &[
    r#"{"type":"subscribe","topic":"calls:iso-omena"}"#,
    r#"{"type":"subscribe","topic":"site:iso-omena","after":1234}"#,
    r#"{"type":"unsubscribe","topic":"queues:iso-omena"}"#,
    r#"{"type":"auth","token":"0123456789abcdef"}"#,
    r#"{"type":"ping"}"#,
    r#"{"type":"hello","display":"hall"}"#,
    r#"{"type":"rendering"}"#,
    r#"{"type":"print_result","job":7,"outcome":{"status":"printed"}}"#,
    r#"{"type":"printer_status","status":"paper_out"}"#,
    r#"{"type":"subscribe","topic":"ticket:0123456789abcdef0123456789abcdef"}"#,
];

/// A valid message with a few bytes changed, inserted or removed.
fn mutated() -> impl Strategy<Value = Vec<u8>> {
    (
        0..VALID.len(),
        proptest::collection::vec((any::<usize>(), any::<u8>(), 0u8..3), 1..6),
    )
        .prop_map(|(i, edits)| {
            let mut b = VALID[i].as_bytes().to_vec();
            for (at, byte, op) in edits {
                let at = at % (b.len() + 1);
                match op {
                    0 if at < b.len() => b[at] = byte,
                    1 => b.insert(at, byte),
                    _ if at < b.len() => {
                        b.remove(at);
                    }
                    _ => b.push(byte),
                }
            }
            b
        })
}

fn check(bytes: &[u8]) {
    if let Ok(msg) = serde_json::from_slice::<ClientMsg>(bytes) {
        // What reads writes back to a message that reads the same.
        let again: ClientMsg = serde_json::from_str(&serde_json::to_string(&msg).unwrap()).unwrap();
        assert_eq!(again, msg);
    }
    if let Ok(text) = std::str::from_utf8(bytes)
        && let Ok(topic) = text.parse::<Topic>()
    {
        assert_eq!(topic.to_string(), text);
    }
}

proptest! {
    #![proptest_config(ProptestConfig { cases: 4000, .. ProptestConfig::default() })]

    #[test]
    fn random_bytes_never_panic(bytes in proptest::collection::vec(any::<u8>(), 0..300)) {
        check(&bytes);
    }

    #[test]
    fn mutated_messages_never_panic_and_what_reads_round_trips(bytes in mutated()) {
        check(&bytes);
    }

    #[test]
    fn topics_from_any_text_parse_to_themselves_or_not_at_all(text in "[a-z]{0,12}:?[A-Za-z0-9_.:-]{0,40}") {
        check(text.as_bytes());
    }
}
