"""Predictive risk map: the probability of at least one event per H3 cell in the coming period.

Events are tickets (duplicates left out) or rows of an event file such as
fire department calls. They are counted per H3 cell and calendar period
(week or month) into a cells × periods matrix. For each cell and target
period the features are:

* its counts in the last 1, 2 and 3 periods, and its sums over the last 6
  and 12 periods and over all history;
* per category, for the most frequent categories: last-period count and
  last-6 sum;
* the ring-1 neighbours' last-period count and last-6 sum;
* the month of the target period (sine and cosine), for seasons;
* static features when available: zone type (one-hot), building and
  point-of-interest counts from an OpenStreetMap file, and sensor alarms
  (IoT tickets) still open when the period starts.

The model is scikit-learn's HistGradientBoostingClassifier. Its target is
"at least one event in the period".

Evaluation is a temporal holdout: the model is trained on earlier periods
and scored on each later period, one period ahead, with the history known
at its start. Rows are never shuffled across time. The baselines are the
last period's count and a kernel density surface: all earlier counts
smoothed over H3 grid distance with Gaussian weights (σ = 1 cell, rings 0
to 2). Figures per method: AUC, hit rate and predictive accuracy index
(PAI) at the top 10% of cells, and the precision of the top alerts.

The study area is every cell with an event before the target periods plus
its ring-1 neighbours. Events in later periods that fall outside it count
as misses in the hit rate.
"""
import datetime
import logging
import time
from dataclasses import dataclass, field
from pathlib import Path

import h3
import numpy as np
import pandas as pd
from django.db import transaction
from django.utils.translation import gettext as _
from scipy import sparse
from sklearn.ensemble import HistGradientBoostingClassifier
from sklearn.metrics import roc_auc_score
from threadpoolctl import threadpool_limits

from spatial.analysis.gistar import neighbour_index
from spatial.analysis.periods import AnalysisParameterError, check_period, local_times, period_starts
from spatial.models import RiskCell, RiskRun, Ticket, TicketSource, Zone, ZoneType

logger = logging.getLogger(__name__)

MODEL_VERSION = "risk-hgb-1"
LAGS = (1, 2, 3)
WINDOWS = (6, 12)
MIN_HISTORY_PERIODS = 3
TOP_CATEGORIES = 6
TOP_SHARE = 0.10
DEFAULT_ALERTS = 20
DEFAULT_TEST_PERIODS = 6
KDE_SIGMA_CELLS = 1.0
KDE_RINGS = 2
DEFAULT_SEED = 0
SINGLE_THREAD_ROWS = 200_000
# Fits use the most recent periods up to this many cell-period rows: older
# periods still feed the lag and window features, and the fit time stays
# bounded (about 30 s for 500,000 rows on one busy core, bench/risk.py).
MAX_TRAINING_ROWS = 500_000

LAT_COLUMNS = ("lat", "latitude", "纬度", "Latitude")
LNG_COLUMNS = ("lng", "lon", "longitude", "经度", "Longitude")
TIME_COLUMNS = ("received_at", "received_timestamp", "created_date", "call_date", "受理时间", "time")
CATEGORY_COLUMNS = ("category", "call_type", "complaint_type", "问题类型")
# One incident can fill several rows (one per unit sent in fire department
# call data); rows sharing an incident number count as one event.
INCIDENT_COLUMNS = ("incident_number", "incident_id")


class RiskError(ValueError):
    """Risk features, training or evaluation cannot run; the message names the value or file and the fix."""


@dataclass
class EventCube:
    """Event counts per cell and period, with what the features need.

    ``counts`` has shape (cells, periods); ``category_counts`` maps a
    category to a matrix of the same shape; ``open_alarms`` too.
    ``outside`` counts per period the events in cells outside the area.
    """

    cells: np.ndarray
    starts: list
    period: str
    counts: np.ndarray
    category_counts: dict
    open_alarms: np.ndarray
    outside: np.ndarray
    static: np.ndarray = None
    static_names: list = field(default_factory=list)


