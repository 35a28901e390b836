"""The MQTT listener against a real Mosquitto of its own: storing, bad input, restarts."""
import json
import os
import signal
import subprocess
import sys
import threading
import time
import uuid
from datetime import timedelta

import paho.mqtt.client as mqtt
import pytest
from django.db import connection
from django.utils import timezone

from iot.broker import PrivateBroker
from iot import listener as listener_module
from iot.listener import Listener, sensor_from_topic
from iot.models import Alarm, DeadLetter, Reading
from tests.conftest import REPO_DIR
from tests.test_iot_support import make_sensor, reading

pytestmark = pytest.mark.django_db(transaction=True)


@pytest.fixture(scope="module")
def broker(tmp_path_factory):
    private = PrivateBroker(tmp_path_factory.mktemp("mosquitto")).start()
    yield private
    private.stop()


def wait_for(condition, timeout_s, message):
    deadline = time.monotonic() + timeout_s
    while time.monotonic() < deadline:
        if condition():
            return
        time.sleep(0.1)
    pytest.fail(f"timed out after {timeout_s} s waiting for {message}")


def publisher(url_port, client_id=""):
    client = mqtt.Client(mqtt.CallbackAPIVersion.VERSION2, client_id=client_id)
    client.max_inflight_messages_set(100)
    client.max_queued_messages_set(0)
    client.connect("127.0.0.1", url_port)
    client.loop_start()
    return client


def test_topic_scheme():
    assert sensor_from_topic("firegrid/v1", "firegrid/v1/sensors/LR-0001/reading") == "LR-0001"
    assert sensor_from_topic("firegrid/v1", "firegrid/v1/gateways/gw-1/batch") == ""
    assert sensor_from_topic("firegrid/v1", "other/v1/sensors/LR-0001/reading") == ""


def test_listener_stores_and_survives_bad_input(broker):
    make_sensor("SD-1", "smoke_detector")
    make_sensor("HP-1", "hydrant_pressure")
    prefix = f"test/{uuid.uuid4().hex[:8]}"
    now = timezone.now()
    client = publisher(broker.port)
    # A retained smoke alarm published before the listener subscribes, so
    # the broker delivers it with the retain flag: stored, but no alarm.
    client.publish(f"{prefix}/sensors/SD-1/reading", json.dumps(reading("SD-1", 1, now, smoke=True)),
                   qos=1, retain=True).wait_for_publish(5)
    listener = Listener(broker.url, client_id=f"test-{uuid.uuid4().hex[:8]}", prefix=prefix, batch_wait_ms=10,
                        offline_check_s=0)
    thread = threading.Thread(target=listener.run, daemon=True)
    thread.start()
    try:
        assert listener.connected.wait(10), "listener did not connect"
        time.sleep(0.3)  # the SUBSCRIBE must reach the broker before the next PUBLISH
        infos = [
            client.publish(f"{prefix}/sensors/HP-1/reading", b"\x00not json", qos=1),
            client.publish(f"{prefix}/sensors/HP-1/reading", json.dumps(reading("HP-1", 1, now, flow=3)), qos=1),
            client.publish(f"{prefix}/gateways/gw-1/batch", json.dumps({"readings": [
                reading("HP-1", 2, now, pressure_mpa=0.35), reading("HP-1", 3, now, pressure_mpa=0.36)]}), qos=1),
        ]
        for info in infos:
            info.wait_for_publish(5)
        wait_for(lambda: Reading.objects.count() == 3 and DeadLetter.objects.count() == 2, 10,
                 "3 readings and 2 dead letters")
        assert thread.is_alive()
        assert Alarm.objects.count() == 0
        assert Reading.objects.get(seq=1).retained is True
        assert sorted(DeadLetter.objects.values_list("sensor_code", flat=True)) == ["HP-1", "HP-1"]

        client.publish(f"{prefix}/sensors/SD-1/reading",
                       json.dumps(reading("SD-1", 2, now + timedelta(seconds=1), smoke=True)), qos=1)
        wait_for(lambda: Alarm.objects.filter(ticket__isnull=False).count() == 1, 10, "the smoke ticket")
        # Clear the retained message so that it stays out of other tests.
        client.publish(f"{prefix}/sensors/SD-1/reading", b"", qos=1, retain=True).wait_for_publish(5)
        client.loop_stop()
        client.disconnect()
        wait_for(lambda: listener.stats.messages == 6, 10, "the empty retained message to be counted")
        assert listener.stats.readings_stored == 4
        assert listener.stats.rejected == 3
    finally:
        listener.stop()
        thread.join(10)
    assert not thread.is_alive()


