"""Patrol routes for grid heads: candidate stops, their values, and the planned tour.

A patrol starts at a point at a given time with a time budget, and visits
stops of four kinds: the highest-risk H3 cells of the area, open tickets
that need a visit, open sensor alarms and drawn re-inspections. Each stop
has a value. plan_patrol() snaps every stop to the road graph and lists
those that cannot be reached with the reason. It then picks and orders the
others to maximise the value visited within the budget (routing.solver).

The value of an H3 cell comes from the function named by
FIREGRID_PATROL_CELL_VALUE: risk_cell_values() by default, the latest risk
run's probabilities, with Gi* hot cells while no risk run exists.
"""
import logging
import math
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from datetime import time as clock_time

import h3
import numpy as np
from django.conf import settings
from django.contrib.gis.geos import Point, Polygon
from django.utils import timezone
from django.utils.module_loading import import_string
from django.utils.translation import gettext as _
from django.utils.translation import gettext_lazy

from routing.exceptions import PatrolInputError
from routing.network import node_path, path_line, path_matrix, snap_points, to_wgs84
from routing.solver import solve_orienteering
from spatial.models import HotspotRun, RiskRun, Ticket, TicketStatus

logger = logging.getLogger(__name__)

STOP_KIND_LABELS = {
    "cell": gettext_lazy("高风险H3单元"),
    "ticket": gettext_lazy("待上门工单"),
    "alarm": gettext_lazy("传感器告警"),
    "reinspection": gettext_lazy("复查"),
}
# Statuses of tickets still waiting for a visit; on_site, rectified and closed tickets have had theirs.
OPEN_VISIT_STATUSES = (TicketStatus.RECEIVED, TicketStatus.DISPATCHED, TicketStatus.ACCEPTED, TicketStatus.REOPENED)
# Open tickets taken as candidates, oldest first, so the distance matrix stays small.
MAX_TICKET_STOPS = 40
DEFAULT_START_TIME = clock_time(9, 0)


@dataclass
class StopCandidate:
    """A place a patrol may visit, with its value and service time (s; None takes the default)."""

    kind: str
    key: str
    lat: float
    lng: float
    value: float
    label: str = ""
    service_s: float | None = None

    @property
    def kind_label(self):
        return str(STOP_KIND_LABELS.get(self.kind, self.kind))


@dataclass
class PlannedStop:
    """A stop of the tour with its arrival time and the leg that leads to it."""

    sequence: int
    candidate: StopCandidate
    arrival_at: datetime
    departure_at: datetime
    leg_time_s: float
    leg_length_m: float
    snap_distance_m: float


@dataclass
class SkippedStop:
    """A candidate left out of the tour: ``code`` is too_far_from_road, no_path, over_budget or not_chosen."""

    candidate: StopCandidate
    code: str
    reason: str


@dataclass
class PatrolPlan:
    """A planned patrol: ordered stops, left-out stops with reasons, and the path in WGS84."""

    start_lat: float
    start_lng: float
    start_at: datetime
    budget_s: float
    return_to_start: bool
    stops: list = field(default_factory=list)
    unreachable: list = field(default_factory=list)
    not_chosen: list = field(default_factory=list)
    # [(lng, lat), ...] along the roads from the start through every stop.
    path_lnglat: list = field(default_factory=list)
    length_m: float = 0.0
    travel_s: float = 0.0
    service_s: float = 0.0
    value: float = 0.0
    solver: str = ""
    solve_s: float = 0.0

    @property
    def duration_s(self):
        """Travel plus service time of the tour in seconds."""
        return self.travel_s + self.service_s

    @property
    def end_at(self):
        return self.start_at + timedelta(seconds=self.duration_s)


def parse_lat_lng(text):
    """Parse ``"LAT,LNG"`` in WGS84 degrees; raise PatrolInputError naming the value otherwise."""
    parts = [part.strip() for part in str(text or "").split(",")]
    try:
        lat, lng = (float(part) for part in parts)
    except ValueError:
        raise PatrolInputError(_("起点 %(value)r 无效:应为“纬度,经度”(WGS84,例如 22.69,114.21)。") % {"value": text}) \
            from None
    if not (-90 <= lat <= 90 and -180 <= lng <= 180) or not (math.isfinite(lat) and math.isfinite(lng)):
        raise PatrolInputError(_("起点 %(value)r 超出经纬度范围:纬度在 -90 到 90 之间,经度在 -180 到 180 之间。")
                               % {"value": text})
    return lat, lng


