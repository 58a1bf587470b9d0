//! [`VerifierBuilder`]: policy, key source, cache, revocation view, clock and realm.

use std::path::PathBuf;
use std::sync::Arc;
use std::time::Duration;

use serde::Deserialize;
use url::Url;
use wristband_jose::{
    Algorithm, Claims, Clock, KeySet, Policy, PolicyBuilder, SecretString, SystemClock,
    VerifyingKey,
};

pub use crate::build_error::BuildError;
use crate::cache::{TokenCache, DEFAULT_CACHE_CAPACITY};
use crate::cookie::CookieSource;
use crate::error::Realm;
use crate::feed::{
    AuthHttp, ClientAuth, FeedEndpoints, FeedOptions, FeedRevocations, KidHook, RevocationSet,
    StalenessPolicy,
};
use crate::fetch::{
    connector, connector_with_ca, Connector, FetchError, Fetcher, DEFAULT_FETCH_TIMEOUT,
};
use crate::hs256::Hs256Secret;
use crate::introspect::{
    introspection_policy, Introspector, DEFAULT_INTROSPECTION_CAPACITY, DEFAULT_INTROSPECTION_TTL,
};
use crate::remote::{load_jwks, RemoteKeys, RemoteOptions};
use crate::revocation::{NoRevocations, RevocationView};
use crate::stepup::AuthnRequirement;
use crate::verifier::{Inner, Keys, Verifier};

/// The RFC 8414 well-known suffix.
pub const METADATA_SUFFIX: &str = ".well-known/oauth-authorization-server";

enum Source {
    Discover,
    JwksUrl(String),
    JwksFile(PathBuf),
    Static(KeySet),
    Hs256(Hs256Secret),
}

/// Builds a [`Verifier`]. Start with [`Verifier::builder`].
pub struct VerifierBuilder {
    issuer: String,
    policy: PolicyBuilder,
    source: Source,
    clock: Arc<dyn Clock>,
    revocations: Option<Arc<dyn RevocationView>>,
    cache_capacity: usize,
    realm: String,
    remote: RemoteOptions,
    credentials: Option<(String, SecretString)>,
    follow_feed: bool,
    feed_url: Option<String>,
    feed: FeedOptions,
    introspection_ttl: Duration,
    introspection_capacity: usize,
    cookies: Option<CookieSource>,
    ca_pem: Option<Vec<u8>>,
    authn: Option<AuthnRequirement>,
}

impl VerifierBuilder {
    pub(crate) fn new(issuer: String, audience: String) -> Self {
        VerifierBuilder {
            policy: Policy::builder(issuer.clone(), audience),
            issuer,
            source: Source::Discover,
            clock: Arc::new(SystemClock),
            revocations: None,
            cache_capacity: DEFAULT_CACHE_CAPACITY,
            realm: Realm::DEFAULT.to_owned(),
            remote: RemoteOptions::default(),
            credentials: None,
            follow_feed: false,
            feed_url: None,
            feed: FeedOptions::default(),
            introspection_ttl: DEFAULT_INTROSPECTION_TTL,
            introspection_capacity: DEFAULT_INTROSPECTION_CAPACITY,
            cookies: None,
            ca_pem: None,
            authn: None,
        }
    }

    /// Accepts tokens for any of these audiences (replacing the one given at the start).
    pub fn audiences<I, S>(mut self, audiences: I) -> Self
    where
        I: IntoIterator<Item = S>,
        S: Into<String>,
    {
        self.policy = self.policy.audiences(audiences);
        self
    }

    /// The algorithm allow-list. Default: RS256, PS256, ES256 and EdDSA.
    pub fn algorithms(mut self, algorithms: &[Algorithm]) -> Self {
        self.policy = self.policy.algorithms(algorithms);
        self
    }

    /// Allowed clock skew, at most 60 s. Default 0.
    pub fn leeway(mut self, leeway: Duration) -> Self {
        self.policy = self.policy.leeway(leeway);
        self
    }

    /// Longest accepted `exp - iat`. Default 60 minutes.
    pub fn max_lifetime(mut self, max_lifetime: Duration) -> Self {
        self.policy = self.policy.max_lifetime(max_lifetime);
        self
    }

