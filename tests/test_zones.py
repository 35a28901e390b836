"""Three-ring zones: reading user, OSM and community layers, ticket and cell zone types, shares."""
import datetime
from io import StringIO

import h3
import pytest
from django.contrib.gis.geos import Point
from django.core.management import CommandError, call_command

from spatial.analysis import zones
from spatial.models import Ticket, Zone, ZoneSource, ZoneType

SHANGHAI = datetime.timezone(datetime.timedelta(hours=8))


def make_ticket(number, lng=None, lat=None, category="fire_lane", received=datetime.datetime(2024, 3, 1, 9, 0)):
    location = Point(lng, lat, srid=4326) if lng is not None else None
    return Ticket.objects.create(
        source_system="test", external_id=str(number), received_at=received.replace(tzinfo=SHANGHAI),
        category=category, location=location,
    )


def test_parse_zone_type_code_and_label():
    assert zones.parse_zone_type("core_commercial") == ZoneType.CORE_COMMERCIAL
    assert zones.parse_zone_type("老旧小区") == ZoneType.OLD_RESIDENTIAL
    assert zones.parse_zone_type(" 工业园区 ") == ZoneType.INDUSTRIAL_PARK
    assert zones.parse_zone_type("downtown") is None
    assert zones.parse_zone_type(None) is None


def test_read_user_zones(fixtures_dir):
    loaded = zones.read_user_zones(fixtures_dir / "analytics" / "zones_user.geojson")
    assert [zone.zone_type for zone in loaded] == ["core_commercial", "old_residential", "industrial_park"]
    assert [zone.name for zone in loaded] == ["万达广场", "老城小区", "象州工业园"]
    assert loaded[0].geometry.geom_type == "MultiPolygon"
    assert loaded[0].source == ZoneSource.USER


def test_read_user_zones_bad_type_names_feature(fixtures_dir):
    with pytest.raises(zones.ZoneError) as raised:
        zones.read_user_zones(fixtures_dir / "analytics" / "zones_bad_type.geojson")
    message = str(raised.value)
    assert "第 2 个要素" in message
    assert "downtown" in message
    assert "core_commercial" in message


def test_read_user_zones_missing_field(fixtures_dir):
    with pytest.raises(zones.ZoneError, match="没有字段 “kind”"):
        zones.read_user_zones(fixtures_dir / "analytics" / "zones_user.geojson", type_field="kind")


def test_read_user_zones_default_type(fixtures_dir):
    loaded = zones.read_user_zones(fixtures_dir / "analytics" / "zones_user.geojson", type_field="kind",
                                   default_type="industrial_park")
    assert {zone.zone_type for zone in loaded} == {"industrial_park"}


def test_read_missing_file():
    with pytest.raises(zones.ZoneError, match="找不到区域文件"):
        zones.read_user_zones("/nonexistent/zones.geojson")


def test_read_osm_zones_landuse(fixtures_dir):
    loaded = zones.read_osm_zones(fixtures_dir / "analytics" / "landuse.osm")
    by_landuse = {zone.attributes["landuse"]: zone for zone in loaded}
    assert set(by_landuse) == {"retail", "industrial"}
    assert by_landuse["retail"].zone_type == ZoneType.CORE_COMMERCIAL
    assert by_landuse["retail"].name == "步行街"
    assert by_landuse["industrial"].zone_type == ZoneType.INDUSTRIAL_PARK
    assert by_landuse["retail"].geometry.extent == pytest.approx((109.70, 23.95, 109.71, 23.96))


def test_community_zone_type_rules():
    assert zones.community_zone_type({"managementStatus": "未实施物业管理"}) == ZoneType.OLD_RESIDENTIAL
    assert zones.community_zone_type({"managementStatus": "已实施物业管理"}) == ZoneType.OTHER
    assert zones.community_zone_type({"managementStatus": "已实施物业管理", "builtYear": 1995}) == \
        ZoneType.OLD_RESIDENTIAL
    assert zones.community_zone_type({"建成年代": "2001年"}) == ZoneType.OTHER
    assert zones.community_zone_type({"建成年代": "2000年"}) == ZoneType.OLD_RESIDENTIAL


def test_read_community_zones_real(shared_data):
    loaded = zones.read_community_zones(shared_data / "cn" / "nanning_nanhu" / "communities.geojson")
    assert len(loaded) == 177
    old = [zone for zone in loaded if zone.zone_type == ZoneType.OLD_RESIDENTIAL]
    assert len(old) == 86
    assert loaded[0].name == "嘉和.南湖之都"


