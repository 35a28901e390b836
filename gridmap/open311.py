"""Open311 GeoReport v2 under /open311/v2/: services, definitions, requests, in JSON and XML.

Services are the fire-safety categories (``service_code`` is the category
value). POST requests needs an active ``Open311Key`` and creates a ticket
that is dispatched like any other; ``service_request_id`` is the ticket's
number. Reading is open to anyone, as the specification intends, unless
``FIREGRID_OPEN311_PUBLIC_READ`` is off; responses never carry the
complainant's name or phone, and phone and ID numbers in descriptions are
masked. Errors follow the specification: a list of {code, description}.
"""
import datetime
import json
import logging
import uuid
import xml.etree.ElementTree as ElementTree

from django.conf import settings
from django.contrib.gis.geos import Point
from django.db import transaction
from django.http import HttpResponse
from django.utils import timezone
from django.utils.dateparse import parse_datetime
from django.utils.translation import gettext as _
from django.utils.translation import gettext_lazy
from django.views.decorators.csrf import csrf_exempt

from gridmap.dispatch import dispatch_ticket
from gridmap.models import Open311Key, RectificationStandard, TicketEvent, TicketHandling
from spatial.coords import h3_cells, inside_bbox, parse_bbox
from spatial.models import Ticket, TicketSource, TicketStatus
from spatial.privacy import mask_personal_numbers
from spatial.taxonomy import KEYWORD_RULES, Category

logger = logging.getLogger(__name__)

FORMATS = {"json": "application/json; charset=utf-8", "xml": "text/xml; charset=utf-8"}
MAX_REQUESTS = 1000
DEFAULT_WINDOW = datetime.timedelta(days=90)
SOURCE_SYSTEM = "open311"

# Attributes asked for by services whose metadata is true (service definitions).
ATTRIBUTES = {
    Category.FIRE_LANE: [{
        "variable": True, "code": "blocker", "datatype": "singlevaluelist", "required": False,
        "datatype_description": "", "order": 1, "description": gettext_lazy("占用通道的是什么?"),
        "values": [{"key": "vehicle", "name": gettext_lazy("车辆")}, {"key": "goods", "name": gettext_lazy("货物杂物")},
                   {"key": "other", "name": gettext_lazy("其他")}],
    }],
    Category.EBIKE_CHARGING: [{
        "variable": True, "code": "place", "datatype": "singlevaluelist", "required": False,
        "datatype_description": "", "order": 1, "description": gettext_lazy("在哪里充电?"),
        "values": [{"key": "stairwell", "name": gettext_lazy("楼道或楼梯间")}, {"key": "window", "name": gettext_lazy("从窗户拉线(飞线充电)")},
                   {"key": "other", "name": gettext_lazy("其他")}],
    }],
}


class Open311Error(Exception):
    def __init__(self, status, description):
        super().__init__(description)
        self.status, self.description = status, description


def _render(fmt, root_name, item_name, items, status=200):
    if fmt == "json":
        body = json.dumps(items, ensure_ascii=False, default=str)
    else:
        root = ElementTree.Element(root_name)
        for item in items:
            _to_xml(ElementTree.SubElement(root, item_name), item)
        body = '<?xml version="1.0" encoding="utf-8"?>' + ElementTree.tostring(root, encoding="unicode")
    return HttpResponse(body, status=status, content_type=FORMATS[fmt])


def _to_xml(element, value):
    if isinstance(value, dict):
        for key, child in value.items():
            if key == "attributes" and isinstance(child, list):
                wrapper = ElementTree.SubElement(element, "attributes")
                for attribute in child:
                    _to_xml(ElementTree.SubElement(wrapper, "attribute"), attribute)
            elif key == "values" and isinstance(child, list):
                wrapper = ElementTree.SubElement(element, "values")
                for entry in child:
                    _to_xml(ElementTree.SubElement(wrapper, "value"), entry)
            else:
                _to_xml(ElementTree.SubElement(element, key), child)
    elif isinstance(value, bool):
        element.text = "true" if value else "false"
    elif value is not None:
        element.text = str(value)


