//! The OpenAPI 3.1 document, generated from the handlers' annotations. The committed
//! `openapi.yaml` must equal [`openapi_yaml`]'s output (a test checks it).

use utoipa::openapi::security::{HttpAuthScheme, HttpBuilder, SecurityScheme};
use utoipa::{Modify, OpenApi};

use crate::error::{ErrorBody, ErrorDetail, ErrorEnvelope};
use crate::routes::{
    accounts, admin, apps, authorize, checkins, friends, me, oauth, ops, presence, stats, users,
    venues,
};

struct BearerAuth;

impl Modify for BearerAuth {
    fn modify(&self, openapi: &mut utoipa::openapi::OpenApi) {
        let components = openapi.components.get_or_insert_with(Default::default);
        components.add_security_scheme(
            "client",
            SecurityScheme::Http(
                HttpBuilder::new()
                    .scheme(HttpAuthScheme::Basic)
                    .description(Some(
                        "A confidential OAuth client's id and secret (`client_secret_basic`); \
                         they may instead be sent as `client_id` and `client_secret` in the \
                         form (`client_secret_post`), never both.",
                    ))
                    .build(),
            ),
        );
        components.add_security_scheme(
            "app",
            SecurityScheme::Http(
                HttpBuilder::new()
                    .scheme(HttpAuthScheme::Bearer)
                    .bearer_format("JWT")
                    .description(Some(
                        "An access token from `/oauth/token` with `grant_type=client_credentials`: \
                         an app acting for itself, not for a person.",
                    ))
                    .build(),
            ),
        );
        components.add_security_scheme(
            "bearer",
            SecurityScheme::Http(
                HttpBuilder::new()
                    .scheme(HttpAuthScheme::Bearer)
                    .bearer_format("JWT")
                    .description(Some(
                        "An access token from `/v1/auth/*` or `/oauth/token`. Each operation \
                         lists the scope it requires.",
                    ))
                    .build(),
            ),
        );
    }
}

/// Every operation that reads a JSON body also answers 415, in the envelope, when the body
/// comes without its declared `Content-Type` (the extractor refuses it before the handler
/// runs), so the document says so once here rather than in each handler's list. Form bodies
/// are not covered: the OAuth endpoints answer RFC 6749's 400 `invalid_request`, and the
/// authorization page documents its own 415, a page.
struct BodyErrors;

impl Modify for BodyErrors {
    fn modify(&self, openapi: &mut utoipa::openapi::OpenApi) {
        use utoipa::openapi::{ContentBuilder, Ref, ResponseBuilder};
        let unsupported = ResponseBuilder::new()
            .description("The body is not sent with the `Content-Type` this operation reads")
            .content(
                "application/json",
                ContentBuilder::new()
                    .schema(Some(Ref::from_schema_name("ErrorEnvelope")))
                    .build(),
            )
            .build();
        for item in openapi.paths.paths.values_mut() {
            let operations = [
                &mut item.get,
                &mut item.put,
                &mut item.post,
                &mut item.delete,
                &mut item.patch,
            ];
            for operation in operations.into_iter().flatten() {
                let reads_json = operation
                    .request_body
                    .as_ref()
                    .is_some_and(|body| body.content.contains_key("application/json"));
                if reads_json {
                    operation
                        .responses
                        .responses
                        .entry("415".to_owned())
                        .or_insert_with(|| unsupported.clone().into());
                }
            }
        }
    }
}

/// The OAuth form bodies: a parameter the server does not know is ignored (RFC 6749 §3.2),
/// but every parameter is one string sent once (§3.1), which the derived schemas do not say.
struct FormBodies;

impl Modify for FormBodies {
    fn modify(&self, openapi: &mut utoipa::openapi::OpenApi) {
        use utoipa::openapi::RefOr;
        use utoipa::openapi::schema::{AdditionalProperties, ObjectBuilder, Schema, Type};
        let Some(components) = openapi.components.as_mut() else {
            return;
        };
        for name in ["TokenRequest", "TokenQuery"] {
            if let Some(RefOr::T(Schema::Object(object))) = components.schemas.get_mut(name) {
                object.additional_properties = Some(Box::new(AdditionalProperties::RefOr(
                    RefOr::T(ObjectBuilder::new().schema_type(Type::String).into()),
                )));
            }
        }
    }
}

