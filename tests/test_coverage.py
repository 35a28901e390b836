"""Fire stations: CSV import, isochrones on the hand-made town, coverage figures, command and page.

Station S1 sits on graph node 4 (22.6910,114.2000) of tests/data/routing/town.osm.
In 30 s it reaches 167 m along 中山路 and 西路; node 10 (22.6930,114.2020)
lies 190 m from the nearest reached street, beyond the 50 m band.
"""
from datetime import datetime
from zoneinfo import ZoneInfo

import h3
import pytest
import shapely
from django.contrib.auth.models import Group, User
from django.contrib.gis.geos import Point
from django.core.management import call_command
from django.core.management.base import CommandError

from routing.coverage import coverage_report, station_isochrones
from routing.exceptions import StationFileError
from routing.models import FireStation
from routing.network import to_projected
from routing.patrol import StopCandidate
from routing.roads import load_road_graph
from routing.stations import import_stations, read_station_rows
from spatial.models import Ticket

pytestmark = pytest.mark.django_db

SHANGHAI = ZoneInfo("Asia/Shanghai")
NODE_4 = (22.6910, 114.2000)
NODE_10 = (22.6930, 114.2020)
COVERAGE_URL = "/routing/coverage/"


@pytest.fixture(autouse=True)
def graph_cache_in_tmp(settings, tmp_path):
    settings.VAR_DIR = tmp_path / "var"


@pytest.fixture
def data_dir(fixtures_dir):
    return fixtures_dir / "routing"


@pytest.fixture
def town(data_dir):
    return load_road_graph(data_dir / "town.osm")


def contains(road_graph, polygon, lat, lng):
    x, y = to_projected(road_graph, [lat], [lng])
    return polygon.contains(shapely.Point(float(x[0]), float(y[0])))


def test_import_pair_layout(data_dir):
    result = import_stations(data_dir / "stations_pairs.csv")
    assert (result.rows, result.created, result.updated) == (2, 2, 0)
    station = FireStation.objects.get(code="西路1号")
    assert station.address == "西路1号"
    assert (station.location.y, station.location.x) == NODE_4


def test_import_column_layout_and_reimport(data_dir):
    import_stations(data_dir / "stations_columns.csv")
    result = import_stations(data_dir / "stations_columns.csv")
    assert (result.created, result.updated) == (0, 2)
    assert FireStation.objects.count() == 2
    assert FireStation.objects.get(code="S1").name == "西路消防站"


def test_import_geojson_layer(data_dir):
    result = import_stations(data_dir / "stations.geojson")
    assert (result.rows, result.created) == (2, 2)
    station = FireStation.objects.get(code="GJ-1")
    assert station.name == "西路消防站"
    assert station.address == "西路1号"
    assert (station.location.y, station.location.x) == NODE_4


def test_import_layer_without_points(tmp_path):
    path = tmp_path / "lines.geojson"
    path.write_text('{"type": "FeatureCollection", "features": [{"type": "Feature", "properties": {"code": "L"}, '
                    '"geometry": {"type": "LineString", "coordinates": [[114.2, 22.69], [114.21, 22.69]]}}]}',
                    encoding="utf-8")
    with pytest.raises(StationFileError, match="第 1 个要素不是点"):
        import_stations(path)
    assert FireStation.objects.count() == 0


def test_import_bad_row_stores_nothing(data_dir):
    with pytest.raises(StationFileError, match="第 3 行的坐标无效"):
        import_stations(data_dir / "stations_bad.csv")
    assert FireStation.objects.count() == 0


def test_import_duplicate_code(tmp_path):
    path = tmp_path / "dup.csv"
    path.write_text("code,lat,lng\nA,22.69,114.2\nA,22.70,114.2\n", encoding="utf-8")
    with pytest.raises(StationFileError, match="第 3 行与第 2 行的站点编号"):
        read_station_rows(path)


def test_import_without_coordinates(tmp_path):
    path = tmp_path / "nocoords.csv"
    path.write_text("code,address\nA,西路1号\n", encoding="utf-8")
    with pytest.raises(StationFileError, match="缺少坐标列"):
        read_station_rows(path)


def test_import_out_of_range(tmp_path):
    path = tmp_path / "range.csv"
    path.write_text("code,lat,lng\nA,95,114.2\n", encoding="utf-8")
    with pytest.raises(StationFileError, match="第 2 行的坐标超出范围"):
        read_station_rows(path)


def test_import_gbk_rejected(tmp_path):
    path = tmp_path / "gbk.csv"
    path.write_bytes("code,address,lat,lng\nA,西路,22.69,114.2\n".encode("gbk"))
    with pytest.raises(StationFileError, match="不是 UTF-8 编码"):
        read_station_rows(path)


def test_import_command(data_dir, capsys):
    call_command("import_stations", str(data_dir / "stations_pairs.csv"))
    assert "读取消防站 2 个:新建 2 个,更新 0 个。" in capsys.readouterr().out


def test_import_command_error(tmp_path):
    with pytest.raises(CommandError, match="不存在"):
        call_command("import_stations", str(tmp_path / "absent.csv"))


