"""Simulated sensors and their reading streams, for demos and load tests.

Streams are seeded and follow simple physical patterns: lanes are blocked
in Poisson-arriving spells with log-normal durations (a few pass five
minutes), hydrant pressure wanders around 0.35 MPa with rare drops below
the band, extinguishers leak slowly, and smoke detectors replay the real
multi-sensor readings of a public smoke-detection data set row by row.
"""
import csv
import json
import math
import random
import time
from dataclasses import dataclass
from datetime import timedelta
from pathlib import Path

import paho.mqtt.client as mqtt
from django.contrib.gis.geos import Point
from django.utils import timezone

from iot.listener import parse_broker_url
from iot.models import Sensor, SensorType

SIMULATED_PREFIX = "SIM-"
# Centre of the simulated sensors: Xiangzhou's county town, Guangxi.
CENTER_LAT, CENTER_LNG = 23.9600, 109.6840
TYPE_PREFIXES = {
    "lane_radar": "LR",
    "hydrant_pressure": "HP",
    "extinguisher_pressure": "EP",
    "smoke_detector": "SD",
}
PLACES = {
    "lane_radar": "商业综合体{n}号消防通道",
    "hydrant_pressure": "{n}号室外消火栓",
    "extinguisher_pressure": "{n}号楼灭火器箱",
    "smoke_detector": "{n}号出租屋烟感",
}


def ensure_sensors(per_type, interval_s=30, seed=7):
    """Create ``per_type`` simulated sensors of each built-in type unless they exist; return them all."""
    rng = random.Random(seed)
    installed_at = timezone.now() - timedelta(days=30)
    for type_code, prefix in TYPE_PREFIXES.items():
        sensor_type = SensorType.objects.get(code=type_code)
        for n in range(1, per_type + 1):
            code = f"{SIMULATED_PREFIX}{prefix}-{n:04d}"
            Sensor.objects.get_or_create(code=code, defaults={
                "sensor_type": sensor_type,
                "location": Point(CENTER_LNG + rng.uniform(-0.02, 0.02), CENTER_LAT + rng.uniform(-0.015, 0.015),
                                  srid=4326),
                "place": PLACES[type_code].format(n=n),
                "property_manager": "模拟物业服务有限公司",
                "installed_at": installed_at,
                "interval_s": interval_s,
            })
    return list(Sensor.objects.filter(code__startswith=SIMULATED_PREFIX).select_related("sensor_type"))


def read_smoke_rows(path):
    """Return the smoke data set's rows as value dicts, in file order."""
    rows = []
    with open(path, newline="", encoding="utf-8") as handle:
        for row in csv.DictReader(handle):
            rows.append({
                "temperature_c": float(row["Temperature[C]"]),
                "humidity_pct": float(row["Humidity[%]"]),
                "eco2_ppm": int(float(row["eCO2[ppm]"])),
                "smoke": row["Fire Alarm"].strip() == "1",
            })
    return rows


@dataclass
class DeviceModel:
    """Per-sensor stream state."""

    sensor_code: str
    type_code: str
    interval_s: int
    seq: int = 0
    value: float = 0.0
    busy_until: float = -1.0
    replay_index: int = 0


