"""Grid import (formats, GCJ-02, repairs, rejects, parents) and set-based placement."""
import geopandas as gpd
import prcoords
import pytest
from django.core.management import CommandError, call_command
from django.db import connection
from pyproj import Geod

from gridmap.dispatch import place_tickets, units_for_head
from gridmap.exceptions import GridImportError
from gridmap.gridimport import import_grid, read_layer
from gridmap.models import GridLevel, GridPlacement, GridUnit
from tests.test_gridmap_support import FIXTURES, build_grid, make_ticket, make_user
from tests.test_gridmap_support import gridmap_seed  # noqa: F401 (fixture)

pytestmark = [pytest.mark.django_db, pytest.mark.usefixtures("gridmap_seed")]


def test_import_reports_problem_features():
    import_grid(FIXTURES / "county.geojson", GridLevel.COUNTY)
    report = import_grid(FIXTURES / "communities.geojson", GridLevel.COMMUNITY)
    assert (report.read, report.created, report.updated) == (7, 4, 0)
    assert [feature for feature, _reason in report.repaired] == ["BOW"]
    assert "Self-intersection" in report.repaired[0][1]
    assert report.rejected == [("NOGEOM", "没有几何图形"), ("PT", "几何类型为 Point,应为面"), ("A", "编码在文件中重复")]
    assert report.outside_parent == [("OUT", "")]
    units = {unit.code: unit for unit in GridUnit.objects.filter(level=GridLevel.COMMUNITY)}
    assert set(units) == {"A", "B", "OUT", "BOW"}
    assert units["A"].parent.code == "C1"
    assert units["A"].name == "东社区"
    assert units["OUT"].parent is None
    assert units["OUT"].outside_parent
    assert units["BOW"].geom.valid
    assert units["BOW"].geom.num_geom == 2
    assert units["BOW"].geom.area == pytest.approx(0.005, abs=1e-12)


def test_building_parents_and_reimport():
    units = build_grid()
    assert units["A-1"].parent.code == "A"
    assert units["B-1"].parent.code == "B"  # "未匹配" is no unit, so the position decides
    report = import_grid(FIXTURES / "buildings.geojson", GridLevel.BUILDING)
    assert (report.created, report.updated) == (0, 2)
    assert GridUnit.objects.count() == 7


def test_geopackage_and_shapefile_give_the_same_units(tmp_path):
    frame = gpd.read_file(FIXTURES / "county.geojson")
    frame.to_file(tmp_path / "county.gpkg", driver="GPKG")
    frame.to_crs(3857).to_file(tmp_path / "county.shp")
    report = import_grid(tmp_path / "county.gpkg", GridLevel.COUNTY)
    assert report.created == 1
    area_gpkg = GridUnit.objects.get(code="C1").geom.area
    report = import_grid(tmp_path / "county.shp", GridLevel.COUNTY)
    assert report.updated == 1
    # The Shapefile is in Web Mercator and comes back to WGS84.
    assert GridUnit.objects.get(code="C1").geom.area == pytest.approx(area_gpkg, rel=1e-9)
    assert area_gpkg == pytest.approx(0.04, rel=1e-12)


def test_import_rejects_clash_and_bad_files(tmp_path):
    """A level clash and bad files are rejected without writing anything."""
    import_grid(FIXTURES / "county.geojson", GridLevel.COUNTY)
    with pytest.raises(GridImportError, match="编码 C1 已是县级大网格"):
        import_grid(FIXTURES / "county.geojson", GridLevel.COMMUNITY)
    bad = tmp_path / "bad.geojson"
    bad.write_text("{not json", encoding="utf-8")
    with pytest.raises(GridImportError, match="不是有效的 UTF-8 GeoJSON"):
        import_grid(bad, GridLevel.COUNTY)
    (tmp_path / "x.csv").write_text("code,name\n", encoding="utf-8")
    with pytest.raises(GridImportError, match="格式不受支持"):
        import_grid(tmp_path / "x.csv", GridLevel.COUNTY)
    with pytest.raises(GridImportError, match="图层中没有字段 nope"):
        import_grid(FIXTURES / "county.geojson", GridLevel.COUNTY, code_field="nope")
    assert GridUnit.objects.count() == 1
    with pytest.raises(CommandError, match="找不到文件"):
        call_command("import_grid", str(tmp_path / "missing.geojson"), "--level", "county")


def test_import_grid_command_prints_the_report(capsys):
    call_command("import_grid", str(FIXTURES / "county.geojson"), "--level", "county")
    call_command("import_grid", str(FIXTURES / "communities.geojson"), "--level", "community")
    out = capsys.readouterr().out
    assert "读取 7,新建 4,更新 0,修复 1,拒绝 3,超出上级网格 1" in out
    assert "已拒绝 PT:几何类型为 Point,应为面" in out
    assert "超出上级网格 OUT(上级:无)" in out


