"""Planner map in real headless Chromium: login, layers, popups, console and network."""
import math
import os
from datetime import datetime, timedelta
from pathlib import Path
from urllib.parse import urlsplit
from zoneinfo import ZoneInfo

import h3
import pytest
from django.contrib.auth.models import Group, User
from django.contrib.gis.geos import Point

from gridmap.roles import Role
from spatial.models import HotspotCell, HotspotLabel, HotspotRun, Ticket
from spatial.taxonomy import Category

CHROMIUM_PATH = Path("/usr/bin/chromium")
CHROMIUM_ARGS = [
    "--no-sandbox",
    "--disable-gpu",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
    "--no-first-run",
]
SCREENSHOT_PATH = Path(__file__).resolve().parent.parent / "var" / "screenshots" / "map.png"
SHANGHAI = ZoneInfo("Asia/Shanghai")
PASSWORD = "firegrid-browser-pw"
# Tickets are packed around the centre so that they cluster. The two single
# tickets lie about 3 km west and 2 km south, away from the map's controls in
# the corners, and stay single markers.
CENTRE_LAT, CENTRE_LNG = 23.9650, 109.6830
SINGLE_LAT, SINGLE_LNG = 23.9650, 109.6530
HOSTILE_LAT, HOSTILE_LNG = 23.9470, 109.6830
HOSTILE_DESCRIPTION = '<img src=x onerror="alert(1)"><script>alert(2)</script>'

pytestmark = [
    pytest.mark.browser,
    pytest.mark.django_db(transaction=True),
    pytest.mark.skipif(not CHROMIUM_PATH.exists(), reason=f"Debian's chromium is not installed at {CHROMIUM_PATH}"),
]


def make_ticket(number, lat, lng, received_at, **fields):
    return Ticket.objects.create(
        source_system="browser",
        external_id=number,
        received_at=received_at,
        location=Point(lng, lat, srid=4326),
        h3_fine=h3.str_to_int(h3.latlng_to_cell(lat, lng, 9)),
        h3_coarse=h3.str_to_int(h3.latlng_to_cell(lat, lng, 7)),
        **fields,
    )


@pytest.fixture
def map_data():
    """Create a planner, 40 clustered tickets, two single ones and a stored Gi* run."""
    planner = User.objects.create_user(username="planner", password=PASSWORD, first_name="规划员")
    planner.groups.add(Group.objects.get(name=Role.PLANNER))

    start = datetime(2024, 3, 1, 9, 0, tzinfo=SHANGHAI)
    categories = list(Category)
    for index in range(40):
        angle = index * 2.4
        radius_deg = 0.0004 + 0.00003 * index
        make_ticket(
            f"C{index:03d}",
            CENTRE_LAT + radius_deg * math.sin(angle),
            CENTRE_LNG + radius_deg * math.cos(angle),
            start + timedelta(hours=index),
            category=categories[index % len(categories)],
            description="楼道堆放杂物,堵塞疏散通道",
            address="象州县城东路",
        )
    make_ticket(
        "S001", SINGLE_LAT, SINGLE_LNG, start + timedelta(days=3),
        category=Category.EBIKE_CHARGING,
        description="居民从三楼窗户飞线给电动车充电,请尽快处理。联系电话 13812345678。",
        address="象州县象州镇新华路 18 号",
        complainant_name="张三丰",
        complainant_phone="13812345678",
    )
    make_ticket(
        "X001", HOSTILE_LAT, HOSTILE_LNG, start + timedelta(days=4),
        category=Category.OTHER,
        description=HOSTILE_DESCRIPTION,
        address='<img src=x onerror="alert(3)">',
    )

    centre_cell = h3.latlng_to_cell(CENTRE_LAT, CENTRE_LNG, 9)
    labels = {centre_cell: HotspotLabel.HOT_99}
    ring_labels = [HotspotLabel.HOT_95, HotspotLabel.HOT_90, HotspotLabel.NOT_SIGNIFICANT,
                   HotspotLabel.COLD_90, HotspotLabel.COLD_95, HotspotLabel.COLD_99]
    for cell, label in zip(sorted(h3.grid_ring(centre_cell, 2)), ring_labels * 2):
        labels[cell] = label
    run = HotspotRun.objects.create(
        params={"category": None, "source": None, "received_from": None, "received_to": None,
                "resolution": 9, "permutations": 999, "seed": 42},
        ticket_count=42, cell_count=len(labels), hot_count=5, cold_count=6,
    )
    for cell, label in labels.items():
        HotspotCell.objects.create(run=run, h3_cell=h3.str_to_int(cell), ticket_count=3,
                                   z_score=3.1 if label.startswith("hot") else -2.0, p_value=0.01, label=label)
    return {"run": run, "hotspot_cell_count": len(labels)}


