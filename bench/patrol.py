"""Benchmark: 30-stop tours, one patrol route and isochrones of all stations on the real extracts.

Tours: for seeded sets of 30 random graph nodes plus a start, FireGrid's
solver (OR-Tools seeded with the insertion heuristic, FIREGRID_PATROL_SOLVER_TIME_LIMIT_S)
against OR-Tools given 60 s and a nearest-neighbour tour, all minimising
length in metres along the fastest paths. Targets: within 3% of the 60 s
tour, at least 15% shorter than nearest-neighbour, solving under 2 s.

Route: one plan_patrol() with 40 candidate stops, a 2 h budget and 5 min
per stop, timed end to end (snapping, matrix, solving, path geometry).

Isochrones: 5 min isochrones of the San Francisco stations inside the
extract, FireGrid (one csgraph Dijkstra for all stations, shared street
buffers) against networkx ego_graph per station with a union of per-edge
buffers as the baseline.

    python -m bench patrol [--instances 3] [--reference-s 60]
"""
import argparse
import statistics
import tempfile
import time
from datetime import datetime
from pathlib import Path
from zoneinfo import ZoneInfo

import networkx as nx
import numpy as np
import shapely
from django.conf import settings
from django.contrib.gis.geos import Point
from django.test.utils import override_settings

from bench.import_tickets import describe_machine
from routing.coverage import station_isochrones
from routing.network import path_matrix, snap_points, to_wgs84
from routing.patrol import StopCandidate, plan_patrol
from routing.roads import load_road_graph
from routing.solver import nearest_neighbour_order, solve_orienteering, tour_cost
from routing.stations import read_station_rows

SHARED = Path(settings.BASE_DIR).parent / "shared" / "data"
EXTRACTS = [SHARED / "sf" / "mission_potrero.osm", SHARED / "cn" / "shenzhen_longgang.osm"]
STATIONS = SHARED / "sf" / "fire_stations.csv"


class Station:
    """A station row with the ``location`` attribute that station_isochrones() reads."""

    def __init__(self, row):
        self.location = Point(row["lng"], row["lat"], srid=4326)
        self.name = row["address"]


def bench_tours(road_graph, instances, reference_s):
    rows = []
    limit_s = settings.FIREGRID_PATROL_SOLVER_TIME_LIMIT_S
    for seed in range(instances):
        rng = np.random.default_rng(seed)
        nodes = [int(node) for node in rng.choice(road_graph.nodes, 31, replace=False)]
        matrix = path_matrix(road_graph, nodes)
        zero_service, values = [0.0] * 31, [0.0] + [1.0] * 30
        tour = solve_orienteering(matrix.time_s, zero_service, values, np.inf, cost=matrix.length_m,
                                  time_limit_s=limit_s)
        reference = solve_orienteering(matrix.time_s, zero_service, values, np.inf, cost=matrix.length_m,
                                       time_limit_s=reference_s)
        nearest = tour_cost(nearest_neighbour_order(matrix.length_m), matrix.length_m)
        rows.append((seed, tour.cost, tour.solve_s, reference.cost, nearest))
        print(f"  seed {seed}: FireGrid {tour.cost / 1000:.2f} km in {tour.solve_s:.2f} s, "
              f"OR-Tools {reference_s:.0f} s {reference.cost / 1000:.2f} km, nearest-neighbour {nearest / 1000:.2f} km "
              f"-> {100 * (tour.cost / reference.cost - 1):+.1f}% vs {reference_s:.0f} s, "
              f"{100 * (1 - tour.cost / nearest):.1f}% shorter than nearest-neighbour")
    return rows


def bench_route(road_graph):
    rng = np.random.default_rng(11)
    nodes = rng.choice(road_graph.nodes, 41, replace=False)
    graph = road_graph.graph
    lngs, lats = to_wgs84(road_graph, [graph.nodes[n]["x"] for n in nodes], [graph.nodes[n]["y"] for n in nodes])
    candidates = [StopCandidate(kind="ticket", key=str(i), lat=float(lat), lng=float(lng), value=float(rng.uniform(1, 5)))
                  for i, (lat, lng) in enumerate(zip(lats[1:], lngs[1:]))]
    start_at = datetime(2026, 12, 4, 9, 0, tzinfo=ZoneInfo("Asia/Shanghai"))
    started = time.perf_counter()
    plan = plan_patrol(road_graph, float(lats[0]), float(lngs[0]), candidates, start_at, budget_s=7200, service_s=300)
    elapsed = time.perf_counter() - started
    print(f"  route: {len(plan.stops)} of 40 stops, {plan.length_m / 1000:.2f} km, {plan.duration_s / 60:.0f} min, "
          f"{len(plan.unreachable)} unreachable, planned in {elapsed:.2f} s (solver {plan.solve_s:.2f} s, {plan.solver})")
    return elapsed