    /// Whether `client_id` is required. Default true.
    pub fn require_client_id(mut self, required: bool) -> Self {
        self.policy = self.policy.require_client_id(required);
        self
    }

    /// Discovers the JWKS from the issuer's RFC 8414 metadata (the default).
    pub fn discover(mut self) -> Self {
        self.source = Source::Discover;
        self
    }

    /// Fetches the keys from this JWKS URL.
    pub fn jwks_url(mut self, url: impl Into<String>) -> Self {
        self.source = Source::JwksUrl(url.into());
        self
    }

    /// Reads the keys once from this JWKS file.
    pub fn jwks_file(mut self, path: impl Into<PathBuf>) -> Self {
        self.source = Source::JwksFile(path.into());
        self
    }

    /// Uses these keys and never fetches any.
    pub fn keys(mut self, keys: KeySet) -> Self {
        self.source = Source::Static(keys);
        self
    }

    /// HS256 mode: verifies with this one shared secret and never fetches keys. Sets the
    /// algorithm allow-list to HS256 only, so an RS256, ES256 or `none` token is refused
    /// whatever its signature, and no public key can be mistaken for the secret.
    ///
    /// A `SecretString` is taken as the base64url-encoded secret (see
    /// [`Hs256Secret::from_base64url`]); [`Hs256Secret::read`] loads a `secret.jwk.json`
    /// or a file holding the base64url secret. `build` refuses a weak secret (shorter than
    /// 32 bytes, a well-known tutorial value, or low-entropy) with
    /// [`BuildError::WeakSecret`].
    ///
    /// The key's `kid` is the RFC 7638 thumbprint of the `oct` JWK (or the `kid` of the
    /// JWK it was read from), as in the auth service's HS256 tokens. A token naming another
    /// `kid` is refused; a token without `kid` is checked with the one key.
    pub fn hs256_secret(mut self, secret: impl Into<Hs256Secret>) -> Self {
        self.source = Source::Hs256(secret.into());
        self.policy = self.policy.algorithms(&[Algorithm::HS256]);
        self
    }

    /// The source of "now" for expiry checks. Default: the system clock.
    pub fn clock(mut self, clock: Arc<dyn Clock>) -> Self {
        self.clock = clock;
        self
    }

    /// The revocation view asked on every verification. Default: [`NoRevocations`], or
    /// the feed with [`VerifierBuilder::revocation_feed`] (with both, a token is refused
    /// when either says it is revoked).
    pub fn revocations(mut self, view: Arc<dyn RevocationView>) -> Self {
        self.revocations = Some(view);
        self
    }

    /// A resource-server client's credentials at the auth service: used to read the
    /// revocation feed and to introspect opaque tokens. The token and introspection
    /// endpoints are discovered from the issuer's metadata. With credentials, opaque
    /// `wbo_` tokens are accepted (checked by introspection).
    pub fn client_credentials(
        mut self,
        client_id: impl Into<String>,
        client_secret: impl Into<String>,
    ) -> Self {
        self.credentials = Some((client_id.into(), SecretString::new(client_secret.into())));
        self
    }

    /// Follows the revocation feed advertised in the issuer's metadata (see
    /// [`FeedRevocations`]): the snapshot is read before `build` returns, then the stream
    /// is followed in the background.
    pub fn revocation_feed(mut self) -> Self {
        self.follow_feed = true;
        self
    }

    /// Follows the revocation feed at `url` instead of the one the issuer advertises: a
    /// relay's `…/v1/revocations` (the gate's, say, or another service's that re-serves
    /// the feed with [`crate::relay::Relay`]). The snapshot is read from `url` and the
    /// stream from `url` + `/stream`, with the same cursors, authorization and heartbeats
    /// as the auth service's own feed. The access token still comes from the auth
    /// service's token endpoint ([`VerifierBuilder::client_credentials`]), and keys and
    /// metadata from the issuer. Implies [`VerifierBuilder::revocation_feed`].
    pub fn revocation_feed_url(mut self, url: impl Into<String>) -> Self {
        self.follow_feed = true;
        self.feed_url = Some(url.into());
        self
    }

    /// What to do while the feed is out of sync for too long. Default fail-open.
    pub fn staleness_policy(mut self, policy: StalenessPolicy) -> Self {
        self.feed.policy = policy;
        self
    }