def test_isochrone_half_minute(town, data_dir):
    import_stations(data_dir / "stations_pairs.csv")
    reaches = station_isochrones(town, list(FireStation.objects.order_by("code")), minutes=0.5, buffer_m=50)
    by_code = {reach.station.code: reach for reach in reaches}
    west = by_code["西路1号"]
    assert west.snap_distance_m == pytest.approx(0.0, abs=0.5)
    assert contains(town, west.polygon, *NODE_4)
    # 120 m east along 中山路 is reached, node 10 is not.
    assert contains(town, west.polygon, 22.6910, 114.2012)
    assert not contains(town, west.polygon, *NODE_10)
    outside = by_code["城外站"]
    assert outside.polygon is None
    assert "超过 150 米" in outside.reason


def test_isochrone_grows_with_time(town, data_dir):
    import_stations(data_dir / "stations_pairs.csv")
    station = FireStation.objects.get(code="西路1号")
    small, = station_isochrones(town, [station], minutes=0.5, buffer_m=50)
    large, = station_isochrones(town, [station], minutes=5, buffer_m=50)
    assert large.area_km2 > small.area_km2
    assert contains(town, large.polygon, *NODE_10)


def make_ticket(number, lat, lng):
    return Ticket.objects.create(source_system="test", external_id=number,
                                 received_at=datetime(2026, 11, 1, 9, 0, tzinfo=SHANGHAI),
                                 location=Point(lng, lat, srid=4326),
                                 h3_fine=h3.str_to_int(h3.latlng_to_cell(lat, lng, 9)))


def risk_at_nodes(area, on_date, limit):
    return [StopCandidate(kind="cell", key="node-4", lat=NODE_4[0], lng=NODE_4[1], value=3.0),
            StopCandidate(kind="cell", key="node-10", lat=NODE_10[0], lng=NODE_10[1], value=2.0)]


def test_coverage_report_half_minute(town, data_dir, settings):
    settings.FIREGRID_PATROL_CELL_VALUE = "tests.test_coverage.risk_at_nodes"
    import_stations(data_dir / "stations_pairs.csv")
    near = make_ticket("1", *NODE_4)
    far = make_ticket("2", *NODE_10)
    make_ticket("3", 22.80, 114.30)  # outside the network's extent: not judged
    report = coverage_report(town, list(FireStation.objects.all()), minutes=0.5)
    assert report.tickets_inside == 1
    assert [pk for pk, *_rest in report.tickets_outside] == [far.pk]
    assert report.high_risk_total == 2
    assert [candidate.key for candidate in report.high_risk_unreachable] == ["node-10"]
    assert len(report.cells_inside) + len(report.cells_outside) == len({h3.int_to_str(near.h3_fine),
                                                                        h3.int_to_str(far.h3_fine)})
    assert 0 < report.covered_km2 < report.extent_km2 + 0.2


def test_coverage_without_reachable_station(town, settings):
    settings.FIREGRID_PATROL_CELL_VALUE = "tests.test_coverage.risk_at_nodes"
    station = FireStation.objects.create(code="far", location=Point(114.30, 22.80, srid=4326))
    make_ticket("1", *NODE_4)
    report = coverage_report(town, [station], minutes=5)
    assert report.covered_km2 == 0
    assert report.tickets_inside == 0
    assert len(report.tickets_outside) == 1
    assert len(report.cells_outside) == 1
    assert len(report.high_risk_unreachable) == 2


def test_station_coverage_command(data_dir, capsys):
    import_stations(data_dir / "stations_pairs.csv")
    call_command("station_coverage", "--roads", str(data_dir / "town.osm"), "--minutes", "0.5")
    output = capsys.readouterr().out
    assert "西路1号:0.5 分钟可达" in output
    assert "路网外或无法到达的消防站 1 个。" in output


def make_user(username, *roles):
    user = User.objects.create_user(username=username, password="firegrid-test-pw")
    for role in roles:
        user.groups.add(Group.objects.get(name=role))
    return user


@pytest.fixture
def town_network(settings, data_dir):
    settings.FIREGRID_ROAD_FILE = str(data_dir / "town.osm")


def test_coverage_page_for_planner(client, data_dir, town_network):
    import_stations(data_dir / "stations_columns.csv")
    make_ticket("2", *NODE_10)
    client.force_login(make_user("planner", "planner"))
    response = client.get(COVERAGE_URL, {"minutes": "0.5"})
    html = response.content.decode()
    assert response.status_code == 200
    assert 'id="station-table"' in html
    assert "西路消防站" in html
    assert "&lt;b&gt;东站&lt;/b&gt;" in html
    assert "<b>东站</b>" not in html
    # Station S2 on node 9 reaches node 10 in 20 s.
    assert "工单在圈外 0 / 1 件" in html
    assert 'id="routing-map-data"' in html


def test_coverage_page_rejects_grid_head(client, town_network):
    client.force_login(make_user("head", "grid_head"))
    assert client.get(COVERAGE_URL).status_code == 403


def test_coverage_page_without_stations(client, town_network):
    client.force_login(make_user("planner", "planner"))
    html = client.get(COVERAGE_URL).content.decode()
    assert "尚未导入消防站" in html


def test_coverage_page_bad_minutes(client, town_network, data_dir):
    import_stations(data_dir / "stations_columns.csv")
    client.force_login(make_user("planner", "planner"))
    html = client.get(COVERAGE_URL, {"minutes": "0"}).content.decode()
    assert 'id="station-table"' not in html
    assert "has-error" in html
