//! Single sign-on for staff through OpenID Connect issuers (`[[oidc]]` in the deployment): the
//! authorization code flow with PKCE, `state` and `nonce` (the `openidconnect` crate, over ureq).
//!
//! `GET /api/v1/auth/oidc/{id}/login` reads the issuer's metadata (discovery, cached for an hour), keeps a
//! pending sign-in in memory (at most [`PENDING_MAX`], [`PENDING_PER_ADDRESS`] from one client address,
//! each for [`PENDING_TTL`]) and sends the browser to
//! the issuer. `GET /api/v1/auth/oidc/{id}/callback` takes the pending sign-in by its `state` (once),
//! exchanges the code with the PKCE verifier and the client secret, verifies the ID token (signature by
//! the issuer's JWKS, fetched again when the token names a key it does not hold: key rotation; `iss`,
//! `aud`, `exp`, `nonce`), maps its claims to roles and units and opens a session as a password sign-in
//! does. Whatever fails ends on a page that says so in the user's language. No code, token or secret is
//! logged or put in an address the daemon builds, other than what the protocol itself carries.

use std::collections::{BTreeMap, HashMap};
use std::net::{IpAddr, SocketAddr};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use axum::extract::rejection::QueryRejection;
use axum::extract::{ConnectInfo, Path, Query, State};
use axum::http::{HeaderMap, HeaderValue, StatusCode, header};
use axum::response::{IntoResponse, Response};
use openidconnect::core::{
    CoreAuthDisplay, CoreAuthPrompt, CoreErrorResponseType, CoreGenderClaim, CoreJsonWebKey,
    CoreJweContentEncryptionAlgorithm, CoreJwsSigningAlgorithm, CoreRevocableToken,
    CoreRevocationErrorResponse, CoreTokenIntrospectionResponse, CoreTokenType,
};
use openidconnect::{
    AdditionalClaims, AuthenticationFlow, AuthorizationCode, ClaimsVerificationError, ClientId,
    ClientSecret, CsrfToken, EmptyExtraTokenFields, EndpointMaybeSet, EndpointNotSet, EndpointSet,
    IdTokenFields, IssuerUrl, JwsSigningAlgorithm, LogoutRequest, Nonce, PkceCodeChallenge,
    PkceCodeVerifier, PostLogoutRedirectUrl, ProviderMetadataWithLogout, RedirectUrl, Scope,
    SignatureVerificationError, StandardErrorResponse, StandardTokenResponse,
};
use serde::{Deserialize, Serialize};
use serde_json::{Value, json};

use crate::App;
use crate::auth::{SESSION_COOKIE, SsoRights};
use crate::deployment::{Deployment, OidcIssuer, Role};

/// Sign-ins under way at most; more are refused until some finish or expire.
pub const PENDING_MAX: usize = 1000;
/// Sign-ins under way from one client address at most, so that one client cannot take them all (staff
/// behind one NAT share an address: each sign-in left unfinished holds its place for `PENDING_TTL`).
pub const PENDING_PER_ADDRESS: usize = 100;
/// How long a user has at the issuer before the sign-in must start again.
pub const PENDING_TTL: Duration = Duration::from_secs(600);
/// How long an issuer's metadata and keys are used before they are read again.
const METADATA_TTL: Duration = Duration::from_secs(3600);
/// Where the browser goes after signing in when the sign-in named no page.
const DEFAULT_RETURN: &str = "/desk/";

/// Every claim of the ID token beyond the standard ones (where `role_claim` and `unit_claim` are).
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct OtherClaims {
    #[serde(flatten)]
    all: BTreeMap<String, Value>,
}
impl AdditionalClaims for OtherClaims {}

type TokenResponse = StandardTokenResponse<
    IdTokenFields<
        OtherClaims,
        EmptyExtraTokenFields,
        CoreGenderClaim,
        CoreJweContentEncryptionAlgorithm,
        CoreJwsSigningAlgorithm,
    >,
    CoreTokenType,
>;

type Client = openidconnect::Client<
    OtherClaims,
    CoreAuthDisplay,
    CoreGenderClaim,
    CoreJweContentEncryptionAlgorithm,
    CoreJsonWebKey,
    CoreAuthPrompt,
    StandardErrorResponse<CoreErrorResponseType>,
    TokenResponse,
    CoreTokenIntrospectionResponse,
    CoreRevocableToken,
    CoreRevocationErrorResponse,
    EndpointSet,
    EndpointNotSet,
    EndpointNotSet,
    EndpointNotSet,
    EndpointMaybeSet,
    EndpointMaybeSet,
