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
use vuoro_store::{Database, Session};

use crate::App;
use crate::error::ApiError;

pub const SESSION_COOKIE: &str = "vuoro_session";
const SESSION_HOURS: i64 = 12;

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

#[derive(Debug, Clone)]
struct LiveSession {
    user: SessionUser,
    expires: chrono::DateTime<Utc>,
}

impl LiveSession {
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
        Some((
            s.token_sha256,
            LiveSession {
                user,
                expires: s.expires_at,
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
    users: HashMap<String, User>,
    /// Each user's rights, built once.
    contexts: HashMap<String, Arc<UserCtx>>,
    devices: HashMap<String, Arc<Device>>,
    /// The stored sessions (kept for restarts), written through.
    sessions: Arc<dyn Database>,
    /// Live sessions by token hash. Every staff request reads this, never SQLite.
    /// A std RwLock: held for a map lookup or update only, never across an await.
    live: std::sync::RwLock<HashMap<String, LiveSession>>,
    failures: Mutex<HashMap<IpAddr, VecDeque<Instant>>>,
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
        .filter(|d| published.contains(&d.token_sha256.to_ascii_lowercase()))
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

impl Auth {
    pub fn new(cfg: &Deployment, sessions: Arc<dyn Database>) -> Auth {
        Auth {
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
            devices: cfg
                .devices
                .iter()
                .map(|d| (d.token_sha256.to_ascii_lowercase(), Arc::new(d.clone())))
                .collect(),
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
            sessions_ended: tokio::sync::watch::Sender::new(0),
        }
    }

    fn user_ctx(&self, username: &str) -> Option<Arc<UserCtx>> {
        self.contexts.get(username).cloned()
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
        let ok = match self.users.get(username) {
            Some(u) => verify_password(&u.password_hash, password),
            None => {
                verify_password(&DUMMY_HASH, password);
                false
            }
        };
        if !ok {
            return Err(ApiError::new(
                crate::error::ErrorCode::Unauthenticated,
                "Wrong username or password.",
            ));
        }
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
        let expires = now + chrono::Duration::hours(SESSION_HOURS);
        self.sessions
            .create_session(&Session {
                token_sha256: hash.clone(),
                username: username.to_string(),
                created_at: now,
                expires_at: expires,
                rights,
            })
            .map_err(|e| ApiError::unavailable(format!("cannot store the session: {e}")))?;
        self.live
            .write()
            .expect("lock")
            .insert(hash, LiveSession { user, expires });
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
        let h = sha256_hex(token);
        if let Some(d) = self.devices.get(&h) {
            return Some(Principal::Device(d.clone()));
        }
        let user = {
            let live = self.live.read().expect("lock");
            let s = live.get(&h)?;
            if s.expires <= Utc::now() {
                return None;
            }
            match &s.user {
                SessionUser::Config(name) => name.clone(),
                SessionUser::Sso { ctx, .. } => return Some(Principal::User(ctx.clone())),
            }
        };
        self.user_ctx(&user).map(Principal::User)
    }

    pub fn device(&self, id: &str) -> Option<&Device> {
        self.devices
            .values()
            .find(|d| d.id == id)
            .map(|d| d.as_ref())
    }

    pub fn purge_sessions(&self) {
        let now = Utc::now();
        let purged = {
            let mut live = self.live.write().expect("lock");
            let before = live.len();
            live.retain(|_, s| s.expires > now);
            before - live.len()
        };
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
            Some(t) => app.auth.resolve(&t).ok_or_else(ApiError::unauthenticated),
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
}
