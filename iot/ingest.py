"""Parse, check and store sensor readings in batches, then run the alarm rules.

Both the MQTT listener and the gateways' HTTP endpoint hand raw payloads to
:func:`ingest`. One call is one database transaction: the readings, the dead
letters and the alarm changes they cause are committed together, so a
caller may acknowledge the messages once it returns.

Payload (UTF-8 JSON), one reading::

    {"sensor": "LR-0001", "device_time": "2026-12-04T21:00:00+08:00",
     "seq": 1234, "values": {"occupied": true}}

or a batch, as gateways send it: ``{"readings": [reading, ...]}`` (a bare
JSON array is accepted too). ``device_time`` is ISO 8601 (a time without
offset is read in TIME_ZONE) or Unix seconds. ``seq`` is an integer that
the device increments per reading; a repeated (sensor, seq) pair is a
redelivery and is dropped.
"""
import json
import logging
import math
import time
from dataclasses import dataclass, field
from datetime import datetime, timedelta, timezone as dt_timezone

import orjson
from django.conf import settings
from django.db import IntegrityError, transaction
from django.utils import timezone

from iot import rules
from iot.db import raw_cursor
from iot.exceptions import PayloadError
from iot.models import DeadLetter, RuleKind, Sensor

logger = logging.getLogger(__name__)

# Stored dead-letter payloads are cut to this many characters.
DEAD_LETTER_MAX_CHARS = 10_000
MAX_READINGS_PER_PAYLOAD = 10_000
SEQ_MAX = 2**63 - 1
# Unix seconds past this (year 9999) are out of datetime's range.
UNIX_SECONDS_MAX = 253_402_300_800
# Rejections logged one by one per batch; the rest are counted in one line.
MAX_LOGGED_REJECTIONS = 20
# NULL in COPY's text format.
COPY_NULL = "\\N"


@dataclass(frozen=True)
class Message:
    """One raw payload as it arrived, with where it came from."""

    payload: bytes
    topic: str = ""
    retained: bool = False
    received_at: datetime = None
    # Sensor code taken from the MQTT topic, used when the payload names none.
    topic_sensor: str = ""
    # Set for the HTTP endpoint: readings of sensors bound to another gateway are rejected.
    gateway_id: int = None


@dataclass(slots=True)
class ParsedReading:
    sensor_id: int
    sensor_code: str
    seq: int
    device_time: datetime
    received_at: datetime
    values: dict
    time_replaced: bool
    retained: bool
    # The device time as sent, when it was replaced by the receipt time.
    sent_device_time: datetime = None


@dataclass
class IngestResult:
    """Counts of one :func:`ingest` call."""

    messages: int = 0
    readings_stored: int = 0
    duplicates: int = 0
    rejected: int = 0
    time_replaced: int = 0
    # (sensor code, reason) of each rejected payload or reading, in order.
    rejections: list = field(default_factory=list)
    tickets_opened: list = field(default_factory=list)


@dataclass(frozen=True)
class SensorInfo:
    id: int
    code: str
    installed_at: datetime
    gateway_id: int
    active: bool
    rule_kind: str
    value_key: str


class SensorDirectory:
    """Sensor codes to ids and the facts the checks need.

    The directory is reloaded when it is older than ``max_age_s``, so a
    sensor disabled or moved to another gateway is seen within that time,
    and when an unknown code arrives, but then at most once per
    ``reload_interval_s``, so a stream of unknown codes costs one query per
    interval rather than one per reading.
    """

    def __init__(self, reload_interval_s=5.0, max_age_s=30.0):
        self.reload_interval_s = reload_interval_s
        self.max_age_s = max_age_s
        self._by_code = {}
        self._loaded_at = None

    def reload(self):
        rows = Sensor.objects.values_list(
            "id", "code", "installed_at", "gateway_id", "active", "sensor_type__rule_kind", "sensor_type__value_key"
        )
        self._by_code = {row[1]: SensorInfo(*row) for row in rows}
        self._loaded_at = time.monotonic()

    def refresh(self):
        """Reload when the directory is older than ``max_age_s``; call once per batch."""
        if self._loaded_at is not None and time.monotonic() - self._loaded_at > self.max_age_s:
            self.reload()

    def get(self, code):
        info = self._by_code.get(code)
        if info is None:
            stale = self._loaded_at is None or time.monotonic() - self._loaded_at >= self.reload_interval_s
            if stale:
                self.reload()
                info = self._by_code.get(code)
        return info


