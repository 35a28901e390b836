"""The inspection form in Debian's headless Chromium: filled offline, kept on the phone, sent once back online."""
import io
import json
from pathlib import Path
from urllib.parse import urlsplit

import pytest
from django.contrib.auth.models import Group, User
from django.contrib.gis.geos import MultiPolygon, Polygon
from django.db import connections
from PIL import Image

from gridmap.inspections import Inspection, InspectionPhoto
from gridmap.models import GridLevel, GridUnit
from spatial.models import Ticket, TicketSource

pytestmark = [pytest.mark.browser, pytest.mark.django_db(transaction=True)]

CHROMIUM_PATH = Path("/usr/bin/chromium")
CHROMIUM_ARGS = ["--no-sandbox", "--disable-gpu", "--disable-background-networking", "--disable-component-update",
                 "--disable-sync", "--no-first-run"]
PASSWORD = "firegrid-test-pw"
OUTBOX_KEY = "firegrid.inspection.outbox.v1"


def _png_bytes():
    buffer = io.BytesIO()
    Image.new("RGB", (2, 2), (200, 30, 30)).save(buffer, "PNG")
    return buffer.getvalue()


PNG = _png_bytes()


@pytest.fixture
def building_site(settings, tmp_path):
    settings.MEDIA_ROOT = tmp_path / "media"
    head = User.objects.create_user(username="head", password=PASSWORD)
    head.groups.add(Group.objects.get_or_create(name="grid_head")[0])
    community = GridUnit.objects.create(
        code="SQ", name="东社区", level=GridLevel.COMMUNITY, head=head,
        geom=MultiPolygon(Polygon.from_bbox((114.0, 22.0, 114.05, 22.05)), srid=4326))
    for code in ("SQ-01", "SQ-02"):
        offset = 0.01 if code == "SQ-01" else 0.02
        GridUnit.objects.create(code=code, name=f"{code}号楼", level=GridLevel.BUILDING, parent=community,
                                geom=MultiPolygon(Polygon.from_bbox((114.0 + offset, 22.01, 114.005 + offset, 22.015)),
                                                  srid=4326))
    return head


@pytest.fixture
def phone_page():
    sync_api = pytest.importorskip("playwright.sync_api")
    if not CHROMIUM_PATH.exists():
        pytest.skip(f"{CHROMIUM_PATH} is absent")
    records = {"errors": [], "hosts": set(), "posts": []}
    with sync_api.sync_playwright() as playwright:
        browser = playwright.chromium.launch(executable_path=str(CHROMIUM_PATH), headless=True, args=CHROMIUM_ARGS)
        context = browser.new_context(viewport={"width": 390, "height": 844}, locale="zh-CN", is_mobile=True,
                                      has_touch=True)
        page = context.new_page()
        page.on("pageerror", lambda error: records["errors"].append(str(error)))
        page.on("request", lambda request: records["hosts"].add(urlsplit(request.url).hostname))
        page.on("request", lambda request: request.method == "POST" and records["posts"].append(request.url))
        yield context, page, records
        context.close()
        browser.close()


def test_form_kept_offline_then_sent_once(live_server, building_site, phone_page, tmp_path, monkeypatch):
    # Playwright's sync API runs an event loop in this thread, so Django's guard would refuse the ORM checks
    # below. They run between browser calls, never inside the loop.
    monkeypatch.setenv("DJANGO_ALLOW_ASYNC_UNSAFE", "true")
    try:
        check_offline_form(live_server, phone_page, tmp_path)
    finally:
        # With the event loop running, these checks get their own connection, which would outlive the test
        # database otherwise.
        connections.close_all()


