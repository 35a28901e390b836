"""Benchmark: sensor readings through a real Mosquitto into PostGIS, with alarm latency and memory.

Starts a private Mosquitto (FireGrid's broker settings, see iot.broker) on a
free loopback port, a scratch database, and ``manage.py iot_listen`` as a
subprocess. Publishers in this process then send, paced at the targets:

1. gateway batches of 50 readings per message at QoS 1 (target 50,000 readings/s),
2. single-reading messages at QoS 1 (target 5,000 messages/s),

each offered at ``--load`` times its target (1.1 by default), so that a
listener with headroom stores more than the target and one without falls
behind. The sustained rate is what was stored from the end of the first
``WARM_UP_S`` seconds to the last publish. Smoke detectors meanwhile cross
their threshold five times a second; a poller reads new tickets every 20
ms and takes publish-to-ticket latencies. The listener's resident memory
is sampled every second. The baseline runs
the same publishers unpaced into a bare paho subscriber (automatic
acknowledgement, JSON decoding, no database) in this process, which is
the broker's own capacity on this machine.

    python -m bench iot_ingest [--duration-s 30] [--sensors 2000] [--load 1.1]

``--duration-s`` is per phase; the default takes about 90 s in all, and
``--duration-s 300`` gives the 10-minute memory run.
"""
import argparse
import os
import signal
import statistics
import subprocess
import sys
import tempfile
import threading
import time
from pathlib import Path

import paho.mqtt.client as mqtt
from django.conf import settings
from django.contrib.gis.geos import Point
from django.db import connection
from django.utils import timezone

from bench.import_tickets import describe_machine
from iot.broker import PrivateBroker
from iot.models import Sensor, SensorType

BATCH_SIZE = 50
TARGET_BATCHED_READINGS_PER_S = 50_000
TARGET_SINGLE_MESSAGES_PER_S = 5_000
TARGET_P99_S = 1.0
PROBES_PER_S = 5
PREFIX = "bench/v1"
PUBLISHER_QUEUE = 20_000
WARM_UP_S = 3.0
# Phases at least twice this long also print the stored rate per window.
TREND_WINDOW_S = 60


def rss_mib(pid):
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        if line.startswith("VmRSS:"):
            return int(line.split()[1]) / 1024
    return 0.0


def make_sensors(count, smoke_count):
    installed = timezone.now() - timezone.timedelta(days=1)
    hydrant = SensorType.objects.get(code="hydrant_pressure")
    smoke = SensorType.objects.get(code="smoke_detector")
    Sensor.objects.bulk_create(
        [Sensor(code=f"B-HP-{n:05d}", sensor_type=hydrant, location=Point(109.68, 23.96), place="bench",
                installed_at=installed, interval_s=3600) for n in range(count)]
        + [Sensor(code=f"B-SD-{n:05d}", sensor_type=smoke, location=Point(109.68, 23.96), place="bench",
                  installed_at=installed, interval_s=3600) for n in range(smoke_count)],
        batch_size=2000,
    )


def publisher_client(port):
    client = mqtt.Client(mqtt.CallbackAPIVersion.VERSION2)
    client.max_inflight_messages_set(1000)
    # A bounded client queue: publish() then reports a full queue instead
    # of growing without limit, and publish_for() waits for room.
    client.max_queued_messages_set(PUBLISHER_QUEUE)
    client.connect("127.0.0.1", port)
    client.loop_start()
    return client


class ReadingSource:
    """Cheap JSON payloads: string formatting instead of json.dumps keeps the publisher off the critical path."""

    def __init__(self, sensors):
        self.sensors = sensors
        self.seq = int(time.time() * 1000)
        self.index = 0

    def one(self):
        self.seq += 1
        self.index = (self.index + 1) % self.sensors
        return (f'{{"sensor":"B-HP-{self.index:05d}","seq":{self.seq},"device_time":{time.time():.3f},'
                f'"values":{{"pressure_mpa":0.35}}}}')

    def single(self):
        payload = self.one()
        return f"{PREFIX}/sensors/B-HP-{self.index:05d}/reading", payload

    def batch(self):
        return f"{PREFIX}/gateways/bench/batch", '{"readings":[' + ",".join(self.one() for _ in range(BATCH_SIZE)) + "]}"


