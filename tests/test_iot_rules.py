"""Alarm rules: lane occupancy, pressure bands with hysteresis, smoke, offline sensors."""
from datetime import timedelta

import pytest

from iot import rules
from iot.ingest import SensorDirectory, ingest
from iot.maplayer import sensor_features
from iot.models import Alarm, AlarmKind, AlarmSeverity, Sensor, SensorStatus
from spatial.models import Ticket, TicketSource
from spatial.taxonomy import Category
from tests.test_iot_support import T0, make_sensor, message, series

pytestmark = pytest.mark.django_db
NOW = T0 + timedelta(hours=6)


def feed(readings, now=NOW):
    return ingest([message(r) for r in readings], SensorDirectory(), now=now)


def feed_one_by_one(readings, now=NOW):
    """Send each reading in its own batch, as a slow sensor would, and return the tickets opened."""
    opened = []
    for r in readings:
        opened += feed([r], now=now).tickets_opened
    return opened


def iot_tickets():
    return Ticket.objects.filter(source_system="iot").order_by("id")


def test_lane_occupied_five_minutes_exactly_no_alarm():
    make_sensor("LR-1", "lane_radar")
    feed(series("LR-1", T0, 30, [True] * 11, "occupied"))  # 0 s .. 300 s
    assert Alarm.objects.count() == 0


def test_lane_occupied_over_five_minutes_opens_one_ticket():
    sensor = make_sensor("LR-1", "lane_radar", address="兴华路1号", property_manager="万达物业")
    opened = feed_one_by_one(series("LR-1", T0, 30, [True] * 20, "occupied"))
    alarm = Alarm.objects.get()
    ticket = iot_tickets().get()
    assert [t.pk for t in opened] == [ticket.pk]
    assert alarm.kind == AlarmKind.LANE_OCCUPIED
    assert alarm.opened_at == T0 + timedelta(seconds=330)
    assert alarm.cleared_at is None
    assert alarm.ticket_id == ticket.pk
    assert ticket.source == TicketSource.IOT_ALARM
    assert ticket.external_id == f"LR-1/lane_occupied/{alarm.pk}"
    assert ticket.category == Category.FIRE_LANE
    assert ticket.department == "万达物业、消防救援机构"
    assert ticket.address == "兴华路1号"
    assert ticket.location.equals(sensor.location)
    assert ticket.h3_fine is not None
    # The last reading at 570 s updated the duration in the ticket text.
    assert "已达 9.5 分钟" in ticket.description
    assert "2026-12-01 16:00:00" in ticket.description
    assert Sensor.objects.get().status == SensorStatus.ALARM


def test_lane_clear_then_new_ticket():
    """The lane clears after the free time, and a new spell opens a new ticket."""
    make_sensor("LR-1", "lane_radar", thresholds={"free_clear_s": 90})
    values = [True] * 12 + [False] * 3 + [True] + [False] * 4 + [True] * 12
    feed_one_by_one(series("LR-1", T0, 30, values, "occupied"))
    alarms = list(Alarm.objects.order_by("opened_at"))
    assert len(alarms) == 2
    # Free at 360 s, occupied again at 450 s (before 90 s passed), free from
    # 480 s; cleared at 570 s.
    assert alarms[0].opened_at == T0 + timedelta(seconds=330)
    assert alarms[0].cleared_at == T0 + timedelta(seconds=570)
    assert alarms[1].opened_at == T0 + timedelta(seconds=600 + 330)
    assert alarms[1].cleared_at is None
    assert iot_tickets().count() == 2
    assert "告警已于 2026-12-01 16:09:30 自动解除。" in alarms[0].ticket.description


def test_pressure_needs_consecutive_readings():
    make_sensor("HP-1", "hydrant_pressure")  # low 0.14, 3 readings, hysteresis 0.02
    feed_one_by_one(series("HP-1", T0, 60, [0.10, 0.10, 0.30, 0.10, 0.10, 0.30], "pressure_mpa"))
    assert Alarm.objects.count() == 0
    feed_one_by_one(series("HP-1", T0 + timedelta(hours=1), 60, [0.10, 0.11, 0.12], "pressure_mpa", first_seq=10))
    alarm = Alarm.objects.get()
    ticket = iot_tickets().get()
    assert alarm.kind == AlarmKind.OUT_OF_BAND
    assert alarm.opened_at == T0 + timedelta(hours=1, minutes=2)
    assert ticket.category == Category.FACILITY_FAULT
    assert ticket.department == "测试物业"
    assert "连续 3 次读数超出正常范围 0.14–1.2 MPa" in ticket.description


def test_pressure_hovering_at_threshold_no_flood():
    make_sensor("HP-1", "hydrant_pressure")
    hovering = [0.13, 0.13, 0.13] + [0.15, 0.13, 0.15, 0.14, 0.15, 0.13, 0.15, 0.15] * 5
    feed_one_by_one(series("HP-1", T0, 60, hovering, "pressure_mpa"))
    # 0.15 is inside the band but not 0.02 above its lower limit, so the
    # alarm neither clears nor opens again.
    assert Alarm.objects.count() == 1
    assert Alarm.objects.get().cleared_at is None
    feed_one_by_one(series("HP-1", T0 + timedelta(hours=2), 60, [0.2, 0.2, 0.2], "pressure_mpa", first_seq=100))
    assert Alarm.objects.get().cleared_at == T0 + timedelta(hours=2, minutes=2)
    assert iot_tickets().count() == 1


def test_pressure_above_band_alarms():
    make_sensor("EP-1", "extinguisher_pressure")
    feed(series("EP-1", T0, 60, [1.5, 1.6, 1.5], "pressure_mpa"))
    assert Alarm.objects.get().detail["high"] == 1.4


