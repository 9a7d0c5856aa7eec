//! People: accounts, their public names and their settings.

use chrono::{DateTime, Utc};

use crate::error::ValidationErrors;
use crate::id::UserId;
use crate::settings::{PrecisionLevel, Visibility};

/// Names that would read as the service itself or collide with route words.
const RESERVED_USERNAMES: &[&str] = &[
    "admin",
    "administrator",
    "api",
    "me",
    "root",
    "support",
    "system",
    "vicinity",
];

/// A handle such as `ada_l`: 3–30 ASCII letters, digits, `_` or `.`, unique ignoring case.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Username(String);

impl Username {
    pub fn parse(input: &str) -> Result<Self, String> {
        let len = input.chars().count();
        if !(3..=30).contains(&len) {
            return Err(format!("must be 3 to 30 characters long (got {len})"));
        }
        if !input
            .bytes()
            .all(|b| b.is_ascii_alphanumeric() || b == b'_' || b == b'.')
        {
            return Err("may contain only ASCII letters, digits, `_` and `.`".into());
        }
        if input.starts_with('.') || input.ends_with('.') || input.contains("..") {
            return Err("must not start or end with `.` or contain `..`".into());
        }
        if RESERVED_USERNAMES.contains(&input.to_ascii_lowercase().as_str()) {
            return Err("is reserved".into());
        }
        Ok(Self(input.to_owned()))
    }

    /// The form uniqueness is decided on: `Ada` and `ada` are one name.
    pub fn key(&self) -> String {
        self.0.to_ascii_lowercase()
    }

    pub fn as_str(&self) -> &str {
        &self.0
    }

    /// Rebuilds a name that was validated before it was stored.
    pub fn from_trusted(stored: String) -> Self {
        Self(stored)
    }
}

/// An email address, syntactically valid (RFC 5321 lengths), unique ignoring case.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Email(String);

impl Email {
    pub fn parse(input: &str) -> Result<Self, String> {
        let trimmed = input.trim();
        if trimmed.len() > 254 {
            return Err("must be at most 254 characters long".into());
        }
        let parsed = email_address::EmailAddress::parse_with_options(
            trimmed,
            email_address::Options::default()
                .without_display_text()
                .without_domain_literal(),
        )
        .map_err(|_| "must be a valid email address such as `ada@example.com`".to_string())?;
        if !parsed.domain().contains('.') {
            return Err("must have a domain with a dot, such as `example.com`".into());
        }
        Ok(Self(parsed.as_str().to_owned()))
    }

    pub fn key(&self) -> String {
        self.0.to_lowercase()
    }

    pub fn as_str(&self) -> &str {
        &self.0
    }

    pub fn from_trusted(stored: String) -> Self {
        Self(stored)
    }
}

/// A password as typed: 8–128 characters. It is only ever hashed, never stored or logged.
pub struct Password(String);

impl Password {
    pub fn parse(input: &str) -> Result<Self, String> {
        let len = input.chars().count();
        if len < 8 {
            return Err("must be at least 8 characters long".into());
        }
        if len > 128 {
            return Err("must be at most 128 characters long".into());
        }
        Ok(Self(input.to_owned()))
    }

    pub fn expose(&self) -> &str {
        &self.0
    }
}

impl std::fmt::Debug for Password {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("Password(<redacted>)")
    }
}

/// Text a person writes about themselves: trimmed, bounded, free of control characters.
pub(crate) fn free_text(
    input: &str,
    min: usize,
    max: usize,
    allow_newlines: bool,
) -> Result<String, String> {
    let text = input.trim();
    let len = text.chars().count();
    if len < min {
        return Err("must not be empty".into());
    }
    if len > max {
        return Err(format!("must be at most {max} characters long (got {len})"));
    }
    if text
        .chars()
        .any(|c| c.is_control() && !(allow_newlines && c == '\n'))
    {
        return Err("must not contain control characters".into());
    }
    Ok(text.to_owned())
}

/// The name shown to others: 1–50 characters.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct DisplayName(String);

impl DisplayName {
    pub fn parse(input: &str) -> Result<Self, String> {
        free_text(input, 1, 50, false).map(Self)
    }

    pub fn as_str(&self) -> &str {
        &self.0
    }

    pub fn from_trusted(stored: String) -> Self {
        Self(stored)
    }
}

/// A short self-description: up to 280 characters, line breaks allowed.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct Bio(String);

impl Bio {
    pub fn parse(input: &str) -> Result<Self, String> {
        free_text(input, 0, 280, true).map(Self)
    }

    pub fn as_str(&self) -> &str {
        &self.0
    }

    pub fn from_trusted(stored: String) -> Self {
        Self(stored)
    }
}