def _parse_device_time(raw, sensor_code):
    if isinstance(raw, bool):
        raise PayloadError("device_time must be an ISO 8601 string or Unix seconds, got a boolean", sensor_code)
    if isinstance(raw, (int, float)):
        if not math.isfinite(raw):
            raise PayloadError(f"device_time {raw!r} is not a finite number", sensor_code)
        try:
            return datetime.fromtimestamp(raw, tz=dt_timezone.utc)
        except (OverflowError, OSError, ValueError):
            raise PayloadError(f"device_time {raw!r} is out of range for Unix seconds", sensor_code) from None
    if isinstance(raw, str):
        try:
            parsed = datetime.fromisoformat(raw)
        except ValueError:
            raise PayloadError(f"device_time {raw[:40]!r} is not ISO 8601", sensor_code) from None
        if parsed.tzinfo is None:
            parsed = timezone.make_aware(parsed, timezone.get_default_timezone())
        return parsed
    raise PayloadError("device_time is missing; send ISO 8601 or Unix seconds", sensor_code)


def _check_values(values, info):
    if not isinstance(values, dict) or not values:
        raise PayloadError("values must be a non-empty JSON object", info.code)
    key = info.value_key
    if info.rule_kind == RuleKind.NONE or not key:
        return
    if key not in values:
        raise PayloadError(f"values lacks {key!r}, which the {info.rule_kind} rule reads", info.code)
    value = values[key]
    if info.rule_kind == RuleKind.BAND:
        if isinstance(value, bool) or not isinstance(value, (int, float)) or not math.isfinite(value):
            raise PayloadError(f"values.{key} must be a finite number, got {value!r}"[:200], info.code)
    elif not isinstance(value, (bool, int)):
        raise PayloadError(f"values.{key} must be true/false or 1/0, got {value!r}"[:200], info.code)


def parse_reading(obj, message, directory, received_at, max_future):
    """Check one reading object and return a :class:`ParsedReading`, or raise PayloadError."""
    if obj.__class__ is not dict:
        raise PayloadError("a reading must be a JSON object", message.topic_sensor)
    code = obj.get("sensor", message.topic_sensor)
    if code.__class__ is not str or not code:
        raise PayloadError("sensor is missing; send the sensor code as a string", message.topic_sensor)
    code = code[:64]
    if message.topic_sensor and code != message.topic_sensor:
        raise PayloadError(f"sensor {code!r} differs from the topic's {message.topic_sensor!r}", code)
    info = directory.get(code)
    if info is None:
        raise PayloadError(f"sensor {code!r} is not registered; add it in the admin first", code)
    if not info.active:
        raise PayloadError(f"sensor {code!r} is disabled", code)
    if message.gateway_id is not None and info.gateway_id is not None and info.gateway_id != message.gateway_id:
        raise PayloadError(f"sensor {code!r} belongs to another gateway", code)

    seq = obj.get("seq")
    # The class test (not isinstance) also rejects booleans.
    if seq.__class__ is not int or not 0 <= seq <= SEQ_MAX:
        raise PayloadError(f"seq must be an integer from 0 to 2^63-1, got {seq!r}"[:200], code)
    raw_time = obj.get("device_time")
    if raw_time.__class__ is float and 0 <= raw_time < UNIX_SECONDS_MAX:
        # The common case, kept out of the checks of _parse_device_time.
        device_time = datetime.fromtimestamp(raw_time, tz=dt_timezone.utc)
    else:
        device_time = _parse_device_time(raw_time, code)
    values = obj.get("values")
    _check_values(values, info)

    if device_time > max_future or device_time < info.installed_at:
        return ParsedReading(info.id, code, seq, received_at, received_at, values, True, message.retained,
                             device_time)
    return ParsedReading(info.id, code, seq, device_time, received_at, values, False, message.retained)


def split_payload(payload, topic_sensor=""):
    """Decode one payload into a list of reading objects, or raise PayloadError for the whole payload."""
    try:
        document = orjson.loads(payload)
    except orjson.JSONDecodeError as error:
        raise PayloadError(f"payload is not UTF-8 JSON: {error}"[:200], topic_sensor) from None
    if isinstance(document, dict) and "readings" in document:
        document = document["readings"]
        if not isinstance(document, list):
            raise PayloadError("readings must be a JSON array", topic_sensor)
    if isinstance(document, dict):
        return [document]
    if isinstance(document, list):
        if not document:
            raise PayloadError("the batch contains no readings", topic_sensor)
        if len(document) > MAX_READINGS_PER_PAYLOAD:
            raise PayloadError(f"the batch contains {len(document)} readings; send at most "
                               f"{MAX_READINGS_PER_PAYLOAD} per payload", topic_sensor)
        return document
    raise PayloadError("payload must be a JSON object or array", topic_sensor)


