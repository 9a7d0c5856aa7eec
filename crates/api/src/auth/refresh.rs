//! Opaque refresh tokens: 256 random bits, shown to the client once, stored as SHA-256.

use std::time::Duration;

use base64::Engine;
use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use chrono::{DateTime, Utc};
use sha2::{Digest, Sha256};
use vicinity_store::tokens::NewRefreshToken;

/// Refresh tokens start with this, so they are recognisable in revocation requests and by
/// secret scanners.
pub const PREFIX: &str = "vrt_";

pub fn generate() -> String {
    let bytes: [u8; 32] = rand::random();
    format!("{PREFIX}{}", URL_SAFE_NO_PAD.encode(bytes))
}

/// The stored form of a token. A fast hash suffices: the token has 256 bits of entropy.
pub fn hash(token: &str) -> String {
    Sha256::digest(token.as_bytes())
        .iter()
        .map(|b| format!("{b:02x}"))
        .collect()
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
