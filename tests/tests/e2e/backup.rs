//! Backup, restore, verify and the data folder's lock, with the real daemon, the real `vuoro` command and
//! real SQLite files: a backup taken while kiosk-3 issues tickets from many connections holds every ticket
//! acknowledged before it began, verifies, restores into a new folder and serves them; a restore into a
//! running daemon's folder and a second daemon on it are refused; a database of a newer schema is refused
//! and left as it was; a damaged copy fails `verify` and is not restored; scheduled backups are written,
//! kept to `keep` and reported in `/metrics`.

use std::path::Path;
use std::process::Output;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex};

use super::*;

/// Runs the `vuoro` command with these arguments and waits for it.
async fn vuoro(args: &[&std::ffi::OsStr]) -> Output {
    let args: Vec<std::ffi::OsString> = args.iter().map(|a| a.to_os_string()).collect();
    tokio::task::spawn_blocking(move || {
        std::process::Command::new(vuoro_bin())
            .args(&args)
            .env("RUST_LOG", "warn")
            .env_remove("VUORO_CONFIG")
            .env_remove("VUORO_DATA")
            .output()
            .expect("run vuoro")
    })
    .await
    .expect("join")
}

fn os(s: &str) -> &std::ffi::OsStr {
    std::ffi::OsStr::new(s)
}

fn said(out: &Output) -> String {
    format!(
        "status {:?}\nstdout: {}\nstderr: {}",
        out.status.code(),
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    )
}

/// `vuoro serve` on `data` and a free loopback port, as a process expected to be refused: its output once
/// it exits, or once it was killed after 30 s (then with no exit code).
async fn second_daemon(data: &Path) -> Output {
    let mut child = std::process::Command::new(vuoro_bin())
        .args(["serve", "--listen", "127.0.0.1:0", "--data"])
        .arg(data)
        .env("RUST_LOG", "warn")
        .env_remove("VUORO_CONFIG")
        .stdout(std::process::Stdio::piped())
        .stderr(std::process::Stdio::piped())
        .spawn()
        .expect("spawn vuoro");
    for _ in 0..300 {
        if child.try_wait().expect("try_wait").is_some() {
            break;
        }
        tokio::time::sleep(std::time::Duration::from_millis(100)).await;
    }
    let _ = child.kill();
    tokio::task::spawn_blocking(move || child.wait_with_output().expect("output"))
        .await
        .expect("join")
}

async fn backup(data: &Path, to: &Path) -> Output {
    vuoro(&[
        os("backup"),
        os("--to"),
        to.as_os_str(),
        os("--data"),
        data.as_os_str(),
    ])
    .await
}

async fn verify_file(file: &Path) -> Output {
    vuoro(&[os("verify"), os("--file"), file.as_os_str()]).await
}

async fn restore(from: &Path, data: &Path, force: bool) -> Output {
    let mut args = vec![
        os("restore"),
        os("--from"),
        from.as_os_str(),
        os("--data"),
        data.as_os_str(),
    ];
    if force {
        args.push(os("--force"));
    }
    vuoro(&args).await
}

/// (token, number) of each ticket acknowledged, in the order the answers came.
type Acked = Arc<Mutex<Vec<(String, String)>>>;

