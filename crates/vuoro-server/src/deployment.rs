//! The deployment: what the daemon needs beyond the hall. Server settings (`[server]`), who may sign in
//! (`[[user]]`, and the single sign-on issuers of `[[oidc]]`), devices and their printers (`[[device]]`)
//! and the clients' branding (`[brand]`).
//!
//! One file holds both the hall (vuoro-engine's `config::Hall`: sites, units, services, counters, zones,
//! displays, languages) and the deployment; each reads its own tables and skips the other's.
//! `crate::config::load` reads both and checks the deployment against the hall it runs (users' units,
//! devices' sites and services, printers' settings, the logo file).

use std::collections::HashSet;

use serde::de::IgnoredAny;
use serde::{Deserialize, Deserializer, Serialize};
use vuoro_engine::config::{ConfigError, Hall, Text, find_line};
use vuoro_engine::{DeviceId, ServiceId, SiteId, UnitId};
use vuoro_print::PrinterSettings;

/// The deployment's tables of the config file.
#[derive(Debug, Clone, Default, Deserialize, Serialize)]
#[serde(deny_unknown_fields)]
pub struct Deployment {
    #[serde(default)]
    pub server: ServerConfig,
    #[serde(default, rename = "user")]
    pub users: Vec<User>,
    #[serde(default, rename = "device")]
    pub devices: Vec<Device>,
    /// Single sign-on: OpenID Connect issuers staff may sign in through (`[[oidc]]`, docs/operations.md).
    #[serde(default, rename = "oidc")]
    pub oidc: Vec<OidcIssuer>,
    /// The organisation's name, logo and colours on every client (`GET /brand.css`, `GET /brand/logo`).
    #[serde(default)]
    pub brand: Brand,
    /// Scheduled backups of the database (`[backup]`); none when the table is absent.
    #[serde(default)]
    pub backup: Option<BackupConfig>,
    /// Notices to customers by SMS, e-mail and Web Push (`[notify]`, docs/notices.md); none when absent.
    #[serde(default)]
    pub notify: Option<NotifyConfig>,
    #[serde(default, rename = "site", skip_serializing)]
    _sites: IgnoredAny,
    #[serde(default, rename = "language", skip_serializing)]
    _languages: IgnoredAny,
}

impl Deployment {
    /// Reads the deployment's tables (syntax and types; `crate::config::load` checks them against the hall).
    pub fn parse(src: &str) -> Result<Deployment, Vec<ConfigError>> {
        toml::from_str(src).map_err(|e| {
            vec![ConfigError {
                line: e
                    .span()
                    .map(|s| src[..s.start.min(src.len())].matches('\n').count() + 1),
                message: e.message().to_string(),
            }]
        })
    }

    /// The deployment's mistakes given the hall it runs.
    pub(crate) fn check(&self, hall: &Hall, src: &str) -> Vec<ConfigError> {
        let mut errs = Vec::new();
        let mut err = |needle: &str, message: String| {
            errs.push(ConfigError {
                line: find_line(src, needle),
                message,
            });
        };
        let all_units: HashSet<&str> = hall
            .sites
            .iter()
            .flat_map(|s| s.units.iter().map(|u| u.id.as_str()))
            .collect();
        let mut usernames = HashSet::new();
        for u in &self.users {
            let at = format!("username = \"{}\"", u.username);
            if !usernames.insert(u.username.as_str()) {
                err(&at, format!("user '{}' is defined twice", u.username));
            }
            if !u.password_hash.starts_with("$argon2") {
                err(
                    &at,
                    format!(
                        "user '{}': password_hash must be an argon2 hash (use `vuoro hash-password`)",
                        u.username
                    ),
                );
            }
            if u.roles.is_empty() {
                err(&at, format!("user '{}' has no role", u.username));
            }
            for unit in &u.units {
                if !all_units.contains(unit.as_str()) {
                    err(
                        &at,
                        format!("user '{}' names unknown unit '{unit}'", u.username),
                    );
                }
            }
            if u.units.is_empty() && !u.roles.contains(&Role::Admin) {
                err(
                    &at,
                    format!(
                        "user '{}' has no units (only an admin may have all)",
                        u.username
                    ),
                );
            }
        }
        let mut devices = HashSet::new();
        for d in &self.devices {
            let at = format!("id = \"{}\"", d.id);
            if !devices.insert(d.id.as_str()) {
                err(&at, format!("device '{}' is defined twice", d.id));
            }
            if let Some(site) = hall.site(&d.site) {
                for s in &d.services {
                    if site.service(s).is_none() {
                        err(
                            &at,
                            format!("device '{}' names unknown service '{s}'", d.id),
                        );
                    }
                }
            } else {
                err(
                    &at,
                    format!("device '{}' names unknown site '{}'", d.id, d.site),
                );
            }
            if let Some(h) = &d.token_sha256
                && (h.len() != 64 || !h.chars().all(|c| c.is_ascii_hexdigit()))
            {
                err(
                    &at,
                    format!("device '{}': token_sha256 must be 64 hex digits", d.id),
                );
            }
            if d.demo_token.is_some() && !self.server.demo {
                err(
                    &at,
                    format!(
                        "device '{}' has a demo_token but the config is not a demo",
                        d.id
                    ),
                );
            }
        }
        if let Some(b) = &self.backup {
            for (bad, message) in [
                (b.every_hours == 0, "backup.every_hours must be at least 1"),
                (b.keep == 0, "backup.keep must be at least 1"),
                (
                    b.dir.as_os_str().is_empty(),
                    "backup.dir must name a folder",
                ),
            ] {
                if bad {
                    err("[backup]", message.into());
                }
            }
        }
        if let Some(n) = &self.notify {
            for (at, message) in n.check() {
                err(at, message);
            }
        }
        if self.server.display_frozen_seconds < 2 {
            err(
                "display_frozen_seconds",
                "server.display_frozen_seconds must be at least 2 (a display's page reports every second at most)".into(),
            );
        }
        if !(1..=24 * 7).contains(&self.server.session_hours) {
            err(
                "session_hours",
                "server.session_hours must be from 1 to 168".into(),
            );
        }
        if self.server.session_idle_minutes < 5
            || u64::from(self.server.session_idle_minutes)
                > u64::from(self.server.session_hours) * 60
        {
            err(
                "session_idle_minutes",
                "server.session_idle_minutes must be at least 5 and at most session_hours".into(),
            );
        }
        for (at, message) in self.check_oidc(&all_units) {
            err(&at, message);
        }
        if !self.server.local_sign_in && self.oidc.is_empty() {
            err(
                "local_sign_in",
                "server.local_sign_in = false needs at least one [[oidc]] issuer: nobody could sign in".into(),
            );
        }
        errs.extend(self.brand.check(src));
        errs
    }

