"""Import of fire stations from CSV files and point layers.

Two layouts are read. One has a location column holding "(lat, lng)" pairs,
as in San Francisco's geocoded station list, whose header row is blank or
numeric. The other has latitude and longitude columns named lat/latitude/纬度 and
lng/lon/longitude/经度. An address column (address/地址, or the first
text column) and an optional name (name/名称) and code (code/id/编号) are
read too. Re-importing a file updates the stations with the same code, which
is the address when the file has no code column. GeoJSON, GeoPackage and
Shapefile point layers are read with the same attribute names.
"""
import csv
import re
from dataclasses import dataclass, field
from pathlib import Path

from django.contrib.gis.geos import Point
from django.db import transaction
from django.utils.translation import gettext as _

from routing.exceptions import StationFileError
from routing.models import FireStation

_PAIR = re.compile(r"^\(?\s*(-?\d+(?:\.\d+)?)\s*,\s*(-?\d+(?:\.\d+)?)\s*\)?$")
LAT_NAMES = {"lat", "latitude", "纬度", "y"}
LNG_NAMES = {"lng", "lon", "long", "longitude", "经度", "x"}
ADDRESS_NAMES = {"address", "地址", "station_address"}
NAME_NAMES = {"name", "名称", "站名", "station"}
CODE_NAMES = {"code", "id", "编号", "station_id"}


@dataclass
class StationImport:
    """Counts of one station import."""

    created: int = 0
    updated: int = 0
    rows: int = 0
    codes: list = field(default_factory=list)


def _find(header, names):
    for position, column in enumerate(header):
        if column.strip().lower() in names:
            return position
    return None


def read_station_rows(path):
    """Parse a station CSV into dicts of code, name, address, lat, lng; raise StationFileError naming the row."""
    path = Path(path)
    if not path.is_file():
        raise StationFileError(_("消防站文件 %(path)s 不存在。") % {"path": path})
    try:
        with open(path, encoding="utf-8-sig", newline="") as handle:
            rows = list(csv.reader(handle))
    except UnicodeDecodeError as error:
        raise StationFileError(_("消防站文件 %(path)s 不是 UTF-8 编码(第 %(offset)d 字节):请另存为 UTF-8。")
                               % {"path": path, "offset": error.start}) from error
    if len(rows) < 2:
        raise StationFileError(_("消防站文件 %(path)s 没有数据行。") % {"path": path})

    header, body = rows[0], rows[1:]
    lat_column, lng_column = _find(header, LAT_NAMES), _find(header, LNG_NAMES)
    pair_column = None
    if lat_column is None or lng_column is None:
        first = body[0]
        pair_column = next((i for i, cell in enumerate(first) if _PAIR.match(cell.strip()) and "," in cell), None)
        if pair_column is None:
            raise StationFileError(_("消防站文件 %(path)s 缺少坐标列:需要 lat/lng(纬度/经度)两列,或一列“(纬度, 经度)”。")
                                   % {"path": path})
    address_column = _find(header, ADDRESS_NAMES)
    if address_column is None:
        used = {lat_column, lng_column, pair_column}
        address_column = next((i for i in range(len(header)) if i not in used), None)
    name_column, code_column = _find(header, NAME_NAMES), _find(header, CODE_NAMES)

    parsed = []
    for line_number, row in enumerate(body, start=2):
        if not any(cell.strip() for cell in row):
            continue

        def cell(position):
            return row[position].strip() if position is not None and position < len(row) else ""

        try:
            if pair_column is not None:
                match = _PAIR.match(cell(pair_column))
                if not match:
                    raise ValueError(cell(pair_column))
                lat, lng = float(match.group(1)), float(match.group(2))
            else:
                lat, lng = float(cell(lat_column)), float(cell(lng_column))
        except ValueError:
            raise StationFileError(_("消防站文件 %(path)s 第 %(line)d 行的坐标无效:%(value)r。应为十进制度数的纬度和经度。")
                                   % {"path": path, "line": line_number, "value": ",".join(row)}) from None
        if not (-90 <= lat <= 90 and -180 <= lng <= 180):
            raise StationFileError(_("消防站文件 %(path)s 第 %(line)d 行的坐标超出范围:纬度 %(lat)s,经度 %(lng)s。")
                                   % {"path": path, "line": line_number, "lat": lat, "lng": lng})
        address = cell(address_column)
        code = cell(code_column) or address
        if not code:
            raise StationFileError(_("消防站文件 %(path)s 第 %(line)d 行既没有编号也没有地址,无法识别站点。")
                                   % {"path": path, "line": line_number})
        parsed.append({"code": code, "name": cell(name_column), "address": address, "lat": lat, "lng": lng,
                       "line": line_number})

    seen = {}
    for row in parsed:
        if row["code"] in seen:
            raise StationFileError(_("消防站文件 %(path)s 第 %(line)d 行与第 %(first)d 行的站点编号(或地址)%(code)r 重复。")
                                   % {"path": path, "line": row["line"], "first": seen[row["code"]], "code": row["code"]})
        seen[row["code"]] = row["line"]
    return parsed


