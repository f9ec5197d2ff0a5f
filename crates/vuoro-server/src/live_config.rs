//! The config while the daemon runs: which version is in force at start (the file's, or a later change
//! made through the admin console or API), and `GET/PUT /api/v1/admin/config`, which read and replace
//! it without a restart. Every version is kept in the database with who made it (the store's
//! `config_versions`), so an earlier one can be restored. See docs/operations.md, "Changing the config
//! while it runs".

use std::sync::Arc;

use axum::extract::{Path, Query, State};
use axum::http::{HeaderMap, HeaderValue, StatusCode, header};
use axum::response::{IntoResponse, Response};
use chrono::Utc;
use serde::Deserialize;
use serde_json::{Value, json};
use vuoro_store::{ConfigVersion, Database};

use crate::App;
use crate::auth::{Principal, sha256_hex};
use crate::config::{self, Config};
use crate::deployment::{Deployment, Role};
use crate::error::{ApiError, ErrorCode};

type ApiResult = Result<Response, ApiError>;

/// The config to start with, and its version. The file's text is recorded as a version whenever it
/// differs from the file's text recorded last (an admin edited the file: it wins); otherwise the newest
/// version is taken, which may be a change made through the console or API since.
pub fn at_start(store: &dyn Database, file: Config) -> anyhow::Result<(u64, Config)> {
    let sha = sha256_hex(&file.text);
    let last_file = store.latest_config(Some("file"))?;
    let latest = store.latest_config(None)?;
    if let (Some(f), Some(l)) = (&last_file, &latest)
        && f.sha256 == sha
    {
        if l.version == f.version {
            return Ok((f.version, file));
        }
        match config::load(&l.text) {
            Ok(c) => {
                tracing::info!(
                    version = l.version,
                    by = %l.created_by,
                    "the config changed through the administration since the file was read: that version is in force"
                );
                return Ok((l.version, c));
            }
            Err(errors) => tracing::warn!(
                version = l.version,
                mistakes = errors.len(),
                "the newest config version does not load with this Vuoro: the file is in force"
            ),
        }
    }
    let version = store.add_config_version(&ConfigVersion {
        version: 0,
        text: file.text.to_string(),
        sha256: sha,
        source: "file".into(),
        created_at: Utc::now(),
        created_by: "config file".into(),
    })?;
    Ok((version, file))
}

/// Where a change came from: the administration's pages sign in by cookie, programs (`vuoro config
/// push`, scripts) by bearer token.
fn source_of(headers: &HeaderMap) -> &'static str {
    if headers.contains_key(header::AUTHORIZATION) {
        "api"
    } else {
        "console"
    }
}

fn etag(version: u64) -> String {
    format!("\"v{version}\"")
}

/// The whole config is the admins'.
fn admin(p: &Principal) -> Result<String, ApiError> {
    let u = p.user()?;
    if u.roles.contains(&Role::Admin) {
        Ok(u.username.clone())
    } else {
        Err(ApiError::forbidden(
            "Only an admin may read or change the config.",
        ))
    }
}

#[derive(Deserialize)]
pub struct ConfigQuery {
    /// `toml` (the default) or `json`: the same config as a JSON object, for the console's forms.
    #[serde(default)]
    format: Option<String>,
}

/// `GET /api/v1/admin/config`: the config in force as TOML (or JSON), with its version as the ETag.
pub async fn get_config(
    State(app): State<Arc<App>>,
    p: Principal,
    Query(q): Query<ConfigQuery>,
) -> ApiResult {
    admin(&p)?;
    let (version, cfg) = app.shared.config();
    let tag = HeaderValue::from_str(&etag(version)).expect("ascii");
    let mut res = match q.format.as_deref() {
        None | Some("toml") => (
            [(header::CONTENT_TYPE, "application/toml; charset=utf-8")],
            cfg.text.to_string(),
        )
            .into_response(),
        Some("json") => {
            let tree: Value = toml::from_str(&cfg.text).map_err(|e| {
                ApiError::unavailable(format!("the config in force does not read: {e}"))
            })?;
            axum::Json(json!({"version": version, "config": tree})).into_response()
        }
        Some(other) => {
            return Err(ApiError::invalid(format!(
                "format '{other}' is not one of toml, json"
            )));
        }
    };
    res.headers_mut().insert(header::ETAG, tag);
    Ok(res)
}

