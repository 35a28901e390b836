"""Daily inspections through the Django client: roles and grids, tickets, resends, photos, community lists."""
import io
import uuid
from datetime import timedelta

import pytest
from django.contrib.gis.geos import MultiPolygon, Polygon
from django.core.files.uploadedfile import SimpleUploadedFile
from django.test import Client
from django.utils import timezone
from PIL import Image

from gridmap.inspections import Inspection, InspectionAnswer, InspectionPhoto
from gridmap.models import GridLevel, GridPlacement, GridUnit, TicketHandling
from spatial.models import Ticket, TicketSource, TicketStatus
from tests.test_gridmap_support import make_user
from tests.test_gridmap_support import gridmap_seed  # noqa: F401 (fixture)

pytestmark = pytest.mark.usefixtures("gridmap_seed")


def _png_bytes():
    buffer = io.BytesIO()
    Image.new("RGB", (2, 2), (200, 30, 30)).save(buffer, "PNG")
    return buffer.getvalue()


PNG = _png_bytes()
ALL_PASS = {"item_escape_routes": "pass", "item_extinguishers": "pass", "item_ebike_charging": "pass",
            "item_flammable_storage": "pass"}


def square(lng, lat, size):
    return MultiPolygon(Polygon.from_bbox((lng, lat, lng + size, lat + size)), srid=4326)


def build_world():
    """Build county C with communities CA (buildings CA-01 to CA-03) and CB (building CB-01)."""
    users = {name: make_user(name, role) for name, role in [
        ("ca_head", "grid_head"), ("cb_head", "grid_head"), ("b1_head", "grid_head"), ("planner", "planner"),
        ("leader", "leader"), ("admin", "admin")]}
    county = GridUnit.objects.create(code="C", name="测试县", level=GridLevel.COUNTY, geom=square(114.0, 22.0, 0.1))
    ca = GridUnit.objects.create(code="CA", name="东社区", level=GridLevel.COMMUNITY, parent=county,
                                 head=users["ca_head"], geom=square(114.0, 22.0, 0.05))
    cb = GridUnit.objects.create(code="CB", name="西社区", level=GridLevel.COMMUNITY, parent=county,
                                 head=users["cb_head"], geom=square(114.05, 22.0, 0.05))
    units = {"C": county, "CA": ca, "CB": cb}
    for code, parent, lng, head in [("CA-01", ca, 114.001, users["b1_head"]), ("CA-02", ca, 114.011, None),
                                    ("CA-03", ca, 114.021, None), ("CB-01", cb, 114.051, None)]:
        units[code] = GridUnit.objects.create(code=code, name=f"{code}号楼", level=GridLevel.BUILDING, parent=parent,
                                              head=head, geom=square(lng, 22.001, 0.005))
    return users, units


def client_for(user):
    client = Client()
    client.force_login(user)
    return client


def post_inspection(client, building, key=None, **fields):
    data = {"client_key": str(key or uuid.uuid4()), "building": building, "note": "", **ALL_PASS, **fields}
    return client.post("/inspections/submit/", data)


@pytest.mark.django_db
def test_pages_by_role():
    users, _units = build_world()
    expected = {"ca_head": (200, 200), "b1_head": (200, 403), "cb_head": (200, 403), "planner": (403, 403),
                "leader": (403, 200), "admin": (200, 200)}
    for name, (form_status, community_status) in expected.items():
        client = client_for(users[name])
        assert client.get("/inspections/").status_code == form_status, name
        assert client.get("/inspections/community/CA/").status_code == community_status, name
    assert Client().get("/inspections/").status_code == 302
    # The form lists only the buildings of the head's own grid.
    html = client_for(users["ca_head"]).get("/inspections/").content.decode()
    assert 'value="CA-01"' in html
    assert 'value="CA-03"' in html
    assert 'value="CB-01"' not in html
    assert 'capture="environment"' in html
    assert "gridmap/inspection.js" in html
    assert 'href="/inspections/community/CA/"' in html
    html = client_for(users["b1_head"]).get("/inspections/").content.decode()
    assert 'value="CA-01"' in html
    assert 'value="CA-02"' not in html
    assert 'href="/inspections/community/CA/"' not in html


@pytest.mark.django_db
def test_submit_scoped_to_own_grid():
    users, _units = build_world()
    response = post_inspection(client_for(users["cb_head"]), "CA-01")
    assert response.status_code == 403
    assert response.json()["error"] == "楼栋网格“CA-01”不在您负责的网格内,不能巡查。"
    assert post_inspection(client_for(users["b1_head"]), "CA-02").status_code == 403
    assert post_inspection(client_for(users["planner"]), "CA-01").status_code == 403
    assert post_inspection(client_for(users["leader"]), "CA-01").status_code == 403
    assert Inspection.objects.count() == 0
    assert post_inspection(client_for(users["b1_head"]), "CA-01").status_code == 201
    assert post_inspection(client_for(users["ca_head"]), "CA-02").status_code == 201
    assert post_inspection(client_for(users["admin"]), "CB-01").status_code == 201
    assert Inspection.objects.count() == 3


