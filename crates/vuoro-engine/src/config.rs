//! The hall's configuration: sites, units, services, series, counters, zones and displays, parsed from
//! TOML.
//!
//! Parsing is pure (a string in, a validated `Hall` or a list of located mistakes out); opening hours
//! and time zones are parsed once, here. Every name used
//! here is the name used in the API, the database and the web clients.

use std::collections::{BTreeMap, HashMap, HashSet};

use chrono::{DateTime, Datelike, NaiveDate, NaiveTime, TimeZone, Utc, Weekday};
use chrono_tz::Tz;
use serde::de::IgnoredAny;

pub use crate::ids::valid_id;
use crate::ids::{CounterId, ServiceId, SiteId, UnitId};
use serde::{Deserialize, Deserializer, Serialize, Serializer};

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

/// The hall: its sites, with their units, services, series, counters, zones and displays, and the
/// languages the clients may offer. The engine's whole world.
///
/// It is read from the same file as the deployment (`[server]`, `[[user]]`, `[[device]]`, `[[oidc]]`, `[brand]`, `[backup]`:
/// the daemon's, see vuoro-server's `deployment`), whose tables it skips without reading.
#[derive(Debug, Clone, Deserialize, Serialize)]
#[serde(deny_unknown_fields)]
pub struct Hall {
    #[serde(default, rename = "site")]
    pub sites: Vec<Site>,
    #[serde(default, rename = "language")]
    pub languages: Vec<Language>,
    #[serde(default, rename = "server", skip_serializing)]
    _server: IgnoredAny,
    #[serde(default, rename = "user", skip_serializing)]
    _users: IgnoredAny,
    #[serde(default, rename = "device", skip_serializing)]
    _devices: IgnoredAny,
    #[serde(default, rename = "brand", skip_serializing)]
    _brand: IgnoredAny,
    #[serde(default, rename = "backup", skip_serializing)]
    _backup: IgnoredAny,
    #[serde(default, rename = "notify", skip_serializing)]
    _notify: IgnoredAny,
    #[serde(default, rename = "oidc", skip_serializing)]
    _oidc: IgnoredAny,
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
    pub id: SiteId,
    pub name: Text,
    pub timezone: String,
    /// Languages offered at this site, in the order shown. The first is the default.
    pub languages: Vec<String>,
    /// Open whatever the clock says (the demo).
    #[serde(default)]
    pub always_open: bool,
    /// Reports count feedback per staff member too (who finished the visit). Off by default: feedback is
    /// kept per service, unit and counter only, so that nobody is ranked by it (docs/reports.md).
    #[serde(default)]
    pub feedback_by_staff: bool,
    #[serde(default)]
    pub hours: WeekHours,
    #[serde(default, rename = "exception")]
    pub exceptions: Vec<HoursException>,
    /// Minutes after a no-show during which the ticket may be brought back.
    #[serde(default = "default_no_show_minutes")]
    pub no_show_return_minutes: u32,
    /// "Your turn is near" notices at this many people ahead or fewer (`[notify]`'s when absent).
    #[serde(default)]
    pub near_people: Option<u32>,
    /// ... or at an estimate of this many minutes or less.
    #[serde(default)]
    pub near_minutes: Option<u32>,
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
    /// Positions by id, built by [`Hall::parse`]: a hall with hundreds of services looked each one up
    /// by comparing ids one after another, several times per command.
    #[serde(skip)]
    index: SiteIndex,
}

#[derive(Debug, Clone, Default)]
struct SiteIndex {
    /// `timezone`, parsed (`None` for a site that did not come through [`Hall::parse`]).
    tz: Option<Tz>,
    services: HashMap<String, usize>,
    counters: HashMap<String, usize>,
    units: HashMap<String, usize>,
    series: HashMap<String, usize>,
}