>;

/// Why a sign-in through an issuer did not succeed (each a sentence in fi, sv and en on the page).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Failure {
    UnknownIssuer,
    BadReturn,
    Busy,
    /// No pending sign-in has this `state`: never started here, already used, or too old.
    Expired,
    /// The issuer answered with an error (the user cancelled, or the issuer refused).
    Refused,
    Unreachable,
    /// The issuer's answer did not pass the checks (signature, `iss`, `aud`, `exp`, `nonce`...).
    Invalid,
    NoRole,
    NoUnit,
    Store,
}

impl Failure {
    fn status(self) -> StatusCode {
        match self {
            Failure::UnknownIssuer => StatusCode::NOT_FOUND,
            Failure::BadReturn | Failure::Expired => StatusCode::BAD_REQUEST,
            Failure::Refused | Failure::NoRole | Failure::NoUnit => StatusCode::FORBIDDEN,
            Failure::Busy => StatusCode::TOO_MANY_REQUESTS,
            Failure::Unreachable | Failure::Invalid => StatusCode::BAD_GATEWAY,
            Failure::Store => StatusCode::SERVICE_UNAVAILABLE,
        }
    }

    /// A short name for the log.
    fn kind(self) -> &'static str {
        match self {
            Failure::UnknownIssuer => "unknown issuer",
            Failure::BadReturn => "bad return address",
            Failure::Busy => "too many sign-ins under way",
            Failure::Expired => "unknown, used or expired state",
            Failure::Refused => "issuer answered an error",
            Failure::Unreachable => "issuer unreachable",
            Failure::Invalid => "issuer's answer failed the checks",
            Failure::NoRole => "no mapped role",
            Failure::NoUnit => "no mapped unit",
            Failure::Store => "session not stored",
        }
    }

    /// What the page says, in `lang` (fi, sv or en).
    fn message(self, lang: &str) -> &'static str {
        let [fi, sv, en] = match self {
            Failure::UnknownIssuer => [
                "Tätä kirjautumispalvelua ei ole.",
                "Den här inloggningstjänsten finns inte.",
                "There is no such sign-in service.",
            ],
            Failure::BadReturn => [
                "Kirjautumislinkki ei kelpaa.",
                "Inloggningslänken är inte giltig.",
                "The sign-in link is not valid.",
            ],
            Failure::Busy => [
                "Kirjautumisia on kesken liian monta. Yritä hetken päästä uudelleen.",
                "För många inloggningar pågår. Försök igen om en stund.",
                "Too many sign-ins are under way. Try again in a moment.",
            ],
            Failure::Expired => [
                "Kirjautuminen vanheni tai sitä ei aloitettu täältä. Aloita alusta.",
                "Inloggningen gick ut eller påbörjades inte här. Börja om.",
                "This sign-in expired or was not started here. Start again.",
            ],
            Failure::Refused => [
                "Kirjautumispalvelu ei kirjannut sinua sisään.",
                "Inloggningstjänsten loggade inte in dig.",
                "The sign-in service did not sign you in.",
            ],
            Failure::Unreachable => [
                "Kirjautumispalveluun ei saatu yhteyttä. Yritä hetken päästä uudelleen.",
                "Det gick inte att nå inloggningstjänsten. Försök igen om en stund.",
                "The sign-in service could not be reached. Try again in a moment.",
            ],
            Failure::Invalid => [
                "Kirjautumispalvelun vastausta ei voitu varmentaa, joten sinua ei kirjattu sisään.",
                "Inloggningstjänstens svar kunde inte verifieras, så du loggades inte in.",
                "The sign-in service's answer could not be verified, so you were not signed in.",
            ],
            Failure::NoRole => [
                "Tunnuksellasi ei ole roolia Vuorossa. Pyydä esihenkilöäsi tai IT-tukea lisäämään sinut oikeaan ryhmään.",
                "Ditt konto har ingen roll i Vuoro. Be din chef eller IT-stödet att lägga till dig i rätt grupp.",
                "Your account has no role in Vuoro. Ask your supervisor or IT support to add you to the right group.",
            ],
            Failure::NoUnit => [
                "Tunnuksellasi on rooli Vuorossa mutta ei yksikköä. Pyydä esihenkilöäsi tai IT-tukea lisäämään sinut yksikkösi ryhmään.",
                "Ditt konto har en roll i Vuoro men ingen enhet. Be din chef eller IT-stödet att lägga till dig i din enhets grupp.",
                "Your account has a role in Vuoro but no unit. Ask your supervisor or IT support to add you to your unit's group.",
            ],
            Failure::Store => [
                "Istuntoa ei voitu tallentaa. Yritä uudelleen.",
                "Sessionen kunde inte sparas. Försök igen.",
                "Your session could not be stored. Try again.",
            ],
        };
        match lang {
            "sv" => sv,
            "en" => en,
            _ => fi,
        }
    }
}

