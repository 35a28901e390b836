"""The three rings (三圈层): zone polygons, the zone type of tickets and H3 cells, and ticket shares.

Zones come from three kinds of source:

* user polygons (GeoJSON, GeoPackage or shapefile) whose attribute names the
  zone type by code (``core_commercial``) or Chinese label (``核心商圈``);
* OpenStreetMap land use in an .osm or .pbf file: ``commercial`` and
  ``retail`` become core commercial, ``residential`` old residential and
  ``industrial`` industrial park;
* a community layer with a management status or a construction year: a
  community without property management (未实施物业管理), or one built
  before 2001, is an old residential quarter, any other community is "other".
  The year follows the national renovation programme for old urban
  residential quarters, which covers quarters built before the end of 2000.

Where zones overlap, the type ranked first in ``ZONE_PRIORITY`` wins, so a
shopping street inside a residential land-use polygon stays commercial. A
located ticket outside every zone is "other", and a ticket without location
keeps an empty zone type.
"""
import logging
import time
from dataclasses import dataclass
from pathlib import Path

import geopandas as gpd
import h3
import osmium
from django.contrib.gis.geos import GEOSGeometry, MultiPolygon
from django.db import connection, transaction
from django.db.models import Count
from django.utils.translation import gettext as _

from spatial.analysis.periods import AnalysisParameterError, filter_received
from spatial.models import Ticket, Zone, ZoneSource, ZoneType
from spatial.taxonomy import Category

logger = logging.getLogger(__name__)

ZONE_PRIORITY = (ZoneType.CORE_COMMERCIAL, ZoneType.INDUSTRIAL_PARK, ZoneType.OLD_RESIDENTIAL, ZoneType.OTHER)

OSM_LANDUSE_ZONES = {
    "commercial": ZoneType.CORE_COMMERCIAL,
    "retail": ZoneType.CORE_COMMERCIAL,
    # NOTE: OSM does not record a residential area's age, so every
    # residential land-use polygon counts as old residential. Load a
    # community layer on top where one exists.
    "residential": ZoneType.OLD_RESIDENTIAL,
    "industrial": ZoneType.INDUSTRIAL_PARK,
}

# Community layer attributes, with the values seen in Chinese urban check-up data.
UNMANAGED_STATUSES = ("未实施物业管理", "无物业", "无物业管理", "unmanaged")
OLD_BUILT_BEFORE_YEAR = 2001
COMMUNITY_STATUS_FIELDS = ("managementStatus", "propertyManagement", "物业管理", "管理状态")
COMMUNITY_YEAR_FIELDS = ("builtYear", "建成年代", "建成年份", "year_built")
COMMUNITY_NAME_FIELDS = ("communityName", "name", "名称", "小区名称")


class ZoneError(ValueError):
    """A zone file or zone type cannot be used; the message names the file, feature or value."""


def parse_zone_type(value):
    """Return the ZoneType of a code or Chinese label, or None when the value is not one."""
    text = str(value).strip() if value is not None else ""
    for zone_type in ZoneType:
        if text in (zone_type.value, str(zone_type.label)):
            return zone_type
    return None


def _read_layer(path):
    path = Path(path)
    if not path.is_file():
        raise ZoneError(_("找不到区域文件 %(path)s,请检查路径。") % {"path": path})
    try:
        frame = gpd.read_file(path)
    except Exception as error:  # pyogrio raises several types for unreadable files
        raise ZoneError(
            _("无法读取区域文件 %(path)s:%(error)s。请提供 GeoJSON、GeoPackage 或 Shapefile。")
            % {"path": path, "error": error}
        ) from error
    if frame.crs is not None and frame.crs.to_epsg() != 4326:
        frame = frame.to_crs(4326)
    return frame


def _multipolygon(geometry, path, row_number):
    if geometry is None or geometry.is_empty or geometry.geom_type not in ("Polygon", "MultiPolygon"):
        kind = "empty" if geometry is None or geometry.is_empty else geometry.geom_type
        raise ZoneError(
            _("区域文件 %(path)s 第 %(row)s 个要素的几何类型为 %(kind)s,应为面(Polygon 或 MultiPolygon)。")
            % {"path": path, "row": row_number, "kind": kind}
        )
    if not geometry.is_valid:
        geometry = geometry.buffer(0)
    geos = GEOSGeometry(memoryview(geometry.wkb), srid=4326)
    if geos.geom_type == "Polygon":
        geos = MultiPolygon(geos, srid=4326)
    return geos


