//! OAuth clients: the third-party apps an operator registers (RFC 6749 §2).

use std::fmt;

use chrono::{DateTime, Utc};

use url::{Host, Url};

use crate::error::ValidationErrors;
use crate::scope::{Scope, ScopeSet};
use crate::secret::{random_base64url, sha256_hex};

/// RFC 6749 §2.1: a confidential client can keep a secret (a server), a public one cannot (an
/// app on a phone, a single-page app) and proves itself with PKCE alone.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ClientType {
    Public,
    Confidential,
}

impl ClientType {
    pub const fn as_str(self) -> &'static str {
        match self {
            ClientType::Public => "public",
            ClientType::Confidential => "confidential",
        }
    }

    pub fn parse(text: &str) -> Result<Self, String> {
        match text {
            "public" => Ok(ClientType::Public),
            "confidential" => Ok(ClientType::Confidential),
            other => Err(format!(
                "`{}` is not a client type: use `public` or `confidential`",
                other.chars().take(40).collect::<String>()
            )),
        }
    }
}

impl fmt::Display for ClientType {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

/// A client's public identifier: 22 base64url characters (128 random bits), so that it cannot
/// be guessed from another one.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub struct ClientId(String);

impl ClientId {
    pub fn generate() -> Self {
        Self(random_base64url::<16>())
    }

    /// A value read back from storage, which only holds validated ids.
    pub fn from_trusted(text: String) -> Self {
        Self(text)
    }

    pub fn as_str(&self) -> &str {
        &self.0
    }
}

impl fmt::Display for ClientId {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.0)
    }
}

/// A confidential client's secret: 256 random bits, base64url. It is shown once, when the
/// client is created, and only its hash is kept.
pub struct ClientSecret(String);

impl ClientSecret {
    pub fn generate() -> Self {
        Self(random_base64url::<32>())
    }

    pub fn expose(&self) -> &str {
        &self.0
    }

    /// What is stored instead of the secret: its SHA-256, hex.
    pub fn hash(&self) -> String {
        sha256_hex(&self.0)
    }
}

impl fmt::Debug for ClientSecret {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("ClientSecret(…)")
    }
}

/// A registered redirection endpoint (RFC 6749 §3.1.2). Authorization requests must name one
/// of the client's exactly; only a loopback one may differ in its port (RFC 8252 §7.3).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RedirectUri(String);

/// The longest redirect URI accepted.
const MAX_REDIRECT_URI: usize = 2_000;

impl RedirectUri {
    /// Accepts, as RFC 9700 §2.1 and RFC 8252 advise:
    /// - `https` URIs;
    /// - `http` only to a loopback address literal (`127.0.0.1`, `[::1]`), for native apps;
    /// - for public clients, a private-use scheme in reverse-domain form (`com.example.app:/cb`,
    ///   RFC 8252 §7.1).
    ///
    /// Never a fragment (RFC 6749 §3.1.2), user information, or `localhost` (which a
    /// resolver may send elsewhere; RFC 8252 §8.3).
    pub fn parse(text: &str, client_type: ClientType) -> Result<Self, String> {
        if text.len() > MAX_REDIRECT_URI {
            return Err(format!(
                "a redirect URI has at most {MAX_REDIRECT_URI} characters"
            ));
        }
        // The URL parser would drop tabs and newlines silently; the registered text must be
        // the one requests are compared with, character for character.
        if text.chars().any(|c| c.is_whitespace() || c.is_control()) {
            return Err("a redirect URI cannot hold spaces or control characters".into());
        }
        let url = Url::parse(text).map_err(|e| format!("`{text}` is not an absolute URI: {e}"))?;
        if url.fragment().is_some() {
            return Err(format!(
                "`{text}` has a fragment, which a redirect URI must not"
            ));
        }
        if !url.username().is_empty() || url.password().is_some() {
            return Err(format!("`{text}` holds user information"));
        }
        match url.scheme() {
            "https" => match url.host() {
                Some(Host::Domain("localhost")) => Err(localhost(text)),
                Some(_) => Ok(()),
                None => Err(format!("`{text}` has no host")),
            },
            "http" => match url.host() {
                Some(Host::Ipv4(ip)) if ip.is_loopback() => Ok(()),
                Some(Host::Ipv6(ip)) if ip.is_loopback() => Ok(()),
                Some(Host::Domain("localhost")) => Err(localhost(text)),
                _ => Err(format!(
                    "`{text}` uses http to a host other than the loopback address: use https"
                )),
            },
            scheme if scheme.contains('.') => match client_type {
                ClientType::Public => Ok(()),
                ClientType::Confidential => Err(format!(
                    "`{text}` uses a private-use scheme, which only a public (native) client may"
                )),
            },
            _ => Err(format!(
                "`{text}` must use https, http to a loopback address, or (native apps) a \
                 private-use scheme in reverse-domain form such as com.example.app"
            )),
        }?;
        Ok(Self(text.to_owned()))
    }

