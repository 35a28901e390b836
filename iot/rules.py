"""Alarm rules: turn new readings and silent sensors into alarms and tickets.

Each sensor type names one rule kind, and the rule's state lives on the
sensor row (``rule_state``), so the listener can restart at any reading.
Rules see readings in device-time order. A reading older than the newest
one a sensor has already fed the rules is stored but changes no state, and
retained MQTT messages change no state either, so a broker replaying a
retained alarm cannot raise a second one.

Thresholds (per sensor, over the type's defaults):

- occupancy: ``occupied_alarm_s`` (300) occupied time before the alarm,
  ``free_clear_s`` (120) free time before it clears.
- band: ``low`` and ``high`` limits, ``consecutive`` (3) readings out of
  band to alarm, and as many back inside ``[low + hysteresis, high -
  hysteresis]`` to clear.
- boolean alarm: alarm on the first true reading, clear after
  ``clear_consecutive`` (3) false ones.
- offline: silent for ``offline_intervals`` (3) reporting intervals.
"""
import logging
from dataclasses import dataclass
from datetime import datetime, timedelta

import h3
import orjson
from psycopg.types.json import Jsonb, set_json_loads
from django.conf import settings
from django.db import transaction
from django.utils import timezone
from django.utils.translation import gettext as _

from iot.db import raw_cursor
from iot.models import RULES_LOCK_KEY, Alarm, AlarmKind, AlarmSeverity, RuleKind, Sensor, SensorStatus
from spatial.models import Ticket, TicketSource, TicketStatus
from spatial.taxonomy import Category

logger = logging.getLogger(__name__)

TICKET_SOURCE_SYSTEM = "iot"
DEFAULTS = {
    "occupied_alarm_s": 300,
    "free_clear_s": 120,
    "consecutive": 3,
    "hysteresis": 0.0,
    "clear_consecutive": 3,
    "offline_intervals": 3,
}
FIRE_DEPARTMENT = "消防救援机构"
# Seconds after which a sensor's receipt time and last values are written
# back even when its rule state did not change.
STATE_REFRESH_S = 5


def _threshold(thresholds, name):
    return thresholds.get(name, DEFAULTS.get(name))


def _as_time(value):
    return datetime.fromisoformat(value) if value else None


def _iso(value):
    return value.isoformat() if value else None


class SensorEvaluation:
    """One sensor's state while a batch runs through its rule."""

    def __init__(self, sensor, open_alarms):
        self.sensor = sensor
        self.thresholds = sensor.effective_thresholds()
        self.state = dict(sensor.rule_state or {})
        self.open_alarms = open_alarms  # kind -> Alarm
        self.opened = []  # (Alarm, trigger reading)
        self.touched = set()  # kinds whose open alarm saw a new reading
        self.cleared = []

    def open(self, kind, severity, reading, detail):
        alarm = Alarm(sensor_id=self.sensor.id, kind=kind, severity=severity, opened_at=reading.device_time,
                      last_reading_at=reading.device_time, trigger_received_at=reading.received_at,
                      detail=detail)
        self.open_alarms[kind] = alarm
        self.opened.append(alarm)

    def clear(self, kind, at):
        alarm = self.open_alarms.pop(kind)
        alarm.cleared_at = at
        self.touched.discard(kind)
        if alarm.pk is None:
            # Opened and cleared inside one batch: keep both facts.
            return
        self.cleared.append(alarm)

    def touch(self, kind, reading):
        alarm = self.open_alarms[kind]
        alarm.last_reading_at = reading.device_time
        self.touched.add(kind)


def _occupancy(evaluation, reading, value):
    state = evaluation.state
    t = reading.device_time
    alarm_after = timedelta(seconds=_threshold(evaluation.thresholds, "occupied_alarm_s"))
    clear_after = timedelta(seconds=_threshold(evaluation.thresholds, "free_clear_s"))
    has_alarm = AlarmKind.LANE_OCCUPIED in evaluation.open_alarms

    if value:
        state["free_since"] = None
        occupied_since = _as_time(state.get("occupied_since"))
        if occupied_since is None:
            state["occupied_since"] = _iso(t)
            occupied_since = t
        if has_alarm:
            evaluation.touch(AlarmKind.LANE_OCCUPIED, reading)
            evaluation.open_alarms[AlarmKind.LANE_OCCUPIED].detail["occupied_s"] = (t - occupied_since).total_seconds()
        elif t - occupied_since > alarm_after:
            evaluation.open(AlarmKind.LANE_OCCUPIED, AlarmSeverity.HIGH, reading,
                            {"occupied_since": _iso(occupied_since), "occupied_s": (t - occupied_since).total_seconds()})
        return

    if not has_alarm:
        state["occupied_since"] = None
        state["free_since"] = None
        return
    free_since = _as_time(state.get("free_since"))
    if free_since is None:
        state["free_since"] = _iso(t)
        free_since = t
    if t - free_since >= clear_after:
        evaluation.clear(AlarmKind.LANE_OCCUPIED, t)
        state["occupied_since"] = None
        state["free_since"] = None


