//! The hall's configuration: sites, units, services, counters, users and devices, parsed from TOML.
//!
//! Parsing is pure (a string in, a validated `Config` or a list of located mistakes out). Every name used
//! here is the name used in the API, the database and the web clients.

use std::collections::{BTreeMap, HashMap, HashSet};

use chrono::{DateTime, Datelike, NaiveDate, NaiveTime, TimeZone, Utc, Weekday};
use chrono_tz::Tz;
use serde::{Deserialize, Serialize};

/// Text in several languages, keyed by language code.
pub type Text = BTreeMap<String, String>;

/// Picks `lang`; else, for a language other than Finnish or Swedish, English (understood by more of
/// those customers than Finnish); else the fallback language; else any.
pub fn text_in<'a>(t: &'a Text, lang: &str, fallback: &str) -> &'a str {
    t.get(lang)
        .or_else(|| {
            if lang == "fi" || lang == "sv" {
                None
            } else {
                t.get("en")
            }
        })
        .or_else(|| t.get(fallback))
        .or_else(|| t.values().next())
        .map(String::as_str)
        .unwrap_or("")
}

#[derive(Debug, Clone, Deserialize, Serialize)]
#[serde(deny_unknown_fields)]
pub struct Config {
    #[serde(default)]
    pub server: ServerConfig,
    #[serde(default, rename = "site")]
    pub sites: Vec<Site>,
    #[serde(default, rename = "user")]
    pub users: Vec<User>,
    #[serde(default, rename = "device")]
    pub devices: Vec<Device>,
    #[serde(default, rename = "language")]
    pub languages: Vec<Language>,
    /// The organisation's name, logo and colours on every client (`GET /brand.css`, `GET /brand/logo`).
    #[serde(default)]
    pub brand: Brand,
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
}

fn default_display_offline() -> u64 {
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

/// A language the clients may offer: its code, its own name and writing direction.
#[derive(Debug, Clone, Deserialize, Serialize)]
#[serde(deny_unknown_fields)]
pub struct Language {
    pub code: String,
    pub name: String,
    #[serde(default = "default_dir")]
    pub dir: String,
}

fn default_dir() -> String {
    "ltr".into()
}

#[derive(Debug, Clone, Deserialize, Serialize)]
#[serde(deny_unknown_fields)]
pub struct Site {
    pub id: String,
    pub name: Text,
    pub timezone: String,
    /// Languages offered at this site, in the order shown. The first is the default.
    pub languages: Vec<String>,
    /// Open whatever the clock says (the demo).
    #[serde(default)]
    pub always_open: bool,
    #[serde(default)]
    pub hours: WeekHours,
    #[serde(default, rename = "exception")]
    pub exceptions: Vec<HoursException>,
    /// Minutes after a no-show during which the ticket may be brought back.
    #[serde(default = "default_no_show_minutes")]
    pub no_show_return_minutes: u32,
    #[serde(default, rename = "unit")]
    pub units: Vec<Unit>,
    #[serde(default, rename = "series")]
    pub series: Vec<Series>,
    #[serde(default, rename = "service")]
    pub services: Vec<Service>,
    #[serde(default, rename = "counter")]
    pub counters: Vec<Counter>,
    #[serde(default, rename = "zone")]
    pub zones: Vec<Zone>,
    #[serde(default, rename = "display")]
    pub displays: Vec<Display>,
    /// Positions by id, built by [`Config::parse`]: a hall with hundreds of services looked each one up
    /// by comparing ids one after another, several times per command.
    #[serde(skip)]
    index: SiteIndex,
}

#[derive(Debug, Clone, Default)]
struct SiteIndex {
    services: HashMap<String, usize>,
    counters: HashMap<String, usize>,
    units: HashMap<String, usize>,
    series: HashMap<String, usize>,
}

impl SiteIndex {
    fn of(site: &Site) -> SiteIndex {
        fn positions<'a>(ids: impl Iterator<Item = &'a String>) -> HashMap<String, usize> {
            let mut m = HashMap::new();
            for (i, id) in ids.enumerate() {
                m.entry(id.clone()).or_insert(i);
            }
            m
        }
        SiteIndex {
            services: positions(site.services.iter().map(|s| &s.id)),
            counters: positions(site.counters.iter().map(|c| &c.id)),
            units: positions(site.units.iter().map(|u| &u.id)),
            series: positions(site.series.iter().map(|s| &s.letter)),
        }
    }
}

