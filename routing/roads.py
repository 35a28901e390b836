"""Road graphs built offline from OpenStreetMap files, and their cache.

A file (.osm XML, .osm.bz2 or .osm.pbf) is read with pyosmium, which handles
all three formats; without pyosmium, XML and bzip2 XML are read with the
standard library. Only ways whose ``highway`` class has a speed in
FIREGRID_ROAD_SPEEDS_KPH are kept. Ways of clipped extracts that reference
nodes missing from the file are split at the gaps instead of being joined by
a straight line. The kept ways go to osmnx (``graph_from_xml``), which
parses one-way tags, simplifies the topology and measures edge lengths in
metres. The graph is then reduced to its largest strongly connected
component, so that a tour can get from any node to any other while
respecting one-way streets, and projected to its UTM zone.

Built graphs are pickled under ``VAR_DIR/routing/graphs``, keyed by the
SHA-256 of the file and of the speed table, so a second load of the same
file reads the pickle instead of parsing the XML again.
"""
import bz2
import hashlib
import json
import logging
import os
import pickle
import re
import tempfile
import time
from collections import Counter
from dataclasses import asdict, dataclass, field
from pathlib import Path
from xml.etree import ElementTree
from xml.sax.saxutils import quoteattr

import networkx as nx
import numpy as np
import osmnx as ox
from django.conf import settings
from django.utils.translation import gettext as _
from scipy.sparse import csr_matrix

from routing.exceptions import RoadFileError

logger = logging.getLogger(__name__)

# Bumped whenever the build changes what a cached graph contains.
GRAPH_FORMAT_VERSION = 1
SUPPORTED_SUFFIXES = (".osm", ".osm.bz2", ".osm.pbf", ".xml")
_NUMBER = re.compile(r"^\s*(\d+(?:\.\d+)?)\s*(mph|km/h|kmh|kph)?\s*$", re.IGNORECASE)


@dataclass
class LoadReport:
    """Report of a load: what was read, kept and dropped, stored with the cached graph."""

    path: str
    sha256: str
    crs: str = ""
    from_cache: bool = False
    duration_s: float = 0.0
    ways_read: int = 0
    ways_kept: int = 0
    # highway class (or "(none)" for ways without one) -> ways dropped for it
    ways_dropped_by_class: dict = field(default_factory=dict)
    ways_dropped_area: int = 0
    missing_node_refs: int = 0
    ways_with_missing_nodes: int = 0
    ways_split_at_missing_nodes: int = 0
    ways_dropped_missing_nodes: int = 0
    oneway_edges: int = 0
    components_dropped: int = 0
    nodes_dropped_disconnected: int = 0
    edges_dropped_disconnected: int = 0
    length_dropped_disconnected_m: float = 0.0
    node_count: int = 0
    edge_count: int = 0
    total_length_m: float = 0.0

    def summary_lines(self):
        """Return the report as translated lines for a command's output or a page."""
        dropped_classes = ", ".join(f"{name} {count}" for name, count in sorted(
            self.ways_dropped_by_class.items(), key=lambda item: (-item[1], item[0])))
        lines = [
            _("路网文件:%(path)s(SHA-256 %(sha)s…)") % {"path": self.path, "sha": self.sha256[:12]},
            _("投影坐标系:%(crs)s;来自缓存:%(cached)s;耗时 %(seconds).2f 秒") % {
                "crs": self.crs, "cached": _("是") if self.from_cache else _("否"), "seconds": self.duration_s},
            _("读取道路(way) %(read)d 条,保留 %(kept)d 条。") % {"read": self.ways_read, "kept": self.ways_kept},
            _("因道路等级不在车速表中而舍弃:%(classes)s") % {"classes": dropped_classes or _("无")},
            _("因是面状道路(area=yes)而舍弃:%(count)d 条") % {"count": self.ways_dropped_area},
            _("引用了文件中缺失节点的道路 %(ways)d 条(缺失引用 %(refs)d 个),其中在缺口处拆分 %(split)d 条,"
              "因剩余不足两个节点而舍弃 %(dropped)d 条") % {
                "ways": self.ways_with_missing_nodes, "refs": self.missing_node_refs,
                "split": self.ways_split_at_missing_nodes, "dropped": self.ways_dropped_missing_nodes},
            _("与主路网不连通(按单行道方向)而舍弃的部分 %(parts)d 个:节点 %(nodes)d 个,路段 %(edges)d 条,"
              "长 %(km).2f 公里") % {
                "parts": self.components_dropped, "nodes": self.nodes_dropped_disconnected,
                "edges": self.edges_dropped_disconnected, "km": self.length_dropped_disconnected_m / 1000},
            _("路网:节点 %(nodes)d 个,有向路段 %(edges)d 条(其中单行 %(oneway)d 条),总长 %(km).2f 公里") % {
                "nodes": self.node_count, "edges": self.edge_count, "oneway": self.oneway_edges,
                "km": self.total_length_m / 1000},
        ]
        return lines


