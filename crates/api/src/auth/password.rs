//! Password hashing with Argon2id (OWASP's parameters: 19 MiB, 2 passes), run on the blocking
//! pool so a login never stalls the executor, and a few at a time so a flood of logins or
//! registrations cannot claim 19 MiB per request without bound.

use argon2::Argon2;
use argon2::password_hash::rand_core::OsRng;
use argon2::password_hash::{PasswordHash, PasswordHasher, PasswordVerifier, SaltString};
use tokio::sync::Semaphore;

use crate::error::ApiError;

/// Hashes a password on the calling thread (the CLI; the server uses [`Passwords::hash`]).
pub fn hash_blocking(password: &str) -> Result<String, ApiError> {
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

/// Hashes and verifies passwords, at most two per core at once.
pub struct Passwords {
    permits: Semaphore,
    /// A hash of a random password, verified against when a login names no account, so that
    /// unknown and known accounts take the same time to refuse.
    decoy_hash: String,
}

impl Passwords {
    pub fn new() -> Result<Self, ApiError> {
        let cores = std::thread::available_parallelism().map_or(2, usize::from);
        Ok(Self {
            permits: Semaphore::new(cores * 2),
            decoy_hash: hash_blocking(&format!("{:x}", rand::random::<u128>()))?,
        })
    }

    pub async fn hash(&self, password: String) -> Result<String, ApiError> {
        let _permit = self
            .permits
            .acquire()
            .await
            .map_err(|_| ApiError::unavailable())?;
        actix_web::web::block(move || hash_blocking(&password)).await?
    }

    /// Checks `password` against `stored`, or against the decoy when there is no account.
    pub async fn verify(&self, password: String, stored: Option<String>) -> Result<bool, ApiError> {
        let _permit = self
            .permits
            .acquire()
            .await
            .map_err(|_| ApiError::unavailable())?;
        let real = stored.is_some();
        let stored = stored.unwrap_or_else(|| self.decoy_hash.clone());
        let matches = actix_web::web::block(move || verify_blocking(&password, &stored)).await?;
        Ok(real && matches)
    }
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

    #[tokio::test]
    async fn no_account_never_verifies_even_with_the_decoy_password() {
        let passwords = Passwords::new().unwrap();
        assert!(!passwords.verify("anything".into(), None).await.unwrap());
        let hash = passwords
            .hash("correct horse battery".into())
            .await
            .unwrap();
        assert!(
            passwords
                .verify("correct horse battery".into(), Some(hash))
                .await
                .unwrap()
        );
    }
}