def parse_area(text):
    """Parse ``"MIN_LNG,MIN_LAT,MAX_LNG,MAX_LAT"`` into a WGS84 Polygon; raise PatrolInputError otherwise."""
    parts = [part.strip() for part in str(text or "").split(",")]
    try:
        min_lng, min_lat, max_lng, max_lat = (float(part) for part in parts)
    except ValueError:
        raise PatrolInputError(_("巡查范围 %(value)r 无效:应为“最小经度,最小纬度,最大经度,最大纬度”。") % {"value": text}) \
            from None
    if not (min_lng < max_lng and min_lat < max_lat):
        raise PatrolInputError(_("巡查范围 %(value)r 无效:最小值必须小于最大值。") % {"value": text})
    return Polygon.from_bbox((min_lng, min_lat, max_lng, max_lat))


def graph_area(road_graph, margin_m=None):
    """Return the WGS84 bounding box of the road graph's nodes, widened by ``margin_m``, as a Polygon.

    The margin defaults to FIREGRID_PATROL_SNAP_MAX_M, because a stop that
    far from the outermost road can still be snapped to it.
    """
    margin_m = settings.FIREGRID_PATROL_SNAP_MAX_M if margin_m is None else margin_m
    xs = [data["x"] for _node, data in road_graph.graph.nodes(data=True)]
    ys = [data["y"] for _node, data in road_graph.graph.nodes(data=True)]
    lngs, lats = to_wgs84(road_graph, [min(xs) - margin_m, max(xs) + margin_m],
                          [min(ys) - margin_m, max(ys) + margin_m])
    return Polygon.from_bbox((float(lngs[0]), float(lats[0]), float(lngs[1]), float(lats[1])))


def patrol_start(on_date, start_time=None):
    """Return the aware start datetime in the current time zone (09:00 unless ``start_time`` is given)."""
    return timezone.make_aware(datetime.combine(on_date, start_time or DEFAULT_START_TIME))


def hotspot_cell_values(area, on_date, limit):
    """Return the ``limit`` most valuable hot H3 cells of the latest Gi* run whose centres lie in ``area``.

    A hot cell (Gi* label hot_90/95/99) is worth its z-score plus
    log2(1 + tickets in the cell), so that among equally significant cells
    the one with more tickets comes first.

    The fallback of ``risk_cell_values`` when no risk run is stored;
    ``on_date`` is unused.
    """
    run = HotspotRun.objects.order_by("-created_at", "-pk").first()
    if run is None:
        return []
    cells = run.cells.filter(label__startswith="hot", z_score__gt=0).values_list("h3_cell", "z_score", "ticket_count")
    candidates = []
    for cell, z_score, ticket_count in cells:
        lat, lng = h3.cell_to_latlng(h3.int_to_str(cell))
        if not area.contains(Point(lng, lat, srid=4326)):
            continue
        value = float(z_score) + math.log2(1 + ticket_count)
        candidates.append(StopCandidate(
            kind="cell", key=h3.int_to_str(cell), lat=lat, lng=lng, value=round(value, 3),
            label=_("Gi* z=%(z).2f,工单 %(count)d 件(热点分析 #%(run)d)") % {
                "z": z_score, "count": ticket_count, "run": run.pk},
        ))
    candidates.sort(key=lambda candidate: (-candidate.value, candidate.key))
    return candidates[:limit]


# A risk cell's stop value is its predicted probability of at least one
# ticket times this factor, so that a near-certain cell (p = 0.9, value 9)
# outranks one open ticket (3) and a cell at p = 0.3 does not.
RISK_VALUE_SCALE = 10.0


def risk_cell_values(area, on_date, limit):
    """Return the ``limit`` riskiest H3 cells of the latest risk run whose centres lie in ``area``.

    The run whose forecast period starts on or before ``on_date`` is used,
    else the latest one. Without any risk run, Gi* hot cells stand in
    (``hotspot_cell_values``), so a fresh installation still plans patrols.
    """
    runs = RiskRun.objects.order_by("-predicted_start", "-created_at", "-pk")
    run = runs.filter(predicted_start__lte=on_date).first() if on_date else None
    run = run or runs.first()
    if run is None:
        return hotspot_cell_values(area, on_date, limit)

    prepared_area = area.prepared
    candidates = []
    cells = run.cells.order_by("-probability", "h3_cell").values_list("h3_cell", "probability")
    for cell, probability in cells.iterator(chunk_size=2000):
        lat, lng = h3.cell_to_latlng(h3.int_to_str(cell))
        if not prepared_area.contains(Point(lng, lat, srid=4326)):
            continue
        candidates.append(StopCandidate(
            kind="cell", key=h3.int_to_str(cell), lat=lat, lng=lng,
            value=round(RISK_VALUE_SCALE * float(probability), 3),
            label=_("风险概率 %(probability).0f%%(风险预测 #%(run)d,%(start)s 起)") % {
                "probability": 100 * probability, "run": run.pk, "start": run.predicted_start},
        ))
        if len(candidates) >= limit:
            break
    return candidates


