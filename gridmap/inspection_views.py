"""Daily inspection pages: the phone form, its upload endpoint, community day lists and photos.

Grid heads inspect the building units they head or that lie below a unit
they head (``units_for_head``); administrators may inspect any building.
``static/gridmap/inspection.js`` keeps the form in the phone's localStorage
and posts it here once the connection works. Each post carries a client
UUID, so a second post with the same UUID returns the stored inspection.
"""
import logging
import uuid
from datetime import timedelta

from django.conf import settings
from django.core.exceptions import PermissionDenied
from django.db import IntegrityError, transaction
from django.http import FileResponse, Http404, JsonResponse
from django.shortcuts import get_object_or_404, render
from django.utils import timezone
from django.utils.dateparse import parse_date, parse_datetime
from django.utils.translation import gettext as _
from django.views.decorators.http import require_POST
from PIL import Image

from gridmap.dispatch import dispatch_ticket, units_for_head
from gridmap.inspections import ITEM_CATEGORY, CheckItem, Inspection, InspectionAnswer, InspectionPhoto
from gridmap.models import GridLevel, GridUnit
from gridmap.roles import Role, has_role, role_required
from spatial.coords import h3_cells
from spatial.models import Ticket, TicketSource, TicketStatus

logger = logging.getLogger(__name__)

INSPECTION_ROLES = (Role.GRID_HEAD, Role.ADMIN)
COMMUNITY_PAGE_ROLES = (Role.GRID_HEAD, Role.LEADER, Role.ADMIN)
TICKET_SOURCE_SYSTEM = "grid-inspection"
MAX_PHOTOS = 6
MAX_PHOTO_BYTES = 8 * 1024 * 1024
MAX_NOTE_CHARS = 2000
# A form kept on a phone may arrive late, but not from the future or weeks later.
MAX_CLIENT_CLOCK_AHEAD = timedelta(minutes=10)
MAX_OFFLINE_AGE = timedelta(days=7)
PASS, FAIL = "pass", "fail"


class InspectionError(Exception):
    """Bad input, with the HTTP status and a Chinese message for the phone."""

    def __init__(self, message, status=400):
        super().__init__(message)
        self.status = status


def _sees_all(user):
    return has_role(user, Role.ADMIN) or has_role(user, Role.LEADER)


def inspectable_buildings(user):
    """Return the building units ``user`` may inspect."""
    buildings = GridUnit.objects.filter(level=GridLevel.BUILDING)
    if has_role(user, Role.ADMIN):
        return buildings
    return buildings.filter(pk__in=units_for_head(user))


def visible_communities(user):
    units = GridUnit.objects.filter(level=GridLevel.COMMUNITY)
    if _sees_all(user):
        return units
    return units.filter(pk__in=units_for_head(user))


@role_required(*INSPECTION_ROLES)
def inspection_form(request):
    """Render the phone page: pick a building, fill in the checklist, add photos and a note."""
    today = timezone.localdate()
    buildings = list(inspectable_buildings(request.user).select_related("parent").order_by("code"))
    done_today = set(Inspection.objects.filter(inspected_on=today, building__in=buildings)
                     .values_list("building_id", flat=True))
    return render(request, "gridmap/inspections/form.html", {
        "buildings": [(unit, unit.pk in done_today) for unit in buildings],
        "items": CheckItem.choices,
        "communities": visible_communities(request.user).order_by("code"),
        "today": today,
    })


def _parse_inspected_at(value, now):
    if not value:
        return now
    moment = parse_datetime(value)
    if moment is None:
        raise InspectionError(_("字段 recorded_at 的时间“%(value)s”无法识别,请使用 ISO 8601 格式。") % {"value": value})
    if timezone.is_naive(moment):
        moment = timezone.make_aware(moment)
    if moment > now + MAX_CLIENT_CLOCK_AHEAD:
        raise InspectionError(_("巡查时间 %(value)s 晚于当前时间,请校准手机时钟后重新提交。") % {"value": value})
    if moment < now - MAX_OFFLINE_AGE:
        raise InspectionError(_("巡查时间 %(value)s 已超过 7 天,不能再补交,请重新巡查。") % {"value": value})
    return moment


