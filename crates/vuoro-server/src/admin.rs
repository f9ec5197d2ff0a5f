//! The admin console's API for devices: list them with their tokens, show a one-time enrolment code,
//! revoke; and the public end of enrolment, where a kiosk, display or print agent trades a code for its
//! own token. Tokens and codes are kept as SHA-256 only (auth.rs, the store's `device_tokens`).

use std::net::SocketAddr;
use std::sync::Arc;

use axum::extract::{ConnectInfo, Path, State};
use axum::http::{HeaderMap, StatusCode};
use axum::response::{IntoResponse, Response};
use serde::Deserialize;
use serde_json::json;

use crate::App;
use crate::auth::{Principal, UserCtx};
use crate::deployment::Role;
use crate::error::{ApiError, JsonBody};

type ApiResult = Result<Response, ApiError>;

/// Devices are the admins': a kiosk serves every unit of its site.
fn admin(p: &Principal) -> Result<&UserCtx, ApiError> {
    let u = p.user()?;
    if u.roles.contains(&Role::Admin) {
        Ok(u)
    } else {
        Err(ApiError::forbidden("Only an admin may manage devices."))
    }
}

/// `GET /api/v1/admin/devices`: every device of the config, with its tokens.
pub async fn devices(State(app): State<Arc<App>>, p: Principal) -> ApiResult {
    admin(&p)?;
    let app2 = app.clone();
    let list = tokio::task::spawn_blocking(move || app2.auth.device_list())
        .await
        .map_err(|_| ApiError::unavailable("cannot list devices"))??;
    Ok((StatusCode::OK, axum::Json(list)).into_response())
}

/// `POST /api/v1/admin/devices/{id}/enrolment`: a one-time code for the device, shown in the console.
pub(crate) async fn enrolment(
    State(app): State<Arc<App>>,
    p: Principal,
    Path(id): Path<String>,
    JsonBody(crate::error::NoBody): JsonBody<crate::error::NoBody>,
) -> ApiResult {
    let u = admin(&p)?;
    let by = u.username.clone();
    let app2 = app.clone();
    let id2 = id.clone();
    let (code, expires) = tokio::task::spawn_blocking(move || app2.auth.enrolment_code(&id2, &by))
        .await
        .map_err(|_| ApiError::unavailable("cannot make a code"))??;
    Ok((
        StatusCode::CREATED,
        axum::Json(json!({"device": id, "code": code, "expires_at": expires})),
    )
        .into_response())
}

/// `DELETE /api/v1/admin/devices/{id}`: every token of the device refused from now on; its open
/// WebSockets close.
pub async fn revoke(
    State(app): State<Arc<App>>,
    p: Principal,
    Path(id): Path<String>,
) -> ApiResult {
    let u = admin(&p)?;
    let by = u.username.clone();
    let app2 = app.clone();
    let id2 = id.clone();
    let revoked = tokio::task::spawn_blocking(move || app2.auth.revoke(&id2, &by))
        .await
        .map_err(|_| ApiError::unavailable("cannot revoke"))??;
    tracing::info!(device = %id, revoked, "device revoked");
    Ok((
        StatusCode::OK,
        axum::Json(json!({"device": id, "revoked": revoked})),
    )
        .into_response())
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
pub struct EnrolBody {
    code: String,
    /// The device the client believes it is (a kiosk's `?device=`): a code for another is refused
    /// before it is used.
    #[serde(default)]
    device: Option<String>,
}

/// `POST /api/v1/devices/enrol`: a one-time code for the device's own token. Public, counted per client
/// address.
pub async fn enrol(
    State(app): State<Arc<App>>,
    ConnectInfo(peer): ConnectInfo<SocketAddr>,
    headers: HeaderMap,
    JsonBody(b): JsonBody<EnrolBody>,
) -> ApiResult {
    let ip = app.client_ip(peer, &headers);
    if app.device_enrolments.check_key(&ip).is_err() {
        return Err(ApiError::rate_limited());
    }
    let app2 = app.clone();
    let (token, d) =
        tokio::task::spawn_blocking(move || app2.auth.enrol_checked(&b.code, b.device.as_deref()))
            .await
            .map_err(|_| ApiError::unavailable("cannot enrol"))??;
    tracing::info!(device = %d.id, "device enrolled");
    Ok((
        StatusCode::CREATED,
        axum::Json(json!({"device": {"id": d.id, "site": d.site, "kind": d.kind}, "token": token})),
    )
        .into_response())
}
