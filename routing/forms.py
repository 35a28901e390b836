"""Forms of the patrol and coverage pages; they only parse and check request parameters."""
from django import forms
from django.conf import settings
from django.utils import timezone
from django.utils.translation import gettext_lazy as _

from routing.exceptions import PatrolInputError
from routing.patrol import parse_lat_lng


class PatrolForm(forms.Form):
    """Parameters of one patrol: grid, start point, date and time, budget and service time."""

    grid = forms.ChoiceField(label=_("网格"), required=False)
    start = forms.CharField(label=_("起点(纬度,经度)"), required=False,
                            help_text=_("留空时从网格中心附近出发。"))
    date = forms.DateField(label=_("日期"), required=False, widget=forms.DateInput(attrs={"type": "date"}))
    start_time = forms.TimeField(label=_("出发时间"), required=False, widget=forms.TimeInput(attrs={"type": "time"}))
    budget_min = forms.FloatField(label=_("时间预算(分钟)"), required=False, min_value=5, max_value=24 * 60)
    service_min = forms.FloatField(label=_("每点停留(分钟)"), required=False, min_value=0, max_value=240)

    def __init__(self, data=None, grid_choices=()):
        super().__init__(data)
        self.fields["grid"].choices = list(grid_choices)

    def clean_start(self):
        text = self.cleaned_data["start"].strip()
        if not text:
            return None
        try:
            return parse_lat_lng(text)
        except PatrolInputError as error:
            raise forms.ValidationError(str(error)) from None

    def patrol_values(self):
        """Return the cleaned values with the defaults filled in."""
        values = dict(self.cleaned_data)
        values["date"] = values.get("date") or timezone.localdate()
        if values.get("budget_min") is None:
            values["budget_min"] = settings.FIREGRID_PATROL_BUDGET_MIN
        if values.get("service_min") is None:
            values["service_min"] = settings.FIREGRID_PATROL_SERVICE_MIN
        return values


class CoverageForm(forms.Form):
    minutes = forms.FloatField(label=_("等时圈(分钟)"), required=False, min_value=0.5, max_value=60)
