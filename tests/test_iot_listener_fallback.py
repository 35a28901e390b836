"""The listener's fallbacks when a batch cannot be prepared or stored as a whole."""
import json

import pytest
from django.utils import timezone

from iot import listener as listener_module
from iot.listener import Listener
from iot.models import DeadLetter, Reading
from tests.test_iot_support import T0, make_sensor, reading

pytestmark = pytest.mark.django_db(transaction=True)


@pytest.fixture
def listener():
    make_sensor("HP-1", "hydrant_pressure")
    subject = Listener("mqtt://127.0.0.1:1", "test-fallback", "t/v1")
    subject._generation = 1
    subject.acked = []
    subject.client.ack = lambda mid, qos: subject.acked.append(mid)
    return subject


def batch_of(seqs):
    return [(1, seq, 1, "t/v1/sensors/HP-1/reading", json.dumps(reading("HP-1", seq, T0, pressure_mpa=0.3)).encode(),
             False, timezone.now()) for seq in seqs]


def test_unprepared_batch_stored_one_by_one(listener):
    listener._store(batch_of([1, 2, 3]), None)
    assert sorted(Reading.objects.values_list("seq", flat=True)) == [1, 2, 3]
    assert listener.acked == [1, 2, 3]


def test_failing_message_kept_as_dead_letter(listener, monkeypatch):
    real_ingest = listener_module.ingest

    def ingest(messages, *args, **kwargs):
        if b'"seq": 2' in messages[0].payload:
            raise ValueError("bug in a rule")
        return real_ingest(messages, *args, **kwargs)

    def store(*_args, **_kwargs):
        raise ValueError("bug in a rule")

    monkeypatch.setattr(listener_module, "ingest", ingest)
    monkeypatch.setattr(listener_module, "store", store)
    batch = batch_of([1, 2, 3])
    listener._store(batch, listener._prepare(batch))
    letter = DeadLetter.objects.get()
    assert sorted(Reading.objects.values_list("seq", flat=True)) == [1, 3]
    assert letter.reason == "internal error: bug in a rule"
    assert letter.sensor_code == "HP-1"
    assert listener.acked == [1, 2, 3]