@dataclass
class RoadGraph:
    """A projected road graph with its report and the arrays that routing and snapping use.

    ``graph`` is an osmnx MultiDiGraph in ``crs`` (metres) whose edges carry
    ``length`` (m), ``speed_kph`` and ``travel_time`` (s).
    """

    graph: nx.MultiDiGraph
    report: LoadReport
    crs: str
    _index: dict = field(default_factory=dict, repr=False)

    @property
    def nodes(self):
        """Node ids in the fixed order used by the sparse matrices."""
        if "nodes" not in self._index:
            self._index["nodes"] = np.array(list(self.graph.nodes), dtype=np.int64)
        return self._index["nodes"]

    def node_position(self, node_id):
        """Return the row of ``node_id`` in the sparse matrices."""
        if "position" not in self._index:
            self._index["position"] = {int(node): i for i, node in enumerate(self.nodes)}
        return self._index["position"][int(node_id)]

    def matrix(self, weight):
        """Return a CSR matrix of the cheapest parallel edge's ``weight`` between node rows.

        Parallel edges (two ways between the same nodes) keep the lowest
        weight, as a shortest path would.
        """
        key = f"matrix:{weight}"
        if key not in self._index:
            best = {}
            for u, v, data in self.graph.edges(data=True):
                pair = (self.node_position(u), self.node_position(v))
                value = float(data[weight])
                if pair not in best or value < best[pair]:
                    best[pair] = value
            rows = np.fromiter((pair[0] for pair in best), dtype=np.int64, count=len(best))
            cols = np.fromiter((pair[1] for pair in best), dtype=np.int64, count=len(best))
            # csgraph treats explicit zeros as missing edges, so zero-length
            # edges (duplicate nodes) get a tiny positive weight.
            values = np.maximum(np.fromiter(best.values(), dtype=float, count=len(best)), 1e-6)
            size = len(self.nodes)
            self._index[key] = csr_matrix((values, (rows, cols)), shape=(size, size))
        return self._index[key]

    def fastest_edge_lengths(self):
        """Return (row of u, row of v) -> length in metres of the fastest parallel edge from u to v."""
        if "fastest_lengths" not in self._index:
            lengths = {}
            times = {}
            for u, v, data in self.graph.edges(data=True):
                pair = (self.node_position(u), self.node_position(v))
                if pair not in times or data["travel_time"] < times[pair]:
                    times[pair] = data["travel_time"]
                    lengths[pair] = float(data["length"])
            self._index["fastest_lengths"] = lengths
        return self._index["fastest_lengths"]

    def best_edge(self, u, v, weight):
        """Return the data of the cheapest edge from ``u`` to ``v`` by ``weight``."""
        edges = self.graph.get_edge_data(u, v)
        return min(edges.values(), key=lambda data: data[weight])


def file_sha256(path):
    """Return the hex SHA-256 of the file's bytes."""
    digest = hashlib.sha256()
    with open(path, "rb") as handle:
        for chunk in iter(lambda: handle.read(1 << 20), b""):
            digest.update(chunk)
    return digest.hexdigest()