    /// How long the feed may be out of sync before the staleness policy applies.
    /// Default 60 s.
    pub fn max_staleness(mut self, max: Duration) -> Self {
        self.feed.max_staleness = max;
        self
    }

    /// Tuning of the feed follower (backoff, polling, timeouts). Keeps the policy and
    /// maximum staleness already set only if `options` carries them too.
    pub fn feed_options(mut self, options: FeedOptions) -> Self {
        self.feed = options;
        self
    }

    /// How long an introspection answer is reused (never past the token's `exp`), and how
    /// many are kept. Default 5 s and 10 000; a TTL of zero turns the cache off.
    pub fn introspection_cache(mut self, ttl: Duration, capacity: usize) -> Self {
        self.introspection_ttl = ttl;
        self.introspection_capacity = capacity;
        self
    }

    /// How many verified tokens to cache; 0 turns the cache off. Default 10 000.
    pub fn cache_capacity(mut self, capacity: usize) -> Self {
        self.cache_capacity = capacity;
        self
    }

    /// Also accepts the access token from a cookie (`CookieSource::default()`: the auth
    /// service's `__Host-wb_at`), for API services that browsers call on the auth
    /// service's site or behind a gateway that forwards its cookies. Off by default: a
    /// verifier without it ignores cookies entirely.
    ///
    /// The cookie is read only when the request has no `Authorization: Bearer` header (a
    /// bearer header always wins). A cookie-authenticated request with a state-changing
    /// method (anything but GET, HEAD and OPTIONS) needs an `X-CSRF-Token` header equal to
    /// the CSRF cookie (`__Host-wb_csrf`), and a `Sec-Fetch-Site` of `same-origin` or
    /// `none` if it has one; otherwise it is refused with 403 `csrf_failed`. A repeated
    /// access cookie is refused as ambiguous (401 `invalid_token`).
    pub fn access_cookie(mut self, source: CookieSource) -> Self {
        self.cookies = Some(source);
        self
    }

    /// Step-up for the whole service (RFC 9470): every token that
    /// [`crate::RequireTokenLayer`] and [`Verifier::authenticate`] accept must also meet
    /// `requirement`, checked on every request (cache hits included) by the verifier's
    /// clock. A valid token that does not is refused with 401
    /// `insufficient_user_authentication` and a challenge naming the `acr_values` and
    /// `max_age` to ask for. [`Verifier::verify`] checks the token alone. For some routes
    /// only, use [`Verifier::require_authn`] instead. Default: no requirement.
    pub fn require_authn(mut self, requirement: AuthnRequirement) -> Self {
        self.authn = Some(requirement);
        self
    }

    /// The realm named in `WWW-Authenticate` challenges. Default `wristband`.
    pub fn realm(mut self, realm: impl Into<String>) -> Self {
        self.realm = realm.into();
        self
    }

    /// Tuning of a fetched key set (cooldown, timeouts, size cap, retries).
    pub fn remote_options(mut self, options: RemoteOptions) -> Self {
        self.remote = options;
        self
    }

    /// Trusts only the CA certificates of this PEM bundle for `https` (metadata, key sets,
    /// the token endpoint, introspection and the revocation feed) instead of the
    /// platform's root certificates: for an auth service whose certificate a private CA
    /// issued. Without it, the platform's roots (on Linux, `SSL_CERT_FILE` also works).
    pub fn ca_certificates(mut self, pem: impl Into<Vec<u8>>) -> Self {
        self.ca_pem = Some(pem.into());
        self
    }

    /// Minimum time between refetches caused by unknown `kid`s. Default 30 s.
    pub fn refetch_cooldown(mut self, cooldown: Duration) -> Self {
        self.remote.refetch_cooldown = cooldown;
        self
    }

