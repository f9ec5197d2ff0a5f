//! Hall displays that froze with their socket open: a display's page reports that it renders
//! (`rendering`); when the reports stop while the connection stays open, supervisors see the display
//! `frozen` (site snapshot, `display_status` events, `/metrics`), and `online` again once reports resume.

use std::time::{Duration, Instant};

use super::*;

/// The hall display's (status, connected, frozen) in a supervisor's fresh site snapshot and in /metrics.
async fn hall_seen(app: &TestApp, sup: &str) -> (Value, String, String) {
    let mut ws = Ws::connect(app.addr, Some(sup)).await.unwrap();
    ws.subscribe(&format!("site:{SITE}"), None).await.unwrap();
    let snap = ws.next(T).await.unwrap();
    let status = snap["data"]["displays"]
        .as_array()
        .unwrap()
        .iter()
        .find(|d| d["id"] == "hall")
        .unwrap()["status"]
        .clone();
    let metrics = String::from_utf8(app.http().get("/metrics").await.unwrap().body).unwrap();
    let sample = |name: &str| {
        let prefix = format!("{name}{{site=\"{SITE}\",display=\"hall\"}} ");
        metrics
            .lines()
            .find_map(|l| l.strip_prefix(prefix.as_str()))
            .unwrap_or_else(|| panic!("no {prefix} in\n{metrics}"))
            .to_string()
    };
    (
        status,
        sample("vuoro_display_online"),
        sample("vuoro_display_frozen"),
    )
}

/// The next `display_status` event on a supervisor's socket: (display, status).
async fn next_status(staff: &mut Ws) -> (String, String) {
    let m = until(staff, |m| m["event"]["kind"] == "display_status").await;
    (
        m["event"]["device"].as_str().unwrap().to_string(),
        m["event"]["status"].as_str().unwrap().to_string(),
    )
}

/// Sends a rendering report every 250 ms for `how_long`; the display_status events the supervisor got
/// meanwhile.
async fn keep_rendering(display: &mut Ws, staff: &mut Ws, how_long: Duration) -> Vec<Value> {
    let end = Instant::now() + how_long;
    let mut heard = Vec::new();
    while Instant::now() < end {
        display.send(&json!({"type": "rendering"})).await.unwrap();
        heard.extend(
            staff
                .drain(Duration::from_millis(250))
                .await
                .into_iter()
                .filter(|m| m["event"]["kind"] == "display_status"),
        );
    }
    heard
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_display_that_stops_rendering_with_its_socket_open_is_frozen_until_it_renders_again() {
    let dir = TempDir::new("display-frozen");
    let config = DEMO.replacen(
        "demo = true\n",
        "demo = true\ndisplay_offline_seconds = 1\ndisplay_frozen_seconds = 2\n",
        1,
    );
    let app = spawn_app_in(&config, &dir.0).await;
    let sup = login(app.addr, "supervisor", "demo").await.unwrap();
    let mut staff = Ws::connect(app.addr, Some(&sup)).await.unwrap();
    staff
        .subscribe(&format!("site:{SITE}"), None)
        .await
        .unwrap();
    assert_eq!(staff.next(T).await.unwrap()["type"], "snapshot");

    // The display's entry tells its page how often to report: a quarter of the timeout, at least 1 s.
    let entry = app
        .http()
        .get(&format!("/api/v1/sites/{SITE}/displays/hall"))
        .await
        .unwrap()
        .json();
    assert_eq!(entry["display"]["rendering_report_seconds"], 1);

    // A connection that is no display may not report.
    let mut stranger = Ws::connect(app.addr, None).await.unwrap();
    stranger.send(&json!({"type": "rendering"})).await.unwrap();
    let e = stranger.next(T).await.unwrap();
    assert_eq!(
        (e["type"].as_str(), e["code"].as_str()),
        (Some("error"), Some("not_found"))
    );

    // An older display page ("health") says hello and never reports: it is never judged, so never frozen.
    let mut older = Ws::connect(app.addr, None).await.unwrap();
    older
        .send(&json!({"type": "hello", "display": "health"}))
        .await
        .unwrap();
    assert_eq!(
        next_status(&mut staff).await,
        ("health".into(), "online".into())
    );

    // The hall display connects and reports for longer than the timeout: online, and no other commit.
    let mut hall = Ws::connect(app.addr, None).await.unwrap();
    hall.send(&json!({"type": "hello", "display": "hall"}))
        .await
        .unwrap();
    assert_eq!(
        next_status(&mut staff).await,
        ("hall".into(), "online".into())
    );
    let heard = keep_rendering(&mut hall, &mut staff, Duration::from_secs(3)).await;
    assert!(heard.is_empty(), "reports change nothing: {heard:?}");

    // Its page stops reporting; the socket stays open. Frozen after the timeout, not before.
    let stopped = Instant::now();
    assert_eq!(
        next_status(&mut staff).await,
        ("hall".into(), "frozen".into())
    );
    let after = stopped.elapsed();
    assert!(
        after >= Duration::from_millis(1500),
        "frozen after {after:?}"
    );
    let (status, connected, frozen) = hall_seen(&app, &sup).await;
    assert_eq!(
        (status, connected.as_str(), frozen.as_str()),
        (json!("frozen"), "1", "1")
    );

    // Reports resume: online again at the first one, and it stays so.
    let heard = keep_rendering(&mut hall, &mut staff, Duration::from_secs(3)).await;
    let statuses: Vec<(&str, &str)> = heard
        .iter()
        .map(|m| {
            (
                m["event"]["device"].as_str().unwrap(),
                m["event"]["status"].as_str().unwrap(),
            )
        })
        .collect();
    assert_eq!(statuses, [("hall", "online")]);
    let (status, connected, frozen) = hall_seen(&app, &sup).await;
    assert_eq!(
        (status, connected.as_str(), frozen.as_str()),
        (json!("online"), "1", "0")
    );

    // Frozen again; a reload (a new connection, not yet judged) makes it online at once, and the frozen
    // page's socket closes, as a reload closes it.
    assert_eq!(
        next_status(&mut staff).await,
        ("hall".into(), "frozen".into())
    );
    let mut reloaded = Ws::connect(app.addr, None).await.unwrap();
    reloaded
        .send(&json!({"type": "hello", "display": "hall"}))
        .await
        .unwrap();
    assert_eq!(
        next_status(&mut staff).await,
        ("hall".into(), "online".into())
    );
    drop(hall);

    // The older page was never frozen all along.
    let quiet = staff.drain(Duration::from_millis(300)).await;
    assert!(
        quiet.iter().all(|m| m["event"]["kind"] != "display_status"),
        "{quiet:?}"
    );
    drop(older);
    assert_eq!(
        next_status(&mut staff).await,
        ("health".into(), "offline".into())
    );

    // The reloaded page's connection closes too: offline.
    drop(reloaded);
    assert_eq!(
        next_status(&mut staff).await,
        ("hall".into(), "offline".into())
    );
    let (status, connected, frozen) = hall_seen(&app, &sup).await;
    assert_eq!(
        (status, connected.as_str(), frozen.as_str()),
        (json!("offline"), "0", "0")
    );
    app.stop().await;
}
