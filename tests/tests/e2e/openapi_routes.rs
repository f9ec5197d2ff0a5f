//! The OpenAPI document (crates/vuoro-server/openapi.json) and the daemon's router name the same routes:
//! every route in the router's source is documented, and every documented operation is served by the
//! running daemon (not the API's "no such API path" fallback, not 405). Web pages (web.rs) are not API.

use std::collections::BTreeSet;
use std::path::Path;

use super::*;

const METHODS: [&str; 5] = ["get", "post", "put", "patch", "delete"];

/// The end of the argument list that starts right after an opening parenthesis at `start`:
/// the index of the matching `)`. String literals are skipped.
fn closing_paren(s: &[u8], start: usize) -> usize {
    let (mut depth, mut i, mut in_str) = (1usize, start, false);
    while i < s.len() {
        match (in_str, s[i]) {
            (true, b'\\') => i += 1,
            (true, b'"') => in_str = false,
            (false, b'"') => in_str = true,
            (false, b'(') => depth += 1,
            (false, b')') => {
                depth -= 1;
                if depth == 0 {
                    return i;
                }
            }
            _ => {}
        }
        i += 1;
    }
    panic!("unbalanced parentheses in router source");
}

/// `(METHOD, path)` of each `.route("path", get(..).post(..))` call in `src`, with `prefix` put before
/// the path.
fn routes_in(src: &str, prefix: &str) -> Vec<(String, String)> {
    let b = src.as_bytes();
    let mut out = Vec::new();
    let mut from = 0;
    while let Some(at) = src[from..].find(".route(") {
        let open = from + at + ".route(".len();
        let close = closing_paren(b, open);
        let args = &src[open..close];
        let path = args
            .split('"')
            .nth(1)
            .expect("a route's first argument is a string literal");
        // Method routers at the top level of the arguments: `get(x)`, `post(x).get(y)`.
        let (ab, mut i, mut depth) = (args.as_bytes(), 0, 0usize);
        while i < ab.len() {
            match ab[i] {
                b'(' => depth += 1,
                b')' => depth = depth.saturating_sub(1),
                _ if depth == 0 => {
                    for m in METHODS {
                        let boundary =
                            i == 0 || !(ab[i - 1].is_ascii_alphanumeric() || ab[i - 1] == b'_');
                        if boundary && args[i..].starts_with(&format!("{m}(")) {
                            out.push((m.to_uppercase(), format!("{prefix}{path}")));
                        }
                    }
                }
                _ => {}
            }
            i += 1;
        }
        from = close;
    }
    out
}

/// Every API route of the daemon, read from the server crate's source (web pages left out).
fn router_routes() -> BTreeSet<(String, String)> {
    let dir = Path::new(env!("CARGO_MANIFEST_DIR")).join("../crates/vuoro-server/src");
    let mut all = BTreeSet::new();
    for entry in std::fs::read_dir(&dir).expect("server sources") {
        let path = entry.expect("entry").path();
        if path.extension().is_none_or(|e| e != "rs") || path.ends_with("web.rs") {
            continue;
        }
        let text = std::fs::read_to_string(&path).expect("read source");
        // Unit test modules build routers of their own.
        let text = text
            .split("#[cfg(test)]\nmod tests")
            .next()
            .unwrap_or_default();
        // Routes given to `.nest("/api/v1", ..)` are relative to it; the rest are absolute.
        match text.find(".nest(\"/api/v1\"") {
            Some(n) => {
                all.extend(routes_in(&text[..n], "/api/v1"));
                all.extend(routes_in(&text[n..], ""));
            }
            None => all.extend(routes_in(text, "")),
        }
    }
    all
}

/// Every operation of the document as `(METHOD, absolute path)`.
fn documented(doc: &Value) -> BTreeSet<(String, String)> {
    let base = doc["servers"][0]["url"].as_str().expect("servers[0].url");
    let mut out = BTreeSet::new();
    for (path, item) in doc["paths"].as_object().expect("paths") {
        let server = item["servers"][0]["url"].as_str().unwrap_or(base);
        let full = format!("{}{path}", server.trim_end_matches('/'));
        for m in METHODS {
            if item.get(m).is_some() {
                out.insert((m.to_uppercase(), full.clone()));
            }
        }
    }
    out
}

/// A router template (`/a/{x}/b`) matches a path whose segments are equal or stand in a `{..}`.
fn template_matches(template: &str, path: &str) -> bool {
    let (t, p): (Vec<&str>, Vec<&str>) = (template.split('/').collect(), path.split('/').collect());
    t.len() == p.len()
        && t.iter()
            .zip(&p)
            .all(|(a, b)| a == b || (a.starts_with('{') && a.ends_with('}')))
}

