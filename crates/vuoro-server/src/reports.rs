//! Reports, public wait times, the audit trail and data retention in the daemon (docs/reports.md,
//! docs/privacy.md). The figures come from vuoro-reports; this module adds HTTP, scoping by role and
//! unit, a cache of today's not yet folded events, the audit of staff requests, and the maintenance task
//! (fold complete days, blank expired ticket tokens, purge detail older than `server.retention_days`).

use std::collections::HashMap;
use std::net::SocketAddr;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use axum::Router;
use axum::extract::{ConnectInfo, Path as UrlPath, Query, Request, State};
use axum::http::{HeaderMap, HeaderValue, Method, header};
use axum::middleware::Next;
use axum::response::{IntoResponse, Response};
use axum::routing::get;
use chrono::{DateTime, NaiveDate, Utc};
use serde::Deserialize;
use serde_json::{Value, json};
use vuoro_reports::cells::{Cells, SiteInfo, add_facts};
use vuoro_reports::store;
use vuoro_reports::{Fact, Folder};
use vuoro_store::{AuditQuery, Database, RequestRecord};

use crate::App;
use crate::auth::{Principal, token_from_headers};
use crate::error::ApiError;

/// How often the maintenance task runs. Tokens of an ended day are blanked at most this long after the
/// day rolled over.
const MAINTENANCE_EVERY: Duration = Duration::from_secs(15 * 60);

/// Reports' own state: the database and the cached fold of today's events per site.
pub struct Reports {
    db: Arc<dyn Database>,
    /// A std mutex: held only inside `spawn_blocking`, never across an `.await`.
    tails: Mutex<HashMap<String, Tail>>,
}

/// Today's events of one site folded so far: what is not yet in the stored rollups.
#[derive(Default, Clone)]
struct Tail {
    /// The watermark this tail starts after; a new fold makes it stale.
    folded: u64,
    /// The last event pushed.
    after: u64,
    folder: Folder,
    facts: Vec<Fact>,
}

#[derive(Clone)]
struct Ctx {
    app: Arc<App>,
    reports: Arc<Reports>,
    audit: AuditWriter,
}

/// A record of the audit trail, and who waits for it to be stored.
type AuditJob = (RequestRecord, tokio::sync::oneshot::Sender<bool>);

/// Stores audit records: one thread takes every record queued and stores them in one transaction (group
/// commit), then tells each request its record is stored. A staff request is answered only after its
/// record is; many at once share one commit instead of one each.
#[derive(Clone)]
struct AuditWriter {
    tx: tokio::sync::mpsc::Sender<AuditJob>,
}

impl AuditWriter {
    fn start(reports: Arc<Reports>) -> AuditWriter {
        let (tx, mut rx) = tokio::sync::mpsc::channel::<AuditJob>(4096);
        std::thread::Builder::new()
            .name("vuoro-audit".into())
            .spawn(move || {
                while let Some(first) = rx.blocking_recv() {
                    let mut batch = vec![first];
                    while batch.len() < 512 {
                        match rx.try_recv() {
                            Ok(j) => batch.push(j),
                            Err(_) => break,
                        }
                    }
                    let (records, waiting): (Vec<RequestRecord>, Vec<_>) =
                        batch.into_iter().unzip();
                    let stored = reports.db.record_requests(&records);
                    if let Err(e) = &stored {
                        tracing::warn!(error = %e, "audit records could not be stored");
                    }
                    for done in waiting {
                        let _ = done.send(stored.is_ok());
                    }
                }
            })
            .expect("spawn the audit thread");
        AuditWriter { tx }
    }

    /// Stores `record`; true once it is committed.
    async fn store(&self, record: RequestRecord) -> bool {
        let (done, stored) = tokio::sync::oneshot::channel();
        if self.tx.send((record, done)).await.is_err() {
            return false;
        }
        stored.await.unwrap_or(false)
    }
}

impl Reports {
    pub fn new(db: Arc<dyn Database>) -> Reports {
        Reports {
            db,
            tails: Mutex::new(HashMap::new()),
        }
    }