def _payload_text(payload):
    if isinstance(payload, bytes):
        payload = payload.decode("utf-8", errors="replace")
    return payload[:DEAD_LETTER_MAX_CHARS].replace("\x00", "\ufffd")


def _copy_line(reading, received_iso):
    """Return one line of COPY text for iot_reading or its stage table; raise PayloadError for a NUL.

    Hand-built because adapting each field through psycopg's write_row costs
    more than parsing the reading. The fields need no escaping except the
    JSON: orjson writes control characters as escapes, so only its
    backslashes are doubled for COPY's text format.
    """
    values = orjson.dumps(reading.values).decode()
    if "\\" in values:
        if "\\u0000" in values:
            raise PayloadError("values contain \\u0000, which PostgreSQL cannot store in JSON; remove NUL characters",
                               reading.sensor_code)
        values = values.replace("\\", "\\\\")
    return (f"{reading.sensor_id}\t{reading.seq}\t{reading.device_time.isoformat()}\t{received_iso}\t{values}\t"
            f"{'t' if reading.time_replaced else 'f'}\t{'t' if reading.retained else 'f'}\t"
            f"{reading.sent_device_time.isoformat() if reading.sent_device_time else COPY_NULL}\n")


@dataclass
class PreparedBatch:
    """Messages parsed and checked, ready for :func:`store`; preparing one needs no transaction."""

    messages: list
    now: datetime
    readings: list  # ParsedReading
    # (message, sensor code, reason, raw payload or reading) per rejection.
    dead_letters: list
    copy_text: str


def prepare(messages, directory, now=None):
    """Parse and check ``messages`` against ``directory``; returns a :class:`PreparedBatch`.

    Only a directory reload touches the database, so a listener may prepare
    the next batch in one thread while another stores the previous one.
    """
    now = now or timezone.now()
    max_future = now + timedelta(seconds=settings.FIREGRID_IOT_CLOCK_SKEW_S)
    directory.refresh()
    parsed = []
    lines = []
    dead_letters = []
    for message in messages:
        received_at = message.received_at or now
        received_iso = received_at.isoformat()
        try:
            objects = split_payload(message.payload, message.topic_sensor)
        except PayloadError as error:
            dead_letters.append((message, error.sensor_code, str(error), message.payload))
            continue
        for obj in objects:
            try:
                reading = parse_reading(obj, message, directory, received_at, max_future)
                line = _copy_line(reading, received_iso)
            except PayloadError as error:
                raw = json.dumps(obj, ensure_ascii=False) if len(objects) > 1 else message.payload
                dead_letters.append((message, error.sensor_code, str(error), raw))
                continue
            parsed.append(reading)
            lines.append(line)
    return PreparedBatch(messages=messages, now=now, readings=parsed, dead_letters=dead_letters,
                         copy_text="".join(lines))


# Raw SQL because bulk_create can neither use COPY, the fastest way in, nor
# skip existing keys and report the new rows, which the stage table with
# INSERT ... ON CONFLICT DO NOTHING RETURNING does in three round trips.
READING_COLUMNS = ('sensor_id, seq, device_time, received_at, "values", time_replaced, retained, '
                   "sent_device_time")
COPY_DIRECT_SQL = f"COPY iot_reading ({READING_COLUMNS}) FROM STDIN"
STAGE_SQL = """
    CREATE TEMP TABLE IF NOT EXISTS iot_reading_stage (
        sensor_id bigint, seq bigint, device_time timestamptz, received_at timestamptz,
        "values" jsonb, time_replaced boolean, retained boolean, sent_device_time timestamptz
    ) ON COMMIT DELETE ROWS
"""
COPY_STAGE_SQL = f"COPY iot_reading_stage ({READING_COLUMNS}) FROM STDIN"
INSERT_READINGS_SQL = f"""
    INSERT INTO iot_reading ({READING_COLUMNS})
    SELECT {READING_COLUMNS} FROM iot_reading_stage
    ON CONFLICT (sensor_id, seq) DO NOTHING
    RETURNING sensor_id, seq
"""
# Characters handed to one COPY write, which keeps psycopg's buffer small.
COPY_CHUNK_CHARS = 1 << 20


class StaleSensor(Exception):
    """A sensor of the batch was deleted since the directory was loaded."""


def _copy(cursor, sql, copy_text):
    with cursor.copy(sql) as copy:
        for start in range(0, len(copy_text), COPY_CHUNK_CHARS):
            copy.write(copy_text[start:start + COPY_CHUNK_CHARS])


