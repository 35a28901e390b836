"""Ticket hotspots: counts per H3 cell, Getis-Ord Gi* and stored runs.

A run counts the tickets that match a filter per H3 cell in the database,
builds the study set and runs Gi* (``spatial.analysis.gistar``). It stores
the label of every cell with the parameters, so a map can state what it
shows and the run can be recomputed.

Study set: every cell with at least one ticket plus its ring-1 neighbours,
which enter with a count of zero. Without the zeros, Gi* would compare each
neighbourhood only with other places that had tickets, and a block of busy
cells surrounded by quiet ones would not stand out. More rings of zeros
would lower the mean, so cells would test hot merely for having tickets.
Cells more than one ring away from any ticket are not tested, so a cold
spot can mark an area with few tickets but never the inside of an area
with none.
"""
import datetime
import logging
import time
from dataclasses import asdict, dataclass
from zoneinfo import ZoneInfo

import numpy as np
from django.conf import settings
from django.db import transaction
from django.db.models import Count, F
from django.utils.translation import gettext as _
from h3.api import basic_int as h3_int

from spatial.analysis import gistar
from spatial.models import HotspotCell, HotspotLabel, HotspotRun, Ticket, TicketSource
from spatial.taxonomy import Category

logger = logging.getLogger(__name__)

# First-stage permutations. With p_method "pseudo" the smallest p-value is
# 2 / (permutations + 1) = 0.002, and FDR then flags nothing at 90% unless
# 1 cell in 50 reaches it. The default "adaptive" refines only the cells
# near that floor with 9,999 and then 99,999 permutations, which costs far
# less than 9,999 permutations for every cell (bench/hotspots.py).
DEFAULT_PERMUTATIONS = 999
DEFAULT_SEED = 12345
DEFAULT_P_METHOD = gistar.DEFAULT_P_METHOD

# Runs stored before the p-value method became a parameter used pseudo p-values.
LEGACY_P_METHOD = gistar.P_METHOD_PSEUDO

# Received dates in a filter are calendar days of the hotline, in Beijing time.
HOTLINE_TIME_ZONE = ZoneInfo("Asia/Shanghai")

# Bit layout of an H3 cell index, from h3geo.org ("H3 Cell Index"): the
# resolution is in bits 52-55, and digit r (resolutions 1 to 15) in bits
# 3 * (15 - r) to 3 * (15 - r) + 2. Every digit finer than the cell's
# resolution is 7 (all ones). The tests check parents built this way
# against h3.cell_to_parent.
_H3_RESOLUTION_SHIFT = 52
_H3_RESOLUTION_MASK = 0xF << _H3_RESOLUTION_SHIFT
_H3_MAX_RESOLUTION = 15

_BULK_BATCH_SIZE = 5000

_LABELS = {
    (1, 99): HotspotLabel.HOT_99,
    (1, 95): HotspotLabel.HOT_95,
    (1, 90): HotspotLabel.HOT_90,
    (-1, 90): HotspotLabel.COLD_90,
    (-1, 95): HotspotLabel.COLD_95,
    (-1, 99): HotspotLabel.COLD_99,
}
HOT_LABELS = (HotspotLabel.HOT_99, HotspotLabel.HOT_95, HotspotLabel.HOT_90)
COLD_LABELS = (HotspotLabel.COLD_99, HotspotLabel.COLD_95, HotspotLabel.COLD_90)


class HotspotParameterError(ValueError):
    """Invalid hotspot filter or statistic parameter, with a message naming the value and what is allowed."""


@dataclass(frozen=True)
class HotspotQuery:
    """Validated parameters of one run, stored on the run as ``as_params()``."""

    category: str | None
    source: str | None
    received_from: datetime.date | None
    received_to: datetime.date | None
    resolution: int
    permutations: int
    seed: int
    p_method: str
    # Refinement stage sizes of "adaptive", None for the other methods.
    refinement_permutations: tuple[int, ...] | None

    def as_params(self):
        """Return the parameters as JSON values, without refinement stages unless p_method is "adaptive"."""
        params = asdict(self)
        for key in ("received_from", "received_to"):
            if params[key] is not None:
                params[key] = params[key].isoformat()
        if self.refinement_permutations is None:
            del params["refinement_permutations"]
        else:
            params["refinement_permutations"] = list(self.refinement_permutations)
        return params


