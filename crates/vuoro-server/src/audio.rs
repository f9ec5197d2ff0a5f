//! Hall announcements: which sound files a call plays, in which language, and serving them.
//!
//! A call plays a chime, then (unless the zone is chime-only or its speakers are busy) one spoken sentence
//! such as "Numero K 42, palvelupiste 5" rendered offline by espeak-ng. Displays fetch the files by URL and
//! play them one after another; this module never plays anything itself.
//!
//! - [`Audio::announcement`] applies a zone's language policy and its airtime cap. It reads no clock (time is
//!   passed in), so the policy is unit-tested without waiting. It renders the speech on first use (about
//!   20 ms for espeak-ng here) because the announcement carries the measured duration.
//! - Speech files are cached in `cache_dir/speech/<sha256>.wav`, named by a hash of the voice, speed and text,
//!   and pruned after a day. Durations are read from the WAV header, never guessed.
//! - Without espeak-ng every call is chime-only and the kiosk's speech endpoint answers 503 `no_speech`.
//! - [`Announcer`] is the consumer of the post-commit stage (after_commit.rs) that turns each committed call
//!   into an event on its site's `announcements:` topic, off the writer and off the read model's lock.
//!
//! Shared state is a plain `std::sync::Mutex`: it is held only for map look-ups and arithmetic, never across
//! an `.await` or while espeak-ng runs.

use std::collections::{BTreeSet, HashMap};
use std::io::Write;
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant, SystemTime};

use axum::Router;
use axum::extract::rejection::QueryRejection;
use axum::extract::{Path as UrlPath, Query, State};
use axum::http::header;
use axum::response::{IntoResponse, Response};
use axum::routing::get;

use crate::error::{ApiError, ErrorCode};
use chrono::{DateTime, NaiveTime, TimeDelta, Utc};
use serde::{Deserialize, Serialize};
use serde_json::json;
use sha2::{Digest, Sha256};
use vuoro_engine::config::{Hall, Text, Zone};
use vuoro_engine::view::Call;
use vuoro_engine::{Event, EventKind};
use vuoro_protocol::Topic;

use crate::after_commit::{Consumer, Delivery};
use crate::core::Shared;

/// Where the chime is served.
pub const CHIME_URL: &str = "/api/v1/audio/chime.wav";
/// Prefix of a rendered speech file's URL; the file name is `<64 hex>.wav`.
pub const SPEECH_URL_PREFIX: &str = "/api/v1/audio/speech/";
/// Longest text the kiosk's speech endpoint renders.
pub const MAX_SPEECH_CHARS: usize = 300;

/// espeak-ng speed in words per minute (its default is 175; slower is clearer in a noisy hall).
const SPEED_WPM: u32 = 150;
/// espeak-ng is killed if it has not finished by then.
const RENDER_TIMEOUT: Duration = Duration::from_secs(5);
/// Speech files older than this are deleted (a ticket number is spoken on one day only).
const CACHE_MAX_AGE: Duration = Duration::from_secs(24 * 3600);
/// Prune the cache after this many renders (and at start).
const PRUNE_EVERY: u64 = 64;
/// The speech cache's size at most; past it the oldest files go (a day's announcements of a busy hall
/// take about 100 MB).
const CACHE_MAX_BYTES: u64 = 512 * 1024 * 1024;
/// Bound on the in-memory index of rendered speech; files stay on disk when it is cleared.
const INDEX_MAX: usize = 4096;
/// Volume when a zone has no (valid) schedule.
pub const DEFAULT_VOLUME: u8 = 100;

/// What a display plays for one call. The `announcements:` event that follows a public `ticket_called` or
/// `ticket_recalled` event carries these fields as `audio`, `announce_lang`, `chime_only` and `duration_ms`.
#[derive(Debug, Clone, Serialize, PartialEq, Eq)]
pub struct Announcement {
    /// Language of the spoken part; `None` when chime only.
    pub lang: Option<String>,
    /// URLs to play in order, the chime first.
    pub audio: Vec<String>,
    /// True when only the chime is played (policy `chime`, no espeak-ng, or the zone's airtime cap).
    pub chime_only: bool,
    /// Total playing time of `audio`, measured from the WAV headers.
    pub duration_ms: u32,
}

/// An announcement with the time the zone's speakers would start it (for the airtime model and its tests).
#[derive(Debug, Clone)]
struct Scheduled {
    announcement: Announcement,
    starts_at: DateTime<Utc>,
}

/// The announcement service: one per daemon, shared as `Arc<Audio>`.
pub struct Audio {
    cache_dir: PathBuf,
    speaker: Option<Speaker>,
    chime: axum::body::Bytes,
    chime_ms: u32,
    zones: Mutex<HashMap<String, ZoneAirtime>>,
    index: Mutex<HashMap<String, Clip>>,
    renders: AtomicU64,
    cache_bytes: AtomicU64,
    /// Speech to render in the background (set by `new`). Announcements are made on the daemon's commit
    /// path, which must not wait for espeak-ng: a new sentence gets an estimated duration at once and is
    /// rendered here (or on its first request, whichever comes first).
    render_tx: Mutex<Option<std::sync::mpsc::Sender<String>>>,
}

/// Per zone: when its speakers are free again, and how many calls it has had (for alternating languages).
#[derive(Debug, Clone)]
struct ZoneAirtime {
    busy_until: DateTime<Utc>,
    turn: u64,
}

/// A rendered speech file.
#[derive(Debug, Clone)]
struct Clip {
    speech: Speech,
    duration_ms: u32,
}

/// Something to say: the text, in SSML or plain, in one language.
#[derive(Debug, Clone, PartialEq, Eq)]
struct Speech {
    lang: String,
    ssml: bool,
    text: String,
}

impl Speech {
    /// The cache key: a hash of everything that changes the sound.
    fn hash(&self) -> String {
        let mut h = Sha256::new();
        h.update(b"vuoro-speech-1\0");
        h.update(self.lang.as_bytes());
        h.update([0]);
        h.update(SPEED_WPM.to_le_bytes());
        h.update([u8::from(self.ssml)]);
        h.update(self.text.as_bytes());
        crate::auth::hex(&h.finalize())
    }
}

/// The text-to-speech engine.
#[derive(Debug, Clone)]
enum Speaker {
    /// espeak-ng, with the language codes its installed voices speak.
    Espeak {
        version: String,
        langs: BTreeSet<String>,
    },
    /// Tests only: writes silent WAVs of a length proportional to the text.
    #[cfg(test)]
    Fake { langs: BTreeSet<String> },
}

impl Speaker {
    fn speaks(&self, lang: &str) -> bool {
        match self {
            Speaker::Espeak { langs, .. } => langs.contains(lang),
            #[cfg(test)]
            Speaker::Fake { langs } => langs.contains(lang),
        }
    }
}

impl Audio {
    /// Detects espeak-ng once (`espeak-ng --version`, `--voices`); without it, logs a warning and works
    /// chime-only. Prunes old speech files in `cache_dir`.
    pub fn new(cache_dir: PathBuf) -> Arc<Audio> {
        let speaker = detect_espeak();
        match &speaker {
            Some(Speaker::Espeak { version, langs }) => tracing::info!(
                version = %version,
                languages = langs.len(),
                "espeak-ng found: calls are spoken"
            ),
            _ => tracing::warn!("espeak-ng not found: calls are announced with a chime only"),
        }
        let audio = Arc::new(Audio::with_speaker(cache_dir, speaker));
        let (tx, rx) = std::sync::mpsc::channel::<String>();
        let weak = Arc::downgrade(&audio);
        let spawned = std::thread::Builder::new()
            .name("vuoro-speech".into())
            .spawn(move || {
                while let Ok(hash) = rx.recv() {
                    let Some(audio) = weak.upgrade() else { break };
                    audio.render_indexed(&hash);
                }
            });
        if spawned.is_ok() {
            *audio.render_tx.lock().unwrap_or_else(|e| e.into_inner()) = Some(tx);
        }
        audio
    }

