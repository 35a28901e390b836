"""Planner map page: roles, filters, escaping, masking, banners and local assets."""
import json
import re
from datetime import datetime
from html.parser import HTMLParser
from urllib.parse import urlsplit
from zoneinfo import ZoneInfo

import folium
import h3
import pytest
from django.contrib.auth.models import Group, User
from django.contrib.gis.geos import Point
from django.core.exceptions import ImproperlyConfigured
from django.urls import reverse
from folium.plugins import MarkerCluster

from gridmap.roles import Role, can_see_personal_data, has_role, user_roles
from spatial.leaflet import check_local_assets
from spatial.models import HotspotCell, HotspotLabel, HotspotRun, ImportBatch, Ticket, TicketSource
from spatial.taxonomy import Category
from webmap.layers import (
    FIT_MAX_ZOOM,
    cell_polygon,
    count_classes,
    estimate_fit_zoom,
    heat_saturation,
    ticket_popup_html,
)
from spatial.privacy import mask_name, mask_personal_numbers, mask_phone
from webmap.queries import heat_points, heat_snap_deg

pytestmark = pytest.mark.django_db

SHANGHAI = ZoneInfo("Asia/Shanghai")
MAP_URL = "/map/"
# Points in Xiangzhou County's seat, about 1 km apart.
CENTRE_LAT, CENTRE_LNG = 23.9650, 109.6830
EAST_LAT, EAST_LNG = 23.9660, 109.6930
LOOPBACK_HOSTS = {"127.0.0.1", "localhost", "testserver"}


def make_user(username, *roles, superuser=False):
    user = User.objects.create_user(username=username, password="firegrid-test-pw", is_superuser=superuser)
    for role in roles:
        user.groups.add(Group.objects.get(name=role))
    return user


def make_ticket(number, lat=CENTRE_LAT, lng=CENTRE_LNG, received_at=None, **fields):
    if received_at is None:
        received_at = datetime(2024, 3, 1, 10, 0, tzinfo=SHANGHAI)
    location = None
    if lat is not None:
        location = Point(lng, lat, srid=4326)
        fields.setdefault("h3_fine", h3.str_to_int(h3.latlng_to_cell(lat, lng, 9)))
        fields.setdefault("h3_coarse", h3.str_to_int(h3.latlng_to_cell(lat, lng, 7)))
    return Ticket.objects.create(
        source_system="test", external_id=number, received_at=received_at, location=location, **fields
    )


def make_batch(simulated):
    return ImportBatch.objects.create(
        file_name="tickets.csv", file_sha256="0" * 64, profile="test", simulated=simulated
    )


def make_run(category=None, label_by_cell=None, **params):
    params = {"category": category, "source": None, "received_from": None, "received_to": None,
              "resolution": 9, "permutations": 999, "seed": 42, **params}
    label_by_cell = label_by_cell or {}
    hot = sum(1 for label in label_by_cell.values() if label.startswith("hot"))
    cold = sum(1 for label in label_by_cell.values() if label.startswith("cold"))
    run = HotspotRun.objects.create(
        params=params, ticket_count=len(label_by_cell), cell_count=len(label_by_cell),
        hot_count=hot, cold_count=cold,
    )
    for cell, label in label_by_cell.items():
        HotspotCell.objects.create(run=run, h3_cell=cell, ticket_count=1, z_score=2.7, p_value=0.004, label=label)
    return run


def fine_cell(lat, lng):
    return h3.str_to_int(h3.latlng_to_cell(lat, lng, 9))


def marker_data(html):
    """Return the ticket marker array embedded in the map script, or [] when there is none."""
    match = re.search(r"\.addLayers\((\[.*?\])\.map\(function \(ticket\)", html, re.S)
    return json.loads(match.group(1)) if match else []


def page(client, **params):
    response = client.get(MAP_URL, params)
    assert response.status_code == 200
    return response


@pytest.fixture
def planner_client(client):
    client.force_login(make_user("planner", Role.PLANNER))
    return client


# --- roles ------------------------------------------------------------------

def test_role_groups_created_by_migration():
    assert set(Group.objects.values_list("name", flat=True)) >= set(Role.values)


