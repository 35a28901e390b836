"""Citizen ratings from the lookup page and staff callbacks, and how they feed the KPIs."""
import pytest
from django.test import Client

from gridmap import kpi
from gridmap.models import Department
from gridmap.supervision import Callback, CitizenRating
from tests.test_gridmap_support import make_user
from tests.test_kpi_support import build_kpi_world

MARCH = kpi.parse_period("2026-03")


def rate(client, number, last4, score, comment=""):
    return client.post("/lookup/rate/", {"number": number, "phone_last4": last4, "score": score, "comment": comment})


@pytest.mark.django_db
def test_rating_form_closed_unrated_only():
    """The lookup page offers the rating form for a closed, unrated ticket only."""
    build_kpi_world()
    client = Client()
    closed = client.post("/lookup/", {"number": "T4", "phone_last4": "5678"}).content.decode()
    assert 'action="/lookup/rate/"' in closed
    assert 'name="phone_last4" value="5678"' in closed
    rated = client.post("/lookup/", {"number": "T1", "phone_last4": "5678"}).content.decode()
    assert "您已评价:5 分" in rated
    assert 'action="/lookup/rate/"' not in rated
    still_open = client.post("/lookup/", {"number": "T6", "phone_last4": "5678"}).content.decode()
    assert "评价办理情况" not in still_open


@pytest.mark.django_db
def test_rating_once_feeds_department_kpis():
    """A citizen rates once, and the rating feeds the department KPIs."""
    build_kpi_world()
    client = Client()
    response = rate(client, "T4", "5678", "5", "<script>x</script>处理及时")
    assert response.status_code == 201
    assert "评价已提交" in response.content.decode()
    assert CitizenRating.objects.get(ticket__external_id="T4").comment == "<script>x</script>处理及时"
    again = rate(client, "T4", "5678", "1")
    assert again.status_code == 409
    assert "每件工单只能评价一次" in again.content.decode()
    assert CitizenRating.objects.get(ticket__external_id="T4").score == 5
    fire = Department.objects.get(code="fire").pk
    figures = kpi.compute_grouped(MARCH, "department")[fire]
    # T1 5, T2 3, T3 4, T4 5.
    assert figures["average_rating"]["value"] == pytest.approx(4.25)
    assert (figures["satisfaction_rate"]["hits"], figures["satisfaction_rate"]["base"]) == (3, 4)


@pytest.mark.django_db
def test_bad_ratings_are_refused_with_a_reason():
    build_kpi_world()
    client = Client()
    wrong_phone = rate(client, "T4", "0000", "4")
    assert wrong_phone.status_code == 404
    assert "只能评价本人已办结的工单" in wrong_phone.content.decode()
    not_closed = rate(client, "T6", "5678", "4")
    assert not_closed.status_code == 404
    out_of_range = rate(client, "T4", "5678", "6")
    assert out_of_range.status_code == 400
    assert "请选择 1 到 5 分" in out_of_range.content.decode()
    assert client.get("/lookup/rate/").status_code == 405
    assert not CitizenRating.objects.filter(ticket__external_id__in=["T4", "T6"]).exists()


@pytest.mark.django_db
def test_guessing_phone_endings_is_rate_limited(settings):
    settings.FIREGRID_LOOKUP_MAX_FAILURES = 3
    build_kpi_world()
    client = Client()
    for last4 in ("0001", "0002", "0003"):
        assert rate(client, "T4", last4, "4").status_code == 404
    assert rate(client, "T4", "5678", "4").status_code == 429
    assert not CitizenRating.objects.filter(ticket__external_id="T4").exists()


@pytest.mark.django_db
def test_staff_callbacks_on_visible_closed_tickets():
    """Staff record callbacks on closed tickets they may see."""
    _units, tickets = build_kpi_world()
    handler = make_user("fire_staff", "handler")
    Department.objects.get(code="fire").members.add(handler)
    client = Client()
    client.force_login(handler)
    url = f"/supervision/tickets/{tickets['T5'].pk}/callback/"
    assert client.get(url).status_code == 200
    assert client.post(url, {"outcome": "positive", "note": "群众表示满意"}).status_code == 302
    callback = Callback.objects.get(ticket=tickets["T5"])
    assert (callback.staff, callback.outcome) == (handler, "positive")
    assert client.post(url, {"outcome": "maybe"}).status_code == 400
    # Housing's ticket is not visible to a fire handler; an open ticket has no callback.
    assert client.get(f"/supervision/tickets/{tickets['H1'].pk}/callback/").status_code == 404
    assert client.get(f"/supervision/tickets/{tickets['T6'].pk}/callback/").status_code == 404
    planner = Client()
    planner.force_login(make_user("planner", "planner"))
    assert planner.get(url).status_code == 403
    figures = kpi.compute(MARCH)["positive_callback_rate"]
    assert (figures["hits"], figures["base"]) == (3, 5)
