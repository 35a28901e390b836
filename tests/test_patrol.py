"""Patrol planning on the hand-made town: stop choice, one-way order, reasons, GPX, command and page.

Graph nodes of the town (tests/data/routing/town.osm): 4 at 22.6910,114.2000,
6 at 22.6910,114.2020, 9 at 22.6920,114.2020 and 10 at 22.6930,114.2020.
中山路 runs one way from 4 to 6 in 36.9 s; 6 to 9 and 9 to 10 take 20 s
each; 9 to 4 takes 56.9 s and 6 to 4 takes 77.0 s.
"""
import json
import xml.etree.ElementTree as ET
from datetime import date, datetime
from zoneinfo import ZoneInfo

import h3
import pytest
from django.contrib.auth.models import Group, User
from django.contrib.gis.geos import MultiPolygon, Point, Polygon
from django.core.management import call_command
from django.core.management.base import CommandError

from gridmap.models import GridLevel, GridUnit
from routing.exceptions import PatrolInputError
from routing.gpx import GPX_NAMESPACE, patrol_gpx
from routing.patrol import (
    StopCandidate, gather_candidates, hotspot_cell_values, parse_area, parse_lat_lng, plan_patrol, ticket_candidates,
)
from routing.roads import load_road_graph
from spatial.models import HotspotCell, HotspotLabel, HotspotRun, Ticket, TicketStatus

SHANGHAI = ZoneInfo("Asia/Shanghai")
START = (22.6910, 114.2000)
START_AT = datetime(2026, 12, 4, 9, 0, tzinfo=SHANGHAI)
NODE_6 = (22.6910, 114.2020)
NODE_9 = (22.6920, 114.2020)
NODE_10 = (22.6930, 114.2020)
FAR_AWAY = (22.7000, 114.2100)
TOWN_BBOX = "114.1990,22.6895,114.2030,22.6940"
PATROL_URL = "/routing/patrol/"


@pytest.fixture
def town_path(fixtures_dir):
    return fixtures_dir / "routing" / "town.osm"


@pytest.fixture(autouse=True)
def graph_cache_in_tmp(settings, tmp_path):
    settings.VAR_DIR = tmp_path / "var"


@pytest.fixture
def town(town_path):
    return load_road_graph(town_path)


def stops(values=(5, 4, 3)):
    return [
        StopCandidate(kind="alarm", key="alarm-6", lat=NODE_6[0], lng=NODE_6[1], value=values[0], label="烟感告警"),
        StopCandidate(kind="cell", key="cell-9", lat=NODE_9[0], lng=NODE_9[1], value=values[1]),
        StopCandidate(kind="ticket", key="ticket-10", lat=NODE_10[0], lng=NODE_10[1], value=values[2]),
        StopCandidate(kind="reinspection", key="far", lat=FAR_AWAY[0], lng=FAR_AWAY[1], value=9),
    ]


def two_stops():
    alarm, _cell, ticket, far = stops()
    return [alarm, ticket, far]


def test_plan_orders_stops_with_oneway(town):
    # East along 中山路 first: 4-6-10-4 takes 153.8 s, 4-10-6-4 would take 193.9 s.
    plan = plan_patrol(town, *START, two_stops(), START_AT, budget_s=3600, service_s=300, time_limit_s=0.5)
    assert [stop.candidate.key for stop in plan.stops] == ["alarm-6", "ticket-10"]
    assert plan.travel_s == pytest.approx(36.9 + 40 + 76.9, abs=0.3)
    assert plan.length_m == pytest.approx(205.2 + 222.4 + 427.6, abs=0.5)
    assert plan.service_s == 600
    assert plan.duration_s == pytest.approx(plan.travel_s + 600)
    assert plan.value == 8


