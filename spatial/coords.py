"""Coordinates: datum conversion to WGS84, usability checks and H3 cells.

Chinese web maps publish GCJ-02 (Amap, Tencent) or BD-09 (Baidu)
coordinates, which sit 300-600 m off WGS84. prcoords (public domain)
implements both offsets and their iterative inverses to about 1e-9 degrees;
it only shifts points inside China, as the offsets themselves do.
"""
import unicodedata

import unicodedata

import numpy as np
import prcoords
from django.utils.translation import gettext as _
from h3.api import basic_int as h3_int

from spatial.models import CoordSystem

_CRS_ALIASES = {
    "wgs84": CoordSystem.WGS84, "wgs-84": CoordSystem.WGS84, "wgs": CoordSystem.WGS84, "gps": CoordSystem.WGS84,
    "epsg:4326": CoordSystem.WGS84, "4326": CoordSystem.WGS84,
    "gcj02": CoordSystem.GCJ02, "gcj-02": CoordSystem.GCJ02, "gcj": CoordSystem.GCJ02, "火星坐标": CoordSystem.GCJ02,
    "国测局": CoordSystem.GCJ02, "高德": CoordSystem.GCJ02, "腾讯": CoordSystem.GCJ02, "amap": CoordSystem.GCJ02,
    "bd09": CoordSystem.BD09, "bd-09": CoordSystem.BD09, "bd09ll": CoordSystem.BD09, "百度": CoordSystem.BD09,
    "baidu": CoordSystem.BD09,
}


def parse_crs(value):
    """Return the CoordSystem named by a user value such as 'GCJ-02', 'ＧＣＪ－０２' or '百度', or None if unknown.

    The value is NFKC-folded, because Chinese exports often write it in full-width letters,
    and spaces are ignored ('WGS 84').
    """
    if value is None:
        return None
    key = "".join(unicodedata.normalize("NFKC", str(value)).split()).lower()
    return _CRS_ALIASES.get(key)


def usable_location_mask(lat, lng):
    """Return a boolean array: true where (lat, lng) are finite, in range and not the 0,0 placeholder."""
    lat = np.asarray(lat, dtype="float64")
    lng = np.asarray(lng, dtype="float64")
    finite = np.isfinite(lat) & np.isfinite(lng)
    with np.errstate(invalid="ignore"):
        in_range = (np.abs(lat) <= 90) & (np.abs(lng) <= 180)
        placeholder = (lat == 0) & (lng == 0)
    return finite & in_range & ~placeholder


def to_wgs84(lat, lng, crs):
    """Convert arrays of (lat, lng) in a datum to WGS84; WGS84 input is returned unchanged.

    Parameters
    ----------
    lat, lng : array-like of float, degrees
    crs : CoordSystem or array-like of CoordSystem values, one per point

    Returns
    -------
    (lat, lng) : two float64 arrays in WGS84 degrees; NaN stays NaN.
    """
    lat = np.array(lat, dtype="float64")
    lng = np.array(lng, dtype="float64")
    crs = np.broadcast_to(np.asarray(crs, dtype=object), lat.shape)
    for system, inverse in ((CoordSystem.GCJ02, prcoords.gcj_wgs_bored), (CoordSystem.BD09, prcoords.bd_wgs_bored)):
        rows = np.flatnonzero((crs == system) & np.isfinite(lat) & np.isfinite(lng))
        # NOTE: prcoords converts one point per call (about 10 us), which is
        # fine for county exports but would dominate a million-row GCJ-02 load.
        for row in rows:
            converted = inverse(prcoords.Coords(lat[row], lng[row]), check_china=False)
            lat[row], lng[row] = converted.lat, converted.lon
    return lat, lng


def parse_bbox(text):
    """Parse 'min_lng,min_lat,max_lng,max_lat' into a tuple of floats; raise ValueError when invalid."""
    try:
        parts = [float(part) for part in str(text).split(",")]
    except ValueError:
        parts = []
    if len(parts) != 4:
        raise ValueError(_("研究区 %(text)s 应为 4 个数:min_lng,min_lat,max_lng,max_lat") % {"text": text})
    min_lng, min_lat, max_lng, max_lat = parts
    if not (-180 <= min_lng < max_lng <= 180 and -90 <= min_lat < max_lat <= 90):
        raise ValueError(_("研究区 %(text)s 不是有效的经纬度范围 min_lng,min_lat,max_lng,max_lat") % {"text": text})
    return min_lng, min_lat, max_lng, max_lat


def inside_bbox(lat, lng, bbox):
    min_lng, min_lat, max_lng, max_lat = bbox
    with np.errstate(invalid="ignore"):
        return (lng >= min_lng) & (lng <= max_lng) & (lat >= min_lat) & (lat <= max_lat)


def h3_cells(lat, lng, resolution):
    """Return h3 int cell ids at a resolution for arrays of WGS84 degrees; 0 where a point is NaN."""
    cells = np.zeros(len(lat), dtype="int64")
    for index, (point_lat, point_lng) in enumerate(zip(np.asarray(lat).tolist(), np.asarray(lng).tolist())):
        if point_lat == point_lat and point_lng == point_lng:
            cells[index] = h3_int.latlng_to_cell(point_lat, point_lng, resolution)
    return cells


def h3_parents(cells, resolution):
    """Return the parents of h3 int cells at a coarser resolution; 0 stays 0."""
    return np.array([h3_int.cell_to_parent(cell, resolution) if cell else 0 for cell in cells.tolist()],
                    dtype="int64")