def _is_image(upload):
    """Return True when Pillow reads ``upload`` as an image, whatever type the phone claimed."""
    try:
        with Image.open(upload) as image:
            image.verify()
    except (OSError, SyntaxError, ValueError):
        return False
    finally:
        upload.seek(0)
    return True


def _parse(request):
    """Validate the posted form and return (key, building, inspected_at, answers, note, photos)."""
    try:
        key = uuid.UUID(request.POST.get("client_key", ""))
    except ValueError as error:
        raise InspectionError(_("字段 client_key 缺失或不是 UUID,请刷新巡查页面后重新填写。")) from error
    code = request.POST.get("building", "").strip()
    building = GridUnit.objects.filter(code=code).first()
    if building is None or building.level != GridLevel.BUILDING:
        raise InspectionError(_("楼栋网格“%(code)s”不存在,请从列表中选择楼栋。") % {"code": code})
    if not inspectable_buildings(request.user).filter(pk=building.pk).exists():
        raise InspectionError(_("楼栋网格“%(code)s”不在您负责的网格内,不能巡查。") % {"code": code}, status=403)
    answers = {}
    for item, label in CheckItem.choices:
        value = request.POST.get(f"item_{item}", "")
        if value not in (PASS, FAIL):
            raise InspectionError(_("检查项“%(label)s”未选择合格或不合格,请补填。") % {"label": label})
        answers[item] = value == PASS
    note = request.POST.get("note", "").strip()
    if len(note) > MAX_NOTE_CHARS:
        raise InspectionError(_("备注超过 %(n)s 字,请删减。") % {"n": MAX_NOTE_CHARS})
    photos = request.FILES.getlist("photos")
    if len(photos) > MAX_PHOTOS:
        raise InspectionError(_("照片最多 %(n)s 张,本次有 %(count)s 张。") % {"n": MAX_PHOTOS, "count": len(photos)})
    for photo in photos:
        if photo.size > MAX_PHOTO_BYTES or not _is_image(photo):
            raise InspectionError(_("照片“%(name)s”不是图片或超过 8 MB,请重新拍摄。") % {"name": photo.name})
    inspected_at = _parse_inspected_at(request.POST.get("recorded_at", ""), timezone.now())
    return key, building, inspected_at, answers, note, photos


def _open_ticket(inspection, item, now):
    """Create the ticket of one failed item. The caller dispatches it after commit."""
    building = inspection.building
    location = building.geom.point_on_surface
    label = CheckItem(item).label
    description = _("网格巡查发现:%(item)s 不合格。") % {"item": label}
    if inspection.note:
        description = f"{description}\n{inspection.note}"
    return Ticket.objects.create(
        source_system=TICKET_SOURCE_SYSTEM, external_id=f"XC-{inspection.pk}-{item}",
        source=TicketSource.INSPECTION, received_at=now, status=TicketStatus.RECEIVED,
        category=ITEM_CATEGORY[item], raw_type=str(label), description=description,
        address=building.name[:500], location=location, orig_lng=location.x, orig_lat=location.y,
        orig_crs="wgs84",
        h3_fine=int(h3_cells([location.y], [location.x], settings.FIREGRID_H3_RES_FINE)[0]),
        h3_coarse=int(h3_cells([location.y], [location.x], settings.FIREGRID_H3_RES_COARSE)[0]))


def _dispatch(ticket):
    """Dispatch a new inspection ticket as the system, logging a failure instead of raising it."""
    try:
        dispatch_ticket(ticket)
    except Exception:  # noqa: BLE001  the inspection is stored; the phone must not resend because of this
        # NOTE: a ticket whose dispatch failed stays "received" and is not retried automatically.
        logger.exception("dispatch of inspection ticket %s failed", ticket.external_id)


def _summary(inspection, created):
    answers = list(inspection.answers.select_related("ticket").order_by("item"))
    return {
        "id": inspection.pk, "created": created, "client_key": str(inspection.client_key),
        "building": inspection.building.code, "inspected_on": inspection.inspected_on.isoformat(),
        "failed": [answer.item for answer in answers if not answer.passed],
        "tickets": [answer.ticket.external_id for answer in answers if answer.ticket_id],
        "photos": inspection.photos.count(),
        "message": _("巡查记录已提交。") if created else _("该巡查记录此前已提交,未重复保存。"),
    }