/// A sign-in under way: started at the issuer, waiting for its callback.
struct Pending {
    issuer: String,
    verifier: PkceCodeVerifier,
    nonce: Nonce,
    return_to: String,
    started: Instant,
    client: IpAddr,
}

struct Issuer {
    cfg: OidcIssuer,
    secret: String,
    metadata: Mutex<Option<(Arc<ProviderMetadataWithLogout>, Instant)>>,
}

/// The configured issuers, their cached metadata and the sign-ins under way.
pub struct Oidc {
    issuers: HashMap<String, Issuer>,
    /// In the config's order, for the sign-in page.
    order: Vec<String>,
    pending: Mutex<HashMap<String, Pending>>,
    http: ureq::Agent,
}

/// What a successful sign-in gives: the rights, the raw ID token (for the logout hint) and the page to
/// return to.
pub struct SignedIn {
    pub rights: SsoRights,
    pub id_token: String,
    pub return_to: String,
}

impl Oidc {
    /// The issuers of the deployment; reads each `client_secret_file`.
    pub fn new(cfg: &Deployment) -> anyhow::Result<Oidc> {
        let mut issuers = HashMap::new();
        for o in &cfg.oidc {
            let secret = match (&o.client_secret, &o.client_secret_file) {
                (Some(s), _) => s.0.clone(),
                (None, Some(path)) => std::fs::read_to_string(path)
                    .map_err(|e| {
                        anyhow::anyhow!(
                            "oidc '{}': cannot read client_secret_file {}: {e}",
                            o.id,
                            path.display()
                        )
                    })?
                    .trim()
                    .to_string(),
                (None, None) => anyhow::bail!("oidc '{}' has no client secret", o.id),
            };
            if secret.is_empty() {
                anyhow::bail!("oidc '{}': the client secret is empty", o.id);
            }
            issuers.insert(
                o.id.clone(),
                Issuer {
                    cfg: o.clone(),
                    secret,
                    metadata: Mutex::new(None),
                },
            );
        }
        // Redirects are not followed: the issuer's endpoints come from its metadata, and a redirect
        // could lead the daemon's requests anywhere.
        let http = ureq::Agent::config_builder()
            .timeout_global(Some(Duration::from_secs(10)))
            .http_status_as_error(false)
            .max_redirects(0)
            .build()
            .into();
        Ok(Oidc {
            issuers,
            order: cfg.oidc.iter().map(|o| o.id.clone()).collect(),
            pending: Mutex::new(HashMap::new()),
            http,
        })
    }

    /// `GET /api/v1/auth/providers`: the issuers' ids and names, and whether passwords are accepted.
    pub fn providers_json(&self, local_sign_in: bool) -> Value {
        let list: Vec<Value> = self
            .order
            .iter()
            .map(|id| json!({"id": id, "name": self.issuers[id].cfg.name}))
            .collect();
        json!({"local_sign_in": local_sign_in, "providers": list})
    }

    fn call(
        &self,
        req: openidconnect::HttpRequest,
    ) -> Result<openidconnect::HttpResponse, ureq::Error> {
        let (parts, body) = req.into_parts();
        let res = if body.is_empty() {
            self.http.run(axum::http::Request::from_parts(parts, ()))
        } else {
            self.http.run(axum::http::Request::from_parts(parts, body))
        }?;
        let (parts, mut body) = res.into_parts();
        let bytes = body.with_config().limit(1 << 20).read_to_vec()?;
        Ok(axum::http::Response::from_parts(parts, bytes))
    }

