//! Web Push end to end: the real daemon with `[notify.push]`, a push service started here (a real HTTP
//! server on 127.0.0.1 that records what it gets and answers as scripted: 201, 429, 410), and the browser's
//! side of a subscription played here: its own P-256 key pair and authentication secret. What the daemon
//! sends is decrypted here as RFC 8291 says (written again from the RFC, checked against its example), and
//! its VAPID token (RFC 8292) is verified with the public key the API hands the phone page.

use std::collections::VecDeque;
use std::path::Path;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use aes_gcm::aead::{Aead, KeyInit};
use axum::extract::State;
use axum::http::{HeaderMap, StatusCode};
use axum::response::IntoResponse;
use base64ct::{Base64UrlUnpadded, Encoding};
use hkdf::Hkdf;
use p256::ecdsa::signature::Verifier;
use p256::elliptic_curve::sec1::ToEncodedPoint;
use serde_json::{Value, json};
use sha2::Sha256;
use vuoro_tests::*;

use super::{SITE, kiosk_device, staff, verb};

const SUBJECT: &str = "mailto:ops@example.fi";

/// The browser's side of a subscription: its key pair and authentication secret.
struct Browser {
    secret: p256::SecretKey,
    auth: [u8; 16],
}

impl Browser {
    fn new() -> Browser {
        let secret = loop {
            let mut b = [0u8; 32];
            getrandom::fill(&mut b).unwrap();
            if let Ok(s) = p256::SecretKey::from_slice(&b) {
                break s;
            }
        };
        let mut auth = [0u8; 16];
        getrandom::fill(&mut auth).unwrap();
        Browser { secret, auth }
    }

    fn public(&self) -> Vec<u8> {
        self.secret
            .public_key()
            .to_encoded_point(false)
            .as_bytes()
            .to_vec()
    }

    /// `PushSubscription.toJSON()` for `endpoint`.
    fn subscription(&self, endpoint: &str) -> Value {
        json!({
            "endpoint": endpoint,
            "expirationTime": null,
            "keys": {
                "p256dh": Base64UrlUnpadded::encode_string(&self.public()),
                "auth": Base64UrlUnpadded::encode_string(&self.auth),
            }
        })
    }

    fn decrypt(&self, body: &[u8]) -> Result<Vec<u8>, String> {
        decrypt(body, &self.secret, &self.auth)
    }
}

/// RFC 8291 (with RFC 8188's `aes128gcm` header): the plaintext of a push message for the browser whose
/// private key is `ua_secret` and authentication secret `auth`.
fn decrypt(body: &[u8], ua_secret: &p256::SecretKey, auth: &[u8]) -> Result<Vec<u8>, String> {
    if body.len() < 21 {
        return Err("shorter than the aes128gcm header".into());
    }
    let salt = &body[..16];
    let rs = u32::from_be_bytes(body[16..20].try_into().unwrap()) as usize;
    let idlen = body[20] as usize;
    if idlen != 65 || body.len() < 21 + idlen {
        return Err(format!(
            "keyid of {idlen} bytes, not the server's 65-byte public key"
        ));
    }
    let as_public = p256::PublicKey::from_sec1_bytes(&body[21..21 + idlen])
        .map_err(|_| "the keyid is not a P-256 point")?;
    let records = &body[21 + idlen..];
    // One record: the whole message fits in rs (RFC 8291 section 4: a push message is one record).
    if records.len() > rs || records.len() < 17 {
        return Err(format!("{} bytes of records with rs {rs}", records.len()));
    }
    // Section 3.3/3.4: IKM = HKDF(auth, ecdh_secret, "WebPush: info" 0x00 ua_public as_public, 32).
    let ecdh = p256::ecdh::diffie_hellman(ua_secret.to_nonzero_scalar(), as_public.as_affine());
    let mut key_info = b"WebPush: info\0".to_vec();
    key_info.extend_from_slice(ua_secret.public_key().to_encoded_point(false).as_bytes());
    key_info.extend_from_slice(as_public.to_encoded_point(false).as_bytes());
    let mut ikm = [0u8; 32];
    Hkdf::<Sha256>::new(Some(auth), ecdh.raw_secret_bytes().as_slice())
        .expand(&key_info, &mut ikm)
        .unwrap();
    // RFC 8188 section 2.2/2.3: CEK and NONCE from the salt and IKM.
    let hk = Hkdf::<Sha256>::new(Some(salt), &ikm);
    let mut cek = [0u8; 16];
    hk.expand(b"Content-Encoding: aes128gcm\0", &mut cek)
        .unwrap();
    let mut nonce = [0u8; 12];
    hk.expand(b"Content-Encoding: nonce\0", &mut nonce).unwrap();
    // The first record's sequence number is 0: the nonce as derived.
    let padded = aes_gcm::Aes128Gcm::new(&cek.into())
        .decrypt(&nonce.into(), records)
        .map_err(|_| "the record does not decrypt (wrong keys or a damaged message)")?;
    // The last record ends with the delimiter 0x02, then zero padding.
    let end = padded
        .iter()
        .rposition(|b| *b != 0)
        .ok_or("no padding delimiter")?;
    if padded[end] != 2 {
        return Err(format!("padding delimiter {:#x}, not 0x02", padded[end]));
    }
    Ok(padded[..end].to_vec())
}