def _existing(request, key):
    inspection = Inspection.objects.filter(client_key=key).select_related("building").first()
    if inspection is not None and inspection.inspector_id != request.user.pk:
        raise InspectionError(_("提交编号已被其他人的巡查记录使用,请刷新页面后重新填写。"), status=409)
    return inspection


@require_POST
@role_required(*INSPECTION_ROLES)
def submit(request):
    """Store one inspection and return it as JSON. A resend with the same client_key returns the stored one."""
    try:
        try:
            key = uuid.UUID(request.POST.get("client_key", ""))
        except ValueError:
            key = None
        existing = _existing(request, key) if key else None
        if existing is not None:
            return JsonResponse(_summary(existing, False))
        key, building, inspected_at, answers, note, photos = _parse(request)
        now = timezone.now()
        try:
            with transaction.atomic():
                inspection = Inspection.objects.create(
                    client_key=key, building=building, inspector=request.user, inspected_at=inspected_at,
                    inspected_on=timezone.localdate(inspected_at), note=note)
                tickets = []
                for item, passed in answers.items():
                    ticket = None if passed else _open_ticket(inspection, item, now)
                    InspectionAnswer.objects.create(inspection=inspection, item=item, passed=passed, ticket=ticket)
                    if ticket is not None:
                        tickets.append(ticket)
                # NOTE: files already written stay on disk when the transaction rolls back (a lost race).
                for photo in photos:
                    InspectionPhoto.objects.create(inspection=inspection, image=photo)
                for ticket in tickets:
                    transaction.on_commit(lambda ticket=ticket: _dispatch(ticket))
        except IntegrityError:
            # Two sends of the same form raced; the first one stored it.
            existing = _existing(request, key)
            if existing is None:
                raise
            return JsonResponse(_summary(existing, False))
    except InspectionError as error:
        logger.info("inspection from user %s rejected: %s", request.user.pk, error)
        return JsonResponse({"error": str(error)}, status=error.status)
    logger.info("inspection %s of %s stored, %s tickets", inspection.pk, building.code, len(tickets))
    return JsonResponse(_summary(inspection, True), status=201)


@role_required(*COMMUNITY_PAGE_ROLES)
def community_day(request, code):
    """List the buildings of a community inspected on a day (default today) and those missed."""
    community = get_object_or_404(GridUnit, code=code, level=GridLevel.COMMUNITY)
    if not visible_communities(request.user).filter(pk=community.pk).exists():
        raise PermissionDenied(_("社区网格“%(code)s”不在您负责的网格内。") % {"code": code})
    today = timezone.localdate()
    day = today
    if request.GET.get("date"):
        day = parse_date(request.GET["date"])
        if day is None:
            raise Http404(_("日期“%(value)s”无法识别,请使用 YYYY-MM-DD 格式。") % {"value": request.GET["date"]})
    buildings = list(GridUnit.objects.filter(parent=community, level=GridLevel.BUILDING).order_by("code"))
    inspections = (Inspection.objects.filter(inspected_on=day, building__in=buildings)
                   .select_related("inspector", "building").prefetch_related("answers", "photos")
                   .order_by("building__code", "inspected_at"))
    by_building = {}
    for inspection in inspections:
        by_building.setdefault(inspection.building_id, []).append(inspection)
    inspected = [(unit, by_building[unit.pk]) for unit in buildings if unit.pk in by_building]
    missed = [unit for unit in buildings if unit.pk not in by_building]
    return render(request, "gridmap/inspections/community.html", {
        "community": community, "day": day, "is_today": day == today,
        "previous_day": day - timedelta(days=1), "next_day": day + timedelta(days=1) if day < today else None,
        "inspected": inspected, "missed": missed, "item_labels": dict(CheckItem.choices),
    })


@role_required(*COMMUNITY_PAGE_ROLES)
def photo(request, pk):
    """Serve an inspection photo to users who see its building."""
    item = get_object_or_404(InspectionPhoto.objects.select_related("inspection"), pk=pk)
    if not _sees_all(request.user) and item.inspection.building_id not in units_for_head(request.user):
        raise PermissionDenied(_("这张照片不在您负责的网格内。"))
    try:
        return FileResponse(item.image.open("rb"))
    except FileNotFoundError as error:
        raise Http404(_("照片文件已不存在。")) from error
