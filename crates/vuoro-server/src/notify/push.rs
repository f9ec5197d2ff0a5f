//! Web Push to the phone page: a browser's push subscription as a ticket's contact, the deployment's
//! VAPID key, and the provider that sends a notice to a push service.
//!
//! - The subscription is what the page's `PushSubscription.toJSON()` gives: an `https://` endpoint (plain
//!   `http://` only on a loopback address) and the browser's keys (`p256dh`, a P-256 point, and `auth`,
//!   16 bytes). It is kept as the contact's address (canonical JSON) and never logged.
//! - The notice goes out as a small JSON document (`payload`), encrypted for that browser alone with the
//!   `aes128gcm` content coding (RFC 8291, by the `web-push-native` crate on RustCrypto), and POSTed to the
//!   endpoint (RFC 8030) with `TTL`, `Urgency: high` and a VAPID `Authorization` (RFC 8292): a JWT (ES256,
//!   signed with p256's ECDSA) whose `aud` is the endpoint's origin, `exp` 12 hours on and `sub`
//!   `[notify.push] subject`.
//! - The VAPID key pair is made at first start and kept as the secret `push.key` (the private scalar, 32
//!   bytes) in the database, so that a backup holds it; its public half is what the page subscribes with (`push_key` in
//!   `GET /api/v1/tickets/{token}/contact`). A new key makes every subscription useless, so a damaged
//!   file stops the daemon instead of being replaced.

use std::time::Duration;

use base64ct::{Base64UrlUnpadded, Encoding};
use p256::ecdsa::signature::Signer;
use p256::elliptic_curve::sec1::ToEncodedPoint;
use serde_json::{Value, json};
use vuoro_store::Notice;

use super::send::{Provider, SendError, retry_after, short_error};
use super::text;
use crate::deployment::{PushSettings, is_loopback_url};

/// The key file in the data folder.
pub const KEY_NAME: &str = "push.key";
/// How long a VAPID token is valid (RFC 8292 allows at most 24 hours).
const TOKEN_VALID: chrono::Duration = chrono::Duration::hours(12);
/// The longest endpoint URL accepted.
const MAX_ENDPOINT: usize = 2048;

/// The deployment's VAPID key pair. No `Debug`: the private key is never printed.
pub struct Vapid {
    key: p256::ecdsa::SigningKey,
    public: String,
}

impl Vapid {
    /// The key in the database, made (and stored there) at first start.
    pub fn load_or_make(db: &dyn vuoro_store::Database) -> anyhow::Result<Vapid> {
        let bytes = super::load_or_make_secret(db, KEY_NAME, "a P-256 private key", |b| {
            p256::SecretKey::from_slice(b).is_ok()
        })?;
        let secret = p256::SecretKey::from_slice(&bytes)
            .map_err(|_| anyhow::anyhow!("{KEY_NAME} is not a P-256 private key"))?;
        Ok(Vapid::from_secret(&secret))
    }

    fn from_secret(secret: &p256::SecretKey) -> Vapid {
        let public = Base64UrlUnpadded::encode_string(
            secret.public_key().to_encoded_point(false).as_bytes(),
        );
        Vapid {
            key: p256::ecdsa::SigningKey::from(secret),
            public,
        }
    }

    /// The public key as the page subscribes with it: the uncompressed point (65 bytes), base64url
    /// without padding.
    pub fn public_key(&self) -> &str {
        &self.public
    }

