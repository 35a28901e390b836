"""The planner map's GET filter form."""
from django import forms
from django.conf import settings
from django.utils import timezone
from django.utils.translation import gettext, gettext_lazy as _

from spatial.models import HotspotRun, TicketSource
from spatial.taxonomy import Category
from webmap.queries import SHANGHAI, MapFilter

# Runs offered in the hotspot selector, newest first. An older run can still
# be drawn by putting its id into the URL (?run=ID).
RUN_CHOICES_SHOWN = 30


class MapFilterForm(forms.Form):
    category = forms.ChoiceField(label=_("问题类型"), required=False)
    source = forms.ChoiceField(label=_("工单来源"), required=False)
    received_from = forms.DateField(
        label=_("受理日期自"), required=False, widget=forms.DateInput(attrs={"type": "date"})
    )
    received_to = forms.DateField(
        label=_("至"), required=False, widget=forms.DateInput(attrs={"type": "date"})
    )
    resolution = forms.TypedChoiceField(label=_("H3 分辨率"), required=False, coerce=int, empty_value=None)
    run = forms.TypedChoiceField(label=_("热点分析"), required=False, coerce=int, empty_value=None)

    def __init__(self, *args, **kwargs):
        super().__init__(*args, **kwargs)
        everything = ("", _("全部"))
        self.fields["category"].choices = [everything, *Category.choices]
        self.fields["source"].choices = [everything, *TicketSource.choices]
        self.fields["resolution"].choices = [
            ("", _("自动")),
            (settings.FIREGRID_H3_RES_FINE, gettext("细(分辨率 %(resolution)s)") % {
                "resolution": settings.FIREGRID_H3_RES_FINE}),
            (settings.FIREGRID_H3_RES_COARSE, gettext("粗(分辨率 %(resolution)s)") % {
                "resolution": settings.FIREGRID_H3_RES_COARSE}),
        ]
        self.fields["run"].choices = [("", _("自动:最近一次匹配筛选条件的分析")), *self._run_choices()]

    def _run_choices(self):
        runs = list(HotspotRun.objects.order_by("-created_at", "-id")[:RUN_CHOICES_SHOWN])
        # A run requested by id but older than the shown ones must still validate.
        requested = self.data.get("run") if self.is_bound else None
        if requested and str(requested).isdigit() and all(str(run.pk) != requested for run in runs):
            runs.extend(HotspotRun.objects.filter(pk=int(requested)))
        return [(run.pk, self._run_label(run)) for run in runs]

    @staticmethod
    def _run_label(run):
        created_at = timezone.localtime(run.created_at, SHANGHAI).strftime("%Y-%m-%d %H:%M")
        return gettext("#%(id)s,%(created_at)s,%(cells)s 个单元") % {
            "id": run.pk, "created_at": created_at, "cells": run.cell_count,
        }

    def clean(self):
        cleaned_data = super().clean()
        received_from = cleaned_data.get("received_from")
        received_to = cleaned_data.get("received_to")
        if received_from and received_to and received_from > received_to:
            self.add_error(
                "received_to",
                forms.ValidationError(
                    _("结束日期 %(to)s 早于开始日期 %(from)s。请调整受理日期范围。"),
                    code="period_reversed",
                    params={"from": received_from.isoformat(), "to": received_to.isoformat()},
                ),
            )
        return cleaned_data

    def to_map_filter(self):
        """Return the MapFilter of a valid form."""
        data = self.cleaned_data
        return MapFilter(
            category=data["category"] or None,
            source=data["source"] or None,
            received_from=data["received_from"],
            received_to=data["received_to"],
            resolution=data["resolution"],
            run_id=data["run"],
        )
