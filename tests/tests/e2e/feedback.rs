//! Feedback after a visit through the real daemon: once per finished visit (201, then 409), refused
//! before the visit ended and for a no-show (409), a rating outside 1..5 or a long comment (422); the
//! unit's overview hears of it without the comment, the reports count it per service, unit and counter
//! (never per staff member), and the public open data has the day's totals and no comment.

use super::*;

async fn feedback(app: &TestApp, token: &str, body: Value) -> Response {
    app.http()
        .post(&format!("/api/v1/tickets/{token}/feedback"), &body)
        .await
        .unwrap()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn feedback_is_given_once_after_the_visit_and_counted_without_names() {
    let dir = TempDir::new("feedback");
    let app = spawn_app_in(DEMO, &dir.0).await;
    let mut k = kiosk(&app).await;
    let (mut agent, _) = staff(&app, "agent2").await;
    let (mut sup, sup_token) = staff(&app, "supervisor").await;
    let mut overview = Ws::connect(app.addr, Some(&sup_token)).await.unwrap();
    overview
        .subscribe(&format!("site:{SITE}"), None)
        .await
        .unwrap();
    assert_eq!(overview.next(T).await.unwrap()["type"], "snapshot");

    let served = take(&mut k, "joint-service").await;
    let absent = take(&mut k, "joint-service").await;
    let tok = served["token"].as_str().unwrap();
    let code = |r: &Response| r.json()["error"]["code"].as_str().unwrap_or("").to_string();

    // Not before the visit ended.
    let r = feedback(&app, tok, json!({"rating": 5})).await;
    assert_eq!((r.status, code(&r).as_str()), (409, "visit_not_finished"));
    verb(&mut agent, "c5", "open", json!({})).await;
    verb(&mut agent, "c5", "call-next", json!({})).await;
    verb(&mut agent, "c5", "start", json!({})).await;
    let r = feedback(&app, tok, json!({"rating": 5})).await;
    assert_eq!((r.status, code(&r).as_str()), (409, "visit_not_finished"));
    assert_eq!(
        verb(&mut agent, "c5", "finish", json!({})).await.status,
        200
    );

    // Bad input: a clear error, nothing kept.
    for bad in [
        json!({"rating": 0}),
        json!({"rating": 6}),
        json!({"rating": -1}),
        json!({"rating": 4, "comment": "x".repeat(501)}),
    ] {
        let r = feedback(&app, tok, bad.clone()).await;
        assert_eq!(r.status, 422, "{bad}: {}", String::from_utf8_lossy(&r.body));
        assert_eq!(code(&r), "invalid");
    }
    for bad in [
        json!({"comment": "hi"}),
        json!({"rating": 3, "staff": "anna"}),
    ] {
        assert_eq!(feedback(&app, tok, bad).await.status, 400);
    }
    assert_eq!(
        feedback(&app, &"0".repeat(43), json!({"rating": 3}))
            .await
            .status,
        404
    );

    // Once.
    let r = feedback(
        &app,
        tok,
        json!({"rating": 4, "comment": "  Hyvä palvelu, kiitos!  "}),
    )
    .await;
    assert_eq!(r.status, 201, "{}", String::from_utf8_lossy(&r.body));
    assert_eq!(r.json()["rating"], 4);
    let r = feedback(&app, tok, json!({"rating": 1})).await;
    assert_eq!((r.status, code(&r).as_str()), (409, "feedback_given"));

    // A no-show had no visit to rate.
    verb(&mut agent, "c5", "call-next", json!({})).await;
    verb(&mut agent, "c5", "no-show", json!({})).await;
    let r = feedback(
        &app,
        absent["token"].as_str().unwrap(),
        json!({"rating": 1}),
    )
    .await;
    assert_eq!((r.status, code(&r).as_str()), (409, "visit_not_finished"));

    // The unit's overview hears of it: service, counter and rating, no comment, no staff member.
    let m = until(&mut overview, |m| m["event"]["kind"] == "feedback_given").await;
    assert_eq!(m["event"]["rating"], 4);
    assert_eq!(m["event"]["service"], "joint-service");
    assert_eq!(m["event"]["counter"], "c5");
    assert!(m["event"].get("comment").is_none(), "{m}");
    assert!(m["event"].get("by").is_none(), "{m}");
    assert!(!m.to_string().contains("kiitos"), "{m}");

    // Reports: per service, unit and counter; not per staff member.
    let today = sup
        .get(&format!("/api/v1/sites/{SITE}/stats/today"))
        .await
        .unwrap()
        .json()["date"]
        .as_str()
        .unwrap()
        .to_string();
    let report = |group: &'static str| {
        format!("/api/v1/reports?site={SITE}&from={today}&to={today}&group={group}")
    };
    let rows = sup.get(&report("service")).await.unwrap().json()["rows"].clone();
    let row = rows
        .as_array()
        .unwrap()
        .iter()
        .find(|r| r["service"] == "joint-service")
        .expect("a row for the service")
        .clone();
    assert_eq!(
        (row["feedback"].clone(), row["feedback_mean"].clone()),
        (json!(1), json!(4.0))
    );
    let rows = sup.get(&report("unit")).await.unwrap().json()["rows"].clone();
    let unit = rows
        .as_array()
        .unwrap()
        .iter()
        .find(|r| r["unit"] == "yhteispalvelu")
        .expect("a row for the unit")
        .clone();
    assert_eq!(unit["feedback"], 1);
    let rows = sup.get(&report("counter")).await.unwrap().json()["rows"].clone();
    let c5 = rows
        .as_array()
        .unwrap()
        .iter()
        .find(|r| r["counter"] == "c5")
        .expect("a row for the counter")
        .clone();
    assert_eq!(
        (c5["feedback"].clone(), c5["feedback_mean"].clone()),
        (json!(1), json!(4.0))
    );
    let staff_report = sup.get(&report("staff")).await.unwrap();
    assert_eq!(staff_report.status, 200);
    for r in staff_report.json()["rows"].as_array().unwrap() {
        assert!(
            r["feedback"].is_null() && r["feedback_mean"].is_null(),
            "{r}"
        );
    }
    let csv = sup
        .get(&format!("{}&format=csv", report("counter")))
        .await
        .unwrap();
    assert!(String::from_utf8_lossy(&csv.body).contains("feedback,feedback_mean"));

    // The comment, for the unit's supervisors only: date, service, unit, rating, no counter, no time.
    let comments = sup
        .get(&format!(
            "/api/v1/reports/feedback?site={SITE}&from={today}&to={today}"
        ))
        .await
        .unwrap();
    assert_eq!(
        comments.status,
        200,
        "{}",
        String::from_utf8_lossy(&comments.body)
    );
    let list = comments.json()["comments"].clone();
    assert_eq!(
        list,
        json!([{"date": today, "service": "joint-service", "service_name": "Neuvonta ja asiointi",
                "unit": "yhteispalvelu", "rating": 4, "comment": "Hyvä palvelu, kiitos!"}])
    );
    let (mut kela, _) = staff(&app, "agent1").await;
    let refused = kela
        .get(&format!("/api/v1/reports/feedback?site={SITE}"))
        .await
        .unwrap();
    assert_eq!(refused.status, 403, "an agent reads no comments");

    // Open data: the day's totals, no comment.
    let r = app
        .http()
        .get(&format!("/api/v1/public/sites/{SITE}/waits"))
        .await
        .unwrap();
    assert_eq!(r.status, 200);
    assert_eq!(r.json()["feedback"], json!({"count": 1, "mean": 4.0}));
    let text = String::from_utf8_lossy(&r.body).to_lowercase();
    assert!(!text.contains("kiitos") && !text.contains("hyvä"), "{text}");
    app.stop().await;
}

