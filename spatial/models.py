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


# --- Analytics: zones, classification, repeats, associations, trends, risk --

class ZoneType(models.TextChoices):
    """The three rings (三圈层) plus everything else."""

    CORE_COMMERCIAL = "core_commercial", _("核心商圈")
    OLD_RESIDENTIAL = "old_residential", _("老旧小区")
    INDUSTRIAL_PARK = "industrial_park", _("工业园区")
    OTHER = "other", _("其他区域")


class ZoneSource(models.TextChoices):
    USER = "user", _("用户绘制")
    OSM = "osm", _("OpenStreetMap 土地利用")
    COMMUNITY = "community", _("社区图层")


class Zone(models.Model):
    """One polygon of a zone type, drawn by a user or derived from OSM land use or a community layer."""

    name = models.CharField(_("名称"), max_length=200, blank=True)
    zone_type = models.CharField(_("圈层类型"), max_length=16, choices=ZoneType.choices)
    source = models.CharField(_("来源"), max_length=16, choices=ZoneSource.choices)
    source_file = models.CharField(_("来源文件"), max_length=500, blank=True)
    # Source attributes that decided the type (land-use tag, management status...).
    attributes = models.JSONField(_("属性"), default=dict, blank=True)
    geometry = models.MultiPolygonField(_("范围(WGS84)"), srid=4326)
    created_at = models.DateTimeField(_("创建时间"), auto_now_add=True)

    class Meta:
        verbose_name = _("圈层区域")
        verbose_name_plural = _("圈层区域")

    def __str__(self):
        return f"{self.get_zone_type_display()} {self.name}".strip()


class CategorySource(models.TextChoices):
    IMPORTED = "imported", _("导入时已有")
    KEYWORD = "keyword", _("关键词规则")
    MODEL = "model", _("分类模型")
    REVIEW = "review", _("人工复核")


class ClassifierVersion(models.Model):
    """One trained text classifier, stored with its fitted pipeline and cross-validated figures."""

    version = models.PositiveIntegerField(_("版本号"), unique=True)
    created_at = models.DateTimeField(_("训练时间"), auto_now_add=True)
    algorithm = models.CharField(_("算法"), max_length=200)
    params = models.JSONField(_("参数"), default=dict)
    classes = models.JSONField(_("类别"), default=list)
    training_count = models.PositiveIntegerField(_("训练样本数"), default=0)
    cv_accuracy = models.FloatField(_("交叉验证准确率"), null=True)
    cv_macro_f1 = models.FloatField(_("交叉验证宏F1"), null=True)
    confidence_threshold = models.FloatField(_("置信度阈值"))
    # joblib dump of the fitted scikit-learn pipeline. The database keeps
    # the model with the labels it produced, so no file can go missing.
    model_blob = models.BinaryField(_("模型数据"))

    class Meta:
        verbose_name = _("分类模型版本")
        verbose_name_plural = _("分类模型版本")
        ordering = ["-version"]

    def __str__(self):
        return f"v{self.version}"


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

    # Analytics columns. Each is nullable or has a database default, so the
    # intake's COPY, which lists its columns, stays valid without them.
    zone_type = models.CharField(_("圈层类型"), max_length=16, choices=ZoneType.choices, blank=True,
                                 db_default="")
    category_source = models.CharField(_("类型来源"), max_length=16, choices=CategorySource.choices,
                                       blank=True, db_default="")
    category_confidence = models.FloatField(_("分类置信度"), null=True, blank=True)
    category_model = models.ForeignKey(ClassifierVersion, verbose_name=_("分类模型版本"), null=True, blank=True,
                                       on_delete=models.SET_NULL, related_name="tickets", db_constraint=False,
                                       db_index=False)
    repeat_of = models.ForeignKey("self", verbose_name=_("重复投诉的前一工单"), null=True, blank=True,
                                  on_delete=models.SET_NULL, related_name="repeats", db_constraint=False,
                                  db_index=False)
    duplicate_of = models.ForeignKey("self", verbose_name=_("重复登记的首个工单"), null=True, blank=True,
                                     on_delete=models.SET_NULL, related_name="duplicates", db_constraint=False,
                                     db_index=False)
    suspected_fake_rectification = models.BooleanField(_("疑似虚假整改"), default=False, db_default=False)

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