fn b64(s: &str) -> Vec<u8> {
    Base64UrlUnpadded::decode_vec(s).unwrap()
}

/// The decryption above, checked against RFC 8291's example (appendix A).
#[test]
fn the_test_decrypts_rfc_8291s_example() {
    let ua_secret =
        p256::SecretKey::from_slice(&b64("q1dXpw3UpT5VOmu_cf_v6ih07Aems3njxI-JWgLcM94")).unwrap();
    assert_eq!(
        ua_secret.public_key().to_encoded_point(false).as_bytes(),
        b64(
            "BCVxsr7N_eNgVRqvHtD0zTZsEc6-VV-JvLexhqUzORcxaOzi6-AYWXvTBHm4bjyPjs7Vd8pZGH6SRpkNtoIAiw4"
        )
    );
    let auth = b64("BTBZMqHH6r4Tts7J_aSIgg");
    let message = b64(
        "DGv6ra1nlYgDCS1FRnbzlwAAEABBBP4z9KsN6nGRTbVYI_c7VJSPQTBtkgcy27mlmlMoZIIgDll6e3vCYLocInmYWAmS6TlzAC8wEqKK6PBru3jl7A_yl95bQpu6cVPTpK4Mqgkf1CXztLVBSt2Ks3oZwbuwXPXLWyouBWLVWGNWQexSgSxsj_Qulcy4a-fN",
    );
    assert_eq!(
        decrypt(&message, &ua_secret, &auth).unwrap(),
        b"When I grow up, I want to be a watermelon"
    );
    let mut wrong = auth.clone();
    wrong[0] ^= 1;
    assert!(decrypt(&message, &ua_secret, &wrong).is_err());
}

/// Verifies a VAPID `Authorization` header (RFC 8292) with `push_key` (the key the API gave the page)
/// and returns the JWT's claims.
fn verify_vapid(header: &str, push_key: &str) -> Result<Value, String> {
    let rest = header
        .strip_prefix("vapid ")
        .ok_or_else(|| format!("not a vapid scheme: {header}"))?;
    let mut t = None;
    let mut k = None;
    for part in rest.split(',') {
        match part.trim().split_once('=') {
            Some(("t", v)) => t = Some(v),
            Some(("k", v)) => k = Some(v),
            _ => return Err(format!("unknown parameter {part}")),
        }
    }
    let (t, k) = (t.ok_or("no t=")?, k.ok_or("no k=")?);
    if k != push_key {
        return Err(format!("k={k} is not the key the page subscribed with"));
    }
    let vk =
        p256::ecdsa::VerifyingKey::from_sec1_bytes(&b64(push_key)).map_err(|e| e.to_string())?;
    let (input, sig) = t.rsplit_once('.').ok_or("not a JWT")?;
    let sig = p256::ecdsa::Signature::from_slice(&b64(sig)).map_err(|e| e.to_string())?;
    vk.verify(input.as_bytes(), &sig)
        .map_err(|_| "the JWT's ES256 signature does not verify")?;
    let (head, claims) = input.split_once('.').ok_or("not a JWT")?;
    let head: Value = serde_json::from_slice(&b64(head)).map_err(|e| e.to_string())?;
    if head["alg"] != "ES256" {
        return Err(format!("JWT header {head}"));
    }
    serde_json::from_slice(&b64(claims)).map_err(|e| e.to_string())
}

/// How the push service answers.
#[derive(Clone, Debug)]
enum Reply {
    Created,
    /// This status, with `Retry-After` seconds when given.
    Status(u16, Option<u64>),
}

