//! The HTTP API under `/api/v1` (docs/api.md is its contract), health, metrics and the web clients.
//! Handlers check who is calling and what they may do, turn the request into an engine command, and
//! answer from the committed state.

use std::collections::BTreeMap;
use std::net::SocketAddr;
use std::sync::Arc;
use std::sync::atomic::Ordering;

use axum::Router;
use axum::extract::{ConnectInfo, Path, Query, State};
use axum::http::{HeaderMap, HeaderValue, StatusCode, header};
use axum::response::{IntoResponse, Response};
use axum::routing::{get, post};
use chrono::{Timelike, Utc};
use serde::Deserialize;
use serde_json::{Value, json};
use vuoro_engine::config::Site;
use vuoro_engine::{
    Actor, Channel, Command, CounterId, CounterVerb, DeviceId, Outcome, Position, Priority,
    ReturnTo, ServiceId, TicketRef, TicketToken, TransferTarget,
};

use crate::App;
use crate::auth::{Principal, SESSION_COOKIE, UserCtx, random_token};
use crate::deployment::DeviceKind;
use crate::error::{ApiError, JsonBody, NoBody};

type AppState = State<Arc<App>>;
type ApiResult = Result<Response, ApiError>;

pub fn router(app: Arc<App>) -> Router {
    let api = Router::new()
        .route("/auth/login", post(login))
        .route("/auth/logout", post(logout))
        .route("/auth/logout-everywhere", post(logout_everywhere))
        .route("/auth/me", get(me))
        .route("/auth/providers", get(crate::oidc::providers))
        .route("/auth/oidc/{id}/login", get(crate::oidc::login))
        .route("/auth/oidc/{id}/callback", get(crate::oidc::callback))
        .route("/sites", get(sites))
        .route("/sites/{site}/services", get(services))
        .route("/sites/{site}/units", get(units))
        .route("/sites/{site}/languages", get(languages))
        .route("/sites/{site}/counters", get(counters))
        .route("/sites/{site}/displays/{display}", get(display))
        .route("/sites/{site}/tickets", post(issue).get(list_tickets))
        .route(
            "/sites/{site}/services/{service}/accepting",
            post(set_accepting),
        )
        .route("/sites/{site}/services/{service}/move", post(move_waiting))
        .route("/sites/{site}/end-day", post(end_day))
        .route("/sites/{site}/help-requests", post(help_request))
        .route("/sites/{site}/alerts/{alert}/ack", post(ack_alert))
        .route("/sites/{site}/stats/today", get(stats_today))
        .route("/tickets/{token}", get(get_ticket).delete(cancel_ticket))
        .route("/tickets/{token}/feedback", post(give_feedback))
        .route(
            "/tickets/{token}/contact",
            get(crate::notify::api::get_contact)
                .put(crate::notify::api::put_contact)
                .delete(crate::notify::api::delete_contact),
        )
        .route(
            "/sites/{site}/notices",
            get(crate::notify::api::site_notices),
        )
        .route("/counters/{counter}/{verb}", post(counter_verb))
        .route("/devices/me", get(device_me))
        .route("/devices/enrol", post(crate::admin::enrol))
        .route("/admin/devices", get(crate::admin::devices))
        .route(
            "/admin/config",
            get(crate::live_config::get_config).put(crate::live_config::put_config),
        )
        .route("/admin/config/versions", get(crate::live_config::versions))
        .route(
            "/admin/sites/{site}/services",
            get(crate::live_config::site_services),
        )
        .route(
            "/admin/sites/{site}/services/{service}",
            axum::routing::put(crate::live_config::put_service),
        )
        .route(
            "/admin/config/versions/{version}/restore",
            post(crate::live_config::restore),
        )
        .route(
            "/admin/devices/{id}",
            axum::routing::delete(crate::admin::revoke),
        )
        .route(
            "/admin/devices/{id}/enrolment",
            post(crate::admin::enrolment),
        )
        .route("/demo/device-token", get(demo_device_token))
        .route("/openapi.json", get(openapi))
        .route("/asyncapi.json", get(asyncapi))
        .route("/audio/speech", get(speech))
        .route("/ws", get(crate::ws::upgrade))
        .fallback(|| async { ApiError::not_found("no such API path") });
    Router::new()
        .nest("/api/v1", api)
        .route("/healthz", get(|| async { "ok" }))
        .route("/readyz", get(readyz))
        .route("/metrics", get(crate::metrics::metrics))
        .merge(crate::web::router(app.deployment.clone()))
        .with_state(app)
}

/// A site of the hall in force, held with it: a change of the config while a request runs does not
/// pull the site from under it.
pub struct SiteRef {
    hall: Arc<vuoro_engine::Hall>,
    index: usize,
}

impl std::ops::Deref for SiteRef {
    type Target = Site;
    fn deref(&self) -> &Site {
        &self.hall.sites[self.index]
    }
}

fn site(app: &App, id: &str) -> Result<SiteRef, ApiError> {
    let hall = app.hall();
    let index = hall
        .sites
        .iter()
        .position(|s| s.id == id)
        .ok_or_else(|| ApiError::not_found(format!("no site '{id}'")))?;
    Ok(SiteRef { hall, index })
}

