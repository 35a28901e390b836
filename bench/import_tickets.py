"""Benchmark: import 1,000,000 tickets resampled from the real SF 311 rows.

Runs FireGrid's import (read, check, normalise, H3, COPY) into an empty
scratch database, then Django's bulk_create over the same prepared rows in
the same process, and prints rows per second and their ratio. Target: at
least 50,000 rows/s for the import.

    python -m bench import_tickets [--rows 1000000] [--baseline-rows N]
"""
import argparse
import platform
import resource
import time
from pathlib import Path

import numpy as np
import pandas as pd
from django.conf import settings
from django.contrib.gis.geos import Point
from django.db import connection, transaction

from spatial.coords import parse_bbox
from spatial.intake import import_file
from spatial.intake.profiles import SF_311, resolve_columns
from spatial.intake.readers import read_table
from spatial.intake.rows import prepare_rows
from spatial.models import ImportBatch, Ticket

TARGET_ROWS_PER_S = 50_000
SOURCE = Path(settings.BASE_DIR).parent / "shared" / "data" / "sf" / "311_service_requests.csv"


def make_input(rows, path, seed=20261204):
    """Write ``rows`` rows resampled with replacement from the real file, each with a unique number."""
    real = pd.read_csv(SOURCE, dtype=str, keep_default_na=False)
    # Rows the import would reject (closed before created) stay out, so that
    # the all-or-nothing import runs on the whole file.
    valid = real[(real["closed_date"] == "") | (real["closed_date"] >= real["created_date"])]
    rng = np.random.default_rng(seed)
    sample = valid.iloc[rng.integers(0, len(valid), rows)].reset_index(drop=True)
    sample["unique_key"] = sample["unique_key"] + "-" + pd.Series(np.arange(rows)).astype(str)
    path.parent.mkdir(parents=True, exist_ok=True)
    sample.to_csv(path, index=False)
    return path


def truncate():
    with connection.cursor() as cursor:
        cursor.execute("TRUNCATE spatial_ticket, spatial_importbatch RESTART IDENTITY CASCADE")


def bulk_create_baseline(path):
    """Prepare the same rows with the same code, then store them with bulk_create; return seconds."""
    started = time.perf_counter()
    frame, _encoding = read_table(path)
    columns = resolve_columns(SF_311, list(frame.columns), path)
    tickets, _problems, _counts = prepare_rows(
        frame, SF_311, columns, study_area=parse_bbox(SF_311.study_area),
        res_fine=settings.FIREGRID_H3_RES_FINE, res_coarse=settings.FIREGRID_H3_RES_COARSE,
    )
    with transaction.atomic():
        batch = ImportBatch.objects.create(file_name=path.name, file_sha256="", profile="sf311")
        objects = []
        for row in tickets.itertuples(index=False):
            located = row.lat == row.lat
            objects.append(Ticket(
                source_system="sf311", external_id=row.external_id, source=row.source,
                received_at=row.received_at.to_pydatetime(),
                closed_at=row.closed_at.to_pydatetime() if not pd.isna(row.closed_at) else None,
                status=row.status, category=row.category, raw_type=row.raw_type, description=row.description,
                address=row.address, address_normalized=row.address_normalized,
                location=Point(row.lng, row.lat, srid=4326) if located else None,
                orig_lng=row.orig_lng if located else None, orig_lat=row.orig_lat if located else None,
                orig_crs=row.orig_crs, outside_study_area=bool(row.outside_study_area),
                h3_fine=int(row.h3_fine) or None, h3_coarse=int(row.h3_coarse) or None,
                department=row.department, batch=batch,
            ))
        Ticket.objects.bulk_create(objects, batch_size=5000)
    return time.perf_counter() - started


def describe_machine():
    cpu = next((line.split(":", 1)[1].strip() for line in Path("/proc/cpuinfo").read_text().splitlines()
                if line.startswith("model name")), platform.processor())
    memory_gib = int(Path("/proc/meminfo").read_text().split()[1]) / 1024 / 1024
    return f"{cpu}, {len(__import__('os').sched_getaffinity(0))} cores, {memory_gib:.0f} GiB, Python {platform.python_version()}"


def main(argv):
    parser = argparse.ArgumentParser(prog="python -m bench import_tickets")
    parser.add_argument("--rows", type=int, default=1_000_000, help="rows to import")
    parser.add_argument("--baseline-rows", type=int, default=None,
                        help="rows for the bulk_create baseline (default: the same as --rows)")
    args = parser.parse_args(argv)
    if not SOURCE.is_file():
        print(f"import_tickets: skipped, real data {SOURCE} is absent")
        return 0
    baseline_rows = args.baseline_rows or args.rows

    from django.test.utils import setup_databases, teardown_databases

    print(f"machine: {describe_machine()}")
    path = make_input(args.rows, Path(settings.VAR_DIR) / "bench" / f"sf311_{args.rows}.csv")
    print(f"input: {path} ({args.rows:,} rows resampled from {SOURCE.name})")
    old_config = setup_databases(verbosity=0, interactive=False)
    try:
        truncate()
        started = time.perf_counter()
        result = import_file(path, profile_name="sf311", progress=False)
        copy_seconds = time.perf_counter() - started
        copy_rate = result.imported / copy_seconds
        print(f"FireGrid import (COPY): {result.imported:,} rows in {copy_seconds:.1f} s = {copy_rate:,.0f} rows/s")

        truncate()
        baseline_path = path
        if baseline_rows != args.rows:
            baseline_path = make_input(baseline_rows, path.with_name(f"sf311_{baseline_rows}.csv"))
        baseline_seconds = bulk_create_baseline(baseline_path)
        baseline_rate = baseline_rows / baseline_seconds
        print(f"baseline bulk_create:   {baseline_rows:,} rows in {baseline_seconds:.1f} s = {baseline_rate:,.0f} rows/s")
    finally:
        teardown_databases(old_config, verbosity=0)

    peak_mib = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024
    ratio = copy_rate / baseline_rate
    verdict = "meets" if copy_rate >= TARGET_ROWS_PER_S else "misses"
    print(f"peak memory of the process: {peak_mib:,.0f} MiB")
    print(f"import_tickets: {copy_rate:,.0f} rows/s, {ratio:.1f}x bulk_create, {verdict} the "
          f"{TARGET_ROWS_PER_S:,} rows/s target")
    return 0
