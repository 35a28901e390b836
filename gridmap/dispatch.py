"""Place tickets in the responsibility grid and dispatch them to departments (1+3+N).

``place_tickets`` assigns every located ticket of a selection to the
smallest grid unit containing it, in three set-based statements for the
whole selection (contained, nearest within a distance, county fallback).
``dispatch_ticket`` is the entry point for other apps (IoT alarms, Open311):
it places the ticket, applies the routing rules and either dispatches it
to a lead department with partners or puts it in the dispatchers' queue.
"""
import logging
import time

from django.conf import settings
from django.db import connection, transaction
from django.utils import timezone
from django.utils.translation import gettext as _

from gridmap import deadlines, notify, workflow
from gridmap.models import (EventKind, GridLevel, GridPlacement, GridUnit, NotificationKind, PlacementMethod,
                            RoutingRule, TicketEvent, TicketHandling, keywords_match)
from spatial.models import TicketStatus

logger = logging.getLogger(__name__)

# Raw SQL because the ORM cannot express LATERAL joins, temporary tables or
# INSERT ... SELECT ... ON CONFLICT; every value is a bound parameter, and the
# only formatted piece is one of the fixed _SELECTIONS fragments.
_UPSERT = """
    ON CONFLICT (ticket_id) DO UPDATE
    SET unit_id = EXCLUDED.unit_id, method = EXCLUDED.method,
        distance_m = EXCLUDED.distance_m, placed_at = EXCLUDED.placed_at
"""

_SELECTIONS = {
    "all": "",
    "ids": "AND t.id = ANY(%(ids)s)",
    "batch": "AND t.batch_id = %(batch)s",
}

# The tickets to place, copied once so that each step reads a small table.
_POINTS_SQL = """
    CREATE TEMP TABLE gridmap_place_points AS
    SELECT t.id, t.location FROM spatial_ticket t WHERE t.location IS NOT NULL {selection}
"""

# Few tickets: probe the grid's spatial index once per ticket.
_CONTAINED_PER_TICKET_SQL = """
    INSERT INTO gridmap_gridplacement (ticket_id, unit_id, method, distance_m, placed_at)
    SELECT p.id, u.id, 'contained', 0, %(now)s
    FROM gridmap_place_points p
    CROSS JOIN LATERAL (
        SELECT g.id FROM gridmap_gridunit g
        WHERE ST_Intersects(g.geom, p.location)
        ORDER BY g.level DESC, g.id
        LIMIT 1
    ) u
""" + _UPSERT

# Many tickets: index the points and probe them once per grid unit. PostGIS
# then tests every point of a unit against one prepared polygon, which is
# about ten times faster than a probe per ticket. OFFSET 0 keeps the planner
# from flattening the LATERAL back into a ticket-driven join.
_CONTAINED_PER_UNIT_SQL = """
    INSERT INTO gridmap_gridplacement (ticket_id, unit_id, method, distance_m, placed_at)
    SELECT DISTINCT ON (p.id) p.id, g.id, 'contained', 0, %(now)s
    FROM gridmap_gridunit g
    CROSS JOIN LATERAL (
        SELECT p.id FROM gridmap_place_points p WHERE ST_Intersects(g.geom, p.location) OFFSET 0
    ) p
    ORDER BY p.id, g.level DESC, g.id
""" + _UPSERT

_REST_SQL = """
    CREATE TEMP TABLE gridmap_place_rest AS
    SELECT p.id, p.location FROM gridmap_place_points p
    WHERE NOT EXISTS (SELECT 1 FROM gridmap_gridplacement g WHERE g.ticket_id = p.id AND g.placed_at = %(now)s)
"""

