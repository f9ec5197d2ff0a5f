//! Who is calling: staff users (argon2 passwords or single sign-on through `crate::oidc`, server-side
//! sessions), devices (hashed bearer tokens), or the anonymous public. Secrets travel only in headers and cookies, never in URLs, and are never logged.

use std::collections::{HashMap, HashSet, VecDeque};
use std::net::IpAddr;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use crate::deployment::{Deployment, Device, Role, User};
use argon2::{Argon2, PasswordHash, PasswordVerifier};
use axum::extract::FromRequestParts;
use axum::http::HeaderMap;
use axum::http::request::Parts;
use chrono::Utc;
use sha2::{Digest, Sha256};
use vuoro_engine::Actor;
use vuoro_store::{Database, DeviceSeen, DeviceToken, DeviceTokenSource, Session};

use crate::App;
use crate::error::ApiError;

pub const SESSION_COOKIE: &str = "vuoro_session";
/// Wrong passwords in a row an account may have before each further attempt waits.
const ACCOUNT_FREE_TRIES: u32 = 5;
/// The longest an account's next attempt waits.
const ACCOUNT_MAX_WAIT: Duration = Duration::from_secs(60);

#[derive(Debug, Clone)]
pub struct UserCtx {
    pub username: String,
    pub display_name: Option<String>,
    pub roles: Vec<Role>,
    /// None: every unit (an admin without a unit list).
    pub units: Option<HashSet<String>>,
}

impl UserCtx {
    fn of(u: &User) -> UserCtx {
        let all = u.units.is_empty() && u.roles.contains(&Role::Admin);
        UserCtx {
            username: u.username.clone(),
            display_name: u.display_name.clone(),
            roles: u.roles.clone(),
            units: (!all).then(|| u.units.iter().map(|x| x.to_string()).collect()),
        }
    }
    /// The rights of a user signed in through an issuer: what its claims mapped to.
    fn of_sso(r: &SsoRights) -> UserCtx {
        UserCtx {
            username: r.username.clone(),
            display_name: r.display_name.clone(),
            roles: r.roles.clone(),
            units: r.units.as_ref().map(|u| u.iter().cloned().collect()),
        }
    }
    pub fn may_unit(&self, unit: &str) -> bool {
        self.units.as_ref().is_none_or(|u| u.contains(unit))
    }
    pub fn has(&self, role: Role) -> bool {
        self.roles.contains(&role) || self.roles.contains(&Role::Admin)
    }
    pub fn is_supervisor(&self) -> bool {
        self.has(Role::Supervisor)
    }
    pub fn json(&self) -> serde_json::Value {
        let mut units: Vec<&String> = self.units.iter().flatten().collect();
        units.sort();
        serde_json::json!({
            "username": self.username,
            "display_name": self.display_name,
            "roles": self.roles,
            "units": units,
        })
    }
}

/// The rights an issuer's claims gave a user signed in by single sign-on, kept with the session (the
/// store's `sessions.rights`, as JSON) so that they survive a restart.
#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
pub struct SsoRights {
    /// The `[[oidc]]` issuer's id.
    pub issuer: String,
    /// `{issuer id}:{preferred_username, else email, else subject}`.
    pub username: String,
    pub display_name: Option<String>,
    pub roles: Vec<Role>,
    /// None: every unit (an admin without a unit in the claims).
    pub units: Option<Vec<String>>,
}

/// What a sign-out of a single sign-on session needs to end the issuer's session too.
#[derive(Debug, Clone)]
pub struct SsoEnded {
    pub issuer: String,
    /// The raw ID token, for `id_token_hint` (kept in memory only: unknown after a restart).
    pub id_token: Option<String>,
}

/// A live session's user: one of the config file, or one an issuer vouched for.
#[derive(Debug, Clone)]
enum SessionUser {
    Config(String),
    Sso {
        ctx: Arc<UserCtx>,
        issuer: String,
        id_token: Option<String>,
    },
}

impl SessionUser {
    fn username(&self) -> &str {
        match self {
            SessionUser::Config(name) => name,
            SessionUser::Sso { ctx, .. } => &ctx.username,
        }
    }
}

#[derive(Debug)]
struct LiveSession {
    user: SessionUser,
    /// The absolute end: `server.session_hours` after sign-in.
    expires: chrono::DateTime<Utc>,
    /// When a request last used it (Unix seconds): past `server.session_idle_minutes`, it has ended.
    last_used: std::sync::atomic::AtomicI64,
    /// `last_used` as last stored (restarts keep the idle clock).
    stored_used: std::sync::atomic::AtomicI64,
}

impl LiveSession {
    /// Unused for longer than `idle_secs` at `now` (Unix seconds).
    fn idle(&self, now: i64, idle_secs: i64) -> bool {
        now - self.last_used.load(std::sync::atomic::Ordering::Relaxed) > idle_secs
    }

