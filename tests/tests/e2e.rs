//! End-to-end tests of the daemon: the real server on a loopback port, a real SQLite file, real HTTP and
//! WebSocket clients. All of them in one test binary to keep the build fast.

use std::collections::{HashMap, HashSet};
use std::time::{Duration, Instant};

use serde_json::{Value, json};
use vuoro_tests::*;

const T: Duration = Duration::from_secs(5);
const SITE: &str = "iso-omena";

async fn kiosk(app: &TestApp) -> Http {
    kiosk_device(app, "kiosk-1").await
}

async fn kiosk_device(app: &TestApp, device: &str) -> Http {
    let token = demo_device_token(app.addr, device).await.unwrap();
    Http::with_token(app.addr, &token)
}

async fn staff(app: &TestApp, user: &str) -> (Http, String) {
    let token = login(app.addr, user, "demo").await.unwrap();
    (Http::with_token(app.addr, &token), token)
}

async fn take(k: &mut Http, service: &str) -> Value {
    let r = k
        .post(
            &format!("/api/v1/sites/{SITE}/tickets"),
            &json!({"service": service, "lang": "fi"}),
        )
        .await
        .unwrap();
    assert_eq!(r.status, 201, "{}", String::from_utf8_lossy(&r.body));
    r.json()
}

async fn verb(h: &mut Http, counter: &str, verb: &str, body: Value) -> Response {
    h.post(&format!("/api/v1/counters/{counter}/{verb}"), &body)
        .await
        .unwrap()
}

