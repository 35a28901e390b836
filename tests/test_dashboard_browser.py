"""The leaders' dashboard in real headless Chromium: a leader sees it, a grid head is refused."""
from pathlib import Path
from urllib.parse import urlsplit

import pytest
from django.contrib.auth.models import Group, User

from tests.test_kpi_support import build_kpi_world

CHROMIUM_PATH = Path("/usr/bin/chromium")
CHROMIUM_ARGS = ["--no-sandbox", "--disable-gpu", "--disable-background-networking", "--disable-component-update",
                 "--disable-sync", "--no-first-run"]
SCREENSHOT_PATH = Path(__file__).resolve().parent.parent / "var" / "screenshots" / "dashboard.png"
PASSWORD = "firegrid-dashboard-pw"

pytestmark = [
    pytest.mark.browser,
    pytest.mark.django_db(transaction=True),
    pytest.mark.skipif(not CHROMIUM_PATH.exists(), reason=f"Debian's chromium is not installed at {CHROMIUM_PATH}"),
]


def user_with(username, role):
    user = User.objects.create_user(username=username, password=PASSWORD)
    user.groups.add(Group.objects.get_or_create(name=role)[0])
    return user


def log_in(page, base_url, username):
    page.goto(f"{base_url}/dashboard/?period=2026-03")
    assert urlsplit(page.url).path == "/accounts/login/"
    page.fill("input[name=username]", username)
    page.fill("input[name=password]", PASSWORD)
    page.click("form.login-form button[type=submit]")
    page.wait_for_load_state("load")


def test_leader_sees_the_dashboard_and_a_grid_head_is_refused(live_server):
    sync_api = pytest.importorskip("playwright.sync_api")
    build_kpi_world()
    user_with("leader", "leader")
    user_with("gridhead", "grid_head")
    base_url = live_server.url.replace("//localhost:", "//127.0.0.1:")
    errors, requests = [], []
    # Every database write happens above: playwright's sync API runs an event loop in this thread.
    with sync_api.sync_playwright() as playwright:
        browser = playwright.chromium.launch(executable_path=str(CHROMIUM_PATH), headless=True, args=CHROMIUM_ARGS)
        try:
            context = browser.new_context(viewport={"width": 1400, "height": 1000}, locale="zh-CN")
            page = context.new_page()
            page.on("console", lambda message: message.type == "error" and errors.append(message.text))
            page.on("pageerror", lambda error: errors.append(str(error)))
            page.on("request", lambda request: requests.append(request.url))
            log_in(page, base_url, "leader")
            assert urlsplit(page.url).path == "/dashboard/"
            assert page.locator("h1").inner_text() == "领导驾驶舱 · 2026年3月"
            assert page.locator("#kpi-cards .kpi-card").count() == 9
            card = page.locator('.kpi-card[data-kpi="mean_close_days"]')
            assert card.locator(".kpi-value").inner_text() == "4.29 天"
            assert "基线 7.20 天 → 目标 ≤ 3.50 天" in card.inner_text()
            assert page.locator("svg.line-chart").count() == 5
            assert page.locator("svg.line-chart").first.is_visible()
            assert page.locator("#department-ranking tbody tr").count() == 2
            assert page.locator("#overdue-list tbody tr").count() == 2
            SCREENSHOT_PATH.parent.mkdir(parents=True, exist_ok=True)
            page.screenshot(path=str(SCREENSHOT_PATH), full_page=True)
            # One click from a figure to the tickets behind it.
            page.locator('.kpi-card[data-kpi="proactive_rate"] .kpi-value a').click()
            page.wait_for_load_state("load")
            assert urlsplit(page.url).path == "/supervision/kpi/proactive_rate/tickets/"
            assert page.locator("table.data-table tbody tr").count() == 9
            context.close()

            context = browser.new_context(locale="zh-CN")
            page = context.new_page()
            page.on("request", lambda request: requests.append(request.url))
            log_in(page, base_url, "gridhead")
            assert "您的账号没有访问此页面的权限" in page.content()
            assert page.locator("#kpi-cards").count() == 0
            response = page.goto(f"{base_url}/dashboard/report.pdf?period=2026-03")
            assert response.status == 403
            context.close()
        finally:
            browser.close()
    assert errors == []
    assert {urlsplit(url).hostname for url in requests} == {"127.0.0.1"}