    /// The `[[oidc]]` tables' mistakes, each with the text to find its line by.
    fn check_oidc(&self, all_units: &HashSet<&str>) -> Vec<(String, String)> {
        let mut out = Vec::new();
        let mut ids = HashSet::new();
        for o in &self.oidc {
            let at = format!("id = \"{}\"", o.id);
            let mut err = |m: String| out.push((at.clone(), format!("oidc '{}': {m}", o.id)));
            if !ids.insert(o.id.as_str()) {
                err("is defined twice".into());
            }
            if o.id.is_empty()
                || o.id.len() > 64
                || !o
                    .id
                    .bytes()
                    .all(|b| b.is_ascii_lowercase() || b.is_ascii_digit() || b == b'-' || b == b'_')
            {
                err(
                    "id must be 1 to 64 of a-z, 0-9, - and _ (it is part of the sign-in address)"
                        .into(),
                );
            }
            if o.name.values().all(|n| n.trim().is_empty()) {
                err(
                    "name must name the issuer in at least one language (it is the sign-in button)"
                        .into(),
                );
            }
            let https = o.issuer.starts_with("https://");
            let loopback_http = o.issuer.starts_with("http://") && is_loopback_url(&o.issuer);
            if !(https || loopback_http) {
                err(format!(
                    "issuer '{}' must be https:// (plain http only on a loopback address)",
                    o.issuer
                ));
            }
            if o.issuer.contains(['?', '#']) {
                err("issuer must not have a query or fragment".into());
            }
            if o.client_id.is_empty() {
                err("client_id is empty".into());
            }
            match (&o.client_secret, &o.client_secret_file) {
                (Some(_), Some(_)) => {
                    err("give client_secret or client_secret_file, not both".into())
                }
                (None, None) => err("needs client_secret or client_secret_file".into()),
                (Some(s), None) if s.0.is_empty() => err("client_secret is empty".into()),
                _ => {}
            }
            if !o.scopes.iter().any(|s| s == "openid") {
                err("scopes must include \"openid\"".into());
            }
            if o.role_claim.is_empty() {
                err("role_claim is empty".into());
            }
            if o.role_map.is_empty() {
                err("role_map maps no claim value to a role: nobody could sign in".into());
            }
            if !o.unit_map.is_empty() && o.unit_claim.is_none() {
                err("unit_map needs unit_claim".into());
            }
            for (value, unit) in &o.unit_map {
                if !all_units.contains(unit.as_str()) {
                    err(format!("unit_map maps '{value}' to unknown unit '{unit}'"));
                }
            }
        }
        out
    }

    pub fn device(&self, id: &str) -> Option<&Device> {
        self.devices.iter().find(|d| d.id == id)
    }
}

#[derive(Debug, Clone, Deserialize, Serialize)]
#[serde(deny_unknown_fields)]
pub struct ServerConfig {
    /// A demo configuration: refused on anything but a loopback address.
    #[serde(default)]
    pub demo: bool,
    /// The address the daemon is reached at, used for ticket tracking links (`track_url`).
    #[serde(default)]
    pub public_url: Option<String>,
    #[serde(default)]
    pub allowed_origins: Vec<String>,
    /// Days of ticket-level detail kept before only aggregates remain.
    #[serde(default = "default_retention_days")]
    pub retention_days: u32,
    /// Open connections at most (WebSockets included); by default the open-files limit less a margin.
    #[serde(default)]
    pub max_connections: Option<usize>,
    /// Open connections from one peer address at most (trusted proxies excepted).
    #[serde(default = "default_per_address")]
    pub max_connections_per_address: usize,
    /// Seconds a client has to send a request's head; also how long an idle connection stays open.
    #[serde(default = "default_header_timeout")]
    pub header_timeout_seconds: u64,
    /// Reverse proxies whose `X-Forwarded-For` is believed (their own address is not limited per
    /// address; the client's address they forward is).
    #[serde(default)]
    pub trusted_proxies: Vec<std::net::IpAddr>,
    /// SHA-256 (hex) of the bearer token that may read `/metrics` from another machine; loopback may
    /// always read it.
    #[serde(default)]
    pub metrics_token_sha256: Option<String>,
    /// Free space on the data disk, in MB, below which supervisors are alerted and speech is no longer
    /// rendered.
    #[serde(default = "default_disk_alert_mb")]
    pub disk_alert_free_mb: u64,
    /// Seconds a hall display may be without a connection before it counts as offline.
    #[serde(default = "default_display_offline")]
    pub display_offline_seconds: u64,
    /// Seconds a connected hall display's page may go without reporting that it renders before the
    /// display counts as `frozen` (judged only once its page has reported); its page reports every
    /// quarter of this (at least every second).
    #[serde(default = "default_display_frozen")]
    pub display_frozen_seconds: u64,
    /// Whether staff may sign in with the usernames and passwords of `[[user]]`; false leaves only the
    /// `[[oidc]]` issuers.
    #[serde(default = "default_true")]
    pub local_sign_in: bool,
    /// Hours a staff session lasts at most, however busy (then its user signs in again).
    #[serde(default = "default_session_hours")]
    pub session_hours: u32,
    /// Minutes a staff session lasts without a request (a WebSocket's traffic does not count).
    #[serde(default = "default_session_idle")]
    pub session_idle_minutes: u32,
}

