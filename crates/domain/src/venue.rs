//! Venues: the shared places people check in at, and the rules their fields follow.
//!
//! Positions are validated by the geo crate (`vicinity_geo::Point`); this module holds the
//! text fields, the name key that search and duplicate detection compare, and what "a similar
//! name" means.

use crate::error::ValidationErrors;
use crate::user::free_text;

/// A venue's name: 1–100 characters, trimmed, no control characters.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct VenueName(String);

impl VenueName {
    pub fn parse(input: &str) -> Result<Self, String> {
        let name = free_text(input, 1, 100, false)?;
        if name_key(&name).is_empty() {
            return Err("must contain at least one letter or digit".into());
        }
        Ok(Self(name))
    }

    pub fn as_str(&self) -> &str {
        &self.0
    }

    /// The form names are searched and compared in (see [`name_key`]).
    pub fn key(&self) -> String {
        name_key(&self.0)
    }

    pub fn from_trusted(stored: String) -> Self {
        Self(stored)
    }
}

/// A name reduced for matching: lower case, every run of characters that are not letters or
/// digits replaced by one space, trimmed. `"Joe's  Pizza!"` becomes `"joe s pizza"`.
pub fn name_key(name: &str) -> String {
    let mut key = String::with_capacity(name.len());
    let mut gap = false;
    for c in name.chars().flat_map(char::to_lowercase) {
        if c.is_alphanumeric() {
            if gap && !key.is_empty() {
                key.push(' ');
            }
            gap = false;
            key.push(c);
        } else {
            gap = true;
        }
    }
    key
}

/// How well a name key matches a search query key, best first; `None` when it does not.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord)]
pub enum NameMatch {
    /// The name starts with the query.
    Prefix = 0,
    /// A later word of the name starts with the query.
    Word = 1,
    /// The query occurs inside a word.
    Inside = 2,
}

impl NameMatch {
    pub fn of(name_key: &str, query_key: &str) -> Option<Self> {
        if name_key.starts_with(query_key) {
            return Some(Self::Prefix);
        }
        let mut found = None;
        for (at, _) in name_key.match_indices(query_key) {
            let word_start = name_key
                .get(..at)
                .is_some_and(|before| before.ends_with(' '));
            if word_start {
                return Some(Self::Word);
            }
            found = Some(Self::Inside);
        }
        found
    }
}

/// Whether two venue names (as keys) are alike enough that the second is probably the first
/// entered again: equal, one a whole-word part of the other ("blue bottle" and "blue bottle
/// coffee"), or a typo apart (edit distance 1 from 5 to 8 characters, 2 beyond; short names
/// must match exactly).
pub fn names_similar(a: &str, b: &str) -> bool {
    let (a, b) = (strip_article(a), strip_article(b));
    if a == b {
        return true;
    }
    let (short, long) = if a.len() <= b.len() { (a, b) } else { (b, a) };
    if short.chars().count() >= 4 && format!(" {long} ").contains(&format!(" {short} ")) {
        return true;
    }
    let allowed = match short.chars().count() {
        0..=4 => 0,
        5..=8 => 1,
        _ => 2,
    };
    edit_distance_within(a, b, allowed)
}

fn strip_article(key: &str) -> &str {
    key.strip_prefix("the ").unwrap_or(key)
}

/// Levenshtein distance ≤ `limit`, in O(n × limit) with early exit.
fn edit_distance_within(a: &str, b: &str, limit: usize) -> bool {
    let a: Vec<char> = a.chars().collect();
    let b: Vec<char> = b.chars().collect();
    if a.len().abs_diff(b.len()) > limit {
        return false;
    }
    let mut previous: Vec<usize> = (0..=b.len()).collect();
    for (i, ca) in a.iter().enumerate() {
        let mut current = Vec::with_capacity(b.len() + 1);
        current.push(i + 1);
        for (j, cb) in b.iter().enumerate() {
            let substitute = previous.get(j).copied().unwrap_or(usize::MAX) + usize::from(ca != cb);
            let delete = previous
                .get(j + 1)
                .copied()
                .unwrap_or(usize::MAX)
                .saturating_add(1);
            let insert = current
                .get(j)
                .copied()
                .unwrap_or(usize::MAX)
                .saturating_add(1);
            current.push(substitute.min(delete).min(insert));
        }
        if current.iter().min().is_some_and(|best| *best > limit) {
            return false;
        }
        previous = current;
    }
    previous.last().is_some_and(|distance| *distance <= limit)
}

