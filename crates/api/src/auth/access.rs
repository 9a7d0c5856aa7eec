//! Access tokens: short-lived JWTs per RFC 9068 (`typ: at+jwt`), signed with EdDSA.
//!
//! Verification pins the algorithm, requires `iss`, `aud`, `sub`, `exp` and `iat`, checks the
//! header type and key id, refuses a token not valid yet (`nbf`) or issued in the future
//! (`iat`, beyond the clock leeway), and only then reads the claims.

use std::collections::HashMap;
use std::path::Path;
use std::sync::{Arc, Mutex, PoisonError, RwLock};
use std::time::{Duration, Instant, SystemTime};

use chrono::{DateTime, Utc};
use jsonwebtoken::errors::ErrorKind;
use jsonwebtoken::{Algorithm, Header, Validation};
use serde::{Deserialize, Serialize};
use vicinity_domain::{ScopeSet, TokenFamilyId, UserId};

use super::keys::SigningKeys;

const TOKEN_TYPE: &str = "at+jwt";

#[derive(Debug, Serialize, Deserialize)]
struct Claims {
    iss: String,
    sub: String,
    aud: String,
    exp: i64,
    iat: i64,
    jti: String,
    client_id: String,
    scope: String,
    /// The refresh-token family (the login) this token belongs to; revoking it revokes this.
    sid: String,
}

/// What a verified access token says about its bearer.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct AccessGrant {
    /// The person the token acts for; `None` for a client acting for itself (the client
    /// credentials grant, whose tokens carry the client id as `sub`, RFC 9068 §2.2).
    pub user_id: Option<UserId>,
    /// The login (token family), or for a client acting for itself, its client grant.
    pub family_id: TokenFamilyId,
    pub client_id: String,
    pub scope: ScopeSet,
    pub expires_at: i64,
}

/// Why a presented access token was refused; the text goes into `error_description`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, thiserror::Error)]
pub enum TokenRejection {
    #[error("the access token has expired")]
    Expired,
    #[error("the access token is malformed or its signature does not verify")]
    Invalid,
    #[error("the access token was not issued for this server")]
    WrongAudienceOrIssuer,
    #[error("the token is not an access token")]
    WrongType,
    #[error("the access token has been revoked")]
    Revoked,
}

/// Signs and verifies access tokens for one issuer and audience.
#[derive(Clone)]
pub struct AccessTokens {
    /// Replaced when a rotation is noticed ([`AccessTokens::follow_rotation`]).
    keys: Arc<RwLock<SigningKeys>>,
    watch: Arc<Mutex<KeyWatch>>,
    issuer: String,
    audience: String,
    ttl: Duration,
    validation: Validation,
    /// Tokens that already passed [`AccessTokens::verify`], by their exact text: the same
    /// bytes always verify the same way, so only their lifetime needs checking again. A
    /// signature check costs tens of microseconds, more than a whole nearby answer.
    verified: Arc<Mutex<Verified>>,
}

/// Two generations of verified tokens: a hit in the old one moves up, and the young one
/// becomes the old one when it is full.
#[derive(Default)]
struct Verified {
    young: HashMap<Box<str>, AccessGrant>,
    old: HashMap<Box<str>, AccessGrant>,
}

/// When the key files were last looked at, and what they looked like then.
struct KeyWatch {
    checked: Instant,
    stamp: Option<KeyStamp>,
}

/// The modification times of the key file and of its retired keys' directory.
type KeyStamp = (SystemTime, Option<SystemTime>);

fn key_stamp(path: &Path) -> Option<KeyStamp> {
    let modified = |p: &Path| std::fs::metadata(p).and_then(|m| m.modified()).ok();
    Some((modified(path)?, modified(&super::keys::retired_dir(path))))
}

/// How often the key files are looked at for a rotation: at most this stale, a server signs
/// with a retired key (which every server still accepts) or refuses a new key's token.
const ROTATION_CHECK: Duration = Duration::from_secs(2);

/// Verified tokens kept per generation.
const VERIFIED_PER_GENERATION: usize = 20_000;

