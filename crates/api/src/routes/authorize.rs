//! `GET/POST /oauth/authorize`: the page where a person signs in and approves or denies a
//! third-party app (RFC 6749 §4.1, PKCE per RFC 7636 and 9700, `iss` per RFC 9207).
//!
//! Server-rendered HTML with no scripts and no external assets. The flow:
//! - the request is checked; a bad `client_id` or `redirect_uri` gets an error page and is
//!   never redirected, anything else wrong goes back to the app as an error redirect;
//! - without a session the page asks for the username and password; signing in starts a
//!   session (an HttpOnly cookie) and shows the consent page (303 after the POST);
//! - with a session, an app already approved for these scopes gets its code at once;
//!   otherwise the page names the app and the scopes in plain words, with Approve and Deny.
//!
//! Every form carries a CSRF token that must equal a `SameSite=Strict` cookie, and the request
//! rides along in hidden fields that are checked again, never trusted.

use std::collections::HashMap;
use std::fmt::Write as _;

use actix_web::http::{StatusCode, header};
use actix_web::{HttpRequest, HttpResponse, HttpResponseBuilder, web};
use chrono::Utc;
use vicinity_domain::secret::{random_base64url, sha256_hex};
use vicinity_domain::{Client, ClientId, CodeChallenge, Scope, ScopeSet, UserId};
use vicinity_store::authorization::{self, NewCode};
use vicinity_store::{StoreError, clients, users};

use super::accounts::client_address;
use crate::app::AppState;

/// How long an authorization code may wait for its exchange (RFC 6749 §4.1.2: at most 10 min).
const CODE_TTL: chrono::Duration = chrono::Duration::minutes(5);
/// How long a sign-in on the authorization page lasts.
const SESSION_TTL: chrono::Duration = chrono::Duration::hours(8);
const SESSION_COOKIE: &str = "vicinity_session";
const CSRF_COOKIE: &str = "vicinity_csrf";
/// The longest `state` echoed back; longer ones are refused rather than truncated.
const MAX_STATE: usize = 1_000;
/// The parameters an authorization request consists of, carried through the forms.
const REQUEST_PARAMS: [&str; 7] = [
    "response_type",
    "client_id",
    "redirect_uri",
    "scope",
    "state",
    "code_challenge",
    "code_challenge_method",
];

/// Query or form parameters: values by name, and the names that were repeated.
pub(crate) struct Params {
    values: HashMap<String, String>,
    repeated: Vec<String>,
}

impl Params {
    /// RFC 6749 §3.1: an empty value counts as absent, and no parameter may be repeated.
    pub(crate) fn parse(text: &[u8]) -> Option<Self> {
        let pairs: Vec<(String, String)> = serde_urlencoded::from_bytes(text).ok()?;
        let mut values = HashMap::new();
        let mut repeated = Vec::new();
        for (name, value) in pairs {
            if value.is_empty() {
                continue;
            }
            match values.entry(name) {
                std::collections::hash_map::Entry::Occupied(taken) => {
                    repeated.push(taken.key().clone());
                }
                std::collections::hash_map::Entry::Vacant(free) => {
                    free.insert(value);
                }
            }
        }
        Some(Self { values, repeated })
    }

    fn get(&self, name: &str) -> Option<&str> {
        self.values.get(name).map(String::as_str)
    }

    fn is_repeated(&self, name: &str) -> bool {
        self.repeated.iter().any(|n| n == name)
    }

    /// Takes the form's own fields out, leaving the authorization request it carries (whose
    /// repeats are the only ones that matter).
    pub(crate) fn take_form_fields(&mut self) -> FormFields {
        let fields = FormFields {
            csrf_token: self.values.remove("csrf_token"),
            action: self.values.remove("action"),
            username: self.values.remove("username"),
            password: self.values.remove("password"),
        };
        self.repeated
            .retain(|name| REQUEST_PARAMS.contains(&name.as_str()));
        fields
    }
}

/// The fields of the page's forms that are not part of the authorization request.
pub(crate) struct FormFields {
    pub(crate) csrf_token: Option<String>,
    pub(crate) action: Option<String>,
    pub(crate) username: Option<String>,
    pub(crate) password: Option<String>,
}

/// A checked authorization request.
pub(crate) struct AuthRequest {
    client: Client,
    /// Where the answer goes.
    pub(crate) redirect_uri: String,
    /// The `redirect_uri` parameter as sent, which the token request must repeat.
    pub(crate) named_redirect: Option<String>,
    pub(crate) scope: ScopeSet,
    pub(crate) challenge: CodeChallenge,
    code_challenge_method: &'static str,
    pub(crate) state: Option<String>,
}

