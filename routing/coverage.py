"""Fire-station coverage: travel-time isochrones and what lies outside them.

An isochrone is the part of the road network a station reaches within a
travel time (5 minutes by default), drawn as the union of a band of
FIREGRID_ISOCHRONE_BUFFER_M metres around every reached street. A street
reached only partly is cut where the time runs out. Cells and tickets are
judged only inside the network's extent (the convex hull of its nodes,
widened by the isochrone band), because beyond it the file contains no
roads to judge them by.
"""
import logging
import time
from dataclasses import dataclass, field

import h3
import numpy as np
import shapely
from django.conf import settings
from django.utils.module_loading import import_string
from django.utils.translation import gettext as _
from scipy.sparse.csgraph import dijkstra
from shapely.geometry import LineString, MultiPoint, Polygon as ShapelyPolygon
from shapely.ops import substring

from routing.network import snap_points, to_projected, to_wgs84
from spatial.models import Ticket

logger = logging.getLogger(__name__)


@dataclass
class StationReach:
    """One station's isochrone (projected polygon), or the reason it has none."""

    station: object
    lat: float
    lng: float
    snap_distance_m: float | None = None
    polygon: object = None
    reason: str = ""

    @property
    def area_km2(self):
        return self.polygon.area / 1e6 if self.polygon is not None else 0.0


@dataclass
class CoverageReport:
    """Isochrones of all stations and the cells, tickets and high-risk cells outside every one of them."""

    minutes: float
    reaches: list = field(default_factory=list)
    union: object = None
    extent: object = None
    # h3 string -> ticket count, for cells with tickets in the network's extent
    cells_inside: dict = field(default_factory=dict)
    cells_outside: dict = field(default_factory=dict)
    tickets_inside: int = 0
    # (ticket id, lat, lng, category label) of tickets outside every isochrone
    tickets_outside: list = field(default_factory=list)
    # StopCandidate of high-risk cells outside every isochrone
    high_risk_unreachable: list = field(default_factory=list)
    high_risk_total: int = 0
    duration_s: float = 0.0

    @property
    def covered_km2(self):
        return self.union.area / 1e6 if self.union is not None else 0.0

    @property
    def extent_km2(self):
        return self.extent.area / 1e6 if self.extent is not None else 0.0


def _edge_arrays(road_graph, buffer_m):
    """Return per-edge arrays (u rows, v rows, travel times, projected lines, street ids, street buffers).

    The two directed edges of a two-way street share one street id and one
    buffered polygon, so a union never merges the same band twice. Built
    once per graph and buffer width.
    """
    key = f"edge_arrays:{buffer_m}"
    if key not in road_graph._index:
        graph = road_graph.graph
        u_rows, v_rows, times, lines, street_ids = [], [], [], [], []
        streets = {}
        for u, v, data in graph.edges(data=True):
            u_rows.append(road_graph.node_position(u))
            v_rows.append(road_graph.node_position(v))
            times.append(float(data["travel_time"]))
            geometry = data.get("geometry")
            if geometry is None:
                geometry = LineString([(graph.nodes[u]["x"], graph.nodes[u]["y"]),
                                       (graph.nodes[v]["x"], graph.nodes[v]["y"])])
            lines.append(geometry)
            street = (min(u, v), max(u, v), round(float(data["length"]), 1))
            street_ids.append(streets.setdefault(street, len(streets)))
        first_line = {}
        for line, street in zip(lines, street_ids):
            first_line.setdefault(street, line)
        street_buffers = shapely.buffer(np.array([first_line[i] for i in range(len(streets))], dtype=object),
                                        buffer_m, quad_segs=4)
        road_graph._index[key] = (np.array(u_rows), np.array(v_rows), np.array(times), np.array(lines, dtype=object),
                                  np.array(street_ids), street_buffers)
    return road_graph._index[key]


def network_extent(road_graph, margin_m=None):
    """Return the convex hull of the graph's nodes, widened by ``margin_m``, in its projected CRS.

    The margin defaults to FIREGRID_ISOCHRONE_BUFFER_M, the band an
    isochrone draws around its outermost streets. A wider margin would count
    places beyond a clipped extract's last road as unreachable.
    """
    margin_m = settings.FIREGRID_ISOCHRONE_BUFFER_M if margin_m is None else margin_m
    points = [(data["x"], data["y"]) for _node, data in road_graph.graph.nodes(data=True)]
    return MultiPoint(points).convex_hull.buffer(margin_m, quad_segs=4)


