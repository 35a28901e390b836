"""Handler pages: queue, timeline, actions, replies, dispatch queue, notifications, standards."""
import logging

from django.contrib import messages
from django.core.paginator import Paginator
from django.http import FileResponse, Http404
from django.shortcuts import get_object_or_404, redirect, render
from django.utils import timezone
from django.utils.translation import gettext as _
from django.utils.translation import gettext_lazy
from django.views.decorators.http import require_POST

from gridmap import workflow
from gridmap.access import WORKFLOW_ROLES, visible_tickets
from gridmap.dispatch import assign
from gridmap.exceptions import InvalidTransition
from gridmap.forms import ActionForm, AssignForm, QueueFilterForm, TextForm
from gridmap.models import EventPhoto, Notification, RectificationStandard, TicketEvent, TicketHandling
from gridmap.privacy import complainant
from gridmap.roles import Role, has_role, role_required
from spatial.models import Ticket, TicketStatus

logger = logging.getLogger(__name__)

# Lazy, because the labels are built at import time and must follow the
# language of each request.
ACTION_LABELS = {
    "accept": gettext_lazy("接单"),
    "on_site": gettext_lazy("到场处置"),
    "rectify": gettext_lazy("提交整改"),
    "close": gettext_lazy("办结"),
    "reopen": gettext_lazy("重新打开"),
}


@role_required(*WORKFLOW_ROLES)
def queue(request):
    """List the tickets the user may see, open ones first by deadline."""
    form = QueueFilterForm(request.GET)
    tickets = visible_tickets(request.user).select_related("handling__lead", "placement__unit")
    if form.is_valid():
        status = form.cleaned_data["status"]
        tickets = tickets.filter(status=status) if status else tickets.exclude(status=TicketStatus.CLOSED)
        if form.cleaned_data["card"]:
            tickets = tickets.filter(handling__card=form.cleaned_data["card"])
        if form.cleaned_data["overdue"]:
            tickets = tickets.filter(handling__due_at__lt=timezone.now(), handling__met_at__isnull=True)
    tickets = tickets.order_by("handling__due_at", "received_at", "pk")
    page = Paginator(tickets, 50).get_page(request.GET.get("page"))
    return render(request, "gridmap/queue.html", {"form": form, "page": page})


@role_required(Role.ADMIN)
def dispatch_queue(request):
    """Tickets no routing rule matched, waiting for a dispatcher."""
    handlings = (TicketHandling.objects.filter(in_dispatch_queue=True).select_related("ticket")
                 .order_by("ticket__received_at"))
    page = Paginator(handlings, 50).get_page(request.GET.get("page"))
    return render(request, "gridmap/dispatch_queue.html", {"page": page, "form": AssignForm()})


@require_POST
@role_required(Role.ADMIN)
def assign_ticket(request, pk):
    ticket = get_object_or_404(Ticket, pk=pk)
    form = AssignForm(request.POST)
    if not form.is_valid():
        messages.error(request, _("派单失败:%(errors)s") % {"errors": form.errors.as_text()})
        return redirect("gridmap:ticket", pk=pk)
    try:
        assign(ticket, form.cleaned_data["lead"], form.cleaned_data["partners"], actor=request.user,
               note=form.cleaned_data["note"])
    except InvalidTransition as error:
        logger.info("assignment of ticket %s by user %s rejected: %s", pk, request.user.pk, error)
        messages.error(request, str(error))
    else:
        messages.success(request, _("已派单至%(lead)s。") % {"lead": form.cleaned_data["lead"].name})
    return redirect("gridmap:ticket", pk=pk)


def _ticket_for(request, pk):
    ticket = visible_tickets(request.user).filter(pk=pk).select_related("placement__unit").first()
    if ticket is None:
        raise Http404(_("没有这张工单,或您无权查看。"))
    return ticket


@role_required(*WORKFLOW_ROLES)
def ticket_detail(request, pk):
    """Show a ticket's data, deadline, standard, timeline and the actions the user may take."""
    ticket = _ticket_for(request, pk)
    handling = TicketHandling.objects.filter(ticket=ticket).select_related(
        "lead", "escalated_to", "deadline_rule", "red_explained_by").first()
    name, phone, description = complainant(ticket, handling, request.user)
    events = (TicketEvent.objects.filter(ticket=ticket).select_related("actor").prefetch_related("photos")
              .order_by("at", "pk"))
    actions = []
    if handling is not None:
        for action, target in workflow.ACTIONS.items():
            if target not in workflow.allowed_targets(ticket.status):
                continue
            try:
                workflow.check_actor(request.user, handling, target)
            except InvalidTransition:
                continue
            actions.append((action, ACTION_LABELS[action]))
    is_lead_member = handling is not None and workflow.is_lead_member(request.user, handling)
    context = {
        "ticket": ticket, "handling": handling, "events": events, "actions": actions,
        "complainant_name": name, "complainant_phone": phone, "description": description,
        "standard": RectificationStandard.objects.filter(category=ticket.category).first(),
        "action_form": ActionForm(initial={"version": handling.version if handling else 0}),
        "text_form": TextForm(initial={"version": handling.version if handling else 0}),
        "can_reply": handling is not None and ticket.status not in (TicketStatus.RECEIVED, TicketStatus.CLOSED)
        and (has_role(request.user, Role.ADMIN) or (has_role(request.user, Role.HANDLER) and is_lead_member)),
        "can_explain": handling is not None and handling.card == "red" and workflow.is_lead_head(request.user,
                                                                                                 handling),
        "can_note": workflow.may_add_progress_note(request.user, handling, ticket.status),
        "can_assign": has_role(request.user, Role.ADMIN) and ticket.status in (
            TicketStatus.RECEIVED, TicketStatus.REOPENED, TicketStatus.DISPATCHED),
        "assign_form": AssignForm(),
        "partners": handling.partners.all() if handling else [],
    }
    return render(request, "gridmap/ticket_detail.html", context)


