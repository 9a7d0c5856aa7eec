//! The Ed25519 key that signs access tokens: loaded from a PKCS#8 PEM file, or generated and
//! saved there (owner-only permissions) when the deployment allows it.
//!
//! Rotation (`vicinity keys rotate`) replaces the key file with a new key and keeps the old
//! key's public half in `<key file>.retired/<kid>.json` until the last token it signed has
//! expired: until then it still verifies and is still published in the JWKS. Its private
//! half is gone, so nothing can be signed with it any more.

use std::io::Write;
use std::path::{Path, PathBuf};

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
    #[error("{path} is not an Ed25519 PKCS#8 PEM private key, nor a retired key record")]
    Invalid { path: String },
    #[error("cannot write signing key file {path}: {source}")]
    Write {
        path: String,
        source: std::io::Error,
    },
}

/// The signing key with everything derived from it, and the retired keys that still verify.
#[derive(Clone)]
pub struct SigningKeys {
    kid: String,
    x: String,
    encoding: EncodingKey,
    decoding: DecodingKey,
    pem: String,
    retired: Vec<RetiredKey>,
    /// The file the key came from, so that a rotation can be noticed and loaded.
    path: Option<PathBuf>,
}

/// A key that no longer signs but verifies what it signed until `verifies_until`.
#[derive(Clone)]
struct RetiredKey {
    kid: String,
    x: String,
    decoding: DecodingKey,
    /// Seconds since the epoch.
    verifies_until: i64,
}

/// A retired key as written to disk: only its public half.
#[derive(serde::Serialize, serde::Deserialize)]
struct RetiredRecord {
    kid: String,
    x: String,
    retired_at: i64,
    verifies_until: i64,
}

/// Where the retired keys of the key file `path` are kept.
pub fn retired_dir(path: &Path) -> PathBuf {
    let mut name = path.file_name().unwrap_or_default().to_os_string();
    name.push(".retired");
    path.with_file_name(name)
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
            retired: Vec::new(),
            path: None,
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
            Ok(pem) => {
                let mut keys = Self::from_pem(&pem, &shown)?;
                keys.retired = load_retired(path, chrono::Utc::now().timestamp())?;
                keys.path = Some(path.to_owned());
                return Ok((keys, false));
            }
            Err(error) if error.kind() != std::io::ErrorKind::NotFound => {
                return Err(KeyError::Read {
                    path: shown,
                    source: error,
                });
            }
            Err(_) if !create => return Err(KeyError::Missing { path: shown }),
            Err(_) => {}
        }
        let mut keys = Self::generate();
        match keys.write_new(path) {
            Ok(()) => {
                keys.path = Some(path.to_owned());
                Ok((keys, true))
            }
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

    /// The key that verifies a token signed by `kid`: the current key, or a retired one
    /// whose tokens may still be alive at `now` (seconds since the epoch).
    pub(crate) fn decoding_for(&self, kid: &str, now: i64) -> Option<&DecodingKey> {
        if kid == self.kid {
            return Some(&self.decoding);
        }
        self.retired
            .iter()
            .find(|key| key.kid == kid && key.verifies_until > now)
            .map(|key| &key.decoding)
    }

    /// The file this key was loaded from, if any.
    pub(crate) fn path(&self) -> Option<&Path> {
        self.path.as_deref()
    }

    /// The public keys as a JSON Web Key Set (RFC 7517, RFC 8037): the signing key first,
    /// then the retired keys that still verify tokens.
    pub fn jwks(&self) -> serde_json::Value {
        let now = chrono::Utc::now().timestamp();
        let key = |kid: &str, x: &str| json!({"kty": "OKP", "crv": "Ed25519", "x": x, "kid": kid, "use": "sig", "alg": "EdDSA"});
        let keys: Vec<serde_json::Value> = std::iter::once(key(&self.kid, &self.x))
            .chain(
                self.retired
                    .iter()
                    .filter(|retired| retired.verifies_until > now)
                    .map(|retired| key(&retired.kid, &retired.x)),
            )
            .collect();
        json!({ "keys": keys })
    }

    /// Rotates the key in `path`: a new key replaces it (atomically), and the old one is kept
    /// as a retired key that verifies for `verify_for` more (the access-token lifetime plus
    /// leeway), unless `revoke_old`, which makes every token it signed invalid as soon as the
    /// servers load the change. Returns the new key and the old key's id.
    pub fn rotate(
        path: &Path,
        verify_for: std::time::Duration,
        revoke_old: bool,
    ) -> Result<(Self, String), KeyError> {
        let (old, _) = Self::load_or_create(path, false)?;
        let shown = path.display().to_string();
        let write_error = |source| KeyError::Write {
            path: shown.clone(),
            source,
        };
        if !revoke_old {
            let now = chrono::Utc::now().timestamp();
            let record = RetiredRecord {
                kid: old.kid.clone(),
                x: old.x.clone(),
                retired_at: now,
                verifies_until: now
                    .saturating_add(i64::try_from(verify_for.as_secs()).unwrap_or(i64::MAX / 2)),
            };
            let dir = retired_dir(path);
            std::fs::create_dir_all(&dir).map_err(write_error)?;
            let text = serde_json::to_string_pretty(&record).unwrap_or_default();
            std::fs::write(dir.join(format!("{}.json", old.kid)), text).map_err(write_error)?;
        }
        let mut new = Self::generate();
        let staging = path.with_extension("pem.new");
        // A leftover from an interrupted rotation is never a key anyone relies on.
        let _ = std::fs::remove_file(&staging);
        new.write_new(&staging)?;
        std::fs::rename(&staging, path).map_err(write_error)?;
        new.retired = load_retired(path, chrono::Utc::now().timestamp())?;
        new.path = Some(path.to_owned());
        Ok((new, old.kid))
    }
}

