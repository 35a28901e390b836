"""Deadlines in working days, the escalation pass, cards and their notifications."""
import pytest
from django.core import mail
from django.core.management import call_command

from gridmap.deadlines import add_working_days, apply_deadline, due_after
from gridmap.dispatch import dispatch_ticket
from gridmap.escalation import run_escalation
from gridmap.models import Notification, TicketEvent, TicketHandling
from tests.test_gridmap_support import at, build_grid, department, make_ticket, make_user
from tests.test_gridmap_support import gridmap_seed  # noqa: F401 (fixture)

pytestmark = [pytest.mark.django_db, pytest.mark.usefixtures("gridmap_seed")]


def test_working_days_follow_holidays_and_adjusted_weekends():
    assert add_working_days(at(2026, 9, 30, 15, 0), 1) == at(2026, 10, 8, 15, 0)  # National Day week
    assert add_working_days(at(2026, 10, 9, 10, 0), 1) == at(2026, 10, 10, 10, 0)  # adjusted Saturday
    assert add_working_days(at(2026, 12, 4, 17, 0), 1) == at(2026, 12, 7, 17, 0)  # ordinary weekend
    assert add_working_days(at(2026, 10, 3, 9, 0), 2) == at(2026, 10, 9, 9, 0)  # received on a holiday
    assert due_after(at(2026, 10, 1, 9, 0), 4, "hours") == at(2026, 10, 1, 13, 0)  # on-site hours run on holidays
    assert due_after(at(2026, 10, 1, 9, 0), 2, "days") == at(2026, 10, 3, 9, 0)
    with pytest.raises(ValueError, match="unknown time unit"):
        due_after(at(2026, 10, 1, 9, 0), 2, "weeks")


@pytest.fixture
def carded_setup():
    units = build_grid()
    heads = {code: make_user(f"head_{code}", "grid_head", email=f"{code}@example.org") for code in ("A-1", "A", "C1")}
    for code, user in heads.items():
        units[code].head = user
        units[code].save()
    fire = department("fire")
    fire.head = make_user("fire_head", "handler", email="fire@example.org")
    fire.save()
    ticket = make_ticket("E1", lng=109.615, lat=23.915, category="fire_lane")
    handling = dispatch_ticket(ticket)
    apply_deadline(handling, at(2026, 9, 30, 8, 0))  # due 12:00, yellow 13:12, red 14:00
    mail.outbox.clear()
    return ticket, units


def test_escalation_climbs_the_grid_and_cards_once(carded_setup):
    ticket, units = carded_setup
    handling = TicketHandling.objects.get(ticket=ticket)
    assert (handling.due_at, handling.yellow_at, handling.red_at) == (
        at(2026, 9, 30, 12, 0), at(2026, 9, 30, 13, 12), at(2026, 9, 30, 14, 0))
    passes = [(at(2026, 9, 30, 11, 0), (0, 0), 0, None, ""),
              (at(2026, 9, 30, 12, 30), (1, 0), 1, "A", ""),
              (at(2026, 9, 30, 12, 30), (0, 0), 1, "A", ""),
              (at(2026, 9, 30, 13, 30), (1, 1), 2, "C1", "yellow"),
              (at(2026, 9, 30, 14, 30), (1, 1), 3, "C1", "red"),
              (at(2026, 9, 30, 15, 0), (0, 0), 3, "C1", "red")]
    for now, counts, level, unit, card in passes:
        result = run_escalation(now)
        handling.refresh_from_db()
        assert ((result.escalated, result.carded), handling.escalation_level, handling.card) == (counts, level, card)
        assert (handling.escalated_to.code if handling.escalated_to else None) == unit
    events = list(TicketEvent.objects.filter(ticket=ticket).exclude(kind="assignment")
                  .values_list("kind", "data"))
    assert events == [("escalation", {"level": 1, "unit": units["A"].pk}),
                      ("escalation", {"level": 2, "unit": units["C1"].pk}),
                      ("card", {"card": "yellow"}),
                      ("escalation", {"level": 3, "unit": units["C1"].pk}),
                      ("card", {"card": "red"})]
    inbox = list(Notification.objects.filter(kind__in=["escalation", "card"]).order_by("pk")
                 .values_list("user__username", "message"))
    assert inbox == [("head_A", "超时升级:工单 E1"), ("head_C1", "超时升级:工单 E1"), ("fire_head", "黄牌:工单 E1"),
                     ("head_C1", "超时升级:工单 E1"), ("fire_head", "红牌:工单 E1")]
    # One digest per recipient and pass; nothing is e-mailed twice. The first
    # pass also sends the assignment notices still waiting (A-1's head, fire's head).
    assert sorted(message.to[0] for message in mail.outbox) == [
        "A-1@example.org", "A@example.org", "C1@example.org", "C1@example.org",
        "fire@example.org", "fire@example.org", "fire@example.org"]
    assert mail.outbox[-1].subject == "[FireGrid] 您有 1 条新的工单通知"
    assert mail.outbox[-1].body == "红牌:工单 E1"


def test_met_milestone_stops_escalation(carded_setup):
    """A met milestone stops escalation, and late tickets jump to red."""
    ticket, _units = carded_setup
    handler = make_user("h", "handler")
    department("fire").members.add(handler)
    from gridmap import workflow
    workflow.perform(ticket, "accept", handler)
    workflow.perform(ticket, "on_site", handler)
    TicketHandling.objects.filter(ticket=ticket).update(met_at=at(2026, 9, 30, 11, 0))
    assert (run_escalation(at(2026, 10, 2, 9, 0)).escalated, TicketHandling.objects.get(ticket=ticket).card) == (0, "")
    late = make_ticket("E2", lng=109.615, lat=23.915, category="fire_lane")
    apply_deadline(dispatch_ticket(late), at(2026, 9, 30, 8, 0))
    result = run_escalation(at(2026, 10, 2, 9, 0))
    handling = TicketHandling.objects.get(ticket=late)
    assert (result.escalated, result.carded, handling.escalation_level, handling.card) == (1, 1, 3, "red")


def test_escalate_command_is_idempotent(carded_setup, capsys):
    call_command("escalate", "--no-email")
    call_command("escalate", "--no-email")
    out = capsys.readouterr().out.splitlines()
    assert out[0].startswith("升级 1 件,亮牌 1 件,发送邮件 0 封")
    assert out[1].startswith("升级 0 件,亮牌 0 件,发送邮件 0 封")


def test_assignment_notice_in_the_inbox_and_by_email(django_capture_on_commit_callbacks):
    fire = department("fire")
    handler = make_user("inbox_handler", "handler", email="inbox@example.org")
    fire.members.add(handler)
    ticket = make_ticket("N1", category="fire_lane")
    with django_capture_on_commit_callbacks(execute=True):
        dispatch_ticket(ticket)
    notification = Notification.objects.get(user=handler)
    assert notification.kind == "assignment"
    assert notification.emailed_at is not None
    assert notification.message.startswith("工单 N1 已派至消防救援大队,办理时限 2026-")
    assert [message.to for message in mail.outbox] == [["inbox@example.org"]]
    from django.test import Client
    client = Client()
    client.force_login(handler)
    assert "工单 N1 已派至消防救援大队" in client.get("/notifications/").content.decode()
    client.post("/notifications/")
    assert Notification.objects.get(user=handler).read_at is not None