def _error(fmt, status, description):
    fmt = fmt if fmt in FORMATS else "json"
    return _render(fmt, "errors", "error", [{"code": status, "description": description}], status=status)


def _endpoint(method_names):
    def decorator(view):
        @csrf_exempt
        def wrapped(request, *args, fmt, **kwargs):
            if fmt not in FORMATS:
                return _error("json", 404, _("不支持的格式 %(fmt)s;请使用 json 或 xml。") % {"fmt": fmt})
            if request.method not in method_names:
                return _error(fmt, 405, _("此接口不支持 %(method)s 请求。") % {"method": request.method})
            try:
                if request.method == "GET" and not settings.FIREGRID_OPEN311_PUBLIC_READ:
                    _check_key(request.GET.get("api_key"))
                return view(request, *args, fmt=fmt, **kwargs)
            except Open311Error as error:
                logger.info("open311 %s %s rejected with %s: %s", request.method, request.path, error.status,
                            error.description)
                return _error(fmt, error.status, error.description)
        wrapped.__name__ = view.__name__
        wrapped.__doc__ = view.__doc__
        return wrapped
    return decorator


def _check_key(key):
    if not key or not Open311Key.objects.filter(key=key, active=True).exists():
        raise Open311Error(403, _("api_key 无效或缺失,不能执行此操作。"))


def _service(category):
    keywords = next((words for rule_category, words in KEYWORD_RULES if rule_category == category), [])
    return {
        "service_code": category.value, "service_name": str(category.label),
        "description": str(category.label), "metadata": category in ATTRIBUTES, "type": "realtime",
        "keywords": ", ".join(word for word in keywords if not word.isascii())[:200],
        "group": _("消防安全"),
    }


@_endpoint({"GET"})
def discovery(request, fmt):
    """Return where the endpoint is and which specification it follows."""
    item = {"changeset": "2026-12-04T00:00:00+08:00", "contact": settings.DEFAULT_FROM_EMAIL,
            "key_service": settings.DEFAULT_FROM_EMAIL,
            "endpoints": {"specification": "http://wiki.open311.org/GeoReport_v2",
                          "url": request.build_absolute_uri("/open311/v2"), "type": "production",
                          "formats": ", ".join(FORMATS.values())}}
    if fmt == "json":
        return HttpResponse(json.dumps(item, ensure_ascii=False), content_type=FORMATS[fmt])
    root = ElementTree.Element("discovery")
    _to_xml(root, item)
    return HttpResponse('<?xml version="1.0" encoding="utf-8"?>' + ElementTree.tostring(root, encoding="unicode"),
                        content_type=FORMATS[fmt])


@_endpoint({"GET"})
def services(request, fmt):
    """GET Service List."""
    return _render(fmt, "services", "service", [_service(category) for category in Category])


@_endpoint({"GET"})
def service_definition(request, code, fmt):
    """Return the attributes a service requires (GET Service Definition)."""
    category = next((category for category in Category if category.value == code), None)
    if category is None:
        raise Open311Error(404, _("没有服务代码 %(code)s。") % {"code": code})
    if category not in ATTRIBUTES:
        raise Open311Error(404, _("服务 %(code)s 没有附加属性(metadata 为 false)。") % {"code": code})
    definition = {"service_code": code, "attributes": [
        {**attribute, "description": str(attribute["description"]),
         "values": [{"key": value["key"], "name": str(value["name"])} for value in attribute["values"]]}
        for attribute in ATTRIBUTES[category]]}
    if fmt == "json":
        return HttpResponse(json.dumps(definition, ensure_ascii=False), content_type=FORMATS[fmt])
    root = ElementTree.Element("service_definition")
    _to_xml(root, definition)
    return HttpResponse('<?xml version="1.0" encoding="utf-8"?>' + ElementTree.tostring(root, encoding="unicode"),
                        content_type=FORMATS[fmt])


