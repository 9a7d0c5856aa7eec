//! Form bodies of the OAuth endpoints (`json.rs`, `FormParams`, as `/oauth/token`, `/revoke`
//! and `/introspect` read them), their HTTP Basic client credentials (`routes/oauth.rs`), and
//! the authorization page's forms and address (`routes/authorize.rs`) for one registered app.
//! A body that parses holds each parameter once with a value; Basic credentials decode each
//! part on its own; a request the page accepts goes to a registered redirect URI, asks for no
//! more than the app may have, and survives the trips through the page's own address and its
//! hidden form fields unchanged, with nothing unescaped in the HTML.

#![no_main]

use std::sync::LazyLock;

use base64::Engine;
use base64::engine::general_purpose::STANDARD;
use libfuzzer_sys::fuzz_target;
use vicinity_api::fuzzing::{
    AuthorizeForm, AuthorizeRefusal, AuthorizeRequest, FormError, FormParams, authorize,
    parse_basic,
};
use vicinity_domain::{Client, ClientId, ClientType, RedirectUri, Scope, ScopeSet};

const REDIRECT_URIS: [&str; 3] = [
    "https://app.example/cb?from=vicinity",
    "http://127.0.0.1/callback",
    "com.example.app:/cb",
];

static CLIENT: LazyLock<Client> = LazyLock::new(|| Client {
    id: ClientId::from_trusted("app_fuzz".into()),
    name: "Fuzz".into(),
    client_type: ClientType::Public,
    redirect_uris: REDIRECT_URIS
        .iter()
        .map(|uri| RedirectUri::parse(uri, ClientType::Public).expect("a valid redirect URI"))
        .collect(),
    scopes: ScopeSet::parse("profile checkins:read location:read admin").expect("scopes"),
    created_at: chrono::DateTime::UNIX_EPOCH,
});

/// `FormParams` against a plain reading of the same body.
fn check_form_params(data: &[u8]) {
    let pairs = serde_urlencoded::from_bytes::<Vec<(String, String)>>(data);
    let given: Vec<&(String, String)> = match &pairs {
        Ok(pairs) => pairs
            .iter()
            .filter(|(_, value)| !value.is_empty())
            .collect(),
        Err(_) => Vec::new(),
    };
    match FormParams::parse(data) {
        Ok(params) => {
            assert!(pairs.is_ok());
            assert_eq!(params.names().count(), given.len(), "each name once");
            for (name, value) in given {
                assert_eq!(params.get(name), Some(value.as_str()));
            }
        }
        Err(FormError::Repeated(name)) => {
            assert!(given.iter().filter(|(n, _)| *n == name).count() > 1);
        }
        Err(FormError::Unreadable) => assert!(pairs.is_err()),
        Err(other) => panic!("a body alone cannot be refused as {other:?}"),
    }
}

/// The input as the text of HTTP Basic credentials (`id:secret`, each form-urlencoded).
fn check_basic(data: &[u8]) {
    if let Ok(value) = std::str::from_utf8(data) {
        let _ = parse_basic(value);
    }
    let parsed = parse_basic(&format!("Basic {}", STANDARD.encode(data)));
    let Ok(text) = std::str::from_utf8(data) else {
        assert_eq!(parsed, None);
        return;
    };
    let Some((raw_id, raw_secret)) = text.split_once(':') else {
        assert_eq!(parsed, None);
        return;
    };
    let Some((id, secret)) = parsed else {
        return;
    };
    // Decoding only undoes `%XX` and `+`: a part without them is taken as it is.
    for (raw, decoded) in [(raw_id, &id), (raw_secret, &secret)] {
        if !raw.contains(['%', '+']) {
            assert_eq!(raw, decoded, "credentials {text:?}");
        }
    }
}

/// `text` with the port of an http loopback address removed.
fn without_loopback_port(text: &str) -> String {
    for prefix in ["http://127.0.0.1:", "http://[::1]:"] {
        if let Some(rest) = text.strip_prefix(prefix) {
            let host = prefix.trim_end_matches(':');
            return format!(
                "{host}{}",
                rest.trim_start_matches(|c: char| c.is_ascii_digit())
            );
        }
    }
    text.to_owned()
}

/// The (name, value) pairs of the page's hidden fields; every value escaped for HTML.
fn read_hidden_fields(html: &str) -> Vec<(String, String)> {
    const OPEN: &str = "<input type=\"hidden\" name=\"";
    let mut fields = Vec::new();
    let mut rest = html;
    while !rest.is_empty() {
        let field = rest.strip_prefix(OPEN).expect("only hidden inputs");
        let (name, field) = field.split_once("\" value=\"").expect("a name and a value");
        let (value, after) = field.split_once("\">").expect("a closed attribute");
        assert!(
            !value.contains(['"', '<', '>', '\'']),
            "unescaped HTML in {value:?}"
        );
        let value = value
            .replace("&quot;", "\"")
            .replace("&#39;", "'")
            .replace("&lt;", "<")
            .replace("&gt;", ">")
            .replace("&amp;", "&");
        fields.push((name.to_owned(), value));
        rest = after;
    }
    fields
}

fn check_request(request: &AuthorizeRequest) {
    let redirect = without_loopback_port(&request.redirect_uri);
    assert!(
        REDIRECT_URIS.contains(&redirect.as_str()),
        "{}",
        request.redirect_uri
    );
    assert!(
        request.named_redirect.is_none()
            || request.named_redirect.as_ref() == Some(&request.redirect_uri)
    );
    assert!(!request.scope.is_empty());
    assert!(request.scope.is_subset_of(CLIENT.scopes));
    assert!(!request.scope.contains(Scope::Admin));
    assert!(
        request
            .state
            .as_ref()
            .is_none_or(|state| state.len() <= 1_000)
    );

    // The page's own address carries the same request (and is a fixed point).
    let again = authorize(request.query.as_bytes(), false, &CLIENT)
        .expect("the page's address is readable")
        .request
        .expect("the page's address holds an acceptable request");
    assert_eq!(&again, request);

    // So do the hidden fields of its forms.
    let fields = read_hidden_fields(&request.hidden_fields);
    assert!(
        fields
            .iter()
            .any(|(name, value)| name == "csrf_token" && value == "csrf")
    );
    let body = serde_urlencoded::to_string(&fields).expect("fields encode");
    let posted = authorize(body.as_bytes(), true, &CLIENT).expect("the form is readable");
    assert_eq!(posted.csrf_token.as_deref(), Some("csrf"));
    assert_eq!(posted.request.as_ref(), Ok(request));
}

fn check_authorize(data: &[u8], form: bool) {
    let Some(AuthorizeForm { request, .. }) = authorize(data, form, &CLIENT) else {
        assert!(serde_urlencoded::from_bytes::<Vec<(String, String)>>(data).is_err());
        return;
    };
    match request {
        Ok(request) => check_request(&request),
        Err(AuthorizeRefusal::Page(status)) => assert_eq!(status.as_u16(), 400),
        Err(AuthorizeRefusal::Redirect(error)) => assert!(
            matches!(
                error,
                "invalid_request" | "unsupported_response_type" | "invalid_scope"
            ),
            "{error}"
        ),
        Err(AuthorizeRefusal::Store) => panic!("no database here"),
    }
}

fuzz_target!(|data: &[u8]| {
    check_form_params(data);
    check_basic(data);
    check_authorize(data, true);
    check_authorize(data, false);
});