    /// Validates the settings, loads the keys (fetching them, for remote sources, with
    /// retries) and returns the verifier. Remote sources need a tokio runtime.
    pub async fn build(self) -> Result<Verifier, BuildError> {
        let opaque_policy =
            introspection_policy(self.policy.clone()).map_err(BuildError::Policy)?;
        let policy = self.policy.build().map_err(BuildError::Policy)?;
        let realm = Realm::new(&self.realm).ok_or(BuildError::Realm)?;
        let cache =
            (self.cache_capacity > 0).then(|| Arc::new(TokenCache::new(self.cache_capacity)));
        // The feed's records, shared with a fetched key set so that it drops revoked keys.
        let revoked = self.follow_feed.then(|| Arc::new(RevocationSet::new()));
        let connect = Connect::new(self.ca_pem.as_deref())?;
        let fetcher = connect.fetcher(&self.remote);
        let wants_metadata = matches!(self.source, Source::Discover)
            || self.follow_feed
            || self.credentials.is_some();
        let metadata = if wants_metadata {
            Some(discover(&fetcher, &self.issuer, &self.remote).await?)
        } else {
            None
        };
        let loaded = KeySource {
            policy: &policy,
            fetcher,
            remote: &self.remote,
            metadata: metadata.as_ref(),
            cache: &cache,
            revoked: &revoked,
            clock: &self.clock,
        }
        .load(self.source)
        .await?;
        let meta = metadata.unwrap_or_default();
        let http = connect.auth_http(&self.feed);
        let auth = match &self.credentials {
            Some((id, secret)) => {
                let token_url = endpoint(meta.token_endpoint.as_ref(), "token_endpoint")?;
                Some(Arc::new(ClientAuth::new(
                    http.clone(),
                    token_url,
                    id,
                    secret,
                    Arc::clone(&self.clock),
                )))
            }
            None => None,
        };
        let introspector = match (&auth, &meta.introspection_endpoint) {
            (Some(auth), Some(url)) => Some(Arc::new(
                Introspector::new(
                    http.clone(),
                    endpoint(Some(url), "introspection_endpoint")?,
                    Arc::clone(auth),
                    opaque_policy,
                    Arc::clone(&self.clock),
                    self.introspection_ttl,
                    self.introspection_capacity,
                )
                .map_err(BuildError::Policy)?,
            )),
            _ => None,
        };
        let feed = match revoked {
            Some(set) => Some(
                start_feed(
                    feed_endpoints(self.feed_url.as_deref(), &meta)?,
                    &loaded.keys,
                    http,
                    auth,
                    &self.clock,
                    &self.feed,
                    set,
                )
                .await?,
            ),
            None => None,
        };
        let revocations: Arc<dyn RevocationView> = match (&feed, self.revocations) {
            (Some(feed), Some(custom)) => {
                Arc::new(Either(Arc::clone(feed) as Arc<dyn RevocationView>, custom))
            }
            (Some(feed), None) => Arc::clone(feed) as Arc<dyn RevocationView>,
            (None, Some(custom)) => custom,
            (None, None) => Arc::new(NoRevocations),
        };
        Ok(Verifier(Arc::new(Inner {
            policy,
            keys: loaded.keys,
            cache,
            revocations,
            clock: self.clock,
            realm,
            feed,
            introspector,
            single_key: loaded.single_key,
            cookies: self.cookies,
            authn: self.authn.filter(|r| !r.is_empty()),
        })))
    }
}

/// How the verifier connects: the platform's roots, or only a private CA's certificates.
struct Connect(Option<Vec<u8>>);

impl Connect {
    /// Checks the CA certificates once, so that a bad bundle fails the build.
    fn new(ca_pem: Option<&[u8]>) -> Result<Self, BuildError> {
        if let Some(pem) = ca_pem {
            connector_with_ca(DEFAULT_FETCH_TIMEOUT, pem).map_err(BuildError::Ca)?;
        }
        Ok(Connect(ca_pem.map(<[u8]>::to_vec)))
    }

    fn connector(&self, timeout: Duration) -> Connector {
        match &self.0 {
            // Checked in `new`: the same PEM builds the same connector.
            Some(pem) => connector_with_ca(timeout, pem).unwrap_or_else(|_| connector(timeout)),
            None => connector(timeout),
        }
    }

    /// The client of metadata and key-set fetches.
    fn fetcher(&self, remote: &RemoteOptions) -> Fetcher {
        Fetcher::with_connector(
            self.connector(remote.fetch_timeout),
            remote.fetch_timeout,
            remote.max_fetch_bytes,
        )
    }

    /// The client of the token endpoint, introspection and the revocation feed.
    fn auth_http(&self, feed: &FeedOptions) -> AuthHttp {
        AuthHttp::with_connector(
            self.connector(feed.request_timeout),
            feed.request_timeout,
            feed.max_response_bytes,
        )
    }
}

