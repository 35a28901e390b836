"""Repeat complaints, duplicates within hours and suspected fake rectification."""
import datetime
from io import StringIO

import pytest
from django.contrib.gis.geos import Point
from django.core.management import CommandError, call_command

from spatial.analysis import repeats
from spatial.analysis.periods import AnalysisParameterError
from spatial.models import RepeatRun, Ticket

SHANGHAI = datetime.timezone(datetime.timedelta(hours=8))
BASE = datetime.datetime(2024, 1, 10, 9, 0, tzinfo=SHANGHAI)
# About 11 m north of the first point: 0.0001 degrees of latitude.
LNG, LAT = 109.70, 23.95


def make(number, days, category="fire_lane", address="", lng=None, lat=None, closed_days=None,
         department="消防救援大队", h3_coarse=None):
    return Ticket.objects.create(
        source_system="test", external_id=str(number), received_at=BASE + datetime.timedelta(days=days),
        closed_at=BASE + datetime.timedelta(days=closed_days) if closed_days is not None else None,
        category=category, address_normalized=address,
        location=Point(lng, lat, srid=4326) if lng is not None else None,
        department=department, h3_coarse=h3_coarse,
    )


def links():
    return {t.external_id: (t.repeat_of.external_id if t.repeat_of else None,
                            t.duplicate_of.external_id if t.duplicate_of else None,
                            t.suspected_fake_rectification)
            for t in Ticket.objects.select_related("repeat_of", "duplicate_of")}


@pytest.mark.django_db
def test_repeat_by_address_and_window():
    make(1, 0, address="象州镇新城路8号", closed_days=3)
    make(2, 10, address="象州镇新城路8号")            # 7 days after closing: fake rectification
    make(3, 100, address="象州镇新城路8号")           # repeat of 2, which was never closed
    make(4, 400, address="象州镇新城路8号")           # 300 days later: outside the window
    make(5, 12, address="象州镇新城路8号", category="facility_fault")  # other category

    run = repeats.link_repeats()

    assert links() == {
        "1": (None, None, False),
        "2": ("1", None, True),
        "3": ("2", None, False),
        "4": (None, None, False),
        "5": (None, None, False),
    }
    assert (run.repeat_count, run.duplicate_count, run.fake_rectification_count) == (2, 0, 1)


@pytest.mark.django_db
def test_repeat_by_distance():
    make(1, 0, lng=LNG, lat=LAT, closed_days=40)
    make(2, 60, lng=LNG, lat=LAT + 0.0001)   # 11 m away, 20 days after closing
    make(3, 90, lng=LNG, lat=LAT + 0.001)    # 111 m from 1, 100 m from 2: too far
    repeats.link_repeats(distance_m=30)
    assert links() == {"1": (None, None, False), "2": ("1", None, True), "3": (None, None, False)}

    repeats.link_repeats(distance_m=0)
    assert links()["2"] == (None, None, False)


@pytest.mark.django_db
def test_duplicates_link_to_first_and_are_not_repeats():
    make(1, 0, address="龙门路1号")
    make(2, 0.1, address="龙门路1号")   # 2.4 h later
    make(3, 0.5, address="龙门路1号")   # 12 h after 1, 9.6 h after 2
    make(4, 5, address="龙门路1号")
    repeats.link_repeats(duplicate_hours=24)
    assert links() == {
        "1": (None, None, False),
        "2": (None, "1", False),
        "3": (None, "1", False),
        "4": ("1", None, False),
    }
    tickets, repeat_count, fake = repeats.overall_repeat_rate()
    assert (tickets, repeat_count, fake) == (2, 1, 0)


@pytest.mark.django_db
def test_relinking_clears_old_links():
    make(1, 0, address="A路1号")
    make(2, 10, address="A路1号")
    repeats.link_repeats()
    assert links()["2"][0] == "1"
    repeats.link_repeats(window_days=5)
    assert links()["2"] == (None, None, False)
    assert RepeatRun.objects.count() == 2