def _first_column(frame, names, path, what, required=True):
    for name in names:
        if name in frame.columns:
            return name
    if required:
        raise RiskError(_("事件文件 %(path)s 中找不到%(what)s列(试过 %(tried)s)。")
                        % {"path": path, "what": what, "tried": "、".join(names)})
    return None


def read_event_file(path):
    """Read a CSV of events with a time, latitude and longitude per row (WGS84 degrees).

    Rows without a usable location (missing, or the 0,0 placeholder) or
    time are dropped and counted, and so are further rows of an incident
    already read. Returns (events frame, dropped rows).
    """
    path = Path(path)
    if not path.is_file():
        raise RiskError(_("找不到事件文件 %(path)s,请检查路径。") % {"path": path})
    frame = pd.read_csv(path, dtype=str, encoding="utf-8-sig")
    read_rows = len(frame)
    incident_column = _first_column(frame, INCIDENT_COLUMNS, path, "", required=False)
    if incident_column:
        frame = frame.drop_duplicates(incident_column).reset_index(drop=True)
    lat_column = _first_column(frame, LAT_COLUMNS, path, _("纬度"))
    lng_column = _first_column(frame, LNG_COLUMNS, path, _("经度"))
    time_column = _first_column(frame, TIME_COLUMNS, path, _("时间"))
    category_column = _first_column(frame, CATEGORY_COLUMNS, path, _("类别"), required=False)
    lat = pd.to_numeric(frame[lat_column], errors="coerce")
    lng = pd.to_numeric(frame[lng_column], errors="coerce")
    times = pd.to_datetime(frame[time_column], utc=True, errors="coerce", format="mixed")
    usable = lat.between(-90, 90) & lng.between(-180, 180) & ~((lat == 0) & (lng == 0)) & times.notna()
    events = pd.DataFrame({
        "lat": lat[usable].to_numpy(), "lng": lng[usable].to_numpy(), "t": times[usable].reset_index(drop=True),
        "category": (frame[category_column][usable].fillna("").to_numpy() if category_column else ""),
        "alarm": False, "closed_t": pd.NaT,
    })
    return events, read_rows - len(events)


def ticket_events():
    """Return the located, non-duplicate tickets as an events frame."""
    rows = (Ticket.objects.filter(location__isnull=False, duplicate_of__isnull=True)
            .values_list("location", "received_at", "category", "source", "closed_at"))
    records = [(location.y, location.x, received, category, source == TicketSource.IOT_ALARM, closed)
               for location, received, category, source, closed in rows.iterator(chunk_size=20000)]
    frame = pd.DataFrame.from_records(records, columns=["lat", "lng", "t", "category", "alarm", "closed_t"])
    frame["t"] = pd.to_datetime(frame["t"], utc=True)
    frame["closed_t"] = pd.to_datetime(frame["closed_t"], utc=True)
    return frame


def cells_of(lat, lng, resolution):
    """Return H3 cells (int ids) of arrays of WGS84 degrees."""
    return np.fromiter((h3.str_to_int(h3.latlng_to_cell(a, b, resolution)) for a, b in zip(lat, lng)),
                       dtype=np.int64, count=len(lat))