def test_anonymous_redirected_to_login(client):
    response = client.get(MAP_URL)

    assert response.status_code == 302
    assert response.url == f"{reverse('login')}?next={MAP_URL}"


@pytest.mark.parametrize("role", [Role.GRID_HEAD, Role.HANDLER])
def test_map_forbidden_for_role(client, role):
    client.force_login(make_user(f"user-{role}", role))

    response = client.get(MAP_URL)

    assert response.status_code == 403
    content = response.content.decode()
    assert "需要以下角色之一" in content
    assert "规划分析人员、领导、管理员" in content


def test_map_forbidden_without_role(client):
    client.force_login(make_user("nobody"))

    assert client.get(MAP_URL).status_code == 403


@pytest.mark.parametrize("role", [Role.PLANNER, Role.LEADER, Role.ADMIN])
def test_map_allowed_for_role(client, role):
    client.force_login(make_user(f"user-{role}", role))

    assert client.get(MAP_URL).status_code == 200


def test_map_allowed_for_superuser(client):
    client.force_login(make_user("root", superuser=True))

    assert client.get(MAP_URL).status_code == 200


def test_user_roles_of_superuser_and_anonymous():
    from django.contrib.auth.models import AnonymousUser

    superuser = make_user("root", superuser=True)
    both = make_user("both", Role.PLANNER, Role.HANDLER)

    assert user_roles(superuser) == {Role.ADMIN}
    assert user_roles(AnonymousUser()) == frozenset()
    assert user_roles(both) == {Role.PLANNER, Role.HANDLER}
    assert has_role(both, Role.LEADER, Role.HANDLER)
    assert not has_role(both, Role.LEADER, Role.ADMIN)


def test_inactive_user_has_no_roles():
    user = make_user("gone", Role.PLANNER)
    user.is_active = False

    assert user_roles(user) == frozenset()


def test_personal_data_only_for_handler():
    assert can_see_personal_data(make_user("handler", Role.HANDLER))
    for role in (Role.PLANNER, Role.GRID_HEAD, Role.LEADER, Role.ADMIN):
        assert not can_see_personal_data(make_user(f"user-{role}", role)), role
    assert not can_see_personal_data(make_user("root", superuser=True))


def test_login_page_in_chinese(client):
    response = client.get(reverse("login"))

    assert response.status_code == 200
    content = response.content.decode()
    assert "登录 FireGrid" in content
    assert 'name="username"' in content


def test_login_then_logout(client):
    make_user("planner", Role.PLANNER)

    response = client.post(reverse("login"), {"username": "planner", "password": "firegrid-test-pw",
                                              "next": MAP_URL})
    assert response.status_code == 302
    assert response.url == MAP_URL

    response = client.post(reverse("logout"), {"next": reverse("login")})
    assert response.status_code == 302
    assert response.url == reverse("login")
    assert client.get(MAP_URL).status_code == 302


# --- layers and filters -------------------------------------------------------

def test_filters_narrow_layers(planner_client):
    make_ticket("lane-1", category=Category.FIRE_LANE, source=TicketSource.HOTLINE)
    make_ticket("lane-2", lat=EAST_LAT, lng=EAST_LNG, category=Category.FIRE_LANE, source=TicketSource.IOT_ALARM)
    make_ticket("ebike-1", lat=EAST_LAT, lng=EAST_LNG, category=Category.EBIKE_CHARGING,
                source=TicketSource.HOTLINE)

    everything = page(planner_client).context["planner_map"]
    assert everything.ticket_count == 3
    assert everything.heat_point_count == 2
    assert everything.cell_count == 2
    assert everything.marker_count == 3

    lanes = page(planner_client, category=Category.FIRE_LANE).context["planner_map"]
    assert lanes.ticket_count == 2
    assert lanes.marker_count == 2
    assert lanes.cell_count == 2

    hotline_ebike = page(planner_client, category=Category.EBIKE_CHARGING,
                         source=TicketSource.HOTLINE).context["planner_map"]
    assert hotline_ebike.ticket_count == 1
    assert hotline_ebike.heat_point_count == 1
    assert hotline_ebike.cell_count == 1
    assert [marker["lat"] for marker in marker_data(page(planner_client, category=Category.EBIKE_CHARGING)
                                                   .content.decode())] == [EAST_LAT]


