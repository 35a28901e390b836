"""Assessment KPIs in three dimensions, computed by aggregate queries in PostgreSQL.

Every KPI is a ratio or an average over a base set of tickets, and is
defined by two conditions: ``base`` (the tickets it is computed over, the
set a user opens from the figure) and ``hit`` (the tickets counted in the
numerator). A KPI takes its period from one time column: ``closed``
(tickets closed in the period: times to close, ratings, callbacks),
``received`` (tickets received in the period: on-time response, repeats,
proactive discovery) or ``drawn`` (tickets of the period's re-inspection
draw, which stay counted after a failed re-inspection reopened them). One
query per basis then
yields every KPI of a scope, grouped by department, grid unit or period, so
a million tickets never pass through Python. The trend groups each ticket
by its closing and its receiving period at once, so one scan serves both.

Rates are fractions (0.31 is shown as 31%), times are days, ratings 1 to 5.
"""
import datetime
import functools
import operator
import re
from contextlib import contextmanager
from dataclasses import dataclass
from typing import Callable

from django.conf import settings
from django.core.cache import cache
from django.db import connection, transaction
from django.db.models import (Case, Count, DateTimeField, Exists, F, FloatField, Func, IntegerField, OuterRef, Q,
                              Sum, When)
from django.db.models.aggregates import Aggregate
from django.db.models.functions import Trunc
from django.utils import timezone
from django.utils.translation import gettext as _
from django.utils.translation import gettext_lazy

from gridmap.supervision import Callback, CallbackOutcome, KpiTarget, PeriodKind, Reinspection, ReinspectionResult
from spatial.models import Ticket, TicketSource

PROACTIVE_SOURCES = (TicketSource.IOT_ALARM, TicketSource.INSPECTION)
SATISFIED_SCORE = 4
RANK_GRID_LEVEL = 2  # grid units are ranked at the community level


class KpiError(ValueError):
    """A period, KPI code or grouping that is invalid; the message names the accepted values."""


# --- periods -----------------------------------------------------------------

_PERIOD_PATTERNS = (
    (PeriodKind.WEEK, re.compile(r"^(\d{4})-W(\d{2})$")),
    (PeriodKind.QUARTER, re.compile(r"^(\d{4})-Q([1-4])$")),
    (PeriodKind.MONTH, re.compile(r"^(\d{4})-(\d{2})$")),
    (PeriodKind.YEAR, re.compile(r"^(\d{4})$")),
)


