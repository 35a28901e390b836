"""Place tickets in the responsibility grid and dispatch them to departments (1+3+N).

``place_tickets`` assigns every located ticket of a selection to the
smallest grid unit containing it, in three set-based statements for the
whole selection (contained, nearest within a distance, county fallback).
``dispatch_ticket`` is the entry point for other apps (IoT alarms, Open311):
it places the ticket, applies the routing rules and either dispatches it
to a lead department with partners or puts it in the dispatchers' queue.
"""
import logging

from django.conf import settings
from django.db import connection, transaction
from django.utils import timezone
from django.utils.translation import gettext as _

from gridmap import deadlines, notify, workflow
from gridmap.models import (EventKind, GridLevel, GridPlacement, GridUnit, NotificationKind, PlacementMethod,
                            RoutingRule, TicketEvent, TicketHandling)
from spatial.models import TicketStatus

logger = logging.getLogger(__name__)

# Raw SQL because the ORM cannot express a LATERAL nearest-unit join or an
# INSERT ... SELECT ... ON CONFLICT; every value is a bound parameter.
_UPSERT = """
    ON CONFLICT (ticket_id) DO UPDATE
    SET unit_id = EXCLUDED.unit_id, method = EXCLUDED.method,
        distance_m = EXCLUDED.distance_m, placed_at = EXCLUDED.placed_at
"""

_CONTAINED_SQL = """
    INSERT INTO gridmap_gridplacement (ticket_id, unit_id, method, distance_m, placed_at)
    SELECT t.id, u.id, 'contained', 0, %(now)s
    FROM spatial_ticket t
    CROSS JOIN LATERAL (
        SELECT g.id FROM gridmap_gridunit g
        WHERE ST_Intersects(g.geom, t.location)
        ORDER BY g.level DESC, g.id
        LIMIT 1
    ) u
    WHERE t.location IS NOT NULL {selection}
""" + _UPSERT

# Nearest unit whose edge is within max_distance_m metres (geodesic). The
# degree window lets the GiST index prefilter; 1 degree of latitude is at
# least 110,574 m, and a degree of longitude shrinks with cos(latitude).
_NEAREST_SQL = """
    INSERT INTO gridmap_gridplacement (ticket_id, unit_id, method, distance_m, placed_at)
    SELECT t.id, u.id, 'nearest', u.distance_m, %(now)s
    FROM spatial_ticket t
    CROSS JOIN LATERAL (
        SELECT g.id, ST_Distance(g.geom::geography, t.location::geography) AS distance_m
        FROM gridmap_gridunit g
        WHERE ST_DWithin(g.geom, t.location,
                         %(max_m)s / (110574.0 * GREATEST(cos(radians(LEAST(abs(ST_Y(t.location)), 89.0))), 0.01)))
          AND ST_DWithin(g.geom::geography, t.location::geography, %(max_m)s)
        ORDER BY distance_m, g.level DESC, g.id
        LIMIT 1
    ) u
    WHERE t.location IS NOT NULL
      AND NOT EXISTS (SELECT 1 FROM gridmap_gridplacement p WHERE p.ticket_id = t.id AND p.placed_at = %(now)s)
      {selection}
""" + _UPSERT

_COUNTY_SQL = """
    INSERT INTO gridmap_gridplacement (ticket_id, unit_id, method, distance_m, placed_at)
    SELECT t.id, u.id, 'county', u.distance_m, %(now)s
    FROM spatial_ticket t
    CROSS JOIN LATERAL (
        SELECT g.id, ST_Distance(g.geom::geography, t.location::geography) AS distance_m
        FROM gridmap_gridunit g
        WHERE g.level = %(county)s
        ORDER BY g.geom <-> t.location, g.id
        LIMIT 1
    ) u
    WHERE t.location IS NOT NULL
      AND NOT EXISTS (SELECT 1 FROM gridmap_gridplacement p WHERE p.ticket_id = t.id AND p.placed_at = %(now)s)
      {selection}
""" + _UPSERT

_SELECTIONS = {
    "all": "",
    "ids": "AND t.id = ANY(%(ids)s)",
    "batch": "AND t.batch_id = %(batch)s",
}


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
    counts = {}
    with transaction.atomic(), connection.cursor() as cursor:
        for method, sql in ((PlacementMethod.CONTAINED, _CONTAINED_SQL), (PlacementMethod.NEAREST, _NEAREST_SQL),
                            (PlacementMethod.COUNTY, _COUNTY_SQL)):
            cursor.execute(sql.format(selection=_SELECTIONS[selection]), params)
            counts[method.value] = cursor.rowcount
    logger.info("placed tickets: %s", counts)
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
    text = " ".join(filter(None, [ticket.description, ticket.raw_type, ticket.address])).lower()
    for rule in rules:
        if rule.category and rule.category != ticket.category:
            continue
        keywords = rule.keyword_list()
        if keywords and not any(word.lower() in text for word in keywords):
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