/// `items[index[id]]` when the index still agrees (a list changed after parsing is searched instead).
fn lookup<'a, T>(
    items: &'a [T],
    index: &HashMap<String, usize>,
    id: &str,
    key: impl Fn(&T) -> &str,
) -> Option<&'a T> {
    match index.get(id).and_then(|&i| items.get(i)) {
        Some(x) if key(x) == id => Some(x),
        _ => items.iter().find(|x| key(x) == id),
    }
}

fn default_no_show_minutes() -> u32 {
    15
}

/// Opening hours per weekday, each a list of "HH:MM-HH:MM" spans. A missing day is closed.
#[derive(Debug, Clone, Deserialize, Serialize, Default)]
#[serde(deny_unknown_fields)]
pub struct WeekHours {
    #[serde(default)]
    pub mon: Vec<String>,
    #[serde(default)]
    pub tue: Vec<String>,
    #[serde(default)]
    pub wed: Vec<String>,
    #[serde(default)]
    pub thu: Vec<String>,
    #[serde(default)]
    pub fri: Vec<String>,
    #[serde(default)]
    pub sat: Vec<String>,
    #[serde(default)]
    pub sun: Vec<String>,
}

impl WeekHours {
    fn day(&self, d: Weekday) -> &[String] {
        match d {
            Weekday::Mon => &self.mon,
            Weekday::Tue => &self.tue,
            Weekday::Wed => &self.wed,
            Weekday::Thu => &self.thu,
            Weekday::Fri => &self.fri,
            Weekday::Sat => &self.sat,
            Weekday::Sun => &self.sun,
        }
    }
    fn is_empty(&self) -> bool {
        [
            &self.mon, &self.tue, &self.wed, &self.thu, &self.fri, &self.sat, &self.sun,
        ]
        .iter()
        .all(|d| d.is_empty())
    }
}

/// A holiday (no hours: closed) or a day with other hours.
#[derive(Debug, Clone, Deserialize, Serialize)]
#[serde(deny_unknown_fields)]
pub struct HoursException {
    pub date: NaiveDate,
    #[serde(default)]
    pub hours: Vec<String>,
    #[serde(default)]
    pub note: Option<String>,
}

#[derive(Debug, Clone, Deserialize, Serialize)]
#[serde(deny_unknown_fields)]
pub struct Unit {
    pub id: String,
    pub name: Text,
}

/// A ticket number series: a letter and a number range, counted per local day.
#[derive(Debug, Clone, Deserialize, Serialize)]
#[serde(deny_unknown_fields)]
pub struct Series {
    pub letter: String,
    #[serde(default = "default_first")]
    pub first: u32,
    #[serde(default = "default_last")]
    pub last: u32,
}

fn default_first() -> u32 {
    1
}
fn default_last() -> u32 {
    999
}

#[derive(Debug, Clone, Deserialize, Serialize)]
#[serde(deny_unknown_fields)]
pub struct Service {
    pub id: String,
    pub unit: String,
    pub name: Text,
    pub series: String,
    /// Shown on public screens and topics instead of `name` when `sensitive`.
    #[serde(default)]
    pub public_name: Option<Text>,
    #[serde(default)]
    pub sensitive: bool,
    #[serde(default)]
    pub icon: Option<String>,
    /// Own hours; the site's when absent.
    #[serde(default)]
    pub hours: Option<WeekHours>,
    /// No new tickets this many minutes before closing.
    #[serde(default)]
    pub last_ticket_minutes_before_close: u32,
    #[serde(default)]
    pub max_queue: Option<u32>,
    /// Anyone may join from a phone, without a kiosk.
    #[serde(default)]
    pub remote_join: bool,
    /// Expected service time before any has been measured.
    #[serde(default = "default_service_minutes")]
    pub expected_service_minutes: f64,
    /// Target for the longest wait, for supervisors' alerts and reports.
    #[serde(default = "default_target_wait")]
    pub target_wait_minutes: u32,
}