    /// A stored session as it lives in memory; None when its rights cannot be read or name an issuer
    /// that is no longer configured.
    fn restore(s: Session, issuers: &HashSet<&str>) -> Option<(String, LiveSession)> {
        let user = match s.rights.as_deref() {
            None => SessionUser::Config(s.username),
            Some(json) => {
                let r: SsoRights = serde_json::from_str(json).ok()?;
                if !issuers.contains(r.issuer.as_str()) {
                    return None;
                }
                SessionUser::Sso {
                    ctx: Arc::new(UserCtx::of_sso(&r)),
                    issuer: r.issuer,
                    id_token: None,
                }
            }
        };
        let used = s.last_used_at.unwrap_or(s.created_at).timestamp();
        Some((
            s.token_sha256,
            LiveSession {
                user,
                expires: s.expires_at,
                last_used: std::sync::atomic::AtomicI64::new(used),
                stored_used: std::sync::atomic::AtomicI64::new(used),
            },
        ))
    }
}

#[derive(Debug, Clone)]
pub enum Principal {
    Anonymous,
    /// Shared: built once per user when the daemon starts, not per request.
    User(Arc<UserCtx>),
    Device(Arc<Device>),
}

impl Principal {
    pub fn actor(&self) -> Actor {
        match self {
            Principal::Anonymous => Actor::public(),
            Principal::User(u) => Actor::user(&u.username),
            Principal::Device(d) => Actor::device(&d.id),
        }
    }
    pub fn user(&self) -> Result<&UserCtx, ApiError> {
        match self {
            Principal::User(u) => Ok(u.as_ref()),
            Principal::Anonymous => Err(ApiError::unauthenticated()),
            Principal::Device(_) => Err(ApiError::forbidden("Devices may not do this.")),
        }
    }
    pub fn supervisor(&self) -> Result<&UserCtx, ApiError> {
        let u = self.user()?;
        if u.is_supervisor() {
            Ok(u)
        } else {
            Err(ApiError::forbidden("Only a supervisor may do this."))
        }
    }
}

pub struct Auth {
    /// The config's users, and each one's rights built once per config. Replaced by `reload`.
    people: std::sync::RwLock<People>,
    /// The config's devices by id. Replaced by `reload`.
    device_ids: std::sync::RwLock<HashMap<String, Arc<Device>>>,
    /// Device tokens that are let in, by SHA-256: the config file's and the enrolled ones, less those
    /// revoked. A std RwLock, held for a lookup or an update only.
    devices: std::sync::RwLock<HashMap<String, Arc<Device>>>,
    /// When and from where device tokens were used, not yet stored (`store_devices_seen`).
    seen: Mutex<HashMap<String, DeviceSeen>>,
    /// The stored sessions (kept for restarts), written through.
    sessions: Arc<dyn Database>,
    /// Live sessions by token hash. Every staff request reads this, never SQLite.
    /// A std RwLock: held for a map lookup or update only, never across an await.
    live: std::sync::RwLock<HashMap<String, LiveSession>>,
    failures: Mutex<HashMap<IpAddr, VecDeque<Instant>>>,
    /// Wrong passwords per username: (how many in a row, when the last was). Past `ACCOUNT_FREE_TRIES`,
    /// each attempt waits a little longer, never more than `ACCOUNT_MAX_WAIT`.
    account_failures: Mutex<HashMap<String, (u32, Instant)>>,
    /// `server.session_hours` and `server.session_idle_minutes`, as read at start.
    session_hours: i64,
    idle_secs: i64,
    /// Bumped whenever sessions end (sign-out, expiry): open WebSockets of staff check their rights again.
    sessions_ended: tokio::sync::watch::Sender<u64>,
}

/// The device tokens written in the shipped demo and benchmark configs, hashed: anyone can read them.
/// Read from their `demo_token = "..."` lines (the benchmark hall is large: parsing it whole would cost
/// megabytes at every start).
pub fn published_token_hashes() -> HashSet<String> {
    [
        include_str!("../../../config/demo.toml"),
        include_str!("../../vuoro-bench/bench.toml"),
    ]
    .iter()
    .flat_map(|src| src.lines())
    .filter_map(|line| {
        let value = line.trim().strip_prefix("demo_token")?.trim_start();
        let value = value.strip_prefix('=')?.trim();
        Some(sha256_hex(value.strip_prefix('"')?.strip_suffix('"')?))
    })
    .collect()
}

/// Mistakes for `vuoro check-config`: devices of a real (not demo) config whose token is published.
pub fn check(cfg: &Deployment) -> Vec<String> {
    if cfg.server.demo {
        return Vec::new();
    }
    let published = published_token_hashes();
    cfg.devices
        .iter()
        .filter(|d| {
            d.token_sha256
                .as_ref()
                .is_some_and(|h| published.contains(&h.to_ascii_lowercase()))
        })
        .map(|d| {
            format!(
                "device '{}' uses a token published in the demo config: give it a new token (its hash in token_sha256)",
                d.id
            )
        })
        .collect()
}

