"""Gateway HTTP intake and the sensor map page."""
import json
from datetime import timedelta

import pytest
from django.contrib.auth.models import Group, User
from django.contrib.gis.geos import MultiPolygon, Point, Polygon
from django.urls import reverse

from gridmap.models import GridUnit
from gridmap.roles import Role
from iot.gateways import issue_key
from iot.ingest import SensorDirectory, ingest
from iot.maplayer import sensor_layer
from iot.models import DeadLetter, Reading
from tests.test_iot_support import T0, make_sensor, message, reading, series

pytestmark = pytest.mark.django_db
API = "/iot/api/readings"


def grid_unit(code, level, **fields):
    """Create a grid unit covering the test sensors' default location."""
    square = MultiPolygon(Polygon.from_bbox((109.6, 23.9, 109.7, 24.0)), srid=4326)
    return GridUnit.objects.create(code=code, name=code, level=level, geom=square, **fields)


def post(client, body, key):
    data = body if isinstance(body, bytes) else json.dumps(body)
    headers = {"HTTP_X_GATEWAY_KEY": key} if key is not None else {}
    return client.post(API, data=data, content_type="application/json", **headers)


@pytest.fixture
def gateway_key():
    _gateway, key = issue_key("gw-1", "一号网关")
    return key


def test_api_without_key_rejected(client):
    response = post(client, {"readings": []}, None)
    assert response.status_code == 401
    assert "X-Gateway-Key" in response.json()["error"]


def test_api_with_wrong_key_rejected(client, gateway_key):
    response = post(client, {"readings": []}, gateway_key + "x")
    assert response.status_code == 401


def test_api_rotated_key_rejected(client, gateway_key):
    issue_key("gw-1")
    assert post(client, {"readings": []}, gateway_key).status_code == 401


def test_api_get_not_allowed(client):
    assert client.get(API).status_code == 405


def test_api_stores_batch(client, gateway_key):
    make_sensor("HP-1", "hydrant_pressure")
    batch = {"readings": series("HP-1", T0, 60, [0.3, 0.31], "pressure_mpa") +
             [reading("HP-1", 9, T0, pressure_mpa="x")]}
    response = post(client, batch, gateway_key)
    body = response.json()
    assert response.status_code == 200
    assert body["stored"] == 2
    assert body["rejected"] == 1
    assert body["errors"] == [{"sensor": "HP-1", "reason": "values.pressure_mpa must be a finite number, got 'x'"}]
    assert DeadLetter.objects.get().channel == "http"
    assert DeadLetter.objects.get().topic == "http:gw-1"


def test_api_repeat_is_duplicate(client, gateway_key):
    make_sensor("HP-1", "hydrant_pressure")
    batch = {"readings": series("HP-1", T0, 60, [0.3], "pressure_mpa")}
    post(client, batch, gateway_key)
    body = post(client, batch, gateway_key).json()
    assert body["stored"] == 0
    assert body["duplicates"] == 1
    assert Reading.objects.count() == 1


def test_api_all_bad_is_400(client, gateway_key):
    response = post(client, b"{oops", gateway_key)
    assert response.status_code == 400
    assert response.json()["rejected"] == 1


def test_api_sensor_of_other_gateway_rejected(client, gateway_key):
    other, _key = issue_key("gw-2")
    make_sensor("HP-1", "hydrant_pressure", gateway=other)
    response = post(client, {"readings": series("HP-1", T0, 60, [0.3], "pressure_mpa")}, gateway_key)
    assert response.status_code == 400
    assert response.json()["errors"][0]["reason"] == "sensor 'HP-1' belongs to another gateway"


def test_api_smoke_opens_ticket(client, gateway_key):
    make_sensor("SD-1", "smoke_detector")
    body = post(client, {"readings": series("SD-1", T0, 10, [True], "smoke")}, gateway_key).json()
    assert len(body["tickets_opened"]) == 1
    assert body["tickets_opened"][0].startswith("SD-1/smoke/")


def make_user(username, *roles):
    user = User.objects.create_user(username, password="pw-for-tests-123")
    for role in roles:
        user.groups.add(Group.objects.get(name=role))
    return user


@pytest.mark.parametrize("role", [Role.PLANNER, Role.GRID_HEAD, Role.LEADER, Role.ADMIN])
def test_sensor_map_allowed(client, role):
    client.force_login(make_user("u", role))
    assert client.get(reverse("iot:sensor-map")).status_code == 200


def test_sensor_map_forbidden_for_handler(client):
    client.force_login(make_user("h", Role.HANDLER))
    assert client.get(reverse("iot:sensor-map")).status_code == 403
    assert client.get(reverse("iot:sensor-geojson")).status_code == 403


