//! The authorization code grant as a third-party app and a person in a browser go through it:
//! discovery, the sign-in and consent page, PKCE, the token endpoint, and every way each step
//! can be got wrong.

use std::collections::HashMap;

use reqwest::StatusCode;
use reqwest::header::{HeaderMap, LOCATION, SET_COOKIE};
use serde_json::Value;
use vicinity_domain::{ClientType, CodeChallenge, CodeVerifier};

use crate::helpers::{Backend, Session, TestApp, claims_of, register_app, send, token_of_client};
use crate::on_both_backends;

on_both_backends!(
    an_app_gets_tokens_through_sign_in_consent_and_pkce,
    bad_authorization_requests_get_an_error_page_or_an_error_redirect,
    the_page_refuses_forged_forms_and_wrong_passwords_and_lets_a_person_deny,
    a_code_is_bound_to_its_client_redirect_and_verifier_and_used_once,
    confidential_clients_authenticate_once_and_are_throttled,
    an_apps_refresh_tokens_rotate_and_stay_with_the_app,
    people_see_and_withdraw_the_apps_they_authorized,
    revocation_and_introspection_answer_only_the_client_that_owns_the_token,
    an_app_without_location_read_sees_friends_no_finer_than_the_city,
    a_confidential_client_gets_a_token_for_itself_and_no_person,
    an_administrator_registers_lists_and_deletes_apps_through_the_api,
);

const VERIFIER: &str = "dBjftJeZ4CVP-mB92K27uhbUJU1p1r_wW1gFWFOEjXk-and-some-more";
pub(crate) const REDIRECT: &str = "http://127.0.0.1/callback";

fn challenge(verifier: &str) -> String {
    CodeChallenge::of(&CodeVerifier::parse(verifier).unwrap())
        .as_str()
        .to_owned()
}

/// A browser: cookies by name, kept between requests to the page.
#[derive(Default)]
struct Browser {
    cookies: HashMap<String, String>,
}

impl Browser {
    fn keep(&mut self, headers: &HeaderMap) {
        for value in headers.get_all(SET_COOKIE) {
            let text = value.to_str().unwrap();
            let (pair, attributes) = text.split_once(';').unwrap_or((text, ""));
            let (name, value) = pair.split_once('=').unwrap();
            if attributes.contains("Max-Age=0") {
                self.cookies.remove(name);
            } else {
                self.cookies.insert(name.to_owned(), value.to_owned());
            }
        }
    }

    fn header(&self) -> String {
        self.cookies
            .iter()
            .map(|(name, value)| format!("{name}={value}"))
            .collect::<Vec<_>>()
            .join("; ")
    }

    async fn get(
        &mut self,
        app: &TestApp,
        path_and_query: &str,
    ) -> (StatusCode, HeaderMap, String) {
        let response = app
            .client
            .get(app.url(path_and_query))
            .header("Cookie", self.header())
            .send()
            .await
            .unwrap();
        self.keep(response.headers());
        let (status, headers) = (response.status(), response.headers().clone());
        (status, headers, response.text().await.unwrap())
    }

    async fn post(
        &mut self,
        app: &TestApp,
        form: &[(&str, &str)],
    ) -> (StatusCode, HeaderMap, String) {
        let response = app
            .client
            .post(app.url("/oauth/authorize"))
            .header("Cookie", self.header())
            .form(form)
            .send()
            .await
            .unwrap();
        self.keep(response.headers());
        let (status, headers) = (response.status(), response.headers().clone());
        (status, headers, response.text().await.unwrap())
    }
}

/// The hidden fields of the page's form, as the browser would send them back.
fn hidden_fields(html: &str) -> Vec<(String, String)> {
    html.split("<input type=\"hidden\" ")
        .skip(1)
        .map(|field| {
            let name = field
                .split("name=\"")
                .nth(1)
                .unwrap()
                .split('"')
                .next()
                .unwrap();
            let value = field
                .split("value=\"")
                .nth(1)
                .unwrap()
                .split('"')
                .next()
                .unwrap();
            (
                name.to_owned(),
                value.replace("&amp;", "&").replace("&quot;", "\""),
            )
        })
        .collect()
}

fn with<'a>(
    fields: &'a [(String, String)],
    extra: &[(&'a str, &'a str)],
) -> Vec<(&'a str, &'a str)> {
    fields
        .iter()
        .map(|(n, v)| (n.as_str(), v.as_str()))
        .chain(extra.iter().copied())
        .collect()
}

/// The query of the page's address for an authorization request.
fn authorize_path(client_id: &str, redirect_uri: &str, scope: &str, state: &str) -> String {
    let query = serde_urlencoded::to_string([
        ("response_type", "code"),
        ("client_id", client_id),
        ("redirect_uri", redirect_uri),
        ("scope", scope),
        ("state", state),
        ("code_challenge", &challenge(VERIFIER)),
        ("code_challenge_method", "S256"),
    ])
    .unwrap();
    format!("/oauth/authorize?{query}")
}

/// The parameters of a redirect back to the app.
fn redirect_params(headers: &HeaderMap) -> (String, HashMap<String, String>) {
    let location = headers[LOCATION].to_str().unwrap().to_owned();
    let url = url::Url::parse(&location).unwrap();
    let params = url.query_pairs().into_owned().collect();
    (location, params)
}

/// Signs `who` in on the page and approves: the redirect's parameters.
async fn sign_in_and_approve(
    app: &TestApp,
    browser: &mut Browser,
    who: &Session,
    username: &str,
    path: &str,
) -> HashMap<String, String> {
    let (status, _, html) = browser.get(app, path).await;
    assert_eq!(status, StatusCode::OK, "{html}");
    let fields = hidden_fields(&html);
    let (status, headers, _) = browser
        .post(
            app,
            &with(
                &fields,
                &[
                    ("action", "login"),
                    ("username", username),
                    ("password", &who.password),
                ],
            ),
        )
        .await;
    assert_eq!(status, StatusCode::SEE_OTHER);
    let next = headers[LOCATION].to_str().unwrap().to_owned();
    if !next.starts_with("/oauth/authorize") {
        // Approved before: straight back to the app.
        return redirect_params(&headers).1;
    }
    let (status, _, html) = browser.get(app, &next).await;
    assert_eq!(status, StatusCode::OK);
    assert!(html.contains("Approve"), "{html}");
    let fields = hidden_fields(&html);
    let (status, headers, _) = browser
        .post(app, &with(&fields, &[("action", "approve")]))
        .await;
    assert_eq!(status, StatusCode::SEE_OTHER);
    redirect_params(&headers).1
}

