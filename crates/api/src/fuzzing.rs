//! The parsers of untrusted input, callable without a server or a database, for the libFuzzer
//! targets in `fuzz/`. Hidden and not part of the API: nothing else should call it.

use actix_web::http::StatusCode;
use vicinity_domain::{Client, ScopeSet};

pub use crate::cursor::Cursors;
pub use crate::json::{FormError, FormParams};
use crate::routes::authorize::{self, Params, Refusal};
pub use crate::routes::oauth::parse_basic;
pub use crate::routes::query::{Page, limit, ll, parse as parse_query, radius};

/// What the authorization page makes of a form body (or, with `form` false, of the query
/// string of its address) when `client` is the only registered app, short of the cookies and
/// the database. `None`: the parameters cannot be read at all.
pub fn authorize(text: &[u8], form: bool, client: &Client) -> Option<AuthorizeForm> {
    let mut params = Params::parse(text)?;
    let fields = form.then(|| params.take_form_fields());
    let request = authorize::requested_client(&params)
        .and_then(|id| {
            if id == client.id {
                Ok(())
            } else {
                Err(authorize::unknown_client())
            }
        })
        .and_then(|()| authorize::check_for(client.clone(), &params))
        .map(|request| AuthorizeRequest {
            redirect_uri: request.redirect_uri.clone(),
            named_redirect: request.named_redirect.clone(),
            scope: request.scope,
            code_challenge: request.challenge.as_str().to_owned(),
            state: request.state.clone(),
            query: authorize::request_query(&request),
            hidden_fields: authorize::hidden_fields(&request, "csrf"),
        })
        .map_err(|refusal| match refusal {
            Refusal::Page(status, _) => AuthorizeRefusal::Page(status),
            Refusal::Redirect { error, .. } => AuthorizeRefusal::Redirect(error),
            Refusal::Store(_) => AuthorizeRefusal::Store,
        });
    Some(AuthorizeForm {
        csrf_token: fields.as_ref().and_then(|f| f.csrf_token.clone()),
        action: fields.as_ref().and_then(|f| f.action.clone()),
        username: fields.as_ref().and_then(|f| f.username.clone()),
        password: fields.and_then(|f| f.password),
        request,
    })
}

/// The page's reading of a form: its own fields and the authorization request it carries.
#[derive(Debug)]
pub struct AuthorizeForm {
    pub csrf_token: Option<String>,
    pub action: Option<String>,
    pub username: Option<String>,
    pub password: Option<String>,
    pub request: Result<AuthorizeRequest, AuthorizeRefusal>,
}

/// A checked authorization request, and how the page passes it on.
#[derive(Debug, PartialEq, Eq)]
pub struct AuthorizeRequest {
    pub redirect_uri: String,
    pub named_redirect: Option<String>,
    pub scope: ScopeSet,
    pub code_challenge: String,
    pub state: Option<String>,
    /// The query string of the page's own address (after signing in or out).
    pub query: String,
    /// The hidden fields of the page's forms (with `csrf` as the CSRF token).
    pub hidden_fields: String,
}

/// Why the page refuses a request: an error page, or an error sent back to the app.
#[derive(Debug, PartialEq, Eq)]
pub enum AuthorizeRefusal {
    Page(StatusCode),
    Redirect(&'static str),
    /// Cannot happen without a database.
    Store,
}