def _band(evaluation, reading, value):
    state = evaluation.state
    thresholds = evaluation.thresholds
    low = thresholds.get("low")
    high = thresholds.get("high")
    needed = int(_threshold(thresholds, "consecutive"))
    hysteresis = float(_threshold(thresholds, "hysteresis"))
    below = low is not None and value < low
    above = high is not None and value > high

    if AlarmKind.OUT_OF_BAND not in evaluation.open_alarms:
        run = state.get("out_run", 0) + 1 if (below or above) else 0
        state["out_run"] = run
        if run >= needed:
            evaluation.open(AlarmKind.OUT_OF_BAND, AlarmSeverity.NORMAL, reading,
                            {"value": value, "low": low, "high": high, "consecutive": run})
            state["out_run"] = 0
            state["in_run"] = 0
        return

    evaluation.touch(AlarmKind.OUT_OF_BAND, reading)
    evaluation.open_alarms[AlarmKind.OUT_OF_BAND].detail["last_value"] = value
    back_inside = (low is None or value >= low + hysteresis) and (high is None or value <= high - hysteresis)
    run = state.get("in_run", 0) + 1 if back_inside else 0
    state["in_run"] = run
    if run >= needed:
        evaluation.clear(AlarmKind.OUT_OF_BAND, reading.device_time)
        state["in_run"] = 0


def _boolean_alarm(evaluation, reading, value):
    state = evaluation.state
    if value:
        state["false_run"] = 0
        if AlarmKind.SMOKE in evaluation.open_alarms:
            evaluation.touch(AlarmKind.SMOKE, reading)
        else:
            evaluation.open(AlarmKind.SMOKE, AlarmSeverity.URGENT, reading, {"values": reading.values})
        return
    if AlarmKind.SMOKE not in evaluation.open_alarms:
        return
    run = state.get("false_run", 0) + 1
    state["false_run"] = run
    if run >= int(_threshold(evaluation.thresholds, "clear_consecutive")):
        evaluation.clear(AlarmKind.SMOKE, reading.device_time)
        state["false_run"] = 0


RULES = {
    RuleKind.OCCUPANCY: _occupancy,
    RuleKind.BAND: _band,
    RuleKind.BOOLEAN_ALARM: _boolean_alarm,
}


def _sensor_status(evaluation):
    if evaluation.open_alarms.keys() - {AlarmKind.OFFLINE}:
        return SensorStatus.ALARM
    return SensorStatus.NORMAL


