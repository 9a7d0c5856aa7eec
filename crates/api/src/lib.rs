//! Vicinity's HTTP API: the actix-web application, authentication, the error envelope and
//! the OpenAPI document. Handlers parse input into domain types, call the store, map results.

mod app;
pub mod auth;
mod config;
mod cursor;
mod error;
#[doc(hidden)]
pub mod fuzzing;
mod heatmap;
mod json;
mod limits;
mod metrics;
mod openapi;
mod request;
mod routes;
mod webhooks;

pub use app::{Application, CLIENT_REQUEST_TIMEOUT, KEEP_ALIVE, StreamCloser};
pub use auth::keys::{KeyError, SigningKeys};
pub use config::{ApiConfig, LoginThrottleConfig, RateLimit, WebhookConfig};
pub use error::ApiError;
pub use openapi::{Access, openapi_yaml, route_access};
pub use routes::ROUTES;

/// The client id under which Vicinity's own apps obtain tokens through `/v1/auth/*`.
pub const FIRST_PARTY_CLIENT_ID: &str = "vicinity";