def _check_sensors(readings):
    """Raise StaleSensor when a sensor of ``readings`` no longer exists; call under the rules lock."""
    sensor_ids = sorted({r.sensor_id for r in readings})
    with raw_cursor() as cursor:
        cursor.execute("SELECT count(*) FROM iot_sensor WHERE id = ANY(%s)", [sensor_ids], binary=True)
        if cursor.fetchone()[0] != len(sensor_ids):
            raise StaleSensor()


def _insert_readings(readings, copy_text):
    """Store ``readings`` and return those that were new, each (sensor, seq) once.

    Redeliveries are rare outside restarts, so the whole batch is first
    copied straight into iot_reading inside a savepoint. Only when a key
    already exists, or repeats inside the batch, is it copied again through
    the stage table, which drops the repeats.
    """
    try:
        with transaction.atomic():
            with raw_cursor() as cursor:
                _copy(cursor, COPY_DIRECT_SQL, copy_text)
        return readings
    except IntegrityError:
        pass
    with raw_cursor() as cursor:
        cursor.execute(STAGE_SQL)
        _copy(cursor, COPY_STAGE_SQL, copy_text)
        cursor.execute(INSERT_READINGS_SQL)
        new_keys = set(cursor.fetchall())
        # ON COMMIT empties the stage too, but inside an outer transaction
        # (tests, or a caller's atomic block) the next batch must not see these rows.
        cursor.execute("DELETE FROM iot_reading_stage")
    # RETURNING names a key once even when the batch repeats it. Only the
    # first copy is kept, so the rules see each reading once.
    new = []
    for reading in readings:
        key = (reading.sensor_id, reading.seq)
        if key in new_keys:
            new_keys.discard(key)
            new.append(reading)
    return new


def ingest(messages, directory, channel="mqtt", now=None):
    """Store the readings of ``messages`` in one transaction and run the rules on the new ones.

    Parameters
    ----------
    messages : list of Message
    directory : SensorDirectory
    channel : str
        ``"mqtt"`` or ``"http"``, recorded on dead letters.
    now : datetime, optional
        Receipt time for messages without one; the current time by default.

    Returns
    -------
    IngestResult
        Rejected payloads and readings are in the dead-letter table and
        counted; no input raises.
    """
    return store(prepare(messages, directory, now), directory, channel)


def store(prepared, directory, channel="mqtt"):
    """Write a :class:`PreparedBatch` in one transaction; see :func:`ingest`.

    When a sensor of the batch was deleted since the directory was loaded,
    the directory is reloaded and the batch prepared and stored once more,
    so that those readings go to the dead letters instead.
    """
    try:
        return _store_once(prepared, channel)
    except StaleSensor:
        logger.warning("a sensor of this batch was deleted or replaced; reloading sensors and retrying")
        directory.reload()
        return _store_once(prepare(prepared.messages, directory, prepared.now), channel)


def _store_once(prepared, channel):
    result = IngestResult(messages=len(prepared.messages))
    parsed = prepared.readings
    dead_letters = prepared.dead_letters
    with transaction.atomic():
        if parsed:
            # The lock first: a sensor deletion takes it too, so the check
            # below stays true until this transaction commits.
            rules.lock_rules()
            _check_sensors(parsed)
        if dead_letters:
            DeadLetter.objects.bulk_create([
                DeadLetter(channel=channel, topic=message.topic[:300], sensor_code=code[:64], reason=reason[:300],
                           payload=_payload_text(raw))
                for message, code, reason, raw in dead_letters
            ])
        unique_new = _insert_readings(parsed, prepared.copy_text) if parsed else []
        result.tickets_opened = rules.apply_readings(unique_new, now=prepared.now)

    result.readings_stored = len(unique_new)
    result.duplicates = len(parsed) - len(unique_new)
    result.time_replaced = sum(1 for r in unique_new if r.time_replaced)
    result.rejected = len(dead_letters)
    result.rejections = [(code, reason) for _message, code, reason, _raw in dead_letters]
    for _message, code, reason, _raw in dead_letters[:MAX_LOGGED_REJECTIONS]:
        logger.warning("rejected %s reading of sensor %s: %s", channel, code or "?", reason)
    if len(dead_letters) > MAX_LOGGED_REJECTIONS:
        logger.warning("rejected %d more %s readings in this batch; their reasons are in the dead-letter table",
                       len(dead_letters) - MAX_LOGGED_REJECTIONS, channel)
    return result