fn default_true() -> bool {
    true
}

fn default_session_hours() -> u32 {
    12
}

fn default_session_idle() -> u32 {
    60
}

/// `[[oidc]]`: an OpenID Connect issuer staff sign in through (authorization code flow with PKCE). Its
/// claims give the roles and units: `role_claim`'s values through `role_map`, `unit_claim`'s through
/// `unit_map` (a claim holds a string or a list of strings).
#[derive(Debug, Clone, Deserialize, Serialize)]
#[serde(deny_unknown_fields)]
pub struct OidcIssuer {
    /// Part of the sign-in address (`/api/v1/auth/oidc/{id}/login`).
    pub id: String,
    /// The sign-in button's text, by language.
    pub name: Text,
    /// The issuer's URL; its metadata is read from `{issuer}/.well-known/openid-configuration`.
    pub issuer: String,
    pub client_id: String,
    /// The client secret in the config itself (prefer `client_secret_file`).
    #[serde(default, skip_serializing)]
    pub client_secret: Option<Secret>,
    /// A file holding the client secret (read when the daemon starts; surrounding whitespace ignored).
    #[serde(default)]
    pub client_secret_file: Option<std::path::PathBuf>,
    #[serde(default = "default_oidc_scopes")]
    pub scopes: Vec<String>,
    /// The claim whose values `role_map` maps to roles (`groups`, `roles`).
    pub role_claim: String,
    pub role_map: std::collections::BTreeMap<String, Role>,
    /// The claim whose values `unit_map` maps to units.
    #[serde(default)]
    pub unit_claim: Option<String>,
    #[serde(default)]
    pub unit_map: std::collections::BTreeMap<String, UnitId>,
}

fn default_oidc_scopes() -> Vec<String> {
    vec!["openid".into(), "profile".into()]
}

/// A secret of the config: never shown by `Debug`, never serialized.
#[derive(Clone, Deserialize)]
#[serde(transparent)]
pub struct Secret(pub String);

impl std::fmt::Debug for Secret {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("Secret(..)")
    }
}

impl Serialize for Secret {
    fn serialize<S: serde::Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        s.serialize_str("")
    }
}

impl ServerConfig {
    /// How often a hall display's page reports that it renders: a quarter of
    /// `display_frozen_seconds`, at least 1 s, so that one late report does not make it `frozen`.
    pub fn rendering_report_seconds(&self) -> u64 {
        (self.display_frozen_seconds / 4).max(1)
    }
}

/// `[backup]`: the daemon writes a copy of the database (`vuoro-YYYYMMDD-HHMM.sqlite`, UTC) to `dir`
/// every `every_hours` and deletes the oldest beyond `keep`.
#[derive(Debug, Clone, Deserialize, Serialize)]
#[serde(deny_unknown_fields)]
pub struct BackupConfig {
    /// The folder the copies are written to (created if missing); best on another disk.
    pub dir: std::path::PathBuf,
    #[serde(default = "default_backup_every_hours")]
    pub every_hours: u32,
    /// Copies kept; older ones are deleted.
    #[serde(default = "default_backup_keep")]
    pub keep: usize,
}

/// `[notify]`: notices to customers who wait elsewhere (docs/notices.md). The thresholds here are the
/// defaults; a site and a service may set their own (`near_people`, `near_minutes` in `[[site]]` and
/// `[[site.service]]`).
#[derive(Debug, Clone, Deserialize, Serialize)]
#[serde(deny_unknown_fields)]
pub struct NotifyConfig {
    /// "Your turn is near" when at most this many are called before the ticket...
    #[serde(default = "default_near_people")]
    pub near_people: u32,
    /// ... or when its estimate is at most this many minutes.
    #[serde(default = "default_near_minutes")]
    pub near_minutes: u32,
    /// Notices per ticket at most (over every channel).
    #[serde(default = "default_max_per_ticket")]
    pub max_per_ticket: u32,
    /// Notices to one number or address per day at most.
    #[serde(default = "default_max_per_address")]
    pub max_per_address_per_day: u32,
    /// Notices in a calendar month at most, everywhere; beyond it notices are dropped (an alert fires
    /// at 90 %).
    #[serde(default)]
    pub monthly_cap: Option<u32>,
    /// Attempts before a notice is given up as failed.
    #[serde(default = "default_max_attempts")]
    pub max_attempts: u32,
    /// Seconds before the first retry; each next one waits twice as long (at most 5 minutes).
    #[serde(default = "default_retry_first")]
    pub retry_first_seconds: f64,
    #[serde(default)]
    pub sms: Option<SmsGateway>,
    #[serde(default)]
    pub email: Option<EmailSettings>,
    #[serde(default)]
    pub push: Option<PushSettings>,
}