def test_plan_visits_all_three(town):
    plan = plan_patrol(town, *START, stops(), START_AT, budget_s=3600, service_s=300, time_limit_s=0.5)
    assert plan.stops[0].candidate.key == "alarm-6"
    assert sorted(stop.candidate.key for stop in plan.stops) == ["alarm-6", "cell-9", "ticket-10"]
    # 6-9-10 then back, or 6-10-9 then back: 153.8 s of travel either way.
    assert plan.travel_s == pytest.approx(153.8, abs=0.3)
    assert plan.value == 12


def test_plan_arrival_times(town):
    plan = plan_patrol(town, *START, two_stops(), START_AT, budget_s=3600, service_s=300, time_limit_s=0.5)
    arrivals = [(stop.arrival_at - START_AT).total_seconds() for stop in plan.stops]
    assert arrivals == pytest.approx([36.9, 376.9], abs=0.2)
    assert [stop.sequence for stop in plan.stops] == [1, 2]
    assert (plan.end_at - START_AT).total_seconds() == pytest.approx(753.8, abs=0.3)


def test_plan_lists_far_stop_unreachable(town):
    plan = plan_patrol(town, *START, stops(), START_AT, budget_s=3600, service_s=300, time_limit_s=0.5)
    assert [skipped.candidate.key for skipped in plan.unreachable] == ["far"]
    assert plan.unreachable[0].code == "too_far_from_road"
    assert "超过吸附上限 150 米" in plan.unreachable[0].reason
    assert plan.not_chosen == []


def test_plan_tight_budget(town):
    # Alone, 6 takes 413.9 s and 9 413.8 s there and back with service; 10 takes 453.8 s.
    plan = plan_patrol(town, *START, stops(), START_AT, budget_s=440, service_s=300, time_limit_s=0.5)
    assert [stop.candidate.key for stop in plan.stops] == ["alarm-6"]
    assert [skipped.candidate.key for skipped in plan.not_chosen] == ["cell-9"]
    assert sorted((skipped.candidate.key, skipped.code) for skipped in plan.unreachable) == [
        ("far", "too_far_from_road"), ("ticket-10", "over_budget")]
    over = next(skipped for skipped in plan.unreachable if skipped.code == "over_budget")
    assert over.reason == "单独往返也需 8 分钟(含停留),超过时间预算 7 分钟。"
    assert plan.duration_s <= 440


def test_plan_open_end(town):
    plan = plan_patrol(town, *START, stops()[:3], START_AT, budget_s=3600, service_s=0, time_limit_s=0.5,
                       return_to_start=False)
    assert [stop.candidate.key for stop in plan.stops] == ["alarm-6", "cell-9", "ticket-10"]
    assert plan.travel_s == pytest.approx(76.9, abs=0.3)


def test_plan_path_geometry(town):
    plan = plan_patrol(town, *START, stops()[:1], START_AT, budget_s=3600, service_s=0, time_limit_s=0.5)
    # Out along 中山路 (4, 5, 6) and back round the south block (6, 3, 2, 1, 4) or the north one.
    assert plan.path_lnglat[0] == pytest.approx((114.2000, 22.6910), abs=1e-6)
    assert plan.path_lnglat[-1] == pytest.approx((114.2000, 22.6910), abs=1e-6)
    assert (114.201, 22.691) in [(round(lng, 6), round(lat, 6)) for lng, lat in plan.path_lnglat]


def test_start_too_far_rejected(town):
    with pytest.raises(PatrolInputError, match="距最近道路"):
        plan_patrol(town, *FAR_AWAY, stops(), START_AT)


def test_zero_budget_rejected(town):
    with pytest.raises(PatrolInputError, match="时间预算必须大于 0"):
        plan_patrol(town, *START, stops(), START_AT, budget_s=0)


@pytest.mark.parametrize("text", ["22.69", "north,east", "95,114", "22.69,114.2,3"])
def test_parse_lat_lng_rejects(text):
    with pytest.raises(PatrolInputError, match=repr(text).replace("(", r"\(").replace(")", r"\)")):
        parse_lat_lng(text)


