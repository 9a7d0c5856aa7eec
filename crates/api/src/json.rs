//! Request-body extractors that answer in the error envelope and name the offending field.

use std::collections::HashMap;

use actix_web::dev::Payload;
use actix_web::error::PayloadError;
use actix_web::http::header;
use actix_web::web::Bytes;
use actix_web::{FromRequest, HttpRequest};
use futures_util::future::LocalBoxFuture;
use serde::de::DeserializeOwned;

use crate::config::DEFAULT_BODY_LIMIT;
use crate::error::ApiError;

/// A JSON body: `Content-Type: application/json`, within the size limit, exactly the fields the
/// target type declares (types use `deny_unknown_fields`).
pub struct JsonBody<T>(pub T);

fn has_content_type(req: &HttpRequest, wanted: &str) -> bool {
    req.headers()
        .get(header::CONTENT_TYPE)
        .and_then(|v| v.to_str().ok())
        .and_then(|v| v.split(';').next())
        .map(|v| {
            let v = v.trim().to_ascii_lowercase();
            v == wanted || (wanted == "application/json" && v.ends_with("+json"))
        })
        .unwrap_or(false)
}

fn body_limit(req: &HttpRequest) -> usize {
    req.app_data::<BodyLimit>()
        .map_or(DEFAULT_BODY_LIMIT, |limit| limit.0)
}

/// The configured body limit, stored as app data (beside actix's `PayloadConfig`, which
/// enforces it) so extractors can name it in errors.
#[derive(Debug, Clone, Copy)]
pub struct BodyLimit(pub usize);

/// Reads the whole body, refusing to buffer more than the limit.
fn read_body(
    req: &HttpRequest,
    payload: &mut Payload,
) -> LocalBoxFuture<'static, Result<Bytes, ApiError>> {
    let limit = body_limit(req);
    let bytes = Bytes::from_request(req, payload);
    Box::pin(async move {
        bytes
            .await
            .map_err(|error| match error.as_error::<PayloadError>() {
                Some(PayloadError::Overflow) => ApiError::payload_too_large(limit),
                _ => ApiError::malformed(None, "the request body could not be read"),
            })
    })
}

impl<T: DeserializeOwned + 'static> FromRequest for JsonBody<T> {
    type Error = ApiError;
    type Future = LocalBoxFuture<'static, Result<Self, ApiError>>;

    fn from_request(req: &HttpRequest, payload: &mut Payload) -> Self::Future {
        if !has_content_type(req, "application/json") {
            return Box::pin(async { Err(ApiError::unsupported_media_type("application/json")) });
        }
        let body = read_body(req, payload);
        Box::pin(async move { parse_json(&body.await?).map(JsonBody) })
    }
}

/// Parses JSON, naming the path of the field at fault (`location.lat: invalid type …`).
pub fn parse_json<T: DeserializeOwned>(bytes: &[u8]) -> Result<T, ApiError> {
    if bytes.iter().all(u8::is_ascii_whitespace) {
        return Err(ApiError::malformed(
            None,
            "the request body is empty; send a JSON object",
        ));
    }
    let mut deserializer = serde_json::Deserializer::from_slice(bytes);
    let value = serde_path_to_error::deserialize(&mut deserializer).map_err(|error| {
        let path = error.path().to_string();
        let inner = error.into_inner();
        if path == "." || path.is_empty() {
            ApiError::malformed(None, format!("invalid JSON body: {inner}"))
        } else {
            ApiError::malformed(Some(path.clone()), format!("{path}: {inner}"))
        }
    })?;
    deserializer
        .end()
        .map_err(|e| ApiError::malformed(None, format!("invalid JSON body: {e}")))?;
    Ok(value)
}

/// An `application/x-www-form-urlencoded` body as OAuth endpoints receive it.
///
/// RFC 6749 §3.1: a parameter sent without a value is treated as omitted, and no parameter may
/// appear more than once.
pub struct FormParams(HashMap<String, String>);

/// Why a form body was refused; the OAuth layer words it per RFC 6749 §5.2.
#[derive(Debug)]
pub enum FormError {
    UnsupportedMediaType,
    TooLarge,
    Unreadable,
    Repeated(String),
}

impl FormParams {
    pub fn get(&self, name: &str) -> Option<&str> {
        self.0.get(name).map(String::as_str)
    }

    pub fn names(&self) -> impl Iterator<Item = &str> {
        self.0.keys().map(String::as_str)
    }

    pub fn parse(bytes: &[u8]) -> Result<Self, FormError> {
        let pairs: Vec<(String, String)> =
            serde_urlencoded::from_bytes(bytes).map_err(|_| FormError::Unreadable)?;
        let mut params = HashMap::new();
        for (name, value) in pairs {
            if value.is_empty() {
                continue;
            }
            if params.insert(name.clone(), value).is_some() {
                return Err(FormError::Repeated(name));
            }
        }
        Ok(FormParams(params))
    }
}

impl FromRequest for FormParams {
    type Error = FormError;
    type Future = LocalBoxFuture<'static, Result<Self, FormError>>;

    fn from_request(req: &HttpRequest, payload: &mut Payload) -> Self::Future {
        if !has_content_type(req, "application/x-www-form-urlencoded") {
            return Box::pin(async { Err(FormError::UnsupportedMediaType) });
        }
        let body = read_body(req, payload);
        Box::pin(async move {
            let bytes = body.await.map_err(|e| match e.code() {
                "payload_too_large" => FormError::TooLarge,
                _ => FormError::Unreadable,
            })?;
            FormParams::parse(&bytes)
        })
    }
}

impl std::fmt::Display for FormError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            FormError::UnsupportedMediaType => {
                f.write_str("the body must be application/x-www-form-urlencoded")
            }
            FormError::TooLarge => f.write_str("the request body is too large"),
            FormError::Unreadable => f.write_str("the form body could not be parsed"),
            FormError::Repeated(name) => write!(f, "parameter `{name}` was sent more than once"),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[derive(Debug, serde::Deserialize)]
    #[serde(deny_unknown_fields)]
    #[allow(dead_code)]
    struct Login {
        username: String,
        password: String,
    }

    #[test]
    fn type_errors_name_the_field() {
        let error = parse_json::<Login>(br#"{"username": 5, "password": "x"}"#).unwrap_err();
        assert!(
            error.to_string().contains("username: invalid type"),
            "{error}"
        );
    }

    #[test]
    fn unknown_fields_and_trailing_data_are_refused() {
        assert!(
            parse_json::<Login>(br#"{"username":"a","password":"b","admin":true}"#)
                .unwrap_err()
                .to_string()
                .contains("unknown field `admin`")
        );
        assert!(parse_json::<Login>(br#"{"username":"a","password":"b"} {}"#).is_err());
        assert!(parse_json::<Login>(b"   ").is_err());
    }

    #[test]
    fn repeated_form_parameters_are_refused_and_empty_ones_ignored() {
        assert!(matches!(FormParams::parse(b"a=1&a=2"), Err(FormError::Repeated(n)) if n == "a"));
        let params = FormParams::parse(b"a=1&b=&c=x%20y").unwrap();
        assert_eq!(params.get("a"), Some("1"));
        assert_eq!(params.get("b"), None);
        assert_eq!(params.get("c"), Some("x y"));
    }
}