/// The retired keys kept beside the key file `path` that still verify at `now`. Expired ones
/// are deleted: they can verify nothing any more.
fn load_retired(path: &Path, now: i64) -> Result<Vec<RetiredKey>, KeyError> {
    let dir = retired_dir(path);
    let entries = match std::fs::read_dir(&dir) {
        Ok(entries) => entries,
        Err(error) if error.kind() == std::io::ErrorKind::NotFound => return Ok(Vec::new()),
        Err(source) => {
            return Err(KeyError::Read {
                path: dir.display().to_string(),
                source,
            });
        }
    };
    let mut retired = Vec::new();
    for entry in entries.flatten() {
        let file = entry.path();
        if file.extension().is_none_or(|ext| ext != "json") {
            continue;
        }
        let invalid = || KeyError::Invalid {
            path: file.display().to_string(),
        };
        let text = std::fs::read_to_string(&file).map_err(|source| KeyError::Read {
            path: file.display().to_string(),
            source,
        })?;
        let record: RetiredRecord = serde_json::from_str(&text).map_err(|_| invalid())?;
        if record.verifies_until <= now {
            let _ = std::fs::remove_file(&file);
            continue;
        }
        let public = URL_SAFE_NO_PAD
            .decode(&record.x)
            .ok()
            .filter(|bytes| bytes.len() == 32)
            .ok_or_else(invalid)?;
        retired.push(RetiredKey {
            kid: record.kid,
            x: record.x,
            decoding: DecodingKey::from_ed_der(&public),
            verifies_until: record.verifies_until,
        });
    }
    Ok(retired)
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
    fn a_rotated_key_keeps_verifying_until_its_tokens_expire_unless_revoked() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("signing-key.pem");
        let (first, _) = SigningKeys::load_or_create(&path, true).unwrap();
        let (second, old) =
            SigningKeys::rotate(&path, std::time::Duration::from_secs(600), false).unwrap();
        assert_eq!(old, first.kid());
        assert_ne!(second.kid(), first.kid());
        let now = chrono::Utc::now().timestamp();
        let (loaded, _) = SigningKeys::load_or_create(&path, false).unwrap();
        assert_eq!(loaded.kid(), second.kid());
        assert!(loaded.decoding_for(first.kid(), now).is_some());
        assert!(loaded.decoding_for(first.kid(), now + 601).is_none());
        assert!(loaded.decoding_for("someone-else", now).is_none());
        let jwks = loaded.jwks();
        let kids: Vec<&str> = jwks["keys"]
            .as_array()
            .unwrap()
            .iter()
            .map(|k| k["kid"].as_str().unwrap())
            .collect();
        assert_eq!(kids, [second.kid(), first.kid()]);
        // Only the public half of the retired key is on disk.
        let record =
            std::fs::read_to_string(retired_dir(&path).join(format!("{}.json", first.kid())))
                .unwrap();
        assert!(!record.contains("PRIVATE"), "{record}");

        // Revoking: the second key verifies nothing any more; the first still does.
        let (third, _) =
            SigningKeys::rotate(&path, std::time::Duration::from_secs(600), true).unwrap();
        assert!(third.decoding_for(second.kid(), now).is_none());
        assert!(third.decoding_for(first.kid(), now).is_some());

        // A record past its time is deleted when the keys are loaded.
        let expired = RetiredRecord {
            kid: "gone".into(),
            x: URL_SAFE_NO_PAD.encode([7u8; 32]),
            retired_at: 0,
            verifies_until: 1,
        };
        let expired_file = retired_dir(&path).join("gone.json");
        std::fs::write(&expired_file, serde_json::to_string(&expired).unwrap()).unwrap();
        let (reloaded, _) = SigningKeys::load_or_create(&path, false).unwrap();
        assert!(reloaded.decoding_for("gone", 0).is_none());
        assert!(!expired_file.exists());
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