def apply_readings(readings, now=None):
    """Feed new readings to their sensors' rules inside the caller's transaction.

    Returns the tickets opened, in the order their alarms were raised.
    NOTE: a reading older than the newest one evaluated but newer than the
    stored ``last_device_time`` (written back at most every
    ``STATE_REFRESH_S``) is evaluated late instead of skipped.
    One transaction-level advisory lock serialises rule evaluation, so the
    listener and the HTTP endpoint can run at once without lost state. A
    sensor row is written back when its rule state or status changed, or
    when its stored receipt time or device time is ``STATE_REFRESH_S``
    behind; the sensor map may therefore show a last reading up to that
    many seconds old.
    """
    now = now or timezone.now()
    live = [r for r in readings if not r.retained]
    if not live:
        return []
    by_sensor = {}
    for reading in live:
        by_sensor.setdefault(reading.sensor_id, []).append(reading)

    lock_rules()
    sensors = _sensor_rows(sorted(by_sensor))
    open_alarms = {}
    for alarm in _open_alarms(sorted(by_sensor)):
        open_alarms.setdefault(alarm.sensor_id, {})[alarm.kind] = alarm

    evaluations = []
    changed = []
    for sensor in sensors:
        evaluation = SensorEvaluation(sensor, open_alarms.get(sensor.id, {}))
        rule = RULES.get(sensor.rule_kind)
        key = sensor.value_key
        newest = sensor.last_device_time
        for reading in sorted(by_sensor[sensor.id], key=lambda r: (r.device_time, r.seq)):
            if newest is not None and reading.device_time < newest:
                continue
            newest = reading.device_time
            if rule is not None:
                rule(evaluation, reading, reading.values[key])
            sensor.last_values = reading.values
        if AlarmKind.OFFLINE in evaluation.open_alarms:
            evaluation.clear(AlarmKind.OFFLINE, now)
        last_seen_at = max(r.received_at for r in by_sensor[sensor.id])
        status = _sensor_status(evaluation)
        # Stale by receipt time for live streams, or by device time for a
        # burst (a replay or a gateway's backlog) received within seconds.
        stale = (sensor.last_seen_at is None or sensor.last_device_time is None
                 or (last_seen_at - sensor.last_seen_at).total_seconds() >= STATE_REFRESH_S
                 or (newest - sensor.last_device_time).total_seconds() >= STATE_REFRESH_S)
        if stale or evaluation.state != sensor.rule_state or status != sensor.status:
            changed.append(sensor)
        sensor.last_device_time = newest
        sensor.last_seen_at = last_seen_at
        sensor.rule_state = evaluation.state
        sensor.status = status
        evaluations.append(evaluation)

    if changed:
        _save_sensor_state(changed)
    return _apply_alarm_changes(evaluations, now)


@dataclass
class SensorRow:
    """The columns of a sensor and its type that the rules read and write."""

    id: int
    rule_kind: str
    value_key: str
    default_thresholds: dict
    thresholds: dict
    rule_state: dict
    last_device_time: datetime
    last_values: dict
    status: str
    last_seen_at: datetime

    def effective_thresholds(self):
        merged = dict(self.default_thresholds or {})
        merged.update(self.thresholds or {})
        return merged


def lock_rules():
    """Take the transaction-level advisory lock that serialises writers of rule state."""
    with raw_cursor() as cursor:
        cursor.execute("SELECT pg_advisory_xact_lock(%s)", [RULES_LOCK_KEY])


def _sensor_rows(sensor_ids):
    # Raw SQL because model instances with their geometry cost more than
    # the rules themselves for a batch over thousands of sensors. No row
    # locks: lock_rules() already excludes other writers, and FOR UPDATE
    # would write every row of the batch once more.
    with raw_cursor() as cursor:
        set_json_loads(orjson.loads, cursor)
        cursor.execute(
            """
            SELECT s.id, t.rule_kind, t.value_key, t.default_thresholds, s.thresholds, s.rule_state,
                   s.last_device_time, s.last_values, s.status, s.last_seen_at
            FROM iot_sensor AS s JOIN iot_sensortype AS t ON t.id = s.sensor_type_id
            WHERE s.id = ANY(%s)
            """,
            [sensor_ids],
            binary=True,
        )
        return [SensorRow(*row) for row in cursor.fetchall()]


def _open_alarms(sensor_ids):
    # Open alarms are few: find their ids over the partial unique index with
    # the id array bound on the server, then load just those as models.
    # Django's ``sensor_id__in`` would quote thousands of ids client-side.
    with raw_cursor() as cursor:
        cursor.execute("SELECT id FROM iot_alarm WHERE cleared_at IS NULL AND sensor_id = ANY(%s)", [sensor_ids],
                       binary=True)
        alarm_ids = [row[0] for row in cursor.fetchall()]
    return list(Alarm.objects.filter(id__in=alarm_ids)) if alarm_ids else []


def _save_sensor_state(sensors):
    # Raw SQL because one UPDATE ... FROM unnest() writes the state of every
    # sensor in the batch, where bulk_update would build a CASE per column.
    with raw_cursor() as cursor:
        cursor.execute(
            """
            UPDATE iot_sensor AS s SET status = u.status, last_seen_at = u.last_seen_at,
                   last_device_time = u.last_device_time, last_values = u.last_values, rule_state = u.rule_state
            FROM unnest(%s::bigint[], %s::text[], %s::timestamptz[], %s::timestamptz[], %s::jsonb[],
                        %s::jsonb[])
                 AS u(id, status, last_seen_at, last_device_time, last_values, rule_state)
            WHERE s.id = u.id
            """,
            [
                [s.id for s in sensors],
                [s.status for s in sensors],
                [s.last_seen_at for s in sensors],
                [s.last_device_time for s in sensors],
                [Jsonb(s.last_values) for s in sensors],
                [Jsonb(s.rule_state) for s in sensors],
            ],
            binary=True,
        )