/// A category id as clients send it: a lowercase slug such as `coffee` or `train-station`.
/// Whether it exists is the store's question.
pub fn parse_category_id(input: &str) -> Result<String, String> {
    let valid = !input.is_empty()
        && input.len() <= 64
        && input
            .bytes()
            .all(|b| b.is_ascii_lowercase() || b.is_ascii_digit() || b == b'-');
    if valid {
        Ok(input.to_owned())
    } else {
        Err("must be a category id such as `coffee` (see GET /v1/categories)".into())
    }
}

/// Where a venue is, in words. Every part is optional.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Address {
    pub street: Option<String>,
    pub locality: Option<String>,
    pub region: Option<String>,
    pub postal_code: Option<String>,
    /// ISO 3166-1 alpha-2, upper case.
    pub country_code: Option<String>,
}

/// Rules for one optional text part of a venue; an empty string means "none".
pub fn optional_text(input: &str, max: usize) -> Result<Option<String>, String> {
    if input.trim().is_empty() {
        return Ok(None);
    }
    free_text(input, 1, max, false).map(Some)
}

pub fn parse_postal_code(input: &str) -> Result<Option<String>, String> {
    let Some(code) = optional_text(input, 16)? else {
        return Ok(None);
    };
    if code
        .chars()
        .all(|c| c.is_ascii_alphanumeric() || c == ' ' || c == '-')
    {
        Ok(Some(code))
    } else {
        Err("may contain only letters, digits, spaces and `-`".into())
    }
}

pub fn parse_country_code(input: &str) -> Result<Option<String>, String> {
    let code = input.trim();
    if code.is_empty() {
        return Ok(None);
    }
    if code.len() == 2 && code.bytes().all(|b| b.is_ascii_alphabetic()) {
        Ok(Some(code.to_ascii_uppercase()))
    } else {
        Err("must be a two-letter ISO 3166-1 country code such as `US`".into())
    }
}

/// A phone number as printed: up to 32 characters of digits, spaces, `+ - ( ) .`, with at
/// least 3 digits.
pub fn parse_phone(input: &str) -> Result<Option<String>, String> {
    let phone = input.trim();
    if phone.is_empty() {
        return Ok(None);
    }
    let allowed = phone
        .chars()
        .all(|c| c.is_ascii_digit() || " +-().".contains(c));
    let digits = phone.chars().filter(char::is_ascii_digit).count();
    if phone.len() > 32 || !allowed || digits < 3 {
        return Err(
            "must be a phone number such as `+1 212-555-0100` (at most 32 characters)".into(),
        );
    }
    Ok(Some(phone.to_owned()))
}

/// A web address: `http://` or `https://`, a host, at most 2048 characters, no spaces.
pub fn parse_url(input: &str) -> Result<Option<String>, String> {
    let url = input.trim();
    if url.is_empty() {
        return Ok(None);
    }
    let rest = url
        .strip_prefix("https://")
        .or_else(|| url.strip_prefix("http://"));
    let host = rest.map(|r| r.split(['/', '?', '#']).next().unwrap_or(""));
    let valid = url.len() <= 2048
        && host.is_some_and(|h| !h.is_empty() && !h.contains('@'))
        && !url.chars().any(|c| c.is_whitespace() || c.is_control());
    if valid {
        Ok(Some(url.to_owned()))
    } else {
        Err("must be an http:// or https:// address of at most 2048 characters".into())
    }
}

/// The text fields of a venue, validated (its position and category are checked elsewhere).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct VenueDetails {
    pub name: VenueName,
    pub category_id: String,
    pub address: Address,
    pub phone: Option<String>,
    pub url: Option<String>,
}

/// Raw address parts as a client sent them.
#[derive(Debug, Clone, Default)]
pub struct AddressInput<'a> {
    pub street: Option<&'a str>,
    pub locality: Option<&'a str>,
    pub region: Option<&'a str>,
    pub postal_code: Option<&'a str>,
    pub country_code: Option<&'a str>,
}