/// `[notify.sms]`: an operator's HTTP gateway. `body` is a template: `{to}` (the number, E.164), `{text}`,
/// `{id}` (the notice's idempotency key) and `{encoding}` (`gsm7` or `ucs2`) are replaced, each escaped for
/// `body_encoding`.
#[derive(Debug, Clone, Deserialize, Serialize)]
#[serde(deny_unknown_fields)]
pub struct SmsGateway {
    /// `https://...`; plain `http://` only on a loopback address.
    pub url: String,
    #[serde(default = "default_method")]
    pub method: String,
    /// Sent with every request (an `Authorization` header, say). Never logged.
    #[serde(default)]
    pub headers: std::collections::BTreeMap<String, String>,
    pub body: String,
    #[serde(default)]
    pub body_encoding: BodyEncoding,
    /// The header that carries the notice's idempotency key ("" for none).
    #[serde(default = "default_idempotency_header")]
    pub idempotency_header: String,
    /// Message parts a notice may take at most (160 GSM-7 or 70 UCS-2 characters in one part).
    #[serde(default = "default_max_parts")]
    pub max_parts: u32,
    /// Requests per second at most.
    #[serde(default = "default_per_second")]
    pub per_second: u32,
    #[serde(default = "default_notify_timeout")]
    pub timeout_seconds: u64,
}

/// How the values put into `[notify.sms] body` are escaped.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Deserialize, Serialize)]
#[serde(rename_all = "lowercase")]
pub enum BodyEncoding {
    /// As JSON string contents; the request is sent as `application/json`.
    #[default]
    Json,
    /// Form-encoded; sent as `application/x-www-form-urlencoded`.
    Form,
}

/// `[notify.email]`: an SMTP relay.
#[derive(Debug, Clone, Deserialize, Serialize)]
#[serde(deny_unknown_fields)]
pub struct EmailSettings {
    /// `smtp://host:port` (STARTTLS required; plain only on a loopback address) or `smtps://host:port`.
    pub smtp: String,
    /// The sender, e.g. `Vuoro <vuoro@example.fi>`.
    pub from: String,
    #[serde(default)]
    pub username: Option<String>,
    /// A file holding the SMTP password (never in the config itself).
    #[serde(default)]
    pub password_file: Option<std::path::PathBuf>,
    #[serde(default = "default_per_second")]
    pub per_second: u32,
    #[serde(default = "default_notify_timeout")]
    pub timeout_seconds: u64,
}

/// `[notify.push]`: Web Push to the phone page (RFC 8030, content encrypted per RFC 8291, signed with the
/// deployment's VAPID key per RFC 8292; the key is made at first start as `push.key` in the data folder).
#[derive(Debug, Clone, Deserialize, Serialize)]
#[serde(deny_unknown_fields)]
pub struct PushSettings {
    /// Who runs this server, for the push services (the VAPID `sub`): `mailto:` an address, or an
    /// `https://` page.
    pub subject: String,
    /// Seconds a push service keeps a notice for a phone that is offline (`TTL`).
    #[serde(default = "default_push_ttl")]
    pub ttl_seconds: u32,
    #[serde(default = "default_per_second")]
    pub per_second: u32,
    #[serde(default = "default_notify_timeout")]
    pub timeout_seconds: u64,
}

/// The longest `ttl_seconds`: a notice older than a day is of no use.
pub const MAX_PUSH_TTL: u32 = 24 * 3600;

fn default_push_ttl() -> u32 {
    600
}

fn default_near_people() -> u32 {
    3
}
fn default_near_minutes() -> u32 {
    10
}
fn default_max_per_ticket() -> u32 {
    4
}
fn default_max_per_address() -> u32 {
    10
}
fn default_max_attempts() -> u32 {
    6
}
fn default_retry_first() -> f64 {
    5.0
}
fn default_method() -> String {
    "POST".into()
}
fn default_idempotency_header() -> String {
    "Idempotency-Key".into()
}
fn default_max_parts() -> u32 {
    2
}
fn default_per_second() -> u32 {
    10
}
fn default_notify_timeout() -> u64 {
    10
}

/// Whether `url`'s host is a loopback address (`127.0.0.0/8`, `::1`, `localhost`).
pub fn is_loopback_url(url: &str) -> bool {
    let rest = url.split_once("://").map_or(url, |(_, r)| r);
    let host_port = rest.split(['/', '?', '#']).next().unwrap_or("");
    let host_port = host_port.rsplit_once('@').map_or(host_port, |(_, h)| h);
    let host = if let Some(h) = host_port.strip_prefix('[') {
        h.split(']').next().unwrap_or("")
    } else {
        host_port.split(':').next().unwrap_or("")
    };
    host.eq_ignore_ascii_case("localhost")
        || host
            .parse::<std::net::IpAddr>()
            .is_ok_and(|ip| ip.is_loopback())
}

/// What is wrong with a VAPID subject, if anything.
fn push_subject_problem(subject: &str) -> Option<&'static str> {
    if subject
        .chars()
        .any(|c| c.is_whitespace() || c.is_control() || c == '"')
    {
        return Some("has spaces or quotes");
    }
    if let Some(address) = subject.strip_prefix("mailto:") {
        return match address.parse::<lettre::Address>() {
            Ok(_) => None,
            Err(_) => Some("is not a mailto: with an e-mail address"),
        };
    }
    if let Some(rest) = subject.strip_prefix("https://") {
        let host = rest.split(['/', '?', '#']).next().unwrap_or("");
        return if host.is_empty() || host.contains('@') {
            Some("names no host")
        } else {
            None
        };
    }
    Some("is neither mailto: nor https://")
}