# Nearest unit whose edge is within max_m metres (geodesic). The degree
# window lets the GiST index prefilter; 1 degree of latitude is at least
# 110,574 m, and a degree of longitude shrinks with cos(latitude).
_NEAREST_SQL = """
    INSERT INTO gridmap_gridplacement (ticket_id, unit_id, method, distance_m, placed_at)
    SELECT p.id, u.id, 'nearest', u.distance_m, %(now)s
    FROM gridmap_place_rest p
    CROSS JOIN LATERAL (
        SELECT g.id, ST_Distance(g.geom::geography, p.location::geography) AS distance_m
        FROM gridmap_gridunit g
        WHERE ST_DWithin(g.geom, p.location,
                         %(max_m)s / (110574.0 * GREATEST(cos(radians(LEAST(abs(ST_Y(p.location)), 89.0))), 0.01)))
          AND ST_DWithin(g.geom::geography, p.location::geography, %(max_m)s)
        ORDER BY distance_m, g.level DESC, g.id
        LIMIT 1
    ) u
""" + _UPSERT

_COUNTY_SQL = """
    INSERT INTO gridmap_gridplacement (ticket_id, unit_id, method, distance_m, placed_at)
    SELECT p.id, u.id, 'county', u.distance_m, %(now)s
    FROM gridmap_place_rest p
    CROSS JOIN LATERAL (
        SELECT g.id, ST_Distance(g.geom::geography, p.location::geography) AS distance_m
        FROM gridmap_gridunit g
        WHERE g.level = %(county)s
        ORDER BY g.geom <-> p.location, g.id
        LIMIT 1
    ) u
    WHERE NOT EXISTS (SELECT 1 FROM gridmap_gridplacement g WHERE g.ticket_id = p.id AND g.placed_at = %(now)s)
""" + _UPSERT

# From this many tickets on, the points are indexed and probed per grid unit.
PER_UNIT_MIN_TICKETS = 20_000


def place_tickets(ticket_ids=None, *, batch_id=None, max_distance_m=None):
    """Assign located tickets to grid units in three set-based statements; return counts by method.

    Parameters
    ----------
    ticket_ids : iterable of int, optional
        Tickets to place; by default every located ticket (or ``batch_id``'s).
    batch_id : int, optional
        Place the tickets of one import batch.
    max_distance_m : float, optional
        Largest distance in metres from a ticket to a unit's edge for the
        nearest-unit fallback; ``FIREGRID_GRID_NEAREST_M`` by default.

    Returns
    -------
    dict mapping PlacementMethod values to the number of tickets placed.

    Notes
    -----
    A ticket inside several units goes to the one of the highest level
    (building before community before county), ties to the lowest id.
    Placing again replaces the earlier placement, so the function can run
    after the grid changes.
    """
    if max_distance_m is None:
        max_distance_m = settings.FIREGRID_GRID_NEAREST_M
    if ticket_ids is not None:
        selection, params = "ids", {"ids": [int(pk) for pk in ticket_ids]}
    elif batch_id is not None:
        selection, params = "batch", {"batch": int(batch_id)}
    else:
        selection, params = "all", {}
    # One timestamp marks this run's rows, so each fallback skips what an earlier step placed.
    params |= {"now": timezone.now(), "max_m": float(max_distance_m), "county": int(GridLevel.COUNTY)}
    counts, durations = {}, {}
    with transaction.atomic(), connection.cursor() as cursor:
        started = time.perf_counter()
        cursor.execute("DROP TABLE IF EXISTS gridmap_place_points, gridmap_place_rest")
        # The per-unit join sorts about two rows per ticket; keep that sort in memory.
        cursor.execute("SET LOCAL work_mem = '256MB'")
        cursor.execute(_POINTS_SQL.format(selection=_SELECTIONS[selection]), params)
        contained_sql = _CONTAINED_PER_TICKET_SQL
        if cursor.rowcount >= PER_UNIT_MIN_TICKETS:
            cursor.execute("CREATE INDEX ON gridmap_place_points USING gist (location)")
            cursor.execute("ANALYZE gridmap_place_points")
            contained_sql = _CONTAINED_PER_UNIT_SQL
        durations["select"] = round(time.perf_counter() - started, 2)
        steps = ((PlacementMethod.CONTAINED, contained_sql), ("rest", _REST_SQL),
                 (PlacementMethod.NEAREST, _NEAREST_SQL), (PlacementMethod.COUNTY, _COUNTY_SQL))
        for method, sql in steps:
            started = time.perf_counter()
            cursor.execute(sql, params)
            if method != "rest":
                counts[method.value] = cursor.rowcount
            durations[str(method)] = round(time.perf_counter() - started, 2)
        cursor.execute("DROP TABLE gridmap_place_points, gridmap_place_rest")
    logger.info("placed tickets: %s in %s s", counts, durations)
    return counts


