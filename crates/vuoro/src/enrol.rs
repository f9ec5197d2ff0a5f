//! `vuoro enrol`: sets a device up on its own machine (a kiosk PC's print agent) with the one-time code
//! the admin console shows. The code is read from standard input (never from the command line, where
//! other users could see it); the token the daemon answers is written to a file only the current user
//! can read, for `vuoro agent --token-file`.

use std::io::{BufRead, IsTerminal, Write};
use std::path::{Path, PathBuf};

use anyhow::{Context, bail};

pub struct EnrolArgs {
    pub server: String,
    pub device: String,
    pub token_file: PathBuf,
    pub force: bool,
}

/// Reads the code, trades it for the device's token and writes the token file. Returns what to tell
/// the user.
pub fn run(args: EnrolArgs) -> anyhow::Result<String> {
    if args.token_file.exists() && !args.force {
        bail!(
            "{} exists: this device seems set up already (--force replaces its token)",
            args.token_file.display()
        );
    }
    let stdin = std::io::stdin();
    if stdin.is_terminal() {
        eprint!("Set-up code for {}: ", args.device);
        std::io::stderr().flush().ok();
    }
    let mut code = String::new();
    stdin.lock().read_line(&mut code)?;
    let code = code.trim();
    if code.is_empty() {
        bail!("no set-up code given: make one in the administration (/admin/) and type it here");
    }
    let url = format!("{}/api/v1/devices/enrol", args.server.trim_end_matches('/'));
    let agent = ureq::Agent::new_with_config(
        ureq::Agent::config_builder()
            .timeout_global(Some(std::time::Duration::from_secs(20)))
            .http_status_as_error(false)
            .build(),
    );
    let body = serde_json::json!({"code": code, "device": args.device});
    let mut res = agent
        .post(&url)
        .header("Content-Type", "application/json")
        .send(body.to_string())
        .with_context(|| format!("cannot reach {}", args.server))?;
    let status = res.status().as_u16();
    let text = res.body_mut().read_to_string()?;
    let answer: serde_json::Value = serde_json::from_str(&text)
        .with_context(|| format!("the daemon's answer ({status}) is not JSON"))?;
    if status != 201 {
        let why = answer["error"]["message"].as_str().unwrap_or("refused");
        bail!("the daemon refused the code ({status}): {why}");
    }
    let token = answer["token"]
        .as_str()
        .filter(|t| t.len() == 64 && t.bytes().all(|b| b.is_ascii_hexdigit()))
        .context("the daemon's answer has no token")?;
    write_private(&args.token_file, token)?;
    Ok(format!(
        "enrolled {} ({}, site {}); its token is in {}",
        answer["device"]["id"].as_str().unwrap_or(&args.device),
        answer["device"]["kind"].as_str().unwrap_or("device"),
        answer["device"]["site"].as_str().unwrap_or("?"),
        args.token_file.display()
    ))
}

/// Writes `token` to `path` readable by its owner only, replacing the file in one step.
fn write_private(path: &Path, token: &str) -> anyhow::Result<()> {
    use std::os::unix::fs::OpenOptionsExt;
    let dir = path
        .parent()
        .filter(|p| !p.as_os_str().is_empty())
        .unwrap_or(Path::new("."));
    let tmp = dir.join(format!(
        ".{}.new",
        path.file_name().and_then(|n| n.to_str()).unwrap_or("token")
    ));
    let _ = std::fs::remove_file(&tmp);
    let mut f = std::fs::OpenOptions::new()
        .write(true)
        .create_new(true)
        .mode(0o600)
        .open(&tmp)
        .with_context(|| format!("cannot write {}", tmp.display()))?;
    f.write_all(token.as_bytes())?;
    f.write_all(b"\n")?;
    f.sync_all()?;
    std::fs::rename(&tmp, path).with_context(|| format!("cannot write {}", path.display()))?;
    Ok(())
}
