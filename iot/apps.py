from django.apps import AppConfig
from django.utils.translation import gettext_lazy as _


class IotConfig(AppConfig):
    name = "iot"
    verbose_name = _("物联网感知")