def resolve_resolution(value):
    """Turn "fine", "coarse" or an integer into an H3 resolution no finer than the fine column."""
    fine = settings.FIREGRID_H3_RES_FINE
    coarse = settings.FIREGRID_H3_RES_COARSE
    if value == "fine":
        return fine
    if value == "coarse":
        return coarse
    if isinstance(value, bool) or not isinstance(value, int) or not 0 <= value <= fine:
        raise HotspotParameterError(
            _("H3 分辨率 “%(value)s” 无效,应为 fine、coarse 或 0 到 %(fine)s 之间的整数。")
            % {"value": value, "fine": fine}
        )
    return value


def _parse_date(name, value):
    if value is None or isinstance(value, datetime.date):
        return value
    try:
        return datetime.datetime.strptime(value, "%Y-%m-%d").date()
    except (TypeError, ValueError):
        raise HotspotParameterError(
            _("%(name)s 的日期 “%(value)s” 无效,应为 YYYY-MM-DD 格式,例如 2024-03-01。")
            % {"name": name, "value": value}
        ) from None


def build_query(
    *,
    category=None,
    source=None,
    received_from=None,
    received_to=None,
    resolution="fine",
    permutations=DEFAULT_PERMUTATIONS,
    seed=DEFAULT_SEED,
    p_method=DEFAULT_P_METHOD,
    refinement_permutations=None,
):
    """Validate run parameters and return them as a HotspotQuery.

    Dates may be ``datetime.date`` objects or "YYYY-MM-DD" strings, and both
    ends of the period are included. Refinement stages apply only to
    p_method "adaptive", which without them gets
    ``gistar.resolve_refinement_permutations(permutations)``. Raises
    HotspotParameterError naming the invalid value and what is allowed.
    """
    if category is not None and category not in Category.values:
        raise HotspotParameterError(
            _("问题类型 “%(value)s” 无效,可选 %(allowed)s。")
            % {"value": category, "allowed": ", ".join(Category.values)}
        )
    if source is not None and source not in TicketSource.values:
        raise HotspotParameterError(
            _("工单来源 “%(value)s” 无效,可选 %(allowed)s。")
            % {"value": source, "allowed": ", ".join(TicketSource.values)}
        )

    received_from = _parse_date("received_from", received_from)
    received_to = _parse_date("received_to", received_to)
    if received_from and received_to and received_from > received_to:
        raise HotspotParameterError(
            _("起始日期 %(start)s 晚于截止日期 %(end)s,请交换两者或更正其一。")
            % {"start": received_from.isoformat(), "end": received_to.isoformat()}
        )

    if isinstance(permutations, bool) or not isinstance(permutations, int) or permutations < 1:
        raise HotspotParameterError(
            _("置换次数 “%(value)s” 无效,应为正整数,常用 999 或 9999。") % {"value": permutations}
        )
    if isinstance(seed, bool) or not isinstance(seed, int) or seed < 0:
        raise HotspotParameterError(_("随机种子 “%(value)s” 无效,应为非负整数。") % {"value": seed})
    if p_method not in gistar.P_METHODS:
        raise HotspotParameterError(
            _("p 值方法 “%(value)s” 无效,可选 %(allowed)s。")
            % {"value": p_method, "allowed": ", ".join(gistar.P_METHODS)}
        )
    refinement_permutations = _check_refinement_permutations(p_method, permutations, refinement_permutations)

    return HotspotQuery(
        category=category,
        source=source,
        received_from=received_from,
        received_to=received_to,
        resolution=resolve_resolution(resolution),
        permutations=permutations,
        seed=seed,
        p_method=p_method,
        refinement_permutations=refinement_permutations,
    )


def _check_refinement_permutations(p_method, permutations, refinement_permutations):
    if p_method != gistar.P_METHOD_ADAPTIVE:
        if refinement_permutations:
            raise HotspotParameterError(
                _("追加置换次数仅适用于 p 值方法 adaptive,当前方法为 %(method)s,请去掉该参数或改用 adaptive。")
                % {"method": p_method}
            )
        return None
    try:
        return gistar.resolve_refinement_permutations(permutations, refinement_permutations)
    except (TypeError, ValueError):
        raise HotspotParameterError(
            _("追加置换次数 “%(value)s” 无效,应为逐级增大的正整数,且第一级大于置换次数 %(permutations)s,例如 9999,99999。")
            % {"value": refinement_permutations, "permutations": permutations}
        ) from None


