"""Benchmark: the leaders' dashboard over 1,000,000 tickets.

Fills a scratch database with seeded synthetic tickets spread over two
years (handling with deadlines, grid placements, repeats, ratings and
callbacks), then renders ``/dashboard/`` for one month as a leader through
Django's test client, which runs the whole view in this process, so the
wall time is the server time. Three figures are reported: the first
request of the process (templates, translations and the empty trend
cache), requests with the trend cache cleared before each (the past
periods' KPIs computed again, ``FIREGRID_KPI_TREND_CACHE_S``), and
requests served from that cache. Page weight is the HTML's size (the page
loads nothing but the site's stylesheet). Target: under 2 s, with or
without the cache.

The baseline is the same month's KPIs computed the way the issue forbids,
by loading the month's tickets into Python and looping over them; the
ratio is baseline time over the dashboard's KPI time.

    python -m bench dashboard [--rows 1000000] [--repeat 3] [--seed 7] [--keepdb]
"""
import argparse
import io
import statistics
import time

import numpy as np
from django.conf import settings
from django.contrib.auth.models import Group, User
from django.contrib.gis.geos import MultiPolygon, Polygon
from django.core.cache import cache
from django.db import connection
from django.test import Client

from bench.import_tickets import describe_machine

TARGET_S = 2.0
PERIOD = "2026-06"
START = np.datetime64("2025-01-01T00:00:00")
SPAN_S = 2 * 365 * 86400
# A box inside Xiangzhou County (WGS84 degrees).
MIN_LNG, MIN_LAT, MAX_LNG, MAX_LAT = 109.55, 23.85, 109.80, 24.05
LOCATIONS = 20_000
COMMUNITIES, BUILDINGS_PER_COMMUNITY = 30, 10


def scratch_database(name, keepdb=False):
    """Point the test-database machinery at a scratch database of this benchmark's own."""
    from django.test.utils import setup_databases

    connection.settings_dict["TEST"]["NAME"] = name
    # No serialisation of the contents: a kept database holds a million rows.
    return setup_databases(verbosity=0, interactive=False, keepdb=keepdb, serialized_aliases=set())


def build_grid():
    """One county, COMMUNITIES communities in a row, BUILDINGS_PER_COMMUNITY buildings in each; return unit ids."""
    from gridmap.models import GridLevel, GridUnit

    def square(min_lng, min_lat, max_lng, max_lat):
        return MultiPolygon(Polygon.from_bbox((min_lng, min_lat, max_lng, max_lat)), srid=4326)

    county = GridUnit.objects.create(code="C", name="县级网格", level=GridLevel.COUNTY,
                                     geom=square(MIN_LNG, MIN_LAT, MAX_LNG, MAX_LAT))
    width = (MAX_LNG - MIN_LNG) / COMMUNITIES
    ids = []
    for c in range(COMMUNITIES):
        left = MIN_LNG + c * width
        community = GridUnit.objects.create(code=f"S{c}", name=f"第{c + 1}社区", level=GridLevel.COMMUNITY,
                                            parent=county, geom=square(left, MIN_LAT, left + width, MAX_LAT))
        ids.append(community.pk)
        height = (MAX_LAT - MIN_LAT) / BUILDINGS_PER_COMMUNITY
        for b in range(BUILDINGS_PER_COMMUNITY):
            bottom = MIN_LAT + b * height
            building = GridUnit.objects.create(code=f"S{c}-{b}", name=f"第{c + 1}社区{b + 1}号楼",
                                               level=GridLevel.BUILDING, parent=community,
                                               geom=square(left, bottom, left + width, bottom + height))
            ids.append(building.pk)
    return ids