impl NotifyConfig {
    /// The table's mistakes, each with the text to find its line by.
    fn check(&self) -> Vec<(&'static str, String)> {
        let mut out = Vec::new();
        if self.max_attempts == 0 {
            out.push(("[notify]", "notify.max_attempts must be at least 1".into()));
        }
        if let Some(sms) = &self.sms {
            let at = "[notify.sms]";
            if !(sms.url.starts_with("https://")
                || (sms.url.starts_with("http://") && is_loopback_url(&sms.url)))
            {
                out.push((
                    at,
                    format!(
                        "notify.sms.url '{}' must be https:// (plain http only on a loopback address)",
                        sms.url
                    ),
                ));
            }
            if !["POST", "PUT"].contains(&sms.method.as_str()) {
                out.push((at, "notify.sms.method must be POST or PUT".into()));
            }
            for field in ["{to}", "{text}"] {
                if !sms.body.contains(field) {
                    out.push((at, format!("notify.sms.body must contain {field}")));
                }
                if sms.url.contains(field) {
                    out.push((
                        at,
                        format!("notify.sms.url must not contain {field}: numbers and texts go in the body, never in a URL (URLs are logged by proxies)"),
                    ));
                }
            }
            if sms.max_parts == 0 || sms.per_second == 0 {
                out.push((
                    at,
                    "notify.sms.max_parts and per_second must be at least 1".into(),
                ));
            }
        }
        if let Some(email) = &self.email {
            let at = "[notify.email]";
            let scheme_ok =
                email.smtp.starts_with("smtps://") || (email.smtp.starts_with("smtp://"));
            if !scheme_ok {
                out.push((
                    at,
                    format!(
                        "notify.email.smtp '{}' must be smtp://host:port or smtps://host:port",
                        email.smtp
                    ),
                ));
            }
            if email.from.parse::<lettre::message::Mailbox>().is_err() {
                out.push((
                    at,
                    format!(
                        "notify.email.from '{}' is not an address like Vuoro <vuoro@example.fi>",
                        email.from
                    ),
                ));
            }
            if email.per_second == 0 {
                out.push((at, "notify.email.per_second must be at least 1".into()));
            }
        }
        if let Some(push) = &self.push {
            let at = "[notify.push]";
            if let Some(problem) = push_subject_problem(&push.subject) {
                out.push((
                    at,
                    format!(
                        "notify.push.subject '{}' {problem}: it must be mailto:someone@example.fi or an https:// page that says who runs this server",
                        push.subject
                    ),
                ));
            }
            if push.ttl_seconds == 0 || push.ttl_seconds > MAX_PUSH_TTL {
                out.push((
                    at,
                    format!("notify.push.ttl_seconds must be from 1 to {MAX_PUSH_TTL} (a day)"),
                ));
            }
            if push.per_second == 0 || push.timeout_seconds == 0 {
                out.push((
                    at,
                    "notify.push.per_second and timeout_seconds must be at least 1".into(),
                ));
            }
        }
        out
    }
}

fn default_backup_every_hours() -> u32 {
    24
}

fn default_backup_keep() -> usize {
    7
}

fn default_display_offline() -> u64 {
    20
}

fn default_display_frozen() -> u64 {
    20
}

fn default_disk_alert_mb() -> u64 {
    1024
}

impl Default for ServerConfig {
    /// The same as an empty `[server]` table.
    fn default() -> ServerConfig {
        toml::from_str("").expect("every server setting has a default")
    }
}

fn default_per_address() -> usize {
    256
}

fn default_header_timeout() -> u64 {
    10
}

fn default_retention_days() -> u32 {
    30
}

#[derive(Debug, Clone, Deserialize, Serialize, PartialEq, Eq, Hash)]
#[serde(rename_all = "lowercase")]
pub enum Role {
    Agent,
    Supervisor,
    Admin,
}

#[derive(Debug, Clone, Deserialize, Serialize)]
#[serde(deny_unknown_fields)]
pub struct User {
    pub username: String,
    #[serde(default)]
    pub display_name: Option<String>,
    /// An argon2 PHC string (`vuoro hash-password` makes one). Never a plain password.
    pub password_hash: String,
    pub roles: Vec<Role>,
    /// Units this user may see and act on. Empty with role admin: every unit.
    #[serde(default)]
    pub units: Vec<UnitId>,
}

#[derive(Debug, Clone, Deserialize, Serialize)]
#[serde(deny_unknown_fields)]
pub struct Device {
    pub id: DeviceId,
    pub site: SiteId,
    pub kind: DeviceKind,
    /// SHA-256 of the device token, hex. The token itself is never stored. Left out: the device gets
    /// its token by enrolment (a one-time code from the admin console).
    #[serde(default)]
    pub token_sha256: Option<String>,
    /// Where it stands, for staff ("entrance"), by language.
    #[serde(default)]
    pub location: Text,
    /// Services a kiosk offers; empty: all of its site's.
    #[serde(default)]
    pub services: Vec<ServiceId>,
    /// The printer this device prints to, if any (see docs/printing.md).
    #[serde(default, skip_serializing)]
    pub printer: Option<DevicePrinter>,
    /// Only in a demo config: the token in clear, handed to loopback clients by the demo enrolment.
    #[serde(default)]
    pub demo_token: Option<String>,
}

/// What a device is: a ticket kiosk, a hall display, or a print agent on a kiosk PC.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Deserialize, Serialize)]
#[serde(rename_all = "lowercase")]
pub enum DeviceKind {
    Kiosk,
    Display,
    Agent,
}