/// A person's account as the system knows it.
#[derive(Debug, Clone, PartialEq)]
pub struct User {
    pub id: UserId,
    pub username: Username,
    pub email: Email,
    pub display_name: DisplayName,
    pub bio: Bio,
    pub location_precision: PrecisionLevel,
    pub default_visibility: Visibility,
    pub is_admin: bool,
    pub created_at: DateTime<Utc>,
    pub updated_at: DateTime<Utc>,
}

/// A validated registration, ready to be stored once the password is hashed.
#[derive(Debug)]
pub struct NewUser {
    pub username: Username,
    pub email: Email,
    pub password: Password,
    pub display_name: DisplayName,
}

impl NewUser {
    /// Checks every field and reports all problems together.
    pub fn parse(
        username: &str,
        email: &str,
        password: &str,
        display_name: Option<&str>,
    ) -> Result<Self, ValidationErrors> {
        let mut errors = ValidationErrors::default();
        let username = errors.check("username", Username::parse(username));
        let email = errors.check("email", Email::parse(email));
        let password = errors.check("password", Password::parse(password));
        let display_name = match display_name {
            Some(name) => errors.check("display_name", DisplayName::parse(name)),
            None => username
                .as_ref()
                .map(|u| DisplayName(u.as_str().to_owned())),
        };
        if let (Some(u), Some(p)) = (&username, &password)
            && p.expose().to_ascii_lowercase().contains(&u.key())
        {
            errors.0.push(crate::FieldError::new(
                "password",
                "must not contain the username",
            ));
        }
        errors.finish(|| {
            Some(NewUser {
                username: username?,
                email: email?,
                password: password?,
                display_name: display_name?,
            })
        })
    }
}

/// The profile fields a person may change; `None` leaves a field as it is.
#[derive(Debug, Default, Clone, PartialEq)]
pub struct ProfileChanges {
    pub display_name: Option<DisplayName>,
    pub bio: Option<Bio>,
    pub location_precision: Option<PrecisionLevel>,
    pub default_visibility: Option<Visibility>,
}

impl ProfileChanges {
    pub fn is_empty(&self) -> bool {
        *self == ProfileChanges::default()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn usernames_follow_the_rules() {
        for good in [
            "ada",
            "Ada_Lovelace",
            "a.b.c",
            "x_1",
            "abcdefghijabcdefghijabcdefghij",
        ] {
            assert!(Username::parse(good).is_ok(), "{good}");
        }
        for bad in [
            "ab",
            "",
            "has space",
            "dot.",
            ".dot",
            "a..b",
            "émile",
            "ADMIN",
            "me",
            "abcdefghijabcdefghijabcdefghijk",
        ] {
            assert!(Username::parse(bad).is_err(), "{bad}");
        }
    }

    #[test]
    fn username_uniqueness_ignores_case() {
        assert_eq!(
            Username::parse("Ada").unwrap().key(),
            Username::parse("aDA").unwrap().key()
        );
    }

    #[test]
    fn emails_are_validated() {
        assert!(Email::parse("ada@example.com").is_ok());
        for bad in [
            "",
            "ada",
            "ada@",
            "@example.com",
            "ada@localhost",
            "Ada <ada@example.com>",
            "a b@example.com",
        ] {
            assert!(Email::parse(bad).is_err(), "{bad}");
        }
        assert!(Email::parse(&format!("{}@example.com", "a".repeat(250))).is_err());
    }

    #[test]
    fn registration_reports_every_bad_field_at_once() {
        let errors = NewUser::parse("x", "nope", "short", Some("")).unwrap_err();
        let fields: Vec<&str> = errors.0.iter().map(|e| e.field.as_str()).collect();
        assert_eq!(fields, ["username", "email", "password", "display_name"]);
    }

    #[test]
    fn display_name_defaults_to_the_username() {
        let user = NewUser::parse("ada", "ada@example.com", "correct horse", None).unwrap();
        assert_eq!(user.display_name.as_str(), "ada");
    }

    #[test]
    fn a_password_containing_the_username_is_refused() {
        let errors = NewUser::parse("ada", "ada@example.com", "xxAda12345", None).unwrap_err();
        assert_eq!(errors.0[0].field, "password");
    }

    #[test]
    fn free_text_is_trimmed_bounded_and_clean() {
        assert_eq!(DisplayName::parse("  Ada  ").unwrap().as_str(), "Ada");
        assert!(DisplayName::parse(&"x".repeat(51)).is_err());
        assert!(DisplayName::parse("a\u{0007}b").is_err());
        assert!(Bio::parse("line one\nline two").is_ok());
        assert!(Bio::parse(&"é".repeat(281)).is_err());
    }

    #[test]
    fn passwords_never_show_in_debug_output() {
        let password = Password::parse("correct horse battery").unwrap();
        assert!(!format!("{password:?}").contains("horse"));
    }
}
