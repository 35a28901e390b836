"""Patrol and coverage pages in Debian's headless Chromium, on a phone-sized screen.

The data is the hand-made town of tests/data/routing; see test_patrol.py for its nodes.
"""
from datetime import datetime
from pathlib import Path
from urllib.parse import urlsplit
from zoneinfo import ZoneInfo

import pytest
from django.contrib.auth.models import Group, User
from django.contrib.gis.geos import MultiPolygon, Point, Polygon

from gridmap.models import GridLevel, GridUnit
from routing.stations import import_stations
from spatial.models import Ticket, TicketStatus

pytestmark = [pytest.mark.browser, pytest.mark.django_db(transaction=True)]

CHROMIUM_PATH = Path("/usr/bin/chromium")
CHROMIUM_ARGS = ["--no-sandbox", "--disable-gpu", "--disable-background-networking", "--disable-component-update",
                 "--disable-sync", "--no-first-run"]
PASSWORD = "firegrid-test-pw"
SHANGHAI = ZoneInfo("Asia/Shanghai")


@pytest.fixture
def town_site(settings, fixtures_dir, tmp_path):
    settings.VAR_DIR = tmp_path / "var"
    settings.FIREGRID_ROAD_FILE = str(fixtures_dir / "routing" / "town.osm")
    settings.FIREGRID_PATROL_SOLVER_TIME_LIMIT_S = 0.5
    head = User.objects.create_user(username="head", password=PASSWORD)
    head.groups.add(Group.objects.get(name="grid_head"))
    planner = User.objects.create_user(username="planner", password=PASSWORD)
    planner.groups.add(Group.objects.get(name="planner"))
    GridUnit.objects.create(code="B-001", name="北街楼栋", level=GridLevel.BUILDING, head=head,
                            geom=MultiPolygon(Polygon.from_bbox((114.1990, 22.6895, 114.2030, 22.6940)), srid=4326))
    for number, (lat, lng) in enumerate([(22.6930, 114.2020), (22.6910, 114.2020)], start=1):
        Ticket.objects.create(source_system="test", external_id=str(number), status=TicketStatus.RECEIVED,
                              received_at=datetime(2026, 11, number, 9, 0, tzinfo=SHANGHAI),
                              location=Point(lng, lat, srid=4326), address=f"<img src=x onerror=alert({number})>")
    import_stations(fixtures_dir / "routing" / "stations_pairs.csv")


@pytest.fixture
def phone_page():
    sync_api = pytest.importorskip("playwright.sync_api")
    if not CHROMIUM_PATH.exists():
        pytest.skip(f"{CHROMIUM_PATH} is absent")
    records = {"errors": [], "dialogs": [], "hosts": set()}
    with sync_api.sync_playwright() as playwright:
        browser = playwright.chromium.launch(executable_path=str(CHROMIUM_PATH), headless=True, args=CHROMIUM_ARGS)
        context = browser.new_context(viewport={"width": 390, "height": 844}, locale="zh-CN", is_mobile=True,
                                      has_touch=True)
        page = context.new_page()
        page.on("console", lambda message: message.type == "error" and records["errors"].append(message.text))
        page.on("pageerror", lambda error: records["errors"].append(str(error)))
        page.on("request", lambda request: records["hosts"].add(urlsplit(request.url).hostname))

        def dismiss(dialog):
            records["dialogs"].append(dialog.message)
            dialog.dismiss()

        page.on("dialog", dismiss)
        yield page, records
        context.close()
        browser.close()


def log_in(page, base_url, username, path):
    page.goto(f"{base_url}{path}")
    page.fill("input[name=username]", username)
    page.fill("input[name=password]", PASSWORD)
    page.click("form.login-form button[type=submit]")
    page.wait_for_url(f"{base_url}{path}")


def test_patrol_page_on_phone(live_server, town_site, phone_page):
    page, records = phone_page
    base_url = live_server.url.replace("//localhost:", "//127.0.0.1:")
    log_in(page, base_url, "head", "/routing/patrol/")
    page.goto(f"{base_url}/routing/patrol/?start=22.6910,114.2000&date=2026-12-04&budget_min=60")
    page.wait_for_selector("#routing-map.leaflet-container")

    assert records["errors"] == []
    assert page.locator("#stop-list li").count() == 2
    assert page.locator(".route-marker").count() == 2
    assert page.locator(".route-marker").first.inner_text() == "1"
    assert page.locator("path.leaflet-interactive").count() >= 2  # grid outline and route line
    # The page fits the phone's width: no horizontal scrolling.
    assert page.evaluate("document.documentElement.scrollWidth") <= 390
    page.locator(".route-marker").first.click()
    popup = page.locator(".leaflet-popup-content")
    assert "<img src=x onerror=alert(2)>" in popup.inner_text()
    assert records["dialogs"] == []
    assert records["errors"] == []
    assert records["hosts"] == {"127.0.0.1"}


def test_coverage_page_in_browser(live_server, town_site, phone_page):
    page, records = phone_page
    base_url = live_server.url.replace("//localhost:", "//127.0.0.1:")
    log_in(page, base_url, "planner", "/routing/coverage/")
    page.goto(f"{base_url}/routing/coverage/?minutes=0.5")
    page.wait_for_selector("#routing-map.leaflet-container")
    assert page.locator(".leaflet-control-layers-overlays label").count() == 5
    assert page.locator("#stations-outside li").count() == 1
    assert records["errors"] == []
    assert records["hosts"] == {"127.0.0.1"}
