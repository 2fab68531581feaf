//! Typed ids over UUID version 7.
//!
//! Version 7 ids start with a millisecond timestamp, so item-store sort keys built
//! from them list records in creation order. A typed wrapper keeps an application
//! id from being passed where a form id is expected. Generating ids needs a clock
//! and randomness, so the generator lives in the ports crate; this crate only
//! wraps and validates.

use std::cmp::Ordering;
use std::fmt;
use std::hash::{Hash, Hasher};
use std::marker::PhantomData;
use std::str::FromStr;

use serde::{Deserialize, Deserializer, Serialize, Serializer};
use uuid::Uuid;

use crate::error::DomainError;

/// Marks what an [`Id`] identifies. Implement it on an uninhabited enum.
pub trait IdKind {
    /// Short English name, used in `Debug` output.
    const NAME: &'static str;
}

/// An id of a `K`, always a UUID version 7 when it comes from [`Id::parse`],
/// [`Id::try_from_uuid`] or deserialization.
pub struct Id<K: IdKind> {
    uuid: Uuid,
    _kind: PhantomData<fn() -> K>,
}

impl<K: IdKind> Id<K> {
    /// Wraps a freshly generated id. Trusts the caller (the ports crate's generator)
    /// to pass a v7 UUID; use [`Id::try_from_uuid`] for anything from outside.
    pub const fn new(uuid: Uuid) -> Self {
        Self {
            uuid,
            _kind: PhantomData,
        }
    }

    /// Wraps a UUID, rejecting any version other than 7.
    pub fn try_from_uuid(uuid: Uuid) -> Result<Self, DomainError> {
        let id = Self::new(uuid);
        if id.is_v7() {
            Ok(id)
        } else {
            Err(DomainError::InvalidId)
        }
    }

    /// Parses the canonical hyphenated form (36 characters, either case) of a v7
    /// UUID. Other UUID spellings (braced, URN, no hyphens) are refused so that an id
    /// has exactly one spelling in URLs and keys.
    pub fn parse(s: &str) -> Result<Self, DomainError> {
        if s.len() != 36 {
            return Err(DomainError::InvalidId);
        }
        let uuid = Uuid::try_parse(s).map_err(|_| DomainError::InvalidId)?;
        Self::try_from_uuid(uuid)
    }

    pub fn is_v7(&self) -> bool {
        self.uuid.get_version_num() == 7 && self.uuid.get_variant() == uuid::Variant::RFC4122
    }

    pub const fn as_uuid(&self) -> &Uuid {
        &self.uuid
    }

    pub const fn into_uuid(self) -> Uuid {
        self.uuid
    }

    /// The creation time embedded in a v7 id, in Unix milliseconds.
    pub fn unix_millis(&self) -> Option<u64> {
        let ts = self.uuid.get_timestamp()?;
        let (secs, nanos) = ts.to_unix();
        Some(secs * 1000 + u64::from(nanos / 1_000_000))
    }
}

// Manual impls: derives would wrongly require `K` itself to be Clone, Eq, ...

impl<K: IdKind> Clone for Id<K> {
    fn clone(&self) -> Self {
        *self
    }
}
impl<K: IdKind> Copy for Id<K> {}
impl<K: IdKind> PartialEq for Id<K> {
    fn eq(&self, other: &Self) -> bool {
        self.uuid == other.uuid
    }
}
impl<K: IdKind> Eq for Id<K> {}
impl<K: IdKind> PartialOrd for Id<K> {
    fn partial_cmp(&self, other: &Self) -> Option<Ordering> {
        Some(self.cmp(other))
    }
}
impl<K: IdKind> Ord for Id<K> {
    fn cmp(&self, other: &Self) -> Ordering {
        self.uuid.cmp(&other.uuid)
    }
}
impl<K: IdKind> Hash for Id<K> {
    fn hash<H: Hasher>(&self, state: &mut H) {
        self.uuid.hash(state);
    }
}