fn json_response(status: StatusCode, v: Value) -> Response {
    (status, axum::Json(v)).into_response()
}

async fn readyz(State(app): AppState) -> Response {
    if app.ready.load(Ordering::Acquire) {
        "ready".into_response()
    } else {
        ApiError::unavailable("starting").into_response()
    }
}

// ---- auth ----------------------------------------------------------------------------------------

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct LoginBody {
    username: String,
    password: String,
}

async fn login(
    State(app): AppState,
    ConnectInfo(peer): ConnectInfo<SocketAddr>,
    headers: HeaderMap,
    JsonBody(b): JsonBody<LoginBody>,
) -> ApiResult {
    if !app.deployment.server.local_sign_in {
        return Err(ApiError::forbidden(
            "Sign-in with a password is switched off here: use single sign-on.",
        ));
    }
    let ip = app.client_ip(peer, &headers);
    if !app.auth.login_attempt(ip) {
        return Err(ApiError::rate_limited());
    }
    if let Some(wait) = app.auth.account_wait(&b.username) {
        return Err(ApiError::new(
            crate::error::ErrorCode::RateLimited,
            format!(
                "Too many wrong passwords for this username: try again in {} s.",
                wait.as_secs().max(1)
            ),
        ));
    }
    // Each check holds 19 MiB for about 25 ms: at most two at once (one per core), and a short queue.
    let permit = match app.password_checks.clone().try_acquire_owned() {
        Ok(p) => p,
        Err(_) if app.password_queue.load(Ordering::Relaxed) < 32 => {
            app.password_queue.fetch_add(1, Ordering::Relaxed);
            let p = app.password_checks.clone().acquire_owned().await;
            app.password_queue.fetch_sub(1, Ordering::Relaxed);
            p.map_err(|_| ApiError::unavailable("shutting down"))?
        }
        Err(_) => return Err(ApiError::rate_limited()),
    };
    let app2 = app.clone();
    let (token, user) = tokio::task::spawn_blocking(move || {
        let r = app2.auth.login(ip, &b.username, &b.password);
        drop(permit);
        r
    })
    .await
    .map_err(|_| ApiError::unavailable("login failed"))??;
    let cookie = format!(
        "{SESSION_COOKIE}={token}; HttpOnly; SameSite=Strict; Path=/; Max-Age={}{}",
        i64::from(app.deployment.server.session_hours) * 3600,
        app.cookie_secure()
    );
    let mut res = json_response(StatusCode::OK, json!({"token": token, "user": user.json()}));
    res.headers_mut().insert(
        header::SET_COOKIE,
        HeaderValue::from_str(&cookie).expect("ascii"),
    );
    Ok(res)
}

async fn logout(
    State(app): AppState,
    headers: HeaderMap,
    JsonBody(NoBody): JsonBody<NoBody>,
) -> ApiResult {
    let ended = crate::auth::token_from_headers(&headers).and_then(|t| app.auth.logout(&t));
    // A single sign-on session: the page goes on to the issuer's logout, which ends its session too.
    let end_session_url = match ended {
        Some(e) => {
            let app2 = app.clone();
            let back = crate::oidc::post_logout_url(&app);
            tokio::task::spawn_blocking(move || {
                app2.oidc
                    .end_session_url(&e.issuer, e.id_token.as_deref(), &back)
            })
            .await
            .ok()
            .flatten()
        }
        None => None,
    };
    let body = match end_session_url {
        Some(url) => json!({"ok": true, "end_session_url": url}),
        None => json!({"ok": true}),
    };
    let mut res = json_response(StatusCode::OK, body);
    clear_session_cookie(&app, &mut res);
    Ok(res)
}

/// Makes the browser forget its session cookie.
fn clear_session_cookie(app: &App, res: &mut Response) {
    let clear = format!(
        "{SESSION_COOKIE}=; HttpOnly; SameSite=Strict; Path=/; Max-Age=0{}",
        app.cookie_secure()
    );
    res.headers_mut().insert(
        header::SET_COOKIE,
        HeaderValue::from_str(&clear).expect("ascii"),
    );
}

/// Ends every session of the signed-in user, on every browser and device, and clears this one's cookie.
async fn logout_everywhere(
    State(app): AppState,
    p: Principal,
    JsonBody(NoBody): JsonBody<NoBody>,
) -> ApiResult {
    let username = p.user()?.username.clone();
    let ended = app.auth.logout_everywhere(&username);
    tracing::info!(user = %username, ended, "signed out everywhere");
    let mut res = json_response(StatusCode::OK, json!({"ok": true, "ended": ended}));
    clear_session_cookie(&app, &mut res);
    Ok(res)
}

async fn me(p: Principal) -> ApiResult {
    let u = p.user()?;
    Ok(json_response(StatusCode::OK, json!({"user": u.json()})))
}

// ---- sites -----------------------------------------------------------------------------------------

