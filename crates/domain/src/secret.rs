//! Random tokens shown once (refresh tokens, client secrets, client ids) and the digest that
//! is stored or compared instead of a value.

use base64::Engine;
use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use rand::Rng;
use sha2::{Digest, Sha256};

/// `N` random bytes, base64url without padding (43 characters for 32 bytes).
pub fn random_base64url<const N: usize>() -> String {
    let bytes: [u8; N] = rand::rng().random();
    URL_SAFE_NO_PAD.encode(bytes)
}

/// SHA-256 of `text`, lowercase hex. A fast hash suffices for what it stores: tokens and
/// secrets of 256 random bits, which nothing can guess at any speed.
pub fn sha256_hex(text: &str) -> String {
    Sha256::digest(text.as_bytes())
        .iter()
        .map(|byte| format!("{byte:02x}"))
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn tokens_are_random_base64url_and_digests_are_sha256() {
        let token = random_base64url::<32>();
        assert_eq!(token.len(), 43);
        assert_ne!(token, random_base64url::<32>());
        assert!(
            token
                .chars()
                .all(|c| c.is_ascii_alphanumeric() || c == '-' || c == '_')
        );
        // FIPS 180-2, appendix B.1.
        assert_eq!(
            sha256_hex("abc"),
            "ba7816bf8f01cfea414140de5dae2223b00361a396177a9cb410ff61f20015ad"
        );
    }
}