    /// Renders an indexed clip that is not on disk yet, and records its measured duration.
    fn render_indexed(&self, hash: &str) {
        let path = self.speech_path(hash);
        if path.exists() {
            return;
        }
        let Some(clip) = self
            .index
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .get(hash)
            .cloned()
        else {
            return;
        };
        match self.render(&clip.speech, &path) {
            Ok(bytes) => {
                if let Some(ms) = wav_duration_ms(&bytes)
                    && let Some(c) = self
                        .index
                        .lock()
                        .unwrap_or_else(|e| e.into_inner())
                        .get_mut(hash)
                {
                    c.duration_ms = ms;
                }
            }
            Err(e) => tracing::warn!(error = %e, "speech not rendered"),
        }
    }

    fn with_speaker(cache_dir: PathBuf, speaker: Option<Speaker>) -> Audio {
        let chime = chime_wav();
        let chime_ms = wav_duration_ms(&chime).unwrap_or(1000);
        let audio = Audio {
            cache_dir,
            speaker,
            chime: axum::body::Bytes::from(chime),
            chime_ms,
            zones: Mutex::new(HashMap::new()),
            index: Mutex::new(HashMap::new()),
            renders: AtomicU64::new(0),
            cache_bytes: AtomicU64::new(0),
            render_tx: Mutex::new(None),
        };
        audio.prune();
        audio
    }

    /// True when calls can be spoken (espeak-ng was found).
    pub fn has_speech(&self) -> bool {
        self.speaker.is_some()
    }

    /// True when speech can be rendered in `lang` (an espeak-ng language code such as `fi`, `sv`, `en-gb`).
    pub fn speaks(&self, lang: &str) -> bool {
        self.speaker
            .as_ref()
            .is_some_and(|s| s.speaks(&voice_for(lang)))
    }

    /// The chime's length.
    pub fn chime_ms(&self) -> u32 {
        self.chime_ms
    }

    /// What to play for a call of `number` to the counter named `counter_name`, in `zone`, at `now`.
    ///
    /// Language by the zone's `voice`: `fi`, `sv`, `en`; `fi+sv` alternates per call; `customer` is the
    /// ticket's language when there is a voice and a sentence for it, else `fi`; `chime` is chime only.
    /// Airtime cap: announcements in a zone are queued one after another; a call whose spoken announcement
    /// would end more than `zone.max_backlog_seconds` after `now` gets the chime only.
    /// Renders the speech on first use (espeak-ng, tens of milliseconds); a failed render means chime only.
    pub fn announcement(
        &self,
        zone: &Zone,
        number: &str,
        counter_name: &Text,
        ticket_lang: &str,
        now: DateTime<Utc>,
    ) -> Announcement {
        let s = self.schedule(zone, number, counter_name, ticket_lang, now);
        tracing::debug!(
            zone = %zone.id,
            lang = ?s.announcement.lang,
            chime_only = s.announcement.chime_only,
            starts_at = %s.starts_at,
            "announcement"
        );
        s.announcement
    }

    fn schedule(
        &self,
        zone: &Zone,
        number: &str,
        counter_name: &Text,
        ticket_lang: &str,
        now: DateTime<Utc>,
    ) -> Scheduled {
        // Choose the language (and advance the zone's turn) first; render outside the lock.
        let lang = {
            let mut zones = self.zones.lock().unwrap_or_else(|e| e.into_inner());
            let st = zones.entry(zone.id.clone()).or_insert(ZoneAirtime {
                busy_until: now,
                turn: 0,
            });
            let turn = st.turn;
            st.turn += 1;
            self.policy_lang(&zone.voice, ticket_lang, turn)
        };
        let spoken = lang.and_then(|lang| {
            let speech = announcement_speech(&lang, number, counter_name);
            match self.clip(&speech) {
                Ok((hash, clip)) => Some((lang, hash, clip.duration_ms)),
                Err(e) => {
                    tracing::warn!(error = %e, lang = %lang, "speech not rendered: chime only");
                    None
                }
            }
        });

        let mut zones = self.zones.lock().unwrap_or_else(|e| e.into_inner());
        let st = zones.entry(zone.id.clone()).or_insert(ZoneAirtime {
            busy_until: now,
            turn: 1,
        });
        let starts_at = st.busy_until.max(now);
        let queued_ms = (starts_at - now).num_milliseconds().max(0);
        let cap_ms = i64::from(zone.max_backlog_seconds) * 1000;
        let announcement = match spoken {
            Some((lang, hash, speech_ms))
                if queued_ms + i64::from(self.chime_ms + speech_ms) <= cap_ms =>
            {
                Announcement {
                    lang: Some(lang),
                    audio: vec![
                        CHIME_URL.to_string(),
                        format!("{SPEECH_URL_PREFIX}{hash}.wav"),
                    ],
                    chime_only: false,
                    duration_ms: self.chime_ms + speech_ms,
                }
            }
            _ => self.chime_only(),
        };
        st.busy_until = starts_at + TimeDelta::milliseconds(i64::from(announcement.duration_ms));
        Scheduled {
            announcement,
            starts_at,
        }
    }

    fn chime_only(&self) -> Announcement {
        Announcement {
            lang: None,
            audio: vec![CHIME_URL.to_string()],
            chime_only: true,
            duration_ms: self.chime_ms,
        }
    }

    /// The spoken language for a zone policy, or `None` for chime only.
    fn policy_lang(&self, voice: &str, ticket_lang: &str, turn: u64) -> Option<String> {
        let lang = match voice {
            "chime" => return None,
            "fi+sv" => {
                if turn.is_multiple_of(2) {
                    "fi"
                } else {
                    "sv"
                }
            }
            "customer" => {
                if phrase(ticket_lang).is_some() && self.speaks(ticket_lang) {
                    ticket_lang
                } else {
                    "fi"
                }
            }
            other => other,
        };
        (phrase(lang).is_some() && self.speaks(lang)).then(|| lang.to_string())
    }

    /// The rendered clip for `speech`: from the index, else from disk, else rendered now.
    /// Returns its hash and clip.
    fn clip(&self, speech: &Speech) -> anyhow::Result<(String, Clip)> {
        let hash = speech.hash();
        if let Some(c) = self
            .index
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .get(&hash)
        {
            return Ok((hash, c.clone()));
        }
        let path = self.speech_path(&hash);
        let bytes = match std::fs::read(&path) {
            Ok(b) => b,
            Err(_) => {
                let tx = self
                    .render_tx
                    .lock()
                    .unwrap_or_else(|e| e.into_inner())
                    .clone();
                if let Some(tx) = tx {
                    // Not on disk: estimate now, render in the background.
                    if self.speaker.is_none() {
                        anyhow::bail!("no speech engine");
                    }
                    let clip = Clip {
                        speech: speech.clone(),
                        duration_ms: estimate_ms(speech),
                    };
                    let mut index = self.index.lock().unwrap_or_else(|e| e.into_inner());
                    if index.len() >= INDEX_MAX {
                        index.clear();
                    }
                    index.insert(hash.clone(), clip.clone());
                    drop(index);
                    let _ = tx.send(hash.clone());
                    return Ok((hash, clip));
                }
                self.render(speech, &path)?
            }
        };
        let duration_ms = wav_duration_ms(&bytes)
            .ok_or_else(|| anyhow::anyhow!("{} is not a readable WAV", path.display()))?;
        let clip = Clip {
            speech: speech.clone(),
            duration_ms,
        };
        let mut index = self.index.lock().unwrap_or_else(|e| e.into_inner());
        if index.len() >= INDEX_MAX {
            index.clear();
        }
        index.insert(hash.clone(), clip.clone());
        Ok((hash, clip))
    }