/// A device's printer: driven by the daemon with these settings, or by `vuoro agent` on the kiosk PC
/// (`kind = "agent"`). See docs/printing.md.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum DevicePrinter {
    Agent,
    Direct(PrinterSettings),
}

impl<'de> Deserialize<'de> for DevicePrinter {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<DevicePrinter, D::Error> {
        let table = toml::Table::deserialize(d)?;
        if table.get("kind").and_then(|k| k.as_str()) == Some("agent") {
            if let Some(extra) = table.keys().find(|k| *k != "kind") {
                return Err(serde::de::Error::custom(format!(
                    "a printer of kind \"agent\" takes no other setting (found `{extra}`): the agent has its own"
                )));
            }
            return Ok(DevicePrinter::Agent);
        }
        toml::Value::Table(table)
            .try_into()
            .map(DevicePrinter::Direct)
            .map_err(serde::de::Error::custom)
    }
}

/// `[brand]`: what a city puts on every client without touching code. All optional; the clients keep
/// the colours of shared-ui/theme.css for whatever is left out.
#[derive(Debug, Clone, Default, Deserialize, Serialize)]
#[serde(deny_unknown_fields)]
pub struct Brand {
    /// The organisation's name by language: the logo's text alternative.
    #[serde(default)]
    pub name: Text,
    /// An SVG or PNG file (at most 256 KiB), absolute or relative to the daemon's working folder. Its
    /// extension is checked here; the daemon checks the file itself at start and when it serves it.
    #[serde(default)]
    pub logo: Option<String>,
    /// The brand colour (`#rrggbb`): headers, primary buttons, links.
    #[serde(default)]
    pub primary: Option<String>,
    /// Text on `primary` (`#rrggbb`).
    #[serde(default)]
    pub on_primary: Option<String>,
    /// A second colour for decorative lines under headers (`#rrggbb`).
    #[serde(default)]
    pub accent: Option<String>,
}

/// The colours `[brand]` leaves out: shared-ui/theme.css's `--v-accent`, `--v-accent-fg` and page
/// background (`--v-bg`, the light surface with the least contrast to `primary` as text).
pub const THEME_PRIMARY: &str = "#0b4f9c";
pub const THEME_ON_PRIMARY: &str = "#ffffff";
pub const THEME_PAGE: &str = "#f4f1ea";

/// The smallest contrast for text (WCAG 2.x, 1.4.3 level AA).
pub const MIN_TEXT_CONTRAST: f64 = 4.5;

/// `#rrggbb` as red, green and blue.
pub fn parse_hex_colour(s: &str) -> Option<[u8; 3]> {
    let h = s.strip_prefix('#')?;
    if h.len() != 6 || !h.bytes().all(|b| b.is_ascii_hexdigit()) {
        return None;
    }
    let c = |i: usize| u8::from_str_radix(&h[i..i + 2], 16).ok();
    Some([c(0)?, c(2)?, c(4)?])
}

/// Relative luminance (WCAG 2.x): sRGB channels linearised, weighted 0.2126, 0.7152, 0.0722.
pub fn relative_luminance(rgb: [u8; 3]) -> f64 {
    let lin = |c: u8| {
        let c = f64::from(c) / 255.0;
        if c <= 0.04045 {
            c / 12.92
        } else {
            ((c + 0.055) / 1.055).powf(2.4)
        }
    };
    0.2126 * lin(rgb[0]) + 0.7152 * lin(rgb[1]) + 0.0722 * lin(rgb[2])
}

/// Contrast ratio (WCAG 2.x): (lighter + 0.05) / (darker + 0.05), from 1 to 21.
pub fn contrast_ratio(a: [u8; 3], b: [u8; 3]) -> f64 {
    let (la, lb) = (relative_luminance(a), relative_luminance(b));
    let (hi, lo) = if la >= lb { (la, lb) } else { (lb, la) };
    (hi + 0.05) / (lo + 0.05)
}

impl Brand {
    /// The brand's mistakes, each with the line of its key in `[brand]`.
    fn check(&self, src: &str) -> Vec<ConfigError> {
        let mut out = Vec::new();
        let mut err = |key: &str, message: String| {
            out.push(ConfigError {
                line: brand_key_line(src, key),
                message,
            })
        };
        let mut colour = |key: &str, v: &Option<String>| match v {
            None => None,
            Some(s) => {
                let c = parse_hex_colour(s);
                if c.is_none() {
                    err(
                        key,
                        format!("brand.{key} '{s}' is not a colour like #0b4f9c"),
                    );
                }
                c
            }
        };
        let primary = colour("primary", &self.primary);
        let on_primary = colour("on_primary", &self.on_primary);
        colour("accent", &self.accent);
        let theme = |s: &str| parse_hex_colour(s).expect("theme colour");
        if self.primary.is_some() || self.on_primary.is_some() {
            if let (Some(bg), Some(fg)) = (
                primary.or(self.primary.is_none().then(|| theme(THEME_PRIMARY))),
                on_primary.or(self.on_primary.is_none().then(|| theme(THEME_ON_PRIMARY))),
            ) {
                let ratio = contrast_ratio(fg, bg);
                if ratio < MIN_TEXT_CONTRAST {
                    let key = if self.on_primary.is_some() {
                        "on_primary"
                    } else {
                        "primary"
                    };
                    err(
                        key,
                        format!(
                            "brand.on_primary {} on brand.primary {} has a contrast of {:.2}:1; text needs at least {MIN_TEXT_CONTRAST}:1",
                            self.on_primary.as_deref().unwrap_or(THEME_ON_PRIMARY),
                            self.primary.as_deref().unwrap_or(THEME_PRIMARY),
                            (ratio * 100.0).floor() / 100.0
                        ),
                    );
                }
            }
            if let Some(p) = primary {
                let ratio = contrast_ratio(p, theme(THEME_PAGE));
                if ratio < MIN_TEXT_CONTRAST {
                    err(
                        "primary",
                        format!(
                            "brand.primary {} is also the colour of links and button text on the page ({THEME_PAGE}): contrast {:.2}:1, needs at least {MIN_TEXT_CONTRAST}:1; choose a darker primary",
                            self.primary.as_deref().unwrap_or_default(),
                            (ratio * 100.0).floor() / 100.0
                        ),
                    );
                }
            }
        }
        if let Some(logo) = &self.logo {
            let lower = logo.to_ascii_lowercase();
            if !(lower.ends_with(".svg") || lower.ends_with(".png")) {
                err(
                    "logo",
                    format!("brand.logo '{logo}' must be an .svg or .png file"),
                );
            }
            if self.name.values().all(|n| n.trim().is_empty()) {
                err(
                    "logo",
                    "brand.logo needs brand.name: it is the logo's text alternative".into(),
                );
            }
        }
        out
    }
}

