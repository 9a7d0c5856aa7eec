//! Routes, one module per resource.

pub mod accounts;
pub mod authorize;
pub mod checkins;
pub mod friends;
pub mod me;
pub mod oauth;
pub mod ops;
pub mod presence;
mod query;
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

/// Registers every route of the API.
pub fn configure(cfg: &mut web::ServiceConfig) {
    cfg.service(
        web::scope("/v1")
            .service(web::resource("/auth/register").post(accounts::register))
            .service(web::resource("/auth/login").post(accounts::login))
            .service(
                web::resource("/me")
                    .get(me::get_me)
                    .patch(me::update_me)
                    .delete(me::delete_me),
            )
            // Before `/users/{user_id}`, which would otherwise take "search" for an id.
            .service(web::resource("/users/search").get(friends::search_users))
            .service(web::resource("/users/{user_id}").get(users::get_user))
            .service(
                web::resource("/me/friend-requests")
                    .post(friends::send_request)
                    .get(friends::list_requests),
            )
            .service(
                web::resource("/me/friend-requests/{user_id}/accept").post(friends::accept_request),
            )
            .service(
                web::resource("/me/friend-requests/{user_id}/decline")
                    .post(friends::decline_request),
            )
            .service(web::resource("/me/friend-requests/{user_id}").delete(friends::cancel_request))
            .service(
                web::resource("/me/location")
                    .put(presence::put_location)
                    .delete(presence::delete_location),
            )
            .service(web::resource("/me/nearby").get(presence::nearby))
            .service(web::resource("/me/nearby/stream").get(presence::nearby_stream))
            .service(web::resource("/me/location/access-log").get(presence::access_log))
            .service(web::resource("/me/export").get(me::export))
            .service(web::resource("/me/apps").get(me::list_apps))
            .service(web::resource("/me/apps/{client_id}").delete(me::revoke_app))
            .service(web::resource("/checkins").post(checkins::create_checkin))
            .service(
                web::resource("/checkins/{checkin_id}")
                    .get(checkins::get_checkin)
                    .delete(checkins::delete_checkin),
            )
            .service(web::resource("/me/checkins").get(checkins::my_checkins))
            .service(web::resource("/feed").get(checkins::feed))
            .service(web::resource("/users/{user_id}/checkins").get(checkins::user_checkins))
            .service(web::resource("/me/friends").get(friends::list_friends))
            .service(web::resource("/me/friends/{user_id}").delete(friends::unfriend))
            .service(web::resource("/me/blocks").get(friends::list_blocks))
            .service(
                web::resource("/me/blocks/{user_id}")
                    .put(friends::block)
                    .delete(friends::unblock),
            )
            .service(web::resource("/categories").get(venues::list_categories))
            .service(web::resource("/venues").post(venues::create_venue))
            // Before `/venues/{venue_id}`, which would otherwise take "search" for an id.
            .service(web::resource("/venues/search").get(venues::search_venues))
            .service(web::resource("/venues/{venue_id}/here-now").get(checkins::here_now))
            .service(
                web::resource("/venues/{venue_id}")
                    .get(venues::get_venue)
                    .patch(venues::update_venue)
                    .delete(venues::delete_venue),
            ),
    )
    // Resources (not bare routes) so that a known path with the wrong method is a 405.
    .service(
        web::resource("/oauth/authorize")
            .get(authorize::authorize_page)
            .post(authorize::authorize_form),
    )
    .service(web::resource("/oauth/token").post(oauth::token))
    .service(web::resource("/oauth/revoke").post(oauth::revoke))
    .service(web::resource("/oauth/introspect").post(oauth::introspect))
    .service(web::resource("/.well-known/jwks.json").get(oauth::jwks))
    .service(web::resource("/.well-known/oauth-authorization-server").get(oauth::metadata))
    .service(web::resource("/healthz").get(ops::healthz))
    .service(web::resource("/readyz").get(ops::readyz))
    .service(web::resource("/openapi.yaml").get(ops::openapi));
}
