"""Notifications for assignments, escalations and cards: in the app and by e-mail.

Every notification is a ``Notification`` row (the in-app inbox). E-mails go
out through Django's configured e-mail backend as one digest per user and
run, so an escalation pass over many tickets sends a handful of messages
rather than one per ticket; ``emailed_at`` makes sending idempotent.
"""
import logging

from django.conf import settings
from django.contrib.auth import get_user_model
from django.core.mail import get_connection, EmailMessage
from django.db import transaction
from django.utils import timezone
from django.utils.translation import gettext as _

from gridmap.models import Notification, NotificationKind

logger = logging.getLogger(__name__)

EMAIL_DIGEST_LINES = 50


def notify_assignment(handling):
    """Tell the lead's and partners' members and the grid head that a ticket was dispatched to them."""
    ticket = handling.ticket
    users = set()
    departments = [handling.lead] + list(handling.partners.all()) if handling.lead_id else []
    for department in departments:
        users |= set(department.members.values_list("pk", flat=True))
        if department.head_id:
            users.add(department.head_id)
    placement = getattr(ticket, "placement", None) if hasattr(ticket, "placement") else None
    if placement is not None and placement.unit.head_id:
        users.add(placement.unit.head_id)
    message = _("工单 %(number)s 已派至%(lead)s,办理时限 %(due)s") % {
        "number": ticket.external_id, "lead": handling.lead.name if handling.lead_id else "-",
        "due": timezone.localtime(handling.due_at).strftime("%Y-%m-%d %H:%M") if handling.due_at else _("无")}
    now = timezone.now()
    Notification.objects.bulk_create([
        Notification(user_id=pk, ticket=ticket, kind=NotificationKind.ASSIGNMENT, message=message[:500],
                     created_at=now) for pk in sorted(users)])
    transaction.on_commit(send_pending_emails)


def send_pending_emails():
    """E-mail each user with an address a digest of their notifications not yet e-mailed; return the count sent."""
    pending = (Notification.objects.filter(emailed_at__isnull=True, user__is_active=True)
               .exclude(user__email="").select_related("ticket").order_by("user_id", "created_at", "pk"))
    by_user = {}
    for notification in pending.iterator(chunk_size=2000):
        by_user.setdefault(notification.user_id, []).append(notification)
    if not by_user:
        return 0
    users = get_user_model().objects.in_bulk(list(by_user))
    messages, sent_ids = [], []
    for user_id, notifications in by_user.items():
        lines = [item.message for item in notifications[:EMAIL_DIGEST_LINES]]
        if len(notifications) > EMAIL_DIGEST_LINES:
            lines.append(_("……另有 %(n)s 条,请登录系统查看。") % {"n": len(notifications) - EMAIL_DIGEST_LINES})
        subject = _("[FireGrid] 您有 %(n)s 条新的工单通知") % {"n": len(notifications)}
        messages.append(EmailMessage(subject, "\n".join(lines), settings.DEFAULT_FROM_EMAIL, [users[user_id].email]))
        sent_ids.extend(item.pk for item in notifications)
    try:
        get_connection().send_messages(messages)
    except OSError as error:
        # The inbox still has them; the next run retries.
        logger.warning("sending %s notification e-mails failed: %s", len(messages), error)
        return 0
    Notification.objects.filter(pk__in=sent_ids).update(emailed_at=timezone.now())
    logger.info("sent %s notification e-mails covering %s notifications", len(messages), len(sent_ids))
    return len(messages)
