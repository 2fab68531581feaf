//! A small bounded cache of plain data keys with single-flight loading.
//!
//! - An entry is fresh while its age is below `max_age` (by the injected [`Clock`]; a clock
//!   that went backwards makes it stale, never fresher) and, when uses are counted, while it
//!   has served fewer than `max_uses` operations.
//! - At most `max_entries` entries: stale ones are dropped at every access, then the least
//!   recently used one goes.
//! - Loading is single-flight per cache key: callers that miss while a load for the same key
//!   is running wait for it instead of calling KMS themselves. A failed load is handed to the
//!   callers that waited for it (one KMS error per wave, not one per caller) and is not cached.
//! - Plain keys live in `Zeroizing` inside an `Arc`: the bytes are wiped when the last holder
//!   (the cache entry, or an operation still using it) lets go.

use std::collections::HashMap;
use std::fmt;
use std::hash::Hash;
use std::sync::{Arc, Mutex, MutexGuard};

use jiff::{SignedDuration, Timestamp};
use madoguchi_ports::{Clock, PortError, PortResult};
use tokio::sync::OnceCell;
use zeroize::Zeroizing;

/// A plain data key and its wrapped (KMS ciphertext) form.
pub(crate) struct CachedKey {
    pub(crate) plaintext: Zeroizing<[u8; 32]>,
    pub(crate) wrapped: Vec<u8>,
}

impl fmt::Debug for CachedKey {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("CachedKey")
            .field("plaintext", &"<redacted>")
            .field("wrapped_len", &self.wrapped.len())
            .finish()
    }
}

/// What a lookup gave: the key, and whether this caller loaded it (a cache miss it served).
pub(crate) struct Got {
    pub(crate) key: Arc<CachedKey>,
    pub(crate) loaded: bool,
}

/// The outcome of one load, shared with the callers that waited for it.
type Flight = Arc<OnceCell<Result<Arc<CachedKey>, PortError>>>;

struct Entry {
    key: Arc<CachedKey>,
    created: Timestamp,
    uses: u32,
    last_used: u64,
}

struct State<K> {
    entries: HashMap<K, Entry>,
    flights: HashMap<K, Flight>,
    /// Logical time for least-recently-used eviction.
    tick: u64,
}

pub(crate) struct KeyCache<K> {
    state: Mutex<State<K>>,
    clock: Arc<dyn Clock>,
    max_age: SignedDuration,
    /// `None`: uses are not counted (keys cached for decryption).
    max_uses: Option<u32>,
    max_entries: usize,
}

impl<K> fmt::Debug for KeyCache<K> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("KeyCache")
            .field("entries", &self.lock().entries.len())
            .field("max_age", &self.max_age)
            .field("max_uses", &self.max_uses)
            .field("max_entries", &self.max_entries)
            .finish()
    }
}

/// A copy of a port error for the callers that waited on a shared load (`PortError` is not
/// `Clone`; its variants carry no personal data, so copying them is safe).
fn copy_error(e: &PortError) -> PortError {
    match e {
        PortError::ConditionFailed { index } => PortError::ConditionFailed { index: *index },
        PortError::NotFound => PortError::NotFound,
        PortError::Invalid(m) => PortError::Invalid(m.clone()),
        PortError::DecryptionRefused => PortError::DecryptionRefused,
        PortError::Unavailable(m) => PortError::Unavailable(m.clone()),
        PortError::Backend(m) => PortError::Backend(m.clone()),
    }
}

impl<K> KeyCache<K> {
    fn lock(&self) -> MutexGuard<'_, State<K>> {
        // The state stays consistent across a panic (every update is a single insert or
        // remove), so a poisoned lock is still usable.
        self.state.lock().unwrap_or_else(|e| e.into_inner())
    }
}

impl<K: Hash + Eq + Clone> KeyCache<K> {
    pub(crate) fn new(
        clock: Arc<dyn Clock>,
        max_age: std::time::Duration,
        max_uses: Option<u32>,
        max_entries: usize,
    ) -> Self {
        Self {
            state: Mutex::new(State {
                entries: HashMap::new(),
                flights: HashMap::new(),
                tick: 0,
            }),
            clock,
            max_age: SignedDuration::try_from(max_age).unwrap_or(SignedDuration::MAX),
            max_uses,
            max_entries,
        }
    }

