"""Repeat complaints (重复投诉), duplicates and suspected fake rectification.

Two tickets are at the same place when their normalised addresses are equal
and not empty, or when both are located within ``distance_m`` metres of each
other. Placeholder addresses ("Not associated with a specific address",
不详...) never match. Only tickets of the same category are compared, and
within the catch-all category "other" only tickets of the same original type
text, because "other" alone says nothing about the hazard.

* Duplicate: the same hazard registered again within ``duplicate_hours`` of
  an earlier ticket at the same place. It links to the first ticket of the
  burst (``duplicate_of``) and is left out of counts, shares and hotspots
  built by this package.
* Repeat: a ticket that is not a duplicate and follows an earlier
  non-duplicate ticket at the same place within ``window_days``. It links to
  the latest such ticket (``repeat_of``).
* Suspected fake rectification: a repeat received within
  ``fake_rectification_days`` after the earlier ticket was closed.

NOTE: "same building" is not a match rule yet. Building polygons belong to
the responsibility grid in gridmap, which this package may not import, so
tickets in one large building more than ``distance_m`` apart with different
address texts are not linked.

The repeat rate of a group is its repeats divided by its non-duplicate
tickets. Linking recomputes every ticket, so a changed rule never leaves
stale links behind.
"""
import logging
import time
from dataclasses import asdict, dataclass

import numpy as np
import pandas as pd
from django.db import connection, transaction
from django.db.models import Count, Q
from django.utils.translation import gettext as _
from pyproj import Transformer
from scipy.spatial import cKDTree

from spatial.analysis.periods import AnalysisParameterError, check_period, filter_received, local_times, period_starts
from spatial.models import RepeatRun, Ticket

logger = logging.getLogger(__name__)

DEFAULT_WINDOW_DAYS = 180
DEFAULT_DISTANCE_M = 30.0
DEFAULT_DUPLICATE_HOURS = 24.0
DEFAULT_FAKE_RECTIFICATION_DAYS = 30
GROUPINGS = ("period", "department", "grid")
# Normalised forms (lower case, no spaces or punctuation) of addresses that
# name no place.
PLACEHOLDER_ADDRESSES = frozenset({
    "notassociatedwithaspecificaddress", "unknown", "none", "na", "无", "不详", "未知", "暂无", "无地址",
})


@dataclass(frozen=True)
class RepeatRule:
    """Parameters of the repeat rule; distances in metres, windows in days or hours."""

    window_days: float = DEFAULT_WINDOW_DAYS
    distance_m: float = DEFAULT_DISTANCE_M
    duplicate_hours: float = DEFAULT_DUPLICATE_HOURS
    fake_rectification_days: float = DEFAULT_FAKE_RECTIFICATION_DAYS

    def __post_init__(self):
        for name, value in asdict(self).items():
            if isinstance(value, bool) or not isinstance(value, (int, float)) or value < 0:
                raise AnalysisParameterError(
                    _("参数 %(name)s 的值 “%(value)s” 无效,应为非负数。") % {"name": name, "value": value}
                )
        if self.duplicate_hours / 24 > self.window_days:
            raise AnalysisParameterError(
                _("重复登记时限 %(hours)s 小时长于重复投诉时间窗 %(days)s 天。")
                % {"hours": self.duplicate_hours, "days": self.window_days}
            )