def fill(rows, seed):
    """COPY ``rows`` synthetic tickets, then derive handling, placements, ratings and callbacks in SQL."""
    import h3

    from gridmap.models import Department

    rng = np.random.default_rng(seed)
    lat = rng.uniform(MIN_LAT, MAX_LAT, LOCATIONS)
    lng = rng.uniform(MIN_LNG, MAX_LNG, LOCATIONS)
    fine = np.array([h3.str_to_int(h3.latlng_to_cell(a, b, settings.FIREGRID_H3_RES_FINE)) for a, b in zip(lat, lng)])
    coarse = np.array([h3.str_to_int(h3.latlng_to_cell(a, b, settings.FIREGRID_H3_RES_COARSE))
                       for a, b in zip(lat, lng)])
    place = rng.integers(0, LOCATIONS, rows)
    received = START + np.sort(rng.integers(0, SPAN_S, rows)).astype("timedelta64[s]")
    hours_to_close = rng.gamma(2.0, 60.0, rows)
    closed = received + (hours_to_close * 3600).astype("timedelta64[s]")
    open_mask = (closed > np.datetime64("2026-12-01")) | (rng.random(rows) < 0.03)
    sources = np.array(["hotline", "iot", "inspection", "other"])[rng.choice(4, rows, p=[0.55, 0.2, 0.2, 0.05])]
    categories = np.array(["fire_lane", "facility_fault", "ebike_charging", "separation", "other"])[
        rng.integers(0, 5, rows)]
    ids = np.arange(1, rows + 1)
    repeat_of = np.where((rng.random(rows) < 0.2) & (ids > 1000), ids - rng.integers(1, 1000, rows), 0)
    fake = (repeat_of > 0) & (rng.random(rows) < 0.3)

    buffer = io.StringIO()
    for i in range(rows):
        closed_text = "" if open_mask[i] else f"{closed[i]}+08"
        buffer.write(
            f"bench\tB{i}\t{sources[i]}\t{received[i]}+08\t{closed_text or chr(92) + 'N'}\t"
            f"{'dispatched' if open_mask[i] else 'closed'}\t{categories[i]}\t"
            f"SRID=4326;POINT({lng[place[i]]:.6f} {lat[place[i]]:.6f})\t{fine[place[i]]}\t{coarse[place[i]]}\t"
            f"{repeat_of[i] if repeat_of[i] else chr(92) + 'N'}\t{'t' if fake[i] else 'f'}\n")
    columns = ("source_system, external_id, source, received_at, closed_at, status, category, location, h3_fine, "
               "h3_coarse, repeat_of_id, suspected_fake_rectification")
    with connection.cursor() as cursor:
        cursor.execute("TRUNCATE spatial_ticket RESTART IDENTITY CASCADE")
        # Columns the COPY leaves out get their defaults here; the model declares them in Python only.
        for column, default in (("raw_type", "''"), ("description", "''"), ("address", "''"),
                                ("address_normalized", "''"), ("orig_crs", "''"), ("outside_study_area", "false"),
                                ("department", "''"), ("complainant_name", "''"), ("complainant_phone", "''")):
            cursor.execute(f"ALTER TABLE spatial_ticket ALTER COLUMN {column} SET DEFAULT {default}")
        with cursor.connection.cursor().copy(f"COPY spatial_ticket ({columns}) FROM STDIN") as copy:
            copy.write(buffer.getvalue())
    departments = list(Department.objects.values_list("pk", flat=True))
    units = build_grid()
    staff = User.objects.create_user("bench_staff")
    with connection.cursor() as cursor:
        cursor.execute("SELECT setseed(0.42)")
        # Deadlines of 1 to 7 days; the milestone is met at closure, or never while open.
        cursor.execute("""
            INSERT INTO gridmap_tickethandling (ticket_id, lead_id, in_dispatch_queue, milestone, started_at, due_at,
                yellow_at, red_at, met_at, card, escalation_level, reply_text, red_explanation, version, updated_at)
            SELECT t.id, (%(departments)s::bigint[])[1 + (t.id %% array_length(%(departments)s::bigint[], 1))],
                   false, 'rectified', t.received_at, t.received_at + d.due, t.received_at + d.due * 1.3,
                   t.received_at + d.due * 1.5, t.closed_at,
                   CASE WHEN t.closed_at IS NULL AND t.received_at + d.due * 1.5 < now() THEN 'red' ELSE '' END,
                   0, '', '', 0, now()
            FROM spatial_ticket t
            CROSS JOIN LATERAL (SELECT make_interval(days => (1 + t.id %% 7)::int) AS due) d
        """, {"departments": departments})
        cursor.execute("""
            INSERT INTO gridmap_gridplacement (ticket_id, unit_id, method, distance_m, placed_at)
            SELECT id, (%(units)s::bigint[])[1 + (id %% array_length(%(units)s::bigint[], 1))], 'contained', 0, now()
            FROM spatial_ticket
        """, {"units": units})
        cursor.execute("""
            INSERT INTO gridmap_citizenrating (ticket_id, score, comment, created_at)
            SELECT id, 1 + floor(random() * 5)::int, '', closed_at FROM spatial_ticket
            WHERE closed_at IS NOT NULL AND random() < 0.3
        """)
        cursor.execute("""
            INSERT INTO gridmap_callback (ticket_id, staff_id, called_at, outcome, note)
            SELECT id, %(staff)s, closed_at + interval '1 day',
                   (ARRAY['positive', 'neutral', 'negative', 'unreached'])[1 + floor(random() * 4)::int], ''
            FROM spatial_ticket WHERE closed_at IS NOT NULL AND random() < 0.2
        """, {"staff": staff.pk})
        cursor.execute("ANALYZE")


def leader_client():
    leader = User.objects.get_or_create(username="bench_leader")[0]
    leader.groups.add(Group.objects.get(name="leader"))
    client = Client(HTTP_HOST="127.0.0.1")
    client.force_login(leader)
    return client