/// The keys, and the one HS256 key when the source is a shared secret.
struct Loaded {
    keys: Keys,
    single_key: Option<VerifyingKey>,
}

/// What loading the keys of a [`Source`] needs.
struct KeySource<'a> {
    policy: &'a Policy,
    fetcher: Fetcher,
    remote: &'a RemoteOptions,
    metadata: Option<&'a Metadata>,
    cache: &'a Option<Arc<TokenCache>>,
    revoked: &'a Option<Arc<RevocationSet>>,
    clock: &'a Arc<dyn Clock>,
}

impl KeySource<'_> {
    async fn load(self, source: Source) -> Result<Loaded, BuildError> {
        let keys = match source {
            Source::Static(keys) => {
                let allowed = keys
                    .iter()
                    .filter(|k| self.policy.allows(k.algorithm()))
                    .count();
                if allowed == 0 {
                    return Err(BuildError::NoKeys);
                }
                Keys::Static(Arc::new(keys))
            }
            Source::Hs256(secret) => {
                let key = secret.verifying_key()?;
                if !self.policy.allows(key.algorithm()) {
                    return Err(BuildError::NoKeys);
                }
                let keys = KeySet::from_keys([key.clone()]).map_err(|_| BuildError::NoKeys)?;
                return Ok(Loaded {
                    keys: Keys::Static(Arc::new(keys)),
                    single_key: Some(key),
                });
            }
            Source::JwksFile(path) => {
                let shown = path.display().to_string();
                let bytes = read_capped(&path, self.remote.max_fetch_bytes)
                    .map_err(|e| BuildError::Keys(shown.clone(), e))?;
                let keys = load_jwks(&bytes, self.policy, &shown)
                    .map_err(|e| BuildError::Keys(shown, e))?;
                Keys::Static(Arc::new(keys))
            }
            Source::JwksUrl(url) => {
                let parsed = parse_url(&url)?;
                self.remote(parsed, url).await?
            }
            Source::Discover => {
                let jwks_uri = match self.metadata {
                    Some(m) => endpoint(Some(&m.jwks_uri), "jwks_uri")?,
                    None => return Err(BuildError::MissingEndpoint("jwks_uri")),
                };
                let shown = jwks_uri.to_string();
                self.remote(jwks_uri, shown).await?
            }
        };
        Ok(Loaded {
            keys,
            single_key: None,
        })
    }

    /// A key set fetched from `url` and kept in sync.
    async fn remote(self, url: Url, shown: String) -> Result<Keys, BuildError> {
        let remote = RemoteKeys::start(
            url,
            self.fetcher,
            self.policy.clone(),
            self.remote.clone(),
            self.cache.clone(),
            self.revoked.clone(),
            Arc::clone(self.clock),
        )
        .await
        .map_err(|e| BuildError::Keys(shown, e))?;
        Ok(Keys::Remote(remote))
    }
}

/// Starts following the revocation feed advertised in `meta`.
async fn start_feed(
    endpoints: FeedEndpoints,
    keys: &Keys,
    http: AuthHttp,
    auth: Option<Arc<ClientAuth>>,
    clock: &Arc<dyn Clock>,
    options: &FeedOptions,
    set: Arc<RevocationSet>,
) -> Result<Arc<FeedRevocations>, BuildError> {
    // A revoked kid leaves a fetched key set as soon as its record is applied.
    let on_kid: Option<KidHook> = match keys {
        Keys::Remote(remote) => {
            let remote = Arc::downgrade(remote);
            Some(Box::new(move || {
                if let Some(remote) = remote.upgrade() {
                    remote.purge_revoked();
                }
            }))
        }
        Keys::Static(_) => None,
    };
    let feed = FeedRevocations::start(
        endpoints,
        http,
        auth,
        Arc::clone(clock),
        options.clone(),
        set,
        on_kid,
    )
    .await
    .map_err(BuildError::Revocations)?;
    Ok(Arc::new(feed))
}

