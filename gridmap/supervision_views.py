"""Supervision pages: re-inspection results, the public list, citizen ratings, callbacks, KPI drill-down."""
from django import forms
from django.contrib import messages
from django.core.paginator import Paginator
from django.db import IntegrityError, transaction
from django.http import Http404, HttpResponseBadRequest
from django.shortcuts import get_object_or_404, redirect, render
from django.utils import timezone
from django.utils.translation import gettext as _
from django.utils.translation import gettext_lazy
from django.views.decorators.cache import never_cache
from django.views.decorators.http import require_POST

from gridmap import kpi, lookup, reinspection
from gridmap.access import visible_tickets
from gridmap.forms import MultiplePhotoField
from gridmap.models import Department, GridUnit, LookupAttempt
from gridmap.roles import Role, role_required
from gridmap.supervision import (Callback, CallbackOutcome, CitizenRating, Reinspection, ReinspectionDraw,
                                 ReinspectionResult)
from spatial.models import TicketStatus

INSPECTOR_PAGE_ROLES = (Role.HANDLER, Role.GRID_HEAD, Role.ADMIN)
KPI_PAGE_ROLES = (Role.LEADER, Role.ADMIN)
CALLBACK_ROLES = (Role.HANDLER, Role.ADMIN)


class ResultForm(forms.Form):
    result = forms.ChoiceField(label=gettext_lazy("复查结果"), choices=[
        (ReinspectionResult.PASSED, ReinspectionResult.PASSED.label),
        (ReinspectionResult.FAILED, ReinspectionResult.FAILED.label)], widget=forms.RadioSelect)
    note = forms.CharField(label=gettext_lazy("复查说明"), required=False, widget=forms.Textarea(attrs={"rows": 3}),
                           max_length=2000)
    photos = MultiplePhotoField(label=gettext_lazy("现场照片"), required=False)


class RatingForm(forms.Form):
    number = forms.CharField(widget=forms.HiddenInput, max_length=64)
    phone_last4 = forms.RegexField(widget=forms.HiddenInput, regex=r"^[0-9]{4}$", max_length=4)
    score = forms.TypedChoiceField(label=gettext_lazy("评分"), coerce=int, widget=forms.RadioSelect,
                                   choices=[(n, str(n)) for n in range(5, 0, -1)],
                                   error_messages={"required": gettext_lazy("请选择 1 到 5 分。")})
    comment = forms.CharField(label=gettext_lazy("评价内容(选填)"), required=False, max_length=500,
                              widget=forms.Textarea(attrs={"rows": 3}))


class CallbackForm(forms.Form):
    outcome = forms.ChoiceField(label=gettext_lazy("回访结果"), choices=CallbackOutcome.choices)
    note = forms.CharField(label=gettext_lazy("回访记录"), required=False, max_length=2000,
                           widget=forms.Textarea(attrs={"rows": 3}))


@role_required(*INSPECTOR_PAGE_ROLES)
def reinspection_list(request):
    """List the pending re-inspections drawn for the user (all of them for administrators)."""
    return render(request, "gridmap/supervision/reinspection_list.html",
                  {"rows": reinspection.pending_for(request.user)})


@role_required(*INSPECTOR_PAGE_ROLES)
def reinspection_detail(request, pk):
    """Show one drawn ticket to its inspector and take the result with photos and a note."""
    row = get_object_or_404(Reinspection.objects.select_related("ticket", "draw", "department"), pk=pk)
    if not reinspection.may_record(request.user, row):
        raise Http404(_("没有这项复查任务。"))
    form, status, error = ResultForm(), 200, ""
    if request.method == "POST":
        form = ResultForm(request.POST, request.FILES)
        if form.is_valid():
            try:
                reinspection.record_result(row, request.user, form.cleaned_data["result"],
                                           form.cleaned_data["note"], form.cleaned_data["photos"])
            except reinspection.ReinspectionError as exc:
                error, status = str(exc), 400
            else:
                messages.success(request, _("复查结果已登记。"))
                return redirect("supervision:reinspections")
        else:
            status = 400
    return render(request, "gridmap/supervision/reinspection_detail.html",
                  {"row": row, "form": form, "error": error}, status=status)


