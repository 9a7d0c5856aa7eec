//! Public identifiers: opaque, non-sequential strings such as `usr_0f3kz9w2m4q8r`.
//!
//! Rows are keyed by random positive 63-bit integers (cheap B-tree keys on both databases,
//! and a natural shard key); the public form is a type prefix and 13 Crockford base32 digits,
//! so a user id can never be mistaken for a venue id and no row count leaks.

use std::fmt;
use std::marker::PhantomData;

const ALPHABET: &[u8; 32] = b"0123456789abcdefghjkmnpqrstvwxyz";
const DIGITS: usize = 13;

/// What kind of thing an id names; fixes its public prefix.
pub trait IdKind {
    const PREFIX: &'static str;
    const NOUN: &'static str;
}

/// An identifier of one kind of entity.
pub struct Id<K> {
    raw: i64,
    kind: PhantomData<fn() -> K>,
}

/// Why a string is not an id of the expected kind.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("`{input}` is not a valid {noun} id")]
pub struct IdParseError {
    pub input: String,
    pub noun: &'static str,
}

impl<K: IdKind> Id<K> {
    /// Wraps a stored row key. Keys are positive; anything else is a programming error that the
    /// store never produces, so it is accepted as-is rather than checked on every row.
    pub const fn from_raw(raw: i64) -> Self {
        Self {
            raw,
            kind: PhantomData,
        }
    }

    /// A fresh id from 63 bits of randomness (never zero, never negative).
    pub fn from_random_bits(bits: u64) -> Self {
        let raw = (bits >> 1) as i64;
        Self::from_raw(raw.max(1))
    }

    pub const fn raw(self) -> i64 {
        self.raw
    }

    pub fn parse(input: &str) -> Result<Self, IdParseError> {
        let error = || IdParseError {
            input: truncate(input),
            noun: K::NOUN,
        };
        let digits = input.strip_prefix(K::PREFIX).ok_or_else(error)?;
        if digits.len() != DIGITS {
            return Err(error());
        }
        let mut value: u64 = 0;
        for byte in digits.bytes() {
            let digit = ALPHABET.iter().position(|&a| a == byte).ok_or_else(error)? as u64;
            value = value
                .checked_mul(32)
                .and_then(|v| v.checked_add(digit))
                .ok_or_else(error)?;
        }
        match i64::try_from(value) {
            Ok(raw) if raw > 0 => Ok(Self::from_raw(raw)),
            _ => Err(error()),
        }
    }
}

/// Echoing attacker-sized input into error messages helps nobody.
fn truncate(input: &str) -> String {
    input.chars().take(40).collect()
}

impl<K: IdKind> fmt::Display for Id<K> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let mut buf = [b'0'; DIGITS];
        let mut value = self.raw as u64;
        for slot in buf.iter_mut().rev() {
            *slot = ALPHABET.get((value % 32) as usize).copied().unwrap_or(b'0');
            value /= 32;
        }
        f.write_str(K::PREFIX)?;
        f.write_str(std::str::from_utf8(&buf).map_err(|_| fmt::Error)?)
    }
}

impl<K: IdKind> fmt::Debug for Id<K> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        fmt::Display::fmt(self, f)
    }
}

impl<K> Clone for Id<K> {
    fn clone(&self) -> Self {
        *self
    }
}
impl<K> Copy for Id<K> {}
impl<K> PartialEq for Id<K> {
    fn eq(&self, other: &Self) -> bool {
        self.raw == other.raw
    }
}
impl<K> Eq for Id<K> {}
impl<K> std::hash::Hash for Id<K> {
    fn hash<H: std::hash::Hasher>(&self, state: &mut H) {
        self.raw.hash(state);
    }
}
impl<K> PartialOrd for Id<K> {
    fn partial_cmp(&self, other: &Self) -> Option<std::cmp::Ordering> {
        Some(self.cmp(other))
    }
}
impl<K> Ord for Id<K> {
    fn cmp(&self, other: &Self) -> std::cmp::Ordering {
        self.raw.cmp(&other.raw)
    }
}

macro_rules! id_kind {
    ($kind:ident, $alias:ident, $prefix:literal, $noun:literal) => {
        #[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
        pub enum $kind {}
        impl IdKind for $kind {
            const PREFIX: &'static str = $prefix;
            const NOUN: &'static str = $noun;
        }
        pub type $alias = Id<$kind>;
    };
}

id_kind!(UserKind, UserId, "usr_", "user");
id_kind!(VenueKind, VenueId, "ven_", "venue");
id_kind!(CheckInKind, CheckInId, "chk_", "check-in");
id_kind!(TokenFamilyKind, TokenFamilyId, "tfm_", "token family");

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn ids_round_trip_through_their_public_form() {
        for raw in [1_i64, 42, 1 << 40, i64::MAX] {
            let id = UserId::from_raw(raw);
            let text = id.to_string();
            assert!(text.starts_with("usr_"));
            assert_eq!(text.len(), 4 + DIGITS);
            assert_eq!(UserId::parse(&text), Ok(id));
        }
    }

    #[test]
    fn an_id_of_another_kind_is_rejected() {
        let venue = VenueId::from_raw(77).to_string();
        assert!(UserId::parse(&venue).is_err());
    }

    #[test]
    fn malformed_ids_are_rejected() {
        for bad in [
            "",
            "usr_",
            "usr_123",
            "usr_0000000000000",
            "usr_zzzzzzzzzzzzz",
            "usr_000000000000I",
            "USR_000000000001a",
            "usr_00000000000001",
            "usr_-000000000001",
        ] {
            assert!(UserId::parse(bad).is_err(), "{bad} should not parse");
        }
    }

    #[test]
    fn random_bits_never_give_zero_or_negative_ids() {
        assert_eq!(UserId::from_random_bits(0).raw(), 1);
        assert!(UserId::from_random_bits(u64::MAX).raw() > 0);
    }
}
