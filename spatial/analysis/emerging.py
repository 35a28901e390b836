"""Emerging hot spots: Gi* per time slice of an H3 space-time cube, trends by Mann-Kendall.

Tickets (duplicates left out) are counted per H3 cell and time slice (week
or month). The study cells are the cells with a ticket in any slice plus
their ring-1 neighbours. In each slice, Gi* z-scores come from
``spatial.analysis.gistar`` with ring-1 neighbourhoods; their two-sided
normal p-values are corrected per slice with Benjamini–Hochberg, and a
cell is hot (cold) in a slice when q < ``alpha`` and z > 0 (z < 0).

The Mann-Kendall test on each cell's series of z-scores gives the trend,
and the labels follow the categories planners know from ArcGIS Pro's
Emerging Hot Spot Analysis, checked in this order for hot spots and
mirrored for cold spots:

* new: hot in the final slice and never before;
* consecutive: a final run of at least two hot slices, never hot before it,
  and fewer than 90% of slices hot;
* intensifying / persistent / diminishing: hot in at least 90% of slices
  including the final one, with a significant rising trend / no
  significant trend / a significant falling trend;
* sporadic: hot in the final slice, fewer than 90% of slices hot, never
  cold;
* oscillating: hot in the final slice, fewer than 90% of slices hot, cold
  in some earlier slice;
* historical: not hot in the final slice but hot in at least 90% of slices.

NOTE: ArcGIS also counts neighbouring time steps in each neighbourhood
(space-time Gi*). Here each slice is tested on its own, which is stricter
for cells whose counts swing from slice to slice.
"""
import logging
import time

import h3
import numpy as np
import pandas as pd
from django.conf import settings
from django.db import transaction
from django.utils.translation import gettext as _
from scipy import stats

from spatial.analysis.gistar import gi_star_z_scores, neighbour_index
from spatial.analysis.periods import AnalysisParameterError, check_period, filter_received, local_times, period_starts
from spatial.models import EmergingCell, EmergingLabel, EmergingRun, Ticket

logger = logging.getLogger(__name__)

DEFAULT_ALPHA = 0.10
MIN_SLICES = 4
PERSISTENT_SHARE = 0.9


def mann_kendall(series):
    """Run the Mann-Kendall trend test on each row of a 2-D array.

    Returns (S, z, two-sided p) per row. The variance is corrected for ties
    and z uses the usual continuity correction of 1.
    """
    series = np.asarray(series, dtype=np.float64)
    rows, length = series.shape
    s_values = np.zeros(rows)
    for i in range(length - 1):
        s_values += np.sign(series[:, i + 1:] - series[:, [i]]).sum(axis=1)
    variance = np.full(rows, length * (length - 1) * (2 * length + 5), dtype=np.float64)
    for r in range(rows):
        _values, ties = np.unique(series[r], return_counts=True)
        ties = ties[ties > 1]
        variance[r] -= (ties * (ties - 1) * (2 * ties + 5)).sum()
    variance /= 18.0
    z = np.zeros(rows)
    positive = (s_values > 0) & (variance > 0)
    negative = (s_values < 0) & (variance > 0)
    z[positive] = (s_values[positive] - 1) / np.sqrt(variance[positive])
    z[negative] = (s_values[negative] + 1) / np.sqrt(variance[negative])
    return s_values, z, 2 * stats.norm.sf(np.abs(z))


def significance(counts, neighbours, alpha):
    """Return (z-scores, +1 hot / -1 cold / 0) per cell and slice of a cells × slices count matrix."""
    z_scores = np.full(counts.shape, np.nan)
    states = np.zeros(counts.shape, dtype=np.int8)
    for t in range(counts.shape[1]):
        z = gi_star_z_scores(counts[:, t], neighbours)
        z_scores[:, t] = z
        defined = ~np.isnan(z)
        if not defined.any():
            continue
        q = np.ones(len(z))
        q[defined] = stats.false_discovery_control(2 * stats.norm.sf(np.abs(z[defined])), method="bh")
        states[:, t] = np.where(q < alpha, np.sign(np.nan_to_num(z)), 0).astype(np.int8)
    return z_scores, states


def classify_pattern(states, trend_z, trend_p, alpha):
    """Return the EmergingLabel of one cell from its hot/cold states per slice and its trend."""
    length = len(states)
    for sign, prefix in ((1, "hot"), (-1, "cold")):
        marked = states == sign
        opposite = states == -sign
        share = marked.sum() / length
        final = marked[-1]
        if final:
            if marked[:-1].sum() == 0:
                return EmergingLabel(f"new_{prefix}")
            run = 0
            while run < length and marked[length - 1 - run]:
                run += 1
            if run >= 2 and marked[:length - run].sum() == 0 and share < PERSISTENT_SHARE:
                return EmergingLabel(f"consecutive_{prefix}")
            if share >= PERSISTENT_SHARE:
                rising = trend_p < alpha and trend_z * sign > 0
                falling = trend_p < alpha and trend_z * sign < 0
                if rising:
                    return EmergingLabel(f"intensifying_{prefix}")
                if falling:
                    return EmergingLabel(f"diminishing_{prefix}")
                return EmergingLabel(f"persistent_{prefix}")
            if opposite.any():
                return EmergingLabel(f"oscillating_{prefix}")
            return EmergingLabel(f"sporadic_{prefix}")
        if share >= PERSISTENT_SHARE:
            return EmergingLabel(f"historical_{prefix}")
    return EmergingLabel.NO_PATTERN