fn document_file() -> Value {
    let path = Path::new(env!("CARGO_MANIFEST_DIR")).join("../crates/vuoro-server/openapi.json");
    serde_json::from_str(&std::fs::read_to_string(path).expect("openapi.json")).expect("JSON")
}

#[test]
fn every_route_of_the_router_is_documented_and_every_documented_one_is_routed() {
    let routes = router_routes();
    // The parser found the routers at all: a few routes of each file it reads.
    for known in [
        ("POST", "/api/v1/sites/{site}/tickets"),
        ("GET", "/api/v1/sites/{site}/tickets"),
        ("GET", "/healthz"),
        ("GET", "/api/v1/reports"),
        ("GET", "/api/v1/audio/chime.wav"),
    ] {
        assert!(
            routes.contains(&(known.0.to_string(), known.1.to_string())),
            "the router parser missed {known:?}: {routes:?}"
        );
    }
    let doc = documented(&document_file());
    let undocumented: Vec<_> = routes.iter().filter(|r| !doc.contains(r)).collect();
    assert!(
        undocumented.is_empty(),
        "routes missing from openapi.json: {undocumented:?}"
    );
    let unrouted: Vec<_> = doc
        .iter()
        .filter(|(m, p)| {
            !routes
                .iter()
                .any(|(rm, rp)| rm == m && template_matches(rp, p))
        })
        .collect();
    assert!(
        unrouted.is_empty(),
        "operations in openapi.json that no route serves: {unrouted:?}"
    );
}

/// A value for a path or query parameter: its example, else the first of its enum.
fn sample(doc: &Value, param: &Value) -> String {
    let param = match param["$ref"].as_str() {
        Some(r) => &doc["components"]["parameters"][r.rsplit('/').next().expect("name")],
        None => param,
    };
    let v = if param["example"].is_null() {
        param["schema"]["enum"][0].clone()
    } else {
        param["example"].clone()
    };
    match v {
        Value::String(s) => s,
        Value::Null => panic!(
            "parameter {} has neither an example nor an enum",
            param["name"]
        ),
        other => other.to_string(),
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_daemon_serves_every_documented_operation_and_the_document_it_serves_is_the_file() {
    let dir = TempDir::new("openapi-routes");
    let app = spawn_app_in(DEMO, &dir.0).await;
    let mut h = app.http();
    let served = h.get("/api/v1/openapi.json").await.unwrap();
    assert_eq!(served.status, 200);
    let doc = served.json();
    assert_eq!(doc, document_file(), "the daemon serves another document");

    // The fallback this test tells apart from real routes.
    let fallback = |r: &Response| {
        r.status == 405
            || (r.status == 404 && String::from_utf8_lossy(&r.body).contains("no such API path"))
    };
    let none = h
        .get("/api/v1/sites/iso-omena/no-such-thing")
        .await
        .unwrap();
    assert!(fallback(&none), "{}", String::from_utf8_lossy(&none.body));

    let base = doc["servers"][0]["url"].as_str().unwrap().to_string();
    let mut checked = 0;
    for (path, item) in doc["paths"].as_object().unwrap() {
        let server = item["servers"][0]["url"].as_str().unwrap_or(&base);
        for m in METHODS {
            let Some(op) = item.get(m) else { continue };
            let params: Vec<&Value> = item["parameters"]
                .as_array()
                .into_iter()
                .chain(op["parameters"].as_array())
                .flatten()
                .collect();
            let mut url = format!("{}{path}", server.trim_end_matches('/'));
            for p in &params {
                let name = match p["$ref"].as_str() {
                    Some(r) => {
                        doc["components"]["parameters"][r.rsplit('/').next().unwrap()]["name"]
                            .as_str()
                            .unwrap()
                            .to_string()
                    }
                    None => p["name"].as_str().unwrap().to_string(),
                };
                let resolved = match p["$ref"].as_str() {
                    Some(r) => &doc["components"]["parameters"][r.rsplit('/').next().unwrap()],
                    None => *p,
                };
                if resolved["in"] == "path" {
                    url = url.replace(&format!("{{{name}}}"), &sample(&doc, p));
                }
            }
            assert!(!url.contains('{'), "{url}: a path parameter has no value");
            // No credentials: nothing is changed, and every route still answers as itself.
            let body = (m != "get" && m != "delete").then_some(&b"{}"[..]);
            let r = h.request(&m.to_uppercase(), &url, body, &[]).await.unwrap();
            assert!(
                !fallback(&r),
                "{} {url} is documented but not served: {} {}",
                m.to_uppercase(),
                r.status,
                String::from_utf8_lossy(&r.body)
            );
            checked += 1;
        }
    }
    assert!(checked >= 30, "only {checked} operations checked");
    app.stop().await;
}