def road_speeds_kph():
    """Return the speed table (highway class -> km/h) from settings, checked."""
    speeds = dict(settings.FIREGRID_ROAD_SPEEDS_KPH)
    for road_class, speed in speeds.items():
        if not isinstance(speed, (int, float)) or speed <= 0:
            raise RoadFileError(_("车速设置 FIREGRID_ROAD_SPEEDS_KPH 中 %(cls)s 的值 %(value)r 无效,应为正数(公里/小时)。")
                                % {"cls": road_class, "value": speed})
    return speeds


def cache_key(sha256, speeds):
    """Return the cache key of a file hash under a speed table and the current build format."""
    settings_text = json.dumps({"speeds": speeds, "format": GRAPH_FORMAT_VERSION}, sort_keys=True)
    return hashlib.sha256(f"{sha256}:{settings_text}".encode()).hexdigest()[:32]


def cache_dir():
    return Path(settings.VAR_DIR) / "routing" / "graphs"


def load_road_graph(path, use_cache=True):
    """Load a road graph from an OpenStreetMap file, from the cache when the same file was built before.

    Parameters
    ----------
    path : str or Path
        A .osm, .osm.bz2 or .osm.pbf file.
    use_cache : bool
        Read and write the pickle cache under ``VAR_DIR/routing/graphs``.

    Returns
    -------
    RoadGraph
        With ``report.from_cache`` telling whether the cache was used.

    Raises
    ------
    RoadFileError
        When the file is missing, has an unknown suffix, cannot be parsed or
        contains no road of a class in the speed table.
    """
    started = time.perf_counter()
    path = Path(path)
    if not path.is_file():
        raise RoadFileError(_("路网文件 %(path)s 不存在。请检查路径。") % {"path": path})
    if not path.name.lower().endswith(SUPPORTED_SUFFIXES):
        raise RoadFileError(_("路网文件 %(path)s 的格式无法识别:应为 .osm、.osm.bz2 或 .osm.pbf。") % {"path": path})

    speeds = road_speeds_kph()
    sha256 = file_sha256(path)
    cache_path = cache_dir() / f"{cache_key(sha256, speeds)}.pickle"
    if use_cache and cache_path.is_file():
        try:
            with open(cache_path, "rb") as handle:
                road_graph = pickle.load(handle)
        except (OSError, pickle.UnpicklingError, EOFError, AttributeError) as error:
            logger.warning("unreadable graph cache %s (%s); rebuilding", cache_path, error)
        else:
            road_graph.report.from_cache = True
            road_graph.report.path = str(path)
            road_graph.report.duration_s = time.perf_counter() - started
            logger.info("road graph of %s read from cache %s in %.2f s", path, cache_path, road_graph.report.duration_s)
            return road_graph

    road_graph = build_road_graph(path, speeds, sha256)
    road_graph.report.duration_s = time.perf_counter() - started
    if use_cache:
        cache_path.parent.mkdir(parents=True, exist_ok=True)
        # Write to a temporary name and rename, so a reader never sees half a pickle.
        temporary = cache_path.with_suffix(f".{os.getpid()}.tmp")
        with open(temporary, "wb") as handle:
            pickle.dump(road_graph, handle, protocol=pickle.HIGHEST_PROTOCOL)
        os.replace(temporary, cache_path)
    logger.info("road graph of %s built in %.2f s: %d nodes, %d edges", path, road_graph.report.duration_s,
                road_graph.report.node_count, road_graph.report.edge_count)
    return road_graph


def build_road_graph(path, speeds, sha256=""):
    """Build the projected, strongly connected road graph of one file without the cache."""
    report = LoadReport(path=str(path), sha256=sha256)
    nodes, ways = read_osm_roads(path, speeds, report)
    if not ways:
        raise RoadFileError(_("路网文件 %(path)s 中没有可用的道路:没有车速表中等级的道路(highway)。") % {"path": path})

    with tempfile.TemporaryDirectory(prefix="firegrid-roads-") as folder:
        clean_path = Path(folder) / "roads.osm"
        write_osm_xml(clean_path, nodes, ways)
        graph = ox.graph_from_xml(clean_path, bidirectional=False, simplify=True, retain_all=True)

    graph = keep_largest_strong_component(graph, report)
    add_speeds_and_times(graph, speeds)
    graph = ox.project_graph(graph)
    crs = str(graph.graph["crs"])

    report.crs = crs
    report.node_count = graph.number_of_nodes()
    report.edge_count = graph.number_of_edges()
    report.total_length_m = float(sum(data["length"] for _u, _v, data in graph.edges(data=True)))
    report.oneway_edges = sum(1 for _u, _v, data in graph.edges(data=True) if data.get("oneway") is True)
    return RoadGraph(graph=graph, report=report, crs=crs)


