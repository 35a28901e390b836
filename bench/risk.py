"""Benchmark the risk model: features, training and prediction for 1,000,000 tickets over 50,000 cells.

``python -m bench risk [--rings N] [--tickets N] [--months N] [--seed N] [--evaluate]``

Cells are a resolution-9 disk around a point in Xiangzhou County (129
rings give 50,311 cells). Each ticket gets a cell drawn from a seeded
mixture of clusters and background, a month drawn with a slow upward trend,
a random time in that month and one of six categories. The H3 cells are
passed in as the ticket table stores them. The timed FireGrid path is ``risk.build_cube``
(counts, area and category matrices) and ``risk.predict_next`` (features for
every training period, gradient-boosting fit, prediction for the next
month). The baseline, run in the same process on the same cube, is the
kernel density surface: the H3 Gaussian kernel matrix and its product with
all counts. ``--evaluate`` adds the temporal holdout of the last 6 months.
Target: under 120 s for the FireGrid path.
"""
import argparse
import time

import h3
import numpy as np
import pandas as pd
from h3.api import basic_int as h3_int

from spatial.analysis import risk

TARGET_S = 120.0
CENTER_LAT, CENTER_LNG = 23.75, 109.23
CATEGORIES = ("fire_lane", "facility_fault", "ebike_charging", "separation", "flammable_storage", "electrical")


def synthetic_tickets(cells, tickets, months, rng):
    """Draw tickets over cells (a cluster mixture) and months; returns an events frame and the cells."""
    weights = rng.gamma(0.3, 1.0, len(cells))
    hot = rng.choice(len(cells), size=len(cells) // 50, replace=False)
    weights[hot] *= 20
    weights /= weights.sum()
    cell_index = rng.choice(len(cells), size=tickets, p=weights)
    month_weights = np.linspace(1.0, 1.3, months)
    month = rng.choice(months, size=tickets, p=month_weights / month_weights.sum())
    start = pd.Timestamp("2023-01-01", tz="Asia/Shanghai")
    month_starts = pd.DatetimeIndex([start + pd.DateOffset(months=int(m)) for m in range(months)])
    offsets = pd.to_timedelta(rng.integers(0, 28 * 86400, tickets), unit="s")
    times = (month_starts[month] + offsets).tz_convert("UTC")
    frame = pd.DataFrame({
        "lat": np.zeros(tickets), "lng": np.zeros(tickets), "t": times,
        "category": np.asarray(CATEGORIES, dtype=object)[rng.integers(0, len(CATEGORIES), tickets)],
        "alarm": False, "closed_t": pd.NaT,
    })
    return frame, cells[cell_index].astype(np.int64)


def main(argv):
    parser = argparse.ArgumentParser(prog="python -m bench risk", description=__doc__.splitlines()[0])
    parser.add_argument("--rings", type=int, default=129, help="disk radius in H3 rings (129 gives 50,311 cells)")
    parser.add_argument("--tickets", type=int, default=1_000_000, help="number of synthetic tickets")
    parser.add_argument("--months", type=int, default=24, help="months of history")
    parser.add_argument("--seed", type=int, default=20261204, help="seed of the synthetic tickets")
    parser.add_argument("--evaluate", action="store_true", help="also run the 6-month temporal holdout")
    args = parser.parse_args(argv)

    rng = np.random.default_rng(args.seed)
    center = h3.str_to_int(h3.latlng_to_cell(CENTER_LAT, CENTER_LNG, 9))
    cells = np.array(sorted(h3_int.grid_disk(center, args.rings)), dtype=np.int64)
    events, ticket_cells = synthetic_tickets(cells, args.tickets, args.months, rng)
    print(f"cells: {len(cells)} (resolution 9), tickets: {len(events)}, months: {args.months}")

    started = time.perf_counter()
    cube = risk.build_cube(events, "month", 9, cells=ticket_cells)
    cube_s = time.perf_counter() - started
    predict_started = time.perf_counter()
    probabilities = risk.predict_next(cube)
    predict_s = time.perf_counter() - predict_started
    firegrid_s = time.perf_counter() - started
    training_rows = len(cube.cells) * len(risk.recent_periods(cube, risk.MIN_HISTORY_PERIODS, len(cube.starts)))
    print(f"FireGrid: cube {cube_s:.1f} s, features + training + prediction {predict_s:.1f} s "
          f"({training_rows} training rows, {len(probabilities)} cells predicted), total {firegrid_s:.1f} s")

    baseline_started = time.perf_counter()
    kernel = risk.kernel_matrix(cube.cells)
    density = kernel @ cube.counts.sum(axis=1)
    baseline_s = time.perf_counter() - baseline_started
    print(f"baseline kernel density: {baseline_s:.1f} s for {len(density)} cells")
    print(f"ratio FireGrid / kernel density time: {firegrid_s / baseline_s:.2f}")

    if args.evaluate:
        holdout_started = time.perf_counter()
        area_cube = risk.build_cube(events, "month", 9, area_until=len(cube.starts) - 6, cells=ticket_cells)
        result = risk.evaluate_holdout(area_cube, 6)
        print(f"holdout ({time.perf_counter() - holdout_started:.1f} s): " + "; ".join(
            f"{name} AUC {result[name]['auc']:.3f}, hit rate {result[name]['hit_rate_top10']:.3f}, "
            f"PAI {result[name]['pai_top10']:.2f}" for name in ("model", "last_period", "kde")))

    verdict = "meets" if firegrid_s < TARGET_S else "misses"
    print(f"summary: risk features+training+prediction for {len(events)} tickets over {len(cells)} cells "
          f"in {firegrid_s:.1f} s ({verdict} the {TARGET_S:.0f} s target), kernel density baseline "
          f"{baseline_s:.1f} s")
    return 0
