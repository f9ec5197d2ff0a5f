//! Checks every request passes before its handler, in one place:
//! - a device token published in the demo config is refused from any client but loopback, whatever the
//!   config says;
//! - a state-changing request authenticated by the session cookie must come from the daemon's own
//!   origin (or one in `server.allowed_origins`): `Origin`, else `Sec-Fetch-Site`;
//! - a request body is JSON (`Content-Type: application/json`; the whole config as `application/toml`),
//!   so an HTML form cannot post one;
//! - every error of the API has the contract's JSON shape, also those the router makes itself (a path
//!   or query that does not parse, a method a path does not take);
//! - every answer says `nosniff` and refuses framing; API answers are `no-store`.

use std::collections::HashSet;
use std::net::{IpAddr, SocketAddr};
use std::sync::Arc;

use axum::extract::{ConnectInfo, Request, State};
use axum::http::{HeaderMap, HeaderValue, Method, header};
use axum::middleware::Next;
use axum::response::{IntoResponse, Response};

use crate::auth::{published_token_hashes, sha256_hex, token_from_headers};
use crate::deployment::Deployment;
use crate::error::{ApiError, ErrorCode};

/// What the checks need to know: the daemon's own address, the origins and proxies it trusts, and the
/// device tokens that are public knowledge.
pub struct Guard {
    public_url: String,
    allowed_origins: Vec<String>,
    trusted_proxies: Vec<IpAddr>,
    /// SHA-256 of device tokens that are public knowledge (the shipped configs', and any `demo_token`).
    published: HashSet<String>,
}

impl Guard {
    pub fn new(deployment: &Deployment, public_url: &str) -> Guard {
        Guard {
            public_url: public_url.trim_end_matches('/').to_string(),
            allowed_origins: deployment.server.allowed_origins.clone(),
            trusted_proxies: deployment.server.trusted_proxies.clone(),
            published: published_token_hashes()
                .into_iter()
                .chain(
                    deployment
                        .devices
                        .iter()
                        .filter_map(|d| d.demo_token.as_deref().map(sha256_hex)),
                )
                .collect(),
        }
    }

    /// A device token anyone can know: accepted from loopback clients only.
    pub fn is_published(&self, token: &str) -> bool {
        self.published.contains(&sha256_hex(token))
    }

    /// The client's address: the peer's, or behind a trusted proxy the last address the proxies did not
    /// add themselves in `X-Forwarded-For`.
    pub fn client_ip(&self, peer: SocketAddr, headers: &HeaderMap) -> IpAddr {
        let proxies = &self.trusted_proxies;
        if !proxies.contains(&peer.ip()) {
            return peer.ip();
        }
        let hops: Vec<IpAddr> = headers
            .get_all("x-forwarded-for")
            .iter()
            .filter_map(|v| v.to_str().ok())
            .flat_map(|v| v.split(','))
            .filter_map(|h| h.trim().parse().ok())
            .collect();
        hops.into_iter()
            .rev()
            .find(|ip| !proxies.contains(ip))
            .unwrap_or(peer.ip())
    }

    /// Whether a browser says the request comes from this server's own pages (or an allowed origin).
    /// A client that sends neither `Origin` nor `Sec-Fetch-Site` is not a browser acting for another page.
    pub fn same_origin(&self, headers: &HeaderMap) -> bool {
        if let Some(origin) = headers.get(header::ORIGIN).and_then(|v| v.to_str().ok()) {
            return self.origin_allowed(headers, origin);
        }
        match headers.get("sec-fetch-site").and_then(|v| v.to_str().ok()) {
            Some(site) => site == "same-origin" || site == "none",
            None => true,
        }
    }

    /// `origin` is this server (as the request's `Host` names it, or its public URL) or an allowed origin.
    pub fn origin_allowed(&self, headers: &HeaderMap, origin: &str) -> bool {
        let host = headers
            .get(header::HOST)
            .and_then(|v| v.to_str().ok())
            .unwrap_or("");
        origin == format!("http://{host}")
            || origin == format!("https://{host}")
            || origin == self.public_url
            || self.allowed_origins.iter().any(|o| o == origin)
    }
}

