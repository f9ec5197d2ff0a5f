//! The web clients, embedded in the release binary (read from the source tree in debug builds):
//! /kiosk/, /display/, /desk/ and the shared client code at /shared/. No other origin is ever referenced.
//! The config's `[brand]` reaches every page as `GET /brand.css` (its colours as custom properties that
//! shared-ui/theme.css reads), `GET /brand.json` (the name and whether there is a logo, for
//! shared-ui/brand.js) and `GET /brand/logo`.

use std::sync::Arc;

use axum::Router;
use axum::extract::{Path, State};
use axum::http::{StatusCode, header};
use axum::response::{Html, IntoResponse, Response};
use axum::routing::get;
use rust_embed::RustEmbed;

use crate::deployment::{Brand, Deployment};

/// The Content-Security-Policy of every HTML page the daemon serves.
pub const PAGE_CSP: &str = "default-src 'self'; img-src 'self' data: blob:; media-src 'self' blob:; style-src 'self'; connect-src 'self'; frame-ancestors 'none'";

/// The largest logo file served.
pub const MAX_LOGO_BYTES: u64 = 256 * 1024;

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
                    (header::CONTENT_SECURITY_POLICY, PAGE_CSP.to_string()),
                ],
                file.data.into_owned(),
            )
                .into_response()
        }
        None => (StatusCode::NOT_FOUND, "not found").into_response(),
    }
}

/// The web clients' routes. They need nothing of the daemon but the deployment (its `[brand]`).
pub fn router<S: Clone + Send + Sync + 'static>(deployment: Arc<Deployment>) -> Router<S> {
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
            "/admin",
            get(|| async { axum::response::Redirect::permanent("/admin/") }),
        )
        .route("/admin/", get(|| async { serve::<Desk>("admin.html") }))
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
        .route("/brand.css", get(brand_css))
        .route("/brand.json", get(brand_json))
        .route("/brand/logo", get(brand_logo))
        .with_state(deployment)
}

fn text_headers(mime: &str) -> [(header::HeaderName, String); 3] {
    [
        (header::CONTENT_TYPE, mime.to_string()),
        (header::CACHE_CONTROL, "no-cache".to_string()),
        (header::X_CONTENT_TYPE_OPTIONS, "nosniff".to_string()),
    ]
}

/// The brand's colours as the custom properties shared-ui/theme.css reads (`--brand-primary`,
/// `--brand-on-primary`, `--brand-accent`); a colour left out of the config is left out here, and the
/// theme's own one applies. The values were checked as `#rrggbb` when the config was parsed.
pub fn brand_css_text(brand: &Brand) -> String {
    let mut css = String::from(
        "/* The config's [brand] colours; shared-ui/theme.css falls back to its own for any not set. */\n:root {",
    );
    for (name, value) in [
        ("--brand-primary", &brand.primary),
        ("--brand-on-primary", &brand.on_primary),
        ("--brand-accent", &brand.accent),
    ] {
        if let Some(v) = value {
            css.push_str(&format!("\n  {name}: {v};"));
        }
    }
    css.push_str("\n}\n");
    css
}

async fn brand_css(State(deployment): State<Arc<Deployment>>) -> Response {
    (
        text_headers("text/css; charset=utf-8"),
        brand_css_text(&deployment.brand),
    )
        .into_response()
}

/// The brand's name and its logo's address; the logo only while its file passes `check`, so no client
/// shows a broken image.
async fn brand_json(State(deployment): State<Arc<Deployment>>) -> Response {
    let cfg = deployment.clone();
    let logo = cfg.brand.logo.is_some()
        && tokio::task::spawn_blocking(move || {
            let errors = check(&cfg);
            for e in &errors {
                tracing::warn!("{e}");
            }
            errors.is_empty()
        })
        .await
        .unwrap_or(false);
    let body = serde_json::json!({
        "name": deployment.brand.name,
        "logo": logo.then_some("/brand/logo"),
    });
    (text_headers("application/json"), body.to_string()).into_response()
}

/// The logo's type by its extension (the config check allows only these two).
fn logo_mime(path: &str) -> &'static str {
    if path.to_ascii_lowercase().ends_with(".svg") {
        "image/svg+xml"
    } else {
        "image/png"
    }
}

/// Reads the logo file and checks that it is what its name says, within the size limit.
fn read_logo(path: &str) -> Result<Vec<u8>, String> {
    let size = std::fs::metadata(path)
        .map_err(|e| format!("brand.logo '{path}' cannot be read: {e}"))?
        .len();
    if size > MAX_LOGO_BYTES {
        return Err(format!(
            "brand.logo '{path}' has {size} bytes; at most {MAX_LOGO_BYTES} (256 KiB) are served"
        ));
    }
    let bytes =
        std::fs::read(path).map_err(|e| format!("brand.logo '{path}' cannot be read: {e}"))?;
    let ok = if logo_mime(path) == "image/png" {
        bytes.starts_with(b"\x89PNG\r\n\x1a\n")
    } else {
        std::str::from_utf8(&bytes).is_ok_and(|t| t.contains("<svg"))
    };
    if ok {
        Ok(bytes)
    } else {
        Err(format!(
            "brand.logo '{path}' is not a {} file",
            if logo_mime(path) == "image/png" {
                "PNG"
            } else {
                "SVG"
            }
        ))
    }
}

