"""Datum conversion to WGS84, usable-location checks, study-area boxes and H3 cells."""
import math

import h3
import numpy as np
import prcoords
import pytest

from spatial import coords
from spatial.models import CoordSystem

# Tolerance of the iterative GCJ-02 and BD-09 inverses, in degrees (about 0.1 m).
INVERSE_TOLERANCE_DEG = 1e-6

# WGS84 points in and around the default study area (Xiangzhou County,
# Guangxi) and in three large cities, as (lat, lng) degrees.
WGS84_POINTS = [
    (23.9594, 109.6845),
    (23.7012, 109.4033),
    (24.3290, 110.0987),
    (39.911954, 116.377817),
    (31.1774276, 121.5272106),
    (22.543847, 113.912316),
]


def forward(function, points):
    shifted = [function(prcoords.Coords(lat, lng), check_china=False) for lat, lng in points]
    return np.array([point.lat for point in shifted]), np.array([point.lon for point in shifted])


# Datum conversion.

@pytest.mark.filterwarnings("ignore::UserWarning")
@pytest.mark.parametrize(
    ("system", "forward_function"),
    [(CoordSystem.GCJ02, prcoords.wgs_gcj), (CoordSystem.BD09, prcoords.wgs_bd)],
)
def test_inverse_undoes_forward_offset(system, forward_function):
    shifted_lat, shifted_lng = forward(forward_function, WGS84_POINTS)
    expected = np.array(WGS84_POINTS)
    # The offsets are 300-700 m, so an unconverted point would fail by far.
    assert np.abs(shifted_lat - expected[:, 0]).max() > 1e-3 or np.abs(shifted_lng - expected[:, 1]).max() > 1e-3

    lat, lng = coords.to_wgs84(shifted_lat, shifted_lng, system)

    np.testing.assert_allclose(lat, expected[:, 0], rtol=0, atol=INVERSE_TOLERANCE_DEG)
    np.testing.assert_allclose(lng, expected[:, 1], rtol=0, atol=INVERSE_TOLERANCE_DEG)


@pytest.mark.parametrize(
    ("gcj_lat", "gcj_lng", "wgs_lat", "wgs_lng"),
    [
        # Published WGS84/GCJ-02 pairs of the eviltransform test suite
        # (Beijing, Shanghai, Shenzhen), computed by an independent implementation.
        (39.91334545536069, 116.38404722455657, 39.911954, 116.377817),
        (31.17530398364597, 121.531541859215, 31.1774276, 121.5272106),
        (22.540796131694766, 113.9171764808363, 22.543847, 113.912316),
    ],
)
def test_gcj02_reference_points(gcj_lat, gcj_lng, wgs_lat, wgs_lng):
    lat, lng = coords.to_wgs84([gcj_lat], [gcj_lng], CoordSystem.GCJ02)
    assert abs(lat[0] - wgs_lat) < INVERSE_TOLERANCE_DEG
    assert abs(lng[0] - wgs_lng) < INVERSE_TOLERANCE_DEG


def test_bd09_reference_point():
    # coordtransform (JavaScript) gives BD-09 (39.915, 116.404) as GCJ-02
    # (39.90865673957631, 116.39762729119315); its WGS84 point must map to that.
    lat, lng = coords.to_wgs84([39.915], [116.404], CoordSystem.BD09)
    gcj = prcoords.wgs_gcj(prcoords.Coords(lat[0], lng[0]))
    assert abs(gcj.lat - 39.90865673957631) < INVERSE_TOLERANCE_DEG
    assert abs(gcj.lon - 116.39762729119315) < INVERSE_TOLERANCE_DEG


def test_wgs84_returned_unchanged():
    points = np.array(WGS84_POINTS)
    lat, lng = coords.to_wgs84(points[:, 0], points[:, 1], CoordSystem.WGS84)
    assert lat.tolist() == points[:, 0].tolist()
    assert lng.tolist() == points[:, 1].tolist()


def test_conversion_per_point_systems():
    gcj = prcoords.wgs_gcj(prcoords.Coords(23.9594, 109.6845))
    bd = prcoords.wgs_bd(prcoords.Coords(23.9594, 109.6845))
    systems = [CoordSystem.WGS84, CoordSystem.GCJ02, CoordSystem.BD09]
    lat, lng = coords.to_wgs84([23.9594, gcj.lat, bd.lat], [109.6845, gcj.lon, bd.lon], systems)
    np.testing.assert_allclose(lat, [23.9594] * 3, rtol=0, atol=INVERSE_TOLERANCE_DEG)
    np.testing.assert_allclose(lng, [109.6845] * 3, rtol=0, atol=INVERSE_TOLERANCE_DEG)


def test_conversion_keeps_nan():
    lat, lng = coords.to_wgs84([np.nan, 23.9566], [109.6889, np.nan], CoordSystem.GCJ02)
    assert math.isnan(lat[0])
    assert math.isnan(lng[1])
    assert lat[1] == 23.9566
    assert lng[0] == 109.6889


def test_conversion_does_not_modify_input():
    lat_in = np.array([23.9566])
    lng_in = np.array([109.6889])
    coords.to_wgs84(lat_in, lng_in, CoordSystem.GCJ02)
    assert lat_in[0] == 23.9566
    assert lng_in[0] == 109.6889


# Usable locations.

