//! Routes, one module per resource.

pub mod accounts;
pub mod admin;
pub mod apps;
pub mod authorize;
pub mod checkins;
pub mod friends;
pub mod me;
pub mod oauth;
pub mod ops;
pub mod presence;
pub(crate) mod query;
pub mod stats;
pub mod users;
pub mod venues;

use actix_web::http::header;
use actix_web::{HttpResponseBuilder, web};

/// Marks a response that carries tokens or credentials as never to be cached (RFC 6749 §5.1).
pub(crate) fn no_store(mut response: HttpResponseBuilder) -> HttpResponseBuilder {
    response.insert_header((header::CACHE_CONTROL, "no-store"));
    response.insert_header((header::PRAGMA, "no-cache"));
    response
}

/// The pattern of the route that answered a request (in its app data once routed): what the
/// metrics label a request with, without matching the path against the table again.
#[derive(Debug, Clone, Copy)]
pub struct RoutePattern(pub &'static str);

/// The methods the route with `pattern` answers, as an `Allow` header lists them (RFC 9110
/// §10.2.1): what a 405 from that route must carry.
pub fn allowed_methods(pattern: &str) -> String {
    ROUTES
        .iter()
        .filter(|(_, path)| *path == pattern)
        .map(|(method, _)| method.to_ascii_uppercase())
        .collect::<Vec<_>>()
        .join(", ")
}

/// Every route: its path, then each method with its handler, in registration order (a
/// literal path before a parameter that would match it). This one list registers the routes
/// and is what tests walk to check that each has a documented scope decision.
macro_rules! route_table {
    ($($path:literal => [$($method:ident $handler:path),+ $(,)?]),+ $(,)?) => {
        /// Every `(method, path)` the server answers, as the OpenAPI document writes them.
        pub const ROUTES: &[(&str, &str)] = &[$($((stringify!($method), $path)),+),+];

        /// Registers every route of the API. Resources, not bare routes, so that a known path
        /// with the wrong method is a 405.
        pub fn configure(cfg: &mut web::ServiceConfig) {
            $(cfg.service(
                web::resource($path)
                    .app_data(RoutePattern($path))
                    $(.route(web::$method().to($handler)))+
            );)+
        }
    };
}

route_table! {
    "/v1/auth/register" => [post accounts::register],
    "/v1/auth/login" => [post accounts::login],
    "/v1/me" => [get me::get_me, patch me::update_me, delete me::delete_me],
    "/v1/users/search" => [get friends::search_users],
    "/v1/users/{user_id}" => [get users::get_user],
    "/v1/me/friend-requests" => [post friends::send_request, get friends::list_requests],
    "/v1/me/friend-requests/{user_id}/accept" => [post friends::accept_request],
    "/v1/me/friend-requests/{user_id}/decline" => [post friends::decline_request],
    "/v1/me/friend-requests/{user_id}" => [delete friends::cancel_request],
    "/v1/me/location" => [put presence::put_location, delete presence::delete_location],
    "/v1/me/nearby" => [get presence::nearby],
    "/v1/me/nearby/stream" => [get presence::nearby_stream],
    "/v1/me/location/access-log" => [get presence::access_log],
    "/v1/me/export" => [get me::export],
    "/v1/me/apps" => [get me::list_apps],
    "/v1/me/apps/{client_id}" => [delete me::revoke_app],
    "/v1/app/webhook" => [put apps::set_webhook, get apps::get_webhook, delete apps::delete_webhook],
    "/v1/app/webhook/deliveries" => [get apps::list_deliveries],
    "/v1/admin/clients" => [post admin::create_client, get admin::list_clients],
    "/v1/admin/clients/{client_id}" => [delete admin::delete_client],
    "/v1/admin/users" => [get admin::list_users],
    "/v1/admin/users/{user_id}/admin" => [put admin::promote, delete admin::demote],
    "/v1/admin/users/{user_id}/suspension" => [put admin::suspend, delete admin::unsuspend],
    "/v1/admin/users/{user_id}" => [delete admin::delete_user],
    "/v1/admin/venues/{venue_id}/stats" => [get stats::venue_stats],
    "/v1/admin/stats/top-venues" => [get stats::top_venues],
    "/v1/admin/stats/cells" => [get stats::cells],
    "/v1/admin/stats/overview" => [get stats::overview],
    "/v1/checkins" => [post checkins::create_checkin],
    "/v1/checkins/{checkin_id}" => [get checkins::get_checkin, delete checkins::delete_checkin],
    "/v1/me/checkins" => [get checkins::my_checkins],
    "/v1/feed" => [get checkins::feed],
    "/v1/users/{user_id}/checkins" => [get checkins::user_checkins],
    "/v1/me/friends" => [get friends::list_friends],
    "/v1/me/friends/{user_id}" => [delete friends::unfriend],
    "/v1/me/blocks" => [get friends::list_blocks],
    "/v1/me/blocks/{user_id}" => [put friends::block, delete friends::unblock],
    "/v1/categories" => [get venues::list_categories],
    "/v1/venues" => [post venues::create_venue],
    "/v1/venues/search" => [get venues::search_venues],
    "/v1/venues/{venue_id}/here-now" => [get checkins::here_now],
    "/v1/venues/{venue_id}" => [get venues::get_venue, patch venues::update_venue, delete venues::delete_venue],
    "/oauth/authorize" => [get authorize::authorize_page, post authorize::authorize_form],
    "/oauth/token" => [post oauth::token],
    "/oauth/revoke" => [post oauth::revoke],
    "/oauth/introspect" => [post oauth::introspect],
    "/.well-known/jwks.json" => [get oauth::jwks],
    "/.well-known/oauth-authorization-server" => [get oauth::metadata],
    "/healthz" => [get ops::healthz],
    "/readyz" => [get ops::readyz],
    "/metrics" => [get ops::metrics],
    "/openapi.yaml" => [get ops::openapi],
}