impl Service {
    /// The id public screens and answers use: its own, or for a sensitive service the neutral group of
    /// its series (`group-h`), shared with every sensitive service of that series.
    pub fn public_id(&self) -> String {
        if self.sensitive {
            format!("group-{}", self.series.to_ascii_lowercase())
        } else {
            self.id.clone()
        }
    }
}

fn default_service_minutes() -> f64 {
    6.0
}
fn default_target_wait() -> u32 {
    20
}

/// One entry of a counter's service profile. Lower `tier` is called first; within a tier, oldest first.
#[derive(Debug, Clone, Deserialize, Serialize)]
#[serde(deny_unknown_fields)]
pub struct CounterService {
    pub service: String,
    #[serde(default = "default_tier")]
    pub tier: u32,
}

fn default_tier() -> u32 {
    1
}

#[derive(Debug, Clone, Deserialize, Serialize)]
#[serde(deny_unknown_fields)]
pub struct Counter {
    pub id: String,
    pub unit: String,
    pub name: Text,
    #[serde(default)]
    pub location: Text,
    #[serde(default)]
    pub zone: Option<String>,
    pub services: Vec<CounterService>,
}

/// An announcement zone: which language policy the hall's speakers follow there.
#[derive(Debug, Clone, Deserialize, Serialize)]
#[serde(deny_unknown_fields)]
pub struct Zone {
    pub id: String,
    pub name: Text,
    /// `fi`, `fi+sv` (alternating), `customer` (the ticket's language when the site has audio for it), or `chime`.
    #[serde(default = "default_voice")]
    pub voice: String,
    /// Seconds of pending announcement after which calls fall back to chime only.
    #[serde(default = "default_airtime")]
    pub max_backlog_seconds: u32,
    /// Volume per time of day: "HH:MM=percent".
    #[serde(default)]
    pub volume: Vec<String>,
}

fn default_voice() -> String {
    "fi".into()
}
fn default_airtime() -> u32 {
    20
}

/// A hall display: which zones it shows, its languages and layout.
#[derive(Debug, Clone, Deserialize, Serialize)]
#[serde(deny_unknown_fields)]
pub struct Display {
    pub id: String,
    #[serde(default)]
    pub zones: Vec<String>,
    #[serde(default)]
    pub languages: Vec<String>,
    #[serde(default = "default_layout")]
    pub layout: String,
    /// Viewing distance in metres; sets the number height.
    #[serde(default = "default_distance")]
    pub viewing_distance_m: f64,
    #[serde(default)]
    pub audio: bool,
}

fn default_layout() -> String {
    "standard".into()
}
fn default_distance() -> f64 {
    8.0
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
    pub units: Vec<String>,
}

#[derive(Debug, Clone, Deserialize, Serialize)]
#[serde(deny_unknown_fields)]
pub struct Device {
    pub id: String,
    pub site: String,
    /// `kiosk`, `display` or `agent`.
    pub kind: String,
    /// SHA-256 of the device token, hex. The token itself is never stored.
    pub token_sha256: String,
    /// Where it stands, for staff ("entrance"), by language.
    #[serde(default)]
    pub location: Text,
    /// Services a kiosk offers; empty: all of its site's.
    #[serde(default)]
    pub services: Vec<String>,
    /// The printer this device prints to, if any (see docs/printing.md).
    #[serde(default)]
    pub printer: Option<toml::Table>,
    /// Only in a demo config: the token in clear, handed to loopback clients by the demo enrolment.
    #[serde(default)]
    pub demo_token: Option<String>,
}

/// A mistake in a config file, with where it is.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ConfigError {
    pub line: Option<usize>,
    pub message: String,
}

impl std::fmt::Display for ConfigError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self.line {
            Some(l) => write!(f, "line {l}: {}", self.message),
            None => write!(f, "{}", self.message),
        }
    }
}

