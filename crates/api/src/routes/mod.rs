//! Routes, one module per resource.

pub mod accounts;
pub mod me;
pub mod oauth;
pub mod ops;
pub mod users;

use actix_web::web;

/// Registers every route of the API.
pub fn configure(cfg: &mut web::ServiceConfig) {
    cfg.service(
        web::scope("/v1")
            .route("/auth/register", web::post().to(accounts::register))
            .route("/auth/login", web::post().to(accounts::login))
            .service(
                web::resource("/me")
                    .get(me::get_me)
                    .patch(me::update_me)
                    .delete(me::delete_me),
            )
            .route("/users/{user_id}", web::get().to(users::get_user)),
    )
    .route("/oauth/token", web::post().to(oauth::token))
    .route("/oauth/revoke", web::post().to(oauth::revoke))
    .route("/.well-known/jwks.json", web::get().to(oauth::jwks))
    .route("/healthz", web::get().to(ops::healthz))
    .route("/readyz", web::get().to(ops::readyz))
    .route("/openapi.yaml", web::get().to(ops::openapi));
}