def public_reinspections(request):
    """Public page: the period's drawn tickets and results, without names, phones, notes or inspectors."""
    period_text = request.GET.get("period", "").strip()
    period = None
    if period_text:
        try:
            period = kpi.parse_period(period_text)
        except kpi.KpiError as exc:
            return HttpResponseBadRequest(str(exc))
    record, rows = reinspection.public_rows(period.key if period else None)
    periods = list(ReinspectionDraw.objects.values_list("period", flat=True))
    label = ""
    if record is not None:
        label = kpi.parse_period(record.period).label
    elif period is not None:
        label = period.label
    done = [row for row in rows if row["result_code"] != ReinspectionResult.PENDING]
    passed = sum(1 for row in done if row["result_code"] == ReinspectionResult.PASSED)
    return render(request, "gridmap/supervision/public_reinspections.html", {
        "record": record, "rows": rows, "periods": periods, "label": label,
        "done": len(done), "passed": passed, "failed": len(done) - passed,
    })


@never_cache
@require_POST
def rate(request):
    """Store the citizen's one rating of a closed ticket, re-checking the number and phone ending."""
    form = RatingForm(request.POST)
    context, status = {"form": form}, 400
    if form.is_valid():
        client, number = lookup.client_address(request), form.cleaned_data["number"].strip()
        if lookup.is_limited(client, number):
            context["error"], status = _("操作过于频繁,请稍后再试。"), 429
        else:
            tickets = [ticket for ticket in lookup.find_tickets(number, form.cleaned_data["phone_last4"])
                       if ticket.status == TicketStatus.CLOSED]
            if not tickets:
                LookupAttempt.objects.create(client=client, number=number, success=False)
                context["error"], status = _("只能评价本人已办结的工单,请核对工单编号和来电号码后四位。"), 404
            else:
                try:
                    with transaction.atomic():
                        CitizenRating.objects.create(ticket=tickets[0], score=form.cleaned_data["score"],
                                                     comment=form.cleaned_data["comment"].strip())
                except IntegrityError:
                    context["error"], status = _("该工单已评价过,每件工单只能评价一次。"), 409
                else:
                    context["done"], status = True, 201
    else:
        context["error"] = _("请选择 1 到 5 分后再提交评价。")
    return render(request, "gridmap/supervision/rating_done.html", context, status=status)


@role_required(*CALLBACK_ROLES)
def callback(request, pk):
    """Record a phone callback to the complainant of a closed ticket the user may see."""
    ticket = get_object_or_404(visible_tickets(request.user), pk=pk)
    if ticket.status != TicketStatus.CLOSED:
        raise Http404(_("只有已办结的工单需要回访。"))
    form = CallbackForm(request.POST or None)
    if request.method == "POST" and form.is_valid():
        Callback.objects.create(ticket=ticket, staff=request.user, called_at=timezone.now(),
                                outcome=form.cleaned_data["outcome"], note=form.cleaned_data["note"].strip())
        messages.success(request, _("回访记录已保存。"))
        return redirect("supervision:callback", pk=ticket.pk)
    return render(request, "gridmap/supervision/callback.html", {
        "ticket": ticket, "form": form, "callbacks": ticket.callbacks.select_related("staff")},
        status=400 if request.method == "POST" else 200)


@role_required(*KPI_PAGE_ROLES)
def kpi_tickets(request, code):
    """List the tickets behind one KPI figure: its base set, with the numerator marked."""
    try:
        period = kpi.parse_period(request.GET.get("period", ""))
        definition = kpi.get_kpi(code)
        department = _optional_pk(request.GET.get("department"), Department)
        unit = _optional_pk(request.GET.get("unit"), GridUnit)
    except (kpi.KpiError, ValueError) as exc:
        return HttpResponseBadRequest(str(exc))
    tickets = kpi.kpi_tickets(code, period, department.pk if department else None, unit.pk if unit else None)
    tickets = tickets.select_related("handling__lead", "placement__unit").order_by("received_at", "pk")
    page = Paginator(tickets, 50).get_page(request.GET.get("page"))
    value = kpi.compute(period, department.pk if department else None, unit.pk if unit else None)[code]
    return render(request, "gridmap/supervision/kpi_tickets.html", {
        "kpi": definition, "period": period, "department": department, "unit": unit, "page": page,
        "value": kpi.format_value(code, value["value"]), "figures": value,
    })


def _optional_pk(text, model):
    if not text:
        return None
    if not text.isdigit():
        raise ValueError(_("编号 “%(value)s” 无效,应为数字。") % {"value": text})
    found = model.objects.filter(pk=int(text)).first()
    if found is None:
        raise ValueError(_("编号 %(value)s 不存在。") % {"value": text})
    return found
