"""The ticket workflow as an explicit state machine with append-only events.

States are ``spatial.TicketStatus``. ``TRANSITIONS`` lists every allowed
move; ``transition`` is the only code that changes ``Ticket.status``. It
locks the ticket row (SELECT ... FOR UPDATE) for the whole change, checks
the move and the optional version the user saw, writes the new status and
appends one ``TicketEvent`` in the same transaction. Two handlers acting at
once are therefore serialised: the second one sees the first one's state
and gets an InvalidTransition error instead of losing an event.
"""
from django.core.exceptions import ValidationError
from django.db import transaction
from django.utils import timezone
from django.utils.translation import gettext as _

from gridmap import deadlines
from gridmap.exceptions import ConcurrentChange, InvalidTransition
from gridmap.models import Card, EventKind, EventPhoto, TicketEvent, TicketHandling
from gridmap.roles import Role, has_role
from spatial.models import Ticket, TicketStatus

S = TicketStatus
# from status -> statuses it may move to
TRANSITIONS = {
    S.RECEIVED: {S.DISPATCHED},
    S.DISPATCHED: {S.ACCEPTED, S.DISPATCHED},
    S.ACCEPTED: {S.ON_SITE},
    S.ON_SITE: {S.RECTIFIED},
    S.RECTIFIED: {S.CLOSED, S.ON_SITE},
    S.CLOSED: {S.REOPENED},
    S.REOPENED: {S.DISPATCHED},
}

# Actions of the handler pages and the status each one moves to.
ACTIONS = {
    "accept": S.ACCEPTED,
    "on_site": S.ON_SITE,
    "rectify": S.RECTIFIED,
    "close": S.CLOSED,
    "reopen": S.REOPENED,
}
MAX_PHOTOS = 9


def allowed_targets(status):
    return TRANSITIONS.get(S(status), set())


def is_lead_member(user, handling):
    return bool(handling.lead_id) and handling.lead.members.filter(pk=user.pk).exists()


def is_lead_head(user, handling):
    return bool(handling.lead_id) and handling.lead.head_id == user.pk


def check_actor(user, handling, to_status):
    """Raise InvalidTransition unless ``user`` may move the ticket to ``to_status``."""
    if has_role(user, Role.ADMIN):
        return
    if to_status in (S.ACCEPTED, S.ON_SITE, S.RECTIFIED):
        if has_role(user, Role.HANDLER) and is_lead_member(user, handling):
            return
        raise InvalidTransition(_("只有牵头部门的承办人可以办理此工单。"))
    if to_status == S.CLOSED:
        if is_lead_head(user, handling):
            return
        raise InvalidTransition(_("只有牵头部门负责人或管理员可以办结工单。"))
    raise InvalidTransition(_("只有管理员(派单员)可以执行此操作。"))


def transition(ticket, to_status, *, actor=None, note="", photos=(), expected_version=None, apply=None,
               system=False):
    """Move ``ticket`` to ``to_status`` and append the event; return the TicketHandling.

    Parameters
    ----------
    ticket : spatial.Ticket or int
    to_status : TicketStatus
    actor : User or None
        Checked with ``check_actor`` unless ``system`` is true (dispatch rules).
    note : str
        Shown in the timeline.
    photos : iterable of uploaded files, stored as EventPhoto rows.
    expected_version : int, optional
        The ``TicketHandling.version`` the user's page showed; a different
        current version raises ConcurrentChange.
    apply : callable(handling, now) -> dict, optional
        Further changes made under the same lock; its result is stored in the event's ``data``.

    Raises
    ------
    InvalidTransition
        The move is not in TRANSITIONS, the actor may not make it, or a red
        card has no written explanation yet (closing).
    """
    to_status = S(to_status)
    ticket_id = ticket.pk if isinstance(ticket, Ticket) else int(ticket)
    photos = list(photos)
    if len(photos) > MAX_PHOTOS:
        raise InvalidTransition(_("每次最多上传 %(n)s 张照片。") % {"n": MAX_PHOTOS})
    with transaction.atomic():
        locked = Ticket.objects.select_for_update().get(pk=ticket_id)
        handling, _created = TicketHandling.objects.select_for_update().get_or_create(ticket=locked)
        handling.ticket = locked
        if expected_version is not None and int(expected_version) != handling.version:
            raise ConcurrentChange(_("工单已被他人更新(当前状态:%(status)s),请刷新页面后再操作。")
                                   % {"status": S(locked.status).label})
        from_status = S(locked.status)
        if to_status not in allowed_targets(from_status):
            raise InvalidTransition(_("工单当前状态为“%(from)s”,不能变更为“%(to)s”。") % {
                "from": from_status.label, "to": to_status.label})
        if not system:
            check_actor(actor, handling, to_status)
        if to_status == S.CLOSED and handling.card == Card.RED and not handling.red_explanation.strip():
            raise InvalidTransition(_("该工单已亮红牌,须由牵头部门负责人提交书面说明后才能办结。"))
        now = timezone.now()
        data = apply(handling, now) if apply else {}
        locked.status = to_status
        fields = ["status"]
        if to_status == S.CLOSED:
            locked.closed_at, fields = now, fields + ["closed_at"]
        elif to_status == S.REOPENED:
            locked.closed_at, fields = None, fields + ["closed_at"]
        locked.save(update_fields=fields)
        if handling.milestone and handling.met_at is None and deadlines.milestone_reached(
                handling.milestone, to_status):
            handling.met_at = now
        handling.version += 1
        handling.save()
        kind = EventKind.ASSIGNMENT if to_status == S.DISPATCHED else EventKind.TRANSITION
        event = TicketEvent.objects.create(ticket=locked, kind=kind, actor=actor, at=now, from_status=from_status,
                                           to_status=to_status, note=note, data=data or {})
        for photo in photos:
            EventPhoto.objects.create(event=event, image=photo)
    if isinstance(ticket, Ticket):
        ticket.status, ticket.closed_at = locked.status, locked.closed_at
    return handling