/// Lowercase hex of `bytes` (tokens, hashes).
pub fn hex(bytes: &[u8]) -> String {
    const DIGITS: &[u8; 16] = b"0123456789abcdef";
    let mut s = String::with_capacity(bytes.len() * 2);
    for b in bytes {
        s.push(DIGITS[usize::from(b >> 4)] as char);
        s.push(DIGITS[usize::from(b & 15)] as char);
    }
    s
}

pub fn sha256_hex(s: &str) -> String {
    hex(&Sha256::digest(s.as_bytes()))
}

/// A fresh random token of 128 bits or more, as hex.
pub fn random_token(bytes: usize) -> String {
    let mut buf = vec![0u8; bytes];
    random_bytes(&mut buf);
    hex(&buf)
}

/// Bytes from the OS random source, fetched 4 KiB at a time per thread: one system call per 256 ticket
/// tokens instead of one per token (each byte is still the kernel's CSPRNG output, used once).
fn random_bytes(out: &mut [u8]) {
    use std::cell::RefCell;
    const POOL: usize = 4096;
    thread_local! {
        static POOL_BYTES: RefCell<(Vec<u8>, usize)> = const { RefCell::new((Vec::new(), 0)) };
    }
    if out.len() > POOL {
        getrandom::fill(out).expect("the OS random source works");
        return;
    }
    POOL_BYTES.with_borrow_mut(|(pool, used)| {
        if pool.len() - *used < out.len() {
            pool.resize(POOL, 0);
            getrandom::fill(pool).expect("the OS random source works");
            *used = 0;
        }
        let taken = &mut pool[*used..*used + out.len()];
        out.copy_from_slice(taken);
        // Nothing handed out stays behind to be handed out again or read later.
        taken.fill(0);
        *used += out.len();
    });
}

/// How long an enrolment code works.
pub const ENROL_CODE_MINUTES: i64 = 10;
/// The letters of enrolment codes: no 0/O, 1/I/L, 2/Z, 5/S, 8/B, U/V that are confused when read aloud
/// or typed from a screen.
const CODE_ALPHABET: &[u8] = b"34679ACDEFGHJKMNPQRTWXY";

/// An enrolment code as typed: upper case, without spaces or dashes; None when it cannot be one.
pub fn normalise_code(typed: &str) -> Option<String> {
    let code: String = typed
        .chars()
        .filter(|c| !c.is_whitespace() && *c != '-')
        .map(|c| c.to_ascii_uppercase())
        .collect();
    (code.len() == 8 && code.bytes().all(|b| CODE_ALPHABET.contains(&b))).then_some(code)
}

/// A fresh enrolment code: 8 letters of `CODE_ALPHABET` (about 36 bits), shown as `XXXX-XXXX`.
fn new_code() -> String {
    let mut bytes = [0u8; 8];
    getrandom::fill(&mut bytes).expect("the OS random source works");
    let code: String = bytes
        .iter()
        .map(|b| {
            // 256 is not a multiple of the alphabet's 23 letters: a byte past the last whole round is
            // drawn again, so every letter is equally likely.
            let mut b = *b;
            while usize::from(b) >= 256 / CODE_ALPHABET.len() * CODE_ALPHABET.len() {
                let mut one = [0u8; 1];
                getrandom::fill(&mut one).expect("the OS random source works");
                b = one[0];
            }
            CODE_ALPHABET[usize::from(b) % CODE_ALPHABET.len()] as char
        })
        .collect();
    format!("{}-{}", &code[..4], &code[4..])
}

#[derive(Default)]
struct People {
    users: HashMap<String, User>,
    contexts: HashMap<String, Arc<UserCtx>>,
}

impl People {
    fn of(cfg: &Deployment) -> People {
        People {
            users: cfg
                .users
                .iter()
                .map(|u| (u.username.clone(), u.clone()))
                .collect(),
            contexts: cfg
                .users
                .iter()
                .map(|u| (u.username.clone(), Arc::new(UserCtx::of(u))))
                .collect(),
        }
    }
}

type DeviceMaps = (HashMap<String, Arc<Device>>, HashMap<String, Arc<Device>>);

/// The config's devices by id, and the tokens let in: the config's and the enrolled ones, less those
/// revoked.
fn device_maps(cfg: &Deployment, store: &dyn Database) -> anyhow::Result<DeviceMaps> {
    let device_ids: HashMap<String, Arc<Device>> = cfg
        .devices
        .iter()
        .map(|d| (d.id.to_string(), Arc::new(d.clone())))
        .collect();
    let kept = store.device_tokens()?;
    let revoked: HashSet<&str> = kept
        .iter()
        .filter(|t| t.revoked_at.is_some())
        .map(|t| t.token_sha256.as_str())
        .collect();
    let mut devices: HashMap<String, Arc<Device>> = HashMap::new();
    for d in device_ids.values() {
        if let Some(h) = &d.token_sha256 {
            let h = h.to_ascii_lowercase();
            if !revoked.contains(h.as_str()) {
                devices.insert(h, d.clone());
            }
        }
    }
    for t in &kept {
        // An enrolled device no longer in the config is let in no more.
        if t.source == DeviceTokenSource::Enrolled
            && t.revoked_at.is_none()
            && let Some(d) = device_ids.get(&t.device)
        {
            devices.insert(t.token_sha256.clone(), d.clone());
        }
    }
    Ok((device_ids, devices))
}

