"""Benchmark: the monthly report (PDF and XLSX) over 1,000,000 tickets.

Uses the scratch data of ``bench/dashboard.py`` and times
``gridmap.reports.build_report`` for one month, both formats, files
written to a temporary folder. Target: under 30 s. The baseline, run in the
same process, is the month's headline KPIs computed by a Python loop over
its tickets; the ratio compares the cold report (trend cache empty) with it.

    python -m bench report [--rows 1000000] [--repeat 2] [--seed 7] [--keepdb]
"""
import argparse
import tempfile
import time
from pathlib import Path

from django.conf import settings
from django.core.cache import cache

from bench.dashboard import PERIOD, prepare, python_loop_kpis, timed

TARGET_S = 30.0


def main(argv):
    from django.test.utils import teardown_databases

    from gridmap import kpi, reports

    parser = argparse.ArgumentParser(prog="python -m bench report")
    parser.add_argument("--rows", type=int, default=1_000_000)
    parser.add_argument("--repeat", type=int, default=2)
    parser.add_argument("--seed", type=int, default=7)
    parser.add_argument("--keepdb", action="store_true", help="keep the scratch database and reuse it next time")
    args = parser.parse_args(argv)
    settings.DEBUG = False
    old_config = prepare(args, "bench_firegrid_report")
    try:
        period = kpi.parse_period(PERIOD)
        with tempfile.TemporaryDirectory() as folder:
            cache.clear()
            started = time.perf_counter()
            reports.build_report(period, ("pdf", "xlsx"), folder)
            cold_s = time.perf_counter() - started
            best, median, (paths, _figures) = timed(lambda: reports.build_report(period, ("pdf", "xlsx"), folder),
                                                    args.repeat)
            sizes = {fmt: Path(path).stat().st_size / 1024 for fmt, path in paths.items()}
            started = time.perf_counter()
            figures = reports.collect(period)
            collect_s = time.perf_counter() - started
        loop_best, _loop_median, _loop = timed(lambda: python_loop_kpis(period), 1)
        print(f"monthly report {PERIOD}: first build {cold_s:.2f} s (past trend points computed and cached), then "
              f"best {best:.2f} s, median {median:.2f} s of {args.repeat} "
              f"(figures alone {collect_s:.2f} s); PDF {sizes['pdf']:.0f} KiB, XLSX {sizes['xlsx']:.0f} KiB; "
              f"{len(figures['departments'])} departments, {len(figures['grid_units'])} grid units ranked")
        print(f"baseline Python loop over the month's tickets (six KPIs only): {loop_best:.2f} s")
    finally:
        teardown_databases(old_config, verbosity=0, keepdb=args.keepdb)
    verdict = "meets" if cold_s < TARGET_S else "misses"
    print(f"report: {cold_s:.2f} s cold, {best:.2f} s warm for the monthly PDF and XLSX over {args.rows:,} tickets, "
          f"{cold_s / loop_best:.2f}x the time of a six-KPI Python loop, {verdict} the {TARGET_S:.0f} s target")
    return 0