def python_loop_kpis(period):
    """The baseline: the month's KPIs by iterating over its tickets in Python."""
    from django.utils import timezone

    from spatial.models import Ticket

    now = timezone.now()
    closed = Ticket.objects.filter(closed_at__gte=period.start, closed_at__lt=period.end)
    days, ratings, satisfied = [], 0, 0
    for received, closed_at, score in closed.values_list("received_at", "closed_at", "rating__score").iterator(
            chunk_size=10_000):
        days.append((closed_at - received).total_seconds() / 86400)
        if score is not None:
            ratings += 1
            satisfied += score >= 4
    received = Ticket.objects.filter(received_at__gte=period.start, received_at__lt=period.end)
    base = on_time = tickets = repeats = proactive = 0
    for source, repeat_of, duplicate_of, due, met in received.values_list(
            "source", "repeat_of_id", "duplicate_of_id", "handling__due_at", "handling__met_at").iterator(
            chunk_size=10_000):
        if duplicate_of is None:
            tickets += 1
            repeats += repeat_of is not None
            proactive += source in ("iot", "inspection")
        if due is not None and (met is not None or due <= now):
            base += 1
            on_time += met is not None and met <= due
    return {"mean_close_days": statistics.fmean(days) if days else None,
            "median_close_days": statistics.median(days) if days else None,
            "on_time_rate": on_time / base if base else None, "repeat_rate": repeats / tickets if tickets else None,
            "proactive_rate": proactive / tickets if tickets else None,
            "satisfaction_rate": satisfied / ratings if ratings else None}


def timed(function, repeat):
    times, result = [], None
    for _ in range(repeat):
        started = time.perf_counter()
        result = function()
        times.append(time.perf_counter() - started)
    return min(times), statistics.median(times), result


def prepare(args, name):
    from spatial.models import Ticket

    print(f"machine: {describe_machine()}")
    old_config = scratch_database(name, args.keepdb)
    if args.keepdb and Ticket.objects.filter(source_system="bench").count() == args.rows:
        print(f"data: {args.rows:,} synthetic tickets kept from an earlier run (--keepdb)")
        return old_config
    started = time.perf_counter()
    fill(args.rows, args.seed)
    print(f"data: {args.rows:,} synthetic tickets over 2025-2026 with handling, placements, ratings and callbacks, "
          f"built in {time.perf_counter() - started:.0f} s")
    return old_config


def main(argv):
    from django.test.utils import teardown_databases

    from gridmap import kpi

    parser = argparse.ArgumentParser(prog="python -m bench dashboard")
    parser.add_argument("--rows", type=int, default=1_000_000)
    parser.add_argument("--repeat", type=int, default=3)
    parser.add_argument("--seed", type=int, default=7)
    parser.add_argument("--keepdb", action="store_true", help="keep the scratch database and reuse it next time")
    args = parser.parse_args(argv)
    # As deployed: no per-query logging.
    settings.DEBUG = False
    old_config = prepare(args, "bench_firegrid_dashboard")
    try:
        period = kpi.parse_period(PERIOD)
        client = leader_client()
        cache.clear()
        started = time.perf_counter()
        client.get(f"/dashboard/?period={PERIOD}")
        first_s = time.perf_counter() - started

        def uncached_request():
            cache.clear()
            return client.get(f"/dashboard/?period={PERIOD}")

        cold_s, cold_median, _response = timed(uncached_request, args.repeat)
        client.get(f"/dashboard/?period={PERIOD}")  # fills the trend cache again
        best, median, response = timed(lambda: client.get(f"/dashboard/?period={PERIOD}"), args.repeat)
        if response.status_code != 200:
            raise RuntimeError(f"/dashboard/ returned status {response.status_code}")
        weight_kib = len(response.content) / 1024
        kpi_best, _kpi_median, figures = timed(lambda: kpi.compute(period), args.repeat)
        loop_best, _loop_median, loop = timed(lambda: python_loop_kpis(period), 1)
        month_tickets = figures["proactive_rate"]["base"]
        print(f"dashboard {PERIOD}: first request of the process {first_s:.2f} s; trend cache empty: "
              f"best {cold_s:.2f} s, median {cold_median:.2f} s of {args.repeat}; trend cached: "
              f"best {best:.2f} s, median {median:.2f} s of {args.repeat}; "
              f"page {weight_kib:.0f} KiB HTML ({month_tickets:,} tickets received in the month)")
        print(f"KPIs in the database: {kpi_best:.2f} s; baseline Python loop over the month's tickets: "
              f"{loop_best:.2f} s")
        for code in ("mean_close_days", "on_time_rate", "repeat_rate", "proactive_rate", "satisfaction_rate"):
            ours, theirs = figures[code]["value"], loop[code]
            agree = "agree" if ours is not None and theirs is not None and abs(ours - theirs) < 1e-9 else "DIFFER"
            print(f"  {code}: {ours:.6f} vs {theirs:.6f} ({agree})")
    finally:
        teardown_databases(old_config, verbosity=0, keepdb=args.keepdb)
    verdict = "meets" if max(best, cold_s) < TARGET_S else "misses"
    print(f"dashboard: {best:.2f} s server time cached, {cold_s:.2f} s with the trend cache empty "
          f"({first_s:.2f} s first request) for {args.rows:,} tickets, "
          f"{weight_kib:.0f} KiB, KPIs "
          f"{loop_best / kpi_best:.1f}x faster than a Python loop, {verdict} the {TARGET_S:.0f} s target")
    return 0