#[derive(OpenApi)]
#[openapi(
    info(
        title = "Vicinity",
        description = "Check in at venues and see which friends are nearby right now. \
            Errors (except on /oauth/*) use the envelope \
            `{\"error\": {\"code\", \"message\", \"details\", \"request_id\"}}`; \
            every response carries `X-Request-Id`.",
        license(name = "Apache-2.0", identifier = "Apache-2.0"),
    ),
    paths(
        accounts::register,
        accounts::login,
        me::get_me,
        me::update_me,
        me::delete_me,
        users::get_user,
        friends::search_users,
        friends::send_request,
        friends::list_requests,
        friends::accept_request,
        friends::decline_request,
        friends::cancel_request,
        friends::list_friends,
        friends::unfriend,
        friends::block,
        friends::unblock,
        friends::list_blocks,
        presence::put_location,
        presence::delete_location,
        presence::nearby,
        presence::nearby_stream,
        presence::access_log,
        me::export,
        me::list_apps,
        me::revoke_app,
        apps::set_webhook,
        apps::get_webhook,
        apps::delete_webhook,
        apps::list_deliveries,
        admin::create_client,
        admin::list_clients,
        admin::delete_client,
        admin::promote,
        admin::demote,
        admin::suspend,
        admin::unsuspend,
        admin::delete_user,
        admin::list_users,
        stats::venue_stats,
        stats::top_venues,
        stats::cells,
        stats::overview,
        checkins::create_checkin,
        checkins::get_checkin,
        checkins::delete_checkin,
        checkins::my_checkins,
        checkins::feed,
        checkins::user_checkins,
        checkins::here_now,
        venues::list_categories,
        venues::create_venue,
        venues::search_venues,
        venues::get_venue,
        venues::update_venue,
        venues::delete_venue,
        oauth::token,
        oauth::revoke,
        oauth::introspect,
        oauth::jwks,
        oauth::metadata,
        authorize::authorize_page,
        authorize::authorize_form,
        ops::healthz,
        ops::readyz,
        ops::metrics,
        ops::openapi,
    ),
    components(schemas(ErrorEnvelope, ErrorBody, ErrorDetail)),
    modifiers(&BearerAuth, &BodyErrors, &FormBodies),
    tags(
        (name = "accounts", description = "Registration and sign-in for Vicinity's own apps"),
        (name = "people", description = "Profiles and privacy settings"),
        (name = "friends", description = "Friend requests, friends and blocks"),
        (name = "checkins", description = "Checking in at venues, and who sees it"),
        (name = "presence", description = "Sharing a position and seeing friends nearby"),
        (name = "venues", description = "Places to check in at, radius search and categories"),
        (name = "admin", description = "Operating the server: registered apps, administrators and accounts"),
        (name = "apps", description = "What an app manages for itself: its webhook"),
        (name = "oauth", description = "OAuth 2.0: the authorization page, tokens, revocation, introspection and metadata"),
        (name = "operations", description = "Health, readiness and this document"),
    )
)]
struct ApiDoc;

/// The OpenAPI document as YAML.
pub fn openapi_yaml() -> String {
    ApiDoc::openapi()
        .to_yaml()
        .unwrap_or_else(|error| format!("# cannot render: {error}\n"))
}

/// Who may call a route, as the OpenAPI document declares it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Access {
    /// Anyone; an OAuth client may identify or authenticate itself, as the endpoint says.
    Public,
    /// A confidential OAuth client's credentials, and no bearer token.
    Client,
    /// A client credentials token: an app acting for itself.
    App,
    /// A valid bearer token carrying every one of these scopes (none: any valid token).
    Bearer(Vec<String>),
}

/// Each route of [`crate::routes::ROUTES`] with its declared access, or `None` for a route the
/// document does not describe or describes without a `security` decision.
pub fn route_access() -> Vec<(&'static str, &'static str, Option<Access>)> {
    let document = serde_json::to_value(ApiDoc::openapi()).unwrap_or_default();
    crate::routes::ROUTES
        .iter()
        .map(|&(method, path)| {
            let security = document
                .pointer(&format!(
                    "/paths/{}/{method}/security",
                    path.replace('/', "~1")
                ))
                .and_then(serde_json::Value::as_array)
                .cloned();
            let access = security.map(|requirements| {
                let bearer: Option<Vec<String>> = requirements.iter().find_map(|requirement| {
                    requirement
                        .get("bearer")
                        .and_then(serde_json::Value::as_array)
                        .map(|scopes| {
                            scopes
                                .iter()
                                .filter_map(|scope| scope.as_str().map(str::to_owned))
                                .collect()
                        })
                });
                let anonymous = requirements
                    .iter()
                    .any(|r| r.as_object().is_some_and(serde_json::Map::is_empty));
                let app = requirements.iter().any(|r| r.get("app").is_some());
                match bearer {
                    Some(scopes) => Access::Bearer(scopes),
                    None if anonymous => Access::Public,
                    None if app => Access::App,
                    None => Access::Client,
                }
            });
            (method, path, access)
        })
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    /// A route added without a documented decision on who may call it fails here.
    #[test]
    fn every_route_has_an_explicit_scope_decision() {
        let undecided: Vec<String> = route_access()
            .into_iter()
            .filter(|(_, _, access)| access.is_none())
            .map(|(method, path, _)| format!("{method} {path}"))
            .collect();
        assert!(
            undecided.is_empty(),
            "routes without `security` in their #[utoipa::path]: {undecided:?}"
        );
        let access = route_access();
        let of = |method: &str, path: &str| {
            access
                .iter()
                .find(|(m, p, _)| *m == method && *p == path)
                .and_then(|(_, _, a)| a.clone())
        };
        assert_eq!(
            of("post", "/v1/checkins"),
            Some(Access::Bearer(vec!["checkins:write".into()]))
        );
        assert_eq!(of("post", "/oauth/token"), Some(Access::Public));
        assert_eq!(of("post", "/oauth/introspect"), Some(Access::Client));
        assert_eq!(of("get", "/v1/venues/search"), Some(Access::Bearer(vec![])));
    }
}