/// The brand's file checks: the logo exists, is at most 256 KiB and is the SVG or PNG its name says (the
/// engine checked the name; it reads no files). `/brand.json` names the logo only while they pass.
pub fn check(cfg: &Deployment) -> Vec<String> {
    cfg.brand
        .logo
        .as_deref()
        .and_then(|p| read_logo(p).err())
        .into_iter()
        .collect()
}

async fn brand_logo(State(deployment): State<Arc<Deployment>>) -> Response {
    let Some(path) = deployment.brand.logo.clone() else {
        return (StatusCode::NOT_FOUND, "no logo is configured").into_response();
    };
    match tokio::task::spawn_blocking(move || read_logo(&path).map(|b| (logo_mime(&path), b))).await
    {
        Ok(Ok((mime, bytes))) => (
            [
                (header::CONTENT_TYPE, mime.to_string()),
                (header::CACHE_CONTROL, "no-cache".to_string()),
                (header::X_CONTENT_TYPE_OPTIONS, "nosniff".to_string()),
                // An SVG opened on its own runs no script and loads nothing.
                (
                    header::CONTENT_SECURITY_POLICY,
                    "default-src 'none'; style-src 'unsafe-inline'; sandbox".to_string(),
                ),
            ],
            bytes,
        )
            .into_response(),
        Ok(Err(e)) => {
            tracing::warn!("{e}");
            (StatusCode::NOT_FOUND, "the logo cannot be read").into_response()
        }
        Err(_) => (StatusCode::INTERNAL_SERVER_ERROR, "the logo cannot be read").into_response(),
    }
}

/// The start page: links to the clients. Like every page, under a CSP (it loads nothing at all).
async fn index() -> impl IntoResponse {
    (
        [
            (header::REFERRER_POLICY, "no-referrer"),
            (
                header::CONTENT_SECURITY_POLICY,
                "default-src 'none'; frame-ancestors 'none'",
            ),
        ],
        index_html(),
    )
}

fn index_html() -> Html<&'static str> {
    Html(concat!(
        "<!doctype html><html lang=\"en\"><head><meta charset=\"utf-8\"><title>Vuoro</title>",
        "<meta name=\"viewport\" content=\"width=device-width, initial-scale=1\"></head><body>",
        "<main><h1>Vuoro</h1><ul>",
        "<li><a href=\"/kiosk/\">Ticket kiosk</a></li>",
        "<li><a href=\"/display/?site=iso-omena&amp;id=hall\">Hall display</a></li>",
        "<li><a href=\"/desk/\">Staff desk</a></li>",
        "<li><a href=\"/desk/supervisor.html\">Supervisor view</a></li>",
        "<li><a href=\"/admin/\">Administration</a></li>",
        "<li><a href=\"/public/\">Waiting times (public)</a></li>",
        "<li><a href=\"/api/v1/openapi.json\">API description (OpenAPI)</a></li>",
        "</ul></main></body></html>"
    ))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn brand(logo: &std::path::Path) -> Deployment {
        let mut cfg = Deployment::default();
        cfg.brand.logo = Some(logo.display().to_string());
        cfg
    }

    #[test]
    fn the_logo_must_exist_fit_and_be_what_its_name_says() {
        let dir = std::env::temp_dir().join(format!("vuoro-brand-{}", std::process::id()));
        std::fs::create_dir_all(&dir).unwrap();
        let svg = dir.join("logo.svg");
        std::fs::write(&svg, r#"<svg xmlns="http://www.w3.org/2000/svg"/>"#).unwrap();
        assert!(check(&brand(&svg)).is_empty());

        let missing = dir.join("missing.svg");
        assert!(check(&brand(&missing))[0].contains("cannot be read"));

        let fake_png = dir.join("logo.png");
        std::fs::write(&fake_png, "<svg/>").unwrap();
        assert!(check(&brand(&fake_png))[0].contains("is not a PNG file"));

        let big = dir.join("big.svg");
        std::fs::write(&big, vec![b' '; MAX_LOGO_BYTES as usize + 1]).unwrap();
        assert!(check(&brand(&big))[0].contains("at most 262144"));
        std::fs::remove_dir_all(&dir).unwrap();
    }

    #[test]
    fn brand_css_names_only_the_colours_set() {
        let b = Brand {
            primary: Some("#123456".into()),
            ..Brand::default()
        };
        let css = brand_css_text(&b);
        assert!(css.contains("--brand-primary: #123456;"));
        assert!(!css.contains("--brand-on-primary"));
    }
}