def ego_graph_baseline(road_graph, stations, minutes, buffer_m):
    """Isochrones with networkx: ego_graph by travel time per station, union of buffered edges."""
    graph = road_graph.graph
    snapped = snap_points(road_graph, [s.location.y for s in stations], [s.location.x for s in stations])
    polygons = []
    for point in snapped:
        if point.distance_m > settings.FIREGRID_PATROL_SNAP_MAX_M:
            continue
        reached = nx.ego_graph(graph, point.node, radius=minutes * 60, distance="travel_time")
        lines = []
        for u, v, data in reached.edges(data=True):
            geometry = data.get("geometry") or shapely.LineString(
                [(graph.nodes[u]["x"], graph.nodes[u]["y"]), (graph.nodes[v]["x"], graph.nodes[v]["y"])])
            lines.append(geometry)
        polygons.append(shapely.union_all(shapely.buffer(np.array(lines, dtype=object), buffer_m, quad_segs=4)))
    return polygons


def bench_isochrones(road_graph):
    stations = [Station(row) for row in read_station_rows(STATIONS)]
    minutes, buffer_m = settings.FIREGRID_ISOCHRONE_MIN, settings.FIREGRID_ISOCHRONE_BUFFER_M
    road_graph._index.clear()  # count building the edge arrays too
    started = time.perf_counter()
    reaches = station_isochrones(road_graph, stations, minutes, buffer_m)
    ours_s = time.perf_counter() - started
    started = time.perf_counter()
    baseline = ego_graph_baseline(road_graph, stations, minutes, buffer_m)
    baseline_s = time.perf_counter() - started
    inside = [reach for reach in reaches if reach.polygon is not None]
    print(f"  isochrones ({minutes:g} min) of {len(inside)} of {len(stations)} stations inside the extract: "
          f"FireGrid {ours_s:.2f} s, ego_graph baseline {baseline_s:.2f} s ({baseline_s / ours_s:.1f}x); "
          f"mean area {statistics.mean(r.area_km2 for r in inside):.2f} km2 vs baseline "
          f"{statistics.mean(p.area for p in baseline) / 1e6:.2f} km2 (baseline drops partly reached streets)")
    return ours_s, baseline_s


def main(argv):
    parser = argparse.ArgumentParser(prog="python -m bench patrol")
    parser.add_argument("--instances", type=int, default=3, help="seeded 30-stop tours per extract")
    parser.add_argument("--reference-s", type=float, default=60.0, help="OR-Tools time limit of the reference tours")
    args = parser.parse_args(argv)
    missing = [path for path in [*EXTRACTS, STATIONS] if not path.is_file()]
    if missing:
        print(f"patrol: skipped, real data {missing[0]} is absent")
        return 0

    print(f"machine: {describe_machine()}")
    all_rows = []
    with tempfile.TemporaryDirectory(prefix="firegrid-bench-") as folder, override_settings(VAR_DIR=Path(folder)):
        for path in EXTRACTS:
            road_graph = load_road_graph(path)
            print(f"{path.name}:")
            all_rows.extend(bench_tours(road_graph, args.instances, args.reference_s))
            bench_route(road_graph)
        sf_graph = load_road_graph(EXTRACTS[0])
        print(f"{EXTRACTS[0].name}:")
        ours_s, baseline_s = bench_isochrones(sf_graph)

    gaps = [tour / reference - 1 for _seed, tour, _s, reference, _nn in all_rows]
    savings = [1 - tour / nearest for _seed, tour, _s, _reference, nearest in all_rows]
    slowest = max(seconds for _seed, _tour, seconds, _reference, _nn in all_rows)
    met = max(gaps) <= 0.03 and statistics.mean(savings) >= 0.15 and slowest < 2.0
    print(f"patrol: 30-stop tours worst {100 * max(gaps):+.1f}% vs OR-Tools {args.reference_s:.0f} s, "
          f"mean {100 * statistics.mean(savings):.1f}% shorter than nearest-neighbour (min {100 * min(savings):.1f}%), "
          f"slowest solve {slowest:.2f} s; isochrones {ours_s:.2f} s ({baseline_s / ours_s:.1f}x ego_graph); "
          f"targets {'met' if met else 'not met'}")
    return 0