@pytest.mark.parametrize("per_unit_from", [20_000, 1])
def test_placement_set_based_statements(per_unit_from, monkeypatch):
    """Placement covers contained, nearest and county cases in set-based statements."""
    # Both strategies (a grid probe per ticket, a point probe per unit) must agree.
    monkeypatch.setattr("gridmap.dispatch.PER_UNIT_MIN_TICKETS", per_unit_from)
    units = build_grid()
    in_building = make_ticket("T1", lng=109.615, lat=23.915)
    in_community = make_ticket("T2", lng=109.65, lat=23.95)
    near_edge = make_ticket("T3", lng=109.801, lat=23.95)
    far_away = make_ticket("T4", lng=109.95, lat=23.95)
    no_location = make_ticket("T5")
    from django.test.utils import CaptureQueriesContext
    with CaptureQueriesContext(connection) as queries:
        counts = place_tickets(max_distance_m=200)
    assert counts == {"contained": 2, "nearest": 1, "county": 1}
    inserts = [q for q in queries.captured_queries if "INSERT INTO gridmap_gridplacement" in q["sql"]]
    assert len(inserts) == 3
    assert len(queries.captured_queries) <= 12  # whatever the number of tickets
    placed = {p.ticket_id: p for p in GridPlacement.objects.all()}
    assert placed[in_building.pk].unit == units["A-1"]
    assert placed[in_building.pk].method == "contained"
    assert placed[in_community.pk].unit == units["A"]
    assert no_location.pk not in placed
    geod = Geod(ellps="WGS84")
    _az, _back, expected_m = geod.inv(109.801, 23.95, 109.80, 23.95)
    assert placed[near_edge.pk].unit == units["B"]  # B and C1 are equally near; the smaller unit wins
    assert placed[near_edge.pk].method == "nearest"
    assert placed[near_edge.pk].distance_m == pytest.approx(expected_m, abs=0.5)
    assert placed[far_away.pk].unit == units["C1"]
    assert placed[far_away.pk].method == "county"
    assert placed[far_away.pk].distance_m == pytest.approx(geod.inv(109.95, 23.95, 109.80, 23.95)[2], abs=1)


def test_placement_of_selected_tickets_replaces_earlier_choice():
    build_grid()
    ticket = make_ticket("T1", lng=109.801, lat=23.95)
    assert place_tickets([ticket.pk], max_distance_m=50) == {"contained": 0, "nearest": 0, "county": 1}
    assert place_tickets([ticket.pk], max_distance_m=200) == {"contained": 0, "nearest": 1, "county": 0}
    assert GridPlacement.objects.get().method == "nearest"


def test_units_for_head_covers_their_grid_and_below():
    units = build_grid()
    head = make_user("head")
    units["A"].head = head
    units["A"].save()
    assert units_for_head(head) == {units["A"].pk, units["A-1"].pk}


def test_real_xiangzhou_boundary_in_gcj02_is_converted(shared_data):
    path = shared_data / "cn" / "boundaries_gcj02" / "451322.json"
    report = import_grid(path, GridLevel.COUNTY, crs="gcj02")
    assert (report.created, report.rejected) == (1, [])
    county = GridUnit.objects.get(code="451322")
    assert county.name == "象州县"
    raw = read_layer(path)
    raw_lng, raw_lat = raw.geometry[0].geoms[0].exterior.coords[0]
    stored_lng, stored_lat = county.geom[0][0][0]
    expected = prcoords.gcj_wgs_bored(prcoords.Coords(raw_lat, raw_lng), check_china=False)
    assert (stored_lng, stored_lat) == pytest.approx((expected.lon, expected.lat), abs=1e-12)
    # GCJ-02 moves points here by 300 to 600 m.
    assert 300 < Geod(ellps="WGS84").inv(raw_lng, raw_lat, stored_lng, stored_lat)[2] < 600
    assert county.geom.valid


def test_real_nanning_communities_and_buildings(shared_data):
    folder = shared_data / "cn" / "nanning_nanhu"
    communities = import_grid(folder / "communities.geojson", GridLevel.COMMUNITY)
    assert communities.read == 177
    assert communities.created + len(communities.rejected) == 177
    # No county is imported here, so every community is reported without a parent.
    assert len(communities.outside_parent) == communities.created
    buildings = import_grid(folder / "buildings_structure_danger.geojson", GridLevel.BUILDING)
    assert buildings.created + len(buildings.rejected) == buildings.read
    without_parent = GridUnit.objects.filter(level=GridLevel.BUILDING, parent__isnull=True).count()
    assert without_parent == len([code for code, parent in buildings.outside_parent if not parent])
    assert GridUnit.objects.filter(level=GridLevel.BUILDING, outside_parent=True).count() == len(
        buildings.outside_parent)


def test_place_tickets_command_places_and_dispatches(capsys):
    build_grid()
    make_ticket("P1", lng=109.615, lat=23.915, category="fire_lane")
    make_ticket("P2", lng=109.95, lat=23.95, category="other")
    call_command("place_tickets", "--dispatch")
    out = capsys.readouterr().out.splitlines()
    assert out == ["落在网格内 1 件,就近落格 0 件,兜底到县级网格 1 件", "已派单 1 件,转人工派单队列 1 件"]
    with pytest.raises(CommandError, match="没有编号为 999 的导入批次"):
        call_command("place_tickets", "--batch", "999")
