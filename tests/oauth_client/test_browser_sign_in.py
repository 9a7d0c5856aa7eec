"""The sign-in and consent page in a real browser: Debian's headless Chromium, driven through
chromium-driver by Selenium, with JavaScript switched off (the page must not need it). The app
is authlib's OAuth2Session; a tiny loopback HTTP server stands in for the app's listener."""

import os
import shutil
import tempfile
from urllib.parse import parse_qs, urlsplit

import pytest
from authlib.common.security import generate_token
from authlib.integrations.requests_client import OAuth2Session
from selenium import webdriver
from selenium.webdriver.chrome.options import Options
from selenium.webdriver.chrome.service import Service
from selenium.webdriver.common.by import By
from selenium.webdriver.support import expected_conditions as EC
from selenium.webdriver.support.ui import WebDriverWait

from conftest import HTTP_TIMEOUT, same_endpoint

SCOPE = "profile checkins:read"
# What the page must tell the person each scope means.
SCOPE_TEXTS = {
    "See your profile: username, display name and bio",
    "See your check-ins and those your friends share with you",
}
WRONG_PASSWORD_TEXT = "The username or email and password do not match an account."
WAIT = 15


@pytest.fixture
def browser(settings):
    for path in (settings.chromium, settings.chromedriver):
        assert os.access(path, os.X_OK), f"{path} is missing: apt-get install chromium chromium-driver"
    profile = tempfile.mkdtemp(prefix="vicinity-chromium-")
    options = Options()
    options.binary_location = settings.chromium
    for argument in (
        "--headless=new",
        "--no-sandbox",
        "--disable-dev-shm-usage",
        "--disable-gpu",
        "--window-size=900,1000",
        f"--user-data-dir={profile}",
        "--no-first-run",
        "--no-default-browser-check",
        "--disable-background-networking",
        "--disable-component-update",
        "--disable-sync",
        "--disable-extensions",
        "--lang=en-US",
    ):
        options.add_argument(argument)
    # The page must work without scripts: the browser runs none.
    options.add_experimental_option("prefs", {"profile.managed_default_content_settings.javascript": 2})
    driver = webdriver.Chrome(service=Service(settings.chromedriver), options=options)
    driver.set_page_load_timeout(WAIT)
    driver.set_script_timeout(WAIT)
    try:
        # Scripts really are off in this browser.
        driver.get("data:text/html,<title>no scripts</title><script>document.title='scripts'</script>")
        assert driver.title == "no scripts"
        yield driver
    finally:
        driver.quit()
        shutil.rmtree(profile, ignore_errors=True)


def artifact(settings, name):
    os.makedirs(settings.artifacts, exist_ok=True)
    return os.path.join(settings.artifacts, name)


def start(settings, metadata, redirect_uri):
    app = OAuth2Session(
        client_id=settings.public_client_id,
        scope=SCOPE,
        redirect_uri=redirect_uri,
        code_challenge_method="S256",
        token_endpoint_auth_method="none",
        default_timeout=HTTP_TIMEOUT,
    )
    verifier = generate_token(64)
    url, state = app.create_authorization_url(metadata["authorization_endpoint"], code_verifier=verifier)
    return app, url, state, verifier


def visible_text(driver, selector):
    elements = driver.find_elements(By.CSS_SELECTOR, selector)
    assert elements, f"nothing matches {selector}"
    for element in elements:
        assert element.is_displayed(), f"{selector} is not visible"
    return [element.text for element in elements]


def assert_sign_in_page(driver):
    assert driver.title.startswith("Sign in"), driver.title
    assert "<script" not in driver.page_source.lower()
    [heading] = visible_text(driver, "h1")
    assert heading == "Sign in to continue to Trail Log", heading
    assert set(visible_text(driver, "ul.scopes li")) == SCOPE_TEXTS
    assert driver.find_element(By.ID, "username").is_displayed()
    assert driver.find_element(By.ID, "password").get_attribute("type") == "password"


def sign_in(driver, username, password):
    driver.find_element(By.ID, "username").clear()
    driver.find_element(By.ID, "username").send_keys(username)
    driver.find_element(By.ID, "password").send_keys(password)
    driver.find_element(By.CSS_SELECTOR, 'button[name="action"][value="login"]').click()