    fn speech_dir(&self) -> PathBuf {
        self.cache_dir.join("speech")
    }

    fn speech_path(&self, hash: &str) -> PathBuf {
        self.speech_dir().join(format!("{hash}.wav"))
    }

    /// Renders `speech` into `path` (through a temporary file, so a reader never sees half a file) and returns
    /// the bytes.
    fn render(&self, speech: &Speech, path: &Path) -> anyhow::Result<Vec<u8>> {
        let speaker = self
            .speaker
            .as_ref()
            .ok_or_else(|| anyhow::anyhow!("no speech engine"))?;
        std::fs::create_dir_all(self.speech_dir())?;
        let n = self.renders.fetch_add(1, Ordering::Relaxed);
        if n > 0 && n.is_multiple_of(PRUNE_EVERY) {
            self.prune();
        }
        let tmp = path.with_extension(format!("{}-{n}.tmp", std::process::id()));
        let result = match speaker {
            Speaker::Espeak { .. } => espeak(speech, &tmp),
            #[cfg(test)]
            Speaker::Fake { .. } => fake_speech(speech, &tmp),
        };
        if let Err(e) = result {
            let _ = std::fs::remove_file(&tmp);
            return Err(e);
        }
        let bytes = std::fs::read(&tmp)?;
        if wav_duration_ms(&bytes).is_none_or(|ms| ms == 0) {
            let _ = std::fs::remove_file(&tmp);
            anyhow::bail!("the speech engine wrote an empty or unreadable WAV");
        }
        std::fs::rename(&tmp, path)?;
        let total = self
            .cache_bytes
            .fetch_add(bytes.len() as u64, Ordering::Relaxed);
        if total > CACHE_MAX_BYTES {
            self.prune();
        }
        Ok(bytes)
    }

    /// Deletes speech files older than a day and temporary files left by a crash, then the oldest files
    /// until the cache is under `CACHE_MAX_BYTES`.
    fn prune(&self) {
        let Ok(entries) = std::fs::read_dir(self.speech_dir()) else {
            return;
        };
        let now = SystemTime::now();
        let mut removed = 0usize;
        let mut kept: Vec<(SystemTime, u64, PathBuf)> = Vec::new();
        for e in entries.flatten() {
            let Ok(meta) = e.metadata() else { continue };
            let modified = meta.modified().unwrap_or(now);
            let old = now
                .duration_since(modified)
                .is_ok_and(|age| age > CACHE_MAX_AGE);
            if old {
                if std::fs::remove_file(e.path()).is_ok() {
                    removed += 1;
                }
            } else {
                kept.push((modified, meta.len(), e.path()));
            }
        }
        let mut total: u64 = kept.iter().map(|k| k.1).sum();
        if total > CACHE_MAX_BYTES {
            kept.sort();
            for (_, len, path) in &kept {
                if total <= CACHE_MAX_BYTES / 10 * 8 {
                    break;
                }
                if std::fs::remove_file(path).is_ok() {
                    total -= len;
                    removed += 1;
                }
            }
        }
        self.cache_bytes.store(total, Ordering::Relaxed);
        if removed > 0 {
            tracing::info!(removed, cache_bytes = total, "speech files pruned");
        }
    }

    /// Bytes of speech files on disk, as of the last prune plus what was rendered since.
    pub fn cache_bytes(&self) -> u64 {
        self.cache_bytes.load(Ordering::Relaxed)
    }

    /// A speech file's bytes by hash: from disk, else rendered again if it is still in the index.
    fn speech_file(&self, hash: &str) -> Option<Vec<u8>> {
        let path = self.speech_path(hash);
        if let Ok(b) = std::fs::read(&path) {
            return Some(b);
        }
        let clip = self
            .index
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .get(hash)
            .cloned()?;
        self.render(&clip.speech, &path).ok()
    }
}

/// Announces committed calls: the post-commit stage's audio consumer. Registered at the seq the daemon
/// starts from, so a call from before a restart is never announced again. A call read back from the event
/// log (the consumer fell behind its queue) is not announced: it is no longer current by then, and a
/// display would not play it.
pub struct Announcer {
    audio: Arc<Audio>,
    cfg: Arc<Hall>,
    shared: std::sync::Weak<Shared>,
}

impl Announcer {
    pub fn new(audio: Arc<Audio>, cfg: Arc<Hall>, shared: &Arc<Shared>) -> Announcer {
        Announcer {
            audio,
            cfg,
            shared: Arc::downgrade(shared),
        }
    }

    /// The event on `announcements:{site}` for a committed call: the call as the `calls:` topic published
    /// it, with what to play. Its seq is the call's.
    pub fn message(&self, ev: &Event, call: &Call) -> Option<(String, String)> {
        // The hall in force (zones change with the config), else the one it started with.
        let hall = self
            .shared
            .upgrade()
            .map(|s| s.hall())
            .unwrap_or_else(|| self.cfg.clone());
        let site = hall.site(&ev.site)?;
        let zone = call
            .zone
            .as_deref()
            .and_then(|z| site.zones.iter().find(|x| x.id == z));
        // A counter outside every zone: silence.
        let a = match zone {
            Some(zone) => {
                self.audio
                    .announcement(zone, &call.number, &call.counter_name, &call.lang, ev.at)
            }
            None => Announcement {
                lang: None,
                audio: Vec::new(),
                chime_only: true,
                duration_ms: 0,
            },
        };
        let kind = match ev.kind {
            EventKind::TicketRecalled { .. } => "ticket_recalled",
            _ => "ticket_called",
        };
        let mut body = json!(call);
        body["kind"] = json!(kind);
        body["audio"] = json!(a.audio);
        body["announce_lang"] = json!(a.lang);
        body["chime_only"] = json!(a.chime_only);
        body["duration_ms"] = json!(a.duration_ms);
        let topic = Topic::Announcements(site.id.to_string()).to_string();
        let text = vuoro_protocol::TopicMsg::Event {
            topic: topic.clone(),
            seq: ev.seq,
            event: body,
        }
        .to_json();
        Some((topic, text))
    }
}

impl Consumer for Announcer {
    fn handle(&mut self, d: Delivery<'_>) {
        let Some(call) = d.call else { return };
        // Rendered whether or not a display listens: the zone's airtime counts every call.
        let Some((topic, text)) = self.message(d.event, call) else {
            return;
        };
        let Some(shared) = self.shared.upgrade() else {
            return;
        };
        // Not kept for resuming: a display that resumes lists the calls it missed without announcing them.
        let mut core = shared.core.lock().expect("lock");
        if core.hub.has_subscribers(&topic) {
            core.hub
                .publish(&topic, d.event.seq, None, text.into(), false);
        }
    }
}

/// The router for the public sound files, state applied. Public: the files say nothing a hall does not hear.
///
/// - `GET /api/v1/audio/chime.wav`
/// - `GET /api/v1/audio/speech/<hash>.wav`: a file named in an announcement.
///
/// `GET /api/v1/audio/speech?lang=fi&text=...` (the kiosk's speech mode) is served by the API, which lets
/// only kiosk devices ask and limits how often (`speech_text`).
pub fn router(audio: Arc<Audio>) -> Router {
    Router::new()
        .route("/api/v1/audio/chime.wav", get(get_chime))
        .route("/api/v1/audio/speech/{file}", get(get_speech_file))
        .with_state(audio)
}

