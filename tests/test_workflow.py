"""Dispatch rules, the dispatch queue, the state machine, its events and its locking."""
import threading
import time

import pytest
from django.db import ProgrammingError, connection, connections, transaction

from gridmap import workflow
from gridmap.dispatch import assign, dispatch_ticket, match_rule
from gridmap.exceptions import ConcurrentChange, InvalidTransition
from gridmap.models import Card, DeadlineRule, Notification, RoutingRule, TicketEvent, TicketHandling
from spatial.models import Ticket
from tests.test_gridmap_support import at, build_grid, department, make_ticket, make_user
from tests.test_gridmap_support import gridmap_seed  # noqa: F401 (fixture)

pytestmark = [pytest.mark.django_db, pytest.mark.usefixtures("gridmap_seed")]


@pytest.fixture
def fire_staff():
    fire = department("fire")
    handler = make_user("fire_handler", "handler", email="h@example.org")
    other_handler = make_user("fire_handler2", "handler")
    head = make_user("fire_head", "handler", email="head@example.org")
    fire.members.add(handler, other_handler)
    fire.head = head
    fire.save()
    return {"handler": handler, "other": other_handler, "head": head}


def test_rule_picks_lead_partners_and_deadline(fire_staff):
    build_grid()
    ticket = make_ticket("W1", lng=109.615, lat=23.915, category="fire_lane")
    handling = dispatch_ticket(ticket)
    ticket.refresh_from_db()
    assert ticket.status == "dispatched"
    assert handling.lead.code == "fire"
    assert sorted(handling.partners.values_list("code", flat=True)) == ["property", "urban"]
    assert handling.milestone == "on_site"
    assert handling.deadline_rule.name == "消防通道堵塞4小时内到场处置"
    assert (handling.due_at - handling.started_at).total_seconds() == 4 * 3600
    assert (handling.yellow_at - handling.due_at).total_seconds() == 0.3 * 4 * 3600
    assert (handling.red_at - handling.due_at).total_seconds() == 0.5 * 4 * 3600
    event = TicketEvent.objects.get(ticket=ticket)
    assert (event.kind, event.from_status, event.to_status, event.actor) == ("assignment", "received", "dispatched",
                                                                             None)
    assert event.data["partners"] == ["urban", "property"] or sorted(event.data["partners"]) == ["property", "urban"]
    recipients = set(Notification.objects.filter(ticket=ticket).values_list("user__username", flat=True))
    assert {"fire_handler", "fire_handler2", "fire_head"} <= recipients


def test_deadline_rule_matches_keywords(fire_staff):
    DeadlineRule.objects.create(name="液化气2小时到场", priority=2, keywords="液化气, 煤气罐", milestone="on_site",
                                amount=2, unit="hours")
    gas = dispatch_ticket(make_ticket("W5", lng=109.615, lat=23.915, category="flammable_storage",
                                      description="楼道堆放煤气罐"))
    plain = dispatch_ticket(make_ticket("W6", lng=109.615, lat=23.915, category="flammable_storage",
                                        description="楼道堆放纸箱"))
    assert gas.deadline_rule.name == "液化气2小时到场"
    assert plain.deadline_rule.name == "易燃物品堆放2个工作日内整改"


def test_keyword_zone_and_grid_criteria(fire_staff):
    units = build_grid()
    rule = RoutingRule.objects.create(name="东社区物业", priority=1, keywords="物业、小区", grid=units["A"],
                                      lead=department("housing"))
    inside = make_ticket("W2", lng=109.615, lat=23.915, description="小区楼道堆放杂物")
    outside = make_ticket("W3", lng=109.75, lat=23.95, description="小区楼道堆放杂物")
    no_word = make_ticket("W4", lng=109.615, lat=23.915, description="路边")
    from gridmap.dispatch import place_tickets
    place_tickets()
    assert match_rule(inside) == rule
    assert match_rule(outside) is None
    assert match_rule(no_word) is None

    # A zone polygon (edited as WKT in the admin) narrows a rule to where it applies.
    from django.contrib.gis.geos import GEOSGeometry
    zone_rule = RoutingRule.objects.create(
        name="西片区", priority=2, keywords="楼道",
        zone=GEOSGeometry("MULTIPOLYGON(((109.74 23.94, 109.76 23.94, 109.76 23.96, 109.74 23.96, 109.74 23.94)))",
                          srid=4326),
        lead=department("urban"))
    assert match_rule(outside) == zone_rule
    assert match_rule(inside) == rule
    rule.active = False
    rule.save()
    assert match_rule(inside) is None