def publish_for(client, make_message, duration_s, messages_per_s=None):
    """Publish for ``duration_s``, paced at ``messages_per_s`` in 10 ms slices, or as fast as acks allow."""
    sent = 0
    started = time.monotonic()
    last = None
    while True:
        elapsed = time.monotonic() - started
        if elapsed >= duration_s:
            break
        due = int(elapsed * messages_per_s) + 1 if messages_per_s else sent + 100
        while sent < due:
            topic, payload = make_message()
            last = client.publish(topic, payload, qos=1)
            while last.rc == mqtt.MQTT_ERR_QUEUE_SIZE:
                time.sleep(0.002)
                last = client.publish(topic, payload, qos=1)
            sent += 1
        if messages_per_s:
            time.sleep(0.01)
    if last is not None:
        last.wait_for_publish(60)
    return sent, time.monotonic() - started


class ProbePublisher(threading.Thread):
    """Send one smoke alarm a ``1 / PROBES_PER_S`` seconds, each from a sensor that is not yet in alarm."""

    def __init__(self, port, smoke_count):
        super().__init__(daemon=True)
        self.client = publisher_client(port)
        self.smoke_count = smoke_count
        self.sent_at = {}
        self.stop_event = threading.Event()
        self.next_sensor = 0

    def run(self):
        while not self.stop_event.wait(1 / PROBES_PER_S):
            if self.next_sensor >= self.smoke_count:
                return
            code = f"B-SD-{self.next_sensor:05d}"
            self.next_sensor += 1
            payload = f'{{"sensor":"{code}","seq":1,"device_time":{time.time():.3f},"values":{{"smoke":true}}}}'
            self.sent_at[code] = time.time()
            self.client.publish(f"{PREFIX}/sensors/{code}/reading", payload, qos=1)


class TicketPoller(threading.Thread):
    """Record when each new iot ticket becomes visible, polling every 20 ms on its own connection."""

    def __init__(self, dsn):
        super().__init__(daemon=True)
        self.dsn = dsn
        self.seen_at = {}
        self.stop_event = threading.Event()

    def run(self):
        import psycopg

        with psycopg.connect(self.dsn, autocommit=True) as conn:
            last_id = 0
            while not self.stop_event.wait(0.02):
                rows = conn.execute("SELECT id, external_id FROM spatial_ticket WHERE id > %s AND source = 'iot'",
                                    [last_id]).fetchall()
                now = time.time()
                for ticket_id, external_id in rows:
                    last_id = max(last_id, ticket_id)
                    self.seen_at[external_id.split("/")[0]] = now


def stored_count(cursor):
    cursor.execute("SELECT count(*) FROM iot_reading")
    return cursor.fetchone()[0]


# Rows inserted into iot_reading, from the statistics PostgreSQL keeps per
# table. Reading it is free where count(*) scans the whole table, which at
# millions of rows took seconds and slowed the listener it measures. The
# figure lags commits by about a second and counts rows of rolled-back
# inserts too, so the phases end on an exact count.
INSERTED_SQL = "SELECT n_tup_ins FROM pg_stat_user_tables WHERE relname = 'iot_reading'"


class Sampler(threading.Thread):
    """Each second, the listener's resident memory and the stored reading count, on its own connection."""

    def __init__(self, dsn, listener_pid):
        super().__init__(daemon=True)
        self.dsn = dsn
        self.listener_pid = listener_pid
        self.memory = []
        self.stored = []  # (monotonic time, stored readings)
        self.stop_event = threading.Event()

    def run(self):
        import psycopg

        with psycopg.connect(self.dsn, autocommit=True) as conn:
            while True:
                self.stored.append((time.monotonic(), conn.execute(INSERTED_SQL).fetchone()[0]))
                if self.stop_event.wait(1.0):
                    return
                try:
                    self.memory.append(rss_mib(self.listener_pid))
                except FileNotFoundError:
                    return

    def stored_at(self, moment):
        """Return the stored count of the last sample taken at or before ``moment``."""
        earlier = [count for at, count in self.stored if at <= moment]
        return earlier[-1] if earlier else self.stored[0][1]