#[derive(Clone, Debug)]
struct Hit {
    at: Instant,
    path: String,
    headers: Vec<(String, String)>,
    body: Vec<u8>,
    status: u16,
}

impl Hit {
    fn header(&self, name: &str) -> Option<&str> {
        self.headers
            .iter()
            .find(|(k, _)| k == name)
            .map(|(_, v)| v.as_str())
    }
}

#[derive(Default)]
struct PsState {
    script: VecDeque<Reply>,
    otherwise: Option<Reply>,
    hits: Vec<Hit>,
}

/// The push service: `POST /push/{id}`.
#[derive(Clone, Default)]
struct PushService(Arc<Mutex<PsState>>);

impl PushService {
    async fn start(otherwise: Reply, script: Vec<Reply>) -> (PushService, String) {
        let ps = PushService::default();
        {
            let mut s = ps.0.lock().unwrap();
            s.otherwise = Some(otherwise);
            s.script = script.into();
        }
        let app = axum::Router::new()
            .route("/push/{id}", axum::routing::post(receive))
            .with_state(ps.clone());
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
        let base = format!("http://{}", listener.local_addr().unwrap());
        tokio::spawn(async move { axum::serve(listener, app).await.unwrap() });
        (ps, base)
    }

    fn hits(&self) -> Vec<Hit> {
        self.0.lock().unwrap().hits.clone()
    }

    fn accepted(&self) -> Vec<Hit> {
        self.hits()
            .into_iter()
            .filter(|h| h.status == 201)
            .collect()
    }

    async fn wait_hits(&self, n: usize, accepted: bool, within: Duration) -> Vec<Hit> {
        let deadline = Instant::now() + within;
        loop {
            let got = if accepted {
                self.accepted()
            } else {
                self.hits()
            };
            if got.len() >= n {
                return got;
            }
            assert!(
                Instant::now() < deadline,
                "{n} pushes did not come in {within:?}; the push service saw {:?}",
                self.hits()
                    .iter()
                    .map(|h| (&h.path, h.status))
                    .collect::<Vec<_>>()
            );
            tokio::time::sleep(Duration::from_millis(50)).await;
        }
    }
}

async fn receive(
    State(ps): State<PushService>,
    axum::extract::Path(id): axum::extract::Path<String>,
    headers: HeaderMap,
    body: axum::body::Bytes,
) -> axum::response::Response {
    let reply = {
        let mut s = ps.0.lock().unwrap();
        let reply = s
            .script
            .pop_front()
            .or_else(|| s.otherwise.clone())
            .unwrap();
        s.hits.push(Hit {
            at: Instant::now(),
            path: id,
            headers: headers
                .iter()
                .map(|(k, v)| (k.as_str().to_string(), v.to_str().unwrap_or("").to_string()))
                .collect(),
            body: body.to_vec(),
            status: match reply {
                Reply::Created => 201,
                Reply::Status(code, _) => code,
            },
        });
        reply
    };
    match reply {
        Reply::Created => StatusCode::CREATED.into_response(),
        Reply::Status(code, retry_after) => {
            let mut r = (StatusCode::from_u16(code).unwrap(), "no").into_response();
            if let Some(s) = retry_after {
                r.headers_mut()
                    .insert("retry-after", s.to_string().parse().unwrap());
            }
            r
        }
    }
}

