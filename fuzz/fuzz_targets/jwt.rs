//! Access-token verification (`auth/access.rs`) with a fixed test key. Each input is tried
//! twice: as presented, where only a token carrying exactly the signature this key makes may
//! verify; and re-signed with that key, so that mutated headers and claims get past the
//! signature and reach the checks behind it. A token that verifies is typed, names this key,
//! is for this issuer and audience, is alive, and yields the claims it carries; asking again
//! (answered from the verified-token cache) gives the same answer.

#![no_main]

use std::sync::LazyLock;
use std::time::Duration;

use base64::Engine;
use base64::engine::general_purpose::{STANDARD, URL_SAFE_NO_PAD};
use jsonwebtoken::{Algorithm, EncodingKey};
use libfuzzer_sys::fuzz_target;
use serde_json::Value;
use vicinity_api::SigningKeys;
use vicinity_api::auth::access::{AccessGrant, AccessTokens, TokenRejection};

const ISSUER: &str = "https://vicinity.example";
const AUDIENCE: &str = "vicinity-api";
/// The clock leeway `AccessTokens` allows, in seconds.
const LEEWAY: i64 = 30;

/// PKCS#8 DER of an Ed25519 key: this prefix, then the 32-byte seed. The seed is a fixed
/// test value (0x2a repeated) used nowhere else; fuzz/seeds/jwt.sh signs the seed tokens
/// with the same key.
const PKCS8_PREFIX: [u8; 16] = [
    0x30, 0x2e, 0x02, 0x01, 0x00, 0x30, 0x05, 0x06, 0x03, 0x2b, 0x65, 0x70, 0x04, 0x22, 0x04, 0x20,
];

struct Fixture {
    tokens: AccessTokens,
    kid: String,
    signing: EncodingKey,
}

static FIXTURE: LazyLock<Fixture> = LazyLock::new(|| {
    let mut der = PKCS8_PREFIX.to_vec();
    der.extend_from_slice(&[0x2a; 32]);
    let pem = format!(
        "-----BEGIN PRIVATE KEY-----\n{}\n-----END PRIVATE KEY-----\n",
        STANDARD.encode(&der)
    );
    let keys = SigningKeys::from_pem(&pem, "the fuzz key").expect("the fixed key is valid");
    let kid = keys.kid().to_owned();
    let ttl = Duration::from_secs(900);
    Fixture {
        tokens: AccessTokens::new(keys, ISSUER.into(), AUDIENCE.into(), ttl),
        kid,
        signing: EncodingKey::from_ed_der(&der),
    }
});

fn sign(message: &str) -> String {
    jsonwebtoken::crypto::sign(message.as_bytes(), &FIXTURE.signing, Algorithm::EdDSA)
        .expect("Ed25519 signing cannot fail")
}

fn decode(part: &str) -> Value {
    let bytes = URL_SAFE_NO_PAD
        .decode(part)
        .expect("a verified token's parts are base64url");
    serde_json::from_slice(&bytes).expect("a verified token's parts are JSON")
}

/// What a verified token must have been, given the header and claims it was signed over.
fn check_grant(message: &str, grant: &AccessGrant) {
    let (header, claims) = message
        .rsplit_once('.')
        .expect("a verified token has a header and claims");
    let (header, claims) = (decode(header), decode(claims));
    assert_eq!(header["alg"], "EdDSA");
    let typ = header["typ"].as_str().map(str::to_ascii_lowercase);
    assert!(
        matches!(typ.as_deref(), Some("at+jwt" | "application/at+jwt")),
        "typ {typ:?}"
    );
    assert_eq!(header["kid"], FIXTURE.kid.as_str());
    assert_eq!(claims["iss"], ISSUER);
    assert_eq!(claims["aud"], AUDIENCE);
    let now = chrono::Utc::now().timestamp();
    let exp = claims["exp"].as_i64().expect("exp is a whole number");
    assert!(exp >= now - LEEWAY - 1, "expired: exp {exp}, now {now}");
    let iat = claims["iat"].as_i64().expect("iat is a whole number");
    assert!(
        iat <= now + LEEWAY,
        "issued in the future: iat {iat}, now {now}"
    );
    // jsonwebtoken skips an `nbf` that is not a whole number; only a key holder could send
    // one, and this server's tokens carry none.
    if let Some(nbf) = claims.get("nbf").and_then(Value::as_i64) {
        assert!(nbf <= now + LEEWAY, "not valid yet: nbf {nbf}, now {now}");
    }
    assert_eq!(grant.expires_at, exp);
    assert_eq!(claims["client_id"], grant.client_id.as_str());
    let sub = claims["sub"].as_str().expect("sub is a string");
    match grant.user_id {
        None => assert_eq!(sub, grant.client_id),
        Some(user_id) => assert_eq!(user_id.to_string(), sub),
    }
    assert_eq!(claims["sid"], grant.family_id.to_string());
    let scope = claims["scope"].as_str().expect("scope is a string");
    let named = |word: &str| grant.scope.iter().any(|s| s.to_string() == word);
    assert!(scope.split(' ').filter(|w| !w.is_empty()).all(named));
}

/// Verifies `token` twice: in full, then from the cache of verified tokens.
fn verify(token: &str) -> Result<AccessGrant, TokenRejection> {
    let first = FIXTURE.tokens.verify(token);
    let again = FIXTURE.tokens.verify(token);
    // A token may expire between the two calls; nothing else may change.
    assert!(
        again == first || (first.is_ok() && again == Err(TokenRejection::Expired)),
        "{first:?} then {again:?}"
    );
    first
}

fuzz_target!(|data: &[u8]| {
    let Ok(token) = std::str::from_utf8(data) else {
        return;
    };
    if let Ok(grant) = verify(token) {
        let (message, signature) = token
            .rsplit_once('.')
            .expect("a verified token has a signature");
        assert_eq!(
            signature,
            sign(message),
            "only the key's own signature verifies"
        );
        check_grant(message, &grant);
    }
    if let Some((message, _)) = token.rsplit_once('.') {
        if let Ok(grant) = verify(&format!("{message}.{}", sign(message))) {
            check_grant(message, &grant);
        }
    }
});