def build_cube(events, period, resolution, area_until=None, cells=None):
    """Count events per H3 cell and period.

    ``area_until`` (a period index) limits the cells that define the area
    to events before it, so a holdout area is known before the test
    periods. ``cells`` may give precomputed cells of the events.
    """
    check_period(period)
    if len(events) == 0:
        raise RiskError(_("没有可用的事件(有位置和时间的工单或记录),无法建立风险模型。"))
    if cells is None:
        cells = cells_of(events["lat"].to_numpy(), events["lng"].to_numpy(), resolution)
    starts = period_starts(local_times(events["t"]), period)
    all_starts = _period_range(starts.min(), starts.max(), period)
    period_index = np.searchsorted(all_starts, starts)

    defining = cells if area_until is None else cells[period_index < area_until]
    seen = np.unique(defining)
    ring = {h3.str_to_int(n) for cell in seen.tolist() for n in h3.grid_disk(h3.int_to_str(cell), 1)}
    area = np.unique(np.concatenate([seen, np.fromiter(ring, dtype=np.int64, count=len(ring))]))

    slot = np.searchsorted(area, cells)
    slot = np.minimum(slot, len(area) - 1)
    inside = area[slot] == cells
    shape = (len(area), len(all_starts))
    counts = _count_matrix(slot[inside], period_index[inside], shape)
    outside = np.bincount(period_index[~inside], minlength=len(all_starts))

    categories = pd.Series(events["category"]).value_counts().index[:TOP_CATEGORIES]
    category_counts = {}
    for category in categories:
        if not category:
            continue
        chosen = inside & (events["category"].to_numpy() == category)
        category_counts[category] = _count_matrix(slot[chosen], period_index[chosen], shape)

    open_alarms = np.zeros(shape, dtype=np.float32)
    alarms = inside & events["alarm"].to_numpy(dtype=bool)
    if alarms.any():
        start_times = pd.DatetimeIndex(all_starts.astype("datetime64[ns]")).tz_localize("Asia/Shanghai")
        received = pd.DatetimeIndex(events["t"][alarms])
        closed = pd.DatetimeIndex(events["closed_t"][alarms])
        for p, start in enumerate(start_times):
            still_open = (received < start) & (closed.isna() | (closed >= start))
            np.add.at(open_alarms[:, p], slot[alarms][still_open], 1)

    return EventCube(area, [str(day) for day in all_starts], period, counts, category_counts, open_alarms, outside)


def _period_range(first, last, period):
    if period == "month":
        return np.arange(first.astype("datetime64[M]"), last.astype("datetime64[M]") + 1).astype("datetime64[D]")
    return np.arange(first, last + 7, 7).astype("datetime64[D]")


def _count_matrix(rows, columns, shape):
    matrix = np.zeros(shape, dtype=np.float32)
    np.add.at(matrix, (rows, columns), 1)
    return matrix


def adjacency(cells):
    """Return the sparse ring-1 adjacency matrix of cells, using gistar's neighbour table."""
    table = neighbour_index(cells)
    rows, slots = np.nonzero(table >= 0)
    values = np.ones(len(rows), dtype=np.float32)
    return sparse.csr_matrix((values, (rows, table[rows, slots])), shape=(len(cells), len(cells)))


def kernel_matrix(cells, sigma=KDE_SIGMA_CELLS, rings=KDE_RINGS):
    """Return the sparse Gaussian kernel over H3 grid distance (0..rings) between cells of the area."""
    order = np.argsort(cells)
    sorted_cells = cells[order]
    rows, columns, values = [], [], []
    for i, cell in enumerate(cells.tolist()):
        for distance in range(rings + 1):
            ring = np.fromiter((h3.str_to_int(c) for c in h3.grid_ring(h3.int_to_str(cell), distance)), dtype=np.int64)
            slots = np.minimum(np.searchsorted(sorted_cells, ring), len(cells) - 1)
            present = sorted_cells[slots] == ring
            found = order[slots[present]]
            rows.extend([i] * len(found))
            columns.extend(found.tolist())
            values.extend([np.exp(-distance**2 / (2 * sigma**2))] * len(found))
    return sparse.csr_matrix((values, (rows, columns)), shape=(len(cells), len(cells)), dtype=np.float32)


def add_static_features(cube, zone_types=None, osm_counts=None):
    """Attach zone-type one-hot columns and OSM building and POI counts to the cube."""
    columns, names = [], []
    if zone_types:
        for zone_type in ZoneType:
            columns.append(np.array([zone_types.get(int(c)) == zone_type.value for c in cube.cells], dtype=np.float32))
            names.append(f"zone_{zone_type.value}")
    if osm_counts:
        for key in ("buildings", "pois"):
            counts = osm_counts.get(key, {})
            columns.append(np.array([counts.get(int(c), 0) for c in cube.cells], dtype=np.float32))
            names.append(f"osm_{key}")
    if columns:
        cube.static = np.column_stack(columns)
        cube.static_names = names
    return cube