impl Config {
    /// Parses and checks a config. All mistakes found are returned, each with its line where known.
    pub fn parse(src: &str) -> Result<Config, Vec<ConfigError>> {
        let mut cfg: Config = toml::from_str(src).map_err(|e| {
            let line = e.span().map(|s| line_of(src, s.start));
            vec![ConfigError {
                line,
                message: e.message().to_string(),
            }]
        })?;
        let errors = cfg.check(src);
        if errors.is_empty() {
            for site in &mut cfg.sites {
                site.index = SiteIndex::of(site);
            }
            Ok(cfg)
        } else {
            Err(errors)
        }
    }

    fn check(&self, src: &str) -> Vec<ConfigError> {
        let mut errs = Vec::new();
        let mut err = |needle: &str, message: String| {
            errs.push(ConfigError {
                line: find_line(src, needle),
                message,
            });
        };
        if self.sites.is_empty() {
            err("", "no [[site]] is configured".into());
        }
        let brand_errors = self.brand.check(src);
        let langs: HashSet<&str> = self.languages.iter().map(|l| l.code.as_str()).collect();
        let mut site_ids = HashSet::new();
        // Counters are addressed by id alone (`/api/v1/counters/{id}`): unique across all sites.
        let mut counter_sites: HashMap<&str, &str> = HashMap::new();
        for site in &self.sites {
            let sid = format!("id = \"{}\"", site.id);
            if !valid_id(&site.id) {
                err(
                    &sid,
                    format!(
                        "site id '{}' must be lowercase letters, digits and '-'",
                        site.id
                    ),
                );
            }
            if !site_ids.insert(site.id.as_str()) {
                err(&sid, format!("site '{}' is defined twice", site.id));
            }
            if site.timezone.parse::<Tz>().is_err() {
                err(
                    &format!("timezone = \"{}\"", site.timezone),
                    format!("unknown time zone '{}'", site.timezone),
                );
            }
            for req in ["fi", "sv", "en"] {
                if !site.languages.iter().any(|l| l == req) {
                    err(
                        &sid,
                        format!("site '{}' must offer language '{req}'", site.id),
                    );
                }
            }
            for l in &site.languages {
                if !langs.contains(l.as_str()) {
                    err(
                        &format!("\"{l}\""),
                        format!("language '{l}' has no [[language]] entry"),
                    );
                }
            }
            if !site.always_open && site.hours.is_empty() && site.exceptions.is_empty() {
                err(
                    &sid,
                    format!("site '{}' has no hours and is not always_open", site.id),
                );
            }
            check_hours(&site.hours, &mut err);
            for ex in &site.exceptions {
                for span in &ex.hours {
                    if parse_span(span).is_none() {
                        err(span, format!("'{span}' is not HH:MM-HH:MM"));
                    }
                }
            }
            let mut ids = HashSet::new();
            let units: HashSet<&str> = site.units.iter().map(|u| u.id.as_str()).collect();
            let series: HashSet<&str> = site.series.iter().map(|s| s.letter.as_str()).collect();
            for u in &site.units {
                if !ids.insert(u.id.clone()) || !valid_id(&u.id) {
                    err(
                        &format!("id = \"{}\"", u.id),
                        format!("unit id '{}' is invalid or used twice", u.id),
                    );
                }
            }
            for s in &site.series {
                if s.letter.is_empty()
                    || s.letter.len() > 2
                    || !s.letter.chars().all(|c| c.is_ascii_uppercase())
                {
                    err(
                        &format!("letter = \"{}\"", s.letter),
                        format!(
                            "series letter '{}' must be 1-2 capital letters A-Z",
                            s.letter
                        ),
                    );
                }
                if s.first == 0 || s.first > s.last || s.last > 9999 {
                    err(
                        &format!("letter = \"{}\"", s.letter),
                        format!(
                            "series '{}' range {}..{} is invalid",
                            s.letter, s.first, s.last
                        ),
                    );
                }
            }
            let mut services = HashSet::new();
            for s in &site.services {
                let at = format!("id = \"{}\"", s.id);
                if !valid_id(&s.id) || !services.insert(s.id.as_str()) {
                    err(
                        &at,
                        format!("service id '{}' is invalid or used twice", s.id),
                    );
                }
                if !units.contains(s.unit.as_str()) {
                    err(
                        &format!("unit = \"{}\"", s.unit),
                        format!("service '{}' names unknown unit '{}'", s.id, s.unit),
                    );
                }
                if !series.contains(s.series.as_str()) {
                    err(
                        &format!("series = \"{}\"", s.series),
                        format!("service '{}' names unknown series '{}'", s.id, s.series),
                    );
                }
                for req in ["fi", "sv", "en"] {
                    if !s.name.contains_key(req) {
                        err(&at, format!("service '{}' has no name in '{req}'", s.id));
                    }
                }
                if s.sensitive && s.public_name.is_none() {
                    err(
                        &at,
                        format!("sensitive service '{}' needs a neutral public_name", s.id),
                    );
                }
                if let Some(h) = &s.hours {
                    check_hours(h, &mut err);
                }
                if s.expected_service_minutes.is_nan() || s.expected_service_minutes <= 0.0 {
                    err(
                        &at,
                        format!(
                            "service '{}': expected_service_minutes must be positive",
                            s.id
                        ),
                    );
                }
            }
            let zones: HashSet<&str> = site.zones.iter().map(|z| z.id.as_str()).collect();
            for z in &site.zones {
                if !["fi", "sv", "en", "fi+sv", "customer", "chime"].contains(&z.voice.as_str()) {
                    err(
                        &format!("voice = \"{}\"", z.voice),
                        format!(
                            "zone '{}': voice '{}' is not fi, sv, en, fi+sv, customer or chime",
                            z.id, z.voice
                        ),
                    );
                }
            }
            for c in &site.counters {
                let at = format!("id = \"{}\"", c.id);
                if !valid_id(&c.id) || !ids.insert(c.id.clone()) {
                    err(
                        &at,
                        format!("counter id '{}' is invalid or used twice", c.id),
                    );
                }
                match counter_sites.insert(&c.id, &site.id) {
                    Some(other) if other != site.id => err(
                        &at,
                        format!(
                            "counter id '{}' is used by site '{other}' too: counter ids must be unique across sites",
                            c.id
                        ),
                    ),
                    _ => {}
                }
                if !units.contains(c.unit.as_str()) {
                    err(
                        &at,
                        format!("counter '{}' names unknown unit '{}'", c.id, c.unit),
                    );
                }
                if c.services.is_empty() {
                    err(&at, format!("counter '{}' serves no service", c.id));
                }
                for cs in &c.services {
                    if !services.contains(cs.service.as_str()) {
                        err(
                            &format!("\"{}\"", cs.service),
                            format!("counter '{}' names unknown service '{}'", c.id, cs.service),
                        );
                    }
                }
                if let Some(z) = &c.zone
                    && !zones.contains(z.as_str())
                {
                    err(&at, format!("counter '{}' names unknown zone '{z}'", c.id));
                }
            }
            for d in &site.displays {
                for z in &d.zones {
                    if !zones.contains(z.as_str()) {
                        err(
                            &format!("id = \"{}\"", d.id),
                            format!("display '{}' names unknown zone '{z}'", d.id),
                        );
                    }
                }
            }
        }
        let all_units: HashSet<&str> = self
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
            if !self.sites.iter().any(|s| s.id == d.site) {
                err(
                    &at,
                    format!("device '{}' names unknown site '{}'", d.id, d.site),
                );
            }
            if !["kiosk", "display", "agent"].contains(&d.kind.as_str()) {
                err(
                    &at,
                    format!("device '{}': kind must be kiosk, display or agent", d.id),
                );
            }
            if d.token_sha256.len() != 64 || !d.token_sha256.chars().all(|c| c.is_ascii_hexdigit())
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
        errs.extend(brand_errors);
        errs
    }

