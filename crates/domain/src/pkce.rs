//! Proof Key for Code Exchange (RFC 7636), S256 only: RFC 9700 §2.1.1 requires PKCE, and the
//! `plain` method would hand the verifier to whoever sees the authorization request.

use base64::Engine;
use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use sha2::{Digest, Sha256};

/// Why a PKCE parameter was refused; each message is meant for the client's developer.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum PkceError {
    #[error("PKCE is required: send `code_challenge` with `code_challenge_method=S256`")]
    MissingChallenge,
    #[error("`code_challenge_method` must be S256 (plain is not accepted)")]
    UnsupportedMethod,
    #[error("`code_challenge` must be the 43-character base64url SHA-256 of the verifier")]
    MalformedChallenge,
    #[error("`code_verifier` must be 43 to 128 characters of A-Z a-z 0-9 - . _ ~")]
    MalformedVerifier,
}

/// The challenge an authorization request carried: base64url(SHA-256(verifier)).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct CodeChallenge(String);

impl CodeChallenge {
    /// Accepts only `S256` with a well-formed challenge. A missing method means `plain`
    /// (RFC 7636 §4.3), which is refused like any other.
    pub fn parse(challenge: Option<&str>, method: Option<&str>) -> Result<Self, PkceError> {
        let challenge = challenge.ok_or(PkceError::MissingChallenge)?;
        if method != Some("S256") {
            return Err(PkceError::UnsupportedMethod);
        }
        let well_formed = challenge.len() == 43
            && challenge
                .bytes()
                .all(|b| b.is_ascii_alphanumeric() || b == b'-' || b == b'_')
            && URL_SAFE_NO_PAD
                .decode(challenge)
                .is_ok_and(|bytes| bytes.len() == 32);
        if !well_formed {
            return Err(PkceError::MalformedChallenge);
        }
        Ok(Self(challenge.to_owned()))
    }

    /// A value read back from storage, which only holds parsed challenges.
    pub fn from_trusted(text: String) -> Self {
        Self(text)
    }

    pub fn as_str(&self) -> &str {
        &self.0
    }

    /// The challenge `verifier` answers.
    pub fn of(verifier: &CodeVerifier) -> Self {
        Self(URL_SAFE_NO_PAD.encode(Sha256::digest(verifier.0.as_bytes())))
    }

    /// Whether `verifier` is the one this challenge was made from (compared in constant time).
    pub fn is_answered_by(&self, verifier: &CodeVerifier) -> bool {
        let expected = Self::of(verifier);
        self.0.len() == expected.0.len()
            && self
                .0
                .bytes()
                .zip(expected.0.bytes())
                .fold(0u8, |diff, (a, b)| diff | (a ^ b))
                == 0
    }
}

/// The secret a token request proves the authorization request's origin with.
#[derive(Clone, PartialEq, Eq)]
pub struct CodeVerifier(String);

impl CodeVerifier {
    /// RFC 7636 §4.1: 43 to 128 unreserved characters.
    pub fn parse(text: &str) -> Result<Self, PkceError> {
        let well_formed = (43..=128).contains(&text.len())
            && text
                .bytes()
                .all(|b| b.is_ascii_alphanumeric() || matches!(b, b'-' | b'.' | b'_' | b'~'));
        if !well_formed {
            return Err(PkceError::MalformedVerifier);
        }
        Ok(Self(text.to_owned()))
    }
}

impl std::fmt::Debug for CodeVerifier {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("CodeVerifier(…)")
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_rfc_7636_example_verifies() {
        // RFC 7636, appendix B.
        let verifier = CodeVerifier::parse("dBjftJeZ4CVP-mB92K27uhbUJU1p1r_wW1gFWFOEjXk").unwrap();
        let challenge = CodeChallenge::parse(
            Some("E9Melhoa2OwvFrEMTJguCHaoeK1t8URWbuGJSstw-cM"),
            Some("S256"),
        )
        .unwrap();
        assert!(challenge.is_answered_by(&verifier));
        assert_eq!(CodeChallenge::of(&verifier), challenge);
        let other = CodeVerifier::parse("dBjftJeZ4CVP-mB92K27uhbUJU1p1r_wW1gFWFOEjXj").unwrap();
        assert!(!challenge.is_answered_by(&other));
    }

    #[test]
    fn plain_missing_and_malformed_pkce_is_refused() {
        let good = "E9Melhoa2OwvFrEMTJguCHaoeK1t8URWbuGJSstw-cM";
        assert_eq!(
            CodeChallenge::parse(None, Some("S256")),
            Err(PkceError::MissingChallenge)
        );
        for method in [None, Some("plain"), Some("s256"), Some("S512")] {
            assert_eq!(
                CodeChallenge::parse(Some(good), method),
                Err(PkceError::UnsupportedMethod),
                "{method:?}"
            );
        }
        for challenge in [
            "",
            "short",
            "E9Melhoa2OwvFrEMTJguCHaoeK1t8URWbuGJSstw-c",
            "E9Melhoa2OwvFrEMTJguCHaoeK1t8URWbuGJSstw-cM=",
            "E9Melhoa2OwvFrEMTJguCHaoeK1t8URWbuGJSstw+cM",
            "E9Melhoa2OwvFrEMTJguCHaoeK1t8URWbuGJSstw-cN",
        ] {
            assert_eq!(
                CodeChallenge::parse(Some(challenge), Some("S256")),
                Err(PkceError::MalformedChallenge),
                "{challenge}"
            );
        }
        for verifier in [
            "",
            &"a".repeat(42),
            &"a".repeat(129),
            &format!("{}!", "a".repeat(43)),
        ] {
            assert_eq!(
                CodeVerifier::parse(verifier),
                Err(PkceError::MalformedVerifier)
            );
        }
        assert!(CodeVerifier::parse(&"a~._-".repeat(9)).is_ok());
    }
}