impl SiteIndex {
    fn of(site: &Site) -> SiteIndex {
        fn positions<'a, K: std::ops::Deref<Target = str> + 'a>(
            ids: impl Iterator<Item = &'a K>,
        ) -> HashMap<String, usize> {
            let mut m = HashMap::new();
            for (i, id) in ids.enumerate() {
                m.entry(id.to_string()).or_insert(i);
            }
            m
        }
        SiteIndex {
            tz: site.timezone.parse().ok(),
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

/// Opening hours per weekday, each a list of spans ("HH:MM-HH:MM" in the file). A missing day is closed.
#[derive(Debug, Clone, Deserialize, Serialize, Default)]
#[serde(deny_unknown_fields)]
pub struct WeekHours {
    #[serde(default)]
    pub mon: Vec<Span>,
    #[serde(default)]
    pub tue: Vec<Span>,
    #[serde(default)]
    pub wed: Vec<Span>,
    #[serde(default)]
    pub thu: Vec<Span>,
    #[serde(default)]
    pub fri: Vec<Span>,
    #[serde(default)]
    pub sat: Vec<Span>,
    #[serde(default)]
    pub sun: Vec<Span>,
}

impl WeekHours {
    fn day(&self, d: Weekday) -> &[Span] {
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
    pub hours: Vec<Span>,
    #[serde(default)]
    pub note: Option<String>,
}

#[derive(Debug, Clone, Deserialize, Serialize)]
#[serde(deny_unknown_fields)]
pub struct Unit {
    pub id: UnitId,
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
    pub id: ServiceId,
    pub unit: UnitId,
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
    /// The site's "your turn is near" thresholds, for this service (see `Site::near_people`).
    #[serde(default)]
    pub near_people: Option<u32>,
    #[serde(default)]
    pub near_minutes: Option<u32>,
}

impl Service {
    /// The id public screens and answers use: its own, or for a sensitive service the neutral group of
    /// its series (`group-h`), shared with every sensitive service of that series.
    pub fn public_id(&self) -> ServiceId {
        if self.sensitive {
            ServiceId::parse(format!("group-{}", self.series.to_ascii_lowercase()))
                .expect("a series letter is A-Z")
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
    pub service: ServiceId,
    #[serde(default = "default_tier")]
    pub tier: u32,
}

fn default_tier() -> u32 {
    1
}

#[derive(Debug, Clone, Deserialize, Serialize)]
#[serde(deny_unknown_fields)]
pub struct Counter {
    pub id: CounterId,
    pub unit: UnitId,
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

impl Hall {
    /// Parses and checks a config. All mistakes found are returned, each with its line where known.
    pub fn parse(src: &str) -> Result<Hall, Vec<ConfigError>> {
        let mut cfg: Hall = toml::from_str(src).map_err(|e| {
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
            let mut ids = HashSet::new();
            let units: HashSet<&str> = site.units.iter().map(|u| u.id.as_str()).collect();
            let series: HashSet<&str> = site.series.iter().map(|s| s.letter.as_str()).collect();
            for u in &site.units {
                if !ids.insert(u.id.to_string()) || !valid_id(&u.id) {
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
                if !valid_id(&c.id) || !ids.insert(c.id.to_string()) {
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

fn line_of(src: &str, offset: usize) -> usize {
    src[..offset.min(src.len())].matches('\n').count() + 1
}

/// The line of the first `needle` in `src`, for a mistake's location.
pub fn find_line(src: &str, needle: &str) -> Option<usize> {
    if needle.is_empty() {
        return None;
    }
    src.find(needle).map(|i| line_of(src, i))
}

/// An opening span, written "HH:MM-HH:MM" (opening before closing), parsed when the config loads.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord)]
pub struct Span {
    pub open: NaiveTime,
    pub close: NaiveTime,
}

impl std::str::FromStr for Span {
    type Err = String;
    fn from_str(s: &str) -> Result<Span, String> {
        let bad = || format!("'{s}' is not HH:MM-HH:MM");
        let (a, b) = s.split_once('-').ok_or_else(bad)?;
        let time = |t: &str| NaiveTime::parse_from_str(t.trim(), "%H:%M").map_err(|_| bad());
        let (open, close) = (time(a)?, time(b)?);
        if open >= close {
            return Err(format!(
                "'{s}': the opening time must come before the closing time"
            ));
        }
        Ok(Span { open, close })
    }
}

impl std::fmt::Display for Span {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(
            f,
            "{}-{}",
            self.open.format("%H:%M"),
            self.close.format("%H:%M")
        )
    }
}

impl Serialize for Span {
    fn serialize<S: Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        s.collect_str(self)
    }
}

impl<'de> Deserialize<'de> for Span {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Span, D::Error> {
        let s = String::deserialize(d)?;
        s.parse().map_err(serde::de::Error::custom)
    }
}

impl Site {
    pub fn tz(&self) -> Tz {
        self.index
            .tz
            .unwrap_or_else(|| self.timezone.parse().unwrap_or(chrono_tz::UTC))
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

    /// The spans `service` (its own hours, else the site's; `None`: the site's) is open on `date`,
    /// honouring the site's exceptions.
    pub fn spans_on<'a>(&'a self, service: Option<&'a Service>, date: NaiveDate) -> &'a [Span] {
        if let Some(ex) = self.exceptions.iter().find(|e| e.date == date) {
            return &ex.hours;
        }
        service
            .and_then(|s| s.hours.as_ref())
            .unwrap_or(&self.hours)
            .day(date.weekday())
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
        let tz = self.tz();
        let local = now.with_timezone(&tz);
        let today = local.date_naive();
        for &Span { open: a, close: b } in self.spans_on(service, today) {
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
            for &Span { open: a, .. } in self.spans_on(service, d) {
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
        let cfg = Hall::parse(MINIMAL).expect("valid");
        assert_eq!(cfg.sites[0].services[0].id, "svc");
    }

    #[test]
    fn mistakes_are_reported_with_lines() {
        let bad = MINIMAL.replace("series = \"A\"\nname", "series = \"Q\"\nname");
        let errs = Hall::parse(&bad).unwrap_err();
        assert!(
            errs.iter()
                .any(|e| e.message.contains("unknown series 'Q'") && e.line.is_some()),
            "{errs:?}"
        );
        let bad = MINIMAL.replace("timezone = \"Europe/Helsinki\"", "timezone = \"Mars/Base\"");
        let errs = Hall::parse(&bad).unwrap_err();
        assert_eq!(errs[0].line, Some(15));
        let syntax = MINIMAL.replace("letter = \"A\"", "letter = A");
        let errs = Hall::parse(&syntax).unwrap_err();
        assert!(errs[0].line.is_some(), "{errs:?}");
    }

    #[test]
    fn opening_hours_are_parsed_when_the_config_loads() {
        let cfg = Hall::parse(MINIMAL).unwrap();
        let mon = NaiveDate::from_ymd_opt(2026, 12, 7).unwrap();
        let span = cfg.sites[0].spans_on(None, mon)[0];
        assert_eq!(span.to_string(), "08:00-16:00");
        assert_eq!(span.open, NaiveTime::from_hms_opt(8, 0, 0).unwrap());
        // Christmas Eve is an exception without hours: closed.
        let eve = NaiveDate::from_ymd_opt(2026, 12, 24).unwrap();
        assert!(cfg.sites[0].spans_on(None, eve).is_empty());
        for (bad, says) in [
            ("8-16", "'8-16' is not HH:MM-HH:MM"),
            (
                "16:00-08:00",
                "opening time must come before the closing time",
            ),
        ] {
            let src = MINIMAL.replace("sat = [\"10:00-14:00\"]", &format!("sat = [\"{bad}\"]"));
            let errs = Hall::parse(&src).unwrap_err();
            assert!(errs[0].message.contains(says), "{errs:?}");
            assert_eq!(errs[0].line, Some(17), "{errs:?}");
        }
    }

    #[test]
    fn a_service_time_must_be_a_positive_number() {
        let with = |v: &str| {
            MINIMAL.replace(
                "series = \"A\"\nname",
                &format!("series = \"A\"\nexpected_service_minutes = {v}\nname"),
            )
        };
        assert!(Hall::parse(&with("4.5")).is_ok());
        for bad in ["0", "-3", "nan"] {
            let errs = Hall::parse(&with(bad)).unwrap_err();
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
        let errs = Hall::parse(&two).unwrap_err();
        assert!(
            errs.iter().any(|e| e
                .message
                .contains("counter id 'c1' is used by site 's' too")),
            "{errs:?}"
        );
        let ok =
            two.replacen("id = \"c1\"", "id = \"c9\"", 2)
                .replacen("id = \"c9\"", "id = \"c1\"", 1);
        let cfg = Hall::parse(&ok).expect("distinct counter ids");
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
        let cfg = Hall::parse(MINIMAL).unwrap();
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
