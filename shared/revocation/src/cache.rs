//! The CRL cache: fetch, verify, hold, refresh.

use std::collections::HashMap;
use std::fmt;
use std::sync::{Arc, Mutex, MutexGuard};
use std::time::Duration;

use jiff::Timestamp;
use madoguchi_jpki::{Crl, CrlSet, Policy, TrustAnchors};
use madoguchi_ports::BlobStore;
use serde::Serialize;

use crate::error::{ConfigError, FetchError};
use crate::fetch::{Fetched, Validator, fetch};
use crate::location::{CrlLocation, decode_crls};

/// Environment variable: comma-separated [`CrlLocation`]s.
pub const ENV_CRL_URLS: &str = "MADOGUCHI_JPKI_CRL_URLS";
/// Environment variable: [`CrlCacheConfig::max_age`] in seconds.
pub const ENV_CRL_MAX_AGE_SECS: &str = "MADOGUCHI_JPKI_CRL_MAX_AGE_SECS";

/// How the cache fetches and when it refreshes.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct CrlCacheConfig {
    /// Refetch after this long even when every CRL is still fresh, so that a revocation
    /// published before the nextUpdate of the held CRL is seen within this time. Default 1 h.
    pub max_age: Duration,
    /// After a refresh with a failed (or rejected) location, or one that still leaves a CRL
    /// past its nextUpdate, no refresh is started before this has passed. Default 30 s.
    pub retry_after: Duration,
    /// Limit for fetching one location, body included. Default 120 s (J-LIS CRLs are large).
    pub fetch_timeout: Duration,
    /// Largest body accepted from one location. Default 256 MiB.
    pub max_bytes: u64,
}

impl Default for CrlCacheConfig {
    fn default() -> Self {
        Self {
            max_age: Duration::from_secs(3600),
            retry_after: Duration::from_secs(30),
            fetch_timeout: Duration::from_secs(120),
            max_bytes: 256 * 1024 * 1024,
        }
    }
}

/// The cache's configuration as read from the environment.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct CrlSettings {
    /// From `MADOGUCHI_JPKI_CRL_URLS`.
    pub locations: Vec<CrlLocation>,
    /// Defaults, with `max_age` from `MADOGUCHI_JPKI_CRL_MAX_AGE_SECS` when set.
    pub config: CrlCacheConfig,
}

impl CrlSettings {
    /// Reads [`ENV_CRL_URLS`] (required, at least one location) and
    /// [`ENV_CRL_MAX_AGE_SECS`] (optional, a positive integer).
    pub fn from_env() -> Result<Self, ConfigError> {
        Self::from_vars(|name| std::env::var(name).ok())
    }

    /// As [`from_env`](Self::from_env), with variables looked up through `var` (tests, or a
    /// configuration source other than the process environment).
    pub fn from_vars(var: impl Fn(&str) -> Option<String>) -> Result<Self, ConfigError> {
        let urls = var(ENV_CRL_URLS).unwrap_or_default();
        let locations = CrlLocation::parse_list(&urls)?;
        if locations.is_empty() {
            return Err(ConfigError::MissingVar(ENV_CRL_URLS));
        }
        let mut config = CrlCacheConfig::default();
        if let Some(raw) = var(ENV_CRL_MAX_AGE_SECS).filter(|v| !v.trim().is_empty()) {
            let secs: u64 = raw.trim().parse().map_err(|_| ConfigError::InvalidVar {
                var: ENV_CRL_MAX_AGE_SECS,
                reason: format!("{raw:?} is not a whole number of seconds"),
            })?;
            if secs == 0 {
                // Zero would mean a full refetch on every verification.
                return Err(ConfigError::InvalidVar {
                    var: ENV_CRL_MAX_AGE_SECS,
                    reason: "must be at least 1".into(),
                });
            }
            config.max_age = Duration::from_secs(secs);
        }
        Ok(Self { locations, config })
    }
}

/// One CRL taken into the set.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct CrlInfo {
    /// The issuer's DN (RFC 4514).
    pub issuer: String,
    /// thisUpdate.
    pub this_update: Timestamp,
    /// nextUpdate.
    pub next_update: Option<Timestamp>,
    /// How many serials it lists.
    pub entries: usize,
}

impl CrlInfo {
    fn of(crl: &Crl) -> Self {
        Self {
            issuer: crl.issuer().to_owned(),
            this_update: crl.this_update(),
            next_update: crl.next_update(),
            entries: crl.len(),
        }
    }
}