/// Kiosk-3 (no printer) issuing tickets from `connections` connections until `stop` is set.
async fn issue_until(
    app: &TestApp,
    connections: usize,
    stop: Arc<AtomicBool>,
    acked: Acked,
) -> Vec<tokio::task::JoinHandle<()>> {
    let token = demo_device_token(app.addr, "kiosk-3").await.unwrap();
    let services = [
        "child-clinic",
        "joint-service",
        "lab-sample",
        "mental-health",
        "library-help",
    ];
    (0..connections)
        .map(|w| {
            let (addr, token, stop, acked) = (app.addr, token.clone(), stop.clone(), acked.clone());
            tokio::spawn(async move {
                let mut h = Http::with_token(addr, &token);
                let mut i = w;
                while !stop.load(Ordering::Relaxed) {
                    let body = json!({"service": services[i % services.len()], "lang": "fi"});
                    i += 1;
                    let r = h
                        .post(&format!("/api/v1/sites/{SITE}/tickets"), &body)
                        .await
                        .unwrap();
                    assert_eq!(r.status, 201, "{}", String::from_utf8_lossy(&r.body));
                    let v = r.json();
                    acked.lock().unwrap().push((
                        v["token"].as_str().unwrap().to_string(),
                        v["number"].as_str().unwrap().to_string(),
                    ));
                }
            })
        })
        .collect()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_backup_under_load_holds_every_ticket_acknowledged_before_it_verifies_and_restores() {
    let dir = TempDir::new("backup-load");
    let data = dir.0.join("data");
    let app = spawn_app_in(DEMO, &data).await;
    let stop = Arc::new(AtomicBool::new(false));
    let acked: Acked = Arc::default();
    let tasks = issue_until(&app, 16, stop.clone(), acked.clone()).await;
    while acked.lock().unwrap().len() < 500 {
        tokio::time::sleep(Duration::from_millis(5)).await;
    }

    // Everything acknowledged so far was acknowledged before the backup began.
    let before: Vec<(String, String)> = acked.lock().unwrap().clone();
    let copy = dir.0.join("copy.sqlite");
    let out = backup(&data, &copy).await;
    assert!(out.status.success(), "{}", said(&out));
    let during = acked.lock().unwrap().len() - before.len();
    // The load goes on a little after the copy, then stops.
    let after_backup = acked.lock().unwrap().len();
    while acked.lock().unwrap().len() < after_backup + 50 {
        tokio::time::sleep(Duration::from_millis(5)).await;
    }
    stop.store(true, Ordering::Relaxed);
    for t in tasks {
        t.await.unwrap();
    }
    let issued = acked.lock().unwrap().len();
    app.stop().await;
    assert!(
        during > 0,
        "tickets were issued while the backup ran: the writer was not held up"
    );

    let out = verify_file(&copy).await;
    assert!(out.status.success(), "{}", said(&out));
    assert!(
        String::from_utf8_lossy(&out.stdout).contains("passes"),
        "{}",
        said(&out)
    );

    let restored = dir.0.join("restored");
    let out = restore(&copy, &restored, false).await;
    assert!(out.status.success(), "{}", said(&out));
    let app = spawn_app_in(DEMO, &restored).await;
    let mut h = app.http();
    for (token, number) in &before {
        let r = h.get(&format!("/api/v1/tickets/{token}")).await.unwrap();
        assert_eq!(
            r.status, 200,
            "ticket {number}, acknowledged before the backup, is missing"
        );
        assert_eq!(r.json()["number"], number.as_str());
    }
    // The copy is of one moment: at most what was issued, and the restored daemon goes on after it.
    let admin = login(app.addr, "admin", "demo").await.unwrap();
    let mut a = Http::with_token(app.addr, &admin);
    let waiting = a
        .get(&format!("/api/v1/sites/{SITE}/tickets?state=waiting"))
        .await
        .unwrap()
        .json();
    let held = waiting["tickets"].as_array().unwrap().len();
    assert!(
        held >= before.len() && held <= issued,
        "{held} tickets in the copy; {} before the backup, {issued} in all",
        before.len()
    );
    let mut k = kiosk_device(&app, "kiosk-3").await;
    take(&mut k, "parking").await;
    app.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_running_daemons_folder_refuses_a_restore_and_a_second_daemon() {
    let dir = TempDir::new("backup-lock");
    let data = dir.0.join("data");
    let app = spawn_app_in(DEMO, &data).await;
    let mut k = kiosk_device(&app, "kiosk-3").await;
    let first = take(&mut k, "parking").await;
    let copy = dir.0.join("copy.sqlite");
    let out = backup(&data, &copy).await;
    assert!(out.status.success(), "{}", said(&out));
    let out = backup(&data, &copy).await;
    assert_eq!(out.status.code(), Some(1), "{}", said(&out));
    assert!(
        String::from_utf8_lossy(&out.stderr).contains("--force"),
        "an existing copy is not overwritten: {}",
        said(&out)
    );
    let second = take(&mut k, "parking").await;

    // A restore, even forced, into the running daemon's folder.
    let out = restore(&copy, &data, true).await;
    assert_eq!(out.status.code(), Some(1), "{}", said(&out));
    assert!(
        String::from_utf8_lossy(&out.stderr).contains("in use by a running Vuoro daemon"),
        "{}",
        said(&out)
    );

    // A second daemon on the same folder: in this process and as another process.
    let cfg = vuoro_server::config::load(DEMO).unwrap();
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let err = vuoro_server::serve(
        vuoro_server::Settings {
            config: cfg,
            data_dir: data.clone(),
            record_ws: None,
            ready: None,
        },
        listener,
        async {},
    )
    .await
    .unwrap_err();
    assert!(err.to_string().contains("in use"), "{err}");
    // The process is refused before it says it listens: its output is the refusal alone.
    let out = second_daemon(&data).await;
    assert_eq!(out.status.code(), Some(1), "{}", said(&out));
    assert!(
        String::from_utf8_lossy(&out.stderr).contains("in use by a running Vuoro daemon"),
        "{}",
        said(&out)
    );
    assert!(
        !String::from_utf8_lossy(&out.stdout).contains("listening"),
        "a refused daemon said it listens: {}",
        said(&out)
    );

    // Untouched: the running daemon still serves both tickets.
    let mut h = app.http();
    for t in [&first, &second] {
        let r = h
            .get(&format!("/api/v1/tickets/{}", t["token"].as_str().unwrap()))
            .await
            .unwrap();
        assert_eq!(r.status, 200);
    }
    app.stop().await;

    // Stopped: a backup works as well, and the folder verifies.
    let stopped_copy = dir.0.join("stopped.sqlite");
    let out = backup(&data, &stopped_copy).await;
    assert!(out.status.success(), "{}", said(&out));
    let out = vuoro(&[os("verify"), os("--data"), data.as_os_str()]).await;
    assert!(out.status.success(), "{}", said(&out));
    let out = verify_file(&stopped_copy).await;
    assert!(out.status.success(), "{}", said(&out));

    // A restore still needs --force to replace the database, and then puts the copy in place.
    let out = restore(&copy, &data, false).await;
    assert_eq!(out.status.code(), Some(1), "{}", said(&out));
    assert!(
        String::from_utf8_lossy(&out.stderr).contains("already holds a database"),
        "{}",
        said(&out)
    );
    let out = restore(&copy, &data, true).await;
    assert!(out.status.success(), "{}", said(&out));
    let app = spawn_app_in(DEMO, &data).await;
    let mut h = app.http();
    let r = h
        .get(&format!(
            "/api/v1/tickets/{}",
            first["token"].as_str().unwrap()
        ))
        .await
        .unwrap();
    assert_eq!(r.status, 200, "the copy's ticket");
    let r = h
        .get(&format!(
            "/api/v1/tickets/{}",
            second["token"].as_str().unwrap()
        ))
        .await
        .unwrap();
    assert_eq!(
        r.status, 404,
        "the ticket issued after the copy is not in it"
    );
    app.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_database_of_a_newer_schema_is_refused_and_left_as_it_was() {
    let dir = TempDir::new("backup-newer");
    let app = spawn_app_in(DEMO, &dir.0).await;
    let mut k = kiosk_device(&app, "kiosk-3").await;
    take(&mut k, "parking").await;
    app.stop().await;
    let db = dir.0.join("vuoro.sqlite");
    {
        let c = rusqlite::Connection::open(&db).unwrap();
        c.pragma_update(None, "user_version", 99).unwrap();
    }
    let bytes = std::fs::read(&db).unwrap();

    let cfg = vuoro_server::config::load(DEMO).unwrap();
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let err = vuoro_server::serve(
        vuoro_server::Settings {
            config: cfg,
            data_dir: dir.0.clone(),
            record_ws: None,
            ready: None,
        },
        listener,
        async {},
    )
    .await
    .unwrap_err();
    let known = vuoro_store::schema_version(&db).unwrap().1;
    let message = format!("{err:#}");
    assert!(
        message.contains(&format!(
            "made by a newer Vuoro (schema 99, this one knows {known}): upgrade Vuoro or restore a backup"
        )),
        "{message}"
    );
    assert!(
        std::fs::read(&db).unwrap() == bytes,
        "the file is untouched"
    );

    let out = verify_file(&db).await;
    assert_eq!(out.status.code(), Some(1), "{}", said(&out));
    assert!(
        String::from_utf8_lossy(&out.stderr).contains("made by a newer Vuoro"),
        "{}",
        said(&out)
    );
    assert!(
        std::fs::read(&db).unwrap() == bytes,
        "the file is untouched"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn verify_fails_a_damaged_copy_and_restore_refuses_it() {
    let dir = TempDir::new("backup-damaged");
    let data = dir.0.join("data");
    let app = spawn_app_in(DEMO, &data).await;
    let mut k = kiosk_device(&app, "kiosk-3").await;
    for _ in 0..200 {
        take(&mut k, "parking").await;
    }
    let copy = dir.0.join("copy.sqlite");
    let out = backup(&data, &copy).await;
    assert!(out.status.success(), "{}", said(&out));
    app.stop().await;
    let out = verify_file(&copy).await;
    assert!(out.status.success(), "{}", said(&out));

    // Cut short, as by a full disk or an interrupted transfer.
    let whole = std::fs::read(&copy).unwrap();
    let truncated = dir.0.join("truncated.sqlite");
    std::fs::write(&truncated, &whole[..whole.len() / 2]).unwrap();
    let out = verify_file(&truncated).await;
    assert_eq!(out.status.code(), Some(1), "{}", said(&out));
    assert!(
        String::from_utf8_lossy(&out.stderr).contains("fails"),
        "{}",
        said(&out)
    );
    let target = dir.0.join("target");
    let out = restore(&truncated, &target, false).await;
    assert_eq!(out.status.code(), Some(1), "{}", said(&out));
    assert!(
        !target.join("vuoro.sqlite").exists(),
        "nothing restored from a damaged copy"
    );

    // An event missing from the middle of the log.
    let gap = dir.0.join("gap.sqlite");
    std::fs::copy(&copy, &gap).unwrap();
    {
        let c = rusqlite::Connection::open(&gap).unwrap();
        c.execute("DELETE FROM events WHERE seq = 100", []).unwrap();
    }
    let out = verify_file(&gap).await;
    assert_eq!(out.status.code(), Some(1), "{}", said(&out));
    assert!(
        String::from_utf8_lossy(&out.stderr).contains("gap"),
        "{}",
        said(&out)
    );

    // An event that no longer reads as one.
    let unreadable = dir.0.join("unreadable.sqlite");
    std::fs::copy(&copy, &unreadable).unwrap();
    {
        let c = rusqlite::Connection::open(&unreadable).unwrap();
        c.execute("UPDATE events SET data = '{\"seq\": 50' WHERE seq = 50", [])
            .unwrap();
    }
    let out = verify_file(&unreadable).await;
    assert_eq!(out.status.code(), Some(1), "{}", said(&out));
    assert!(
        String::from_utf8_lossy(&out.stderr).contains("event 50"),
        "{}",
        said(&out)
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn scheduled_backups_are_written_kept_to_keep_and_reported() {
    let dir = TempDir::new("backup-scheduled");
    let backups = dir.0.join("backups");
    std::fs::create_dir_all(&backups).unwrap();
    // Older copies, and a file that is not one (never deleted).
    for name in [
        "vuoro-20200101-0000.sqlite",
        "vuoro-20200102-0000.sqlite",
        "vuoro-20200103-0000.sqlite",
        "notes.txt",
    ] {
        std::fs::write(backups.join(name), b"old").unwrap();
        let old = std::time::SystemTime::UNIX_EPOCH + Duration::from_secs(1_577_836_800);
        std::fs::File::options()
            .write(true)
            .open(backups.join(name))
            .unwrap()
            .set_modified(old)
            .unwrap();
    }
    let config = format!(
        "{DEMO}\n[backup]\ndir = \"{}\"\nkeep = 2\n",
        backups.display()
    );
    let app = spawn_app_in(&config, &dir.0.join("data")).await;
    let deadline = Instant::now() + Duration::from_secs(10);
    let mut h = app.http();
    let stamp = loop {
        let text = String::from_utf8(h.get("/metrics").await.unwrap().body).unwrap();
        let stamp: u64 = text
            .lines()
            .find_map(|l| l.strip_prefix("vuoro_backup_last_success_timestamp_seconds "))
            .expect("the metric is there")
            .parse()
            .unwrap();
        if stamp > 1_600_000_000 || Instant::now() > deadline {
            break stamp;
        }
        tokio::time::sleep(Duration::from_millis(50)).await;
    };
    let now = chrono::Utc::now().timestamp() as u64;
    assert!(
        now.abs_diff(stamp) < 60,
        "a backup now: {stamp} against {now}"
    );
    let mut names: Vec<String> = std::fs::read_dir(&backups)
        .unwrap()
        .map(|e| e.unwrap().file_name().to_string_lossy().into_owned())
        .collect();
    names.sort();
    let today = chrono::Utc::now().format("vuoro-%Y%m%d-").to_string();
    assert_eq!(names.len(), 3, "{names:?}");
    assert_eq!(names[0], "notes.txt");
    assert_eq!(names[1], "vuoro-20200103-0000.sqlite", "{names:?}");
    assert!(names[2].starts_with(&today), "{names:?}");
    let out = verify_file(&backups.join(&names[2])).await;
    assert!(out.status.success(), "{}", said(&out));
    app.stop().await;

    // A folder that cannot be written: no success to report, and the daemon serves on.
    let blocked = dir.0.join("a-file");
    std::fs::write(&blocked, b"").unwrap();
    let config = format!(
        "{DEMO}\n[backup]\ndir = \"{}\"\n",
        blocked.join("backups").display()
    );
    let app = spawn_app_in(&config, &dir.0.join("data2")).await;
    tokio::time::sleep(Duration::from_millis(500)).await;
    let mut h = app.http();
    let text = String::from_utf8(h.get("/metrics").await.unwrap().body).unwrap();
    assert!(
        text.contains("\nvuoro_backup_last_success_timestamp_seconds 0\n"),
        "{text}"
    );
    let mut k = kiosk_device(&app, "kiosk-3").await;
    take(&mut k, "parking").await;
    app.stop().await;
}