/// Why a request cannot go on.
pub(crate) enum Refusal {
    /// The client or the redirect URI cannot be trusted: say so here, never redirect.
    Page(StatusCode, String),
    /// Tell the app, at its redirect URI (RFC 6749 §4.1.2.1).
    Redirect {
        redirect_uri: String,
        state: Option<String>,
        error: &'static str,
        description: String,
    },
    Store(StoreError),
}

impl From<StoreError> for Refusal {
    fn from(error: StoreError) -> Self {
        Refusal::Store(error)
    }
}

/// Checks an authorization request, in the order RFC 6749 §4.1.2.1 needs: the client and the
/// redirect URI first, since until both are known good nothing may be sent anywhere.
async fn check(state: &AppState, params: &Params) -> Result<AuthRequest, Refusal> {
    let id = requested_client(params)?;
    let client = match state.store.run(move |conn| clients::find(conn, &id)).await {
        Ok(client) => client,
        Err(StoreError::NotFound) => return Err(unknown_client()),
        Err(other) => return Err(other.into()),
    };
    check_for(client, params)
}

/// The client a request names, if it names exactly one.
pub(crate) fn requested_client(params: &Params) -> Result<ClientId, Refusal> {
    for name in ["client_id", "redirect_uri"] {
        if params.is_repeated(name) {
            return Err(Refusal::Page(
                StatusCode::BAD_REQUEST,
                format!("The request names `{name}` more than once."),
            ));
        }
    }
    let Some(client_id) = params.get("client_id") else {
        return Err(Refusal::Page(
            StatusCode::BAD_REQUEST,
            "The request does not say which app is asking (`client_id` is missing).".into(),
        ));
    };
    Ok(ClientId::from_trusted(
        client_id.chars().take(100).collect(),
    ))
}

pub(crate) fn unknown_client() -> Refusal {
    Refusal::Page(
        StatusCode::BAD_REQUEST,
        "No app is registered under this `client_id`.".into(),
    )
}

/// The rest of [`check`] once the client is found: nothing here needs the database.
pub(crate) fn check_for(client: Client, params: &Params) -> Result<AuthRequest, Refusal> {
    let named_redirect = params.get("redirect_uri").map(str::to_owned);
    let redirect_uri = match &named_redirect {
        Some(named) => client
            .redirect_uris
            .iter()
            .any(|registered| registered.matches(named))
            .then(|| named.clone()),
        None => match client.redirect_uris.as_slice() {
            [only] => Some(only.as_str().to_owned()),
            _ => None,
        },
    };
    let Some(redirect_uri) = redirect_uri else {
        let message = if named_redirect.is_some() {
            "The `redirect_uri` is not one this app registered."
        } else {
            "The request must name a `redirect_uri` (this app has more or fewer than one)."
        };
        return Err(Refusal::Page(StatusCode::BAD_REQUEST, message.into()));
    };

    let state_param = params.get("state").map(str::to_owned);
    let refuse = |error: &'static str, description: String| Refusal::Redirect {
        redirect_uri: redirect_uri.clone(),
        state: state_param.clone(),
        error,
        description,
    };
    if let Some(name) = params.repeated.first() {
        return Err(refuse("invalid_request", format!("`{name}` is repeated")));
    }
    if state_param.as_ref().is_some_and(|s| s.len() > MAX_STATE) {
        return Err(refuse(
            "invalid_request",
            format!("`state` is longer than {MAX_STATE} characters"),
        ));
    }
    match params.get("response_type") {
        Some("code") => {}
        None => {
            return Err(refuse(
                "invalid_request",
                "`response_type` is missing".into(),
            ));
        }
        Some(_) => {
            return Err(refuse(
                "unsupported_response_type",
                "only `response_type=code` is supported".into(),
            ));
        }
    }
    let challenge = CodeChallenge::parse(
        params.get("code_challenge"),
        params.get("code_challenge_method"),
    )
    .map_err(|e| refuse("invalid_request", e.to_string()))?;
    let allowed: ScopeSet = client
        .scopes
        .iter()
        .filter(|s| *s != Scope::Admin)
        .collect();
    let scope = match params.get("scope") {
        None => allowed,
        Some(text) => {
            let asked =
                ScopeSet::parse(text).map_err(|e| refuse("invalid_scope", e.to_string()))?;
            if asked.contains(Scope::Admin) {
                return Err(refuse(
                    "invalid_scope",
                    "`admin` is never granted to an app through this page".into(),
                ));
            }
            if !asked.is_subset_of(allowed) {
                return Err(refuse(
                    "invalid_scope",
                    format!("this app may ask for at most `{allowed}`"),
                ));
            }
            asked
        }
    };
    if scope.is_empty() {
        return Err(refuse("invalid_scope", "no scope to ask for".into()));
    }
    Ok(AuthRequest {
        client,
        redirect_uri,
        named_redirect,
        scope,
        challenge,
        code_challenge_method: "S256",
        state: state_param,
    })
}