    /// A value read back from storage, which only holds validated URIs.
    pub fn from_trusted(text: String) -> Self {
        Self(text)
    }

    pub fn as_str(&self) -> &str {
        &self.0
    }

    /// Whether an authorization request's `redirect_uri` names this endpoint: the same text,
    /// character for character (RFC 9700 §2.1), except that for an `http` loopback endpoint
    /// the port may differ, since a native app listens on whatever port it got (RFC 8252
    /// §7.3). Scheme, address, path and query must still be identical.
    pub fn matches(&self, presented: &str) -> bool {
        if self.0 == presented {
            return true;
        }
        let (Ok(registered), Ok(presented_url)) = (Url::parse(&self.0), Url::parse(presented))
        else {
            return false;
        };
        let loopback = |url: &Url| {
            url.scheme() == "http"
                && match url.host() {
                    Some(Host::Ipv4(ip)) => ip.is_loopback(),
                    Some(Host::Ipv6(ip)) => ip.is_loopback(),
                    _ => false,
                }
        };
        if !loopback(&registered) || !loopback(&presented_url) {
            return false;
        }
        // Compare the texts with the port removed, so that nothing the parser normalises
        // (case, dot segments, escapes) can make two different strings equal.
        let without_port = |text: &str, url: &Url| -> Option<String> {
            let host = url.host_str()?;
            let start = text.find("://")? + 3;
            let authority_end = start + host.len();
            if text.get(start..authority_end)? != host {
                return None;
            }
            let rest = text.get(authority_end..)?;
            let rest = match url.port() {
                Some(_) => rest
                    .strip_prefix(':')?
                    .trim_start_matches(|c: char| c.is_ascii_digit()),
                None => rest,
            };
            Some(format!("{}{rest}", text.get(..authority_end)?))
        };
        !presented
            .chars()
            .any(|c| c.is_whitespace() || c.is_control())
            && without_port(&self.0, &registered).is_some_and(|registered| {
                without_port(presented, &presented_url) == Some(registered)
            })
    }
}

fn localhost(text: &str) -> String {
    format!("`{text}` names localhost: use the loopback address 127.0.0.1 or [::1] instead")
}

/// A registered client as stored (never its secret).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Client {
    pub id: ClientId,
    pub name: String,
    pub client_type: ClientType,
    pub redirect_uris: Vec<RedirectUri>,
    pub scopes: ScopeSet,
    pub created_at: DateTime<Utc>,
}

/// The longest client name accepted.
const MAX_NAME: usize = 80;

/// What an operator registers: checked as a whole, every problem reported at once.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct NewClient {
    /// Shown to people on the consent page.
    pub name: String,
    pub client_type: ClientType,
    pub redirect_uris: Vec<RedirectUri>,
    /// The most the client may ever ask for.
    pub scopes: ScopeSet,
}

