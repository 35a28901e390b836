"""Handler pages: every role against pages it may and may not see, masking, escaping, concurrent requests."""
import threading

import pytest
from django.core.files.uploadedfile import SimpleUploadedFile
from django.db import connections
from django.test import Client

from gridmap.dispatch import dispatch_ticket
from gridmap.models import TicketEvent, TicketHandling
from spatial.models import Ticket
from tests.test_gridmap_support import build_grid, department, make_ticket, make_user
from tests.test_gridmap_support import gridmap_seed  # noqa: F401 (fixture)

pytestmark = pytest.mark.usefixtures("gridmap_seed")

PNG = (b"\x89PNG\r\n\x1a\n\x00\x00\x00\rIHDR\x00\x00\x00\x01\x00\x00\x00\x01\x08\x06\x00\x00\x00\x1f\x15\xc4\x89"
       b"\x00\x00\x00\rIDATx\x9cc\xf8\xff\xff?\x00\x05\xfe\x02\xfe\xa7V\xbd\xfa\x00\x00\x00\x00IEND\xaeB`\x82")


def setup_world():
    units = build_grid()
    users = {
        "planner": make_user("planner", "planner"),
        "grid_head": make_user("gridhead", "grid_head"),
        "handler": make_user("fire_handler", "handler"),
        "other_handler": make_user("market_handler", "handler"),
        "leader": make_user("leader", "leader"),
        "admin": make_user("dispatcher", "admin"),
    }
    units["A"].head = users["grid_head"]
    units["A"].save()
    fire = department("fire")
    fire.members.add(users["handler"])
    fire.head = make_user("fire_head", "handler")
    fire.save()
    department("market").members.add(users["other_handler"])
    in_a = make_ticket("V1", lng=109.615, lat=23.915, category="fire_lane",
                       description="<script>alert(1)</script> 电话13812345678")
    in_b = make_ticket("V2", lng=109.75, lat=23.95, category="fire_lane")
    queued = make_ticket("V3", lng=109.75, lat=23.95, category="other")
    for ticket in (in_a, in_b, queued):
        dispatch_ticket(ticket)
    return users, {"in_a": in_a, "in_b": in_b, "queued": queued}


def client_for(user):
    client = Client()
    if user is not None:
        client.force_login(user)
    return client


@pytest.mark.django_db
def test_each_role_against_each_page():
    users, tickets = setup_world()
    a, b = tickets["in_a"].pk, tickets["in_b"].pk
    expected = {
        # page: {role: status}
        "/tickets/": {"planner": 403, "grid_head": 200, "handler": 200, "other_handler": 200, "leader": 200,
                      "admin": 200},
        f"/tickets/{a}/": {"planner": 403, "grid_head": 200, "handler": 200, "other_handler": 404, "leader": 200,
                           "admin": 200},
        f"/tickets/{b}/": {"planner": 403, "grid_head": 404, "handler": 200, "other_handler": 404, "leader": 200,
                           "admin": 200},
        "/tickets/dispatch/": {"planner": 403, "grid_head": 403, "handler": 403, "other_handler": 403,
                               "leader": 403, "admin": 200},
        "/notifications/": {role: 200 for role in users},
        "/standards/": {role: 200 for role in users},
    }
    for url, by_role in expected.items():
        assert client_for(None).get(url).status_code == 302, url
        for role, status in by_role.items():
            assert client_for(users[role]).get(url).status_code == status, (url, role)


@pytest.mark.django_db
def test_queues_list_only_what_each_role_may_see():
    users, tickets = setup_world()

    def numbers(role):
        page = client_for(users[role]).get("/tickets/").context["page"]
        return sorted(ticket.external_id for ticket in page)

    assert numbers("handler") == ["V1", "V2"]
    assert numbers("grid_head") == ["V1"]
    assert numbers("other_handler") == []
    assert numbers("leader") == ["V1", "V2", "V3"]
    queue = client_for(users["admin"]).get("/tickets/dispatch/").context["page"]
    assert [handling.ticket.external_id for handling in queue] == ["V3"]


@pytest.mark.django_db
def test_personal_data_masking_and_escaping():
    """Personal data is masked except for the handling department, and text is escaped."""
    users, tickets = setup_world()
    url = f"/tickets/{tickets['in_a'].pk}/"
    for role in ("leader", "grid_head"):
        html = client_for(users[role]).get(url).content.decode()
        assert "张**" in html
        assert "138****5678" in html
        assert "13812345678" not in html
        assert "张三丰" not in html
    html = client_for(users["handler"]).get(url).content.decode()
    assert "张三丰 13812345678" in html
    assert "<script>alert(1)</script>" not in html
    assert "&lt;script&gt;alert(1)&lt;/script&gt;" in html
    assert "消防车通道与疏散通道畅通" in html  # the rectification standard is shown to the handler