/// The line of `key = ...` inside the `[brand]` table, else of `[brand]` itself.
fn brand_key_line(src: &str, key: &str) -> Option<usize> {
    let mut in_brand = false;
    let mut table_line = None;
    for (i, line) in src.lines().enumerate() {
        let t = line.trim();
        if t.starts_with('[') {
            in_brand = t == "[brand]" || t.starts_with("[brand.");
            if t == "[brand]" {
                table_line = Some(i + 1);
            }
            continue;
        }
        if in_brand
            && let Some(rest) = t.strip_prefix(key)
            && rest.trim_start().starts_with('=')
        {
            return Some(i + 1);
        }
    }
    table_line
}

#[cfg(test)]
mod brand_tests {
    use super::*;

    #[test]
    fn contrast_follows_wcag() {
        let white = [255, 255, 255];
        let black = [0, 0, 0];
        assert!((contrast_ratio(white, black) - 21.0).abs() < 1e-9);
        assert!((contrast_ratio(white, white) - 1.0).abs() < 1e-9);
        // #767676 on white is the well-known 4.54:1.
        let grey = parse_hex_colour("#767676").unwrap();
        assert!((contrast_ratio(grey, white) - 4.54).abs() < 0.01);
        assert_eq!(parse_hex_colour("#0B4f9c"), Some([11, 79, 156]));
        assert_eq!(parse_hex_colour("0b4f9c"), None);
        assert_eq!(parse_hex_colour("#0b4f9"), None);
        assert_eq!(parse_hex_colour("#0b4f9g"), None);
    }

    #[test]
    fn brand_mistakes_name_their_line() {
        let src = "[brand]\nname = { fi = \"Kaupunki\" }\nprimary = \"#777777\"\non_primary = \"#ffffff\"\naccent = \"red\"\nlogo = \"logo.gif\"\n";
        let brand: Brand = toml::from_str::<toml::Table>(src)
            .unwrap()
            .get("brand")
            .cloned()
            .unwrap()
            .try_into()
            .unwrap();
        let errs = brand.check(src);
        let line_of = |needle: &str| {
            errs.iter()
                .find(|e| e.message.contains(needle))
                .and_then(|e| e.line)
        };
        // #ffffff on #777777 is 4.48:1, shown rounded down; #777777 on the page is lower still.
        assert_eq!(line_of("contrast of 4.47:1"), Some(4), "{errs:?}");
        assert_eq!(line_of("is also the colour of links"), Some(3), "{errs:?}");
        assert_eq!(line_of("'red' is not a colour"), Some(5), "{errs:?}");
        assert_eq!(line_of("must be an .svg or .png"), Some(6), "{errs:?}");
        assert_eq!(errs.len(), 4, "{errs:?}");
        let ok = Brand {
            primary: Some("#0b4f9c".into()),
            on_primary: Some("#ffffff".into()),
            ..Brand::default()
        };
        assert!(ok.check("").is_empty());
    }
}

#[cfg(test)]
mod push_tests {
    const DEMO: &str = include_str!("../../../config/demo.toml");

    #[test]
    fn the_push_table_is_checked() {
        let with = |push: &str| format!("{DEMO}\n[notify]\n[notify.push]\n{push}\n");
        let ok = crate::config::load(&with("subject = \"mailto:ops@example.fi\"")).unwrap();
        let push = ok.deployment.notify.clone().unwrap().push.unwrap();
        assert_eq!(
            (push.ttl_seconds, push.per_second, push.timeout_seconds),
            (600, 10, 10)
        );
        assert!(
            crate::config::load(&with("subject = \"https://palvelut.example.fi/vuoro\"")).is_ok()
        );
        for (push, says) in [
            (
                "subject = \"ops@example.fi\"",
                "is neither mailto: nor https://",
            ),
            (
                "subject = \"mailto:nobody\"",
                "is not a mailto: with an e-mail address",
            ),
            (
                "subject = \"http://example.fi\"",
                "is neither mailto: nor https://",
            ),
            ("subject = \"https://\"", "names no host"),
            (
                "subject = \"mailto:a@example.fi\"\nttl_seconds = 0",
                "ttl_seconds must be from 1 to 86400",
            ),
            (
                "subject = \"mailto:a@example.fi\"\nttl_seconds = 90000",
                "ttl_seconds must be from 1 to 86400",
            ),
            (
                "subject = \"mailto:a@example.fi\"\nper_second = 0",
                "per_second and timeout_seconds",
            ),
            ("", "missing field `subject`"),
            (
                "subject = \"mailto:a@example.fi\"\nsecret = 1",
                "unknown field `secret`",
            ),
        ] {
            let src = with(push);
            let errs = crate::config::load(&src).unwrap_err();
            assert_eq!(errs.len(), 1, "{push}: {errs:?}");
            assert!(errs[0].message.contains(says), "{push}: {errs:?}");
            assert!(errs[0].line.is_some(), "{push}: {errs:?}");
        }
    }
}

