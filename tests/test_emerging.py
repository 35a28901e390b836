"""Emerging hot spots: Mann-Kendall, pattern labels, space-time cube runs."""
import datetime
from io import StringIO

import h3
import numpy as np
import pytest
from django.core.management import CommandError, call_command
from scipy import stats

from spatial.analysis import emerging
from spatial.analysis.periods import AnalysisParameterError
from spatial.models import EmergingCell, EmergingLabel, EmergingRun, Ticket

SHANGHAI = datetime.timezone(datetime.timedelta(hours=8))


def test_mann_kendall_rising_series():
    s_values, z, p = emerging.mann_kendall([[1, 2, 3, 4, 5]])
    # S = 10, Var(S) = 5 * 4 * 15 / 18, z = (S - 1) / sqrt(Var).
    assert s_values[0] == 10
    assert z[0] == pytest.approx(9 / np.sqrt(50 / 3))
    assert p[0] == pytest.approx(2 * stats.norm.sf(9 / np.sqrt(50 / 3)))


def test_mann_kendall_ties_and_flat():
    s_values, z, p = emerging.mann_kendall([[3, 1, 1, 2], [2, 2, 2, 2]])
    # Pairs: (3,1) -1, (3,1) -1, (3,2) -1, (1,1) 0, (1,2) +1, (1,2) +1 -> S = -1.
    assert s_values.tolist() == [-1, 0]
    # Var = (4*3*13 - 2*1*9) / 18 = 138 / 18; z = (S + 1) / sqrt(Var) = 0.
    assert z.tolist() == [0.0, 0.0]
    assert p.tolist() == [1.0, 1.0]


def test_mann_kendall_agrees_with_kendall_tau_sign():
    rng = np.random.default_rng(3)
    series = rng.random((20, 12))
    s_values, _z, _p = emerging.mann_kendall(series)
    for row, s_value in zip(series, s_values):
        tau = stats.kendalltau(np.arange(12), row).statistic
        assert s_value == pytest.approx(tau * 12 * 11 / 2)


@pytest.mark.parametrize(
    ("states", "trend_z", "trend_p", "label"),
    [
        ([0, 0, 0, 0, 0, 1], 0.0, 1.0, EmergingLabel.NEW_HOT),
        ([0, 0, 0, 0, 1, 1], 0.0, 1.0, EmergingLabel.CONSECUTIVE_HOT),
        ([1] * 10, 2.5, 0.01, EmergingLabel.INTENSIFYING_HOT),
        ([1] * 10, 0.5, 0.6, EmergingLabel.PERSISTENT_HOT),
        ([1] * 10, -2.5, 0.01, EmergingLabel.DIMINISHING_HOT),
        ([1, 0, 1, 0, 0, 1], 0.0, 1.0, EmergingLabel.SPORADIC_HOT),
        ([1, -1, 0, 0, 0, 1], 0.0, 1.0, EmergingLabel.OSCILLATING_HOT),
        ([1] * 9 + [0], 0.0, 1.0, EmergingLabel.HISTORICAL_HOT),
        ([0, 0, 0, 0, 0, -1], 0.0, 1.0, EmergingLabel.NEW_COLD),
        ([-1] * 10, -2.5, 0.01, EmergingLabel.INTENSIFYING_COLD),
        ([0, 0, 1, 0, 0, 0], 0.0, 1.0, EmergingLabel.NO_PATTERN),
    ],
)
def test_classify_pattern(states, trend_z, trend_p, label):
    assert emerging.classify_pattern(np.array(states), trend_z, trend_p, 0.1) == label


def test_too_few_slices():
    cells = np.array([h3.str_to_int(h3.latlng_to_cell(23.95, 109.7, 9))] * 3)
    slices = np.array(["2024-01-01", "2024-02-01", "2024-03-01"], dtype="datetime64[D]")
    with pytest.raises(AnalysisParameterError, match="只有 3 个时间切片"):
        emerging.analyse(cells, slices)


@pytest.mark.django_db
def test_run_finds_new_hot_spot():
    centre = h3.latlng_to_cell(23.95, 109.70, 9)
    background = [h3.str_to_int(c) for c in h3.grid_disk(centre, 4)]
    hot = h3.str_to_int(centre)
    number = 0
    for month in range(1, 9):
        received = datetime.datetime(2024, month, 10, 10, 0, tzinfo=SHANGHAI)
        for cell in background[::3]:
            number += 1
            Ticket.objects.create(source_system="test", external_id=str(number), received_at=received, h3_fine=cell)
        if month == 8:
            for neighbour in h3.grid_disk(centre, 1):
                for _ in range(6):
                    number += 1
                    Ticket.objects.create(source_system="test", external_id=str(number), received_at=received,
                                          h3_fine=h3.str_to_int(neighbour))
    out = StringIO()
    call_command("compute_emerging", "--period", "month", stdout=out)
    run = EmergingRun.objects.get()
    assert len(run.slice_starts) == 8
    assert run.slice_starts[0] == "2024-01-01"
    assert EmergingCell.objects.get(run=run, h3_cell=hot).label == EmergingLabel.NEW_HOT
    assert "新增热点" in out.getvalue()


@pytest.mark.django_db
def test_run_without_tickets():
    with pytest.raises(CommandError, match="没有带 H3 单元的工单"):
        call_command("compute_emerging", stdout=StringIO())