/// A CRL that was read but not used: its signature does not verify against the trust
/// anchor named as its issuer (or no anchor has that name).
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct Rejection {
    /// The issuer the CRL claims.
    pub issuer: String,
    /// Why it was refused.
    pub reason: String,
}

/// What one location gave in a refresh.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
#[serde(tag = "status", rename_all = "snake_case")]
pub enum LocationStatus {
    /// New content was read; `accepted` CRLs joined the set, `rejected` ones did not.
    Fetched {
        /// CRLs whose signature verified (a CRL older than the one held for its issuer is
        /// accepted but the held one stays).
        accepted: Vec<CrlInfo>,
        /// CRLs refused.
        rejected: Vec<Rejection>,
    },
    /// The content is unchanged since it was last taken (HTTP 304, same blob etag).
    NotModified,
    /// Nothing could be read or decoded; what the location gave before stays in the set.
    Failed {
        /// Why.
        error: FetchError,
    },
}

/// One location's result.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct LocationOutcome {
    /// The location (URL credentials masked when serialised).
    pub location: CrlLocation,
    /// What it gave.
    #[serde(flatten)]
    pub status: LocationStatus,
}

impl LocationOutcome {
    /// Fetched with nothing rejected, or not modified.
    pub fn is_ok(&self) -> bool {
        match &self.status {
            LocationStatus::Fetched { rejected, .. } => rejected.is_empty(),
            LocationStatus::NotModified => true,
            LocationStatus::Failed { .. } => false,
        }
    }
}

/// The result of one refresh, per location in configuration order.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct RefreshOutcome {
    /// The `now` the refresh ran at.
    pub at: Timestamp,
    /// Per location.
    pub locations: Vec<LocationOutcome>,
    /// How many issuers have a CRL in the set after the refresh.
    pub issuers_held: usize,
}

impl RefreshOutcome {
    /// Whether every location is [`ok`](LocationOutcome::is_ok).
    pub fn all_ok(&self) -> bool {
        self.locations.iter().all(LocationOutcome::is_ok)
    }
}

/// Mirror of what the set holds per issuer (the set does not expose its CRLs), for the
/// refresh triggers.
#[derive(Debug, Clone, Copy)]
struct Held {
    this_update: Timestamp,
    next_update: Option<Timestamp>,
}

struct State {
    set: Arc<CrlSet>,
    held: HashMap<String, Held>,
    /// Per location: what identifies the content last taken from it.
    validators: Vec<Option<Validator>>,
    refreshed_at: Option<Timestamp>,
    last_failed: bool,
    retry_not_before: Option<Timestamp>,
    last_outcome: Option<RefreshOutcome>,
}

impl State {
    /// Whether `current` should refresh before answering.
    fn due(&self, now: Timestamp, max_age: Duration) -> bool {
        if self.retry_not_before.is_some_and(|t| now < t) {
            return false;
        }
        let Some(at) = self.refreshed_at else {
            return true;
        };
        self.last_failed || now >= add(at, max_age) || self.any_expired(now)
    }

    /// Some held CRL's nextUpdate is ≤ now. (A CRL without nextUpdate never triggers: it is
    /// never fresh, and refetching it on every call would not change that.)
    fn any_expired(&self, now: Timestamp) -> bool {
        self.held
            .values()
            .any(|h| h.next_update.is_some_and(|n| n <= now))
    }

    /// Every held CRL is fresh: answering with this set while another caller refreshes
    /// loses nothing.
    fn usable(&self, now: Timestamp) -> bool {
        !self.held.is_empty()
            && self
                .held
                .values()
                .all(|h| h.this_update <= now && h.next_update.is_some_and(|n| now < n))
    }
}

/// What one location's new content gave, once verified.
struct Taken {
    index: usize,
    accepted: Vec<CrlInfo>,
    rejected: Vec<Rejection>,
    validator: Option<Validator>,
}

fn add(t: Timestamp, d: Duration) -> Timestamp {
    t.checked_add(d).unwrap_or(Timestamp::MAX)
}

