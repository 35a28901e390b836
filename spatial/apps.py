from django.apps import AppConfig
from django.utils.translation import gettext_lazy as _


class SpatialConfig(AppConfig):
    name = "spatial"
    verbose_name = _("工单与空间分析")