@dataclass(frozen=True)
class Period:
    """A week, month, quarter or year in the configured time zone; ``end`` is exclusive."""

    kind: str
    key: str
    start: datetime.datetime
    end: datetime.datetime

    @property
    def label(self):
        year = self.start.year
        if self.kind == PeriodKind.WEEK:
            iso_year, week, _day = self.start.isocalendar()
            return _("%(year)s年第%(week)s周") % {"year": iso_year, "week": week}
        if self.kind == PeriodKind.MONTH:
            return _("%(year)s年%(month)s月") % {"year": year, "month": self.start.month}
        if self.kind == PeriodKind.QUARTER:
            return _("%(year)s年第%(quarter)s季度") % {"year": year, "quarter": (self.start.month - 1) // 3 + 1}
        return _("%(year)s年") % {"year": year}

    def shifted(self, steps):
        """Return the period ``steps`` periods later (earlier when negative)."""
        if self.kind == PeriodKind.WEEK:
            return period_containing(self.kind, self.start + datetime.timedelta(days=7 * steps))
        months = {PeriodKind.MONTH: 1, PeriodKind.QUARTER: 3, PeriodKind.YEAR: 12}[self.kind] * steps
        index = self.start.year * 12 + self.start.month - 1 + months
        return period_containing(self.kind, self.start.replace(year=index // 12, month=index % 12 + 1, day=1))


def _zone():
    return timezone.get_default_timezone()


def _local_midnight(day):
    return datetime.datetime(day.year, day.month, day.day, tzinfo=_zone())


def period_containing(kind, moment):
    """Return the Period of ``kind`` that contains the aware or naive-local ``moment`` (or date)."""
    if isinstance(moment, datetime.datetime):
        day = (timezone.localtime(moment, _zone()) if timezone.is_aware(moment) else moment).date()
    else:
        day = moment
    if kind == PeriodKind.WEEK:
        start = day - datetime.timedelta(days=day.weekday())
        end = start + datetime.timedelta(days=7)
        iso_year, week, _day = start.isocalendar()
        key = f"{iso_year}-W{week:02d}"
    elif kind == PeriodKind.MONTH:
        start = day.replace(day=1)
        end = (start + datetime.timedelta(days=32)).replace(day=1)
        key = f"{start.year}-{start.month:02d}"
    elif kind == PeriodKind.QUARTER:
        start = day.replace(month=(day.month - 1) // 3 * 3 + 1, day=1)
        end = (start + datetime.timedelta(days=95)).replace(day=1)
        key = f"{start.year}-Q{(start.month - 1) // 3 + 1}"
    elif kind == PeriodKind.YEAR:
        start, end, key = day.replace(month=1, day=1), day.replace(year=day.year + 1, month=1, day=1), str(day.year)
    else:
        raise KpiError(_("周期类型 “%(kind)s” 无效,可选 week、month、quarter、year。") % {"kind": kind})
    return Period(str(kind), key, _local_midnight(start), _local_midnight(end))


def parse_period(text):
    """Parse ``2026-W09``, ``2026-03``, ``2026-Q1`` or ``2026`` into a Period; raise KpiError otherwise."""
    text = (text or "").strip().upper()
    for kind, pattern in _PERIOD_PATTERNS:
        match = pattern.match(text)
        if not match:
            continue
        year = int(match.group(1))
        try:
            if kind == PeriodKind.WEEK:
                return period_containing(kind, datetime.date.fromisocalendar(year, int(match.group(2)), 1))
            if kind == PeriodKind.QUARTER:
                return period_containing(kind, datetime.date(year, (int(match.group(2)) - 1) * 3 + 1, 1))
            if kind == PeriodKind.MONTH:
                return period_containing(kind, datetime.date(year, int(match.group(2)), 1))
            return period_containing(kind, datetime.date(year, 1, 1))
        except ValueError:
            break
    raise KpiError(_("周期 “%(value)s” 无效,请写成 2026-W09(周)、2026-03(月)、2026-Q1(季度)或 2026(年)。")
                   % {"value": text})


# --- KPI definitions ----------------------------------------------------------

def _days_to_close():
    return Func(F("closed_at") - F("received_at"), template="EXTRACT(EPOCH FROM %(expressions)s) / 86400.0",
                output_field=FloatField())


class Median(Aggregate):
    """PostgreSQL's ``percentile_cont(0.5)``, an ordered-set aggregate Django has no class for."""

    function = "percentile_cont"
    name = "Median"
    template = "%(function)s(0.5) WITHIN GROUP (ORDER BY %(expressions)s)"
    output_field = FloatField()


# Correlated EXISTS probes the (ticket, result) and (ticket, outcome) indexes
# once per ticket of the period, where "id IN (subquery)" would hash the
# whole re-inspection or callback table in every query.

def _inspected():
    done = (ReinspectionResult.PASSED, ReinspectionResult.FAILED)
    return Q(Exists(Reinspection.objects.filter(ticket=OuterRef("pk"), result__in=done)))


def _failed():
    return Q(Exists(Reinspection.objects.filter(ticket=OuterRef("pk"), result=ReinspectionResult.FAILED)))


def _called():
    reached = Callback.objects.filter(ticket=OuterRef("pk")).exclude(outcome=CallbackOutcome.UNREACHED)
    return Q(Exists(reached))


def _called_positive():
    return Q(Exists(Callback.objects.filter(ticket=OuterRef("pk"), outcome=CallbackOutcome.POSITIVE)))


def _on_time_base():
    due = Q(handling__due_at__isnull=False)
    return due & (Q(handling__met_at__isnull=False) | Q(handling__due_at__lte=timezone.now()))


@dataclass(frozen=True)
class Kpi:
    """One KPI: how it is computed, shown and judged.

    ``kind`` is ``rate`` (hits over base), ``mean_days``, ``median_days`` or
    ``mean_score``; ``better`` is ``lower`` or ``higher``.
    """

    code: str
    label: str
    dimension: str
    kind: str
    basis: str
    better: str
    definition: str
    base: Callable[[], Q]
    hit: Callable[[], Q] = lambda: Q()

    def counts_hits(self):
        return self.kind == "rate"


EFFICIENCY, QUALITY, SATISFACTION, PROACTIVE = "efficiency", "quality", "satisfaction", "proactive"
DIMENSIONS = {
    EFFICIENCY: gettext_lazy("效率"), QUALITY: gettext_lazy("质量"),
    SATISFACTION: gettext_lazy("满意度"), PROACTIVE: gettext_lazy("主动发现"),
}

KPIS = [
    Kpi("mean_close_days", gettext_lazy("平均办结时长"), EFFICIENCY, "mean_days", "closed", "lower",
        gettext_lazy("本期办结工单的(办结时间 − 受理时间)的平均值,单位:天。"), lambda: Q()),
    Kpi("median_close_days", gettext_lazy("办结时长中位数"), EFFICIENCY, "median_days", "closed", "lower",
        gettext_lazy("本期办结工单的(办结时间 − 受理时间)的中位数,单位:天;不受个别超长工单影响。"), lambda: Q()),
    Kpi("on_time_rate", gettext_lazy("按时响应率"), EFFICIENCY, "rate", "received", "higher",
        gettext_lazy("本期受理且已到办理时限或已完成时限事项(到场、答复或整改)的工单中,在时限内完成的比例。"),
        _on_time_base, lambda: Q(handling__met_at__lte=F("handling__due_at"))),
    Kpi("repeat_rate", gettext_lazy("重复投诉率"), QUALITY, "rate", "received", "lower",
        gettext_lazy("本期受理的工单(不含重复登记)中,同一地点、同一类型在时间窗内再次投诉的比例。"),
        lambda: Q(duplicate_of__isnull=True), lambda: Q(repeat_of__isnull=False)),
    Kpi("reinspection_pass_rate", gettext_lazy("复查通过率(整改真实率)"), QUALITY, "rate", "drawn", "higher",
        gettext_lazy("本期随机抽取并已完成现场复查的工单中,复查确认整改属实的比例;复查不实的工单被重开。"),
        _inspected, lambda: ~_failed()),
    Kpi("average_rating", gettext_lazy("群众评价平均分"), SATISFACTION, "mean_score", "closed", "higher",
        gettext_lazy("本期办结且群众已评价的工单的评分(1–5分)平均值。"), lambda: Q(rating__isnull=False)),
    Kpi("satisfaction_rate", gettext_lazy("群众满意率"), SATISFACTION, "rate", "closed", "higher",
        gettext_lazy("本期办结且群众已评价的工单中,评分为4分或5分的比例。"),
        lambda: Q(rating__isnull=False), lambda: Q(rating__score__gte=SATISFIED_SCORE)),
    Kpi("positive_callback_rate", gettext_lazy("回访满意率"), SATISFACTION, "rate", "closed", "higher",
        gettext_lazy("本期办结且电话回访已接通的工单中,回访结果为“满意”的比例。"),
        _called, _called_positive),
    Kpi("proactive_rate", gettext_lazy("隐患主动发现率"), PROACTIVE, "rate", "received", "higher",
        gettext_lazy("本期受理的工单(不含重复登记)中,来自物联网告警和网格巡查的比例。"),
        lambda: Q(duplicate_of__isnull=True), lambda: Q(source__in=PROACTIVE_SOURCES)),
]
KPI_BY_CODE = {kpi.code: kpi for kpi in KPIS}

# The field study's baselines and targets, used until an administrator stores others.
STUDY_TARGETS = {
    "mean_close_days": (7.2, 3.5),
    "repeat_rate": (0.31, 0.15),
    "satisfaction_rate": (0.68, 0.85),
    "proactive_rate": (0.65, 0.90),
}


def get_kpi(code):
    try:
        return KPI_BY_CODE[code]
    except KeyError:
        raise KpiError(_("指标 “%(code)s” 不存在,可选:%(allowed)s。")
                       % {"code": code, "allowed": ", ".join(KPI_BY_CODE)}) from None


# --- scopes and aggregation ---------------------------------------------------

def _unit_condition(unit_id):
    """Tickets placed in the unit or in any unit below it (three grid levels at most)."""
    return (Q(placement__unit=unit_id) | Q(placement__unit__parent=unit_id)
            | Q(placement__unit__parent__parent=unit_id))


BASES = ("closed", "received", "drawn")


def scoped_tickets(basis, period, department=None, unit=None):
    """Return the tickets of ``period`` by the ``basis`` time column, limited to a department or grid unit."""
    if basis == "drawn":
        # NOTE: a draw counts in the period where it starts, so a quarterly
        # draw shows in its first month and not in the other two.
        drawn = Reinspection.objects.filter(draw__period_start__gte=period.start, draw__period_start__lt=period.end)
        tickets = Ticket.objects.filter(pk__in=drawn.values("ticket_id"))
    else:
        field = "closed_at" if basis == "closed" else "received_at"
        tickets = Ticket.objects.filter(**{f"{field}__gte": period.start, f"{field}__lt": period.end})
    if department is not None:
        tickets = tickets.filter(handling__lead=department)
    if unit is not None:
        tickets = tickets.filter(_unit_condition(unit))
    return tickets


def _aggregates(basis, codes=None, median=True, distinct=False):
    """Return the aggregate expressions of the KPIs on ``basis`` (all, or those in ``codes``).

    Each KPI yields ``<code>__base`` and ``<code>__hits`` (rates) or
    ``<code>__sum`` (means), which add up across groups, so finer groups can
    be rolled up in Python. A median cannot be rolled up: it is computed
    only when ``median`` is true, as ``<code>__value``. ``distinct`` counts
    each ticket once, for queries whose joins repeat tickets. A sum would
    still repeat them, so KPIs with a sum raise ValueError.
    """
    expressions = {}
    for kpi in KPIS:
        if kpi.basis != basis or (codes is not None and kpi.code not in codes):
            continue
        if kpi.kind == "median_days" and not median:
            continue
        if distinct and kpi.kind != "rate":
            raise ValueError(f"distinct counts do not apply to the sums of KPI {kpi.code!r} ({kpi.kind})")
        base = kpi.base()
        expressions[f"{kpi.code}__base"] = (Count("pk", filter=base, distinct=distinct) if base
                                            else Count("pk", distinct=distinct))
        if kpi.kind == "rate":
            expressions[f"{kpi.code}__hits"] = Count("pk", filter=base & kpi.hit(), distinct=distinct)
        elif kpi.kind == "mean_days":
            expressions[f"{kpi.code}__sum"] = Sum(_days_to_close())
        elif kpi.kind == "median_days":
            expressions[f"{kpi.code}__value"] = Median(_days_to_close())
        elif kpi.kind == "mean_score":
            expressions[f"{kpi.code}__sum"] = Sum("rating__score", filter=base)
    return expressions


def _values_from(row):
    """Turn one aggregate row into {code: {"value", "base", "hits"}} for the KPIs it has."""
    result = {}
    for kpi in KPIS:
        if f"{kpi.code}__base" not in row:
            continue
        base = row[f"{kpi.code}__base"] or 0
        hits = None
        if kpi.kind == "rate":
            hits = row[f"{kpi.code}__hits"] or 0
            value = hits / base if base else None
        elif kpi.kind == "median_days":
            value = row[f"{kpi.code}__value"] if base else None
        else:
            value = float(row[f"{kpi.code}__sum"]) / base if base else None
        result[kpi.code] = {"value": value, "base": base, "hits": hits}
    return result


def _add_into(totals, row):
    for name, number in row.items():
        totals[name] = totals.get(name, 0) + (number or 0)


def _empty_values():
    empty = {}
    for basis in BASES:
        empty.update(_values_from({name: None for name in _aggregates(basis)}))
    return empty


def _grid_key():
    """Return the community-level unit of a ticket's placement, or the unit itself at the county or community level."""
    return Case(When(placement__unit__level__gt=RANK_GRID_LEVEL, then=F("placement__unit__parent")),
                default=F("placement__unit"), output_field=IntegerField())


@contextmanager
def without_jit():
    """Run the enclosed queries in a transaction tuned for a period's share of the tickets.

    Two planner settings apply to this transaction only. JIT is off because
    PostgreSQL 15 judged the KPI queries costly enough to compile and spent
    about a second doing so for each. ``random_page_cost`` is 1.1 (SSD or
    cached data) so that a month's tickets reach their handling and placement
    rows by primary key instead of hashing the whole tables: EXPLAIN ANALYZE
    on 1,000,000 tickets went from 2.3 s to 0.17 s for one grouped query.
    """
    with transaction.atomic():
        with connection.cursor() as cursor:
            cursor.execute("SET LOCAL jit = off")
            cursor.execute("SET LOCAL random_page_cost = 1.1")
        yield


def compute(period, department=None, unit=None):
    """Return {code: {"value", "base", "hits"}} of every KPI for one period and scope."""
    with without_jit():
        return _compute(period, department, unit)


def _compute(period, department, unit):
    result = {}
    for basis in BASES:
        row = scoped_tickets(basis, period, department, unit).aggregate(**_aggregates(basis))
        result.update(_values_from(row))
    return result


def compute_grouped(period, group_by):
    """Return {key: {code: {"value", "base", "hits"}}} per department id or community-level grid unit id.

    Tickets without a lead department or a grid placement are grouped under None.
    """
    if group_by == "department":
        key_expression = F("handling__lead")
    elif group_by == "grid":
        key_expression = _grid_key()
    else:
        raise KpiError(_("分组方式 “%(value)s” 无效,可选 department、grid。") % {"value": group_by})
    grouped = {}
    with without_jit():
        for basis in BASES:
            rows = (scoped_tickets(basis, period).annotate(group_key=key_expression).values("group_key")
                    .annotate(**_aggregates(basis)).order_by())
            for row in rows:
                grouped.setdefault(row["group_key"], {}).update(_values_from(row))
    empty = _empty_values()
    return {key: {**empty, **row} for key, row in grouped.items()}


def compute_breakdown(period):
    """Return (overall, by department id, by community-level grid unit id) for ``period`` in four queries.

    One query per basis groups by department and grid unit together, and
    the three views are sums of its rows; a fourth query takes the overall
    median time to close. Groups have no median (it does not add up).
    """
    overall, departments, units = {}, {}, {}
    with without_jit():
        for basis in BASES:
            rows = (scoped_tickets(basis, period)
                    .annotate(department_key=F("handling__lead"), unit_key=_grid_key())
                    .values("department_key", "unit_key").annotate(**_aggregates(basis, median=False)).order_by())
            for row in rows:
                department, unit = row.pop("department_key"), row.pop("unit_key")
                _add_into(overall, row)
                _add_into(departments.setdefault(department, {}), row)
                _add_into(units.setdefault(unit, {}), row)
        median = scoped_tickets("closed", period).aggregate(**_aggregates("closed", ("median_close_days",)))
    empty = _empty_values()
    overall_values = {**empty, **_values_from(overall), **_values_from(median)}
    return (overall_values, {key: {**empty, **_values_from(row)} for key, row in departments.items()},
            {key: {**empty, **_values_from(row)} for key, row in units.items()})


def _trend_bucket(field, kind, span):
    """Return an expression for the local start of the ``kind`` period containing ``field``, NULL outside ``span``."""
    in_span = Q(**{f"{field}__gte": span.start, f"{field}__lt": span.end})
    moment = Case(When(in_span, then=F(field)), output_field=DateTimeField())
    return Trunc(moment, kind, output_field=DateTimeField(), tzinfo=_zone())


def _bucket_day(moment):
    return timezone.localtime(moment, _zone()).date()


def _ticket_trend(span, codes):
    """Return {period start date: KPI values} of the closed and received bases in one grouped query.

    Each ticket is grouped by the period it was closed in and the period it
    was received in (NULL outside ``span``), so one scan of the tickets and
    one join of their handling and rating rows serve both bases. A period's
    closed figures are the sums over the rows with that closed period, and
    likewise for received. Medians are left out because they do not add up.
    """
    closed = _aggregates("closed", codes, median=False)
    received = _aggregates("received", codes)
    conditions = []
    if closed:
        conditions.append(Q(closed_at__gte=span.start, closed_at__lt=span.end))
    if received:
        conditions.append(Q(received_at__gte=span.start, received_at__lt=span.end))
    if not conditions:
        return {}
    rows = (Ticket.objects.filter(functools.reduce(operator.or_, conditions))
            .annotate(closed_bucket=_trend_bucket("closed_at", span.kind, span),
                      received_bucket=_trend_bucket("received_at", span.kind, span))
            .values("closed_bucket", "received_bucket").annotate(**closed, **received).order_by())
    totals = {"closed": {}, "received": {}}
    for row in rows:
        for basis, names in (("closed", closed), ("received", received)):
            bucket = row[f"{basis}_bucket"]
            if names and bucket is not None:
                _add_into(totals[basis].setdefault(_bucket_day(bucket), {}), {name: row[name] for name in names})
    by_start = {}
    for per_day in totals.values():
        for day, row in per_day.items():
            by_start.setdefault(day, {}).update(_values_from(row))
    return by_start


def _median_trend(span, codes):
    """Return {period start date: median KPI values} in one query grouped by the closing period."""
    medians = tuple(kpi.code for kpi in KPIS if kpi.kind == "median_days" and (codes is None or kpi.code in codes))
    if not medians:
        return {}
    rows = (scoped_tickets("closed", span).annotate(bucket=Trunc("closed_at", span.kind, tzinfo=_zone()))
            .values("bucket").annotate(**_aggregates("closed", medians)).order_by())
    return {_bucket_day(row.pop("bucket")): _values_from(row) for row in rows}


def _drawn_trend(span, codes):
    """Return {period start date: drawn-basis KPI values} in one query grouped by the draw's period start.

    A ticket drawn twice with starts in the same period (a month's and a
    quarter's draw) joins twice, so tickets are counted distinct, as
    ``scoped_tickets`` counts them once.
    """
    aggregates = _aggregates("drawn", codes, distinct=True)
    if not aggregates:
        return {}
    start_field = "reinspections__draw__period_start"
    rows = (Ticket.objects.filter(**{f"{start_field}__gte": span.start, f"{start_field}__lt": span.end})
            .annotate(bucket=Trunc(start_field, span.kind, tzinfo=_zone()))
            .values("bucket").annotate(**aggregates).order_by())
    return {_bucket_day(row.pop("bucket")): _values_from(row) for row in rows}


def compute_trend(period, count=12, codes=None):
    """Return [(Period, {code: {...}})] for the ``count`` periods ending with ``period``, oldest first.

    ``codes`` limits the KPIs computed (all by default); the others are None.
    At most three grouped queries cover all periods, whatever ``count`` is:
    closed and received bases together, medians, and the drawn basis. Each
    groups by ``date_trunc`` of its time column in the configured time zone,
    with the same conditions as ``compute``, so a trend point equals
    ``compute`` for its period.
    """
    first = period.shifted(-(count - 1))
    span = Period(period.kind, f"{first.key}..{period.key}", first.start, period.end)
    by_start = {}
    with without_jit():
        for part in (_ticket_trend(span, codes), _median_trend(span, codes), _drawn_trend(span, codes)):
            for day, values in part.items():
                by_start.setdefault(day, {}).update(values)
    empty = _empty_values()
    series = []
    for step in range(count):
        current = first.shifted(step)
        series.append((current, {**empty, **by_start.get(current.start.date(), {})}))
    return series


def cached_trend(period, count, codes, current):
    """Return compute_trend's series with ``current`` as the last period and the earlier ones from the cache.

    Earlier periods are cached for ``FIREGRID_KPI_TREND_CACHE_S`` seconds
    (0 turns the cache off), so a ticket reopened or rated in a past period
    shows in its trend point after at most that delay.
    """
    timeout = settings.FIREGRID_KPI_TREND_CACHE_S
    previous = period.shifted(-1)

    def past():
        return compute_trend(previous, count - 1, codes) if count > 1 else []

    if timeout > 0:
        key = f"firegrid:kpi-trend:{previous.kind}:{previous.key}:{count - 1}:{','.join(sorted(codes or ()))}"
        series = cache.get_or_set(key, past, timeout)
    else:
        series = past()
    return series + [(period, current)]


def kpi_tickets(code, period, department=None, unit=None):
    """Return the base tickets of a KPI for a scope, each annotated with ``kpi_hit`` (numerator or not)."""
    kpi = get_kpi(code)
    tickets = scoped_tickets(kpi.basis, period, department, unit).filter(kpi.base())
    if kpi.kind == "rate":
        return tickets.annotate(kpi_hit=Case(When(kpi.hit(), then=True), default=False))
    return tickets.annotate(kpi_days=_days_to_close())


# --- targets ------------------------------------------------------------------

def targets():
    """Return {code: (baseline, target)}: the stored targets over the study's defaults."""
    merged = dict(STUDY_TARGETS)
    for row in KpiTarget.objects.all():
        if row.kpi in KPI_BY_CODE:
            merged[row.kpi] = (row.baseline, row.target)
    return merged


def progress(code, value, baseline, target):
    """Return (share of the way from baseline to target, clipped to 0..1, and whether the target is met)."""
    if value is None:
        return None, False
    better_lower = KPI_BY_CODE[code].better == "lower"
    met = value <= target if better_lower else value >= target
    if baseline == target:
        return (1.0 if met else 0.0), met
    share = (baseline - value) / (baseline - target)
    return max(0.0, min(1.0, share)), met


def format_value(code, value):
    """Format a KPI value for tables and reports: 31.0%, 7.20 天, 4.25 分, or a dash."""
    if value is None:
        return "—"
    kind = KPI_BY_CODE[code].kind
    if kind == "rate":
        return f"{value * 100:.1f}%"
    if kind in ("mean_days", "median_days"):
        return _("%(value)s 天") % {"value": f"{value:.2f}"}
    return _("%(value)s 分") % {"value": f"{value:.2f}"}