def test_sensor_map_anonymous_redirected(client):
    response = client.get(reverse("iot:sensor-map"))
    assert response.status_code == 302
    assert response["Location"].startswith("/accounts/login/")


def test_sensor_map_shows_status_and_escapes(client):
    grid_unit("<i>G-1</i>", level=2)
    make_sensor("SD-1", "smoke_detector", place="<script>alert(1)</script>仓库")
    make_sensor("HP-1", "hydrant_pressure")
    ingest([message(r) for r in series("SD-1", T0, 10, [True], "smoke")], SensorDirectory(),
           now=T0 + timedelta(seconds=5))
    client.force_login(make_user("p", Role.PLANNER))
    html = client.get(reverse("iot:sensor-map")).content.decode()
    assert "<script>alert(1)</script>" not in html
    assert "&lt;script&gt;alert(1)&lt;/script&gt;仓库" in html
    assert "<i>G-1</i>" not in html
    popups = [feature["properties"]["popup_html"] for feature in sensor_layer()[1]["features"]]
    assert all("&lt;i&gt;G-1&lt;/i&gt;" in popup for popup in popups)
    assert "传感器 2 个" in html
    assert "/static/vendor/leaflet/leaflet.js" in html
    assert "cdn" not in html.lower()


def test_sensor_geojson_properties(client):
    make_sensor("SD-1", "smoke_detector")
    ingest([message(r) for r in series("SD-1", T0, 10, [True], "smoke")], SensorDirectory(),
           now=T0 + timedelta(seconds=5))
    client.force_login(make_user("p", Role.LEADER))
    feature = client.get(reverse("iot:sensor-geojson")).json()["features"][0]
    assert feature["geometry"]["coordinates"] == [109.684, 23.96]
    assert feature["properties"]["code"] == "SD-1"
    assert feature["properties"]["open_alarms"][0]["kind"] == "smoke"
    assert "popup_html" not in feature["properties"]


def test_grid_head_sees_only_own_grids(client):
    head = make_user("gh", Role.GRID_HEAD)
    # Installed before any grid was imported, so it has no unit.
    make_sensor("HP-0", "hydrant_pressure")
    make_sensor("HP-9", "hydrant_pressure", location=Point(110.5, 24.5, srid=4326))
    community = grid_unit("C-1", level=2, head=head)
    building = grid_unit("B-1", level=3, parent=community)
    other = grid_unit("C-2", level=2)
    for code, unit in (("HP-1", community), ("HP-2", building), ("HP-3", other)):
        make_sensor(code, "hydrant_pressure", grid_unit=unit)
    client.force_login(head)
    features = client.get(reverse("iot:sensor-geojson")).json()["features"]
    assert sorted(f["properties"]["code"] for f in features) == ["HP-0", "HP-1", "HP-2"]


def test_sensor_placed_in_smallest_unit():
    community = grid_unit("C-1", level=2)
    building = grid_unit("B-1", level=3, parent=community)
    chosen = make_sensor("HP-1", "hydrant_pressure", grid_unit=community)
    placed = make_sensor("HP-2", "hydrant_pressure")
    outside = make_sensor("HP-3", "hydrant_pressure", location=Point(110.5, 24.5, srid=4326))
    assert chosen.grid_unit == community
    assert placed.grid_unit == building
    assert outside.grid_unit is None


def test_sensor_admin_pages_load_nothing_remote(client):
    sensor = make_sensor("HP-1", "hydrant_pressure")
    ingest([message(r) for r in series("HP-1", T0, 60, [0.35, 0.34, 0.36], "pressure_mpa")], SensorDirectory())
    client.force_login(User.objects.create_superuser("root", "root@example.com", "x"))
    change = client.get(reverse("admin:iot_sensor_change", args=[sensor.pk])).content.decode()
    delete = client.get(reverse("admin:iot_sensor_delete", args=[sensor.pk])).content.decode()
    assert "POINT (109.684 23.96)" in change
    assert "cdn." not in change
    assert "Reading object" not in delete
    assert "读数" not in delete


def test_popup_values_with_unit_and_words():
    make_sensor("HP-1", "hydrant_pressure")
    make_sensor("LR-1", "lane_radar")
    ingest([message(reading("HP-1", 1, T0, pressure_mpa=0.35)), message(reading("LR-1", 1, T0, occupied=False))],
           SensorDirectory(), now=T0)
    popups = {feature["properties"]["code"]: feature["properties"]["popup_html"]
              for feature in sensor_layer(now=T0)[1]["features"]}
    assert "pressure_mpa=0.35 MPa" in popups["HP-1"]
    assert "occupied=否" in popups["LR-1"]
