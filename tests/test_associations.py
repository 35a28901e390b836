"""Category × zone × time associations: expected counts, lift, FDR, sentences."""
import datetime
from io import StringIO

import numpy as np
import pandas as pd
import pytest
from django.core.management import CommandError, call_command
from scipy import stats

from spatial.analysis import associations
from spatial.analysis.periods import AnalysisParameterError
from spatial.models import AssociationRun, Ticket

SHANGHAI = datetime.timezone(datetime.timedelta(hours=8))
# 2024-03-01 was a Friday.
FRIDAY_18 = datetime.datetime(2024, 3, 1, 18, 30, tzinfo=SHANGHAI)
MONDAY_9 = datetime.datetime(2024, 3, 4, 9, 30, tzinfo=SHANGHAI)


def frame_of(rows):
    return pd.DataFrame(rows, columns=["category", "zone_type", "received_at"])


def planted_frame():
    """30 blocked lanes in commercial zones on Friday evening among evenly spread background tickets."""
    rows = [("fire_lane", "core_commercial", FRIDAY_18)] * 30
    for week in range(10):
        for category in ("fire_lane", "ebike_charging", "facility_fault"):
            for zone in ("core_commercial", "old_residential"):
                rows.append((category, zone, MONDAY_9 + datetime.timedelta(weeks=week)))
                rows.append((category, zone, FRIDAY_18 + datetime.timedelta(weeks=week)))
    return frame_of(rows)


def test_slots_and_labels():
    times = pd.DatetimeIndex([FRIDAY_18, MONDAY_9]).tz_convert("Asia/Shanghai")
    assert associations.slot_of(times, "hour_of_week", 2).tolist() == [4 * 12 + 9, 4]
    assert associations.slot_of(times, "hour_of_day", 1).tolist() == [18, 9]
    assert associations.slot_of(times, "month", 2).tolist() == [3, 3]
    assert associations.slot_label("hour_of_week", 57, 2) == "周五 18:00–20:00"
    assert associations.slot_label("hour_of_day", 9, 1) == "每天 09:00–10:00"
    assert associations.slot_label("month", 7, 2) == "7月"


def test_table_expected_lift_and_p():
    table = associations.association_table(planted_frame(), "hour_of_week", 2)
    row = table[(table["zone_type"] == "core_commercial") & (table["slot"] == 57)
                & (table["category"] == "fire_lane")].iloc[0]
    # Friday 18-20 in commercial zones: 30 planted and 30 background tickets,
    # 10 of the background ones blocked lanes.
    assert row["observed"] == 40
    # Blocked lanes overall: 30 planted and 40 background among 150 tickets.
    share = (30 + 40) / 150
    assert row["expected"] == pytest.approx(60 * share)
    assert row["lift"] == pytest.approx(40 / (60 * share))
    upper = stats.binom.sf(39, 60, share)
    lower = stats.binom.cdf(40, 60, share)
    assert row["p"] == pytest.approx(min(1, 2 * min(upper, lower)))
    assert (table["q"] >= table["p"]).all()


def test_strongest_finding_sentence():
    table = associations.association_table(planted_frame(), "hour_of_week", 2)
    findings = associations.strongest_findings(table, "hour_of_week", 2, alpha=0.05, min_count=5)
    assert len(findings) == 1
    top = findings[0]
    assert (top["category"], top["zone_type"], top["slot_label"]) == ("fire_lane", "core_commercial", "周五 18:00–20:00")
    assert top["sentence"].startswith("核心商圈 周五 18:00–20:00:消防通道/疏散通道堵塞工单 40 件,按总体比例预期 28.0 件")


def test_no_findings_without_signal():
    rows = [(category, "other", MONDAY_9 + datetime.timedelta(hours=hour))
            for hour in range(0, 24 * 14, 3) for category in ("fire_lane", "electrical")]
    table = associations.association_table(frame_of(rows), "hour_of_week", 2)
    assert associations.strongest_findings(table, "hour_of_week", 2) == []
    assert np.allclose(table["lift"], 1.0)


def test_empty_table():
    assert associations.association_table(frame_of([])).empty


def test_parameters_rejected():
    with pytest.raises(AnalysisParameterError, match="时段长度 “5” 无效"):
        associations.run_associations(bin_hours=5)
    with pytest.raises(AnalysisParameterError, match="时间划分"):
        associations.run_associations(slot="season")
    with pytest.raises(AnalysisParameterError, match="显著性水平"):
        associations.run_associations(alpha=1.5)


@pytest.mark.django_db
def test_compute_associations_command():
    for number, row in enumerate(planted_frame().itertuples()):
        Ticket.objects.create(source_system="test", external_id=str(number), category=row.category,
                              zone_type=row.zone_type, received_at=row.received_at)
    Ticket.objects.create(source_system="test", external_id="unzoned", category="fire_lane", received_at=FRIDAY_18)
    out = StringIO()
    call_command("compute_associations", stdout=out)
    run = AssociationRun.objects.get()
    assert run.ticket_count == 150
    assert len(run.findings) == 1
    assert "显著发现 1 条" in out.getvalue()
    assert "核心商圈 周五 18:00–20:00" in out.getvalue()
    with pytest.raises(CommandError, match="日期"):
        call_command("compute_associations", "--from", "2024-13-01", stdout=StringIO())