class ReviewStatus(models.TextChoices):
    PENDING = "pending", _("待复核")
    CONFIRMED = "confirmed", _("已确认")
    CORRECTED = "corrected", _("已改正")


class ReviewItem(models.Model):
    """A model prediction whose confidence fell below its version's threshold, waiting for a person."""

    ticket = models.ForeignKey(Ticket, verbose_name=_("工单"), on_delete=models.CASCADE, related_name="reviews")
    model = models.ForeignKey(ClassifierVersion, verbose_name=_("分类模型版本"), on_delete=models.CASCADE,
                              related_name="reviews")
    predicted_category = models.CharField(_("预测类型"), max_length=32, choices=Category.choices)
    confidence = models.FloatField(_("置信度"))
    status = models.CharField(_("复核状态"), max_length=16, choices=ReviewStatus.choices,
                              default=ReviewStatus.PENDING)
    reviewed_category = models.CharField(_("复核类型"), max_length=32, choices=Category.choices, blank=True)
    reviewed_by = models.CharField(_("复核人"), max_length=150, blank=True)
    created_at = models.DateTimeField(_("加入时间"), auto_now_add=True)
    reviewed_at = models.DateTimeField(_("复核时间"), null=True, blank=True)

    class Meta:
        verbose_name = _("分类复核")
        verbose_name_plural = _("分类复核")
        ordering = ["confidence", "pk"]
        constraints = [
            models.UniqueConstraint(fields=["ticket", "model"], name="review_unique_ticket_model"),
        ]


class RepeatRun(models.Model):
    """One linking of repeats and duplicates over all tickets, with the rule it applied."""

    created_at = models.DateTimeField(_("计算时间"), auto_now_add=True)
    # window_days, distance_m, duplicate_hours, fake_rectification_days.
    params = models.JSONField(_("参数"), default=dict)
    ticket_count = models.PositiveIntegerField(_("工单数"), default=0)
    repeat_count = models.PositiveIntegerField(_("重复投诉数"), default=0)
    duplicate_count = models.PositiveIntegerField(_("重复登记数"), default=0)
    fake_rectification_count = models.PositiveIntegerField(_("疑似虚假整改数"), default=0)
    duration_s = models.FloatField(_("耗时(秒)"), null=True)

    class Meta:
        verbose_name = _("重复投诉识别")
        verbose_name_plural = _("重复投诉识别")
        ordering = ["-created_at"]


class AssociationRun(models.Model):
    """One category × zone type × time test with its findings, stored so a page can show what it found."""

    created_at = models.DateTimeField(_("计算时间"), auto_now_add=True)
    params = models.JSONField(_("参数"), default=dict)
    ticket_count = models.PositiveIntegerField(_("工单数"), default=0)
    # List of findings, strongest first: category, zone_type, slot, observed,
    # expected, lift, p_value, q_value, sentence.
    findings = models.JSONField(_("发现"), default=list)
    duration_s = models.FloatField(_("耗时(秒)"), null=True)

    class Meta:
        verbose_name = _("关联分析")
        verbose_name_plural = _("关联分析")
        ordering = ["-created_at"]


class EmergingLabel(models.TextChoices):
    NEW_HOT = "new_hot", _("新增热点")
    CONSECUTIVE_HOT = "consecutive_hot", _("连续热点")
    INTENSIFYING_HOT = "intensifying_hot", _("加强热点")
    PERSISTENT_HOT = "persistent_hot", _("持续热点")
    DIMINISHING_HOT = "diminishing_hot", _("减弱热点")
    SPORADIC_HOT = "sporadic_hot", _("零星热点")
    OSCILLATING_HOT = "oscillating_hot", _("振荡热点")
    HISTORICAL_HOT = "historical_hot", _("历史热点")
    NEW_COLD = "new_cold", _("新增冷点")
    CONSECUTIVE_COLD = "consecutive_cold", _("连续冷点")
    INTENSIFYING_COLD = "intensifying_cold", _("加强冷点")
    PERSISTENT_COLD = "persistent_cold", _("持续冷点")
    DIMINISHING_COLD = "diminishing_cold", _("减弱冷点")
    SPORADIC_COLD = "sporadic_cold", _("零星冷点")
    OSCILLATING_COLD = "oscillating_cold", _("振荡冷点")
    HISTORICAL_COLD = "historical_cold", _("历史冷点")
    NO_PATTERN = "no_pattern", _("无明显模式")