/// The demo hall with push notices only: near at one person ahead (or fewer), quick retries.
fn config() -> String {
    format!(
        "{DEMO}\n[notify]\nnear_people = 1\nnear_minutes = 0\nretry_first_seconds = 0.2\nmax_attempts = 8\n\
         [notify.push]\nsubject = \"{SUBJECT}\"\nttl_seconds = 120\nper_second = 50\ntimeout_seconds = 5\n"
    )
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

fn contacts_stored(data: &Path) -> i64 {
    let conn = rusqlite::Connection::open(data.join("vuoro.sqlite")).unwrap();
    conn.query_row("SELECT COUNT(*) FROM contacts", [], |r| r.get(0))
        .unwrap()
}

/// The outbox's rows (kind, state, reason), oldest first.
fn outbox(data: &Path) -> Vec<(String, String, Option<String>)> {
    let conn = rusqlite::Connection::open(data.join("vuoro.sqlite")).unwrap();
    let mut stmt = conn
        .prepare("SELECT kind, state, reason FROM notices ORDER BY id")
        .unwrap();
    stmt.query_map([], |r| Ok((r.get(0)?, r.get(1)?, r.get(2)?)))
        .unwrap()
        .map(|r| r.unwrap())
        .collect()
}

/// A received push: its headers as RFC 8030/8292 want them, its VAPID token verified with `push_key`
/// for the push service at `origin`, and its plaintext as JSON.
fn open_push(hit: &Hit, browser: &Browser, push_key: &str, origin: &str) -> Value {
    assert_eq!(hit.header("content-encoding"), Some("aes128gcm"));
    assert_eq!(hit.header("ttl"), Some("120"));
    assert_eq!(hit.header("urgency"), Some("high"));
    let claims = verify_vapid(hit.header("authorization").unwrap_or(""), push_key)
        .unwrap_or_else(|e| panic!("VAPID: {e}"));
    assert_eq!(claims["aud"], origin, "{claims}");
    assert_eq!(claims["sub"], SUBJECT, "{claims}");
    let exp = claims["exp"].as_i64().unwrap() - chrono::Utc::now().timestamp();
    assert!(exp > 60 && exp <= 24 * 3600, "exp is {exp} s away");
    let plain = browser
        .decrypt(&hit.body)
        .unwrap_or_else(|e| panic!("RFC 8291: {e}"));
    serde_json::from_slice(&plain).unwrap()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn push_notices_reach_the_browser_encrypted_and_signed() {
    // The push service asks the first request to wait a second (429), then takes everything.
    let (ps, base) = PushService::start(Reply::Created, vec![Reply::Status(429, Some(1))]).await;
    let dir = TempDir::new("notices-push");
    let app = spawn_app_in(&config(), &dir.0).await;
    let mut k = kiosk_device(&app, "kiosk-3").await;
    let (mut agent, _) = staff(&app, "agent2").await;
    let first = take(&mut k, "fi").await;
    let second = take(&mut k, "fi").await;
    let third = take(&mut k, "fi").await;
    let token = third["token"].as_str().unwrap();
    let number = third["number"].as_str().unwrap();

    // The phone page learns what is offered and the key to subscribe with.
    let mut phone = app.http();
    let r = phone
        .get(&format!("/api/v1/tickets/{token}/contact"))
        .await
        .unwrap();
    assert_eq!(r.status, 200);
    let listing = r.json();
    assert_eq!(listing["offered"], json!(["push"]));
    assert_eq!(listing["contacts"], json!([]));
    let push_key = listing["push_key"].as_str().unwrap().to_string();
    let raw = b64(&push_key);
    assert!(raw.len() == 65 && raw[0] == 4, "{push_key}");
    assert!(p256::PublicKey::from_sec1_bytes(&raw).is_ok());
    // Kept in the database (so a backup holds it), 32 bytes.
    assert_eq!(secret_len(&dir.0, "push.key"), Some(32));

    let browser = Browser::new();
    let endpoint = format!("{base}/push/third");
    let r = put_contact(
        &mut phone,
        token,
        json!({"push": browser.subscription(&endpoint)}),
    )
    .await;
    assert_eq!(r.status, 200, "{}", String::from_utf8_lossy(&r.body));
    assert_eq!(
        r.json()["contacts"],
        json!([{"channel": "push", "to": "this browser"}])
    );

    // The counter opens: two ahead, not near yet.
    assert_eq!(verb(&mut agent, "c5", "open", json!({})).await.status, 200);
    tokio::time::sleep(Duration::from_millis(500)).await;
    assert!(ps.hits().is_empty(), "nothing is near yet");
    // The first is called: one ahead, near. The push service says 429, come back in a second.
    let called = verb(&mut agent, "c5", "call-next", json!({})).await;
    assert_eq!(called.json()["ticket"]["number"], first["number"]);
    let hits = ps.wait_hits(2, false, Duration::from_secs(15)).await;
    assert_eq!((hits[0].status, hits[1].status), (429, 201));
    assert!(
        hits[1].at - hits[0].at >= Duration::from_millis(900),
        "Retry-After was not honoured: {:?}",
        hits[1].at - hits[0].at
    );
    assert_eq!(hits[1].path, "third");
    let near = open_push(&hits[1], &browser, &push_key, &base);
    assert_eq!(near["kind"], "near", "{near}");
    assert_eq!(near["number"], number);
    assert_eq!(near["lang"], "fi");
    assert_eq!(near["title"], format!("Vuoronumero {number}"));
    let body = near["body"].as_str().unwrap();
    assert!(
        body.contains(number) && body.contains("vuorosi on pian"),
        "{body}"
    );
    // Only these five fields: nothing more personal.
    assert_eq!(near.as_object().unwrap().len(), 5, "{near}");
    // Another browser's keys do not open it.
    assert!(Browser::new().decrypt(&hits[1].body).is_err());

    // Second, then third is called.
    verb(&mut agent, "c5", "finish", json!({})).await;
    let called = verb(&mut agent, "c5", "call-next", json!({})).await;
    assert_eq!(called.json()["ticket"]["number"], second["number"]);
    verb(&mut agent, "c5", "finish", json!({})).await;
    let called = verb(&mut agent, "c5", "call-next", json!({})).await;
    assert_eq!(called.json()["ticket"]["number"], number);
    let accepted = ps.wait_hits(2, true, Duration::from_secs(15)).await;
    let call = open_push(&accepted[1], &browser, &push_key, &base);
    assert_eq!(call["kind"], "called", "{call}");
    let body = call["body"].as_str().unwrap();
    assert!(
        body.contains(number) && body.contains("Palvelupiste 5"),
        "{body}"
    );
    // Each once.
    tokio::time::sleep(Duration::from_millis(1000)).await;
    assert_eq!(ps.accepted().len(), 2);
    assert_eq!(ps.hits().len(), 3);
    // The ticket ends: its subscription is forgotten.
    verb(&mut agent, "c5", "finish", json!({})).await;
    let deadline = Instant::now() + Duration::from_secs(5);
    while contacts_stored(&dir.0) > 0 {
        assert!(
            Instant::now() < deadline,
            "the subscription outlived its ticket"
        );
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    let m = String::from_utf8_lossy(&app.http().get("/metrics").await.unwrap().body).to_string();
    assert!(
        m.contains("vuoro_notices_month{channel=\"push\",state=\"sent\"} 2"),
        "{m}"
    );
    app.stop().await;

    // The key pair is the one made at first start: the same after a restart.
    let app = spawn_app_in(&config(), &dir.0).await;
    let mut k = kiosk_device(&app, "kiosk-3").await;
    let t = take(&mut k, "fi").await;
    let mut phone = app.http();
    let r = phone
        .get(&format!(
            "/api/v1/tickets/{}/contact",
            t["token"].as_str().unwrap()
        ))
        .await
        .unwrap();
    assert_eq!(r.json()["push_key"], push_key.as_str());
    let token = t["token"].as_str().unwrap();
    let r = put_contact(
        &mut phone,
        token,
        json!({"push": browser.subscription(&endpoint)}),
    )
    .await;
    assert_eq!(r.status, 200);
    assert_eq!(contacts_stored(&dir.0), 1);
    app.stop().await;

    // Push switched off (SMS still on): its subscriptions are forgotten at start.
    let sms_only = format!(
        "{DEMO}\n[notify]\n[notify.sms]\nurl = \"{base}/sms\"\nbody = '{{\"to\":\"{{to}}\",\"text\":\"{{text}}\"}}'\n"
    );
    let app = spawn_app_in(&sms_only, &dir.0).await;
    assert_eq!(contacts_stored(&dir.0), 0);
    let r = app
        .http()
        .get(&format!("/api/v1/tickets/{token}/contact"))
        .await
        .unwrap();
    assert_eq!(r.json(), json!({"offered": ["sms"], "contacts": []}));
    app.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_gone_subscription_ends_and_bad_ones_are_refused() {
    // This push service says every subscription is gone.
    let (ps, base) = PushService::start(Reply::Status(410, None), vec![]).await;
    let dir = TempDir::new("notices-push-gone");
    let app = spawn_app_in(&config(), &dir.0).await;
    let mut k = kiosk_device(&app, "kiosk-3").await;
    let (mut agent, _) = staff(&app, "agent2").await;
    let t = take(&mut k, "en").await;
    let token = t["token"].as_str().unwrap();
    let mut phone = app.http();
    let browser = Browser::new();
    let good = browser.subscription(&format!("{base}/push/gone"));

    // Bad subscriptions: refused with a message, nothing stored.
    let keys = good["keys"].clone();
    let mut off_curve = browser.public();
    off_curve[64] ^= 1;
    let mut compressed = browser.public()[..33].to_vec();
    compressed[0] = 2;
    let with_key = |p256dh: &[u8]| json!({"endpoint": format!("{base}/push/x"), "keys": {"p256dh": Base64UrlUnpadded::encode_string(p256dh), "auth": keys["auth"].clone()}});
    for (push, says) in [
        (
            json!({"endpoint": "http://push.example.net/x", "keys": keys.clone()}),
            "https://",
        ),
        (
            json!({"endpoint": "ftp://push.example.net/x", "keys": keys.clone()}),
            "https://",
        ),
        (json!({"endpoint": format!("{base}/push/x")}), "keys"),
        (with_key(&off_curve), "p256dh"),
        (with_key(&compressed), "p256dh"),
        (with_key(&[4u8; 65]), "p256dh"),
        (
            json!({"endpoint": format!("{base}/push/x"), "keys": {"p256dh": keys["p256dh"].clone(), "auth": Base64UrlUnpadded::encode_string(&[1u8; 15])}}),
            "auth",
        ),
        (json!("https://push.example.net/x"), "subscription"),
    ] {
        let r = put_contact(&mut phone, token, json!({ "push": push })).await;
        assert_eq!(
            r.status,
            422,
            "{push}: {}",
            String::from_utf8_lossy(&r.body)
        );
        let message = r.json()["error"]["message"]
            .as_str()
            .unwrap_or("")
            .to_string();
        assert!(message.contains(says), "{push}: {message}");
    }
    assert_eq!(contacts_stored(&dir.0), 0);

    let r = put_contact(&mut phone, token, json!({ "push": good })).await;
    assert_eq!(r.status, 200, "{}", String::from_utf8_lossy(&r.body));
    assert_eq!(contacts_stored(&dir.0), 1);
    // The counter opens: nobody ahead, near. The push service answers 410: the subscription ended.
    verb(&mut agent, "c5", "open", json!({})).await;
    ps.wait_hits(1, false, Duration::from_secs(15)).await;
    let deadline = Instant::now() + Duration::from_secs(5);
    while contacts_stored(&dir.0) > 0 {
        assert!(Instant::now() < deadline, "the gone subscription was kept");
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    let r = phone
        .get(&format!("/api/v1/tickets/{token}/contact"))
        .await
        .unwrap();
    assert_eq!(r.json()["contacts"], json!([]));
    // Called: nothing more is sent to it.
    let called = verb(&mut agent, "c5", "call-next", json!({})).await;
    assert_eq!(called.json()["ticket"]["number"], t["number"]);
    tokio::time::sleep(Duration::from_millis(1500)).await;
    assert_eq!(ps.hits().len(), 1, "sent again after a 410");
    let rows = outbox(&dir.0);
    assert_eq!(rows.len(), 1, "{rows:?}");
    assert_eq!((rows[0].0.as_str(), rows[0].1.as_str()), ("near", "failed"));
    assert!(
        rows[0]
            .2
            .as_deref()
            .unwrap_or("")
            .contains("subscription ended"),
        "{rows:?}"
    );
    app.stop().await;

    // Without [notify.push]: push is not offered and there is no key.
    let dir = TempDir::new("notices-no-push");
    let sms_only = format!(
        "{DEMO}\n[notify]\n[notify.sms]\nurl = \"{base}/sms\"\nbody = '{{\"to\":\"{{to}}\",\"text\":\"{{text}}\"}}'\n"
    );
    let app = spawn_app_in(&sms_only, &dir.0).await;
    let mut k = kiosk_device(&app, "kiosk-3").await;
    let t = take(&mut k, "fi").await;
    let token = t["token"].as_str().unwrap();
    let mut phone = app.http();
    let r = phone
        .get(&format!("/api/v1/tickets/{token}/contact"))
        .await
        .unwrap();
    assert_eq!(r.json(), json!({"offered": ["sms"], "contacts": []}));
    let r = put_contact(&mut phone, token, json!({ "push": good })).await;
    assert_eq!(r.status, 422);
    assert_eq!(contacts_stored(&dir.0), 0);
    assert_eq!(secret_len(&dir.0, "push.key"), None);
    app.stop().await;
}

/// The length of the deployment's secret `name` in the data folder's database, if there is one.
fn secret_len(data: &std::path::Path, name: &str) -> Option<usize> {
    let conn = rusqlite::Connection::open(data.join("vuoro.sqlite")).unwrap();
    conn.query_row(
        "SELECT length(value) FROM secrets WHERE name = ?1",
        [name],
        |r| r.get::<_, i64>(0),
    )
    .ok()
    .map(|n| n as usize)
}