/// Verified CRLs from the configured locations, refreshed on demand.
///
/// Share one cache per process (`Arc<CrlCache>`); on Lambda it lives across invocations of
/// a warm execution environment. Time is the caller's `now` throughout (the clock port),
/// so tests move time by passing a later `now`.
///
/// Refresh rules ([`current`](Self::current)):
/// - refresh when nothing was loaded yet, when `max_age` has passed since the last refresh,
///   when a held CRL's nextUpdate is ≤ now, or when a location failed last time;
/// - but never before `retry_after` has passed since a refresh that failed or left a CRL past
///   its nextUpdate (a J-LIS CRL published late must not turn every call into a fetch);
/// - one refresh at a time: concurrent callers wait for it and use its result, except that a
///   caller answers at once with the held set when every CRL in it is still fresh;
/// - a location that fails or serves a CRL that does not verify leaves what it gave before
///   in the set.
///
/// A refresh runs inside the calling future; if that future is dropped (a request timeout),
/// the refresh stops and the next caller starts again.
pub struct CrlCache {
    locations: Vec<CrlLocation>,
    anchors: Arc<TrustAnchors>,
    policy: Policy,
    blobs: Option<Arc<dyn BlobStore>>,
    config: CrlCacheConfig,
    http: reqwest::Client,
    state: Mutex<State>,
    refreshing: tokio::sync::Mutex<()>,
}

impl fmt::Debug for CrlCache {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("CrlCache")
            .field("locations", &self.locations)
            .field("config", &self.config)
            .field("anchors", &self.anchors.len())
            .finish_non_exhaustive()
    }
}

impl CrlCache {
    /// A cache over `locations`; nothing is fetched until the first [`current`](Self::current)
    /// or [`refresh`](Self::refresh). CRLs are verified against `anchors` with `policy` (the
    /// same the signatures are verified with). `blobs` serves the `blob:` locations; it is
    /// required when there is one.
    pub fn new(
        locations: Vec<CrlLocation>,
        anchors: Arc<TrustAnchors>,
        policy: Policy,
        blobs: Option<Arc<dyn BlobStore>>,
        config: CrlCacheConfig,
    ) -> Result<Self, ConfigError> {
        if blobs.is_none()
            && let Some(loc) = locations.iter().find(|l| matches!(l, CrlLocation::Blob(_)))
        {
            return Err(ConfigError::NoBlobStore(loc.to_string()));
        }
        // The overall limit is `fetch_timeout` around each location (blob and file reads
        // too); connecting gets a shorter one so that a dead host fails fast.
        let http = reqwest::Client::builder()
            .connect_timeout(config.fetch_timeout.min(Duration::from_secs(10)))
            .user_agent(concat!("madoguchi-revocation/", env!("CARGO_PKG_VERSION")))
            .build()
            .map_err(|e| ConfigError::HttpClient(e.to_string()))?;
        let state = State {
            set: Arc::new(CrlSet::new()),
            held: HashMap::new(),
            validators: vec![None; locations.len()],
            refreshed_at: None,
            last_failed: false,
            retry_not_before: None,
            last_outcome: None,
        };
        Ok(Self {
            locations,
            anchors,
            policy,
            blobs,
            config,
            http,
            state: Mutex::new(state),
            refreshing: tokio::sync::Mutex::new(()),
        })
    }

    /// The configured locations.
    pub fn locations(&self) -> &[CrlLocation] {
        &self.locations
    }

    /// The configuration.
    pub fn config(&self) -> &CrlCacheConfig {
        &self.config
    }

    /// The outcome of the last refresh, if any (for an ops endpoint; fetches nothing).
    pub fn last_outcome(&self) -> Option<RefreshOutcome> {
        self.lock().last_outcome.clone()
    }

    /// The set to verify with at `now`, refreshed first when due (see the type's rules).
    /// Never fails: without usable CRLs the set is empty or stale, and verification answers
    /// TRY_LATER.
    pub async fn current(&self, now: Timestamp) -> Arc<CrlSet> {
        let usable = {
            let state = self.lock();
            if !state.due(now, self.config.max_age) {
                return state.set.clone();
            }
            state.usable(now)
        };
        let _guard = match self.refreshing.try_lock() {
            Ok(guard) => guard,
            // Someone is refreshing: a set that is still fresh is as good as the next one
            // for this call, and waiting could mean waiting for a large download.
            Err(_) if usable => return self.lock().set.clone(),
            Err(_) => self.refreshing.lock().await,
        };
        // The refresh we waited for may have done the work (or started a back-off).
        {
            let state = self.lock();
            if !state.due(now, self.config.max_age) {
                return state.set.clone();
            }
        }
        self.refresh_locked(now).await;
        self.lock().set.clone()
    }

    /// Fetches every location now, whatever the refresh rules say (for an ops endpoint and
    /// tests), after any refresh in progress. Updates the set as [`current`](Self::current)
    /// would.
    pub async fn refresh(&self, now: Timestamp) -> RefreshOutcome {
        let _guard = self.refreshing.lock().await;
        self.refresh_locked(now).await
    }

