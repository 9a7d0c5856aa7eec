//! The OpenAPI 3.1 document, generated from the handlers' annotations. The committed
//! `openapi.yaml` must equal [`openapi_yaml`]'s output (a test checks it).

use utoipa::openapi::security::{HttpAuthScheme, HttpBuilder, SecurityScheme};
use utoipa::{Modify, OpenApi};

use crate::error::{ErrorBody, ErrorDetail, ErrorEnvelope};
use crate::routes::{
    accounts, authorize, checkins, friends, me, oauth, ops, presence, users, venues,
};

struct BearerAuth;

impl Modify for BearerAuth {
    fn modify(&self, openapi: &mut utoipa::openapi::OpenApi) {
        let components = openapi.components.get_or_insert_with(Default::default);
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
        ops::openapi,
    ),
    components(schemas(ErrorEnvelope, ErrorBody, ErrorDetail)),
    modifiers(&BearerAuth),
    tags(
        (name = "accounts", description = "Registration and sign-in for Vicinity's own apps"),
        (name = "people", description = "Profiles and privacy settings"),
        (name = "friends", description = "Friend requests, friends and blocks"),
        (name = "checkins", description = "Checking in at venues, and who sees it"),
        (name = "presence", description = "Sharing a position and seeing friends nearby"),
        (name = "venues", description = "Places to check in at, radius search and categories"),
        (name = "oauth", description = "OAuth 2.0 token endpoints"),
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