def test_parse_area_rejects_inverted():
    with pytest.raises(PatrolInputError, match="最小值必须小于最大值"):
        parse_area("114.3,22.6,114.2,22.7")


def test_gpx_document(town):
    plan = plan_patrol(town, *START, two_stops(), START_AT, budget_s=3600, service_s=300, time_limit_s=0.5)
    root = ET.fromstring(patrol_gpx(plan, "巡查 <测试> & 路线"))
    ns = {"gpx": GPX_NAMESPACE}
    assert root.get("version") == "1.1"
    assert root.find("gpx:metadata/gpx:name", ns).text == "巡查 <测试> & 路线"
    waypoints = root.findall("gpx:wpt", ns)
    assert [point.find("gpx:name", ns).text for point in waypoints] == ["0", "1 传感器告警", "2 待上门工单"]
    # 09:00:36.9 in Shanghai, truncated to the second in UTC.
    assert waypoints[1].find("gpx:time", ns).text == "2026-12-04T01:00:36Z"
    assert len(root.findall("gpx:trk/gpx:trkseg/gpx:trkpt", ns)) == len(plan.path_lnglat)


def make_run(cells, created_offset=0):
    run = HotspotRun.objects.create(params={"resolution": 9})
    for cell, label, z_score, count in cells:
        HotspotCell.objects.create(run=run, h3_cell=h3.str_to_int(cell), label=label, z_score=z_score,
                                   p_value=0.01, ticket_count=count)
    return run


def cell_at(lat, lng):
    return h3.latlng_to_cell(lat, lng, 9)


@pytest.mark.django_db
def test_hotspot_cell_values():
    inside_hot, inside_cold = cell_at(*NODE_9), cell_at(22.6905, 114.2005)
    outside_hot = cell_at(22.80, 114.30)
    make_run([(inside_hot, HotspotLabel.HOT_99, 1.0, 1)])
    make_run([(inside_hot, HotspotLabel.HOT_95, 2.5, 3), (inside_cold, HotspotLabel.COLD_95, -2.0, 0),
              (outside_hot, HotspotLabel.HOT_99, 4.0, 9)])
    values = hotspot_cell_values(parse_area(TOWN_BBOX), date(2026, 12, 4), 10)
    assert [candidate.key for candidate in values] == [inside_hot]
    # Latest run: z 2.5 plus log2(1 + 3 tickets).
    assert values[0].value == 4.5
    assert values[0].kind == "cell"


@pytest.mark.django_db
def test_hotspot_cell_values_without_run():
    assert hotspot_cell_values(parse_area(TOWN_BBOX), date(2026, 12, 4), 10) == []


def make_ticket(number, lat, lng, status=TicketStatus.RECEIVED, **fields):
    return Ticket.objects.create(source_system="test", external_id=number, status=status,
                                 received_at=datetime(2026, 11, int(number) % 28 + 1, 9, 0, tzinfo=SHANGHAI),
                                 location=Point(lng, lat, srid=4326), **fields)


@pytest.mark.django_db
def test_ticket_candidates_open_only():
    make_ticket("1", *NODE_10, address="北街10号")
    make_ticket("2", *NODE_9, status=TicketStatus.REOPENED)
    make_ticket("3", *NODE_6, status=TicketStatus.CLOSED)
    make_ticket("4", *NODE_6, status=TicketStatus.ON_SITE)
    make_ticket("5", *FAR_AWAY)
    candidates = ticket_candidates(parse_area(TOWN_BBOX))
    assert [candidate.key for candidate in candidates] == ["test:1", "test:2"]
    assert candidates[0].value == 3.0
    assert candidates[0].label == "其他 · 北街10号"


def custom_cell_values(area, on_date, limit):
    return [StopCandidate(kind="cell", key="risk-model", lat=NODE_9[0], lng=NODE_9[1], value=7.0)]


