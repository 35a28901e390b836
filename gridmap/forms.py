"""Forms of the handler pages, the dispatcher queue and the citizen lookup."""
from django import forms
from django.core.exceptions import ValidationError
from django.utils.translation import gettext_lazy as _

from gridmap.models import Card, Department
from gridmap.workflow import MAX_PHOTOS, validate_photo
from spatial.models import TicketStatus


class MultipleFileInput(forms.ClearableFileInput):
    allow_multiple_selected = True


class MultiplePhotoField(forms.FileField):
    def __init__(self, *args, **kwargs):
        kwargs.setdefault("widget", MultipleFileInput(attrs={"accept": "image/jpeg,image/png,image/webp"}))
        super().__init__(*args, **kwargs)

    def clean(self, data, initial=None):
        files = data if isinstance(data, (list, tuple)) else ([data] if data else [])
        if len(files) > MAX_PHOTOS:
            raise ValidationError(_("每次最多上传 %(n)s 张照片。") % {"n": MAX_PHOTOS})
        cleaned = [super(MultiplePhotoField, self).clean(item, initial) for item in files]
        for item in cleaned:
            validate_photo(item)
        return cleaned


class ActionForm(forms.Form):
    note = forms.CharField(label=_("说明"), required=False, max_length=2000, widget=forms.Textarea(attrs={"rows": 3}))
    photos = MultiplePhotoField(label=_("现场照片"), required=False)
    version = forms.IntegerField(widget=forms.HiddenInput)


class TextForm(forms.Form):
    text = forms.CharField(label=_("内容"), max_length=5000, widget=forms.Textarea(attrs={"rows": 4}))
    version = forms.IntegerField(widget=forms.HiddenInput, required=False)


class AssignForm(forms.Form):
    lead = forms.ModelChoiceField(label=_("牵头部门"), queryset=Department.objects.all())
    partners = forms.ModelMultipleChoiceField(label=_("协办部门"), queryset=Department.objects.all(), required=False,
                                              widget=forms.CheckboxSelectMultiple)
    note = forms.CharField(label=_("派单说明"), required=False, max_length=500)


class QueueFilterForm(forms.Form):
    status = forms.ChoiceField(label=_("状态"), required=False, choices=[("", _("全部未办结"))] + TicketStatus.choices)
    card = forms.ChoiceField(label=_("牌"), required=False,
                             choices=[("", _("全部"))] + [c for c in Card.choices if c[0]])
    overdue = forms.BooleanField(label=_("仅超时"), required=False)


class LookupForm(forms.Form):
    number = forms.CharField(label=_("工单编号"), max_length=64)
    phone_last4 = forms.RegexField(label=_("来电号码后四位"), regex=r"^[0-9]{4}$", max_length=4,
                                   error_messages={"invalid": _("请输入来电号码的后四位数字。")})
