"""The grouped KPI trend against ``kpi.compute`` run period by period on a varied world."""
import datetime

import pytest
from django.db import connection
from django.test.utils import CaptureQueriesContext

from gridmap import kpi, reports
from gridmap.supervision import Callback, CitizenRating, Reinspection, ReinspectionDraw
from tests.test_gridmap_support import at, build_grid, make_user
from tests.test_kpi_support import DAY, ticket

MONTHS = ("2026-01", "2026-02", "2026-03", "2026-04")
LEADS = ("fire", "housing", "urban")
HOUR = datetime.timedelta(hours=1)


def draw_of(key, inspector, drawn, results):
    """Store a draw of period ``key`` with re-inspections of ``drawn`` tickets and their results."""
    period = kpi.parse_period(key)
    record = ReinspectionDraw.objects.create(
        period=key, period_kind=period.kind, period_start=period.start, period_end=period.end, seed=1, rate=0.1,
        fake_weight=2.0, algorithm="test", population=len(drawn), sample=len(drawn))
    for position, (item, result) in enumerate(zip(drawn, results), start=1):
        Reinspection.objects.create(draw=record, ticket=item, position=position, inspector=inspector,
                                    result=result)


def build_varied_world():
    """Build tickets over January to April 2026 in three departments and three grid units.

    Each month has closed and open tickets, on-time and late ones, hotline,
    IoT and inspection sources and repeats. February has a duplicate, and
    closed tickets carry ratings of 1 to 5 and callbacks of every outcome.
    Some tickets close in a later month than they were received, and two
    sit a few minutes either side of local midnight at a month's end, where
    a UTC grouping would misplace them. January and March have
    re-inspection draws, and the first quarter's draw starts on the same
    day as January's and repeats one ticket. Returns (units, tickets).
    """
    units = build_grid()
    staff = make_user("trend_staff", "admin")
    inspector = make_user("trend_inspector", "grid_head")
    sources = ("hotline", "iot", "inspection", "hotline", "other")
    unit_codes = ("A", "A-1", "B")
    tickets = []
    for month_index, key in enumerate(MONTHS):
        period = kpi.parse_period(key)
        for n in range(7 + month_index):
            number = f"M{month_index}-{n}"
            received = period.start + (3 + 3 * n) * DAY + (n % 5) * HOUR
            closed_days = None if n % 6 == 5 else 1 + (n * 7 + month_index) % 12
            due_days = 2 + n % 4
            met_days = closed_days if closed_days is not None and n % 3 else None
            repeat_of = tickets[-2] if n % 4 == 3 and len(tickets) > 2 else None
            tickets.append(ticket(
                number, received, closed_days=closed_days, source=sources[(n + month_index) % len(sources)],
                lead=LEADS[(n + month_index) % len(LEADS)], unit=units[unit_codes[n % len(unit_codes)]],
                due_days=due_days, met_days=met_days, repeat_of=repeat_of, fake=n % 5 == 1))
    # Either side of local midnight between March and April: 23:50 and 00:10 in Asia/Shanghai.
    tickets.append(ticket("EDGE-MARCH", at(2026, 3, 31, 23, 50), closed_days=0.005, source="iot", unit=units["A"],
                          due_days=1, met_days=0.005))
    tickets.append(ticket("EDGE-APRIL", at(2026, 4, 1, 0, 10), closed_days=0.01, lead="housing", unit=units["B"],
                          due_days=1, met_days=0.01))
    tickets.append(ticket("DUP", at(2026, 2, 10, 9, 0), source="iot", duplicate_of=tickets[3], unit=units["A"]))

    closed = [item for item in tickets if item.closed_at is not None]
    for index, item in enumerate(closed):
        if index % 3 != 2:
            CitizenRating.objects.create(ticket=item, score=1 + index % 5, comment="")
        if index % 2 == 0:
            outcome = ("positive", "neutral", "negative", "unreached")[index // 2 % 4]
            Callback.objects.create(ticket=item, staff=staff, called_at=item.closed_at + DAY, outcome=outcome)

    january = [item for item in closed if item.external_id.startswith("M0-")]
    march = [item for item in closed if item.external_id.startswith("M2-")]
    draw_of("2026-01", inspector, january[:4], ("passed", "failed", "passed", "pending"))
    draw_of("2026-Q1", inspector, [january[0], march[0]], ("passed", "failed"))
    draw_of("2026-03", inspector, march[1:4], ("passed", "passed", "failed"))
    return units, tickets


def assert_same_figures(grouped, expected, where):
    assert set(grouped) == set(expected), where
    for code, figure in expected.items():
        got = grouped[code]
        assert got["base"] == figure["base"], (where, code)
        assert got["hits"] == figure["hits"], (where, code)
        if figure["value"] is None:
            assert got["value"] is None, (where, code)
        else:
            assert got["value"] == pytest.approx(figure["value"], rel=1e-12), (where, code)


@pytest.mark.django_db
def test_grouped_trend_equals_per_period_compute():
    build_varied_world()
    series = kpi.compute_trend(kpi.parse_period("2026-05"), count=6)

    assert [period.key for period, _figures in series] == ["2025-12", "2026-01", "2026-02", "2026-03", "2026-04",
                                                            "2026-05"]
    for period, figures in series:
        assert_same_figures(figures, kpi.compute(period), period.key)
    by_key = {period.key: figures for period, figures in series}
    # Draws, ratings and repeats reach the trend, so the comparison above covers them.
    # January: three inspected from its own draw, plus the quarter's March ticket; the repeated one counts once.
    assert by_key["2026-01"]["reinspection_pass_rate"]["base"] == 4
    assert by_key["2026-03"]["reinspection_pass_rate"]["base"] == 3
    assert by_key["2026-03"]["average_rating"]["base"] > 0
    assert by_key["2026-04"]["repeat_rate"]["hits"] > 0
    assert by_key["2025-12"]["mean_close_days"]["value"] is None


@pytest.mark.django_db
def test_grouped_trend_by_week_and_quarter():
    build_varied_world()
    for last, count in (("2026-W15", 10), ("2026-Q2", 3)):
        for period, figures in kpi.compute_trend(kpi.parse_period(last), count=count):
            assert_same_figures(figures, kpi.compute(period), period.key)


@pytest.mark.django_db
def test_midnight_tickets_fall_in_local_month():
    build_varied_world()
    march, april = kpi.compute_trend(kpi.parse_period("2026-04"), count=2)
    march_ids = set(kpi.kpi_tickets("proactive_rate", march[0]).values_list("external_id", flat=True))
    april_ids = set(kpi.kpi_tickets("proactive_rate", april[0]).values_list("external_id", flat=True))
    assert "EDGE-MARCH" in march_ids
    assert "EDGE-APRIL" in april_ids
    assert march[1]["proactive_rate"]["base"] == len(march_ids)
    assert april[1]["proactive_rate"]["base"] == len(april_ids)


@pytest.mark.django_db
def test_trend_query_count_does_not_grow():
    build_varied_world()
    counts = []
    for count in (2, 12):
        with CaptureQueriesContext(connection) as queries:
            kpi.compute_trend(kpi.parse_period("2026-04"), count=count)
        counts.append(len([query for query in queries
                           if not query["sql"].startswith(("SAVEPOINT", "RELEASE", "SET"))]))
    assert counts == [3, 3]


@pytest.mark.django_db
def test_dashboard_trend_codes_match_compute():
    build_varied_world()
    last = kpi.parse_period("2026-04")
    figures = reports.collect(last)
    assert figures["trend"]["periods"][-4:] == list(MONTHS)
    for index, key in enumerate(figures["trend"]["periods"]):
        expected = kpi.compute(kpi.parse_period(key))
        for code in reports.TREND_KPIS:
            got = figures["trend"]["series"][code][index]
            if expected[code]["value"] is None:
                assert got is None, (key, code)
            else:
                assert got == pytest.approx(expected[code]["value"], rel=1e-12), (key, code)
