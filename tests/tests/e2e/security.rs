//! Attacks by kind against the real daemon: oversized snapshots, connection exhaustion, abuse of public
//! endpoints, authorization after logout, cross-site requests, demo secrets, and error shapes. Each test
//! names the defence it checks; each failed against the daemon without that defence.

use std::time::{Duration, Instant};

use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::TcpStream;

use super::*;

/// The demo config with extra `[server]` settings.
fn demo_with(server: &str) -> String {
    DEMO.replacen("demo = true\n", &format!("demo = true\n{server}\n"), 1)
}

/// Reads until the peer closes the connection or `within` passes; the bytes read and whether it closed.
async fn read_until_closed(s: &mut TcpStream, within: Duration) -> (Vec<u8>, bool) {
    let mut out = Vec::new();
    let deadline = Instant::now() + within;
    let mut buf = [0u8; 4096];
    loop {
        let left = deadline.saturating_duration_since(Instant::now());
        match tokio::time::timeout(left, s.read(&mut buf)).await {
            Ok(Ok(0)) | Ok(Err(_)) => return (out, true),
            Ok(Ok(n)) => out.extend_from_slice(&buf[..n]),
            Err(_) => return (out, false),
        }
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_site_snapshot_stays_small_on_a_5000_ticket_day() {
    let dir = TempDir::new("sec-snapshot");
    let app = spawn_app_in(DEMO, &dir.0).await;
    // 5,000 tickets over six series (a series numbers up to 999 a day), taken by four kiosks at once;
    // every tenth cancelled again, so 4,500 stay open.
    let services = [
        "kela-families",
        "joint-service",
        "child-clinic",
        "mental-health",
        "lab-sample",
        "health-advice",
    ];
    let mut workers = Vec::new();
    for w in 0..4usize {
        let token = demo_device_token(app.addr, "kiosk-1").await.unwrap();
        let addr = app.addr;
        workers.push(tokio::spawn(async move {
            let mut k = Http::with_token(addr, &token);
            let mut public = Http::new(addr);
            for i in 0..1250usize {
                let svc = services[(w * 1250 + i) % services.len()];
                let r = k
                    .post(
                        &format!("/api/v1/sites/{SITE}/tickets"),
                        &json!({"service": svc}),
                    )
                    .await
                    .unwrap();
                assert_eq!(r.status, 201, "{}", String::from_utf8_lossy(&r.body));
                if i % 10 == 0 {
                    let token = r.json()["token"].as_str().unwrap().to_string();
                    let c = public.delete(&format!("/api/v1/tickets/{token}")).await;
                    assert_eq!(c.unwrap().status, 200);
                }
            }
        }));
    }
    for w in workers {
        w.await.unwrap();
    }
    let (_, token) = staff(&app, "supervisor").await;
    let mut ws = Ws::connect(app.addr, Some(&token)).await.unwrap();
    ws.subscribe(&format!("site:{SITE}"), None).await.unwrap();
    let snap = ws.next(T).await.expect("the snapshot arrives");
    assert_eq!(snap["type"], "snapshot", "{snap}");
    let size = snap.to_string().len();
    assert!(size < 256 * 1024, "snapshot of {size} bytes");
    let tickets = snap["data"]["tickets"].as_array().unwrap();
    assert!(
        tickets.iter().all(|t| t["state"] == "waiting"),
        "open tickets only"
    );
    let shown = tickets.len() as u64;
    let omitted = snap["data"]["tickets_omitted"].as_u64().unwrap();
    assert_eq!(
        shown + omitted,
        4500,
        "every open ticket is shown or counted"
    );
    assert!(shown > 0);
    // The socket stays open: the next ticket reaches it.
    let mut k = kiosk(&app).await;
    take(&mut k, "parking").await;
    let ev = until(&mut ws, |m| m["type"] == "event").await;
    assert_eq!(ev["event"]["kind"], "ticket_issued", "{ev}");
    app.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn silent_and_slow_connections_are_closed_after_the_header_timeout() {
    let dir = TempDir::new("sec-slowloris");
    let app = spawn_app_in(&demo_with("header_timeout_seconds = 1"), &dir.0).await;
    let started = Instant::now();
    // One says nothing; one sends half a request head and then a byte now and then.
    let mut silent = TcpStream::connect(app.addr).await.unwrap();
    let mut slow = TcpStream::connect(app.addr).await.unwrap();
    slow.write_all(b"GET /healthz HTTP/1.1\r\nHost: x\r\n")
        .await
        .unwrap();
    let drip = tokio::spawn(async move {
        for _ in 0..10 {
            tokio::time::sleep(Duration::from_millis(300)).await;
            if slow.write_all(b"X-A: b\r\n").await.is_err() {
                return true;
            }
        }
        let (_, closed) = read_until_closed(&mut slow, Duration::from_millis(100)).await;
        closed
    });
    let (_, closed) = read_until_closed(&mut silent, Duration::from_secs(4)).await;
    assert!(closed, "a silent connection is closed");
    assert!(drip.await.unwrap(), "a slowly dripped head is cut off");
    assert!(started.elapsed() < Duration::from_secs(4));
    // An idle keep-alive connection after a request is closed too.
    let mut idle = TcpStream::connect(app.addr).await.unwrap();
    idle.write_all(b"GET /healthz HTTP/1.1\r\nHost: x\r\n\r\n")
        .await
        .unwrap();
    let (answer, closed) = read_until_closed(&mut idle, Duration::from_secs(4)).await;
    assert!(String::from_utf8_lossy(&answer).starts_with("HTTP/1.1 200"));
    assert!(closed, "an idle keep-alive connection is closed");
    app.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn one_address_cannot_hold_every_connection() {
    let dir = TempDir::new("sec-conncap");
    let app = spawn_app_in(&demo_with("max_connections_per_address = 20"), &dir.0).await;
    let mut held = Vec::new();
    for _ in 0..20 {
        let mut s = TcpStream::connect(app.addr).await.unwrap();
        s.write_all(b"GET /healthz HTTP/1.1\r\n").await.unwrap();
        held.push(s);
    }
    tokio::time::sleep(Duration::from_millis(200)).await;
    let mut over = TcpStream::connect(app.addr).await.unwrap();
    let (answer, closed) = read_until_closed(&mut over, Duration::from_secs(3)).await;
    let answer = String::from_utf8_lossy(&answer);
    assert!(answer.starts_with("HTTP/1.1 503"), "{answer}");
    assert!(answer.contains(r#""code":"unavailable""#), "{answer}");
    assert!(closed);
    // WebSockets count too, and give their place back when they close.
    drop(held.pop());
    tokio::time::sleep(Duration::from_millis(200)).await;
    let ws = Ws::connect(app.addr, None).await.expect("a freed place");
    assert!(Ws::connect(app.addr, None).await.is_err(), "the cap holds");
    drop(ws);
    drop(held);
    tokio::time::sleep(Duration::from_millis(300)).await;
    let r = app.http().get("/healthz").await.unwrap();
    assert_eq!(r.status, 200);
    app.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn only_a_kiosk_may_have_speech_rendered_and_not_without_limit() {
    let dir = TempDir::new("sec-speech");
    let app = spawn_app_in(DEMO, &dir.0).await;
    let path = "/api/v1/audio/speech?lang=fi&text=Hei";
    let r = app.http().get(path).await.unwrap();
    assert_eq!((r.status, r.code()), (401, "unauthenticated".into()));
    let (mut agent, _) = staff(&app, "agent1").await;
    assert_eq!(agent.get(path).await.unwrap().status, 403);
    let mut k = kiosk(&app).await;
    // A burst of new texts is cut off (checked before anything is rendered: unknown language).
    let mut statuses = Vec::new();
    for i in 0..260 {
        let r = k
            .get(&format!("/api/v1/audio/speech?lang=xx&text=t{i}"))
            .await
            .unwrap();
        statuses.push(r.status);
    }
    assert!(statuses[..190].iter().all(|&s| s == 422), "{statuses:?}");
    assert!(statuses[230..].iter().all(|&s| s == 429), "{statuses:?}");
    // The store's reserve is held on the data disk.
    let reserve = std::fs::metadata(app.data.join("vuoro.reserve")).expect("reserve file");
    assert_eq!(reserve.len(), 64 * 1024 * 1024);
    app.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_nearly_full_disk_alerts_supervisors_and_stops_speech_but_not_tickets() {
    let dir = TempDir::new("sec-disk");
    // Every disk is "nearly full" below a petabyte.
    let app = spawn_app_in(&demo_with("disk_alert_free_mb = 1000000000"), &dir.0).await;
    let (_, token) = staff(&app, "supervisor").await;
    let mut ws = Ws::connect(app.addr, Some(&token)).await.unwrap();
    let deadline = Instant::now() + T;
    loop {
        ws.subscribe(&format!("site:{SITE}"), None).await.unwrap();
        let snap = until(&mut ws, |m| m["type"] == "snapshot").await;
        let alerts = snap["data"]["alerts"].as_array().unwrap().clone();
        if alerts.iter().any(|a| a["kind"] == "disk_low") {
            break;
        }
        assert!(Instant::now() < deadline, "no disk_low alert: {alerts:?}");
        tokio::time::sleep(Duration::from_millis(200)).await;
    }
    let mut k = kiosk(&app).await;
    let r = k
        .get("/api/v1/audio/speech?lang=fi&text=Hei")
        .await
        .unwrap();
    assert_eq!((r.status, r.code()), (503, "unavailable".into()));
    take(&mut k, "parking").await;
    app.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_display_connecting_in_a_loop_costs_no_commit_per_connection() {
    let dir = TempDir::new("sec-display-loop");
    let app = spawn_app_in(&demo_with("display_offline_seconds = 1"), &dir.0).await;
    let before = app.committed_seq();
    for _ in 0..100 {
        let mut d = Ws::connect(app.addr, None).await.unwrap();
        d.send(&json!({"type": "hello", "display": "hall"}))
            .await
            .unwrap();
        d.send(&json!({"type": "ping"})).await.unwrap();
        assert_eq!(d.next(T).await.unwrap()["type"], "pong");
    }
    tokio::time::sleep(Duration::from_millis(1500)).await;
    // Online once, offline once after the grace: two events for a hundred connections.
    assert_eq!(app.committed_seq() - before, 2);
    app.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_staff_socket_loses_its_staff_topics_at_sign_out() {
    let dir = TempDir::new("sec-ws-logout");
    let app = spawn_app_in(DEMO, &dir.0).await;
    let (mut agent, token) = staff(&app, "agent1").await;
    let mut ws = Ws::connect(app.addr, Some(&token)).await.unwrap();
    ws.subscribe(&format!("site:{SITE}"), None).await.unwrap();
    assert_eq!(ws.next(T).await.unwrap()["type"], "snapshot");
    ws.subscribe(&format!("calls:{SITE}"), None).await.unwrap();
    assert_eq!(ws.next(T).await.unwrap()["type"], "snapshot");
    let r = agent.post("/api/v1/auth/logout", &json!({})).await.unwrap();
    assert_eq!(r.status, 200);
    let dropped = until(&mut ws, |m| m["type"] == "error").await;
    assert_eq!(dropped["topic"], format!("site:{SITE}"), "{dropped}");
    // Staff events of the user's own unit no longer arrive; public ones still do.
    let mut k = kiosk(&app).await;
    take(&mut k, "kela-families").await;
    let (mut a2, _) = staff(&app, "agent2").await;
    verb(&mut a2, "c5", "open", json!({})).await;
    let later = ws.drain(Duration::from_millis(800)).await;
    assert!(
        later
            .iter()
            .all(|m| m["topic"] != format!("site:{SITE}").as_str()),
        "{later:?}"
    );
    assert!(
        later
            .iter()
            .any(|m| m["topic"] == format!("calls:{SITE}").as_str()),
        "{later:?}"
    );
    // A new subscription to a staff topic is refused.
    ws.subscribe(&format!("site:{SITE}"), None).await.unwrap();
    let m = until(&mut ws, |m| m["type"] == "error").await;
    assert_eq!(m["code"], "forbidden");
    app.stop().await;
}

/// A login from `ip` as a trusted proxy forwards it: (status, time taken).
async fn login_as(app: &TestApp, ip: &str, user: &str, password: &str) -> (u16, Duration) {
    let body = json!({"username": user, "password": password}).to_string();
    let started = Instant::now();
    let r = app
        .http()
        .request(
            "POST",
            "/api/v1/auth/login",
            Some(body.as_bytes()),
            &[("X-Forwarded-For", ip)],
        )
        .await
        .unwrap();
    (r.status, started.elapsed())
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn parallel_wrong_passwords_are_counted_before_they_are_checked() {
    let dir = TempDir::new("sec-login-parallel");
    let app = spawn_app_in(&demo_with(r#"trusted_proxies = ["127.0.0.1"]"#), &dir.0).await;
    let tries: Vec<_> = (0..40)
        .map(|i| {
            let addr = app.addr;
            tokio::spawn(async move {
                let body = json!({"username": "agent1", "password": format!("wrong{i}")});
                let r = Http::new(addr)
                    .request(
                        "POST",
                        "/api/v1/auth/login",
                        Some(body.to_string().as_bytes()),
                        &[("X-Forwarded-For", "198.51.100.7")],
                    )
                    .await
                    .unwrap();
                r.status
            })
        })
        .collect();
    let mut statuses = Vec::new();
    for t in tries {
        statuses.push(t.await.unwrap());
    }
    let checked = statuses.iter().filter(|&&s| s == 401).count();
    let refused = statuses.iter().filter(|&&s| s == 429).count();
    // At most the address's 10 attempts reach a password check (fewer when the username's own count
    // stopped some of them); every other one is refused before it.
    assert_eq!(checked + refused, 40, "{statuses:?}");
    assert!((5..=10).contains(&checked), "{statuses:?}");
    // The locked-out address is one client behind the proxy, not everyone behind it; the username that
    // was guessed at waits a little, from every address.
    assert_eq!(
        login_as(&app, "198.51.100.8", "agent2", "demo").await.0,
        200
    );
    assert_eq!(
        login_as(&app, "198.51.100.8", "agent1", "demo").await.0,
        429
    );
    assert_eq!(
        login_as(&app, "198.51.100.7", "agent2", "demo").await.0,
        429
    );
    app.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn unknown_usernames_take_as_long_as_known_ones() {
    let dir = TempDir::new("sec-login-timing");
    let app = spawn_app_in(&demo_with(r#"trusted_proxies = ["127.0.0.1"]"#), &dir.0).await;
    let mut known = Vec::new();
    let mut unknown = Vec::new();
    for i in 0..5 {
        // A fresh address each time, so the attempt limit is never reached.
        known.push(login_as(&app, &format!("198.51.100.{i}"), "agent1", "wrong").await);
        unknown.push(login_as(&app, &format!("198.51.100.{}", 50 + i), "nobody", "wrong").await);
    }
    assert!(known.iter().chain(&unknown).all(|(s, _)| *s == 401));
    let median = |v: &mut Vec<(u16, Duration)>| {
        v.sort_by_key(|x| x.1);
        v[2].1
    };
    let (k, u) = (median(&mut known), median(&mut unknown));
    assert!(
        u.as_secs_f64() > 0.5 * k.as_secs_f64(),
        "unknown user {u:?}, known user {k:?}"
    );
    app.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_public_sees_sensitive_services_only_as_their_neutral_group() {
    let dir = TempDir::new("sec-sensitive");
    // SHA-256 of "metrics-secret".
    let token_hash = "d31c4153216654104062c2381a35a508ce65581c2abea7770a7cfd76c92e828e";
    let app = spawn_app_in(
        &demo_with(&format!(
            "trusted_proxies = [\"127.0.0.1\"]\nmetrics_token_sha256 = \"{token_hash}\""
        )),
        &dir.0,
    )
    .await;
    let mut k = kiosk(&app).await;
    take(&mut k, "mental-health").await;
    let r = app
        .http()
        .get(&format!("/api/v1/sites/{SITE}/services"))
        .await
        .unwrap();
    assert_eq!(r.status, 200);
    let text = String::from_utf8_lossy(&r.body).to_string();
    for secret in [
        "mental-health",
        "substance-abuse",
        "mielenterveys",
        "xray",
        "lab-sample",
    ] {
        assert!(!text.contains(secret), "{secret} in {text}");
    }
    let services = r.json()["services"].as_array().unwrap().clone();
    assert!(services.iter().all(|s| s["sensitive"] == false));
    let group = services
        .iter()
        .find(|s| s["id"] == "group-h")
        .expect("group");
    assert_eq!(group["waiting"], 1);
    assert_eq!(
        services.iter().filter(|s| s["id"] == "group-h").count(),
        1,
        "one entry per group"
    );
    // The kiosk itself sees the real services (its customers must tell them apart).
    let r = k
        .get(&format!("/api/v1/sites/{SITE}/services"))
        .await
        .unwrap();
    assert!(String::from_utf8_lossy(&r.body).contains("substance-abuse"));
    // Metrics name every service: loopback and the metrics token only.
    assert_eq!(app.http().get("/metrics").await.unwrap().status, 200);
    // From another machine (through the trusted proxy): only with the right token.
    for (auth, want) in [
        (None, 401),
        (Some("Bearer not-the-token"), 401),
        (Some("Bearer metrics-secret"), 200),
    ] {
        let mut headers = vec![("X-Forwarded-For", "203.0.113.9")];
        headers.extend(auth.map(|a| ("Authorization", a)));
        let r = app
            .http()
            .request("GET", "/metrics", None, &headers)
            .await
            .unwrap();
        assert_eq!(r.status, want, "{auth:?}");
    }
    app.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn cookie_requests_from_other_origins_and_non_json_bodies_are_refused() {
    let dir = TempDir::new("sec-csrf");
    let app = spawn_app_in(DEMO, &dir.0).await;
    let (_, token) = staff(&app, "agent2").await;
    let cookie = format!("vuoro_session={token}");
    let path = "/api/v1/counters/c5/open";
    let mut h = app.http();
    let r = h
        .request(
            "POST",
            path,
            Some(b"{}"),
            &[("Cookie", &cookie), ("Origin", "http://127.0.0.1:1")],
        )
        .await
        .unwrap();
    assert_eq!((r.status, r.code()), (403, "origin_not_allowed".into()));
    let r = h
        .request(
            "POST",
            path,
            Some(b"{}"),
            &[("Cookie", &cookie), ("Sec-Fetch-Site", "same-site")],
        )
        .await
        .unwrap();
    assert_eq!(r.status, 403);
    // Nothing changed: the counter is still closed.
    let (mut a2, _) = staff(&app, "agent2").await;
    let counters = a2
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
    assert_eq!(c5["state"], "closed", "{c5}");
    // The own origin is fine.
    let own = format!("http://{}", app.addr);
    let r = h
        .request(
            "POST",
            path,
            Some(b"{}"),
            &[("Cookie", &cookie), ("Origin", &own)],
        )
        .await
        .unwrap();
    assert_eq!(r.status, 200, "{}", String::from_utf8_lossy(&r.body));
    // A form's body is not JSON, whoever sends it.
    let form = h
        .request(
            "POST",
            "/api/v1/counters/c5/close",
            Some(b"a=b"),
            &[("Cookie", &cookie), ("Content-Type", "text/plain")],
        )
        .await
        .unwrap();
    assert_eq!(form.status, 415);
    app.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn published_demo_tokens_are_refused_from_the_network_whatever_the_config_says() {
    let dir = TempDir::new("sec-demo-token");
    let app = spawn_app_in(&demo_with(r#"trusted_proxies = ["127.0.0.1"]"#), &dir.0).await;
    let token = demo_device_token(app.addr, "kiosk-1").await.unwrap();
    let auth = format!("Bearer {token}");
    let r = app
        .http()
        .request(
            "GET",
            "/api/v1/devices/me",
            None,
            &[("Authorization", &auth), ("X-Forwarded-For", "203.0.113.4")],
        )
        .await
        .unwrap();
    assert_eq!(r.status, 401);
    let r = app
        .http()
        .request(
            "GET",
            "/api/v1/devices/me",
            None,
            &[("Authorization", &auth)],
        )
        .await
        .unwrap();
    assert_eq!(r.status, 200, "loopback may use it");
    app.stop().await;
    // check-config names a real config that kept a demo device's token.
    let cfg_dir = TempDir::new("sec-demo-check");
    let real = DEMO
        .replace("demo = true", "demo = false")
        .lines()
        .filter(|l| !l.starts_with("demo_token"))
        .collect::<Vec<_>>()
        .join("\n");
    let path = cfg_dir.0.join("vuoro.toml");
    std::fs::write(&path, real).unwrap();
    let out = std::process::Command::new(vuoro_bin())
        .args(["check-config"])
        .arg(&path)
        .output()
        .unwrap();
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(!out.status.success(), "{err}");
    assert!(
        err.contains("device 'kiosk-1' uses a token published in the demo config"),
        "{err}"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn requests_that_take_no_body_refuse_a_malformed_one_and_change_nothing() {
    let dir = TempDir::new("sec-nobody");
    let app = spawn_app_in(DEMO, &dir.0).await;
    let mut k = kiosk(&app).await;
    let t = take(&mut k, "parking").await;
    let (mut sup, _) = staff(&app, "admin").await;
    let end_day = format!("/api/v1/sites/{SITE}/end-day");
    for bad in [&b"nonsense"[..], br#"{"really": true}"#, b"[]"] {
        let r = sup.request("POST", &end_day, Some(bad), &[]).await.unwrap();
        assert_eq!((r.status, r.code()), (400, "malformed".into()), "{bad:?}");
    }
    let after = app
        .http()
        .get(&format!("/api/v1/tickets/{}", t["token"].as_str().unwrap()))
        .await
        .unwrap();
    assert_eq!(after.json()["state"], "waiting", "the day was not ended");
    // Help requests: kiosks only.
    let help = format!("/api/v1/sites/{SITE}/help-requests");
    let r = app.http().post(&help, &json!({})).await.unwrap();
    assert_eq!(r.status, 401);
    let display = demo_device_token(app.addr, "display-hall").await.unwrap();
    let r = Http::with_token(app.addr, &display)
        .post(&help, &json!({}))
        .await
        .unwrap();
    assert_eq!(r.status, 403);
    assert_eq!(k.post(&help, &json!({})).await.unwrap().status, 201);
    app.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn every_api_error_has_the_contract_shape_and_every_answer_safe_headers() {
    let dir = TempDir::new("sec-shapes");
    let app = spawn_app_in(DEMO, &dir.0).await;
    let (mut sup, _) = staff(&app, "admin").await;
    let cases: Vec<(&str, String, u16)> = vec![
        (
            "GET",
            format!("/api/v1/sites/{SITE}/services?lang=fi&lang=sv"),
            400,
        ),
        ("POST", format!("/api/v1/sites/{SITE}/alerts/abc/ack"), 400),
        (
            "POST",
            format!("/api/v1/sites/{SITE}/alerts/99999/ack"),
            404,
        ),
        ("DELETE", "/api/v1/sites".to_string(), 405),
        ("GET", "/api/v1/audit?limit=-1".to_string(), 400),
        ("GET", "/api/v1/nothing-here".to_string(), 404),
    ];
    for (method, path, status) in cases {
        let r = sup.request(method, &path, None, &[]).await.unwrap();
        assert_eq!(r.status, status, "{method} {path}");
        let body: Value = serde_json::from_slice(&r.body)
            .unwrap_or_else(|_| panic!("{method} {path}: {}", String::from_utf8_lossy(&r.body)));
        assert!(body["error"]["code"].is_string(), "{method} {path}: {body}");
        assert!(
            body["error"]["message"].is_string(),
            "{method} {path}: {body}"
        );
        assert_eq!(r.header("x-content-type-options"), Some("nosniff"));
        assert_eq!(r.header("cache-control"), Some("no-store"), "{path}");
    }
    for page in ["/", "/kiosk/", "/desk/"] {
        let r = app.http().get(page).await.unwrap();
        assert_eq!(r.status, 200, "{page}");
        let csp = r.header("content-security-policy").unwrap_or_default();
        assert!(csp.contains("frame-ancestors 'none'"), "{page}: {csp}");
        assert_eq!(r.header("x-content-type-options"), Some("nosniff"));
    }
    app.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_resume_from_beyond_the_last_event_gets_a_snapshot() {
    let dir = TempDir::new("sec-resume");
    let app = spawn_app_in(DEMO, &dir.0).await;
    let mut ws = Ws::connect(app.addr, None).await.unwrap();
    ws.subscribe(&format!("calls:{SITE}"), Some(1_000_000))
        .await
        .unwrap();
    let m = ws.next(T).await.expect("an answer");
    assert_eq!(m["type"], "snapshot", "{m}");
    app.stop().await;
}

#[test]
fn listening_on_every_address_without_a_public_url_is_refused() {
    let dir = TempDir::new("sec-public-url");
    // A real config (not the demo, no demo users or devices) without a public URL.
    let mut real = String::new();
    let mut in_user = false;
    for line in DEMO.replace("demo = true", "demo = false").lines() {
        if line.starts_with("[[") {
            in_user = line == "[[user]]" || line == "[[device]]";
        }
        if !in_user && !line.starts_with("demo_token") {
            real.push_str(line);
            real.push('\n');
        }
    }
    let config = dir.0.join("vuoro.toml");
    std::fs::write(&config, real).unwrap();
    let out = std::process::Command::new(vuoro_bin())
        .args(["serve", "--listen", "0.0.0.0:0", "--config"])
        .arg(&config)
        .arg("--data")
        .arg(dir.0.join("data"))
        .output()
        .unwrap();
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(!out.status.success());
    assert!(err.contains("needs server.public_url"), "{err}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_websocket_client_flooding_messages_is_cut_off() {
    let dir = TempDir::new("sec-ws-flood");
    let app = spawn_app_in(DEMO, &dir.0).await;
    let mut ws = Ws::connect(app.addr, None).await.unwrap();
    for _ in 0..400 {
        if ws.subscribe(&format!("calls:{SITE}"), None).await.is_err() {
            break;
        }
    }
    let got = ws.drain(Duration::from_millis(1500)).await;
    let snapshots = got.iter().filter(|m| m["type"] == "snapshot").count();
    assert!(snapshots <= 250, "{snapshots} snapshots");
    assert!(
        got.iter().any(|m| m["code"] == "rate_limited"),
        "told why: {:?}",
        got.last()
    );
    // Others are served as before.
    let mut other = Ws::connect(app.addr, None).await.unwrap();
    other.send(&json!({"type": "ping"})).await.unwrap();
    assert_eq!(other.next(T).await.unwrap()["type"], "pong");
    app.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn sessions_outlive_a_restart_and_a_signed_out_one_stays_out() {
    let dir = TempDir::new("sec-sessions");
    let app = spawn_app_in(DEMO, &dir.0).await;
    let (_, kept) = staff(&app, "agent1").await;
    let (mut leaving, gone) = staff(&app, "agent2").await;
    let r = leaving
        .post("/api/v1/auth/logout", &json!({}))
        .await
        .unwrap();
    assert_eq!(r.status, 200);
    app.stop().await;
    let app = spawn_app_in(DEMO, &dir.0).await;
    let me = Http::with_token(app.addr, &kept)
        .get("/api/v1/auth/me")
        .await
        .unwrap();
    assert_eq!(me.status, 200);
    assert_eq!(me.json()["user"]["username"], "agent1");
    let me = Http::with_token(app.addr, &gone)
        .get("/api/v1/auth/me")
        .await
        .unwrap();
    assert_eq!(me.status, 401);
    app.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_clean_stop_writes_the_last_snapshot_before_serve_returns() {
    let dir = TempDir::new("sec-final-snapshot");
    let app = spawn_app_in(DEMO, &dir.0).await;
    let mut k = kiosk(&app).await;
    for _ in 0..5 {
        take(&mut k, "parking").await;
    }
    let data = app.data.clone();
    app.stop().await;
    let last = committed_seq(&data);
    let c = rusqlite::Connection::open(data.join("vuoro.sqlite")).unwrap();
    let snap: i64 = c
        .query_row("SELECT COALESCE(MAX(seq), 0) FROM snapshots", [], |r| {
            r.get(0)
        })
        .unwrap();
    assert!(last > 0);
    assert_eq!(snap as u64, last, "the snapshot is of the last event");
}

/// Every endpoint that takes a body, with bodies a clumsy or hostile client sends: each is refused with
/// the contract's error shape, and nothing is committed.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn malformed_bodies_are_refused_on_every_endpoint_and_change_nothing() {
    let dir = TempDir::new("sec-bodies");
    let app = spawn_app_in(DEMO, &dir.0).await;
    // The kiosk without a printer: a printer's status is committed after the ticket's answer, which
    // would race the commit count below.
    let kiosk_token = demo_device_token(app.addr, "kiosk-3").await.unwrap();
    let mut k = Http::with_token(app.addr, &kiosk_token);
    let t = take(&mut k, "kela-families").await;
    let (mut sup, admin_token) = staff(&app, "admin").await;
    verb(&mut sup, "c1", "open", json!({})).await;
    let before = app.committed_seq();
    let endpoints = [
        format!("/api/v1/sites/{SITE}/tickets"),
        "/api/v1/counters/c1/call-next".to_string(),
        "/api/v1/counters/c1/transfer".to_string(),
        "/api/v1/counters/c1/finish".to_string(),
        "/api/v1/counters/c1/return".to_string(),
        format!("/api/v1/sites/{SITE}/services/kela-families/accepting"),
        format!("/api/v1/sites/{SITE}/services/kela-families/move"),
        format!("/api/v1/sites/{SITE}/end-day"),
        format!("/api/v1/sites/{SITE}/help-requests"),
        "/api/v1/auth/login".to_string(),
        "/api/v1/auth/logout".to_string(),
    ];
    let huge = format!(r#"{{"service": "{}"}}"#, "x".repeat(3 * 1024 * 1024));
    let bodies: Vec<(&[u8], &str)> = vec![
        (b"{", "application/json"),
        (b"[1, 2]", "application/json"),
        (b"\"text\"", "application/json"),
        (
            br#"{"service": 5, "position": {"a": 1}}"#,
            "application/json",
        ),
        (
            br#"{"unknown_field": true, "service": "kela-families"}"#,
            "application/json",
        ),
        (b"\xff\xfe\x00", "application/json"),
        (
            br#"{"service": "kela-families"}"#,
            "application/x-www-form-urlencoded",
        ),
        (huge.as_bytes(), "application/json"),
    ];
    for path in &endpoints {
        for (body, ctype) in &bodies {
            // The kiosk for the kiosk's endpoints, the admin for the rest; a fresh connection each time.
            let token = if path.ends_with("/tickets") || path.ends_with("/help-requests") {
                &kiosk_token
            } else {
                &admin_token
            };
            let h = &mut Http::with_token(app.addr, token);
            let r = h
                .request("POST", path, Some(body), &[("Content-Type", ctype)])
                .await;
            let r = match r {
                Ok(r) => r,
                // A body over the limit may be cut off while it is still being sent.
                Err(_) if body.len() > 1024 * 1024 => continue,
                Err(e) => panic!("{path}: {e:#}"),
            };
            let shown = String::from_utf8_lossy(&body[..body.len().min(40)]).to_string();
            assert!(
                [400, 413, 415, 422].contains(&r.status),
                "{path} {shown}: {} {}",
                r.status,
                String::from_utf8_lossy(&r.body)
            );
            let v: Value = serde_json::from_slice(&r.body).expect("a JSON error");
            assert!(v["error"]["code"].is_string(), "{path} {shown}: {v}");
        }
    }
    assert_eq!(app.committed_seq(), before, "nothing was committed");
    let still = app
        .http()
        .get(&format!("/api/v1/tickets/{}", t["token"].as_str().unwrap()))
        .await
        .unwrap();
    assert_eq!(still.json()["state"], "waiting");
    app.stop().await;
}

/// Who may do what: each principal against each kind of action, refused ones changing nothing.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_authorization_matrix_holds() {
    let dir = TempDir::new("sec-matrix");
    let app = spawn_app_in(DEMO, &dir.0).await;
    // kiosk-3 has no printer: nothing is committed after its answers (a printer's status is).
    let kiosk_token = demo_device_token(app.addr, "kiosk-3").await.unwrap();
    let display_token = demo_device_token(app.addr, "display-hall").await.unwrap();
    let agent1 = login(app.addr, "agent1", "demo").await.unwrap(); // kela
    let agent2 = login(app.addr, "agent2", "demo").await.unwrap(); // yhteispalvelu, hus
    let sup = login(app.addr, "supervisor", "demo").await.unwrap();
    let who: Vec<(&str, Option<&str>)> = vec![
        ("anonymous", None),
        ("kiosk", Some(&kiosk_token)),
        ("display", Some(&display_token)),
        ("agent1", Some(&agent1)),
        ("agent2", Some(&agent2)),
        ("supervisor", Some(&sup)),
    ];
    let kela_ticket = format!("/api/v1/sites/{SITE}/tickets");
    let accepting = format!("/api/v1/sites/{SITE}/services/kela-families/accepting");
    let list = format!("/api/v1/sites/{SITE}/tickets");
    let counters = format!("/api/v1/sites/{SITE}/counters");
    // (method, path, body, expected status per principal in the order above)
    let matrix: Vec<(&str, &str, Value, [u16; 6])> = vec![
        (
            "POST",
            &kela_ticket,
            json!({"service": "kela-families"}),
            [401, 201, 403, 201, 403, 201],
        ),
        (
            "POST",
            "/api/v1/counters/c1/open",
            json!({}),
            [401, 403, 403, 200, 403, 200],
        ),
        (
            "POST",
            &accepting,
            json!({"accepting": true}),
            [401, 403, 403, 403, 403, 200],
        ),
        ("GET", &list, Value::Null, [401, 403, 403, 200, 200, 200]),
        (
            "GET",
            &counters,
            Value::Null,
            [401, 403, 403, 200, 200, 200],
        ),
        (
            "GET",
            "/api/v1/auth/me",
            Value::Null,
            [401, 403, 403, 200, 200, 200],
        ),
        (
            "GET",
            "/api/v1/devices/me",
            Value::Null,
            [401, 200, 200, 401, 401, 401],
        ),
    ];
    for (method, path, body, expected) in &matrix {
        for ((name, token), want) in who.iter().zip(expected) {
            let mut h = match token {
                Some(t) => Http::with_token(app.addr, t),
                None => app.http(),
            };
            let before = app.committed_seq();
            let bytes = body.to_string();
            let r = h
                .request(
                    method,
                    path,
                    (!body.is_null()).then_some(bytes.as_bytes()),
                    &[],
                )
                .await
                .unwrap();
            assert_eq!(
                r.status,
                *want,
                "{name} {method} {path}: {}",
                String::from_utf8_lossy(&r.body)
            );
            if r.status >= 400 {
                assert_eq!(
                    app.committed_seq(),
                    before,
                    "{name} {method} {path} changed something"
                );
            }
        }
    }
    // Topics: (topic, may subscribe per principal).
    let topics: Vec<(String, [bool; 6])> = vec![
        (format!("calls:{SITE}"), [true; 6]),
        (
            format!("site:{SITE}"),
            [false, false, false, true, true, true],
        ),
        (
            "counter:c1".into(),
            [false, false, false, true, false, true],
        ),
        (
            "device:kiosk-3".into(),
            [false, true, false, false, false, false],
        ),
    ];
    for (topic, allowed) in &topics {
        for ((name, token), ok) in who.iter().zip(allowed) {
            let mut ws = Ws::connect(app.addr, *token).await.unwrap();
            ws.subscribe(topic, None).await.unwrap();
            let m = ws.next(T).await.unwrap();
            let got = m["type"] == "snapshot";
            assert_eq!(got, *ok, "{name} on {topic}: {m}");
        }
    }
    app.stop().await;
}
