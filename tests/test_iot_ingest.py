"""Intake of readings: duplicates, ordering, device times, dead letters, retained messages."""
import json
from datetime import timedelta

import pytest

from iot.ingest import SensorDirectory, ingest
from iot.models import Alarm, DeadLetter, Reading
from tests.test_iot_support import INSTALLED_AT, T0, make_sensor, message, reading

pytestmark = pytest.mark.django_db
NOW = T0 + timedelta(hours=1)


@pytest.fixture
def hydrant():
    return make_sensor("HP-1", "hydrant_pressure")


def store(objects, **kwargs):
    return ingest([message(obj, **kwargs) for obj in objects], SensorDirectory(), now=NOW)


def test_single_reading_stored(hydrant):
    result = store([reading("HP-1", 1, T0, pressure_mpa=0.35)])
    stored = Reading.objects.get()
    assert result.readings_stored == 1
    assert stored.sensor_id == hydrant.id
    assert stored.seq == 1
    assert stored.device_time == T0
    assert stored.received_at == NOW
    assert stored.values == {"pressure_mpa": 0.35}
    assert stored.time_replaced is False


def test_redelivery_ignored_by_sensor_and_seq(hydrant):
    first = store([reading("HP-1", 7, T0, pressure_mpa=0.35)])
    again = store([reading("HP-1", 7, T0, pressure_mpa=0.99), reading("HP-1", 7, T0, pressure_mpa=0.98)])
    assert first.readings_stored == 1
    assert again.readings_stored == 0
    assert again.duplicates == 2
    assert list(Reading.objects.values_list("values", flat=True)) == [{"pressure_mpa": 0.35}]


def test_duplicate_inside_one_batch_counted_once(hydrant):
    batch = {"readings": [reading("HP-1", 3, T0, pressure_mpa=0.3), reading("HP-1", 3, T0, pressure_mpa=0.3)]}
    result = store([batch])
    assert result.readings_stored == 1
    assert result.duplicates == 1
    assert Reading.objects.count() == 1


def test_out_of_order_kept_by_device_time(hydrant):
    times = [T0 + timedelta(seconds=s) for s in (60, 0, 30)]
    store([reading("HP-1", seq, at, pressure_mpa=0.3) for seq, at in zip((3, 1, 2), times)])
    ordered = list(Reading.objects.order_by("device_time").values_list("seq", flat=True))
    assert ordered == [1, 2, 3]
    assert hydrant.__class__.objects.get().last_device_time == T0 + timedelta(seconds=60)


def test_future_device_time_replaced_and_flagged(hydrant):
    result = store([reading("HP-1", 1, NOW + timedelta(minutes=5), pressure_mpa=0.3)])
    stored = Reading.objects.get()
    assert result.time_replaced == 1
    assert stored.device_time == NOW
    assert stored.time_replaced is True
    assert stored.sent_device_time == NOW + timedelta(minutes=5)


def test_small_clock_skew_accepted(hydrant):
    store([reading("HP-1", 1, NOW + timedelta(seconds=30), pressure_mpa=0.3)])
    stored = Reading.objects.get()
    assert stored.device_time == NOW + timedelta(seconds=30)
    assert stored.time_replaced is False
    assert stored.sent_device_time is None


def test_time_before_installation_replaced(hydrant):
    store([reading("HP-1", 1, INSTALLED_AT - timedelta(days=1), pressure_mpa=0.3)])
    stored = Reading.objects.get()
    assert stored.device_time == NOW
    assert stored.time_replaced is True
    assert stored.sent_device_time == INSTALLED_AT - timedelta(days=1)


def test_unix_seconds_and_naive_local_time(hydrant):
    store([reading("HP-1", 1, T0.timestamp(), pressure_mpa=0.3),
           reading("HP-1", 2, "2026-12-01T16:00:30", pressure_mpa=0.3)])
    times = list(Reading.objects.order_by("seq").values_list("device_time", flat=True))
    assert times == [T0, T0 + timedelta(seconds=30)]