@pytest.fixture
def browser_page():
    """Yield a fresh headless Chromium page, recording console errors, dialogs and requests."""
    sync_api = pytest.importorskip("playwright.sync_api")
    records = {"console_errors": [], "page_errors": [], "dialogs": [], "requests": []}
    # Django refuses ORM calls from a thread that runs an event loop, which
    # playwright's sync API starts; every database write happens before this.
    with sync_api.sync_playwright() as playwright:
        browser = playwright.chromium.launch(
            executable_path=str(CHROMIUM_PATH), headless=True, args=CHROMIUM_ARGS
        )
        context = browser.new_context(viewport={"width": 1400, "height": 900}, locale="zh-CN")
        page = context.new_page()
        page.on("console", lambda message: message.type == "error" and records["console_errors"].append(message.text))
        page.on("pageerror", lambda error: records["page_errors"].append(str(error)))
        page.on("request", lambda request: records["requests"].append(request.url))

        def dismiss_dialog(dialog):
            records["dialogs"].append(dialog.message)
            dialog.dismiss()

        page.on("dialog", dismiss_dialog)
        yield page, records
        context.close()
        browser.close()


def click_marker_at(page, lat, lng):
    """Click the map at a WGS84 position, converted to pixels by the page's own Leaflet map.

    A position outside the middle 80% of the view (an open popup pans the
    map) is panned to the centre first.
    """
    point = page.evaluate(
        """([lat, lng]) => {
            const element = document.querySelector(".folium-map");
            const map = window[element.id];
            if (!map.getBounds().pad(-0.1).contains([lat, lng])) {
                map.closePopup();
                map.panTo([lat, lng], {animate: false});
            }
            const point = map.latLngToContainerPoint([lat, lng]);
            const box = element.getBoundingClientRect();
            return {x: box.left + point.x, y: box.top + point.y};
        }""",
        [lat, lng],
    )
    page.mouse.click(point["x"], point["y"])


def test_planner_map_in_chromium(live_server, map_data, browser_page):
    page, records = browser_page
    # pytest-django's live server listens on localhost; use its IPv4 loopback
    # address so that "every request went to 127.0.0.1" is checked literally.
    base_url = live_server.url.replace("//localhost:", "//127.0.0.1:")

    page.goto(f"{base_url}/map/")
    assert urlsplit(page.url).path == "/accounts/login/"
    assert "登录 FireGrid" in page.content()
    page.fill("input[name=username]", "planner")
    page.fill("input[name=password]", PASSWORD)
    page.click("form.login-form button[type=submit]")
    page.wait_for_url(f"{base_url}/map/")

    page.wait_for_selector(".folium-map.leaflet-container")
    page.wait_for_selector("canvas.leaflet-heatmap-layer", state="attached")
    assert page.locator(".leaflet-container").count() == 1
    assert "规划员" in page.inner_text(".site-header")
    assert f"Gi* 分析 #{map_data['run'].pk}" in page.inner_text(".hotspot-summary")

    overlay_labels = page.locator(".leaflet-control-layers-overlays label").all_inner_texts()
    assert [label.strip() for label in overlay_labels] == [
        "Gi* 热点/冷点", "H3 六边形单元工单数", "工单热力图", "工单标记",
    ]
    assert page.locator(".firegrid-legend").is_visible()
    assert "图例" in page.inner_text(".firegrid-legend")

    # The single ticket's popup: Chinese text, personal data masked for a planner.
    click_marker_at(page, SINGLE_LAT, SINGLE_LNG)
    popup = page.wait_for_selector(".leaflet-popup-content")
    popup_text = popup.inner_text()
    assert "工单 S001" in popup_text
    assert "电动车违规充电" in popup_text
    assert "2024-03-04 09:00" in popup_text
    assert "张**" in popup_text
    assert "138****5678" in popup_text
    assert "13812345678" not in popup_text
    SCREENSHOT_PATH.parent.mkdir(parents=True, exist_ok=True)
    # The popup pans the map into view; Leaflet's pan animation takes 0.25 s.
    page.wait_for_timeout(500)
    page.screenshot(path=str(SCREENSHOT_PATH))

    # The hostile ticket's popup shows its markup as text and runs none of it.
    click_marker_at(page, HOSTILE_LAT, HOSTILE_LNG)
    # The previous popup fades out for 0.2 s, so select the new one by its text.
    hostile_popup = page.locator(".leaflet-popup-content", has_text="X001")
    hostile_popup.wait_for()
    assert HOSTILE_DESCRIPTION in hostile_popup.inner_text()
    assert hostile_popup.locator("img").count() == 0
    assert hostile_popup.locator("script").count() == 0

    # Switch every overlay on, then each layer's elements must be in the DOM.
    checkboxes = page.locator(".leaflet-control-layers-overlays input[type=checkbox]")
    for index in range(checkboxes.count()):
        if not checkboxes.nth(index).is_checked():
            checkboxes.nth(index).check()
    assert page.locator("canvas.leaflet-heatmap-layer").count() == 1
    assert page.locator("path.firegrid-h3-cell").count() >= 3
    assert page.locator("path.firegrid-hotspot-cell").count() == map_data["hotspot_cell_count"]
    assert page.locator(".marker-cluster").count() >= 1
    assert page.locator("path.firegrid-ticket-marker").count() >= 2

    assert records["dialogs"] == []
    assert records["page_errors"] == []
    assert records["console_errors"] == []
    off_host = [url for url in records["requests"]
                if urlsplit(url).scheme in ("http", "https") and urlsplit(url).hostname != "127.0.0.1"]
    assert off_host == []
    assert not [url for url in records["requests"] if urlsplit(url).scheme not in ("http", "https", "data")]
    assert any(url.endswith("/static/vendor/leaflet/leaflet.js") for url in records["requests"])
    assert os.path.getsize(SCREENSHOT_PATH) > 10_000
