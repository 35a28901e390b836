"""KPIs against figures worked out by hand from tests/test_kpi_support.py's world."""
import datetime
import re

import pytest
from django.db import connection
from django.test.utils import CaptureQueriesContext

from gridmap import kpi
from gridmap.models import Department
from gridmap.supervision import KpiTarget
from tests.test_kpi_support import build_kpi_world

MARCH = "2026-03"


def values(result):
    return {code: row["value"] for code, row in result.items()}


def test_parse_period_kinds_and_bounds():
    march = kpi.parse_period("2026-03")
    assert (march.kind, march.key, march.start.isoformat(), march.end.isoformat()) == (
        "month", "2026-03", "2026-03-01T00:00:00+08:00", "2026-04-01T00:00:00+08:00")
    week = kpi.parse_period("2026-w01")
    assert (week.key, week.start.date(), week.end.date()) == ("2026-W01", datetime.date(2025, 12, 29),
                                                               datetime.date(2026, 1, 5))
    quarter = kpi.parse_period("2026-Q4")
    assert (quarter.start.date(), quarter.end.date(), quarter.shifted(1).key) == (
        datetime.date(2026, 10, 1), datetime.date(2027, 1, 1), "2027-Q1")
    assert kpi.parse_period("2026").end.date() == datetime.date(2027, 1, 1)
    assert march.shifted(-3).key == "2025-12"
    assert str(march.label) == "2026年3月"


@pytest.mark.parametrize("text", ["2026-13", "2026-Q5", "2026-W60", "March", "", "2026/03"])
def test_parse_period_rejects_bad_input(text):
    """The error message lists the accepted period forms."""
    with pytest.raises(kpi.KpiError, match=re.escape("请写成 2026-W09(周)、2026-03(月)、2026-Q1(季度)或 2026(年)。")):
        kpi.parse_period(text)


@pytest.mark.django_db
def test_overall_kpis_of_the_month():
    build_kpi_world()
    result = kpi.compute(kpi.parse_period(MARCH))
    got = values(result)
    assert got["mean_close_days"] == pytest.approx(30 / 7, abs=1e-9)
    assert got["median_close_days"] == pytest.approx(4.0)
    assert (result["on_time_rate"]["hits"], result["on_time_rate"]["base"]) == (5, 9)
    assert (result["repeat_rate"]["hits"], result["repeat_rate"]["base"]) == (2, 9)
    assert (result["proactive_rate"]["hits"], result["proactive_rate"]["base"]) == (3, 9)
    assert got["average_rating"] == pytest.approx(3.5)
    assert (result["satisfaction_rate"]["hits"], result["satisfaction_rate"]["base"]) == (2, 4)
    assert (result["positive_callback_rate"]["hits"], result["positive_callback_rate"]["base"]) == (2, 4)
    # No draw yet: no base, no value.
    assert result["reinspection_pass_rate"] == {"value": None, "base": 0, "hits": 0}


@pytest.mark.django_db
def test_kpis_per_scope_match_filters():
    """KPIs per department and grid unit agree with the filtered scopes."""
    units, _tickets = build_kpi_world()
    period = kpi.parse_period(MARCH)
    fire, housing = Department.objects.get(code="fire"), Department.objects.get(code="housing")
    by_department = kpi.compute_grouped(period, "department")
    assert set(by_department) == {fire.pk, housing.pk}
    assert by_department[fire.pk]["mean_close_days"]["value"] == pytest.approx(4.4)
    assert (by_department[fire.pk]["on_time_rate"]["hits"], by_department[fire.pk]["on_time_rate"]["base"]) == (3, 6)
    assert (by_department[housing.pk]["on_time_rate"]["hits"],
            by_department[housing.pk]["on_time_rate"]["base"]) == (2, 3)
    assert by_department[housing.pk]["median_close_days"]["value"] == pytest.approx(4.0)
    # Building A-1 rolls up to community A.
    by_grid = kpi.compute_grouped(period, "grid")
    assert set(by_grid) == {units["A"].pk, units["B"].pk}
    assert values(by_grid[units["A"].pk]) == values(by_department[fire.pk])
    # The grouped figures equal the one-scope figures.
    assert values(kpi.compute(period, unit=units["A"].pk)) == values(by_grid[units["A"].pk])
    assert values(kpi.compute(period, department=housing.pk)) == values(by_department[housing.pk])
    assert kpi.compute(period, unit=units["A-1"].pk)["mean_close_days"]["value"] == pytest.approx(2.5)