@pytest.mark.django_db
def test_repeat_rates_by_period_department_grid():
    make(1, 0, address="A路1号", department="住建局", h3_coarse=11)
    make(2, 10, address="A路1号", department="住建局", h3_coarse=11)
    make(3, 40, address="B路2号", department="城管局", h3_coarse=22)
    make(4, 45, address="B路2号", department="城管局", h3_coarse=22, closed_days=50)
    repeats.link_repeats()

    by_month = repeats.repeat_rates("period", "month")
    assert [(row["key"], row["tickets"], row["repeats"]) for row in by_month] == [
        ("2024-01-01", 2, 1), ("2024-02-01", 2, 1)]
    assert by_month[0]["rate"] == pytest.approx(0.5)

    by_department = {row["key"]: (row["tickets"], row["repeats"]) for row in repeats.repeat_rates("department")}
    assert by_department == {"住建局": (2, 1), "城管局": (2, 1)}
    by_grid = {row["key"]: row["repeats"] for row in repeats.repeat_rates("grid")}
    assert by_grid == {11: 1, 22: 1}

    february = repeats.repeat_rates("period", received_from="2024-02-01", received_to="2024-02-29")
    assert [row["key"] for row in february] == ["2024-02-01"]


@pytest.mark.django_db
def test_addresses_with_repeats_follow_chain():
    make(1, 0, address="象州镇新城路8号", closed_days=2)
    make(2, 10, address="象州镇新城路8号")
    make(3, 30, address="象州镇新城路8号")
    make(4, 0, address="B路2号")
    make(5, 20, address="B路2号")
    repeats.link_repeats()
    rows = repeats.addresses_with_repeats()
    assert [(row["ticket"].external_id, row["tickets"], row["repeats"], row["fake"]) for row in rows] == [
        ("1", 3, 2, 1), ("4", 2, 1, 0)]


def test_rule_rejects_negative_and_inconsistent_values():
    with pytest.raises(AnalysisParameterError, match="distance_m"):
        repeats.RepeatRule(distance_m=-1)
    with pytest.raises(AnalysisParameterError, match="长于重复投诉时间窗"):
        repeats.RepeatRule(window_days=0.5, duplicate_hours=24)
    with pytest.raises(AnalysisParameterError, match="分组方式"):
        repeats.repeat_rates("street")


@pytest.mark.django_db
def test_link_repeats_command():
    make(1, 0, address="A路1号", closed_days=1)
    make(2, 10, address="A路1号")
    out = StringIO()
    call_command("link_repeats", "--by", "department", stdout=out)
    assert "重复投诉 1 张,重复投诉率 50.0%,疑似虚假整改 1 张" in out.getvalue()
    with pytest.raises(CommandError, match="window_days"):
        call_command("link_repeats", "--window-days", "-3", stdout=StringIO())


@pytest.mark.django_db
def test_link_repeats_empty_table():
    run = repeats.link_repeats()
    assert run.ticket_count == 0
    assert repeats.repeat_rates() == []


@pytest.mark.django_db
def test_placeholder_address_and_other_type():
    make(1, 0, address="notassociatedwithaspecificaddress")
    make(2, 5, address="notassociatedwithaspecificaddress")
    Ticket.objects.create(source_system="test", external_id="3", received_at=BASE, category="other",
                          raw_type="Sewer Issues / Odor", address_normalized="A路1号")
    Ticket.objects.create(source_system="test", external_id="4", received_at=BASE + datetime.timedelta(days=3),
                          category="other", raw_type="Graffiti", address_normalized="A路1号")
    Ticket.objects.create(source_system="test", external_id="5", received_at=BASE + datetime.timedelta(days=9),
                          category="other", raw_type="sewer issues / odor", address_normalized="A路1号")
    repeats.link_repeats()
    assert links() == {
        "1": (None, None, False),
        "2": (None, None, False),
        "3": (None, None, False),
        "4": (None, None, False),
        "5": ("3", None, False),
    }