def test_unmatched_ticket_goes_to_the_dispatch_queue_once():
    ticket = make_ticket("W5", category="other")
    handling = dispatch_ticket(ticket)
    dispatch_ticket(ticket)
    ticket.refresh_from_db()
    assert ticket.status == "received"
    assert handling.in_dispatch_queue
    assert handling.lead is None
    assert list(TicketEvent.objects.filter(ticket=ticket).values_list("kind", "note")) == [
        ("assignment", "没有派单规则命中,已转人工派单队列")]
    admin = make_user("dispatcher", "admin")
    handling = assign(ticket, department("market"), [department("fire"), department("market")], actor=admin)
    assert not handling.in_dispatch_queue
    assert handling.lead.code == "market"
    assert list(handling.partners.values_list("code", flat=True)) == ["fire"]
    assert handling.deadline_rule.name == "其他工单5个工作日内办结"


def test_property_reply_deadline_over_national_day():
    """A property ticket gets one working day for a reply across the National Day holiday."""
    ticket = make_ticket("W6", category="ebike_charging")
    handling = TicketHandling.objects.create(ticket=ticket, lead=department("fire"))
    handling.partners.set([department("property")])
    from gridmap.deadlines import apply_deadline
    apply_deadline(handling, at(2026, 9, 30, 15, 0))
    assert handling.milestone == "reply"
    assert handling.due_at == at(2026, 10, 8, 15, 0)


def test_full_walk_with_events_and_refusals(fire_staff):
    ticket = make_ticket("W7", category="fire_lane")
    dispatch_ticket(ticket)
    handler, head = fire_staff["handler"], fire_staff["head"]
    outsider = make_user("urban_handler", "handler")
    with pytest.raises(InvalidTransition, match="只有牵头部门的承办人可以办理此工单"):
        workflow.perform(ticket, "accept", outsider)
    with pytest.raises(InvalidTransition, match="工单当前状态为“已派单”,不能变更为“已到场”"):
        workflow.perform(ticket, "on_site", handler)
    workflow.perform(ticket, "accept", handler, note="收到")
    handling = workflow.perform(ticket, "on_site", handler, note="已到现场")
    assert handling.met_at is not None  # the 4-hour on-site milestone
    with pytest.raises(InvalidTransition, match="须上传至少一张"):
        workflow.perform(ticket, "rectify", handler)
    from django.core.files.uploadedfile import SimpleUploadedFile
    photo = SimpleUploadedFile("after.png", b"\x89PNG\r\n\x1a\n", content_type="image/png")
    workflow.perform(ticket, "rectify", handler, note="已清理", photos=[photo])
    with pytest.raises(InvalidTransition, match="只有牵头部门负责人或管理员可以办结工单"):
        workflow.perform(ticket, "close", handler)
    workflow.reply(ticket, handler, "已清理通道并设置禁停标识。")
    workflow.perform(ticket, "close", head)
    ticket.refresh_from_db()
    assert ticket.status == "closed"
    assert ticket.closed_at is not None
    steps = list(TicketEvent.objects.filter(ticket=ticket).values_list("kind", "from_status", "to_status",
                                                                       "actor__username"))
    assert steps == [
        ("assignment", "received", "dispatched", None),
        ("transition", "dispatched", "accepted", "fire_handler"),
        ("transition", "accepted", "on_site", "fire_handler"),
        ("transition", "on_site", "rectified", "fire_handler"),
        ("reply", "rectified", "rectified", "fire_handler"),
        ("transition", "rectified", "closed", "fire_head"),
    ]
    assert TicketEvent.objects.get(to_status="rectified", kind="transition").photos.count() == 1
    admin = make_user("dispatcher", "admin")
    workflow.perform(ticket, "reopen", admin, note="市民回访不满意")
    ticket.refresh_from_db()
    assert ticket.status == "reopened"
    assert ticket.closed_at is None