def start_listener(broker, client_id, prefix, log_path):
    env = dict(os.environ)
    settings = connection.settings_dict
    env["DATABASE_URL"] = (f"postgis://{settings['USER']}@{settings['HOST']}:{settings['PORT']}/"
                           f"{settings['NAME']}")
    env["FIREGRID_IOT_TOPIC_PREFIX"] = prefix
    env["DJANGO_SETTINGS_MODULE"] = "config.settings.base"
    return subprocess.Popen(
        [sys.executable, "manage.py", "iot_listen", "--broker-url", broker.url, "--client-id", client_id,
         "--offline-check-s", "0", "--batch-messages", "50"],
        cwd=REPO_DIR, env=env, stdout=subprocess.DEVNULL, stderr=open(log_path, "ab"),
    )


def test_restarts_lose_no_acknowledged_reading(broker, tmp_path):
    """Kill the listener, then restart the broker, in the middle of a QoS 1 stream."""
    sensors = [make_sensor(f"HP-{n}", "hydrant_pressure") for n in range(10)]
    prefix = f"restart/{uuid.uuid4().hex[:8]}"
    client_id = f"restart-{uuid.uuid4().hex[:8]}"
    log_path = tmp_path / "listener.log"
    listener = start_listener(broker, client_id, prefix, log_path)
    listeners = [listener]
    try:
        client = publisher(broker.port, client_id=f"pub-{client_id}")
        acknowledged_mids = set()
        client.on_publish = lambda _c, _u, mid, _rc, _p: acknowledged_mids.add(mid)
        sent = {}
        total = 3000
        start = timezone.now() - timedelta(hours=1)
        # Reading 0 is repeated until stored, which shows that the listener has
        # subscribed; the copies are redeliveries and are dropped.
        probe = json.dumps(reading("HP-0", 0, start, pressure_mpa=0.35))

        def probe_stored():
            client.publish(f"{prefix}/sensors/HP-0/reading", probe, qos=1)
            return Reading.objects.filter(seq=0).exists()

        wait_for(probe_stored, 30, "the listener to store the probe")

        for i in range(1, total + 1):
            sensor = sensors[i % len(sensors)]
            payload = reading(sensor.code, i, start + timedelta(seconds=i), pressure_mpa=0.35)
            info = client.publish(f"{prefix}/sensors/{sensor.code}/reading", json.dumps(payload), qos=1)
            sent[info.mid] = (sensor.id, i)
            if i == total // 3:
                listener.send_signal(signal.SIGKILL)
                listener.wait(10)
                listener = start_listener(broker, client_id, prefix, log_path)
                listeners.append(listener)
            if i == 2 * total // 3:
                broker.restart()
            time.sleep(0.003)
        wait_for(lambda: len(acknowledged_mids) >= total * 0.9, 30, "the broker to acknowledge the stream")
        time.sleep(1)
        client.loop_stop()
        client.disconnect()

        expected = {sent[mid] for mid in acknowledged_mids if mid in sent}

        def stored():
            return set(Reading.objects.filter(seq__gt=0).values_list("sensor_id", "seq"))

        wait_for(lambda: expected <= stored(), 60, f"all {len(expected)} acknowledged readings to be stored")
        assert len(expected) >= total * 0.9
        assert Reading.objects.filter(seq__gt=0).count() == len(stored())
        assert DeadLetter.objects.count() == 0
    finally:
        for process in listeners:
            if process.poll() is None:
                process.send_signal(signal.SIGTERM)
                process.wait(20)
    log = log_path.read_text()
    assert listeners[-1].returncode == 0, log[-2000:]
    # The restarted listener, and the listener after the broker restart,
    # found their session, so the broker kept the queued messages for them.
    assert log.count("(session present: True)") >= 2, log[-2000:]
    assert "iot listener stopped" in log


