"""Snapping points to a road graph, shortest-path matrices and path geometry.

Shortest paths run on scipy's csgraph Dijkstra over the CSR matrices of a
RoadGraph, which is much faster than networkx for many sources at once.
"""
from dataclasses import dataclass

import numpy as np
import osmnx as ox
from pyproj import Transformer
from scipy.sparse.csgraph import dijkstra
from shapely.geometry import LineString, Point


@dataclass
class SnappedPoint:
    """A WGS84 point snapped to its nearest road edge, and the graph node it is routed from."""

    lat: float
    lng: float
    node: int
    distance_m: float
    edge: tuple


def to_projected(road_graph, lats, lngs):
    """Return x, y arrays of WGS84 points in the graph's metric CRS."""
    transformer = Transformer.from_crs("EPSG:4326", road_graph.crs, always_xy=True)
    return transformer.transform(np.asarray(lngs, dtype=float), np.asarray(lats, dtype=float))


def to_wgs84(road_graph, xs, ys):
    """Return lng, lat arrays of points in the graph's metric CRS."""
    transformer = Transformer.from_crs(road_graph.crs, "EPSG:4326", always_xy=True)
    return transformer.transform(np.asarray(xs, dtype=float), np.asarray(ys, dtype=float))


def snap_points(road_graph, lats, lngs):
    """Snap WGS84 points to their nearest edges and pick the nearer end node of each edge.

    Returns a list of SnappedPoint with ``distance_m`` from the point to the
    edge's geometry.

    NOTE: a stop is routed from the end node nearer to it, not from the
    snapped position along the edge. A tour may therefore drive up to half
    an edge past the stop, and reach a stop on a one-way edge from its far end.
    """
    if len(lats) == 0:
        return []
    graph = road_graph.graph
    xs, ys = to_projected(road_graph, lats, lngs)
    edges, distances = ox.distance.nearest_edges(graph, xs, ys, return_dist=True)
    snapped = []
    for lat, lng, x, y, edge, distance_m in zip(lats, lngs, xs, ys, edges, distances):
        u, v, _key = edge
        to_u = np.hypot(graph.nodes[u]["x"] - x, graph.nodes[u]["y"] - y)
        to_v = np.hypot(graph.nodes[v]["x"] - x, graph.nodes[v]["y"] - y)
        node = u if to_u <= to_v else v
        snapped.append(SnappedPoint(lat=float(lat), lng=float(lng), node=int(node),
                                    distance_m=float(distance_m), edge=(int(u), int(v), int(_key))))
    return snapped


@dataclass
class PathMatrix:
    """Shortest travel times and lengths between a list of nodes, with predecessors for paths.

    ``time_s[i, j]`` and ``length_m[i, j]`` are along the fastest path from
    ``nodes[i]`` to ``nodes[j]``; ``np.inf`` where there is none.
    """

    nodes: list
    time_s: np.ndarray
    length_m: np.ndarray
    predecessors: np.ndarray


def path_matrix(road_graph, nodes):
    """Compute fastest paths between all ``nodes`` (one Dijkstra per distinct node)."""
    rows = np.array([road_graph.node_position(node) for node in nodes], dtype=np.int64)
    unique_rows, inverse = np.unique(rows, return_inverse=True)
    times, predecessors = dijkstra(road_graph.matrix("travel_time"), directed=True, indices=unique_rows,
                                   return_predecessors=True)
    times = times[inverse][:, rows]
    predecessors = predecessors[inverse]

    # The length of each fastest path, summed along its predecessors.
    length_by_pair = road_graph.fastest_edge_lengths()
    lengths = np.full(times.shape, np.inf)
    for i in range(len(rows)):
        for j in range(len(rows)):
            if np.isfinite(times[i, j]):
                lengths[i, j] = _path_length(predecessors[i], rows[i], rows[j], length_by_pair)
    return PathMatrix(nodes=list(nodes), time_s=times, length_m=lengths, predecessors=predecessors)


def _path_length(predecessor_row, source, target, length_by_pair):
    total = 0.0
    current = target
    while current != source:
        previous = predecessor_row[current]
        if previous < 0:
            return np.inf
        total += length_by_pair[(previous, current)]
        current = previous
    return total


def node_path(road_graph, matrix, i, j):
    """Return the node ids of the fastest path from ``matrix.nodes[i]`` to ``matrix.nodes[j]``."""
    source = road_graph.node_position(matrix.nodes[i])
    current = road_graph.node_position(matrix.nodes[j])
    rows = [current]
    while current != source:
        current = matrix.predecessors[i][current]
        if current < 0:
            return []
        rows.append(current)
    return [int(road_graph.nodes[row]) for row in reversed(rows)]


def path_line(road_graph, node_ids):
    """Return the projected LineString along ``node_ids``, following each edge's geometry."""
    graph = road_graph.graph
    coords = []
    for u, v in zip(node_ids[:-1], node_ids[1:]):
        data = road_graph.best_edge(u, v, "travel_time")
        geometry = data.get("geometry")
        if geometry is None:
            geometry = LineString([(graph.nodes[u]["x"], graph.nodes[u]["y"]), (graph.nodes[v]["x"], graph.nodes[v]["y"])])
        part = list(geometry.coords)
        # osmnx stores geometries in the edge's own direction; guard against reversed ones.
        if Point(part[0]).distance(Point(graph.nodes[u]["x"], graph.nodes[u]["y"])) > \
                Point(part[-1]).distance(Point(graph.nodes[u]["x"], graph.nodes[u]["y"])):
            part.reverse()
        coords.extend(part if not coords else part[1:])
    if len(coords) == 1:
        coords.append(coords[0])
    return LineString(coords) if coords else None
