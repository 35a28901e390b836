"""Benchmark: place 1,000,000 located tickets in a 10,000-unit responsibility grid.

The grid is synthetic but shaped like a county: 1 county unit, 100
community units in a 10 x 10 block and 9,899 building units inside them,
each building a quarter of its lattice cell, so that about a quarter of the
tickets fall in a building, most of the rest in a community, 3% just
outside the county (nearest-unit fallback) and 1% far away (county
fallback). FireGrid's set-based ``place_tickets`` runs over all tickets;
the baseline, run in the same process, is the obvious ORM loop (one query
per ticket, then one write) over a sample, compared by tickets per second.
Target: under 60 s for the million.

    python -m bench grid_assign [--tickets 1000000] [--baseline-tickets 5000] [--seed 42]
"""
import argparse
import time

from django.conf import settings
from django.db import connection, transaction

from bench.import_tickets import describe_machine
from gridmap.dispatch import place_tickets
from gridmap.models import GridPlacement, GridUnit, PlacementMethod
from spatial.models import Ticket

TARGET_S = 60.0
BENCH_DB = "bench_firegrid_gridmap"
# County block in WGS84 degrees, inside Xiangzhou's extent.
MIN_LNG, MIN_LAT, SIZE_LNG, SIZE_LAT = 109.40, 23.80, 0.50, 0.40


def build_grid():
    """Insert 1 county, 100 communities and 9,899 buildings with set-based SQL; return the unit count."""
    with connection.cursor() as cursor:
        cursor.execute("""
            INSERT INTO gridmap_gridunit (code, name, level, geom, outside_parent, source, properties, imported_at)
            VALUES ('BC', 'bench county', 1, ST_Multi(ST_MakeEnvelope(%s, %s, %s, %s, 4326)), false, '', '{}', now())
        """, [MIN_LNG, MIN_LAT, MIN_LNG + SIZE_LNG, MIN_LAT + SIZE_LAT])
        cursor.execute("""
            INSERT INTO gridmap_gridunit (code, name, level, parent_id, geom, outside_parent, source, properties,
                                          imported_at)
            SELECT 'BM-' || i || '-' || j, 'community ' || i || '/' || j, 2, (SELECT id FROM gridmap_gridunit
                                                                                WHERE code = 'BC'),
                   ST_Multi(ST_MakeEnvelope(%(lng)s + i * %(dx)s, %(lat)s + j * %(dy)s,
                                            %(lng)s + (i + 1) * %(dx)s, %(lat)s + (j + 1) * %(dy)s, 4326)),
                   false, '', '{}', now()
            FROM generate_series(0, 9) i, generate_series(0, 9) j
        """, {"lng": MIN_LNG, "lat": MIN_LAT, "dx": SIZE_LNG / 10, "dy": SIZE_LAT / 10})
        # Each community is a 10 x 10 lattice; a building takes the middle half of a
        # cell's sides. 99 buildings per community, 98 in the last one.
        cursor.execute("""
            INSERT INTO gridmap_gridunit (code, name, level, parent_id, geom, outside_parent, source, properties,
                                          imported_at)
            SELECT 'BB-' || i || '-' || j || '-' || k, 'building', 3, c.id,
                   ST_Multi(ST_MakeEnvelope(
                       %(lng)s + i * %(dx)s + (k %% 10 + 0.25) * %(bx)s, %(lat)s + j * %(dy)s + (k / 10 + 0.25) * %(by)s,
                       %(lng)s + i * %(dx)s + (k %% 10 + 0.75) * %(bx)s, %(lat)s + j * %(dy)s + (k / 10 + 0.75) * %(by)s,
                       4326)),
                   false, '', '{}', now()
            FROM generate_series(0, 9) i, generate_series(0, 9) j, generate_series(0, 98) k,
                 LATERAL (SELECT id FROM gridmap_gridunit WHERE code = 'BM-' || i || '-' || j) c
            WHERE NOT (i = 9 AND j = 9 AND k = 98)
        """, {"lng": MIN_LNG, "lat": MIN_LAT, "dx": SIZE_LNG / 10, "dy": SIZE_LAT / 10, "bx": SIZE_LNG / 100,
              "by": SIZE_LAT / 100})
        cursor.execute("ANALYZE gridmap_gridunit")
    return GridUnit.objects.count()