/// Spends `refresh_token` as the app `client_id` (a public client).
async fn refresh_as(app: &TestApp, refresh_token: &str, client_id: &str) -> (StatusCode, Value) {
    exchange(
        app,
        &[
            ("grant_type", "refresh_token"),
            ("refresh_token", refresh_token),
            ("client_id", client_id),
        ],
    )
    .await
}

async fn exchange(app: &TestApp, params: &[(&str, &str)]) -> (StatusCode, Value) {
    let response = app.post_form("/oauth/token", params).await;
    assert_eq!(response.headers()["cache-control"], "no-store");
    let status = response.status();
    (status, response.json().await.unwrap())
}

async fn an_app_gets_tokens_through_sign_in_consent_and_pkce(backend: Backend) {
    let app = TestApp::spawn(backend).await;
    let ada = app.register("ada").await;
    let (client_id, _) = register_app(
        &app,
        ClientType::Public,
        &[REDIRECT],
        "profile checkins:read location:read",
    );

    // Discovery (RFC 8414).
    let metadata = app
        .get_public_json("/.well-known/oauth-authorization-server")
        .await;
    assert_eq!(metadata["issuer"], "http://vicinity.test");
    assert_eq!(
        metadata["authorization_endpoint"],
        "http://vicinity.test/oauth/authorize"
    );
    assert_eq!(
        metadata["token_endpoint"],
        "http://vicinity.test/oauth/token"
    );
    assert_eq!(
        metadata["code_challenge_methods_supported"],
        serde_json::json!(["S256"])
    );
    assert_eq!(
        metadata["response_types_supported"],
        serde_json::json!(["code"])
    );
    assert_eq!(
        metadata["authorization_response_iss_parameter_supported"],
        true
    );
    let scopes = metadata["scopes_supported"].as_array().unwrap();
    assert!(scopes.contains(&"checkins:read".into()));
    assert!(!scopes.contains(&"admin".into()));

    // The page: the app's name and the scopes in words, locked down against framing,
    // caching and referrers. A loopback redirect may use any port (RFC 8252 §7.3).
    let mut browser = Browser::default();
    let path = authorize_path(
        &client_id,
        "http://127.0.0.1:41234/callback",
        "profile checkins:read",
        "xyz",
    );
    let (status, headers, html) = browser.get(&app, &path).await;
    assert_eq!(status, StatusCode::OK);
    assert!(
        headers["content-type"]
            .to_str()
            .unwrap()
            .starts_with("text/html")
    );
    assert!(
        headers["content-security-policy"]
            .to_str()
            .unwrap()
            .contains("frame-ancestors 'none'")
    );
    assert_eq!(headers["referrer-policy"], "no-referrer");
    assert_eq!(headers["x-frame-options"], "DENY");
    assert_eq!(headers["cache-control"], "no-store");
    assert!(html.contains("Trail Log"), "{html}");
    assert!(html.contains("See your check-ins"), "{html}");
    assert!(!html.contains("<script"), "{html}");
    assert!(browser.cookies.contains_key("vicinity_csrf"));

    let answer = sign_in_and_approve(&app, &mut browser, &ada, "ada", &path).await;
    assert_eq!(answer["state"], "xyz");
    assert_eq!(answer["iss"], "http://vicinity.test");
    let code = answer["code"].clone();

    let (status, tokens) = exchange(
        &app,
        &[
            ("grant_type", "authorization_code"),
            ("code", &code),
            ("redirect_uri", "http://127.0.0.1:41234/callback"),
            ("client_id", &client_id),
            ("code_verifier", VERIFIER),
        ],
    )
    .await;
    assert_eq!(status, StatusCode::OK, "{tokens}");
    assert_eq!(tokens["token_type"], "Bearer");
    assert_eq!(tokens["scope"], "profile checkins:read");
    let access = tokens["access_token"].as_str().unwrap();
    let claims = claims_of(access);
    assert_eq!(claims["client_id"], client_id.as_str());
    assert_eq!(claims["sub"], ada.user_id.as_str());
    let me = app.get_json("/v1/me", access).await;
    assert_eq!(me["username"], "ada");

    // Approved once: the same request is answered at once, without a page.
    let (status, headers, _) = browser.get(&app, &path).await;
    assert_eq!(status, StatusCode::FOUND);
    let (location, again) = redirect_params(&headers);
    assert!(
        location.starts_with("http://127.0.0.1:41234/callback?code="),
        "{location}"
    );
    assert_eq!(again["state"], "xyz");
    // A scope not approved yet asks again.
    let wider = authorize_path(&client_id, REDIRECT, "profile location:read", "s2");
    let (status, _, html) = browser.get(&app, &wider).await;
    assert_eq!(status, StatusCode::OK);
    assert!(
        html.contains("See where you and your friends are"),
        "{html}"
    );

    // Replaying the first code fails and revokes what it issued.
    let (status, error) = exchange(
        &app,
        &[
            ("grant_type", "authorization_code"),
            ("code", &code),
            ("redirect_uri", "http://127.0.0.1:41234/callback"),
            ("client_id", &client_id),
            ("code_verifier", VERIFIER),
        ],
    )
    .await;
    assert_eq!(
        (status, error["error"].as_str()),
        (StatusCode::BAD_REQUEST, Some("invalid_grant"))
    );
    assert_eq!(
        app.get("/v1/me", access).await.status(),
        StatusCode::UNAUTHORIZED
    );
    let (status, error) =
        refresh_as(&app, tokens["refresh_token"].as_str().unwrap(), &client_id).await;
    assert_eq!(
        (status, error["error"].as_str()),
        (StatusCode::BAD_REQUEST, Some("invalid_grant"))
    );
}