def _grid_chain(ticket):
    placement = GridPlacement.objects.filter(ticket=ticket).select_related("unit").first()
    if placement is None:
        return placement, set()
    return placement, {placement.unit_id} | {unit.pk for unit in placement.unit.ancestors()}


def match_rule(ticket, rules=None):
    """Return the first active RoutingRule matching ``ticket``, or None."""
    if rules is None:
        rules = RoutingRule.objects.filter(active=True).select_related("lead").prefetch_related("partners")
    _placement, chain = _grid_chain(ticket)
    text = deadlines.ticket_text(ticket)
    for rule in rules:
        if rule.category and rule.category != ticket.category:
            continue
        if not keywords_match(rule.keywords, text):
            continue
        if rule.zone is not None and (ticket.location is None or not rule.zone.intersects(ticket.location)):
            continue
        if rule.grid_id is not None and rule.grid_id not in chain:
            continue
        return rule
    return None


def dispatch_ticket(ticket, actor=None):
    """Place, route and dispatch one ticket; return its TicketHandling.

    A ticket no active rule matches goes to the dispatchers' queue
    (``in_dispatch_queue``) and stays received. Tickets already past
    ``received`` (or ``reopened``) are returned unchanged. Safe to call from
    other apps right after they create a ticket.
    """
    if ticket.location is not None and not GridPlacement.objects.filter(ticket=ticket).exists():
        place_tickets([ticket.pk])
    handling, _created = TicketHandling.objects.get_or_create(ticket=ticket)
    if ticket.status not in (TicketStatus.RECEIVED, TicketStatus.REOPENED):
        return handling
    rule = match_rule(ticket)
    if rule is None:
        if not handling.in_dispatch_queue:
            with transaction.atomic():
                TicketHandling.objects.filter(pk=handling.pk).update(in_dispatch_queue=True)
                TicketEvent.objects.create(
                    ticket=ticket, kind=EventKind.ASSIGNMENT, actor=actor, at=timezone.now(),
                    from_status=ticket.status, to_status=ticket.status,
                    note=_("没有派单规则命中,已转人工派单队列"), data={"queue": True})
            handling.refresh_from_db()
        return handling
    return assign(ticket, rule.lead, list(rule.partners.all()), actor=actor, rule=rule)


def assign(ticket, lead, partners, *, actor=None, rule=None, note=""):
    """Dispatch ``ticket`` to ``lead`` with ``partners``: set the deadline, move it to dispatched, notify."""
    partner_list = [department for department in partners if department.pk != lead.pk]

    def apply(handling, now):
        handling.lead, handling.rule, handling.in_dispatch_queue = lead, rule, False
        handling.save()
        handling.partners.set(partner_list)
        deadlines.apply_deadline(handling, now)
        handling.met_at = None
        return {"lead": lead.code, "partners": [department.code for department in partner_list],
                "rule": rule.pk if rule else None, "due_at": handling.due_at.isoformat() if handling.due_at else None}

    names = "、".join(department.name for department in partner_list) or _("无")
    default_note = _("牵头部门:%(lead)s;协办部门:%(partners)s") % {"lead": lead.name, "partners": names}
    handling = workflow.transition(ticket, TicketStatus.DISPATCHED, actor=actor, note=note or default_note,
                                   apply=apply, system=actor is None)
    notify.notify_assignment(handling)
    return handling


def units_for_head(user):
    """Return the ids of the grid units ``user`` heads and every unit below them."""
    ids = set(GridUnit.objects.filter(head=user).values_list("pk", flat=True))
    frontier = set(ids)
    while frontier:
        frontier = set(GridUnit.objects.filter(parent_id__in=frontier).values_list("pk", flat=True)) - ids
        ids |= frontier
    return ids
