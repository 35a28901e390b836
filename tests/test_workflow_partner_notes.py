"""Partner departments record their progress on 1+3+N tickets without changing the status."""
import pytest

from gridmap.models import TicketEvent, TicketHandling
from spatial.models import Ticket
from tests.test_gridmap_support import department, make_user
from tests.test_gridmap_support import gridmap_seed  # noqa: F401 (fixture)
from tests.test_workflow_views import client_for, setup_world

pytestmark = pytest.mark.usefixtures("gridmap_seed")


def dispatched_with_partner():
    users, tickets = setup_world()
    ticket = tickets["in_a"]
    handling = TicketHandling.objects.get(ticket=ticket)
    partner = department("urban")
    handling.partners.add(partner)
    partner_handler = make_user("urban_handler", "handler")
    partner.members.add(partner_handler)
    return users, ticket, handling, partner_handler


@pytest.mark.django_db
def test_partner_note_recorded():
    users, ticket, handling, partner_handler = dispatched_with_partner()
    status = Ticket.objects.get(pk=ticket.pk).status

    response = client_for(partner_handler).post(
        f"/tickets/{ticket.pk}/note/", {"text": "城管已约谈商户", "version": handling.version}, follow=True)

    assert "办理进展已记录。" in response.content.decode()
    note = TicketEvent.objects.get(ticket=ticket, kind="note")
    assert note.actor == partner_handler
    assert note.note == "城管已约谈商户"
    assert Ticket.objects.get(pk=ticket.pk).status == status


@pytest.mark.django_db
def test_partner_sees_note_form_not_actions():
    users, ticket, handling, partner_handler = dispatched_with_partner()

    page = client_for(partner_handler).get(f"/tickets/{ticket.pk}/").content.decode()

    assert "note-form" in page
    assert f"/tickets/{ticket.pk}/act/accept/" not in page


@pytest.mark.django_db
def test_unrelated_handler_cannot_note():
    users, ticket, handling, _partner_handler = dispatched_with_partner()

    response = client_for(users["other_handler"]).post(
        f"/tickets/{ticket.pk}/note/", {"text": "越权", "version": handling.version})

    assert response.status_code == 404
    assert not TicketEvent.objects.filter(ticket=ticket, kind="note").exists()


@pytest.mark.django_db
def test_planner_cannot_note():
    users, ticket, handling, _partner_handler = dispatched_with_partner()

    response = client_for(users["planner"]).post(f"/tickets/{ticket.pk}/note/", {"text": "x"})

    assert response.status_code == 403


@pytest.mark.django_db
def test_empty_note_rejected():
    users, ticket, handling, partner_handler = dispatched_with_partner()

    response = client_for(partner_handler).post(f"/tickets/{ticket.pk}/note/", {"text": " "}, follow=True)

    assert "办理进展内容不能为空。" in response.content.decode()
    assert not TicketEvent.objects.filter(ticket=ticket, kind="note").exists()


@pytest.mark.django_db
def test_closed_ticket_takes_no_note():
    users, ticket, handling, partner_handler = dispatched_with_partner()
    Ticket.objects.filter(pk=ticket.pk).update(status="closed")

    response = client_for(partner_handler).post(f"/tickets/{ticket.pk}/note/", {"text": "补记"}, follow=True)

    assert "不能记录办理进展" in response.content.decode()
    assert not TicketEvent.objects.filter(ticket=ticket, kind="note").exists()


@pytest.mark.django_db
def test_action_buttons_follow_language():
    users, ticket, handling, _partner_handler = dispatched_with_partner()
    handler = client_for(users["handler"])

    chinese = handler.get(f"/tickets/{ticket.pk}/", HTTP_ACCEPT_LANGUAGE="zh-hans").content.decode()
    english = handler.get(f"/tickets/{ticket.pk}/", HTTP_ACCEPT_LANGUAGE="en").content.decode()

    assert ">接单<" in chinese
    assert ">Accept<" in english
