"""Analytics pages: roles, content from stored runs, escaping, review form."""
import datetime
import json

import h3
import pytest
from django.contrib.auth.models import Group, User
from django.contrib.gis.geos import Point
from django.urls import reverse

from gridmap.roles import Role
from spatial.analysis import repeats, zones
from spatial.models import (
    AssociationRun, ClassifierVersion, EmergingCell, EmergingRun, RepeatRun, ReviewItem, ReviewStatus, RiskCell,
    RiskRun, Ticket,
)

SHANGHAI = datetime.timezone(datetime.timedelta(hours=8))
PAGES = ("analytics", "analytics-zones", "analytics-repeats", "analytics-associations", "analytics-emerging",
         "analytics-risk")
CELL = h3.str_to_int(h3.latlng_to_cell(23.955, 109.705, 9))


def in_json(text):
    """Return ``text`` as folium writes it inside the map's GeoJSON (ASCII with \\u escapes)."""
    return json.dumps(text)[1:-1]


def make_user(username, *roles):
    user = User.objects.create_user(username=username, password="firegrid-test-pw")
    for role in roles:
        user.groups.add(Group.objects.get(name=role))
    return user


def make_ticket(number, days=0, **fields):
    return Ticket.objects.create(
        source_system="test", external_id=str(number),
        received_at=datetime.datetime(2024, 3, 1, 9, tzinfo=SHANGHAI) + datetime.timedelta(days=days), **fields)


@pytest.fixture
def planner(client):
    client.force_login(make_user("planner", Role.PLANNER))
    return client


@pytest.mark.django_db
@pytest.mark.parametrize("name", PAGES + ("analytics-classification",))
def test_pages_forbidden_for_grid_head(client, name):
    client.force_login(make_user("head", Role.GRID_HEAD))
    assert client.get(reverse(f"webmap:{name}")).status_code == 403


@pytest.mark.django_db
def test_anonymous_redirected(client):
    response = client.get(reverse("webmap:analytics-risk"))
    assert response.status_code == 302
    assert response["Location"].startswith(reverse("login"))


@pytest.mark.django_db
def test_leader_sees_analytics_but_not_review(client):
    client.force_login(make_user("leader", Role.LEADER))
    assert client.get(reverse("webmap:analytics-risk")).status_code == 200
    assert client.get(reverse("webmap:analytics-classification")).status_code == 403


@pytest.mark.django_db
@pytest.mark.parametrize("name", PAGES + ("analytics-classification",))
def test_empty_pages_render(planner, name):
    response = planner.get(reverse(f"webmap:{name}"))
    assert response.status_code == 200
    assert "空间分析" in response.content.decode()


@pytest.mark.django_db
def test_zones_page_shares_and_map(planner, fixtures_dir):
    zones.save_zones(zones.read_user_zones(fixtures_dir / "analytics" / "zones_user.geojson"))
    for number in range(3):
        make_ticket(number, category="fire_lane", location=Point(109.705, 23.955, srid=4326), h3_fine=CELL,
                    h3_coarse=h3.str_to_int(h3.cell_to_parent(h3.int_to_str(CELL), 7)))
    make_ticket(9, category="ebike_charging", location=Point(109.5, 23.8, srid=4326),
                h3_coarse=h3.str_to_int(h3.latlng_to_cell(23.8, 109.5, 7)))
    zones.assign_ticket_zones()
    html = planner.get(reverse("webmap:analytics-zones")).content.decode()
    assert '<tr data-zone="core_commercial"><td class="text">核心商圈</td><td>3</td><td>75%</td>' in html
    assert "/static/vendor/leaflet/leaflet.js" in html
    assert in_json("核心商圈,3 件工单") in html


@pytest.mark.django_db
def test_zones_page_reversed_period(planner):
    html = planner.get(reverse("webmap:analytics-zones"), {"received_from": "2024-05-01",
                                                           "received_to": "2024-04-01"}).content.decode()
    assert "开始日期晚于结束日期" in html


@pytest.mark.django_db
def test_repeats_page_escapes_address(planner):
    address = '<script>alert("x")</script>新城路8号'
    make_ticket(1, address=address, address_normalized=address, closed_at=datetime.datetime(2024, 3, 2, tzinfo=SHANGHAI))
    make_ticket(2, days=10, address=address, address_normalized=address)
    repeats.link_repeats()
    html = planner.get(reverse("webmap:analytics-repeats"), {"group_by": "department"}).content.decode()
    assert "工单 2 张,重复投诉 1 张,疑似虚假整改 1 张" in html
    assert "&lt;script&gt;alert(&quot;x&quot;)&lt;/script&gt;新城路8号" in html
    assert '<script>alert("x")' not in html
    assert "相距 30.0 米以内、同一问题类型、180 天内再次投诉为重复投诉" in html


