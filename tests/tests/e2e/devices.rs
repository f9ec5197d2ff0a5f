//! Devices enrolled and revoked from the admin console: a one-time code traded for the device's own
//! token, listed with its last use; revoking closes the device's open WebSocket within a second and every
//! token of it is refused, also after a restart.

use std::time::{Duration, Instant};

use futures_util::StreamExt;
use tokio_tungstenite::tungstenite::Message;

use super::*;

/// The demo hall with one more kiosk that has no token in the config: it gets one by enrolment.
fn config() -> String {
    format!(
        "{DEMO}\n[[device]]\nid = \"kiosk-9\"\nsite = \"{SITE}\"\nkind = \"kiosk\"\nlocation = {{ en = \"Second floor\" }}\n"
    )
}

async fn code_for(admin: &mut Http, device: &str) -> String {
    let r = admin
        .post(
            &format!("/api/v1/admin/devices/{device}/enrolment"),
            &json!({}),
        )
        .await
        .unwrap();
    assert_eq!(r.status, 201, "{}", String::from_utf8_lossy(&r.body));
    let v = r.json();
    assert_eq!(v["device"], device);
    let code = v["code"].as_str().unwrap().to_string();
    assert_eq!(code.len(), 9, "{code}");
    assert_eq!(&code[4..5], "-");
    code
}

async fn enrol(app: &TestApp, body: Value) -> Response {
    Http::new(app.addr)
        .post("/api/v1/devices/enrol", &body)
        .await
        .unwrap()
}

