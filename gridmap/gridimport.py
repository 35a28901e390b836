"""Import responsibility-grid layers from GeoJSON, GeoPackage or Shapefile.

Each feature becomes one ``GridUnit`` of the given level, keyed by its code
(an existing unit with the same code is updated). Polygons are checked one
by one: invalid ones are repaired with ``shapely.make_valid`` and reported,
features without a usable polygon are rejected with their id and reason,
and the rest is written in one transaction. GCJ-02 input (Amap and DataV
boundaries) is converted to WGS84 vertex by vertex on the way in.

A unit's parent is the unit one level up named by ``parent_field``, or else
the unit one level up that contains the feature's representative point.
Children that stick out of their parent by more than
``OUTSIDE_PARENT_TOLERANCE`` of their area are flagged and reported.
"""
import json
import logging
from dataclasses import dataclass, field
from pathlib import Path

import geopandas as gpd
import numpy as np
import prcoords
import shapely
from django.contrib.gis.geos import GEOSGeometry
from django.db import transaction
from django.utils.translation import gettext as _
from shapely.geometry import MultiPolygon, Polygon

from gridmap.exceptions import GridImportError
from gridmap.models import GridLevel, GridUnit

logger = logging.getLogger(__name__)

# Property names tried, in order, when the caller names no field.
CODE_FIELDS = ("code", "adcode", "buildingId", "communityId", "id", "ID", "CODE", "编码", "网格编码")
NAME_FIELDS = ("name", "buildingName", "communityName", "NAME", "名称", "网格名称")
PARENT_FIELDS = {GridLevel.BUILDING: ("communityId", "parent_code", "parent"),
                 GridLevel.COMMUNITY: ("parent_code", "parent", "countyCode")}
# Share of a child's area allowed outside its parent before it is reported
# (digitised boundaries of neighbouring layers rarely match exactly).
OUTSIDE_PARENT_TOLERANCE = 0.01
SUPPORTED_SUFFIXES = {".geojson", ".json", ".gpkg", ".shp", ".zip"}


@dataclass
class GridImportReport:
    """What an import did, feature by feature where something was wrong."""

    path: str
    level: int
    read: int = 0
    created: int = 0
    updated: int = 0
    repaired: list = field(default_factory=list)       # (feature id, reason)
    rejected: list = field(default_factory=list)       # (feature id, reason)
    outside_parent: list = field(default_factory=list)  # (code, parent code or "")


def read_layer(path):
    """Read a vector file into a GeoDataFrame; bare JSON arrays of Features are accepted too."""
    path = Path(path)
    if not path.is_file():
        raise GridImportError(_("找不到文件 %(path)s,请检查路径。") % {"path": path})
    if path.suffix.lower() not in SUPPORTED_SUFFIXES:
        raise GridImportError(_("文件 %(path)s 的格式不受支持;请使用 GeoJSON、GeoPackage 或 Shapefile。")
                              % {"path": path})
    if path.suffix.lower() in {".json", ".geojson"}:
        try:
            content = json.loads(path.read_text(encoding="utf-8-sig"))
        except (UnicodeDecodeError, json.JSONDecodeError) as error:
            raise GridImportError(_("文件 %(path)s 不是有效的 UTF-8 GeoJSON:%(error)s") % {
                "path": path, "error": error}) from error
        features = content if isinstance(content, list) else content.get("features") if isinstance(
            content, dict) else None
        if features is None:
            raise GridImportError(_("文件 %(path)s 中没有 features 要素列表。") % {"path": path})
        return _frame_from_features(features, path)
    try:
        return gpd.read_file(path)
    except Exception as error:  # pyogrio raises several types for unreadable files
        raise GridImportError(_("无法读取文件 %(path)s:%(error)s") % {"path": path, "error": error}) from error


def _frame_from_features(features, path):
    rows, geometries = [], []
    for index, feature in enumerate(features):
        properties = dict((feature or {}).get("properties") or {})
        properties["_feature_index"] = index
        if "id" in (feature or {}) and "id" not in properties:
            properties["id"] = feature["id"]
        try:
            geometry = shapely.geometry.shape(feature["geometry"]) if feature.get("geometry") else None
        except Exception as error:  # shapely raises several types for malformed coordinates
            logger.warning("feature %s of %s has an unreadable geometry: %s", index, path, error)
            properties["_geometry_error"] = str(error)
            geometry = None
        rows.append(properties)
        geometries.append(geometry)
    return gpd.GeoDataFrame(rows, geometry=geometries, crs="EPSG:4326")


def gcj02_to_wgs84(geometry):
    """Return ``geometry`` with every vertex moved from GCJ-02 to WGS84 (about 1e-9 degrees precise)."""
    def convert(coords):
        out = np.empty_like(coords)
        for row, (lng, lat) in enumerate(coords):
            moved = prcoords.gcj_wgs_bored(prcoords.Coords(lat, lng), check_china=False)
            out[row] = (moved.lon, moved.lat)
        return out
    return shapely.transform(geometry, convert)


def _pick_field(columns, wanted, candidates):
    if wanted:
        if wanted not in columns:
            raise GridImportError(_("图层中没有字段 %(field)s;可用字段:%(columns)s") % {
                "field": wanted, "columns": "、".join(map(str, columns))})
        return wanted
    return next((name for name in candidates if name in columns), None)