async fn get_chime(State(audio): State<Arc<Audio>>) -> Response {
    wav_response(audio.chime.clone(), "public, max-age=86400")
}

async fn get_speech_file(
    State(audio): State<Arc<Audio>>,
    UrlPath(file): UrlPath<String>,
) -> Response {
    let Some(hash) = file.strip_suffix(".wav").filter(|h| {
        h.len() == 64
            && h.bytes()
                .all(|b| b.is_ascii_hexdigit() && !b.is_ascii_uppercase())
    }) else {
        return error(ErrorCode::NotFound, "No such sound file.");
    };
    let hash = hash.to_string();
    let found = tokio::task::spawn_blocking(move || audio.speech_file(&hash))
        .await
        .ok()
        .flatten();
    match found {
        // The name is a hash of the content: it never changes.
        Some(bytes) => wav_response(bytes.into(), "public, max-age=86400, immutable"),
        None => error(ErrorCode::NotFound, "No such sound file."),
    }
}

#[derive(Debug, Deserialize)]
pub struct SpeechQuery {
    lang: Option<String>,
    text: Option<String>,
}

/// Renders any text up to 300 characters: 422 `invalid` for a language espeak-ng does not speak or an
/// empty or too long text, 503 `no_speech` without espeak-ng. The caller decides who may ask.
pub async fn speech_text(
    audio: Arc<Audio>,
    query: Result<Query<SpeechQuery>, QueryRejection>,
) -> Response {
    let Ok(Query(q)) = query else {
        return error(ErrorCode::Malformed, "The query string is not well formed.");
    };
    if !audio.has_speech() {
        return error(
            ErrorCode::NoSpeech,
            "Speech is not available on this server.",
        );
    }
    let lang = q.lang.unwrap_or_default();
    if !valid_lang_code(&lang) || !audio.speaks(&lang) {
        return error(
            ErrorCode::Invalid,
            &format!(
                "No voice for language '{}'.",
                lang.chars().take(20).collect::<String>()
            ),
        );
    }
    let text = q.text.unwrap_or_default().trim().to_string();
    if text.is_empty()
        || text.chars().count() > MAX_SPEECH_CHARS
        || text.chars().any(|c| c.is_control() && c != '\n')
    {
        return error(
            ErrorCode::Invalid,
            &format!(
                "The text must be 1 to {MAX_SPEECH_CHARS} characters without control characters."
            ),
        );
    }
    let speech = Speech {
        lang: voice_for(&lang),
        ssml: false,
        text,
    };
    let rendered = tokio::task::spawn_blocking(move || {
        let (hash, _) = audio.clip(&speech)?;
        audio
            .speech_file(&hash)
            .ok_or_else(|| anyhow::anyhow!("rendered file vanished"))
    })
    .await;
    match rendered {
        Ok(Ok(bytes)) => wav_response(bytes.into(), "public, max-age=86400"),
        Ok(Err(e)) => {
            tracing::warn!(error = %e, "speech render failed");
            error(ErrorCode::Unavailable, "The speech could not be rendered.")
        }
        Err(e) => {
            tracing::warn!(error = %e, "speech render task failed");
            error(ErrorCode::Unavailable, "The speech could not be rendered.")
        }
    }
}

fn wav_response(bytes: axum::body::Bytes, cache: &'static str) -> Response {
    (
        [
            (header::CONTENT_TYPE, "audio/wav"),
            (header::CACHE_CONTROL, cache),
            (header::X_CONTENT_TYPE_OPTIONS, "nosniff"),
        ],
        bytes,
    )
        .into_response()
}

fn error(code: ErrorCode, message: &str) -> Response {
    ApiError::new(code, message).into_response()
}

/// A language code as the API takes it: `fi`, `sv`, `en-gb`.
fn valid_lang_code(lang: &str) -> bool {
    let mut parts = lang.split('-');
    let first_ok = parts
        .next()
        .is_some_and(|p| (2..=3).contains(&p.len()) && p.bytes().all(|b| b.is_ascii_lowercase()));
    first_ok
        && parts.all(|p| (1..=8).contains(&p.len()) && p.bytes().all(|b| b.is_ascii_alphanumeric()))
}

/// The espeak-ng voice for a language code. Debian's Mandarin voice is `cmn`.
fn voice_for(lang: &str) -> String {
    match lang {
        "zh" => "cmn".to_string(),
        other => other.to_string(),
    }
}

// ---- volume -------------------------------------------------------------------------------------

/// The zone's volume (percent) at a local time, from its schedule of "HH:MM=percent" entries: the latest
/// entry at or before `local_time`, else (before the first entry) the day's last one, carried over midnight.
/// Entries that do not parse are ignored; percentages above 100 count as 100. No schedule: 100.
pub fn volume_now(zone: &Zone, local_time: NaiveTime) -> u8 {
    let mut steps: Vec<(NaiveTime, u8)> = zone
        .volume
        .iter()
        .filter_map(|e| {
            let (t, p) = e.split_once('=')?;
            let t = NaiveTime::parse_from_str(t.trim(), "%H:%M").ok()?;
            let p: u32 = p.trim().trim_end_matches('%').parse().ok()?;
            Some((t, p.min(100) as u8))
        })
        .collect();
    steps.sort_by_key(|(t, _)| *t);
    match steps.iter().rev().find(|(t, _)| *t <= local_time) {
        Some((_, p)) => *p,
        None => steps.last().map_or(DEFAULT_VOLUME, |(_, p)| *p),
    }
}

// ---- what is said ---------------------------------------------------------------------------------

/// "Number" and "counter" in the languages a call can be spoken in. Mandarin is left out: Debian's espeak-ng
/// Mandarin dictionary lacks these words and reads them letter by letter.
fn phrase(lang: &str) -> Option<(&'static str, &'static str)> {
    Some(match lang {
        "fi" => ("Numero", "palvelupiste"),
        "sv" => ("Nummer", "servicepunkt"),
        "en" => ("Number", "counter"),
        "ru" => ("Номер", "окно"),
        "uk" => ("Номер", "вікно"),
        "et" => ("Number", "teeninduskoht"),
        "ar" => ("الرقم", "الشباك"),
        "fa" => ("شماره", "باجه"),
        _ => return None,
    })
}

/// The sentence for a call, as SSML: "Numero K 42, palvelupiste 5". The number's letters are spelled
/// (`say-as characters`, so English says "A" as the letter, not the article) and its digits read as a
/// number without leading zeros. The counter's name in that language, else "counter" plus the number
/// the name ends with, else its Finnish name.
/// A speech clip's length before it is rendered: espeak-ng at this speed says about 6 to 7 characters a
/// second (measured: "Numero K 42, Palvelupiste 5" 4.5 s, "Nummer K 42, Servicepunkt 5" 3.8 s, "Number K 42,
/// Counter 5" 3.3 s). Slightly long on purpose, so the airtime cap errs towards chime only.
fn estimate_ms(speech: &Speech) -> u32 {
    let mut chars = 0u32;
    let mut in_tag = false;
    for c in speech.text.chars() {
        match c {
            '<' if speech.ssml => in_tag = true,
            '>' if speech.ssml => in_tag = false,
            _ if !in_tag => chars += 1,
            _ => {}
        }
    }
    let per_char = match speech.lang.as_str() {
        "fi" => 160,
        "sv" => 135,
        "en" => 145,
        _ => 165,
    };
    400 + chars * per_char
}

