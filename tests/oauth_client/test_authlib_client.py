"""A third-party app written with authlib, as any developer outside the project would write
it: nothing Vicinity-specific beyond the issuer URL and the client id (and secret) an
operator gave them. The person's part (sign in, approve) is played by `Person` (conftest)."""

from urllib.parse import parse_qs, urlsplit

import pytest
import requests
from authlib.common.security import generate_token
from authlib.integrations.requests_client import OAuth2Session, OAuthError

from conftest import HTTP_TIMEOUT, Person, loopback_redirect_uri

SCOPE = "profile checkins:read"


def public_app(settings, redirect_uri):
    return OAuth2Session(
        client_id=settings.public_client_id,
        scope=SCOPE,
        redirect_uri=redirect_uri,
        code_challenge_method="S256",
        token_endpoint_auth_method="none",
        revocation_endpoint_auth_method="none",
        default_timeout=HTTP_TIMEOUT,
    )


def confidential_app(settings, redirect_uri, secret=None):
    return OAuth2Session(
        client_id=settings.confidential_client_id,
        client_secret=secret or settings.confidential_client_secret,
        scope=SCOPE,
        redirect_uri=redirect_uri,
        code_challenge_method="S256",
        token_endpoint_auth_method="client_secret_basic",
        revocation_endpoint_auth_method="client_secret_basic",
        default_timeout=HTTP_TIMEOUT,
    )


def query(url):
    return {name: values[0] for name, values in parse_qs(urlsplit(url).query).items()}


def sign_in(app, metadata, person, redirect_uri, decision="approve"):
    """Starts an authorization with PKCE S256, lets the person answer, and checks the
    redirect's `state` and `iss` (RFC 9207). Returns (callback URL, state, code verifier)."""
    verifier = generate_token(64)
    url, state = app.create_authorization_url(metadata["authorization_endpoint"], code_verifier=verifier)
    sent = query(url)
    assert sent["code_challenge_method"] == "S256"
    assert sent["code_challenge"] and sent["code_challenge"] != verifier
    callback = person.authorize(url, redirect_uri, decision)
    answer = query(callback)
    assert answer.get("state") == state, callback
    assert answer.get("iss") == metadata["issuer"], callback
    return callback, state, verifier


def me(settings, access_token):
    return requests.get(
        settings.base_url + "/v1/me",
        headers={"Authorization": f"Bearer {access_token}"},
        timeout=HTTP_TIMEOUT,
    )


def assert_token_response(token):
    assert token["token_type"].lower() == "bearer"
    assert token["access_token"] and token["refresh_token"]
    assert token["expires_in"] > 0
    assert set(token["scope"].split()) == set(SCOPE.split())


def test_public_client_code_pkce_refresh_rotation(settings, metadata, person):
    redirect_uri = loopback_redirect_uri()
    app = public_app(settings, redirect_uri)
    callback, state, verifier = sign_in(app, metadata, person, redirect_uri)
    assert "code" in query(callback)

    token = app.fetch_token(metadata["token_endpoint"], authorization_response=callback, code_verifier=verifier)
    assert_token_response(token)

    # authlib sends the stored token itself.
    answer = app.get(settings.base_url + "/v1/me", timeout=HTTP_TIMEOUT)
    assert answer.status_code == 200, answer.text
    assert answer.json()["username"] == settings.username

    # Refresh with rotation: a new pair, and the spent refresh token is refused.
    first = dict(token)
    refreshed = app.refresh_token(metadata["token_endpoint"], refresh_token=first["refresh_token"])
    assert_token_response(refreshed)
    assert refreshed["refresh_token"] != first["refresh_token"]
    assert refreshed["access_token"] != first["access_token"]
    answer = app.get(settings.base_url + "/v1/me", timeout=HTTP_TIMEOUT)
    assert answer.status_code == 200, answer.text
    assert answer.request.headers["Authorization"] == f"Bearer {refreshed['access_token']}"

    with pytest.raises(OAuthError) as refused:
        app.refresh_token(metadata["token_endpoint"], refresh_token=first["refresh_token"])
    assert refused.value.error == "invalid_grant"
    # Replaying a spent refresh token revokes the whole login (README, "Tokens").
    assert me(settings, refreshed["access_token"]).status_code == 401