impl Auth {
    pub fn new(cfg: &Deployment, sessions: Arc<dyn Database>) -> anyhow::Result<Auth> {
        let (device_ids, devices) = device_maps(cfg, &*sessions)?;
        Ok(Auth {
            people: std::sync::RwLock::new(People::of(cfg)),
            device_ids: std::sync::RwLock::new(device_ids),
            devices: std::sync::RwLock::new(devices),
            seen: Mutex::new(HashMap::new()),
            live: {
                let issuers: HashSet<&str> = cfg.oidc.iter().map(|o| o.id.as_str()).collect();
                std::sync::RwLock::new(
                    sessions
                        .live_sessions(Utc::now())
                        .unwrap_or_default()
                        .into_iter()
                        .filter_map(|s| LiveSession::restore(s, &issuers))
                        .collect(),
                )
            },
            sessions,
            failures: Mutex::new(HashMap::new()),
            account_failures: Mutex::new(HashMap::new()),
            session_hours: i64::from(cfg.server.session_hours),
            idle_secs: i64::from(cfg.server.session_idle_minutes) * 60,
            sessions_ended: tokio::sync::watch::Sender::new(0),
        })
    }

    /// Before a password is checked for `username`: how long it must wait still (None: it may be checked
    /// now). After `ACCOUNT_FREE_TRIES` wrong passwords in a row, the wait doubles with each, up to
    /// `ACCOUNT_MAX_WAIT`: guessing one account's password gets slow, yet nobody can lock its owner out for
    /// longer than that. Unknown usernames count the same, so the answer tells no usernames apart.
    pub fn account_wait(&self, username: &str) -> Option<Duration> {
        let f = self.account_failures.lock().expect("lock");
        let (n, last) = f.get(username)?;
        if *n < ACCOUNT_FREE_TRIES {
            return None;
        }
        let wait =
            Duration::from_secs(1u64 << (n - ACCOUNT_FREE_TRIES).min(6)).min(ACCOUNT_MAX_WAIT);
        let passed = last.elapsed();
        (passed < wait).then(|| wait - passed)
    }

    fn account_failed(&self, username: &str) {
        let mut f = self.account_failures.lock().expect("lock");
        // Forget accounts quiet for an hour, so the map stays small.
        f.retain(|_, (_, last)| last.elapsed() < Duration::from_secs(3600));
        let e = f.entry(username.to_string()).or_insert((0, Instant::now()));
        e.0 = e.0.saturating_add(1);
        e.1 = Instant::now();
    }

    /// Ends every session of `username` (signing out everywhere); how many there were.
    pub fn logout_everywhere(&self, username: &str) -> usize {
        let ended = {
            let mut live = self.live.write().expect("lock");
            let before = live.len();
            live.retain(|_, s| s.user.username() != username);
            before - live.len()
        };
        let _ = self.sessions.delete_user_sessions(username);
        self.sessions_ended.send_modify(|n| *n += 1);
        ended
    }

    fn user_ctx(&self, username: &str) -> Option<Arc<UserCtx>> {
        self.people
            .read()
            .expect("lock")
            .contexts
            .get(username)
            .cloned()
    }

    /// The store sessions, devices and the config's versions are kept in.
    pub fn store(&self) -> Arc<dyn Database> {
        self.sessions.clone()
    }

    /// Takes the users and devices of a changed config: a removed user's sessions and a removed device's
    /// tokens are refused from now on, changed rights apply to the next request, and open connections
    /// check their rights again.
    pub fn reload(&self, cfg: &Deployment) -> anyhow::Result<()> {
        let (device_ids, devices) = device_maps(cfg, &*self.sessions)?;
        *self.people.write().expect("lock") = People::of(cfg);
        *self.device_ids.write().expect("lock") = device_ids;
        *self.devices.write().expect("lock") = devices;
        self.sessions_ended.send_modify(|n| *n += 1);
        Ok(())
    }

    /// Counts a login attempt from `ip` before its password is checked: false when the address has had
    /// 10 attempts that were not successful in 5 minutes (attempts under way included, so parallel
    /// attempts cannot slip past the count). A successful login takes its attempt back.
    pub fn login_attempt(&self, ip: IpAddr) -> bool {
        let mut f = self.failures.lock().expect("lock");
        let q = f.entry(ip).or_default();
        while q
            .front()
            .is_some_and(|t| t.elapsed() > Duration::from_secs(300))
        {
            q.pop_front();
        }
        if q.len() >= 10 {
            return false;
        }
        q.push_back(Instant::now());
        true
    }