    /// The issuer's metadata and keys: cached, read again after an hour or when `refresh`.
    fn metadata(
        &self,
        iss: &Issuer,
        refresh: bool,
    ) -> Result<Arc<ProviderMetadataWithLogout>, Failure> {
        if !refresh
            && let Some((m, at)) = iss.metadata.lock().expect("lock").as_ref()
            && at.elapsed() < METADATA_TTL
        {
            return Ok(m.clone());
        }
        let url = IssuerUrl::new(iss.cfg.issuer.clone()).map_err(|_| Failure::Unreachable)?;
        let http = |r| self.call(r);
        let m = ProviderMetadataWithLogout::discover(&url, &http).map_err(|e| {
            tracing::warn!(issuer = %iss.cfg.id, error = %e, "single sign-on: discovery failed");
            Failure::Unreachable
        })?;
        let m = Arc::new(m);
        *iss.metadata.lock().expect("lock") = Some((m.clone(), Instant::now()));
        Ok(m)
    }

    fn client(&self, iss: &Issuer, m: &ProviderMetadataWithLogout, redirect: &str) -> Client {
        Client::from_provider_metadata(
            m.clone(),
            ClientId::new(iss.cfg.client_id.clone()),
            Some(ClientSecret::new(iss.secret.clone())),
        )
        .set_redirect_uri(RedirectUrl::from_url(
            redirect.parse().expect("the callback address is a URL"),
        ))
    }

    fn issuer(&self, id: &str) -> Result<&Issuer, Failure> {
        self.issuers.get(id).ok_or(Failure::UnknownIssuer)
    }

    /// Starts a sign-in: the issuer's authorization address to send the browser to. Blocking (it may
    /// read the issuer's metadata).
    pub fn begin(
        &self,
        client: IpAddr,
        id: &str,
        return_to: Option<&str>,
        callback: &str,
    ) -> Result<String, Failure> {
        let iss = self.issuer(id)?;
        let return_to = match return_to {
            None => DEFAULT_RETURN.to_string(),
            Some(r) if is_local_path(r) => r.to_string(),
            Some(_) => return Err(Failure::BadReturn),
        };
        {
            let mut pending = self.pending.lock().expect("lock");
            pending.retain(|_, p| p.started.elapsed() < PENDING_TTL);
            if pending.len() >= PENDING_MAX
                || pending.values().filter(|p| p.client == client).count() >= PENDING_PER_ADDRESS
            {
                return Err(Failure::Busy);
            }
        }
        let m = self.metadata(iss, false)?;
        let rp = self.client(iss, &m, callback);
        let (challenge, verifier) = PkceCodeChallenge::new_random_sha256();
        let mut req = rp
            .authorize_url(
                AuthenticationFlow::<openidconnect::core::CoreResponseType>::AuthorizationCode,
                CsrfToken::new_random,
                Nonce::new_random,
            )
            .set_pkce_challenge(challenge);
        for s in iss.cfg.scopes.iter().filter(|s| *s != "openid") {
            req = req.add_scope(Scope::new(s.clone()));
        }
        let (url, state, nonce) = req.url();
        let mut pending = self.pending.lock().expect("lock");
        if pending.len() >= PENDING_MAX {
            return Err(Failure::Busy);
        }
        pending.insert(
            state.secret().clone(),
            Pending {
                issuer: id.to_string(),
                verifier,
                nonce,
                return_to,
                started: Instant::now(),
                client,
            },
        );
        Ok(url.to_string())
    }