def read_osm_roads(path, speeds, report, reader=None):
    """Read nodes and the road ways to keep, splitting ways at references to missing nodes.

    Returns ``(nodes, ways)``: node id -> (lat, lng), and a list of
    ``(way_id, tags, node_ids)`` whose node ids all exist. A way split at
    gaps yields one entry per run of at least two present nodes, with
    negative ids for the second and later runs, because osmnx keys ways by id.

    ``reader`` is "osmium" (pyosmium, all three formats) or "xml" (the
    standard library's parser, .osm and .osm.bz2 only). By default pyosmium
    is used when it is installed.
    """
    if reader is None:
        try:
            import osmium  # noqa: F401
        except ImportError:
            reader = "xml"
        else:
            reader = "osmium"
    if reader == "xml" and str(path).lower().endswith(".pbf"):
        raise RoadFileError(_("读取 PBF 文件 %(path)s 需要 Python 包 osmium(pyosmium),请先安装,"
                              "或改用 .osm / .osm.bz2 文件。") % {"path": path})
    elements = _osmium_elements(path) if reader == "osmium" else _xml_elements(path)

    nodes = {}
    raw_ways = []
    dropped_classes = Counter()
    for kind, element_id, first, second in elements:
        if kind == "node":
            nodes[element_id] = (first, second)
            continue
        report.ways_read += 1
        tags, refs = first, second
        road_class = tags.get("highway")
        if road_class not in speeds:
            dropped_classes[road_class or "(none)"] += 1
            continue
        if tags.get("area") == "yes":
            report.ways_dropped_area += 1
            continue
        raw_ways.append((element_id, tags, refs))
    report.ways_dropped_by_class = dict(dropped_classes)

    ways = []
    next_piece_id = -1
    for way_id, tags, refs in raw_ways:
        missing = sum(1 for ref in refs if ref not in nodes)
        if not missing:
            ways.append((way_id, tags, refs))
            continue
        report.ways_with_missing_nodes += 1
        report.missing_node_refs += missing
        runs, current = [], []
        for ref in refs:
            if ref in nodes:
                current.append(ref)
            else:
                runs.append(current)
                current = []
        runs.append(current)
        runs = [run for run in runs if len(run) >= 2]
        if not runs:
            report.ways_dropped_missing_nodes += 1
            continue
        if len(runs) > 1:
            report.ways_split_at_missing_nodes += 1
        ways.append((way_id, tags, runs[0]))
        for run in runs[1:]:
            ways.append((next_piece_id, {**tags, "firegrid:source_way": str(way_id)}, run))
            next_piece_id -= 1
    report.ways_kept = len({way_id for way_id, _tags, _refs in raw_ways}) - report.ways_dropped_missing_nodes
    return nodes, ways


def _osmium_elements(path):
    """Yield ("node", id, lat, lng) and ("way", id, tags, refs) with pyosmium."""
    import osmium

    try:
        for element in osmium.FileProcessor(str(path)):
            if element.is_node():
                if element.location.valid():
                    yield "node", element.id, element.location.lat, element.location.lon
            elif element.is_way():
                yield "way", element.id, dict(element.tags), [ref.ref for ref in element.nodes]
    except RuntimeError as error:
        raise RoadFileError(_("无法读取路网文件 %(path)s:%(error)s。请确认它是完整的 OpenStreetMap 文件。")
                            % {"path": path, "error": error}) from error


