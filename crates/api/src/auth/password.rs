//! Password hashing with Argon2id (OWASP's parameters: 19 MiB, 2 passes), always run on the
//! blocking pool so a login never stalls the executor.

use argon2::Argon2;
use argon2::password_hash::rand_core::OsRng;
use argon2::password_hash::{PasswordHash, PasswordHasher, PasswordVerifier, SaltString};

use crate::error::ApiError;

fn hash_blocking(password: &str) -> Result<String, ApiError> {
    let salt = SaltString::generate(&mut OsRng);
    Argon2::default()
        .hash_password(password.as_bytes(), &salt)
        .map(|hash| hash.to_string())
        .map_err(|error| {
            tracing::error!(error.detail = %error, "password hashing failed");
            ApiError::internal()
        })
}

fn verify_blocking(password: &str, stored: &str) -> bool {
    PasswordHash::new(stored)
        .map(|hash| {
            Argon2::default()
                .verify_password(password.as_bytes(), &hash)
                .is_ok()
        })
        .unwrap_or(false)
}

pub async fn hash(password: String) -> Result<String, ApiError> {
    actix_web::web::block(move || hash_blocking(&password)).await?
}

pub async fn verify(password: String, stored: String) -> Result<bool, ApiError> {
    Ok(actix_web::web::block(move || verify_blocking(&password, &stored)).await?)
}

/// A hash of a random password, verified against when a login names no account, so that
/// unknown and known accounts take the same time to refuse.
pub fn decoy_hash() -> Result<String, ApiError> {
    hash_blocking(&format!("{:x}", rand::random::<u128>()))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_hash_verifies_only_its_own_password() {
        let hash = hash_blocking("correct horse battery").unwrap();
        assert!(hash.starts_with("$argon2id$"));
        assert!(verify_blocking("correct horse battery", &hash));
        assert!(!verify_blocking("correct horse batterY", &hash));
        assert!(!verify_blocking("anything", "not a hash"));
    }
}
