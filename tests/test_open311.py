"""Open311 GeoReport v2: the specification's example calls replayed against /open311/v2/, JSON and XML."""
import json
import xml.etree.ElementTree as ElementTree

import pytest
from django.test import Client

from gridmap.models import Open311Key, TicketEvent, TicketHandling
from spatial.models import Ticket
from tests.test_gridmap_support import at, make_ticket
from tests.test_gridmap_support import gridmap_seed  # noqa: F401 (fixture)

pytestmark = [pytest.mark.django_db, pytest.mark.usefixtures("gridmap_seed")]
BASE = "/open311/v2"


@pytest.fixture
def client():
    Open311Key.objects.create(key="xyz", owner="测试客户端")
    return Client()


def xml(response):
    assert response["Content-Type"] == "text/xml; charset=utf-8"
    return ElementTree.fromstring(response.content)


def test_services_list_xml_and_json(client):
    # GET https://[API endpoint]/services.xml?jurisdiction_id=city.gov
    root = xml(client.get(f"{BASE}/services.xml", {"jurisdiction_id": "city.gov"}))
    assert root.tag == "services"
    first = root.find("service")
    assert [child.tag for child in first] == ["service_code", "service_name", "description", "metadata", "type",
                                             "keywords", "group"]
    assert (first.findtext("service_code"), first.findtext("service_name"), first.findtext("metadata"),
            first.findtext("type")) == ("fire_lane", "消防通道/疏散通道堵塞", "true", "realtime")
    services = json.loads(client.get(f"{BASE}/services.json").content)
    assert [service["service_code"] for service in services] == [
        "fire_lane", "facility_fault", "ebike_charging", "separation", "flammable_storage", "electrical", "other"]
    assert services[1]["metadata"] is False


def test_service_definition(client):
    # GET https://[API endpoint]/services/033.xml?jurisdiction_id=city.gov (our codes are category names)
    root = xml(client.get(f"{BASE}/services/fire_lane.xml", {"jurisdiction_id": "city.gov"}))
    assert root.tag == "service_definition"
    assert root.findtext("service_code") == "fire_lane"
    attribute = root.find("attributes/attribute")
    assert (attribute.findtext("variable"), attribute.findtext("code"), attribute.findtext("datatype"),
            attribute.findtext("required"), attribute.findtext("order")) == (
        "true", "blocker", "singlevaluelist", "false", "1")
    assert [value.findtext("key") for value in attribute.findall("values/value")] == ["vehicle", "goods", "other"]
    missing = client.get(f"{BASE}/services/033.xml")
    assert missing.status_code == 404
    assert xml(missing).findtext("error/description") == "没有服务代码 033。"


def test_post_request_with_the_specifications_example_values(client):
    # POST https://[API endpoint]/requests.xml with the example's fields (service_code adapted).
    data = {
        "api_key": "xyz", "jurisdiction_id": "city.gov", "service_code": "fire_lane",
        "lat": "37.76524078", "long": "-122.4212043", "address_string": "1234 5th street",
        "email": "smit333@sfgov.edu", "device_id": "tt222111", "account_id": "123456", "first_name": "john",
        "last_name": "smith", "phone": "111111111", "description": "A large sinkhole is destroying the street",
        "media_url": "http://www.sfgov.org/images/sinkhole.jpg", "attribute[WHISPAWN]": "123456",
        "attribute[WHISDORN]": "COISL001",
    }
    response = client.post(f"{BASE}/requests.xml", data)
    assert response.status_code == 201
    root = xml(response)
    number = root.findtext("request/service_request_id")
    ticket = Ticket.objects.get(external_id=number)
    assert number == f"O311-{ticket.pk}"
    assert root.findtext("request/service_notice") == "消防车通道与疏散通道畅通"
    assert root.findtext("request/account_id") == "123456"
    assert (ticket.source_system, ticket.category, ticket.status) == ("open311", "fire_lane", "dispatched")
    assert (ticket.location.y, ticket.location.x, ticket.outside_study_area) == (37.76524078, -122.4212043, True)
    assert (ticket.complainant_name, ticket.complainant_phone) == ("smith john", "111111111")
    note = TicketEvent.objects.filter(ticket=ticket, kind="note").get()
    assert note.data["attributes"] == {"WHISPAWN": "123456", "WHISDORN": "COISL001"}
    assert TicketHandling.objects.get(ticket=ticket).lead.code == "fire"

    json_response = client.post(f"{BASE}/requests.json", data | {"account_id": ""})
    created = json.loads(json_response.content)
    assert list(created[0]) == ["service_request_id", "service_notice", "account_id"]
    assert created[0]["account_id"] is None