fn device<'a>(list: &'a Value, id: &str) -> &'a Value {
    list["devices"]
        .as_array()
        .unwrap()
        .iter()
        .find(|d| d["id"] == id)
        .unwrap_or_else(|| panic!("{id} listed in {list}"))
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_enrolled_kiosk_works_and_revoking_it_closes_its_socket_within_a_second() {
    let dir = TempDir::new("devices-enrol");
    let app = spawn_app_in(&config(), &dir.0).await;
    let (mut admin, _) = staff(&app, "admin").await;
    let (mut sup, _) = staff(&app, "supervisor").await;

    // Only admins manage devices.
    assert_eq!(sup.get("/api/v1/admin/devices").await.unwrap().status, 403);
    let r = sup
        .post("/api/v1/admin/devices/kiosk-9/enrolment", &json!({}))
        .await
        .unwrap();
    assert_eq!(r.status, 403);
    assert_eq!(
        sup.delete("/api/v1/admin/devices/kiosk-1")
            .await
            .unwrap()
            .status,
        403
    );
    assert_eq!(
        Http::new(app.addr)
            .get("/api/v1/admin/devices")
            .await
            .unwrap()
            .status,
        401
    );
    let r = admin
        .post("/api/v1/admin/devices/nowhere/enrolment", &json!({}))
        .await
        .unwrap();
    assert_eq!(r.status, 404);

    let list = admin.get("/api/v1/admin/devices").await.unwrap().json();
    assert_eq!(device(&list, "kiosk-9")["active"], false, "{list}");
    assert_eq!(device(&list, "kiosk-1")["tokens"][0]["source"], "config");

    // A code is refused when mistyped, for another device, and after its one use.
    let code = code_for(&mut admin, "kiosk-9").await;
    let r = enrol(&app, json!({"code": "3479-ACDE"})).await;
    assert_eq!((r.status, r.code()), (422, "invalid".to_string()));
    let r = enrol(&app, json!({"code": "not a code at all"})).await;
    assert_eq!(r.status, 422);
    let r = enrol(&app, json!({"code": code, "device": "kiosk-1"})).await;
    assert_eq!(r.status, 422, "a code for kiosk-9 typed at kiosk-1");
    // Typed in lower case with spaces: the same code.
    let typed = code.to_lowercase().replace('-', " ");
    let r = enrol(&app, json!({"code": typed, "device": "kiosk-9"})).await;
    assert_eq!(r.status, 201, "{}", String::from_utf8_lossy(&r.body));
    let v = r.json();
    assert_eq!(v["device"]["id"], "kiosk-9");
    assert_eq!(v["device"]["kind"], "kiosk");
    let token = v["token"].as_str().unwrap().to_string();
    assert_eq!(token.len(), 64);
    assert_eq!(
        enrol(&app, json!({"code": code})).await.status,
        422,
        "used once only"
    );

    // The enrolled kiosk issues tickets, and the console lists its token with its last use.
    let mut kiosk = Http::with_token(app.addr, &token);
    let me = kiosk.get("/api/v1/devices/me").await.unwrap();
    assert_eq!(me.json()["device"]["id"], "kiosk-9");
    take(&mut kiosk, "joint-service").await;
    let list = admin.get("/api/v1/admin/devices").await.unwrap().json();
    let k9 = device(&list, "kiosk-9");
    assert_eq!(k9["active"], true);
    assert_eq!(k9["tokens"][0]["source"], "enrolled");
    assert_eq!(k9["tokens"][0]["last_seen_from"], "127.0.0.1");
    assert!(k9["tokens"][0]["last_seen_at"].is_string(), "{k9}");
    // Neither the token nor its hash is ever listed.
    let text = list.to_string();
    assert!(!text.contains(&token));
    assert!(!text.contains("token_sha256"));

    // Revoked while its socket is open: the socket closes within a second with the revoked code.
    let mut ws = Ws::connect(app.addr, Some(&token)).await.unwrap();
    ws.subscribe(&format!("queues:{SITE}"), None).await.unwrap();
    assert_eq!(ws.next(T).await.unwrap()["type"], "snapshot");
    let t0 = Instant::now();
    let r = admin.delete("/api/v1/admin/devices/kiosk-9").await.unwrap();
    assert_eq!(r.status, 200);
    assert_eq!(r.json()["revoked"], 1);
    let closed = loop {
        match tokio::time::timeout(Duration::from_secs(1), ws.stream.next()).await {
            Ok(Some(Ok(Message::Close(frame)))) => break frame,
            Ok(Some(Ok(_))) => continue,
            other => panic!("no close frame within a second: {other:?}"),
        }
    };
    assert!(t0.elapsed() < Duration::from_secs(1));
    assert_eq!(
        u16::from(closed.expect("a close frame with a code").code),
        4403
    );
    // The token is refused everywhere from now on.
    assert_eq!(kiosk.get("/api/v1/devices/me").await.unwrap().status, 401);
    let r = kiosk
        .post(
            &format!("/api/v1/sites/{SITE}/tickets"),
            &json!({"service": "joint-service", "lang": "fi"}),
        )
        .await
        .unwrap();
    assert_eq!(r.status, 401);
    assert!(Ws::connect(app.addr, Some(&token)).await.is_err());
    let list = admin.get("/api/v1/admin/devices").await.unwrap().json();
    assert_eq!(device(&list, "kiosk-9")["active"], false);

    // A config file's token is revoked the same way, and stays revoked after a restart, as does the
    // enrolled one; a device enrolled again after its revocation works.
    let demo = demo_device_token(app.addr, "kiosk-2").await.unwrap();
    let r = admin.delete("/api/v1/admin/devices/kiosk-2").await.unwrap();
    assert_eq!(r.status, 200);
    assert_eq!(
        Http::with_token(app.addr, &demo)
            .get("/api/v1/devices/me")
            .await
            .unwrap()
            .status,
        401
    );
    assert!(
        demo_device_token(app.addr, "kiosk-2").await.is_err(),
        "the demo hands out no revoked token"
    );
    let again = code_for(&mut admin, "kiosk-9").await;
    let r = enrol(&app, json!({"code": again})).await;
    assert_eq!(r.status, 201);
    let token2 = r.json()["token"].as_str().unwrap().to_string();
    app.stop().await;
    let app = spawn_app_in(&config(), &dir.0).await;
    assert_eq!(
        Http::with_token(app.addr, &demo)
            .get("/api/v1/devices/me")
            .await
            .unwrap()
            .status,
        401
    );
    assert_eq!(
        Http::with_token(app.addr, &token)
            .get("/api/v1/devices/me")
            .await
            .unwrap()
            .status,
        401
    );
    let me = Http::with_token(app.addr, &token2)
        .get("/api/v1/devices/me")
        .await
        .unwrap();
    assert_eq!(me.status, 200);
    assert_eq!(me.json()["device"]["id"], "kiosk-9");
    // Other kiosks were never touched.
    let mut k1 = kiosk_device(&app, "kiosk-1").await;
    take(&mut k1, "joint-service").await;
    app.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn guessing_enrolment_codes_is_limited_per_address() {
    let dir = TempDir::new("devices-guess");
    let app = spawn_app_in(&config(), &dir.0).await;
    let (mut admin, _) = staff(&app, "admin").await;
    let code = code_for(&mut admin, "kiosk-9").await;
    let mut statuses = Vec::new();
    for _ in 0..12 {
        statuses.push(enrol(&app, json!({"code": "7777-7777"})).await.status);
    }
    assert_eq!(&statuses[..10], &[422; 10]);
    assert_eq!(&statuses[10..], &[429, 429]);
    // Even the right code waits now: guessing cannot go on by mixing in a known one.
    assert_eq!(enrol(&app, json!({"code": code})).await.status, 429);
    // Sign-ins are audited with their outcome; so are enrolment attempts (never the code).
    let audit = admin.get("/api/v1/audit").await.unwrap();
    let text = String::from_utf8_lossy(&audit.body).to_string();
    assert!(text.contains("/api/v1/devices/enrol"), "{text}");
    assert!(!text.contains("7777"));
    app.stop().await;
}

/// Runs `vuoro enrol` with `code` on its standard input; (exit code, standard output and error).
fn enrol_command(
    addr: std::net::SocketAddr,
    device: &str,
    file: &std::path::Path,
    code: &str,
) -> (i32, String) {
    use std::io::Write;
    let mut child = std::process::Command::new(vuoro_bin())
        .args([
            "enrol",
            "--server",
            &format!("http://{addr}"),
            "--device",
            device,
            "--token-file",
        ])
        .arg(file)
        .stdin(std::process::Stdio::piped())
        .stdout(std::process::Stdio::piped())
        .stderr(std::process::Stdio::piped())
        .spawn()
        .unwrap();
    child
        .stdin
        .take()
        .unwrap()
        .write_all(format!("{code}\n").as_bytes())
        .unwrap();
    let out = child.wait_with_output().unwrap();
    (
        out.status.code().unwrap_or(-1),
        format!(
            "{}{}",
            String::from_utf8_lossy(&out.stdout),
            String::from_utf8_lossy(&out.stderr)
        ),
    )
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn vuoro_enrol_writes_a_private_token_file_that_the_agent_can_use() {
    use std::os::unix::fs::PermissionsExt;
    let dir = TempDir::new("devices-cli");
    let app = spawn_app_in(&config(), &dir.0).await;
    let (mut admin, _) = staff(&app, "admin").await;
    let file = dir.0.join("agent.token");
    let code = code_for(&mut admin, "kiosk-9").await;

    // A code for another device is refused: exit 1, no file, and the code still works for its own.
    let (status, said) = tokio::task::spawn_blocking({
        let (app_addr, file, code) = (app.addr, file.clone(), code.clone());
        move || enrol_command(app_addr, "kiosk-1", &file, &code)
    })
    .await
    .unwrap();
    assert_eq!(status, 1, "{said}");
    assert!(said.contains("refused"), "{said}");
    assert!(!file.exists());

    let (status, said) = tokio::task::spawn_blocking({
        let (app_addr, file, code) = (app.addr, file.clone(), code.clone());
        move || enrol_command(app_addr, "kiosk-9", &file, &code)
    })
    .await
    .unwrap();
    assert_eq!(status, 0, "{said}");
    assert!(said.contains("enrolled kiosk-9"), "{said}");
    assert!(!said.contains(&code), "the code is not echoed");
    let token = std::fs::read_to_string(&file).unwrap().trim().to_string();
    assert_eq!(
        std::fs::metadata(&file).unwrap().permissions().mode() & 0o777,
        0o600
    );
    assert!(!said.contains(&token), "the token is not printed");
    let me = Http::with_token(app.addr, &token)
        .get("/api/v1/devices/me")
        .await
        .unwrap();
    assert_eq!(me.json()["device"]["id"], "kiosk-9");

    // A second run does not overwrite the token without --force.
    let again = code_for(&mut admin, "kiosk-9").await;
    let (status, said) = tokio::task::spawn_blocking({
        let (app_addr, file) = (app.addr, file.clone());
        move || enrol_command(app_addr, "kiosk-9", &file, &again)
    })
    .await
    .unwrap();
    assert_eq!(status, 1, "{said}");
    assert_eq!(std::fs::read_to_string(&file).unwrap().trim(), token);
    app.stop().await;
}