def build_cube(cells, slices):
    """Return (study cells, slice starts, counts matrix) from per-ticket cells and slice starts."""
    unique_slices = np.unique(slices)
    seen = np.unique(cells)
    ring = {h3.str_to_int(n) for cell in seen.tolist() for n in h3.grid_disk(h3.int_to_str(cell), 1)}
    study = np.unique(np.concatenate([seen, np.fromiter(ring, dtype=np.int64, count=len(ring))]))
    counts = np.zeros((len(study), len(unique_slices)), dtype=np.float64)
    np.add.at(counts, (np.searchsorted(study, cells), np.searchsorted(unique_slices, slices)), 1)
    return study, unique_slices, counts


def analyse(cells, slices, alpha=DEFAULT_ALPHA):
    """Label each study cell; returns (study cells, slice starts, counts, labels, states, trend z, trend p)."""
    study, unique_slices, counts = build_cube(cells, slices)
    if len(unique_slices) < MIN_SLICES:
        raise AnalysisParameterError(_("只有 %(count)s 个时间切片,时空热点分析至少需要 %(min)s 个。请延长时间范围或改用较短的周期。")
                                     % {"count": len(unique_slices), "min": MIN_SLICES})
    neighbours = neighbour_index(study)
    z_scores, states = significance(counts, neighbours, alpha)
    _s, trend_z, trend_p = mann_kendall(np.nan_to_num(z_scores))
    labels = [classify_pattern(states[i], trend_z[i], trend_p[i], alpha) for i in range(len(study))]
    return study, unique_slices, counts, labels, states, trend_z, trend_p


def run_emerging(period="month", resolution="fine", received_from=None, received_to=None, alpha=DEFAULT_ALPHA,
                 category=None):
    """Run the analysis on the tickets and store an EmergingRun with every study cell's label."""
    check_period(period)
    if not 0 < alpha < 1:
        raise AnalysisParameterError(_("显著性水平 “%(value)s” 无效,应在 0 到 1 之间。") % {"value": alpha})
    if resolution not in ("fine", "coarse"):
        raise AnalysisParameterError(_("H3 分辨率 “%(value)s” 无效,应为 fine 或 coarse。") % {"value": resolution})
    column = "h3_fine" if resolution == "fine" else "h3_coarse"
    started = time.perf_counter()
    tickets = filter_received(Ticket.objects.filter(duplicate_of__isnull=True, **{f"{column}__isnull": False}),
                              received_from, received_to)
    if category:
        tickets = tickets.filter(category=category)
    rows = list(tickets.values_list(column, "received_at"))
    if not rows:
        raise AnalysisParameterError(_("筛选条件下没有带 H3 单元的工单。"))
    frame = pd.DataFrame(rows, columns=["cell", "received_at"])
    slices = period_starts(local_times(frame["received_at"]), period)
    study, unique_slices, counts, labels, states, trend_z, trend_p = analyse(
        frame["cell"].to_numpy(dtype=np.int64), slices, alpha)

    label_counts = pd.Series([label.value for label in labels]).value_counts().to_dict()
    with transaction.atomic():
        run = EmergingRun.objects.create(
            params={"period": period, "resolution": settings.FIREGRID_H3_RES_FINE if resolution == "fine"
                    else settings.FIREGRID_H3_RES_COARSE, "alpha": alpha, "category": category,
                    "received_from": str(received_from) if received_from else None,
                    "received_to": str(received_to) if received_to else None},
            slice_starts=[str(start) for start in unique_slices], ticket_count=len(frame), cell_count=len(study),
            label_counts=label_counts, duration_s=time.perf_counter() - started,
        )
        EmergingCell.objects.bulk_create([
            EmergingCell(run=run, h3_cell=int(study[i]), label=labels[i], ticket_count=int(counts[i].sum()),
                         hot_slices=int((states[i] == 1).sum()), cold_slices=int((states[i] == -1).sum()),
                         trend_z=float(trend_z[i]), trend_p=float(trend_p[i]))
            for i in range(len(study))
        ], batch_size=5000)
    logger.info("Emerging hot spot run %d: %d cells, %d slices, %s in %.1f s",
                run.pk, len(study), len(unique_slices), label_counts, run.duration_s)
    return run
