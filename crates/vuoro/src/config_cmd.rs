//! `vuoro config pull|push`: the config in force on a running daemon, as a file to keep in version
//! control, and back. Signs in as an admin (the password read from standard input, never from the command
//! line), reads or replaces the config with `GET/PUT /api/v1/admin/config`, and signs out. `pull` writes
//! the version it read next to the file (`FILE.version`); `push` sends it as `If-Match`, so a change made
//! meanwhile by someone else is refused rather than overwritten.

use std::io::{BufRead, IsTerminal, Write};
use std::path::{Path, PathBuf};

use anyhow::{Context, bail};

pub struct Target {
    pub server: String,
    pub user: String,
}

fn agent() -> ureq::Agent {
    ureq::Agent::new_with_config(
        ureq::Agent::config_builder()
            .timeout_global(Some(std::time::Duration::from_secs(30)))
            .http_status_as_error(false)
            .build(),
    )
}

fn url(t: &Target, path: &str) -> String {
    format!("{}{path}", t.server.trim_end_matches('/'))
}

/// The daemon's error message in an answer, or its status.
fn why(status: u16, body: &str) -> String {
    serde_json::from_str::<serde_json::Value>(body)
        .ok()
        .and_then(|v| v["error"]["message"].as_str().map(str::to_string))
        .unwrap_or_else(|| format!("HTTP {status}"))
}

/// Signs in with the password from standard input; the session token.
fn sign_in(a: &ureq::Agent, t: &Target) -> anyhow::Result<String> {
    let stdin = std::io::stdin();
    if stdin.is_terminal() {
        eprint!("Password for {}: ", t.user);
        std::io::stderr().flush().ok();
    }
    let mut password = String::new();
    stdin.lock().read_line(&mut password)?;
    let password = password.trim_end_matches(['\n', '\r']);
    let body = serde_json::json!({"username": t.user, "password": password});
    let mut res = a
        .post(&url(t, "/api/v1/auth/login"))
        .header("Content-Type", "application/json")
        .send(body.to_string())
        .with_context(|| format!("cannot reach {}", t.server))?;
    let status = res.status().as_u16();
    let text = res.body_mut().read_to_string()?;
    if status != 200 {
        bail!(
            "signing in as {} was refused: {}",
            t.user,
            why(status, &text)
        );
    }
    let v: serde_json::Value = serde_json::from_str(&text)?;
    v["token"]
        .as_str()
        .map(str::to_string)
        .context("the sign-in answer has no token")
}

fn sign_out(a: &ureq::Agent, t: &Target, token: &str) {
    let _ = a
        .post(&url(t, "/api/v1/auth/logout"))
        .header("Authorization", &format!("Bearer {token}"))
        .header("Content-Type", "application/json")
        .send("{}");
}

fn version_file(file: &Path) -> PathBuf {
    let mut name = file.as_os_str().to_owned();
    name.push(".version");
    PathBuf::from(name)
}

/// Writes the config in force to `file` and its version to `file.version`.
pub fn pull(t: &Target, file: &Path) -> anyhow::Result<String> {
    let a = agent();
    let token = sign_in(&a, t)?;
    let res = a
        .get(&url(t, "/api/v1/admin/config"))
        .header("Authorization", &format!("Bearer {token}"))
        .call();
    sign_out(&a, t, &token);
    let mut res = res.with_context(|| format!("cannot reach {}", t.server))?;
    let status = res.status().as_u16();
    let etag = res
        .headers()
        .get("etag")
        .and_then(|v| v.to_str().ok())
        .map(str::to_string);
    let text = res.body_mut().read_to_string()?;
    if status != 200 {
        bail!("the config was not given: {}", why(status, &text));
    }
    let etag = etag.context("the answer has no ETag")?;
    std::fs::write(file, &text).with_context(|| format!("cannot write {}", file.display()))?;
    std::fs::write(version_file(file), format!("{etag}\n"))?;
    Ok(format!(
        "wrote {} (version {})",
        file.display(),
        etag.trim_matches('"')
    ))
}

/// Sends `file` as the new config, with the version `pull` wrote next to it as `If-Match`.
pub fn push(t: &Target, file: &Path) -> anyhow::Result<String> {
    let text =
        std::fs::read_to_string(file).with_context(|| format!("cannot read {}", file.display()))?;
    let vfile = version_file(file);
    let etag = std::fs::read_to_string(&vfile)
        .with_context(|| {
            format!(
                "cannot read {} (run `vuoro config pull` first)",
                vfile.display()
            )
        })?
        .trim()
        .to_string();
    let a = agent();
    let token = sign_in(&a, t)?;
    let res = a
        .put(&url(t, "/api/v1/admin/config"))
        .header("Authorization", &format!("Bearer {token}"))
        .header("Content-Type", "application/toml")
        .header("If-Match", &etag)
        .send(text);
    sign_out(&a, t, &token);
    let mut res = res.with_context(|| format!("cannot reach {}", t.server))?;
    let status = res.status().as_u16();
    let new_etag = res
        .headers()
        .get("etag")
        .and_then(|v| v.to_str().ok())
        .map(str::to_string);
    let body = res.body_mut().read_to_string()?;
    if status != 200 {
        bail!(
            "the config was not changed ({status}): {}",
            why(status, &body)
        );
    }
    let v: serde_json::Value = serde_json::from_str(&body)?;
    if let Some(e) = new_etag {
        std::fs::write(&vfile, format!("{e}\n"))?;
    }
    let restart: Vec<&str> = v["restart_needed"]
        .as_array()
        .map(|a| a.iter().filter_map(|x| x.as_str()).collect())
        .unwrap_or_default();
    let mut said = if v["changed"] == true {
        format!("in force now as version {}", v["version"])
    } else {
        format!("no change: version {} is this text", v["version"])
    };
    if !restart.is_empty() {
        said.push_str(&format!(
            "; takes effect at the next start: {}",
            restart.join(", ")
        ));
    }
    Ok(said)
}