pub async fn check(State(guard): State<Arc<Guard>>, req: Request, next: Next) -> Response {
    let api = req.uri().path().starts_with("/api/");
    let refused = refusal(&guard, &req);
    let mut res = match refused {
        Some(e) => e.into_response(),
        None => next.run(req).await,
    };
    if api {
        res = json_error(res).await;
    }
    let h = res.headers_mut();
    h.insert(
        header::X_CONTENT_TYPE_OPTIONS,
        HeaderValue::from_static("nosniff"),
    );
    h.insert(header::X_FRAME_OPTIONS, HeaderValue::from_static("DENY"));
    h.insert(
        header::REFERRER_POLICY,
        HeaderValue::from_static("no-referrer"),
    );
    // Pages set their own policy (web.rs); everything else may load nothing and be framed by nobody.
    h.entry(header::CONTENT_SECURITY_POLICY)
        .or_insert(HeaderValue::from_static(
            "default-src 'none'; frame-ancestors 'none'",
        ));
    if api {
        // Sound files set their own (they never change); everything else is live state.
        h.entry(header::CACHE_CONTROL)
            .or_insert(HeaderValue::from_static("no-store"));
    }
    res
}

/// An error answer that is not JSON (one the router made: a rejected path, query or method) as the
/// contract's `{"error": {"code", "message"}}`, its text as the message. HTML pages (single sign-on's
/// failure page, for a browser) stay as they are.
async fn json_error(res: Response) -> Response {
    let status = res.status();
    let is_json = res
        .headers()
        .get(header::CONTENT_TYPE)
        .and_then(|v| v.to_str().ok())
        .is_some_and(|v| v.starts_with("application/json") || v.starts_with("text/html"));
    if !(status.is_client_error() || status.is_server_error()) || is_json {
        return res;
    }
    let code = ErrorCode::for_status(status);
    let (parts, body) = res.into_parts();
    let text = axum::body::to_bytes(body, 16 * 1024)
        .await
        .map(|b| String::from_utf8_lossy(&b).trim().to_string())
        .unwrap_or_default();
    let message = if text.is_empty() {
        status.canonical_reason().unwrap_or("error").to_string()
    } else {
        text
    };
    let mut out = (status, ApiError::new(code, message)).into_response();
    // Keep what the router said besides the body (`Allow` on a 405).
    for (name, value) in parts.headers.iter() {
        if name != header::CONTENT_TYPE && name != header::CONTENT_LENGTH {
            out.headers_mut().insert(name.clone(), value.clone());
        }
    }
    out
}

fn refusal(guard: &Guard, req: &Request) -> Option<ApiError> {
    let headers = req.headers();
    let token = token_from_headers(headers);
    if let Some(t) = &token
        && guard.is_published(t)
    {
        let client = req
            .extensions()
            .get::<ConnectInfo<SocketAddr>>()
            .map(|c| guard.client_ip(c.0, headers));
        if !client.is_some_and(|ip| ip.is_loopback()) {
            return Some(ApiError::new(
                ErrorCode::Unauthenticated,
                "This token is published in the demo configuration and is refused from the network.",
            ));
        }
    }
    let changes = !matches!(*req.method(), Method::GET | Method::HEAD | Method::OPTIONS);
    if !changes || !req.uri().path().starts_with("/api/") {
        return None;
    }
    let by_cookie = token.is_some() && headers.get(header::AUTHORIZATION).is_none();
    if by_cookie && !guard.same_origin(headers) {
        return Some(ApiError::new(
            ErrorCode::OriginNotAllowed,
            "A request signed in by cookie must come from this server's own pages.",
        ));
    }
    // The one body that is not JSON: the whole config as TOML (`PUT /api/v1/admin/config`). A form
    // cannot send it either: a form's types are urlencoded, multipart and text/plain.
    let toml_config =
        req.uri().path() == "/api/v1/admin/config" && is_type(headers, "application/toml");
    if has_body(headers) && !is_type(headers, "application/json") && !toml_config {
        return Some(ApiError::new(
            ErrorCode::UnsupportedMediaType,
            "Send the body as JSON (Content-Type: application/json).",
        ));
    }
    None
}

fn has_body(headers: &HeaderMap) -> bool {
    let length = headers
        .get(header::CONTENT_LENGTH)
        .and_then(|v| v.to_str().ok())
        .and_then(|v| v.trim().parse::<u64>().ok());
    length.is_some_and(|n| n > 0) || headers.contains_key(header::TRANSFER_ENCODING)
}

fn is_type(headers: &HeaderMap, media: &str) -> bool {
    headers
        .get(header::CONTENT_TYPE)
        .and_then(|v| v.to_str().ok())
        .and_then(|v| v.split(';').next())
        .is_some_and(|m| m.trim().eq_ignore_ascii_case(media))
}
