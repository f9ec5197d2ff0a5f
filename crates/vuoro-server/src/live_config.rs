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
    let (text, source) = if json_body {
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
        let text = toml::to_string(&b.config)
            .map_err(|e| ApiError::invalid(format!("config cannot be written as TOML: {e}")))?;
        (text, "console")
    } else {
        let text = String::from_utf8(body.to_vec())
            .map_err(|_| ApiError::malformed("The config is not UTF-8 text."))?;
        (text, "api")
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
    crate::error::JsonBody(crate::api::NoBody): crate::error::JsonBody<crate::api::NoBody>,
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
