"""Supervision records: random re-inspection draws and their results, citizen ratings, callbacks, KPI targets.

``gridmap.models`` imports this module at its end so that Django registers
the models under the gridmap app. The logic that fills them lives in
``gridmap.reinspection`` (draws and results) and ``gridmap.kpi`` (figures).
"""
from django.conf import settings
from django.core.validators import MaxValueValidator, MinValueValidator
from django.db import models
from django.utils.translation import gettext_lazy as _

from spatial.models import Ticket


class PeriodKind(models.TextChoices):
    WEEK = "week", _("周")
    MONTH = "month", _("月")
    QUARTER = "quarter", _("季度")
    YEAR = "year", _("年")


class ReinspectionDraw(models.Model):
    """One "double random" draw: which closed tickets of a period are re-inspected, and by whom.

    ``population`` is the closed tickets of the period, ``sample`` the
    number drawn (``rate`` of the population, rounded up). Tickets suspected
    of fake rectification count ``fake_weight`` times in the weighted draw.
    The seed, the algorithm name and the ordered ticket ids of the
    population are stored, so ``gridmap.reinspection.replay_draw`` can
    redo the draw and show the same result.
    """

    period = models.CharField(_("周期"), max_length=16, unique=True,
                              help_text=_("如 2026-03、2026-Q1、2026-W09 或 2026"))
    period_kind = models.CharField(_("周期类型"), max_length=8, choices=PeriodKind.choices)
    period_start = models.DateTimeField(_("周期开始"))
    period_end = models.DateTimeField(_("周期结束(不含)"))
    seed = models.BigIntegerField(_("随机种子"))
    rate = models.FloatField(_("抽取比例"))
    fake_weight = models.FloatField(_("疑似虚假整改权重"))
    algorithm = models.CharField(_("抽取算法"), max_length=100)
    population = models.PositiveIntegerField(_("本期办结工单数"))
    sample = models.PositiveIntegerField(_("抽取工单数"))
    population_ids = models.JSONField(_("候选工单编号(按序)"), default=list)
    inspector_ids = models.JSONField(_("候选复查人员(按序)"), default=list)
    created_at = models.DateTimeField(_("抽取时间"), auto_now_add=True)
    created_by = models.CharField(_("抽取人"), max_length=150, blank=True)

    class Meta:
        verbose_name = _("复查抽取")
        verbose_name_plural = _("复查抽取")
        ordering = ["-period_start"]

    def __str__(self):
        return f"{self.period} (seed {self.seed})"


class ReinspectionResult(models.TextChoices):
    PENDING = "pending", _("待复查")
    PASSED = "passed", _("整改属实")
    FAILED = "failed", _("整改不实")


class Reinspection(models.Model):
    """One drawn ticket with its randomly drawn inspector and the on-site result.

    ``department`` is the lead department when the ticket was drawn: a
    failed re-inspection counts against it even if the ticket is later
    handed to someone else.
    """

    draw = models.ForeignKey(ReinspectionDraw, verbose_name=_("复查抽取"), on_delete=models.CASCADE,
                             related_name="reinspections")
    ticket = models.ForeignKey(Ticket, verbose_name=_("工单"), on_delete=models.PROTECT,
                               related_name="reinspections")
    position = models.PositiveIntegerField(_("抽中顺序"))
    suspected_fake = models.BooleanField(_("疑似虚假整改(加权抽取)"), default=False)
    inspector = models.ForeignKey(settings.AUTH_USER_MODEL, verbose_name=_("复查人员"), on_delete=models.PROTECT,
                                  related_name="reinspections")
    department = models.ForeignKey("gridmap.Department", verbose_name=_("被复查部门"), null=True, blank=True,
                                   on_delete=models.PROTECT, related_name="reinspections")
    result = models.CharField(_("复查结果"), max_length=8, choices=ReinspectionResult.choices,
                              default=ReinspectionResult.PENDING)
    note = models.TextField(_("复查说明"), blank=True)
    inspected_at = models.DateTimeField(_("复查时间"), null=True, blank=True)
    # Set when a failed re-inspection reopened the ticket through the workflow.
    reopened = models.BooleanField(_("已重开工单"), default=False)

    class Meta:
        verbose_name = _("复查")
        verbose_name_plural = _("复查")
        ordering = ["draw", "position"]
        constraints = [
            models.UniqueConstraint(fields=["draw", "ticket"], name="reinspection_unique_ticket"),
        ]
        indexes = [models.Index(fields=["ticket", "result"], name="reinspection_ticket_idx")]

    def __str__(self):
        return f"{self.draw.period} #{self.position} {self.ticket_id}"