/// `redirect_uri` with the answer's parameters added to its query, `iss` always among them.
fn answer_url(state: &AppState, redirect_uri: &str, answer: &[(&str, &str)]) -> String {
    let Ok(mut url) = url::Url::parse(redirect_uri) else {
        // Registered URIs are absolute URLs; this cannot happen.
        return redirect_uri.to_owned();
    };
    {
        let mut query = url.query_pairs_mut();
        for (name, value) in answer {
            query.append_pair(name, value);
        }
        query.append_pair("iss", &state.config.issuer);
    }
    url.into()
}

fn redirect(status: StatusCode, location: &str) -> HttpResponse {
    secured(HttpResponse::build(status))
        .insert_header((header::LOCATION, location))
        .finish()
}

/// Headers every response of the page carries: never cached, never framed, never a referrer
/// (the address holds the request; a redirect holds the code).
fn secured(mut response: HttpResponseBuilder) -> HttpResponseBuilder {
    response
        .insert_header((header::CACHE_CONTROL, "no-store"))
        .insert_header((header::PRAGMA, "no-cache"))
        .insert_header((header::REFERRER_POLICY, "no-referrer"))
        .insert_header((header::X_FRAME_OPTIONS, "DENY"))
        .insert_header((header::X_CONTENT_TYPE_OPTIONS, "nosniff"))
        .insert_header((
            header::CONTENT_SECURITY_POLICY,
            "default-src 'none'; style-src 'unsafe-inline'; frame-ancestors 'none'; \
             base-uri 'none'",
        ));
    response
}

fn refusal_response(
    state: &AppState,
    refusal: Refusal,
    status_for_redirect: StatusCode,
) -> HttpResponse {
    match refusal {
        Refusal::Page(status, message) => error_page(status, &message),
        Refusal::Redirect {
            redirect_uri,
            state: app_state,
            error,
            description,
        } => {
            let mut answer = vec![
                ("error", error),
                ("error_description", description.as_str()),
            ];
            if let Some(app_state) = &app_state {
                answer.push(("state", app_state));
            }
            redirect(
                status_for_redirect,
                &answer_url(state, &redirect_uri, &answer),
            )
        }
        Refusal::Store(error) => {
            tracing::warn!(error.detail = %error, "authorization page: database failure");
            let mut response = page(
                StatusCode::SERVICE_UNAVAILABLE,
                "Try again shortly",
                "<p>The service is temporarily unavailable. Please try again in a moment.</p>",
            );
            response
                .headers_mut()
                .insert(header::RETRY_AFTER, header::HeaderValue::from_static("1"));
            response
        }
    }
}

/// The page's cookies, by name.
fn cookie<'a>(request: &'a HttpRequest, name: &str) -> Option<&'a str> {
    request
        .headers()
        .get_all(header::COOKIE)
        .filter_map(|value| value.to_str().ok())
        .flat_map(|value| value.split(';'))
        .filter_map(|pair| pair.trim().split_once('='))
        .find(|(key, _)| *key == name)
        .map(|(_, value)| value)
}

/// `Secure` when the server is reached over https (its issuer URL says so).
fn cookie_attributes(state: &AppState) -> &'static str {
    if state.config.issuer.starts_with("https://") {
        "; Path=/oauth; HttpOnly; Secure"
    } else {
        "; Path=/oauth; HttpOnly"
    }
}

/// The CSRF token for the forms about to be rendered: the cookie's, or a new one.
fn csrf_token(request: &HttpRequest) -> (String, bool) {
    match cookie(request, CSRF_COOKIE).filter(|t| t.len() == 43) {
        Some(token) => (token.to_owned(), false),
        None => (random_base64url::<32>(), true),
    }
}

