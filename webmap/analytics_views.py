"""Planner pages of the spatial analytics: zones, repeats, associations, emerging hot spots, classification, risk.

Views only parse the request, call spatial.analysis and format. Stored runs
are computed by the management commands; zone shares and repeat rates are
counted on request.

NOTE: access is checked by role only. The analyses cover the whole study
area, and none of them is cut to the user's responsibility grid yet.
"""
from django.contrib import messages
from django.core.paginator import Paginator
from django.shortcuts import get_object_or_404, redirect, render
from django.utils.translation import gettext as _
from django.views.decorators.http import require_http_methods

from gridmap.roles import Role, can_see_personal_data, role_required
from spatial.analysis import classify, repeats, zones
from spatial.models import (
    AssociationRun, ClassifierVersion, EmergingLabel, EmergingRun, RepeatRun, ReviewItem, ReviewStatus, RiskRun,
    ZoneType,
)
from spatial.taxonomy import Category
from webmap import analytics_maps
from webmap.analytics_forms import PeriodForm, RepeatForm, ReviewForm
from spatial.privacy import mask_personal_numbers

ANALYTICS_ROLES = (Role.PLANNER, Role.LEADER, Role.ADMIN)
REVIEW_ROLES = (Role.PLANNER, Role.ADMIN)
REVIEW_PAGE_SIZE = 50
ADDRESS_ROWS = 100


def _selected_run(request, model):
    """Return the run named by ?run=ID, else the newest; a missing ID is a 404."""
    run_id = request.GET.get("run")
    if run_id:
        if not run_id.isdigit():
            return None
        return get_object_or_404(model, pk=int(run_id))
    return model.objects.order_by("-created_at", "-pk").first()


@role_required(*ANALYTICS_ROLES)
def analytics_index(request):
    """List the analyses with their latest runs."""
    return render(request, "webmap/analytics/index.html", {
        "association_run": AssociationRun.objects.first(),
        "emerging_run": EmergingRun.objects.first(),
        "risk_run": RiskRun.objects.first(),
        "repeat_run": RepeatRun.objects.first(),
        "classifier": ClassifierVersion.objects.first(),
        "pending_reviews": ReviewItem.objects.filter(status=ReviewStatus.PENDING).count(),
    })


@role_required(*ANALYTICS_ROLES)
def zones_page(request):
    """Show ticket shares by zone type and category for a period, and the map of zones."""
    form = PeriodForm(request.GET)
    table = cell_map = None
    if form.is_valid():
        period = (form.cleaned_data["received_from"], form.cleaned_data["received_to"])
        table = zones.zone_shares(*period)
        cell_zones = zones.zone_cell_counts("h3_coarse", *period)
        cell_map = analytics_maps.zone_map(cell_zones) if cell_zones else None
    return render(request, "webmap/analytics/zones.html", {
        "form": form, "table": table, "rows": list(table.rows()) if table else [], "cell_map": cell_map,
        "categories": Category.choices, "zone_colors": {str(t.label): analytics_maps.ZONE_COLORS[t] for t in ZoneType},
    })


@role_required(*ANALYTICS_ROLES)
def repeats_page(request):
    """Show the repeat rate by period, department or grid unit, and the addresses with repeats."""
    form = RepeatForm(request.GET)
    context = {"form": form, "run": RepeatRun.objects.first()}
    if form.is_valid():
        period = (form.cleaned_data["received_from"], form.cleaned_data["received_to"])
        group_by = form.cleaned_data["group_by"] or "period"
        tickets, repeat_count, fake = repeats.overall_repeat_rate(*period)
        context.update({
            "group_by": group_by,
            "tickets": tickets, "repeat_count": repeat_count, "fake": fake,
            "rate": repeat_count / tickets if tickets else None,
            "rows": repeats.repeat_rates(group_by, form.cleaned_data["period"] or "month", *period),
            "addresses": repeats.addresses_with_repeats(ADDRESS_ROWS, *period),
        })
    return render(request, "webmap/analytics/repeats.html", context)


@role_required(*ANALYTICS_ROLES)
def associations_page(request):
    """Show the findings of an association run."""
    run = _selected_run(request, AssociationRun)
    findings = []
    for finding in run.findings if run else []:
        category = finding["category"]
        findings.append({
            **finding,
            "zone_label": ZoneType(finding["zone_type"]).label,
            "category_label": Category(category).label if category in Category.values else category,
        })
    return render(request, "webmap/analytics/associations.html", {
        "run": run, "runs": AssociationRun.objects.all()[:30], "findings": findings})


@role_required(*ANALYTICS_ROLES)
def emerging_page(request):
    """Show an emerging hot spot run as a map with its label counts."""
    run = _selected_run(request, EmergingRun)
    cell_map = None
    label_rows = []
    if run:
        cells = list(run.cells.exclude(label=EmergingLabel.NO_PATTERN))
        cell_map = analytics_maps.emerging_map(cells) if cells else None
        label_rows = [(label.label, analytics_maps.EMERGING_COLORS.get(label.value, "#ffffff"),
                       run.label_counts.get(label.value, 0)) for label in EmergingLabel]
    return render(request, "webmap/analytics/emerging.html", {
        "run": run, "runs": EmergingRun.objects.all()[:30], "cell_map": cell_map, "label_rows": label_rows})


@role_required(*ANALYTICS_ROLES)
def risk_page(request):
    """Show a risk run as a layer with its date, model version and holdout figures."""
    run = _selected_run(request, RiskRun)
    cell_map = None
    methods = []
    period_label = ""
    if run:
        period_label = _("周") if run.period == "week" else _("月")
        cells = list(run.cells.order_by("rank"))
        cell_map = analytics_maps.risk_map(cells) if cells else None
        names = {"model": _("风险模型"), "last_period": _("基线:上期计数"), "kde": _("基线:核密度")}
        methods = [(names[key], run.evaluation.get(key, {})) for key in names]
    return render(request, "webmap/analytics/risk.html", {
        "run": run, "runs": RiskRun.objects.all()[:30], "cell_map": cell_map, "methods": methods,
        "split": run.evaluation.get("split", {}) if run else {}, "risk_classes": analytics_maps.RISK_CLASSES,
        "period_label": period_label})


@role_required(*REVIEW_ROLES)
@require_http_methods(["GET", "POST"])
def classification_page(request):
    """List classifier versions and the review queue; a POST confirms or corrects one prediction."""
    if request.method == "POST":
        form = ReviewForm(request.POST)
        if form.is_valid():
            item = get_object_or_404(ReviewItem, pk=form.cleaned_data["item"], status=ReviewStatus.PENDING)
            classify.resolve_review(item, form.cleaned_data["category"], request.user.get_username())
            messages.success(request, _("工单 %(number)s 的问题类型已保存。") % {"number": item.ticket.external_id})
        else:
            messages.error(request, _("复核提交无效:请选择问题类型后重试。"))
        return redirect(request.get_full_path())

    pending = ReviewItem.objects.filter(status=ReviewStatus.PENDING).select_related("ticket", "model")
    page = Paginator(pending, REVIEW_PAGE_SIZE).get_page(request.GET.get("page"))
    reveal = can_see_personal_data(request.user)
    items = [{
        "item": item,
        "text": item.ticket.description if reveal else mask_personal_numbers(item.ticket.description),
        "title": item.ticket.raw_type,
    } for item in page]
    return render(request, "webmap/analytics/classification.html", {
        "versions": ClassifierVersion.objects.defer("model_blob")[:20], "page": page, "items": items,
        "categories": Category.choices})
