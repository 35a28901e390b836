"""Risk map: event cube, features, temporal holdout against baselines, stored runs, real SF figures."""
import datetime
from io import StringIO

import h3
import numpy as np
import pandas as pd
import pytest
from django.contrib.gis.geos import Point
from django.core.management import CommandError, call_command

from spatial.analysis import risk
from spatial.models import RiskCell, RiskRun, Ticket

SHANGHAI = datetime.timezone(datetime.timedelta(hours=8))
HOT = (23.95, 109.70)
# Six hot places, so the hot cells give the model enough training rows to learn from.
HOT_PLACES = [(HOT[0] + 0.02 * i, HOT[1] - 0.03 * (i % 2)) for i in range(6)]


def synthetic_events(months=18, seed=1):
    """A hot cell with events every month, a warm cell every other month, and random scatter."""
    rng = np.random.default_rng(seed)
    rows = []
    for month in range(months):
        start = pd.Timestamp(2023, 1, 1, tz="Asia/Shanghai") + pd.DateOffset(months=month)
        day = start + pd.Timedelta(days=10)
        rows.extend((lat, lng, day, "fire_lane") for lat, lng in HOT_PLACES)
        if month % 2 == 0:
            rows.append((23.96, 109.72, day, "ebike_charging"))
        for _ in range(3):
            rows.append((23.90 + rng.random() * 0.1, 109.65 + rng.random() * 0.1, day, "other"))
    frame = pd.DataFrame(rows, columns=["lat", "lng", "t", "category"])
    frame["t"] = frame["t"].dt.tz_convert("UTC")
    frame["alarm"] = False
    frame["closed_t"] = pd.NaT
    return frame


def test_build_cube_counts_and_area():
    events = synthetic_events()
    cube = risk.build_cube(events, "month", 8)
    assert len(cube.starts) == 18
    assert cube.starts[0] == "2023-01-01"
    hot = h3.str_to_int(h3.latlng_to_cell(HOT[0], HOT[1], 8))
    row = int(np.searchsorted(cube.cells, hot))
    assert cube.cells[row] == hot
    assert cube.counts[row].sum() >= 18
    assert cube.counts.shape == (len(cube.cells), 18)
    assert cube.counts.sum() == len(events)
    assert cube.outside.sum() == 0
    # Every event cell's ring-1 neighbours are in the area.
    assert set(h3.str_to_int(c) for c in h3.grid_disk(h3.int_to_str(hot), 1)) <= set(cube.cells.tolist())


def test_build_cube_holdout_area_counts_outside():
    events = synthetic_events()
    late = pd.DataFrame([(25.0, 110.5, pd.Timestamp("2024-06-15", tz="UTC"), "other", False, pd.NaT)],
                        columns=events.columns)
    cube = risk.build_cube(pd.concat([events, late], ignore_index=True), "month", 8, area_until=15)
    # Scattered events of the last periods may also fall outside the early area.
    assert cube.outside[17] >= 1
    assert cube.outside[:15].sum() == 0


def test_features_use_only_history():
    cube = risk.build_cube(synthetic_events(), "month", 8)
    neighbours = risk.adjacency(cube.cells)
    before = risk.features_for_period(cube, 10, neighbours)
    cube.counts[:, 10:] = 999
    after = risk.features_for_period(cube, 10, neighbours)
    assert np.array_equal(before, after)
    assert before.shape[1] == len(risk._feature_names(cube))


def test_kernel_weights():
    cell = h3.latlng_to_cell(HOT[0], HOT[1], 9)
    ring1 = sorted(h3.str_to_int(c) for c in h3.grid_ring(cell, 1))
    cells = np.array(sorted([h3.str_to_int(cell), ring1[0]]), dtype=np.int64)
    kernel = risk.kernel_matrix(cells).toarray()
    assert kernel[0, 0] == pytest.approx(1.0)
    assert kernel[0, 1] == pytest.approx(np.exp(-0.5))