def _iso(moment):
    return timezone.localtime(moment).isoformat(timespec="seconds") if moment else None


def _request_item(ticket, handling, last_event_at):
    notice = ""
    if handling is not None and handling.deadline_rule_id:
        notice = handling.deadline_rule.name
    return {
        "service_request_id": ticket.external_id,
        "status": "closed" if ticket.status == TicketStatus.CLOSED else "open",
        "status_notes": str(TicketStatus(ticket.status).label),
        "service_name": str(Category(ticket.category).label),
        "service_code": ticket.category,
        "description": mask_personal_numbers(ticket.description),
        "agency_responsible": handling.lead.name if handling is not None and handling.lead_id else "",
        "service_notice": notice,
        "requested_datetime": _iso(ticket.received_at),
        "updated_datetime": _iso(last_event_at or ticket.received_at),
        "expected_datetime": _iso(handling.due_at) if handling is not None else None,
        "address": ticket.address,
        "address_id": "",
        "zipcode": "",
        "lat": ticket.location.y if ticket.location else None,
        "long": ticket.location.x if ticket.location else None,
        "media_url": "",
    }


def _items(tickets):
    tickets = list(tickets)
    ids = [ticket.pk for ticket in tickets]
    handlings = {handling.ticket_id: handling for handling in TicketHandling.objects.filter(ticket_id__in=ids)
                 .select_related("lead", "deadline_rule")}
    latest = {}
    for ticket_id, moment in TicketEvent.objects.filter(ticket_id__in=ids).values_list("ticket_id", "at"):
        latest[ticket_id] = max(moment, latest.get(ticket_id, moment))
    return [_request_item(ticket, handlings.get(ticket.pk), latest.get(ticket.pk)) for ticket in tickets]


def _parse_date(params, name):
    text = params.get(name)
    if not text:
        return None
    moment = parse_datetime(text.strip().replace(" ", "+"))
    if moment is None:
        raise Open311Error(400, _("参数 %(name)s 的值 %(value)s 不是 W3C 日期时间(如 2010-01-01T00:00:00Z)。")
                           % {"name": name, "value": text})
    return moment if timezone.is_aware(moment) else timezone.make_aware(moment)


@_endpoint({"GET", "POST"})
def requests(request, fmt):
    """GET Service Requests with the standard filters, or POST Service Request with an API key."""
    if request.method == "POST":
        return _create(request, fmt)
    params = request.GET
    tickets = Ticket.objects.all()
    if params.get("service_request_id"):
        numbers = [number.strip() for number in params["service_request_id"].split(",") if number.strip()]
        tickets = tickets.filter(external_id__in=numbers)
    else:
        if params.get("service_code"):
            codes = [code.strip() for code in params["service_code"].split(",") if code.strip()]
            tickets = tickets.filter(category__in=codes)
        start, end = _parse_date(params, "start_date"), _parse_date(params, "end_date")
        if start and end and start > end:
            raise Open311Error(400, _("start_date 不能晚于 end_date。"))
        if start is None and end is None:
            start = timezone.now() - DEFAULT_WINDOW
        if start:
            tickets = tickets.filter(received_at__gte=start)
        if end:
            tickets = tickets.filter(received_at__lte=end)
        if params.get("status"):
            statuses = {status.strip() for status in params["status"].split(",")}
            if not statuses <= {"open", "closed"}:
                raise Open311Error(400, _("status 只能是 open 或 closed。"))
            if statuses == {"open"}:
                tickets = tickets.exclude(status=TicketStatus.CLOSED)
            elif statuses == {"closed"}:
                tickets = tickets.filter(status=TicketStatus.CLOSED)
    tickets = tickets.order_by("-received_at", "-pk")[:MAX_REQUESTS]
    return _render(fmt, "service_requests", "request", _items(tickets))