    /// Hourly cells of `site` not folded yet, provisional at `now`, from the cached tail brought up to date.
    fn tail_cells(
        &self,
        cfg: &vuoro_engine::Hall,
        site: &str,
        now: DateTime<Utc>,
    ) -> store::Result<Cells> {
        let folded = self.db.folded_seq(site)?;
        let mut tails = self.tails.lock().expect("lock");
        let tail = tails.entry(site.to_string()).or_default();
        if tail.folded != folded || tail.after < folded {
            *tail = Tail {
                folded,
                after: folded,
                ..Tail::default()
            };
        }
        for ev in self.db.site_events(site, tail.after, u64::MAX)? {
            tail.after = ev.seq;
            tail.folder.push(&ev, &mut tail.facts);
        }
        let mut facts = tail.facts.clone();
        tail.folder.clone().finish_open(now, &mut facts);
        drop(tails);
        let mut cells = Cells::new();
        add_facts(&mut cells, &facts, &SiteInfo::new(cfg));
        Ok(cells)
    }
}

/// Adds the report, public wait-time and audit routes to the daemon's router, the audit of staff
/// requests around every route, and starts the maintenance task.
pub fn attach(router: Router, app: &Arc<App>, db: Arc<dyn Database>) -> anyhow::Result<Router> {
    let reports = Arc::new(Reports::new(db));
    spawn_maintenance(app.clone(), reports.clone());
    let ctx = Ctx {
        app: app.clone(),
        audit: AuditWriter::start(reports.clone()),
        reports,
    };
    let routes = Router::new()
        .route("/api/v1/reports", get(report))
        .route("/api/v1/reports/feedback", get(feedback_comments))
        .route("/api/v1/audit", get(audit))
        .route("/api/v1/public/sites/{site}/waits", get(public_waits))
        .with_state(ctx.clone());
    Ok(router
        .merge(routes)
        .layer(axum::middleware::from_fn_with_state(ctx, audit_requests)))
}

/// Who is calling: as the `Principal` extractor does, from the bearer token or the session cookie.
fn principal(app: &App, headers: &HeaderMap) -> Result<Principal, ApiError> {
    match token_from_headers(headers) {
        None => Ok(Principal::Anonymous),
        Some(t) => app.auth.resolve(&t).ok_or_else(ApiError::unauthenticated),
    }
}

fn parse_date(name: &str, v: Option<&str>, default: NaiveDate) -> Result<NaiveDate, ApiError> {
    match v {
        None | Some("") => Ok(default),
        Some(s) => s.parse().map_err(|_| {
            ApiError::malformed(format!("{name} must be a date like 2026-03-02, not '{s}'"))
        }),
    }
}

// ---- reports ---------------------------------------------------------------------------------------

#[derive(Deserialize)]
struct ReportParams {
    site: Option<String>,
    from: Option<String>,
    to: Option<String>,
    group: Option<String>,
    format: Option<String>,
    lang: Option<String>,
}

