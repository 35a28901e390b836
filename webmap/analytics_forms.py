"""GET filters and the review form of the analytics pages."""
from django import forms
from django.utils.translation import gettext_lazy as _

from spatial.taxonomy import Category


class PeriodForm(forms.Form):
    received_from = forms.DateField(label=_("受理日期自"), required=False,
                                    widget=forms.DateInput(attrs={"type": "date"}))
    received_to = forms.DateField(label=_("至"), required=False, widget=forms.DateInput(attrs={"type": "date"}))

    def clean(self):
        cleaned = super().clean()
        start, end = cleaned.get("received_from"), cleaned.get("received_to")
        if start and end and start > end:
            raise forms.ValidationError(_("开始日期晚于结束日期。"), code="period_reversed")
        return cleaned


class RepeatForm(PeriodForm):
    group_by = forms.ChoiceField(label=_("分组"), required=False, initial="period", choices=[
        ("period", _("按周期")), ("department", _("按承办单位")), ("grid", _("按网格单元(粗 H3)"))])
    period = forms.ChoiceField(label=_("周期"), required=False, initial="month",
                               choices=[("month", _("月")), ("week", _("周"))])


class ReviewForm(forms.Form):
    item = forms.IntegerField(widget=forms.HiddenInput)
    category = forms.ChoiceField(label=_("问题类型"), choices=Category.choices)