def station_isochrones(road_graph, stations, minutes=None, buffer_m=None, snap_max_m=None):
    """Compute each station's isochrone polygon in the graph's projected CRS.

    Parameters
    ----------
    stations : list of objects with ``location`` (GEOS Point, WGS84)
    minutes : float
        Travel time limit (FIREGRID_ISOCHRONE_MIN by default).
    buffer_m : float
        Half-width in metres of the band drawn around reached streets.
    snap_max_m : float
        Farthest a station may lie from a road; stations farther away
        (outside the extract, or mis-geocoded) get no isochrone and a reason.

    Returns
    -------
    list of StationReach
    """
    minutes = settings.FIREGRID_ISOCHRONE_MIN if minutes is None else float(minutes)
    buffer_m = settings.FIREGRID_ISOCHRONE_BUFFER_M if buffer_m is None else float(buffer_m)
    snap_max_m = settings.FIREGRID_PATROL_SNAP_MAX_M if snap_max_m is None else float(snap_max_m)
    limit_s = minutes * 60
    reaches = [StationReach(station=station, lat=station.location.y, lng=station.location.x) for station in stations]
    if not reaches:
        return reaches
    snapped = snap_points(road_graph, [reach.lat for reach in reaches], [reach.lng for reach in reaches])
    on_road = []
    for reach, point in zip(reaches, snapped):
        reach.snap_distance_m = point.distance_m
        if point.distance_m > snap_max_m:
            reach.reason = _("距路网最近道路 %(distance).0f 米,超过 %(limit).0f 米:站点在路网范围外或坐标有误。") % {
                "distance": point.distance_m, "limit": snap_max_m}
        else:
            on_road.append((reach, road_graph.node_position(point.node)))
    if not on_road:
        return reaches

    u_rows, v_rows, edge_times, lines, street_ids, street_buffers = _edge_arrays(road_graph, buffer_m)
    times = dijkstra(road_graph.matrix("travel_time"), directed=True, indices=[row for _reach, row in on_road],
                     limit=limit_s)
    for (reach, _row), station_times in zip(on_road, times):
        start_times = station_times[u_rows]
        end_times = start_times + edge_times
        full = end_times <= limit_s
        partial = np.isfinite(start_times) & ~full
        full_streets = np.unique(street_ids[full])
        pieces = []
        for line, start, duration, street in zip(lines[partial], start_times[partial], edge_times[partial],
                                                 street_ids[partial]):
            fraction = (limit_s - start) / duration if duration > 0 else 1.0
            if fraction > 0 and street not in full_streets:
                pieces.append(substring(line, 0, fraction, normalized=True))
        if not len(full_streets) and not pieces:
            reach.reason = _("在 %(minutes)g 分钟内没有到达任何道路。") % {"minutes": minutes}
            continue
        partial_buffers = shapely.buffer(np.array(pieces, dtype=object), buffer_m, quad_segs=4)
        reach.polygon = shapely.union_all(np.concatenate([street_buffers[full_streets], partial_buffers]))
    return reaches


def coverage_report(road_graph, stations, minutes=None, buffer_m=None):
    """Compute isochrones and list the H3 cells, tickets and high-risk cells that no station reaches in time.

    H3 cells are the fine-resolution cells of tickets inside the network's
    extent, judged by their centre. High-risk cells come from the function
    named by FIREGRID_PATROL_CELL_VALUE (the latest risk run, or Gi* hot
    cells while no risk run exists).
    """
    started = time.perf_counter()
    minutes = settings.FIREGRID_ISOCHRONE_MIN if minutes is None else float(minutes)
    report = CoverageReport(minutes=minutes)
    report.reaches = station_isochrones(road_graph, stations, minutes, buffer_m)
    polygons = [reach.polygon for reach in report.reaches if reach.polygon is not None]
    report.union = shapely.union_all(polygons) if polygons else ShapelyPolygon()
    report.extent = network_extent(road_graph)
    shapely.prepare(report.union)
    shapely.prepare(report.extent)

    extent_wgs84 = extent_as_geos(road_graph, report.extent)
    tickets = list(Ticket.objects.filter(location__within=extent_wgs84)
                   .values_list("pk", "location", "h3_fine", "category"))
    if tickets:
        xs, ys = to_projected(road_graph, [t[1].y for t in tickets], [t[1].x for t in tickets])
        inside = shapely.contains_xy(report.union, xs, ys)
        report.tickets_inside = int(inside.sum())
        for (pk, location, _cell, category), is_inside in zip(tickets, inside):
            if not is_inside:
                report.tickets_outside.append((pk, location.y, location.x, category))

    counts = {}
    for _pk, _location, cell, _category in tickets:
        if cell:
            key = h3.int_to_str(cell)
            counts[key] = counts.get(key, 0) + 1
    if counts:
        centres = [h3.cell_to_latlng(key) for key in counts]
        xs, ys = to_projected(road_graph, [lat for lat, _lng in centres], [lng for _lat, lng in centres])
        inside = shapely.contains_xy(report.union, xs, ys)
        for (key, count), is_inside in zip(counts.items(), inside):
            (report.cells_inside if is_inside else report.cells_outside)[key] = count

    cell_value = import_string(settings.FIREGRID_PATROL_CELL_VALUE)
    high_risk = list(cell_value(extent_wgs84, None, 10_000))
    report.high_risk_total = len(high_risk)
    if high_risk:
        xs, ys = to_projected(road_graph, [c.lat for c in high_risk], [c.lng for c in high_risk])
        inside = shapely.contains_xy(report.union, xs, ys)
        report.high_risk_unreachable = [c for c, is_inside in zip(high_risk, inside) if not is_inside]
    report.duration_s = time.perf_counter() - started
    logger.info("coverage of %d stations at %g min in %.2f s: %d of %d ticket cells outside, %d of %d high-risk cells",
                len(report.reaches), minutes, report.duration_s, len(report.cells_outside),
                len(report.cells_outside) + len(report.cells_inside), len(report.high_risk_unreachable),
                report.high_risk_total)
    return report


def extent_as_geos(road_graph, polygon):
    """Return a projected shapely polygon as a WGS84 GEOS polygon for database filters."""
    from django.contrib.gis.geos import GEOSGeometry

    return GEOSGeometry(to_wgs84_shape(road_graph, polygon).wkt, srid=4326)


def to_wgs84_shape(road_graph, geometry):
    """Return a projected shapely geometry in WGS84 (x = lng, y = lat)."""
    def project(xs, ys):
        lngs, lats = to_wgs84(road_graph, xs, ys)
        return np.asarray(lngs), np.asarray(lats)

    return shapely.transform(geometry, project, interleaved=False)
