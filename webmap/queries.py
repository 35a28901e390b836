"""Database queries behind the planner map: filtered tickets, their aggregates and the hotspot run.

Every layer is aggregated in PostGIS, so a page carries one row per heat
point or H3 cell, not one per ticket. Only the ticket markers are single
rows, and their number is capped.
"""
from dataclasses import dataclass
from datetime import date, datetime, time, timedelta
from zoneinfo import ZoneInfo

from django.conf import settings
from django.contrib.gis.db.models import Extent
from django.contrib.gis.db.models.functions import SnapToGrid
from django.db.models import Count, FloatField, Func

from spatial.models import HotspotCell, HotspotRun, Ticket

# Hotline staff and the study area are in China Standard Time, so dates in the
# filter are calendar days there whatever TIME_ZONE the server runs with.
SHANGHAI = ZoneInfo("Asia/Shanghai")

# Heat points are tickets snapped to a lattice and counted. The lattice step
# is at least 0.0005 degrees (about 55 m north-south, 50 m east-west at 24
# degrees N), and coarser for wide extents so that the longer side of the
# extent has at most HEAT_LATTICE_CELLS steps. That bounds the page at about
# 256 x 256 points whatever the number of tickets.
HEAT_SNAP_DEG = 0.0005
HEAT_LATTICE_CELLS = 256


@dataclass(frozen=True)
class MapFilter:
    """Ticket filter and display choices of the planner map; None means no restriction."""

    category: str | None = None
    source: str | None = None
    received_from: date | None = None
    received_to: date | None = None
    # H3 resolution of the cell-count layer: FIREGRID_H3_RES_FINE or _COARSE.
    resolution: int | None = None
    # HotspotRun to draw; None picks the latest run whose filter matches.
    run_id: int | None = None


def h3_field_for_resolution(resolution):
    """Return the Ticket field storing cells of ``resolution``, or raise ValueError."""
    fields = {
        settings.FIREGRID_H3_RES_FINE: "h3_fine",
        settings.FIREGRID_H3_RES_COARSE: "h3_coarse",
    }
    try:
        return fields[resolution]
    except KeyError:
        raise ValueError(
            f"H3 resolution {resolution!r} is not stored on tickets; use one of {sorted(fields)}"
        ) from None


def filter_tickets(map_filter):
    """Return the tickets matching the filter's category, source and period (whole days, inclusive).

    Duplicates (linked to a first report of the same hazard) are left out,
    so the heatmap, the cell counts and the hotspots count a hazard once.
    """
    tickets = Ticket.objects.filter(duplicate_of__isnull=True)
    if map_filter.category:
        tickets = tickets.filter(category=map_filter.category)
    if map_filter.source:
        tickets = tickets.filter(source=map_filter.source)
    # A half-open datetime range keeps the received_at index usable, which a
    # __date lookup would not.
    if map_filter.received_from:
        tickets = tickets.filter(received_at__gte=_start_of_day(map_filter.received_from))
    if map_filter.received_to:
        tickets = tickets.filter(received_at__lt=_start_of_day(map_filter.received_to + timedelta(days=1)))
    return tickets


def _start_of_day(day):
    return datetime.combine(day, time.min, tzinfo=SHANGHAI)


def heat_snap_deg(extent):
    """Return the heat lattice step in degrees for an extent (min_lng, min_lat, max_lng, max_lat) or None."""
    if not extent:
        return HEAT_SNAP_DEG
    min_lng, min_lat, max_lng, max_lat = extent
    return max(HEAT_SNAP_DEG, max(max_lng - min_lng, max_lat - min_lat) / HEAT_LATTICE_CELLS)


def heat_points(tickets, snap_deg=HEAT_SNAP_DEG):
    """Return [lat, lng, ticket count] rows of the tickets snapped to a lattice of ``snap_deg`` degrees."""
    snapped = SnapToGrid("location", snap_deg)
    rows = (
        tickets.filter(location__isnull=False)
        .annotate(
            lat=Func(snapped, function="ST_Y", output_field=FloatField()),
            lng=Func(snapped, function="ST_X", output_field=FloatField()),
        )
        .values("lat", "lng")
        .annotate(weight=Count("id"))
        .order_by()
        .values_list("lat", "lng", "weight")
    )
    # Six decimals are 0.1 m, and drop float noise such as 23.960500000000003.
    return [[round(lat, 6), round(lng, 6), weight] for lat, lng, weight in rows]


def h3_cell_counts(tickets, resolution):
    """Return {H3 cell as int: ticket count} at ``resolution``."""
    field = h3_field_for_resolution(resolution)
    rows = (
        tickets.filter(**{f"{field}__isnull": False})
        .values(field)
        .annotate(ticket_count=Count("id"))
        .order_by()
    )
    return {row[field]: row["ticket_count"] for row in rows}


def ticket_extent(tickets):
    """Return (min_lng, min_lat, max_lng, max_lat) of the located tickets, or None."""
    return tickets.aggregate(extent=Extent("location"))["extent"]


def recent_tickets(tickets, limit):
    """Return the ``limit`` most recently received located tickets with what a popup shows."""
    return list(
        tickets.filter(location__isnull=False)
        .only(
            "id", "external_id", "category", "source", "status", "received_at", "address",
            "description", "complainant_name", "complainant_phone", "location",
        )
        .order_by("-received_at", "-id")[:limit]
    )


def select_hotspot_run(map_filter):
    """Return the HotspotRun to draw: the requested one, else the latest matching the filter, else None."""
    if map_filter.run_id is not None:
        return HotspotRun.objects.filter(pk=map_filter.run_id).first()

    # Dates are compared in Python because runs may store them as dates or
    # as datetimes. There are few runs, one per analysis a user started.
    candidates = HotspotRun.objects.order_by("-created_at", "-id")
    for run in candidates.iterator(chunk_size=100):
        if run_matches_filter(run, map_filter):
            return run
    return None


def run_matches_filter(run, map_filter):
    """Return True when a run's stored filter equals the map's category, source and period."""
    params = run.params or {}
    return (
        normalise_param(params.get("category")) == normalise_param(map_filter.category)
        and normalise_param(params.get("source")) == normalise_param(map_filter.source)
        and normalise_date_param(params.get("received_from")) == normalise_date_param(map_filter.received_from)
        and normalise_date_param(params.get("received_to")) == normalise_date_param(map_filter.received_to)
    )


def normalise_param(value):
    """Return a stored filter value as a string, or None for "", None and a missing key (no restriction)."""
    return str(value) if value not in (None, "") else None


def normalise_date_param(value):
    """Return the "YYYY-MM-DD" day of a stored date or ISO datetime, or None when there is none."""
    if value in (None, ""):
        return None
    return str(value)[:10]


def hotspot_cells(run):
    """Return the run's cells as dicts with h3_cell, ticket_count, z_score, p_value and label."""
    return list(
        HotspotCell.objects.filter(run=run)
        .values("h3_cell", "ticket_count", "z_score", "p_value", "label")
        .order_by("h3_cell")
    )
