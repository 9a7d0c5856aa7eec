//! Authentication: signing keys, access tokens (JWT), refresh tokens, passwords, throttling,
//! and the extractors through which handlers state who may call them.

pub mod access;
mod extract;
pub mod keys;
pub mod password;
pub mod refresh;
pub mod throttle;

pub use extract::{AdminCaller, AppCaller, Caller, RequiredScope, Scoped, scopes};