async fn bad_authorization_requests_get_an_error_page_or_an_error_redirect(backend: Backend) {
    let app = TestApp::spawn(backend).await;
    let (client_id, _) = register_app(
        &app,
        ClientType::Public,
        &[REDIRECT, "https://trail.example/cb"],
        "profile checkins:read",
    );
    let good = [
        ("response_type", "code"),
        ("client_id", client_id.as_str()),
        ("redirect_uri", REDIRECT),
        ("scope", "profile"),
        ("state", "s1"),
        (
            "code_challenge",
            "E9Melhoa2OwvFrEMTJguCHaoeK1t8URWbuGJSstw-cM",
        ),
        ("code_challenge_method", "S256"),
    ];
    let get = |changes: Vec<(&'static str, Option<&'static str>)>,
               extra: Vec<(&'static str, &'static str)>| {
        let mut params: Vec<(&str, &str)> = good
            .iter()
            .filter_map(
                |(name, value)| match changes.iter().find(|(n, _)| n == name) {
                    Some((_, Some(new))) => Some((*name, *new)),
                    Some((_, None)) => None,
                    None => Some((*name, *value)),
                },
            )
            .collect();
        params.extend(extra);
        let path = format!(
            "/oauth/authorize?{}",
            serde_urlencoded::to_string(&params).unwrap()
        );
        let app = &app;
        async move { app.client.get(app.url(&path)).send().await.unwrap() }
    };

    // The client or the redirect URI cannot be trusted: a page, never a redirect.
    for (changes, extra) in [
        (vec![("client_id", Some("nobody-registered-this"))], vec![]),
        (vec![("client_id", None)], vec![]),
        (
            vec![("redirect_uri", Some("https://evil.example/cb"))],
            vec![],
        ),
        (
            vec![("redirect_uri", Some("http://127.0.0.1/callback/more"))],
            vec![],
        ),
        (
            vec![("redirect_uri", Some("http://localhost/callback"))],
            vec![],
        ),
        // Two are registered, so one must be named.
        (vec![("redirect_uri", None)], vec![]),
        (vec![], vec![("client_id", "again")]),
        (vec![], vec![("redirect_uri", "https://trail.example/cb")]),
    ] {
        let described = format!("{changes:?} {extra:?}");
        let response = get(changes, extra).await;
        assert_eq!(response.status(), StatusCode::BAD_REQUEST, "{described}");
        assert!(response.headers().get(LOCATION).is_none(), "{described}");
        assert!(
            response.text().await.unwrap().contains("cannot continue"),
            "{described}"
        );
    }

    // Anything else goes back to the app with the RFC's error, the state and the issuer.
    for (changes, extra, error) in [
        (
            vec![("code_challenge", None), ("code_challenge_method", None)],
            vec![],
            "invalid_request",
        ),
        (
            vec![("code_challenge_method", None)],
            vec![],
            "invalid_request",
        ),
        (
            vec![("code_challenge_method", Some("plain"))],
            vec![],
            "invalid_request",
        ),
        (
            vec![("code_challenge", Some("too-short"))],
            vec![],
            "invalid_request",
        ),
        (
            vec![("response_type", Some("token"))],
            vec![],
            "unsupported_response_type",
        ),
        (vec![("response_type", None)], vec![], "invalid_request"),
        (vec![("scope", Some("admin"))], vec![], "invalid_scope"),
        (
            vec![("scope", Some("profile superpowers"))],
            vec![],
            "invalid_scope",
        ),
        (
            vec![("scope", Some("profile venues:write"))],
            vec![],
            "invalid_scope",
        ),
        (vec![], vec![("scope", "checkins:read")], "invalid_request"),
    ] {
        let described = format!("{changes:?} {extra:?}");
        let response = get(changes, extra).await;
        assert_eq!(response.status(), StatusCode::FOUND, "{described}");
        let (location, params) = redirect_params(response.headers());
        assert!(
            location.starts_with("http://127.0.0.1/callback?"),
            "{location}"
        );
        assert_eq!(params["error"], error, "{described}: {location}");
        assert_eq!(params["state"], "s1");
        assert_eq!(params["iss"], "http://vicinity.test");
        assert!(!params.contains_key("code"));
    }
}

async fn the_page_refuses_forged_forms_and_wrong_passwords_and_lets_a_person_deny(
    backend: Backend,
) {
    let app = TestApp::spawn(backend).await;
    let ada = app.register("ada").await;
    let (client_id, _) = register_app(
        &app,
        ClientType::Public,
        &[REDIRECT],
        "profile checkins:read",
    );
    let path = authorize_path(&client_id, REDIRECT, "profile", "s1");
    let mut browser = Browser::default();
    let (_, _, html) = browser.get(&app, &path).await;
    let fields = hidden_fields(&html);
    let login = |password: &'static str| {
        with(
            &fields,
            &[
                ("action", "login"),
                ("username", "ada"),
                ("password", password),
            ],
        )
    };

    // Another site's form has neither the cookie nor the token.
    let mut stranger = Browser::default();
    let forged: Vec<(&str, &str)> = login("correct horse battery staple")
        .into_iter()
        .filter(|(name, _)| *name != "csrf_token")
        .chain([("csrf_token", "A".repeat(43).leak() as &str)])
        .collect();
    let (status, headers, _) = stranger.post(&app, &forged).await;
    assert_eq!(status, StatusCode::FORBIDDEN);
    assert!(headers.get(LOCATION).is_none());
    let (status, _, _) = browser.post(&app, &forged).await;
    assert_eq!(
        status,
        StatusCode::FORBIDDEN,
        "the token must match the cookie"
    );
    assert!(!browser.cookies.contains_key("vicinity_session"));

    // A wrong password shows the page again, saying so, and signs nobody in.
    let (status, _, html) = browser.post(&app, &login("not the password")).await;
    assert_eq!(status, StatusCode::BAD_REQUEST);
    assert!(html.contains("do not match an account"), "{html}");
    assert!(!browser.cookies.contains_key("vicinity_session"));

    // A hidden field changed on the way is checked again like a new request.
    let tampered: Vec<(&str, &str)> = login(ada.password.clone().leak())
        .into_iter()
        .map(|(name, value)| {
            if name == "scope" {
                (name, "admin")
            } else {
                (name, value)
            }
        })
        .collect();
    let (status, headers, _) = browser.post(&app, &tampered).await;
    assert_eq!(status, StatusCode::SEE_OTHER);
    assert_eq!(redirect_params(&headers).1["error"], "invalid_scope");

    // Deny: back to the app with access_denied, and no code.
    let (status, headers, _) = browser
        .post(&app, &with(&fields, &[("action", "deny")]))
        .await;
    assert_eq!(status, StatusCode::SEE_OTHER);
    let (_, params) = redirect_params(&headers);
    assert_eq!(params["error"], "access_denied");
    assert_eq!(params["state"], "s1");
    assert_eq!(params["iss"], "http://vicinity.test");
    assert!(!params.contains_key("code"));

    // Signed in: a request for more than was approved shows the consent page, whose
    // "Not you?" button signs out; then the sign-in form is back.
    let answer = sign_in_and_approve(&app, &mut browser, &ada, "ada@example.com", &path).await;
    assert!(answer.contains_key("code"));
    let wider = authorize_path(&client_id, REDIRECT, "profile checkins:read", "s3");
    let (status, _, html) = browser.get(&app, &wider).await;
    assert_eq!(status, StatusCode::OK);
    assert!(html.contains("Signed in as <strong>ada</strong>"), "{html}");
    let (status, headers, _) = browser
        .post(&app, &with(&hidden_fields(&html), &[("action", "logout")]))
        .await;
    assert_eq!(status, StatusCode::SEE_OTHER);
    assert!(
        headers[LOCATION]
            .to_str()
            .unwrap()
            .starts_with("/oauth/authorize?")
    );
    assert!(!browser.cookies.contains_key("vicinity_session"));
    let (status, _, html) = browser.get(&app, &wider).await;
    assert_eq!(status, StatusCode::OK);
    assert!(html.contains("Sign in to continue"), "{html}");
}