    /// The `Authorization` header for a push service at `aud` (an origin): `vapid t=<JWT>, k=<key>`.
    pub fn authorization(
        &self,
        aud: &str,
        subject: &str,
        now: chrono::DateTime<chrono::Utc>,
    ) -> String {
        let header = Base64UrlUnpadded::encode_string(br#"{"typ":"JWT","alg":"ES256"}"#);
        let claims = json!({
            "aud": aud,
            "exp": (now + TOKEN_VALID).timestamp(),
            "sub": subject,
        });
        let claims = Base64UrlUnpadded::encode_string(claims.to_string().as_bytes());
        let input = format!("{header}.{claims}");
        let sig: p256::ecdsa::Signature = self.key.sign(input.as_bytes());
        let sig = Base64UrlUnpadded::encode_string(&sig.to_bytes());
        format!("vapid t={input}.{sig}, k={}", self.public)
    }
}

/// A browser's push subscription, checked.
#[derive(Clone, PartialEq, Eq)]
pub struct Subscription {
    pub endpoint: String,
    /// The browser's public key: an uncompressed P-256 point.
    pub p256dh: Vec<u8>,
    /// The browser's authentication secret.
    pub auth: [u8; 16],
}

/// Base64url, padded or not (browsers leave the padding out).
fn b64url(s: &str) -> Option<Vec<u8>> {
    Base64UrlUnpadded::decode_vec(s.trim_end_matches('=')).ok()
}

impl Subscription {
    /// `PushSubscription.toJSON()` as the page sends it, or what is wrong with it (for the customer's
    /// page, no secret in it).
    pub fn from_json(v: &Value) -> Result<Subscription, String> {
        let obj = v.as_object().ok_or(
            "\"push\" must be the browser's push subscription (PushSubscription.toJSON()): an object with \"endpoint\" and \"keys\".",
        )?;
        let endpoint = obj
            .get("endpoint")
            .and_then(Value::as_str)
            .ok_or("\"push.endpoint\" is missing: it must be the push service's https:// URL.")?;
        if let Some(problem) = endpoint_problem(endpoint) {
            return Err(format!("\"push.endpoint\" {problem}."));
        }
        match obj.get("expirationTime") {
            None | Some(Value::Null) => {}
            Some(Value::Number(_)) => {}
            Some(_) => return Err("\"push.expirationTime\" must be null or a number.".into()),
        }
        let keys = obj
            .get("keys")
            .and_then(Value::as_object)
            .ok_or("\"push.keys\" is missing: it must hold \"p256dh\" and \"auth\".")?;
        let p256dh = keys
            .get("p256dh")
            .and_then(Value::as_str)
            .and_then(b64url)
            .filter(|b| b.len() == 65 && b[0] == 4 && p256::PublicKey::from_sec1_bytes(b).is_ok())
            .ok_or(
                "\"push.keys.p256dh\" must be the browser's P-256 public key: an uncompressed point of 65 bytes, base64url.",
            )?;
        let auth: [u8; 16] = keys
            .get("auth")
            .and_then(Value::as_str)
            .and_then(b64url)
            .and_then(|b| b.try_into().ok())
            .ok_or("\"push.keys.auth\" must be the browser's authentication secret: 16 bytes, base64url.")?;
        Ok(Subscription {
            endpoint: endpoint.to_string(),
            p256dh,
            auth,
        })
    }

    /// The contact's stored address.
    pub fn to_address(&self) -> String {
        json!({
            "endpoint": self.endpoint,
            "p256dh": Base64UrlUnpadded::encode_string(&self.p256dh),
            "auth": Base64UrlUnpadded::encode_string(&self.auth),
        })
        .to_string()
    }

    /// A stored address back.
    pub fn from_address(address: &str) -> Option<Subscription> {
        let v: Value = serde_json::from_str(address).ok()?;
        let keys = json!({"p256dh": v.get("p256dh")?, "auth": v.get("auth")?});
        Subscription::from_json(&json!({"endpoint": v.get("endpoint")?, "keys": keys})).ok()
    }
}

/// What is wrong with a push endpoint, if anything.
fn endpoint_problem(endpoint: &str) -> Option<&'static str> {
    if endpoint.len() > MAX_ENDPOINT {
        return Some("is too long");
    }
    let https = endpoint.starts_with("https://");
    if !(https || (endpoint.starts_with("http://") && is_loopback_url(endpoint))) {
        return Some("must be an https:// URL");
    }
    match endpoint.parse::<ureq::http::Uri>() {
        Ok(uri) if uri.host().is_some_and(|h| !h.is_empty()) => {
            if uri.authority().is_some_and(|a| a.as_str().contains('@')) {
                Some("must not carry a user name")
            } else {
                None
            }
        }
        _ => Some("is not a URL"),
    }
}