fn constant_time_eq(a: &str, b: &str) -> bool {
    a.len() == b.len() && a.bytes().zip(b.bytes()).fold(0u8, |d, (x, y)| d | (x ^ y)) == 0
}

/// Whose session the request carries, if any.
async fn session_user(
    state: &AppState,
    request: &HttpRequest,
) -> Result<Option<UserId>, StoreError> {
    let Some(token) = cookie(request, SESSION_COOKIE) else {
        return Ok(None);
    };
    let hash = sha256_hex(token);
    state
        .store
        .run(move |conn| authorization::session_user(conn, &hash, Utc::now()))
        .await
}

/// Issues a code for an approved request and sends the person back to the app.
async fn grant(
    state: &AppState,
    request: &AuthRequest,
    user_id: UserId,
    status: StatusCode,
) -> Result<HttpResponse, StoreError> {
    let code = random_base64url::<32>();
    let hash = sha256_hex(&code);
    let client_id = request.client.id.clone();
    let named = request.named_redirect.clone();
    let (scope, challenge) = (request.scope, request.challenge.clone());
    state
        .store
        .run(move |conn| {
            let now = Utc::now();
            authorization::issue_code(
                conn,
                &NewCode {
                    hash: &hash,
                    client_id: &client_id,
                    user_id,
                    redirect_uri: named.as_deref(),
                    scope,
                    challenge: &challenge,
                    expires_at: now + CODE_TTL,
                },
                now,
            )
        })
        .await?;
    tracing::info!(user.id = %user_id, client.id = %request.client.id, "authorization code issued");
    let mut answer = vec![("code", code.as_str())];
    if let Some(app_state) = &request.state {
        answer.push(("state", app_state));
    }
    Ok(redirect(
        status,
        &answer_url(state, &request.redirect_uri, &answer),
    ))
}

/// Shows the consent page, or answers at once when the app already has these scopes.
async fn consent_or_grant(
    state: &AppState,
    http: &HttpRequest,
    request: &AuthRequest,
    user_id: UserId,
    status_if_granted: StatusCode,
) -> Result<HttpResponse, StoreError> {
    let client_id = request.client.id.clone();
    let (consented, user) = state
        .store
        .run(move |conn| {
            Ok((
                authorization::consented_scope(conn, user_id, &client_id)?,
                users::find(conn, user_id)?,
            ))
        })
        .await?;
    if consented.is_some_and(|scope| request.scope.is_subset_of(scope)) {
        return grant(state, request, user_id, status_if_granted).await;
    }
    let (csrf, new_csrf) = csrf_token(http);
    let mut body = String::new();
    let _ = write!(
        body,
        "<p class=\"who\">Signed in as <strong>{}</strong></p>\
         <h1><strong>{}</strong> wants to use your Vicinity account</h1>\
         <p>If you approve, it will be able to:</p><ul class=\"scopes\">",
        escape(user.username.as_str()),
        escape(&request.client.name),
    );
    for scope in request.scope.iter() {
        let _ = write!(body, "<li>{}</li>", escape(scope.describe()));
    }
    body.push_str("</ul>");
    if request.scope.contains(Scope::CheckinsWrite) && !request.scope.contains(Scope::LocationRead)
    {
        body.push_str(
            "<p class=\"note\">When it checks you in, it learns which friends are nearby only \
             to the nearest city area, not where they are.</p>",
        );
    }
    let _ = write!(
        body,
        "<p class=\"note\">You will be sent back to <code>{}</code>. You can withdraw this \
         approval at any time.</p><form method=\"post\" action=\"/oauth/authorize\">{}\
         <div class=\"actions\"><button type=\"submit\" name=\"action\" value=\"deny\" \
         class=\"secondary\">Deny</button><button type=\"submit\" name=\"action\" \
         value=\"approve\">Approve</button></div>\
         <p class=\"switch\"><button type=\"submit\" name=\"action\" value=\"logout\" \
         class=\"link\">Not you? Sign out</button></p></form>",
        escape(&origin_of(&request.redirect_uri)),
        hidden_fields(request, &csrf),
    );
    let mut response = page(StatusCode::OK, "Approve access", &body);
    if new_csrf {
        set_cookie(&mut response, &csrf_cookie(state, &csrf));
    }
    Ok(response)
}

