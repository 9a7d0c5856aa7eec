//! The Ed25519 key that signs access tokens: loaded from a PKCS#8 PEM file, or generated and
//! saved there (owner-only permissions) when the deployment allows it.

use std::io::Write;
use std::path::Path;

use base64::Engine;
use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use ed25519_dalek::SigningKey;
use ed25519_dalek::pkcs8::{DecodePrivateKey, EncodePrivateKey, spki::der::pem::LineEnding};
use jsonwebtoken::{DecodingKey, EncodingKey};
use serde_json::json;
use sha2::{Digest, Sha256};

#[derive(Debug, thiserror::Error)]
pub enum KeyError {
    #[error(
        "signing key file {path} does not exist; create one with `vicinity keygen --out {path}`"
    )]
    Missing { path: String },
    #[error("cannot read signing key file {path}: {source}")]
    Read {
        path: String,
        source: std::io::Error,
    },
    #[error("signing key file {path} is not an Ed25519 PKCS#8 PEM private key")]
    Invalid { path: String },
    #[error("cannot write signing key file {path}: {source}")]
    Write {
        path: String,
        source: std::io::Error,
    },
}

/// The signing key with everything derived from it.
#[derive(Clone)]
pub struct SigningKeys {
    kid: String,
    x: String,
    encoding: EncodingKey,
    decoding: DecodingKey,
    pem: String,
}

impl SigningKeys {
    /// A new random key (kept in memory only).
    pub fn generate() -> Self {
        let seed: [u8; 32] = rand::random();
        Self::from_signing_key(&SigningKey::from_bytes(&seed))
    }

    fn from_signing_key(key: &SigningKey) -> Self {
        // Encoding to DER/PEM cannot fail for a well-formed Ed25519 key.
        let der = key
            .to_pkcs8_der()
            .map(|d| d.as_bytes().to_vec())
            .unwrap_or_default();
        let pem = key
            .to_pkcs8_pem(LineEnding::LF)
            .map(|p| p.to_string())
            .unwrap_or_default();
        let public = key.verifying_key().to_bytes();
        let x = URL_SAFE_NO_PAD.encode(public);
        // RFC 7638 thumbprint: SHA-256 over the required members in lexicographic order.
        let thumbprint_input = format!(r#"{{"crv":"Ed25519","kty":"OKP","x":"{x}"}}"#);
        let kid = URL_SAFE_NO_PAD.encode(Sha256::digest(thumbprint_input.as_bytes()));
        Self {
            kid,
            x,
            encoding: EncodingKey::from_ed_der(&der),
            decoding: DecodingKey::from_ed_der(&public),
            pem,
        }
    }

    pub fn from_pem(pem: &str, path: &str) -> Result<Self, KeyError> {
        let key = SigningKey::from_pkcs8_pem(pem).map_err(|_| KeyError::Invalid {
            path: path.to_owned(),
        })?;
        Ok(Self::from_signing_key(&key))
    }

    /// Loads the key at `path`; when it is missing and `create` is true, generates one and
    /// writes it (refusing to overwrite a file another process created meanwhile).
    /// Returns whether a new key was created.
    pub fn load_or_create(path: &Path, create: bool) -> Result<(Self, bool), KeyError> {
        let shown = path.display().to_string();
        match std::fs::read_to_string(path) {
            Ok(pem) => return Ok((Self::from_pem(&pem, &shown)?, false)),
            Err(error) if error.kind() != std::io::ErrorKind::NotFound => {
                return Err(KeyError::Read {
                    path: shown,
                    source: error,
                });
            }
            Err(_) if !create => return Err(KeyError::Missing { path: shown }),
            Err(_) => {}
        }
        let keys = Self::generate();
        match keys.write_new(path) {
            Ok(()) => Ok((keys, true)),
            // Another instance won the race: use its key.
            Err(KeyError::Write { source, .. })
                if source.kind() == std::io::ErrorKind::AlreadyExists =>
            {
                Self::load_or_create(path, false)
            }
            Err(error) => Err(error),
        }
    }

    /// Writes the key as PEM to a new file readable by its owner only.
    pub fn write_new(&self, path: &Path) -> Result<(), KeyError> {
        let error = |source| KeyError::Write {
            path: path.display().to_string(),
            source,
        };
        if let Some(dir) = path.parent().filter(|d| !d.as_os_str().is_empty()) {
            std::fs::create_dir_all(dir).map_err(error)?;
        }
        let mut options = std::fs::OpenOptions::new();
        options.write(true).create_new(true);
        #[cfg(unix)]
        std::os::unix::fs::OpenOptionsExt::mode(&mut options, 0o600);
        let mut file = options.open(path).map_err(error)?;
        file.write_all(self.pem.as_bytes()).map_err(error)?;
        file.sync_all().map_err(error)
    }

    /// A 32-byte secret for `purpose`, derived from the private key: stable across restarts
    /// and shared by every instance that holds the key, useless for signing tokens.
    pub(crate) fn derive_secret(&self, purpose: &str) -> [u8; 32] {
        use sha2::{Digest, Sha256};
        let mut hasher = Sha256::new();
        hasher.update(b"vicinity derived secret\0");
        hasher.update(purpose.as_bytes());
        hasher.update(b"\0");
        hasher.update(self.pem.as_bytes());
        hasher.finalize().into()
    }

    pub fn kid(&self) -> &str {
        &self.kid
    }

    pub(crate) fn encoding(&self) -> &EncodingKey {
        &self.encoding
    }

    pub(crate) fn decoding(&self) -> &DecodingKey {
        &self.decoding
    }

    /// The public key as a JSON Web Key Set (RFC 7517, RFC 8037).
    pub fn jwks(&self) -> serde_json::Value {
        json!({
            "keys": [{
                "kty": "OKP",
                "crv": "Ed25519",
                "x": self.x,
                "kid": self.kid,
                "use": "sig",
                "alg": "EdDSA",
            }]
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_created_key_is_persisted_and_reloaded() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("keys/signing.pem");
        let (first, created) = SigningKeys::load_or_create(&path, true).unwrap();
        assert!(created);
        let (second, created) = SigningKeys::load_or_create(&path, true).unwrap();
        assert!(!created);
        assert_eq!(first.kid(), second.kid());
        #[cfg(unix)]
        {
            use std::os::unix::fs::PermissionsExt;
            let mode = std::fs::metadata(&path).unwrap().permissions().mode();
            assert_eq!(mode & 0o777, 0o600);
        }
    }

    #[test]
    fn a_missing_key_is_an_error_when_creation_is_not_allowed() {
        let dir = tempfile::tempdir().unwrap();
        let error = SigningKeys::load_or_create(&dir.path().join("absent.pem"), false).err();
        assert!(matches!(error, Some(KeyError::Missing { .. })));
    }

    #[test]
    fn garbage_is_not_accepted_as_a_key() {
        assert!(
            SigningKeys::from_pem(
                "-----BEGIN PRIVATE KEY-----\nAAAA\n-----END PRIVATE KEY-----\n",
                "x"
            )
            .is_err()
        );
    }

    #[test]
    fn the_jwks_publishes_the_public_half_only() {
        let keys = SigningKeys::generate();
        let jwks = keys.jwks();
        let key = &jwks["keys"][0];
        assert_eq!(key["kty"], "OKP");
        assert_eq!(key["kid"], keys.kid());
        assert!(key.get("d").is_none());
        assert_eq!(
            URL_SAFE_NO_PAD
                .decode(key["x"].as_str().unwrap())
                .unwrap()
                .len(),
            32
        );
    }
}
