"""The leaders' dashboard (领导驾驶舱), its report downloads and the KPI targets form."""
from django import forms
from django.contrib import messages
from django.http import HttpResponse, HttpResponseBadRequest
from django.shortcuts import redirect, render
from django.urls import path
from django.utils import timezone
from django.utils.translation import gettext as _
from django.utils.translation import gettext_lazy
from django.views.decorators.http import require_POST

from gridmap import kpi, reports
from gridmap.roles import Role, has_role, role_required
from gridmap.supervision import KpiTarget, PeriodKind
from spatial.models import Ticket
from webmap import dashboard

DASHBOARD_ROLES = (Role.LEADER, Role.ADMIN)
CONTENT_TYPES = {
    "pdf": "application/pdf",
    "xlsx": "application/vnd.openxmlformats-officedocument.spreadsheetml.sheet",
}


class TargetForm(forms.Form):
    kpi = forms.ChoiceField(label=gettext_lazy("指标"), choices=[(item.code, item.label) for item in kpi.KPIS])
    baseline = forms.FloatField(label=gettext_lazy("基线值"), help_text=gettext_lazy("比例填小数,如 31% 填 0.31"))
    target = forms.FloatField(label=gettext_lazy("目标值"))


def default_period(kind=PeriodKind.MONTH):
    """Return the period of the latest received ticket, or the current one when there are none."""
    latest = Ticket.objects.order_by("-received_at").values_list("received_at", flat=True).first()
    return kpi.period_containing(kind, latest or timezone.now())


def _period_from(request):
    text = request.GET.get("period", "").strip()
    if text:
        return kpi.parse_period(text)
    kind = request.GET.get("kind", PeriodKind.MONTH)
    if kind not in PeriodKind.values:
        raise kpi.KpiError(_("周期类型 “%(kind)s” 无效,可选 week、month、quarter、year。") % {"kind": kind})
    return default_period(kind)


def build_context(period):
    """Collect the dashboard's figures (the same dict the reports write) and draw its charts."""
    figures = reports.collect(period)
    targets = kpi.targets()
    trend = figures["trend"]
    charts = []
    for code in reports.TREND_KPIS:
        definition = kpi.KPI_BY_CODE[code]
        charts.append(dashboard.line_chart(str(definition.label), trend["periods"], trend["series"][code],
                                           definition.kind, targets.get(code, (None, None))[1]))
    for row in figures["kpis"]:
        row["bar"] = dashboard.progress_bar(row["progress"], row["met"])
    counts, resolution = dashboard.heat_cells(period)
    return {
        "figures": figures, "period": period, "trend_charts": charts,
        "department_chart": dashboard.bar_chart(_("部门按时响应率"), [
            (row["name"], row["on_time_rate"]) for row in figures["departments"]], "rate"),
        "grid_chart": dashboard.bar_chart(_("网格按时响应率(社区级)"), [
            (row["name"], row["on_time_rate"]) for row in figures["grid_units"]], "rate"),
        "heatmap": dashboard.heatmap_svg(counts), "heat_resolution": resolution,
        "heat_total": sum(counts.values()),
        "kinds": PeriodKind.choices, "previous": period.shifted(-1), "next": period.shifted(1),
    }


@role_required(*DASHBOARD_ROLES)
def home(request):
    """Show the dashboard for the chosen period (default: the month of the latest ticket)."""
    try:
        period = _period_from(request)
    except kpi.KpiError as exc:
        return render(request, "webmap/dashboard/error.html", {"error": str(exc)}, status=400)
    context = build_context(period)
    context["target_form"] = TargetForm() if has_role(request.user, Role.ADMIN) else None
    return render(request, "webmap/dashboard/home.html", context)


@role_required(*DASHBOARD_ROLES)
def report(request, fmt):
    """Download the report of the chosen period as PDF or XLSX, built from the same figures."""
    if fmt not in CONTENT_TYPES:
        return HttpResponseBadRequest(_("报告格式 “%(value)s” 无效,可选 pdf、xlsx。") % {"value": fmt})
    try:
        period = _period_from(request)
        figures = reports.collect(period)
        data = reports.build_pdf(figures) if fmt == "pdf" else reports.build_xlsx(figures)
    except (kpi.KpiError, reports.ReportError) as exc:
        return HttpResponseBadRequest(str(exc))
    response = HttpResponse(data, content_type=CONTENT_TYPES[fmt])
    response["Content-Disposition"] = f'attachment; filename="firegrid-report-{period.key}.{fmt}"'
    return response


@require_POST
@role_required(Role.ADMIN)
def set_target(request):
    """Store a KPI's baseline and target (administrators only)."""
    form = TargetForm(request.POST)
    if not form.is_valid():
        messages.error(request, _("目标未保存:%(errors)s") % {"errors": "; ".join(
            f"{form.fields[name].label}: {' '.join(errors)}" for name, errors in form.errors.items())})
    else:
        code = form.cleaned_data["kpi"]
        if kpi.KPI_BY_CODE[code].kind == "rate" and not all(
                0 <= form.cleaned_data[name] <= 1 for name in ("baseline", "target")):
            messages.error(request, _("比例类指标的基线和目标应在 0 到 1 之间(如 31% 填 0.31)。"))
        else:
            KpiTarget.objects.update_or_create(kpi=code, defaults={
                "baseline": form.cleaned_data["baseline"], "target": form.cleaned_data["target"],
                "note": request.user.get_username()})
            messages.success(request, _("已保存“%(kpi)s”的目标。") % {"kpi": kpi.KPI_BY_CODE[code].label})
    return redirect("webmap:dashboard:home")


app_name = "dashboard"
urlpatterns = [
    path("dashboard/", home, name="home"),
    path("dashboard/report.<str:fmt>", report, name="report"),
    path("dashboard/targets/", set_target, name="set-target"),
]
