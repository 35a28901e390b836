"""The long-running MQTT listener: subscribe, store in batches, acknowledge after commit.

Three threads share the work: paho's network loop queues each message, a
preparing thread parses and checks a batch (JSON, sensors, times, COPY
text), and the main thread writes the previous batch in one transaction,
runs the rules and acknowledges. Parsing one batch while the database
writes another keeps both the interpreter and PostgreSQL busy.

The session is persistent (MQTT 5, clean start off, session never expires,
fixed client id), and paho-mqtt 2's manual acknowledgement delays each
PUBACK until the transaction that stored the message has committed. A
listener or broker restart therefore loses no message the broker had
acknowledged to its publisher: unacknowledged ones are redelivered, and
the (sensor, seq) key drops the copies that were already stored.

Limits that sit in the broker's configuration, not here: Mosquitto drops
QoS 1 messages beyond ``max_queued_messages`` (1000 by default) for a
disconnected or slow session, and keeps messages across its own restart
only with ``persistence true`` and a clean shutdown or autosave. See
:func:`iot.broker.write_config` for the settings FireGrid uses.
"""
import gc
import logging
import queue
import threading
import time
from dataclasses import dataclass
from urllib.parse import urlsplit

import paho.mqtt.client as mqtt
from django.db import OperationalError, InterfaceError, close_old_connections, connection
from django.utils import timezone
from paho.mqtt.packettypes import PacketTypes
from paho.mqtt.properties import Properties

from iot import rules
from iot.ingest import IngestResult, Message, SensorDirectory, ingest, prepare, store
from iot.models import DeadLetter

logger = logging.getLogger(__name__)

SESSION_NEVER_EXPIRES = 0xFFFFFFFF
DB_RETRY_MAX_S = 30.0
# Batches prepared ahead of the one being written. With one, three batches
# can be unacknowledged at once (collecting, prepared, being written). The
# receive maximum allows one batch more, so the broker keeps sending.
PREPARED_AHEAD = 1
LEAVE_UNACKNOWLEDGED = object()


def topic_filters(prefix):
    """Return the two subscription filters of the topic scheme under ``prefix``."""
    return [f"{prefix}/sensors/+/reading", f"{prefix}/gateways/+/batch"]


def sensor_from_topic(prefix, topic):
    """Return the sensor code of a single-reading topic, or "" for a gateway batch topic."""
    parts = topic[len(prefix) + 1:].split("/") if topic.startswith(prefix + "/") else []
    if len(parts) == 3 and parts[0] == "sensors" and parts[2] == "reading":
        return parts[1]
    return ""


def parse_broker_url(url):
    """Split ``mqtt://host:port`` into (host, port); only plain MQTT on loopback or a LAN is supported."""
    parts = urlsplit(url)
    if parts.scheme not in ("mqtt", "tcp"):
        raise ValueError(f"MQTT_URL {url!r} must start with mqtt://")
    return parts.hostname or "127.0.0.1", parts.port or 1883


@dataclass
class ListenerStats:
    messages: int = 0
    readings_stored: int = 0
    duplicates: int = 0
    rejected: int = 0
    time_replaced: int = 0
    tickets_opened: int = 0
    batches: int = 0
    db_retries: int = 0

    def add(self, result: IngestResult):
        self.messages += result.messages
        self.readings_stored += result.readings_stored
        self.duplicates += result.duplicates
        self.rejected += result.rejected
        self.time_replaced += result.time_replaced
        self.tickets_opened += len(result.tickets_opened)
        self.batches += 1