def test_bad_input_burst_fully_acknowledged(broker):
    """Send over ten times the receive maximum in QoS 1 messages, with duplicates, retained and malformed ones.

    A message that the listener stores but never acknowledges keeps its
    slot in the broker's in-flight window, and once the window is full the
    broker stops delivering. So the test counts PUBACKs as well as rows.
    """
    sensors = [make_sensor(f"HP-{n}", "hydrant_pressure") for n in range(5)]
    prefix = f"burst/{uuid.uuid4().hex[:8]}"
    now = timezone.now() - timedelta(minutes=10)
    client = publisher(broker.port)
    retained_topic = f"{prefix}/sensors/HP-0/reading"
    client.publish(retained_topic, json.dumps(reading("HP-0", 0, now, pressure_mpa=0.35)), qos=1,
                   retain=True).wait_for_publish(5)

    # batch_messages=20 makes the listener ask for a receive maximum of 40.
    listener = Listener(broker.url, client_id=f"burst-{uuid.uuid4().hex[:8]}", prefix=prefix, batch_messages=20,
                        batch_wait_ms=10, offline_check_s=0)
    acknowledged_mids = []
    send_ack = listener.client.ack

    def counting_ack(mid, qos):
        acknowledged_mids.append(mid)
        return send_ack(mid, qos)

    listener.client.ack = counting_ack
    thread = threading.Thread(target=listener.run, daemon=True)
    thread.start()
    try:
        assert listener.connected.wait(10), "listener did not connect"
        # The broker delivers the retained reading after the SUBSCRIBE, so
        # its arrival shows that the burst will reach the listener.
        wait_for(lambda: Reading.objects.filter(seq=0).exists(), 10, "the retained reading")

        expected_keys = {(sensors[0].id, 0)}
        infos = []
        duplicates = 0
        malformed = 0
        for i in range(1, 401):
            sensor = sensors[i % len(sensors)]
            topic = f"{prefix}/sensors/{sensor.code}/reading"
            payload = json.dumps(reading(sensor.code, i, now + timedelta(seconds=i), pressure_mpa=0.35))
            infos.append(client.publish(topic, payload, qos=1, retain=(i % 50 == 0)))
            expected_keys.add((sensor.id, i))
            if i % 7 == 0:
                infos.append(client.publish(topic, payload, qos=1))
                duplicates += 1
            if i % 11 == 0:
                infos.append(client.publish(topic, b"\x00not json", qos=1))
                malformed += 1
            if i % 13 == 0:
                infos.append(client.publish(f"{prefix}/gateways/gw-1/batch", b'{"readings": []}', qos=1))
                malformed += 1
        for info in infos:
            info.wait_for_publish(10)
        # The retained reading sent before the burst is one more message.
        message_count = len(infos) + 1

        def stored_keys():
            return set(Reading.objects.values_list("sensor_id", "seq"))

        wait_for(lambda: stored_keys() == expected_keys, 60, f"all {len(expected_keys)} valid readings to be stored")
        wait_for(lambda: len(acknowledged_mids) >= message_count, 30,
                 f"all {message_count} messages to be acknowledged")
        assert thread.is_alive()
        assert listener.stats.messages == message_count
        assert len(acknowledged_mids) == message_count
        assert listener.stats.duplicates == duplicates
        assert DeadLetter.objects.count() == malformed
    finally:
        # Clear the retained message so that it stays out of other tests.
        client.publish(retained_topic, b"", qos=1, retain=True).wait_for_publish(5)
        client.loop_stop()
        client.disconnect()
        listener.stop()
        thread.join(10)
    assert not thread.is_alive()


def test_stop_ends_under_continuous_load(broker, monkeypatch):
    make_sensor("HP-1", "hydrant_pressure")
    real_store = listener_module.store

    def slow_store(*args, **kwargs):
        # Slower than the flood below, so the broker always has more to send.
        time.sleep(0.05)
        return real_store(*args, **kwargs)

    monkeypatch.setattr(listener_module, "store", slow_store)
    prefix = f"test/{uuid.uuid4().hex[:8]}"
    listener = Listener(broker.url, client_id=f"test-{uuid.uuid4().hex[:8]}", prefix=prefix, batch_messages=20,
                        batch_wait_ms=10, offline_check_s=0)
    thread = threading.Thread(target=listener.run, daemon=True)
    thread.start()
    client = publisher(broker.port)
    flooding = threading.Event()
    flooding.set()

    def flood():
        seq = 0
        while flooding.is_set():
            seq += 1
            client.publish(f"{prefix}/sensors/HP-1/reading",
                           json.dumps(reading("HP-1", seq, timezone.now(), pressure_mpa=0.35)), qos=1)
            time.sleep(0.0005)

    flooder = threading.Thread(target=flood, daemon=True)
    try:
        assert listener.connected.wait(10), "listener did not connect"
        time.sleep(0.3)
        flooder.start()
        wait_for(lambda: listener.stats.readings_stored > 200, 20, "the listener to store under load")
        listener.stop()
        thread.join(15)
        stopped = not thread.is_alive()
    finally:
        flooding.clear()
        flooder.join(5)
        client.loop_stop()
        client.disconnect()
        listener.stop()
        thread.join(10)
    assert stopped
