//! Per-tenant QR keys: data keys of the keys port (KMS in AWS), stored wrapped in the item
//! store, rotatable and retirable; unwrapped keys cached in memory for a bounded time.
//!
//! Items (partition `<tenant>#QRKEY`):
//! - `CURRENT`: `{"kid": n}`, the key new codes are sealed under; its version is bumped by
//!   every rotation (a conditional write, so two rotations cannot both win).
//! - `KID#00001` …: `{"kid", "wrapped" (base64), "created_at", "retired_at"}`. A retired
//!   key stays stored, so that its codes get "retired key" rather than "unknown key".
//!
//! Key ids are 1, 2, 3 … per tenant (u16 on the wire). Each wrapped key is bound to the
//! encryption context `{tenant, purpose: "qr-seal", kid}`, so a stored record moved to another
//! tenant or kid does not unwrap.

use std::collections::HashMap;
use std::sync::{Arc, Mutex};

use base64::Engine;
use base64::engine::general_purpose::STANDARD;
use jiff::{SignedDuration, Timestamp};
use madoguchi_domain::tenant::TenantId;
use madoguchi_ports::{
    Clock, Condition, EncryptionContext, Item, ItemStore, Key, Keys, PortError, QueryRequest,
    SortKeyCondition, TxOp, query_all,
};
use serde::{Deserialize, Serialize};

use crate::model::PreApplication;
use crate::seal::{
    KeyState, OpenError, Opened, QrKey, SealError, Sealed, Validity, open_sealed, parse, seal,
};

/// Purpose in the encryption context of QR keys.
pub const QR_KEY_PURPOSE: &str = "qr-seal";
/// How long an unwrapped key (and the tenant's current key id) is used before it is read and
/// unwrapped again: bounds both key material in memory and how long another instance's
/// rotation or retirement takes to be seen here.
pub const DEFAULT_CACHE_TTL: SignedDuration = SignedDuration::from_secs(5 * 60);
const CURRENT_SK: &str = "CURRENT";
const KID_PREFIX: &str = "KID#";

/// The partition of a tenant's QR keys.
pub fn qr_key_pk(tenant: &TenantId) -> String {
    tenant.key(&["QRKEY"])
}

fn kid_sk(kid: u16) -> String {
    format!("{KID_PREFIX}{kid:05}")
}

fn context(tenant: &TenantId, kid: u16) -> EncryptionContext {
    EncryptionContext::new(tenant.as_str(), QR_KEY_PURPOSE).with("kid", &kid.to_string())
}

#[derive(Debug, Serialize, Deserialize)]
struct KeyRecord {
    kid: u16,
    wrapped: String,
    created_at: Timestamp,
    #[serde(default)]
    retired_at: Option<Timestamp>,
}

#[derive(Debug, Serialize, Deserialize)]
struct CurrentRecord {
    kid: u16,
}

/// One key as [`QrKeyring::list`] shows it (no key material).
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct KeyInfo {
    pub kid: u16,
    pub current: bool,
    pub created_at: Timestamp,
    pub retired_at: Option<Timestamp>,
}

#[derive(Debug, thiserror::Error)]
pub enum KeyringError {
    #[error(transparent)]
    Port(#[from] PortError),
    #[error("unknown key id {kid}")]
    UnknownKey { kid: u16 },
    #[error("key id {kid} is the current key; rotate before retiring it")]
    CurrentKey { kid: u16 },
    #[error("the tenant has used every key id")]
    Exhausted,
    #[error("a stored QR key record does not parse")]
    Corrupt,
}

enum Cached {
    Active(Arc<QrKey>),
    Retired,
}

struct Entry<T> {
    value: T,
    loaded_at: Timestamp,
}

/// The QR keys of every tenant, over the item store and the keys port.
pub struct QrKeyring {
    items: Arc<dyn ItemStore>,
    keys: Arc<dyn Keys>,
    clock: Arc<dyn Clock>,
    ttl: SignedDuration,
    keys_cache: Mutex<HashMap<(TenantId, u16), Entry<Cached>>>,
    current_cache: Mutex<HashMap<TenantId, Entry<u16>>>,
}

impl std::fmt::Debug for QrKeyring {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("QrKeyring")
            .field("ttl", &self.ttl)
            .finish_non_exhaustive()
    }
}