def ticket_candidates(area, limit=MAX_TICKET_STOPS):
    """Return open tickets located in ``area`` that still need a visit, oldest first."""
    value = float(settings.FIREGRID_PATROL_STOP_VALUES["ticket"])
    tickets = (Ticket.objects.filter(status__in=OPEN_VISIT_STATUSES, location__within=area)
               .order_by("received_at", "pk")[:limit])
    candidates = []
    for ticket in tickets:
        candidates.append(StopCandidate(
            kind="ticket", key=f"{ticket.source_system}:{ticket.external_id}",
            lat=ticket.location.y, lng=ticket.location.x, value=value,
            label=f"{ticket.get_category_display()} · {ticket.address_normalized or ticket.address}".strip(" ·"),
        ))
    return candidates


def gather_candidates(area, on_date, alarms=(), reinspections=(), max_cells=None):
    """Collect the stops a patrol may visit in ``area``: risky cells, open tickets, alarms and re-inspections.

    ``alarms`` and ``reinspections`` are StopCandidate lists supplied by the
    caller, because sensor alarms and re-inspection draws are not stored by
    this project yet. A candidate without a value gets its kind's value from
    FIREGRID_PATROL_STOP_VALUES.
    """
    max_cells = settings.FIREGRID_PATROL_MAX_CELLS if max_cells is None else max_cells
    cell_value = import_string(settings.FIREGRID_PATROL_CELL_VALUE)
    candidates = list(cell_value(area, on_date, max_cells))
    candidates.extend(ticket_candidates(area))
    for kind, extra in (("alarm", alarms), ("reinspection", reinspections)):
        for candidate in extra:
            candidate.kind = kind
            if candidate.value is None:
                candidate.value = float(settings.FIREGRID_PATROL_STOP_VALUES[kind])
            candidates.append(candidate)
    return candidates