    /// What `vuoro check-config` warns about but a hall can run with: a name customers see (site, zone,
    /// unit, service, a sensitive service's neutral name, counter name and place) missing in one of the
    /// site's languages (the clients then fall back to English, or to the default language for Finnish and
    /// Swedish), and two services of one site with the same name in a language (a customer could not tell
    /// the two buttons apart). `src` is the config's text, for line numbers.
    pub fn warnings(&self, src: &str) -> Vec<ConfigError> {
        let mut out = Vec::new();
        for site in &self.sites {
            let mut missing = |what: String, text: &Text, needle: &str| {
                let absent: Vec<&str> = site
                    .languages
                    .iter()
                    .map(String::as_str)
                    .filter(|l| text.get(*l).is_none_or(|x| x.trim().is_empty()))
                    .collect();
                if !absent.is_empty() {
                    out.push(ConfigError {
                        line: find_line(src, needle),
                        message: format!(
                            "{what} has no translation in {} (site '{}' offers them)",
                            absent.join(", "),
                            site.id
                        ),
                    });
                }
            };
            let sid = format!("id = \"{}\"", site.id);
            missing(format!("site '{}': name", site.id), &site.name, &sid);
            for z in &site.zones {
                missing(
                    format!("zone '{}': name", z.id),
                    &z.name,
                    &format!("id = \"{}\"", z.id),
                );
            }
            for u in &site.units {
                missing(
                    format!("unit '{}': name", u.id),
                    &u.name,
                    &format!("id = \"{}\"", u.id),
                );
            }
            for s in &site.services {
                let at = format!("id = \"{}\"", s.id);
                missing(format!("service '{}': name", s.id), &s.name, &at);
                if let Some(p) = &s.public_name {
                    missing(format!("service '{}': public_name", s.id), p, &at);
                }
            }
            for c in &site.counters {
                let at = format!("id = \"{}\"", c.id);
                missing(format!("counter '{}': name", c.id), &c.name, &at);
                if !c.location.is_empty() {
                    missing(format!("counter '{}': location", c.id), &c.location, &at);
                }
            }
            // Two buttons that read the same: compared as customers see them, in each language.
            let dl = site.default_language();
            for l in &site.languages {
                let mut seen: HashMap<String, &str> = HashMap::new();
                for s in &site.services {
                    let name = text_in(&s.name, l, dl).trim().to_lowercase();
                    if let Some(first) = seen.insert(name.clone(), s.id.as_str()) {
                        out.push(ConfigError {
                            line: find_line(src, &format!("id = \"{}\"", s.id)),
                            message: format!(
                                "services '{first}' and '{}' are both called '{name}' in '{l}': customers cannot tell them apart",
                                s.id
                            ),
                        });
                    }
                }
            }
        }
        out
    }