impl QrKeyring {
    pub fn new(items: Arc<dyn ItemStore>, keys: Arc<dyn Keys>, clock: Arc<dyn Clock>) -> Self {
        Self {
            items,
            keys,
            clock,
            ttl: DEFAULT_CACHE_TTL,
            keys_cache: Mutex::new(HashMap::new()),
            current_cache: Mutex::new(HashMap::new()),
        }
    }

    /// Sets how long unwrapped keys stay cached (zero: no caching).
    pub fn with_cache_ttl(mut self, ttl: SignedDuration) -> Self {
        self.ttl = ttl;
        self
    }

    fn fresh(&self, loaded_at: Timestamp) -> bool {
        self.clock.now().duration_since(loaded_at) < self.ttl
    }

    /// The tenant's current key, created on first use.
    pub async fn current(&self, tenant: &TenantId) -> Result<Arc<QrKey>, KeyringError> {
        let cached = lock(&self.current_cache)
            .get(tenant)
            .filter(|e| self.fresh(e.loaded_at))
            .map(|e| e.value);
        let kid = match cached {
            Some(kid) => kid,
            None => match self.read_current(tenant).await? {
                Some((kid, _)) => kid,
                None => self.create_first(tenant).await?,
            },
        };
        lock(&self.current_cache).insert(
            *tenant,
            Entry {
                value: kid,
                loaded_at: self.clock.now(),
            },
        );
        match self.lookup(tenant, kid).await? {
            Some(Cached::Active(key)) => Ok(key),
            // CURRENT names a key that is missing or retired: the table was changed by hand.
            _ => Err(KeyringError::Corrupt),
        }
    }

    /// Makes a new key current. Codes sealed under older keys still open until retired.
    /// If another instance rotates at the same moment, one rotation wins and both callers
    /// get the key that is current afterwards.
    pub async fn rotate(&self, tenant: &TenantId) -> Result<Arc<QrKey>, KeyringError> {
        let Some((kid, version)) = self.read_current(tenant).await? else {
            let kid = self.create_first(tenant).await?;
            return self.active(tenant, kid).await;
        };
        let next = kid.checked_add(1).ok_or(KeyringError::Exhausted)?;
        let record = self.new_record(tenant, next).await?;
        let mut current = Item::new(
            Key::new(qr_key_pk(tenant), CURRENT_SK),
            to_json(&CurrentRecord { kid: next })?,
        );
        current.version = version + 1;
        let outcome = self
            .items
            .transact(vec![
                TxOp::Put(record, Condition::NotExists),
                TxOp::Put(current, Condition::VersionEquals(version)),
            ])
            .await;
        lock(&self.current_cache).remove(tenant);
        match outcome {
            Ok(()) => {}
            Err(PortError::ConditionFailed { .. }) => {}
            Err(e) => return Err(e.into()),
        }
        self.current(tenant).await
    }