def perform(ticket, action, actor, *, note="", photos=(), expected_version=None):
    """Run a handler action by name (``ACTIONS``); return the TicketHandling."""
    if action not in ACTIONS:
        raise InvalidTransition(_("未知操作:%(action)s") % {"action": action})
    if action == "rectify" and not photos:
        raise InvalidTransition(_("提交整改须上传至少一张整改后的现场照片。"))
    return transition(ticket, ACTIONS[action], actor=actor, note=note, photos=photos,
                      expected_version=expected_version)


def _append_without_move(ticket, kind, actor, note, check, change, expected_version=None):
    with transaction.atomic():
        locked = Ticket.objects.select_for_update().get(pk=ticket.pk)
        handling, _created = TicketHandling.objects.select_for_update().get_or_create(ticket=locked)
        if expected_version is not None and int(expected_version) != handling.version:
            raise ConcurrentChange(_("工单已被他人更新,请刷新页面后再操作。"))
        check(handling, locked)
        now = timezone.now()
        change(handling, now)
        handling.version += 1
        handling.save()
        TicketEvent.objects.create(ticket=locked, kind=kind, actor=actor, at=now, from_status=locked.status,
                                   to_status=locked.status, note=note)
    return handling


def reply(ticket, actor, text, expected_version=None):
    """Record the written reply to the citizen; it meets a reply deadline."""
    text = (text or "").strip()
    if not text:
        raise InvalidTransition(_("书面答复内容不能为空。"))

    def check(handling, locked):
        if locked.status in (S.RECEIVED, S.CLOSED):
            raise InvalidTransition(_("工单当前状态为“%(status)s”,不能答复。") % {"status": S(locked.status).label})
        if not has_role(actor, Role.ADMIN) and not (has_role(actor, Role.HANDLER) and is_lead_member(actor, handling)):
            raise InvalidTransition(_("只有牵头部门的承办人可以答复此工单。"))

    def change(handling, now):
        handling.reply_text = text
        if handling.milestone == "reply" and handling.met_at is None:
            handling.met_at = now

    return _append_without_move(ticket, EventKind.REPLY, actor, text, check, change, expected_version)


def is_partner_member(user, handling):
    return handling.partners.filter(members=user).exists()


def may_add_progress_note(user, handling, status):
    """Return True when ``user`` may add a progress note to a dispatched, open ticket.

    Handlers of the lead department and of every partner department may,
    because 1+3+N cases are worked by several departments; administrators too.
    """
    if handling is None or status in (S.RECEIVED, S.CLOSED):
        return False
    if has_role(user, Role.ADMIN):
        return True
    return has_role(user, Role.HANDLER) and (is_lead_member(user, handling) or is_partner_member(user, handling))


def add_progress_note(ticket, actor, text, expected_version=None):
    """Record a progress note by the lead or a partner department; the status does not change."""
    text = (text or "").strip()
    if not text:
        raise InvalidTransition(_("办理进展内容不能为空。"))

    def check(handling, locked):
        if locked.status in (S.RECEIVED, S.CLOSED):
            raise InvalidTransition(_("工单当前状态为“%(status)s”,不能记录办理进展。")
                                    % {"status": S(locked.status).label})
        if not may_add_progress_note(actor, handling, locked.status):
            raise InvalidTransition(_("只有牵头部门或协办部门的承办人可以记录办理进展。"))

    def change(handling, now):
        pass

    return _append_without_move(ticket, EventKind.NOTE, actor, text, check, change, expected_version)


def explain_red_card(ticket, actor, text):
    """Record the lead department head's written explanation of a red card."""
    text = (text or "").strip()
    if not text:
        raise InvalidTransition(_("红牌书面说明不能为空。"))

    def check(handling, locked):
        if handling.card != Card.RED:
            raise InvalidTransition(_("该工单没有红牌,无需说明。"))
        if not is_lead_head(actor, handling):
            raise InvalidTransition(_("红牌书面说明须由牵头部门负责人提交。"))

    def change(handling, now):
        handling.red_explanation, handling.red_explained_by, handling.red_explained_at = text, actor, now

    return _append_without_move(ticket, EventKind.EXPLANATION, actor, text, check, change)


def validate_photo(upload):
    """Reject uploads that are not JPEG, PNG or WebP images or are larger than 10 MB."""
    if upload.size > 10 * 1024 * 1024:
        raise ValidationError(_("照片 %(name)s 超过 10 MB。") % {"name": upload.name})
    if upload.content_type not in {"image/jpeg", "image/png", "image/webp"}:
        raise ValidationError(_("文件 %(name)s 不是 JPEG、PNG 或 WebP 图片。") % {"name": upload.name})