    /// Finishes a sign-in from the issuer's callback. Blocking (token request, maybe the keys).
    pub fn finish(&self, id: &str, q: &CallbackQuery, callback: &str) -> Result<SignedIn, Failure> {
        let iss = self.issuer(id)?;
        let pending = {
            let state = q.state.as_deref().ok_or(Failure::Expired)?;
            let mut all = self.pending.lock().expect("lock");
            let p = all.remove(state).ok_or(Failure::Expired)?;
            if p.issuer != id || p.started.elapsed() >= PENDING_TTL {
                return Err(Failure::Expired);
            }
            p
        };
        if let Some(e) = &q.error {
            tracing::info!(issuer = %id, error = %e.chars().take(64).collect::<String>(), "single sign-on: the issuer answered an error");
            return Err(Failure::Refused);
        }
        let code = q.code.clone().ok_or(Failure::Refused)?;
        let m = self.metadata(iss, false)?;
        let client = self.client(iss, &m, callback);
        let http = |r| self.call(r);
        let token = client
            .exchange_code(AuthorizationCode::new(code))
            .map_err(|_| Failure::Invalid)?
            .set_pkce_verifier(pending.verifier)
            .request(&http)
            .map_err(|e| {
                tracing::warn!(issuer = %id, error = %e, "single sign-on: the code exchange failed");
                Failure::Invalid
            })?;
        use openidconnect::TokenResponse as _;
        let id_token = token.id_token().ok_or(Failure::Invalid)?;
        let verify = |client: &Client, m: &ProviderMetadataWithLogout| {
            let algs: Vec<CoreJwsSigningAlgorithm> = m
                .id_token_signing_alg_values_supported()
                .iter()
                .filter(|a| !a.uses_shared_secret() && **a != CoreJwsSigningAlgorithm::None)
                .cloned()
                .collect();
            let verifier = client.id_token_verifier().set_allowed_algs(algs);
            id_token.claims(&verifier, &pending.nonce).cloned()
        };
        let claims = match verify(&client, &m) {
            Err(ClaimsVerificationError::SignatureVerification(
                SignatureVerificationError::NoMatchingKey,
            )) => {
                // The issuer may have rotated its keys: read them again, once.
                tracing::info!(issuer = %id, "single sign-on: the ID token names a key not held; reading the issuer's keys again");
                let m = self.metadata(iss, true)?;
                verify(&self.client(iss, &m, callback), &m)
            }
            other => other,
        }
        .map_err(|e| {
            tracing::warn!(issuer = %id, error = %e, "single sign-on: the ID token failed the checks");
            Failure::Invalid
        })?;
        let mut all: BTreeMap<String, Value> = claims.additional_claims().all.clone();
        // Standard claims are parsed apart from the others; a mapping may still name one.
        if let Ok(Value::Object(std)) = serde_json::to_value(&claims) {
            for (k, v) in std {
                all.entry(k).or_insert(v);
            }
        }
        let name = claims
            .preferred_username()
            .map(|u| u.as_str().to_string())
            .or_else(|| claims.email().map(|e| e.as_str().to_string()))
            .unwrap_or_else(|| claims.subject().as_str().to_string());
        let display = claims
            .name()
            .and_then(|n| n.get(None))
            .map(|n| n.as_str().to_string());
        let rights = map_claims(&iss.cfg, &all, &name, display)?;
        Ok(SignedIn {
            rights,
            id_token: id_token.to_string(),
            return_to: pending.return_to,
        })
    }

    /// The issuer's logout address for a session that ends (RP-initiated logout), if it has one.
    /// Blocking (it may read the issuer's metadata).
    pub fn end_session_url(
        &self,
        id: &str,
        id_token: Option<&str>,
        post_logout: &str,
    ) -> Option<String> {
        let iss = self.issuer(id).ok()?;
        let m = self.metadata(iss, false).ok()?;
        let end = m.additional_metadata().end_session_endpoint.clone()?;
        let mut req = LogoutRequest::from(end)
            .set_client_id(ClientId::new(iss.cfg.client_id.clone()))
            .set_post_logout_redirect_uri(PostLogoutRedirectUrl::new(post_logout.into()).ok()?);
        if let Some(t) = id_token.and_then(|t| t.parse::<openidconnect::core::CoreIdToken>().ok()) {
            req = req.set_id_token_hint(&t);
        }
        Some(req.http_get_url().to_string())
    }
}

/// Values of `claim`: a string, or the strings of a list.
fn claim_values<'a>(claims: &'a BTreeMap<String, Value>, claim: &str) -> Vec<&'a str> {
    match claims.get(claim) {
        Some(Value::String(s)) => vec![s.as_str()],
        Some(Value::Array(a)) => a.iter().filter_map(Value::as_str).collect(),
        _ => Vec::new(),
    }
}