async fn report(
    State(ctx): State<Ctx>,
    headers: HeaderMap,
    Query(p): Query<ReportParams>,
) -> Result<Response, ApiError> {
    let who = principal(&ctx.app, &headers)?;
    let u = who.supervisor()?.clone();
    let hall = ctx.app.hall();
    let cfg = hall.clone();
    let tz_site = match p.site.as_deref() {
        Some(s) => cfg
            .site(s)
            .ok_or_else(|| ApiError::not_found(format!("no site '{s}'")))?,
        None => cfg
            .sites
            .first()
            .ok_or_else(|| ApiError::not_found("no site"))?,
    };
    let today = tz_site.local_date(Utc::now());
    let from = parse_date("from", p.from.as_deref(), today)?;
    let to = parse_date("to", p.to.as_deref(), from.max(today))?;
    let group = p.group.as_deref().unwrap_or("service");
    let mut q = vuoro_reports::cli::query(&cfg, p.site.as_deref(), from, to, group, p.lang.clone())
        .map_err(ApiError::invalid)?;
    q.units = u.units.clone();
    if let Some(site) = p.site.as_deref().and_then(|s| cfg.site(s))
        && !site.units.iter().any(|x| u.may_unit(&x.id))
    {
        return Err(ApiError::forbidden("You supervise no unit of this site."));
    }
    if p.site.is_none() {
        q.sites = store::comparable_sites(&cfg, u.units.as_ref());
    }
    let csv = match p.format.as_deref() {
        Some("csv") => true,
        Some("json") => false,
        Some(f) => {
            return Err(ApiError::invalid(format!(
                "format '{f}' is not csv or json"
            )));
        }
        // Any Accept header that names CSV (a client may send several).
        None => headers
            .get_all(header::ACCEPT)
            .iter()
            .filter_map(|v| v.to_str().ok())
            .any(|a| a.contains("text/csv")),
    };
    let reports = ctx.reports.clone();
    let table = tokio::task::spawn_blocking(move || -> store::Result<vuoro_reports::Table> {
        let now = Utc::now();
        store::report_with_tail(&*reports.db, &cfg, &q, |site| {
            reports.tail_cells(&cfg, site, now)
        })
    })
    .await
    .map_err(|_| ApiError::unavailable("the report failed"))?
    .map_err(|e| {
        tracing::error!(error = %e, "report failed");
        ApiError::unavailable("the report could not be read")
    })?;
    if csv {
        let name = format!(
            "vuoro-{}-{}-{}-{}.csv",
            p.site.as_deref().unwrap_or("sites"),
            table.query.group.as_str(),
            table.query.from,
            table.query.to
        );
        let mut res = table.to_csv().into_response();
        let h = res.headers_mut();
        h.insert(
            header::CONTENT_TYPE,
            HeaderValue::from_static("text/csv; charset=utf-8"),
        );
        if let Ok(v) = HeaderValue::from_str(&format!("attachment; filename=\"{name}\"")) {
            h.insert(header::CONTENT_DISPOSITION, v);
        }
        h.insert(header::CACHE_CONTROL, HeaderValue::from_static("no-store"));
        return Ok(res);
    }
    let mut res = axum::Json(table.to_json()).into_response();
    res.headers_mut()
        .insert(header::CACHE_CONTROL, HeaderValue::from_static("no-store"));
    Ok(res)
}

// ---- feedback comments ------------------------------------------------------------------------------

#[derive(Deserialize)]
struct FeedbackParams {
    site: Option<String>,
    from: Option<String>,
    to: Option<String>,
    lang: Option<String>,
}

/// The comments customers left with their feedback, for the supervisors of the service's unit: the local
/// date, the service, its unit, the rating and the comment, newest last. No counter and no time of day
/// (they would point at the staff member who served), and only what is still in the log (the retention).
async fn feedback_comments(
    State(ctx): State<Ctx>,
    headers: HeaderMap,
    Query(p): Query<FeedbackParams>,
) -> Result<Response, ApiError> {
    const LIMIT: usize = 2000;
    let who = principal(&ctx.app, &headers)?;
    let u = who.supervisor()?.clone();
    let hall = ctx.app.hall();
    let cfg = hall.clone();
    let site = match p.site.as_deref() {
        Some(s) => cfg
            .site(s)
            .ok_or_else(|| ApiError::not_found(format!("no site '{s}'")))?,
        None => cfg
            .sites
            .first()
            .ok_or_else(|| ApiError::not_found("no site"))?,
    };
    if !site.units.iter().any(|x| u.may_unit(&x.id)) {
        return Err(ApiError::forbidden("You supervise no unit of this site."));
    }
    let today = site.local_date(Utc::now());
    let from = parse_date("from", p.from.as_deref(), today)?;
    let to = parse_date("to", p.to.as_deref(), from.max(today))?;
    if from > to {
        return Err(ApiError::invalid(format!(
            "from ({from}) is after to ({to})"
        )));
    }
    let lang = p
        .lang
        .clone()
        .unwrap_or_else(|| site.default_language().to_string());
    let tz = site.tz();
    let start = store::local_midnight(&tz, from);
    let end = store::local_midnight(&tz, to + chrono::Duration::days(1));
    let db = ctx.reports.db.clone();
    let sid = site.id.to_string();
    let events =
        tokio::task::spawn_blocking(move || db.feedback_events(&sid, start, end, LIMIT + 1))
            .await
            .map_err(|_| ApiError::unavailable("the feedback query failed"))?
            .map_err(|e| {
                tracing::error!(error = %e, "feedback query failed");
                ApiError::unavailable("the feedback could not be read")
            })?;
    let truncated = events.len() > LIMIT;
    let comments: Vec<Value> = events
        .iter()
        .take(LIMIT)
        .filter_map(|ev| match &ev.kind {
            vuoro_engine::EventKind::FeedbackGiven {
                service,
                rating,
                comment: Some(comment),
                ..
            } => {
                let svc = site.service(service)?;
                u.may_unit(&svc.unit).then(|| {
                    json!({
                        "date": ev.at.with_timezone(&tz).date_naive(),
                        "service": service,
                        "service_name": vuoro_engine::config::text_in(&svc.name, &lang, site.default_language()),
                        "unit": svc.unit,
                        "rating": rating,
                        "comment": comment,
                    })
                })
            }
            _ => None,
        })
        .collect();
    let mut res = axum::Json(json!({
        "site": site.id, "from": from, "to": to,
        "comments": comments, "truncated": truncated,
    }))
    .into_response();
    res.headers_mut()
        .insert(header::CACHE_CONTROL, HeaderValue::from_static("no-store"));
    Ok(res)
}