/// Reads messages until one matches, failing after the timeout.
async fn until(ws: &mut Ws, pred: impl Fn(&Value) -> bool) -> Value {
    let deadline = Instant::now() + T;
    loop {
        let left = deadline.saturating_duration_since(Instant::now());
        let m = ws.next(left).await.expect("message in time");
        if pred(&m) {
            return m;
        }
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn events_arrive_in_order_after_commit_with_the_right_content() {
    let dir = TempDir::new("order");
    let app = spawn_app_in(DEMO, &dir.0).await;
    let mut k = kiosk(&app).await;
    let (mut agent, token) = staff(&app, "agent2").await;

    let mut public = Ws::connect(app.addr, None).await.unwrap();
    public
        .subscribe(&format!("calls:{SITE}"), None)
        .await
        .unwrap();
    let snap = public.next(T).await.unwrap();
    assert_eq!(snap["type"], "snapshot");
    assert!(snap["data"]["counters"].as_array().unwrap().len() >= 20);
    let mut staff_ws = Ws::connect(app.addr, Some(&token)).await.unwrap();
    staff_ws
        .subscribe(&format!("site:{SITE}"), None)
        .await
        .unwrap();
    assert_eq!(staff_ws.next(T).await.unwrap()["type"], "snapshot");
    let mut queues = Ws::connect(app.addr, None).await.unwrap();
    queues
        .subscribe(&format!("queues:{SITE}"), None)
        .await
        .unwrap();
    assert_eq!(queues.next(T).await.unwrap()["type"], "snapshot");

    let ticket = take(&mut k, "joint-service").await;
    assert_eq!(verb(&mut agent, "c5", "open", json!({})).await.status, 200);
    let called = verb(&mut agent, "c5", "call-next", json!({})).await;
    assert_eq!(called.status, 200);
    assert_eq!(called.json()["ticket"]["number"], ticket["number"]);

    // The staff topic: issued, opened, called, in seq order, each already in the database.
    let mut kinds = Vec::new();
    let mut last = 0;
    while kinds.len() < 3 {
        let m = staff_ws.next(T).await.unwrap();
        assert_eq!(m["type"], "event");
        if m["event"]["kind"] == "printer_status" {
            continue; // kiosk-1's (virtual) printer reporting in
        }
        let seq = m["seq"].as_u64().unwrap();
        assert!(seq > last, "seq must increase");
        assert!(
            app.committed_seq() >= seq,
            "event {seq} was heard of before it was committed"
        );
        last = seq;
        kinds.push(m["event"]["kind"].as_str().unwrap().to_string());
        if m["event"]["kind"] == "ticket_issued" {
            // Staff see the ticket, never the customer's token or the kiosk's idempotency key.
            assert_eq!(m["event"]["ticket"]["number"], ticket["number"]);
            let text = m.to_string();
            assert!(!text.contains(ticket["token"].as_str().unwrap()), "{text}");
            assert!(m["event"].get("token").is_none() && m["event"].get("idempotency").is_none());
        }
        if m["event"]["kind"] == "ticket_called" {
            assert_eq!(m["event"]["ticket"]["number"], ticket["number"]);
            assert_eq!(m["event"]["counter"], "c5");
            assert_eq!(m["event"]["by"], "agent2");
            // The answer names the seq it reflects, so a desk can drop older states still on their way.
            assert_eq!(called.json()["seq"].as_u64(), Some(seq));
        }
    }
    assert_eq!(kinds, ["ticket_issued", "counter_opened", "ticket_called"]);

    // The public topic: the call with its destination, and nothing personal.
    let call = until(&mut public, |m| m["event"]["kind"] == "ticket_called").await;
    let e = &call["event"];
    assert_eq!(e["number"], ticket["number"]);
    assert_eq!(e["counter"], "c5");
    assert_eq!(e["counter_name"]["fi"], "Palvelupiste 5");
    assert_eq!(e["zone"], "main");
    let text = call.to_string();
    for secret in [
        ticket["token"].as_str().unwrap(),
        "agent2",
        "priority",
        "Bertil",
    ] {
        assert!(
            !text.contains(secret),
            "public call carries {secret}: {text}"
        );
    }
    // Queue figures follow.
    let q = until(&mut queues, |m| m["event"]["kind"] == "queue_changed").await;
    assert!(
        q["event"]["services"]
            .as_array()
            .unwrap()
            .iter()
            .any(|s| s["id"] == "joint-service")
    );
    app.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn resume_replays_exactly_the_missed_events_else_a_snapshot() {
    let dir = TempDir::new("resume");
    let app = spawn_app_in(DEMO, &dir.0).await;
    let mut k = kiosk(&app).await;
    let (mut agent, _) = staff(&app, "agent2").await;
    verb(&mut agent, "c5", "open", json!({})).await;
    let topic = format!("calls:{SITE}");

    let mut ws = Ws::connect(app.addr, None).await.unwrap();
    ws.subscribe(&topic, None).await.unwrap();
    let seen = ws.next(T).await.unwrap()["seq"].as_u64().unwrap();
    drop(ws);

    // Missed while away: three calls.
    let mut numbers = Vec::new();
    for _ in 0..3 {
        numbers.push(take(&mut k, "joint-service").await["number"].clone());
        assert_eq!(
            verb(&mut agent, "c5", "call-next", json!({})).await.status,
            200
        );
    }
    let mut ws = Ws::connect(app.addr, None).await.unwrap();
    ws.subscribe(&topic, Some(seen)).await.unwrap();
    let got = ws.drain(Duration::from_millis(500)).await;
    assert!(
        got.iter().all(|m| m["type"] == "event"),
        "a resume within the window is a replay, not a snapshot: {got:?}"
    );
    let called: Vec<Value> = got
        .iter()
        .filter(|m| m["event"]["kind"] == "ticket_called")
        .map(|m| m["event"]["number"].clone())
        .collect();
    assert_eq!(called, numbers);
    let seqs: Vec<u64> = got.iter().map(|m| m["seq"].as_u64().unwrap()).collect();
    assert!(seqs.windows(2).all(|w| w[0] < w[1]) && seqs[0] > seen);

    // After a restart, the old seq is outside the window: a fresh snapshot instead.
    let data = app.data.clone();
    app.stop().await;
    let app = spawn_app_in(DEMO, &data).await;
    let mut ws = Ws::connect(app.addr, None).await.unwrap();
    ws.subscribe(&topic, Some(seen)).await.unwrap();
    let m = ws.next(T).await.unwrap();
    assert_eq!(m["type"], "snapshot");
    let recent = m["data"]["recent"].as_array().unwrap();
    assert_eq!(
        recent[0]["number"], numbers[2],
        "the snapshot shows the newest call first"
    );
    app.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_client_that_does_not_read_does_not_delay_others_and_is_resynced() {
    let dir = TempDir::new("slow");
    let app = spawn_app_in(DEMO, &dir.0).await;
    let mut k = kiosk_device(&app, "kiosk-3").await; // no printer: this test is about the hub
    let topic = format!("queues:{SITE}");
    let admin = login(app.addr, "admin", "demo").await.unwrap();
    let mut slow = Ws::connect_with_recv_buffer(app.addr, Some(&admin), 4096)
        .await
        .unwrap();
    slow.subscribe(&topic, None).await.unwrap();
    slow.subscribe(&format!("site:{SITE}"), None).await.unwrap();
    let mut fast = Ws::connect(app.addr, None).await.unwrap();
    fast.subscribe(&topic, None).await.unwrap();
    assert_eq!(fast.next(T).await.unwrap()["type"], "snapshot");

    // Many updates (about 5 KB a ticket on these two topics) while `slow` reads nothing: far more than
    // its queue and the socket buffers hold.
    let n = 1500;
    let reader = tokio::spawn(async move {
        let mut got = 0;
        while got < n {
            let m = fast
                .next(Duration::from_secs(20))
                .await
                .expect("fast client keeps getting messages");
            if m["type"] == "event" {
                got += 1;
            }
        }
        Instant::now()
    });
    for i in 0..n {
        let svc = [
            "joint-service",
            "library-help",
            "digital-help",
            "child-clinic",
        ][i % 4];
        let r = k
            .request(
                "POST",
                &format!("/api/v1/sites/{SITE}/tickets"),
                Some(json!({"service": svc}).to_string().as_bytes()),
                &[],
            )
            .await
            .unwrap();
        assert_eq!(r.status, 201);
    }
    let issued = Instant::now();
    let caught_up = reader.await.unwrap();
    let lag = caught_up.saturating_duration_since(issued);
    assert!(
        lag < Duration::from_secs(3),
        "the fast client was held up: {lag:?} behind the last commit"
    );
    // The slow client, once it reads, is brought up to date by a fresh snapshot.
    let msgs = slow.drain(Duration::from_millis(800)).await;
    let queue_snapshots: Vec<&Value> = msgs
        .iter()
        .filter(|m| m["type"] == "snapshot" && m["topic"] == topic.as_str())
        .collect();
    assert!(
        queue_snapshots.len() >= 2,
        "the slow client got a resync snapshot"
    );
    let total: u64 = queue_snapshots.last().unwrap()["data"]["services"]
        .as_array()
        .unwrap()
        .iter()
        .map(|s| s["waiting"].as_u64().unwrap())
        .sum();
    assert_eq!(
        total, n as u64,
        "the resync snapshot shows the current state"
    );
    app.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn sigkill_under_load_loses_no_acknowledged_ticket_and_reuses_no_number() {
    let dir = TempDir::new("kill");
    let port = free_port();
    let (mut child, addr) = spawn_daemon(&dir.0, port);
    wait_ready(addr).await;
    let token = demo_device_token(addr, "kiosk-1").await.unwrap();
    let acked = std::sync::Arc::new(std::sync::Mutex::new(Vec::<(String, String, String)>::new()));
    let mut tasks = Vec::new();
    for w in 0..8 {
        let token = token.clone();
        let acked = acked.clone();
        tasks.push(tokio::spawn(async move {
            let mut h = Http::with_token(addr, &token);
            let services = [
                "child-clinic",
                "joint-service",
                "lab-sample",
                "mental-health",
                "library-help",
            ];
            for i in 0..10_000 {
                let body = json!({"service": services[(i + w) % services.len()], "lang": "fi"})
                    .to_string();
                let key = format!("w{w}-{i}");
                match h
                    .request(
                        "POST",
                        &format!("/api/v1/sites/{SITE}/tickets"),
                        Some(body.as_bytes()),
                        &[("Idempotency-Key", &key)],
                    )
                    .await
                {
                    Ok(r) if r.status == 201 => {
                        let v = r.json();
                        acked.lock().unwrap().push((
                            v["token"].as_str().unwrap().into(),
                            v["number"].as_str().unwrap().into(),
                            key,
                        ));
                    }
                    _ => break,
                }
            }
        }));
    }
    // Kill it in the middle of the load.
    while acked.lock().unwrap().len() < 600 {
        tokio::time::sleep(Duration::from_millis(5)).await;
    }
    child.kill().unwrap(); // SIGKILL
    child.wait().unwrap();
    for t in tasks {
        t.await.unwrap();
    }
    let acked = acked.lock().unwrap().clone();
    assert!(acked.len() >= 600);

    let (mut child, addr) = spawn_daemon(&dir.0, port);
    wait_ready(addr).await;
    let mut h = Http::new(addr);
    for (tok, number, _) in &acked {
        let r = h.get(&format!("/api/v1/tickets/{tok}")).await.unwrap();
        assert_eq!(r.status, 200, "acknowledged ticket {number} was lost");
        assert_eq!(r.json()["number"], number.as_str());
    }
    // No number is held by two open tickets, and retried keys give the same ticket, not a new one.
    let admin = login(addr, "admin", "demo").await.unwrap();
    let mut a = Http::with_token(addr, &admin);
    let list = a
        .get(&format!("/api/v1/sites/{SITE}/tickets?state=waiting"))
        .await
        .unwrap()
        .json();
    let tickets = list["tickets"].as_array().unwrap();
    let mut numbers = HashSet::new();
    for t in tickets {
        assert!(
            numbers.insert(t["number"].as_str().unwrap().to_string()),
            "number {} handed out twice",
            t["number"]
        );
    }
    assert!(tickets.len() >= acked.len());
    let mut k = Http::with_token(addr, &token);
    let (tok, number, key) = &acked[acked.len() / 2];
    let again = k
        .request(
            "POST",
            &format!("/api/v1/sites/{SITE}/tickets"),
            Some(br#"{"service":"kela-general"}"#),
            &[("Idempotency-Key", key)],
        )
        .await
        .unwrap();
    assert_eq!(again.status, 200);
    assert_eq!(again.json()["number"], number.as_str());
    assert_eq!(again.json()["token"], tok.as_str());
    let fresh = k
        .post(
            &format!("/api/v1/sites/{SITE}/tickets"),
            &json!({"service": "parking"}),
        )
        .await
        .unwrap()
        .json();
    assert!(
        !numbers.contains(fresh["number"].as_str().unwrap()),
        "a new ticket reused an open number"
    );
    child.kill().unwrap();
    child.wait().unwrap();
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn bad_input_gets_a_clear_error_and_changes_nothing() {
    let dir = TempDir::new("bad");
    let app = spawn_app_in(DEMO, &dir.0).await;
    // The kiosk without a printer: a printer's status is committed after the ticket's answer, which
    // would race the commit counts below.
    let mut k = kiosk_device(&app, "kiosk-3").await;
    let (mut agent, _) = staff(&app, "agent2").await;
    // Setup: an open counter serving a ticket, another ticket waiting, one cancelled.
    verb(&mut agent, "c5", "open", json!({})).await;
    take(&mut k, "joint-service").await;
    let waiting = take(&mut k, "joint-service").await;
    let cancelled = take(&mut k, "parking").await;
    let tok = cancelled["token"].as_str().unwrap();
    assert_eq!(
        Http::new(app.addr)
            .delete(&format!("/api/v1/tickets/{tok}"))
            .await
            .unwrap()
            .status,
        200
    );
    verb(&mut agent, "c5", "call-next", json!({})).await;
    let before = app.committed_seq();
    let tickets_path = format!("/api/v1/sites/{SITE}/tickets");
    let cancel_path = format!("/api/v1/tickets/{tok}");

    type Case<'a> = (
        &'a str,
        &'a str,
        Option<&'a [u8]>,
        Vec<(&'a str, &'a str)>,
        u16,
        &'a str,
    );
    let cases: Vec<Case> = vec![
        (
            "POST",
            &tickets_path,
            Some(b"{not json"),
            vec![],
            400,
            "malformed",
        ),
        (
            "POST",
            &tickets_path,
            Some(br#"{"service": 5}"#),
            vec![],
            400,
            "malformed",
        ),
        (
            "POST",
            &tickets_path,
            Some(br#"{"service": "kela-general", "colour": "red"}"#),
            vec![],
            400,
            "malformed",
        ),
        (
            "POST",
            &tickets_path,
            Some(br#"{"service": "no-such"}"#),
            vec![],
            422,
            "invalid",
        ),
        (
            "POST",
            &tickets_path,
            Some(br#"{"service": "kela-general", "lang": "xx"}"#),
            vec![],
            422,
            "invalid",
        ),
        (
            "POST",
            &tickets_path,
            Some(br#"{"service": "kela-general", "priority": "vip"}"#),
            vec![],
            422,
            "invalid",
        ),
        (
            "POST",
            &tickets_path,
            Some(br#"{"service": "kela-general"}"#),
            vec![("Idempotency-Key", "")],
            400,
            "malformed",
        ),
        (
            "POST",
            "/api/v1/sites/nowhere/tickets",
            Some(br#"{"service": "kela-general"}"#),
            vec![],
            404,
            "not_found",
        ),
        (
            "GET",
            "/api/v1/tickets/0000000000000000000000000000000000",
            None,
            vec![],
            404,
            "not_found",
        ),
        ("DELETE", &cancel_path, None, vec![], 409, "conflict"),
        (
            "GET",
            "/api/v1/nothing-here",
            None,
            vec![],
            404,
            "not_found",
        ),
    ];
    for (method, path, body, headers, status, code) in &cases {
        let r = k.request(method, path, *body, headers).await.unwrap();
        assert_eq!(
            r.status,
            *status,
            "{method} {path} {:?}: {}",
            body.map(String::from_utf8_lossy),
            String::from_utf8_lossy(&r.body)
        );
        assert_eq!(r.code(), *code, "{method} {path}");
        assert!(
            !r.json()["error"]["message"].as_str().unwrap().is_empty(),
            "an error says what is wrong"
        );
    }
    let staff_cases: Vec<(&str, Value, u16, &str)> = vec![
        ("/api/v1/counters/nope/open", json!({}), 404, "not_found"),
        ("/api/v1/counters/c5/dance", json!({}), 404, "not_found"),
        ("/api/v1/counters/c5/call", json!({}), 422, "invalid"),
        (
            "/api/v1/counters/c5/call",
            json!({"number": "Z999"}),
            404,
            "not_found",
        ),
        (
            "/api/v1/counters/c5/transfer",
            json!({"service": "parking", "counter": "c6"}),
            422,
            "invalid",
        ),
        (
            "/api/v1/counters/c5/transfer",
            json!({"service": "parking", "position": "sideways"}),
            422,
            "invalid",
        ),
        (
            "/api/v1/counters/c5/transfer",
            json!({"service": "no-such"}),
            422,
            "invalid",
        ),
        (
            "/api/v1/counters/c5/finish",
            json!({"next_service": "no-such"}),
            422,
            "invalid",
        ),
        ("/api/v1/counters/c5/close", json!({}), 409, "counter_busy"),
        (
            "/api/v1/counters/c6/call-next",
            json!({}),
            409,
            "counter_closed",
        ),
        (
            "/api/v1/counters/c5/call",
            json!({"ticket": cancelled["id"]}),
            409,
            "ticket_not_waiting",
        ),
        (
            "/api/v1/counters/c5/return",
            json!({"ticket": waiting["id"]}),
            409,
            "conflict",
        ),
        (
            "/api/v1/counters/c5/no-show",
            json!({"extra": 1}),
            400,
            "malformed",
        ),
    ];
    for (path, body, status, code) in &staff_cases {
        let r = agent.post(path, body).await.unwrap();
        assert_eq!(
            r.status,
            *status,
            "{path} {body}: {}",
            String::from_utf8_lossy(&r.body)
        );
        assert_eq!(r.code(), *code, "{path} {body}");
    }
    assert_eq!(
        app.committed_seq(),
        before,
        "a refused request changed the event log"
    );
    // And the state is as it was: the waiting ticket still waits, in the same place.
    let r = Http::new(app.addr)
        .get(&format!(
            "/api/v1/tickets/{}",
            waiting["token"].as_str().unwrap()
        ))
        .await
        .unwrap()
        .json();
    assert_eq!(r["state"], "waiting");
    assert_eq!(r["position"], 0);
    app.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn each_role_is_refused_what_it_may_not_do() {
    let dir = TempDir::new("roles");
    let app = spawn_app_in(DEMO, &dir.0).await;
    // The kiosk without a printer: a printer's status is committed after the ticket's answer, which
    // would race the commit counts below.
    let mut k = kiosk_device(&app, "kiosk-3").await;
    let (mut kela, kela_token) = staff(&app, "agent1").await;
    let (mut hus, _) = staff(&app, "agent2").await;
    let (mut sup, _) = staff(&app, "supervisor").await;
    let mut anon = app.http();
    let lab = take(&mut k, "lab-sample").await;
    let kela_ticket = take(&mut k, "kela-general").await;
    let before = app.committed_seq();

    // Wrong password, unknown token.
    let r = anon
        .post(
            "/api/v1/auth/login",
            &json!({"username": "agent1", "password": "wrong"}),
        )
        .await
        .unwrap();
    assert_eq!((r.status, r.code().as_str()), (401, "unauthenticated"));
    let mut bogus = Http::with_token(app.addr, "not-a-token");
    assert_eq!(bogus.get("/api/v1/auth/me").await.unwrap().status, 401);
    // The public: no counters, no staff lists, no tickets for services that are not remote-join.
    assert_eq!(
        anon.post("/api/v1/counters/c1/open", &json!({}))
            .await
            .unwrap()
            .status,
        401
    );
    assert_eq!(
        anon.get(&format!("/api/v1/sites/{SITE}/tickets"))
            .await
            .unwrap()
            .status,
        401
    );
    assert_eq!(
        anon.post(
            &format!("/api/v1/sites/{SITE}/tickets"),
            &json!({"service": "kela-general"})
        )
        .await
        .unwrap()
        .status,
        401
    );
    // A Kela agent cannot open or act at another unit's counter, nor call a lab ticket at its own.
    assert_eq!(
        kela.post("/api/v1/counters/c5/open", &json!({}))
            .await
            .unwrap()
            .status,
        403
    );
    assert_eq!(
        kela.post("/api/v1/counters/l1/call-next", &json!({}))
            .await
            .unwrap()
            .status,
        403
    );
    assert_eq!(
        kela.post("/api/v1/counters/c1/open", &json!({}))
            .await
            .unwrap()
            .status,
        200
    );
    let r = kela
        .post("/api/v1/counters/c1/call", &json!({"ticket": lab["id"]}))
        .await
        .unwrap();
    assert_eq!(r.status, 403, "{}", String::from_utf8_lossy(&r.body));
    // ...nor see it.
    let list = kela
        .get(&format!("/api/v1/sites/{SITE}/tickets"))
        .await
        .unwrap()
        .json();
    let services: HashSet<String> = list["tickets"]
        .as_array()
        .unwrap()
        .iter()
        .map(|t| t["service"].as_str().unwrap().to_string())
        .collect();
    assert_eq!(services, HashSet::from(["kela-general".to_string()]));
    let mut ws = Ws::connect(app.addr, Some(&kela_token)).await.unwrap();
    ws.subscribe("counter:l1", None).await.unwrap();
    let m = ws.next(T).await.unwrap();
    assert_eq!(
        (m["type"].as_str(), m["code"].as_str()),
        (Some("error"), Some("forbidden"))
    );
    ws.subscribe(&format!("site:{SITE}"), None).await.unwrap();
    let snap = ws.next(T).await.unwrap();
    let seen: Vec<&str> = snap["data"]["tickets"]
        .as_array()
        .unwrap()
        .iter()
        .map(|t| t["service"].as_str().unwrap())
        .collect();
    assert_eq!(
        seen,
        ["kela-general"],
        "the site topic is scoped to the agent's units"
    );
    // Counters of other units are listed for transfers, without who works there or whom they serve.
    assert_eq!(
        hus.post("/api/v1/counters/c5/open", &json!({}))
            .await
            .unwrap()
            .status,
        200
    );
    let counters = kela
        .get(&format!("/api/v1/sites/{SITE}/counters"))
        .await
        .unwrap()
        .json();
    let c5 = counters["counters"]
        .as_array()
        .unwrap()
        .iter()
        .find(|c| c["id"] == "c5")
        .unwrap()
        .clone();
    assert_eq!(
        (
            c5["state"].as_str(),
            c5["user"].clone(),
            c5["own_unit"].clone()
        ),
        (Some("open"), Value::Null, json!(false))
    );
    // Agents are not supervisors.
    let r = kela
        .post(
            &format!("/api/v1/sites/{SITE}/services/kela-general/accepting"),
            &json!({"accepting": false}),
        )
        .await
        .unwrap();
    assert_eq!(r.status, 403);
    assert_eq!(
        hus.post(&format!("/api/v1/sites/{SITE}/end-day"), &json!({}))
            .await
            .unwrap()
            .status,
        403
    );
    // A kiosk offers only its services and cannot act as staff.
    let health_kiosk = demo_device_token(app.addr, "kiosk-2").await.unwrap();
    let mut k2 = Http::with_token(app.addr, &health_kiosk);
    let r = k2
        .post(
            &format!("/api/v1/sites/{SITE}/tickets"),
            &json!({"service": "kela-general"}),
        )
        .await
        .unwrap();
    assert_eq!(r.status, 403);
    assert_eq!(
        k.post("/api/v1/counters/c1/call-next", &json!({}))
            .await
            .unwrap()
            .status,
        403
    );
    // The public topics never name a sensitive service.
    let mut pub_ws = Ws::connect(app.addr, None).await.unwrap();
    pub_ws
        .subscribe(&format!("queues:{SITE}"), None)
        .await
        .unwrap();
    let text = pub_ws.next(T).await.unwrap().to_string();
    for secret in [
        "mental-health",
        "Mielenterveys",
        "substance-abuse",
        "Päihde",
        "lab-sample",
        "Röntgen",
    ] {
        assert!(!text.contains(secret), "public queues name {secret}");
    }
    assert!(text.contains("group-h") && text.contains("Terveyspalvelut"));
    pub_ws
        .subscribe(&format!("site:{SITE}"), None)
        .await
        .unwrap();
    let m = pub_ws.next(T).await.unwrap();
    assert_eq!(m["code"], "forbidden");
    assert_eq!(
        app.committed_seq(),
        before + 2,
        "only the two counter openings were committed"
    );
    // A supervisor may stop a service; then the kiosk is told it is closed.
    let r = sup
        .post(
            &format!("/api/v1/sites/{SITE}/services/kela-general/accepting"),
            &json!({"accepting": false}),
        )
        .await
        .unwrap();
    assert_eq!(r.status, 200);
    let r = k
        .post(
            &format!("/api/v1/sites/{SITE}/tickets"),
            &json!({"service": "kela-general"}),
        )
        .await
        .unwrap();
    assert_eq!((r.status, r.code().as_str()), (409, "service_closed"));
    assert_eq!(
        kela.post("/api/v1/counters/c1/call-next", &json!({}))
            .await
            .unwrap()
            .json()["ticket"]["id"],
        kela_ticket["id"]
    );
    app.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn websocket_refuses_foreign_origins() {
    let dir = TempDir::new("origin");
    let app = spawn_app_in(DEMO, &dir.0).await;
    let mut h = app.http();
    let headers = [
        ("Connection", "Upgrade"),
        ("Upgrade", "websocket"),
        ("Sec-WebSocket-Version", "13"),
        ("Sec-WebSocket-Key", "dGhlIHNhbXBsZSBub25jZQ=="),
        ("Origin", "http://evil.example"),
    ];
    let r = h
        .request("GET", "/api/v1/ws", None, &headers)
        .await
        .unwrap();
    assert_eq!((r.status, r.code().as_str()), (403, "origin_not_allowed"));
    app.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn idempotency_pass_on_and_the_customers_view() {
    let dir = TempDir::new("visit");
    let app = spawn_app_in(DEMO, &dir.0).await;
    let mut k = kiosk(&app).await;
    let (mut agent, _) = staff(&app, "agent2").await;
    let path = format!("/api/v1/sites/{SITE}/tickets");
    let body = br#"{"service": "joint-service", "lang": "sv"}"#;
    let a = k
        .request("POST", &path, Some(body), &[("Idempotency-Key", "tap-1")])
        .await
        .unwrap();
    let b = k
        .request("POST", &path, Some(body), &[("Idempotency-Key", "tap-1")])
        .await
        .unwrap();
    assert_eq!((a.status, b.status), (201, 200));
    assert_eq!(a.json()["id"], b.json()["id"]);
    let t = a.json();
    assert_eq!(t["service_name"], "Rådgivning och ärenden");
    assert!(t["token"].as_str().unwrap().len() >= 32);
    assert!(
        t["track_url"].as_str().unwrap().contains("#t="),
        "the token travels in the URL fragment"
    );
    // No QR code in the answer: the kiosk encodes track_url itself (shared-ui/qr.js).
    assert!(t.get("qr").is_none());

    let mut customer = Ws::connect(app.addr, None).await.unwrap();
    customer
        .subscribe(&format!("ticket:{}", t["token"].as_str().unwrap()), None)
        .await
        .unwrap();
    assert_eq!(customer.next(T).await.unwrap()["data"]["state"], "waiting");
    verb(&mut agent, "c5", "open", json!({})).await;
    verb(&mut agent, "c5", "call-next", json!({})).await;
    let m = until(&mut customer, |m| m["event"]["ticket"]["state"] == "called").await;
    assert_eq!(m["event"]["ticket"]["counter"]["name"], "Servicepunkt 5");
    // Finished and passed on to the lab: same number, waiting there.
    let r = verb(
        &mut agent,
        "c5",
        "finish",
        json!({"next_service": "lab-sample"}),
    )
    .await;
    assert_eq!(r.status, 200);
    let m = until(&mut customer, |m| {
        m["event"]["ticket"]["state"] == "waiting"
    })
    .await;
    assert_eq!(m["event"]["ticket"]["number"], t["number"]);
    assert_eq!(m["event"]["ticket"]["service"], "lab-sample");
    assert_eq!(
        m["event"]["ticket"]["service_name"], "Laboratorium och bilddiagnostik",
        "the customer sees the neutral name"
    );
    verb(&mut agent, "l1", "open", json!({})).await;
    let called = verb(&mut agent, "l1", "call-next", json!({})).await.json();
    assert_eq!(called["ticket"]["number"], t["number"]);
    assert_eq!(called["ticket"]["passed_on_from"], "joint-service");
    // A customer cancels their own waiting ticket; a second cancel is a conflict.
    let other = take(&mut k, "joint-service").await;
    let tok = other["token"].as_str().unwrap();
    let mut anon = app.http();
    assert_eq!(
        anon.delete(&format!("/api/v1/tickets/{tok}"))
            .await
            .unwrap()
            .json()["state"],
        "cancelled"
    );
    assert_eq!(
        anon.delete(&format!("/api/v1/tickets/{tok}"))
            .await
            .unwrap()
            .status,
        409
    );
    app.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn health_metrics_openapi_and_web_clients_are_served() {
    let dir = TempDir::new("health");
    let app = spawn_app_in(DEMO, &dir.0).await;
    let mut h = app.http();
    assert_eq!(h.get("/healthz").await.unwrap().status, 200);
    assert_eq!(h.get("/readyz").await.unwrap().status, 200);
    let mut k = kiosk(&app).await;
    take(&mut k, "kela-general").await;
    let m = String::from_utf8(h.get("/metrics").await.unwrap().body).unwrap();
    assert!(
        m.contains("vuoro_waiting{site=\"iso-omena\",service=\"kela-general\"} 1"),
        "{m}"
    );
    assert!(m.contains("vuoro_ws_clients 0"));
    let metric = |name: &str| -> u64 {
        m.lines()
            .find_map(|l| l.strip_prefix(name)?.strip_prefix(' ')?.parse().ok())
            .unwrap_or_else(|| panic!("no {name} in {m}"))
    };
    // The ticket and the kiosk printer's status, each committed when it happened.
    let (events, commits) = (metric("vuoro_events_total"), metric("vuoro_commits_total"));
    assert!((1..=events).contains(&commits), "{m}");
    let o = h.get("/api/v1/openapi.json").await.unwrap().json();
    assert_eq!(o["openapi"], "3.1.0");
    for p in [
        "/sites/{site}/tickets",
        "/tickets/{token}",
        "/counters/{counter}/{verb}",
        "/auth/login",
    ] {
        assert!(o["paths"].get(p).is_some(), "openapi lacks {p}");
    }
    let langs = h
        .get(&format!("/api/v1/sites/{SITE}/languages"))
        .await
        .unwrap()
        .json();
    let names: HashMap<String, String> = langs["languages"]
        .as_array()
        .unwrap()
        .iter()
        .map(|l| {
            (
                l["code"].as_str().unwrap().into(),
                l["name"].as_str().unwrap().into(),
            )
        })
        .collect();
    assert_eq!(names["sv"], "Svenska");
    assert_eq!(names["ar"], "العربية");
    let d = h
        .get(&format!("/api/v1/sites/{SITE}/displays/health"))
        .await
        .unwrap()
        .json();
    let zone = &d["zones"][0];
    assert_eq!(zone["id"], "health");
    let services: Vec<&str> = zone["services"]
        .as_array()
        .unwrap()
        .iter()
        .map(|v| v.as_str().unwrap())
        .collect();
    assert!(
        services.contains(&"group-h") && services.contains(&"child-clinic"),
        "{services:?}"
    );
    assert!(
        !services
            .iter()
            .any(|s| s.contains("mental") || s.contains("lab")),
        "a display's zone names no sensitive service: {services:?}"
    );
    for page in ["/kiosk/", "/display/", "/desk/", "/shared/vuoro.js"] {
        let r = h.get(page).await.unwrap();
        assert_eq!(r.status, 200, "{page}");
    }
    app.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_demo_config_is_refused_on_a_non_loopback_address() {
    let cfg = vuoro_server::config::load(DEMO).unwrap();
    let dir = TempDir::new("public");
    let listener = tokio::net::TcpListener::bind("0.0.0.0:0").await.unwrap();
    let settings = vuoro_server::Settings {
        config: cfg,
        data_dir: dir.0.clone(),
        record_ws: None,
        ready: None,
    };
    let err = vuoro_server::serve(settings, listener, async {})
        .await
        .unwrap_err();
    assert!(err.to_string().contains("demo"), "{err}");
}

/// `Settings::ready` (what `vuoro serve` turns into systemd's READY=1) is told only once the daemon
/// serves: `/readyz` answers at once, and a refused start never tells it.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn serve_tells_ready_once_it_serves_and_never_when_refused() {
    let dir = TempDir::new("ready");
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = listener.local_addr().unwrap();
    let (ready, on_ready) = tokio::sync::oneshot::channel();
    let (stop, stopped) = tokio::sync::oneshot::channel::<()>();
    let settings = vuoro_server::Settings {
        config: vuoro_server::config::load(DEMO).unwrap(),
        data_dir: dir.0.clone(),
        record_ws: None,
        ready: Some(ready),
    };
    let task = tokio::spawn(vuoro_server::serve(settings, listener, async move {
        let _ = stopped.await;
    }));
    tokio::time::timeout(Duration::from_secs(30), on_ready)
        .await
        .expect("ready within 30 s")
        .expect("ready told, not dropped");
    let r = Http::new(addr).get("/readyz").await.unwrap();
    assert_eq!(r.status, 200, "/readyz once ready was told");
    let _ = stop.send(());
    task.await.unwrap().unwrap();

    // The demo config on a non-loopback address is refused: the sender is dropped, never used.
    let listener = tokio::net::TcpListener::bind("0.0.0.0:0").await.unwrap();
    let (ready, on_ready) = tokio::sync::oneshot::channel::<()>();
    let settings = vuoro_server::Settings {
        config: vuoro_server::config::load(DEMO).unwrap(),
        data_dir: dir.0.clone(),
        record_ws: None,
        ready: Some(ready),
    };
    assert!(
        vuoro_server::serve(settings, listener, async {})
            .await
            .is_err()
    );
    assert!(on_ready.await.is_err(), "a refused start told ready");
}

#[path = "e2e/asyncapi.rs"]
mod asyncapi;
#[path = "e2e/backup.rs"]
mod backup;
#[path = "e2e/devices.rs"]
mod devices;
#[path = "e2e/displays.rs"]
mod displays;
#[path = "e2e/feedback.rs"]
mod feedback;
#[path = "e2e/fuzz.rs"]
mod fuzz;
#[path = "e2e/live_config.rs"]
mod live_config;
#[path = "e2e/monitoring.rs"]
mod monitoring;
#[path = "e2e/notices.rs"]
mod notices;
#[path = "e2e/notices_push.rs"]
mod notices_push;
#[path = "e2e/openapi_routes.rs"]
mod openapi_routes;
#[path = "e2e/printing.rs"]
mod printing;
#[path = "e2e/security.rs"]
mod security;
#[path = "e2e/sessions.rs"]
mod sessions;
#[path = "e2e/store_failure.rs"]
mod store_failure;

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn kiosks_see_real_service_names_the_public_the_neutral_ones() {
    let dir = TempDir::new("names");
    let app = spawn_app_in(DEMO, &dir.0).await;
    let path = format!("/api/v1/sites/{SITE}/services?lang=en");
    let public = app.http().get(&path).await.unwrap().json();
    let mut k = kiosk(&app).await;
    let kiosk_view = k.get(&path).await.unwrap().json();
    let name = |v: &Value, id: &str| {
        v["services"]
            .as_array()
            .unwrap()
            .iter()
            .find(|s| s["id"] == id)
            .unwrap()["name"]
            .as_str()
            .unwrap()
            .to_string()
    };
    // The public list has the neutral group in place of the sensitive services.
    assert_eq!(name(&public, "group-h"), "Health services");
    assert_eq!(name(&kiosk_view, "mental-health"), "Mental health services");
    let wait = kiosk_view["services"]
        .as_array()
        .unwrap()
        .iter()
        .find(|s| s["id"] == "lab-sample")
        .unwrap()["wait_area"]
        .clone();
    assert_eq!(wait, "Health station");
    // The ticket itself stays neutral, and can be read in another language.
    let t = k
        .post(
            &format!("/api/v1/sites/{SITE}/tickets"),
            &json!({"service": "mental-health", "lang": "ar"}),
        )
        .await
        .unwrap()
        .json();
    let tok = t["token"].as_str().unwrap();
    assert_eq!(t["service_name"], "الخدمات الصحية");
    let en = app
        .http()
        .get(&format!("/api/v1/tickets/{tok}?lang=en"))
        .await
        .unwrap()
        .json();
    assert_eq!(en["service_name"], "Health services");
    assert_eq!(en["wait_area"], "Health station");
    assert_eq!(
        en["lang"], "ar",
        "the ticket's own language does not change"
    );
    let bad = app
        .http()
        .get(&format!("/api/v1/tickets/{tok}?lang=xx"))
        .await
        .unwrap();
    assert_eq!(bad.status, 422);
    app.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn remote_joins_are_for_remote_services_only_and_rate_limited() {
    let dir = TempDir::new("remote");
    let app = spawn_app_in(DEMO, &dir.0).await;
    let mut phone = app.http();
    let path = format!("/api/v1/sites/{SITE}/tickets");
    let body = br#"{"service": "library-help", "lang": "en"}"#;
    let mine = phone
        .request(
            "POST",
            &path,
            Some(body),
            &[("Idempotency-Key", "same-key")],
        )
        .await
        .unwrap();
    assert_eq!(mine.status, 201);
    // Another phone (another address) using the same key gets its own ticket, never the first one's.
    let other = post_from("127.0.0.2", app.addr, &path, body, "same-key").await;
    assert!(other["number"].as_str().is_some(), "{other}");
    assert_ne!(other["id"], mine.json()["id"]);
    assert_ne!(other["token"], mine.json()["token"]);
    for i in 0..4 {
        let r = phone
            .post(&path, &json!({"service": "library-help", "lang": "en"}))
            .await
            .unwrap();
        assert_eq!(r.status, 201, "remote join {i}");
        assert_eq!(r.json()["print"]["status"], "none");
    }
    let r = phone
        .post(&path, &json!({"service": "library-help"}))
        .await
        .unwrap();
    assert_eq!((r.status, r.code().as_str()), (429, "rate_limited"));
    let before = app.committed_seq();
    let r = phone
        .post(&path, &json!({"service": "digital-help"}))
        .await
        .unwrap();
    assert_eq!(r.status, 429, "the limit is per client, not per service");
    assert_eq!(app.committed_seq(), before);
    app.stop().await;
}

/// A POST from another loopback address (127.0.0.x), answering the JSON body.
async fn post_from(
    source: &str,
    addr: std::net::SocketAddr,
    path: &str,
    body: &[u8],
    key: &str,
) -> Value {
    use tokio::io::{AsyncReadExt, AsyncWriteExt};
    let sock = tokio::net::TcpSocket::new_v4().unwrap();
    sock.bind(format!("{source}:0").parse().unwrap()).unwrap();
    let mut s = sock.connect(addr).await.unwrap();
    let req = format!(
        "POST {path} HTTP/1.1\r\nHost: {addr}\r\nContent-Type: application/json\r\nIdempotency-Key: {key}\r\nContent-Length: {}\r\nConnection: close\r\n\r\n",
        body.len()
    );
    s.write_all(req.as_bytes()).await.unwrap();
    s.write_all(body).await.unwrap();
    let mut out = Vec::new();
    s.read_to_end(&mut out).await.unwrap();
    let text = String::from_utf8_lossy(&out);
    let (_, body) = text.split_once("\r\n\r\n").unwrap();
    serde_json::from_str(body).unwrap_or(Value::Null)
}

#[test]
fn check_config_names_file_line_and_mistake() {
    let dir = TempDir::new("check");
    let good = dir.0.join("good.toml");
    std::fs::write(&good, DEMO).unwrap();
    let out = std::process::Command::new(vuoro_bin())
        .args(["check-config"])
        .arg(&good)
        .output()
        .unwrap();
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    assert!(
        !String::from_utf8_lossy(&out.stderr).contains("warning"),
        "the demo hall names everything in every language"
    );
    // A name missing in one of the site's languages is a warning, not a mistake.
    let untranslated = dir.0.join("untranslated.toml");
    std::fs::write(
        &untranslated,
        DEMO.replacen(", ar = \"ساحة الخدمات\"", "", 1),
    )
    .unwrap();
    let out = std::process::Command::new(vuoro_bin())
        .args(["check-config"])
        .arg(&untranslated)
        .output()
        .unwrap();
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(out.status.success(), "{err}");
    assert!(err.contains("warning") && err.contains("ar"), "{err}");
    let bad = dir.0.join("bad.toml");
    let broken = DEMO
        .replacen(
            "series = \"K\"\nicon = \"benefits\"",
            "series = \"Q\"\nicon = \"benefits\"",
            1,
        )
        .replacen(
            "timezone = \"Europe/Helsinki\"",
            "timezone = \"Europe/Espoo\"",
            1,
        );
    assert_ne!(broken, DEMO);
    std::fs::write(&bad, &broken).unwrap();
    let out = std::process::Command::new(vuoro_bin())
        .args(["check-config"])
        .arg(&bad)
        .output()
        .unwrap();
    assert_eq!(out.status.code(), Some(1));
    let err = String::from_utf8_lossy(&out.stderr);
    let line_of = |needle: &str| broken.lines().position(|l| l.contains(needle)).unwrap() + 1;
    assert!(
        err.contains(&format!(
            "{}:{}: unknown time zone 'Europe/Espoo'",
            bad.display(),
            line_of("Europe/Espoo")
        )),
        "{err}"
    );
    assert!(err.contains("unknown series 'Q'"), "{err}");
    // And the daemon refuses to start on it.
    let out = std::process::Command::new(vuoro_bin())
        .args(["serve", "--listen", "127.0.0.1:0", "--config"])
        .arg(&bad)
        .arg("--data")
        .arg(dir.0.join("data"))
        .output()
        .unwrap();
    assert!(!out.status.success());
    assert!(String::from_utf8_lossy(&out.stderr).contains("unknown time zone"));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn supervisors_see_displays_come_online_and_go_offline() {
    let dir = TempDir::new("displays");
    let config = DEMO.replacen(
        "demo = true\n",
        "demo = true\ndisplay_offline_seconds = 1\n",
        1,
    );
    let app = spawn_app_in(&config, &dir.0).await;
    let sup = login(app.addr, "supervisor", "demo").await.unwrap();
    // A supervisor's site snapshot: (the live socket, the hall display's entry in it).
    let site_view = || async {
        let mut ws = Ws::connect(app.addr, Some(&sup)).await.unwrap();
        ws.subscribe(&format!("site:{SITE}"), None).await.unwrap();
        let snap = ws.next(T).await.unwrap();
        let hall = snap["data"]["displays"]
            .as_array()
            .unwrap()
            .iter()
            .find(|d| d["id"] == "hall")
            .unwrap()
            .clone();
        (ws, hall)
    };
    let (mut staff, hall) = site_view().await;
    assert_eq!(hall["status"], Value::Null, "never seen yet");
    // A hall display connects (twice: a second screen or a reload) and says which it is.
    let mut d1 = Ws::connect(app.addr, None).await.unwrap();
    d1.send(&json!({"type": "hello", "display": "hall"}))
        .await
        .unwrap();
    let m = until(&mut staff, |m| m["event"]["kind"] == "display_status").await;
    assert_eq!(
        (m["event"]["device"].as_str(), m["event"]["status"].as_str()),
        (Some("hall"), Some("online"))
    );
    let mut d2 = Ws::connect(app.addr, None).await.unwrap();
    d2.send(&json!({"type": "hello", "display": "hall"}))
        .await
        .unwrap();
    d2.send(&json!({"type": "hello", "display": "nope"}))
        .await
        .unwrap();
    assert_eq!(d2.next(T).await.unwrap()["code"], "not_found");
    drop(d1);
    // One connection is still open: no change yet. When the last one closes, it is offline.
    let quiet = staff.drain(Duration::from_millis(300)).await;
    assert!(
        quiet.iter().all(|m| m["event"]["kind"] != "display_status"),
        "{quiet:?}"
    );
    drop(d2);
    let m = until(&mut staff, |m| m["event"]["kind"] == "display_status").await;
    assert_eq!(m["event"]["status"], "offline");
    let (_again, hall) = site_view().await;
    assert_eq!(hall["status"], "offline");
    assert!(hall["at"].is_string());
    app.stop().await;
}

/// Subscribing while commits stream in: on every fresh subscription the snapshot is the first message
/// on the topic, and every event after it is newer than the snapshot. (The snapshot is queued and the client
/// registered under one hold of the read model's lock, so no event committed in between can overtake it.)
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_snapshot_comes_before_every_event_published_after_it() {
    use std::sync::Arc;
    use std::sync::atomic::{AtomicBool, Ordering};
    let dir = TempDir::new("snap-first");
    let app = spawn_app_in(DEMO, &dir.0).await;
    let sup = login(app.addr, "supervisor", "demo").await.unwrap();
    let stop = Arc::new(AtomicBool::new(false));
    // Kiosks taking tickets without pause: a commit every few hundred microseconds. Spread over four
    // series (999 numbers each), so a slow machine does not run out of numbers before the watchers end.
    let mut issuers = Vec::new();
    for services in [
        ["joint-service", "child-clinic"],
        ["library-help", "lab-sample"],
    ] {
        let mut k = kiosk(&app).await;
        let stop = stop.clone();
        issuers.push(tokio::spawn(async move {
            for service in services.iter().cycle() {
                if stop.load(Ordering::Relaxed) {
                    break;
                }
                take(&mut k, service).await;
            }
        }));
    }
    let topic = format!("site:{SITE}");
    let mut watchers = Vec::new();
    for _ in 0..6 {
        let (addr, sup, topic) = (app.addr, sup.clone(), topic.clone());
        watchers.push(tokio::spawn(async move {
            let mut checked = 0;
            for _ in 0..40 {
                let mut ws = Ws::connect(addr, Some(&sup)).await.unwrap();
                ws.subscribe(&topic, None).await.unwrap();
                let mut snapshot_seq = None;
                let mut events = 0;
                while events < 3 {
                    let m = ws.next(T).await.expect("messages keep coming");
                    if m["topic"] != topic.as_str() {
                        continue;
                    }
                    let seq = m["seq"].as_u64().unwrap();
                    match (m["type"].as_str(), snapshot_seq) {
                        (Some("snapshot"), None) => snapshot_seq = Some(seq),
                        (Some("event"), Some(s)) => {
                            assert!(seq > s, "event {seq} after the snapshot at {s}");
                            events += 1;
                        }
                        (kind, s) => panic!("{kind:?} {seq} with the snapshot at {s:?}"),
                    }
                }
                checked += 1;
            }
            checked
        }));
    }
    let mut subscriptions = 0;
    for w in watchers {
        subscriptions += w.await.unwrap();
    }
    stop.store(true, Ordering::Relaxed);
    // A refused ticket panics its issuer; joining brings that out here.
    for i in issuers {
        i.await.unwrap();
    }
    assert_eq!(subscriptions, 240);
    app.stop().await;
}

#[test]
fn a_log_that_is_not_a_terminal_is_plain_text() {
    use std::io::Read;
    let dir = TempDir::new("plain-log");
    let mut child = std::process::Command::new(vuoro_bin())
        .args(["serve", "--listen", "127.0.0.1:0", "--data"])
        .arg(&dir.0)
        .stdout(std::process::Stdio::null())
        .stderr(std::process::Stdio::piped())
        .spawn()
        .unwrap();
    let mut stderr = child.stderr.take().unwrap();
    let reader = std::thread::spawn(move || {
        let mut log = Vec::new();
        let mut buf = [0u8; 4096];
        let deadline = std::time::Instant::now() + Duration::from_secs(15);
        while std::time::Instant::now() < deadline {
            match stderr.read(&mut buf) {
                Ok(0) | Err(_) => break,
                Ok(n) => log.extend_from_slice(&buf[..n]),
            }
            if String::from_utf8_lossy(&log).contains("ready") {
                break;
            }
        }
        log
    });
    let log = reader.join().unwrap();
    let _ = child.kill();
    let _ = child.wait();
    let text = String::from_utf8_lossy(&log);
    assert!(text.contains("ready"), "{text}");
    assert!(
        !text.contains('\u{1b}'),
        "escape codes in a log file: {text:?}"
    );
}

#[test]
fn json_logs_are_one_object_per_line() {
    use std::io::{BufRead, BufReader};
    let dir = TempDir::new("json-log");
    let mut child = std::process::Command::new(vuoro_bin())
        .args([
            "serve",
            "--log-format",
            "json",
            "--listen",
            "127.0.0.1:0",
            "--data",
        ])
        .arg(&dir.0)
        .stdout(std::process::Stdio::null())
        .stderr(std::process::Stdio::piped())
        .spawn()
        .unwrap();
    let stderr = child.stderr.take().unwrap();
    let reader = std::thread::spawn(move || {
        let mut lines = Vec::new();
        for line in BufReader::new(stderr).lines() {
            let Ok(line) = line else { break };
            let ready = line.contains("ready");
            lines.push(line);
            if ready || lines.len() > 200 {
                break;
            }
        }
        lines
    });
    let lines = reader.join().unwrap();
    let _ = child.kill();
    let _ = child.wait();
    assert!(lines.iter().any(|l| l.contains("ready")), "{lines:?}");
    for l in &lines {
        let v: Value = serde_json::from_str(l).unwrap_or_else(|e| panic!("{e}: {l}"));
        assert!(v["level"].is_string() && v["fields"].is_object(), "{l}");
    }
}

/// `name{labels} value` or `name value` from a metrics page.
fn metric_value(page: &str, name: &str) -> Option<u64> {
    page.lines()
        .find_map(|l| l.strip_prefix(name)?.strip_prefix(' ')?.parse().ok())
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_call_is_announced_once_after_its_event_and_never_again_after_a_restart() {
    let dir = TempDir::new("announce");
    let app = spawn_app_in(DEMO, &dir.0).await;
    let mut k = kiosk(&app).await;
    let (mut agent, _) = staff(&app, "agent2").await;
    let mut public = Ws::connect(app.addr, None).await.unwrap();
    for topic in [format!("calls:{SITE}"), format!("announcements:{SITE}")] {
        public.subscribe(&topic, None).await.unwrap();
        assert_eq!(public.next(T).await.unwrap()["type"], "snapshot");
    }

    let ticket = take(&mut k, "joint-service").await;
    assert_eq!(verb(&mut agent, "c5", "open", json!({})).await.status, 200);
    assert_eq!(
        verb(&mut agent, "c5", "call-next", json!({})).await.status,
        200
    );
    assert_eq!(
        verb(&mut agent, "c5", "recall", json!({})).await.status,
        200
    );

    // Each call's event, then its announcement (same seq), in commit order; the call itself carries
    // nothing to play.
    let announces = format!("announcements:{SITE}");
    let mut seen = Vec::new();
    while seen.len() < 4 {
        let m = public.next(T).await.unwrap();
        assert_eq!(m["type"], "event", "{m}");
        let announced = m["topic"] == announces.as_str();
        let kind = m["event"]["kind"].as_str().unwrap().to_string();
        if kind.starts_with("counter_") {
            continue;
        }
        if announced {
            let a = &m["event"];
            assert_eq!(a["number"], ticket["number"]);
            assert_eq!(a["counter"], "c5");
            assert_eq!(a["zone"], "main");
            assert_eq!(a["audio"][0], "/api/v1/audio/chime.wav", "{m}");
            assert!(a["duration_ms"].as_u64().unwrap() > 0);
        } else {
            assert!(m["event"].get("audio").is_none(), "{m}");
        }
        let kind = if announced {
            format!("announce {kind}")
        } else {
            kind
        };
        seen.push((kind, m["seq"].as_u64().unwrap()));
    }
    let kinds: Vec<&str> = seen.iter().map(|s| s.0.as_str()).collect();
    assert_eq!(
        kinds,
        [
            "ticket_called",
            "announce ticket_called",
            "ticket_recalled",
            "announce ticket_recalled"
        ]
    );
    assert_eq!(seen[0].1, seen[1].1);
    assert_eq!(seen[2].1, seen[3].1);
    assert!(seen[2].1 > seen[0].1);
    // Once each.
    assert!(
        public
            .drain(Duration::from_millis(500))
            .await
            .iter()
            .all(|m| m["topic"] != announces.as_str())
    );
    audio_reaches_the_last_seq(&app).await;
    app.stop().await;

    // After a restart nothing from before is announced again; audio starts at the current seq.
    let app = spawn_app_in(DEMO, &dir.0).await;
    let mut public = Ws::connect(app.addr, None).await.unwrap();
    public.subscribe(&announces, None).await.unwrap();
    assert_eq!(public.next(T).await.unwrap()["type"], "snapshot");
    let heard = public.drain(Duration::from_millis(1000)).await;
    assert!(heard.is_empty(), "{heard:?}");
    audio_reaches_the_last_seq(&app).await;
    app.stop().await;
}

/// Waits until the metrics say the audio consumer has handled the last committed event.
async fn audio_reaches_the_last_seq(app: &TestApp) {
    let mut h = app.http();
    let deadline = Instant::now() + T;
    loop {
        let m = String::from_utf8(h.get("/metrics").await.unwrap().body).unwrap();
        let last = metric_value(&m, "vuoro_last_seq").expect("vuoro_last_seq");
        if metric_value(&m, "vuoro_after_commit_seq{consumer=\"audio\"}") == Some(last) {
            return;
        }
        assert!(Instant::now() < deadline, "audio behind: {m}");
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
}