@pytest.mark.parametrize(
    ("lat", "lng", "usable"),
    [
        (23.9594, 109.6845, True),
        (-33.86, 151.21, True),
        (90.0, 180.0, True),
        (0.0, 0.0, False),
        (0.0, 109.6845, True),
        (np.nan, 109.6845, False),
        (23.9594, np.nan, False),
        (np.inf, 109.6845, False),
        (90.0001, 109.6845, False),
        (-91.0, 109.6845, False),
        (23.9594, 180.0001, False),
        (23.9594, -181.0, False),
        (109.6845, 23.9594, False),  # latitude and longitude swapped
    ],
)
def test_usable_location(lat, lng, usable):
    assert coords.usable_location_mask([lat], [lng]).tolist() == [usable]


# Coordinate system names.

@pytest.mark.parametrize(
    ("given", "expected"),
    [
        ("WGS84", CoordSystem.WGS84),
        ("wgs-84", CoordSystem.WGS84),
        ("EPSG:4326", CoordSystem.WGS84),
        ("GPS", CoordSystem.WGS84),
        ("GCJ-02", CoordSystem.GCJ02),
        ("gcj02", CoordSystem.GCJ02),
        (" GCJ02 ", CoordSystem.GCJ02),
        ("高德", CoordSystem.GCJ02),
        ("腾讯", CoordSystem.GCJ02),
        ("火星坐标", CoordSystem.GCJ02),
        ("国测局", CoordSystem.GCJ02),
        ("ＧＣＪ－０２", CoordSystem.GCJ02),
        ("百度", CoordSystem.BD09),
        ("BD09", CoordSystem.BD09),
        ("BD-09", CoordSystem.BD09),
        ("bd09ll", CoordSystem.BD09),
        ("Baidu", CoordSystem.BD09),
    ],
)
def test_crs_aliases(given, expected):
    assert coords.parse_crs(given) == expected


@pytest.mark.parametrize("given", ["", "mercator", "bd09mc", "EPSG:3857", None])
def test_crs_unknown_is_none(given):
    assert coords.parse_crs(given) is None


# Study-area boxes.

def test_bbox_parses_four_numbers():
    assert coords.parse_bbox("109.40,23.70,110.10,24.33") == (109.40, 23.70, 110.10, 24.33)


def test_bbox_allows_spaces():
    assert coords.parse_bbox(" -122.53, 37.70 ,-122.35,37.84") == (-122.53, 37.70, -122.35, 37.84)


@pytest.mark.parametrize("text", ["109.40,23.70,110.10", "109.40,23.70,110.10,24.33,1", "", "a,b,c,d", "109.4;23.7;110.1;24.3"])
def test_bbox_needs_four_numbers(text):
    with pytest.raises(ValueError) as error:
        coords.parse_bbox(text)
    assert str(error.value) == f"研究区 {text} 应为 4 个数:min_lng,min_lat,max_lng,max_lat"


@pytest.mark.parametrize(
    "text",
    [
        "110.10,23.70,109.40,24.33",  # west edge east of the east edge
        "109.40,24.33,110.10,23.70",  # south edge north of the north edge
        "109.40,23.70,109.40,24.33",  # zero width
        "-181,23.70,110.10,24.33",
        "109.40,-91,110.10,24.33",
        "23.70,109.40,24.33,110.10",  # latitude first
        "nan,23.70,110.10,24.33",
    ],
)
def test_bbox_rejects_invalid_box(text):
    with pytest.raises(ValueError) as error:
        coords.parse_bbox(text)
    assert str(error.value) == f"研究区 {text} 不是有效的经纬度范围 min_lng,min_lat,max_lng,max_lat"


def test_inside_bbox_edges_and_nan():
    bbox = (109.40, 23.70, 110.10, 24.33)
    lat = np.array([23.9594, 23.70, 24.33, 23.69, 24.34, 23.9594, np.nan])
    lng = np.array([109.6845, 109.40, 110.10, 109.6845, 109.6845, 110.11, 109.6845])
    assert coords.inside_bbox(lat, lng, bbox).tolist() == [True, True, True, False, False, False, False]


# H3 cells.

@pytest.mark.parametrize("resolution", [7, 9, 12])
def test_h3_cells_match_string_ids(resolution):
    points = np.array(WGS84_POINTS + [(37.7793747233139, -122.479242794814), (-33.86, 151.21)])
    cells = coords.h3_cells(points[:, 0], points[:, 1], resolution)
    expected_strings = [h3.latlng_to_cell(lat, lng, resolution) for lat, lng in points]

    assert cells.dtype == np.int64
    assert cells.tolist() == [h3.str_to_int(text) for text in expected_strings]
    assert [h3.int_to_str(cell) for cell in cells.tolist()] == expected_strings


def test_h3_cell_known_value():
    cells = coords.h3_cells(np.array([23.9594]), np.array([109.6845]), 9)
    assert h3.int_to_str(int(cells[0])) == "894021c1843ffff"


def test_h3_cells_zero_for_missing_point():
    cells = coords.h3_cells(np.array([np.nan, 23.9594]), np.array([109.6845, np.nan]), 9)
    assert cells.tolist() == [0, 0]


def test_h3_parents_match_string_ids():
    points = np.array(WGS84_POINTS)
    fine = coords.h3_cells(points[:, 0], points[:, 1], 9)
    parents = coords.h3_parents(np.append(fine, 0), 7)
    expected = [h3.str_to_int(h3.cell_to_parent(h3.latlng_to_cell(lat, lng, 9), 7)) for lat, lng in points]
    assert parents.tolist() == expected + [0]
    assert parents.dtype == np.int64
