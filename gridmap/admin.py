"""Admin pages: grid units and heads, departments, the editable rules and templates, read-only history.

KPI targets are editable; re-inspections, ratings, callbacks and inspections are read-only.
"""
from django import forms
from django.contrib import admin
from django.contrib.gis.db import models as gis_models
from django.utils.translation import gettext_lazy as _

from gridmap.inspections import Inspection, InspectionAnswer
from gridmap.models import (DeadlineRule, Department, GridUnit, LookupAttempt, Notification, Open311Key,
                            RectificationStandard, RoutingRule, TicketEvent, TicketHandling)
from gridmap.supervision import Callback, CitizenRating, KpiTarget, Reinspection, ReinspectionDraw

# Geometry fields are edited as WKT or GeoJSON text: the map widget would
# load OpenLayers from a CDN, which government intranets do not reach.
TEXT_GEOMETRY = {gis_models.MultiPolygonField: {"widget": forms.Textarea(attrs={"rows": 4, "cols": 80})}}


@admin.register(GridUnit)
class GridUnitAdmin(admin.ModelAdmin):
    list_display = ("code", "name", "level", "parent", "head", "outside_parent")
    list_filter = ("level", "outside_parent")
    search_fields = ("code", "name")
    autocomplete_fields = ("parent", "head")
    readonly_fields = ("geom", "source", "properties", "imported_at")


@admin.register(Department)
class DepartmentAdmin(admin.ModelAdmin):
    list_display = ("code", "name", "role", "head", "handles_property")
    list_filter = ("role",)
    search_fields = ("code", "name")
    filter_horizontal = ("members",)


@admin.register(RoutingRule)
class RoutingRuleAdmin(admin.ModelAdmin):
    list_display = ("name", "priority", "active", "category", "keywords", "grid", "lead")
    list_editable = ("priority", "active")
    list_filter = ("active", "category")
    filter_horizontal = ("partners",)
    autocomplete_fields = ("grid",)
    formfield_overrides = TEXT_GEOMETRY


@admin.register(DeadlineRule)
class DeadlineRuleAdmin(admin.ModelAdmin):
    list_display = ("name", "priority", "active", "category", "keywords", "property_only", "milestone", "amount",
                    "unit")
    list_editable = ("priority", "active")


@admin.register(RectificationStandard)
class RectificationStandardAdmin(admin.ModelAdmin):
    list_display = ("category", "title", "updated_at")


@admin.register(Open311Key)
class Open311KeyAdmin(admin.ModelAdmin):
    list_display = ("owner", "active", "created_at")


class ReadOnlyAdmin(admin.ModelAdmin):
    def has_add_permission(self, request):
        return False

    def has_change_permission(self, request, obj=None):
        return False

    def has_delete_permission(self, request, obj=None):
        return False


@admin.register(TicketHandling)
class TicketHandlingAdmin(ReadOnlyAdmin):
    list_display = ("ticket", "lead", "due_at", "card", "escalation_level", "in_dispatch_queue")
    list_filter = ("card", "in_dispatch_queue", "escalation_level")
    search_fields = ("ticket__external_id",)


@admin.register(TicketEvent)
class TicketEventAdmin(ReadOnlyAdmin):
    list_display = ("ticket", "kind", "actor", "at", "from_status", "to_status")
    list_filter = ("kind",)
    search_fields = ("ticket__external_id",)


@admin.register(Notification)
class NotificationAdmin(ReadOnlyAdmin):
    list_display = ("user", "ticket", "kind", "created_at", "read_at", "emailed_at")


@admin.register(LookupAttempt)
class LookupAttemptAdmin(ReadOnlyAdmin):
    list_display = ("client", "number", "at", "success")
    verbose_name = _("查询记录")


# Supervision and inspection records are evidence: administrators read them
# here, and change them only through the pages that keep the events in step.
@admin.register(ReinspectionDraw)
class ReinspectionDrawAdmin(ReadOnlyAdmin):
    list_display = ("period", "period_kind", "seed", "rate", "population", "sample", "created_at", "created_by")


@admin.register(Reinspection)
class ReinspectionAdmin(ReadOnlyAdmin):
    list_display = ("draw", "ticket", "position", "suspected_fake", "inspector", "result", "inspected_at",
                    "reopened")
    list_filter = ("result", "suspected_fake", "reopened")
    search_fields = ("ticket__external_id",)


@admin.register(CitizenRating)
class CitizenRatingAdmin(ReadOnlyAdmin):
    list_display = ("ticket", "score", "created_at")
    list_filter = ("score",)
    search_fields = ("ticket__external_id",)


@admin.register(Callback)
class CallbackAdmin(ReadOnlyAdmin):
    list_display = ("ticket", "staff", "called_at", "outcome")
    list_filter = ("outcome",)
    search_fields = ("ticket__external_id",)


@admin.register(KpiTarget)
class KpiTargetAdmin(admin.ModelAdmin):
    list_display = ("kpi", "baseline", "target", "note", "updated_at")


@admin.register(Inspection)
class InspectionAdmin(ReadOnlyAdmin):
    list_display = ("building", "inspector", "inspected_on", "inspected_at", "received_at")
    list_filter = ("inspected_on",)
    search_fields = ("building__code", "building__name")


@admin.register(InspectionAnswer)
class InspectionAnswerAdmin(ReadOnlyAdmin):
    list_display = ("inspection", "item", "passed", "ticket")
    list_filter = ("item", "passed")