    fn login_succeeded(&self, ip: IpAddr) {
        if let Some(q) = self.failures.lock().expect("lock").get_mut(&ip) {
            q.pop_back();
        }
    }

    /// Checks a password (slow by design: run it off the async threads) and opens a session.
    pub fn login(
        &self,
        ip: IpAddr,
        username: &str,
        password: &str,
    ) -> Result<(String, Arc<UserCtx>), ApiError> {
        // An unknown user costs the same time as a known one: nobody can tell usernames apart by timing.
        let hash = self
            .people
            .read()
            .expect("lock")
            .users
            .get(username)
            .map(|u| u.password_hash.clone());
        let ok = match hash {
            Some(h) => verify_password(&h, password),
            None => {
                verify_password(&DUMMY_HASH, password);
                false
            }
        };
        if !ok {
            self.account_failed(username);
            return Err(ApiError::new(
                crate::error::ErrorCode::Unauthenticated,
                "Wrong username or password.",
            ));
        }
        self.account_failures.lock().expect("lock").remove(username);
        self.login_succeeded(ip);
        let token = self.open_session(username, None, SessionUser::Config(username.to_string()))?;
        Ok((token, self.user_ctx(username).expect("user exists")))
    }

    /// Opens a session for a user an issuer vouched for (`crate::oidc`), with the rights its claims gave.
    pub fn login_sso(
        &self,
        rights: &SsoRights,
        id_token: Option<String>,
    ) -> Result<(String, Arc<UserCtx>), ApiError> {
        let ctx = Arc::new(UserCtx::of_sso(rights));
        let json = serde_json::to_string(rights).expect("rights serialize");
        let user = SessionUser::Sso {
            ctx: ctx.clone(),
            issuer: rights.issuer.clone(),
            id_token,
        };
        let token = self.open_session(&rights.username, Some(json), user)?;
        Ok((token, ctx))
    }

    /// A new random session id, stored (for restarts) and live.
    fn open_session(
        &self,
        username: &str,
        rights: Option<String>,
        user: SessionUser,
    ) -> Result<String, ApiError> {
        let token = random_token(32);
        let now = Utc::now();
        let hash = sha256_hex(&token);
        let expires = now + chrono::Duration::hours(self.session_hours);
        self.sessions
            .create_session(&Session {
                token_sha256: hash.clone(),
                username: username.to_string(),
                created_at: now,
                expires_at: expires,
                rights,
                last_used_at: Some(now),
            })
            .map_err(|e| ApiError::unavailable(format!("cannot store the session: {e}")))?;
        self.live.write().expect("lock").insert(
            hash,
            LiveSession {
                user,
                expires,
                last_used: std::sync::atomic::AtomicI64::new(now.timestamp()),
                stored_used: std::sync::atomic::AtomicI64::new(now.timestamp()),
            },
        );
        Ok(token)
    }

    /// Ends the session of `token`; for a single sign-on session, what ending the issuer's needs.
    pub fn logout(&self, token: &str) -> Option<SsoEnded> {
        let hash = sha256_hex(token);
        let ended = self.live.write().expect("lock").remove(&hash);
        let _ = self.sessions.delete_session(&hash);
        self.sessions_ended.send_modify(|n| *n += 1);
        match ended?.user {
            SessionUser::Sso {
                issuer, id_token, ..
            } => Some(SsoEnded { issuer, id_token }),
            SessionUser::Config(_) => None,
        }
    }

    /// Tells when sessions have ended (a receiver for a staff connection's life).
    pub fn sessions_ended(&self) -> tokio::sync::watch::Receiver<u64> {
        self.sessions_ended.subscribe()
    }

    /// Resolves a bearer or session token: a device first, then a staff session.
    pub fn resolve(&self, token: &str) -> Option<Principal> {
        self.resolve_hash(&sha256_hex(token))
    }

    /// Like `resolve`, and notes a device's use from `ip` (the admin console lists it).
    pub fn resolve_from(&self, token: &str, ip: IpAddr) -> Option<Principal> {
        let h = sha256_hex(token);
        let p = self.resolve_hash(&h)?;
        if let Principal::Device(d) = &p {
            // Noted at most once a minute per token: the kiosk's ticket path stays free of allocations here.
            let now = Utc::now();
            let mut seen = self.seen.lock().expect("lock");
            let fresh = seen
                .get(&h)
                .is_some_and(|s| now - s.at < chrono::Duration::seconds(60));
            if !fresh {
                seen.insert(
                    h.clone(),
                    DeviceSeen {
                        token_sha256: h,
                        device: d.id.to_string(),
                        at: now,
                        from: ip.to_string(),
                    },
                );
            }
        }
        Some(p)
    }