def get_p_method(params):
    """Return the p-value method stored in a run's params, "pseudo" for runs stored before it was a parameter."""
    return params.get("p_method", LEGACY_P_METHOD)


def filter_tickets(query):
    """Return the tickets matching the query's category, source and received period.

    A duplicate (the same hazard reported again within hours) is linked to
    its first report and left out, so one hazard counts once.
    """
    tickets = Ticket.objects.filter(duplicate_of__isnull=True)
    if query.category is not None:
        tickets = tickets.filter(category=query.category)
    if query.source is not None:
        tickets = tickets.filter(source=query.source)
    if query.received_from is not None:
        start = datetime.datetime.combine(query.received_from, datetime.time.min, tzinfo=HOTLINE_TIME_ZONE)
        tickets = tickets.filter(received_at__gte=start)
    if query.received_to is not None:
        day_after = query.received_to + datetime.timedelta(days=1)
        end = datetime.datetime.combine(day_after, datetime.time.min, tzinfo=HOTLINE_TIME_ZONE)
        tickets = tickets.filter(received_at__lt=end)
    return tickets


def _cell_column(resolution):
    """Return the stored column that cells at ``resolution`` come from, and the SQL expression of the cell."""
    if resolution == settings.FIREGRID_H3_RES_FINE:
        return "h3_fine", F("h3_fine")
    if resolution == settings.FIREGRID_H3_RES_COARSE:
        return "h3_coarse", F("h3_coarse")

    # The parent of a fine cell keeps its base cell and first `resolution`
    # digits, so write the new resolution and set every finer digit to 7.
    # This runs in the database, so no ticket row is loaded into Python.
    finer_digit_bits = (1 << (3 * (_H3_MAX_RESOLUTION - resolution))) - 1
    resolution_bits = resolution << _H3_RESOLUTION_SHIFT
    keep_mask = ~_H3_RESOLUTION_MASK
    parent = F("h3_fine").bitand(keep_mask).bitor(resolution_bits | finer_digit_bits)
    return "h3_fine", parent


def count_tickets_by_cell(query):
    """Count matching tickets per H3 cell with one GROUP BY query.

    Returns a dict of cell id (h3 int) -> ticket count, and the number of
    matching tickets excluded because the column for the query's
    resolution is empty.
    """
    tickets = filter_tickets(query)
    column, cell = _cell_column(query.resolution)

    without_cell = tickets.filter(**{f"{column}__isnull": True}).count()
    rows = (
        tickets.filter(**{f"{column}__isnull": False})
        .annotate(cell=cell)
        .values("cell")
        .annotate(tickets=Count("pk"))
        .order_by()
    )
    counts = {row["cell"]: row["tickets"] for row in rows}
    return counts, without_cell


def build_study_set(counts):
    """Add the zero-count ring-1 neighbours of every counted cell.

    Returns the cells sorted by id, so the result of a seeded run does not
    depend on the order the database returned rows in, and their counts.
    """
    study = dict(counts)
    for cell in counts:
        for neighbour in h3_int.grid_disk(cell, 1):
            study.setdefault(neighbour, 0)
    cells = np.array(sorted(study), dtype=np.uint64)
    values = np.array([study[cell] for cell in cells.tolist()], dtype=np.float64)
    return cells, values


def label_cells(result):
    """Map each cell's direction and confidence from a GiStarResult to a HotspotLabel."""
    labels = []
    for direction, confidence in zip(result.direction.tolist(), result.confidence.tolist()):
        labels.append(_LABELS.get((direction, confidence), HotspotLabel.NOT_SIGNIFICANT))
    return labels