@_endpoint({"GET"})
def single_request(request, request_id, fmt):
    """Return one request by its id, as a one-item list as the specification defines (GET Service Request)."""
    tickets = Ticket.objects.filter(external_id=request_id).order_by("pk")
    if not tickets.exists():
        raise Open311Error(404, _("没有编号为 %(id)s 的服务请求。") % {"id": request_id})
    return _render(fmt, "service_requests", "request", _items(tickets))


@_endpoint({"GET"})
def token(request, token, fmt):
    """GET request_id from a token: requests get their id at once, so tokens are never issued."""
    raise Open311Error(404, _("本系统创建请求时直接返回 service_request_id,不使用 token。"))


def _float(params, name):
    try:
        return float(params[name])
    except (TypeError, ValueError) as error:
        raise Open311Error(400, _("参数 %(name)s 的值 %(value)s 不是数字。") % {
            "name": name, "value": params.get(name)}) from error


def _create(request, fmt):
    params = request.POST
    _check_key(params.get("api_key"))
    code = (params.get("service_code") or "").strip()
    category = next((category for category in Category if category.value == code), None)
    if category is None:
        raise Open311Error(400, _("service_code %(code)s 无效;可用的服务见 services 接口。") % {"code": code or "-"})
    has_point = params.get("lat") not in (None, "") and params.get("long") not in (None, "")
    address = (params.get("address_string") or "").strip()
    if not has_point and not address and not params.get("address_id"):
        raise Open311Error(400, _("须提供 lat 和 long,或 address_string,或 address_id 之一。"))
    location = None
    if has_point:
        lat, lng = _float(params, "lat"), _float(params, "long")
        if not (-90 <= lat <= 90 and -180 <= lng <= 180):
            raise Open311Error(400, _("坐标 lat=%(lat)s long=%(lng)s 超出范围。") % {"lat": lat, "lng": lng})
        location = Point(lng, lat, srid=4326)
    attributes = {key[len("attribute["):-1]: value for key, value in params.items() if key.startswith("attribute[")}
    description = (params.get("description") or "").strip()[:4000]
    name = " ".join(part for part in (params.get("last_name", "").strip(), params.get("first_name", "").strip())
                    if part)
    with transaction.atomic():
        ticket = Ticket(
            source_system=SOURCE_SYSTEM, external_id=uuid.uuid4().hex, source=TicketSource.OTHER,
            received_at=timezone.now(), category=category, raw_type=str(category.label), description=description,
            address=address[:500], location=location, orig_lng=location.x if location else None,
            orig_lat=location.y if location else None, orig_crs="wgs84" if location else "",
            complainant_name=name[:100], complainant_phone=(params.get("phone") or "").strip()[:40])
        if location is not None:
            ticket.outside_study_area = not bool(inside_bbox(location.y, location.x,
                                                             parse_bbox(settings.FIREGRID_STUDY_AREA)))
            ticket.h3_fine = int(h3_cells([location.y], [location.x], settings.FIREGRID_H3_RES_FINE)[0])
            ticket.h3_coarse = int(h3_cells([location.y], [location.x], settings.FIREGRID_H3_RES_COARSE)[0])
        ticket.save()
        # A short number a citizen can read out on the phone.
        ticket.external_id = f"O311-{ticket.pk}"
        ticket.save(update_fields=["external_id"])
        TicketEvent.objects.create(
            ticket=ticket, kind="note", at=ticket.received_at, from_status=ticket.status, to_status=ticket.status,
            note=_("经 Open311 接口受理"),
            data={"attributes": attributes, "device_id": params.get("device_id", ""),
                  "account_id": params.get("account_id", ""), "media_url": params.get("media_url", "")})
        dispatch_ticket(ticket)
    standard = RectificationStandard.objects.filter(category=category).first()
    return _render(fmt, "service_requests", "request", [{
        "service_request_id": ticket.external_id,
        "service_notice": standard.title if standard else "",
        "account_id": params.get("account_id") or None,
    }], status=201)