    fn resolve_hash(&self, h: &str) -> Option<Principal> {
        if let Some(d) = self.devices.read().expect("lock").get(h) {
            return Some(Principal::Device(d.clone()));
        }
        let user = {
            let live = self.live.read().expect("lock");
            let s = live.get(h)?;
            let now = Utc::now();
            if s.expires <= now || s.idle(now.timestamp(), self.idle_secs) {
                return None;
            }
            s.last_used
                .store(now.timestamp(), std::sync::atomic::Ordering::Relaxed);
            match &s.user {
                SessionUser::Config(name) => name.clone(),
                SessionUser::Sso { ctx, .. } => return Some(Principal::User(ctx.clone())),
            }
        };
        self.user_ctx(&user).map(Principal::User)
    }

    pub fn device(&self, id: &str) -> Option<Arc<Device>> {
        self.device_ids.read().expect("lock").get(id).cloned()
    }

    /// A one-time enrolment code for device `id`, valid for `ENROL_CODE_MINUTES`; the device's earlier
    /// code stops working.
    pub fn enrolment_code(
        &self,
        id: &str,
        by: &str,
    ) -> Result<(String, chrono::DateTime<Utc>), ApiError> {
        if self.device(id).is_none() {
            return Err(ApiError::not_found(format!("No device '{id}'.")));
        }
        let code = new_code();
        let now = Utc::now();
        let expires = now + chrono::Duration::minutes(ENROL_CODE_MINUTES);
        let plain = normalise_code(&code).expect("a fresh code reads back");
        self.sessions
            .create_enrol_code(&sha256_hex(&plain), id, by, now, expires)
            .map_err(|e| ApiError::unavailable(format!("cannot store the code: {e}")))?;
        Ok((code, expires))
    }

    /// Takes a one-time code and gives its device a new token (its only copy is the answer).
    /// With `device`, a code for another device is refused (and stays valid for its own).
    pub fn enrol_checked(
        &self,
        typed: &str,
        device: Option<&str>,
    ) -> Result<(String, Arc<Device>), ApiError> {
        let refused = || {
            ApiError::new(
                crate::error::ErrorCode::Invalid,
                "This code is not valid: it is wrong, used already or expired. Ask for a new one.",
            )
        };
        let code = normalise_code(typed).ok_or_else(refused)?;
        let token = random_token(32);
        let hash = sha256_hex(&token);
        let stored = DeviceToken {
            token_sha256: hash.clone(),
            device: String::new(),
            source: DeviceTokenSource::Enrolled,
            created_at: Utc::now(),
            created_by: "enrolment code".into(),
            revoked_at: None,
            revoked_by: None,
            last_seen_at: None,
            last_seen_from: None,
        };
        let device = self
            .sessions
            .enrol(&sha256_hex(&code), device, &stored)
            .map_err(|e| ApiError::unavailable(format!("cannot store the token: {e}")))?
            .ok_or_else(refused)?;
        // A code outlives no device: one removed from the config since is refused.
        let d = self.device(&device).ok_or_else(refused)?;
        self.devices.write().expect("lock").insert(hash, d.clone());
        Ok((token, d))
    }

    /// Refuses every token of device `id` from now on (enrolled ones and the config file's) and tells the
    /// open connections, which close. How many tokens were let in before.
    pub fn revoke(&self, id: &str, by: &str) -> Result<usize, ApiError> {
        let d = self
            .device(id)
            .ok_or_else(|| ApiError::not_found(format!("No device '{id}'.")))?;
        let config = d.token_sha256.as_ref().map(|h| h.to_ascii_lowercase());
        self.sessions
            .revoke_device(id, config.as_deref(), by, Utc::now())
            .map_err(|e| ApiError::unavailable(format!("cannot revoke: {e}")))?;
        let n = {
            let mut live = self.devices.write().expect("lock");
            let before = live.len();
            live.retain(|_, dev| dev.id != d.id);
            before - live.len()
        };
        self.seen
            .lock()
            .expect("lock")
            .retain(|_, s| s.device != id);
        self.sessions_ended.send_modify(|n| *n += 1);
        Ok(n)
    }

