"""Patrol stops come from the latest risk run, with Gi* hot cells as the fallback."""
import datetime

import h3
import pytest
from django.contrib.gis.geos import Polygon

from routing.patrol import RISK_VALUE_SCALE, risk_cell_values
from spatial.models import HotspotCell, HotspotRun, RiskCell, RiskRun

LAT, LNG = 23.96, 109.68
AREA = Polygon.from_bbox((LNG - 0.02, LAT - 0.02, LNG + 0.02, LAT + 0.02))
AREA.srid = 4326


def cell_at(lat, lng):
    return h3.str_to_int(h3.latlng_to_cell(lat, lng, 9))


def make_risk_run(start, probabilities):
    run = RiskRun.objects.create(model_version="test", period="month", predicted_start=start)
    for rank, (cell, probability) in enumerate(probabilities, start=1):
        RiskCell.objects.create(run=run, h3_cell=cell, probability=probability, rank=rank)
    return run


@pytest.mark.django_db
def test_risk_values_rank_by_probability():
    low, high, outside = cell_at(LAT, LNG), cell_at(LAT + 0.01, LNG), cell_at(LAT + 0.5, LNG)
    make_risk_run(datetime.date(2024, 12, 1), [(outside, 0.99), (high, 0.9), (low, 0.2)])

    candidates = risk_cell_values(AREA, datetime.date(2024, 12, 5), limit=5)

    assert [candidate.key for candidate in candidates] == [h3.int_to_str(high), h3.int_to_str(low)]
    assert candidates[0].value == pytest.approx(RISK_VALUE_SCALE * 0.9)


@pytest.mark.django_db
def test_risk_values_pick_run_for_date():
    cell = cell_at(LAT, LNG)
    make_risk_run(datetime.date(2024, 11, 1), [(cell, 0.4)])
    make_risk_run(datetime.date(2024, 12, 1), [(cell, 0.8)])

    november = risk_cell_values(AREA, datetime.date(2024, 11, 20), limit=1)
    december = risk_cell_values(AREA, datetime.date(2024, 12, 20), limit=1)

    assert november[0].value == pytest.approx(4.0)
    assert december[0].value == pytest.approx(8.0)


@pytest.mark.django_db
def test_risk_values_fall_back_to_hotspots():
    run = HotspotRun.objects.create(params={}, cell_count=1, hot_count=1)
    HotspotCell.objects.create(run=run, h3_cell=cell_at(LAT, LNG), ticket_count=3, z_score=3.0, p_value=0.001,
                               label="hot_99")

    candidates = risk_cell_values(AREA, datetime.date(2024, 12, 5), limit=5)

    assert len(candidates) == 1
    assert candidates[0].value == pytest.approx(3.0 + 2.0)


@pytest.mark.django_db
def test_risk_values_respect_limit():
    cells = [cell_at(LAT + 0.002 * step, LNG) for step in range(5)]
    make_risk_run(datetime.date(2024, 12, 1), [(cell, 0.5) for cell in dict.fromkeys(cells)])

    assert len(risk_cell_values(AREA, datetime.date(2024, 12, 5), limit=2)) == 2