/// Runs the page for `who` and returns a fresh code for `client_id`.
pub(crate) async fn code_for(
    app: &TestApp,
    who: &Session,
    username: &str,
    client_id: &str,
    scope: &str,
) -> String {
    let mut browser = Browser::default();
    let path = authorize_path(client_id, REDIRECT, scope, "s");
    sign_in_and_approve(app, &mut browser, who, username, &path).await["code"].clone()
}

async fn a_code_is_bound_to_its_client_redirect_and_verifier_and_used_once(backend: Backend) {
    let app = TestApp::spawn(backend).await;
    let ada = app.register("ada").await;
    let (client_id, _) = register_app(&app, ClientType::Public, &[REDIRECT], "profile");
    let (other_id, _) = register_app(&app, ClientType::Public, &[REDIRECT], "profile");
    let token_request = |code: String, overrides: Vec<(&'static str, Option<String>)>| {
        let mut params: Vec<(&'static str, String)> = vec![
            ("grant_type", "authorization_code".into()),
            ("code", code),
            ("redirect_uri", REDIRECT.into()),
            ("client_id", client_id.clone()),
            ("code_verifier", VERIFIER.into()),
        ];
        for (name, value) in overrides {
            params.retain(|(n, _)| *n != name);
            if let Some(value) = value {
                params.push((name, value));
            }
        }
        params
    };
    let app_ref = &app;
    let send = |params: Vec<(&'static str, String)>| async move {
        let app = app_ref;
        let borrowed: Vec<(&str, &str)> = params.iter().map(|(n, v)| (*n, v.as_str())).collect();
        let (status, body) = exchange(app, &borrowed).await;
        (status, body["error"].as_str().unwrap_or("").to_owned())
    };

    // Refused before the code is looked at: nothing is spent.
    let code = code_for(&app, &ada, "ada", &client_id, "profile").await;
    for (overrides, status, error) in [
        (
            vec![("code_verifier", None)],
            StatusCode::BAD_REQUEST,
            "invalid_request",
        ),
        (
            vec![("code_verifier", Some("short".into()))],
            StatusCode::BAD_REQUEST,
            "invalid_request",
        ),
        (
            vec![("code", None)],
            StatusCode::BAD_REQUEST,
            "invalid_request",
        ),
        (
            vec![("client_id", None)],
            StatusCode::BAD_REQUEST,
            "invalid_request",
        ),
        (
            vec![("client_id", Some("unknown-app".into()))],
            StatusCode::UNAUTHORIZED,
            "invalid_client",
        ),
    ] {
        let described = format!("{overrides:?}");
        assert_eq!(
            send(token_request(code.clone(), overrides)).await,
            (status, error.to_owned()),
            "{described}"
        );
    }
    let mut repeated = token_request(code.clone(), vec![]);
    repeated.push(("code", code.clone()));
    assert_eq!(send(repeated).await.1, "invalid_request");
    // The code is still good.
    assert_eq!(send(token_request(code, vec![])).await.0, StatusCode::OK);

    // Wrong verifier, wrong redirect, another client, expired: invalid_grant, and the code is
    // spent even so.
    for overrides in [
        vec![("code_verifier", Some(format!("{VERIFIER}x")))],
        vec![("redirect_uri", Some("http://127.0.0.1:9/callback".into()))],
        vec![("redirect_uri", None)],
        vec![("client_id", Some(other_id.clone()))],
    ] {
        let code = code_for(&app, &ada, "ada", &client_id, "profile").await;
        let described = format!("{overrides:?}");
        assert_eq!(
            send(token_request(code.clone(), overrides)).await,
            (StatusCode::BAD_REQUEST, "invalid_grant".to_owned()),
            "{described}"
        );
        assert_eq!(
            send(token_request(code, vec![])).await.1,
            "invalid_grant",
            "{described}"
        );
    }
    let code = code_for(&app, &ada, "ada", &client_id, "profile").await;
    let hash = vicinity_domain::secret::sha256_hex(&code);
    app.store()
        .run_blocking(move |conn| {
            use diesel::prelude::*;
            use vicinity_store::schema::oauth_codes;
            diesel::update(oauth_codes::table.find(hash))
                .set(oauth_codes::expires_at.eq(0_i64))
                .execute(conn)?;
            Ok(())
        })
        .unwrap();
    assert_eq!(send(token_request(code, vec![])).await.1, "invalid_grant");
    assert_eq!(
        send(token_request("made-up".into(), vec![])).await.1,
        "invalid_grant"
    );
}