/// The rights `claims` give through the issuer's `role_map` and `unit_map`: refused without a role,
/// and without a unit unless an admin (an admin without units may act on every unit).
pub fn map_claims(
    cfg: &OidcIssuer,
    claims: &BTreeMap<String, Value>,
    name: &str,
    display_name: Option<String>,
) -> Result<SsoRights, Failure> {
    let mut roles: Vec<Role> = Vec::new();
    for v in claim_values(claims, &cfg.role_claim) {
        if let Some(r) = cfg.role_map.get(v)
            && !roles.contains(r)
        {
            roles.push(r.clone());
        }
    }
    if roles.is_empty() {
        return Err(Failure::NoRole);
    }
    let mut units: Vec<String> = cfg
        .unit_claim
        .as_deref()
        .map(|c| {
            claim_values(claims, c)
                .into_iter()
                .filter_map(|v| cfg.unit_map.get(v).map(|u| u.to_string()))
                .collect()
        })
        .unwrap_or_default();
    units.sort();
    units.dedup();
    let units = if units.is_empty() {
        if !roles.contains(&Role::Admin) {
            return Err(Failure::NoUnit);
        }
        None
    } else {
        Some(units)
    };
    Ok(SsoRights {
        issuer: cfg.id.clone(),
        username: format!("{}:{name}", cfg.id),
        display_name,
        roles,
        units,
    })
}

/// A relative address on this server: `/` then a path, never `//host` or `/\host`.
pub fn is_local_path(p: &str) -> bool {
    p.starts_with('/')
        && !p.starts_with("//")
        && p.len() <= 512
        && p.bytes().all(|b| b.is_ascii_graphic() && b != b'\\')
}

/// The address the issuer sends the browser back to, on the daemon's public URL.
fn callback_url(app: &App, id: &str) -> String {
    format!(
        "{}/api/v1/auth/oidc/{id}/callback",
        app.public_url.trim_end_matches('/')
    )
}

/// Where an issuer sends the browser after its logout.
pub fn post_logout_url(app: &App) -> String {
    format!("{}/desk/", app.public_url.trim_end_matches('/'))
}

/// The page's language from `Accept-Language`: the first of fi, sv and en named, else Finnish.
fn page_lang(headers: &HeaderMap) -> &'static str {
    let accept = headers
        .get(header::ACCEPT_LANGUAGE)
        .and_then(|v| v.to_str().ok())
        .unwrap_or("");
    for part in accept.split(',') {
        let tag = part.split(';').next().unwrap_or("").trim();
        let primary = tag.split('-').next().unwrap_or("").to_ascii_lowercase();
        for l in ["fi", "sv", "en"] {
            if primary == l {
                return l;
            }
        }
    }
    "fi"
}

fn escape(s: &str) -> String {
    s.replace('&', "&amp;")
        .replace('<', "&lt;")
        .replace('>', "&gt;")
        .replace('"', "&quot;")
        .replace('\'', "&#39;")
}

/// The page a failed sign-in ends on: what happened, in the user's language, and a way back.
pub fn failure_page(f: Failure, headers: &HeaderMap) -> Response {
    let lang = page_lang(headers);
    let (title, back) = match lang {
        "sv" => ("Inloggningen misslyckades", "Tillbaka till inloggningen"),
        "en" => ("Sign-in failed", "Back to sign-in"),
        _ => ("Kirjautuminen epäonnistui", "Takaisin kirjautumiseen"),
    };
    let html = format!(
        "<!doctype html>\n<html lang=\"{lang}\">\n<head>\n  <meta charset=\"utf-8\">\n  \
         <meta name=\"viewport\" content=\"width=device-width, initial-scale=1\">\n  \
         <meta name=\"referrer\" content=\"no-referrer\">\n  <title>{title} – Vuoro</title>\n  \
         <link rel=\"icon\" href=\"/shared/favicon.svg\" type=\"image/svg+xml\">\n  \
         <link rel=\"stylesheet\" href=\"/shared/theme.css\">\n  <link rel=\"stylesheet\" href=\"/brand.css\">\n  \
         <link rel=\"stylesheet\" href=\"/desk/desk.css\">\n</head>\n<body>\n  <main id=\"main\" class=\"sso-failure\">\n    \
         <h1>{title}</h1>\n    <p id=\"sso-reason\">{}</p>\n    <p><a class=\"button\" href=\"{DEFAULT_RETURN}\">{back}</a></p>\n  \
         </main>\n</body>\n</html>\n",
        escape(f.message(lang))
    );
    (
        f.status(),
        [
            (header::CONTENT_TYPE, "text/html; charset=utf-8"),
            (header::CACHE_CONTROL, "no-store"),
            (header::X_CONTENT_TYPE_OPTIONS, "nosniff"),
            (header::REFERRER_POLICY, "no-referrer"),
            (header::CONTENT_SECURITY_POLICY, crate::web::PAGE_CSP),
        ],
        html,
    )
        .into_response()
}