fn announcement_speech(lang: &str, number: &str, counter_name: &Text) -> Speech {
    let (number_word, counter_word) = phrase(lang).unwrap_or(("Numero", "palvelupiste"));
    let counter = match counter_name.get(lang) {
        Some(name) => name.clone(),
        None => {
            let any = vuoro_engine::config::text_in(counter_name, "en", "fi");
            let digits: String = any
                .chars()
                .rev()
                .take_while(char::is_ascii_digit)
                .collect::<Vec<_>>()
                .into_iter()
                .rev()
                .collect();
            if digits.is_empty() {
                vuoro_engine::config::text_in(counter_name, "fi", "en").to_string()
            } else {
                format!("{counter_word} {digits}")
            }
        }
    };
    let text = format!(
        "<speak>{} {}, {}</speak>",
        xml_escape(number_word),
        spoken_number(number),
        xml_escape(&counter)
    );
    Speech {
        lang: voice_for(lang),
        ssml: true,
        text,
    }
}

/// "K042" -> `<say-as interpret-as="characters">K</say-as> 42`; digits only -> the number;
/// anything else is spelled character by character.
fn spoken_number(number: &str) -> String {
    let number = number.trim();
    let letters: String = number.chars().take_while(|c| c.is_alphabetic()).collect();
    let rest = &number[letters.len()..];
    let spell = |s: &str| {
        format!(
            "<say-as interpret-as=\"characters\">{}</say-as>",
            xml_escape(s)
        )
    };
    if !rest.is_empty() && rest.bytes().all(|b| b.is_ascii_digit()) {
        let digits = rest.trim_start_matches('0');
        let digits = if digits.is_empty() { "0" } else { digits };
        if letters.is_empty() {
            digits.to_string()
        } else {
            format!("{} {digits}", spell(&letters))
        }
    } else {
        spell(number)
    }
}

fn xml_escape(s: &str) -> String {
    let mut out = String::with_capacity(s.len());
    for c in s.chars() {
        match c {
            '&' => out.push_str("&amp;"),
            '<' => out.push_str("&lt;"),
            '>' => out.push_str("&gt;"),
            '"' => out.push_str("&quot;"),
            '\'' => out.push_str("&apos;"),
            c => out.push(c),
        }
    }
    out
}

// ---- espeak-ng ------------------------------------------------------------------------------------

fn detect_espeak() -> Option<Speaker> {
    let out = Command::new("espeak-ng")
        .arg("--version")
        .stdin(Stdio::null())
        .output()
        .ok()?;
    if !out.status.success() {
        return None;
    }
    let version = String::from_utf8_lossy(&out.stdout)
        .lines()
        .next()
        .unwrap_or("")
        .trim()
        .to_string();
    let voices = Command::new("espeak-ng")
        .arg("--voices")
        .stdin(Stdio::null())
        .output()
        .ok()?;
    let langs = parse_voices(&String::from_utf8_lossy(&voices.stdout));
    if langs.is_empty() {
        tracing::warn!("espeak-ng lists no voices");
        return None;
    }
    Some(Speaker::Espeak { version, langs })
}

/// Language codes from `espeak-ng --voices`: each voice's language, the languages in its "other languages"
/// column, and the base of each (`en` of `en-gb`). MBROLA voices (`mb/...`) are skipped: they need the
/// separate mbrola program.
fn parse_voices(listing: &str) -> BTreeSet<String> {
    let mut langs = BTreeSet::new();
    for line in listing.lines().skip(1) {
        let cols: Vec<&str> = line.split_whitespace().collect();
        if cols.len() < 5 || cols[4].starts_with("mb/") {
            continue;
        }
        let mut add = |code: &str| {
            let code = code.to_ascii_lowercase();
            if let Some((base, _)) = code.split_once('-') {
                langs.insert(base.to_string());
            }
            langs.insert(code);
        };
        add(cols[1]);
        for other in cols[5..].iter().filter(|c| c.starts_with('(')) {
            add(other.trim_start_matches('('));
        }
    }
    langs
}

/// Runs `espeak-ng -v <lang> -s 150 [-m] -w <out> --stdin` with the text on standard input (so a text
/// starting with '-' is never taken for an option), killed after [`RENDER_TIMEOUT`].
fn espeak(speech: &Speech, out: &Path) -> anyhow::Result<()> {
    let mut cmd = Command::new("espeak-ng");
    cmd.arg("-v")
        .arg(&speech.lang)
        .arg("-s")
        .arg(SPEED_WPM.to_string());
    if speech.ssml {
        cmd.arg("-m");
    }
    cmd.arg("-w").arg(out).arg("--stdin");
    let mut child = cmd
        .stdin(Stdio::piped())
        .stdout(Stdio::null())
        .stderr(Stdio::piped())
        .spawn()?;
    {
        let mut stdin = child
            .stdin
            .take()
            .ok_or_else(|| anyhow::anyhow!("no stdin"))?;
        stdin.write_all(speech.text.as_bytes())?;
    }
    let started = Instant::now();
    let status = loop {
        if let Some(status) = child.try_wait()? {
            break status;
        }
        if started.elapsed() > RENDER_TIMEOUT {
            let _ = child.kill();
            let _ = child.wait();
            anyhow::bail!("espeak-ng took longer than {RENDER_TIMEOUT:?}");
        }
        std::thread::sleep(Duration::from_millis(3));
    };
    if !status.success() {
        let mut msg = String::new();
        if let Some(mut e) = child.stderr.take() {
            use std::io::Read;
            let _ = e.read_to_string(&mut msg);
        }
        anyhow::bail!("espeak-ng failed ({status}): {}", msg.trim());
    }
    Ok(())
}

#[cfg(test)]
fn fake_speech(speech: &Speech, out: &Path) -> anyhow::Result<()> {
    // 60 ms per character of text: a 27-character sentence lasts about 1.6 s, like espeak-ng's.
    let samples = speech.text.chars().count() * 60 * 22_050 / 1000;
    std::fs::write(out, wav_bytes(&vec![0i16; samples], 22_050))?;
    Ok(())
}

// ---- WAV ------------------------------------------------------------------------------------------

/// The length of a PCM WAV in milliseconds, from its `fmt ` and `data` chunks. A `data` size of 0 or
/// 0xFFFFFFFF (written by streaming encoders) or past the end means "to the end of the file".
pub fn wav_duration_ms(bytes: &[u8]) -> Option<u32> {
    if bytes.len() < 12 || &bytes[0..4] != b"RIFF" || &bytes[8..12] != b"WAVE" {
        return None;
    }
    let u32_at = |i: usize| {
        bytes
            .get(i..i + 4)
            .map(|b| u32::from_le_bytes([b[0], b[1], b[2], b[3]]))
    };
    let mut pos = 12;
    let mut byte_rate = None;
    while pos + 8 <= bytes.len() {
        let id = &bytes[pos..pos + 4];
        let size = u32_at(pos + 4)? as usize;
        let body = pos + 8;
        if id == b"fmt " {
            byte_rate = u32_at(body + 8).filter(|r| *r > 0);
        } else if id == b"data" {
            let available = bytes.len() - body;
            let len = if size == 0 || size == u32::MAX as usize || size > available {
                available
            } else {
                size
            };
            let rate = u64::from(byte_rate?);
            return u32::try_from(len as u64 * 1000 / rate).ok();
        }
        pos = body.checked_add(size)?.checked_add(size & 1)?;
    }
    None
}