def test_red_card_needs_the_heads_explanation_before_closing(fire_staff):
    ticket = make_ticket("W8", category="fire_lane")
    dispatch_ticket(ticket)
    for action in ("accept", "on_site"):
        workflow.perform(ticket, action, fire_staff["handler"])
    from django.core.files.uploadedfile import SimpleUploadedFile
    workflow.perform(ticket, "rectify", fire_staff["handler"],
                     photos=[SimpleUploadedFile("a.png", b"x", content_type="image/png")])
    TicketHandling.objects.filter(ticket=ticket).update(card=Card.RED)
    with pytest.raises(InvalidTransition, match="已亮红牌,须由牵头部门负责人提交书面说明"):
        workflow.perform(ticket, "close", fire_staff["head"])
    with pytest.raises(InvalidTransition, match="须由牵头部门负责人提交"):
        workflow.explain_red_card(ticket, fire_staff["handler"], "说明")
    workflow.explain_red_card(ticket, fire_staff["head"], "商户卸货高峰反复占道,已协调城管定时巡查。")
    workflow.perform(ticket, "close", fire_staff["head"])
    assert Ticket.objects.get(pk=ticket.pk).status == "closed"


def test_stale_version_is_refused(fire_staff):
    ticket = make_ticket("W9", category="fire_lane")
    handling = dispatch_ticket(ticket)
    seen = handling.version
    workflow.perform(ticket, "accept", fire_staff["handler"], expected_version=seen)
    with pytest.raises(ConcurrentChange, match="已被他人更新"):
        workflow.perform(ticket, "on_site", fire_staff["other"], expected_version=seen)


def test_events_append_only_even_in_sql():
    """Ticket events cannot be changed or deleted, even in SQL."""
    ticket = make_ticket("W10")
    dispatch_ticket(ticket)
    event = TicketEvent.objects.get(ticket=ticket)
    with pytest.raises(Exception, match="只能追加"):
        event.save()
    with pytest.raises(ProgrammingError, match="append-only"), transaction.atomic():
        TicketEvent.objects.filter(pk=event.pk).update(note="changed")
    with pytest.raises(ProgrammingError, match="append-only"), transaction.atomic():
        with connection.cursor() as cursor:
            cursor.execute("DELETE FROM gridmap_ticketevent WHERE id = %s", [event.pk])


@pytest.mark.django_db(transaction=True, serialized_rollback=True)
def test_two_handlers_accepting_at_once_leave_one_event(fire_staff):
    ticket = make_ticket("W11", category="fire_lane")
    dispatch_ticket(ticket)
    barrier = threading.Barrier(2)
    outcomes = {}

    def act(name, user):
        try:
            barrier.wait()

            def slow(handling, now):
                time.sleep(0.3)  # hold the lock long enough for the other thread to queue behind it
                return {}
            workflow.transition(ticket.pk, "accepted", actor=user, apply=slow)
            outcomes[name] = "ok"
        except InvalidTransition as error:
            outcomes[name] = str(error)
        finally:
            connections.close_all()

    threads = [threading.Thread(target=act, args=(name, fire_staff[name])) for name in ("handler", "other")]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    assert sorted(outcomes.values()) == ["ok", "工单当前状态为“已接单”,不能变更为“已接单”。"]
    assert TicketEvent.objects.filter(ticket=ticket, to_status="accepted").count() == 1
    assert TicketHandling.objects.get(ticket=ticket).version == 2
    assert Ticket.objects.get(pk=ticket.pk).status == "accepted"