async fn confidential_clients_authenticate_once_and_are_throttled(backend: Backend) {
    let app = TestApp::spawn(backend).await;
    let ada = app.register("ada").await;
    let (client_id, secret) = register_app(
        &app,
        ClientType::Confidential,
        &["https://trail.example/cb"],
        "profile",
    );
    let secret = secret.unwrap();
    let path = authorize_path(&client_id, "https://trail.example/cb", "profile", "s");
    let mut browser = Browser::default();
    let code = sign_in_and_approve(&app, &mut browser, &ada, "ada", &path).await["code"].clone();
    let grant = |code: &str| {
        vec![
            ("grant_type".to_owned(), "authorization_code".to_owned()),
            ("code".to_owned(), code.to_owned()),
            (
                "redirect_uri".to_owned(),
                "https://trail.example/cb".to_owned(),
            ),
            ("code_verifier".to_owned(), VERIFIER.to_owned()),
        ]
    };
    let post = |params: Vec<(String, String)>, basic: Option<(&str, &str)>| {
        let mut request = app.client.post(app.url("/oauth/token")).form(&params);
        if let Some((id, secret)) = basic {
            request = request.basic_auth(id, Some(secret));
        }
        request.send()
    };

    // Without its secret, with both methods at once, or with a wrong one: refused.
    let mut named = grant(&code);
    named.push(("client_id".into(), client_id.clone()));
    let response = post(named.clone(), None).await.unwrap();
    assert_eq!(response.status(), StatusCode::UNAUTHORIZED);
    let mut both = named.clone();
    both.push(("client_secret".into(), secret.clone()));
    let response = post(both.clone(), Some((&client_id, &secret)))
        .await
        .unwrap();
    assert_eq!(response.status(), StatusCode::BAD_REQUEST);
    let response = post(grant(&code), Some((&client_id, "wrong")))
        .await
        .unwrap();
    assert_eq!(response.status(), StatusCode::UNAUTHORIZED);
    assert_eq!(
        response.headers()["www-authenticate"],
        "Basic realm=\"vicinity\""
    );
    let body: Value = response.json().await.unwrap();
    assert_eq!(body["error"], "invalid_client");

    // HTTP Basic (client_secret_basic) works, and so does client_secret_post.
    let response = post(grant(&code), Some((&client_id, &secret)))
        .await
        .unwrap();
    assert_eq!(response.status(), StatusCode::OK);
    let tokens: Value = response.json().await.unwrap();
    let mut refresh = vec![
        ("grant_type".to_owned(), "refresh_token".to_owned()),
        (
            "refresh_token".to_owned(),
            tokens["refresh_token"].as_str().unwrap().to_owned(),
        ),
        ("client_id".to_owned(), client_id.clone()),
    ];
    // A confidential client's refresh token needs its secret too.
    assert_eq!(
        post(refresh.clone(), None).await.unwrap().status(),
        StatusCode::UNAUTHORIZED
    );
    refresh.push(("client_secret".into(), secret.clone()));
    assert_eq!(post(refresh, None).await.unwrap().status(), StatusCode::OK);

    // Guessing the secret is throttled, and then even the right one waits.
    let mut statuses = Vec::new();
    for _ in 0..12 {
        statuses.push(
            post(grant("any"), Some((&client_id, "guess")))
                .await
                .unwrap()
                .status(),
        );
    }
    assert!(
        statuses[..9].iter().all(|s| *s == StatusCode::UNAUTHORIZED),
        "{statuses:?}"
    );
    assert_eq!(statuses[11], StatusCode::TOO_MANY_REQUESTS, "{statuses:?}");
    let response = post(grant("any"), Some((&client_id, &secret)))
        .await
        .unwrap();
    assert_eq!(response.status(), StatusCode::TOO_MANY_REQUESTS);
    assert!(response.headers().get("retry-after").is_some());
}

async fn an_apps_refresh_tokens_rotate_and_stay_with_the_app(backend: Backend) {
    let app = TestApp::spawn(backend).await;
    let ada = app.register("ada").await;
    let (client_id, _) = register_app(
        &app,
        ClientType::Public,
        &[REDIRECT],
        "profile checkins:read",
    );
    let (other_id, _) = register_app(
        &app,
        ClientType::Public,
        &[REDIRECT],
        "profile checkins:read",
    );
    let code = code_for(&app, &ada, "ada", &client_id, "profile checkins:read").await;
    let (_, tokens) = exchange(
        &app,
        &[
            ("grant_type", "authorization_code"),
            ("code", &code),
            ("redirect_uri", REDIRECT),
            ("client_id", &client_id),
            ("code_verifier", VERIFIER),
        ],
    )
    .await;
    let first = tokens["refresh_token"].as_str().unwrap().to_owned();

    // Narrowed, rotated.
    let (status, rotated) = exchange(
        &app,
        &[
            ("grant_type", "refresh_token"),
            ("refresh_token", &first),
            ("client_id", &client_id),
            ("scope", "profile"),
        ],
    )
    .await;
    assert_eq!(status, StatusCode::OK, "{rotated}");
    assert_eq!(rotated["scope"], "profile");
    let second = rotated["refresh_token"].as_str().unwrap().to_owned();
    // Never widened, never by the first-party app or another app.
    for params in [
        vec![
            ("grant_type", "refresh_token"),
            ("refresh_token", second.as_str()),
            ("client_id", client_id.as_str()),
            ("scope", "profile venues:write"),
        ],
        vec![
            ("grant_type", "refresh_token"),
            ("refresh_token", second.as_str()),
        ],
        vec![
            ("grant_type", "refresh_token"),
            ("refresh_token", second.as_str()),
            ("client_id", other_id.as_str()),
        ],
    ] {
        let (status, body) = exchange(&app, &params).await;
        assert_eq!(status, StatusCode::BAD_REQUEST, "{params:?}: {body}");
        assert!(
            ["invalid_scope", "invalid_grant"].contains(&body["error"].as_str().unwrap()),
            "{body}"
        );
    }
    // Still good after those refusals; the spent first one revokes everything.
    let (status, _) = refresh_as(&app, &second, &client_id).await;
    assert_eq!(status, StatusCode::OK);
    let (_, reuse) = refresh_as(&app, &first, &client_id).await;
    assert_eq!(reuse["error"], "invalid_grant");
}

/// Exchanges a fresh code of `who` for `client_id`'s tokens (a public client).
pub(crate) async fn app_tokens(
    app: &TestApp,
    who: &Session,
    username: &str,
    client_id: &str,
    scope: &str,
) -> Value {
    let code = code_for(app, who, username, client_id, scope).await;
    let (status, tokens) = exchange(
        app,
        &[
            ("grant_type", "authorization_code"),
            ("code", &code),
            ("redirect_uri", REDIRECT),
            ("client_id", client_id),
            ("code_verifier", VERIFIER),
        ],
    )
    .await;
    assert_eq!(status, StatusCode::OK, "{tokens}");
    tokens
}