class ReinspectionPhoto(models.Model):
    reinspection = models.ForeignKey(Reinspection, verbose_name=_("复查"), on_delete=models.CASCADE,
                                     related_name="photos")
    image = models.ImageField(_("照片"), upload_to="reinspection_photos/%Y/%m/")

    class Meta:
        verbose_name = _("复查照片")
        verbose_name_plural = _("复查照片")


class CitizenRating(models.Model):
    """The citizen's one rating of a closed ticket's handling (1 to 5), given on the lookup page."""

    ticket = models.OneToOneField(Ticket, verbose_name=_("工单"), primary_key=True, on_delete=models.CASCADE,
                                  related_name="rating")
    score = models.PositiveSmallIntegerField(_("评分(1-5)"),
                                             validators=[MinValueValidator(1), MaxValueValidator(5)])
    comment = models.TextField(_("评价内容"), blank=True, max_length=500)
    created_at = models.DateTimeField(_("评价时间"), auto_now_add=True)

    class Meta:
        verbose_name = _("群众评价")
        verbose_name_plural = _("群众评价")
        constraints = [
            models.CheckConstraint(condition=models.Q(score__gte=1, score__lte=5), name="rating_score_1_5"),
        ]

    def __str__(self):
        return f"{self.ticket_id}: {self.score}"


class CallbackOutcome(models.TextChoices):
    POSITIVE = "positive", _("满意")
    NEUTRAL = "neutral", _("基本满意")
    NEGATIVE = "negative", _("不满意")
    UNREACHED = "unreached", _("未接通")


class Callback(models.Model):
    """A phone callback to the complainant after closure, recorded by staff."""

    ticket = models.ForeignKey(Ticket, verbose_name=_("工单"), on_delete=models.CASCADE, related_name="callbacks")
    staff = models.ForeignKey(settings.AUTH_USER_MODEL, verbose_name=_("回访人"), on_delete=models.PROTECT,
                              related_name="+")
    called_at = models.DateTimeField(_("回访时间"))
    outcome = models.CharField(_("回访结果"), max_length=10, choices=CallbackOutcome.choices)
    note = models.TextField(_("回访记录"), blank=True)

    class Meta:
        verbose_name = _("电话回访")
        verbose_name_plural = _("电话回访")
        ordering = ["-called_at"]
        indexes = [models.Index(fields=["ticket", "outcome"], name="callback_ticket_idx")]

    def __str__(self):
        return f"{self.ticket_id} {self.outcome}"


class KpiTarget(models.Model):
    """Baseline and target of one KPI (codes in ``gridmap.kpi.KPIS``); set by administrators."""

    kpi = models.CharField(_("指标"), max_length=32, unique=True)
    baseline = models.FloatField(_("基线值"))
    target = models.FloatField(_("目标值"))
    note = models.CharField(_("来源说明"), max_length=200, blank=True)
    updated_at = models.DateTimeField(_("更新时间"), auto_now=True)

    class Meta:
        verbose_name = _("考核目标")
        verbose_name_plural = _("考核目标")
        ordering = ["kpi"]

    def __str__(self):
        return f"{self.kpi}: {self.baseline} -> {self.target}"
