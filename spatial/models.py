"""Tickets and the import batches and hotspot runs built on them.

Locations are stored in WGS84 (SRID 4326). The coordinate pair as given in
the source, and its datum, are kept beside it because Chinese exports use
GCJ-02 or BD-09 and a conversion must stay auditable. H3 cells are stored
as 64-bit integers (h3's int form) for both configured resolutions, because
PostgreSQL on Debian has no H3 extension.
"""
from django.contrib.gis.db import models
from django.utils.translation import gettext_lazy as _

from spatial.taxonomy import Category


class TicketSource(models.TextChoices):
    HOTLINE = "hotline", _("12345热线")
    IOT_ALARM = "iot", _("物联网告警")
    INSPECTION = "inspection", _("网格巡查")
    OTHER = "other", _("其他")


class TicketStatus(models.TextChoices):
    RECEIVED = "received", _("已受理")
    DISPATCHED = "dispatched", _("已派单")
    ACCEPTED = "accepted", _("已接单")
    ON_SITE = "on_site", _("已到场")
    RECTIFIED = "rectified", _("已整改")
    CLOSED = "closed", _("已办结")
    REOPENED = "reopened", _("已重开")


class CoordSystem(models.TextChoices):
    WGS84 = "wgs84", _("WGS84")
    GCJ02 = "gcj02", _("GCJ-02(国测局坐标)")
    BD09 = "bd09", _("BD-09(百度坐标)")


class ImportBatch(models.Model):
    """One run of the ticket import: the file, its profile and what happened to each row."""

    file_name = models.CharField(_("文件名"), max_length=500)
    file_sha256 = models.CharField(_("文件SHA-256"), max_length=64)
    profile = models.CharField(_("字段映射方案"), max_length=100)
    encoding = models.CharField(_("文件编码"), max_length=20, blank=True)
    simulated = models.BooleanField(_("模拟数据"), default=False)
    started_at = models.DateTimeField(_("开始时间"), auto_now_add=True)
    duration_s = models.FloatField(_("耗时(秒)"), null=True)
    rows_read = models.PositiveIntegerField(_("读取行数"), default=0)
    rows_imported = models.PositiveIntegerField(_("导入行数"), default=0)
    # Reason code -> row count, for rows skipped, rejected or flagged.
    counts = models.JSONField(_("分类计数"), default=dict)

    class Meta:
        verbose_name = _("导入批次")
        verbose_name_plural = _("导入批次")

    def __str__(self):
        return f"{self.file_name} ({self.started_at:%Y-%m-%d %H:%M})"