def run_hotspots(**params):
    """Compute Gi* hotspots for the tickets matching a filter and store the run.

    Parameters
    ----------
    category, source : str, optional
        Category and TicketSource values to keep, or all when omitted.
    received_from, received_to : datetime.date or str, optional
        First and last received day ("YYYY-MM-DD"), both included, as
        calendar days in Asia/Shanghai.
    resolution : {"fine", "coarse"} or int, default "fine"
        H3 resolution: the fine or coarse stored column, or any resolution
        coarser than the fine one, counted on parents of the fine cells.
        The coarse column stores the cell that contains the ticket's point,
        which near a cell edge can differ from the parent of its fine cell,
        because H3 children do not nest exactly inside their parents.
    permutations : int, default 999
        Conditional permutations per cell.
    seed : int, default 12345
        Random seed. The same tickets and parameters give the same labels.
    p_method : {"adaptive", "pseudo", "z_sim"}, default "adaptive"
        p-value passed to the FDR correction and stored in
        ``HotspotCell.p_value``: the pseudo p-value with adaptive
        refinement, the plain two-sided pseudo p-value or the permutation
        normal approximation (see ``gistar.gi_star``).
    refinement_permutations : sequence of int, optional
        Refinement stage sizes of "adaptive", stored in the run's params.
        The default is 9,999 and 99,999, without stages at or below
        ``permutations``.

    Returns
    -------
    HotspotRun
        The saved run with its cells. Its unsaved attribute
        ``tickets_without_cell`` is the number of matching tickets left out
        because they have no cell at the chosen resolution.

    Raises
    ------
    HotspotParameterError
        When a parameter is invalid.
    """
    started = time.perf_counter()
    query = build_query(**params)

    counts, without_cell = count_tickets_by_cell(query)
    cells, values = build_study_set(counts)
    neighbours = gistar.neighbour_index(cells)
    result = gistar.gi_star(
        values,
        neighbours,
        query.permutations,
        query.seed,
        p_method=query.p_method,
        refinement_permutations=query.refinement_permutations,
    )
    labels = label_cells(result)

    hot_count = sum(label in HOT_LABELS for label in labels)
    cold_count = sum(label in COLD_LABELS for label in labels)
    ticket_count = int(values.sum())

    with transaction.atomic():
        run = HotspotRun.objects.create(
            params=query.as_params(),
            ticket_count=ticket_count,
            cell_count=len(cells),
            hot_count=hot_count,
            cold_count=cold_count,
        )
        HotspotCell.objects.bulk_create(
            _cell_rows(run, cells, values, result, labels),
            batch_size=_BULK_BATCH_SIZE,
        )
        run.duration_s = time.perf_counter() - started
        run.save(update_fields=["duration_s"])

    # NOTE: HotspotRun has no column for tickets without a cell, so this
    # count lives only on the returned object and in the log.
    run.tickets_without_cell = without_cell
    logger.info(
        "Hotspot run %s: %s tickets (%s without a cell) in %s cells at resolution %s, "
        "%s hot, %s cold with %s p-values, %.2f s",
        run.pk, ticket_count, without_cell, len(cells), query.resolution,
        hot_count, cold_count, query.p_method, run.duration_s,
    )
    if query.p_method == gistar.P_METHOD_ADAPTIVE:
        _log_refinement(run, result, query)
    return run


def _log_refinement(run, result, query):
    for stage_size in query.refinement_permutations:
        logger.info(
            "Hotspot run %s: %s cells reached the refinement stage of %s permutations",
            run.pk, int((result.final_permutations >= stage_size).sum()), stage_size,
        )
    if result.refinement_capped:
        logger.warning(
            "Hotspot run %s: %s cells near the p-value floor were not refined because "
            "the refinement budget was used up, so their p-values come from fewer draws",
            run.pk, result.refinement_capped,
        )


def _cell_rows(run, cells, values, result, labels):
    # NOTE: the verbose name of HotspotCell.p_value reads "伪p值" (pseudo
    # p-value), but with p_method "z_sim" the field stores the normal
    # approximation instead.
    for i, cell in enumerate(cells.tolist()):
        z_score = float(result.z_scores[i])
        yield HotspotCell(
            run=run,
            h3_cell=cell,
            ticket_count=int(values[i]),
            z_score=None if np.isnan(z_score) else z_score,
            p_value=float(result.p_values[i]),
            label=labels[i],
        )


def recompute(run):
    """Run a stored hotspot analysis again with its stored parameters and return the new run.

    A run stored without "p_method" is recomputed with pseudo p-values, the
    only method when it ran, and the new run stores that method.
    """
    params = {**run.params, "p_method": get_p_method(run.params)}
    logger.info("Recomputing hotspot run %s with %s", run.pk, params)
    return run_hotspots(**params)


def label_counts(run):
    """Return the number of cells of a run per HotspotLabel value, with zeros for absent labels."""
    counts = dict.fromkeys(HotspotLabel.values, 0)
    rows = run.cells.values("label").annotate(cells=Count("pk")).order_by()
    for row in rows:
        counts[row["label"]] = row["cells"]
    return counts