    fn lock(&self) -> MutexGuard<'_, State> {
        // The state is replaced field by field without awaiting or panicking code between;
        // a poisoned lock still holds a consistent state.
        self.state.lock().unwrap_or_else(|e| e.into_inner())
    }

    /// One refresh; the caller holds `refreshing`.
    async fn refresh_locked(&self, now: Timestamp) -> RefreshOutcome {
        let (old_set, validators) = {
            let state = self.lock();
            (state.set.clone(), state.validators.clone())
        };

        // Fetch and parse location by location, so that only one raw body is in memory.
        let mut statuses: Vec<Option<LocationStatus>> = vec![None; self.locations.len()];
        let mut parsed: Vec<(usize, Vec<Crl>, Option<Validator>)> = Vec::new();
        for (i, location) in self.locations.iter().enumerate() {
            let fetched = tokio::time::timeout(
                self.config.fetch_timeout,
                fetch(
                    location,
                    &self.http,
                    self.blobs.as_deref(),
                    validators[i].as_ref(),
                    self.config.max_bytes,
                ),
            )
            .await
            .unwrap_or(Err(FetchError::Timeout));
            match fetched {
                Ok(Fetched::NotModified) => {
                    tracing::debug!(location = %location, "CRL not modified");
                    statuses[i] = Some(LocationStatus::NotModified);
                }
                Ok(Fetched::Body { bytes, validator }) => {
                    let size = bytes.len();
                    // Parsing a large CRL takes CPU time; keep it off the async workers.
                    let decoded = tokio::task::spawn_blocking(move || decode_crls(&bytes))
                        .await
                        .unwrap_or_else(|_| Err(FetchError::Decode("decoding panicked".into())));
                    match decoded {
                        Ok(crls) => {
                            tracing::debug!(location = %location, bytes = size, crls = crls.len(), "CRL read");
                            parsed.push((i, crls, validator));
                        }
                        Err(error) => statuses[i] = Some(LocationStatus::Failed { error }),
                    }
                }
                Err(error) => statuses[i] = Some(LocationStatus::Failed { error }),
            }
        }

        // Verify and merge into a copy of the held set: locations that failed or did not
        // change keep what they gave before, and a newer CRL per issuer wins. (Callers may
        // still hold the old set, so it cannot be changed in place; the copy costs its memory
        // once more until they drop it.)
        let mut taken: Vec<Taken> = Vec::new();
        let mut set = old_set.clone();
        if !parsed.is_empty() {
            let indexes: Vec<usize> = parsed.iter().map(|(i, _, _)| *i).collect();
            let anchors = self.anchors.clone();
            let policy = self.policy.clone();
            let merged = tokio::task::spawn_blocking(move || {
                let mut set = CrlSet::clone(&old_set);
                let taken: Vec<_> = parsed
                    .into_iter()
                    .map(|(i, crls, validator)| {
                        let (mut accepted, mut rejected) = (Vec::new(), Vec::new());
                        for crl in crls {
                            let info = CrlInfo::of(&crl);
                            match set.insert(crl, &anchors, &policy) {
                                Ok(()) => accepted.push(info),
                                Err(e) => rejected.push(Rejection {
                                    issuer: info.issuer,
                                    reason: e.to_string(),
                                }),
                            }
                        }
                        Taken {
                            index: i,
                            accepted,
                            rejected,
                            validator,
                        }
                    })
                    .collect();
                (Arc::new(set), taken)
            })
            .await;
            match merged {
                Ok((merged_set, merged_taken)) => {
                    set = merged_set;
                    taken = merged_taken;
                }
                Err(_) => {
                    for i in indexes {
                        statuses[i] = Some(LocationStatus::Failed {
                            error: FetchError::Decode("verifying the CRLs panicked".into()),
                        });
                    }
                }
            }
        }

        let mut state = self.lock();
        for Taken {
            index: i,
            accepted,
            rejected,
            validator,
        } in taken
        {
            for info in &accepted {
                let newer = Held {
                    this_update: info.this_update,
                    next_update: info.next_update,
                };
                // Same rule as CrlSet::insert: the held CRL stays only when it is newer.
                state
                    .held
                    .entry(info.issuer.clone())
                    .and_modify(|h| {
                        if h.this_update <= newer.this_update {
                            *h = newer;
                        }
                    })
                    .or_insert(newer);
            }
            // After a rejection, read the whole content again next time rather than trust
            // "not modified" for content that was not (all) taken.
            state.validators[i] = if rejected.is_empty() { validator } else { None };
            statuses[i] = Some(LocationStatus::Fetched { accepted, rejected });
        }
        let locations: Vec<LocationOutcome> = self
            .locations
            .iter()
            .zip(statuses)
            .map(|(location, status)| LocationOutcome {
                location: location.clone(),
                status: status.unwrap_or(LocationStatus::Failed {
                    error: FetchError::Decode("not processed".into()),
                }),
            })
            .collect();
        log_outcome(&locations);

        let failed = !locations.iter().all(LocationOutcome::is_ok);
        let expired = state.any_expired(now);
        if expired {
            tracing::warn!(
                "a held CRL is past its nextUpdate after the refresh; verifications answer \
                 TRY_LATER until a newer one is published"
            );
        }
        state.set = set;
        state.refreshed_at = Some(now);
        state.last_failed = failed;
        state.retry_not_before = (failed || expired).then(|| add(now, self.config.retry_after));
        let outcome = RefreshOutcome {
            at: now,
            locations,
            issuers_held: state.held.len(),
        };
        state.last_outcome = Some(outcome.clone());
        outcome
    }
}