def wait_for_consent(driver, username, redirect_uri):
    WebDriverWait(driver, WAIT).until(EC.title_contains("Approve access"))
    assert "<script" not in driver.page_source.lower()
    [heading] = visible_text(driver, "h1")
    assert heading == "Trail Log wants to use your Vicinity account", heading
    [who] = visible_text(driver, "p.who")
    assert who == f"Signed in as {username}"
    assert set(visible_text(driver, "ul.scopes li")) == SCOPE_TEXTS
    notes = " ".join(visible_text(driver, "p.note"))
    origin = "{0.scheme}://{0.netloc}".format(urlsplit(redirect_uri))
    assert f"You will be sent back to {origin}" in notes, notes
    # Neither checkins:write nor location:read is asked: no note about friends nearby.
    assert "friends are nearby" not in notes, notes


def wait_for_redirect(driver, callback_server):
    WebDriverWait(driver, WAIT).until(lambda d: same_endpoint(d.current_url, callback_server.redirect_uri))
    # The listener got the browser's request, and it served the page now shown.
    WebDriverWait(driver, WAIT).until(lambda d: callback_server.requests)
    assert "Trail Log got the answer." in driver.find_element(By.TAG_NAME, "body").text
    landed = driver.current_url
    assert urlsplit(callback_server.requests[-1]).query == urlsplit(landed).query
    return landed, {name: values[0] for name, values in parse_qs(urlsplit(landed).query).items()}


def test_sign_in_and_approve(settings, metadata, browser, callback_server, new_person):
    username, password = new_person()
    app, url, state, verifier = start(settings, metadata, callback_server.redirect_uri)

    browser.get(url)
    assert_sign_in_page(browser)
    browser.save_screenshot(artifact(settings, "oauth-sign-in.png"))

    sign_in(browser, username, password)
    wait_for_consent(browser, username, callback_server.redirect_uri)
    # After the sign-in POST the consent page has its own address (303), not the POST's.
    assert urlsplit(browser.current_url).path == "/oauth/authorize"
    assert "code_challenge=" in browser.current_url
    browser.save_screenshot(artifact(settings, "oauth-consent.png"))

    browser.find_element(By.CSS_SELECTOR, 'button[name="action"][value="approve"]').click()
    landed, answer = wait_for_redirect(browser, callback_server)
    assert answer.get("code"), landed
    assert answer.get("state") == state
    assert answer.get("iss") == metadata["issuer"]
    assert "error" not in answer

    # The app exchanges the code the browser brought and acts for this person.
    token = app.fetch_token(metadata["token_endpoint"], authorization_response=landed, code_verifier=verifier)
    me = app.get(settings.base_url + "/v1/me", timeout=HTTP_TIMEOUT)
    assert me.status_code == 200, me.text
    assert me.json()["username"] == username
    assert set(token["scope"].split()) == set(SCOPE.split())


def test_sign_in_and_deny(settings, metadata, browser, callback_server, new_person):
    username, password = new_person()
    _, url, state, _ = start(settings, metadata, callback_server.redirect_uri)

    browser.get(url)
    assert_sign_in_page(browser)
    sign_in(browser, username, password)
    wait_for_consent(browser, username, callback_server.redirect_uri)

    browser.find_element(By.CSS_SELECTOR, 'button[name="action"][value="deny"]').click()
    landed, answer = wait_for_redirect(browser, callback_server)
    assert answer.get("error") == "access_denied", landed
    assert answer.get("state") == state
    assert answer.get("iss") == metadata["issuer"]
    assert "code" not in answer


def test_wrong_password_shows_an_error_and_goes_no_further(settings, metadata, browser, callback_server, new_person):
    username, password = new_person()
    _, url, _, _ = start(settings, metadata, callback_server.redirect_uri)

    browser.get(url)
    assert_sign_in_page(browser)
    sign_in(browser, username, password + "-wrong")
    WebDriverWait(browser, WAIT).until(
        EC.text_to_be_present_in_element((By.CSS_SELECTOR, "p.problem"), WRONG_PASSWORD_TEXT)
    )
    [problem] = visible_text(browser, 'p.problem[role="alert"]')
    assert problem == WRONG_PASSWORD_TEXT
    browser.save_screenshot(artifact(settings, "oauth-sign-in-wrong-password.png"))
    # Still the sign-in page, still on the server, nothing sent to the app.
    assert_sign_in_page(browser)
    assert not same_endpoint(browser.current_url, callback_server.redirect_uri)
    assert callback_server.requests == []
    assert browser.find_element(By.ID, "username").get_attribute("value") == username
    assert browser.find_element(By.ID, "password").get_attribute("value") == ""

    # The right password then goes on to the consent page.
    sign_in(browser, username, password)
    wait_for_consent(browser, username, callback_server.redirect_uri)
    assert callback_server.requests == []