    fn is_fresh(&self, entry: &Entry, now: Timestamp) -> bool {
        let age = now.duration_since(entry.created);
        age >= SignedDuration::ZERO
            && age < self.max_age
            && self.max_uses.is_none_or(|max| entry.uses < max)
    }

    /// Drops every stale entry (their keys are zeroized once no operation holds them).
    fn purge(&self, state: &mut State<K>, now: Timestamp) {
        state.entries.retain(|_, e| self.is_fresh(e, now));
    }

    /// A fresh cached key, counting one use.
    fn take(&self, key: &K) -> Option<Arc<CachedKey>> {
        let now = self.clock.now();
        let mut state = self.lock();
        self.purge(&mut state, now);
        state.tick += 1;
        let tick = state.tick;
        let entry = state.entries.get_mut(key)?;
        entry.uses = entry.uses.saturating_add(1);
        entry.last_used = tick;
        Some(entry.key.clone())
    }

    /// Caches a key just loaded; the loading operation counts as its first use.
    pub(crate) fn insert(&self, key: K, value: Arc<CachedKey>) {
        let now = self.clock.now();
        let mut state = self.lock();
        state.tick += 1;
        let entry = Entry {
            key: value,
            created: now,
            uses: u32::from(self.max_uses.is_some()),
            last_used: state.tick,
        };
        if self.is_fresh(&entry, now) {
            state.entries.insert(key, entry);
        } else {
            state.entries.remove(&key);
        }
        self.purge(&mut state, now);
        while state.entries.len() > self.max_entries {
            let Some(oldest) = state
                .entries
                .iter()
                .min_by_key(|(_, e)| e.last_used)
                .map(|(k, _)| k.clone())
            else {
                break;
            };
            state.entries.remove(&oldest);
        }
    }

    /// The cached key for `key`, or the one `load` returns. Concurrent misses on the same key
    /// share one call of `load`.
    pub(crate) async fn get_or_load<F, Fut>(&self, key: &K, load: F) -> PortResult<Got>
    where
        F: FnOnce() -> Fut,
        Fut: Future<Output = PortResult<CachedKey>>,
    {
        let mut load = Some(load);
        loop {
            if let Some(found) = self.take(key) {
                return Ok(Got {
                    key: found,
                    loaded: false,
                });
            }
            let flight: Flight = self.lock().flights.entry(key.clone()).or_default().clone();
            let mut led = false;
            let outcome = flight
                .get_or_init(|| {
                    led = true;
                    // A caller leads at most once: leading always returns below.
                    let load = load.take().expect("a caller leads one load at most");
                    self.lead(key, flight.clone(), load)
                })
                .await;
            match outcome {
                Ok(value) if led => {
                    return Ok(Got {
                        key: value.clone(),
                        loaded: true,
                    });
                }
                // Someone else loaded it: take it through the cache so that this use is
                // counted against the key's limit like any other.
                Ok(_) => continue,
                Err(e) => return Err(copy_error(e)),
            }
        }
    }

    async fn lead<F, Fut>(
        &self,
        key: &K,
        flight: Flight,
        load: F,
    ) -> Result<Arc<CachedKey>, PortError>
    where
        F: FnOnce() -> Fut,
        Fut: Future<Output = PortResult<CachedKey>>,
    {
        // Removes this flight from the map however the load ends (done, failed, cancelled), so
        // the next miss starts a new one.
        let _landed = Landed {
            cache: self,
            key,
            flight,
        };
        let value = Arc::new(load().await?);
        self.insert(key.clone(), value.clone());
        Ok(value)
    }

    /// Drops every cached key now.
    pub(crate) fn clear(&self) {
        self.lock().entries.clear();
    }

    #[cfg(test)]
    pub(crate) fn len(&self) -> usize {
        self.lock().entries.len()
    }
}

struct Landed<'a, K: Hash + Eq> {
    cache: &'a KeyCache<K>,
    key: &'a K,
    flight: Flight,
}

impl<K: Hash + Eq> Drop for Landed<'_, K> {
    fn drop(&mut self) {
        let mut state = self.cache.lock();
        if state
            .flights
            .get(self.key)
            .is_some_and(|f| Arc::ptr_eq(f, &self.flight))
        {
            state.flights.remove(self.key);
        }
    }
}