/// A 16-bit mono PCM WAV file.
fn wav_bytes(samples: &[i16], rate: u32) -> Vec<u8> {
    let data_len = (samples.len() * 2) as u32;
    let mut v = Vec::with_capacity(44 + samples.len() * 2);
    v.extend_from_slice(b"RIFF");
    v.extend_from_slice(&(36 + data_len).to_le_bytes());
    v.extend_from_slice(b"WAVEfmt ");
    v.extend_from_slice(&16u32.to_le_bytes());
    v.extend_from_slice(&1u16.to_le_bytes()); // PCM
    v.extend_from_slice(&1u16.to_le_bytes()); // mono
    v.extend_from_slice(&rate.to_le_bytes());
    v.extend_from_slice(&(rate * 2).to_le_bytes());
    v.extend_from_slice(&2u16.to_le_bytes());
    v.extend_from_slice(&16u16.to_le_bytes());
    v.extend_from_slice(b"data");
    v.extend_from_slice(&data_len.to_le_bytes());
    for s in samples {
        v.extend_from_slice(&s.to_le_bytes());
    }
    v
}

/// The call chime: two soft bell-like tones, E5 then C5 (a falling major third), 1.1 s, 16-bit mono
/// 22,050 Hz, peak about a third of full scale so it does not startle.
fn chime_wav() -> Vec<u8> {
    const RATE: u32 = 22_050;
    let total = (RATE as f64 * 1.1) as usize;
    // (start s, frequency Hz, decay per s)
    let tones = [(0.0, 659.25, 4.0), (0.40, 523.25, 3.2)];
    let mut samples = Vec::with_capacity(total);
    for i in 0..total {
        let t = i as f64 / f64::from(RATE);
        let mut v = 0.0;
        for (start, f, decay) in tones {
            if t < start {
                continue;
            }
            let dt = t - start;
            let attack = (dt / 0.012).min(1.0);
            let env = attack * (-decay * dt).exp();
            let w = std::f64::consts::TAU * f * dt;
            v += env * (w.sin() + 0.18 * (2.0 * w).sin() + 0.06 * (3.0 * w).sin());
        }
        // Fade the last 80 ms to silence.
        let left = (total - i) as f64 / f64::from(RATE);
        let fade = (left / 0.08).min(1.0);
        samples.push(
            (v * fade * 0.30 * f64::from(i16::MAX))
                .round()
                .clamp(-32767.0, 32767.0) as i16,
        );
    }
    wav_bytes(&samples, RATE)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn zone(id: &str, voice: &str, cap: u32) -> Zone {
        Zone {
            id: id.into(),
            name: Text::new(),
            voice: voice.into(),
            max_backlog_seconds: cap,
            volume: vec![],
        }
    }

    fn counter(n: u32) -> Text {
        [
            ("fi".to_string(), format!("Palvelupiste {n}")),
            ("sv".to_string(), format!("Servicepunkt {n}")),
            ("en".to_string(), format!("Counter {n}")),
        ]
        .into_iter()
        .collect()
    }

    fn t0() -> DateTime<Utc> {
        "2026-11-23T10:00:00Z".parse().unwrap()
    }

    fn secs(s: f64) -> TimeDelta {
        TimeDelta::milliseconds((s * 1000.0) as i64)
    }

    fn tempdir(name: &str) -> PathBuf {
        let d = std::env::temp_dir().join(format!("vuoro-audio-{name}-{}", std::process::id()));
        let _ = std::fs::remove_dir_all(&d);
        std::fs::create_dir_all(&d).unwrap();
        d
    }

    /// An Audio with the fake speaker: speaks fi, sv, en, ru, uk, et.
    fn fake(name: &str) -> Audio {
        let langs = ["fi", "sv", "en", "ru", "uk", "et"]
            .iter()
            .map(|s| s.to_string())
            .collect();
        Audio::with_speaker(tempdir(name), Some(Speaker::Fake { langs }))
    }

    /// The real espeak-ng, or None (skip) when it is missing, unless VUORO_REQUIRE_ESPEAK=1 (then fail).
    fn espeak_audio(name: &str) -> Option<Audio> {
        match detect_espeak() {
            Some(s) => Some(Audio::with_speaker(tempdir(name), Some(s))),
            None if std::env::var("VUORO_REQUIRE_ESPEAK").as_deref() == Ok("1") => {
                panic!("VUORO_REQUIRE_ESPEAK=1 but espeak-ng was not found")
            }
            None => {
                eprintln!(
                    "espeak-ng not found: skipping (set VUORO_REQUIRE_ESPEAK=1 to make this fail)"
                );
                None
            }
        }
    }

    #[test]
    fn chime_is_a_short_soft_mono_wav() {
        let w = chime_wav();
        assert_eq!(&w[0..4], b"RIFF");
        assert_eq!(u16::from_le_bytes([w[22], w[23]]), 1, "mono");
        assert_eq!(u32::from_le_bytes([w[24], w[25], w[26], w[27]]), 22_050);
        assert_eq!(u16::from_le_bytes([w[34], w[35]]), 16);
        let ms = wav_duration_ms(&w).unwrap();
        assert!((900..=1300).contains(&ms), "chime lasts {ms} ms");
        let peak = w[44..]
            .chunks(2)
            .map(|c| i16::from_le_bytes([c[0], c[1]]).unsigned_abs())
            .max()
            .unwrap();
        assert!(
            peak > 3000 && peak < 16_000,
            "peak {peak} should be audible but soft"
        );
        let last = i16::from_le_bytes([w[w.len() - 2], w[w.len() - 1]]);
        assert!(last.unsigned_abs() < 50, "ends in silence, not a click");
    }

    #[test]
    fn wav_duration_from_header_and_streaming_header() {
        let w = wav_bytes(&vec![0; 22_050 * 2], 22_050);
        assert_eq!(wav_duration_ms(&w), Some(2000));
        let mut streamed = w.clone();
        streamed[40..44].copy_from_slice(&u32::MAX.to_le_bytes());
        assert_eq!(wav_duration_ms(&streamed), Some(2000));
        assert_eq!(wav_duration_ms(b"RIFF\0\0\0\0WAVE"), None);
        assert_eq!(wav_duration_ms(b"not a wav at all"), None);
    }

    #[test]
    fn policy_per_zone() {
        let a = fake("policy");
        let c5 = counter(5);
        let ann = |voice: &str, lang: &str| {
            a.announcement(
                &zone(&format!("z-{voice}-{lang}"), voice, 20),
                "K042",
                &c5,
                lang,
                t0(),
            )
        };
        for voice in ["fi", "sv", "en"] {
            let x = ann(voice, "ru");
            assert_eq!(x.lang.as_deref(), Some(voice));
            assert!(!x.chime_only);
            assert_eq!(x.audio.len(), 2);
            assert_eq!(x.audio[0], CHIME_URL);
            assert!(x.audio[1].starts_with(SPEECH_URL_PREFIX) && x.audio[1].ends_with(".wav"));
            assert!(x.duration_ms > a.chime_ms());
        }
        assert_eq!(ann("customer", "ru").lang.as_deref(), Some("ru"));
        assert_eq!(ann("customer", "sv").lang.as_deref(), Some("sv"));
        // Somali: no voice; Arabic: the fake speaker has none; Chinese: no sentence. All fall back to Finnish.
        for l in ["so", "ar", "zh"] {
            assert_eq!(
                ann("customer", l).lang.as_deref(),
                Some("fi"),
                "customer {l}"
            );
        }
        let chime = ann("chime", "fi");
        assert_eq!(
            chime,
            Announcement {
                lang: None,
                audio: vec![CHIME_URL.into()],
                chime_only: true,
                duration_ms: a.chime_ms()
            }
        );
    }

    #[test]
    fn fi_sv_alternates_per_call_and_zone() {
        let a = fake("alternate");
        let (main, other) = (zone("main", "fi+sv", 20), zone("other", "fi+sv", 20));
        let langs: Vec<_> = (0..5)
            .map(|i| {
                a.announcement(
                    &main,
                    &format!("K{i:03}"),
                    &counter(5),
                    "en",
                    t0() + TimeDelta::minutes(i),
                )
                .lang
                .unwrap()
            })
            .collect();
        assert_eq!(langs, ["fi", "sv", "fi", "sv", "fi"]);
        // Another zone has its own turn.
        assert_eq!(
            a.announcement(&other, "Y001", &counter(6), "en", t0())
                .lang
                .as_deref(),
            Some("fi")
        );
    }

    #[test]
    fn sentence_uses_the_counter_name_in_that_language() {
        let s = announcement_speech("sv", "K042", &counter(5));
        assert_eq!(
            s.text,
            "<speak>Nummer <say-as interpret-as=\"characters\">K</say-as> 42, Servicepunkt 5</speak>"
        );
        assert!(
            announcement_speech("fi", "A7", &counter(12)).text.contains(
                "Numero <say-as interpret-as=\"characters\">A</say-as> 7, Palvelupiste 12"
            )
        );
        assert!(
            announcement_speech("en", "H100", &counter(1))
                .text
                .contains("Number <say-as interpret-as=\"characters\">H</say-as> 100, Counter 1")
        );
        // No Russian name: "окно" plus the number the name ends with.
        assert!(
            announcement_speech("ru", "K042", &counter(5))
                .text
                .contains("42, окно 5</speak>")
        );
        let room: Text = [("fi".to_string(), "Röntgen & <kuvaus>".to_string())]
            .into_iter()
            .collect();
        assert!(
            announcement_speech("ru", "L001", &room)
                .text
                .contains("1, Röntgen &amp; &lt;kuvaus&gt;</speak>")
        );
        assert_eq!(spoken_number("000"), "0");
        assert_eq!(
            spoken_number("K-12"),
            "<say-as interpret-as=\"characters\">K-12</say-as>"
        );
    }

    #[test]
    fn airtime_cap_under_a_burst_of_twenty_calls_in_ten_seconds() {
        let a = fake("burst");
        let main = zone("main", "fi+sv", 20);
        let mut prev_end = t0();
        let mut spoken = 0;
        let mut first_chime_only = None;
        for i in 0..20 {
            let now = t0() + secs(0.5 * f64::from(i));
            let s = a.schedule(&main, &format!("K{:03}", 40 + i), &counter(5), "fi", now);
            let ann = &s.announcement;
            assert!(
                s.starts_at >= prev_end,
                "call {i} starts at {} before the previous one ends at {prev_end}",
                s.starts_at
            );
            assert!(s.starts_at >= now);
            let ends = s.starts_at + TimeDelta::milliseconds(ann.duration_ms.into());
            if ann.chime_only {
                first_chime_only.get_or_insert(i);
                assert_eq!(ann.audio, [CHIME_URL]);
            } else {
                spoken += 1;
                assert!(
                    first_chime_only.is_none(),
                    "call {i} spoken after an earlier call was capped"
                );
                assert!(
                    ends - now <= TimeDelta::seconds(20),
                    "call {i}: spoken backlog {} over the cap",
                    ends - now
                );
            }
            prev_end = ends;
        }
        assert!(spoken >= 2, "the first calls are spoken ({spoken})");
        assert!(
            first_chime_only.is_some_and(|i| i < 10),
            "later calls are chime only ({first_chime_only:?})"
        );
        // Once the backlog has played out, calls are spoken again.
        let later = a.schedule(
            &main,
            "K100",
            &counter(5),
            "fi",
            prev_end + TimeDelta::seconds(1),
        );
        assert!(!later.announcement.chime_only);
        assert_eq!(later.starts_at, prev_end + TimeDelta::seconds(1));
    }

    #[test]
    fn without_speech_everything_is_chime_only() {
        let a = Audio::with_speaker(tempdir("nospeech"), None);
        assert!(!a.has_speech());
        for voice in ["fi", "sv", "en", "fi+sv", "customer", "chime"] {
            let x = a.announcement(&zone(voice, voice, 20), "K042", &counter(5), "fi", t0());
            assert!(
                x.chime_only && x.lang.is_none() && x.audio == [CHIME_URL],
                "{voice}: {x:?}"
            );
        }
    }

    #[test]
    fn volume_follows_the_schedule_over_midnight() {
        let mut z = zone("main", "fi", 20);
        let at = |h, m| NaiveTime::from_hms_opt(h, m, 0).unwrap();
        assert_eq!(volume_now(&z, at(12, 0)), DEFAULT_VOLUME);
        z.volume = vec![
            "18:00=55".into(),
            "08:00=70".into(),
            "nonsense".into(),
            "25:00=10".into(),
        ];
        assert_eq!(volume_now(&z, at(7, 59)), 55);
        assert_eq!(volume_now(&z, at(8, 0)), 70);
        assert_eq!(volume_now(&z, at(17, 59)), 70);
        assert_eq!(volume_now(&z, at(18, 0)), 55);
        assert_eq!(volume_now(&z, at(23, 59)), 55);
        z.volume = vec!["00:00=150".into()];
        assert_eq!(volume_now(&z, at(9, 0)), 100);
    }

    #[test]
    fn voices_listing_is_parsed() {
        let listing = "Pty Language       Age/Gender VoiceName          File                 Other Languages\n \
             5  cmn             --/M      Chinese_(Mandarin) sit/cmn              (zh-cmn 5)(zh 5)\n \
             5  en-gb           --/M      English            gmw/en               (en 2)\n \
             5  fi              --/M      Finnish            urj/fi               \n \
             5  de              --/M      german-mb-de2      mb/mb-de2            \n";
        let l = parse_voices(listing);
        for code in ["cmn", "zh", "zh-cmn", "en", "en-gb", "fi"] {
            assert!(l.contains(code), "{code} in {l:?}");
        }
        assert!(!l.contains("de"), "MBROLA voices are skipped");
        assert!(
            valid_lang_code("fi")
                && valid_lang_code("en-gb")
                && !valid_lang_code("FI")
                && !valid_lang_code("-v")
                && !valid_lang_code("")
        );
    }

    #[test]
    fn espeak_renders_each_language_with_a_plausible_duration() {
        let Some(a) = espeak_audio("espeak") else {
            return;
        };
        for lang in ["fi", "sv", "en"] {
            let x = a.announcement(&zone(lang, lang, 60), "K042", &counter(5), "fi", t0());
            assert_eq!(x.lang.as_deref(), Some(lang));
            assert!(!x.chime_only, "{lang}: {x:?}");
            let hash = x.audio[1]
                .strip_prefix(SPEECH_URL_PREFIX)
                .unwrap()
                .strip_suffix(".wav")
                .unwrap();
            let bytes = std::fs::read(a.speech_path(hash))
                .unwrap_or_else(|e| panic!("{lang}: speech file missing: {e}"));
            let ms = wav_duration_ms(&bytes).unwrap();
            assert!((1000..=8000).contains(&ms), "{lang}: {ms} ms");
            assert_eq!(x.duration_ms, a.chime_ms() + ms);
            // The same call again is served from the cache: same file.
            let again = a.announcement(
                &zone(&format!("{lang}-2"), lang, 60),
                "K042",
                &counter(5),
                "fi",
                t0(),
            );
            assert_eq!(again.audio, x.audio);
        }
    }

    #[test]
    fn espeak_speaks_the_customer_languages() {
        let Some(a) = espeak_audio("espeak-customer") else {
            return;
        };
        for lang in ["ru", "uk", "et", "ar", "fa"] {
            let x = a.announcement(
                &zone(&format!("c-{lang}"), "customer", 60),
                "K042",
                &counter(5),
                lang,
                t0(),
            );
            assert_eq!(x.lang.as_deref(), Some(lang), "{lang}: {x:?}");
            assert!(
                (a.chime_ms() + 1000..=a.chime_ms() + 8000).contains(&x.duration_ms),
                "{lang}: {x:?}"
            );
        }
    }

    // ---- HTTP ----

    async fn serve(audio: Arc<Audio>) -> std::net::SocketAddr {
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
        let addr = listener.local_addr().unwrap();
        let text = {
            let audio = audio.clone();
            get(move |q| speech_text(audio.clone(), q))
        };
        let app = router(audio).route("/api/v1/audio/speech", text);
        tokio::spawn(async move { axum::serve(listener, app).await.unwrap() });
        addr
    }

    /// A bare HTTP/1.0 GET: (status, content type, body).
    async fn get_url(addr: std::net::SocketAddr, path: &str) -> (u16, String, Vec<u8>) {
        use tokio::io::{AsyncReadExt, AsyncWriteExt};
        let mut s = tokio::net::TcpStream::connect(addr).await.unwrap();
        s.write_all(format!("GET {path} HTTP/1.0\r\nHost: x\r\n\r\n").as_bytes())
            .await
            .unwrap();
        let mut buf = Vec::new();
        s.read_to_end(&mut buf).await.unwrap();
        let split = buf.windows(4).position(|w| w == b"\r\n\r\n").unwrap();
        let head = String::from_utf8_lossy(&buf[..split]).to_string();
        let status = head[9..12].parse().unwrap();
        let ctype = head
            .lines()
            .find_map(|l| {
                l.to_ascii_lowercase()
                    .strip_prefix("content-type:")
                    .map(|v| v.trim().to_string())
            })
            .unwrap_or_default();
        (status, ctype, buf[split + 4..].to_vec())
    }

    #[tokio::test]
    async fn routes_serve_chime_speech_and_errors() {
        let audio = Arc::new(fake("http"));
        let ann = audio.announcement(&zone("main", "fi", 20), "K042", &counter(5), "fi", t0());
        let addr = serve(audio.clone()).await;

        let (st, ct, body) = get_url(addr, CHIME_URL).await;
        assert_eq!((st, ct.as_str()), (200, "audio/wav"));
        assert_eq!(wav_duration_ms(&body), Some(audio.chime_ms()));

        let (st, _, body) = get_url(addr, &ann.audio[1]).await;
        assert_eq!(st, 200);
        assert_eq!(
            audio.chime_ms() + wav_duration_ms(&body).unwrap(),
            ann.duration_ms
        );

        let (st, _, body) =
            get_url(addr, &format!("{SPEECH_URL_PREFIX}{}.wav", "0".repeat(64))).await;
        assert_eq!(st, 404);
        assert!(String::from_utf8_lossy(&body).contains("\"not_found\""));
        assert_eq!(
            get_url(addr, &format!("{SPEECH_URL_PREFIX}..%2F..%2Fetc%2Fpasswd"))
                .await
                .0,
            404
        );

        let (st, ct, body) = get_url(
            addr,
            "/api/v1/audio/speech?lang=fi&text=Tervetuloa%20palvelutorille",
        )
        .await;
        assert_eq!((st, ct.as_str()), (200, "audio/wav"));
        assert!(wav_duration_ms(&body).unwrap() > 1000);

        for bad in [
            "lang=so&text=hello",
            "lang=-v&text=hello",
            "text=hello",
            "lang=fi&text=",
            "lang=fi&text=%20%20",
        ] {
            let (st, _, body) = get_url(addr, &format!("/api/v1/audio/speech?{bad}")).await;
            assert_eq!(st, 422, "{bad}");
            assert!(
                String::from_utf8_lossy(&body).contains("\"invalid\""),
                "{bad}"
            );
        }
        let long = "a".repeat(MAX_SPEECH_CHARS + 1);
        assert_eq!(
            get_url(addr, &format!("/api/v1/audio/speech?lang=fi&text={long}"))
                .await
                .0,
            422
        );
        let just = "%C3%A4".repeat(MAX_SPEECH_CHARS);
        assert_eq!(
            get_url(addr, &format!("/api/v1/audio/speech?lang=fi&text={just}"))
                .await
                .0,
            200,
            "300 characters (not bytes) are fine"
        );
    }

    #[tokio::test]
    async fn speech_endpoint_without_espeak_is_503() {
        let addr = serve(Arc::new(Audio::with_speaker(tempdir("http-none"), None))).await;
        let (st, _, body) = get_url(addr, "/api/v1/audio/speech?lang=fi&text=hei").await;
        assert_eq!(st, 503);
        assert!(String::from_utf8_lossy(&body).contains("\"no_speech\""));
        assert_eq!(get_url(addr, CHIME_URL).await.0, 200);
    }

    #[test]
    fn a_pruned_file_is_rendered_again_on_request() {
        let a = fake("rerender");
        let x = a.announcement(&zone("main", "fi", 20), "K042", &counter(5), "fi", t0());
        let hash = x.audio[1]
            .strip_prefix(SPEECH_URL_PREFIX)
            .unwrap()
            .strip_suffix(".wav")
            .unwrap()
            .to_string();
        std::fs::remove_file(a.speech_path(&hash)).unwrap();
        let again = a.speech_file(&hash).expect("rendered again");
        assert_eq!(
            a.chime_ms() + wav_duration_ms(&again).unwrap(),
            x.duration_ms
        );
    }

    #[test]
    fn the_daemon_path_never_waits_for_speech_and_renders_in_the_background() {
        if detect_espeak().is_none() {
            assert_ne!(
                std::env::var("VUORO_REQUIRE_ESPEAK").as_deref(),
                Ok("1"),
                "VUORO_REQUIRE_ESPEAK=1 but espeak-ng was not found"
            );
            return;
        }
        let a = Audio::new(tempdir("background"));
        let x = a.announcement(&zone("bg", "fi", 60), "K042", &counter(5), "fi", t0());
        assert!(!x.chime_only);
        let hash = x.audio[1]
            .strip_prefix(SPEECH_URL_PREFIX)
            .unwrap()
            .strip_suffix(".wav")
            .unwrap()
            .to_string();
        // The answer came with an estimate; the file follows from the render thread.
        let path = a.speech_path(&hash);
        let mut waited = 0;
        while !path.exists() && waited < 100 {
            std::thread::sleep(std::time::Duration::from_millis(50));
            waited += 1;
        }
        let bytes = std::fs::read(&path).expect("rendered in the background");
        let real = wav_duration_ms(&bytes).unwrap();
        while a.index.lock().unwrap().get(&hash).unwrap().duration_ms != real && waited < 200 {
            std::thread::sleep(std::time::Duration::from_millis(20));
            waited += 1;
        }
        let estimated = x.duration_ms - a.chime_ms();
        assert!(
            estimated >= real && estimated <= real * 3 / 2,
            "estimate {estimated} ms for {real} ms"
        );
        // Later calls of the same sentence use the measured length.
        let again = a.announcement(&zone("bg2", "fi", 60), "K042", &counter(5), "fi", t0());
        assert_eq!(again.duration_ms, a.chime_ms() + real);
    }
}