/// `PUT /api/v1/admin/config` with `If-Match`: the whole config replaced (TOML, or `{"config": {...}}` as
/// JSON from the console), checked like `vuoro check-config`, then applied without a restart.
pub async fn put_config(
    State(app): State<Arc<App>>,
    p: Principal,
    headers: HeaderMap,
    body: axum::body::Bytes,
) -> ApiResult {
    let by = admin(&p)?;
    let json_body = headers
        .get(header::CONTENT_TYPE)
        .and_then(|v| v.to_str().ok())
        .is_some_and(|v| v.starts_with("application/json"));
    let source = source_of(&headers);
    let text = if json_body {
        #[derive(Deserialize)]
        #[serde(deny_unknown_fields)]
        struct Body {
            config: Value,
        }
        let b: Body = serde_json::from_slice(&body).map_err(|e| {
            ApiError::malformed(format!("The body is not {{\"config\": {{...}}}}: {e}"))
        })?;
        if !b.config.is_object() {
            return Err(ApiError::invalid("config must be an object"));
        }
        toml::to_string(&b.config)
            .map_err(|e| ApiError::invalid(format!("config cannot be written as TOML: {e}")))?
    } else {
        String::from_utf8(body.to_vec())
            .map_err(|_| ApiError::malformed("The config is not UTF-8 text."))?
    };
    apply(&app, &headers, text, source, &by).await
}

/// `GET /api/v1/admin/config/versions`: the newest 100 versions, newest first.
pub async fn versions(State(app): State<Arc<App>>, p: Principal) -> ApiResult {
    admin(&p)?;
    let (current, _) = app.shared.config();
    let store = app.auth.store();
    let list = tokio::task::spawn_blocking(move || store.config_versions(100))
        .await
        .map_err(|_| ApiError::unavailable("cannot list versions"))?
        .map_err(|e| ApiError::unavailable(format!("cannot list versions: {e}")))?;
    let list: Vec<Value> = list
        .into_iter()
        .map(|v| {
            json!({"version": v.version, "source": v.source, "created_at": v.created_at,
                   "created_by": v.created_by, "current": v.version == current})
        })
        .collect();
    Ok(axum::Json(json!({"versions": list})).into_response())
}

/// `POST /api/v1/admin/config/versions/{version}/restore` with `If-Match`: an earlier version in force
/// again, as a new version.
pub async fn restore(
    State(app): State<Arc<App>>,
    p: Principal,
    headers: HeaderMap,
    Path(version): Path<u64>,
    crate::error::JsonBody(crate::error::NoBody): crate::error::JsonBody<crate::error::NoBody>,
) -> ApiResult {
    let by = admin(&p)?;
    let store = app.auth.store();
    let old = tokio::task::spawn_blocking(move || store.config_version(version))
        .await
        .map_err(|_| ApiError::unavailable("cannot read the version"))?
        .map_err(|e| ApiError::unavailable(format!("cannot read the version: {e}")))?
        .ok_or_else(|| ApiError::not_found(format!("No config version {version}.")))?;
    apply(&app, &headers, old.text, "restore", &by).await
}