def test_holdout_model_ranks_hot_cell():
    cube = risk.build_cube(synthetic_events(), "month", 8, area_until=14)
    result = risk.evaluate_holdout(cube, test_periods=4, alerts=3)
    assert result["split"]["test_from"] == "2024-03-01"
    assert result["split"]["train_periods"] == 11
    # The hot cells have events every month, so the top alerts are always right.
    assert result["model"]["alert_precision"] == 1.0
    assert result["model"]["alert_precision"] >= result["last_period"]["alert_precision"]
    assert 0.5 < result["model"]["auc"] <= 1.0


def test_holdout_rejects_short_history():
    cube = risk.build_cube(synthetic_events(months=5), "month", 8)
    with pytest.raises(risk.RiskError, match="训练期不足"):
        risk.evaluate_holdout(cube, test_periods=3)


def test_read_event_file_drops_bad_and_duplicate_rows(tmp_path):
    path = tmp_path / "calls.csv"
    path.write_text(
        "incident_number,received_timestamp,call_type,latitude,longitude\n"
        "1,2010-01-01 10:00:00+00:00,Structure Fire,37.77,-122.41\n"
        "1,2010-01-01 10:00:00+00:00,Structure Fire,37.77,-122.41\n"
        "2,2010-01-02 10:00:00+00:00,Alarms,0,0\n"
        "3,,Alarms,37.78,-122.42\n"
        "4,2010-02-02 10:00:00+00:00,Alarms,37.78,-122.42\n", encoding="utf-8")
    events, dropped = risk.read_event_file(path)
    assert len(events) == 2
    assert dropped == 3
    assert events["category"].tolist() == ["Structure Fire", "Alarms"]


def test_read_event_file_missing_column(tmp_path):
    path = tmp_path / "calls.csv"
    path.write_text("when,latitude,longitude\n2010-01-01,37.7,-122.4\n", encoding="utf-8")
    with pytest.raises(risk.RiskError, match="找不到时间列"):
        risk.read_event_file(path)


@pytest.mark.django_db
def test_run_risk_stores_cells_and_figures():
    for number, row in enumerate(synthetic_events().itertuples()):
        Ticket.objects.create(source_system="test", external_id=str(number), received_at=row.t.to_pydatetime(),
                              category=row.category, location=Point(row.lng, row.lat, srid=4326))
    out = StringIO()
    call_command("compute_risk", "--resolution", "8", "--test-periods", "4", "--alerts", "1", stdout=out)
    run = RiskRun.objects.get()
    assert "已保存风险预测" in out.getvalue()
    assert run.predicted_start == datetime.date(2024, 7, 1)
    assert run.model_version == risk.MODEL_VERSION
    assert set(run.evaluation) == {"split", "model", "last_period", "kde"}
    assert RiskCell.objects.filter(run=run).count() == run.cell_count
    hot = RiskCell.objects.get(run=run, h3_cell=h3.str_to_int(h3.latlng_to_cell(HOT[0], HOT[1], 8)))
    # The six hot cells take the top six ranks in some order.
    assert hot.rank <= len(HOT_PLACES)
    assert hot.probability > 0.9


@pytest.mark.django_db
def test_compute_risk_without_tickets():
    with pytest.raises(CommandError, match="没有可用的事件"):
        call_command("compute_risk", stdout=StringIO())


def test_evaluate_risk_real_fire_calls(shared_data):
    out = StringIO()
    call_command("evaluate_risk", "--events", str(shared_data / "sf" / "fire_calls.csv"), "--to", "2012-01-01",
                 "--test-periods", "12", "--resolution", "8", "--json", stdout=out)
    import json

    result = json.loads(out.getvalue())
    assert result["split"]["test_from"] == "2011-02-01"
    assert result["split"]["test_events"] == 774
    assert result["model"]["auc"] == pytest.approx(0.910, abs=0.01)
    assert result["model"]["auc"] > result["kde"]["auc"] > result["last_period"]["auc"]
    assert result["model"]["hit_rate_top10"] > result["last_period"]["hit_rate_top10"]