fn login_page(
    state: &AppState,
    http: &HttpRequest,
    request: &AuthRequest,
    status: StatusCode,
    problem: Option<&str>,
    username: &str,
) -> HttpResponse {
    let (csrf, new_csrf) = csrf_token(http);
    let mut body = String::new();
    let _ = write!(
        body,
        "<h1>Sign in to continue to <strong>{}</strong></h1><p>It asks to:</p><ul class=\"scopes\">",
        escape(&request.client.name)
    );
    for scope in request.scope.iter() {
        let _ = write!(body, "<li>{}</li>", escape(scope.describe()));
    }
    body.push_str("</ul>");
    if let Some(problem) = problem {
        let _ = write!(
            body,
            "<p class=\"problem\" role=\"alert\">{}</p>",
            escape(problem)
        );
    }
    let _ = write!(
        body,
        "<form method=\"post\" action=\"/oauth/authorize\">{}\
         <label for=\"username\">Username or email</label>\
         <input id=\"username\" name=\"username\" autocomplete=\"username\" required \
         maxlength=\"254\" value=\"{}\">\
         <label for=\"password\">Password</label>\
         <input id=\"password\" name=\"password\" type=\"password\" \
         autocomplete=\"current-password\" required maxlength=\"1024\">\
         <div class=\"actions\"><button type=\"submit\" name=\"action\" value=\"deny\" \
         class=\"secondary\" formnovalidate>Cancel</button><button type=\"submit\" \
         name=\"action\" value=\"login\">Sign in</button></div></form>",
        hidden_fields(request, &csrf),
        escape(username),
    );
    let mut response = page(status, "Sign in", &body);
    if new_csrf {
        set_cookie(&mut response, &csrf_cookie(state, &csrf));
    }
    response
}

/// The request's parameters and the CSRF token, as hidden form fields.
pub(crate) fn hidden_fields(request: &AuthRequest, csrf: &str) -> String {
    let mut fields = String::new();
    let scope = request.scope.to_string();
    let values = [
        ("response_type", Some("code")),
        ("client_id", Some(request.client.id.as_str())),
        ("redirect_uri", request.named_redirect.as_deref()),
        ("scope", Some(scope.as_str())),
        ("state", request.state.as_deref()),
        ("code_challenge", Some(request.challenge.as_str())),
        ("code_challenge_method", Some(request.code_challenge_method)),
        ("csrf_token", Some(csrf)),
    ];
    for (name, value) in values {
        if let Some(value) = value {
            let _ = write!(
                fields,
                "<input type=\"hidden\" name=\"{name}\" value=\"{}\">",
                escape(value)
            );
        }
    }
    fields
}

fn csrf_cookie(state: &AppState, token: &str) -> String {
    format!(
        "{CSRF_COOKIE}={token}{}; SameSite=Strict",
        cookie_attributes(state)
    )
}

fn set_cookie(response: &mut HttpResponse, cookie: &str) {
    if let Ok(value) = header::HeaderValue::from_str(cookie) {
        response.headers_mut().append(header::SET_COOKIE, value);
    }
}

/// `scheme://host[:port]` of a URL, to tell a person where they will be sent.
fn origin_of(uri: &str) -> String {
    url::Url::parse(uri).map_or_else(
        |_| uri.to_owned(),
        |url| match url.origin() {
            url::Origin::Tuple(..) => url.origin().ascii_serialization(),
            url::Origin::Opaque(_) => format!("{}:", url.scheme()),
        },
    )
}

/// Escapes text for HTML element content and double-quoted attribute values.
fn escape(text: &str) -> String {
    let mut escaped = String::with_capacity(text.len());
    for c in text.chars() {
        match c {
            '&' => escaped.push_str("&amp;"),
            '<' => escaped.push_str("&lt;"),
            '>' => escaped.push_str("&gt;"),
            '"' => escaped.push_str("&quot;"),
            '\'' => escaped.push_str("&#39;"),
            c => escaped.push(c),
        }
    }
    escaped
}

const STYLE: &str = "body{font:16px/1.5 system-ui,sans-serif;background:#f4f5f7;color:#1d2430;\
margin:0;padding:2rem 1rem}main{max-width:26rem;margin:0 auto;background:#fff;\
border-radius:12px;padding:1.5rem 1.75rem;box-shadow:0 1px 4px #0002}\
h1{font-size:1.25rem;margin:.25rem 0 1rem}.brand{font-weight:700;color:#2456c6;\
letter-spacing:.02em}ul.scopes{padding-left:1.2rem}ul.scopes li{margin:.35rem 0}\
label{display:block;margin:.75rem 0 .25rem;font-weight:600}input{width:100%;\
box-sizing:border-box;padding:.55rem;border:1px solid #b8bfcc;border-radius:6px;font:inherit}\
.actions{display:flex;gap:.75rem;justify-content:flex-end;margin-top:1.25rem}\
button{font:inherit;padding:.55rem 1.2rem;border-radius:6px;border:1px solid #2456c6;\
background:#2456c6;color:#fff;cursor:pointer}button.secondary{background:#fff;color:#2456c6}\
button.link{border:0;background:none;color:#2456c6;padding:0;text-decoration:underline}\
.note,.who,.switch{color:#566074;font-size:.9rem}.problem{color:#a4161a;font-weight:600}\
code{font-size:.85rem}";