def _first_present(properties, names):
    for name in names:
        value = properties.get(name)
        if value is not None and str(value).strip() and str(value) != "nan":
            return name, value
    return None, None


def read_user_zones(path, type_field="zone_type", name_field="name", default_type=None):
    """Read user polygons; each feature's ``type_field`` names its zone type.

    Features without a value in ``type_field`` get ``default_type``; without
    one, and for unknown values, ZoneError names the feature and the allowed
    values. Returns unsaved Zone objects.
    """
    frame = _read_layer(path)
    default = parse_zone_type(default_type) if default_type is not None else None
    if default_type is not None and default is None:
        raise ZoneError(_("默认圈层类型 “%(value)s” 无效,可选 %(allowed)s。")
                        % {"value": default_type, "allowed": ", ".join(ZoneType.values)})
    if type_field not in frame.columns and default is None:
        raise ZoneError(
            _("区域文件 %(path)s 没有字段 “%(field)s”。请用 --type-field 指明圈层类型字段,或用 --zone-type 给出统一类型。")
            % {"path": path, "field": type_field}
        )
    zones = []
    for row_number, row in enumerate(frame.itertuples(index=False), start=1):
        properties = row._asdict()
        raw_type = properties.get(type_field)
        zone_type = parse_zone_type(raw_type) if raw_type is not None and str(raw_type) != "nan" else default
        if zone_type is None:
            raise ZoneError(
                _("区域文件 %(path)s 第 %(row)s 个要素的圈层类型 “%(value)s” 无效,可选 %(allowed)s。")
                % {"path": path, "row": row_number, "value": raw_type,
                   "allowed": ", ".join(f"{t.value}({t.label})" for t in ZoneType)}
            )
        zones.append(Zone(
            name=str(properties.get(name_field) or "")[:200],
            zone_type=zone_type,
            source=ZoneSource.USER,
            source_file=Path(path).name,
            attributes={type_field: str(raw_type)} if raw_type is not None else {},
            geometry=_multipolygon(row.geometry, path, row_number),
        ))
    return zones


def read_osm_zones(path):
    """Read closed ways and multipolygon relations tagged with a zone land use from an .osm or .pbf file."""
    path = Path(path)
    if not path.is_file():
        raise ZoneError(_("找不到 OSM 文件 %(path)s,请检查路径。") % {"path": path})
    if not path.name.endswith((".osm", ".pbf", ".osm.bz2", ".osm.gz")):
        raise ZoneError(_("OSM 文件 %(path)s 的扩展名应为 .osm 或 .pbf。") % {"path": path})
    factory = osmium.geom.WKBFactory()
    zones = []
    try:
        processor = osmium.FileProcessor(str(path)).with_areas().with_filter(osmium.filter.KeyFilter("landuse"))
        for area in processor:
            if not area.is_area():
                continue
            landuse = area.tags.get("landuse")
            zone_type = OSM_LANDUSE_ZONES.get(landuse)
            if zone_type is None:
                continue
            try:
                wkb = factory.create_multipolygon(area)
            except RuntimeError as error:  # broken rings in the source data
                logger.warning("Skipped OSM area %s of %s: %s", area.orig_id(), path, error)
                continue
            geos = GEOSGeometry(memoryview(bytes.fromhex(wkb)), srid=4326)
            if not geos.valid:
                geos = geos.buffer(0)
            if geos.geom_type == "Polygon":
                geos = MultiPolygon(geos, srid=4326)
            zones.append(Zone(
                name=(area.tags.get("name") or "")[:200],
                zone_type=zone_type,
                source=ZoneSource.OSM,
                source_file=path.name,
                attributes={"landuse": landuse, "osm_id": area.orig_id(),
                            "osm_type": "way" if area.from_way() else "relation"},
                geometry=geos,
            ))
    except RuntimeError as error:
        raise ZoneError(_("无法读取 OSM 文件 %(path)s:%(error)s。") % {"path": path, "error": error}) from error
    return zones