    /// Retires a key: codes sealed under it are refused from now on (in other instances,
    /// once their cache entry ages out). The current key cannot be retired; rotate first.
    pub async fn retire(&self, tenant: &TenantId, kid: u16) -> Result<(), KeyringError> {
        if let Some((current, _)) = self.read_current(tenant).await?
            && current == kid
        {
            return Err(KeyringError::CurrentKey { kid });
        }
        let key = Key::new(qr_key_pk(tenant), kid_sk(kid));
        let item = self
            .items
            .get(&key)
            .await?
            .ok_or(KeyringError::UnknownKey { kid })?;
        let mut record: KeyRecord = from_json(&item)?;
        if record.retired_at.is_none() {
            record.retired_at = Some(self.clock.now());
            let mut updated = Item::new(key, to_json(&record)?);
            updated.version = item.version + 1;
            match self
                .items
                .put(updated, Condition::VersionEquals(item.version))
                .await
            {
                // Someone else changed it at the same time (retired it too: nothing else
                // changes a key record).
                Ok(()) | Err(PortError::ConditionFailed { .. }) => {}
                Err(e) => return Err(e.into()),
            }
        }
        lock(&self.keys_cache).insert(
            (*tenant, kid),
            Entry {
                value: Cached::Retired,
                loaded_at: self.clock.now(),
            },
        );
        Ok(())
    }

    /// The tenant's keys in key-id order.
    pub async fn list(&self, tenant: &TenantId) -> Result<Vec<KeyInfo>, KeyringError> {
        let current = self.read_current(tenant).await?.map(|(kid, _)| kid);
        let items = query_all(
            self.items.as_ref(),
            QueryRequest::partition(qr_key_pk(tenant))
                .sk(SortKeyCondition::BeginsWith(KID_PREFIX.to_owned())),
            usize::from(u16::MAX),
        )
        .await?;
        items
            .iter()
            .map(|item| {
                let r: KeyRecord = from_json(item)?;
                Ok(KeyInfo {
                    kid: r.kid,
                    current: current == Some(r.kid),
                    created_at: r.created_at,
                    retired_at: r.retired_at,
                })
            })
            .collect()
    }

    /// Seals under the tenant's current key (created on first use).
    pub async fn seal(
        &self,
        app: &PreApplication,
        validity: Validity,
    ) -> Result<Sealed, KeyringSealError> {
        let key = self.current(&app.tenant).await?;
        Ok(seal(&key, validity, app)?)
    }

    /// Opens a scanned text at the counter of `counter_tenant`, now by the clock port.
    pub async fn open(&self, counter_tenant: &TenantId, text: &str) -> Result<Opened, OpenError> {
        let code = parse(text)?;
        let header = *code.header();
        if header.tenant != *counter_tenant {
            return Err(OpenError::OtherTenant {
                tenant: header.tenant,
            });
        }
        let state = self
            .lookup(&header.tenant, header.kid)
            .await
            .map_err(|e| match e {
                // A record that does not parse or unwrap (moved from another tenant or kid)
                // cannot open anything: no retry will help.
                KeyringError::Port(PortError::DecryptionRefused) | KeyringError::Corrupt => {
                    OpenError::UnknownKey { kid: header.kid }
                }
                KeyringError::Port(p) => OpenError::KeyStore(p),
                _ => OpenError::UnknownKey { kid: header.kid },
            })?;
        let state = match &state {
            Some(Cached::Active(k)) => KeyState::Active(k),
            Some(Cached::Retired) => KeyState::Retired,
            None => KeyState::Unknown,
        };
        open_sealed(&code, state, counter_tenant, self.clock.now())
    }

    async fn active(&self, tenant: &TenantId, kid: u16) -> Result<Arc<QrKey>, KeyringError> {
        match self.lookup(tenant, kid).await? {
            Some(Cached::Active(k)) => Ok(k),
            _ => Err(KeyringError::Corrupt),
        }
    }