impl NewClient {
    pub fn parse(
        name: &str,
        client_type: ClientType,
        redirect_uris: &[String],
        scopes: &str,
    ) -> Result<Self, ValidationErrors> {
        let mut errors = ValidationErrors::default();
        let name = errors.check("name", client_name(name));
        let mut uris = Vec::new();
        for (i, text) in redirect_uris.iter().enumerate() {
            let field = format!("redirect_uris[{i}]");
            if let Some(uri) = errors.check(&field, RedirectUri::parse(text, client_type)) {
                if uris.contains(&uri) {
                    errors.check::<()>(&field, Err(format!("`{text}` is listed twice")));
                } else {
                    uris.push(uri);
                }
            }
        }
        // Every client so far uses the authorization code grant (a public one has no other),
        // which needs somewhere to send the code.
        if redirect_uris.is_empty() && client_type == ClientType::Public {
            errors.check::<()>(
                "redirect_uris",
                Err("a public client needs at least one redirect URI".into()),
            );
        }
        let scopes = errors.check("scopes", client_scopes(scopes, client_type));
        errors.finish(|| {
            Some(NewClient {
                name: name?,
                client_type,
                redirect_uris: uris,
                scopes: scopes?,
            })
        })
    }
}

fn client_name(name: &str) -> Result<String, String> {
    let name = name.trim();
    if name.is_empty() {
        return Err(
            "a client needs a name, which people see when they are asked to approve it".into(),
        );
    }
    if name.chars().count() > MAX_NAME {
        return Err(format!("a client name has at most {MAX_NAME} characters"));
    }
    if name.chars().any(char::is_control) {
        return Err("a client name cannot hold control characters".into());
    }
    Ok(name.to_owned())
}