fn page(status: StatusCode, title: &str, body: &str) -> HttpResponse {
    let html = format!(
        "<!doctype html><html lang=\"en\"><head><meta charset=\"utf-8\">\
         <meta name=\"viewport\" content=\"width=device-width,initial-scale=1\">\
         <title>{} · Vicinity</title><style>{STYLE}</style></head><body><main>\
         <p class=\"brand\">Vicinity</p>{body}</main></body></html>",
        escape(title)
    );
    secured(HttpResponse::build(status))
        .content_type("text/html; charset=utf-8")
        .body(html)
}

fn error_page(status: StatusCode, message: &str) -> HttpResponse {
    page(
        status,
        "Cannot continue",
        &format!(
            "<h1>This sign-in request cannot continue</h1><p class=\"problem\">{}</p>\
             <p class=\"note\">Go back to the app you came from and try again; if this keeps \
             happening, tell its developer.</p>",
            escape(message)
        ),
    )
}

/// Starts an authorization: checks the request and shows the sign-in or consent page.
#[utoipa::path(
    get,
    path = "/oauth/authorize",
    security(()),
    tag = "oauth",
    params(
        ("response_type" = String, Query, description = "`code`"),
        ("client_id" = String, Query, description = "The app's client id"),
        ("redirect_uri" = Option<String>, Query, description = "One of the app's registered redirect URIs (a loopback one may differ in its port); required unless it registered exactly one"),
        ("scope" = Option<String>, Query, description = "Space-separated scopes; default: all the app may ask for (never `admin`)"),
        ("state" = Option<String>, Query, description = "Echoed back unchanged"),
        ("code_challenge" = String, Query, description = "BASE64URL(SHA-256(code_verifier)), RFC 7636"),
        ("code_challenge_method" = String, Query, description = "`S256` (the only method accepted)"),
    ),
    responses(
        (status = 200, description = "The sign-in or consent page", content_type = "text/html"),
        (status = 302, description = "Back to the app: `code`, `state` and `iss`, or `error`, `error_description`, `state` and `iss`"),
        (status = 400, description = "Unknown client or redirect URI: an error page, never a redirect", content_type = "text/html"),
    )
)]
pub async fn authorize_page(state: web::Data<AppState>, http: HttpRequest) -> HttpResponse {
    let Some(params) = Params::parse(http.query_string().as_bytes()) else {
        return error_page(
            StatusCode::BAD_REQUEST,
            "The request's parameters are unreadable.",
        );
    };
    let request = match check(&state, &params).await {
        Ok(request) => request,
        Err(refusal) => return refusal_response(&state, refusal, StatusCode::FOUND),
    };
    let user = match session_user(&state, &http).await {
        Ok(user) => user,
        Err(error) => return refusal_response(&state, Refusal::Store(error), StatusCode::FOUND),
    };
    match user {
        None => login_page(&state, &http, &request, StatusCode::OK, None, ""),
        Some(user_id) => consent_or_grant(&state, &http, &request, user_id, StatusCode::FOUND)
            .await
            .unwrap_or_else(|error| {
                refusal_response(&state, Refusal::Store(error), StatusCode::FOUND)
            }),
    }
}