/// The origin of `endpoint` (the VAPID `aud`): scheme, host and a port other than the scheme's own.
pub fn origin(endpoint: &str) -> Option<String> {
    let uri: ureq::http::Uri = endpoint.parse().ok()?;
    let scheme = uri.scheme_str()?.to_ascii_lowercase();
    let host = uri.host()?.to_ascii_lowercase();
    let default = match scheme.as_str() {
        "https" => 443,
        "http" => 80,
        _ => return None,
    };
    Some(match uri.port_u16() {
        Some(p) if p != default => format!("{scheme}://{host}:{p}"),
        _ => format!("{scheme}://{host}"),
    })
}

/// What the phone's service worker gets, before encryption: `title` (the ticket's number with its
/// word, "Vuoronumero A005"), `body` (the notice's text), `kind` (`near`, `called` or `closed`),
/// `number` and `lang` (the text's language, for the notification's `lang` and direction). Nothing
/// more personal.
pub fn payload(n: &Notice) -> Vec<u8> {
    json!({
        "title": text::subject(&n.lang, &n.number),
        "body": n.text,
        "kind": n.kind,
        "number": n.number,
        "lang": n.lang,
    })
    .to_string()
    .into_bytes()
}

/// Web Push described by `[notify.push]`.
pub struct PushSender {
    cfg: PushSettings,
    vapid: std::sync::Arc<Vapid>,
    agent: ureq::Agent,
}

impl PushSender {
    pub fn new(cfg: PushSettings, vapid: std::sync::Arc<Vapid>) -> PushSender {
        let agent = ureq::Agent::config_builder()
            .timeout_global(Some(Duration::from_secs(cfg.timeout_seconds.max(1))))
            .http_status_as_error(false)
            .max_redirects(0)
            .build()
            .into();
        PushSender { cfg, vapid, agent }
    }
}