/// A site with `feedback_by_staff = true` counts feedback per staff member too: the one who finished the
/// visit.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_site_may_count_feedback_per_staff_member_when_its_config_says_so() {
    let dir = TempDir::new("feedback-staff");
    let config = DEMO.replacen(
        "always_open = true",
        "always_open = true\nfeedback_by_staff = true",
        1,
    );
    assert_ne!(config, DEMO);
    let app = spawn_app_in(&config, &dir.0).await;
    let mut k = kiosk(&app).await;
    let (mut agent, _) = staff(&app, "agent2").await;
    let (mut sup, _) = staff(&app, "supervisor").await;
    let t = take(&mut k, "joint-service").await;
    verb(&mut agent, "c5", "open", json!({})).await;
    verb(&mut agent, "c5", "call-next", json!({})).await;
    verb(&mut agent, "c5", "finish", json!({})).await;
    let r = feedback(&app, t["token"].as_str().unwrap(), json!({"rating": 2})).await;
    assert_eq!(r.status, 201);
    let today = sup
        .get(&format!("/api/v1/sites/{SITE}/stats/today"))
        .await
        .unwrap()
        .json()["date"]
        .as_str()
        .unwrap()
        .to_string();
    let rows = sup
        .get(&format!(
            "/api/v1/reports?site={SITE}&from={today}&to={today}&group=staff"
        ))
        .await
        .unwrap()
        .json()["rows"]
        .clone();
    let row = rows
        .as_array()
        .unwrap()
        .iter()
        .find(|r| r["staff"] == "agent2")
        .expect("a row for agent2")
        .clone();
    assert_eq!(
        (row["feedback"].clone(), row["feedback_mean"].clone()),
        (json!(1), json!(2.0))
    );
    app.stop().await;
}
