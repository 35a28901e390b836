"""Citizen lookup: number plus the phone's last four digits, no other person's data, rate limits."""
import pytest
from django.test import Client

from gridmap import workflow
from gridmap.dispatch import dispatch_ticket
from gridmap.models import LookupAttempt
from tests.test_gridmap_support import department, make_ticket, make_user
from tests.test_gridmap_support import gridmap_seed  # noqa: F401 (fixture)

pytestmark = [pytest.mark.django_db, pytest.mark.usefixtures("gridmap_seed")]


@pytest.fixture
def ticket():
    ticket = make_ticket("12345-001", category="fire_lane", description="张三丰 13812345678 反映楼道堵塞")
    dispatch_ticket(ticket)
    handler = make_user("h", "handler")
    department("fire").members.add(handler)
    workflow.perform(ticket, "accept", handler, note="内部备注:已联系物业经理李四")
    workflow.reply(ticket, handler, "已责成物业清理楼道。")
    return ticket


def test_owner_lookup_hides_personal_data(ticket):
    """The owner sees progress, the reply and the standard, but no personal data."""
    response = Client().post("/lookup/", {"number": "12345-001", "phone_last4": "5678"})
    html = response.content.decode()
    assert response.status_code == 200
    for text in ("工单 12345-001", "已接单", "已派单", "已责成物业清理楼道。", "消防车通道与疏散通道畅通",
                 "138****5678", "消防救援大队"):
        assert text in html, text
    for secret in ("张三丰", "13812345678", "李四", "内部备注"):
        assert secret not in html, secret
    assert response["Cache-Control"].startswith("max-age=0")


def test_wrong_digits_like_unknown_number(ticket):
    """Wrong phone digits and unknown numbers get the same response."""
    client = Client()
    wrong = client.post("/lookup/", {"number": "12345-001", "phone_last4": "0000"})
    unknown = client.post("/lookup/", {"number": "nope", "phone_last4": "5678"})
    for response in (wrong, unknown):
        assert response.status_code == 404
        assert "没有找到匹配的工单,请核对工单编号和来电号码后四位。" in response.content.decode()
        assert "已责成" not in response.content.decode()
    invalid = client.post("/lookup/", {"number": "12345-001", "phone_last4": "56a8"})
    assert "请输入来电号码的后四位数字。" in invalid.content.decode()


def test_same_number_two_sources(ticket):
    """The same number in two sources shows only the caller's ticket."""
    from spatial.models import Ticket
    Ticket.objects.create(source_system="other", external_id="12345-001", received_at=ticket.received_at,
                          complainant_phone="13900009999", description="王五的投诉")
    html = Client().post("/lookup/", {"number": "12345-001", "phone_last4": "9999"}).content.decode()
    assert "139****9999" in html
    assert "138****5678" not in html
    assert "已责成物业清理楼道。" not in html


def test_failures_are_limited_per_client_and_per_number(ticket, settings):
    settings.FIREGRID_LOOKUP_MAX_FAILURES = 3
    client = Client(REMOTE_ADDR="10.0.0.1")
    for digits in ("0001", "0002", "0003"):
        assert client.post("/lookup/", {"number": "12345-001", "phone_last4": digits}).status_code == 404
    limited = client.post("/lookup/", {"number": "12345-001", "phone_last4": "5678"})
    assert limited.status_code == 429
    assert "查询过于频繁" in limited.content.decode()
    # Another address guessing the same number is limited too.
    assert Client(REMOTE_ADDR="10.0.0.2").post(
        "/lookup/", {"number": "12345-001", "phone_last4": "5678"}).status_code == 429
    # Other numbers from a fresh address still work.
    make_ticket("12345-002", phone="13700001111")
    assert Client(REMOTE_ADDR="10.0.0.3").post(
        "/lookup/", {"number": "12345-002", "phone_last4": "1111"}).status_code == 200
    assert LookupAttempt.objects.filter(success=False).count() == 3