impl Provider for PushSender {
    fn send(&mut self, n: &Notice, _key: &str) -> Result<(), SendError> {
        let sub = n
            .address
            .as_deref()
            .and_then(Subscription::from_address)
            .ok_or_else(|| SendError::Refused("not a push subscription".into()))?;
        let aud = origin(&sub.endpoint)
            .ok_or_else(|| SendError::Refused("the push endpoint has no origin".into()))?;
        let ua_public = p256::PublicKey::from_sec1_bytes(&sub.p256dh)
            .map_err(|_| SendError::Refused("the browser's key is not a P-256 point".into()))?;
        let auth = web_push_native::Auth::clone_from_slice(&sub.auth);
        let body = web_push_native::encrypt(payload(n), &ua_public, &auth)
            .map_err(|e| SendError::Refused(format!("cannot encrypt the notice: {e}")))?;
        let req = ureq::http::Request::builder()
            .method("POST")
            .uri(&sub.endpoint)
            .header("ttl", self.cfg.ttl_seconds.to_string())
            .header("urgency", "high")
            .header("content-encoding", "aes128gcm")
            .header("content-type", "application/octet-stream")
            .header(
                "authorization",
                self.vapid
                    .authorization(&aud, &self.cfg.subject, chrono::Utc::now()),
            )
            .body(body)
            .map_err(|e| SendError::Refused(format!("push request: {e}")))?;
        let resp = self.agent.run(req).map_err(|e| SendError::Retry {
            reason: format!("push service unreachable: {}", short_error(&e)),
            after: None,
        })?;
        let status = resp.status().as_u16();
        match status {
            200..=299 => Ok(()),
            404 | 410 => Err(SendError::Gone(format!(
                "the browser's subscription ended (push service answered {status})"
            ))),
            429 | 408 | 500..=599 => Err(SendError::Retry {
                reason: format!("push service answered {status}"),
                after: retry_after(resp.headers()),
            }),
            413 => Err(SendError::Refused(
                "the push service found the notice too large (413)".into(),
            )),
            _ => Err(SendError::Refused(format!(
                "push service answered {status}"
            ))),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::notify::text::Kind;
    use p256::ecdsa::signature::Verifier;

    fn browser_keys() -> (String, String) {
        let mut b = [0u8; 32];
        b[31] = 7;
        let secret = p256::SecretKey::from_slice(&b).unwrap();
        (
            Base64UrlUnpadded::encode_string(
                secret.public_key().to_encoded_point(false).as_bytes(),
            ),
            Base64UrlUnpadded::encode_string(&[9u8; 16]),
        )
    }

    #[test]
    fn subscriptions_are_checked() {
        let (p256dh, auth) = browser_keys();
        let good = json!({"endpoint": "https://push.example.net/s/abc", "expirationTime": null,
                          "keys": {"p256dh": p256dh, "auth": auth}});
        let sub = Subscription::from_json(&good).unwrap();
        assert!(Subscription::from_address(&sub.to_address()) == Some(sub.clone()));
        let loopback = json!({"endpoint": "http://127.0.0.1:9/p", "keys": {"p256dh": p256dh, "auth": format!("{auth}==")}});
        assert!(Subscription::from_json(&loopback).is_ok());
        let mut compressed = sub.p256dh.clone();
        compressed.truncate(33);
        compressed[0] = 2;
        let mut off_curve = sub.p256dh.clone();
        off_curve[64] ^= 1;
        for (bad, says) in [
            (json!("https://push.example.net/s/abc"), "\"push\" must be"),
            (
                json!({"endpoint": "http://push.example.net/s", "keys": {"p256dh": p256dh, "auth": auth}}),
                "https://",
            ),
            (
                json!({"endpoint": "https://", "keys": {"p256dh": p256dh, "auth": auth}}),
                "not a URL",
            ),
            (
                json!({"endpoint": "https://u@push.example.net/", "keys": {"p256dh": p256dh, "auth": auth}}),
                "user name",
            ),
            (
                json!({"endpoint": "https://push.example.net/s"}),
                "\"push.keys\" is missing",
            ),
            (
                json!({"endpoint": "https://push.example.net/s", "keys": {"p256dh": "###", "auth": auth}}),
                "p256dh",
            ),
            (
                json!({"endpoint": "https://push.example.net/s", "keys": {"p256dh": Base64UrlUnpadded::encode_string(&compressed), "auth": auth}}),
                "p256dh",
            ),
            (
                json!({"endpoint": "https://push.example.net/s", "keys": {"p256dh": Base64UrlUnpadded::encode_string(&off_curve), "auth": auth}}),
                "p256dh",
            ),
            (
                json!({"endpoint": "https://push.example.net/s", "keys": {"p256dh": p256dh, "auth": "AAAA"}}),
                "auth",
            ),
            (
                json!({"endpoint": "https://push.example.net/s", "expirationTime": "soon", "keys": {"p256dh": p256dh, "auth": auth}}),
                "expirationTime",
            ),
        ] {
            let err = Subscription::from_json(&bad)
                .err()
                .unwrap_or_else(|| panic!("{bad} was taken"));
            assert!(err.contains(says), "{bad}: {err}");
        }
    }

    #[test]
    fn origins_keep_only_a_port_of_their_own() {
        assert_eq!(
            origin("https://fcm.googleapis.com/fcm/send/x").as_deref(),
            Some("https://fcm.googleapis.com")
        );
        assert_eq!(
            origin("https://Push.Example.net:443/a").as_deref(),
            Some("https://push.example.net")
        );
        assert_eq!(
            origin("https://push.example.net:8443/a?b").as_deref(),
            Some("https://push.example.net:8443")
        );
        assert_eq!(
            origin("http://127.0.0.1:4000/p").as_deref(),
            Some("http://127.0.0.1:4000")
        );
    }

    #[test]
    fn vapid_tokens_verify_with_the_public_key() {
        let dir = std::env::temp_dir().join(format!("vuoro-vapid-{}", std::process::id()));
        std::fs::create_dir_all(&dir).unwrap();
        let db = vuoro_store::open(&dir.join("vuoro.sqlite")).unwrap();
        let vapid = Vapid::load_or_make(db.as_ref()).unwrap();
        // Kept: the same key at the next start.
        assert_eq!(
            Vapid::load_or_make(db.as_ref()).unwrap().public_key(),
            vapid.public_key()
        );
        let now = chrono::Utc::now();
        let h = vapid.authorization("https://push.example.net", "mailto:ops@example.fi", now);
        let (t, k) = h
            .strip_prefix("vapid t=")
            .and_then(|r| r.split_once(", k="))
            .unwrap();
        assert_eq!(k, vapid.public_key());
        let public = Base64UrlUnpadded::decode_vec(k).unwrap();
        assert_eq!(public.len(), 65);
        let vk = p256::ecdsa::VerifyingKey::from_sec1_bytes(&public).unwrap();
        let (input, sig) = t.rsplit_once('.').unwrap();
        let sig = p256::ecdsa::Signature::from_slice(&Base64UrlUnpadded::decode_vec(sig).unwrap())
            .unwrap();
        vk.verify(input.as_bytes(), &sig).unwrap();
        let claims: Value = serde_json::from_slice(
            &Base64UrlUnpadded::decode_vec(input.split_once('.').unwrap().1).unwrap(),
        )
        .unwrap();
        assert_eq!(claims["aud"], "https://push.example.net");
        assert_eq!(claims["sub"], "mailto:ops@example.fi");
        let exp = claims["exp"].as_i64().unwrap() - now.timestamp();
        assert!(exp > 0 && exp <= 24 * 3600, "{exp}");
        // A damaged key is refused, not replaced (that would end every subscription).
        let other = vuoro_store::open(&dir.join("other.sqlite")).unwrap();
        assert_eq!(other.secret(KEY_NAME, &[0u8; 32]).unwrap(), vec![0u8; 32]);
        let err = Vapid::load_or_make(other.as_ref())
            .err()
            .unwrap()
            .to_string();
        assert!(err.contains("push.key") && err.contains("damaged"), "{err}");
        let short = vuoro_store::open(&dir.join("short.sqlite")).unwrap();
        short.secret(KEY_NAME, &[1u8; 31]).unwrap();
        let err = Vapid::load_or_make(short.as_ref())
            .err()
            .unwrap()
            .to_string();
        assert!(err.contains("damaged"), "{err}");
        std::fs::remove_dir_all(&dir).unwrap();
    }

    #[test]
    fn the_payload_holds_the_notice_and_nothing_more() {
        let n = Notice {
            id: 1,
            key: "k".into(),
            site: "s".into(),
            ticket: 3,
            kind: Kind::Called.as_str().into(),
            number: "A005".into(),
            channel: vuoro_store::NoticeChannel::Push,
            address: Some("secret".into()),
            lang: "fi".into(),
            text: "Vuoronumero A005: on vuorosi, Palvelupiste 5.".into(),
            state: vuoro_store::NoticeState::Pending,
            attempts: 0,
            next_at: chrono::Utc::now(),
            reason: None,
            created_at: chrono::Utc::now(),
            done_at: None,
        };
        let v: Value = serde_json::from_slice(&payload(&n)).unwrap();
        assert_eq!(
            v,
            json!({"title": "Vuoronumero A005", "body": "Vuoronumero A005: on vuorosi, Palvelupiste 5.",
                   "kind": "called", "number": "A005", "lang": "fi"})
        );
    }
}