impl AccessTokens {
    pub fn new(keys: SigningKeys, issuer: String, audience: String, ttl: Duration) -> Self {
        let mut validation = Validation::new(Algorithm::EdDSA);
        validation.set_issuer(&[&issuer]);
        validation.set_audience(&[&audience]);
        validation.set_required_spec_claims(&["exp", "iat", "iss", "aud", "sub"]);
        validation.leeway = 30;
        validation.validate_nbf = true;
        let stamp = keys.path().and_then(key_stamp);
        Self {
            keys: Arc::new(RwLock::new(keys)),
            watch: Arc::new(Mutex::new(KeyWatch {
                checked: Instant::now(),
                stamp,
            })),
            issuer,
            audience,
            ttl,
            validation,
            verified: Arc::default(),
        }
    }

    pub fn ttl(&self) -> Duration {
        self.ttl
    }

    /// The keys in use now (the signing key and the retired ones that still verify).
    pub fn keys(&self) -> SigningKeys {
        self.follow_rotation();
        self.current()
    }

    fn current(&self) -> SigningKeys {
        self.keys
            .read()
            .unwrap_or_else(PoisonError::into_inner)
            .clone()
    }

    /// Loads the key files again if they changed since they were last looked at (at most
    /// every [`ROTATION_CHECK`]): after `vicinity keys rotate`, every running server signs
    /// with the new key and still verifies with the old one, without a restart. Tokens
    /// verified before are forgotten, so a key retired with `--revoke-old` stops verifying.
    fn follow_rotation(&self) {
        let Some(path) = self
            .keys
            .read()
            .unwrap_or_else(PoisonError::into_inner)
            .path()
            .map(Path::to_path_buf)
        else {
            return;
        };
        let mut watch = self.watch.lock().unwrap_or_else(PoisonError::into_inner);
        if watch.checked.elapsed() < ROTATION_CHECK {
            return;
        }
        watch.checked = Instant::now();
        let stamp = key_stamp(&path);
        if stamp.is_none() || stamp == watch.stamp {
            return;
        }
        match SigningKeys::load_or_create(&path, false) {
            Ok((keys, _)) => {
                tracing::info!(kid = keys.kid(), "signing keys changed on disk: loaded");
                *self.keys.write().unwrap_or_else(PoisonError::into_inner) = keys;
                watch.stamp = stamp;
                let mut verified = self.verified.lock().unwrap_or_else(PoisonError::into_inner);
                verified.young.clear();
                verified.old.clear();
            }
            Err(error) => {
                tracing::warn!(%error, "signing keys changed on disk but cannot be loaded")
            }
        }
    }

    /// A token for `user_id` in the login `family_id`, through `client_id`.
    pub fn issue(
        &self,
        user_id: UserId,
        family_id: TokenFamilyId,
        client_id: &str,
        scope: ScopeSet,
        now: DateTime<Utc>,
    ) -> Result<String, jsonwebtoken::errors::Error> {
        self.sign(user_id.to_string(), family_id, client_id, scope, now)
    }

    /// A token like [`AccessTokens::issue`] that lives `ttl` instead of the configured time
    /// (`vicinity admin token --ttl`).
    pub fn issue_for(
        &self,
        user_id: UserId,
        family_id: TokenFamilyId,
        client_id: &str,
        scope: ScopeSet,
        now: DateTime<Utc>,
        ttl: Duration,
    ) -> Result<String, jsonwebtoken::errors::Error> {
        let lived = Self {
            ttl,
            ..self.clone()
        };
        lived.sign(user_id.to_string(), family_id, client_id, scope, now)
    }

    /// A token for a client acting for itself, in its client credentials grant `grant_id`.
    pub fn issue_for_client(
        &self,
        grant_id: TokenFamilyId,
        client_id: &str,
        scope: ScopeSet,
        now: DateTime<Utc>,
    ) -> Result<String, jsonwebtoken::errors::Error> {
        self.sign(client_id.to_owned(), grant_id, client_id, scope, now)
    }