class StreamGenerator:
    """Produce readings of every simulated device for each tick of simulated time."""

    def __init__(self, sensors, seed=7, smoke_rows=None, start=None):
        self.rng = random.Random(seed)
        self.start = start or timezone.now()
        self.smoke_rows = smoke_rows or []
        self.devices = []
        for sensor in sensors:
            device = DeviceModel(sensor.code, sensor.sensor_type.code, sensor.interval_s)
            device.seq = int(time.time() * 10)  # fresh sequence space per run
            if device.type_code == "hydrant_pressure":
                device.value = 0.35
            elif device.type_code == "extinguisher_pressure":
                device.value = 1.25
            if device.type_code == "smoke_detector" and self.smoke_rows:
                device.replay_index = self.rng.randrange(len(self.smoke_rows))
            self.devices.append(device)

    def _values(self, device, t_s):
        rng = self.rng
        if device.type_code == "lane_radar":
            if t_s >= device.busy_until and rng.random() < device.interval_s / 3600:
                # About one blocking spell an hour; the median lasts 3 minutes.
                device.busy_until = t_s + rng.lognormvariate(math.log(180), 0.8)
            return {"occupied": t_s < device.busy_until, "range_m": round(rng.uniform(2, 30), 1)}
        if device.type_code == "hydrant_pressure":
            if rng.random() < device.interval_s / (6 * 3600):
                device.value = 0.08  # a main valve closed or a leak
            device.value += (0.35 - device.value) * 0.02 + rng.gauss(0, 0.005)
            return {"pressure_mpa": round(device.value, 3)}
        if device.type_code == "extinguisher_pressure":
            device.value -= rng.uniform(0, 2e-5) * device.interval_s / 30
            return {"pressure_mpa": round(device.value + rng.gauss(0, 0.003), 3)}
        if device.type_code == "smoke_detector":
            if self.smoke_rows:
                row = self.smoke_rows[device.replay_index % len(self.smoke_rows)]
                device.replay_index += 1
                return dict(row)
            return {"smoke": False}
        return {"value": 0}

    def readings_at(self, t_s):
        """Return the readings due at simulated second ``t_s`` as payload dicts."""
        due = []
        for device in self.devices:
            if int(t_s) % device.interval_s:
                continue
            device.seq += 1
            due.append({
                "sensor": device.sensor_code,
                "device_time": (self.start + timedelta(seconds=t_s)).isoformat(),
                "seq": device.seq,
                "values": self._values(device, t_s),
            })
        return due


def connect_publisher(url, client_id=""):
    host, port = parse_broker_url(url)
    client = mqtt.Client(mqtt.CallbackAPIVersion.VERSION2, client_id=client_id, protocol=mqtt.MQTTv311)
    client.max_inflight_messages_set(1000)
    client.max_queued_messages_set(0)
    client.connect(host, port, keepalive=30)
    client.loop_start()
    return client


def publish_readings(client, prefix, readings, batch_size=1, gateway="sim-gateway", qos=1):
    """Publish readings one per message on sensor topics, or ``batch_size`` per message on the gateway topic."""
    infos = []
    if batch_size <= 1:
        for reading in readings:
            infos.append(client.publish(f"{prefix}/sensors/{reading['sensor']}/reading",
                                        json.dumps(reading, ensure_ascii=False), qos=qos))
    else:
        for start in range(0, len(readings), batch_size):
            chunk = readings[start:start + batch_size]
            infos.append(client.publish(f"{prefix}/gateways/{gateway}/batch",
                                        json.dumps({"readings": chunk}, ensure_ascii=False), qos=qos))
    return infos


def run_simulation(url, prefix, sensors, duration_s, speed=1.0, batch_size=1, seed=7, smoke_rows=None,
                   log=None):
    """Publish ``duration_s`` simulated seconds of readings, ``speed`` simulated seconds per real second.

    Returns the number of readings published. All are acknowledged by the
    broker (QoS 1) before it returns.
    """
    generator = StreamGenerator(sensors, seed=seed, smoke_rows=smoke_rows,
                                start=timezone.now() - timedelta(seconds=duration_s) if speed > 1 else None)
    client = connect_publisher(url)
    published = 0
    started = time.monotonic()
    last = None
    try:
        for t_s in range(int(duration_s)):
            readings = generator.readings_at(t_s)
            if readings:
                last = publish_readings(client, prefix, readings, batch_size=batch_size)
                published += len(readings)
            delay = started + (t_s + 1) / speed - time.monotonic()
            if delay > 0:
                time.sleep(delay)
            if log and t_s and t_s % 3600 == 0:
                log(f"{t_s // 3600} h simulated, {published} readings published")
        for info in last or []:
            info.wait_for_publish(timeout=30)
    finally:
        client.loop_stop()
        client.disconnect()
    return published


def smoke_csv_default():
    from django.conf import settings

    return Path(settings.BASE_DIR).parent / "shared" / "data" / "iot" / "smoke_detection.csv"
