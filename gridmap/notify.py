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
from django.db.models import Count
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
    """E-mail each user with an address a digest of their notifications not yet e-mailed; return the count sent.

    Counting runs in the database and only the first EMAIL_DIGEST_LINES messages
    per user are loaded, so a pass that notified a million times stays cheap.
    """
    cutoff = timezone.now()
    pending = Notification.objects.filter(emailed_at__isnull=True, created_at__lte=cutoff, user__is_active=True,
                                          ).exclude(user__email="")
    totals = dict(pending.values("user_id").annotate(n=Count("pk")).values_list("user_id", "n"))
    if not totals:
        return 0
    users = get_user_model().objects.in_bulk(list(totals))
    messages = []
    for user_id, total in sorted(totals.items()):
        lines = list(pending.filter(user_id=user_id).order_by("created_at", "pk")
                     .values_list("message", flat=True)[:EMAIL_DIGEST_LINES])
        if total > EMAIL_DIGEST_LINES:
            lines.append(_("……另有 %(n)s 条,请登录系统查看。") % {"n": total - EMAIL_DIGEST_LINES})
        subject = _("[FireGrid] 您有 %(n)s 条新的工单通知") % {"n": total}
        messages.append(EmailMessage(subject, "\n".join(lines), settings.DEFAULT_FROM_EMAIL, [users[user_id].email]))
    try:
        get_connection().send_messages(messages)
    except OSError as error:
        # The inbox still has them; the next run retries.
        logger.warning("sending %s notification e-mails failed: %s", len(messages), error)
        return 0
    Notification.objects.filter(user_id__in=list(totals), emailed_at__isnull=True, created_at__lte=cutoff).update(
        emailed_at=timezone.now())
    logger.info("sent %s notification e-mails covering %s notifications", len(messages), sum(totals.values()))
    return len(messages)