def plan_patrol(road_graph, start_lat, start_lng, candidates, start_at, budget_s=None, service_s=None,
                snap_max_m=None, time_limit_s=None, return_to_start=True):
    """Plan a patrol that visits the most valuable stops reachable within the budget.

    Parameters
    ----------
    road_graph : routing.roads.RoadGraph
    start_lat, start_lng : float
        Start in WGS84 degrees; it must lie within ``snap_max_m`` of a road.
    candidates : list of StopCandidate
    start_at : datetime
        Aware start time; arrival times follow from it.
    budget_s : float
        Travel plus service time allowed, in seconds (FIREGRID_PATROL_BUDGET_MIN by default).
    service_s : float
        Time spent at a stop whose candidate sets none, in seconds (FIREGRID_PATROL_SERVICE_MIN by default).
    snap_max_m : float
        Farthest a stop may lie from its nearest road edge, in metres.
    time_limit_s : float
        OR-Tools search time limit in seconds.
    return_to_start : bool
        Whether the route ends back at the start.

    Returns
    -------
    PatrolPlan

    Raises
    ------
    PatrolInputError
        When the start is too far from every road or the budget is not positive.
    """
    budget_s = settings.FIREGRID_PATROL_BUDGET_MIN * 60 if budget_s is None else float(budget_s)
    service_s = settings.FIREGRID_PATROL_SERVICE_MIN * 60 if service_s is None else float(service_s)
    snap_max_m = settings.FIREGRID_PATROL_SNAP_MAX_M if snap_max_m is None else float(snap_max_m)
    time_limit_s = settings.FIREGRID_PATROL_SOLVER_TIME_LIMIT_S if time_limit_s is None else float(time_limit_s)
    if not budget_s > 0:
        raise PatrolInputError(_("时间预算必须大于 0 分钟。"))
    if service_s < 0:
        raise PatrolInputError(_("每个点位的停留时间不能为负数。"))

    plan = PatrolPlan(start_lat=start_lat, start_lng=start_lng, start_at=start_at, budget_s=budget_s,
                      return_to_start=return_to_start)
    snapped = snap_points(road_graph, [start_lat, *(c.lat for c in candidates)],
                          [start_lng, *(c.lng for c in candidates)])
    start = snapped[0]
    if start.distance_m > snap_max_m:
        raise PatrolInputError(_("起点 %(lat).6f,%(lng).6f 距最近道路 %(distance).0f 米,超过 %(limit).0f 米:请选择路网范围内、"
                                 "道路附近的起点。") % {"lat": start_lat, "lng": start_lng,
                                                       "distance": start.distance_m, "limit": snap_max_m})

    on_road = []
    for candidate, point in zip(candidates, snapped[1:]):
        if point.distance_m > snap_max_m:
            plan.unreachable.append(SkippedStop(candidate, "too_far_from_road", _(
                "距最近道路 %(distance).0f 米,超过吸附上限 %(limit).0f 米(可能在路网范围外)。") % {
                "distance": point.distance_m, "limit": snap_max_m}))
        else:
            on_road.append((candidate, point))

    matrix = path_matrix(road_graph, [start.node, *(point.node for _candidate, point in on_road)])
    stop_service = [0.0] + [candidate.service_s if candidate.service_s is not None else service_s
                            for candidate, _point in on_road]
    reachable = [0]
    for index, (candidate, _point) in enumerate(on_road, start=1):
        there, back = matrix.time_s[0][index], matrix.time_s[index][0]
        if not (np.isfinite(there) and np.isfinite(back)):
            plan.unreachable.append(SkippedStop(candidate, "no_path", _("按单行道方向无法从起点沿道路到达或返回。")))
            continue
        round_trip_s = there + stop_service[index] + (back if return_to_start else 0.0)
        if round_trip_s > budget_s:
            plan.unreachable.append(SkippedStop(candidate, "over_budget", _(
                "单独往返也需 %(need).0f 分钟(含停留),超过时间预算 %(budget).0f 分钟。") % {
                "need": round_trip_s / 60, "budget": budget_s / 60}))
            continue
        reachable.append(index)

    index_of = np.array(reachable)
    tour = solve_orienteering(
        matrix.time_s[np.ix_(index_of, index_of)], [stop_service[i] for i in reachable],
        [0.0] + [on_road[i - 1][0].value for i in reachable[1:]], budget_s,
        time_limit_s=time_limit_s, return_to_start=return_to_start,
    )
    plan.solver, plan.solve_s = tour.solver, tour.solve_s
    chosen = [int(index_of[position]) for position in tour.order]
    chosen_set = set(chosen)
    for index in reachable[1:]:
        if index not in chosen_set:
            plan.not_chosen.append(SkippedStop(on_road[index - 1][0], "not_chosen", _(
                "时间预算内排不下,价值较低的点位未安排。")))

    _fill_tour(plan, road_graph, matrix, chosen, on_road, stop_service)
    logger.info("patrol planned with %s in %.2f s: %d stops, %d not chosen, %d unreachable, %.0f m, %.0f s",
                plan.solver, plan.solve_s, len(plan.stops), len(plan.not_chosen), len(plan.unreachable),
                plan.length_m, plan.duration_s)
    return plan


def _fill_tour(plan, road_graph, matrix, chosen, on_road, stop_service):
    """Set arrival times, legs, totals and the WGS84 path of the chosen stop order."""
    clock = plan.start_at
    previous = 0
    legs = [*chosen, 0] if plan.return_to_start else list(chosen)
    line_coords = []
    for sequence, index in enumerate(legs, start=1):
        leg_time_s = float(matrix.time_s[previous][index])
        leg_length_m = float(matrix.length_m[previous][index])
        plan.travel_s += leg_time_s
        plan.length_m += leg_length_m
        clock += timedelta(seconds=leg_time_s)
        line = path_line(road_graph, node_path(road_graph, matrix, previous, index))
        if line is not None:
            coords = list(line.coords)
            line_coords.extend(coords if not line_coords else coords[1:])
        if index != 0:
            candidate, point = on_road[index - 1]
            departure = clock + timedelta(seconds=stop_service[index])
            plan.stops.append(PlannedStop(sequence=sequence, candidate=candidate, arrival_at=clock,
                                          departure_at=departure, leg_time_s=leg_time_s,
                                          leg_length_m=leg_length_m, snap_distance_m=point.distance_m))
            plan.service_s += stop_service[index]
            plan.value += candidate.value
            clock = departure
        previous = index
    if line_coords:
        lngs, lats = to_wgs84(road_graph, [x for x, _y in line_coords], [y for _x, y in line_coords])
        plan.path_lnglat = [(round(float(lng), 7), round(float(lat), 7)) for lng, lat in zip(lngs, lats)]
