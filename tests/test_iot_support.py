"""Factories shared by the IoT tests: sensors and reading payloads."""
import importlib
import json
from datetime import datetime, timedelta, timezone as dt_timezone

from django.apps import apps as django_apps
from django.contrib.gis.geos import Point

from iot.ingest import Message
from iot.models import Sensor, SensorType

# A fixed installation time; readings in the tests come after it.
INSTALLED_AT = datetime(2026, 11, 1, 0, 0, tzinfo=dt_timezone.utc)
T0 = datetime(2026, 12, 1, 8, 0, tzinfo=dt_timezone.utc)


def ensure_sensor_types():
    """Create the built-in sensor types, which a transactional test's flush removes."""
    if not SensorType.objects.exists():
        importlib.import_module("iot.migrations.0002_sensor_types").create_types(django_apps, None)


def make_sensor(code, type_code, interval_s=30, thresholds=None, **fields):
    ensure_sensor_types()
    defaults = {
        "sensor_type": SensorType.objects.get(code=type_code),
        "location": Point(109.684, 23.960, srid=4326),
        "place": f"{code} 守护场所",
        "property_manager": "测试物业",
        "installed_at": INSTALLED_AT,
        "interval_s": interval_s,
        "thresholds": thresholds or {},
    }
    defaults.update(fields)
    return Sensor.objects.create(code=code, **defaults)


def reading(code, seq, at, **values):
    device_time = at.isoformat() if isinstance(at, datetime) else at
    return {"sensor": code, "seq": seq, "device_time": device_time, "values": values}


def message(obj, retained=False, topic_sensor="", received_at=None):
    payload = obj if isinstance(obj, bytes) else json.dumps(obj).encode()
    return Message(payload=payload, retained=retained, topic_sensor=topic_sensor, received_at=received_at)


def series(code, start, step_s, values, key, first_seq=1):
    """Return reading dicts for ``values`` of ``key``, one every ``step_s`` seconds from ``start``."""
    return [reading(code, first_seq + i, start + timedelta(seconds=step_s * i), **{key: value})
            for i, value in enumerate(values)]