    /// Every device of the config with its tokens: where each came from, when and where it was last
    /// used, whether it is revoked (for the admin console).
    pub fn device_list(&self) -> Result<serde_json::Value, ApiError> {
        self.store_devices_seen();
        let kept = self
            .sessions
            .device_tokens()
            .map_err(|e| ApiError::unavailable(format!("cannot read devices: {e}")))?;
        let ids = self.device_ids.read().expect("lock").clone();
        let mut ids: Vec<&Arc<Device>> = ids.values().collect();
        ids.sort_by(|a, b| a.id.as_str().cmp(b.id.as_str()));
        let devices: Vec<serde_json::Value> = ids
            .into_iter()
            .map(|d| {
                let config = d.token_sha256.as_ref().map(|h| h.to_ascii_lowercase());
                let mut tokens: Vec<serde_json::Value> = kept
                    .iter()
                    .filter(|t| t.device == d.id.as_str())
                    .map(|t| {
                        serde_json::json!({
                            "source": t.source.as_str(),
                            "created_at": t.created_at,
                            "revoked_at": t.revoked_at,
                            "last_seen_at": t.last_seen_at,
                            "last_seen_from": t.last_seen_from,
                        })
                    })
                    .collect();
                // The config file's token before its first use.
                if let Some(h) = &config
                    && !kept.iter().any(|t| &t.token_sha256 == h)
                {
                    tokens.insert(
                        0,
                        serde_json::json!({"source": "config", "created_at": null, "revoked_at": null,
                            "last_seen_at": null, "last_seen_from": null}),
                    );
                }
                let active = tokens.iter().any(|t| t["revoked_at"].is_null());
                serde_json::json!({
                    "id": d.id,
                    "kind": d.kind,
                    "site": d.site,
                    "location": d.location,
                    "active": active,
                    "tokens": tokens,
                })
            })
            .collect();
        Ok(serde_json::json!({ "devices": devices }))
    }

    /// Stores when and from where device tokens were last used (called now and then, and before the
    /// console lists them).
    pub fn store_devices_seen(&self) {
        let seen: Vec<DeviceSeen> = self
            .seen
            .lock()
            .expect("lock")
            .drain()
            .map(|(_, s)| s)
            .collect();
        if !seen.is_empty()
            && let Err(e) = self.sessions.devices_seen(&seen)
        {
            tracing::warn!(error = %e, "devices' last use could not be stored");
        }
    }

    /// Forgets sessions past their end or idle too long, and stores when the others were last used.
    pub fn purge_sessions(&self) {
        let now = Utc::now();
        let (purged, idle, used) = {
            let mut live = self.live.write().expect("lock");
            let before = live.len();
            let mut idle = Vec::new();
            live.retain(|h, s| {
                let keep = s.expires > now && !s.idle(now.timestamp(), self.idle_secs);
                if !keep {
                    idle.push(h.clone());
                }
                keep
            });
            let used: Vec<(String, chrono::DateTime<Utc>)> = live
                .iter()
                .filter_map(|(h, s)| {
                    let at = s.last_used.load(std::sync::atomic::Ordering::Relaxed);
                    (s.stored_used.swap(at, std::sync::atomic::Ordering::Relaxed) != at).then(
                        || {
                            (
                                h.clone(),
                                chrono::DateTime::from_timestamp(at, 0).unwrap_or(now),
                            )
                        },
                    )
                })
                .collect();
            (before - live.len(), idle, used)
        };
        for h in idle {
            let _ = self.sessions.delete_session(&h);
        }
        if !used.is_empty() {
            let _ = self.sessions.sessions_used(&used);
        }
        let _ = self.sessions.purge_sessions(now);
        if purged > 0 {
            self.sessions_ended.send_modify(|n| *n += 1);
        }
    }
}

/// A hash of a random password with the default parameters, checked for unknown usernames.
static DUMMY_HASH: std::sync::LazyLock<String> =
    std::sync::LazyLock::new(|| hash_password(&random_token(16)));

pub fn verify_password(hash: &str, password: &str) -> bool {
    PasswordHash::new(hash).is_ok_and(|h| {
        Argon2::default()
            .verify_password(password.as_bytes(), &h)
            .is_ok()
    })
}

/// Makes an argon2id hash for the config file.
pub fn hash_password(password: &str) -> String {
    use argon2::password_hash::{PasswordHasher, SaltString};
    let mut salt = [0u8; 16];
    getrandom::fill(&mut salt).expect("random");
    let salt = SaltString::encode_b64(&salt).expect("salt");
    Argon2::default()
        .hash_password(password.as_bytes(), &salt)
        .expect("hash")
        .to_string()
}

/// The token a request carries: `Authorization: Bearer`, else the session cookie.
pub fn token_from_headers(headers: &HeaderMap) -> Option<String> {
    if let Some(v) = headers
        .get(axum::http::header::AUTHORIZATION)
        .and_then(|v| v.to_str().ok())
        && let Some(t) = v.strip_prefix("Bearer ")
    {
        return Some(t.trim().to_string());
    }
    let cookies = headers.get_all(axum::http::header::COOKIE);
    for c in cookies.iter().filter_map(|v| v.to_str().ok()) {
        for part in c.split(';') {
            if let Some(v) = part
                .trim()
                .strip_prefix(SESSION_COOKIE)
                .and_then(|r| r.strip_prefix('='))
            {
                return Some(v.to_string());
            }
        }
    }
    None
}

impl FromRequestParts<Arc<App>> for Principal {
    type Rejection = ApiError;