def test_smoke_opens_urgent_ticket_at_once():
    make_sensor("SD-1", "smoke_detector")
    result = feed(series("SD-1", T0, 10, [False, True], "smoke"))
    alarm = Alarm.objects.get()
    assert len(result.tickets_opened) == 1
    assert alarm.severity == AlarmSeverity.URGENT
    assert alarm.opened_at == T0 + timedelta(seconds=10)
    assert result.tickets_opened[0].description.startswith("【紧急】烟感 SD-1")
    assert result.tickets_opened[0].raw_type == "【紧急】烟感火警"


def test_smoke_ticket_dispatched_to_fire_within_hour(django_capture_on_commit_callbacks):
    make_sensor("SD-1", "smoke_detector")
    with django_capture_on_commit_callbacks(execute=True):
        ticket = feed(series("SD-1", T0, 10, [True], "smoke")).tickets_opened[0]
    ticket.refresh_from_db()
    handling = ticket.handling
    assert ticket.status == "dispatched"
    assert handling.rule.name == "烟感火警"
    assert handling.lead.code == "fire"
    assert list(handling.partners.values_list("code", flat=True)) == ["property"]
    assert handling.deadline_rule.name == "烟感火警1小时内到场处置"
    assert handling.milestone == "on_site"
    assert (handling.due_at - handling.started_at).total_seconds() == 3600


def test_smoke_clears_after_three_false_readings():
    make_sensor("SD-1", "smoke_detector")
    feed_one_by_one(series("SD-1", T0, 10, [True, True, False, False, True, False, False, False], "smoke"))
    alarm = Alarm.objects.get()
    assert alarm.cleared_at == T0 + timedelta(seconds=70)
    assert iot_tickets().count() == 1


def test_older_reading_changes_no_state():
    make_sensor("SD-1", "smoke_detector")
    feed(series("SD-1", T0 + timedelta(minutes=5), 10, [False], "smoke"))
    feed(series("SD-1", T0, 10, [True], "smoke", first_seq=50))
    assert Alarm.objects.count() == 0


def test_offline_after_three_intervals():
    make_sensor("HP-1", "hydrant_pressure", interval_s=60)
    feed(series("HP-1", T0, 60, [0.35], "pressure_mpa"), now=T0)
    assert rules.check_offline(now=T0 + timedelta(seconds=180)) == []
    opened = rules.check_offline(now=T0 + timedelta(seconds=181))
    again = rules.check_offline(now=T0 + timedelta(seconds=400))
    sensor = Sensor.objects.get()
    assert len(opened) == 1
    assert again == []
    assert opened[0].raw_type == "物联网设备离线"
    assert sensor.status == SensorStatus.OFFLINE
    feed(series("HP-1", T0 + timedelta(seconds=500), 60, [0.36], "pressure_mpa", first_seq=2),
         now=T0 + timedelta(seconds=500))
    assert Alarm.objects.get(kind=AlarmKind.OFFLINE).cleared_at == T0 + timedelta(seconds=500)
    assert Sensor.objects.get().status == SensorStatus.NORMAL


def test_map_shows_silent_sensor_offline_without_value():
    make_sensor("HP-1", "hydrant_pressure", interval_s=60)
    feed(series("HP-1", T0, 60, [0.35], "pressure_mpa"), now=T0)
    fresh = sensor_features(now=T0 + timedelta(seconds=60))["features"][0]["properties"]
    silent = sensor_features(now=T0 + timedelta(seconds=200))["features"][0]["properties"]
    assert fresh["status"] == "normal"
    assert fresh["current_values"] == {"pressure_mpa": 0.35}
    assert silent["status"] == "offline"
    assert silent["current_values"] is None
    assert silent["last_known_values"] == {"pressure_mpa": 0.35}


def test_burst_keeps_sensor_state_current():
    make_sensor("HP-1", "hydrant_pressure", interval_s=60)
    # A gateway's backlog: an hour of readings received within a second.
    for index, value in enumerate([0.35, 0.34, 0.33]):
        feed(series("HP-1", T0 + timedelta(minutes=30 * index), 60, [value], "pressure_mpa", first_seq=index + 1),
             now=NOW + timedelta(milliseconds=100 * index))
    sensor = Sensor.objects.get()
    assert sensor.last_values == {"pressure_mpa": 0.33}
    assert sensor.last_device_time == T0 + timedelta(hours=1)


def test_map_shows_silent_alarm_in_alarm():
    make_sensor("SD-1", "smoke_detector", interval_s=60)
    feed(series("SD-1", T0, 60, [True], "smoke"), now=T0)
    rules.check_offline(now=T0 + timedelta(seconds=200))
    silent = sensor_features(now=T0 + timedelta(seconds=200))["features"][0]["properties"]
    assert silent["status"] == "alarm"
    assert silent["offline"] is True
    assert silent["status_label"] == "告警(设备已离线)"
    assert silent["current_values"] is None
    assert [alarm["kind"] for alarm in silent["open_alarms"]] == ["smoke", "offline"]


def test_sensor_that_never_reported_goes_offline():
    make_sensor("HP-9", "hydrant_pressure", interval_s=60)
    opened = rules.check_offline(now=NOW)
    assert [t.external_id.split("/")[1] for t in opened] == ["offline"]


def test_new_type_needs_no_code_change():
    from iot.models import SensorType

    SensorType.objects.create(code="water_level", name="水池液位", rule_kind="band", value_key="level_m",
                              unit="m", default_thresholds={"low": 2.0, "consecutive": 2})
    make_sensor("WL-1", "water_level")
    feed(series("WL-1", T0, 60, [1.5, 1.4], "level_m"))
    assert Alarm.objects.get().kind == AlarmKind.OUT_OF_BAND
