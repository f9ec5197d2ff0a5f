//! The providers: an operator's SMS gateway over HTTP (ureq) and e-mail over SMTP (lettre); Web Push is
//! in `push.rs`. Each send says whether a failure is worth another try (a timeout, a 5xx, a 429) or final
//! (the provider refused, or the address is gone for good).
//! Nothing here logs an address or a header.

use std::time::Duration;

use vuoro_store::Notice;

use super::text::{self, SmsEncoding};
use crate::deployment::{BodyEncoding, EmailSettings, SmsGateway, is_loopback_url};

/// Why a send did not go through.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum SendError {
    /// Worth another try, after at least `after` when the provider said so (`Retry-After`).
    Retry {
        reason: String,
        after: Option<Duration>,
    },
    /// Final: another try would be refused the same way.
    Refused(String),
    /// Final, and the address is gone for good (a push subscription the browser ended): the contact is
    /// forgotten and nothing more is sent to it.
    Gone(String),
}

/// A `Retry-After` header's wait: seconds, or an HTTP date.
pub fn retry_after(headers: &ureq::http::HeaderMap) -> Option<Duration> {
    let v = headers.get("retry-after")?.to_str().ok()?.trim();
    if let Ok(secs) = v.parse::<u64>() {
        return Some(Duration::from_secs(secs));
    }
    let at = chrono::DateTime::parse_from_rfc2822(v).ok()?;
    (at.with_timezone(&chrono::Utc) - chrono::Utc::now())
        .to_std()
        .ok()
}

/// A provider of one channel.
pub trait Provider: Send {
    /// Sends notice `n` (whose address is set). `key` is its idempotency key.
    fn send(&mut self, n: &Notice, key: &str) -> Result<(), SendError>;
}

/// An HTTP SMS gateway described by `[notify.sms]`.
pub struct SmsSender {
    cfg: SmsGateway,
    agent: ureq::Agent,
}

impl SmsSender {
    pub fn new(cfg: SmsGateway) -> SmsSender {
        let agent = ureq::Agent::config_builder()
            .timeout_global(Some(Duration::from_secs(cfg.timeout_seconds.max(1))))
            .http_status_as_error(false)
            .max_redirects(0)
            .build()
            .into();
        SmsSender { cfg, agent }
    }
}

/// `template` with `{to}`, `{text}`, `{id}` and `{encoding}` replaced by `esc` of their values.
pub fn fill(template: &str, fields: &[(&str, &str)], esc: impl Fn(&str) -> String) -> String {
    // One pass, so a value that contains "{text}" is not filled in again.
    let mut out = String::with_capacity(template.len() + 64);
    let mut rest = template;
    'outer: while let Some(i) = rest.find('{') {
        out.push_str(&rest[..i]);
        rest = &rest[i..];
        for (name, value) in fields {
            if let Some(after) = rest
                .strip_prefix('{')
                .and_then(|r| r.strip_prefix(*name))
                .and_then(|r| r.strip_prefix('}'))
            {
                out.push_str(&esc(value));
                rest = after;
                continue 'outer;
            }
        }
        out.push('{');
        rest = &rest[1..];
    }
    out.push_str(rest);
    out
}

fn json_escape(v: &str) -> String {
    let quoted = serde_json::to_string(v).unwrap_or_default();
    quoted[1..quoted.len() - 1].to_string()
}

fn form_escape(v: &str) -> String {
    form_urlencoded::byte_serialize(v.as_bytes()).collect()
}

impl Provider for SmsSender {
    fn send(&mut self, n: &Notice, key: &str) -> Result<(), SendError> {
        let to = n.address.as_deref().unwrap_or_default();
        let (encoding, _) = text::sms_parts(&n.text);
        let fields = [
            ("to", to),
            ("text", n.text.as_str()),
            ("id", key),
            (
                "encoding",
                match encoding {
                    SmsEncoding::Gsm7 => "gsm7",
                    SmsEncoding::Ucs2 => "ucs2",
                },
            ),
        ];
        let (body, content_type) = match self.cfg.body_encoding {
            BodyEncoding::Json => (
                fill(&self.cfg.body, &fields, json_escape),
                "application/json",
            ),
            BodyEncoding::Form => (
                fill(&self.cfg.body, &fields, form_escape),
                "application/x-www-form-urlencoded",
            ),
        };
        let mut req = ureq::http::Request::builder()
            .method(self.cfg.method.as_str())
            .uri(&self.cfg.url);
        for (k, v) in &self.cfg.headers {
            req = req.header(k, v);
        }
        if !self.cfg.idempotency_header.is_empty() {
            req = req.header(self.cfg.idempotency_header.as_str(), key);
        }
        let req = req
            .header("content-type", content_type)
            .body(body)
            .map_err(|e| SendError::Refused(format!("gateway request: {e}")))?;
        let result = self.agent.run(req);
        let resp = result.map_err(|e| SendError::Retry {
            reason: format!("gateway unreachable: {}", short_error(&e)),
            after: None,
        })?;
        let status = resp.status().as_u16();
        match status {
            200..=299 => Ok(()),
            429 | 408 | 500..=599 => Err(SendError::Retry {
                reason: format!("gateway answered {status}"),
                after: retry_after(resp.headers()),
            }),
            _ => Err(SendError::Refused(format!("gateway answered {status}"))),
        }
    }
}

