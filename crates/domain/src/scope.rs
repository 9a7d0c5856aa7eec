//! OAuth scopes: what a token lets its bearer do.

use std::fmt;

/// One permission a token can carry (DESIGN.md §4).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub enum Scope {
    Profile,
    CheckinsRead,
    CheckinsWrite,
    FriendsRead,
    FriendsWrite,
    LocationRead,
    LocationWrite,
    VenuesWrite,
    Admin,
}

impl Scope {
    pub const ALL: [Scope; 9] = [
        Scope::Profile,
        Scope::CheckinsRead,
        Scope::CheckinsWrite,
        Scope::FriendsRead,
        Scope::FriendsWrite,
        Scope::LocationRead,
        Scope::LocationWrite,
        Scope::VenuesWrite,
        Scope::Admin,
    ];

    pub const fn as_str(self) -> &'static str {
        match self {
            Scope::Profile => "profile",
            Scope::CheckinsRead => "checkins:read",
            Scope::CheckinsWrite => "checkins:write",
            Scope::FriendsRead => "friends:read",
            Scope::FriendsWrite => "friends:write",
            Scope::LocationRead => "location:read",
            Scope::LocationWrite => "location:write",
            Scope::VenuesWrite => "venues:write",
            Scope::Admin => "admin",
        }
    }

    /// What the scope lets an app do, in the words the consent page shows a person.
    pub const fn describe(self) -> &'static str {
        match self {
            Scope::Profile => "See your profile: username, display name and bio",
            Scope::CheckinsRead => "See your check-ins and those your friends share with you",
            Scope::CheckinsWrite => "Check in at places for you, and delete your check-ins",
            Scope::FriendsRead => "See your friends, friend requests and blocks",
            Scope::FriendsWrite => "Send and answer friend requests, unfriend and block for you",
            Scope::LocationRead => {
                "See where you and your friends are, as precisely as each of you shares it"
            }
            Scope::LocationWrite => "Update or clear your current location",
            Scope::VenuesWrite => "Add and edit places",
            Scope::Admin => "Administer this Vicinity server",
        }
    }

    const fn bit(self) -> u16 {
        1 << (self as u16)
    }
}

impl fmt::Display for Scope {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

/// A scope string names a scope this server does not know.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("unknown scope `{0}`")]
pub struct UnknownScope(pub String);

impl std::str::FromStr for Scope {
    type Err = UnknownScope;

    fn from_str(s: &str) -> Result<Self, Self::Err> {
        Scope::ALL
            .into_iter()
            .find(|scope| scope.as_str() == s)
            .ok_or_else(|| UnknownScope(s.chars().take(40).collect()))
    }
}

/// A set of scopes, written as RFC 6749 §3.3 says: space-separated, order irrelevant.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Default)]
pub struct ScopeSet(u16);

impl ScopeSet {
    pub const EMPTY: ScopeSet = ScopeSet(0);

    /// What a person's own app may do on their behalf: everything except administration.
    pub fn first_party() -> Self {
        Scope::ALL
            .into_iter()
            .filter(|s| *s != Scope::Admin)
            .collect()
    }

    /// Parses a space-separated list; unknown scopes are an error, duplicates are harmless.
    pub fn parse(text: &str) -> Result<Self, UnknownScope> {
        text.split(' ')
            .filter(|part| !part.is_empty())
            .map(str::parse::<Scope>)
            .collect()
    }

    pub const fn contains(self, scope: Scope) -> bool {
        self.0 & scope.bit() != 0
    }

    pub const fn is_subset_of(self, other: ScopeSet) -> bool {
        self.0 & !other.0 == 0
    }

    pub const fn is_empty(self) -> bool {
        self.0 == 0
    }

    pub fn iter(self) -> impl Iterator<Item = Scope> {
        Scope::ALL.into_iter().filter(move |s| self.contains(*s))
    }
}

impl FromIterator<Scope> for ScopeSet {
    fn from_iter<I: IntoIterator<Item = Scope>>(iter: I) -> Self {
        ScopeSet(iter.into_iter().fold(0, |bits, scope| bits | scope.bit()))
    }
}

impl fmt::Display for ScopeSet {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let names: Vec<&str> = self.iter().map(Scope::as_str).collect();
        f.write_str(&names.join(" "))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn scope_sets_round_trip_through_text() {
        let set = ScopeSet::parse("profile checkins:read  admin").unwrap();
        assert!(set.contains(Scope::Admin) && set.contains(Scope::CheckinsRead));
        assert!(!set.contains(Scope::CheckinsWrite));
        assert_eq!(ScopeSet::parse(&set.to_string()).unwrap(), set);
    }

    #[test]
    fn unknown_scopes_are_rejected() {
        assert_eq!(
            ScopeSet::parse("profile superuser"),
            Err(UnknownScope("superuser".into()))
        );
    }

    #[test]
    fn first_party_tokens_never_carry_admin() {
        assert!(!ScopeSet::first_party().contains(Scope::Admin));
        assert!(ScopeSet::first_party().contains(Scope::LocationWrite));
    }

    #[test]
    fn subsets_are_detected() {
        let narrow = ScopeSet::parse("profile").unwrap();
        let wide = ScopeSet::parse("profile friends:read").unwrap();
        assert!(narrow.is_subset_of(wide));
        assert!(!wide.is_subset_of(narrow));
        assert!(ScopeSet::EMPTY.is_subset_of(narrow));
    }
}