def insert_tickets(count, seed):
    """Insert ``count`` located tickets: 96% in the county block, 3% within ~150 m east of it, 1% far away."""
    with connection.cursor() as cursor:
        cursor.execute("SELECT setseed(%s)", [seed / 1000.0])
        cursor.execute("""
            INSERT INTO spatial_ticket (source_system, external_id, source, received_at, status, category, raw_type,
                                        description, address, address_normalized, location, orig_crs,
                                        outside_study_area, department, complainant_name, complainant_phone)
            SELECT 'bench', 'B' || n, 'hotline', now(), 'received', 'other', '', '', '', '',
                   CASE WHEN r < 0.96 THEN ST_SetSRID(ST_MakePoint(%(lng)s + random() * %(w)s,
                                                                    %(lat)s + random() * %(h)s), 4326)
                        WHEN r < 0.99 THEN ST_SetSRID(ST_MakePoint(%(lng)s + %(w)s + random() * 0.0015,
                                                                    %(lat)s + random() * %(h)s), 4326)
                        ELSE ST_SetSRID(ST_MakePoint(%(lng)s + %(w)s + 0.05 + random() * 0.1,
                                                     %(lat)s + random() * %(h)s), 4326) END,
                   '', false, '', '', ''
            FROM (SELECT n, random() AS r FROM generate_series(1, %(count)s) n) s
        """, {"lng": MIN_LNG, "lat": MIN_LAT, "w": SIZE_LNG, "h": SIZE_LAT, "count": count})
        cursor.execute("ANALYZE spatial_ticket")


def orm_loop_baseline(count):
    """Place ``count`` tickets one query at a time with the ORM; return seconds."""
    tickets = list(Ticket.objects.filter(location__isnull=False).order_by("pk")[:count])
    started = time.perf_counter()
    with transaction.atomic():
        for ticket in tickets:
            unit = GridUnit.objects.filter(geom__intersects=ticket.location).order_by("-level", "pk").first()
            if unit is not None:
                GridPlacement.objects.update_or_create(ticket=ticket, defaults={
                    "unit": unit, "method": PlacementMethod.CONTAINED, "distance_m": 0})
    return time.perf_counter() - started


def main(argv):
    parser = argparse.ArgumentParser(prog="python -m bench grid_assign")
    parser.add_argument("--tickets", type=int, default=1_000_000)
    parser.add_argument("--baseline-tickets", type=int, default=5_000)
    parser.add_argument("--seed", type=int, default=42)
    args = parser.parse_args(argv)

    from django.test.utils import setup_databases, teardown_databases

    # Its own scratch database, so that it never meets another benchmark or test run.
    settings.DATABASES["default"].setdefault("TEST", {})["NAME"] = BENCH_DB
    from django.db import connections
    connections["default"].settings_dict["TEST"]["NAME"] = BENCH_DB
    print(f"machine: {describe_machine()}")
    old_config = setup_databases(verbosity=0, interactive=False)
    try:
        started = time.perf_counter()
        units = build_grid()
        insert_tickets(args.tickets, args.seed)
        print(f"set-up: {units:,} grid units, {args.tickets:,} tickets in {time.perf_counter() - started:.1f} s")

        started = time.perf_counter()
        counts = place_tickets()
        seconds = time.perf_counter() - started
        placed = sum(counts.values())
        rate = placed / seconds
        print(f"FireGrid place_tickets: {placed:,} tickets in {seconds:.1f} s = {rate:,.0f} tickets/s "
              f"(contained {counts['contained']:,}, nearest {counts['nearest']:,}, county {counts['county']:,})")

        baseline_seconds = orm_loop_baseline(args.baseline_tickets)
        baseline_rate = args.baseline_tickets / baseline_seconds
        print(f"baseline ORM loop:      {args.baseline_tickets:,} tickets in {baseline_seconds:.1f} s = "
              f"{baseline_rate:,.0f} tickets/s (contained only; a million would take "
              f"{args.tickets / baseline_rate / 60:,.0f} min)")
    finally:
        teardown_databases(old_config, verbosity=0)

    verdict = "meets" if seconds < TARGET_S else "misses"
    print(f"grid_assign: {placed:,} tickets in {seconds:.1f} s, {rate / baseline_rate:.1f}x the ORM loop, "
          f"{verdict} the {TARGET_S:.0f} s target")
    return 0