fn log_outcome(locations: &[LocationOutcome]) {
    for LocationOutcome { location, status } in locations {
        match status {
            LocationStatus::Fetched { accepted, rejected } => {
                for crl in accepted {
                    tracing::info!(
                        location = %location,
                        issuer = %crl.issuer,
                        this_update = %crl.this_update,
                        next_update = ?crl.next_update,
                        entries = crl.entries,
                        "CRL taken"
                    );
                }
                for r in rejected {
                    tracing::warn!(
                        location = %location,
                        issuer = %r.issuer,
                        reason = %r.reason,
                        "CRL rejected, not used"
                    );
                }
            }
            LocationStatus::NotModified => {}
            LocationStatus::Failed { error } => tracing::warn!(
                location = %location,
                error = %error,
                "CRL fetch failed; keeping the previous CRLs"
            ),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn vars<'a>(pairs: &'a [(&'a str, &'a str)]) -> impl Fn(&str) -> Option<String> + 'a {
        move |name| {
            pairs
                .iter()
                .find(|(k, _)| *k == name)
                .map(|(_, v)| (*v).to_owned())
        }
    }

    #[test]
    fn settings_from_variables() {
        let s = CrlSettings::from_vars(vars(&[
            (
                ENV_CRL_URLS,
                "https://crl.example.jp/a.crl, blob:jpki/b.der",
            ),
            (ENV_CRL_MAX_AGE_SECS, "600"),
        ]))
        .unwrap();
        assert_eq!(s.locations.len(), 2);
        assert_eq!(s.config.max_age, Duration::from_secs(600));
        assert_eq!(s.config.retry_after, CrlCacheConfig::default().retry_after);

        let s = CrlSettings::from_vars(vars(&[(ENV_CRL_URLS, "file:/x.pem")])).unwrap();
        assert_eq!(s.config, CrlCacheConfig::default());
        assert_eq!(s.config.max_age, Duration::from_secs(3600));
    }

    #[test]
    fn bad_settings_are_refused() {
        assert_eq!(
            CrlSettings::from_vars(vars(&[])).unwrap_err(),
            ConfigError::MissingVar(ENV_CRL_URLS)
        );
        assert_eq!(
            CrlSettings::from_vars(vars(&[(ENV_CRL_URLS, " , ")])).unwrap_err(),
            ConfigError::MissingVar(ENV_CRL_URLS)
        );
        assert!(matches!(
            CrlSettings::from_vars(vars(&[(ENV_CRL_URLS, "ldap://x")])).unwrap_err(),
            ConfigError::UnknownScheme(_)
        ));
        for bad in ["0", "-5", "1h", "1.5"] {
            assert!(matches!(
                CrlSettings::from_vars(vars(&[
                    (ENV_CRL_URLS, "file:/x"),
                    (ENV_CRL_MAX_AGE_SECS, bad)
                ]))
                .unwrap_err(),
                ConfigError::InvalidVar { .. }
            ));
        }
    }

    #[test]
    fn blob_locations_need_a_store() {
        let err = CrlCache::new(
            vec![CrlLocation::parse("blob:jpki/crl.der").unwrap()],
            Arc::new(TrustAnchors::default()),
            Policy::default(),
            None,
            CrlCacheConfig::default(),
        )
        .unwrap_err();
        assert_eq!(err, ConfigError::NoBlobStore("blob:jpki/crl.der".into()));
    }
}