@pytest.mark.django_db
def test_assign_ticket_zones_priority(fixtures_dir):
    zones.save_zones(zones.read_user_zones(fixtures_dir / "analytics" / "zones_user.geojson"))
    commercial_only = make_ticket(1, 109.705, 23.955)
    overlap = make_ticket(2, 109.715, 23.965)  # inside both commercial and old residential
    residential = make_ticket(3, 109.73, 23.98)
    industrial = make_ticket(4, 109.81, 24.01)
    outside = make_ticket(5, 109.5, 23.8)
    unlocated = make_ticket(6)

    assert zones.assign_ticket_zones() == 5

    zone_of = dict(Ticket.objects.values_list("pk", "zone_type"))
    assert zone_of[commercial_only.pk] == "core_commercial"
    assert zone_of[overlap.pk] == "core_commercial"
    assert zone_of[residential.pk] == "old_residential"
    assert zone_of[industrial.pk] == "industrial_park"
    assert zone_of[outside.pk] == "other"
    assert zone_of[unlocated.pk] == ""


@pytest.mark.django_db
def test_cell_zone_types(fixtures_dir):
    zones.save_zones(zones.read_user_zones(fixtures_dir / "analytics" / "zones_user.geojson"))
    inside = h3.str_to_int(h3.latlng_to_cell(24.015, 109.815, 9))
    outside = h3.str_to_int(h3.latlng_to_cell(23.5, 109.5, 9))
    assert zones.cell_zone_types([inside, outside]) == {inside: "industrial_park", outside: "other"}
    assert zones.cell_zone_types([]) == {}


@pytest.mark.django_db
def test_zone_shares_period_and_duplicates(fixtures_dir):
    zones.save_zones(zones.read_user_zones(fixtures_dir / "analytics" / "zones_user.geojson"))
    make_ticket(1, 109.705, 23.955, "fire_lane")
    make_ticket(2, 109.705, 23.955, "fire_lane")
    make_ticket(3, 109.705, 23.955, "facility_fault")
    make_ticket(4, 109.73, 23.98, "ebike_charging")
    make_ticket(5, 109.5, 23.8, "other", received=datetime.datetime(2024, 5, 1, 9, 0))
    duplicate = make_ticket(6, 109.705, 23.955, "fire_lane")
    duplicate.duplicate_of = Ticket.objects.get(external_id="1")
    duplicate.save()
    make_ticket(7)
    zones.assign_ticket_zones()

    table = zones.zone_shares()
    assert table.total == 5
    assert table.unzoned == 1
    assert table.zone_totals == {"core_commercial": 3, "old_residential": 1, "other": 1}
    assert table.zone_share("core_commercial") == pytest.approx(0.6)
    assert table.category_share_in_zone("core_commercial", "fire_lane") == pytest.approx(2 / 3)

    march = zones.zone_shares(received_from="2024-03-01", received_to="2024-03-31")
    assert march.total == 4
    assert march.zone_totals.get("other") is None

    rows = list(table.rows())
    assert [row["zone_type"] for row in rows] == ["core_commercial", "old_residential", "industrial_park", "other"]
    assert rows[2]["count"] == 0


@pytest.mark.django_db
def test_load_zones_command(fixtures_dir):
    make_ticket(1, 109.81, 24.01)
    out = StringIO()
    call_command("load_zones", str(fixtures_dir / "analytics" / "landuse.osm"), "--source", "osm", stdout=out)
    text = out.getvalue()
    assert "已载入 2 个区域" in text
    assert "已为 1 张有位置的工单标注圈层类型" in text
    assert Ticket.objects.get().zone_type == "industrial_park"

    call_command("load_zones", str(fixtures_dir / "analytics" / "landuse.osm"), "--source", "osm", "--replace",
                 stdout=StringIO())
    assert Zone.objects.count() == 2


@pytest.mark.django_db
def test_load_zones_command_bad_file_keeps_zones(fixtures_dir):
    call_command("load_zones", str(fixtures_dir / "analytics" / "zones_user.geojson"), stdout=StringIO())
    with pytest.raises(CommandError, match="downtown"):
        call_command("load_zones", str(fixtures_dir / "analytics" / "zones_bad_type.geojson"), stdout=StringIO())
    assert Zone.objects.count() == 3