    fn sign(
        &self,
        sub: String,
        family_id: TokenFamilyId,
        client_id: &str,
        scope: ScopeSet,
        now: DateTime<Utc>,
    ) -> Result<String, jsonwebtoken::errors::Error> {
        self.follow_rotation();
        let keys = self.current();
        let mut header = Header::new(Algorithm::EdDSA);
        header.typ = Some(TOKEN_TYPE.into());
        header.kid = Some(keys.kid().to_owned());
        let iat = now.timestamp();
        let claims = Claims {
            iss: self.issuer.clone(),
            sub,
            aud: self.audience.clone(),
            exp: iat + i64::try_from(self.ttl.as_secs()).unwrap_or(i64::MAX / 2),
            iat,
            jti: format!(
                "{:016x}{:016x}",
                rand::random::<u64>(),
                rand::random::<u64>()
            ),
            client_id: client_id.to_owned(),
            scope: scope.to_string(),
            sid: family_id.to_string(),
        };
        jsonwebtoken::encode(&header, &claims, keys.encoding())
    }

    /// Verifies signature, algorithm, type, issuer, audience and lifetime.
    pub fn verify(&self, token: &str) -> Result<AccessGrant, TokenRejection> {
        // Bound the work an attacker can cause with a huge header value.
        if token.len() > 4096 {
            return Err(TokenRejection::Invalid);
        }
        self.follow_rotation();
        let mut verified = self.verified.lock().unwrap_or_else(PoisonError::into_inner);
        let known = match verified.young.get(token) {
            Some(grant) => Some(grant.clone()),
            None => verified.old.remove(token).inspect(|grant| {
                verified.young.insert(token.into(), grant.clone());
            }),
        };
        drop(verified);
        if let Some(grant) = known {
            // As the full check would: expired once `exp` is more than the leeway ago.
            let leeway = i64::try_from(self.validation.leeway).unwrap_or(0);
            if Utc::now().timestamp() > grant.expires_at.saturating_add(leeway) {
                return Err(TokenRejection::Expired);
            }
            return Ok(grant);
        }
        let grant = self.verify_fully(token)?;
        let mut verified = self.verified.lock().unwrap_or_else(PoisonError::into_inner);
        if verified.young.len() >= VERIFIED_PER_GENERATION {
            verified.old = std::mem::take(&mut verified.young);
        }
        verified.young.insert(token.into(), grant.clone());
        Ok(grant)
    }

    fn verify_fully(&self, token: &str) -> Result<AccessGrant, TokenRejection> {
        let header = jsonwebtoken::decode_header(token).map_err(|_| TokenRejection::Invalid)?;
        let typ = header.typ.as_deref().map(str::to_ascii_lowercase);
        if !matches!(typ.as_deref(), Some("at+jwt" | "application/at+jwt")) {
            return Err(TokenRejection::WrongType);
        }
        // Every token this server issues names its key; one that does not was not made here.
        let kid = header.kid.ok_or(TokenRejection::Invalid)?;
        self.follow_rotation();
        let keys = self.current();
        let decoding = keys
            .decoding_for(&kid, Utc::now().timestamp())
            .ok_or(TokenRejection::Invalid)?;
        let data =
            jsonwebtoken::decode::<Claims>(token, decoding, &self.validation).map_err(|error| {
                match error.kind() {
                    ErrorKind::ExpiredSignature => TokenRejection::Expired,
                    ErrorKind::InvalidAudience | ErrorKind::InvalidIssuer => {
                        TokenRejection::WrongAudienceOrIssuer
                    }
                    _ => TokenRejection::Invalid,
                }
            })?;
        let claims = data.claims;
        let leeway = i64::try_from(self.validation.leeway).unwrap_or(0);
        if claims.iat > Utc::now().timestamp().saturating_add(leeway) {
            return Err(TokenRejection::Invalid);
        }
        // A client acting for itself is its own subject; anything else names a person.
        let user_id = if claims.sub == claims.client_id {
            None
        } else {
            Some(UserId::parse(&claims.sub).map_err(|_| TokenRejection::Invalid)?)
        };
        Ok(AccessGrant {
            user_id,
            family_id: TokenFamilyId::parse(&claims.sid).map_err(|_| TokenRejection::Invalid)?,
            client_id: claims.client_id,
            scope: ScopeSet::parse(&claims.scope).map_err(|_| TokenRejection::Invalid)?,
            expires_at: claims.exp,
        })
    }
}