def run_listener_phase(name, port, make_message, rate, duration_s, readings_per_message, listener, dsn,
                       smoke_offset, smoke_count):
    client = publisher_client(port)
    probes = ProbePublisher(port, smoke_count)
    probes.next_sensor = smoke_offset
    poller = TicketPoller(dsn)
    poller.start()
    sampler = Sampler(dsn, listener.pid)
    sampler.start()
    with connection.cursor() as cursor:
        before = stored_count(cursor)
        probes.start()
        started = time.monotonic()
        sent, _publish_s = publish_for(client, make_message, duration_s, rate)
        probes.stop_event.set()
        published_at = time.monotonic()
        # Drain: wait until every published reading is stored, so that the
        # next phase starts with no backlog.
        expected = sent * readings_per_message + len(probes.sent_at)
        # Exact counts here: the insert counter lags up to 10 s once the
        # listener goes idle, and the measured window is already over.
        deadline = time.monotonic() + max(120, 6 * duration_s)
        while stored_count(cursor) - before < expected and time.monotonic() < deadline and listener.poll() is None:
            time.sleep(0.5)
        drained = stored_count(cursor) - before
        drain_s = time.monotonic() - started
    time.sleep(1.5)
    poller.stop_event.set()
    poller.join(5)
    sampler.stop_event.set()
    sampler.join(5)
    client.loop_stop()
    client.disconnect()
    probes.client.loop_stop()
    probes.client.disconnect()

    window_start = started + WARM_UP_S
    sustained = ((sampler.stored_at(published_at) - sampler.stored_at(window_start))
                 / max(1e-9, published_at - window_start))
    offered = sent * readings_per_message / (published_at - started)
    latencies = sorted(poller.seen_at[code] - at for code, at in probes.sent_at.items() if code in poller.seen_at)
    missing = len(probes.sent_at) - len(latencies)
    p99 = latencies[min(len(latencies) - 1, int(0.99 * len(latencies)))] if latencies else float("nan")
    alive = "running" if listener.poll() is None else f"exited with {listener.returncode}"
    print(f"{name}: offered {offered:,.0f} readings/s ({sent:,} messages, {sent * readings_per_message:,} readings "
          f"in {published_at - started:.1f} s); sustained {sustained:,.0f} readings/s stored from {WARM_UP_S:.0f} s "
          f"to the last publish; {drained:,} of {expected:,} stored after {drain_s:.1f} s; listener {alive}")
    print(f"{name}: threshold-to-ticket latency over {len(latencies)} smoke alarms: "
          f"p50 {statistics.median(latencies) if latencies else float('nan'):.3f} s, p99 {p99:.3f} s, "
          f"max {latencies[-1] if latencies else float('nan'):.3f} s; {missing} tickets not seen")
    if published_at - started >= 2 * TREND_WINDOW_S:
        marks = [started + offset for offset in range(0, int(published_at - started) + 1, TREND_WINDOW_S)]
        trend = [(sampler.stored_at(end) - sampler.stored_at(begin)) / TREND_WINDOW_S
                 for begin, end in zip(marks, marks[1:])]
        print(f"{name}: stored per {TREND_WINDOW_S} s window, readings/s: "
              + ", ".join(f"{rate:,.0f}" for rate in trend))
        # One memory sample a second, so every TREND_WINDOW_S-th is one a window.
        print(f"{name}: listener RSS at the end of each window, MiB: "
              + ", ".join(f"{mib:.0f}" for mib in sampler.memory[TREND_WINDOW_S - 1::TREND_WINDOW_S]))
    memory = sampler.memory
    if memory:
        print(f"{name}: listener RSS {memory[0]:.0f} MiB at 1 s, max {max(memory):.0f} MiB, "
              f"{memory[-1]:.0f} MiB at the end")
    return {"rate": sustained, "offered": offered, "p99": p99, "missing": missing, "memory": memory,
            "complete": drained == expected, "probes": len(probes.sent_at)}


def bare_subscriber_rate(port, make_message, duration_s, readings_per_message):
    """Publish unpaced into a bare paho subscriber that decodes JSON; return readings per second."""
    import json

    received = [0]
    done = threading.Event()

    def on_message(_client, _userdata, message):
        json.loads(message.payload)
        received[0] += 1

    subscriber = mqtt.Client(mqtt.CallbackAPIVersion.VERSION2, client_id="bench-bare", clean_session=True)
    subscriber.on_message = on_message
    subscriber.on_subscribe = lambda *_args: done.set()
    subscriber.connect("127.0.0.1", port)
    subscriber.subscribe(f"{PREFIX}/#", qos=1)
    subscriber.loop_start()
    done.wait(5)
    client = publisher_client(port)
    started = time.monotonic()
    sent, _ = publish_for(client, make_message, duration_s)
    deadline = time.monotonic() + 30
    while received[0] < sent and time.monotonic() < deadline:
        time.sleep(0.05)
    elapsed = time.monotonic() - started
    client.loop_stop()
    client.disconnect()
    subscriber.loop_stop()
    subscriber.disconnect()
    return received[0] * readings_per_message / elapsed