/// The feed's endpoints: a relay's when a feed URL is given, else the advertised ones.
fn feed_endpoints(feed_url: Option<&str>, meta: &Metadata) -> Result<FeedEndpoints, BuildError> {
    if let Some(url) = feed_url {
        return relay_endpoints(url);
    }
    Ok(FeedEndpoints {
        snapshot: endpoint(
            meta.revocation_feed_endpoint.as_ref(),
            "revocation_feed_endpoint",
        )?,
        stream: endpoint(
            meta.revocation_stream_endpoint.as_ref(),
            "revocation_stream_endpoint",
        )?,
    })
}

/// The snapshot and stream endpoints of a feed given by its page URL: the stream is the
/// page URL's path + `/stream`.
fn relay_endpoints(url: &str) -> Result<FeedEndpoints, BuildError> {
    let snapshot = parse_url(url)?;
    if snapshot.query().is_some() || snapshot.fragment().is_some() {
        return Err(BuildError::Url(url.to_owned()));
    }
    let mut stream = snapshot.clone();
    stream.set_path(&format!("{}/stream", snapshot.path().trim_end_matches('/')));
    Ok(FeedEndpoints { snapshot, stream })
}

fn parse_url(url: &str) -> Result<Url, BuildError> {
    let parsed = Url::parse(url).map_err(|_| BuildError::Url(url.to_owned()))?;
    if !Fetcher::supports(&parsed) {
        return Err(BuildError::Url(url.to_owned()));
    }
    Ok(parsed)
}

fn read_capped(path: &std::path::Path, cap: usize) -> Result<Vec<u8>, FetchError> {
    use std::io::Read;
    let file = std::fs::File::open(path).map_err(FetchError::Io)?;
    let mut bytes = Vec::new();
    file.take(cap as u64 + 1)
        .read_to_end(&mut bytes)
        .map_err(FetchError::Io)?;
    if bytes.len() > cap {
        return Err(FetchError::TooLarge(cap));
    }
    Ok(bytes)
}

/// The RFC 8414 §3 metadata URL of an issuer: the well-known suffix goes between the host
/// and the issuer's path.
pub fn metadata_url(issuer: &str) -> Option<Url> {
    let parsed = Url::parse(issuer).ok()?;
    if parsed.query().is_some() || parsed.fragment().is_some() || !parsed.has_host() {
        return None;
    }
    let path = parsed.path().trim_end_matches('/');
    let mut url = parsed.clone();
    url.set_path(&format!("/{METADATA_SUFFIX}{path}"));
    Some(url)
}

/// Two views: revoked when either says so.
struct Either(Arc<dyn RevocationView>, Arc<dyn RevocationView>);

impl RevocationView for Either {
    fn is_revoked(&self, claims: &Claims) -> bool {
        self.0.is_revoked(claims) || self.1.is_revoked(claims)
    }

    fn is_key_revoked(&self, kid: &str) -> bool {
        self.0.is_key_revoked(kid) || self.1.is_key_revoked(kid)
    }
}

/// The RFC 8414 members this crate reads.
#[derive(Deserialize, Default)]
struct Metadata {
    issuer: String,
    jwks_uri: String,
    #[serde(default)]
    token_endpoint: Option<String>,
    #[serde(default)]
    introspection_endpoint: Option<String>,
    #[serde(default)]
    revocation_feed_endpoint: Option<String>,
    #[serde(default)]
    revocation_stream_endpoint: Option<String>,
}

/// An advertised endpoint, parsed and of a supported scheme.
fn endpoint(url: Option<&String>, name: &'static str) -> Result<Url, BuildError> {
    let url = url.ok_or(BuildError::MissingEndpoint(name))?;
    let parsed = Url::parse(url).map_err(|_| BuildError::MissingEndpoint(name))?;
    if !Fetcher::supports(&parsed) {
        return Err(BuildError::MissingEndpoint(name));
    }
    Ok(parsed)
}