// ---- audit -----------------------------------------------------------------------------------------

#[derive(Deserialize)]
struct AuditParams {
    site: Option<String>,
    from: Option<String>,
    to: Option<String>,
    user: Option<String>,
    limit: Option<usize>,
}

async fn audit(
    State(ctx): State<Ctx>,
    headers: HeaderMap,
    Query(p): Query<AuditParams>,
) -> Result<Response, ApiError> {
    let who = principal(&ctx.app, &headers)?;
    let u = who.user()?;
    if !u.roles.contains(&crate::deployment::Role::Admin) {
        return Err(ApiError::forbidden(
            "Only an admin may read the audit trail.",
        ));
    }
    let cfg = &ctx.app.hall();
    let site = match p.site.as_deref() {
        Some(s) => Some(
            cfg.site(s)
                .ok_or_else(|| ApiError::not_found(format!("no site '{s}'")))?,
        ),
        None => None,
    };
    let tz_site = site
        .or(cfg.sites.first())
        .ok_or_else(|| ApiError::not_found("no site"))?;
    let today = tz_site.local_date(Utc::now());
    let from = parse_date("from", p.from.as_deref(), today)?;
    let to = parse_date("to", p.to.as_deref(), from.max(today))?;
    if from > to {
        return Err(ApiError::invalid(format!(
            "from ({from}) is after to ({to})"
        )));
    }
    let tz = tz_site.tz();
    let start = store::local_midnight(&tz, from);
    let end = store::local_midnight(&tz, to + chrono::Duration::days(1));
    let q = AuditQuery {
        site: p.site.clone(),
        from: start,
        to: end,
        user: p.user.clone().filter(|x| !x.is_empty()),
        limit: p.limit.unwrap_or(1000).clamp(1, 10_000),
    };
    let db = ctx.reports.db.clone();
    let (entries, truncated) = tokio::task::spawn_blocking(move || store::audit(&*db, &q))
        .await
        .map_err(|_| ApiError::unavailable("the audit query failed"))?
        .map_err(|e| {
            tracing::error!(error = %e, "audit query failed");
            ApiError::unavailable("the audit trail could not be read")
        })?;
    Ok(axum::Json(json!({
        "site": p.site, "from": from, "to": to, "user": p.user,
        "entries": entries, "truncated": truncated,
    }))
    .into_response())
}

