"""Benchmark: build the road graphs of the real OSM extracts, and read them back from the cache.

For each extract it times FireGrid's build (pyosmium read and filter, osmnx
graph, strongly connected component, speeds, projection), the same file
through osmnx alone (graph_from_xml, project_graph, add_edge_speeds,
add_edge_travel_times) as the baseline, and a load from the cache. Targets:
a cached load under 1 s.

    python -m bench roads [--repeat 3]
"""
import argparse
import statistics
import tempfile
import time
from pathlib import Path

import osmnx as ox
from django.conf import settings
from django.test.utils import override_settings

from bench.import_tickets import describe_machine
from routing.roads import build_road_graph, file_sha256, load_road_graph, road_speeds_kph

SHARED = Path(settings.BASE_DIR).parent / "shared" / "data"
EXTRACTS = [SHARED / "sf" / "mission_potrero.osm", SHARED / "cn" / "shenzhen_longgang.osm"]
CACHE_TARGET_S = 1.0


def osmnx_baseline(path, speeds):
    """Build the graph with osmnx's own pipeline and the same speed table; return seconds, nodes and edges."""
    started = time.perf_counter()
    graph = ox.graph_from_xml(path, simplify=True, retain_all=True)
    graph = ox.project_graph(graph)
    graph = ox.add_edge_speeds(graph, hwy_speeds=speeds, fallback=min(speeds.values()))
    # graph_from_xml keeps ways without a highway tag (buildings, land use), which get no speed.
    for _u, _v, data in graph.edges(data=True):
        if data.get("speed_kph") is None or data["speed_kph"] != data["speed_kph"]:
            data["speed_kph"] = min(speeds.values())
    graph = ox.add_edge_travel_times(graph)
    return time.perf_counter() - started, graph.number_of_nodes(), graph.number_of_edges()


def main(argv):
    parser = argparse.ArgumentParser(prog="python -m bench roads")
    parser.add_argument("--repeat", type=int, default=3, help="runs of each measurement; the median is printed")
    args = parser.parse_args(argv)
    missing = [path for path in EXTRACTS if not path.is_file()]
    if missing:
        print(f"roads: skipped, real data {missing[0]} is absent")
        return 0

    print(f"machine: {describe_machine()}")
    speeds = road_speeds_kph()
    worst_cache_s = 0.0
    summaries = []
    with tempfile.TemporaryDirectory(prefix="firegrid-bench-") as folder, override_settings(VAR_DIR=Path(folder)):
        for path in EXTRACTS:
            sha = file_sha256(path)
            build_times, baseline_times, cache_times = [], [], []
            for _run in range(args.repeat):
                started = time.perf_counter()
                road_graph = build_road_graph(path, speeds, sha)
                build_times.append(time.perf_counter() - started)
                seconds, base_nodes, base_edges = osmnx_baseline(path, speeds)
                baseline_times.append(seconds)
            load_road_graph(path)  # writes the cache
            for _run in range(args.repeat):
                started = time.perf_counter()
                cached = load_road_graph(path)
                cache_times.append(time.perf_counter() - started)
                assert cached.report.from_cache
            build_s, baseline_s, cache_s = (statistics.median(times) for times in (build_times, baseline_times, cache_times))
            worst_cache_s = max(worst_cache_s, cache_s)
            report = road_graph.report
            print(f"{path.name}: {path.stat().st_size / 1e6:.1f} MB, {report.ways_read} ways")
            print(f"  FireGrid build: {build_s:.2f} s -> {report.node_count} nodes, {report.edge_count} edges "
                  f"(largest strongly connected component, {report.components_dropped} pieces dropped)")
            print(f"  osmnx alone:    {baseline_s:.2f} s -> {base_nodes} nodes, {base_edges} edges (all ways, all pieces)")
            print(f"  from cache:     {cache_s * 1000:.0f} ms")
            print(f"  ratios: build / osmnx alone {build_s / baseline_s:.2f}x, build / cache {build_s / cache_s:.0f}x")
            summaries.append(f"{path.stem} build {build_s:.2f} s ({build_s / baseline_s:.2f}x osmnx), "
                             f"cache {cache_s * 1000:.0f} ms")
    verdict = "meets" if worst_cache_s < CACHE_TARGET_S else "misses"
    print(f"roads: {'; '.join(summaries)}; {verdict} the {CACHE_TARGET_S:.0f} s cache target")
    return 0