@pytest.mark.django_db
def test_actions_by_role_and_the_walk_through_pages(tmp_path, settings):
    settings.MEDIA_ROOT = tmp_path
    users, tickets = setup_world()
    pk = tickets["in_a"].pk
    version = TicketHandling.objects.get(ticket_id=pk).version
    data = {"note": "收到", "version": version}
    assert client_for(users["leader"]).post(f"/tickets/{pk}/act/accept/", data).status_code == 403
    assert client_for(users["planner"]).post(f"/tickets/{pk}/act/accept/", data).status_code == 403
    assert client_for(users["other_handler"]).post(f"/tickets/{pk}/act/accept/", data).status_code == 404
    assert client_for(users["grid_head"]).post(f"/tickets/{pk}/act/accept/", data).status_code == 403
    handler = client_for(users["handler"])
    assert handler.get(f"/tickets/{pk}/act/accept/").status_code == 405
    response = handler.post(f"/tickets/{pk}/act/accept/", data, follow=True)
    assert "已接单。" in response.content.decode()
    early = SimpleUploadedFile("early.png", PNG, content_type="image/png")
    response = handler.post(f"/tickets/{pk}/act/rectify/", {"version": version + 1, "photos": [early]}, follow=True)
    assert "工单当前状态为“已接单”,不能变更为“已整改”。" in response.content.decode()
    handler.post(f"/tickets/{pk}/act/on_site/", {"version": version + 1, "note": "到场"})
    bad = SimpleUploadedFile("a.txt", b"hello", content_type="text/plain")
    response = handler.post(f"/tickets/{pk}/act/rectify/", {"version": version + 2, "photos": [bad]}, follow=True)
    assert "不是 JPEG、PNG 或 WebP 图片" in response.content.decode()
    photo = SimpleUploadedFile("after.png", PNG, content_type="image/png")
    handler.post(f"/tickets/{pk}/act/rectify/", {"version": version + 2, "note": "已清理", "photos": [photo]})
    handler.post(f"/tickets/{pk}/reply/", {"text": "通道已清理。"})
    assert Ticket.objects.get(pk=pk).status == "rectified"
    event = TicketEvent.objects.get(ticket_id=pk, to_status="rectified", kind="transition")
    photo_url = f"/tickets/photos/{event.photos.get().pk}/"
    assert handler.get(photo_url).status_code == 200
    assert client_for(users["other_handler"]).get(photo_url).status_code == 404
    assert client_for(users["planner"]).get(photo_url).status_code == 403
    head = client_for(department("fire").head)
    head.post(f"/tickets/{pk}/act/close/", {"version": version + 4})
    assert Ticket.objects.get(pk=pk).status == "closed"
    timeline = handler.get(f"/tickets/{pk}/").content.decode()
    for text in ("已派单", "已接单", "已到场", "已整改", "书面答复", "已办结", "通道已清理。"):
        assert text in timeline


@pytest.mark.django_db
def test_dispatcher_assigns_a_queued_ticket():
    users, tickets = setup_world()
    pk = tickets["queued"].pk
    data = {"lead": department("market").pk, "partners": [department("urban").pk], "note": "市场监管牵头"}
    assert client_for(users["handler"]).post(f"/tickets/{pk}/assign/", data).status_code == 403
    client_for(users["admin"]).post(f"/tickets/{pk}/assign/", data)
    handling = TicketHandling.objects.get(ticket_id=pk)
    assert (handling.lead.code, handling.in_dispatch_queue) == ("market", False)
    assert Ticket.objects.get(pk=pk).status == "dispatched"
    assert client_for(users["other_handler"]).get(f"/tickets/{pk}/").status_code == 200


@pytest.mark.django_db(transaction=True, serialized_rollback=True)
def test_concurrent_accept_requests_record_exactly_one_event():
    users, tickets = setup_world()
    second = make_user("fire_handler_2", "handler")
    department("fire").members.add(second)
    pk = tickets["in_a"].pk
    version = TicketHandling.objects.get(ticket_id=pk).version
    barrier = threading.Barrier(2)
    pages = {}

    def post(user):
        client = client_for(user)
        barrier.wait()
        try:
            response = client.post(f"/tickets/{pk}/act/accept/", {"version": version, "note": user.username},
                                   follow=True)
            pages[user.username] = response.content.decode()
        finally:
            connections.close_all()

    threads = [threading.Thread(target=post, args=(user,)) for user in (users["handler"], second)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    accepted = TicketEvent.objects.filter(ticket_id=pk, to_status="accepted")
    assert accepted.count() == 1
    winner = accepted.get().actor.username
    loser = ({"fire_handler", "fire_handler_2"} - {winner}).pop()
    assert "已接单。" in pages[winner]
    assert "工单已被他人更新" in pages[loser]
    assert TicketHandling.objects.get(ticket_id=pk).version == version + 1