/// The page's forms: sign in, approve, deny or sign out. Answers with 303 See Other.
#[utoipa::path(
    post,
    path = "/oauth/authorize",
    security(()),
    tag = "oauth",
    request_body(content = String, content_type = "application/x-www-form-urlencoded",
        description = "The authorization request's parameters, `csrf_token`, `action` (`login`, `approve`, `deny` or `logout`), and for `login` the `username` and `password`"),
    responses(
        (status = 303, description = "Back to the app with `code` or `error` (and `state`, `iss`), or on to the consent page"),
        (status = 400, description = "Wrong username or password, or a bad client or redirect URI: a page", content_type = "text/html"),
        (status = 403, description = "The form's CSRF token does not match its cookie", content_type = "text/html"),
        (status = 415, description = "The form is not sent as `application/x-www-form-urlencoded`: a page", content_type = "text/html"),
        (status = 429, description = "Too many sign-in attempts", content_type = "text/html"),
    )
)]
pub async fn authorize_form(
    state: web::Data<AppState>,
    http: HttpRequest,
    body: web::Bytes,
) -> HttpResponse {
    let is_form = http
        .headers()
        .get(header::CONTENT_TYPE)
        .and_then(|v| v.to_str().ok())
        .and_then(|v| v.split(';').next())
        .is_some_and(|v| {
            v.trim()
                .eq_ignore_ascii_case("application/x-www-form-urlencoded")
        });
    if !is_form {
        return error_page(
            StatusCode::UNSUPPORTED_MEDIA_TYPE,
            "The form must be sent as application/x-www-form-urlencoded.",
        );
    }
    let Some(mut params) = Params::parse(&body) else {
        return error_page(StatusCode::BAD_REQUEST, "The form is unreadable.");
    };
    let FormFields {
        csrf_token: csrf_sent,
        action,
        username,
        password,
    } = params.take_form_fields();
    let csrf_ok = match (cookie(&http, CSRF_COOKIE), csrf_sent.as_deref()) {
        (Some(expected), Some(sent)) => constant_time_eq(expected, sent),
        _ => false,
    };
    if !csrf_ok {
        return error_page(
            StatusCode::FORBIDDEN,
            "This form has expired or did not come from this page. Go back to the app and \
             start again.",
        );
    }
    let request = match check(&state, &params).await {
        Ok(request) => request,
        Err(refusal) => return refusal_response(&state, refusal, StatusCode::SEE_OTHER),
    };
    let outcome = match action.as_deref() {
        Some("deny") => Ok(deny(&state, &request)),
        Some("login") => {
            login(
                &state,
                &http,
                &request,
                username.unwrap_or_default(),
                password.unwrap_or_default(),
            )
            .await
        }
        Some("approve") => approve(&state, &http, &request).await,
        Some("logout") => logout(&state, &http, &request).await,
        _ => Ok(error_page(
            StatusCode::BAD_REQUEST,
            "The form did not say what to do.",
        )),
    };
    outcome.unwrap_or_else(|error| {
        refusal_response(&state, Refusal::Store(error), StatusCode::SEE_OTHER)
    })
}

fn deny(state: &AppState, request: &AuthRequest) -> HttpResponse {
    tracing::info!(client.id = %request.client.id, "authorization denied");
    let mut answer = vec![
        ("error", "access_denied"),
        ("error_description", "the person denied the request"),
    ];
    if let Some(app_state) = &request.state {
        answer.push(("state", app_state));
    }
    redirect(
        StatusCode::SEE_OTHER,
        &answer_url(state, &request.redirect_uri, &answer),
    )
}

async fn login(
    state: &AppState,
    http: &HttpRequest,
    request: &AuthRequest,
    username: String,
    password: String,
) -> Result<HttpResponse, StoreError> {
    let shown_name: String = username.chars().take(254).collect();
    let too_many = |wait: u64| {
        let mut response = login_page(
            state,
            http,
            request,
            StatusCode::TOO_MANY_REQUESTS,
            Some(&format!(
                "Too many sign-in attempts. Try again in {wait} s."
            )),
            &shown_name,
        );
        if let Ok(value) = header::HeaderValue::from_str(&wait.to_string()) {
            response.headers_mut().insert(header::RETRY_AFTER, value);
        }
        response
    };
    if let Err(wait) = state
        .throttle
        .attempt_from(client_address(http, state.config.trust_forwarded_for))
    {
        return Ok(too_many(wait));
    }
    let lookup = shown_name.clone();
    let found = state
        .store
        .run(move |conn| users::find_for_login(conn, &lookup))
        .await?;
    let account_key = found
        .as_ref()
        .map_or_else(|| shown_name.clone(), |(user, _)| user.id.to_string());
    if let Err(wait) = state.throttle.attempt_on(&account_key) {
        return Ok(too_many(wait));
    }
    let (user, stored_hash) = found.unzip();
    let verified = state
        .passwords
        .verify(password, stored_hash)
        .await
        .unwrap_or(false);
    let Some(user) = user.filter(|_| verified) else {
        tracing::info!("authorization page: sign-in refused");
        return Ok(login_page(
            state,
            http,
            request,
            StatusCode::BAD_REQUEST,
            Some("The username or email and password do not match an account."),
            &shown_name,
        ));
    };
    let token = random_base64url::<32>();
    let hash = sha256_hex(&token);
    let user_id = user.id;
    state
        .store
        .run(move |conn| {
            let now = Utc::now();
            authorization::start_session(conn, &hash, user_id, now + SESSION_TTL, now)
        })
        .await?;
    tracing::info!(user.id = %user_id, "authorization page: signed in");
    let session_cookie = format!(
        "{SESSION_COOKIE}={token}{}; SameSite=Lax; Max-Age={}",
        cookie_attributes(state),
        SESSION_TTL.num_seconds()
    );
    let mut response =
        consent_or_grant(state, http, request, user_id, StatusCode::SEE_OTHER).await?;
    if response.status() == StatusCode::OK {
        // Not answered at once: show the consent page at its own address, so that reloading
        // it does not send the password again.
        response = redirect(
            StatusCode::SEE_OTHER,
            &format!("/oauth/authorize?{}", request_query(request)),
        );
    }
    set_cookie(&mut response, &session_cookie);
    Ok(response)
}