/// Checks and applies a new config text: 409 when `If-Match` is not the version in force, 422 with every
/// mistake and its line, 409 when the engine refuses (someone would be dropped); nothing changes then.
async fn apply(
    app: &Arc<App>,
    headers: &HeaderMap,
    text: String,
    source: &str,
    by: &str,
) -> ApiResult {
    let Some(wanted) = headers.get(header::IF_MATCH).and_then(|v| v.to_str().ok()) else {
        return Err(ApiError::new(
            ErrorCode::PreconditionRequired,
            "Send If-Match with the ETag of the config you changed (GET /api/v1/admin/config).",
        ));
    };
    // One change at a time: the check of the version and the change are one step.
    let _one = app.config_changes.lock().await;
    let (current, running) = app.shared.config();
    if wanted.trim() != etag(current) {
        return Err(ApiError::new(
            ErrorCode::Conflict(vuoro_engine::Conflict::Conflict),
            format!(
                "The config changed since you read it: version {current} is in force. Read it again and redo your change."
            ),
        ));
    }
    let text2 = text.clone();
    let loaded = tokio::task::spawn_blocking(move || config::load(&text2))
        .await
        .map_err(|_| ApiError::unavailable("cannot check the config"))?;
    let new = loaded.map_err(|errors| {
        let list: Vec<String> = errors.iter().map(|e| e.to_string()).collect();
        ApiError::invalid(format!(
            "The config has {} mistake(s); nothing was changed:\n{}",
            list.len(),
            list.join("\n")
        ))
    })?;
    if new.text == running.text {
        let mut res =
            axum::Json(json!({"version": current, "changed": false, "restart_needed": []}))
                .into_response();
        res.headers_mut().insert(
            header::ETAG,
            HeaderValue::from_str(&etag(current)).expect("ascii"),
        );
        return Ok(res);
    }
    let restart = restart_needed(&running.deployment, &new.deployment);
    let deployment = new.deployment.clone();
    let version = app
        .writer
        .reconfigure(
            new,
            ConfigVersion {
                version: 0,
                sha256: sha256_hex(&text),
                text,
                source: source.into(),
                created_at: Utc::now(),
                created_by: by.into(),
            },
        )
        .await?;
    app.auth.reload(&deployment).map_err(|e| {
        ApiError::unavailable(format!("the users and devices were not reloaded: {e}"))
    })?;
    tracing::info!(version, by, source, "config changed");
    let mut res = (
        StatusCode::OK,
        axum::Json(json!({"version": version, "changed": true, "restart_needed": restart})),
    )
        .into_response();
    res.headers_mut().insert(
        header::ETAG,
        HeaderValue::from_str(&etag(version)).expect("ascii"),
    );
    Ok(res)
}

/// The parts of the deployment that take effect only at the daemon's next start, where the new config
/// changes them.
fn restart_needed(old: &Deployment, new: &Deployment) -> Vec<&'static str> {
    let mut out = Vec::new();
    let same =
        |a: &dyn std::fmt::Debug, b: &dyn std::fmt::Debug| format!("{a:?}") == format!("{b:?}");
    if !same(&old.server, &new.server) {
        out.push("server");
    }
    if !same(&old.brand, &new.brand) {
        out.push("brand");
    }
    if !same(&old.backup, &new.backup) {
        out.push("backup");
    }
    if !same(&old.notify, &new.notify) {
        out.push("notify");
    }
    if !same(&old.oidc, &new.oidc) {
        out.push("oidc");
    }
    let printers = |d: &Deployment| -> Vec<String> {
        let mut v: Vec<String> = d
            .devices
            .iter()
            .map(|x| format!("{}={:?}", x.id, x.printer))
            .collect();
        v.sort();
        v
    };
    if printers(old) != printers(new) {
        out.push("printers");
    }
    out
}

/// A site's services as the console edits them, for admins and for supervisors of their own units.
fn services_json(
    app: &App,
    site: &str,
    user: &crate::auth::UserCtx,
) -> Result<(u64, Value), ApiError> {
    let (version, cfg) = app.shared.config();
    let s = cfg
        .hall
        .site(site)
        .ok_or_else(|| ApiError::not_found(format!("no site '{site}'")))?;
    let services: Vec<Value> = s
        .services
        .iter()
        .filter(|svc| user.may_unit(&svc.unit))
        .map(|svc| {
            json!({"id": svc.id, "unit": svc.unit, "name": svc.name, "hours": svc.hours,
                   "last_ticket_minutes_before_close": svc.last_ticket_minutes_before_close})
        })
        .collect();
    let languages: Vec<Value> = s
        .languages
        .iter()
        .map(|code| {
            let name = cfg
                .hall
                .language(code)
                .map(|l| l.name.clone())
                .unwrap_or_else(|| code.clone());
            json!({"code": code, "name": name})
        })
        .collect();
    let units: Vec<Value> = s
        .units
        .iter()
        .filter(|u| user.may_unit(&u.id))
        .map(|u| json!({"id": u.id, "name": u.name}))
        .collect();
    Ok((
        version,
        json!({"version": version, "site": s.id, "languages": languages, "units": units, "services": services}),
    ))
}