@pytest.mark.django_db
def test_gather_candidates_with_replaced_cell_value(settings):
    settings.FIREGRID_PATROL_CELL_VALUE = "tests.test_patrol.custom_cell_values"
    alarm = StopCandidate(kind="", key="a1", lat=NODE_6[0], lng=NODE_6[1], value=None)
    redo = StopCandidate(kind="", key="r1", lat=NODE_10[0], lng=NODE_10[1], value=2.5)
    candidates = gather_candidates(parse_area(TOWN_BBOX), date(2026, 12, 4), alarms=[alarm], reinspections=[redo])
    assert [(c.kind, c.key, c.value) for c in candidates] == [
        ("cell", "risk-model", 7.0), ("alarm", "a1", 5.0), ("reinspection", "r1", 2.5)]


@pytest.mark.django_db
def test_patrol_route_command(town_path, tmp_path, capsys):
    make_ticket("1", *NODE_10, address="北街10号")
    gpx_path = tmp_path / "out" / "route.gpx"
    call_command("patrol_route", "--roads", str(town_path), "--start", "22.6910,114.2000", "--budget-min", "60",
                 "--date", "2026-12-04", "--alarm", "22.6910,114.2020,6,烟感", "--reinspection", "22.7000,114.2100",
                 "--time-limit", "0.5", "--gpx", str(gpx_path))
    output = capsys.readouterr().out
    assert "巡查路线 2026-12-04,出发 09:00,预算 60 分钟,候选点位 3 个" in output
    assert "  1. 09:00  传感器告警  alarm:22.691000,114.202000  烟感" in output
    assert "  2. 09:06  待上门工单  test:1  其他 · 北街10号  (本段 222 米,0.7 分钟)" in output
    assert "合计:点位 2 个" in output
    assert "无法到达:复查 reinspection:22.700000,114.210000:距最近道路" in output
    assert gpx_path.is_file()
    assert ET.parse(gpx_path).getroot().tag == f"{{{GPX_NAMESPACE}}}gpx"


@pytest.mark.django_db
def test_patrol_route_command_grid_area(town_path, capsys):
    make_ticket("1", *NODE_10)
    make_ticket("2", *NODE_6)
    polygon = Polygon.from_bbox((114.2015, 22.6925, 114.2025, 22.6935))
    GridUnit.objects.create(code="B-010", name="断头路楼栋", level=GridLevel.BUILDING, geom=MultiPolygon(polygon, srid=4326))
    call_command("patrol_route", "--roads", str(town_path), "--start", "22.6910,114.2000", "--grid", "B-010",
                 "--date", "2026-12-04", "--time-limit", "0.5")
    output = capsys.readouterr().out
    assert "候选点位 1 个" in output
    assert "test:1" in output
    assert "test:2" not in output


@pytest.mark.django_db
def test_patrol_route_command_unknown_grid(town_path):
    with pytest.raises(CommandError, match="网格 'X-1' 不存在"):
        call_command("patrol_route", "--roads", str(town_path), "--start", "22.6910,114.2000", "--grid", "X-1")


@pytest.mark.django_db
def test_patrol_route_command_bad_start(town_path):
    with pytest.raises(CommandError, match="起点 'x,y' 无效"):
        call_command("patrol_route", "--roads", str(town_path), "--start", "x,y")


def make_user(username, *roles):
    user = User.objects.create_user(username=username, password="firegrid-test-pw")
    for role in roles:
        user.groups.add(Group.objects.get(name=role))
    return user


def make_grid(head, code="B-001"):
    polygon = Polygon.from_bbox((114.1990, 22.6895, 114.2030, 22.6940))
    return GridUnit.objects.create(code=code, name="北街楼栋", level=GridLevel.BUILDING, head=head,
                                   geom=MultiPolygon(polygon, srid=4326))


