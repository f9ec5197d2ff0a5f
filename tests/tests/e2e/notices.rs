//! Notices end to end: the real daemon with `[notify]`, an SMS gateway started here (a real HTTP server on
//! 127.0.0.1 that answers as scripted: slowly, with 500s, with 429s) and a real SMTP server (aiosmtpd, from
//! tests/notify/.venv, made by tests/notify/setup.sh). Every notice arrives once, also across a SIGKILL of
//! the daemon, and none after the person was called.

use std::collections::{HashMap, VecDeque};
use std::path::{Path, PathBuf};
use std::process::{Child, Stdio};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use axum::extract::State;
use axum::http::{HeaderMap, StatusCode};
use axum::response::IntoResponse;
use serde_json::{Value, json};
use vuoro_tests::*;

use super::{SITE, kiosk_device, staff, verb};

const NUMBER: &str = "+358401234567";

/// How the gateway answers a request.
#[derive(Clone, Debug)]
enum Reply {
    Ok,
    /// This status, with `Retry-After` seconds when given.
    Status(u16, Option<u64>),
    /// Takes the message (a real provider has it once the request arrived), then answers 200 after a while.
    Hold(Duration),
}

#[derive(Clone, Debug)]
struct Hit {
    key: String,
    to: String,
    text: String,
    /// The gateway took the message (2xx, or held and taken).
    taken: bool,
}

#[derive(Default)]
struct GwState {
    script: VecDeque<Reply>,
    otherwise: Option<Reply>,
    hits: Vec<Hit>,
}

#[derive(Clone, Default)]
struct Gateway(Arc<Mutex<GwState>>);

impl Gateway {
    async fn start(otherwise: Reply, script: Vec<Reply>) -> (Gateway, String) {
        let gw = Gateway::default();
        {
            let mut s = gw.0.lock().unwrap();
            s.otherwise = Some(otherwise);
            s.script = script.into();
        }
        let app = axum::Router::new()
            .route("/send", axum::routing::post(gateway_send))
            .with_state(gw.clone());
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
        let url = format!("http://{}/send", listener.local_addr().unwrap());
        tokio::spawn(async move { axum::serve(listener, app).await.unwrap() });
        (gw, url)
    }

    fn set(&self, otherwise: Reply) {
        let mut s = self.0.lock().unwrap();
        s.script.clear();
        s.otherwise = Some(otherwise);
    }

    fn hits(&self) -> Vec<Hit> {
        self.0.lock().unwrap().hits.clone()
    }

    /// Messages delivered to phones: a provider that honours idempotency keys delivers each key once.
    fn delivered(&self) -> Vec<Hit> {
        let mut seen = std::collections::HashSet::new();
        self.hits()
            .into_iter()
            .filter(|h| h.taken && seen.insert(h.key.clone()))
            .collect()
    }

    /// How many times each key was taken.
    fn taken_per_key(&self) -> HashMap<String, usize> {
        let mut m = HashMap::new();
        for h in self.hits().into_iter().filter(|h| h.taken) {
            *m.entry(h.key).or_default() += 1;
        }
        m
    }

    async fn wait_delivered(&self, n: usize, within: Duration) -> Vec<Hit> {
        let deadline = Instant::now() + within;
        loop {
            let d = self.delivered();
            if d.len() >= n {
                return d;
            }
            assert!(
                Instant::now() < deadline,
                "{n} notices were not delivered in {within:?}; the gateway saw {:?}",
                self.hits()
            );
            tokio::time::sleep(Duration::from_millis(50)).await;
        }
    }
}