/// `GET /api/v1/admin/sites/{site}/services`: the services a supervisor may change (an admin: all).
pub async fn site_services(
    State(app): State<Arc<App>>,
    p: Principal,
    Path(site): Path<String>,
) -> ApiResult {
    let user = p.supervisor()?;
    let (version, body) = services_json(&app, &site, user)?;
    let mut res = axum::Json(body).into_response();
    res.headers_mut().insert(
        header::ETAG,
        HeaderValue::from_str(&etag(version)).expect("ascii"),
    );
    Ok(res)
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ServiceChange {
    /// The name in each language; a language left out has no name of its own.
    name: std::collections::BTreeMap<String, String>,
    /// Own opening hours per weekday (`{"mon": ["08:00-16:00"]}`); null: the site's.
    hours: Option<std::collections::BTreeMap<String, Vec<String>>>,
    last_ticket_minutes_before_close: u32,
}

/// `PUT /api/v1/admin/sites/{site}/services/{service}` with `If-Match`: a service's names, hours and last
/// ticket's time changed in the config in force (admins, and supervisors of the service's unit).
pub async fn put_service(
    State(app): State<Arc<App>>,
    p: Principal,
    headers: HeaderMap,
    Path((site, service)): Path<(String, String)>,
    crate::error::JsonBody(change): crate::error::JsonBody<ServiceChange>,
) -> ApiResult {
    let user = p.supervisor()?;
    let by = user.username.clone();
    let (_, cfg) = app.shared.config();
    let unit = cfg
        .hall
        .site(&site)
        .ok_or_else(|| ApiError::not_found(format!("no site '{site}'")))?
        .service(&service)
        .ok_or_else(|| ApiError::not_found(format!("no service '{service}' at '{site}'")))?
        .unit
        .clone();
    if !user.may_unit(&unit) {
        return Err(ApiError::forbidden(format!(
            "Service '{service}' belongs to unit '{unit}', which is not yours."
        )));
    }
    if change.name.values().all(|n| n.trim().is_empty()) {
        return Err(ApiError::invalid(
            "name: give the service a name in at least one language",
        ));
    }
    let mut doc: toml::Table = toml::from_str(&cfg.text)
        .map_err(|e| ApiError::unavailable(format!("the config in force does not read: {e}")))?;
    let entry = doc
        .get_mut("site")
        .and_then(|v| v.as_array_mut())
        .and_then(|sites| {
            sites
                .iter_mut()
                .find(|s| s.get("id").and_then(|i| i.as_str()) == Some(site.as_str()))
        })
        .and_then(|s| s.get_mut("service"))
        .and_then(|v| v.as_array_mut())
        .and_then(|svcs| {
            svcs.iter_mut()
                .find(|s| s.get("id").and_then(|i| i.as_str()) == Some(service.as_str()))
        })
        .and_then(|s| s.as_table_mut())
        .ok_or_else(|| ApiError::unavailable("the service is not where the config says"))?;
    let names: toml::Table = change
        .name
        .into_iter()
        .filter(|(_, n)| !n.trim().is_empty())
        .map(|(l, n)| (l, toml::Value::String(n.trim().to_string())))
        .collect();
    entry.insert("name".into(), toml::Value::Table(names));
    match change.hours {
        None => {
            entry.remove("hours");
        }
        Some(days) => {
            let table: toml::Table = days
                .into_iter()
                .filter(|(_, spans)| !spans.is_empty())
                .map(|(d, spans)| {
                    (
                        d,
                        toml::Value::Array(spans.into_iter().map(toml::Value::String).collect()),
                    )
                })
                .collect();
            entry.insert("hours".into(), toml::Value::Table(table));
        }
    }
    if change.last_ticket_minutes_before_close == 0 {
        entry.remove("last_ticket_minutes_before_close");
    } else {
        entry.insert(
            "last_ticket_minutes_before_close".into(),
            toml::Value::Integer(i64::from(change.last_ticket_minutes_before_close)),
        );
    }
    let text = toml::to_string(&doc)
        .map_err(|e| ApiError::unavailable(format!("the config cannot be written: {e}")))?;
    apply(&app, &headers, text, source_of(&headers), &by).await
}