/// Records staff requests that change something, and every request for reports or the audit trail,
/// with who, when, and from which address and browser; and every sign-in attempt (without the name
/// typed when it fails: a password typed into the name field must not be stored).
async fn audit_requests(State(ctx): State<Ctx>, req: Request, next: Next) -> Response {
    let path = req.uri().path().to_string();
    let method = req.method().clone();
    let reading = path.starts_with("/api/v1/reports") || path.starts_with("/api/v1/audit");
    let login = path == "/api/v1/auth/login"
        || path == "/api/v1/devices/enrol"
        || (path.starts_with("/api/v1/auth/oidc/") && path.ends_with("/callback"));
    let changes = !matches!(method, Method::GET | Method::HEAD | Method::OPTIONS);
    if !path.starts_with("/api/v1/") || !(changes || reading || login) {
        return next.run(req).await;
    }
    let who = match token_from_headers(req.headers()) {
        Some(t) => ctx.app.auth.resolve(&t),
        None => None,
    };
    let user = match &who {
        Some(Principal::User(u)) => Some(u.username.clone()),
        _ => None,
    };
    if user.is_none() && !login {
        // Devices' actions are events with the device as actor; the public is not recorded.
        return next.run(req).await;
    }
    let client = req
        .extensions()
        .get::<ConnectInfo<SocketAddr>>()
        .map(|c| c.0.ip().to_string());
    let agent = req
        .headers()
        .get(header::USER_AGENT)
        .and_then(|v| v.to_str().ok())
        .map(|s| s.chars().take(200).collect::<String>());
    let query = req.uri().query().map(str::to_string);
    let site = site_of(&ctx.app, &path, query.as_deref());
    let res = next.run(req).await;
    let status = res.status();
    let (kind, actor) = match user {
        Some(u) => ("user", Some(u)),
        None => {
            // A sign-in: who it was is known once it succeeded, from the new session.
            let signed_in = res
                .headers()
                .get(header::SET_COOKIE)
                .and_then(|v| v.to_str().ok())
                .and_then(|c| c.split(';').next())
                .and_then(|kv| kv.split_once('='))
                .and_then(|(_, token)| ctx.app.auth.resolve(token));
            match signed_in {
                Some(Principal::User(u)) => ("user", Some(u.username.clone())),
                _ => ("anonymous", None),
            }
        }
    };
    let shown_path = match (&query, reading) {
        (Some(q), true) => format!("{}?{q}", redact(&path)),
        _ => redact(&path),
    };
    let record = RequestRecord {
        at: Utc::now(),
        actor_kind: kind.into(),
        actor_id: actor,
        site,
        method: method.to_string(),
        path: shown_path,
        status: status.as_u16(),
        client,
        user_agent: agent,
    };
    if !ctx.audit.store(record).await {
        tracing::warn!("an audit record could not be stored");
    }
    res
}

/// A path with any ticket token replaced.
fn redact(path: &str) -> String {
    match path.strip_prefix("/api/v1/tickets/") {
        Some(_) => "/api/v1/tickets/{token}".into(),
        None => path.into(),
    }
}

/// The site a request is about: from `/sites/{site}/`, a counter's site, or `site=` in the query.
fn site_of(app: &App, path: &str, query: Option<&str>) -> Option<String> {
    let mut parts = path.split('/');
    while let Some(p) = parts.next() {
        match p {
            "sites" => return parts.next().map(str::to_string),
            "counters" => {
                let c = parts.next()?;
                return app
                    .hall()
                    .sites
                    .iter()
                    .find(|s| s.counter(c).is_some())
                    .map(|s| s.id.to_string());
            }
            _ => {}
        }
    }
    query?
        .split('&')
        .find_map(|kv| kv.strip_prefix("site="))
        .map(str::to_string)
}

// ---- public wait times -----------------------------------------------------------------------------