@pytest.fixture
def town_network(settings, town_path):
    settings.FIREGRID_ROAD_FILE = str(town_path)
    settings.FIREGRID_PATROL_SOLVER_TIME_LIMIT_S = 0.5


@pytest.mark.django_db
def test_patrol_page_requires_login(client):
    response = client.get(PATROL_URL)
    assert response.status_code == 302
    assert response["Location"].startswith("/accounts/login/")


@pytest.mark.django_db
def test_patrol_page_rejects_planner(client):
    client.force_login(make_user("planner", "planner"))
    response = client.get(PATROL_URL)
    assert response.status_code == 403


@pytest.mark.django_db
def test_patrol_page_without_grid(client, town_network):
    client.force_login(make_user("head", "grid_head"))
    response = client.get(PATROL_URL)
    assert response.status_code == 200
    assert "您还没有负责的网格" in response.content.decode()


@pytest.mark.django_db
def test_patrol_page_shows_route(client, town_network):
    head = make_user("head", "grid_head")
    make_grid(head)
    make_ticket("1", *NODE_10, address="<script>alert(1)</script>北街")
    client.force_login(head)
    response = client.get(PATROL_URL, {"start": "22.6910,114.2000", "date": "2026-12-04", "budget_min": "60"})
    html = response.content.decode()
    assert response.status_code == 200
    assert 'id="stop-list"' in html
    assert "09:01" in html
    assert "&lt;script&gt;alert(1)&lt;/script&gt;北街" in html
    assert "<script>alert(1)</script>" not in html
    assert "/static/vendor/leaflet/leaflet.js" in html
    start = html.index('id="routing-map-data"')
    data = json.loads(html[html.index(">", start) + 1:html.index("</script>", start)])
    assert data["start"] == [22.691, 114.2]
    assert [stop["sequence"] for stop in data["stops"]] == [1]
    assert data["path"][0] == pytest.approx([22.691, 114.2], abs=1e-6)


@pytest.mark.django_db
def test_patrol_page_masks_mobile_numbers(client, town_network):
    head = make_user("head", "grid_head")
    make_grid(head)
    make_ticket("1", *NODE_10, address="北街10号 联系13812345678")
    client.force_login(head)
    response = client.get(PATROL_URL, {"start": "22.6910,114.2000", "date": "2026-12-04"})
    html = response.content.decode()
    assert "北街10号 联系138****5678" in html
    assert "13812345678" not in html


@pytest.mark.django_db
def test_patrol_page_other_heads_grid(client, town_network):
    owner = make_user("owner", "grid_head")
    make_grid(owner)
    other = make_user("other", "grid_head")
    make_grid(other, code="B-002")
    client.force_login(other)
    response = client.get(PATROL_URL, {"grid": "B-001"})
    assert response.status_code == 200
    assert "选择一个有效的选项。 B-001 不在可用的选项中。" in response.content.decode()
    assert 'id="stop-list"' not in response.content.decode()


@pytest.mark.django_db
def test_patrol_page_gpx_download(client, town_network):
    head = make_user("head", "grid_head")
    make_grid(head)
    make_ticket("1", *NODE_10)
    client.force_login(head)
    response = client.get(PATROL_URL, {"start": "22.6910,114.2000", "date": "2026-12-04", "format": "gpx"})
    assert response.status_code == 200
    assert response["Content-Type"] == "application/gpx+xml"
    assert response["Content-Disposition"] == 'attachment; filename="patrol-B-001-2026-12-04.gpx"'
    root = ET.fromstring(response.content)
    assert len(root.findall(f"{{{GPX_NAMESPACE}}}wpt")) == 2


@pytest.mark.django_db
def test_patrol_page_bad_start(client, town_network):
    head = make_user("head", "grid_head")
    make_grid(head)
    client.force_login(head)
    response = client.get(PATROL_URL, {"start": "abc"})
    html = response.content.decode()
    assert "起点 &#x27;abc&#x27; 无效" in html
    assert 'id="stop-list"' not in html