/// Fetches the issuer's metadata (with the start-up retries) and checks its issuer and
/// `jwks_uri`.
async fn discover(
    fetcher: &Fetcher,
    issuer: &str,
    options: &RemoteOptions,
) -> Result<Metadata, BuildError> {
    let url = metadata_url(issuer).ok_or_else(|| BuildError::Url(issuer.to_owned()))?;
    if !Fetcher::supports(&url) {
        return Err(BuildError::Url(issuer.to_owned()));
    }
    let fail = |e| BuildError::Discovery(url.to_string(), e);
    let mut delay = options.startup_backoff;
    let mut attempt = 1;
    let fetched = loop {
        match fetcher.get(&url).await {
            Ok(f) => break f,
            Err(e) if attempt >= options.startup_attempts.max(1) => return Err(fail(e)),
            Err(e) => {
                tracing::warn!(url = %url, attempt, error = %e, "metadata fetch failed; retrying");
                tokio::time::sleep(delay).await;
                delay = delay.saturating_mul(2);
                attempt += 1;
            }
        }
    };
    let meta: Metadata = serde_json::from_slice(&fetched.body).map_err(|_| {
        fail(FetchError::Invalid(
            "not an authorization server metadata document".into(),
        ))
    })?;
    // RFC 8414 §3.3: the metadata must name the issuer we asked about.
    if meta.issuer != issuer {
        return Err(fail(FetchError::Invalid(format!(
            "the metadata names the issuer {:?}, but the configured issuer is {issuer:?}",
            meta.issuer
        ))));
    }
    let jwks_uri =
        Url::parse(&meta.jwks_uri).map_err(|_| fail(FetchError::Invalid("bad jwks_uri".into())))?;
    if !Fetcher::supports(&jwks_uri) {
        return Err(fail(FetchError::UnsupportedScheme(
            jwks_uri.scheme().to_owned(),
        )));
    }
    Ok(meta)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn rfc8414_metadata_urls() {
        let u = |s| metadata_url(s).map(|u| u.to_string());
        assert_eq!(
            u("https://auth.example").as_deref(),
            Some("https://auth.example/.well-known/oauth-authorization-server")
        );
        assert_eq!(
            u("https://auth.example/").as_deref(),
            Some("https://auth.example/.well-known/oauth-authorization-server")
        );
        assert_eq!(
            u("http://127.0.0.1:8080/tenant/a").as_deref(),
            Some("http://127.0.0.1:8080/.well-known/oauth-authorization-server/tenant/a")
        );
        assert_eq!(u("https://auth.example/?x=1"), None);
        assert_eq!(u("not a url"), None);
    }

    #[test]
    fn relay_feed_urls() {
        let e = relay_endpoints("http://10.0.0.7:8181/v1/revocations").unwrap();
        assert_eq!(e.snapshot.as_str(), "http://10.0.0.7:8181/v1/revocations");
        assert_eq!(
            e.stream.as_str(),
            "http://10.0.0.7:8181/v1/revocations/stream"
        );
        let e = relay_endpoints("https://relay.example/feed/v1/revocations/").unwrap();
        assert_eq!(
            e.stream.as_str(),
            "https://relay.example/feed/v1/revocations/stream"
        );
        assert!(relay_endpoints("ftp://relay/v1/revocations").is_err());
        assert!(relay_endpoints("http://relay/v1/revocations?after=3").is_err());
    }

    #[tokio::test]
    async fn build_rejects_bad_settings() {
        let key = wristband_jose::SigningKey::generate(Algorithm::ES256).unwrap();
        let keys = || KeySet::from_keys([key.verifying_key().clone()]).unwrap();
        let b = || Verifier::builder("https://auth.example", "api://orders").keys(keys());
        assert!(b().build().await.is_ok());
        assert!(matches!(
            b().leeway(Duration::from_secs(61)).build().await,
            Err(BuildError::Policy(_))
        ));
        assert!(matches!(
            b().realm("a\"b").build().await,
            Err(BuildError::Realm)
        ));
        assert!(matches!(
            b().algorithms(&[Algorithm::RS256]).build().await,
            Err(BuildError::NoKeys)
        ));
        let url = |u: &str| {
            Verifier::builder("https://auth.example", "api")
                .jwks_url(u)
                .build()
        };
        assert!(matches!(
            url("file:///etc/passwd").await,
            Err(BuildError::Url(_))
        ));
        assert!(matches!(url("::").await, Err(BuildError::Url(_))));
        let missing = Verifier::builder("https://auth.example", "api")
            .jwks_file("/nonexistent/jwks.json")
            .build()
            .await;
        assert!(matches!(
            missing,
            Err(BuildError::Keys(_, FetchError::Io(_)))
        ));
    }
}