class Ticket(models.Model):
    """One citizen request, IoT alarm or inspection finding."""

    source_system = models.CharField(_("来源系统"), max_length=32)
    external_id = models.CharField(_("工单编号"), max_length=64)
    source = models.CharField(_("工单来源"), max_length=16, choices=TicketSource.choices,
                              default=TicketSource.HOTLINE)
    received_at = models.DateTimeField(_("受理时间"))
    closed_at = models.DateTimeField(_("办结时间"), null=True, blank=True)
    status = models.CharField(_("状态"), max_length=16, choices=TicketStatus.choices,
                              default=TicketStatus.RECEIVED)
    category = models.CharField(_("问题类型"), max_length=32, choices=Category.choices,
                                default=Category.OTHER)
    raw_type = models.CharField(_("原始诉求类型"), max_length=500, blank=True)
    description = models.TextField(_("诉求内容"), blank=True)
    address = models.CharField(_("诉求地址"), max_length=500, blank=True)
    address_normalized = models.CharField(_("规范化地址"), max_length=500, blank=True)
    location = models.PointField(_("位置(WGS84)"), srid=4326, null=True, blank=True)
    orig_lng = models.FloatField(_("原始经度"), null=True, blank=True)
    orig_lat = models.FloatField(_("原始纬度"), null=True, blank=True)
    orig_crs = models.CharField(_("原始坐标系"), max_length=8, choices=CoordSystem.choices, blank=True)
    outside_study_area = models.BooleanField(_("超出研究区"), default=False)
    h3_fine = models.BigIntegerField(_("H3单元(细)"), null=True, blank=True)
    h3_coarse = models.BigIntegerField(_("H3单元(粗)"), null=True, blank=True)
    department = models.CharField(_("承办单位(原文)"), max_length=200, blank=True)
    complainant_name = models.CharField(_("诉求人姓名"), max_length=100, blank=True)
    complainant_phone = models.CharField(_("诉求人电话"), max_length=40, blank=True)
    # No database constraint or index: a million-row COPY would queue a
    # million deferred foreign-key checks. The import creates the batch in
    # the same transaction, and batches are never deleted by the app.
    batch = models.ForeignKey(ImportBatch, verbose_name=_("导入批次"), null=True, blank=True,
                              on_delete=models.DO_NOTHING, related_name="tickets", db_constraint=False,
                              db_index=False)

    class Meta:
        verbose_name = _("工单")
        verbose_name_plural = _("工单")
        constraints = [
            models.UniqueConstraint(fields=["source_system", "external_id"], name="ticket_unique_number"),
        ]
        indexes = [
            models.Index(fields=["received_at"], name="ticket_received_idx"),
            models.Index(fields=["category", "received_at"], name="ticket_category_idx"),
            models.Index(fields=["h3_fine"], name="ticket_h3_fine_idx"),
        ]

    def __str__(self):
        return f"{self.source_system}:{self.external_id}"


class HotspotLabel(models.TextChoices):
    HOT_99 = "hot_99", _("热点(99%置信)")
    HOT_95 = "hot_95", _("热点(95%置信)")
    HOT_90 = "hot_90", _("热点(90%置信)")
    NOT_SIGNIFICANT = "ns", _("不显著")
    COLD_90 = "cold_90", _("冷点(90%置信)")
    COLD_95 = "cold_95", _("冷点(95%置信)")
    COLD_99 = "cold_99", _("冷点(99%置信)")


class HotspotRun(models.Model):
    """One Getis-Ord Gi* analysis with the filter and parameters it ran with."""

    created_at = models.DateTimeField(_("计算时间"), auto_now_add=True)
    # Filter (category, source, received_from, received_to) and statistics
    # (resolution, permutations, seed) exactly as passed, so a run can be
    # recomputed and a map can state what it shows.
    params = models.JSONField(_("参数"), default=dict)
    ticket_count = models.PositiveIntegerField(_("工单数"), default=0)
    cell_count = models.PositiveIntegerField(_("单元数"), default=0)
    hot_count = models.PositiveIntegerField(_("热点单元数"), default=0)
    cold_count = models.PositiveIntegerField(_("冷点单元数"), default=0)
    duration_s = models.FloatField(_("耗时(秒)"), null=True)

    class Meta:
        verbose_name = _("热点分析")
        verbose_name_plural = _("热点分析")
        ordering = ["-created_at"]

    def __str__(self):
        return f"Gi* #{self.pk} ({self.created_at:%Y-%m-%d %H:%M})"


class HotspotCell(models.Model):
    """Gi* result for one H3 cell of a run."""

    run = models.ForeignKey(HotspotRun, on_delete=models.CASCADE, related_name="cells")
    h3_cell = models.BigIntegerField(_("H3单元"))
    ticket_count = models.PositiveIntegerField(_("工单数"))
    z_score = models.FloatField(_("Gi* z值"), null=True)
    p_value = models.FloatField(_("伪p值"), null=True)
    label = models.CharField(_("类别"), max_length=8, choices=HotspotLabel.choices)

    class Meta:
        verbose_name = _("热点单元")
        verbose_name_plural = _("热点单元")
        constraints = [
            models.UniqueConstraint(fields=["run", "h3_cell"], name="hotspot_cell_unique"),
        ]