@pytest.mark.django_db
def test_submit_rejects_bad_input():
    users, _units = build_world()
    client = client_for(users["ca_head"])
    cases = [
        ({"client_key": "abc"}, "字段 client_key 缺失或不是 UUID,请刷新巡查页面后重新填写。"),
        ({"building": "CA"}, "楼栋网格“CA”不存在,请从列表中选择楼栋。"),
        ({"building": "NOPE"}, "楼栋网格“NOPE”不存在,请从列表中选择楼栋。"),
        ({"item_extinguishers": "maybe"}, "检查项“灭火器、消火栓完好有效”未选择合格或不合格,请补填。"),
        ({"recorded_at": "yesterday"}, "字段 recorded_at 的时间“yesterday”无法识别,请使用 ISO 8601 格式。"),
        ({"note": "长" * 2001}, "备注超过 2000 字,请删减。"),
    ]
    for fields, error in cases:
        data = {"client_key": str(uuid.uuid4()), "building": "CA-01", **ALL_PASS, **fields}
        response = client.post("/inspections/submit/", data)
        assert response.status_code == 400, fields
        assert response.json()["error"] == error
    late = (timezone.now() - timedelta(days=8)).isoformat()
    response = post_inspection(client, "CA-01", recorded_at=late)
    assert response.status_code == 400
    assert "已超过 7 天" in response.json()["error"]
    early = (timezone.now() + timedelta(hours=1)).isoformat()
    response = post_inspection(client, "CA-01", recorded_at=early)
    assert response.status_code == 400
    assert "晚于当前时间" in response.json()["error"]
    assert client.get("/inspections/submit/").status_code == 405
    assert Inspection.objects.count() == 0
    assert Ticket.objects.count() == 0


@pytest.mark.django_db
def test_failed_item_opens_dispatched_ticket(django_capture_on_commit_callbacks):
    users, units = build_world()
    client = client_for(users["b1_head"])
    with django_capture_on_commit_callbacks(execute=True):
        response = post_inspection(client, "CA-01", item_ebike_charging="fail", note="三楼窗口飞线充电")
    assert response.status_code == 201
    assert Ticket.objects.count() == 1
    body = response.json()
    assert body["created"] is True
    assert body["failed"] == ["ebike_charging"]
    ticket = Ticket.objects.get()
    assert body["tickets"] == [ticket.external_id] == [f"XC-{body['id']}-ebike_charging"]
    assert ticket.source == TicketSource.INSPECTION
    assert ticket.category == "ebike_charging"
    assert ticket.status == TicketStatus.DISPATCHED
    assert units["CA-01"].geom.contains(ticket.location)
    assert "三楼窗口飞线充电" in ticket.description
    assert ticket.h3_fine and ticket.h3_coarse
    assert GridPlacement.objects.get(ticket=ticket).unit == units["CA-01"]
    assert TicketHandling.objects.get(ticket=ticket).lead.code == "fire"
    answers = {answer.item: (answer.passed, answer.ticket_id) for answer in InspectionAnswer.objects.all()}
    assert answers == {"escape_routes": (True, None), "extinguishers": (True, None),
                       "ebike_charging": (False, ticket.pk), "flammable_storage": (True, None)}
    # The ticket is in the grid head's workflow pages.
    assert client.get(f"/tickets/{ticket.pk}/").status_code == 200


@pytest.mark.django_db
def test_failed_items_map_to_categories(django_capture_on_commit_callbacks):
    users, _units = build_world()
    fails = {key: "fail" for key in ALL_PASS}
    with django_capture_on_commit_callbacks(execute=True):
        assert post_inspection(client_for(users["ca_head"]), "CA-02", **fails).status_code == 201
    assert sorted(Ticket.objects.values_list("category", flat=True)) == [
        "ebike_charging", "facility_fault", "fire_lane", "flammable_storage"]
    assert set(Ticket.objects.values_list("source", flat=True)) == {"inspection"}
    assert set(Ticket.objects.values_list("status", flat=True)) == {"dispatched"}


@pytest.mark.django_db
def test_resend_same_key_creates_nothing(django_capture_on_commit_callbacks):
    users, _units = build_world()
    client = client_for(users["b1_head"])
    key = uuid.uuid4()
    with django_capture_on_commit_callbacks(execute=True):
        first = post_inspection(client, "CA-01", key=key, item_escape_routes="fail",
                                photos=[_photo("a.png")])
    with django_capture_on_commit_callbacks(execute=True) as callbacks:
        second = post_inspection(client, "CA-01", key=key, item_escape_routes="fail", photos=[_photo("a.png")])
    assert (first.status_code, second.status_code) == (201, 200)
    assert callbacks == []
    assert second.json()["id"] == first.json()["id"]
    assert second.json()["created"] is False
    assert second.json()["tickets"] == first.json()["tickets"]
    assert (Inspection.objects.count(), InspectionAnswer.objects.count(), InspectionPhoto.objects.count(),
            Ticket.objects.count()) == (1, 4, 1, 1)
    # Someone else cannot reuse (or read back) the key.
    other = post_inspection(client_for(users["ca_head"]), "CA-01", key=key)
    assert other.status_code == 409
    assert Inspection.objects.count() == 1