async fn sites(State(app): AppState) -> ApiResult {
    let now = Utc::now();
    let hall = app.hall();
    let list: Vec<Value> = hall
        .sites
        .iter()
        .map(|s| {
            json!({"id": s.id, "name": s.name, "timezone": s.timezone, "languages": s.languages,
                   "default_language": s.default_language(), "open": s.opening(None, now).open,
                   "no_show_return_minutes": s.no_show_return_minutes})
        })
        .collect();
    Ok(json_response(StatusCode::OK, json!({"sites": list})))
}

#[derive(Deserialize)]
struct LangQuery {
    lang: Option<String>,
}

fn lang_for(site: &Site, lang: Option<&str>) -> Result<String, ApiError> {
    match lang {
        None => Ok(site.default_language().to_string()),
        Some(l) if site.languages.iter().any(|x| x == l) => Ok(l.to_string()),
        Some(l) => Err(ApiError::invalid(format!(
            "language '{l}' is not offered at this site"
        ))),
    }
}

async fn services(
    State(app): AppState,
    Path(sid): Path<String>,
    Query(q): Query<LangQuery>,
    p: Principal,
) -> ApiResult {
    let site_ref = site(&app, &sid)?;
    let s = &*site_ref;
    let lang = lang_for(s, q.lang.as_deref())?;
    // An enrolled kiosk and staff see the real names of sensitive services (the customer must tell them
    // apart); public callers see only the neutral names.
    let reveal = match &p {
        Principal::Device(d) => d.kind == DeviceKind::Kiosk && d.site == s.id,
        Principal::User(_) => true,
        Principal::Anonymous => false,
    };
    let core = app.shared.core.lock().expect("lock");
    let mut list = core.engine.service_views(s, &lang, Utc::now(), reveal);
    drop(core);
    if !reveal {
        list = public_services(s, list);
    }
    Ok(json_response(StatusCode::OK, json!({"services": list})))
}

/// The services as the public may see them: each sensitive service only inside the neutral group of its
/// series (one entry, no unit, the group's waiting count), so no answer tells which sensitive service
/// anyone waits for or that it exists at all.
fn public_services(
    site: &Site,
    list: Vec<vuoro_engine::view::ServiceView>,
) -> Vec<vuoro_engine::view::ServiceView> {
    let mut out: Vec<vuoro_engine::view::ServiceView> = Vec::new();
    for mut v in list {
        let Some(svc) = site.service(&v.id).filter(|s| s.sensitive) else {
            out.push(v);
            continue;
        };
        let id = svc.public_id();
        if let Some(g) = out.iter_mut().find(|g| g.id == id) {
            g.waiting += v.waiting;
            g.eta_minutes = g.eta_minutes.max(v.eta_minutes);
            g.open |= v.open;
            g.accepting |= v.accepting;
            continue;
        }
        v.id = id;
        v.name = v.public_name.clone();
        v.unit = String::new();
        v.unit_name = String::new();
        v.icon = None;
        v.sensitive = false;
        v.remote_join = false;
        out.push(v);
    }
    out
}

async fn units(State(app): AppState, Path(sid): Path<String>) -> ApiResult {
    let site_ref = site(&app, &sid)?;
    let s = &*site_ref;
    let list: Vec<Value> = s
        .units
        .iter()
        .map(|u| json!({"id": u.id, "name": u.name}))
        .collect();
    Ok(json_response(StatusCode::OK, json!({"units": list})))
}

async fn languages(State(app): AppState, Path(sid): Path<String>) -> ApiResult {
    let site_ref = site(&app, &sid)?;
    let s = &*site_ref;
    let hall = app.hall();
    let list: Vec<Value> = s
        .languages
        .iter()
        .filter_map(|l| hall.language(l))
        .map(|l| json!({"code": l.code, "name": l.name, "dir": l.dir}))
        .collect();
    Ok(json_response(
        StatusCode::OK,
        json!({"languages": list, "default": s.default_language()}),
    ))
}

async fn counters(State(app): AppState, Path(sid): Path<String>, p: Principal) -> ApiResult {
    let u = p.user()?;
    let site_ref = site(&app, &sid)?;
    let s = &*site_ref;
    let now = Utc::now();
    let core = app.shared.core.lock().expect("lock");
    // Every counter of the site (staff may transfer a customer to any of them); the agent on it and its
    // current ticket only for the user's own units.
    let list: Vec<Value> = s
        .counters
        .iter()
        .filter_map(|c| {
            let v = core.engine.counter_view(s, &c.id, now)?;
            if u.may_unit(&c.unit) {
                return Some(json!(v));
            }
            Some(json!({"id": v.id, "unit": v.unit, "name": v.name, "location": v.location, "zone": v.zone,
                        "services": v.services, "state": v.state, "current": null, "user": null, "own_unit": false}))
        })
        .collect();
    Ok(json_response(StatusCode::OK, json!({"counters": list})))
}

