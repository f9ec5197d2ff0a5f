//! Staff sessions: signing out everywhere ends every session of the user (other browsers' requests are
//! refused, their WebSockets lose the staff topics); wrong passwords for one username slow that username's
//! attempts down for a short while only.

use std::time::Duration;

use super::*;

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn signing_out_everywhere_ends_every_session_of_the_user_and_no_one_elses() {
    let dir = TempDir::new("sessions-everywhere");
    let app = spawn_app_in(DEMO, &dir.0).await;
    let (mut here, _) = staff(&app, "agent2").await;
    let (mut elsewhere, elsewhere_token) = staff(&app, "agent2").await;
    let (mut other_user, _) = staff(&app, "agent1").await;
    let mut ws = Ws::connect(app.addr, Some(&elsewhere_token)).await.unwrap();
    ws.subscribe("counter:c5", None).await.unwrap();
    assert_eq!(ws.next(T).await.unwrap()["type"], "snapshot");

    let r = here
        .post("/api/v1/auth/logout-everywhere", &json!({}))
        .await
        .unwrap();
    assert_eq!(r.status, 200, "{}", String::from_utf8_lossy(&r.body));
    assert_eq!(r.json()["ended"], 2);
    assert!(r.header("set-cookie").unwrap().contains("Max-Age=0"));
    assert_eq!(here.get("/api/v1/auth/me").await.unwrap().status, 401);
    assert_eq!(elsewhere.get("/api/v1/auth/me").await.unwrap().status, 401);
    assert_eq!(other_user.get("/api/v1/auth/me").await.unwrap().status, 200);
    // The other browser's socket loses its staff topic.
    let dropped = until(&mut ws, |m| m["type"] == "error").await;
    assert_eq!(dropped["topic"], "counter:c5");
    // Signing out everywhere needs a session.
    assert_eq!(
        Http::new(app.addr)
            .post("/api/v1/auth/logout-everywhere", &json!({}))
            .await
            .unwrap()
            .status,
        401
    );
    app.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn wrong_passwords_slow_that_username_down_briefly_and_the_right_one_then_works() {
    let dir = TempDir::new("sessions-throttle");
    let app = spawn_app_in(DEMO, &dir.0).await;
    for _ in 0..5 {
        assert!(login(app.addr, "agent1", "not the password").await.is_err());
    }
    let r = Http::new(app.addr)
        .post(
            "/api/v1/auth/login",
            &json!({"username": "agent1", "password": "demo"}),
        )
        .await
        .unwrap();
    assert_eq!(r.status, 429, "even the right password waits a moment");
    assert!(
        r.json()["error"]["message"]
            .as_str()
            .unwrap()
            .contains("try again in")
    );
    // Another username is not slowed down.
    assert!(login(app.addr, "agent2", "demo").await.is_ok());
    tokio::time::sleep(Duration::from_millis(1100)).await;
    assert!(
        login(app.addr, "agent1", "demo").await.is_ok(),
        "a second later the owner signs in"
    );
    app.stop().await;
}