#[cfg(test)]
mod oidc_tests {
    const DEMO: &str = include_str!("../../../config/demo.toml");

    const CITY: &str = r#"
[[oidc]]
id = "city"
name = { fi = "Kaupungin tunnus", sv = "Stadens konto", en = "City account" }
issuer = "https://login.example.fi/tenant/v2.0"
client_id = "vuoro"
client_secret_file = "/etc/vuoro/oidc-city.secret"
scopes = ["openid", "profile", "groups"]
role_claim = "groups"
role_map = { "vuoro-kela-agents" = "agent", "vuoro-supervisors" = "supervisor" }
unit_claim = "groups"
unit_map = { "vuoro-kela-agents" = "kela" }
"#;

    #[test]
    fn the_issue_example_loads() {
        let cfg = crate::config::load(&format!("{DEMO}\n{CITY}")).unwrap();
        let o = &cfg.deployment.oidc[0];
        assert_eq!(o.id, "city");
        assert_eq!(o.name["sv"], "Stadens konto");
        assert_eq!(o.role_map["vuoro-supervisors"], super::Role::Supervisor);
        assert_eq!(o.unit_map["vuoro-kela-agents"].as_str(), "kela");
        assert!(cfg.deployment.server.local_sign_in);
        // The secret is neither shown nor written back.
        let with_secret = CITY.replace(
            "client_secret_file = \"/etc/vuoro/oidc-city.secret\"",
            "client_secret = \"hunter2\"",
        );
        let cfg = crate::config::load(&format!("{DEMO}\n{with_secret}")).unwrap();
        assert!(!format!("{:?}", cfg.deployment).contains("hunter2"));
        assert!(
            !serde_json::to_string(&*cfg.deployment)
                .unwrap()
                .contains("hunter2")
        );
        // Plain http on loopback is for tests.
        let local = CITY.replace(
            "https://login.example.fi/tenant/v2.0",
            "http://127.0.0.1:8080/",
        );
        assert!(crate::config::load(&format!("{DEMO}\n{local}")).is_ok());
    }

    #[test]
    fn oidc_mistakes_are_refused_with_their_line() {
        let cases: &[(&str, &str, &str)] = &[
            (
                "\"https://login.example.fi/tenant/v2.0\"",
                "\"http://login.example.fi/\"",
                "must be https:// (plain http only on a loopback address)",
            ),
            (
                "client_secret_file = \"/etc/vuoro/oidc-city.secret\"",
                "client_secret_file = \"/etc/vuoro/oidc-city.secret\"\nclient_secret = \"x\"",
                "not both",
            ),
            (
                "client_secret_file = \"/etc/vuoro/oidc-city.secret\"",
                "",
                "needs client_secret or client_secret_file",
            ),
            (
                "\"vuoro-kela-agents\" = \"kela\"",
                "\"vuoro-kela-agents\" = \"nowhere\"",
                "unknown unit 'nowhere'",
            ),
            (
                "\"vuoro-supervisors\" = \"supervisor\"",
                "\"vuoro-supervisors\" = \"boss\"",
                "unknown variant `boss`",
            ),
            (
                "scopes = [\"openid\", \"profile\", \"groups\"]",
                "scopes = [\"profile\"]",
                "scopes must include \"openid\"",
            ),
            ("id = \"city\"", "id = \"City Hall\"", "id must be 1 to 64"),
            ("unit_claim = \"groups\"", "", "unit_map needs unit_claim"),
            (
                "role_claim = \"groups\"",
                "role_claim = \"groups\"\ncolour = 1",
                "unknown field `colour`",
            ),
        ];
        for (from, to, says) in cases {
            let src = format!("{DEMO}\n{}", CITY.replace(from, to));
            let errs = crate::config::load(&src).unwrap_err();
            assert_eq!(errs.len(), 1, "{to}: {errs:?}");
            assert!(errs[0].message.contains(says), "{to}: {errs:?}");
            let line = errs[0].line.expect("a line");
            assert!(line > DEMO.lines().count(), "{to}: {errs:?}");
        }
        let twice = format!("{DEMO}\n{CITY}\n{CITY}");
        let errs = crate::config::load(&twice).unwrap_err();
        assert!(
            errs.iter().any(|e| e.message.contains("defined twice")),
            "{errs:?}"
        );
    }

    #[test]
    fn password_sign_in_may_be_switched_off_only_with_an_issuer() {
        let off = DEMO.replacen("demo = true", "demo = true\nlocal_sign_in = false", 1);
        let errs = crate::config::load(&off).unwrap_err();
        assert!(
            errs[0]
                .message
                .contains("needs at least one [[oidc]] issuer"),
            "{errs:?}"
        );
        assert_eq!(errs[0].line, Some(7));
        let cfg = crate::config::load(&format!("{off}\n{CITY}")).unwrap();
        assert!(!cfg.deployment.server.local_sign_in);
    }
}