def test_period_filter_uses_shanghai_days(planner_client):
    make_ticket("late-evening", received_at=datetime(2024, 3, 1, 23, 30, tzinfo=SHANGHAI))
    make_ticket("after-midnight", received_at=datetime(2024, 3, 2, 0, 10, tzinfo=SHANGHAI))
    make_ticket("before", received_at=datetime(2024, 2, 29, 23, 59, tzinfo=SHANGHAI))

    march_first = page(planner_client, received_from="2024-03-01", received_to="2024-03-01")
    titles = [marker["popup"] for marker in marker_data(march_first.content.decode())]

    assert march_first.context["planner_map"].ticket_count == 1
    assert len(titles) == 1
    assert "late-evening" in titles[0]
    assert page(planner_client, received_from="2024-03-02").context["planner_map"].ticket_count == 1
    assert page(planner_client, received_to="2024-02-29").context["planner_map"].ticket_count == 1


def test_reversed_period_shows_error(planner_client):
    response = page(planner_client, received_from="2024-03-02", received_to="2024-03-01")
    content = response.content.decode()

    assert response.context["planner_map"] is None
    assert "筛选条件无效" in content
    assert "结束日期 2024-03-01 早于开始日期 2024-03-02" in content


def test_unknown_category_shows_error(planner_client):
    response = page(planner_client, category="not-a-category")

    assert response.context["planner_map"] is None
    assert "category" in response.context["form"].errors


def test_h3_resolution_switches_cells(planner_client):
    make_ticket("a")
    make_ticket("b", lat=EAST_LAT, lng=EAST_LNG)

    fine = page(planner_client, resolution=9).context["planner_map"]
    coarse = page(planner_client, resolution=7).context["planner_map"]

    assert fine.resolution == 9
    assert fine.cell_count == 2
    assert coarse.resolution == 7
    assert coarse.cell_count == 1


def test_many_fine_cells_switch_to_coarse(planner_client, monkeypatch):
    monkeypatch.setattr("webmap.maps.MAX_AUTO_FINE_CELLS", 1)
    make_ticket("a")
    make_ticket("b", lat=EAST_LAT, lng=EAST_LNG)

    automatic = page(planner_client)
    chosen_fine = page(planner_client, resolution=9).context["planner_map"]

    assert automatic.context["planner_map"].resolution == 7
    assert automatic.context["planner_map"].resolution_coarsened
    assert automatic.context["planner_map"].cell_count == 1
    assert "H3 单元图层改用粗分辨率 7(1 个单元)" in automatic.content.decode()
    assert chosen_fine.resolution == 9
    assert not chosen_fine.resolution_coarsened
    assert chosen_fine.cell_count == 2


@pytest.mark.parametrize(
    ("extent", "expected_deg"),
    [
        (None, 0.0005),
        ((109.68, 23.96, 109.70, 23.97), 0.0005),
        ((109.40, 23.70, 110.10, 24.33), 0.7 / 256),
    ],
)
def test_heat_lattice_step(extent, expected_deg):
    assert heat_snap_deg(extent) == pytest.approx(expected_deg)


def test_fit_zoom_estimates():
    study_area = [[23.70, 109.40], [24.33, 110.10]]
    one_point = [[CENTRE_LAT, CENTRE_LNG], [CENTRE_LAT, CENTRE_LNG]]

    assert estimate_fit_zoom(study_area) == 10
    assert estimate_fit_zoom(one_point) == FIT_MAX_ZOOM