async fn display(State(app): AppState, Path((sid, did)): Path<(String, String)>) -> ApiResult {
    let site_ref = site(&app, &sid)?;
    let s = &*site_ref;
    let d = s
        .displays
        .iter()
        .find(|d| d.id == did)
        .ok_or_else(|| ApiError::not_found(format!("no display '{did}'")))?;
    let zones: Vec<Value> = s
        .zones
        .iter()
        .filter(|z| d.zones.is_empty() || d.zones.contains(&z.id))
        .map(|z| {
            // The public queue ids served in this zone (sensitive services under their neutral group).
            let mut services: Vec<String> = Vec::new();
            for c in s
                .counters
                .iter()
                .filter(|c| c.zone.as_deref() == Some(z.id.as_str()))
            {
                for cs in &c.services {
                    let id = s
                        .service(&cs.service)
                        .map_or_else(|| cs.service.clone(), |svc| svc.public_id());
                    let id = id.to_string();
                    if !services.contains(&id) {
                        services.push(id);
                    }
                }
            }
            json!({"id": z.id, "name": z.name, "voice": z.voice, "volume": z.volume,
                   "max_backlog_seconds": z.max_backlog_seconds, "services": services})
        })
        .collect();
    let languages = if d.languages.is_empty() {
        s.languages.clone()
    } else {
        d.languages.clone()
    };
    Ok(json_response(
        StatusCode::OK,
        json!({"display": {"id": d.id, "zones": d.zones, "languages": languages, "layout": d.layout,
                           "viewing_distance_m": d.viewing_distance_m, "audio": d.audio,
                           "rendering_report_seconds": app.deployment.server.rendering_report_seconds()},
               "zones": zones,
               "site": {"id": s.id, "name": s.name, "languages": s.languages, "timezone": s.timezone}}),
    ))
}

// ---- tickets ---------------------------------------------------------------------------------------

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct IssueBody {
    service: String,
    lang: Option<String>,
    #[serde(default)]
    priority: Priority,
}

fn idempotency_key(headers: &HeaderMap) -> Result<Option<String>, ApiError> {
    let Some(v) = headers.get("idempotency-key") else {
        return Ok(None);
    };
    let s = v
        .to_str()
        .map_err(|_| ApiError::malformed("Idempotency-Key must be printable ASCII"))?;
    if s.is_empty() || s.len() > 100 || !s.bytes().all(|b| (0x21..0x7f).contains(&b)) {
        return Err(ApiError::malformed(
            "Idempotency-Key must be 1 to 100 printable ASCII characters",
        ));
    }
    Ok(Some(s.to_string()))
}

async fn issue(
    State(app): AppState,
    Path(sid): Path<String>,
    ConnectInfo(peer): ConnectInfo<SocketAddr>,
    p: Principal,
    headers: HeaderMap,
    JsonBody(b): JsonBody<IssueBody>,
) -> ApiResult {
    let site_ref = site(&app, &sid)?;
    let s = &*site_ref;
    let svc = s
        .service(&b.service)
        .ok_or_else(|| ApiError::invalid(format!("no service '{}' at this site", b.service)))?;
    let lang = lang_for(s, b.lang.as_deref())?;
    let priority = b.priority;
    let mut idem = idempotency_key(&headers)?;
    if matches!(p, Principal::Anonymous) {
        // Phones have no identity of their own: scope their keys to the client address, so nobody can
        // fetch another person's ticket by guessing or reusing a key.
        idem = idem.map(|k| format!("{}|{k}", app.client_ip(peer, &headers)));
    }
    let channel = match &p {
        Principal::Device(d) => {
            if d.kind != DeviceKind::Kiosk || d.site != s.id {
                return Err(ApiError::forbidden(
                    "This device may not issue tickets here.",
                ));
            }
            if !d.services.is_empty() && !d.services.contains(&svc.id) {
                return Err(ApiError::forbidden(
                    "This kiosk does not offer that service.",
                ));
            }
            Channel::Kiosk
        }
        Principal::User(u) => {
            if !u.may_unit(&svc.unit) {
                return Err(ApiError::forbidden(
                    "That service belongs to a unit you do not work for.",
                ));
            }
            Channel::Staff
        }
        Principal::Anonymous => {
            if !svc.remote_join {
                return Err(ApiError::unauthenticated());
            }
            if !app.remote_join_allowed(app.client_ip(peer, &headers)) {
                return Err(ApiError::rate_limited());
            }
            Channel::Remote
        }
    };
    let cmd = Command::Issue {
        site: s.id.clone(),
        service: svc.id.clone(),
        lang,
        priority,
        token: random_token(16).parse().expect("hex is a token"),
        channel,
        idempotency: idem,
    };
    // The ticket comes back with the outcome, as it stood right after this command: the answer needs no
    // lock on the read model.
    let (Outcome::Ticket { id, created, .. }, Some(ticket)) =
        app.writer.submit_ticket(cmd, p.actor()).await?
    else {
        return Err(ApiError::unavailable("unexpected outcome"));
    };
    let print = match &p {
        Principal::Device(d) if created => crate::printing::print(&app, d, id).await,
        _ => app.print_status(id),
    };
    let answer = crate::TicketAnswer {
        track_url: app.track_url(&ticket.token),
        token: Some(&ticket.token),
        view: ticket.view,
        print,
    };
    let body = serde_json::to_vec(&answer)
        .map_err(|_| ApiError::unavailable("the ticket did not serialize"))?;
    let status = if created {
        StatusCode::CREATED
    } else {
        StatusCode::OK
    };
    Ok((status, [(header::CONTENT_TYPE, "application/json")], body).into_response())
}