@pytest.mark.django_db
def test_breakdown_queries_and_figures():
    """The breakdown runs in four queries and matches the scoped figures."""
    units, _tickets = build_kpi_world()
    period = kpi.parse_period(MARCH)
    with CaptureQueriesContext(connection) as queries:
        overall, by_department, by_grid = kpi.compute_breakdown(period)
    statements = [query["sql"] for query in queries if not query["sql"].startswith(("SAVEPOINT", "RELEASE", "SET"))]
    assert len(statements) == 4
    assert values(overall) == values(kpi.compute(period))
    housing = Department.objects.get(code="housing").pk
    scoped = values(kpi.compute(period, department=housing))
    # Groups carry no median, because medians do not add up.
    assert values(by_department[housing]) == {**scoped, "median_close_days": None}
    assert values(by_grid[units["A"].pk]) == {**values(kpi.compute(period, unit=units["A"].pk)),
                                              "median_close_days": None}


@pytest.mark.django_db
def test_trend_empty_periods_as_none():
    """The trend has every period, with empty ones as None."""
    build_kpi_world()
    series = kpi.compute_trend(kpi.parse_period("2026-04"), count=3)
    assert [period.key for period, _row in series] == ["2026-02", "2026-03", "2026-04"]
    assert series[0][1]["mean_close_days"]["value"] is None
    assert series[1][1]["mean_close_days"]["value"] == pytest.approx(30 / 7)
    assert series[1][1]["repeat_rate"]["hits"] == 2
    assert series[2][1]["proactive_rate"]["base"] == 0


@pytest.mark.django_db
def test_drill_down_marks_hits():
    """The drill-down lists the base tickets and marks the hits."""
    build_kpi_world()
    period = kpi.parse_period(MARCH)
    rows = kpi.kpi_tickets("proactive_rate", period).order_by("external_id")
    assert [(row.external_id, row.kpi_hit) for row in rows] == [
        ("H1", False), ("H2", True), ("H3", False), ("T1", False), ("T2", False), ("T3", True), ("T4", True),
        ("T5", False), ("T6", False)]
    days = {row.external_id: row.kpi_days for row in kpi.kpi_tickets("mean_close_days", period)}
    assert days["T3"] == pytest.approx(9.0)
    with pytest.raises(kpi.KpiError, match="指标 “nope” 不存在"):
        kpi.kpi_tickets("nope", period)


@pytest.mark.django_db
def test_targets_default_and_set():
    """KPI targets have default values and can be set."""
    assert kpi.targets()["mean_close_days"] == (7.2, 3.5)
    assert kpi.targets()["repeat_rate"] == (0.31, 0.15)
    KpiTarget.objects.create(kpi="repeat_rate", baseline=0.3, target=0.1)
    assert kpi.targets()["repeat_rate"] == (0.3, 0.1)
    # 7.2 -> 3.5 days: 5.35 days is half way.
    assert kpi.progress("mean_close_days", 5.35, 7.2, 3.5) == (pytest.approx(0.5), False)
    assert kpi.progress("proactive_rate", 0.95, 0.65, 0.90) == (1.0, True)
    assert kpi.progress("proactive_rate", 0.5, 0.65, 0.90) == (0.0, False)
    assert kpi.progress("repeat_rate", None, 0.31, 0.15) == (None, False)
    assert kpi.format_value("repeat_rate", 0.3125) == "31.2%"
    assert kpi.format_value("mean_close_days", 30 / 7) == "4.29 天"
    assert kpi.format_value("average_rating", None) == "—"


def test_grouping_must_be_department_or_grid():
    with pytest.raises(kpi.KpiError, match="分组方式 “street” 无效"):
        kpi.compute_grouped(kpi.parse_period(MARCH), "street")
