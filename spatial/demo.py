"""A deterministic, simulated 12345 export for demonstrations.

The county, its places and the category shares follow the fire tickets of
Xiangzhou County (Laibin, Guangxi) as described in 蒙加璇, "12345市民热线
工单数据分析及优化办理的对策研究" (Xiangzhou County fire and rescue
brigade). E-bike charging is 27% of tickets, facility faults 23% and
blocked fire lanes 19%. The rest are separation distances, flammable
storage and electrical hazards. 38% of tickets fall in the core
commercial district, 27% in old residential quarters and 15% in
industrial parks. Every ticket, name and phone number is invented, and
the import marks the batch as simulated so that pages show a notice.
"""
import csv
import json
import math
from datetime import datetime, timedelta
from pathlib import Path

import numpy as np
import prcoords

from spatial.taxonomy import Category

# Zone centres in WGS84 (lat, lng) with a spread in metres and their share.
# The first three are the three rings; their polygons come from write_demo_zones.
ZONES = (
    ("核心商圈", (23.9600, 109.6800), 450, 0.38, ["象州镇商业街", "城南综合市场", "世纪广场商业综合体", "步行街"]),
    ("老旧小区", (23.9700, 109.6920), 600, 0.27, ["林业小区", "粮食局宿舍", "供销社小区", "糖厂生活区"]),
    ("工业园区", (23.9350, 109.7150), 700, 0.15, ["象州工业园", "石龙工业集中区", "糖业加工园"]),
    ("其他", (24.0000, 109.7300), 5000, 0.20, ["运江镇", "寺村镇", "中平镇", "罗秀镇", "大乐镇", "马坪镇"]),
)
CATEGORY_SHARES = (
    (Category.EBIKE_CHARGING, 0.27, ["楼道内电动车充电", "飞线充电,从窗户拉电线给电瓶车充电", "电动车停放在楼梯间充电"]),
    (Category.FACILITY_FAULT, 0.23, ["消火栓无水", "灭火器过期未更换", "烟感报警器损坏", "应急照明不亮"]),
    (Category.FIRE_LANE, 0.19, ["消防通道被私家车堵塞", "疏散通道堆放杂物", "商户卸货占用消防通道"]),
    (Category.SEPARATION, 0.12, ["厂房之间防火间距不足", "违章搭建影响消防间距"]),
    (Category.FLAMMABLE_STORAGE, 0.11, ["仓库堆放易燃物品", "居民楼内存放液化气罐"]),
    (Category.ELECTRICAL, 0.08, ["线路老化私拉乱接", "配电箱漏电无人维修"]),
)
DEPARTMENTS = ["县消防救援大队", "县住房和城乡建设局", "县城市管理局", "县应急管理局", "县市场监督管理局", "供电公司"]
SURNAMES = "王李张刘陈杨黄赵吴周"
HEADERS = ["工单编号", "受理时间", "办结时间", "诉求类型", "诉求内容", "诉求地址", "经度", "纬度", "坐标系",
           "承办单位", "诉求人", "联系电话"]
METRES_PER_DEGREE_LAT = 111_320.0


def _received_time(rng, category, zone_name, year):
    month = int(rng.integers(1, 13))
    if category == Category.EBIKE_CHARGING and rng.random() < 0.6:
        month = int(rng.integers(1, 7))
    day = int(rng.integers(1, 29))
    hour = int(rng.choice(np.arange(24), p=_HOUR_WEIGHTS))
    if category == Category.FIRE_LANE and zone_name == "核心商圈" and rng.random() < 0.5:
        hour = int(rng.integers(18, 20))
    return datetime(year, month, day, hour, int(rng.integers(0, 60)), int(rng.integers(0, 60)))


_HOUR_WEIGHTS = np.array([1, 1, 1, 1, 1, 2, 3, 5, 7, 8, 8, 7, 6, 7, 7, 7, 7, 8, 9, 9, 8, 6, 3, 2], dtype=float)
_HOUR_WEIGHTS /= _HOUR_WEIGHTS.sum()


