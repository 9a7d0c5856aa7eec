//! Vicinity's domain: entities, identifiers, validation and privacy rules.
//!
//! Everything here is pure: no I/O, no HTTP, no SQL. Values that reach this crate from the
//! outside are parsed into newtypes (`Username`, `Email`, …) that cannot hold invalid data.

pub mod checkin;
pub mod client;
pub mod error;
pub mod id;
pub mod pkce;
pub mod scope;
pub mod secret;
pub mod settings;
pub mod stats;
pub mod user;
pub mod venue;
pub mod webhook;

pub use client::{Client, ClientId, ClientSecret, ClientType, NewClient, RedirectUri};
pub use error::{FieldError, ValidationErrors};
pub use id::{CheckInId, IdParseError, TokenFamilyId, UserId, VenueId};
pub use pkce::{CodeChallenge, CodeVerifier, PkceError};
pub use scope::{Scope, ScopeSet, UnknownScope};
pub use settings::{PrecisionLevel, Visibility};
pub use user::{Bio, DisplayName, Email, NewUser, Password, ProfileChanges, User, Username};
pub use venue::{
    Address, AddressInput, NameMatch, VenueDetails, VenueName, name_key, names_similar,
};
