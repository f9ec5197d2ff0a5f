//! A commit that fails: another process holds the database's write lock longer than the writer waits for
//! it (5 s). The batch is refused: nothing of it is stored or published and no number is used up. The
//! commands queued behind it are handled afresh on the committed state.

use super::*;

/// The numeric part of a ticket number ("Y012" -> 12).
fn number_of(t: &Value) -> u32 {
    let n = t["number"].as_str().expect("number");
    n.trim_start_matches(|c: char| !c.is_ascii_digit())
        .parse()
        .expect("digits")
}

/// `vuoro_store_commit_failures_total` from /metrics (what the alert VuoroStoreFailing watches).
async fn commit_failures(app: &TestApp) -> u64 {
    let m = String::from_utf8(app.http().get("/metrics").await.unwrap().body).unwrap();
    m.lines()
        .find_map(|l| {
            l.strip_prefix("vuoro_store_commit_failures_total ")?
                .parse()
                .ok()
        })
        .unwrap_or_else(|| panic!("no vuoro_store_commit_failures_total in {m}"))
}

fn waiting(msg: &Value) -> Option<u64> {
    let services = msg["event"]["services"].as_array()?;
    services
        .iter()
        .find(|s| s["id"] == "joint-service")
        .and_then(|s| s["waiting"].as_u64())
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_failed_commit_refuses_its_batch_changes_nothing_and_the_queue_behind_goes_on() {
    let dir = TempDir::new("store-failure");
    let app = spawn_app_in(DEMO, &dir.0).await;
    let path = format!("/api/v1/sites/{SITE}/tickets");
    let body = br#"{"service": "joint-service", "lang": "fi"}"#;
    let mut k = kiosk(&app).await;
    let first = take(&mut k, "joint-service").await;
    let mut queues = Ws::connect(app.addr, None).await.unwrap();
    queues
        .subscribe(&format!("queues:{SITE}"), None)
        .await
        .unwrap();
    let snapshot = queues.next(T).await.unwrap();
    assert_eq!(snapshot["type"], "snapshot", "{snapshot}");

    assert_eq!(commit_failures(&app).await, 0);

    // Another process takes the write lock and holds it until told.
    let db = app.data.join("vuoro.sqlite");
    let (locked_tx, locked) = std::sync::mpsc::channel();
    let (release, release_rx) = std::sync::mpsc::channel::<()>();
    let blocker = std::thread::spawn(move || {
        let conn = rusqlite::Connection::open(&db).unwrap();
        conn.execute_batch("BEGIN IMMEDIATE").unwrap();
        locked_tx.send(()).unwrap();
        release_rx.recv().unwrap();
        conn.execute_batch("ROLLBACK").unwrap();
    });
    locked.recv().unwrap();

    // B waits for the lock; C and a retry of B queue up behind it.
    let send = |key: Option<&'static str>| {
        let addr = app.addr;
        let token = k.token.clone().unwrap();
        let path = path.clone();
        tokio::spawn(async move {
            let mut h = Http::with_token(addr, &token);
            let headers: Vec<(&str, &str)> =
                key.map(|k| ("Idempotency-Key", k)).into_iter().collect();
            let t = Instant::now();
            let r = h
                .request("POST", &path, Some(body), &headers)
                .await
                .unwrap();
            (r, t.elapsed())
        })
    };
    let b = send(Some("tap-b"));
    tokio::time::sleep(Duration::from_millis(300)).await;
    let c = send(None);
    let b_again = send(Some("tap-b"));
    let (b, waited) = b.await.unwrap();
    assert_eq!(b.status, 503, "{}", String::from_utf8_lossy(&b.body));
    assert!(
        waited >= Duration::from_secs(4),
        "refused after the writer's 5 s wait for the lock, not before: {waited:?}"
    );
    let message = b.json()["error"]["message"].as_str().unwrap().to_string();
    assert!(message.contains("nothing was changed"), "{message}");
    assert!(
        commit_failures(&app).await >= 1,
        "the failed commit is counted"
    );
    release.send(()).unwrap();
    blocker.join().unwrap();

    // Handled on the committed state: B's number was not used up, and its key is free (B was never issued),
    // so the retry of B made a new ticket.
    let (c, _) = c.await.unwrap();
    let (b_again, _) = b_again.await.unwrap();
    assert_eq!(
        (c.status, b_again.status),
        (201, 201),
        "{} {}",
        String::from_utf8_lossy(&c.body),
        String::from_utf8_lossy(&b_again.body)
    );
    let mut numbers = [number_of(&c.json()), number_of(&b_again.json())];
    numbers.sort();
    assert_eq!(numbers, [number_of(&first) + 1, number_of(&first) + 2]);
    let retried = k
        .request("POST", &path, Some(body), &[("Idempotency-Key", "tap-b")])
        .await
        .unwrap();
    assert_eq!(retried.status, 200, "the key now names B's retry");
    assert_eq!(retried.json()["id"], b_again.json()["id"]);
    let next = take(&mut k, "joint-service").await;
    assert_eq!(number_of(&next), number_of(&first) + 3, "{next}");

    // Nothing refused was published: the queue only grew, to 4 (other commits, such as a printer's
    // status, repeat the figures).
    let mut seen = Vec::new();
    while seen.last() != Some(&4) {
        let m = queues.next(T).await.expect("queue figures in time");
        if let Some(w) = waiting(&m)
            && seen.last() != Some(&w)
        {
            seen.push(w);
        }
    }
    assert!(
        seen.windows(2).all(|w| w[0] < w[1]) && seen[0] >= 1,
        "{seen:?}"
    );

    // Nor stored: four tickets in the event log, with consecutive sequence numbers.
    let conn = rusqlite::Connection::open_with_flags(
        app.data.join("vuoro.sqlite"),
        rusqlite::OpenFlags::SQLITE_OPEN_READ_ONLY,
    )
    .unwrap();
    let issued: i64 = conn
        .query_row(
            "SELECT COUNT(*) FROM events WHERE kind = 'ticket_issued'",
            [],
            |r| r.get(0),
        )
        .unwrap();
    assert_eq!(issued, 4);
    let (n, lo, hi): (i64, i64, i64) = conn
        .query_row("SELECT COUNT(*), MIN(seq), MAX(seq) FROM events", [], |r| {
            Ok((r.get(0)?, r.get(1)?, r.get(2)?))
        })
        .unwrap();
    assert_eq!(hi - lo + 1, n, "no gap in the event log");
    app.stop().await;
}