#[derive(Deserialize)]
pub struct LoginQuery {
    #[serde(rename = "return")]
    return_to: Option<String>,
}

/// The issuer's answer: `code` and `state`, or `error`.
#[derive(Deserialize)]
pub struct CallbackQuery {
    code: Option<String>,
    state: Option<String>,
    error: Option<String>,
}

type AppState = State<Arc<App>>;

/// `GET /api/v1/auth/oidc/{id}/login`: off to the issuer.
pub async fn login(
    State(app): AppState,
    ConnectInfo(peer): ConnectInfo<SocketAddr>,
    Path(id): Path<String>,
    q: Result<Query<LoginQuery>, QueryRejection>,
    headers: HeaderMap,
) -> Response {
    // A query that does not parse (a repeated `return`) gets the page too, not an API error.
    let Ok(Query(q)) = q else {
        return failure_page(Failure::BadReturn, &headers);
    };
    let callback = callback_url(&app, &id);
    let client = app.client_ip(peer, &headers);
    let app2 = app.clone();
    let id2 = id.clone();
    let begun = tokio::task::spawn_blocking(move || {
        app2.oidc
            .begin(client, &id2, q.return_to.as_deref(), &callback)
    })
    .await
    .unwrap_or(Err(Failure::Unreachable));
    match begun {
        Ok(url) => {
            let mut res = StatusCode::FOUND.into_response();
            res.headers_mut().insert(
                header::LOCATION,
                HeaderValue::from_str(&url).unwrap_or(HeaderValue::from_static("/")),
            );
            res.headers_mut()
                .insert(header::CACHE_CONTROL, HeaderValue::from_static("no-store"));
            res
        }
        Err(f) => {
            tracing::info!(issuer = %id.chars().take(64).collect::<String>(), reason = f.kind(), "single sign-on not started");
            failure_page(f, &headers)
        }
    }
}

/// `GET /api/v1/auth/oidc/{id}/callback`: the issuer's answer; a session and back to the page, or the
/// failure page.
pub async fn callback(
    State(app): AppState,
    Path(id): Path<String>,
    q: Result<Query<CallbackQuery>, QueryRejection>,
    ConnectInfo(peer): ConnectInfo<SocketAddr>,
    headers: HeaderMap,
) -> Response {
    let Ok(Query(q)) = q else {
        return failure_page(Failure::Expired, &headers);
    };
    let callback = callback_url(&app, &id);
    let app2 = app.clone();
    let id2 = id.clone();
    let done = tokio::task::spawn_blocking(move || {
        let s = app2.oidc.finish(&id2, &q, &callback)?;
        let (token, _) = app2
            .auth
            .login_sso(&s.rights, Some(s.id_token))
            .map_err(|_| Failure::Store)?;
        Ok::<_, Failure>((token, s.rights, s.return_to))
    })
    .await
    .unwrap_or(Err(Failure::Unreachable));
    let client = app.client_ip(peer, &headers);
    match done {
        Ok((token, rights, return_to)) => {
            tracing::info!(issuer = %id, user = %rights.username, %client, "signed in by single sign-on");
            let cookie = format!(
                "{SESSION_COOKIE}={token}; HttpOnly; SameSite=Strict; Path=/; Max-Age={}{}",
                i64::from(app.deployment.server.session_hours) * 3600,
                app.cookie_secure()
            );
            let mut res = StatusCode::SEE_OTHER.into_response();
            let h = res.headers_mut();
            h.insert(
                header::LOCATION,
                HeaderValue::from_str(&return_to).unwrap_or(HeaderValue::from_static("/desk/")),
            );
            h.insert(
                header::SET_COOKIE,
                HeaderValue::from_str(&cookie).expect("ascii"),
            );
            h.insert(header::CACHE_CONTROL, HeaderValue::from_static("no-store"));
            h.insert(
                header::REFERRER_POLICY,
                HeaderValue::from_static("no-referrer"),
            );
            res
        }
        Err(f) => {
            tracing::info!(issuer = %id.chars().take(64).collect::<String>(), reason = f.kind(), %client, "single sign-on refused");
            failure_page(f, &headers)
        }
    }
}

/// `GET /api/v1/auth/providers`: the sign-in page's choices.
pub async fn providers(State(app): AppState) -> Response {
    axum::Json(app.oidc.providers_json(app.deployment.server.local_sign_in)).into_response()
}