def demo_rows(count=3000, seed=12345):
    """Yield the export's rows as lists in HEADERS order; the same seed gives the same rows."""
    rng = np.random.default_rng(seed)
    zone_shares = np.array([zone[3] for zone in ZONES])
    category_shares = np.array([share for _category, share, _texts in CATEGORY_SHARES])
    # Fire tickets grew 12% from 2023 to 2024.
    count_2023 = round(count / 2.12)
    for index in range(count):
        year = 2023 if index < count_2023 else 2024
        zone_name, (lat, lng), spread_m, _share, places = ZONES[rng.choice(len(ZONES), p=zone_shares)]
        category, _share, texts = CATEGORY_SHARES[rng.choice(len(CATEGORY_SHARES), p=category_shares)]
        point_lat = lat + rng.normal(0, spread_m) / METRES_PER_DEGREE_LAT
        point_lng = lng + rng.normal(0, spread_m) / (METRES_PER_DEGREE_LAT * np.cos(np.radians(lat)))
        gcj = prcoords.wgs_gcj(prcoords.Coords(point_lat, point_lng), check_china=False)
        received = _received_time(rng, category, zone_name, year)
        hours_to_close = float(rng.gamma(2.0, 36.0))
        closed = received + timedelta(hours=hours_to_close)
        place = places[rng.integers(len(places))]
        building = int(rng.integers(1, 30))
        phone = f"1{rng.integers(3, 9)}{rng.integers(0, 10**9):09d}"
        yield [
            f"XZ{year}{index + 1:06d}",
            received.strftime("%Y-%m-%d %H:%M:%S"),
            closed.strftime("%Y-%m-%d %H:%M:%S") if closed < datetime(2025, 1, 1) else "",
            str(category.label),
            f"{place}{building}栋:{texts[rng.integers(len(texts))]}",
            f"广西来宾市象州县{place}{building}栋",
            f"{gcj.lon:.6f}",
            f"{gcj.lat:.6f}",
            "GCJ-02",
            DEPARTMENTS[0] if rng.random() < 0.58 else DEPARTMENTS[rng.integers(1, len(DEPARTMENTS))],
            SURNAMES[rng.integers(len(SURNAMES))] + "先生",
            phone,
        ]


def write_demo_export(path, count=3000, seed=12345):
    """Write the simulated export as a GBK CSV, so that a first run exercises encoding detection; return the path."""
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    with path.open("w", encoding="gbk", newline="") as handle:
        writer = csv.writer(handle)
        writer.writerow(HEADERS)
        writer.writerows(demo_rows(count, seed))
    return path


# Zone type of each of the first three ZONES, as spatial.models.ZoneType values.
DEMO_ZONE_TYPES = ("core_commercial", "old_residential", "industrial_park")


def write_demo_zones(path, vertices=48):
    """Write the three rings of the simulated county as a GeoJSON file of polygons; return the path.

    Each ring is a circle of twice its zone's spread around the zone's
    centre, which contains about 86% of the zone's simulated tickets.
    """
    features = []
    for (name, (lat, lng), spread_m, _share, _places), zone_type in zip(ZONES, DEMO_ZONE_TYPES):
        radius_lat = 2.0 * spread_m / METRES_PER_DEGREE_LAT
        radius_lng = radius_lat / math.cos(math.radians(lat))
        ring = [
            [round(lng + radius_lng * math.cos(2 * math.pi * step / vertices), 7),
             round(lat + radius_lat * math.sin(2 * math.pi * step / vertices), 7)]
            for step in range(vertices)
        ]
        ring.append(ring[0])
        features.append({
            "type": "Feature",
            "properties": {"name": name, "zone_type": zone_type, "simulated": True},
            "geometry": {"type": "Polygon", "coordinates": [ring]},
        })
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(json.dumps({"type": "FeatureCollection", "features": features}, ensure_ascii=False),
                    encoding="utf-8")
    return path