async fn people_see_and_withdraw_the_apps_they_authorized(backend: Backend) {
    let app = TestApp::spawn(backend).await;
    let ada = app.register("ada").await;
    let (client_id, _) = register_app(
        &app,
        ClientType::Public,
        &[REDIRECT],
        "profile checkins:read",
    );
    let tokens = app_tokens(&app, &ada, "ada", &client_id, "profile checkins:read").await;
    let app_access = tokens["access_token"].as_str().unwrap();

    let apps = app.get_json("/v1/me/apps", &ada.access_token).await;
    let items = apps["items"].as_array().unwrap();
    assert_eq!(items.len(), 1, "{apps}");
    assert_eq!(items[0]["client_id"], client_id.as_str());
    assert_eq!(items[0]["name"], "Trail Log");
    assert_eq!(items[0]["scope"], "profile checkins:read");
    assert!(items[0]["granted_at"].is_string());
    // An app may not see which other apps a person uses, nor withdraw them.
    assert_eq!(
        app.get("/v1/me/apps", app_access).await.status(),
        StatusCode::FORBIDDEN
    );
    let path = format!("/v1/me/apps/{client_id}");
    let withdraw = |path: String, token: String| {
        let request = app.client.delete(app.url(&path)).bearer_auth(token);
        async move { request.send().await.unwrap().status() }
    };
    assert_eq!(
        withdraw(path.clone(), app_access.to_owned()).await,
        StatusCode::FORBIDDEN
    );
    // Vicinity's own app is not one she authorized: withdrawing it is a 404, not a sign-out
    // of every device (schemathesis found it signing her out).
    assert_eq!(
        withdraw("/v1/me/apps/vicinity".into(), ada.access_token.clone()).await,
        StatusCode::NOT_FOUND
    );
    assert_eq!(
        app.get("/v1/me", &ada.access_token).await.status(),
        StatusCode::OK
    );

    assert_eq!(
        withdraw(path.clone(), ada.access_token.clone()).await,
        StatusCode::NO_CONTENT
    );
    assert_eq!(
        app.get("/v1/me", app_access).await.status(),
        StatusCode::UNAUTHORIZED
    );
    let (_, refused) =
        refresh_as(&app, tokens["refresh_token"].as_str().unwrap(), &client_id).await;
    assert_eq!(refused["error"], "invalid_grant");
    let apps = app.get_json("/v1/me/apps", &ada.access_token).await;
    assert_eq!(apps["items"], serde_json::json!([]));
    assert_eq!(
        withdraw(path, ada.access_token.clone()).await,
        StatusCode::NOT_FOUND
    );
    // Her own login is untouched, and the app must ask again.
    assert_eq!(
        app.get("/v1/me", &ada.access_token).await.status(),
        StatusCode::OK
    );
    let mut browser = Browser::default();
    let request = authorize_path(&client_id, REDIRECT, "profile", "s");
    let (_, _, html) = browser.get(&app, &request).await;
    let fields = hidden_fields(&html);
    let (status, headers, _) = browser
        .post(
            &app,
            &with(
                &fields,
                &[
                    ("action", "login"),
                    ("username", "ada"),
                    ("password", &ada.password),
                ],
            ),
        )
        .await;
    assert_eq!(status, StatusCode::SEE_OTHER);
    assert!(
        headers[LOCATION]
            .to_str()
            .unwrap()
            .starts_with("/oauth/authorize?"),
        "consent is asked again"
    );
}

async fn revocation_and_introspection_answer_only_the_client_that_owns_the_token(backend: Backend) {
    let app = TestApp::spawn(backend).await;
    let ada = app.register("ada").await;
    let (owner, owner_secret) =
        register_app(&app, ClientType::Confidential, &[REDIRECT], "profile");
    let (other, other_secret) =
        register_app(&app, ClientType::Confidential, &[REDIRECT], "profile");
    let (public, _) = register_app(&app, ClientType::Public, &[REDIRECT], "profile");
    let (owner_secret, other_secret) = (owner_secret.unwrap(), other_secret.unwrap());
    let code = code_for(&app, &ada, "ada", &owner, "profile").await;
    let response = app
        .client
        .post(app.url("/oauth/token"))
        .basic_auth(&owner, Some(&owner_secret))
        .form(&[
            ("grant_type", "authorization_code"),
            ("code", code.as_str()),
            ("redirect_uri", REDIRECT),
            ("code_verifier", VERIFIER),
        ])
        .send()
        .await
        .unwrap();
    let tokens: Value = response.json().await.unwrap();
    let access = tokens["access_token"].as_str().unwrap();
    let refresh = tokens["refresh_token"].as_str().unwrap();
    let ask = |path: &'static str, token: &str, id: &str, secret: Option<&str>| {
        let mut form = vec![("token", token.to_owned()), ("client_id", id.to_owned())];
        if let Some(secret) = secret {
            form.push(("client_secret", secret.to_owned()));
        }
        app.client.post(app.url(path)).form(&form).send()
    };

    // The owner learns what its tokens grant; anyone else learns nothing.
    for token in [access, refresh] {
        let response = ask("/oauth/introspect", token, &owner, Some(&owner_secret))
            .await
            .unwrap();
        assert_eq!(response.status(), StatusCode::OK);
        assert_eq!(response.headers()["cache-control"], "no-store");
        let body: Value = response.json().await.unwrap();
        assert_eq!(body["active"], true, "{body}");
        assert_eq!(body["client_id"], owner.as_str());
        assert_eq!(body["scope"], "profile");
        assert_eq!(body["sub"], ada.user_id.as_str());
        assert!(body["exp"].as_i64().unwrap() > chrono::Utc::now().timestamp());
        let response = ask("/oauth/introspect", token, &other, Some(&other_secret))
            .await
            .unwrap();
        assert_eq!(
            response.json::<Value>().await.unwrap(),
            serde_json::json!({"active": false})
        );
    }
    let garbage = ask(
        "/oauth/introspect",
        "not-a-token",
        &owner,
        Some(&owner_secret),
    )
    .await
    .unwrap();
    assert_eq!(
        garbage.json::<Value>().await.unwrap(),
        serde_json::json!({"active": false})
    );
    for (id, secret) in [
        (public.as_str(), None),
        (owner.as_str(), None),
        (owner.as_str(), Some("wrong")),
    ] {
        let response = ask("/oauth/introspect", access, id, secret).await.unwrap();
        assert_eq!(
            response.status(),
            StatusCode::UNAUTHORIZED,
            "{id} {secret:?}"
        );
        assert_eq!(
            response.json::<Value>().await.unwrap()["error"],
            "invalid_client"
        );
    }
    // Without client credentials the answer is 401 with the challenge that says how to
    // authenticate, whatever the form holds: who asks is settled before what is asked.
    for form in [vec![("token", access)], vec![], vec![("token", "")]] {
        let response = app.post_form("/oauth/introspect", &form).await;
        assert_eq!(response.status(), StatusCode::UNAUTHORIZED, "{form:?}");
        assert_eq!(
            response.headers()["www-authenticate"],
            "Basic realm=\"vicinity\"",
            "{form:?}"
        );
        assert_eq!(
            response.json::<Value>().await.unwrap()["error"],
            "invalid_client"
        );
    }
    // An authenticated client still hears that the token is missing.
    let response = app
        .client
        .post(app.url("/oauth/introspect"))
        .basic_auth(&owner, Some(&owner_secret))
        .form(&[("token", "")])
        .send()
        .await
        .unwrap();
    assert_eq!(response.status(), StatusCode::BAD_REQUEST);

    // Revocation: only by the owner, authenticated.
    let response = ask("/oauth/revoke", refresh, &other, Some(&other_secret))
        .await
        .unwrap();
    assert_eq!(response.status(), StatusCode::UNAUTHORIZED);
    let response = ask("/oauth/revoke", refresh, &owner, None).await.unwrap();
    assert_eq!(response.status(), StatusCode::UNAUTHORIZED);
    let response = app.post_form("/oauth/revoke", &[("token", refresh)]).await;
    assert_eq!(
        response.status(),
        StatusCode::UNAUTHORIZED,
        "the first-party app cannot revoke it"
    );
    assert_eq!(app.get("/v1/me", access).await.status(), StatusCode::OK);
    let response = ask("/oauth/revoke", refresh, &owner, Some(&owner_secret))
        .await
        .unwrap();
    assert_eq!(response.status(), StatusCode::OK);
    assert_eq!(
        app.get("/v1/me", access).await.status(),
        StatusCode::UNAUTHORIZED
    );
    let response = ask("/oauth/introspect", access, &owner, Some(&owner_secret))
        .await
        .unwrap();
    assert_eq!(response.json::<Value>().await.unwrap()["active"], false);
}