async fn approve(
    state: &AppState,
    http: &HttpRequest,
    request: &AuthRequest,
) -> Result<HttpResponse, StoreError> {
    let Some(user_id) = session_user(state, http).await? else {
        return Ok(login_page(
            state,
            http,
            request,
            StatusCode::BAD_REQUEST,
            Some("Your sign-in has expired. Sign in again to continue."),
            "",
        ));
    };
    let client_id = request.client.id.clone();
    let scope = request.scope;
    state
        .store
        .run(move |conn| {
            authorization::remember_consent(conn, user_id, &client_id, scope, Utc::now())
        })
        .await?;
    tracing::info!(user.id = %user_id, client.id = %request.client.id, scope = %scope, "app approved");
    grant(state, request, user_id, StatusCode::SEE_OTHER).await
}

async fn logout(
    state: &AppState,
    http: &HttpRequest,
    request: &AuthRequest,
) -> Result<HttpResponse, StoreError> {
    if let Some(token) = cookie(http, SESSION_COOKIE) {
        let hash = sha256_hex(token);
        state
            .store
            .run(move |conn| authorization::end_session(conn, &hash))
            .await?;
    }
    let mut response = redirect(
        StatusCode::SEE_OTHER,
        &format!("/oauth/authorize?{}", request_query(request)),
    );
    set_cookie(
        &mut response,
        &format!(
            "{SESSION_COOKIE}={}; SameSite=Lax; Max-Age=0",
            cookie_attributes(state)
        ),
    );
    Ok(response)
}

/// The request again as a query string, for the page's own address.
pub(crate) fn request_query(request: &AuthRequest) -> String {
    let scope = request.scope.to_string();
    let mut pairs = vec![
        ("response_type", "code"),
        ("client_id", request.client.id.as_str()),
        ("scope", scope.as_str()),
        ("code_challenge", request.challenge.as_str()),
        ("code_challenge_method", request.code_challenge_method),
    ];
    if let Some(named) = &request.named_redirect {
        pairs.push(("redirect_uri", named));
    }
    if let Some(app_state) = &request.state {
        pairs.push(("state", app_state));
    }
    serde_urlencoded::to_string(pairs).unwrap_or_default()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn text_is_escaped_for_elements_and_attributes() {
        assert_eq!(
            escape(r#"<b onclick='x'>"Tom" & Jerry</b>"#),
            "&lt;b onclick=&#39;x&#39;&gt;&quot;Tom&quot; &amp; Jerry&lt;/b&gt;"
        );
    }

    #[test]
    fn empty_values_are_absent_and_repeats_are_noted() {
        let params = Params::parse(b"a=1&b=&a=2&c=%20x").unwrap();
        assert_eq!(params.get("a"), Some("1"));
        assert_eq!(params.get("b"), None);
        assert_eq!(params.get("c"), Some(" x"));
        assert!(params.is_repeated("a"));
        assert!(!params.is_repeated("c"));
    }

    #[test]
    fn the_origin_shown_is_scheme_host_and_port() {
        assert_eq!(
            origin_of("https://app.example/cb?x=1"),
            "https://app.example"
        );
        assert_eq!(
            origin_of("http://127.0.0.1:5000/cb"),
            "http://127.0.0.1:5000"
        );
        assert_eq!(origin_of("com.example.app:/cb"), "com.example.app:");
    }
}
