from django.apps import AppConfig
from django.utils.translation import gettext_lazy as _


class GridmapConfig(AppConfig):
    name = "gridmap"
    verbose_name = _("责任网格与工单流转")