    async fn from_request_parts(
        parts: &mut Parts,
        app: &Arc<App>,
    ) -> Result<Self, Self::Rejection> {
        match token_from_headers(&parts.headers) {
            None => Ok(Principal::Anonymous),
            // A token that is present but unknown or expired is an error, not silently "public".
            Some(t) => {
                let peer = parts
                    .extensions
                    .get::<axum::extract::ConnectInfo<std::net::SocketAddr>>()
                    .map(|c| c.0);
                let found = match peer {
                    Some(peer) => app
                        .auth
                        .resolve_from(&t, app.client_ip(peer, &parts.headers)),
                    None => app.auth.resolve(&t),
                };
                found.ok_or_else(ApiError::unauthenticated)
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_shipped_configs_demo_tokens_are_all_known_as_published() {
        let published = published_token_hashes();
        for src in [
            include_str!("../../../config/demo.toml"),
            include_str!("../../vuoro-bench/bench.toml"),
        ] {
            let cfg = crate::deployment::Deployment::parse(src).expect("a shipped config parses");
            let tokens: Vec<&str> = cfg
                .devices
                .iter()
                .filter_map(|d| d.demo_token.as_deref())
                .collect();
            assert!(!tokens.is_empty());
            for t in tokens {
                assert!(published.contains(&sha256_hex(t)), "{t}");
            }
        }
    }

    #[test]
    fn tokens_are_fresh_across_pool_refills() {
        // 1,000 tokens of 16 bytes take the pool through four refills.
        let tokens: std::collections::HashSet<String> =
            (0..1000).map(|_| random_token(16)).collect();
        assert_eq!(tokens.len(), 1000);
        assert!(
            tokens
                .iter()
                .all(|t| t.len() == 32 && t.bytes().all(|b| b.is_ascii_hexdigit()))
        );
        // Not all zero bytes: what is handed out is the random part, not the wiped part.
        assert!(tokens.iter().all(|t| t != &"0".repeat(32)));
        assert_eq!(random_token(5000).len(), 10_000);
    }

    fn demo_auth(tag: &str) -> (Auth, std::path::PathBuf) {
        let dir = std::env::temp_dir().join(format!("vuoro-auth-{tag}-{}", std::process::id()));
        let _ = std::fs::remove_dir_all(&dir);
        std::fs::create_dir_all(&dir).unwrap();
        let store = vuoro_store::open(&dir.join("vuoro.db")).unwrap();
        let cfg = crate::config::load(include_str!("../../../config/demo.toml")).unwrap();
        (Auth::new(&cfg.deployment, store).unwrap(), dir)
    }

    #[test]
    fn a_session_unused_for_longer_than_the_idle_time_has_ended_and_use_keeps_it() {
        let (auth, dir) = demo_auth("idle");
        let token = auth
            .open_session("agent1", None, SessionUser::Config("agent1".into()))
            .unwrap();
        assert!(auth.resolve(&token).is_some());
        let set_used = |secs_ago: i64| {
            let live = auth.live.read().unwrap();
            live[&sha256_hex(&token)].last_used.store(
                Utc::now().timestamp() - secs_ago,
                std::sync::atomic::Ordering::Relaxed,
            );
        };
        // Used a minute short of the idle time ago: still on, and the use starts the clock again.
        set_used(auth.idle_secs - 60);
        assert!(auth.resolve(&token).is_some());
        set_used(auth.idle_secs + 1);
        assert!(auth.resolve(&token).is_none(), "idle too long");
        // Purged, and gone from the store: a restart does not bring it back.
        auth.purge_sessions();
        assert!(auth.live.read().unwrap().is_empty());
        let store = vuoro_store::open(&dir.join("vuoro.db")).unwrap();
        assert!(store.live_sessions(Utc::now()).unwrap().is_empty());
        drop(store);
        let _ = std::fs::remove_dir_all(&dir);
    }

    #[test]
    fn wrong_passwords_for_one_account_slow_its_attempts_down_for_a_minute_at_most() {
        let (auth, dir) = demo_auth("account");
        for _ in 0..ACCOUNT_FREE_TRIES {
            assert_eq!(auth.account_wait("agent1"), None);
            auth.account_failed("agent1");
        }
        let first = auth
            .account_wait("agent1")
            .expect("a wait after the free tries");
        assert!(first <= Duration::from_secs(1));
        for _ in 0..20 {
            auth.account_failed("agent1");
        }
        let longest = auth.account_wait("agent1").unwrap();
        assert!(
            longest > Duration::from_secs(50) && longest <= ACCOUNT_MAX_WAIT,
            "{longest:?}"
        );
        // Another account is not slowed down; a right password clears the count.
        assert_eq!(auth.account_wait("agent2"), None);
        auth.account_failures
            .lock()
            .unwrap()
            .get_mut("agent1")
            .unwrap()
            .1 = Instant::now() - ACCOUNT_MAX_WAIT;
        assert_eq!(
            auth.account_wait("agent1"),
            None,
            "never longer than the longest wait"
        );
        let _ = std::fs::remove_dir_all(&dir);
    }
}