def community_zone_type(properties):
    """Return the zone type of one community from its management status or construction year."""
    _field, status = _first_present(properties, COMMUNITY_STATUS_FIELDS)
    if status is not None and str(status).strip() in UNMANAGED_STATUSES:
        return ZoneType.OLD_RESIDENTIAL
    _field, year = _first_present(properties, COMMUNITY_YEAR_FIELDS)
    if year is not None:
        try:
            if int(str(year).strip()[:4]) < OLD_BUILT_BEFORE_YEAR:
                return ZoneType.OLD_RESIDENTIAL
        except ValueError:
            pass
    return ZoneType.OTHER


def read_community_zones(path):
    """Read a community layer; communities without property management or built before 2001 are old residential."""
    frame = _read_layer(path)
    known = set(COMMUNITY_STATUS_FIELDS) | set(COMMUNITY_YEAR_FIELDS)
    if not known & set(frame.columns):
        raise ZoneError(
            _("社区图层 %(path)s 既没有物业管理状态字段(%(status)s),也没有建成年代字段(%(year)s)。")
            % {"path": path, "status": "、".join(COMMUNITY_STATUS_FIELDS), "year": "、".join(COMMUNITY_YEAR_FIELDS)}
        )
    zones = []
    for row_number, row in enumerate(frame.itertuples(index=False), start=1):
        properties = row._asdict()
        _field, name = _first_present(properties, COMMUNITY_NAME_FIELDS)
        decided_by = {key: str(properties[key]) for key in known if key in properties}
        zones.append(Zone(
            name=str(name or "")[:200],
            zone_type=community_zone_type(properties),
            source=ZoneSource.COMMUNITY,
            source_file=Path(path).name,
            attributes=decided_by,
            geometry=_multipolygon(row.geometry, path, row_number),
        ))
    return zones


def read_zones(path, source, **options):
    """Read zones of a source kind ("user", "osm" or "community") from a file."""
    readers = {ZoneSource.USER: read_user_zones, ZoneSource.OSM: read_osm_zones,
               ZoneSource.COMMUNITY: read_community_zones}
    if source not in readers:
        raise ZoneError(_("区域来源 “%(value)s” 无效,可选 %(allowed)s。")
                        % {"value": source, "allowed": ", ".join(ZoneSource.values)})
    if source != ZoneSource.USER and options:
        raise ZoneError(_("--type-field、--name-field 和 --zone-type 只适用于用户绘制的区域。"))
    return readers[source](path, **options)


def save_zones(zones, replace_source=False):
    """Store zones in one transaction; with ``replace_source`` the zones of the same source and file go first."""
    with transaction.atomic():
        if replace_source and zones:
            Zone.objects.filter(source=zones[0].source, source_file=zones[0].source_file).delete()
        Zone.objects.bulk_create(zones, batch_size=1000)
    return len(zones)


def _priority_sql():
    cases = " ".join(f"WHEN '{zone_type.value}' THEN {rank}" for rank, zone_type in enumerate(ZONE_PRIORITY))
    return f"CASE z.zone_type {cases} END"


def assign_ticket_zones():
    """Set every ticket's zone type from the zones containing its location, in one UPDATE.

    Returns the number of located tickets updated. Tickets without a
    location get an empty zone type.
    """
    started = time.perf_counter()
    # Raw SQL because the ORM cannot express a lateral "first zone by
    # priority" join; the CASE is built from the ZoneType values only.
    sql = f"""
        UPDATE spatial_ticket t
        SET zone_type = COALESCE((
            SELECT z.zone_type FROM spatial_zone z
            WHERE ST_Intersects(z.geometry, t.location)
            ORDER BY {_priority_sql()} LIMIT 1
        ), %s)
        WHERE t.location IS NOT NULL
    """
    with transaction.atomic(), connection.cursor() as cursor:
        cursor.execute(sql, [ZoneType.OTHER.value])
        updated = cursor.rowcount
        cursor.execute("UPDATE spatial_ticket SET zone_type = '' WHERE location IS NULL AND zone_type <> ''")
    logger.info("Assigned zone types to %d tickets in %.1f s", updated, time.perf_counter() - started)
    return updated