def main(argv):
    parser = argparse.ArgumentParser(prog="python -m bench iot_ingest")
    parser.add_argument("--duration-s", type=float, default=30, help="seconds of each loaded phase (default 30)")
    parser.add_argument("--sensors", type=int, default=2000, help="hydrant sensors the load spreads over")
    parser.add_argument("--baseline-s", type=float, default=10, help="seconds of each bare-subscriber phase")
    parser.add_argument("--load", type=float, default=1.1,
                        help="offered load as a multiple of each target (default 1.1)")
    args = parser.parse_args(argv)

    from django.test.utils import setup_databases, teardown_databases

    print(f"machine: {describe_machine()}")
    connection.settings_dict.setdefault("TEST", {})["NAME"] = "bench_firegrid_iot"
    old_config = setup_databases(verbosity=0, interactive=False)
    folder = tempfile.mkdtemp(prefix="firegrid-bench-mqtt-")
    broker = PrivateBroker(folder).start()
    listener = None
    try:
        smoke_per_phase = int(args.duration_s * PROBES_PER_S) + 10
        make_sensors(args.sensors, 2 * smoke_per_phase)
        db = connection.settings_dict
        dsn = f"host={db['HOST']} port={db['PORT']} user={db['USER']} dbname={db['NAME']}"
        env = dict(os.environ, DATABASE_URL=f"postgis://{db['USER']}@{db['HOST']}:{db['PORT']}/{db['NAME']}",
                   FIREGRID_IOT_TOPIC_PREFIX=PREFIX, FIREGRID_LOG_LEVEL="WARNING")
        listener = subprocess.Popen(
            [sys.executable, "manage.py", "iot_listen", "--broker-url", broker.url, "--client-id", "bench-listener",
             "--offline-check-s", "0"], cwd=settings.BASE_DIR, env=env)
        time.sleep(3)  # Django start-up and the SUBSCRIBE
        source = ReadingSource(args.sensors)

        batched = run_listener_phase("batched", broker.port, source.batch,
                                     args.load * TARGET_BATCHED_READINGS_PER_S / BATCH_SIZE, args.duration_s,
                                     BATCH_SIZE, listener, dsn, 0, smoke_per_phase)
        single = run_listener_phase("single", broker.port, source.single, args.load * TARGET_SINGLE_MESSAGES_PER_S,
                                    args.duration_s, 1, listener, dsn, smoke_per_phase, 2 * smoke_per_phase)
        listener.send_signal(signal.SIGTERM)
        listener.wait(30)

        bare_batched = bare_subscriber_rate(broker.port, source.batch, args.baseline_s, BATCH_SIZE)
        bare_single = bare_subscriber_rate(broker.port, source.single, args.baseline_s, 1)
        print(f"baseline bare subscriber: {bare_batched:,.0f} readings/s batched, {bare_single:,.0f} messages/s single")
    finally:
        if listener is not None and listener.poll() is None:
            listener.send_signal(signal.SIGTERM)
            listener.wait(30)
        broker.stop()
        teardown_databases(old_config, verbosity=0)

    memory = batched["memory"] + single["memory"]
    warm = memory[min(len(memory) - 1, 5)] if memory else 0
    growth = (max(memory) - warm) if memory else 0
    p99 = max(batched["p99"], single["p99"])
    met = (batched["rate"] >= TARGET_BATCHED_READINGS_PER_S and batched["complete"],
           single["rate"] >= TARGET_SINGLE_MESSAGES_PER_S and single["complete"],
           p99 < TARGET_P99_S and not batched["missing"] and not single["missing"])
    print(f"listener memory: {warm:.0f} MiB after 5 s, max {max(memory) if memory else 0:.0f} MiB "
          f"(+{growth:.0f} MiB) over {len(memory)} s")
    print(f"iot_ingest: batched {batched['rate']:,.0f} readings/s ({batched['rate'] / bare_batched:.2f}x bare "
          f"paho, target {'met' if met[0] else 'missed'}), single {single['rate']:,.0f} msg/s "
          f"({single['rate'] / bare_single:.2f}x bare, target {'met' if met[1] else 'missed'}), p99 alarm-to-ticket "
          f"{p99:.3f} s (target {'met' if met[2] else 'missed'}), listener RSS +{growth:.0f} MiB over "
          f"{len(memory)} s")
    return 0