def _as_multipolygon(geometry):
    """Return (MultiPolygon or None, repair reason or None, reject reason or None)."""
    if geometry is None or geometry.is_empty:
        return None, None, _("没有几何图形")
    if geometry.geom_type not in {"Polygon", "MultiPolygon"}:
        return None, None, _("几何类型为 %(type)s,应为面") % {"type": geometry.geom_type}
    reason = None
    if not geometry.is_valid:
        reason = shapely.is_valid_reason(geometry)
        geometry = shapely.make_valid(geometry)
        polygons = [part for part in getattr(geometry, "geoms", [geometry]) if isinstance(part, (Polygon,
                                                                                                 MultiPolygon))]
        geometry = shapely.union_all(polygons) if polygons else None
        if geometry is None or geometry.is_empty or geometry.area == 0:
            return None, None, _("面无效且无法修复:%(reason)s") % {"reason": reason}
    if isinstance(geometry, Polygon):
        geometry = MultiPolygon([geometry])
    return geometry, reason, None


def import_grid(path, level, *, crs="wgs84", code_field=None, name_field=None, parent_field=None):
    """Import one layer as grid units of ``level``; return a GridImportReport.

    Parameters
    ----------
    path : str or Path
        GeoJSON (also a bare JSON array of Features), GeoPackage or Shapefile.
    level : GridLevel
    crs : {"wgs84", "gcj02"}
        Datum of the coordinates when the file declares WGS84 or nothing.
        Files in another declared CRS are reprojected to WGS84 first.
    code_field, name_field, parent_field : str, optional
        Property names; by default the first of CODE_FIELDS / NAME_FIELDS /
        PARENT_FIELDS present in the layer.

    Raises GridImportError when the file cannot be read or has no code
    field; nothing is written then.
    """
    level = GridLevel(int(level))
    frame = read_layer(path)
    report = GridImportReport(path=str(path), level=int(level), read=len(frame))
    columns = [column for column in frame.columns if column != frame.geometry.name]
    code_column = _pick_field(columns, code_field, CODE_FIELDS)
    if code_column is None:
        raise GridImportError(_("文件 %(path)s 中找不到网格编码字段;请用 --code-field 指定。") % {"path": path})
    name_column = _pick_field(columns, name_field, NAME_FIELDS)
    parent_column = _pick_field(columns, parent_field, PARENT_FIELDS.get(level, ()))
    if frame.crs is not None and frame.crs.to_epsg() != 4326:
        frame = frame.to_crs(4326)

    units, seen = [], set()
    records = frame[columns].to_dict("records")
    for position, (record, geometry) in enumerate(zip(records, frame.geometry)):
        properties = {key: _jsonable(value) for key, value in record.items() if not str(key).startswith("_")}
        raw_code = properties.get(code_column)
        feature_id = str(raw_code) if raw_code not in (None, "") else _("第%(n)s个要素") % {"n": position + 1}
        if raw_code in (None, ""):
            report.rejected.append((feature_id, _("缺少编码字段 %(field)s") % {"field": code_column}))
            continue
        code = str(raw_code).strip()
        if code in seen:
            report.rejected.append((feature_id, _("编码在文件中重复")))
            continue
        if crs == "gcj02" and geometry is not None and not geometry.is_empty:
            geometry = gcj02_to_wgs84(geometry)
        geometry, repaired, rejected = _as_multipolygon(geometry)
        if rejected:
            report.rejected.append((feature_id, rejected))
            continue
        if repaired:
            report.repaired.append((feature_id, repaired))
        seen.add(code)
        name = str(properties.get(name_column) or code) if name_column else code
        parent_code = str(properties.get(parent_column) or "").strip() if parent_column else ""
        units.append((code, name[:200], geometry, parent_code, properties))

    with transaction.atomic():
        _store(units, level, str(path), report)
    logger.info("imported %s: %s read, %s created, %s updated, %s repaired, %s rejected, %s outside parent",
                path, report.read, report.created, report.updated, len(report.repaired), len(report.rejected),
                len(report.outside_parent))
    return report


def _jsonable(value):
    if value is None or isinstance(value, (str, bool, int)):
        return value
    if isinstance(value, float):
        return None if value != value else value
    if isinstance(value, (np.integer,)):
        return int(value)
    if isinstance(value, (np.floating,)):
        return None if np.isnan(value) else float(value)
    return str(value)


def _store(units, level, source, report):
    existing = {unit.code: unit for unit in GridUnit.objects.filter(code__in=[code for code, *_ in units])}
    parents = {}
    if level > GridLevel.COUNTY:
        parents = {unit.code: unit for unit in GridUnit.objects.filter(level=level - 1)}
    for code, name, geometry, parent_code, properties in units:
        geos = GEOSGeometry(memoryview(geometry.wkb), srid=4326)
        parent = parents.get(parent_code) if parent_code else None
        if level > GridLevel.COUNTY and parent is None:
            parent = (GridUnit.objects.filter(level=level - 1, geom__contains=geos.point_on_surface)
                      .order_by("pk").first())
        outside = False
        if level > GridLevel.COUNTY:
            if parent is None:
                outside = True
            else:
                outside_area = geos.difference(parent.geom).area if not parent.geom.contains(geos) else 0.0
                outside = outside_area > OUTSIDE_PARENT_TOLERANCE * geos.area
            if outside:
                report.outside_parent.append((code, parent.code if parent else ""))
        unit = existing.get(code)
        if unit is None:
            unit = GridUnit(code=code)
            report.created += 1
        else:
            if unit.level != level:
                raise GridImportError(_("编码 %(code)s 已是%(old)s,不能再作为%(new)s导入;请检查 --level。") % {
                    "code": code, "old": GridLevel(unit.level).label, "new": level.label})
            report.updated += 1
        unit.name, unit.level, unit.geom, unit.parent = name, level, geos, parent
        unit.outside_parent, unit.source, unit.properties = outside, source, properties
        unit.save()
