//! The config changed while the daemon runs (`GET/PUT /api/v1/admin/config`): checked like `vuoro
//! check-config`, refused with every mistake and nothing changed, refused when it would drop someone
//! waiting, applied without a restart (services' names, hours, users), told to every connection, kept
//! across restarts as a version with who made it, and an earlier version restored.

use super::*;

const NAME_FI: &str = r#"name = { fi = "Neuvonta ja asiointi""#;

async fn get_config(admin: &mut Http) -> (String, String) {
    let r = admin.get("/api/v1/admin/config").await.unwrap();
    assert_eq!(r.status, 200, "{}", String::from_utf8_lossy(&r.body));
    assert!(
        r.header("content-type")
            .unwrap()
            .starts_with("application/toml")
    );
    (
        r.header("etag").unwrap().to_string(),
        String::from_utf8(r.body).unwrap(),
    )
}

async fn put_config(admin: &mut Http, etag: Option<&str>, text: &str) -> Response {
    let mut headers = vec![("Content-Type", "application/toml")];
    if let Some(e) = etag {
        headers.push(("If-Match", e));
    }
    admin
        .request(
            "PUT",
            "/api/v1/admin/config",
            Some(text.as_bytes()),
            &headers,
        )
        .await
        .unwrap()
}

/// The Finnish name the kiosk shows for the joint service desk.
async fn joint_service_name(app: &TestApp) -> String {
    let r = Http::new(app.addr)
        .get(&format!("/api/v1/sites/{SITE}/services?lang=fi"))
        .await
        .unwrap();
    let v = r.json();
    v["services"]
        .as_array()
        .unwrap()
        .iter()
        .find(|s| s["id"] == "joint-service")
        .unwrap_or_else(|| panic!("joint-service in {v}"))["name"]
        .as_str()
        .unwrap()
        .to_string()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_changed_config_applies_at_once_without_losing_anyone_and_outlives_a_restart() {
    let dir = TempDir::new("live-config");
    let app = spawn_app_in(DEMO, &dir.0).await;
    let (mut admin, _) = staff(&app, "admin").await;
    let (mut sup, _) = staff(&app, "supervisor").await;
    assert_eq!(sup.get("/api/v1/admin/config").await.unwrap().status, 403);

    let (etag, text) = get_config(&mut admin).await;
    assert_eq!(etag, "\"v1\"");
    assert_eq!(text, DEMO, "the file's text, as it was read");

    // Refused, nothing changed: no If-Match, an old one, a config with mistakes.
    let renamed = text.replacen(
        NAME_FI,
        r#"name = { fi = "Neuvonta, asiointi ja opastus""#,
        1,
    );
    let r = put_config(&mut admin, None, &renamed).await;
    assert_eq!(
        (r.status, r.code()),
        (428, "precondition_required".to_string())
    );
    let r = put_config(&mut admin, Some("\"v7\""), &renamed).await;
    assert_eq!(r.status, 409);
    let broken = renamed
        .replacen(
            "services = [{ service = \"joint-service\" }",
            "services = [{ service = \"no-such-service\" }",
            1,
        )
        .replacen("series = \"Y\"", "series = 5", 1);
    let r = put_config(&mut admin, Some(&etag), &broken).await;
    assert_eq!(r.status, 422);
    let message = r.json()["error"]["message"].as_str().unwrap().to_string();
    assert!(message.contains("line "), "{message}");
    assert_eq!(get_config(&mut admin).await, (etag.clone(), text.clone()));
    assert_eq!(joint_service_name(&app).await, "Neuvonta ja asiointi");

    // Someone waits for parking: removing the service is refused with the reason.
    let mut k = kiosk(&app).await;
    let waiting = take(&mut k, "parking").await;
    let at = text.find("[[site.service]]\nid = \"parking\"\n").unwrap();
    let end = at + 1 + text[at + 1..].find("\n[[").unwrap() + 1;
    let without_parking = format!("{}{}", &text[..at], &text[end..])
        .replace(", { service = \"parking\" }", "")
        .replace("{ service = \"parking\" }, ", "");
    let r = put_config(&mut admin, Some(&etag), &without_parking).await;
    assert_eq!(r.status, 409, "{}", String::from_utf8_lossy(&r.body));
    assert!(
        r.json()["error"]["message"]
            .as_str()
            .unwrap()
            .contains("service 'parking'")
    );
    assert_eq!(get_config(&mut admin).await.0, etag);

    // A new name and new Saturday hours: in force at once, every connection told.
    let mut watcher = Ws::connect(app.addr, None).await.unwrap();
    watcher
        .subscribe(&format!("queues:{SITE}"), None)
        .await
        .unwrap();
    assert_eq!(watcher.next(T).await.unwrap()["type"], "snapshot");
    let changed = renamed.replacen("sat = [\"10:00-16:00\"] }", "sat = [\"09:00-15:00\"] }", 1);
    assert_ne!(changed, renamed);
    let r = put_config(&mut admin, Some(&etag), &changed).await;
    assert_eq!(r.status, 200, "{}", String::from_utf8_lossy(&r.body));
    assert_eq!(r.header("etag"), Some("\"v2\""));
    let v = r.json();
    assert_eq!(
        (v["version"].as_u64(), v["changed"].as_bool()),
        (Some(2), Some(true))
    );
    assert_eq!(v["restart_needed"], json!([]));
    let told = until(&mut watcher, |m| m["type"] == "config_changed").await;
    assert_eq!(told["version"], 2);
    assert_eq!(
        joint_service_name(&app).await,
        "Neuvonta, asiointi ja opastus"
    );
    // Nobody was lost or renumbered.
    let t = Http::new(app.addr)
        .get(&format!(
            "/api/v1/tickets/{}",
            waiting["token"].as_str().unwrap()
        ))
        .await
        .unwrap()
        .json();
    assert_eq!(
        (t["number"].clone(), t["state"].clone()),
        (waiting["number"].clone(), json!("waiting"))
    );

    // The same text again changes nothing.
    let r = put_config(&mut admin, Some("\"v2\""), &changed).await;
    assert_eq!((r.status, r.json()["changed"].clone()), (200, json!(false)));

    // A user added through the config signs in at once; a section read at start says so.
    let hash = vuoro_server::auth::hash_password("a long new password");
    let with_user = format!(
        "{changed}\n[[user]]\nusername = \"newagent\"\npassword_hash = \"{hash}\"\nroles = [\"agent\"]\nunits = [\"kela\"]\n"
    )
    .replacen("demo = true\n", "demo = true\ndisplay_frozen_seconds = 30\n", 1);
    let r = put_config(&mut admin, Some("\"v2\""), &with_user).await;
    assert_eq!(r.status, 200, "{}", String::from_utf8_lossy(&r.body));
    assert_eq!(r.json()["restart_needed"], json!(["server"]));
    assert!(
        login(app.addr, "newagent", "a long new password")
            .await
            .is_ok()
    );

    // Who changed what is in the audit trail and the versions.
    let audit = String::from_utf8(admin.get("/api/v1/audit").await.unwrap().body).unwrap();
    assert!(
        audit.contains("/api/v1/admin/config") && audit.contains("admin"),
        "{audit}"
    );
    let versions = admin
        .get("/api/v1/admin/config/versions")
        .await
        .unwrap()
        .json();
    let list: Vec<(u64, String, String, bool)> = versions["versions"]
        .as_array()
        .unwrap()
        .iter()
        .map(|v| {
            (
                v["version"].as_u64().unwrap(),
                v["source"].as_str().unwrap().into(),
                v["created_by"].as_str().unwrap().into(),
                v["current"].as_bool().unwrap(),
            )
        })
        .collect();
    assert_eq!(
        list,
        [
            (3, "api".into(), "admin".into(), true),
            (2, "api".into(), "admin".into(), false),
            (1, "file".into(), "config file".into(), false),
        ]
    );

    // A restart with the same file keeps the change; the name and the user are still there.
    app.stop().await;
    let app = spawn_app_in(DEMO, &dir.0).await;
    let (mut admin, _) = staff(&app, "admin").await;
    assert_eq!(get_config(&mut admin).await.0, "\"v3\"");
    assert_eq!(
        joint_service_name(&app).await,
        "Neuvonta, asiointi ja opastus"
    );
    assert!(
        login(app.addr, "newagent", "a long new password")
            .await
            .is_ok()
    );

    // An earlier version restored: the first name is back, as a new version.
    let r = admin
        .request(
            "POST",
            "/api/v1/admin/config/versions/1/restore",
            Some(b"{}"),
            &[("If-Match", "\"v3\"")],
        )
        .await
        .unwrap();
    assert_eq!(r.status, 200, "{}", String::from_utf8_lossy(&r.body));
    assert_eq!(r.json()["version"], 4);
    assert_eq!(joint_service_name(&app).await, "Neuvonta ja asiointi");
    assert!(
        login(app.addr, "newagent", "a long new password")
            .await
            .is_err()
    );
    app.stop().await;

    // The file edited by an admin wins over the versions before it.
    let edited = DEMO.replacen(NAME_FI, r#"name = { fi = "Neuvonta (tiedostosta)""#, 1);
    let app = spawn_app_in(&edited, &dir.0).await;
    let (mut admin, _) = staff(&app, "admin").await;
    assert_eq!(
        get_config(&mut admin).await,
        ("\"v5\"".to_string(), edited.clone())
    );
    assert_eq!(joint_service_name(&app).await, "Neuvonta (tiedostosta)");
    app.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_config_changes_as_json_too_and_a_program_is_recorded_as_the_api() {
    let dir = TempDir::new("live-config-json");
    let app = spawn_app_in(DEMO, &dir.0).await;
    let (mut admin, _) = staff(&app, "admin").await;
    let r = admin.get("/api/v1/admin/config?format=json").await.unwrap();
    assert_eq!(r.status, 200);
    assert_eq!(r.header("etag"), Some("\"v1\""));
    let mut v = r.json();
    assert_eq!(v["version"], 1);
    let services = v["config"]["site"][0]["service"].as_array_mut().unwrap();
    let svc = services
        .iter_mut()
        .find(|s| s["id"] == "joint-service")
        .unwrap();
    svc["name"]["fi"] = json!("Neuvonta ja opastus");
    let r = admin
        .request(
            "PUT",
            "/api/v1/admin/config",
            Some(json!({"config": v["config"]}).to_string().as_bytes()),
            &[("If-Match", "\"v1\"")],
        )
        .await
        .unwrap();
    assert_eq!(r.status, 200, "{}", String::from_utf8_lossy(&r.body));
    assert_eq!(joint_service_name(&app).await, "Neuvonta ja opastus");
    let versions = admin
        .get("/api/v1/admin/config/versions")
        .await
        .unwrap()
        .json();
    // Signed in by bearer token: a program, not the administration's pages (which use the cookie).
    assert_eq!(versions["versions"][0]["source"], "api");
    // The text in force reads back as the same config.
    let (_, text) = get_config(&mut admin).await;
    assert!(text.contains("Neuvonta ja opastus"));
    assert!(vuoro_server::config::load(&text).is_ok());
    // A body that is neither JSON nor TOML is refused before anything else.
    let r = admin
        .request(
            "PUT",
            "/api/v1/admin/config",
            Some(b"name=x"),
            &[("Content-Type", "text/plain"), ("If-Match", "\"v2\"")],
        )
        .await
        .unwrap();
    assert_eq!(r.status, 415);
    app.stop().await;
}

/// Runs `vuoro config ACTION` against the daemon with the admin's password on standard input.
async fn config_command(
    addr: std::net::SocketAddr,
    action: &str,
    file: &std::path::Path,
) -> (i32, String) {
    let file = file.to_path_buf();
    let action = action.to_string();
    tokio::task::spawn_blocking(move || {
        use std::io::Write;
        let mut child = std::process::Command::new(vuoro_bin())
            .args([
                "config",
                &action,
                "--server",
                &format!("http://{addr}"),
                "--user",
                "admin",
            ])
            .arg(&file)
            .stdin(std::process::Stdio::piped())
            .stdout(std::process::Stdio::piped())
            .stderr(std::process::Stdio::piped())
            .spawn()
            .unwrap();
        child.stdin.take().unwrap().write_all(b"demo\n").unwrap();
        let out = child.wait_with_output().unwrap();
        (
            out.status.code().unwrap_or(-1),
            format!(
                "{}{}",
                String::from_utf8_lossy(&out.stdout),
                String::from_utf8_lossy(&out.stderr)
            ),
        )
    })
    .await
    .unwrap()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn vuoro_config_pull_and_push_keep_the_config_in_a_file_and_refuse_a_stale_one() {
    let dir = TempDir::new("live-config-cli");
    let app = spawn_app_in(DEMO, &dir.0).await;
    let file = dir.0.join("hall.toml");
    let (status, said) = config_command(app.addr, "pull", &file).await;
    assert_eq!(status, 0, "{said}");
    assert_eq!(std::fs::read_to_string(&file).unwrap(), DEMO);
    assert_eq!(
        std::fs::read_to_string(dir.0.join("hall.toml.version"))
            .unwrap()
            .trim(),
        "\"v1\""
    );

    // Edited and pushed: in force, and the file's version moves on.
    std::fs::write(
        &file,
        DEMO.replacen(
            NAME_FI,
            r#"name = { fi = "Neuvonta (versionhallinnasta)""#,
            1,
        ),
    )
    .unwrap();
    let (status, said) = config_command(app.addr, "push", &file).await;
    assert_eq!(status, 0, "{said}");
    assert!(said.contains("version 2"), "{said}");
    assert_eq!(
        joint_service_name(&app).await,
        "Neuvonta (versionhallinnasta)"
    );
    assert_eq!(
        std::fs::read_to_string(dir.0.join("hall.toml.version"))
            .unwrap()
            .trim(),
        "\"v2\""
    );

    // A mistake: refused with its line, exit 1, nothing changed.
    std::fs::write(&file, DEMO.replacen("series = \"Y\"", "series = 5", 1)).unwrap();
    let (status, said) = config_command(app.addr, "push", &file).await;
    assert_eq!(status, 1, "{said}");
    assert!(said.contains("line "), "{said}");
    assert_eq!(
        joint_service_name(&app).await,
        "Neuvonta (versionhallinnasta)"
    );

    // Someone changed it meanwhile: a push of the older version is refused, not overwritten.
    let (mut admin, _) = staff(&app, "admin").await;
    let (etag, text) = get_config(&mut admin).await;
    let r = put_config(
        &mut admin,
        Some(&etag),
        &text.replacen("Neuvonta (versionhallinnasta)", "Neuvonta (konsolista)", 1),
    )
    .await;
    assert_eq!(r.status, 200);
    std::fs::write(&file, DEMO).unwrap();
    let (status, said) = config_command(app.addr, "push", &file).await;
    assert_eq!(status, 1, "{said}");
    assert!(said.contains("changed since you read it"), "{said}");
    assert_eq!(joint_service_name(&app).await, "Neuvonta (konsolista)");
    app.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_supervisor_changes_the_services_of_their_own_units_only() {
    let dir = TempDir::new("live-config-scope");
    let hash = vuoro_server::auth::hash_password("kela supervisor password");
    let config = format!(
        "{DEMO}\n[[user]]\nusername = \"kelasup\"\npassword_hash = \"{hash}\"\nroles = [\"supervisor\"]\nunits = [\"kela\"]\n"
    );
    let app = spawn_app_in(&config, &dir.0).await;
    let token = login(app.addr, "kelasup", "kela supervisor password")
        .await
        .unwrap();
    let mut sup = Http::with_token(app.addr, &token);
    let r = sup
        .get(&format!("/api/v1/admin/sites/{SITE}/services"))
        .await
        .unwrap();
    assert_eq!(r.status, 200);
    let etag = r.header("etag").unwrap().to_string();
    let v = r.json();
    let ids: Vec<&str> = v["services"]
        .as_array()
        .unwrap()
        .iter()
        .map(|s| s["id"].as_str().unwrap())
        .collect();
    assert!(!ids.is_empty());
    assert!(
        v["services"]
            .as_array()
            .unwrap()
            .iter()
            .all(|s| s["unit"] == "kela"),
        "{v}"
    );
    assert!(!ids.contains(&"joint-service"));
    let kela = ids[0].to_string();
    let put = |service: &str, body: Value, etag: &str| {
        let path = format!("/api/v1/admin/sites/{SITE}/services/{service}");
        let body = body.to_string();
        let etag = etag.to_string();
        let mut h = Http::with_token(app.addr, &token);
        async move {
            h.request("PUT", &path, Some(body.as_bytes()), &[("If-Match", &etag)])
                .await
                .unwrap()
        }
    };
    let change = json!({"name": {"fi": "Kela: kaikki etuudet", "sv": "FPA: alla förmåner", "en": "Kela: all benefits"},
                        "hours": {"mon": ["09:00-15:00"], "sat": []}, "last_ticket_minutes_before_close": 15});
    // Another unit's service, an agent, bad hours: refused, nothing changed.
    assert_eq!(
        put("joint-service", change.clone(), &etag).await.status,
        403
    );
    let (mut agent, _) = staff(&app, "agent1").await;
    assert_eq!(
        agent
            .get(&format!("/api/v1/admin/sites/{SITE}/services"))
            .await
            .unwrap()
            .status,
        403
    );
    let mut bad = change.clone();
    bad["hours"]["mon"] = json!(["9-15"]);
    let r = put(&kela, bad, &etag).await;
    assert_eq!(r.status, 422, "{}", String::from_utf8_lossy(&r.body));
    assert_eq!(
        put(
            &kela,
            json!({"name": {"fi": " "}, "hours": null, "last_ticket_minutes_before_close": 0}),
            &etag
        )
        .await
        .status,
        422
    );
    // Their own unit's service: in force, in the services' answers, kept as a version by them.
    let r = put(&kela, change.clone(), &etag).await;
    assert_eq!(r.status, 200, "{}", String::from_utf8_lossy(&r.body));
    assert_eq!(r.json()["version"], 2);
    let v = sup
        .get(&format!("/api/v1/admin/sites/{SITE}/services"))
        .await
        .unwrap()
        .json();
    let svc = v["services"]
        .as_array()
        .unwrap()
        .iter()
        .find(|s| s["id"] == kela.as_str())
        .unwrap()
        .clone();
    assert_eq!(svc["name"]["fi"], "Kela: kaikki etuudet");
    assert_eq!(svc["hours"]["mon"], json!(["09:00-15:00"]));
    assert_eq!(svc["last_ticket_minutes_before_close"], 15);
    assert!(
        svc["name"].get("ru").is_none(),
        "a language left out has no name of its own"
    );
    // The old version is refused now.
    assert_eq!(put(&kela, change.clone(), &etag).await.status, 409);
    let (mut admin, _) = staff(&app, "admin").await;
    let versions = admin
        .get("/api/v1/admin/config/versions")
        .await
        .unwrap()
        .json();
    assert_eq!(versions["versions"][0]["created_by"], "kelasup");
    // Back to the site's hours.
    let r = put(
        &kela,
        json!({"name": change["name"], "hours": null, "last_ticket_minutes_before_close": 0}),
        "\"v2\"",
    )
    .await;
    assert_eq!(r.status, 200);
    let v = sup
        .get(&format!("/api/v1/admin/sites/{SITE}/services"))
        .await
        .unwrap()
        .json();
    let svc = v["services"]
        .as_array()
        .unwrap()
        .iter()
        .find(|s| s["id"] == kela.as_str())
        .unwrap()
        .clone();
    assert!(svc["hours"].is_null());
    app.stop().await;
}