impl<K: IdKind> fmt::Display for Id<K> {
    /// Lowercase hyphenated, the form used in URLs and keys.
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        fmt::Display::fmt(&self.uuid.hyphenated(), f)
    }
}

impl<K: IdKind> fmt::Debug for Id<K> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}Id({})", K::NAME, self.uuid.hyphenated())
    }
}

impl<K: IdKind> FromStr for Id<K> {
    type Err = DomainError;
    fn from_str(s: &str) -> Result<Self, Self::Err> {
        Self::parse(s)
    }
}

impl<K: IdKind> Serialize for Id<K> {
    fn serialize<S: Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        s.collect_str(&self.uuid.hyphenated())
    }
}

impl<'de, K: IdKind> Deserialize<'de> for Id<K> {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        let s = String::deserialize(d)?;
        Self::parse(&s).map_err(|_| serde::de::Error::custom("invalid id"))
    }
}

macro_rules! id_kinds {
    ($($(#[$doc:meta])* $kind:ident => $alias:ident;)*) => {
        /// Marker types for [`Id`].
        pub mod kind {
            $(
                $(#[$doc])*
                #[derive(Debug)]
                pub enum $kind {}
                impl super::IdKind for $kind {
                    const NAME: &'static str = stringify!($kind);
                }
            )*
        }
        $(
            $(#[$doc])*
            pub type $alias = Id<kind::$kind>;
        )*
    };
}

id_kinds! {
    /// A citizen's application (申請).
    Application => ApplicationId;
    /// A form definition (申請フォーム) built by staff.
    Form => FormId;
    /// A file attached to an application (添付ファイル).
    Attachment => AttachmentId;
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    const V7: &str = "01890a5d-ac96-774b-bcce-b302099a8057";
    const V4: &str = "67e55044-10b1-426f-9247-bb680e5fe0c8";

    #[test]
    fn parses_v7_and_displays_lowercase() {
        let id = ApplicationId::parse(V7).unwrap();
        assert!(id.is_v7());
        assert_eq!(id.to_string(), V7);
        let upper = FormId::parse(&V7.to_uppercase()).unwrap();
        assert_eq!(upper.to_string(), V7);
        assert_eq!(format!("{id:?}"), format!("ApplicationId({V7})"));
        assert_eq!(id.unix_millis(), Some(0x0189_0a5d_ac96));
    }

    #[test]
    fn rejects_other_versions_and_spellings() {
        assert_eq!(ApplicationId::parse(V4), Err(DomainError::InvalidId));
        assert_eq!(
            ApplicationId::parse(&V7.replace('-', "")),
            Err(DomainError::InvalidId)
        );
        assert_eq!(
            ApplicationId::parse(&format!("{{{V7}}}")),
            Err(DomainError::InvalidId)
        );
        assert_eq!(ApplicationId::parse(""), Err(DomainError::InvalidId));
        assert_eq!(
            ApplicationId::try_from_uuid(Uuid::nil()),
            Err(DomainError::InvalidId)
        );
        assert!(!ApplicationId::new(Uuid::nil()).is_v7());
    }

    #[test]
    fn serde_as_string_and_validates() {
        let id: FormId = V7.parse().unwrap();
        let json = serde_json::to_string(&id).unwrap();
        assert_eq!(json, format!("\"{V7}\""));
        assert_eq!(serde_json::from_str::<FormId>(&json).unwrap(), id);
        assert!(serde_json::from_str::<FormId>(&format!("\"{V4}\"")).is_err());
    }

    proptest! {
        #[test]
        fn round_trips_any_v7(millis in 0u64..(1u64 << 48), rand in any::<[u8; 10]>()) {
            let uuid = uuid::Builder::from_unix_timestamp_millis(millis, &rand).into_uuid();
            let id = ApplicationId::try_from_uuid(uuid).unwrap();
            prop_assert_eq!(ApplicationId::parse(&id.to_string()), Ok(id));
            prop_assert_eq!(id.unix_millis(), Some(millis));
        }

        #[test]
        fn parse_never_panics(s in any::<String>()) {
            let _ = ApplicationId::parse(&s);
        }
    }
}