async fn public_waits(
    State(ctx): State<Ctx>,
    UrlPath(sid): UrlPath<String>,
) -> Result<Response, ApiError> {
    let app = &ctx.app;
    let hall = app.hall();
    let site = hall
        .site(&sid)
        .ok_or_else(|| ApiError::not_found(format!("no site '{sid}'")))?;
    let now = Utc::now();
    let today = site.local_date(now);
    let (queues, seq, answers) = {
        let core = app.shared.core.lock().expect("lock");
        let answers = core
            .engine
            .site_state(&site.id)
            .map_or([0; 5], |st| st.feedback);
        (
            core.engine.public_queues(site),
            core.engine.last_seq(),
            answers,
        )
    };
    // The day's feedback for the whole site: how many answered and the mean rating (never a comment,
    // never per counter).
    let count: u32 = answers.iter().sum();
    let sum: u32 = answers.iter().zip(1..).map(|(n, r)| n * r).sum();
    let feedback = json!({
        "count": count,
        "mean": (count > 0).then(|| (sum as f64 / count as f64 * 100.0).round() / 100.0),
    });
    let mut services: Vec<Value> = Vec::new();
    for pq in queues {
        // The configured services behind this public entry: one, or every sensitive one of the group.
        let members: Vec<&vuoro_engine::config::Service> = site
            .services
            .iter()
            .filter(|s| pq.id == s.public_id())
            .collect();
        let openings: Vec<_> = members.iter().map(|s| site.opening(Some(s), now)).collect();
        let open = openings.iter().any(|o| o.open);
        let opens_at = openings.iter().filter_map(|o| o.opens_at).min();
        let closes_at = openings
            .iter()
            .filter(|o| o.open)
            .filter_map(|o| o.closes_at)
            .max();
        let hours_today = if site.always_open {
            Value::Null
        } else {
            let mut spans: Vec<vuoro_engine::config::Span> = members
                .iter()
                .flat_map(|s| site.spans_on(Some(s), today).iter().copied())
                .collect();
            spans.sort();
            spans.dedup();
            json!(spans)
        };
        let unit_name = pq
            .unit
            .as_deref()
            .and_then(|u| site.unit(u))
            .map(|u| json!(u.name));
        services.push(json!({
            "id": pq.id,
            "name": pq.name,
            "unit": pq.unit,
            "unit_name": unit_name,
            "open": open,
            "accepting": pq.accepting && open,
            "waiting": pq.waiting,
            "eta_minutes": if open { json!(pq.eta_minutes) } else { Value::Null },
            "eta_reason": if open { json!(pq.eta_reason) } else { Value::Null },
            "opens_at": if open { Value::Null } else { json!(opens_at) },
            "closes_at": closes_at,
            "hours_today": hours_today,
        }));
    }
    let body = json!({
        "site": {"id": site.id, "name": site.name, "timezone": site.timezone,
                 "languages": site.languages, "always_open": site.always_open},
        "generated_at": now,
        "seq": seq,
        "services": services,
        "feedback": feedback,
    });
    let mut res = axum::Json(body).into_response();
    let h = res.headers_mut();
    h.insert(
        header::CACHE_CONTROL,
        HeaderValue::from_static("public, max-age=15"),
    );
    // Open data: anyone may read it from any page (no credentials are involved).
    h.insert(
        header::ACCESS_CONTROL_ALLOW_ORIGIN,
        HeaderValue::from_static("*"),
    );
    Ok(res)
}

// ---- maintenance -----------------------------------------------------------------------------------

/// Every 15 minutes (and shortly after start): fold complete days, blank their ticket tokens, purge
/// ticket-level detail older than the retention.
fn spawn_maintenance(app: Arc<App>, reports: Arc<Reports>) {
    let mut stop = app.shutdown.subscribe();
    tokio::spawn(async move {
        let mut tick = tokio::time::interval_at(
            tokio::time::Instant::now() + Duration::from_secs(5),
            MAINTENANCE_EVERY,
        );
        loop {
            tokio::select! {
                _ = tick.tick() => {}
                _ = stop.changed() => break,
            }
            let app2 = app.clone();
            let reports2 = reports.clone();
            let done = tokio::task::spawn_blocking(move || {
                store::purge(
                    &*reports2.db,
                    &app2.hall(),
                    Utc::now(),
                    app2.deployment.server.retention_days,
                )
            })
            .await;
            match done {
                Ok(Ok(s)) => {
                    if s.fold.days > 0 || s.events_deleted > 0 || s.requests_deleted > 0 {
                        tracing::info!(
                            days_folded = s.fold.days,
                            tokens_blanked = s.fold.tokens_blanked,
                            events_deleted = s.events_deleted,
                            requests_deleted = s.requests_deleted,
                            "reports maintenance"
                        );
                    }
                }
                Ok(Err(e)) => tracing::warn!(error = %e, "reports maintenance failed"),
                Err(_) => tracing::warn!("reports maintenance task failed"),
            }
        }
    });
}