def test_heat_saturation_sums_nearby_points():
    # Squares at zoom 14 are 0.00069 degrees (about 70 m) wide.
    near_points = [[CENTRE_LAT, CENTRE_LNG, 6], [CENTRE_LAT, CENTRE_LNG + 0.00001, 4]]
    neighbour_points = [[CENTRE_LAT, CENTRE_LNG, 6], [CENTRE_LAT, CENTRE_LNG + 0.0012, 4]]
    # About 1 km apart, and inside one square at zoom 6 (0.18 degrees wide).
    apart_points = [[CENTRE_LAT, CENTRE_LNG, 6], [CENTRE_LAT + 0.001, CENTRE_LNG - 0.010, 4]]

    assert heat_saturation([], 14) == 1
    assert heat_saturation([[CENTRE_LAT, CENTRE_LNG, 1]], 14) == 1
    assert heat_saturation(near_points, 14) == 5
    assert heat_saturation(neighbour_points, 14) == 5
    assert heat_saturation(apart_points, 14) == 3
    assert heat_saturation(apart_points, 6) == 5


def test_heat_points_weighted_by_count():
    make_ticket("a")
    make_ticket("b")
    make_ticket("c", lat=EAST_LAT, lng=EAST_LNG)

    points = sorted(heat_points(Ticket.objects.all()))

    assert points == [
        [pytest.approx(CENTRE_LAT, abs=0.0005), pytest.approx(CENTRE_LNG, abs=0.0005), 2],
        [pytest.approx(EAST_LAT, abs=0.0005), pytest.approx(EAST_LNG, abs=0.0005), 1],
    ]


def test_tickets_without_location_counted(planner_client):
    make_ticket("located")
    make_ticket("unlocated", lat=None)

    response = page(planner_client)
    built = response.context["planner_map"]

    assert built.ticket_count == 2
    assert built.located_count == 1
    assert built.marker_count == 1
    assert "没有坐标的 1 件不在地图上" in response.content.decode()


def test_markers_capped_to_most_recent(planner_client, settings):
    settings.FIREGRID_MAP_MAX_MARKERS = 2
    for day in (1, 2, 3):
        make_ticket(f"day-{day}", received_at=datetime(2024, 3, day, 9, 0, tzinfo=SHANGHAI))

    response = page(planner_client)
    built = response.context["planner_map"]
    popups = [marker["popup"] for marker in marker_data(response.content.decode())]

    assert built.marker_count == 2
    assert built.markers_capped
    assert built.heat_point_count == 1
    assert "day-3" in popups[0]
    assert "day-2" in popups[1]
    assert "工单标记只显示最近受理的 2 件(有坐标的共 3 件" in response.content.decode()


def test_markers_not_capped_message_absent(planner_client):
    make_ticket("only")

    response = page(planner_client)

    assert not response.context["planner_map"].markers_capped
    assert "工单标记只显示最近受理的" not in response.content.decode()


def test_layer_control_lists_drawn_layers(planner_client):
    make_ticket("a")
    make_run(label_by_cell={fine_cell(CENTRE_LAT, CENTRE_LNG): HotspotLabel.HOT_99})

    response = page(planner_client)
    content = response.content.decode()

    assert response.context["planner_map"].layer_names == [
        "Gi* 热点/冷点", "H3 六边形单元工单数", "工单热力图", "工单标记",
    ]
    assert "L.control.layers(" in content
    assert "firegrid-hotspot-cell" in content
    assert "firegrid-h3-cell" in content


def test_cell_polygon_in_lng_lat_order():
    ring = cell_polygon(fine_cell(CENTRE_LAT, CENTRE_LNG))["coordinates"][0]
    lngs = [lng for lng, _ in ring]
    lats = [lat for _, lat in ring]

    assert ring[0] == ring[-1]
    assert len(ring) == 7
    assert min(lngs) < CENTRE_LNG < max(lngs)
    assert min(lats) < CENTRE_LAT < max(lats)


@pytest.mark.parametrize(
    ("counts", "expected"),
    [
        ([], []),
        ([4, 4, 4], [(4, 4, "#54278f")]),
        ([1, 2], [(1, 1, "#756bb1"), (2, 2, "#54278f")]),
        ([1, 1, 2, 3, 5, 8, 13, 21, 34, 55],
         [(1, 1, "#dadaeb"), (2, 3, "#bcbddc"), (4, 8, "#9e9ac8"), (9, 21, "#756bb1"), (22, 55, "#54278f")]),
    ],
)
def test_count_classes(counts, expected):
    assert count_classes(counts) == expected


# --- hotspot runs -------------------------------------------------------------