VECTOR_SUFFIXES = (".geojson", ".json", ".gpkg", ".shp")


def read_station_layer(path):
    """Read a point layer (GeoJSON, GeoPackage, Shapefile) into the same dicts as read_station_rows().

    Points in another CRS are transformed to WGS84. Attribute names are
    matched like CSV headers.

    NOTE: GCJ-02 or BD-09 coordinates are not detected; such layers must be
    converted to WGS84 first.
    """
    import geopandas
    import pyogrio

    path = Path(path)
    try:
        frame = geopandas.read_file(path, engine="pyogrio")
    except (pyogrio.errors.DataSourceError, pyogrio.errors.DataLayerError, OSError) as error:
        raise StationFileError(_("无法读取消防站图层 %(path)s:%(error)s") % {"path": path, "error": error}) from error
    if frame.crs is not None and frame.crs.to_epsg() != 4326:
        frame = frame.to_crs(4326)
    columns = {column.strip().lower(): column for column in frame.columns if column != frame.geometry.name}

    def attribute(row, names):
        column = next((columns[name] for name in names if name in columns), None)
        value = row[column] if column is not None else ""
        return "" if value is None or value != value else str(value).strip()

    parsed = []
    for position, (_index, row) in enumerate(frame.iterrows(), start=1):
        geometry = row[frame.geometry.name]
        if geometry is None or geometry.is_empty or geometry.geom_type != "Point":
            raise StationFileError(_("消防站图层 %(path)s 第 %(line)d 个要素不是点(%(type)s)。") % {
                "path": path, "line": position, "type": getattr(geometry, "geom_type", None)})
        address = attribute(row, ADDRESS_NAMES)
        code = attribute(row, CODE_NAMES) or address or attribute(row, NAME_NAMES)
        if not code:
            raise StationFileError(_("消防站图层 %(path)s 第 %(line)d 个要素没有编号、地址或名称,无法识别站点。")
                                   % {"path": path, "line": position})
        parsed.append({"code": code, "name": attribute(row, NAME_NAMES), "address": address,
                       "lat": geometry.y, "lng": geometry.x, "line": position})
    return parsed


def import_stations(path):
    """Create or update the stations of a CSV file or point layer in one transaction.

    Nothing is stored when a row is invalid.
    """
    if str(path).lower().endswith(VECTOR_SUFFIXES):
        rows = read_station_layer(path)
    else:
        rows = read_station_rows(path)
    result = StationImport(rows=len(rows))
    with transaction.atomic():
        for row in rows:
            _station, created = FireStation.objects.update_or_create(
                code=row["code"],
                defaults={"name": row["name"], "address": row["address"], "source_file": Path(path).name,
                          "location": Point(row["lng"], row["lat"], srid=4326)},
            )
            result.created += int(created)
            result.updated += int(not created)
            result.codes.append(row["code"])
    return result