def osm_density(path, resolution):
    """Count buildings (by their first node) and points of interest per H3 cell in an .osm or .pbf file."""
    import osmium

    path = Path(path)
    if not path.is_file():
        raise RiskError(_("找不到 OSM 文件 %(path)s,请检查路径。") % {"path": path})
    buildings, pois = {}, {}
    poi_keys = ("amenity", "shop", "tourism", "craft", "office")
    for obj in osmium.FileProcessor(str(path)).with_locations():
        if obj.is_node() and any(key in obj.tags for key in poi_keys):
            cell = h3.str_to_int(h3.latlng_to_cell(obj.location.lat, obj.location.lon, resolution))
            pois[cell] = pois.get(cell, 0) + 1
        elif obj.is_way() and "building" in obj.tags and len(obj.nodes) and obj.nodes[0].location.valid():
            first = obj.nodes[0].location
            cell = h3.str_to_int(h3.latlng_to_cell(first.lat, first.lon, resolution))
            buildings[cell] = buildings.get(cell, 0) + 1
    return {"buildings": buildings, "pois": pois}


def features_for_period(cube, p, neighbours):
    """Return the feature matrix (cells × features) for target period ``p`` from periods before it."""
    counts = cube.counts
    history = counts[:, :p]
    columns = [history[:, p - lag] if p - lag >= 0 else np.zeros(len(counts)) for lag in LAGS]
    columns += [history[:, max(0, p - window):].sum(axis=1) for window in WINDOWS]
    columns.append(history.sum(axis=1) / max(p, 1))
    for matrix in cube.category_counts.values():
        columns.append(matrix[:, p - 1])
        columns.append(matrix[:, max(0, p - 6):p].sum(axis=1))
    columns.append(neighbours @ history[:, p - 1])
    columns.append(neighbours @ history[:, max(0, p - 6):].sum(axis=1))
    month = int(str(cube.starts[p])[5:7]) if p < len(cube.starts) else _month_after(cube)
    columns.append(np.full(len(counts), np.sin(2 * np.pi * month / 12)))
    columns.append(np.full(len(counts), np.cos(2 * np.pi * month / 12)))
    # NOTE: for the period after the last one (p == periods), alarms are
    # counted as open at the start of the last period, not at the start of p.
    columns.append(cube.open_alarms[:, min(p, cube.open_alarms.shape[1] - 1)])
    matrix = np.column_stack(columns).astype(np.float32)
    if cube.static is not None:
        matrix = np.hstack([matrix, cube.static])
    return matrix


def _month_after(cube):
    last = datetime.date.fromisoformat(cube.starts[-1])
    step = datetime.timedelta(days=7) if cube.period == "week" else datetime.timedelta(days=32)
    return (last + step).month