    pub fn site(&self, id: &str) -> Option<&Site> {
        self.sites.iter().find(|s| s.id == id)
    }

    pub fn language(&self, code: &str) -> Option<&Language> {
        self.languages.iter().find(|l| l.code == code)
    }
}

fn check_hours(h: &WeekHours, err: &mut impl FnMut(&str, String)) {
    for d in [
        Weekday::Mon,
        Weekday::Tue,
        Weekday::Wed,
        Weekday::Thu,
        Weekday::Fri,
        Weekday::Sat,
        Weekday::Sun,
    ] {
        for span in h.day(d) {
            if parse_span(span).is_none() {
                err(span, format!("'{span}' is not HH:MM-HH:MM"));
            }
        }
    }
}

pub fn valid_id(id: &str) -> bool {
    !id.is_empty()
        && id.len() <= 64
        && id
            .chars()
            .all(|c| c.is_ascii_lowercase() || c.is_ascii_digit() || c == '-')
}

fn line_of(src: &str, offset: usize) -> usize {
    src[..offset.min(src.len())].matches('\n').count() + 1
}

fn find_line(src: &str, needle: &str) -> Option<usize> {
    if needle.is_empty() {
        return None;
    }
    src.find(needle).map(|i| line_of(src, i))
}

/// Parses "HH:MM-HH:MM".
pub fn parse_span(s: &str) -> Option<(NaiveTime, NaiveTime)> {
    let (a, b) = s.split_once('-')?;
    let a = NaiveTime::parse_from_str(a.trim(), "%H:%M").ok()?;
    let b = NaiveTime::parse_from_str(b.trim(), "%H:%M").ok()?;
    (a < b).then_some((a, b))
}