class EmergingRun(models.Model):
    """One emerging hot spot analysis on a space-time cube of H3 cells."""

    created_at = models.DateTimeField(_("计算时间"), auto_now_add=True)
    params = models.JSONField(_("参数"), default=dict)
    slice_starts = models.JSONField(_("时间切片起点"), default=list)
    ticket_count = models.PositiveIntegerField(_("工单数"), default=0)
    cell_count = models.PositiveIntegerField(_("单元数"), default=0)
    label_counts = models.JSONField(_("各类单元数"), default=dict)
    duration_s = models.FloatField(_("耗时(秒)"), null=True)

    class Meta:
        verbose_name = _("时空热点分析")
        verbose_name_plural = _("时空热点分析")
        ordering = ["-created_at"]


class EmergingCell(models.Model):
    """Trend label of one H3 cell of an emerging hot spot run."""

    run = models.ForeignKey(EmergingRun, on_delete=models.CASCADE, related_name="cells")
    h3_cell = models.BigIntegerField(_("H3单元"))
    label = models.CharField(_("模式"), max_length=20, choices=EmergingLabel.choices)
    ticket_count = models.PositiveIntegerField(_("工单数"))
    hot_slices = models.PositiveIntegerField(_("热点切片数"))
    cold_slices = models.PositiveIntegerField(_("冷点切片数"))
    trend_z = models.FloatField(_("Mann-Kendall z值"), null=True)
    trend_p = models.FloatField(_("Mann-Kendall p值"), null=True)

    class Meta:
        verbose_name = _("时空热点单元")
        verbose_name_plural = _("时空热点单元")
        constraints = [
            models.UniqueConstraint(fields=["run", "h3_cell"], name="emerging_cell_unique"),
        ]


class RiskRun(models.Model):
    """One risk-map run: model, temporal holdout figures and the predicted period."""

    created_at = models.DateTimeField(_("计算时间"), auto_now_add=True)
    model_version = models.CharField(_("模型版本"), max_length=100)
    params = models.JSONField(_("参数"), default=dict)
    period = models.CharField(_("周期"), max_length=8)
    predicted_start = models.DateField(_("预测周期起点"))
    # Holdout figures of the model and of both baselines, plus the split.
    evaluation = models.JSONField(_("评估结果"), default=dict)
    ticket_count = models.PositiveIntegerField(_("工单数"), default=0)
    cell_count = models.PositiveIntegerField(_("单元数"), default=0)
    duration_s = models.FloatField(_("耗时(秒)"), null=True)

    class Meta:
        verbose_name = _("风险预测")
        verbose_name_plural = _("风险预测")
        ordering = ["-created_at"]


class RiskCell(models.Model):
    """Predicted probability of at least one ticket in one H3 cell for the run's coming period."""

    run = models.ForeignKey(RiskRun, on_delete=models.CASCADE, related_name="cells")
    h3_cell = models.BigIntegerField(_("H3单元"))
    probability = models.FloatField(_("风险概率"))
    rank = models.PositiveIntegerField(_("排名"))
    zone_type = models.CharField(_("圈层类型"), max_length=16, choices=ZoneType.choices, blank=True)

    class Meta:
        verbose_name = _("风险单元")
        verbose_name_plural = _("风险单元")
        constraints = [
            models.UniqueConstraint(fields=["run", "h3_cell"], name="risk_cell_unique"),
        ]