def cell_zone_types(cells):
    """Return {cell: zone type} for H3 cells (int ids), taken at each cell's centre point."""
    cells = [int(cell) for cell in cells]
    if not cells:
        return {}
    lats, lngs = [], []
    for cell in cells:
        lat, lng = h3.cell_to_latlng(h3.int_to_str(cell))
        lats.append(lat)
        lngs.append(lng)
    sql = f"""
        SELECT c.cell, (
            SELECT z.zone_type FROM spatial_zone z
            WHERE ST_Intersects(z.geometry, ST_SetSRID(ST_MakePoint(c.lng, c.lat), 4326))
            ORDER BY {_priority_sql()} LIMIT 1
        )
        FROM unnest(%s::bigint[], %s::float8[], %s::float8[]) AS c(cell, lng, lat)
    """
    with connection.cursor() as cursor:
        cursor.execute(sql, [cells, lngs, lats])
        return {cell: zone_type or ZoneType.OTHER.value for cell, zone_type in cursor.fetchall()}


@dataclass
class ShareTable:
    """Ticket counts by zone type and category with the shares planners quote.

    ``counts[zone][category]`` are ticket counts; ``zone_totals`` and
    ``category_totals`` the margins; ``unzoned`` the tickets without a zone
    type (no location, or zones never assigned), left out of the shares.
    """

    counts: dict
    zone_totals: dict
    category_totals: dict
    total: int
    unzoned: int

    def zone_share(self, zone_type):
        """Share of all zoned tickets in ``zone_type``, 0..1."""
        return self.zone_totals.get(zone_type, 0) / self.total if self.total else 0.0

    def category_share_in_zone(self, zone_type, category):
        """Share of ``category`` among the tickets of ``zone_type``, 0..1."""
        zone_total = self.zone_totals.get(zone_type, 0)
        return self.counts.get(zone_type, {}).get(category, 0) / zone_total if zone_total else 0.0

    def rows(self):
        """Yield one dict per zone type in ZoneType order, with counts and shares per category."""
        for zone_type in ZoneType:
            yield {
                "zone_type": zone_type.value,
                "label": str(zone_type.label),
                "count": self.zone_totals.get(zone_type.value, 0),
                "share": self.zone_share(zone_type.value),
                "categories": [
                    {"category": category.value, "label": str(category.label),
                     "count": self.counts.get(zone_type.value, {}).get(category.value, 0),
                     "share": self.category_share_in_zone(zone_type.value, category.value)}
                    for category in Category
                ],
            }


def zone_shares(received_from=None, received_to=None, exclude_duplicates=True):
    """Count tickets by zone type and category for a received period (dates, both ends included).

    Duplicates (the same hazard registered again within hours) count once
    unless ``exclude_duplicates`` is false.
    """
    tickets = filter_received(Ticket.objects.all(), received_from, received_to)
    if exclude_duplicates:
        tickets = tickets.filter(duplicate_of__isnull=True)
    rows = tickets.values("zone_type", "category").annotate(n=Count("pk")).order_by()
    counts, zone_totals, category_totals = {}, {}, {}
    total = unzoned = 0
    for row in rows:
        if not row["zone_type"]:
            unzoned += row["n"]
            continue
        counts.setdefault(row["zone_type"], {})[row["category"]] = row["n"]
        zone_totals[row["zone_type"]] = zone_totals.get(row["zone_type"], 0) + row["n"]
        category_totals[row["category"]] = category_totals.get(row["category"], 0) + row["n"]
        total += row["n"]
    return ShareTable(counts, zone_totals, category_totals, total, unzoned)


def zone_cell_counts(resolution_column="h3_coarse", received_from=None, received_to=None):
    """Return {cell: (zone type of most tickets, ticket count)} for the map of shares."""
    if resolution_column not in ("h3_fine", "h3_coarse"):
        raise AnalysisParameterError(_("H3 列 “%(value)s” 无效。") % {"value": resolution_column})
    tickets = filter_received(Ticket.objects.all(), received_from, received_to)
    rows = (tickets.filter(duplicate_of__isnull=True, **{f"{resolution_column}__isnull": False})
            .exclude(zone_type="")
            .values(resolution_column, "zone_type").annotate(n=Count("pk")).order_by())
    cells = {}
    for row in rows:
        cell = row[resolution_column]
        best_type, best_count, total = cells.get(cell, (None, 0, 0))
        if row["n"] > best_count:
            best_type, best_count = row["zone_type"], row["n"]
        cells[cell] = (best_type, best_count, total + row["n"])
    return {cell: (zone_type, total) for cell, (zone_type, _best, total) in cells.items()}