impl Site {
    pub fn tz(&self) -> Tz {
        self.timezone.parse().unwrap_or(chrono_tz::UTC)
    }

    pub fn local_date(&self, now: DateTime<Utc>) -> NaiveDate {
        now.with_timezone(&self.tz()).date_naive()
    }

    pub fn default_language(&self) -> &str {
        self.languages.first().map(String::as_str).unwrap_or("fi")
    }

    pub fn service(&self, id: &str) -> Option<&Service> {
        lookup(&self.services, &self.index.services, id, |s| &s.id)
    }

    pub fn counter(&self, id: &str) -> Option<&Counter> {
        lookup(&self.counters, &self.index.counters, id, |c| &c.id)
    }

    pub fn unit(&self, id: &str) -> Option<&Unit> {
        lookup(&self.units, &self.index.units, id, |u| &u.id)
    }

    pub fn series(&self, letter: &str) -> Option<&Series> {
        lookup(&self.series, &self.index.series, letter, |s| &s.letter)
    }

    /// The spans open on `date` for `hours` (a service's own, or the site's), honouring exceptions.
    fn spans_on(&self, hours: &WeekHours, date: NaiveDate) -> Vec<(NaiveTime, NaiveTime)> {
        if let Some(ex) = self.exceptions.iter().find(|e| e.date == date) {
            return ex.hours.iter().filter_map(|s| parse_span(s)).collect();
        }
        hours
            .day(date.weekday())
            .iter()
            .filter_map(|s| parse_span(s))
            .collect()
    }

    /// Whether `service` (or the site, with `None`) is open at `now`, and when it closes or next opens.
    pub fn opening(&self, service: Option<&Service>, now: DateTime<Utc>) -> Opening {
        if self.always_open {
            return Opening {
                open: true,
                closes_at: None,
                opens_at: None,
            };
        }
        let hours = service
            .and_then(|s| s.hours.as_ref())
            .unwrap_or(&self.hours);
        let tz = self.tz();
        let local = now.with_timezone(&tz);
        let today = local.date_naive();
        for (a, b) in self.spans_on(hours, today) {
            let t = local.time();
            if t >= a && t < b {
                let closes = tz
                    .from_local_datetime(&today.and_time(b))
                    .earliest()
                    .map(|d| d.with_timezone(&Utc));
                return Opening {
                    open: true,
                    closes_at: closes,
                    opens_at: None,
                };
            }
        }
        // Next opening within two weeks.
        for add in 0..14 {
            let d = today + chrono::Days::new(add);
            for (a, _) in self.spans_on(hours, d) {
                if let Some(start) = tz.from_local_datetime(&d.and_time(a)).earliest() {
                    let start = start.with_timezone(&Utc);
                    if start > now {
                        return Opening {
                            open: false,
                            closes_at: None,
                            opens_at: Some(start),
                        };
                    }
                }
            }
        }
        Opening {
            open: false,
            closes_at: None,
            opens_at: None,
        }
    }
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Opening {
    pub open: bool,
    pub closes_at: Option<DateTime<Utc>>,
    pub opens_at: Option<DateTime<Utc>>,
}

#[cfg(test)]
mod tests {
    use super::*;

    const MINIMAL: &str = r#"
[[language]]
code = "fi"
name = "Suomi"
[[language]]
code = "sv"
name = "Svenska"
[[language]]
code = "en"
name = "English"

[[site]]
id = "s"
name = { fi = "S" }
timezone = "Europe/Helsinki"
languages = ["fi", "sv", "en"]
hours = { mon = ["08:00-16:00"], sat = ["10:00-14:00"] }
exception = [{ date = "2026-12-24", hours = [] }]

[[site.unit]]
id = "u"
name = { fi = "U" }

[[site.series]]
letter = "A"

[[site.service]]
id = "svc"
unit = "u"
series = "A"
name = { fi = "P", sv = "T", en = "S" }

[[site.counter]]
id = "c1"
unit = "u"
name = { fi = "1" }
services = [{ service = "svc" }]
"#;