#[cfg(test)]
mod tests {
    use super::*;

    fn issuer() -> OidcIssuer {
        toml::from_str(
            r#"
            id = "city"
            name = { fi = "Kaupungin tunnus", en = "City account" }
            issuer = "https://login.example.fi/tenant/v2.0"
            client_id = "vuoro"
            client_secret = "s"
            role_claim = "groups"
            role_map = { "vuoro-kela-agents" = "agent", "vuoro-supervisors" = "supervisor", "vuoro-admins" = "admin" }
            unit_claim = "groups"
            unit_map = { "vuoro-kela-agents" = "kela", "vuoro-tax" = "tax" }
            "#,
        )
        .unwrap()
    }

    fn claims(v: Value) -> BTreeMap<String, Value> {
        serde_json::from_value(v).unwrap()
    }

    #[test]
    fn a_mapped_group_gives_its_role_and_unit() {
        let r = map_claims(
            &issuer(),
            &claims(json!({"groups": ["other", "vuoro-kela-agents"]})),
            "anna",
            Some("Anna A".into()),
        )
        .unwrap();
        assert_eq!(r.username, "city:anna");
        assert_eq!(r.roles, vec![Role::Agent]);
        assert_eq!(r.units, Some(vec!["kela".to_string()]));
        assert_eq!(r.display_name.as_deref(), Some("Anna A"));
    }

    #[test]
    fn roles_and_units_add_up_from_several_groups_and_a_single_string_counts() {
        let r = map_claims(
            &issuer(),
            &claims(json!({"groups": ["vuoro-supervisors", "vuoro-kela-agents", "vuoro-tax"]})),
            "s",
            None,
        )
        .unwrap();
        assert_eq!(r.roles, vec![Role::Supervisor, Role::Agent]);
        assert_eq!(r.units, Some(vec!["kela".to_string(), "tax".to_string()]));
        let one = map_claims(
            &issuer(),
            &claims(json!({"groups": "vuoro-kela-agents"})),
            "x",
            None,
        )
        .unwrap();
        assert_eq!(one.roles, vec![Role::Agent]);
    }

    #[test]
    fn no_mapped_role_or_no_unit_is_refused_and_an_admin_without_units_has_all() {
        for c in [
            json!({}),
            json!({"groups": []}),
            json!({"groups": ["vuoro-tax"]}),
            json!({"groups": 7}),
            json!({"roles": ["vuoro-kela-agents"]}),
        ] {
            assert_eq!(
                map_claims(&issuer(), &claims(c.clone()), "x", None).unwrap_err(),
                Failure::NoRole,
                "{c}"
            );
        }
        assert_eq!(
            map_claims(
                &issuer(),
                &claims(json!({"groups": ["vuoro-supervisors"]})),
                "x",
                None
            )
            .unwrap_err(),
            Failure::NoUnit
        );
        let admin = map_claims(
            &issuer(),
            &claims(json!({"groups": ["vuoro-admins"]})),
            "x",
            None,
        )
        .unwrap();
        assert_eq!(admin.units, None);
    }

    #[test]
    fn only_local_paths_are_returned_to() {
        for ok in ["/desk/", "/desk/supervisor.html?x=1#a", "/"] {
            assert!(is_local_path(ok), "{ok}");
        }
        for bad in [
            "//evil.example/",
            "/\\evil.example",
            "https://evil.example/",
            "desk/",
            "",
            "/desk/ x",
            "/\u{7f}",
        ] {
            assert!(!is_local_path(bad), "{bad}");
        }
    }

    #[test]
    fn the_failure_page_speaks_the_users_language() {
        let mut h = HeaderMap::new();
        h.insert(
            header::ACCEPT_LANGUAGE,
            HeaderValue::from_static("de-DE, sv-FI;q=0.8, en;q=0.5"),
        );
        assert_eq!(page_lang(&h), "sv");
        assert_eq!(page_lang(&HeaderMap::new()), "fi");
        let res = failure_page(Failure::NoRole, &h);
        assert_eq!(res.status(), StatusCode::FORBIDDEN);
        assert!(
            res.headers()[header::CONTENT_SECURITY_POLICY]
                .to_str()
                .unwrap()
                .contains("frame-ancestors 'none'")
        );
    }
}