#[cfg(test)]
mod tests {
    use base64::Engine;
    use base64::engine::general_purpose::URL_SAFE_NO_PAD;

    use super::*;

    fn tokens() -> AccessTokens {
        AccessTokens::new(
            SigningKeys::generate(),
            "http://issuer".into(),
            "api".into(),
            Duration::from_secs(900),
        )
    }

    fn issue(tokens: &AccessTokens, now: DateTime<Utc>) -> String {
        tokens
            .issue(
                UserId::from_raw(7),
                TokenFamilyId::from_raw(9),
                "vicinity",
                ScopeSet::first_party(),
                now,
            )
            .unwrap()
    }

    #[test]
    fn an_issued_token_verifies_and_round_trips_its_claims() {
        let tokens = tokens();
        let grant = tokens.verify(&issue(&tokens, Utc::now())).unwrap();
        assert_eq!(grant.user_id, Some(UserId::from_raw(7)));
        assert_eq!(grant.family_id, TokenFamilyId::from_raw(9));
        assert_eq!(grant.scope, ScopeSet::first_party());
    }

    #[test]
    fn an_expired_token_is_refused() {
        let tokens = tokens();
        let token = issue(&tokens, Utc::now() - chrono::Duration::hours(1));
        assert_eq!(tokens.verify(&token), Err(TokenRejection::Expired));
    }

    #[test]
    fn a_remembered_token_still_expires() {
        let tokens = tokens();
        // Issued so that its `exp` plus the 30 s leeway is one second away.
        let issued = Utc::now() - chrono::Duration::seconds(900 + 29);
        let token = issue(&tokens, issued);
        assert!(tokens.verify(&token).is_ok());
        assert!(tokens.verify(&token).is_ok(), "remembered");
        // A changed signature is a different token, checked in full.
        let (signed, signature) = token.rsplit_once('.').unwrap();
        let flipped = if signature.starts_with('A') { 'B' } else { 'A' };
        let forged = format!("{signed}.{flipped}{}", &signature[1..]);
        assert_eq!(tokens.verify(&forged), Err(TokenRejection::Invalid));
        std::thread::sleep(Duration::from_millis(2_100));
        assert_eq!(tokens.verify(&token), Err(TokenRejection::Expired));
    }

    #[test]
    fn a_token_signed_by_another_key_is_refused() {
        let token = issue(&tokens(), Utc::now());
        assert_eq!(tokens().verify(&token), Err(TokenRejection::Invalid));
    }

    #[test]
    fn a_token_for_another_audience_is_refused() {
        let keys = SigningKeys::generate();
        let ttl = Duration::from_secs(60);
        let elsewhere =
            AccessTokens::new(keys.clone(), "http://issuer".into(), "other".into(), ttl);
        let here = AccessTokens::new(keys, "http://issuer".into(), "api".into(), ttl);
        let token = issue(&elsewhere, Utc::now());
        assert_eq!(
            here.verify(&token),
            Err(TokenRejection::WrongAudienceOrIssuer)
        );
    }

    #[test]
    fn an_unsigned_token_is_refused() {
        let tokens = tokens();
        let token = issue(&tokens, Utc::now());
        let payload = token.split('.').nth(1).unwrap();
        let header = URL_SAFE_NO_PAD.encode(
            serde_json::json!({"alg": "none", "typ": "at+jwt", "kid": tokens.keys().kid()})
                .to_string(),
        );
        assert_eq!(
            tokens.verify(&format!("{header}.{payload}.")),
            Err(TokenRejection::Invalid)
        );
    }

    #[test]
    fn a_tampered_payload_is_refused() {
        let tokens = tokens();
        let token = issue(&tokens, Utc::now());
        let mut parts: Vec<String> = token.split('.').map(str::to_owned).collect();
        let mut claims: serde_json::Value =
            serde_json::from_slice(&URL_SAFE_NO_PAD.decode(&parts[1]).unwrap()).unwrap();
        claims["scope"] = "admin".into();
        parts[1] = URL_SAFE_NO_PAD.encode(claims.to_string());
        assert_eq!(
            tokens.verify(&parts.join(".")),
            Err(TokenRejection::Invalid)
        );
    }
}
