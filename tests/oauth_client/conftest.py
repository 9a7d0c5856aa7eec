"""Shared fixtures for the end-to-end OAuth checks.

`run.sh` starts a real Vicinity server, registers the apps with the CLI and creates a user,
then hands everything over in `OAUTH_E2E_*` environment variables. The client code in the
tests uses only what any third party has: the issuer's URL, its client id (and secret), and
the RFC 8414 metadata document.
"""

import os
import secrets
import socket
import threading
from html.parser import HTMLParser
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from urllib.parse import urljoin, urlsplit

import pytest
import requests

# Every HTTP call of these tests is bounded.
HTTP_TIMEOUT = 15


def _env(name):
    value = os.environ.get(name)
    if not value:
        raise pytest.UsageError(f"{name} is not set: run these tests through tests/oauth_client/run.sh")
    return value


class Settings:
    def __init__(self):
        self.base_url = _env("OAUTH_E2E_BASE_URL").rstrip("/")
        self.public_client_id = _env("OAUTH_E2E_PUBLIC_CLIENT_ID")
        self.confidential_client_id = _env("OAUTH_E2E_CONFIDENTIAL_CLIENT_ID")
        self.confidential_client_secret = _env("OAUTH_E2E_CONFIDENTIAL_CLIENT_SECRET")
        self.username = _env("OAUTH_E2E_USERNAME")
        self.password = _env("OAUTH_E2E_PASSWORD")
        self.artifacts = _env("OAUTH_E2E_ARTIFACTS")
        self.chromium = os.environ.get("OAUTH_E2E_CHROMIUM", "/usr/bin/chromium")
        self.chromedriver = os.environ.get("OAUTH_E2E_CHROMEDRIVER", "/usr/bin/chromedriver")


@pytest.fixture(scope="session")
def settings():
    return Settings()


@pytest.fixture(scope="session")
def metadata(settings):
    """The authorization server metadata, found the standard way (RFC 8414 §3)."""
    from authlib.oauth2.rfc8414 import AuthorizationServerMetadata

    response = requests.get(
        settings.base_url + "/.well-known/oauth-authorization-server", timeout=HTTP_TIMEOUT
    )
    assert response.status_code == 200, response.text
    assert response.headers["Content-Type"].startswith("application/json")
    document = response.json()
    # authlib's own RFC 8414 validation (https-or-loopback URLs, required members, ...).
    AuthorizationServerMetadata(document).validate()
    # §3.3: the issuer must be the one whose well-known URL was fetched.
    assert document["issuer"] == settings.base_url, document
    assert "S256" in document["code_challenge_methods_supported"]
    assert "code" in document["response_types_supported"]
    assert {"authorization_code", "refresh_token"} <= set(document["grant_types_supported"])
    assert {"none", "client_secret_basic"} <= set(document["token_endpoint_auth_methods_supported"])
    for endpoint in ("authorization_endpoint", "token_endpoint", "revocation_endpoint", "jwks_uri"):
        assert document[endpoint].startswith(settings.base_url + "/"), (endpoint, document)
    return document


def free_loopback_port():
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as probe:
        probe.bind(("127.0.0.1", 0))
        return probe.getsockname()[1]


def loopback_redirect_uri(port=None):
    """A native app's loopback redirect (RFC 8252 §7.3): registered without a port."""
    return f"http://127.0.0.1:{port or free_loopback_port()}/callback"


def same_endpoint(url, base):
    """Whether `url` points at `base` (scheme, host, port and path), whatever its query."""
    a, b = urlsplit(url), urlsplit(base)
    return (a.scheme, a.netloc, a.path) == (b.scheme, b.netloc, b.path)


@pytest.fixture
def new_person(settings):
    """Registers a fresh account (harness set-up, not something a third party does), so a
    test starts without any remembered approval. Returns (username, password)."""

    def create(prefix="hiker"):
        username = f"{prefix}{secrets.token_hex(4)}"
        password = "pw-" + secrets.token_urlsafe(18)
        response = requests.post(
            settings.base_url + "/v1/auth/register",
            json={"username": username, "email": f"{username}@example.com", "password": password},
            timeout=HTTP_TIMEOUT,
        )
        assert response.status_code == 201, response.text
        return username, password

    return create