async fn get_ticket(
    State(app): AppState,
    Path(token): Path<String>,
    Query(q): Query<LangQuery>,
) -> ApiResult {
    let core = app.shared.core.lock().expect("lock");
    let t = core
        .engine
        .ticket_by_token(&token)
        .ok_or_else(|| ApiError::not_found("no such ticket (tickets end with the day)"))?;
    let mut v = app.ticket_json(&core.engine, t);
    if let Some(lang) = q.lang.as_deref() {
        // The same ticket in another language (the phone page's language switch).
        let hall = app.hall();
        let s = hall
            .site(&t.site)
            .ok_or_else(|| ApiError::not_found("no site"))?;
        let lang = lang_for(s, Some(lang))?;
        let view =
            serde_json::to_value(core.engine.ticket_view(t, Some(&lang))).unwrap_or_default();
        if let (Some(obj), Value::Object(fields)) = (v.as_object_mut(), view) {
            obj.extend(fields);
        }
    }
    drop(core);
    Ok(json_response(StatusCode::OK, v))
}

async fn cancel_ticket(State(app): AppState, Path(token): Path<String>) -> ApiResult {
    let token = TicketToken::parse(token).map_err(|_| ApiError::not_found("no such ticket"))?;
    app.submit(
        Command::Cancel {
            token: token.clone(),
        },
        Actor::public(),
    )
    .await?;
    let core = app.shared.core.lock().expect("lock");
    let t = core
        .engine
        .ticket_by_token(&token)
        .ok_or_else(|| ApiError::not_found("no such ticket"))?;
    Ok(json_response(
        StatusCode::OK,
        app.ticket_json(&core.engine, t),
    ))
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct FeedbackBody {
    rating: i64,
    comment: Option<String>,
}

/// The customer's answer to "how did it go?" after a finished visit: once per visit, anonymous (the
/// ticket's token is the only key, and the event names service and counter, never the staff member).
async fn give_feedback(
    State(app): AppState,
    Path(token): Path<String>,
    JsonBody(b): JsonBody<FeedbackBody>,
) -> ApiResult {
    let token = TicketToken::parse(token).map_err(|_| ApiError::not_found("no such ticket"))?;
    let rating = u8::try_from(b.rating)
        .ok()
        .filter(|r| (1..=5).contains(r))
        .ok_or_else(|| ApiError::invalid("rating must be a whole number from 1 to 5"))?;
    app.submit(
        Command::Feedback {
            token,
            rating,
            comment: b.comment,
        },
        Actor::public(),
    )
    .await?;
    Ok(json_response(
        StatusCode::CREATED,
        json!({"rating": rating}),
    ))
}

#[derive(Deserialize)]
struct TicketQuery {
    service: Option<String>,
    state: Option<String>,
}

async fn list_tickets(
    State(app): AppState,
    Path(sid): Path<String>,
    p: Principal,
    Query(q): Query<TicketQuery>,
) -> ApiResult {
    let u = p.user()?;
    let site_ref = site(&app, &sid)?;
    let s = &*site_ref;
    let now = Utc::now();
    let core = app.shared.core.lock().expect("lock");
    let st = core
        .engine
        .site_state(&s.id)
        .ok_or_else(|| ApiError::not_found("no site state"))?;
    let list: Vec<_> = st
        .tickets
        .values()
        .filter(|t| {
            s.service(&t.service)
                .is_some_and(|svc| u.may_unit(&svc.unit))
        })
        .filter(|t| q.service.as_ref().is_none_or(|x| x == &t.service))
        .filter(|t| q.state.as_ref().is_none_or(|x| x == t.state.as_str()))
        .map(|t| core.engine.staff_ticket(t, now))
        .collect();
    Ok(json_response(StatusCode::OK, json!({"tickets": list})))
}

// ---- counters --------------------------------------------------------------------------------------

#[derive(Deserialize, Default)]
#[serde(deny_unknown_fields)]
struct VerbBody {
    ticket: Option<u64>,
    number: Option<String>,
    next_service: Option<ServiceId>,
    #[serde(default)]
    position: Position,
    service: Option<ServiceId>,
    counter: Option<CounterId>,
    #[serde(default)]
    to: ReturnTo,
    device: Option<DeviceId>,
}

fn ticket_ref(b: &VerbBody) -> Option<TicketRef> {
    b.ticket
        .map(TicketRef::Id)
        .or_else(|| b.number.clone().map(TicketRef::Number))
}

/// Checks that the user may act on a ticket named in a body (its service's unit).
fn check_ticket_scope(
    app: &App,
    u: &UserCtx,
    site: &Site,
    r: &Option<TicketRef>,
) -> Result<(), ApiError> {
    let Some(r) = r else { return Ok(()) };
    let core = app.shared.core.lock().expect("lock");
    let Some(t) = core.engine.find_ticket(&site.id, r) else {
        return Ok(());
    };
    match site.service(&t.service) {
        Some(svc) if !u.may_unit(&svc.unit) && t.target_counter.is_none() => Err(
            ApiError::forbidden("That ticket is in another unit's queue."),
        ),
        _ => Ok(()),
    }
}

async fn counter_verb(
    State(app): AppState,
    Path((counter, verb)): Path<(String, String)>,
    p: Principal,
    JsonBody(b): JsonBody<VerbBody>,
) -> ApiResult {
    let hall = app.hall();
    let (s, c) = hall
        .sites
        .iter()
        .find_map(|s| s.counter(&counter).map(|c| (s, c)))
        .ok_or_else(|| ApiError::not_found(format!("no counter '{counter}'")))?;
    let counter = &c.id;
    let u = p.user()?;
    if !u.may_unit(&c.unit) {
        return Err(ApiError::forbidden(
            "This counter belongs to a unit you do not work for.",
        ));
    }
    let tref = ticket_ref(&b);
    let verb = match verb.as_str() {
        "open" => CounterVerb::Open,
        "close" => CounterVerb::Close,
        "call-next" => CounterVerb::CallNext,
        "call" => CounterVerb::Call(tref.clone().ok_or_else(|| {
            ApiError::invalid("name the ticket: {\"ticket\": id} or {\"number\": \"A042\"}")
        })?),
        "recall" => CounterVerb::Recall,
        "start" => CounterVerb::Start,
        "finish" => CounterVerb::Finish {
            next_service: b.next_service.clone(),
            position: b.position,
        },
        "no-show" => CounterVerb::NoShow,
        "transfer" => {
            let to = match (&b.service, &b.counter) {
                (Some(svc), None) => TransferTarget::Service(svc.clone()),
                (None, Some(c)) => TransferTarget::Counter(c.clone()),
                _ => {
                    return Err(ApiError::invalid(
                        "name exactly one target: \"service\" or \"counter\"",
                    ));
                }
            };
            CounterVerb::Transfer {
                ticket: tref.clone(),
                to,
                position: b.position,
            }
        }
        "park" => CounterVerb::Park,
        "return" => CounterVerb::Return {
            ticket: tref
                .clone()
                .ok_or_else(|| ApiError::invalid("name the ticket to bring back"))?,
            to: b.to,
        },
        "reprint" => return reprint(&app, s, u, tref, b.device.as_deref()).await,
        other => return Err(ApiError::not_found(format!("no counter verb '{other}'"))),
    };
    check_ticket_scope(&app, u, s, &tref)?;
    let out = app
        .submit(
            Command::Counter {
                counter: counter.clone(),
                verb,
            },
            p.actor(),
        )
        .await?;
    let now = Utc::now();
    let core = app.shared.core.lock().expect("lock");
    match out {
        Outcome::NobodyWaiting { .. } => Ok(StatusCode::NO_CONTENT.into_response()),
        Outcome::Counter { ticket, .. } => {
            let t = ticket
                .and_then(|id| core.engine.ticket(&s.id, id))
                .map(|t| core.engine.staff_ticket(t, now));
            Ok(json_response(
                StatusCode::OK,
                json!({"counter": core.engine.counter_view(s, counter, now), "ticket": t, "seq": core.engine.last_seq()}),
            ))
        }
        _ => Ok(json_response(
            StatusCode::OK,
            json!({"counter": core.engine.counter_view(s, counter, now), "ticket": null, "seq": core.engine.last_seq()}),
        )),
    }
}

async fn reprint(
    app: &Arc<App>,
    s: &Site,
    u: &UserCtx,
    tref: Option<TicketRef>,
    device: Option<&str>,
) -> ApiResult {
    let tref = tref.ok_or_else(|| ApiError::invalid("name the ticket to reprint"))?;
    let dev = device.ok_or_else(|| {
        ApiError::invalid("name the kiosk to print on: {\"device\": \"kiosk-1\"}")
    })?;
    let d = app
        .auth
        .device(dev)
        .filter(|d| d.site == s.id && d.printer.is_some())
        .ok_or_else(|| {
            ApiError::invalid(format!("'{dev}' is not a printing device of this site"))
        })?;
    let id = {
        let core = app.shared.core.lock().expect("lock");
        let t = core
            .engine
            .find_ticket(&s.id, &tref)
            .ok_or_else(|| ApiError::not_found("no such ticket today"))?;
        let unit = s.service(&t.service).map(|x| x.unit.as_str());
        if !unit.is_some_and(|unit| u.may_unit(unit)) {
            return Err(ApiError::forbidden(
                "That ticket is in another unit's queue.",
            ));
        }
        t.id
    };
    let status = crate::printing::print(app, &d, id).await;
    Ok(json_response(
        StatusCode::OK,
        json!({"ticket": id, "print": status}),
    ))
}

// ---- supervisor ------------------------------------------------------------------------------------

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct AcceptingBody {
    accepting: bool,
}

/// The service a supervisor names, when it is one of their units'.
fn supervisor_for_service<'s>(
    p: &Principal,
    s: &'s Site,
    service: &str,
) -> Result<&'s vuoro_engine::config::Service, ApiError> {
    let u = p.supervisor()?;
    let svc = s
        .service(service)
        .ok_or_else(|| ApiError::not_found(format!("no service '{service}'")))?;
    if !u.may_unit(&svc.unit) {
        return Err(ApiError::forbidden(
            "That service belongs to a unit you do not supervise.",
        ));
    }
    Ok(svc)
}

