//! Opaque refresh tokens: 256 random bits, shown to the client once, stored as SHA-256.

use std::time::Duration;

use chrono::{DateTime, Utc};
use vicinity_domain::secret::{random_base64url, sha256_hex};
use vicinity_store::tokens::NewRefreshToken;

/// Refresh tokens start with this, so they are recognisable in revocation requests and by
/// secret scanners.
pub const PREFIX: &str = "vrt_";

pub fn generate() -> String {
    format!("{PREFIX}{}", random_base64url::<32>())
}

/// The stored form of a token.
pub fn hash(token: &str) -> String {
    sha256_hex(token)
}

/// A refresh token about to be issued: the client sees `token` once; only its hash is stored.
pub struct FreshToken {
    pub token: String,
    hash: String,
    expires_at: DateTime<Utc>,
}

impl FreshToken {
    pub fn new(ttl: Duration) -> Self {
        let token = generate();
        Self {
            hash: hash(&token),
            token,
            expires_at: Utc::now() + ttl,
        }
    }

    /// What the store keeps of it.
    pub fn to_store(&self) -> NewRefreshToken<'_> {
        NewRefreshToken {
            hash: &self.hash,
            expires_at: self.expires_at,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn tokens_are_unique_and_hashes_are_stable() {
        let a = generate();
        assert!(a.starts_with(PREFIX) && a.len() == PREFIX.len() + 43);
        assert_ne!(a, generate());
        assert_eq!(hash(&a), hash(&a));
        assert_eq!(hash(&a).len(), 64);
    }
}
