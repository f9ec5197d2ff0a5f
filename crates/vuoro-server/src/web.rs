//! The web clients, embedded in the release binary (read from the source tree in debug builds):
//! /kiosk/, /display/, /desk/ and the shared client code at /shared/. No other origin is ever referenced.

use std::sync::Arc;

use axum::Router;
use axum::extract::Path;
use axum::http::{StatusCode, header};
use axum::response::{Html, IntoResponse, Response};
use axum::routing::get;
use rust_embed::RustEmbed;

use crate::App;

#[derive(RustEmbed)]
#[folder = "../../kiosk-ui/"]
struct Kiosk;

#[derive(RustEmbed)]
#[folder = "../../display-ui/"]
struct Display;

#[derive(RustEmbed)]
#[folder = "../../desk-ui/"]
struct Desk;

#[derive(RustEmbed)]
#[folder = "../../shared-ui/"]
struct Shared;

#[derive(RustEmbed)]
#[folder = "../../public-ui/"]
struct Public;

fn serve<E: RustEmbed>(path: &str) -> Response {
    let path = if path.is_empty() || path.ends_with('/') {
        format!("{path}index.html")
    } else {
        path.to_string()
    };
    match E::get(&path) {
        Some(file) => {
            let mime = file.metadata.mimetype().to_string();
            (
                [
                    (header::CONTENT_TYPE, mime),
                    (header::CACHE_CONTROL, "no-cache".to_string()),
                    (header::X_CONTENT_TYPE_OPTIONS, "nosniff".to_string()),
                    (header::REFERRER_POLICY, "no-referrer".to_string()),
                    (
                        header::CONTENT_SECURITY_POLICY,
                        "default-src 'self'; img-src 'self' data: blob:; media-src 'self' blob:; style-src 'self' 'unsafe-inline'; connect-src 'self'; frame-ancestors 'none'".to_string(),
                    ),
                ],
                file.data.into_owned(),
            )
                .into_response()
        }
        None => (StatusCode::NOT_FOUND, "not found").into_response(),
    }
}

pub fn router() -> Router<Arc<App>> {
    Router::new()
        .route("/", get(index))
        .route(
            "/kiosk",
            get(|| async { axum::response::Redirect::permanent("/kiosk/") }),
        )
        .route(
            "/display",
            get(|| async { axum::response::Redirect::permanent("/display/") }),
        )
        .route(
            "/desk",
            get(|| async { axum::response::Redirect::permanent("/desk/") }),
        )
        .route("/kiosk/", get(|| async { serve::<Kiosk>("") }))
        .route("/display/", get(|| async { serve::<Display>("") }))
        .route("/desk/", get(|| async { serve::<Desk>("") }))
        .route(
            "/kiosk/{*path}",
            get(|Path(p): Path<String>| async move { serve::<Kiosk>(&p) }),
        )
        .route(
            "/display/{*path}",
            get(|Path(p): Path<String>| async move { serve::<Display>(&p) }),
        )
        .route(
            "/desk/{*path}",
            get(|Path(p): Path<String>| async move { serve::<Desk>(&p) }),
        )
        .route(
            "/public",
            get(|| async { axum::response::Redirect::permanent("/public/") }),
        )
        .route("/public/", get(|| async { serve::<Public>("") }))
        .route(
            "/public/{*path}",
            get(|Path(p): Path<String>| async move { serve::<Public>(&p) }),
        )
        .route(
            "/shared/{*path}",
            get(|Path(p): Path<String>| async move { serve::<Shared>(&p) }),
        )
}

async fn index() -> Html<&'static str> {
    Html(concat!(
        "<!doctype html><html lang=\"en\"><head><meta charset=\"utf-8\"><title>Vuoro</title>",
        "<meta name=\"viewport\" content=\"width=device-width, initial-scale=1\"></head><body>",
        "<main><h1>Vuoro</h1><ul>",
        "<li><a href=\"/kiosk/\">Ticket kiosk</a></li>",
        "<li><a href=\"/display/?site=iso-omena&amp;id=hall\">Hall display</a></li>",
        "<li><a href=\"/desk/\">Staff desk</a></li>",
        "<li><a href=\"/desk/supervisor.html\">Supervisor view</a></li>",
        "<li><a href=\"/public/\">Waiting times (public)</a></li>",
        "<li><a href=\"/api/v1/openapi.json\">API description (OpenAPI)</a></li>",
        "</ul></main></body></html>"
    ))
}