/// A transport error without anything from the request (no URL with a number in it).
pub fn short_error(e: &ureq::Error) -> String {
    match e {
        ureq::Error::Timeout(_) => "timed out".into(),
        ureq::Error::Io(io) => io.kind().to_string(),
        ureq::Error::ConnectionFailed => "connection failed".into(),
        ureq::Error::HostNotFound => "host not found".into(),
        _ => "transport error".into(),
    }
}

/// E-mail over SMTP, described by `[notify.email]`.
pub struct EmailSender {
    from: lettre::message::Mailbox,
    transport: lettre::SmtpTransport,
}

/// The relay's URL for lettre: `smtp://` to a host other than loopback requires STARTTLS.
pub fn smtp_url(smtp: &str) -> String {
    if smtp.starts_with("smtp://") && !is_loopback_url(smtp) && !smtp.contains("tls=") {
        let sep = if smtp.contains('?') { '&' } else { '?' };
        format!("{smtp}{sep}tls=required")
    } else {
        smtp.to_string()
    }
}

impl EmailSender {
    pub fn new(cfg: &EmailSettings) -> anyhow::Result<EmailSender> {
        use anyhow::Context;
        let mut builder = lettre::SmtpTransport::from_url(&smtp_url(&cfg.smtp))
            .context("notify.email.smtp")?
            .timeout(Some(Duration::from_secs(cfg.timeout_seconds.max(1))));
        if let (Some(user), Some(file)) = (&cfg.username, &cfg.password_file) {
            let password = std::fs::read_to_string(file)
                .with_context(|| format!("cannot read {}", file.display()))?;
            builder =
                builder.credentials(lettre::transport::smtp::authentication::Credentials::new(
                    user.clone(),
                    password.trim().to_string(),
                ));
        }
        Ok(EmailSender {
            from: cfg.from.parse().context("notify.email.from")?,
            transport: builder.build(),
        })
    }
}

impl Provider for EmailSender {
    fn send(&mut self, n: &Notice, key: &str) -> Result<(), SendError> {
        use lettre::Transport;
        let to: lettre::message::Mailbox = n
            .address
            .as_deref()
            .unwrap_or_default()
            .parse()
            .map_err(|_| SendError::Refused("not an e-mail address".into()))?;
        let msg = lettre::Message::builder()
            .from(self.from.clone())
            .to(to)
            .subject(text::subject(&n.lang, &n.number))
            // The same notice sent again (after a crash between the relay's answer and our record of
            // it) carries the same Message-ID.
            .message_id(Some(format!("<{key}@vuoro>")))
            .header(lettre::message::header::ContentType::TEXT_PLAIN)
            .body(n.text.clone())
            .map_err(|e| SendError::Refused(format!("message: {e}")))?;
        match self.transport.send(&msg) {
            Ok(_) => Ok(()),
            Err(e) if e.is_permanent() => Err(SendError::Refused(format!(
                "relay refused: {}",
                e.status().map_or(String::new(), |c| c.to_string())
            ))),
            Err(e) => Err(SendError::Retry {
                reason: format!(
                    "relay: {}",
                    e.status()
                        .map_or_else(|| "unreachable".to_string(), |c| c.to_string())
                ),
                after: None,
            }),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn fill_escapes_each_value_once() {
        let body = r#"{"to":"{to}","text":"{text}","x":"{unknown}"}"#;
        let out = fill(
            body,
            &[("to", "+358401234567"), ("text", "a \"b\" {to}")],
            json_escape,
        );
        assert_eq!(
            out,
            r#"{"to":"+358401234567","text":"a \"b\" {to}","x":"{unknown}"}"#
        );
        let form = fill(
            "to={to}&msg={text}",
            &[("to", "+358 40"), ("text", "ä&b")],
            form_escape,
        );
        assert_eq!(form, "to=%2B358+40&msg=%C3%A4%26b");
    }

    #[test]
    fn retry_after_takes_seconds_or_a_date() {
        let mut h = ureq::http::HeaderMap::new();
        assert_eq!(retry_after(&h), None);
        h.insert("retry-after", " 3 ".parse().unwrap());
        assert_eq!(retry_after(&h), Some(Duration::from_secs(3)));
        let later = (chrono::Utc::now() + chrono::Duration::seconds(30))
            .format("%a, %d %b %Y %H:%M:%S GMT")
            .to_string();
        h.insert("retry-after", later.parse().unwrap());
        let wait = retry_after(&h).unwrap();
        assert!(
            wait > Duration::from_secs(25) && wait <= Duration::from_secs(30),
            "{wait:?}"
        );
        h.insert("retry-after", "soon".parse().unwrap());
        assert_eq!(retry_after(&h), None);
    }

    #[test]
    fn smtp_to_another_host_requires_starttls() {
        assert_eq!(
            smtp_url("smtp://mail.example.fi:587"),
            "smtp://mail.example.fi:587?tls=required"
        );
        assert_eq!(smtp_url("smtp://127.0.0.1:2525"), "smtp://127.0.0.1:2525");
        assert_eq!(
            smtp_url("smtps://mail.example.fi"),
            "smtps://mail.example.fi"
        );
    }
}