class _PageParser(HTMLParser):
    """The forms of the authorization page: hidden fields, inputs and submit buttons."""

    def __init__(self):
        super().__init__()
        self.forms = []
        self.problem = None
        self._in_problem = False

    def handle_starttag(self, tag, attrs):
        attrs = dict(attrs)
        if tag == "form":
            self.forms.append({"action": attrs.get("action", ""), "hidden": {}, "inputs": set(), "buttons": set()})
        elif tag == "input" and self.forms:
            if attrs.get("type") == "hidden":
                self.forms[-1]["hidden"][attrs["name"]] = attrs.get("value", "")
            else:
                self.forms[-1]["inputs"].add(attrs.get("name"))
        elif tag == "button" and self.forms and attrs.get("name") == "action":
            self.forms[-1]["buttons"].add(attrs.get("value"))
        elif tag == "p" and "problem" in (attrs.get("class") or "").split():
            self._in_problem = True
            self.problem = ""

    def handle_endtag(self, tag):
        if tag == "p":
            self._in_problem = False

    def handle_data(self, data):
        if self._in_problem:
            self.problem += data


class Person:
    """The person at the keyboard, played with `requests`: follows the authorization URL,
    signs in on the HTML page and approves or denies, keeping cookies like a browser. Returns
    the URL the server finally sends the browser to (the app's redirect URI), not followed."""

    def __init__(self, username, password):
        self.username = username
        self.password = password
        self.browser = requests.Session()
        self.pages_seen = []

    def authorize(self, authorization_url, redirect_uri, decision="approve"):
        server = urlsplit(authorization_url)
        response = self.browser.get(authorization_url, allow_redirects=False, timeout=HTTP_TIMEOUT)
        for _ in range(8):
            if response.status_code in (302, 303):
                location = urljoin(response.url, response.headers["Location"])
                if same_endpoint(location, redirect_uri):
                    return location
                # Only the server's own pages are followed.
                assert urlsplit(location).netloc == server.netloc, location
                response = self.browser.get(location, allow_redirects=False, timeout=HTTP_TIMEOUT)
                continue
            assert response.status_code == 200, (response.status_code, response.text[:2000])
            assert response.headers["Content-Type"].startswith("text/html")
            page = _PageParser()
            page.feed(response.text)
            assert len(page.forms) == 1, response.text
            form = page.forms[0]
            assert "csrf_token" in form["hidden"], form
            fields = dict(form["hidden"])
            if "password" in form["inputs"]:
                self.pages_seen.append("sign-in")
                fields.update(username=self.username, password=self.password, action="login")
            else:
                assert {"approve", "deny"} <= form["buttons"], form
                self.pages_seen.append("consent")
                fields["action"] = decision
            response = self.browser.post(
                urljoin(response.url, form["action"]),
                data=fields,
                allow_redirects=False,
                timeout=HTTP_TIMEOUT,
            )
        raise AssertionError(f"no redirect to {redirect_uri} after {self.pages_seen}")


@pytest.fixture
def person(settings):
    """The account run.sh created, at a fresh browser."""
    return Person(settings.username, settings.password)


class CallbackServer:
    """A native app's loopback listener: records each request and says it got the answer."""

    def __init__(self):
        self.requests = []
        seen = self.requests

        class Handler(BaseHTTPRequestHandler):
            def do_GET(self):
                if urlsplit(self.path).path != "/callback":
                    self.send_error(404)  # e.g. the browser's /favicon.ico
                    return
                seen.append(self.path)
                body = b"<!doctype html><title>Trail Log</title><p>Trail Log got the answer.</p>"
                self.send_response(200)
                self.send_header("Content-Type", "text/html; charset=utf-8")
                self.send_header("Content-Length", str(len(body)))
                self.end_headers()
                self.wfile.write(body)

            def log_message(self, *args):
                pass

        self.server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.server.daemon_threads = True
        self.redirect_uri = loopback_redirect_uri(self.server.server_address[1])
        self.thread = threading.Thread(target=self.server.serve_forever, kwargs={"poll_interval": 0.1}, daemon=True)
        self.thread.start()

    def close(self):
        self.server.shutdown()
        self.server.server_close()
        self.thread.join(timeout=5)


@pytest.fixture
def callback_server():
    server = CallbackServer()
    yield server
    server.close()
