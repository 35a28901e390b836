"""The device simulator: realistic streams and the replay of the real smoke data set."""
from datetime import timedelta

import pytest
from django.core.management import call_command
from django.core.management.base import CommandError

from iot import simulator
from iot.ingest import SensorDirectory, ingest
from iot.models import Alarm, AlarmKind, Sensor
from tests.test_iot_support import T0, ensure_sensor_types, message

pytestmark = pytest.mark.django_db


@pytest.mark.realdata
def test_smoke_rows_read_from_real_file(shared_data):
    rows = simulator.read_smoke_rows(shared_data / "iot" / "smoke_detection.csv")
    assert len(rows) == 62630
    assert rows[0] == {"temperature_c": 20.0, "humidity_pct": 57.36, "eco2_ppm": 400, "smoke": False}
    assert sum(row["smoke"] for row in rows) == 44757


def test_simulated_day_opens_tickets(tmp_path):
    ensure_sensor_types()
    sensors = simulator.ensure_sensors(2, interval_s=60, seed=3)
    smoke_rows = [{"temperature_c": 20.0, "humidity_pct": 50.0, "eco2_ppm": 400, "smoke": False}] * 99 + \
                 [{"temperature_c": 35.0, "humidity_pct": 20.0, "eco2_ppm": 1800, "smoke": True}]
    generator = simulator.StreamGenerator(sensors, seed=3, smoke_rows=smoke_rows, start=T0)
    readings = []
    for t_s in range(0, 24 * 3600, 60):
        readings += generator.readings_at(t_s)
    assert len(readings) == 8 * 24 * 60
    for start in range(0, len(readings), 2000):
        ingest([message({"readings": readings[start:start + 2000]})], SensorDirectory(),
               now=T0 + timedelta(days=1))
    kinds = sorted(Alarm.objects.values_list("kind", flat=True))
    # Each of the two smoke detectors meets the one alarm row every 100
    # readings: 1,440 readings a day give 14 or 15 alarms each.
    assert kinds.count(AlarmKind.SMOKE) in range(28, 31)
    assert set(kinds) <= {AlarmKind.SMOKE, AlarmKind.LANE_OCCUPIED, AlarmKind.OUT_OF_BAND}
    assert Sensor.objects.filter(code__startswith="SIM-").count() == 8


def test_simulate_command_rejects_bad_options():
    with pytest.raises(CommandError, match="--per-type and --duration-s must be at least 1"):
        call_command("iot_simulate", "--per-type", "0")


def test_simulate_command_reports_bad_csv(tmp_path):
    ensure_sensor_types()
    bad = tmp_path / "smoke.csv"
    bad.write_text("a,b\n1,2\n")
    with pytest.raises(CommandError, match="expected columns Temperature"):
        call_command("iot_simulate", "--smoke-csv", str(bad))