    #[test]
    fn minimal_config_parses() {
        let cfg = Config::parse(MINIMAL).expect("valid");
        assert_eq!(cfg.sites[0].services[0].id, "svc");
    }

    #[test]
    fn mistakes_are_reported_with_lines() {
        let bad = MINIMAL.replace("series = \"A\"\nname", "series = \"Q\"\nname");
        let errs = Config::parse(&bad).unwrap_err();
        assert!(
            errs.iter()
                .any(|e| e.message.contains("unknown series 'Q'") && e.line.is_some()),
            "{errs:?}"
        );
        let bad = MINIMAL.replace("timezone = \"Europe/Helsinki\"", "timezone = \"Mars/Base\"");
        let errs = Config::parse(&bad).unwrap_err();
        assert_eq!(errs[0].line, Some(15));
        let syntax = MINIMAL.replace("letter = \"A\"", "letter = A");
        let errs = Config::parse(&syntax).unwrap_err();
        assert!(errs[0].line.is_some(), "{errs:?}");
    }

    #[test]
    fn a_service_time_must_be_a_positive_number() {
        let with = |v: &str| {
            MINIMAL.replace(
                "series = \"A\"\nname",
                &format!("series = \"A\"\nexpected_service_minutes = {v}\nname"),
            )
        };
        assert!(Config::parse(&with("4.5")).is_ok());
        for bad in ["0", "-3", "nan"] {
            let errs = Config::parse(&with(bad)).unwrap_err();
            assert!(
                errs.iter().any(|e| e
                    .message
                    .contains("service 'svc': expected_service_minutes must be positive")),
                "{bad}: {errs:?}"
            );
        }
    }

    #[test]
    fn a_counter_id_used_by_two_sites_is_refused_and_lookups_find_by_id() {
        // A second site, a copy of the first with another id: its counter "c1" clashes.
        let site = &MINIMAL[MINIMAL.find("[[site]]").unwrap()..];
        let two = format!(
            "{MINIMAL}\n{}",
            site.replace("id = \"s\"", "id = \"popup\"")
        );
        let errs = Config::parse(&two).unwrap_err();
        assert!(
            errs.iter().any(|e| e
                .message
                .contains("counter id 'c1' is used by site 's' too")),
            "{errs:?}"
        );
        let ok =
            two.replacen("id = \"c1\"", "id = \"c9\"", 2)
                .replacen("id = \"c9\"", "id = \"c1\"", 1);
        let cfg = Config::parse(&ok).expect("distinct counter ids");
        assert_eq!(
            cfg.sites[1].counter("c9").map(|c| c.id.as_str()),
            Some("c9")
        );
        assert!(cfg.sites[1].counter("c1").is_none());
        assert_eq!(
            cfg.sites[0].service("svc").map(|s| s.unit.as_str()),
            Some("u")
        );
        assert_eq!(
            cfg.sites[0].series("A").map(|s| s.letter.as_str()),
            Some("A")
        );
        assert!(cfg.sites[0].service("nope").is_none());
        // A list changed after parsing is still searched right.
        let mut cfg = cfg;
        let moved = cfg.sites[1].counters[0].clone();
        cfg.sites[0].counters.insert(0, moved);
        assert_eq!(
            cfg.sites[0].counter("c1").map(|c| c.id.as_str()),
            Some("c1")
        );
        assert_eq!(
            cfg.sites[0].counter("c9").map(|c| c.id.as_str()),
            Some("c9")
        );
    }

    #[test]
    fn opening_hours_follow_local_time_and_exceptions() {
        let cfg = Config::parse(MINIMAL).unwrap();
        let site = &cfg.sites[0];
        // Monday 2026-11-23 09:00 Helsinki = 07:00 UTC.
        let mon9 = "2026-11-23T07:00:00Z".parse().unwrap();
        assert!(site.opening(None, mon9).open);
        let mon17 = "2026-11-23T15:00:00Z".parse().unwrap();
        let o = site.opening(None, mon17);
        assert!(!o.open);
        // Next opening: Saturday 28th 10:00 local = 08:00 UTC.
        assert_eq!(o.opens_at, Some("2026-11-28T08:00:00Z".parse().unwrap()));
    }
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