def recent_periods(cube, first, end):
    """Return the training periods first..end-1, cut to the most recent ones within MAX_TRAINING_ROWS rows."""
    keep = max(1, MAX_TRAINING_ROWS // max(len(cube.cells), 1))
    return range(max(first, end - keep), end)


def training_rows(cube, periods, neighbours):
    features = [features_for_period(cube, p, neighbours) for p in periods]
    targets = [cube.counts[:, p] > 0 for p in periods]
    return np.vstack(features), np.concatenate(targets)


def fit_model(features, targets, seed=DEFAULT_SEED):
    """Fit the gradient-boosting classifier; a single-class target cannot be learned."""
    if targets.all() or not targets.any():
        raise RiskError(_("训练期内所有单元都有事件或都没有事件,无法训练风险模型。请换用更细的分辨率或更短的周期。"))
    model = HistGradientBoostingClassifier(max_iter=150, learning_rate=0.08, max_leaf_nodes=31,
                                           l2_regularization=1.0, random_state=seed)
    # OpenMP threads busy-wait: on a loaded two-core machine a fit of 2,000
    # rows took 11 s with all threads and 0.3 s with one. Small fits use one.
    with threadpool_limits(limits=1 if len(targets) < SINGLE_THREAD_ROWS else None):
        return model.fit(features, targets)


def _top_mask(scores, share, seed):
    """Mark the top ``share`` of cells by score, breaking ties at random with a fixed seed."""
    count = max(1, int(round(share * len(scores))))
    jitter = np.random.default_rng(seed).random(len(scores)) * 1e-6
    order = np.argsort(-(scores + jitter * (np.abs(scores).max() + 1)), kind="stable")
    mask = np.zeros(len(scores), dtype=bool)
    mask[order[:count]] = True
    return mask, order


def score_period(scores, counts, outside, alerts, seed):
    """Return hit rate and PAI at the top 10% of cells and the precision of the top ``alerts`` cells."""
    top, order = _top_mask(scores, TOP_SHARE, seed)
    events = counts.sum() + outside
    hit_rate = counts[top].sum() / events if events else np.nan
    area_share = top.sum() / len(scores)
    precision = float((counts[order[:alerts]] > 0).mean())
    return hit_rate, hit_rate / area_share if events else np.nan, precision


def evaluate_holdout(cube, test_periods=DEFAULT_TEST_PERIODS, alerts=DEFAULT_ALERTS, seed=DEFAULT_SEED):
    """Train on the periods before the last ``test_periods`` and score each of those, one period ahead.

    Returns a dict with the split and, for "model", "last_period" and
    "kde", the AUC over all test cell-periods and the mean over test
    periods of hit rate, PAI and alert precision.
    """
    total = len(cube.starts)
    split = total - test_periods
    if test_periods < 1 or split < MIN_HISTORY_PERIODS + 1:
        raise RiskError(_("共有 %(total)s 个周期,留出 %(test)s 个测试周期后训练期不足 %(min)s 个周期。")
                        % {"total": total, "test": test_periods, "min": MIN_HISTORY_PERIODS + 1})
    neighbours = adjacency(cube.cells)
    kernel = kernel_matrix(cube.cells)
    features, targets = training_rows(cube, recent_periods(cube, MIN_HISTORY_PERIODS, split), neighbours)
    model = fit_model(features, targets, seed)

    scores = {"model": [], "last_period": [], "kde": []}
    truth, per_period = [], {name: [] for name in scores}
    for p in range(split, total):
        period_scores = {
            "model": model.predict_proba(features_for_period(cube, p, neighbours))[:, 1],
            "last_period": cube.counts[:, p - 1].astype(float),
            "kde": kernel @ cube.counts[:, :p].sum(axis=1),
        }
        truth.append(cube.counts[:, p] > 0)
        for name, values in period_scores.items():
            scores[name].append(values)
            per_period[name].append(score_period(values, cube.counts[:, p], cube.outside[p], alerts, seed + p))

    truth = np.concatenate(truth)
    result = {
        "split": {"train_from": cube.starts[MIN_HISTORY_PERIODS], "train_to": cube.starts[split - 1],
                  "test_from": cube.starts[split], "test_to": cube.starts[-1], "period": cube.period,
                  "train_periods": split - MIN_HISTORY_PERIODS, "fit_periods": len(range(*_bounds(cube, split))),
                  "test_periods": test_periods,
                  "cells": len(cube.cells), "train_rows": len(targets), "alerts": alerts,
                  "test_events": int(cube.counts[:, split:].sum() + cube.outside[split:].sum()),
                  "test_events_outside_area": int(cube.outside[split:].sum())},
    }
    for name in scores:
        values = np.concatenate(scores[name])
        figures = np.array(per_period[name], dtype=float)
        result[name] = {
            "auc": float(roc_auc_score(truth, values)) if 0 < truth.sum() < len(truth) else None,
            "hit_rate_top10": float(np.nanmean(figures[:, 0])),
            "pai_top10": float(np.nanmean(figures[:, 1])),
            "alert_precision": float(np.nanmean(figures[:, 2])),
        }
    return result


def _bounds(cube, split):
    periods = recent_periods(cube, MIN_HISTORY_PERIODS, split)
    return periods.start, periods.stop


def predict_next(cube, seed=DEFAULT_SEED):
    """Fit on all periods and return each cell's probability for the period after the last one."""
    neighbours = adjacency(cube.cells)
    total = len(cube.starts)
    if total < MIN_HISTORY_PERIODS + 1:
        raise RiskError(_("只有 %(total)s 个周期的数据,至少需要 %(min)s 个。")
                        % {"total": total, "min": MIN_HISTORY_PERIODS + 1})
    features, targets = training_rows(cube, recent_periods(cube, MIN_HISTORY_PERIODS, total), neighbours)
    model = fit_model(features, targets, seed)
    return model.predict_proba(features_for_period(cube, total, neighbours))[:, 1]


def run_risk(period="month", resolution=None, test_periods=DEFAULT_TEST_PERIODS, alerts=DEFAULT_ALERTS,
             osm_path=None, seed=DEFAULT_SEED):
    """Build the risk map from the tickets, evaluate it on a temporal holdout and store a RiskRun.

    ``resolution`` defaults to the fine H3 column's. The holdout area is
    fixed from the training periods; the stored map covers every cell with a
    ticket plus its neighbours.
    """
    from django.conf import settings

    resolution = settings.FIREGRID_H3_RES_FINE if resolution is None else resolution
    if isinstance(resolution, bool) or not isinstance(resolution, int) or not 0 <= resolution <= 15:
        raise AnalysisParameterError(_("H3 分辨率 “%(value)s” 无效,应为 0 到 15 的整数。") % {"value": resolution})
    started = time.perf_counter()
    events = ticket_events()
    if len(events) == 0:
        raise RiskError(_("没有可用的事件(有位置和时间的工单或记录),无法建立风险模型。"))
    cells = cells_of(events["lat"].to_numpy(), events["lng"].to_numpy(), resolution)
    probe = build_cube(events, period, resolution, cells=cells)
    holdout_cube = build_cube(events, period, resolution, area_until=len(probe.starts) - test_periods, cells=cells)
    full_cube = probe
    zone_types = None
    if Zone.objects.exists():
        from spatial.analysis.zones import cell_zone_types

        zone_types = cell_zone_types(full_cube.cells)
    osm_counts = osm_density(osm_path, resolution) if osm_path else None
    add_static_features(holdout_cube, zone_types, osm_counts)
    add_static_features(full_cube, zone_types, osm_counts)

    evaluation = evaluate_holdout(holdout_cube, test_periods, alerts, seed)
    probabilities = predict_next(full_cube, seed)
    last_start = datetime.date.fromisoformat(full_cube.starts[-1])
    from spatial.analysis.periods import next_period_start

    predicted_start = next_period_start(last_start, period)
    order = np.argsort(-probabilities, kind="stable")
    ranks = np.empty(len(order), dtype=np.int64)
    ranks[order] = np.arange(1, len(order) + 1)
    with transaction.atomic():
        run = RiskRun.objects.create(
            model_version=MODEL_VERSION, period=period, predicted_start=predicted_start,
            params={"resolution": resolution, "test_periods": test_periods, "alerts": alerts, "seed": seed,
                    "osm_path": str(osm_path) if osm_path else None,
                    "features": _feature_names(full_cube)},
            evaluation=evaluation, ticket_count=len(events), cell_count=len(full_cube.cells),
            duration_s=time.perf_counter() - started,
        )
        RiskCell.objects.bulk_create([
            RiskCell(run=run, h3_cell=int(cell), probability=float(probability), rank=int(rank),
                     zone_type=(zone_types or {}).get(int(cell), ""))
            for cell, probability, rank in zip(full_cube.cells, probabilities, ranks)
        ], batch_size=5000)
    logger.info("Stored risk run %d: %d cells, AUC %.3f (last period %.3f, KDE %.3f) in %.1f s",
                run.pk, run.cell_count, evaluation["model"]["auc"] or float("nan"),
                evaluation["last_period"]["auc"] or float("nan"), evaluation["kde"]["auc"] or float("nan"),
                run.duration_s)
    return run


def _feature_names(cube):
    names = [f"lag{lag}" for lag in LAGS] + [f"sum{window}" for window in WINDOWS] + ["history_mean"]
    for category in cube.category_counts:
        names += [f"{category}_lag1", f"{category}_sum6"]
    names += ["neighbours_lag1", "neighbours_sum6", "month_sin", "month_cos", "open_alarms"]
    return names + list(cube.static_names)