async fn gateway_send(
    State(gw): State<Gateway>,
    headers: HeaderMap,
    body: String,
) -> axum::response::Response {
    let v: Value = serde_json::from_str(&body).expect("the daemon sends the JSON body template");
    let key = headers
        .get("idempotency-key")
        .and_then(|h| h.to_str().ok())
        .unwrap_or("")
        .to_string();
    let reply = {
        let mut s = gw.0.lock().unwrap();
        let reply = s
            .script
            .pop_front()
            .or_else(|| s.otherwise.clone())
            .unwrap();
        s.hits.push(Hit {
            key,
            to: v["to"].as_str().unwrap_or("").into(),
            text: v["text"].as_str().unwrap_or("").into(),
            taken: matches!(reply, Reply::Ok | Reply::Hold(_)),
        });
        reply
    };
    match reply {
        Reply::Ok => (StatusCode::OK, "{\"status\":\"queued\"}").into_response(),
        Reply::Hold(d) => {
            tokio::time::sleep(d).await;
            (StatusCode::OK, "{\"status\":\"queued\"}").into_response()
        }
        Reply::Status(code, retry_after) => {
            let mut r = (StatusCode::from_u16(code).unwrap(), "busy").into_response();
            if let Some(s) = retry_after {
                r.headers_mut()
                    .insert("retry-after", s.to_string().parse().unwrap());
            }
            r
        }
    }
}

/// The demo hall with notices: near at one person ahead (or fewer), quick retries.
fn config(sms_url: &str, smtp_port: Option<u16>) -> String {
    let mut c = format!(
        "{DEMO}\n[notify]\nnear_people = 1\nnear_minutes = 0\nretry_first_seconds = 0.2\nmax_attempts = 8\nmonthly_cap = 1000\n\
         [notify.sms]\nurl = \"{sms_url}\"\nbody = '{{\"to\":\"{{to}}\",\"text\":\"{{text}}\",\"encoding\":\"{{encoding}}\"}}'\n\
         per_second = 50\ntimeout_seconds = 10\n"
    );
    if let Some(port) = smtp_port {
        c.push_str(&format!(
            "[notify.email]\nsmtp = \"smtp://127.0.0.1:{port}\"\nfrom = \"Vuoro <vuoro@example.fi>\"\n"
        ));
    }
    c
}

async fn take(k: &mut Http, lang: &str) -> Value {
    let r = k
        .post(
            &format!("/api/v1/sites/{SITE}/tickets"),
            &json!({"service": "joint-service", "lang": lang}),
        )
        .await
        .unwrap();
    assert_eq!(r.status, 201, "{}", String::from_utf8_lossy(&r.body));
    r.json()
}

async fn put_contact(h: &mut Http, token: &str, body: Value) -> vuoro_client::Response {
    h.request(
        "PUT",
        &format!("/api/v1/tickets/{token}/contact"),
        Some(body.to_string().as_bytes()),
        &[],
    )
    .await
    .unwrap()
}

/// A row of the outbox: number, kind, state, address, reason.
type Row = (String, String, String, Option<String>, Option<String>);

/// The outbox's rows, oldest first.
fn outbox(data: &Path) -> Vec<Row> {
    let conn = rusqlite::Connection::open(data.join("vuoro.sqlite")).unwrap();
    let mut stmt = conn
        .prepare("SELECT number, kind, state, address, reason FROM notices ORDER BY id")
        .unwrap();
    stmt.query_map([], |r| {
        Ok((r.get(0)?, r.get(1)?, r.get(2)?, r.get(3)?, r.get(4)?))
    })
    .unwrap()
    .map(|r| r.unwrap())
    .collect()
}

fn contacts_stored(data: &Path) -> i64 {
    let conn = rusqlite::Connection::open(data.join("vuoro.sqlite")).unwrap();
    conn.query_row("SELECT COUNT(*) FROM contacts", [], |r| r.get(0))
        .unwrap()
}

