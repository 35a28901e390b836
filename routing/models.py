"""Fire stations and the road networks loaded from OpenStreetMap files.

A RoadNetwork row records one load of a file (its hash, the cache key of
the pickled graph under VAR_DIR and what the loader dropped), so that pages
can find the graph without a path in their request.
"""
from django.contrib.gis.db import models
from django.utils.translation import gettext_lazy as _


class RoadNetwork(models.Model):
    """One OpenStreetMap file loaded as a road graph, with the loader's report."""

    name = models.CharField(_("名称"), max_length=200)
    source_path = models.CharField(_("源文件路径"), max_length=1000)
    file_sha256 = models.CharField(_("文件SHA-256"), max_length=64)
    cache_key = models.CharField(_("缓存键"), max_length=64, unique=True,
                                 help_text=_("文件哈希与车速表共同决定的缓存文件名。"))
    crs = models.CharField(_("投影坐标系"), max_length=32)
    node_count = models.PositiveIntegerField(_("节点数"), default=0)
    edge_count = models.PositiveIntegerField(_("路段数"), default=0)
    total_length_m = models.FloatField(_("路网总长(米)"), default=0)
    report = models.JSONField(_("加载报告"), default=dict)
    loaded_at = models.DateTimeField(_("加载时间"), auto_now=True)

    class Meta:
        verbose_name = _("路网")
        verbose_name_plural = _("路网")
        ordering = ["-loaded_at", "-pk"]

    def __str__(self):
        return f"{self.name} ({self.file_sha256[:12]})"


class FireStation(models.Model):
    """A fire station imported from a station file; ``code`` identifies it across re-imports."""

    code = models.CharField(_("站点编号"), max_length=200, unique=True,
                            help_text=_("文件中的编号;文件没有编号时用地址。"))
    name = models.CharField(_("名称"), max_length=200, blank=True)
    address = models.CharField(_("地址"), max_length=500, blank=True)
    location = models.PointField(_("位置(WGS84)"), srid=4326)
    source_file = models.CharField(_("来源文件"), max_length=500, blank=True)
    imported_at = models.DateTimeField(_("导入时间"), auto_now=True)

    class Meta:
        verbose_name = _("消防站")
        verbose_name_plural = _("消防站")
        ordering = ["code"]

    def __str__(self):
        return self.name or self.address or self.code