async fn an_app_without_location_read_sees_friends_no_finer_than_the_city(backend: Backend) {
    use reqwest::Method;
    use serde_json::json;

    let app = TestApp::spawn(backend).await;
    let ada = app.register("ada").await;
    let bob = app.register("bob").await;
    crate::helpers::befriend(&app, &ada, &bob).await;
    for who in [&ada, &bob] {
        let response = send(
            &app,
            Method::PATCH,
            "/v1/me",
            who,
            Some(json!({"location_precision": "exact"})),
        )
        .await;
        assert_eq!(response.status(), StatusCode::OK);
    }
    // Bob stands at the centre of his city-level cell, so that even at city level he is
    // within the check-in's 1 km; the venue is 220 m north of him.
    let bob_at = vicinity_geo::snap(
        vicinity_geo::Point::new(40.7612, -73.9822).unwrap(),
        vicinity_geo::SnapLevel::City,
    );
    let (lat, lng) = (bob_at.lat() + 0.002, bob_at.lng());
    let venue: Value = send(
        &app,
        Method::POST,
        "/v1/venues",
        &ada,
        Some(json!({"name": "Blue Bottle", "category_id": "coffee",
            "location": {"lat": lat, "lng": lng}})),
    )
    .await
    .json()
    .await
    .unwrap();
    let venue = venue["id"].as_str().unwrap().to_owned();
    assert_eq!(
        crate::helpers::put_location(&app, &bob, bob_at)
            .await
            .status(),
        StatusCode::OK
    );

    let (checkins_only, _) = register_app(
        &app,
        ClientType::Public,
        &[REDIRECT],
        "checkins:read checkins:write",
    );
    let (with_location, _) = register_app(
        &app,
        ClientType::Public,
        &[REDIRECT],
        "checkins:read checkins:write location:read",
    );
    let mut seen = Vec::new();
    for (client_id, scope) in [
        (checkins_only.as_str(), "checkins:read checkins:write"),
        (
            with_location.as_str(),
            "checkins:read checkins:write location:read",
        ),
    ] {
        let tokens = app_tokens(&app, &ada, "ada", client_id, scope).await;
        let as_app = Session {
            user_id: ada.user_id.clone(),
            password: String::new(),
            access_token: tokens["access_token"].as_str().unwrap().to_owned(),
            refresh_token: String::new(),
        };
        let response = send(
            &app,
            Method::POST,
            "/v1/checkins",
            &as_app,
            Some(
                json!({"venue_id": venue, "location": {"lat": lat, "lng": lng, "accuracy_m": 10}}),
            ),
        )
        .await;
        assert_eq!(response.status(), StatusCode::CREATED);
        let created: Value = response.json().await.unwrap();
        let friends = created["nearby_friends"].as_array().unwrap().clone();
        assert_eq!(friends.len(), 1, "{scope}: {created}");
        // Bob's access log says at what level Ada (through the app) saw him.
        let log = app
            .get_json("/v1/me/location/access-log", &bob.access_token)
            .await;
        assert_eq!(
            log["items"][0]["precision"], friends[0]["precision"],
            "{log}"
        );
        // Ada's own device position, in the answer and in her list, is location too.
        let listed = app.get_json("/v1/me/checkins", &as_app.access_token).await;
        let shown = |checkin: &Value| checkin.get("location").is_some();
        assert_eq!(
            shown(&created["checkin"]),
            shown(&listed["items"][0]),
            "{listed}"
        );
        seen.push((
            friends[0]["precision"].clone(),
            friends[0]["distance_m"].as_i64().unwrap(),
            shown(&created["checkin"]),
        ));
    }
    assert_eq!(seen[0].0, "city", "{seen:?}");
    assert_eq!(seen[0].1 % 1_000, 0, "{seen:?}");
    assert!(!seen[0].2, "{seen:?}");
    assert_eq!(seen[1].0, "exact", "{seen:?}");
    assert_eq!(seen[1].1 % 50, 0, "{seen:?}");
    assert!(seen[1].2, "{seen:?}");
    // Her own app still shows it.
    let own = app.get_json("/v1/me/checkins", &ada.access_token).await;
    assert_eq!(
        own["items"][0]["location"]["accuracy_m"].as_f64(),
        Some(10.0),
        "{own}"
    );
}