impl AddressInput<'_> {
    /// Validates the parts present, recording errors under `address.<part>`.
    pub fn parse(&self, errors: &mut ValidationErrors) -> Address {
        let mut part =
            |name: &str, value: Option<&str>, rule: fn(&str) -> Result<Option<String>, String>| {
                value.and_then(|v| errors.check(&format!("address.{name}"), rule(v)).flatten())
            };
        Address {
            street: part("street", self.street, |v| optional_text(v, 200)),
            locality: part("locality", self.locality, |v| optional_text(v, 100)),
            region: part("region", self.region, |v| optional_text(v, 100)),
            postal_code: part("postal_code", self.postal_code, parse_postal_code),
            country_code: part("country_code", self.country_code, parse_country_code),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn names_are_bounded_and_keyed() {
        assert!(VenueName::parse("").is_err());
        assert!(VenueName::parse("   ").is_err());
        assert!(VenueName::parse("!!!").is_err());
        assert!(VenueName::parse(&"x".repeat(101)).is_err());
        assert!(VenueName::parse(&"x".repeat(10_000)).is_err());
        assert!(VenueName::parse("Tab\there").is_err());
        let name = VenueName::parse("  Joe's  Pizza! ").unwrap();
        assert_eq!(name.as_str(), "Joe's  Pizza!");
        assert_eq!(name.key(), "joe s pizza");
        assert_eq!(name_key("Café DU Monde"), "café du monde");
    }

    #[test]
    fn matches_rank_prefix_then_word_then_inside() {
        assert_eq!(
            NameMatch::of("blue bottle coffee", "blue"),
            Some(NameMatch::Prefix)
        );
        assert_eq!(
            NameMatch::of("blue bottle coffee", "cof"),
            Some(NameMatch::Word)
        );
        assert_eq!(
            NameMatch::of("blue bottle coffee", "ottle"),
            Some(NameMatch::Inside)
        );
        assert_eq!(NameMatch::of("blue bottle coffee", "tea"), None);
        // A word match later in the name beats an inside match earlier.
        assert_eq!(NameMatch::of("abar bar", "bar"), Some(NameMatch::Word));
        assert!(NameMatch::Prefix < NameMatch::Word && NameMatch::Word < NameMatch::Inside);
    }

    #[test]
    fn similar_names_are_the_same_place_typed_again() {
        assert!(names_similar("blue bottle coffee", "blue bottle coffee"));
        assert!(names_similar("the blue bottle", "blue bottle"));
        assert!(names_similar("blue bottle", "blue bottle coffee"));
        assert!(names_similar("starbucks", "starbuck"));
        assert!(names_similar("central park zoo", "central prak zoo"));
        assert!(!names_similar("joe s pizza", "joe s tacos"));
        assert!(!names_similar("bar", "bar italia"));
        assert!(
            !names_similar("cafe", "cave"),
            "short names must match exactly"
        );
        assert!(!names_similar("cafe", "cafes"));
        assert!(!names_similar("pizza hut", "pizza express"));
    }

    #[test]
    fn text_fields_follow_their_rules() {
        assert_eq!(parse_country_code("us"), Ok(Some("US".into())));
        assert!(parse_country_code("USA").is_err());
        assert_eq!(parse_country_code(""), Ok(None));
        assert!(parse_phone("+1 (212) 555-0100").unwrap().is_some());
        assert!(parse_phone("call me").is_err());
        assert!(parse_phone("12").is_err());
        assert!(parse_url("https://example.com/menu?x=1").unwrap().is_some());
        assert!(parse_url("ftp://example.com").is_err());
        assert!(parse_url("https://").is_err());
        assert!(parse_url("https://exa mple.com").is_err());
        assert!(parse_url(&format!("https://e.com/{}", "a".repeat(2048))).is_err());
        assert!(parse_postal_code("10001-1234").unwrap().is_some());
        assert!(parse_postal_code("10001;").is_err());
        assert_eq!(
            parse_category_id("train-station"),
            Ok("train-station".into())
        );
        assert!(parse_category_id("Food").is_err());
        assert!(parse_category_id("").is_err());
        let mut errors = ValidationErrors::default();
        let address = AddressInput {
            street: Some("1 Main St"),
            country_code: Some("usa"),
            ..AddressInput::default()
        }
        .parse(&mut errors);
        assert_eq!(address.street.as_deref(), Some("1 Main St"));
        assert_eq!(errors.0.len(), 1);
        assert_eq!(errors.0[0].field, "address.country_code");
    }
}