@pytest.mark.django_db
def test_associations_page_lists_findings(planner):
    run = AssociationRun.objects.create(params={"slot": "hour_of_week", "tested": 12, "alpha": 0.05}, ticket_count=90,
                                        findings=[{"category": "fire_lane", "zone_type": "core_commercial", "slot": 57,
                                                   "slot_label": "周五 18:00–20:00", "observed": 40, "expected": 28.0,
                                                   "lift": 1.43, "p_value": 0.001, "q_value": 0.004,
                                                   "sentence": "核心商圈 周五 18:00–20:00:消防通道堵塞工单 40 件。"}])
    html = planner.get(reverse("webmap:analytics-associations"), {"run": run.pk}).content.decode()
    assert "<li>核心商圈 周五 18:00–20:00:消防通道堵塞工单 40 件。</li>" in html
    assert "<td class=\"text\">消防通道/疏散通道堵塞</td>" in html
    assert planner.get(reverse("webmap:analytics-associations"), {"run": run.pk + 1}).status_code == 404


@pytest.mark.django_db
def test_emerging_page_map(planner):
    run = EmergingRun.objects.create(params={"period": "month", "alpha": 0.1}, slice_starts=["2024-01-01"] * 5,
                                     ticket_count=20, cell_count=2, label_counts={"new_hot": 1, "no_pattern": 1})
    EmergingCell.objects.create(run=run, h3_cell=CELL, label="new_hot", ticket_count=15, hot_slices=1,
                                cold_slices=0, trend_z=1.2, trend_p=0.2)
    html = planner.get(reverse("webmap:analytics-emerging")).content.decode()
    assert "新增热点" in html
    assert h3.int_to_str(CELL) in html


@pytest.mark.django_db
def test_risk_page_shows_run_figures(planner):
    evaluation = {"split": {"train_from": "2023-04-01", "train_to": "2024-01-01", "test_from": "2024-02-01",
                            "test_to": "2024-07-01", "alerts": 20},
                  "model": {"auc": 0.91, "hit_rate_top10": 0.76, "pai_top10": 7.47, "alert_precision": 0.7},
                  "last_period": {"auc": 0.74, "hit_rate_top10": 0.68, "pai_top10": 6.7, "alert_precision": 0.59},
                  "kde": {"auc": 0.78, "hit_rate_top10": 0.59, "pai_top10": 5.8, "alert_precision": 0.46}}
    run = RiskRun.objects.create(model_version="risk-hgb-1", period="month",
                                 predicted_start=datetime.date(2024, 8, 1), evaluation=evaluation, cell_count=1)
    RiskCell.objects.create(run=run, h3_cell=CELL, probability=0.83, rank=1)
    html = planner.get(reverse("webmap:analytics-risk")).content.decode()
    assert "模型版本 risk-hgb-1" in html
    assert "自 2024-08-01 起的下一月内" in html
    assert "<td>0.910</td>" in html
    assert in_json("风险概率 83%,排名第 1") in html


@pytest.mark.django_db
def test_review_form_corrects_category(client):
    client.force_login(make_user("planner", Role.PLANNER))
    ticket = make_ticket(1, description="住户电话13812345678,楼道堆放杂物", category="other")
    version = ClassifierVersion.objects.create(version=1, algorithm="test", confidence_threshold=0.6,
                                               model_blob=b"")
    item = ReviewItem.objects.create(ticket=ticket, model=version, predicted_category="other", confidence=0.4)
    url = reverse("webmap:analytics-classification")
    html = client.get(url).content.decode()
    assert "138****5678" in html
    assert "13812345678" not in html

    response = client.post(url, {"item": item.pk, "category": "fire_lane"})
    assert response.status_code == 302
    item.refresh_from_db()
    ticket.refresh_from_db()
    assert item.status == ReviewStatus.CORRECTED
    assert item.reviewed_by == "planner"
    assert ticket.category == "fire_lane"
    assert ticket.category_source == "review"

    response = client.post(url, {"item": item.pk, "category": "fire_lane"})
    assert response.status_code == 404
    response = client.post(url, {"item": item.pk, "category": "nonsense"}, follow=True)
    assert "复核提交无效" in response.content.decode()


def test_cell_map_fits_western_longitudes():
    from webmap import analytics_maps

    cell = h3.str_to_int(h3.latlng_to_cell(37.77, -122.42, 8))
    rendered = analytics_maps.build_cell_map([(cell, "#ff0000", "<b>x</b>")], "test")
    assert "fitBounds" in rendered.script_js
    assert "[[37.7" in rendered.script_js
    assert "-122.4" in rendered.script_js.split("fitBounds")[1].split(")")[0]
    assert in_json("&lt;b&gt;x&lt;/b&gt;").replace("&", "\\u0026") in rendered.script_js
    assert "<b>x" not in rendered.script_js
