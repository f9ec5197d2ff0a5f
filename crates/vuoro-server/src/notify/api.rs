//! The notices' HTTP API: a ticket's contact (`/api/v1/tickets/{token}/contact`, the ticket's token is
//! the customer's capability) and the supervisors' list of notices (`/api/v1/sites/{site}/notices`).
//! docs/api.md, "Notices".

use std::sync::Arc;

use axum::extract::{Path, Query, State};
use axum::http::StatusCode;
use axum::response::{IntoResponse, Response};
use chrono::Utc;
use serde::Deserialize;
use serde_json::{Value, json};
use vuoro_engine::Conflict;
use vuoro_store::{Contact, NoticeChannel, NoticeState};

use super::push::Subscription;
use super::{Notices, masked};
use crate::App;
use crate::auth::Principal;
use crate::error::{ApiError, ErrorCode, JsonBody};

type ApiResult = Result<Response, ApiError>;

/// `PUT .../contact`: exactly one of these.
#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ContactBody {
    #[serde(default)]
    sms: Option<String>,
    #[serde(default)]
    email: Option<String>,
    #[serde(default)]
    push: Option<Value>,
}

#[derive(Deserialize)]
pub struct RemoveQuery {
    /// Only this channel (`sms`, `email`, `push`); all when absent.
    #[serde(default)]
    channel: Option<String>,
    /// Also never send anything to these addresses again.
    #[serde(default)]
    opt_out: Option<bool>,
}

/// A phone number as E.164 (`+358401234567`), spaces and hyphens allowed in what was typed.
pub fn e164(typed: &str) -> Option<String> {
    let s: String = typed
        .chars()
        .filter(|c| !matches!(c, ' ' | '-' | '\u{a0}'))
        .collect();
    let digits = s.strip_prefix('+')?;
    let ok = (8..=15).contains(&digits.len())
        && digits.chars().all(|c| c.is_ascii_digit())
        && !digits.starts_with('0');
    ok.then_some(s)
}

/// An e-mail address as sent to (trimmed), if it is one.
pub fn email(typed: &str) -> Option<String> {
    let s = typed.trim();
    (s.len() <= 254 && s.parse::<lettre::Address>().is_ok()).then(|| s.to_string())
}

fn notices(app: &App) -> Result<&Arc<Notices>, ApiError> {
    app.notices.as_ref().ok_or_else(|| {
        ApiError::invalid("Notices are not set up here (no [notify] in the config).")
    })
}

/// The ticket behind `token`, as (site, id, final).
fn ticket(app: &App, token: &str) -> Result<(String, u64, bool), ApiError> {
    let core = app.shared.core.lock().expect("lock");
    let t = core
        .engine
        .ticket_by_token(token)
        .ok_or_else(|| ApiError::not_found("no such ticket (tickets end with the day)"))?;
    Ok((t.site.to_string(), t.id, t.state.is_final()))
}

/// The channels offered here and the ticket's contacts (masked).
fn listing(n: &Notices, site: &str, ticket: u64) -> Value {
    let list: Vec<Value> = n
        .contacts_of(site, ticket)
        .iter()
        .map(|c| json!({"channel": c.channel.as_str(), "to": masked(c.channel, &c.address)}))
        .collect();
    let offered: Vec<&str> = NoticeChannel::ALL
        .into_iter()
        .filter(|c| n.offers(*c))
        .map(NoticeChannel::as_str)
        .collect();
    let mut v = json!({ "offered": offered, "contacts": list });
    if let Some(key) = n.push_key() {
        v["push_key"] = json!(key);
    }
    v
}

/// The ticket's contacts and the channels offered (none when notices are not set up here), for the
/// phone page and the kiosk to offer only what works; with push offered, also `push_key`, the VAPID
/// public key the page subscribes with.
pub async fn get_contact(State(app): State<Arc<App>>, Path(token): Path<String>) -> ApiResult {
    let (site, id, _) = ticket(&app, &token)?;
    let v = match app.notices.as_ref() {
        Some(n) => listing(n, &site, id),
        None => json!({ "offered": [], "contacts": [] }),
    };
    Ok((StatusCode::OK, axum::Json(v)).into_response())
}

pub async fn put_contact(
    State(app): State<Arc<App>>,
    Path(token): Path<String>,
    JsonBody(body): JsonBody<ContactBody>,
) -> ApiResult {
    let n = notices(&app)?.clone();
    let given = [
        body.sms.is_some(),
        body.email.is_some(),
        body.push.is_some(),
    ]
    .iter()
    .filter(|b| **b)
    .count();
    if given != 1 {
        return Err(ApiError::invalid(
            "Give exactly one of \"sms\", \"email\" or \"push\".",
        ));
    }
    let (channel, address) = if let Some(s) = &body.sms {
        let number = e164(s).ok_or_else(|| {
            ApiError::invalid(
                "\"sms\" must be a phone number with its country code, like +358401234567.",
            )
        })?;
        (NoticeChannel::Sms, number)
    } else if let Some(e) = &body.email {
        let address = email(e).ok_or_else(|| {
            ApiError::invalid("\"email\" must be an e-mail address, like name@example.fi.")
        })?;
        (NoticeChannel::Email, address)
    } else {
        let sub = Subscription::from_json(body.push.as_ref().unwrap_or(&Value::Null))
            .map_err(ApiError::invalid)?;
        (NoticeChannel::Push, sub.to_address())
    };
    if !n.offers(channel) {
        return Err(ApiError::invalid(format!(
            "Notices by {} are not offered here.",
            match channel {
                NoticeChannel::Sms => "SMS",
                NoticeChannel::Email => "e-mail",
                NoticeChannel::Push => "push notification",
            }
        )));
    }
    let (site, id, ended) = ticket(&app, &token)?;
    if ended {
        return Err(ApiError::new(
            ErrorCode::Conflict(Conflict::TicketNotWaiting),
            "The ticket's visit is over: there is nothing left to tell.",
        ));
    }
    let address_key = n.contact_key(channel, &address);
    let contact = Contact {
        site: site.clone(),
        ticket: id,
        channel,
        address,
        address_key,
        created_at: Utc::now(),
    };
    let n2 = n.clone();
    let refused = tokio::task::spawn_blocking(move || -> Result<bool, vuoro_store::StoreError> {
        if n2.opted_out(&contact.address_key)? {
            return Ok(true);
        }
        n2.set_contact(contact)?;
        Ok(false)
    })
    .await
    .map_err(|_| ApiError::unavailable("the store is not answering"))?
    .map_err(|e| ApiError::unavailable(format!("cannot store the contact: {e}")))?;
    if refused {
        return Err(ApiError::new(
            ErrorCode::Conflict(Conflict::Conflict),
            "This number or address asked for no more notices.",
        ));
    }
    Ok((StatusCode::OK, axum::Json(listing(&n, &site, id))).into_response())
}