def _metric_xy(lat, lng):
    """Project degrees to metres in the UTM zone of the points' mean longitude."""
    zone = int((np.nanmean(lng) + 180) // 6) + 1
    epsg = (32600 if np.nanmean(lat) >= 0 else 32700) + zone
    transformer = Transformer.from_crs(4326, epsg, always_xy=True)
    return transformer.transform(lng, lat)


def candidate_pairs(frame, rule):
    """Return (earlier, later) row positions of same-category tickets at the same place within the window.

    ``frame`` is sorted by received time and has columns ``t`` (seconds),
    ``category``, ``address`` and ``lat``/``lng`` (NaN when unlocated).
    Within one address only consecutive tickets are paired: the linking
    follows a duplicate to its first ticket, so the nearest earlier one is
    enough.
    """
    window_s = rule.window_days * 86400
    pairs = []

    addressed = frame[frame["address"] != ""]
    if len(addressed):
        keys = addressed.groupby(["category", "address"], sort=False).ngroup().to_numpy()
        positions = addressed.index.to_numpy()
        order = np.lexsort((positions, keys))
        keys, positions = keys[order], positions[order]
        same = keys[1:] == keys[:-1]
        pairs.append(np.column_stack([positions[:-1][same], positions[1:][same]]))

    located = frame[frame["lat"].notna()]
    if len(located) and rule.distance_m > 0:
        x, y = _metric_xy(located["lat"].to_numpy(), located["lng"].to_numpy())
        for _category, group in located.groupby("category", sort=False):
            if len(group) < 2:
                continue
            rows = np.flatnonzero(located.index.isin(group.index))
            tree = cKDTree(np.column_stack([x[rows], y[rows]]))
            found = tree.query_pairs(rule.distance_m, output_type="ndarray")
            if len(found):
                positions = group.index.to_numpy()
                pairs.append(np.sort(positions[found], axis=1))

    if not pairs:
        return np.empty((0, 2), dtype=np.int64)
    pairs = np.unique(np.concatenate(pairs), axis=0)
    times = frame["t"].to_numpy()
    gap = times[pairs[:, 1]] - times[pairs[:, 0]]
    return pairs[(gap >= 0) & (gap <= window_s) & (pairs[:, 0] != pairs[:, 1])]


def link_frame(frame, rule):
    """Compute duplicate, repeat and fake-rectification links for a sorted frame of tickets.

    Returns arrays of row positions (-1 for none) ``duplicate_of``,
    ``repeat_of`` and a boolean array ``fake``.
    """
    count = len(frame)
    duplicate_of = np.full(count, -1, dtype=np.int64)
    repeat_of = np.full(count, -1, dtype=np.int64)
    fake = np.zeros(count, dtype=bool)
    pairs = candidate_pairs(frame, rule)
    if not len(pairs):
        return duplicate_of, repeat_of, fake

    times = frame["t"].to_numpy()
    closed = frame["closed_t"].to_numpy()
    # Earlier candidates of each later ticket, latest first.
    order = np.lexsort((-times[pairs[:, 0]], pairs[:, 1]))
    pairs = pairs[order]
    starts = np.searchsorted(pairs[:, 1], np.arange(count))
    ends = np.searchsorted(pairs[:, 1], np.arange(count), side="right")
    duplicate_s = rule.duplicate_hours * 3600
    window_s = rule.window_days * 86400
    fake_s = rule.fake_rectification_days * 86400

    for later in range(count):
        if starts[later] == ends[later]:
            continue
        earlier_rows = pairs[starts[later]:ends[later], 0]
        gaps = times[later] - times[earlier_rows]
        if (gaps <= duplicate_s).any():
            first = earlier_rows[np.argmax(gaps <= duplicate_s)]
            duplicate_of[later] = duplicate_of[first] if duplicate_of[first] >= 0 else first
            continue
        for earlier in earlier_rows:
            root = duplicate_of[earlier] if duplicate_of[earlier] >= 0 else earlier
            if times[later] - times[root] <= window_s:
                repeat_of[later] = root
                since_closed = times[later] - closed[root]
                fake[later] = bool(np.isfinite(since_closed) and 0 <= since_closed <= fake_s)
                break
    return duplicate_of, repeat_of, fake


def _comparison_category(category, raw_type):
    if category == "other":
        return f"other:{(raw_type or '').strip().lower()}"
    return category


def _load_frame():
    rows = Ticket.objects.order_by("received_at", "pk").values_list(
        "pk", "received_at", "closed_at", "category", "raw_type", "address_normalized", "location")
    records = [(pk, received, closed, _comparison_category(category, raw_type),
                "" if address in PLACEHOLDER_ADDRESSES else address or "",
                location.y if location else np.nan, location.x if location else np.nan)
               for pk, received, closed, category, raw_type, address, location in rows.iterator(chunk_size=20000)]
    frame = pd.DataFrame.from_records(
        records, columns=["pk", "received_at", "closed_at", "category", "address", "lat", "lng"])
    if frame.empty:
        frame["t"] = frame["closed_t"] = pd.Series(dtype=float)
        return frame
    epoch = pd.Timestamp(0, tz="UTC")
    frame["t"] = (pd.to_datetime(frame["received_at"], utc=True) - epoch).dt.total_seconds()
    frame["closed_t"] = (pd.to_datetime(frame["closed_at"], utc=True) - epoch).dt.total_seconds()
    return frame


def link_repeats(**params):
    """Link duplicates, repeats and suspected fake rectifications of all tickets and store a RepeatRun.

    Keyword arguments are the fields of RepeatRule. The links are written
    in one transaction, so a failure leaves the previous ones in place.
    """
    rule = RepeatRule(**params)
    started = time.perf_counter()
    frame = _load_frame()
    duplicate_of, repeat_of, fake = link_frame(frame, rule)
    pks = frame["pk"].to_numpy(dtype=np.int64)

    def to_pk(positions):
        return [int(pks[p]) if p >= 0 else None for p in positions]

    with transaction.atomic():
        with connection.cursor() as cursor:
            # One UPDATE from arrays instead of a million ORM saves.
            cursor.execute(
                """
                UPDATE spatial_ticket t
                SET duplicate_of_id = u.duplicate_of, repeat_of_id = u.repeat_of,
                    suspected_fake_rectification = u.fake
                FROM unnest(%s::bigint[], %s::bigint[], %s::bigint[], %s::boolean[])
                    AS u(id, duplicate_of, repeat_of, fake)
                WHERE t.id = u.id
                """,
                [pks.tolist(), to_pk(duplicate_of), to_pk(repeat_of), fake.tolist()],
            )
        run = RepeatRun.objects.create(
            params=asdict(rule),
            ticket_count=len(frame),
            repeat_count=int((repeat_of >= 0).sum()),
            duplicate_count=int((duplicate_of >= 0).sum()),
            fake_rectification_count=int(fake.sum()),
            duration_s=time.perf_counter() - started,
        )
    logger.info("Linked %d repeats, %d duplicates, %d suspected fake rectifications among %d tickets in %.1f s",
                run.repeat_count, run.duplicate_count, run.fake_rectification_count, run.ticket_count,
                run.duration_s)
    return run


def repeat_rates(group_by="period", period="month", received_from=None, received_to=None):
    """Return rows {key, tickets, repeats, fake, rate} of the repeat rate per period, department or grid unit.

    Duplicates are left out of both counts. The grid unit is the coarse H3
    cell. NOTE: the responsibility grid's own polygons belong to gridmap,
    which this package may not import, so rates per community grid need a
    join on that side.
    """
    if group_by not in GROUPINGS:
        raise AnalysisParameterError(
            _("分组方式 “%(value)s” 无效,可选 %(allowed)s。") % {"value": group_by, "allowed": ", ".join(GROUPINGS)}
        )
    tickets = filter_received(Ticket.objects.filter(duplicate_of__isnull=True), received_from, received_to)
    if group_by == "period":
        check_period(period)
        values = list(tickets.values_list("received_at", "repeat_of_id", "suspected_fake_rectification"))
        if not values:
            return []
        frame = pd.DataFrame(values, columns=["received_at", "repeat_of", "fake"])
        frame["key"] = period_starts(local_times(frame["received_at"]), period)
        grouped = frame.groupby("key").agg(
            tickets=("received_at", "size"), repeats=("repeat_of", "count"), fake=("fake", "sum"))
        rows = [{"key": str(key)[:10], "tickets": int(row.tickets), "repeats": int(row.repeats), "fake": int(row.fake)}
                for key, row in grouped.iterrows()]
    else:
        field = "department" if group_by == "department" else "h3_coarse"
        grouped = (tickets.values(field)
                   .annotate(n=Count("pk"), repeats=Count("repeat_of"),
                             fake=Count("pk", filter=Q(suspected_fake_rectification=True)))
                   .order_by("-repeats", field))
        rows = [{"key": row[field] if row[field] not in (None, "") else "", "tickets": row["n"],
                 "repeats": row["repeats"], "fake": row["fake"]} for row in grouped]
    for row in rows:
        row["rate"] = row["repeats"] / row["tickets"] if row["tickets"] else 0.0
    return rows


def overall_repeat_rate(received_from=None, received_to=None):
    """Return (non-duplicate tickets, repeats, suspected fake rectifications) of a received period."""
    tickets = filter_received(Ticket.objects.filter(duplicate_of__isnull=True), received_from, received_to)
    totals = tickets.aggregate(n=Count("pk"), repeats=Count("repeat_of"),
                               fake=Count("pk", filter=Q(suspected_fake_rectification=True)))
    return totals["n"], totals["repeats"], totals["fake"]


def addresses_with_repeats(limit=100, received_from=None, received_to=None):
    """Return the places with repeats, most repeats first, each keyed by the first ticket of its chain.

    Each row has the first ticket's id, address, category and location, the
    chain's ticket count, repeats, suspected fake rectifications and the
    last received time.
    """
    tickets = filter_received(Ticket.objects.filter(duplicate_of__isnull=True), received_from, received_to)
    links = dict(Ticket.objects.filter(repeat_of__isnull=False).values_list("pk", "repeat_of_id"))
    repeats = tickets.filter(repeat_of__isnull=False).values_list("pk", "received_at", "suspected_fake_rectification")
    chains = {}
    for pk, received_at, fake in repeats:
        root, seen = pk, set()
        while root in links and root not in seen:
            seen.add(root)
            root = links[root]
        chain = chains.setdefault(root, {"repeats": 0, "fake": 0, "last_received_at": received_at})
        chain["repeats"] += 1
        chain["fake"] += int(fake)
        chain["last_received_at"] = max(chain["last_received_at"], received_at)
    roots = Ticket.objects.in_bulk(list(chains))
    rows = []
    for root_pk, chain in chains.items():
        root = roots.get(root_pk)
        if root is None:
            continue
        rows.append({
            "ticket": root, "address": root.address or root.address_normalized, "category": root.category,
            "tickets": chain["repeats"] + 1, **chain,
        })
    rows.sort(key=lambda row: (-row["repeats"], -row["fake"], row["ticket"].pk))
    return rows[:limit]