def test_post_errors(client):
    bad_key = client.post(f"{BASE}/requests.xml", {"api_key": "nope", "service_code": "fire_lane", "lat": "1",
                                                   "long": "1"})
    assert bad_key.status_code == 403
    assert xml(bad_key).findtext("error/code") == "403"
    no_place = client.post(f"{BASE}/requests.json", {"api_key": "xyz", "service_code": "fire_lane"})
    assert (no_place.status_code, json.loads(no_place.content)) == (
        400, [{"code": 400, "description": "须提供 lat 和 long,或 address_string,或 address_id 之一。"}])
    bad_code = client.post(f"{BASE}/requests.json", {"api_key": "xyz", "service_code": "001", "lat": "1",
                                                     "long": "1"})
    assert json.loads(bad_code.content)[0]["description"] == "service_code 001 无效;可用的服务见 services 接口。"
    bad_lat = client.post(f"{BASE}/requests.json", {"api_key": "xyz", "service_code": "other", "lat": "north",
                                                    "long": "1"})
    assert json.loads(bad_lat.content)[0]["description"] == "参数 lat 的值 north 不是数字。"
    assert client.get(f"{BASE}/services.html").status_code == 404
    assert client.delete(f"{BASE}/requests.json").status_code == 405
    assert Ticket.objects.count() == 0


def test_get_requests_with_the_standard_filters(client):
    # GET https://[API endpoint]/requests.xml?start_date=2010-05-24T00:00:00Z&end_date=2010-06-24T00:00:00Z&status=open
    make_ticket("S1", received_at=at(2010, 6, 1, 9, 0), category="fire_lane", description="电话13812345678")
    make_ticket("S2", received_at=at(2010, 6, 2, 9, 0), category="electrical", status="closed")
    make_ticket("S3", received_at=at(2010, 7, 1, 9, 0), category="fire_lane")
    root = xml(client.get(f"{BASE}/requests.xml", {"start_date": "2010-05-24T00:00:00Z",
                                                   "end_date": "2010-06-24T00:00:00Z", "status": "open"}))
    requests = root.findall("request")
    assert [request.findtext("service_request_id") for request in requests] == ["S1"]
    first = requests[0]
    assert [child.tag for child in first] == [
        "service_request_id", "status", "status_notes", "service_name", "service_code", "description",
        "agency_responsible", "service_notice", "requested_datetime", "updated_datetime", "expected_datetime",
        "address", "address_id", "zipcode", "lat", "long", "media_url"]
    assert first.findtext("status") == "open"
    assert first.findtext("requested_datetime") == "2010-06-01T09:00:00+08:00"
    assert first.findtext("description") == "电话138****5678"
    assert b"13812345678" not in client.get(f"{BASE}/requests.json", {"start_date": "2010-01-01T00:00:00Z"}).content
    closed = json.loads(client.get(f"{BASE}/requests.json", {"start_date": "2010-01-01T00:00:00Z",
                                                             "status": "closed"}).content)
    assert [item["service_request_id"] for item in closed] == ["S2"]
    by_code = json.loads(client.get(f"{BASE}/requests.json", {"start_date": "2010-01-01T00:00:00Z",
                                                              "service_code": "fire_lane"}).content)
    assert [item["service_request_id"] for item in by_code] == ["S3", "S1"]
    by_id = json.loads(client.get(f"{BASE}/requests.json", {"service_request_id": "S2,S3"}).content)
    assert sorted(item["service_request_id"] for item in by_id) == ["S2", "S3"]
    # Without dates the last 90 days are searched: these 2010 tickets are not.
    assert json.loads(client.get(f"{BASE}/requests.json").content) == []
    bad = client.get(f"{BASE}/requests.json", {"start_date": "yesterday"})
    assert bad.status_code == 400
    assert client.get(f"{BASE}/requests.json", {"status": "pending"}).status_code == 400


def test_get_single_request(client):
    # GET https://[API endpoint]/requests/123456.xml?jurisdiction_id=city.gov
    make_ticket("123456", received_at=at(2010, 4, 14, 6, 37), category="facility_fault")
    root = xml(client.get(f"{BASE}/requests/123456.xml", {"jurisdiction_id": "city.gov"}))
    assert root.tag == "service_requests"
    assert root.findtext("request/service_request_id") == "123456"
    assert root.findtext("request/service_name") == "消防设施故障"
    missing = client.get(f"{BASE}/requests/999.json")
    assert (missing.status_code, json.loads(missing.content)[0]["code"]) == (404, 404)
    assert client.get(f"{BASE}/tokens/123456.xml").status_code == 404


def test_reads_can_require_a_key(client, settings):
    settings.FIREGRID_OPEN311_PUBLIC_READ = False
    assert client.get(f"{BASE}/services.json").status_code == 403
    assert client.get(f"{BASE}/services.json", {"api_key": "xyz"}).status_code == 200