def test_no_hotspot_run_explains_command(planner_client):
    make_ticket("a")

    content = page(planner_client).content.decode()

    assert "尚无与当前筛选条件匹配的 Gi* 热点分析" in content
    assert "python manage.py compute_hotspots" in content


def test_latest_matching_run_selected(planner_client):
    make_ticket("a", category=Category.FIRE_LANE)
    cell = fine_cell(CENTRE_LAT, CENTRE_LNG)
    all_categories = make_run(label_by_cell={cell: HotspotLabel.HOT_95})
    lanes = make_run(category=Category.FIRE_LANE, label_by_cell={cell: HotspotLabel.COLD_90})

    unfiltered = page(planner_client)
    filtered = page(planner_client, category=Category.FIRE_LANE)

    assert unfiltered.context["planner_map"].hotspot.run_id == all_categories.pk
    assert filtered.context["planner_map"].hotspot.run_id == lanes.pk
    assert filtered.context["planner_map"].hotspot.matches_filter
    content = filtered.content.decode()
    assert f"Gi* 分析 #{lanes.pk}" in content
    assert "问题类型 消防通道/疏散通道堵塞" in content
    assert "H3 分辨率 9,置换检验 999 次,随机种子 42" in content
    assert "共 1 个单元(1 件工单),热点 0 个,冷点 1 个" in content


def test_run_dates_match_as_days(planner_client):
    run = make_run(received_from="2024-03-01T00:00:00+08:00", received_to="2024-03-31")

    built = page(planner_client, received_from="2024-03-01", received_to="2024-03-31").context["planner_map"]

    assert built.hotspot.run_id == run.pk
    assert built.hotspot.period == "2024-03-01 – 2024-03-31"


def test_requested_run_marked_when_filter_differs(planner_client):
    run = make_run(category=Category.ELECTRICAL, label_by_cell={fine_cell(CENTRE_LAT, CENTRE_LNG): "ns"})

    response = page(planner_client, run=run.pk)

    assert response.context["planner_map"].hotspot.run_id == run.pk
    assert response.context["planner_map"].hotspot_cell_count == 1
    assert "该分析的筛选条件与当前地图的筛选条件不同" in response.content.decode()


def test_unknown_run_rejected(planner_client):
    response = page(planner_client, run=999999)

    assert response.context["planner_map"] is None
    assert "run" in response.context["form"].errors


def test_hotspot_cells_shown_without_tickets(planner_client):
    make_run(label_by_cell={fine_cell(CENTRE_LAT, CENTRE_LNG): HotspotLabel.HOT_99})

    response = page(planner_client)
    built = response.context["planner_map"]

    assert built.ticket_count == 0
    assert built.hotspot_cell_count == 1
    assert built.layer_names == ["Gi* 热点/冷点"]
    assert "#d7191c" in response.content.decode()


# --- escaping and masking -------------------------------------------------------

HOSTILE_DESCRIPTION = '<script>alert("description")</script><img src=x onerror=alert(1)> ${alert(3)} `x`'
HOSTILE_ADDRESS = '<img src=x onerror=alert(2)>路 "1" 号'


def test_popup_text_escaped(planner_client):
    make_ticket("<b>x</b>", description=HOSTILE_DESCRIPTION, address=HOSTILE_ADDRESS)

    content = page(planner_client).content.decode()
    popups = [marker["popup"] for marker in marker_data(content)]

    assert "<img src=x onerror" not in content
    assert '<script>alert("description")' not in content
    assert "<b>x</b>" not in content
    assert len(popups) == 1
    assert "&lt;script&gt;alert(&quot;description&quot;)&lt;/script&gt;" in popups[0]
    assert "&lt;img src=x onerror=alert(1)&gt;" in popups[0]
    assert "&lt;img src=x onerror=alert(2)&gt;路 &quot;1&quot; 号" in popups[0]
    assert "工单 &lt;b&gt;x&lt;/b&gt;" in popups[0]
    # The popup travels in a JSON string, not a JavaScript template literal.
    assert "${alert(3)} `x`" in popups[0]


def test_long_description_truncated():
    ticket = make_ticket("long", description="很" * 400)

    html = ticket_popup_html(ticket, reveal_personal_data=False)

    assert "很" * 299 + "…" in html
    assert "很" * 300 not in html