def check_offline_form(live_server, phone_page, tmp_path):
    context, page, records = phone_page
    base_url = live_server.url.replace("//localhost:", "//127.0.0.1:")
    page.goto(f"{base_url}/inspections/")
    page.fill("input[name=username]", "head")
    page.fill("input[name=password]", PASSWORD)
    page.click("form.login-form button[type=submit]")
    page.wait_for_url(f"{base_url}/inspections/")
    records["posts"].clear()
    # The page fits the phone's width: no horizontal scrolling.
    assert page.evaluate("document.documentElement.scrollWidth") <= 390

    context.set_offline(True)
    page.select_option("#inspection-building", "SQ-01")
    for item in ("escape_routes", "extinguishers", "flammable_storage"):
        page.check(f"input[name=item_{item}][value=pass]")
    page.check("input[name=item_ebike_charging][value=fail]")
    photo = tmp_path / "charging.png"
    photo.write_bytes(PNG)
    page.set_input_files("#inspection-photos", str(photo))
    page.fill("#inspection-note", "楼道飞线充电 <b>两处</b>")
    page.click("#inspection-submit")

    page.wait_for_selector("#outbox-list li")
    stored = json.loads(page.evaluate(f"window.localStorage.getItem('{OUTBOX_KEY}')"))
    assert len(stored) == 1
    assert stored[0]["building"] == "SQ-01"
    assert stored[0]["items"] == {"escape_routes": "pass", "extinguishers": "pass", "ebike_charging": "fail",
                                  "flammable_storage": "pass"}
    assert stored[0]["note"] == "楼道飞线充电 <b>两处</b>"
    assert len(stored[0]["photos"]) == 1
    assert page.inner_text("#inspection-status") == "当前无网络,记录已保存在本机,恢复联网后自动上传。"
    assert Inspection.objects.count() == 0

    # Going online sends the stored record.
    context.set_offline(False)
    page.wait_for_function(f"window.localStorage.getItem('{OUTBOX_KEY}') === '[]'", timeout=30000)
    assert page.inner_text("#inspection-status") == "巡查记录已上传。"
    assert page.locator("#inspection-outbox").is_hidden()

    inspection = Inspection.objects.get()
    assert str(inspection.client_key) == stored[0]["client_key"]
    assert inspection.building.code == "SQ-01"
    assert inspection.note == "楼道飞线充电 <b>两处</b>"
    assert InspectionPhoto.objects.filter(inspection=inspection).count() == 1
    ticket = Ticket.objects.get()
    assert (ticket.source, ticket.category, ticket.status) == (TicketSource.INSPECTION, "ebike_charging",
                                                              "dispatched")

    # Sent once, and a reload finds nothing left to send.
    assert len(records["posts"]) == 1
    page.reload()
    page.wait_for_timeout(500)
    assert len(records["posts"]) == 1

    # A reply lost on the way: the phone still has the form in storage and sends it again on the next load.
    page.evaluate("([key, value]) => window.localStorage.setItem(key, value)", [OUTBOX_KEY, json.dumps(stored)])
    page.reload()
    page.wait_for_function(f"window.localStorage.getItem('{OUTBOX_KEY}') === '[]'", timeout=30000)
    assert len(records["posts"]) == 2
    assert page.inner_text("#inspection-status") == "该巡查记录此前已上传,未重复保存。"
    assert Inspection.objects.count() == 1
    assert InspectionPhoto.objects.count() == 1
    assert Ticket.objects.count() == 1

    # Wait for the photo thumbnail too, so that no request is still using the database when the test ends.
    page.goto(f"{base_url}/inspections/community/SQ/", wait_until="networkidle")
    assert page.evaluate("document.querySelector('.inspection-thumb').naturalWidth") == 2
    assert page.locator("#inspected-buildings li").first.get_attribute("data-code") == "SQ-01"
    assert page.locator("#missed-buildings li").first.get_attribute("data-code") == "SQ-02"
    assert page.locator("#inspected-buildings .inspection-note").inner_text() == "楼道飞线充电 <b>两处</b>"
    assert records["errors"] == []
    assert records["hosts"] == {"127.0.0.1"}