def test_public_client_revocation(settings, metadata, person):
    redirect_uri = loopback_redirect_uri()
    app = public_app(settings, redirect_uri)
    callback, _, verifier = sign_in(app, metadata, person, redirect_uri)
    token = app.fetch_token(metadata["token_endpoint"], authorization_response=callback, code_verifier=verifier)
    assert me(settings, token["access_token"]).status_code == 200

    revoked = app.revoke_token(
        metadata["revocation_endpoint"], token=token["refresh_token"], token_type_hint="refresh_token"
    )
    assert revoked.status_code == 200, revoked.text

    answer = me(settings, token["access_token"])
    assert answer.status_code == 401, answer.text
    assert answer.headers.get("WWW-Authenticate", "").startswith("Bearer")
    with pytest.raises(OAuthError) as refused:
        app.refresh_token(metadata["token_endpoint"], refresh_token=token["refresh_token"])
    assert refused.value.error == "invalid_grant"


def test_pkce_verifier_must_match(settings, metadata, person):
    redirect_uri = loopback_redirect_uri()
    app = public_app(settings, redirect_uri)
    callback, _, verifier = sign_in(app, metadata, person, redirect_uri)
    with pytest.raises(OAuthError) as refused:
        app.fetch_token(
            metadata["token_endpoint"], authorization_response=callback, code_verifier=generate_token(64)
        )
    assert refused.value.error == "invalid_grant"


def test_denied_request_comes_back_as_access_denied(settings, metadata, new_person):
    redirect_uri = loopback_redirect_uri()
    app = public_app(settings, redirect_uri)
    username, password = new_person()
    someone = Person(username, password)
    callback, _, _ = sign_in(app, metadata, someone, redirect_uri, decision="deny")
    answer = query(callback)
    assert answer["error"] == "access_denied"
    assert "code" not in answer
    assert someone.pages_seen == ["sign-in", "consent"]


def test_confidential_client_with_client_secret_basic(settings, metadata, person):
    redirect_uri = loopback_redirect_uri()
    app = confidential_app(settings, redirect_uri)
    sent = []
    app.hooks["response"].append(lambda response, *args, **kwargs: sent.append(response.request))

    callback, _, verifier = sign_in(app, metadata, person, redirect_uri)
    token = app.fetch_token(metadata["token_endpoint"], authorization_response=callback, code_verifier=verifier)
    assert_token_response(token)
    # client_secret_basic: the secret travels in the Authorization header, not in the form.
    exchange = sent[-1]
    assert exchange.url == metadata["token_endpoint"]
    assert exchange.headers["Authorization"].startswith("Basic ")
    body = exchange.body or ""
    assert "client_secret" not in (body.decode() if isinstance(body, bytes) else body)
    assert settings.confidential_client_secret not in exchange.url

    answer = app.get(settings.base_url + "/v1/me", timeout=HTTP_TIMEOUT)
    assert answer.status_code == 200, answer.text
    assert answer.json()["username"] == settings.username

    # A code works once.
    with pytest.raises(OAuthError) as refused:
        app.fetch_token(metadata["token_endpoint"], authorization_response=callback, code_verifier=verifier)
    assert refused.value.error == "invalid_grant"

    # A wrong secret is refused as the client, whatever the code.
    impostor = confidential_app(settings, redirect_uri, secret="not-the-secret")
    with pytest.raises(OAuthError) as refused:
        impostor.fetch_token(
            metadata["token_endpoint"],
            authorization_response=callback,
            code_verifier=verifier,
        )
    assert refused.value.error == "invalid_client"


def test_confidential_client_refresh_and_revoke_access_token(settings, metadata, person):
    redirect_uri = loopback_redirect_uri()
    app = confidential_app(settings, redirect_uri)
    callback, _, verifier = sign_in(app, metadata, person, redirect_uri)
    token = app.fetch_token(metadata["token_endpoint"], authorization_response=callback, code_verifier=verifier)
    refreshed = app.refresh_token(metadata["token_endpoint"], refresh_token=token["refresh_token"])
    assert_token_response(refreshed)
    assert me(settings, refreshed["access_token"]).status_code == 200

    revoked = app.revoke_token(
        metadata["revocation_endpoint"], token=refreshed["access_token"], token_type_hint="access_token"
    )
    assert revoked.status_code == 200, revoked.text
    assert me(settings, refreshed["access_token"]).status_code == 401
    with pytest.raises(OAuthError) as refused:
        app.refresh_token(metadata["token_endpoint"], refresh_token=refreshed["refresh_token"])
    assert refused.value.error == "invalid_grant"