PERSONAL_FIELDS = {
    "complainant_name": "张三丰",
    "complainant_phone": "13812345678",
    "description": "楼道有电动车飞线充电,请回电 139-8765-4321 或 +86 137 1111 2222",
    "address": "城东路 5 号,联系 13600001111",
}


def test_personal_data_masked_for_planner(planner_client):
    make_ticket("personal", **PERSONAL_FIELDS)

    content = page(planner_client).content.decode()
    popup = marker_data(content)[0]["popup"]

    assert "张**" in popup
    assert "138****5678" in popup
    assert "139****4321" in popup
    assert "+86 137****2222" in popup
    assert "136****1111" in popup
    for secret in ("张三丰", "13812345678", "8765", "1111 2222", "13600001111"):
        assert secret not in content, secret


def test_personal_data_visible_for_handler():
    handler = make_user("handler", Role.HANDLER)
    ticket = make_ticket("personal", **PERSONAL_FIELDS)

    popup = ticket_popup_html(ticket, reveal_personal_data=can_see_personal_data(handler))

    assert "张三丰" in popup
    assert "13812345678" in popup
    assert "139-8765-4321" in popup
    assert "13600001111" in popup


def test_planner_who_is_handler_sees_personal_data(client):
    client.force_login(make_user("both", Role.PLANNER, Role.HANDLER))
    make_ticket("personal", **PERSONAL_FIELDS)

    popup = marker_data(page(client).content.decode())[0]["popup"]

    assert "张三丰" in popup
    assert "13812345678" in popup


@pytest.mark.parametrize(
    ("name", "expected"),
    [("张三丰", "张**"), ("张三", "张**"), ("王", "*"), ("", ""), ("  李四 ", "李**")],
)
def test_mask_name(name, expected):
    assert mask_name(name) == expected


@pytest.mark.parametrize(
    ("phone", "expected"),
    [
        ("13812345678", "138****5678"),
        ("138 1234 5678", "138****5678"),
        ("+8613812345678", "+86138****5678"),
        ("0772-4212345", "****-***2345"),
        ("110", "110"),
        ("", ""),
    ],
)
def test_mask_phone(phone, expected):
    assert mask_phone(phone) == expected


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ("电话13812345678。", "电话138****5678。"),
        ("工单号202403011381234567890", "工单号202403011381234567890"),
        ("身份证 45132219800101123X", "身份证 451322********123X"),
        ("门牌 12 号,面积 300 平方米", "门牌 12 号,面积 300 平方米"),
        ("", ""),
    ],
)
def test_mask_personal_numbers(text, expected):
    assert mask_personal_numbers(text) == expected


# --- page states ------------------------------------------------------------------

def test_empty_database_page(planner_client):
    response = page(planner_client)
    built = response.context["planner_map"]
    content = response.content.decode()

    assert built.ticket_count == 0
    assert built.layer_names == []
    assert "暂无符合筛选条件的工单" in content
    assert 'class="folium-map"' in content


def test_simulated_banner_only_with_simulated_tickets(planner_client):
    make_ticket("real", batch=make_batch(simulated=False), category=Category.FIRE_LANE)

    assert "banner-simulated" not in page(planner_client).content.decode()

    make_ticket("fake", batch=make_batch(simulated=True), category=Category.ELECTRICAL)
    content = page(planner_client).content.decode()

    assert "banner-simulated" in content
    assert "模拟数据" in content
    assert "banner-simulated" not in page(planner_client, category=Category.FIRE_LANE).content.decode()


def test_page_in_english(planner_client):
    make_ticket("a")
    planner_client.cookies["django_language"] = "en"

    content = page(planner_client).content.decode()

    assert "Planner map" in content
    assert "Ticket heatmap" in content
    assert "规划分析地图" not in content


def test_language_switch_to_english(planner_client):
    response = planner_client.post(reverse("set_language"), {"language": "en", "next": MAP_URL})

    assert response.status_code == 302
    assert response.url == MAP_URL
    assert "Log out" in page(planner_client).content.decode()