class Listener:
    """Receive readings from the broker and store them; :meth:`run` blocks until :meth:`stop`."""

    def __init__(self, url, client_id, prefix, batch_messages=500, batch_wait_ms=50, offline_check_s=30,
                 stats_interval_s=60, batch_bytes=1 << 20):
        self.host, self.port = parse_broker_url(url)
        self.client_id = client_id
        self.prefix = prefix.rstrip("/")
        self.batch_messages = batch_messages
        self.batch_wait_s = batch_wait_ms / 1000
        self.batch_bytes = batch_bytes
        self.offline_check_s = offline_check_s
        self.stats_interval_s = stats_interval_s
        self.stats = ListenerStats()
        self.directory = SensorDirectory()
        self._inbox = queue.Queue()
        self._stop = threading.Event()
        # Incremented on each connection; acknowledgements of messages from an
        # older connection are dropped, because their packet ids may now
        # belong to other messages. The broker redelivers those messages.
        self._generation = 0
        self.connected = threading.Event()
        self.client = self._make_client()

    def _make_client(self):
        client = mqtt.Client(mqtt.CallbackAPIVersion.VERSION2, client_id=self.client_id,
                             protocol=mqtt.MQTTv5, manual_ack=True)
        client.on_connect = self._on_connect
        client.on_disconnect = self._on_disconnect
        client.on_message = self._on_message
        client.reconnect_delay_set(min_delay=1, max_delay=10)
        return client

    def _on_connect(self, client, userdata, flags, reason_code, properties):
        if reason_code.is_failure:
            logger.error("MQTT broker %s:%s refused the connection: %s", self.host, self.port, reason_code)
            return
        self._generation += 1
        logger.info("connected to MQTT broker %s:%s as %s (session present: %s)",
                    self.host, self.port, self.client_id, flags.session_present)
        client.subscribe([(topic, 1) for topic in topic_filters(self.prefix)])
        self.connected.set()

    def _on_disconnect(self, client, userdata, flags, reason_code, properties):
        self.connected.clear()
        if not self._stop.is_set():
            logger.warning("disconnected from MQTT broker %s:%s (%s); reconnecting", self.host, self.port,
                           reason_code)

    def _on_message(self, client, userdata, message):
        self._inbox.put((self._generation, message.mid, message.qos, message.topic, message.payload,
                         bool(message.retain), timezone.now()))

    def stop(self):
        self._stop.set()

    def _connect_properties(self):
        properties = Properties(PacketTypes.CONNECT)
        properties.SessionExpiryInterval = SESSION_NEVER_EXPIRES
        # Let the broker send the next batch while this one is being written.
        properties.ReceiveMaximum = min(65535, (PREPARED_AHEAD + 3) * self.batch_messages)
        return properties

    def run(self):
        """Connect, then store batches until stopped; no payload and no database outage ends the loop."""
        logger.info("iot listener starting: broker %s:%s, topics %s", self.host, self.port,
                    ", ".join(topic_filters(self.prefix)))
        # Django, paho and their imports are long-lived: moving them out of
        # the collector's generations keeps full collections short under load.
        gc.freeze()
        self.client.connect_async(self.host, self.port, keepalive=30, clean_start=False,
                                  properties=self._connect_properties())
        self.client.loop_start()
        prepared = queue.Queue(maxsize=PREPARED_AHEAD)
        preparer = threading.Thread(target=self._prepare_loop, args=(prepared,), name="iot-prepare", daemon=True)
        preparer.start()
        next_offline_check = time.monotonic()
        next_stats = time.monotonic() + self.stats_interval_s
        try:
            # The preparing thread ends with None once stopped and drained,
            # so a clean stop stores and acknowledges what had arrived.
            while True:
                try:
                    item = prepared.get(timeout=0.2)
                except queue.Empty:
                    item = ()
                if item is None:
                    break
                if item:
                    self._store(*item)
                now = time.monotonic()
                if self.offline_check_s and now >= next_offline_check:
                    next_offline_check = now + self.offline_check_s
                    self._check_offline()
                if now >= next_stats:
                    next_stats = now + self.stats_interval_s
                    self.log_stats()
        finally:
            self._stop.set()
            self.client.disconnect()
            self.client.loop_stop()
            self.log_stats()
            connection.close()
            logger.info("iot listener stopped")

    def _prepare_loop(self, prepared):
        """Collect and prepare batches for :meth:`run` until stopped and drained, then put None.

        Once stopped, only the messages already received are drained: the
        broker keeps sending as batches are acknowledged, so draining until
        the inbox is empty might never end under load.
        """
        left_at_stop = None
        try:
            while True:
                if left_at_stop is None and self._stop.is_set():
                    left_at_stop = self._inbox.qsize()
                if left_at_stop is not None and left_at_stop <= 0:
                    break
                batch = self._collect(block=left_at_stop is None, limit=left_at_stop)
                if not batch:
                    if left_at_stop is not None:
                        break
                    continue
                if left_at_stop is not None:
                    left_at_stop -= len(batch)
                result = self._prepare(batch)
                if result is not LEAVE_UNACKNOWLEDGED:
                    prepared.put((batch, result))
        finally:
            connection.close()
            prepared.put(None)

    def _prepare(self, batch):
        """Return the prepared batch; None when :meth:`_store` must go one by one.

        Returns LEAVE_UNACKNOWLEDGED when the listener stops while the
        database is away: the broker redelivers those messages later.
        """
        delay = 0.5
        while True:
            try:
                return prepare(self._messages(batch), self.directory)
            except (OperationalError, InterfaceError) as error:
                # Only a directory reload reads the database here.
                logger.error("loading sensors failed, retrying in %.1f s: %s", delay, error)
                connection.close()
                if self._stop.wait(delay):
                    return LEAVE_UNACKNOWLEDGED
                delay = min(delay * 2, DB_RETRY_MAX_S)
            except Exception:  # noqa: BLE001 - no input may stop the listener
                logger.exception("preparing a batch of %d messages failed", len(batch))
                return None

    def log_stats(self):
        s = self.stats
        logger.info("iot listener: %d messages, %d readings stored, %d duplicates, %d rejected, "
                    "%d device times replaced, %d tickets opened in %d batches",
                    s.messages, s.readings_stored, s.duplicates, s.rejected, s.time_replaced,
                    s.tickets_opened, s.batches)

    def _collect(self, block=True, limit=None):
        """Return the next batch from the inbox, of at most ``limit`` messages when given; [] when none came."""
        try:
            first = self._inbox.get(timeout=0.2) if block else self._inbox.get_nowait()
        except queue.Empty:
            return []
        batch = [first]
        size = len(first[4])
        deadline = time.monotonic() + self.batch_wait_s
        max_messages = self.batch_messages if limit is None else min(limit, self.batch_messages)
        while len(batch) < max_messages and size < self.batch_bytes:
            try:
                item = self._inbox.get_nowait()
            except queue.Empty:
                remaining = deadline - time.monotonic()
                if remaining <= 0 or not block:
                    break
                try:
                    item = self._inbox.get(timeout=remaining)
                except queue.Empty:
                    break
            batch.append(item)
            size += len(item[4])
        return batch

    def _messages(self, batch):
        return [Message(payload=payload, topic=topic, retained=retained, received_at=received_at,
                        topic_sensor=sensor_from_topic(self.prefix, topic))
                for _gen, _mid, _qos, topic, payload, retained, received_at in batch]

    def _store(self, batch, prepared):
        """Store a batch, or its messages one by one when ``prepared`` is None, then acknowledge it."""
        delay = 0.5
        while True:
            try:
                close_old_connections()
                if prepared is None:
                    self._store_one_by_one(batch)
                else:
                    self.stats.add(store(prepared, self.directory, channel="mqtt"))
                break
            except (OperationalError, InterfaceError) as error:
                # The database is away: keep the batch unacknowledged and
                # retry. Messages already stored one by one are dropped
                # as redeliveries on the next pass.
                self.stats.db_retries += 1
                logger.error("storing %d messages failed, retrying in %.1f s: %s", len(batch), delay, error)
                connection.close()
                if self._stop.wait(delay):
                    return
                delay = min(delay * 2, DB_RETRY_MAX_S)
            except Exception:  # noqa: BLE001 - no input may stop the listener
                logger.exception("storing a batch of %d messages failed; storing them one by one", len(batch))
                connection.close()
                prepared = None
        self._ack(batch)

    def _store_one_by_one(self, batch):
        for item in batch:
            message = self._messages([item])[0]
            try:
                self.stats.add(ingest([message], self.directory, channel="mqtt"))
            except (OperationalError, InterfaceError):
                raise
            except Exception as error:  # noqa: BLE001
                connection.close()
                logger.exception("message on %s could not be stored; keeping it as a dead letter", message.topic)
                DeadLetter.objects.create(channel="mqtt", topic=message.topic[:300],
                                          sensor_code=message.topic_sensor[:64],
                                          reason=f"internal error: {error}"[:300],
                                          payload=message.payload.decode("utf-8", "replace")[:10_000])
                self.stats.rejected += 1

    def _ack(self, batch):
        for generation, mid, qos, *_rest in batch:
            if qos > 0 and generation == self._generation:
                self.client.ack(mid, qos)

    def _check_offline(self):
        try:
            close_old_connections()
            tickets = rules.check_offline()
        except (OperationalError, InterfaceError) as error:
            logger.error("offline check failed: %s", error)
            connection.close()
            return
        self.stats.tickets_opened += len(tickets)
        for ticket in tickets:
            logger.info("device-offline ticket %s opened", ticket.external_id)