def _apply_alarm_changes(evaluations, now):
    tickets = []
    for evaluation in evaluations:
        for alarm in evaluation.cleared:
            alarm.save(update_fields=["cleared_at", "last_reading_at", "detail"])
            _note_cleared(alarm)
        for kind in evaluation.touched:
            alarm = evaluation.open_alarms.get(kind)
            if alarm is not None and alarm.pk is not None:
                alarm.save(update_fields=["last_reading_at", "detail"])
                _refresh_ticket(alarm)
        for alarm in evaluation.opened:
            alarm.save()
            tickets.append(open_ticket(alarm, now))
            if alarm.cleared_at is not None:
                _note_cleared(alarm)
    return tickets


# Ticket texts by alarm kind: (category, title). Titles are translated when
# the ticket is written, in the server's LANGUAGE_CODE.
def _ticket_text(alarm):
    sensor = alarm.sensor
    local_opened = timezone.localtime(alarm.opened_at)
    if alarm.kind == AlarmKind.LANE_OCCUPIED:
        minutes = round(alarm.detail.get("occupied_s", 0) / 60, 1)
        since = _as_time(alarm.detail.get("occupied_since")) or alarm.opened_at
        return Category.FIRE_LANE, _("消防通道占用告警"), _(
            "毫米波雷达 %(code)s 监测到“%(place)s”自 %(since)s 起持续占用,已达 %(minutes)s 分钟。"
            "请物业单位(%(manager)s)立即清理,消防救援机构督促。"
        ) % {"code": sensor.code, "place": sensor.place, "since": f"{timezone.localtime(since):%Y-%m-%d %H:%M:%S}",
             "minutes": minutes, "manager": sensor.property_manager or _("未登记")}
    if alarm.kind == AlarmKind.OUT_OF_BAND:
        return Category.FACILITY_FAULT, _("消防设施压力异常"), _(
            "%(type)s %(code)s(%(place)s)连续 %(count)s 次读数超出正常范围 %(low)s–%(high)s %(unit)s,"
            "最新读数 %(value)s %(unit)s。请安排维保检修。"
        ) % {"type": sensor.sensor_type.name, "code": sensor.code, "place": sensor.place,
             "count": alarm.detail.get("consecutive"), "low": alarm.detail.get("low"),
             "high": alarm.detail.get("high"), "unit": sensor.sensor_type.unit,
             "value": alarm.detail.get("last_value", alarm.detail.get("value"))}
    if alarm.kind == AlarmKind.OFFLINE:
        return Category.FACILITY_FAULT, _("物联网设备离线"), _(
            "%(type)s %(code)s(%(place)s)已超过 %(minutes)s 分钟未上报数据,请检查设备供电和网络。"
        ) % {"type": sensor.sensor_type.name, "code": sensor.code, "place": sensor.place,
             "minutes": round(alarm.detail.get("silent_s", 0) / 60, 1)}
    return Category.OTHER, _("【紧急】烟感火警"), _(
        "【紧急】烟感 %(code)s 于 %(at)s 在“%(place)s”报警,请立即核实并处置。"
    ) % {"code": sensor.code, "place": sensor.place, "at": f"{local_opened:%Y-%m-%d %H:%M:%S}"}


def _departments(alarm):
    sensor = alarm.sensor
    if alarm.kind in (AlarmKind.LANE_OCCUPIED, AlarmKind.SMOKE):
        parts = [sensor.property_manager, FIRE_DEPARTMENT]
    else:
        parts = [sensor.property_manager]
    return "、".join(part for part in parts if part)


def external_id(alarm):
    """Return the ticket number of an alarm: sensor code, kind and alarm id, unique by construction."""
    return f"{alarm.sensor.code}/{alarm.kind}/{alarm.pk}"[-64:]


