"""Operators' endpoints seen by independent tools: `/metrics` read by the Prometheus
project's own parser, and the SVG heat map of `GET /v1/admin/stats/cells` rendered by
headless Chromium (issue 6)."""

import os
from datetime import datetime, timedelta, timezone
import shutil
import tempfile

import pytest
import requests
from prometheus_client.parser import text_string_to_metric_families
from selenium import webdriver
from selenium.webdriver.chrome.options import Options
from selenium.webdriver.chrome.service import Service
from selenium.webdriver.common.by import By

from conftest import HTTP_TIMEOUT


def test_metrics_parse_as_prometheus_text_format(settings):
    # Something to count first.
    assert requests.get(settings.base_url + "/healthz", timeout=HTTP_TIMEOUT).status_code == 200
    response = requests.get(settings.base_url + "/metrics", timeout=HTTP_TIMEOUT)
    assert response.status_code == 200
    assert response.headers["Content-Type"].startswith("text/plain; version=0.0.4")
    families = {f.name: f for f in text_string_to_metric_families(response.text)}
    requests_family = families["vicinity_http_requests"]
    assert requests_family.type == "counter"
    healthz = [s for s in requests_family.samples if s.labels.get("route") == "/healthz"]
    assert healthz and healthz[0].labels["status"] == "200" and healthz[0].value >= 1
    latency = families["vicinity_http_request_duration_seconds"]
    assert latency.type == "histogram"
    assert any(s.name.endswith("_bucket") and s.labels["le"] == "+Inf" for s in latency.samples)
    for name, kind in [
        ("vicinity_db_pool_connections", "gauge"),
        ("vicinity_db_pool_max_connections", "gauge"),
        ("vicinity_checkins", "counter"),
        ("vicinity_nearby_queries", "counter"),
        ("vicinity_live_streams", "gauge"),
    ]:
        assert families[name].type == kind, name


@pytest.fixture
def scripted_browser(settings):
    """Chromium with scripts on: the test asks the browser for the drawn shapes' sizes."""
    profile = tempfile.mkdtemp(prefix="vicinity-chromium-")
    options = Options()
    options.binary_location = settings.chromium
    for argument in ("--headless=new", "--no-sandbox", "--disable-dev-shm-usage", "--disable-gpu",
                     "--window-size=1000,1000", f"--user-data-dir={profile}", "--no-first-run",
                     "--disable-background-networking", "--disable-component-update"):
        options.add_argument(argument)
    driver = webdriver.Chrome(service=Service(settings.chromedriver), options=options)
    driver.set_page_load_timeout(30)
    try:
        yield driver
    finally:
        driver.quit()
        shutil.rmtree(profile, ignore_errors=True)


def test_the_heat_map_renders_in_a_browser(settings, scripted_browser):
    base = settings.base_url
    # The person checks in at two venues a few blocks apart (the server runs with a
    # minimum of one visitor per cell, so one person's cells are drawn).
    login = requests.post(base + "/v1/auth/login", timeout=HTTP_TIMEOUT,
                          json={"username": settings.username, "password": settings.password})
    assert login.status_code == 200, login.text
    auth = {"Authorization": "Bearer " + login.json()["access_token"]}
    # The first was queued offline an hour ago, so walking to the second is plausible.
    an_hour_ago = (datetime.now(timezone.utc) - timedelta(hours=1)).isoformat()
    for name, lat, lng, when in [("Heat One", 40.7580, -73.9855, an_hour_ago),
                                 ("Heat Two", 40.7484, -73.9857, None)]:
        venue = requests.post(base + "/v1/venues", headers=auth, timeout=HTTP_TIMEOUT,
                              json={"name": name, "category_id": "coffee", "allow_duplicate": True,
                                    "location": {"lat": lat, "lng": lng}})
        assert venue.status_code == 201, venue.text
        checkin = requests.post(base + "/v1/checkins", headers=auth, timeout=HTTP_TIMEOUT,
                                json={"venue_id": venue.json()["id"], "created_at": when,
                                      "location": {"lat": lat, "lng": lng, "accuracy_m": 10}})
        assert checkin.status_code == 201, checkin.text
    admin = {"Authorization": "Bearer " + os.environ["OAUTH_E2E_ADMIN_TOKEN"]}
    svg = requests.get(base + "/v1/admin/stats/cells", headers=admin, timeout=HTTP_TIMEOUT,
                       params={"bbox": "-74.1,40.65,-73.85,40.85", "res": "8", "format": "svg"})
    assert svg.status_code == 200, svg.text
    assert svg.headers["Content-Type"] == "image/svg+xml"
    path = os.path.join(settings.artifacts, "heatmap.svg")
    with open(path, "w", encoding="utf-8") as f:
        f.write(svg.text)
    scripted_browser.get("file://" + path)
    root = scripted_browser.find_element(By.TAG_NAME, "svg")
    assert root.size["width"] == 960
    cells = scripted_browser.find_elements(By.TAG_NAME, "path")
    assert len(cells) == 2
    for cell in cells:
        # Drawn inside the frame, with an area.
        assert cell.size["width"] > 1 and cell.size["height"] > 1
        assert 0 <= cell.location["x"] <= 960 and 0 <= cell.location["y"] <= root.size["height"]
    scripted_browser.save_screenshot(os.path.join(settings.artifacts, "heatmap.png"))