async fn set_accepting(
    State(app): AppState,
    Path((sid, service)): Path<(String, String)>,
    p: Principal,
    JsonBody(b): JsonBody<AcceptingBody>,
) -> ApiResult {
    let site_ref = site(&app, &sid)?;
    let s = &*site_ref;
    let service = &supervisor_for_service(&p, s, &service)?.id;
    app.submit(
        Command::SetAccepting {
            site: s.id.clone(),
            service: service.clone(),
            accepting: b.accepting,
        },
        p.actor(),
    )
    .await?;
    let core = app.shared.core.lock().expect("lock");
    let accepting = core
        .engine
        .site_state(&s.id)
        .and_then(|st| st.services.get(service))
        .is_some_and(|x| x.accepting);
    Ok(json_response(
        StatusCode::OK,
        json!({"service": service, "accepting": accepting}),
    ))
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct MoveBody {
    to: String,
}

async fn move_waiting(
    State(app): AppState,
    Path((sid, service)): Path<(String, String)>,
    p: Principal,
    JsonBody(b): JsonBody<MoveBody>,
) -> ApiResult {
    let site_ref = site(&app, &sid)?;
    let s = &*site_ref;
    let from = supervisor_for_service(&p, s, &service)?.id.clone();
    if s.service(&b.to).is_none() {
        return Err(ApiError::invalid(format!("no service '{}'", b.to)));
    }
    let to = supervisor_for_service(&p, s, &b.to)?.id.clone();
    let before = app
        .shared
        .core
        .lock()
        .expect("lock")
        .engine
        .waiting(&s.id, &service);
    app.submit(
        Command::MoveWaiting {
            site: s.id.clone(),
            from,
            to,
        },
        p.actor(),
    )
    .await?;
    Ok(json_response(
        StatusCode::OK,
        json!({"moved": before, "to": b.to}),
    ))
}

async fn end_day(
    State(app): AppState,
    Path(sid): Path<String>,
    p: Principal,
    JsonBody(NoBody): JsonBody<NoBody>,
) -> ApiResult {
    let site_ref = site(&app, &sid)?;
    let s = &*site_ref;
    let u = p.supervisor()?;
    if !s.units.iter().all(|unit| u.may_unit(&unit.id)) {
        return Err(ApiError::forbidden(
            "Ending the day needs a supervisor of every unit of the site.",
        ));
    }
    app.submit(Command::EndDay { site: s.id.clone() }, p.actor())
        .await?;
    Ok(json_response(StatusCode::OK, json!({"ended": true})))
}

// ---- alerts, devices -------------------------------------------------------------------------------

async fn help_request(
    State(app): AppState,
    Path(sid): Path<String>,
    p: Principal,
    JsonBody(NoBody): JsonBody<NoBody>,
) -> ApiResult {
    let site_ref = site(&app, &sid)?;
    let s = &*site_ref;
    let d = match &p {
        Principal::Device(d) if d.kind == DeviceKind::Kiosk => d,
        Principal::Anonymous => return Err(ApiError::unauthenticated()),
        _ => return Err(ApiError::forbidden("Only a kiosk can ask for staff.")),
    };
    if d.site != s.id {
        return Err(ApiError::forbidden("This device belongs to another site."));
    }
    let cmd = Command::RaiseAlert {
        site: s.id.clone(),
        kind: "help_request".into(),
        device: Some(d.id.clone()),
        service: None,
        message: format!("A customer at {} asks for help.", d.id),
    };
    app.submit(cmd, p.actor()).await?;
    Ok(json_response(StatusCode::CREATED, json!({"ok": true})))
}

async fn ack_alert(
    State(app): AppState,
    Path((sid, alert)): Path<(String, u64)>,
    p: Principal,
    JsonBody(NoBody): JsonBody<NoBody>,
) -> ApiResult {
    let site_ref = site(&app, &sid)?;
    let s = &*site_ref;
    let u = p.user()?;
    // An alert about a service belongs to that service's unit; the others (printers, displays, help
    // requests, the disk) to every unit of the site.
    let service = {
        let core = app.shared.core.lock().expect("lock");
        let a = core
            .engine
            .site_state(&s.id)
            .and_then(|st| st.alerts.get(&alert))
            .ok_or_else(|| ApiError::not_found(format!("no open alert {alert}")))?;
        a.service.clone()
    };
    if let Some(svc) = service.as_deref().and_then(|x| s.service(x))
        && !u.may_unit(&svc.unit)
    {
        return Err(ApiError::forbidden(
            "That alert belongs to a unit you do not work for.",
        ));
    }
    app.submit(
        Command::ClearAlert {
            site: s.id.clone(),
            alert,
        },
        p.actor(),
    )
    .await?;
    Ok(json_response(StatusCode::OK, json!({"cleared": alert})))
}

/// Keeps the store's reserve and alerts every site's supervisors when the data disk is nearly full.
pub async fn check_disk(app: &Arc<App>) {
    app.disk.keep_reserve();
    let Some(free) = app.disk.free().filter(|&f| f < app.disk.alert_below) else {
        return;
    };
    for s in &app.hall().sites {
        let cmd = Command::RaiseAlert {
            site: s.id.clone(),
            kind: "disk_low".into(),
            device: None,
            service: None,
            message: format!(
                "The data disk has {} MB free (alert below {} MB): make room before it is full.",
                free / 1024 / 1024,
                app.disk.alert_below / 1024 / 1024
            ),
        };
        let _ = app.submit(cmd, Actor::system()).await;
    }
}

async fn device_me(State(app): AppState, p: Principal) -> ApiResult {
    let Principal::Device(d) = &p else {
        return Err(ApiError::unauthenticated());
    };
    let printer = crate::printing::printer_json(&app, d);
    Ok(json_response(
        StatusCode::OK,
        json!({"device": {"id": d.id, "site": d.site, "kind": d.kind, "location": d.location,
                          "services": d.services, "has_printer": d.printer.is_some(), "printer": printer}}),
    ))
}

#[derive(Deserialize)]
struct DeviceQuery {
    device: Option<String>,
}

/// Demo only, loopback only: hands the demo device's token to a browser on this machine, so the demo
/// kiosk works out of the box. A real configuration has no demo tokens and this answers 404.
async fn demo_device_token(
    State(app): AppState,
    ConnectInfo(peer): ConnectInfo<SocketAddr>,
    Query(q): Query<DeviceQuery>,
) -> ApiResult {
    if !app.deployment.server.demo || !peer.ip().is_loopback() {
        return Err(ApiError::not_found("no demo here"));
    }
    let id = q.device.unwrap_or_else(|| "kiosk-1".into());
    let d = app
        .deployment
        .device(&id)
        .ok_or_else(|| ApiError::not_found(format!("no device '{id}'")))?;
    let token = d
        .demo_token
        .clone()
        .ok_or_else(|| ApiError::not_found("that device has no demo token"))?;
    // A demo device revoked from the console stays revoked: its token is not handed out again.
    if app.auth.resolve(&token).is_none() {
        return Err(ApiError::not_found("that device is revoked"));
    }
    Ok(json_response(
        StatusCode::OK,
        json!({"token": token, "device": d.id}),
    ))
}

// ---- stats -----------------------------------------------------------------------------------------

async fn stats_today(State(app): AppState, Path(sid): Path<String>, p: Principal) -> ApiResult {
    let u = p.user()?;
    let site_ref = site(&app, &sid)?;
    let s = &*site_ref;
    let tz = s.tz();
    let core = app.shared.core.lock().expect("lock");
    let st = core
        .engine
        .site_state(&s.id)
        .ok_or_else(|| ApiError::not_found("no state"))?;
    // (hour, service) -> (arrivals, waits seen, total wait seconds)
    let mut acc: BTreeMap<(u32, String), (u32, u32, i64)> = BTreeMap::new();
    for t in st.tickets.values() {
        if !s
            .service(&t.service)
            .is_some_and(|svc| u.may_unit(&svc.unit))
        {
            continue;
        }
        let hour = t.issued_at.with_timezone(&tz).hour();
        let e = acc.entry((hour, t.service.to_string())).or_default();
        e.0 += 1;
        if let Some(called) = t.called_at {
            e.1 += 1;
            e.2 += (called - t.issued_at).num_seconds().max(0);
        }
    }
    let hours: Vec<Value> = acc
        .into_iter()
        .map(|((hour, service), (arrivals, n, total))| {
            json!({"hour": hour, "service": service, "arrivals": arrivals,
                   "mean_wait_seconds": if n > 0 { Some(total / n as i64) } else { None }})
        })
        .collect();
    Ok(json_response(
        StatusCode::OK,
        json!({"date": st.date, "hours": hours}),
    ))
}

/// The kiosk's speech mode: only kiosk devices, at most 120 texts a minute each after a first 200 (a screen read aloud is a few dozen clips at once).
async fn speech(
    State(app): AppState,
    p: Principal,
    query: Result<Query<crate::audio::SpeechQuery>, axum::extract::rejection::QueryRejection>,
) -> Response {
    let d = match &p {
        Principal::Device(d) if d.kind == DeviceKind::Kiosk => d,
        Principal::Anonymous => return ApiError::unauthenticated().into_response(),
        _ => return ApiError::forbidden("Only a kiosk may have speech rendered.").into_response(),
    };
    if app.speech_limit.check_key(&d.id).is_err() {
        return ApiError::rate_limited().into_response();
    }
    if app.disk.low() {
        return ApiError::unavailable("The disk is nearly full: no speech is rendered.")
            .into_response();
    }
    crate::audio::speech_text(app.audio.clone(), query).await
}

async fn openapi() -> Response {
    (
        [(header::CONTENT_TYPE, "application/json")],
        include_str!("../openapi.json"),
    )
        .into_response()
}

/// The WebSocket protocol's AsyncAPI document (vuoro-protocol).
async fn asyncapi() -> Response {
    (
        [(header::CONTENT_TYPE, "application/json")],
        vuoro_protocol::ASYNCAPI,
    )
        .into_response()
}