@require_POST
@role_required(Role.HANDLER, Role.ADMIN)
def ticket_action(request, pk, action):
    """Run accept, on_site, rectify, close or reopen; errors come back as messages on the ticket page."""
    if action not in workflow.ACTIONS:
        raise Http404(_("未知操作。"))
    ticket = _ticket_for(request, pk)
    form = ActionForm(request.POST, request.FILES)
    if not form.is_valid():
        messages.error(request, _("提交失败:%(errors)s") % {"errors": form.errors.as_text()})
        return redirect("gridmap:ticket", pk=pk)
    try:
        workflow.perform(ticket, action, request.user, note=form.cleaned_data["note"],
                         photos=form.cleaned_data["photos"], expected_version=form.cleaned_data["version"])
    except InvalidTransition as error:
        logger.info("action %s on ticket %s by user %s rejected: %s", action, pk, request.user.pk, error)
        messages.error(request, str(error))
        return redirect("gridmap:ticket", pk=pk)
    messages.success(request, _("已%(action)s。") % {"action": ACTION_LABELS[action]})
    return redirect("gridmap:ticket", pk=pk)


@require_POST
@role_required(Role.HANDLER, Role.ADMIN)
def ticket_reply(request, pk):
    ticket = _ticket_for(request, pk)
    form = TextForm(request.POST)
    try:
        if not form.is_valid():
            raise InvalidTransition(_("书面答复内容不能为空。"))
        workflow.reply(ticket, request.user, form.cleaned_data["text"], form.cleaned_data.get("version"))
    except InvalidTransition as error:
        logger.info("reply on ticket %s by user %s rejected: %s", pk, request.user.pk, error)
        messages.error(request, str(error))
    else:
        messages.success(request, _("书面答复已保存。"))
    return redirect("gridmap:ticket", pk=pk)


@require_POST
@role_required(Role.HANDLER, Role.ADMIN)
def ticket_note(request, pk):
    """Add a progress note of the lead or a partner department to the ticket's timeline."""
    ticket = _ticket_for(request, pk)
    form = TextForm(request.POST)
    try:
        if not form.is_valid():
            raise InvalidTransition(_("办理进展内容不能为空。"))
        workflow.add_progress_note(ticket, request.user, form.cleaned_data["text"],
                                   expected_version=form.cleaned_data["version"])
    except InvalidTransition as error:
        logger.info("progress note on ticket %s by user %s rejected: %s", pk, request.user.pk, error)
        messages.error(request, str(error))
    else:
        messages.success(request, _("办理进展已记录。"))
    return redirect("gridmap:ticket", pk=pk)


@require_POST
@role_required(Role.HANDLER)
def ticket_explain(request, pk):
    ticket = _ticket_for(request, pk)
    form = TextForm(request.POST)
    try:
        if not form.is_valid():
            raise InvalidTransition(_("红牌书面说明不能为空。"))
        workflow.explain_red_card(ticket, request.user, form.cleaned_data["text"])
    except InvalidTransition as error:
        logger.info("red-card explanation on ticket %s by user %s rejected: %s", pk, request.user.pk, error)
        messages.error(request, str(error))
    else:
        messages.success(request, _("红牌书面说明已保存。"))
    return redirect("gridmap:ticket", pk=pk)


@role_required(*WORKFLOW_ROLES)
def event_photo(request, pk):
    """Serve a photo to users who may see its ticket (photos are not public files)."""
    photo = get_object_or_404(EventPhoto.objects.select_related("event"), pk=pk)
    _ticket_for(request, photo.event.ticket_id)
    try:
        return FileResponse(photo.image.open("rb"))
    except FileNotFoundError as error:
        raise Http404(_("照片文件已不存在。")) from error


@role_required(*Role.values)
def notifications(request):
    """Show the user's inbox; a POST marks every notification read."""
    inbox = Notification.objects.filter(user=request.user).select_related("ticket")
    if request.method == "POST":
        inbox.filter(read_at__isnull=True).update(read_at=timezone.now())
        return redirect("gridmap:notifications")
    page = Paginator(inbox, 50).get_page(request.GET.get("page"))
    return render(request, "gridmap/notifications.html", {"page": page})


@role_required(*Role.values)
def standards(request):
    """List the rectification standards per category."""
    return render(request, "gridmap/standards.html", {"standards": RectificationStandard.objects.all()})

