"""Citizens look up their ticket by its number and the last four digits of their phone.

A lookup shows progress, the written reply, the deadline and the
rectification standard, never a name, phone or handler's note. Failed
attempts are counted per client address and per ticket number; past
``FIREGRID_LOOKUP_MAX_FAILURES`` in ``FIREGRID_LOOKUP_WINDOW_S`` the page
answers 429, so the 10,000 possible endings of one number cannot be tried.
The same message answers an unknown number and wrong digits.
"""
import datetime
import logging

from django.conf import settings
from django.shortcuts import render
from django.utils import timezone
from django.utils.translation import gettext as _
from django.views.decorators.cache import never_cache

from gridmap.forms import LookupForm
from gridmap.models import EventKind, LookupAttempt, RectificationStandard, TicketEvent, TicketHandling
from spatial.privacy import mask_phone
from spatial.models import Ticket

logger = logging.getLogger(__name__)

PUBLIC_EVENT_KINDS = (EventKind.TRANSITION, EventKind.ASSIGNMENT, EventKind.REPLY)


def phone_ends_with(phone, last4):
    digits = "".join(character for character in phone or "" if character.isdigit())
    return len(digits) >= 4 and digits[-4:] == last4


def client_address(request):
    """Return the client's address. NOTE: behind a reverse proxy this is the proxy's; configure it to pass REMOTE_ADDR."""
    return request.META.get("REMOTE_ADDR", "")[:64]


def is_limited(client, number):
    since = timezone.now() - datetime.timedelta(seconds=settings.FIREGRID_LOOKUP_WINDOW_S)
    failures = LookupAttempt.objects.filter(at__gte=since, success=False)
    limit = settings.FIREGRID_LOOKUP_MAX_FAILURES
    return failures.filter(client=client).count() >= limit or failures.filter(number=number).count() >= limit


def find_tickets(number, last4):
    """Return the tickets with this number whose complainant phone ends in ``last4``."""
    candidates = Ticket.objects.filter(external_id=number.strip()).order_by("pk")
    return [ticket for ticket in candidates if phone_ends_with(ticket.complainant_phone, last4)]


def progress(ticket):
    """Return what a citizen may see of ``ticket``."""
    handling = TicketHandling.objects.filter(ticket=ticket).select_related("lead").first()
    events = TicketEvent.objects.filter(ticket=ticket, kind__in=PUBLIC_EVENT_KINDS).order_by("at", "pk")
    steps = [{"at": event.at, "kind": event.get_kind_display(), "status": event.get_to_status_display()}
             for event in events]
    return {
        "ticket": ticket, "phone": mask_phone(ticket.complainant_phone), "steps": steps,
        "lead": handling.lead.name if handling and handling.lead_id else "",
        "due_at": handling.due_at if handling else None,
        "milestone": handling.get_milestone_display() if handling and handling.milestone else "",
        "reply": handling.reply_text if handling else "",
        "standard": RectificationStandard.objects.filter(category=ticket.category).first(),
    }


@never_cache
def lookup(request):
    """Public page: the form, or the progress of the caller's own tickets."""
    form = LookupForm(request.POST or None)
    context, status = {"form": form}, 200
    if request.method == "POST" and form.is_valid():
        client, number = client_address(request), form.cleaned_data["number"].strip()
        if is_limited(client, number):
            context["error"] = _("查询过于频繁,请 %(minutes)s 分钟后再试。") % {
                "minutes": settings.FIREGRID_LOOKUP_WINDOW_S // 60}
            status = 429
            logger.warning("lookup rate limit reached for client %s or number %s", client, number)
        else:
            tickets = find_tickets(number, form.cleaned_data["phone_last4"])
            LookupAttempt.objects.create(client=client, number=number, success=bool(tickets))
            if tickets:
                context["results"] = [progress(ticket) for ticket in tickets]
            else:
                context["error"] = _("没有找到匹配的工单,请核对工单编号和来电号码后四位。")
                status = 404
    return render(request, "gridmap/lookup.html", context, status=status)