async fn until_state(data: &Path, number: &str, kind: &str, state: &str) {
    let deadline = Instant::now() + Duration::from_secs(15);
    loop {
        let rows = outbox(data);
        if rows
            .iter()
            .any(|r| r.0 == number && r.1 == kind && r.2 == state)
        {
            return;
        }
        assert!(
            Instant::now() < deadline,
            "no {kind} notice of {number} became {state}: {rows:?}"
        );
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn sms_notices_arrive_once_through_a_gateway_that_fails_and_throttles() {
    let (gw, url) = Gateway::start(
        Reply::Ok,
        vec![
            Reply::Status(500, None),
            Reply::Status(503, None),
            Reply::Status(429, Some(1)),
        ],
    )
    .await;
    let dir = TempDir::new("notices-sms");
    let app = spawn_app_in(&config(&url, None), &dir.0).await;
    let mut k = kiosk_device(&app, "kiosk-3").await;
    let (mut agent, _) = staff(&app, "agent2").await;
    let first = take(&mut k, "fi").await;
    let second = take(&mut k, "fi").await;
    let third = take(&mut k, "fi").await;
    let token = third["token"].as_str().unwrap();
    let number = third["number"].as_str().unwrap();
    let mut phone = app.http();
    let r = put_contact(&mut phone, token, json!({"sms": "+358 40 123 4567"})).await;
    assert_eq!(r.status, 200, "{}", String::from_utf8_lossy(&r.body));
    assert_eq!(
        r.json(),
        json!({"offered": ["sms"], "contacts": [{"channel": "sms", "to": "+35840*****67"}]})
    );
    // The counter opens: two ahead, not near yet.
    assert_eq!(verb(&mut agent, "c5", "open", json!({})).await.status, 200);
    tokio::time::sleep(Duration::from_millis(500)).await;
    assert!(gw.hits().is_empty(), "nothing is near yet: {:?}", gw.hits());
    // The first is called: one ahead, near. The gateway fails twice, then asks to wait a second.
    let called = verb(&mut agent, "c5", "call-next", json!({})).await;
    assert_eq!(called.json()["ticket"]["number"], first["number"]);
    let near = gw.wait_delivered(1, Duration::from_secs(15)).await;
    assert_eq!(near[0].to, NUMBER);
    assert!(near[0].text.contains(number), "{}", near[0].text);
    assert!(near[0].text.contains("vuorosi on pian"), "{}", near[0].text);
    assert!(
        gw.hits().len() >= 4,
        "500, 503 and 429 were retried: {:?}",
        gw.hits()
    );
    // Second and third are called.
    verb(&mut agent, "c5", "finish", json!({})).await;
    let called = verb(&mut agent, "c5", "call-next", json!({})).await;
    assert_eq!(called.json()["ticket"]["number"], second["number"]);
    verb(&mut agent, "c5", "finish", json!({})).await;
    let called = verb(&mut agent, "c5", "call-next", json!({})).await;
    assert_eq!(called.json()["ticket"]["number"], third["number"]);
    let both = gw.wait_delivered(2, Duration::from_secs(15)).await;
    assert!(
        both[1].text.contains(number) && both[1].text.contains("Palvelupiste 5"),
        "{}",
        both[1].text
    );
    // Nothing more, each once.
    tokio::time::sleep(Duration::from_millis(1200)).await;
    assert_eq!(gw.delivered().len(), 2, "{:?}", gw.hits());
    assert!(
        gw.taken_per_key().values().all(|n| *n == 1),
        "{:?}",
        gw.hits()
    );
    // The ticket ends: its contact is forgotten, and so are the sent notices' addresses.
    verb(&mut agent, "c5", "finish", json!({})).await;
    let deadline = Instant::now() + Duration::from_secs(5);
    while contacts_stored(&dir.0) > 0 {
        assert!(Instant::now() < deadline, "the contact outlived its ticket");
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    let rows = outbox(&dir.0);
    assert_eq!(rows.len(), 2, "{rows:?}");
    assert!(
        rows.iter().all(|r| r.2 == "sent" && r.3.is_none()),
        "{rows:?}"
    );
    let r = phone
        .get(&format!("/api/v1/tickets/{token}/contact"))
        .await
        .unwrap();
    assert_eq!(r.json()["contacts"], json!([]));
    // Supervisors see them, without the number.
    let (mut sup, _) = staff(&app, "supervisor").await;
    let r = sup
        .get(&format!("/api/v1/sites/{SITE}/notices?state=sent"))
        .await
        .unwrap();
    assert_eq!(r.status, 200);
    let list = r.json()["notices"].as_array().unwrap().clone();
    assert_eq!(list.len(), 2);
    let body = String::from_utf8_lossy(&r.body).to_string();
    assert!(!body.contains("4567"), "{body}");
    // /metrics counts them.
    let m = String::from_utf8_lossy(&app.http().get("/metrics").await.unwrap().body).to_string();
    for line in [
        "vuoro_notices_month{channel=\"sms\",state=\"sent\"} 2",
        "vuoro_notices_month{channel=\"sms\",state=\"failed\"} 0",
        "vuoro_notices_monthly_cap 1000",
        "vuoro_notices_lag_seconds{channel=\"sms\"} 0",
    ] {
        assert!(m.lines().any(|l| l == line), "{line} in {m}");
    }
    app.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_near_notice_is_dropped_when_the_person_is_called_first() {
    // The gateway is down (503, come back in 2 s) while the ticket's turn comes near and it is called.
    let (gw, url) = Gateway::start(Reply::Status(503, Some(2)), vec![]).await;
    let dir = TempDir::new("notices-late");
    let app = spawn_app_in(&config(&url, None), &dir.0).await;
    let mut k = kiosk_device(&app, "kiosk-3").await;
    let (mut agent, _) = staff(&app, "agent2").await;
    let t = take(&mut k, "sv").await;
    let token = t["token"].as_str().unwrap();
    let number = t["number"].as_str().unwrap().to_string();
    let mut phone = app.http();
    assert_eq!(
        put_contact(&mut phone, token, json!({"sms": NUMBER}))
            .await
            .status,
        200
    );
    verb(&mut agent, "c5", "open", json!({})).await;
    // Near at once (nobody ahead, a counter open): decided, the gateway refuses it.
    until_state(&dir.0, &number, "near", "pending").await;
    let deadline = Instant::now() + Duration::from_secs(5);
    while gw.hits().is_empty() {
        assert!(Instant::now() < deadline, "the near notice was never tried");
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    // Called before the gateway is back: the near notice is too late, the call's is not.
    let called = verb(&mut agent, "c5", "call-next", json!({})).await;
    assert_eq!(called.json()["ticket"]["number"], number.as_str());
    gw.set(Reply::Ok);
    let d = gw.wait_delivered(1, Duration::from_secs(15)).await;
    assert!(d[0].text.contains("det är din tur"), "{}", d[0].text);
    until_state(&dir.0, &number, "near", "dropped").await;
    tokio::time::sleep(Duration::from_millis(2500)).await;
    assert_eq!(gw.delivered().len(), 1, "{:?}", gw.hits());
    assert!(
        gw.delivered().iter().all(|h| !h.text.contains("snart")),
        "a near notice arrived after the call: {:?}",
        gw.hits()
    );
    let (mut sup, _) = staff(&app, "supervisor").await;
    let r = sup
        .get(&format!("/api/v1/sites/{SITE}/notices?state=dropped"))
        .await
        .unwrap();
    let body = String::from_utf8_lossy(&r.body).to_string();
    assert!(body.contains("called or ended"), "{body}");
    app.stop().await;
}

/// aiosmtpd on a free port, storing what it receives in a maildir.
struct Smtp {
    child: Child,
    port: u16,
    maildir: PathBuf,
}

impl Drop for Smtp {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

fn test_python() -> PathBuf {
    let root = Path::new(env!("CARGO_MANIFEST_DIR")).join("notify/.venv/bin/python");
    assert!(
        root.exists(),
        "{} is missing: run tests/notify/setup.sh (tests/run-all.sh does)",
        root.display()
    );
    root
}

async fn smtp_server(dir: &Path) -> Smtp {
    let port = free_port();
    let maildir = dir.join("maildir");
    let child = std::process::Command::new(test_python())
        .args([
            "-m",
            "aiosmtpd",
            "-n",
            "-l",
            &format!("127.0.0.1:{port}"),
            "-c",
        ])
        .arg("aiosmtpd.handlers.Mailbox")
        .arg(&maildir)
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .spawn()
        .expect("start aiosmtpd");
    let deadline = Instant::now() + Duration::from_secs(15);
    while tokio::net::TcpStream::connect(("127.0.0.1", port))
        .await
        .is_err()
    {
        assert!(Instant::now() < deadline, "aiosmtpd did not start");
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    Smtp {
        child,
        port,
        maildir,
    }
}

fn mails(maildir: &Path) -> Vec<String> {
    let mut out = Vec::new();
    for sub in ["new", "cur"] {
        if let Ok(rd) = std::fs::read_dir(maildir.join(sub)) {
            for e in rd.flatten() {
                out.push(std::fs::read_to_string(e.path()).unwrap());
            }
        }
    }
    out
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn email_notices_reach_a_real_smtp_server_once() {
    let dir = TempDir::new("notices-email");
    let smtp = smtp_server(&dir.0).await;
    let (_gw, url) = Gateway::start(Reply::Ok, vec![]).await;
    let app = spawn_app_in(&config(&url, Some(smtp.port)), &dir.0.join("data")).await;
    let mut k = kiosk_device(&app, "kiosk-3").await;
    let (mut agent, _) = staff(&app, "agent2").await;
    verb(&mut agent, "c5", "open", json!({})).await;
    let _ahead = take(&mut k, "en").await;
    let _ahead2 = take(&mut k, "en").await;
    let t = take(&mut k, "en").await;
    let number = t["number"].as_str().unwrap();
    let mut phone = app.http();
    let r = put_contact(
        &mut phone,
        t["token"].as_str().unwrap(),
        json!({"email": "anna@example.fi"}),
    )
    .await;
    assert_eq!(r.status, 200, "{}", String::from_utf8_lossy(&r.body));
    for _ in 0..2 {
        verb(&mut agent, "c5", "call-next", json!({})).await;
        verb(&mut agent, "c5", "finish", json!({})).await;
    }
    let called = verb(&mut agent, "c5", "call-next", json!({})).await;
    assert_eq!(called.json()["ticket"]["number"], number);
    let deadline = Instant::now() + Duration::from_secs(15);
    while mails(&smtp.maildir).len() < 2 {
        assert!(
            Instant::now() < deadline,
            "mails: {:?}",
            mails(&smtp.maildir)
        );
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    tokio::time::sleep(Duration::from_millis(1000)).await;
    let got = mails(&smtp.maildir);
    assert_eq!(got.len(), 2, "each notice once: {got:?}");
    let all = got.join("\n");
    assert!(all.contains(&format!("Subject: Number {number}")), "{all}");
    assert!(all.contains("To: anna@example.fi"), "{all}");
    assert!(all.contains("your turn is near"), "{all}");
    assert!(all.contains("it is your turn, Counter 5"), "{all}");
    assert!(all.contains("Message-ID: <vuoro-"), "{all}");
    app.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn bad_contacts_are_refused_and_change_nothing() {
    let (gw, url) = Gateway::start(Reply::Ok, vec![]).await;
    let dir = TempDir::new("notices-bad");
    let app = spawn_app_in(&config(&url, None), &dir.0).await;
    let mut k = kiosk_device(&app, "kiosk-3").await;
    let t = take(&mut k, "fi").await;
    let token = t["token"].as_str().unwrap();
    let mut phone = app.http();
    for (body, status) in [
        (json!({"sms": "0401234567"}), 422),
        (json!({"sms": "+358 40 abc"}), 422),
        (json!({"sms": NUMBER, "email": "a@example.fi"}), 422),
        (json!({}), 422),
        (json!({"email": "not an address"}), 422),
        (json!({"email": "a@example.fi"}), 422), // e-mail is not offered by this config
        (json!({"push": {"endpoint": "https://push.example/x"}}), 422),
        (json!({"sms": NUMBER, "extra": 1}), 400),
    ] {
        let r = put_contact(&mut phone, token, body.clone()).await;
        assert_eq!(
            r.status,
            status,
            "{body}: {}",
            String::from_utf8_lossy(&r.body)
        );
        assert!(
            r.json()["error"]["message"]
                .as_str()
                .is_some_and(|m| !m.is_empty())
        );
    }
    assert_eq!(contacts_stored(&dir.0), 0);
    let r = put_contact(&mut phone, "no-such-token", json!({"sms": NUMBER})).await;
    assert_eq!(r.status, 404);
    // Opting out: this number gets no more notices, on this ticket or another.
    assert_eq!(
        put_contact(&mut phone, token, json!({"sms": NUMBER}))
            .await
            .status,
        200
    );
    let r = phone
        .delete(&format!("/api/v1/tickets/{token}/contact?opt_out=true"))
        .await
        .unwrap();
    assert_eq!(r.status, 200);
    assert_eq!(r.json()["contacts"], json!([]));
    assert_eq!(contacts_stored(&dir.0), 0);
    let other = take(&mut k, "fi").await;
    let r = put_contact(
        &mut phone,
        other["token"].as_str().unwrap(),
        json!({"sms": NUMBER}),
    )
    .await;
    assert_eq!(r.status, 409, "{}", String::from_utf8_lossy(&r.body));
    assert_eq!(contacts_stored(&dir.0), 0);
    // A ticket whose visit is over.
    let gone = take(&mut k, "fi").await;
    let gone_token = gone["token"].as_str().unwrap();
    assert_eq!(
        phone
            .delete(&format!("/api/v1/tickets/{gone_token}"))
            .await
            .unwrap()
            .status,
        200
    );
    let r = put_contact(&mut phone, gone_token, json!({"sms": "+358501112223"})).await;
    assert_eq!(r.status, 409);
    // Supervisors only.
    let r = phone
        .get(&format!("/api/v1/sites/{SITE}/notices"))
        .await
        .unwrap();
    assert_eq!(r.status, 401);
    let (mut agent, _) = staff(&app, "agent2").await;
    let r = agent
        .get(&format!("/api/v1/sites/{SITE}/notices"))
        .await
        .unwrap();
    assert_eq!(r.status, 403);
    assert!(gw.hits().is_empty());
    app.stop().await;
}

fn spawn_with_config(config: &Path, data: &Path, port: u16) -> Child {
    std::process::Command::new(vuoro_bin())
        .args([
            "serve",
            "--listen",
            &format!("127.0.0.1:{port}"),
            "--config",
        ])
        .arg(config)
        .arg("--data")
        .arg(data)
        .env("RUST_LOG", "warn")
        .envs(ws_record_file().map(|f| ("VUORO_RECORD_WS", f)))
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .spawn()
        .expect("spawn vuoro")
}

/// Kills the daemon (SIGKILL) with a notice decided and not yet sent, and with one being sent (the gateway
/// took it and had not answered): after the restart each is delivered once, the second because it is sent
/// again under the same idempotency key.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn notices_survive_a_sigkill_and_arrive_once() {
    let (gw, url) = Gateway::start(Reply::Status(500, None), vec![]).await;
    let dir = TempDir::new("notices-kill");
    let cfg = dir.0.join("vuoro.toml");
    std::fs::write(&cfg, config(&url, None)).unwrap();
    let data = dir.0.join("data");
    let port = free_port();
    let mut child = spawn_with_config(&cfg, &data, port);
    let addr = std::net::SocketAddr::from(([127, 0, 0, 1], port));
    wait_ready(addr).await;
    let token = demo_device_token(addr, "kiosk-3").await.unwrap();
    let mut k = Http::with_token(addr, &token);
    let agent_token = login(addr, "agent2", "demo").await.unwrap();
    let mut agent = Http::with_token(addr, &agent_token);
    let a = take(&mut k, "fi").await;
    let b = take(&mut k, "fi").await;
    let mut phone = Http::new(addr);
    assert_eq!(
        put_contact(
            &mut phone,
            a["token"].as_str().unwrap(),
            json!({"sms": NUMBER})
        )
        .await
        .status,
        200
    );
    assert_eq!(
        put_contact(
            &mut phone,
            b["token"].as_str().unwrap(),
            json!({"sms": "+358501112223"})
        )
        .await
        .status,
        200
    );
    verb(&mut agent, "c5", "open", json!({})).await;
    let called = verb(&mut agent, "c5", "call-next", json!({})).await;
    assert_eq!(called.json()["ticket"]["number"], a["number"]);
    // Decided and refused by the gateway so far: a's "called", b's "near".
    until_state(&data, a["number"].as_str().unwrap(), "called", "pending").await;
    until_state(&data, b["number"].as_str().unwrap(), "near", "pending").await;
    let deadline = Instant::now() + Duration::from_secs(10);
    while gw.hits().len() < 2 {
        assert!(Instant::now() < deadline, "not tried: {:?}", gw.hits());
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    child.kill().unwrap(); // SIGKILL
    child.wait().unwrap();
    assert!(gw.delivered().is_empty());

    // Back up: the gateway works, but takes its time answering the first request it gets.
    gw.set(Reply::Ok);
    gw.0.lock()
        .unwrap()
        .script
        .push_back(Reply::Hold(Duration::from_secs(5)));
    let mut child = spawn_with_config(&cfg, &data, port);
    wait_ready(addr).await;
    // The first request is held: kill the daemon while the gateway has the message and has not answered.
    let deadline = Instant::now() + Duration::from_secs(15);
    while gw.delivered().is_empty() {
        assert!(
            Instant::now() < deadline,
            "nothing sent after the restart: {:?}",
            gw.hits()
        );
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    child.kill().unwrap();
    child.wait().unwrap();
    let held_key = gw.delivered()[0].key.clone();

    let mut child = spawn_with_config(&cfg, &data, port);
    wait_ready(addr).await;
    let d = gw.wait_delivered(2, Duration::from_secs(15)).await;
    tokio::time::sleep(Duration::from_millis(1500)).await;
    let d2 = gw.delivered();
    assert_eq!(d2.len(), 2, "each notice delivered once: {:?}", gw.hits());
    assert_eq!(d.len(), 2);
    let to: Vec<&str> = d2.iter().map(|h| h.to.as_str()).collect();
    assert!(
        to.contains(&NUMBER) && to.contains(&"+358501112223"),
        "{to:?}"
    );
    // The held message was sent again under the same key (so the gateway delivered it once).
    let per_key = gw.taken_per_key();
    assert_eq!(per_key.get(&held_key), Some(&2), "{:?}", gw.hits());
    assert!(per_key.values().all(|n| *n <= 2));
    // One row per decision: none was decided twice by the restarts. a's "near" (decided when the counter
    // opened) was too late once a was called.
    let rows = outbox(&data);
    let a_number = a["number"].as_str().unwrap();
    let b_number = b["number"].as_str().unwrap();
    let mut got: Vec<(&str, &str, &str)> = rows
        .iter()
        .map(|r| (r.0.as_str(), r.1.as_str(), r.2.as_str()))
        .collect();
    got.sort();
    let mut want = vec![
        (a_number, "called", "sent"),
        (a_number, "near", "dropped"),
        (b_number, "near", "sent"),
    ];
    want.sort();
    assert_eq!(got, want);
    child.kill().unwrap();
    child.wait().unwrap();
}