@pytest.mark.parametrize("payload, sensor_code, reason", [
    (b"{not json", "", "payload is not UTF-8 JSON"),
    (b"\xff\xfe", "", "payload is not UTF-8 JSON"),
    (b"42", "", "payload must be a JSON object or array"),
    (b'{"readings": {}}', "", "readings must be a JSON array"),
    (b"[]", "", "the batch contains no readings"),
    (json.dumps({"seq": 1, "device_time": 0, "values": {"a": 1}}).encode(), "",
     "sensor is missing; send the sensor code as a string"),
    (json.dumps(reading("NOPE-9", 1, "2026-12-01T08:00:00Z", pressure_mpa=1)).encode(), "NOPE-9",
     "sensor 'NOPE-9' is not registered; add it in the admin first"),
    (json.dumps(reading("HP-1", -1, "2026-12-01T08:00:00Z", pressure_mpa=1)).encode(), "HP-1",
     "seq must be an integer from 0 to 2^63-1, got -1"),
    (json.dumps(reading("HP-1", True, "2026-12-01T08:00:00Z", pressure_mpa=1)).encode(), "HP-1",
     "seq must be an integer from 0 to 2^63-1, got True"),
    (json.dumps(reading("HP-1", 1, "yesterday", pressure_mpa=1)).encode(), "HP-1",
     "device_time 'yesterday' is not ISO 8601"),
    (json.dumps({"sensor": "HP-1", "seq": 1, "values": {"pressure_mpa": 1}}).encode(), "HP-1",
     "device_time is missing; send ISO 8601 or Unix seconds"),
    (json.dumps(reading("HP-1", 1, 1e30, pressure_mpa=1)).encode(), "HP-1",
     "device_time 1e+30 is out of range for Unix seconds"),
    (json.dumps(reading("HP-1", 1, "2026-12-01T08:00:00Z")).encode(), "HP-1",
     "values must be a non-empty JSON object"),
    (json.dumps(reading("HP-1", 1, "2026-12-01T08:00:00Z", flow=1)).encode(), "HP-1",
     "values lacks 'pressure_mpa', which the band rule reads"),
    (json.dumps(reading("HP-1", 1, "2026-12-01T08:00:00Z", pressure_mpa="high")).encode(), "HP-1",
     "values.pressure_mpa must be a finite number, got 'high'"),
])
def test_malformed_payload_dead_lettered(hydrant, payload, sensor_code, reason):
    result = ingest([message(payload)], SensorDirectory(), now=NOW)
    letter = DeadLetter.objects.get()
    assert result.rejected == 1
    assert result.readings_stored == 0
    assert letter.sensor_code == sensor_code
    assert letter.reason.startswith(reason)
    assert letter.payload == payload.decode("utf-8", "replace")
    assert Reading.objects.count() == 0


def test_bad_reading_in_batch_keeps_the_good_ones(hydrant):
    batch = {"readings": [reading("HP-1", 1, T0, pressure_mpa=0.3), reading("HP-1", 2, T0, pressure_mpa=None),
                          reading("HP-1", 3, T0, pressure_mpa=0.31)]}
    result = store([batch])
    letter = DeadLetter.objects.get()
    assert result.readings_stored == 2
    assert result.rejected == 1
    assert json.loads(letter.payload)["seq"] == 2
    assert letter.sensor_code == "HP-1"


def test_topic_sensor_must_match_payload(hydrant):
    result = ingest([message(reading("HP-1", 1, T0, pressure_mpa=0.3), topic_sensor="HP-2")],
                    SensorDirectory(), now=NOW)
    assert result.rejected == 1
    assert DeadLetter.objects.get().reason == "sensor 'HP-1' differs from the topic's 'HP-2'"


def test_disabled_sensor_rejected(hydrant):
    hydrant.active = False
    hydrant.save()
    result = store([reading("HP-1", 1, T0, pressure_mpa=0.3)])
    assert result.rejected == 1
    assert DeadLetter.objects.get().reason == "sensor 'HP-1' is disabled"


def test_new_sensor_found_after_reload(hydrant):
    directory = SensorDirectory(reload_interval_s=0)
    ingest([message(reading("HP-1", 1, T0, pressure_mpa=0.3))], directory, now=NOW)
    make_sensor("HP-2", "hydrant_pressure")
    result = ingest([message(reading("HP-2", 1, T0, pressure_mpa=0.3))], directory, now=NOW)
    assert result.readings_stored == 1


def test_retained_smoke_raises_no_alarm():
    make_sensor("SD-1", "smoke_detector")
    result = store([reading("SD-1", 1, T0, smoke=True)], retained=True)
    stored = Reading.objects.get()
    assert result.readings_stored == 1
    assert stored.retained is True
    assert Alarm.objects.count() == 0
    assert result.tickets_opened == []


def test_replaced_sensor_reloads_directory(hydrant):
    directory = SensorDirectory()
    ingest([message(reading("HP-1", 1, T0, pressure_mpa=0.3))], directory, now=NOW)
    hydrant.delete()
    replacement = make_sensor("HP-1", "hydrant_pressure")
    result = ingest([message(reading("HP-1", 2, T0, pressure_mpa=0.3))], directory, now=NOW)
    assert result.readings_stored == 1
    assert Reading.objects.get().sensor_id == replacement.id


def test_rejections_logged_with_sensor_and_capped(hydrant, caplog):
    bad = [reading("HP-1", seq, T0, pressure_mpa="x") for seq in range(25)]
    with caplog.at_level("WARNING", logger="iot.ingest"):
        result = store([{"readings": bad}])
    messages = [record.getMessage() for record in caplog.records]
    assert result.rejected == 25
    assert DeadLetter.objects.count() == 25
    assert len(messages) == 21
    assert messages[0] == "rejected mqtt reading of sensor HP-1: values.pressure_mpa must be a finite number, got 'x'"
    assert messages[-1] == "rejected 5 more mqtt readings in this batch; their reasons are in the dead-letter table"