fn client_scopes(text: &str, client_type: ClientType) -> Result<ScopeSet, String> {
    let scopes = ScopeSet::parse(text).map_err(|e| e.to_string())?;
    if scopes.is_empty() {
        return Err("a client needs at least one scope".into());
    }
    // Only a confidential client acting as itself (client credentials) can hold `admin`; a
    // public client's tokens act for people, and third-party tokens never administer.
    if scopes.contains(Scope::Admin) && client_type == ClientType::Public {
        return Err("a public client cannot hold the `admin` scope".into());
    }
    Ok(scopes)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_redirect_uri_matches_exactly_except_a_loopback_port() {
        let web = RedirectUri::from_trusted("https://app.example/cb?x=1".into());
        assert!(web.matches("https://app.example/cb?x=1"));
        for other in [
            "https://app.example/cb?x=2",
            "https://app.example/cb",
            "https://APP.example/cb?x=1",
            "https://app.example:443/cb?x=1",
            "https://app.example/cb?x=1#f",
            "https://app.example/cb/../cb?x=1",
        ] {
            assert!(!web.matches(other), "{other}");
        }
        let native = RedirectUri::from_trusted("http://127.0.0.1/callback".into());
        for same in [
            "http://127.0.0.1/callback",
            "http://127.0.0.1:53121/callback",
            "http://127.0.0.1:8/callback",
        ] {
            assert!(native.matches(same), "{same}");
        }
        for other in [
            "http://127.0.0.1:53121/callback/",
            "http://127.0.0.1:53121/other",
            "http://127.0.0.2:53121/callback",
            "http://[::1]:53121/callback",
            "https://127.0.0.1:53121/callback",
            "http://user@127.0.0.1:53121/callback",
            "http://127.0.0.1:53121/call%62ack",
            "http://127.000.0.1:53121/callback",
            "http://127.0.0.1:53121/callback?",
            "http://127.0.0.1:/callback",
        ] {
            assert!(!native.matches(other), "{other}");
        }
        let v6 = RedirectUri::from_trusted("http://[::1]:8080/cb".into());
        assert!(v6.matches("http://[::1]:1234/cb"));
        assert!(v6.matches("http://[::1]/cb"));
        assert!(!v6.matches("http://[::1]:1234/cb2"));
    }

    fn uri(text: &str, client_type: ClientType) -> Result<RedirectUri, String> {
        RedirectUri::parse(text, client_type)
    }

    #[test]
    fn redirect_uris_follow_the_current_best_practice() {
        use ClientType::{Confidential, Public};
        for ok in [
            "https://app.example/callback",
            "https://app.example:8443/cb?tenant=1",
            "http://127.0.0.1/cb",
            "http://127.0.0.1:53682/cb",
            "http://[::1]:8080/cb",
        ] {
            assert!(uri(ok, Confidential).is_ok(), "{ok}");
            assert!(uri(ok, Public).is_ok(), "{ok}");
        }
        assert!(uri("com.example.app:/oauth2redirect", Public).is_ok());
        for bad in [
            "com.example.app:/oauth2redirect",
            "http://app.example/cb",
            "http://localhost:8080/cb",
            "https://localhost/cb",
            "https://app.example/cb#frag",
            "https://user:pw@app.example/cb",
            "/relative/cb",
            "javascript:alert(1)",
            "https://app.example/c\nb",
            "https://app.example/a b",
            "myapp:/cb",
            "",
        ] {
            assert!(uri(bad, Confidential).is_err(), "{bad}");
        }
        assert!(uri(&format!("https://a.example/{}", "x".repeat(2_000)), Public).is_err());
    }

    #[test]
    fn a_new_client_reports_every_problem_at_once() {
        let errors = NewClient::parse(
            " ",
            ClientType::Public,
            &["http://app.example/cb".into()],
            "profile admin",
        )
        .unwrap_err();
        let fields: Vec<&str> = errors.0.iter().map(|e| e.field.as_str()).collect();
        assert_eq!(fields, ["name", "redirect_uris[0]", "scopes"]);

        let errors = NewClient::parse("App", ClientType::Public, &[], "nonsense").unwrap_err();
        let fields: Vec<&str> = errors.0.iter().map(|e| e.field.as_str()).collect();
        assert_eq!(fields, ["redirect_uris", "scopes"]);

        let twice = vec![
            "https://a.example/cb".to_owned(),
            "https://a.example/cb".to_owned(),
        ];
        let errors = NewClient::parse("App", ClientType::Public, &twice, "profile").unwrap_err();
        assert_eq!(errors.0.len(), 1);
        assert!(errors.0[0].message.contains("twice"));
    }

    #[test]
    fn a_valid_client_keeps_what_was_given() {
        let client = NewClient::parse(
            "  Trail Log ",
            ClientType::Confidential,
            &["https://trail.example/cb".into()],
            "checkins:read admin",
        )
        .unwrap();
        assert_eq!(client.name, "Trail Log");
        assert_eq!(client.redirect_uris[0].as_str(), "https://trail.example/cb");
        assert!(client.scopes.contains(Scope::Admin));
        assert!(client.scopes.contains(Scope::CheckinsRead));
        assert!(!client.scopes.contains(Scope::Profile));
        // A confidential client may have no redirect URI (client credentials only).
        assert!(NewClient::parse("Job", ClientType::Confidential, &[], "admin").is_ok());
    }

    #[test]
    fn ids_and_secrets_are_random_base64url() {
        let (a, b) = (ClientId::generate(), ClientId::generate());
        assert_ne!(a, b);
        assert_eq!(a.as_str().len(), 22);
        let secret = ClientSecret::generate();
        assert_eq!(secret.expose().len(), 43);
        assert!(
            secret
                .expose()
                .chars()
                .all(|c| c.is_ascii_alphanumeric() || c == '-' || c == '_')
        );
        assert_eq!(format!("{secret:?}"), "ClientSecret(…)");
        assert_eq!(secret.hash(), sha256_hex(secret.expose()));
    }
}
