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

from django.conf import settings
from django.db import IntegrityError, connection, transaction
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
# Rejections logged one by one per batch; the rest are counted in one line.
MAX_LOGGED_REJECTIONS = 20


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

    def get(self, code):
        if self._loaded_at is not None and time.monotonic() - self._loaded_at > self.max_age_s:
            self.reload()
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
    if not isinstance(obj, dict):
        raise PayloadError("a reading must be a JSON object", message.topic_sensor)
    code = obj.get("sensor", message.topic_sensor)
    if not isinstance(code, str) or not code:
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
    if isinstance(seq, bool) or not isinstance(seq, int) or not 0 <= seq <= SEQ_MAX:
        raise PayloadError(f"seq must be an integer from 0 to 2^63-1, got {seq!r}"[:200], code)
    device_time = _parse_device_time(obj.get("device_time"), code)
    values = obj.get("values")
    _check_values(values, info)

    time_replaced = device_time > max_future or device_time < info.installed_at
    if time_replaced:
        device_time = received_at
    return ParsedReading(info.id, code, seq, device_time, received_at, values, time_replaced, message.retained)


def split_payload(payload, topic_sensor=""):
    """Decode one payload into a list of reading objects, or raise PayloadError for the whole payload."""
    try:
        document = json.loads(payload)
    except (UnicodeDecodeError, ValueError) as error:
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


# Raw SQL because COPY into a session-local staging table, then one INSERT
# ... ON CONFLICT DO NOTHING RETURNING, stores a whole batch, drops
# redeliveries and reports the new rows in three round trips; bulk_create
# can neither skip conflicts and report them, nor use COPY.
STAGE_SQL = """
    CREATE TEMP TABLE IF NOT EXISTS iot_reading_stage (
        sensor_id bigint, seq bigint, device_time timestamptz, received_at timestamptz,
        "values" jsonb, time_replaced boolean, retained boolean
    ) ON COMMIT DELETE ROWS
"""
COPY_SQL = ('COPY iot_reading_stage (sensor_id, seq, device_time, received_at, "values", time_replaced, retained) '
            "FROM STDIN")
INSERT_READINGS_SQL = """
    INSERT INTO iot_reading (sensor_id, seq, device_time, received_at, "values", time_replaced, retained)
    SELECT sensor_id, seq, device_time, received_at, "values", time_replaced, retained FROM iot_reading_stage
    ON CONFLICT (sensor_id, seq) DO NOTHING
    RETURNING sensor_id, seq
"""


def _insert_readings(readings):
    dumps = json.JSONEncoder(ensure_ascii=False, allow_nan=False).encode
    with raw_cursor() as cursor:
        # Django's foreign keys are deferred to commit; checking them at the
        # insert lets ingest() catch a stale sensor id and retry the batch.
        cursor.execute("SET CONSTRAINTS ALL IMMEDIATE")
        cursor.execute(STAGE_SQL)
        with cursor.copy(COPY_SQL) as copy:
            for r in readings:
                copy.write_row((r.sensor_id, r.seq, r.device_time, r.received_at, dumps(r.values), r.time_replaced,
                                r.retained))
        cursor.execute(INSERT_READINGS_SQL)
        new_keys = set(cursor.fetchall())
        # ON COMMIT empties the stage too, but inside an outer transaction
        # (tests, or a caller's atomic block) the next batch must not see these rows.
        cursor.execute("DELETE FROM iot_reading_stage")
        return new_keys


def ingest(messages, directory, channel="mqtt", now=None):
    """Store the readings of ``messages``; see :func:`_ingest_once`.

    A sensor deleted since the directory was loaded makes the insert fail
    on its foreign key. The directory is then reloaded and the batch tried
    once more, so that its readings go to the dead letters instead.
    """
    try:
        return _ingest_once(messages, directory, channel, now)
    except IntegrityError:
        logger.warning("a sensor of this batch was deleted or replaced; reloading sensors and retrying")
        directory.reload()
        return _ingest_once(messages, directory, channel, now)


def _ingest_once(messages, directory, channel="mqtt", now=None):
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
    now = now or timezone.now()
    max_future = now + timedelta(seconds=settings.FIREGRID_IOT_CLOCK_SKEW_S)
    result = IngestResult(messages=len(messages))
    parsed = []
    dead_letters = []

    for message in messages:
        received_at = message.received_at or now
        try:
            objects = split_payload(message.payload, message.topic_sensor)
        except PayloadError as error:
            dead_letters.append((message, error.sensor_code, str(error), message.payload))
            continue
        for obj in objects:
            try:
                parsed.append(parse_reading(obj, message, directory, received_at, max_future))
            except PayloadError as error:
                raw = json.dumps(obj, ensure_ascii=False) if len(objects) > 1 else message.payload
                dead_letters.append((message, error.sensor_code, str(error), raw))

    with transaction.atomic():
        if dead_letters:
            DeadLetter.objects.bulk_create([
                DeadLetter(channel=channel, topic=message.topic[:300], sensor_code=code[:64], reason=reason[:300],
                           payload=_payload_text(raw))
                for message, code, reason, raw in dead_letters
            ])
        new_keys = _insert_readings(parsed) if parsed else set()
        new_readings = [r for r in parsed if (r.sensor_id, r.seq) in new_keys]
        # Two copies of one (sensor, seq) in the same batch both count as new
        # above; keep the first so that the rules see each reading once.
        seen = set()
        unique_new = []
        for reading in new_readings:
            key = (reading.sensor_id, reading.seq)
            if key not in seen:
                seen.add(key)
                unique_new.append(reading)
        result.tickets_opened = rules.apply_readings(unique_new, now=now)

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
