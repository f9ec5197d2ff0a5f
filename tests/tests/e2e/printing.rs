//! Printing end to end: the daemon drives a scripted fake printer on 127.0.0.1 through every fault, and
//! `vuoro agent` prints a kiosk's tickets on a device file.

use std::time::Duration;

use serde_json::{Value, json};
use vuoro_print::CodePage;
use vuoro_print::decode::decode;
use vuoro_print::fake::{Behaviour, FakePrinter};
use vuoro_tests::*;

const SITE: &str = "iso-omena";
const KIOSK1_PRINTER: &str = r#"printer = { kind = "virtual", dir = "printed/kiosk-1", code_page = "cp858", esc_t = 19, width_mm = 80, qr = true }"#;

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn each_printer_fault_reaches_the_kiosk_and_staff_and_no_ticket_is_lost() {
    use Behaviour::*;
    let script = vec![
        Ok,
        NearEnd,
        PaperOut,
        CoverOpen,
        Offline,
        Silence,
        NoConfirmation,
        Ok,
    ];
    let fake = FakePrinter::start(script, CodePage::Cp858).unwrap();
    let printer = format!(
        r#"printer = {{ kind = "tcp", address = "{}", code_page = "cp858", esc_t = 19, width_mm = 80, qr = true }}"#,
        fake.address()
    );
    assert!(DEMO.contains(KIOSK1_PRINTER));
    let config = DEMO.replace(KIOSK1_PRINTER, &printer);
    let dir = TempDir::new("print");
    let app = spawn_app_in(&config, &dir.0).await;
    let admin = login(app.addr, "admin", "demo").await.unwrap();
    let mut staff = Ws::connect(app.addr, Some(&admin)).await.unwrap();
    staff
        .subscribe(&format!("site:{SITE}"), None)
        .await
        .unwrap();
    assert_eq!(
        staff.next(Duration::from_secs(5)).await.unwrap()["type"],
        "snapshot"
    );

    let token = demo_device_token(app.addr, "kiosk-1").await.unwrap();
    let mut k = Http::with_token(app.addr, &token);
    let expected: [(&str, Value, &str); 8] = [
        ("printed", Value::Null, "online"),
        ("printed", Value::Null, "paper_low"),
        ("failed", json!("paper_out"), "paper_out"),
        ("failed", json!("cover_open"), "cover_open"),
        ("failed", json!("offline"), "offline"),
        ("failed", json!("offline"), "offline"),
        ("failed", json!("no_confirmation"), "no_confirmation"),
        ("printed", Value::Null, "online"),
    ];
    let mut tickets = Vec::new();
    for (i, (status, fault, _)) in expected.iter().enumerate() {
        let r = k
            .post(
                &format!("/api/v1/sites/{SITE}/tickets"),
                &json!({"service": "kela-general", "lang": "sv"}),
            )
            .await
            .unwrap();
        assert_eq!(
            r.status, 201,
            "ticket {i} is issued whatever the printer does"
        );
        let t = r.json();
        assert_eq!(t["print"]["status"], *status, "ticket {i}: {}", t["print"]);
        assert_eq!(t["print"]["fault"], *fault, "ticket {i}");
        assert!(
            t["track_url"]
                .as_str()
                .unwrap()
                .contains("/kiosk/track.html#t="),
            "the kiosk can show the tracking address's QR code as the ticket"
        );
        tickets.push(t);
    }
    assert_eq!(tickets[1]["print"]["near_end"], true);
    // Every ticket exists once, with its own number.
    let mut h = app.http();
    let mut numbers = std::collections::HashSet::new();
    for t in &tickets {
        let r = h
            .get(&format!("/api/v1/tickets/{}", t["token"].as_str().unwrap()))
            .await
            .unwrap();
        assert_eq!(r.status, 200);
        assert!(numbers.insert(r.json()["number"].as_str().unwrap().to_string()));
    }
    // What the printer got: a whole job for each printed ticket; nothing at all while it reported a fault;
    // the failed tickets never came out later.
    let conns = fake.connections();
    assert_eq!(conns.len(), 8, "one connection per job");
    let printed_numbers: Vec<String> = conns
        .iter()
        .filter_map(|bytes| {
            let d = decode(bytes, CodePage::Cp858).ok()?;
            let text = d.to_text();
            tickets
                .iter()
                .map(|t| t["number"].as_str().unwrap().to_string())
                .find(|n| text.contains(n.as_str()))
        })
        .collect();
    let want: Vec<String> = [0usize, 1, 6, 7]
        .iter()
        .map(|&i| tickets[i]["number"].as_str().unwrap().to_string())
        .collect();
    assert_eq!(
        printed_numbers, want,
        "jobs were sent only when the status allowed it (no_confirmation: sent, never confirmed)"
    );
    let first = decode(&conns[0], CodePage::Cp858).unwrap();
    assert!(
        first.to_text().contains("FPA:s förmåner"),
        "Swedish letters come out right: {}",
        first.to_text()
    );
    assert_eq!(
        first.qrs()[0].payload,
        tickets[0]["track_url"].as_str().unwrap().as_bytes()
    );
    // Staff heard each status change and got alerts for the faults, cleared when printing worked again.
    let msgs = staff.drain(Duration::from_millis(600)).await;
    let statuses: Vec<String> = msgs
        .iter()
        .filter(|m| m["event"]["kind"] == "printer_status")
        .map(|m| m["event"]["status"].as_str().unwrap().to_string())
        .collect();
    assert_eq!(
        statuses,
        [
            "online",
            "paper_low",
            "paper_out",
            "cover_open",
            "offline",
            "no_confirmation",
            "online"
        ]
    );
    assert!(
        msgs.iter()
            .any(|m| m["event"]["kind"] == "alert" && m["event"]["alert_kind"] == "printer")
    );
    assert!(msgs.iter().any(|m| m["event"]["kind"] == "alert_cleared"));
    let metrics = String::from_utf8(h.get("/metrics").await.unwrap().body).unwrap();
    // The status it last reported is 1, every other 0.
    for (status, v) in [("online", 1), ("paper_out", 0), ("no_confirmation", 0)] {
        let line = format!(
            "vuoro_printer_status{{site=\"iso-omena\",device=\"kiosk-1\",status=\"{status}\"}} {v}\n"
        );
        assert!(metrics.contains(&line), "{line}{metrics}");
    }
    // Staff can reprint a ticket to the kiosk's printer.
    let (mut agent, _) = (
        Http::with_token(app.addr, &login(app.addr, "agent1", "demo").await.unwrap()),
        (),
    );
    let r = agent
        .post(
            "/api/v1/counters/c1/reprint",
            &json!({"ticket": tickets[2]["id"], "device": "kiosk-1"}),
        )
        .await
        .unwrap();
    assert_eq!(r.status, 200, "{}", String::from_utf8_lossy(&r.body));
    assert_eq!(r.json()["print"]["status"], "printed");
    app.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_print_agent_prints_a_kiosks_tickets_on_a_device_file() {
    let anchor = r#"demo_token = "demo-kiosk-3-not-a-secret-outside-loopback""#;
    assert!(DEMO.contains(anchor));
    let config = DEMO.replace(
        anchor,
        &format!("{anchor}\nprinter = {{ kind = \"agent\" }}"),
    );
    let dir = TempDir::new("agent");
    let app = spawn_app_in(&config, &dir.0).await;
    let token = demo_device_token(app.addr, "kiosk-3").await.unwrap();
    let token_file = dir.0.join("token");
    std::fs::write(&token_file, &token).unwrap();
    let device_file = dir.0.join("lp0");
    let mut k = Http::with_token(app.addr, &token);

    // Without an agent the kiosk learns at once that nothing was printed.
    let t = k
        .post(
            &format!("/api/v1/sites/{SITE}/tickets"),
            &json!({"service": "xray", "lang": "fi"}),
        )
        .await
        .unwrap()
        .json();
    assert_eq!(t["print"]["status"], "failed");
    assert_eq!(t["print"]["fault"], "offline");

    let mut agent = std::process::Command::new(vuoro_bin())
        .args([
            "agent",
            "--server",
            &format!("http://{}", app.addr),
            "--device",
            "kiosk-3",
            "--token-file",
        ])
        .arg(&token_file)
        .arg("--printer")
        .arg(format!("file:{}", device_file.display()))
        .stdout(std::process::Stdio::null())
        .stderr(std::process::Stdio::null())
        .spawn()
        .unwrap();
    // Wait until it is connected (one WebSocket client).
    let mut h = app.http();
    let mut connected = false;
    for _ in 0..200 {
        let m = String::from_utf8(h.get("/metrics").await.unwrap().body).unwrap();
        if m.contains("vuoro_ws_clients 1") {
            connected = true;
            break;
        }
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    assert!(connected, "the agent connected");
    let t = k
        .post(
            &format!("/api/v1/sites/{SITE}/tickets"),
            &json!({"service": "xray", "lang": "fi"}),
        )
        .await
        .unwrap()
        .json();
    assert_eq!(t["print"]["status"], "printed", "{}", t["print"]);
    let bytes = std::fs::read(&device_file).unwrap();
    let d = decode(&bytes, CodePage::Cp858).unwrap();
    assert!(d.starts_with_init_sequence() && d.ends_with_cut_and_check());
    let text = d.to_text();
    assert!(text.contains(t["number"].as_str().unwrap()), "{text}");
    assert!(
        text.contains("Laboratorio ja kuvantaminen"),
        "a sensitive service prints under its neutral name: {text}"
    );
    assert!(!text.contains("röntgen"), "{text}");
    agent.kill().unwrap();
    agent.wait().unwrap();
    app.stop().await;
}

/// The kiosk learns its printer's status before the next customer prints: from `devices/me` and from
/// its own `device:` topic. Staff see the kiosk's place in the alert.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_kiosk_hears_its_printer_status_and_staff_see_where_it_is() {
    use Behaviour::*;
    let fake = FakePrinter::start(vec![PaperOut, Ok], CodePage::Cp858).unwrap();
    let printer = format!(
        r#"printer = {{ kind = "tcp", address = "{}", code_page = "cp858", esc_t = 19, width_mm = 80, qr = true }}"#,
        fake.address()
    );
    let config = DEMO.replace(KIOSK1_PRINTER, &printer);
    let dir = TempDir::new("print-status");
    let app = spawn_app_in(&config, &dir.0).await;
    let token = demo_device_token(app.addr, "kiosk-1").await.unwrap();
    let mut k = Http::with_token(app.addr, &token);
    let me = k.get("/api/v1/devices/me").await.unwrap().json();
    assert_eq!(me["device"]["printer"]["status"], Value::Null, "{me}");
    assert_eq!(me["device"]["location"]["en"], "entrance");
    let mut ws = Ws::connect(app.addr, Some(&token)).await.unwrap();
    ws.subscribe("device:kiosk-1", None).await.unwrap();
    let snap = ws.next(Duration::from_secs(5)).await.unwrap();
    assert_eq!(snap["type"], "snapshot");
    let t = issue(&mut k).await;
    assert_eq!(t["print"]["fault"], "paper_out");
    let ev = loop {
        let m = ws.next(Duration::from_secs(5)).await.unwrap();
        if m["event"]["kind"] == "printer_status" {
            break m;
        }
    };
    assert_eq!(ev["event"]["printer"]["status"], "paper_out");
    let me = k.get("/api/v1/devices/me").await.unwrap().json();
    assert_eq!(me["device"]["printer"]["status"], "paper_out");
    let admin = login(app.addr, "admin", "demo").await.unwrap();
    let mut staff = Ws::connect(app.addr, Some(&admin)).await.unwrap();
    staff
        .subscribe(&format!("site:{SITE}"), None)
        .await
        .unwrap();
    let site = staff.next(Duration::from_secs(5)).await.unwrap();
    let alert = site["data"]["alerts"]
        .as_array()
        .unwrap()
        .iter()
        .find(|a| a["kind"] == "printer")
        .cloned()
        .expect("a printer alert");
    assert!(
        alert["message"]
            .as_str()
            .unwrap()
            .starts_with("kiosk-1 (sisäänkäynti): out of paper"),
        "{alert}"
    );
    let printers = site["data"]["printers"].as_array().unwrap();
    assert_eq!(printers[0]["location"]["fi"], "sisäänkäynti");
    // Printing works again: the kiosk hears it, the alert is gone.
    let t = issue(&mut k).await;
    assert_eq!(t["print"]["status"], "printed");
    let ev = loop {
        let m = ws.next(Duration::from_secs(5)).await.unwrap();
        if m["event"]["kind"] == "printer_status" {
            break m;
        }
    };
    assert_eq!(ev["event"]["printer"]["status"], "online");
    app.stop().await;
}

async fn issue(k: &mut Http) -> Value {
    k.post(
        &format!("/api/v1/sites/{SITE}/tickets"),
        &json!({"service": "kela-general"}),
    )
    .await
    .unwrap()
    .json()
}