    /// The key's state from the cache, or read and unwrapped. `None`: no such key.
    async fn lookup(&self, tenant: &TenantId, kid: u16) -> Result<Option<Cached>, KeyringError> {
        if let Some(e) = lock(&self.keys_cache).get(&(*tenant, kid))
            && self.fresh(e.loaded_at)
        {
            return Ok(Some(match &e.value {
                Cached::Active(k) => Cached::Active(k.clone()),
                Cached::Retired => Cached::Retired,
            }));
        }
        // Unknown kids are not cached: a key another instance just created must open at once.
        let Some(item) = self
            .items
            .get(&Key::new(qr_key_pk(tenant), kid_sk(kid)))
            .await?
        else {
            return Ok(None);
        };
        let record: KeyRecord = from_json(&item)?;
        if record.kid != kid {
            return Err(KeyringError::Corrupt);
        }
        let value = if record.retired_at.is_some() {
            Cached::Retired
        } else {
            let wrapped = STANDARD
                .decode(&record.wrapped)
                .map_err(|_| KeyringError::Corrupt)?;
            let secret = self
                .keys
                .unwrap_data_key(&wrapped, &context(tenant, kid))
                .await?;
            Cached::Active(Arc::new(QrKey::new(*tenant, kid, secret)))
        };
        let out = match &value {
            Cached::Active(k) => Cached::Active(k.clone()),
            Cached::Retired => Cached::Retired,
        };
        let mut cache = lock(&self.keys_cache);
        // Bounded: drop whatever has aged out whenever something is added.
        let now = self.clock.now();
        cache.retain(|_, e| now.duration_since(e.loaded_at) < self.ttl);
        cache.insert(
            (*tenant, kid),
            Entry {
                value,
                loaded_at: now,
            },
        );
        Ok(Some(out))
    }

    async fn read_current(&self, tenant: &TenantId) -> Result<Option<(u16, u64)>, KeyringError> {
        let Some(item) = self
            .items
            .get(&Key::new(qr_key_pk(tenant), CURRENT_SK))
            .await?
        else {
            return Ok(None);
        };
        let record: CurrentRecord = from_json(&item)?;
        Ok(Some((record.kid, item.version)))
    }

    async fn new_record(&self, tenant: &TenantId, kid: u16) -> Result<Item, KeyringError> {
        let fresh = self.keys.generate_data_key(&context(tenant, kid)).await?;
        let record = KeyRecord {
            kid,
            wrapped: STANDARD.encode(&fresh.wrapped),
            created_at: self.clock.now(),
            retired_at: None,
        };
        Ok(Item::new(
            Key::new(qr_key_pk(tenant), kid_sk(kid)),
            to_json(&record)?,
        ))
    }

    /// Creates key 1 and `CURRENT`; if another instance did so first, uses theirs.
    async fn create_first(&self, tenant: &TenantId) -> Result<u16, KeyringError> {
        let record = self.new_record(tenant, 1).await?;
        let current = Item::new(
            Key::new(qr_key_pk(tenant), CURRENT_SK),
            to_json(&CurrentRecord { kid: 1 })?,
        );
        match self
            .items
            .transact(vec![
                TxOp::Put(record, Condition::NotExists),
                TxOp::Put(current, Condition::NotExists),
            ])
            .await
        {
            Ok(()) => Ok(1),
            Err(PortError::ConditionFailed { .. }) => self
                .read_current(tenant)
                .await?
                .map(|(kid, _)| kid)
                .ok_or(KeyringError::Corrupt),
            Err(e) => Err(e.into()),
        }
    }
}

/// Sealing through the keyring: a key problem or a sealing problem.
#[derive(Debug, thiserror::Error)]
pub enum KeyringSealError {
    #[error(transparent)]
    Keyring(#[from] KeyringError),
    #[error(transparent)]
    Seal(#[from] SealError),
}

fn lock<T>(m: &Mutex<T>) -> std::sync::MutexGuard<'_, T> {
    // A panic elsewhere while holding the lock leaves only a cache behind: keep using it.
    m.lock().unwrap_or_else(std::sync::PoisonError::into_inner)
}

fn to_json<T: Serialize>(v: &T) -> Result<serde_json::Value, KeyringError> {
    serde_json::to_value(v).map_err(|_| KeyringError::Corrupt)
}

fn from_json<T: for<'de> Deserialize<'de>>(item: &Item) -> Result<T, KeyringError> {
    serde_json::from_value(item.data.clone()).map_err(|_| KeyringError::Corrupt)
}