def open_ticket(alarm, now):
    """Create the ticket of a newly saved alarm and hand it to dispatch after commit."""
    sensor = alarm.sensor
    category, title, text = _ticket_text(alarm)
    lat, lng = sensor.location.y, sensor.location.x
    ticket = Ticket.objects.create(
        source_system=TICKET_SOURCE_SYSTEM, external_id=external_id(alarm), source=TicketSource.IOT_ALARM,
        received_at=now, status=TicketStatus.RECEIVED, category=category, raw_type=title, description=text,
        address=sensor.address or sensor.place, location=sensor.location, orig_lng=lng, orig_lat=lat,
        orig_crs="wgs84", h3_fine=h3.api.basic_int.latlng_to_cell(lat, lng, settings.FIREGRID_H3_RES_FINE),
        h3_coarse=h3.api.basic_int.latlng_to_cell(lat, lng, settings.FIREGRID_H3_RES_COARSE),
        department=_departments(alarm),
    )
    alarm.ticket = ticket
    alarm.save(update_fields=["ticket"])
    logger.info("sensor %s raised %s alarm %s, ticket %s", sensor.code, alarm.kind, alarm.pk, ticket.external_id)
    transaction.on_commit(lambda: dispatch_alarm_ticket(ticket))
    return ticket


def _refresh_ticket(alarm):
    if alarm.ticket_id is None:
        return
    _category, _title, text = _ticket_text(alarm)
    Ticket.objects.filter(pk=alarm.ticket_id).update(description=text)


def _note_cleared(alarm):
    if alarm.ticket_id is None:
        return
    _category, _title, text = _ticket_text(alarm)
    note = _("告警已于 %(at)s 自动解除。") % {"at": f"{timezone.localtime(alarm.cleared_at):%Y-%m-%d %H:%M:%S}"}
    Ticket.objects.filter(pk=alarm.ticket_id).update(description=f"{text}\n{note}")


def dispatch_alarm_ticket(ticket):
    """Hand an alarm ticket to gridmap's dispatch when that module exists; otherwise leave it received.

    NOTE: until gridmap.dispatch.dispatch_ticket exists the ticket stays in
    status received and the department text names who should act. Dispatch
    errors are logged and never undo the stored readings.
    """
    try:
        from gridmap import dispatch
    except ImportError:
        return
    dispatch_ticket = getattr(dispatch, "dispatch_ticket", None)
    if dispatch_ticket is None:
        return
    try:
        dispatch_ticket(ticket)
    except Exception:  # noqa: BLE001 - a dispatch failure must not stop the intake
        logger.exception("dispatch of alarm ticket %s failed; it stays received", ticket.external_id)


def check_offline(now=None):
    """Open a device-offline alarm and ticket for each active sensor silent for its offline interval count.

    A sensor that never reported counts from its installation time. Returns
    the tickets opened.
    """
    now = now or timezone.now()
    tickets = []
    with transaction.atomic():
        lock_rules()
        candidates = (Sensor.objects.select_related("sensor_type").select_for_update(of=("self",))
                      .filter(active=True).exclude(status=SensorStatus.OFFLINE).order_by("id"))
        for sensor in candidates:
            intervals = int(sensor.effective_thresholds().get("offline_intervals", DEFAULTS["offline_intervals"]))
            since = sensor.last_seen_at or sensor.installed_at
            silent = now - since
            if silent <= timedelta(seconds=intervals * sensor.interval_s):
                continue
            sensor.status = SensorStatus.OFFLINE
            sensor.save(update_fields=["status"])
            if Alarm.objects.filter(sensor=sensor, kind=AlarmKind.OFFLINE, cleared_at__isnull=True).exists():
                continue
            alarm = Alarm.objects.create(sensor=sensor, kind=AlarmKind.OFFLINE, severity=AlarmSeverity.NORMAL,
                                         opened_at=now, last_reading_at=sensor.last_device_time,
                                         detail={"silent_s": silent.total_seconds(), "intervals": intervals})
            tickets.append(open_ticket(alarm, now))
    return tickets


def is_offline(sensor, now):
    """Return True when ``sensor`` has been silent longer than its offline interval count."""
    intervals = int(sensor.effective_thresholds().get("offline_intervals", DEFAULTS["offline_intervals"]))
    since = sensor.last_seen_at or sensor.installed_at
    return now - since > timedelta(seconds=intervals * sensor.interval_s)