pub async fn delete_contact(
    State(app): State<Arc<App>>,
    Path(token): Path<String>,
    Query(q): Query<RemoveQuery>,
) -> ApiResult {
    let n = notices(&app)?.clone();
    let channel = match q.channel.as_deref() {
        None => None,
        Some(c) => Some(
            NoticeChannel::parse(c)
                .ok_or_else(|| ApiError::invalid("\"channel\" must be sms, email or push."))?,
        ),
    };
    let (site, id, _) = ticket(&app, &token)?;
    let (n2, site2) = (n.clone(), site.clone());
    let opt_out = q.opt_out.unwrap_or(false);
    tokio::task::spawn_blocking(move || n2.remove_contacts(&site2, id, channel, opt_out))
        .await
        .map_err(|_| ApiError::unavailable("the store is not answering"))?
        .map_err(|e| ApiError::unavailable(format!("cannot forget the contact: {e}")))?;
    Ok((StatusCode::OK, axum::Json(listing(&n, &site, id))).into_response())
}

#[derive(Deserialize)]
pub struct NoticesQuery {
    #[serde(default)]
    state: Option<String>,
    #[serde(default)]
    hours: Option<u32>,
}

/// Supervisors: a site's notices of one state (default `failed`) in the last hours (default 24), newest
/// first, without addresses.
pub async fn site_notices(
    State(app): State<Arc<App>>,
    Path(sid): Path<String>,
    p: Principal,
    Query(q): Query<NoticesQuery>,
) -> ApiResult {
    let hall = app.hall();
    let s = hall
        .site(&sid)
        .ok_or_else(|| ApiError::not_found(format!("no site '{sid}'")))?;
    let u = p.supervisor()?;
    if !s.units.iter().any(|unit| u.may_unit(&unit.id)) {
        return Err(ApiError::forbidden("Not a supervisor of this site."));
    }
    let n = notices(&app)?.clone();
    let state = match q.state.as_deref() {
        None => NoticeState::Failed,
        Some(st) => NoticeState::parse(st).ok_or_else(|| {
            ApiError::invalid("\"state\" must be pending, sent, failed or dropped.")
        })?,
    };
    let since = Utc::now() - chrono::Duration::hours(i64::from(q.hours.unwrap_or(24).min(24 * 31)));
    let site_id = s.id.to_string();
    let list = tokio::task::spawn_blocking(move || n.db.notices(&site_id, state, since, 500))
        .await
        .map_err(|_| ApiError::unavailable("the store is not answering"))?
        .map_err(|e| ApiError::unavailable(format!("cannot read the notices: {e}")))?;
    let rows: Vec<Value> = list
        .iter()
        .map(|x| {
            json!({
                "id": x.id,
                "number": x.number,
                "kind": x.kind,
                "channel": x.channel.as_str(),
                "state": x.state.as_str(),
                "attempts": x.attempts,
                "reason": x.reason,
                "created_at": x.created_at,
                "done_at": x.done_at,
            })
        })
        .collect();
    Ok((StatusCode::OK, axum::Json(json!({ "notices": rows }))).into_response())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn numbers_are_e164() {
        assert_eq!(e164("+358 40 123 4567").as_deref(), Some("+358401234567"));
        assert_eq!(e164("+358-40-1234567").as_deref(), Some("+358401234567"));
        for bad in [
            "0401234567",
            "+0401234567",
            "+358",
            "+35840123456789012",
            "+35840abc4567",
            "",
        ] {
            assert_eq!(e164(bad), None, "{bad}");
        }
    }

    #[test]
    fn addresses_are_checked() {
        assert_eq!(email(" a@example.fi ").as_deref(), Some("a@example.fi"));
        assert_eq!(email("not an address"), None);
        assert_eq!(email("a@"), None);
    }

    #[test]
    fn masks_keep_little() {
        assert_eq!(masked(NoticeChannel::Sms, "+358401234567"), "+35840*****67");
        assert_eq!(
            masked(NoticeChannel::Email, "anna@example.fi"),
            "a***@example.fi"
        );
        assert_eq!(
            masked(
                NoticeChannel::Push,
                r#"{"endpoint":"https://push.example.net/s"}"#
            ),
            "this browser"
        );
    }
}