def _photo(name):
    return SimpleUploadedFile(name, PNG, content_type="image/png")


@pytest.mark.django_db
def test_photos_stored_and_served_by_grid(settings, tmp_path):
    settings.MEDIA_ROOT = tmp_path
    users, _units = build_world()
    response = post_inspection(client_for(users["b1_head"]), "CA-01", photos=[_photo("p1.png"), _photo("p2.png")])
    assert response.status_code == 201
    assert response.json()["photos"] == 2
    photos = list(InspectionPhoto.objects.order_by("pk"))
    assert len(photos) == 2
    assert all((tmp_path / photo.image.name).read_bytes() == PNG for photo in photos)
    url = f"/inspections/photos/{photos[0].pk}/"
    for name, status in [("b1_head", 200), ("ca_head", 200), ("leader", 200), ("admin", 200), ("cb_head", 403),
                         ("planner", 403)]:
        served = client_for(users[name]).get(url)
        assert served.status_code == status, name
        if status == 200:
            assert b"".join(served.streaming_content) == PNG
    assert Client().get(url).status_code == 302
    assert client_for(users["admin"]).get("/inspections/photos/999999/").status_code == 404
    # Not an image, whatever type the upload claims: rejected, and nothing is stored.
    for name, content_type in [("notes.txt", "text/plain"), ("fake.png", "image/png")]:
        bad = post_inspection(client_for(users["b1_head"]), "CA-01", photos=[_photo_text(name, content_type)])
        assert bad.status_code == 400
        assert bad.json()["error"] == f"照片“{name}”不是图片或超过 8 MB,请重新拍摄。"
    assert InspectionPhoto.objects.count() == 2
    assert Inspection.objects.count() == 1


def _photo_text(name, content_type):
    return SimpleUploadedFile(name, b"hello", content_type=content_type)


def _codes(html, list_id):
    start = html.index(f'id="{list_id}"')
    end = html.index("</ul>", start)
    section = html[start:end]
    return [part.split('"')[0] for part in section.split('data-code="')[1:]]


@pytest.mark.django_db
def test_community_page_inspected_and_missed():
    users, units = build_world()
    head = client_for(users["ca_head"])
    assert post_inspection(head, "CA-02", note="<script>alert(1)</script>").status_code == 201
    assert post_inspection(client_for(users["b1_head"]), "CA-01").status_code == 201
    # Yesterday's inspection of CA-03 does not count today.
    yesterday = timezone.now() - timedelta(days=1)
    assert post_inspection(head, "CA-03", recorded_at=yesterday.isoformat()).status_code == 201
    html = head.get("/inspections/community/CA/").content.decode()
    assert _codes(html, "inspected-buildings") == ["CA-01", "CA-02"]
    assert _codes(html, "missed-buildings") == ["CA-03"]
    assert "&lt;script&gt;alert(1)&lt;/script&gt;" in html
    assert "<script>alert(1)" not in html
    day = timezone.localdate(yesterday).isoformat()
    html = head.get(f"/inspections/community/CA/?date={day}").content.decode()
    assert _codes(html, "inspected-buildings") == ["CA-03"]
    assert _codes(html, "missed-buildings") == ["CA-01", "CA-02"]
    assert head.get("/inspections/community/CA/?date=bad").status_code == 404
    assert head.get("/inspections/community/CA-01/").status_code == 404
    html = client_for(users["cb_head"]).get("/inspections/community/CB/").content.decode()
    assert _codes(html, "inspected-buildings") == []
    assert _codes(html, "missed-buildings") == ["CB-01"]
    # The form marks buildings already inspected today.
    form = head.get("/inspections/").content.decode()
    assert "CA-02号楼(CA-02) · 今日已巡查" in form
    assert "CA-03号楼(CA-03)</option>" in form


@pytest.mark.django_db
def test_inspection_tickets_count_as_proactive(django_capture_on_commit_callbacks):
    from gridmap import kpi

    users, _units = build_world()
    Ticket.objects.create(source_system="test", external_id="H1", source=TicketSource.HOTLINE,
                          received_at=timezone.now(), category="fire_lane")
    with django_capture_on_commit_callbacks(execute=True):
        response = post_inspection(client_for(users["ca_head"]), "CA-02", item_escape_routes="fail",
                                   item_flammable_storage="fail")
    assert response.status_code == 201
    result = kpi.compute(kpi.period_containing("month", timezone.now()))
    assert result["proactive_rate"]["hits"] == 2
    assert result["proactive_rate"]["base"] == 3
