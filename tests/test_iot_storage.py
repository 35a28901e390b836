"""How readings reach iot_reading: the COPY paths, escaping, and the readings of deleted sensors."""
import re
import threading
import time
from datetime import timedelta

import psycopg
import pytest
from django.db import connection

from iot.ingest import SensorDirectory, ingest
from iot.models import RULES_LOCK_KEY, Alarm, AlarmKind, DeadLetter, Reading, Sensor
from tests.test_iot_support import T0, make_sensor, message, reading


def store(objects):
    return ingest([message(obj) for obj in objects], SensorDirectory())


@pytest.mark.django_db
def test_values_with_backslashes_and_controls_round_trip():
    make_sensor("HP-1", "hydrant_pressure")
    values = {"pressure_mpa": 0.3, "note": 'C:\\panel\t"3"\n楼', "raw": "\\u0041"}
    result = store([reading("HP-1", 1, T0, **values)])
    assert result.readings_stored == 1
    assert Reading.objects.get().values == values


@pytest.mark.django_db
def test_nul_character_dead_lettered():
    make_sensor("HP-1", "hydrant_pressure")
    batch = {"readings": [reading("HP-1", 1, T0, pressure_mpa=0.3, tag="a\x00"),
                          reading("HP-1", 2, T0, pressure_mpa=0.3, tag="b")]}
    result = store([batch])
    letter = DeadLetter.objects.get()
    assert result.rejected == 1
    assert result.readings_stored == 1
    assert letter.reason.startswith("values contain \\u0000")
    assert letter.sensor_code == "HP-1"
    assert list(Reading.objects.values_list("seq", flat=True)) == [2]


@pytest.mark.django_db
def test_known_key_falls_back_to_stage():
    make_sensor("HP-1", "hydrant_pressure")
    store([reading("HP-1", 2, T0, pressure_mpa=0.3)])
    again = store([reading("HP-1", seq, T0, pressure_mpa=0.3) for seq in (1, 2, 3)])
    assert again.readings_stored == 2
    assert again.duplicates == 1
    assert sorted(Reading.objects.values_list("seq", flat=True)) == [1, 2, 3]


@pytest.mark.django_db
def test_stage_path_keeps_sent_device_time():
    make_sensor("HP-1", "hydrant_pressure")
    future = T0 + timedelta(days=400)
    store([reading("HP-1", 1, T0, pressure_mpa=0.3)])
    store([reading("HP-1", seq, future, pressure_mpa=0.3) for seq in (1, 2)])
    stored = Reading.objects.get(seq=2)
    assert stored.time_replaced is True
    assert stored.sent_device_time == future


@pytest.mark.django_db
def test_sensor_delete_removes_its_readings():
    kept_sensor = make_sensor("HP-1", "hydrant_pressure")
    deleted_sensor = make_sensor("HP-2", "hydrant_pressure")
    store([reading("HP-1", 1, T0, pressure_mpa=0.3), reading("HP-2", 1, T0, pressure_mpa=0.3)])
    deleted_sensor.delete()
    assert list(Reading.objects.values_list("sensor_id", flat=True)) == [kept_sensor.id]


@pytest.mark.django_db
def test_sql_sensor_delete_removes_readings():
    sensor = make_sensor("HP-1", "hydrant_pressure")
    store([reading("HP-1", seq, T0, pressure_mpa=0.3) for seq in (1, 2)])
    with connection.cursor() as cursor:
        cursor.execute("DELETE FROM iot_sensor WHERE id = %s", [sensor.id])
    assert Reading.objects.count() == 0


@pytest.mark.django_db
def test_trigger_takes_the_rules_lock():
    with connection.cursor() as cursor:
        cursor.execute("SELECT prosrc FROM pg_proc WHERE proname = 'iot_sensor_delete_readings'")
        source = cursor.fetchone()[0]
    assert re.search(r"pg_advisory_xact_lock\((\d+)\)", source).group(1) == str(RULES_LOCK_KEY)


@pytest.mark.django_db(transaction=True)
def test_sensor_delete_waits_for_intake_without_deadlock():
    sensor = make_sensor("HP-1", "hydrant_pressure")
    Alarm.objects.create(sensor=sensor, kind=AlarmKind.OUT_OF_BAND, opened_at=T0)
    settings = connection.settings_dict
    intake = psycopg.connect(host=settings["HOST"], port=settings["PORT"], user=settings["USER"],
                             dbname=settings["NAME"])
    intake.execute("SET lock_timeout = '5s'")
    intake.execute("SELECT pg_advisory_xact_lock(%s)", [RULES_LOCK_KEY])
    deleted = threading.Event()

    def delete():
        Sensor.objects.get(pk=sensor.pk).delete()
        connection.close()
        deleted.set()

    thread = threading.Thread(target=delete)
    thread.start()
    try:
        time.sleep(0.5)
        waited = not deleted.is_set()
        # The intake, still holding the lock, updates the sensor's alarm as
        # the rules do. Had the deletion locked that row first, this would
        # deadlock.
        updated = intake.execute("UPDATE iot_alarm SET detail = '{\"seen\": 1}' WHERE sensor_id = %s",
                                 [sensor.pk]).rowcount
    finally:
        intake.commit()
        intake.close()
        thread.join(10)
    assert waited
    assert updated == 1
    assert deleted.is_set()
    assert not Sensor.objects.filter(pk=sensor.pk).exists()