async fn a_confidential_client_gets_a_token_for_itself_and_no_person(backend: Backend) {
    let app = TestApp::spawn(backend).await;
    let (client_id, secret) =
        register_app(&app, ClientType::Confidential, &[], "venues:write admin");
    let secret = secret.unwrap();
    let (public, _) = register_app(&app, ClientType::Public, &[REDIRECT], "profile");
    let ask = |form: Vec<(&'static str, &'static str)>, basic: Option<(&str, &str)>| {
        let mut request = app.client.post(app.url("/oauth/token")).form(&form);
        if let Some((id, secret)) = basic {
            request = request.basic_auth(id, Some(secret));
        }
        request.send()
    };
    let grant = vec![("grant_type", "client_credentials")];

    let response = ask(grant.clone(), Some((&client_id, &secret)))
        .await
        .unwrap();
    assert_eq!(response.status(), StatusCode::OK);
    assert_eq!(response.headers()["cache-control"], "no-store");
    let tokens: Value = response.json().await.unwrap();
    assert_eq!(tokens["scope"], "venues:write admin");
    assert!(tokens.get("refresh_token").is_none(), "{tokens}");
    let access = tokens["access_token"].as_str().unwrap().to_owned();
    assert_eq!(claims_of(&access)["sub"], client_id.as_str());

    // Narrower is fine, wider is not; only an authenticated confidential client may ask.
    let mut narrow = grant.clone();
    narrow.push(("scope", "admin"));
    let response = ask(narrow, Some((&client_id, &secret))).await.unwrap();
    assert_eq!(response.json::<Value>().await.unwrap()["scope"], "admin");
    let mut wide = grant.clone();
    wide.push(("scope", "admin profile"));
    let response = ask(wide, Some((&client_id, &secret))).await.unwrap();
    assert_eq!(response.status(), StatusCode::BAD_REQUEST);
    assert_eq!(
        response.json::<Value>().await.unwrap()["error"],
        "invalid_scope"
    );
    let response = ask(grant.clone(), Some((&client_id, "wrong")))
        .await
        .unwrap();
    assert_eq!(response.status(), StatusCode::UNAUTHORIZED);
    let response = ask(grant.clone(), None).await.unwrap();
    assert_eq!(response.status(), StatusCode::UNAUTHORIZED);
    let mut as_public = grant.clone();
    as_public.push(("client_id", public.clone().leak()));
    let response = ask(as_public, None).await.unwrap();
    assert_eq!(response.status(), StatusCode::BAD_REQUEST);
    assert_eq!(
        response.json::<Value>().await.unwrap()["error"],
        "unauthorized_client"
    );

    // It acts for no person: person routes refuse it, whatever its scopes.
    let (status, code, _) = crate::helpers::error_code(app.get("/v1/me", &access).await).await;
    assert_eq!(
        (status, code.as_str()),
        (StatusCode::FORBIDDEN, "forbidden")
    );

    // Introspection and revocation know it.
    let introspect = || {
        app.client
            .post(app.url("/oauth/introspect"))
            .basic_auth(&client_id, Some(&secret))
            .form(&[("token", access.as_str())])
            .send()
    };
    let body: Value = introspect().await.unwrap().json().await.unwrap();
    assert_eq!(body["active"], true, "{body}");
    assert_eq!(body["sub"], client_id.as_str());
    let response = app
        .client
        .post(app.url("/oauth/revoke"))
        .basic_auth(&client_id, Some(&secret))
        .form(&[("token", access.as_str())])
        .send()
        .await
        .unwrap();
    assert_eq!(response.status(), StatusCode::OK);
    let body: Value = introspect().await.unwrap().json().await.unwrap();
    assert_eq!(body, serde_json::json!({"active": false}));
}

async fn an_administrator_registers_lists_and_deletes_apps_through_the_api(backend: Backend) {
    use serde_json::json;

    let app = TestApp::spawn(backend).await;
    let ada = app.register("ada").await;
    // The operator's own tool, registered with the CLI's rules.
    let (ops, ops_secret) =
        register_app(&app, ClientType::Confidential, &[], "admin checkins:read");
    let ops_secret = ops_secret.unwrap();
    let admin = token_of_client(&app, &ops, &ops_secret, Some("admin")).await;
    let not_admin = token_of_client(&app, &ops, &ops_secret, Some("checkins:read")).await;
    let create = |token: String, body: Value| {
        let app = &app;
        async move {
            app.client
                .post(app.url("/v1/admin/clients"))
                .bearer_auth(token)
                .json(&body)
                .send()
                .await
                .unwrap()
        }
    };
    let public_body = json!({"name": "Trail Log", "type": "public",
        "redirect_uris": [REDIRECT], "scopes": "profile checkins:read"});

    for token in [ada.access_token.clone(), not_admin] {
        let (status, code, _) =
            crate::helpers::error_code(create(token, public_body.clone()).await).await;
        assert_eq!(
            (status, code.as_str()),
            (StatusCode::FORBIDDEN, "insufficient_scope")
        );
    }
    let response = create(admin.clone(), public_body).await;
    assert_eq!(response.status(), StatusCode::CREATED);
    assert_eq!(response.headers()["cache-control"], "no-store");
    let public: Value = response.json().await.unwrap();
    assert!(public.get("client_secret").is_none(), "{public}");
    assert_eq!(public["type"], "public");
    let response = create(
        admin.clone(),
        json!({"name": "Nightly export", "type": "confidential", "scopes": "admin"}),
    )
    .await;
    assert_eq!(response.status(), StatusCode::CREATED);
    let confidential: Value = response.json().await.unwrap();
    assert_eq!(confidential["client_secret"].as_str().unwrap().len(), 43);

    // Every problem named at once, nothing registered.
    let response = create(
        admin.clone(),
        json!({"name": "", "type": "public", "redirect_uris": ["http://app.example/cb"],
            "scopes": "admin"}),
    )
    .await;
    let (status, code, body) = crate::helpers::error_code(response).await;
    assert_eq!(
        (status, code.as_str()),
        (StatusCode::UNPROCESSABLE_ENTITY, "validation_failed")
    );
    let fields = crate::helpers::error_fields(&body);
    for field in ["name", "redirect_uris[0]", "scopes"] {
        assert!(fields.contains(&field), "{field} missing from {body}");
    }
    let (status, _, body) = crate::helpers::error_code(
        create(
            admin.clone(),
            json!({"name": "X", "type": "weird", "scopes": "profile"}),
        )
        .await,
    )
    .await;
    assert_eq!(status, StatusCode::UNPROCESSABLE_ENTITY);
    assert_eq!(crate::helpers::error_fields(&body), ["type"]);

    let listed = app.get_json("/v1/admin/clients", &admin).await;
    let names: Vec<&str> = listed["items"]
        .as_array()
        .unwrap()
        .iter()
        .map(|c| c["name"].as_str().unwrap())
        .collect();
    assert_eq!(names.len(), 3, "{listed}");
    assert!(!listed.to_string().contains("client_secret"));

    // Deleting an app ends what people granted it.
    let public_id = public["client_id"].as_str().unwrap();
    let tokens = app_tokens(&app, &ada, "ada", public_id, "profile").await;
    let path = format!("/v1/admin/clients/{public_id}");
    let delete = || app.client.delete(app.url(&path)).bearer_auth(&admin).send();
    assert_eq!(delete().await.unwrap().status(), StatusCode::NO_CONTENT);
    assert_eq!(
        app.get("/v1/me", tokens["access_token"].as_str().unwrap())
            .await
            .status(),
        StatusCode::UNAUTHORIZED
    );
    let (status, refused) =
        refresh_as(&app, tokens["refresh_token"].as_str().unwrap(), public_id).await;
    assert_eq!(
        (status, refused["error"].as_str()),
        (StatusCode::UNAUTHORIZED, Some("invalid_client"))
    );
    assert_eq!(delete().await.unwrap().status(), StatusCode::NOT_FOUND);
}