def _xml_elements(path):
    """Yield the same tuples as _osmium_elements() from OSM XML, plain or bzip2-compressed."""
    opener = bz2.open if str(path).lower().endswith(".bz2") else open
    try:
        with opener(path, "rb") as handle:
            for _event, element in ElementTree.iterparse(handle, events=("end",)):
                if element.tag == "node":
                    yield "node", int(element.get("id")), float(element.get("lat")), float(element.get("lon"))
                    element.clear()
                elif element.tag == "way":
                    tags = {tag.get("k"): tag.get("v") for tag in element.iter("tag")}
                    refs = [int(nd.get("ref")) for nd in element.iter("nd")]
                    yield "way", int(element.get("id")), tags, refs
                    element.clear()
    except (ElementTree.ParseError, OSError, TypeError, ValueError) as error:
        raise RoadFileError(_("无法读取路网文件 %(path)s:%(error)s。请确认它是完整的 OpenStreetMap 文件。")
                            % {"path": path, "error": error}) from error


def write_osm_xml(path, nodes, ways):
    """Write the kept nodes and ways as OSM XML for osmnx."""
    used = sorted({ref for _way_id, _tags, refs in ways for ref in refs})
    with open(path, "w", encoding="utf-8") as out:
        out.write('<?xml version="1.0" encoding="UTF-8"?>\n<osm version="0.6" generator="FireGrid">\n')
        for node_id in used:
            lat, lng = nodes[node_id]
            out.write(f' <node id="{node_id}" lat="{lat:.7f}" lon="{lng:.7f}"/>\n')
        for way_id, tags, refs in ways:
            out.write(f' <way id="{way_id}">\n')
            out.writelines(f'  <nd ref="{ref}"/>\n' for ref in refs)
            out.writelines(f"  <tag k={quoteattr(key)} v={quoteattr(value)}/>\n" for key, value in tags.items())
            out.write(" </way>\n")
        out.write("</osm>\n")


def keep_largest_strong_component(graph, report):
    """Return the largest strongly connected component and record what the other pieces held."""
    components = list(nx.strongly_connected_components(graph))
    if len(components) <= 1:
        return graph
    largest = max(components, key=len)
    dropped_nodes = set(graph.nodes) - largest
    dropped_edges = [(u, v, data) for u, v, data in graph.edges(data=True) if u in dropped_nodes or v in dropped_nodes]
    report.components_dropped = len(components) - 1
    report.nodes_dropped_disconnected = len(dropped_nodes)
    report.edges_dropped_disconnected = len(dropped_edges)
    report.length_dropped_disconnected_m = float(sum(data.get("length", 0.0) for _u, _v, data in dropped_edges))
    return graph.subgraph(largest).copy()


def parse_maxspeed_kph(value):
    """Return a ``maxspeed`` tag in km/h, or None when it is not a plain number (``CN:urban``, ``none``, lists)."""
    if isinstance(value, list):
        speeds = [parse_maxspeed_kph(item) for item in value]
        speeds = [speed for speed in speeds if speed]
        return min(speeds) if speeds else None
    match = _NUMBER.match(str(value or ""))
    if not match:
        return None
    speed = float(match.group(1))
    if (match.group(2) or "").lower() == "mph":
        speed *= 1.609344
    return speed if speed > 0 else None


def add_speeds_and_times(graph, speeds):
    """Set ``speed_kph`` and ``travel_time`` (s) on every edge.

    The speed is the class's speed from the table, lowered to a posted
    ``maxspeed`` where that is lower. Merged edges with several classes take
    the slowest listed class.
    """
    for _u, _v, data in graph.edges(data=True):
        classes = data.get("highway")
        classes = classes if isinstance(classes, list) else [classes]
        class_speeds = [speeds[name] for name in classes if name in speeds]
        speed = min(class_speeds) if class_speeds else min(speeds.values())
        posted = parse_maxspeed_kph(data.get("maxspeed"))
        if posted:
            speed = min(speed, posted)
        data["speed_kph"] = float(speed)
        data["travel_time"] = float(data["length"]) / (speed / 3.6)


def report_as_dict(report):
    return asdict(report)