# --- assets and basemaps -------------------------------------------------------------

class ResourceCollector(HTMLParser):
    """Collect the src and href of <script> and <link> tags and the text of inline scripts."""

    def __init__(self):
        super().__init__()
        self.resource_urls = []
        self.inline_scripts = []
        self._in_script = False

    def handle_starttag(self, tag, attrs):
        attributes = dict(attrs)
        if tag == "script":
            self._in_script = "src" not in attributes
            if "src" in attributes:
                self.resource_urls.append(attributes["src"])
        elif tag == "link" and attributes.get("href"):
            self.resource_urls.append(attributes["href"])

    def handle_endtag(self, tag):
        if tag == "script":
            self._in_script = False

    def handle_data(self, data):
        if self._in_script:
            self.inline_scripts.append(data)


def external_urls(content):
    """Return every http(s) URL to a non-loopback host in the page's <script> and <link> tags."""
    collector = ResourceCollector()
    collector.feed(content)
    urls = [url for url in collector.resource_urls if urlsplit(url).scheme in ("http", "https")]
    for script in collector.inline_scripts:
        urls.extend(re.findall(r"https?://[^\s\"'`)<>]+", script))
    return [url for url in urls if urlsplit(url).hostname not in LOOPBACK_HOSTS]


def test_assets_served_locally(planner_client):
    make_ticket("a")
    make_run(label_by_cell={fine_cell(CENTRE_LAT, CENTRE_LNG): HotspotLabel.HOT_99})

    content = page(planner_client).content.decode()
    collector = ResourceCollector()
    collector.feed(content)

    assert external_urls(content) == []
    assert "/static/vendor/leaflet/leaflet.js" in collector.resource_urls
    assert "/static/vendor/leaflet.heat/leaflet-heat.js" in collector.resource_urls
    assert "/static/vendor/leaflet.markercluster/leaflet.markercluster.js" in collector.resource_urls
    assert not any("jquery" in url or "bootstrap" in url for url in collector.resource_urls)


def test_custom_basemap_is_only_external_url(planner_client, settings):
    settings.FIREGRID_BASEMAP = "https://tiles.example.org/{z}/{x}/{y}.png"
    settings.FIREGRID_BASEMAP_ATTRIBUTION = "Example tiles"
    make_ticket("a")

    content = page(planner_client).content.decode()

    assert external_urls(content) == ["https://tiles.example.org/{z}/{x}/{y}.png"]
    assert "Example tiles" in content


def test_osm_basemap_hosts(planner_client, settings):
    settings.FIREGRID_BASEMAP = "osm"

    hosts = {urlsplit(url).hostname for url in external_urls(page(planner_client).content.decode())}

    assert hosts == {"tile.openstreetmap.org", "www.openstreetmap.org"}


def test_tianditu_without_key_falls_back(planner_client, settings):
    settings.FIREGRID_BASEMAP = "tianditu"
    settings.FIREGRID_TIANDITU_KEY = ""

    response = page(planner_client)
    content = response.content.decode()

    assert "FIREGRID_TIANDITU_KEY" in response.context["planner_map"].basemap_notice
    assert external_urls(content) == []


def test_tianditu_with_key(planner_client, settings):
    settings.FIREGRID_BASEMAP = "tianditu"
    settings.FIREGRID_TIANDITU_KEY = "test-key"

    urls = external_urls(page(planner_client).content.decode())

    assert len(urls) == 2
    assert all(urlsplit(url).hostname == "t{s}.tianditu.gov.cn" for url in urls)
    assert all(url.endswith("tk=test-key") for url in urls)


def test_invalid_basemap_falls_back(planner_client, settings):
    settings.FIREGRID_BASEMAP = "satellite"

    response = page(planner_client)

    assert "FIREGRID_BASEMAP" in response.context["planner_map"].basemap_notice
    assert external_urls(response.content.decode()) == []


def test_check_local_assets_rejects_cdn():
    cdn_map = folium.Map(tiles=None)
    MarkerCluster().add_to(cdn_map)
    figure = cdn_map.get_root()
    figure.render()

    with pytest.raises(ImproperlyConfigured, match="is not served from"):
        check_local_assets(figure)
