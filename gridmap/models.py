"""Responsibility grid, departments, routing rules and the ticket workflow.

Everything FireGrid adds to a ``spatial.Ticket`` lives here, linked to the
ticket one-to-one or by foreign key, because the ticket's own schema belongs
to the intake:

- ``GridPlacement``: the grid unit a located ticket falls in, and how it was
  chosen (contained, nearest within a distance, county fallback).
- ``TicketHandling``: lead department and partners, the deadline (``due_at``
  and the yellow and red thresholds), the card, the escalation level, the
  written reply and the red-card explanation. ``version`` increases with
  every change made through ``gridmap.workflow``.
- ``TicketEvent``: the append-only history of a ticket (who, when, from, to,
  note, photos). A database trigger refuses UPDATE and DELETE on it.

KPIs can be computed from these tables alone: time to close is
``Ticket.closed_at - Ticket.received_at``, on-time means the event that met
the milestone (``TicketHandling.met_at``) is before ``due_at``, and the card
columns say which tickets ran 30% or 50% past their promised time.
"""
from django.conf import settings
from django.contrib.gis.db import models
from django.core.exceptions import ValidationError
from django.utils.translation import gettext_lazy as _

from spatial.models import Ticket, TicketStatus
from spatial.taxonomy import Category


class GridLevel(models.IntegerChoices):
    """Grid levels; a larger number is a smaller unit."""

    COUNTY = 1, _("县级大网格")
    COMMUNITY = 2, _("社区中网格")
    BUILDING = 3, _("楼栋小网格")


class GridUnit(models.Model):
    """One responsibility-grid polygon with its head.

    ``parent`` is the unit one level up that contains it; units whose
    polygon lies outside their parent are kept and reported by the import
    (``outside_parent``). ``geom`` is a MultiPolygon in WGS84 (SRID 4326).
    """

    code = models.CharField(_("网格编码"), max_length=64, unique=True)
    name = models.CharField(_("网格名称"), max_length=200)
    level = models.PositiveSmallIntegerField(_("网格层级"), choices=GridLevel.choices)
    parent = models.ForeignKey("self", verbose_name=_("上级网格"), null=True, blank=True,
                               on_delete=models.PROTECT, related_name="children")
    head = models.ForeignKey(settings.AUTH_USER_MODEL, verbose_name=_("网格长"), null=True, blank=True,
                             on_delete=models.SET_NULL, related_name="grid_units")
    geom = models.MultiPolygonField(_("范围(WGS84)"), srid=4326)
    outside_parent = models.BooleanField(_("超出上级网格"), default=False)
    source = models.CharField(_("来源文件"), max_length=500, blank=True)
    # Feature properties as imported, for names and attributes the model does not name.
    properties = models.JSONField(_("原始属性"), default=dict, blank=True)
    imported_at = models.DateTimeField(_("导入时间"), auto_now=True)

    class Meta:
        verbose_name = _("责任网格")
        verbose_name_plural = _("责任网格")
        ordering = ["level", "code"]
        indexes = [models.Index(fields=["level"], name="gridunit_level_idx")]

    def __str__(self):
        return f"{self.name}({self.code})"

    def ancestors(self):
        """Return the units above this one, nearest first."""
        chain, unit = [], self.parent
        while unit is not None:
            chain.append(unit)
            unit = unit.parent
        return chain


class PlacementMethod(models.TextChoices):
    CONTAINED = "contained", _("落在网格内")
    NEAREST = "nearest", _("就近网格(设定距离内)")
    COUNTY = "county", _("兜底到县级网格")


class GridPlacement(models.Model):
    """The grid unit a located ticket belongs to, chosen by ``gridmap.dispatch.place_tickets``."""

    # No database foreign-key constraints: placing a million tickets would
    # queue two million deferred checks, which doubled the placement's time.
    # Rows are written only by place_tickets, from existing tickets and
    # units; Django still cascades ticket deletions and protects units.
    ticket = models.OneToOneField(Ticket, verbose_name=_("工单"), primary_key=True, on_delete=models.CASCADE,
                                  related_name="placement", db_constraint=False)
    unit = models.ForeignKey(GridUnit, verbose_name=_("所属网格"), on_delete=models.PROTECT,
                             related_name="placements", db_constraint=False)
    method = models.CharField(_("落格方式"), max_length=16, choices=PlacementMethod.choices)
    # Geodesic distance from the ticket to the unit's edge in metres; 0 when contained.
    distance_m = models.FloatField(_("距网格距离(米)"), null=True, blank=True)
    placed_at = models.DateTimeField(_("落格时间"), auto_now=True)

    class Meta:
        verbose_name = _("工单落格")
        verbose_name_plural = _("工单落格")

    def __str__(self):
        return f"{self.ticket_id} -> {self.unit_id} ({self.method})"


class DepartmentRole(models.TextChoices):
    LEAD = "lead", _("牵头部门(消防救援)")
    FIXED_PARTNER = "partner", _("固定协办部门")
    OTHER = "other", _("其他协办部门")


class Department(models.Model):
    """A department of the 1+3+N scheme: the fire and rescue lead, the three fixed partners, N others.

    ``head`` writes the explanations red cards need; ``members`` are its handlers.
    """

    code = models.SlugField(_("部门编码"), max_length=32, unique=True)
    name = models.CharField(_("部门名称"), max_length=100)
    role = models.CharField(_("1+3+N角色"), max_length=8, choices=DepartmentRole.choices,
                            default=DepartmentRole.OTHER)
    email = models.EmailField(_("部门邮箱"), blank=True)
    head = models.ForeignKey(settings.AUTH_USER_MODEL, verbose_name=_("部门负责人"), null=True, blank=True,
                             on_delete=models.SET_NULL, related_name="headed_departments")
    members = models.ManyToManyField(settings.AUTH_USER_MODEL, verbose_name=_("承办人"), blank=True,
                                     related_name="departments")
    handles_property = models.BooleanField(
        _("物业类部门"), default=False,
        help_text=_("工单落到此类部门时按“物业类工单1个工作日内书面答复”的时限计算"))

    class Meta:
        verbose_name = _("部门")
        verbose_name_plural = _("部门")
        ordering = ["role", "code"]

    def __str__(self):
        return self.name


def keywords_match(keywords, text):
    """Return True when ``keywords`` (comma- or 、-separated) is blank or one of them occurs in ``text``.

    ``text`` is expected lower-cased; the keywords are compared lower-cased.
    """
    words = [word.strip() for word in keywords.replace(",", ",").replace("、", ",").split(",") if word.strip()]
    return not words or any(word.lower() in text for word in words)


class RoutingRule(models.Model):
    """An admin-editable rule that picks the lead department and the partners of a ticket.

    Every non-empty criterion must match: the category, any one of the
    keywords (in the ticket's text, type or address), the zone polygon, the
    grid unit (the ticket's unit or any unit below it). Rules are tried by
    ascending ``priority``; the first match wins.
    """

    name = models.CharField(_("规则名称"), max_length=100)
    priority = models.PositiveIntegerField(_("优先级(小者优先)"), default=100)
    active = models.BooleanField(_("启用"), default=True)
    category = models.CharField(_("问题类型"), max_length=32, choices=Category.choices, blank=True)
    keywords = models.CharField(_("关键词"), max_length=500, blank=True,
                                help_text=_("用逗号或顿号分隔,命中任一即可"))
    zone = models.MultiPolygonField(_("区域范围(WGS84)"), srid=4326, null=True, blank=True)
    grid = models.ForeignKey(GridUnit, verbose_name=_("网格(含下级)"), null=True, blank=True,
                             on_delete=models.CASCADE, related_name="routing_rules")
    lead = models.ForeignKey(Department, verbose_name=_("牵头部门"), on_delete=models.PROTECT,
                             related_name="lead_rules")
    partners = models.ManyToManyField(Department, verbose_name=_("协办部门"), blank=True,
                                      related_name="partner_rules")

    class Meta:
        verbose_name = _("派单规则")
        verbose_name_plural = _("派单规则")
        ordering = ["priority", "pk"]

    def __str__(self):
        return self.name


class Milestone(models.TextChoices):
    ON_SITE = "on_site", _("到场处置")
    REPLY = "reply", _("书面答复")
    RECTIFIED = "rectified", _("整改完成")


class TimeUnit(models.TextChoices):
    HOURS = "hours", _("小时")
    WORKING_DAYS = "working_days", _("工作日")
    CALENDAR_DAYS = "days", _("自然日")


class DeadlineRule(models.Model):
    """A promised time: what must happen (milestone) within how long, for which tickets.

    Matching as for routing rules: category (blank for any), any one of the
    keywords (in the ticket's text, type or address), and ``property_only``
    for tickets whose lead or a partner handles property. The first active
    rule by ``priority`` wins.
    """

    name = models.CharField(_("时限名称"), max_length=100)
    priority = models.PositiveIntegerField(_("优先级(小者优先)"), default=100)
    active = models.BooleanField(_("启用"), default=True)
    category = models.CharField(_("问题类型"), max_length=32, choices=Category.choices, blank=True)
    keywords = models.CharField(_("关键词"), max_length=500, blank=True,
                                help_text=_("用逗号或顿号分隔,命中任一即可"))
    property_only = models.BooleanField(_("仅物业类工单"), default=False)
    milestone = models.CharField(_("须完成"), max_length=16, choices=Milestone.choices)
    amount = models.PositiveIntegerField(_("时限数值"))
    unit = models.CharField(_("时限单位"), max_length=16, choices=TimeUnit.choices)

    class Meta:
        verbose_name = _("办理时限规则")
        verbose_name_plural = _("办理时限规则")
        ordering = ["priority", "pk"]

    def __str__(self):
        return self.name


class Card(models.TextChoices):
    NONE = "", _("无")
    YELLOW = "yellow", _("黄牌")
    RED = "red", _("红牌")


class TicketHandling(models.Model):
    """Handling of a ticket: departments, deadline and escalation.

    ``due_at`` is the promised time of ``milestone`` counted from
    ``started_at`` (the dispatch). ``yellow_at`` and ``red_at`` are the
    moments the ticket runs 30% and 50% of its promised duration past
    ``due_at``; ``gridmap.escalation`` compares them with the clock.
    ``met_at`` is when the milestone was reached (NULL while open).
    ``escalation_level`` counts the steps the ticket has climbed above its
    grid unit, and ``escalated_to`` is the unit it sits with now.
    """

    ticket = models.OneToOneField(Ticket, verbose_name=_("工单"), primary_key=True, on_delete=models.CASCADE,
                                  related_name="handling")
    lead = models.ForeignKey(Department, verbose_name=_("牵头部门"), null=True, blank=True,
                             on_delete=models.PROTECT, related_name="led_tickets")
    partners = models.ManyToManyField(Department, verbose_name=_("协办部门"), blank=True,
                                      related_name="partnered_tickets")
    rule = models.ForeignKey(RoutingRule, verbose_name=_("命中派单规则"), null=True, blank=True,
                             on_delete=models.SET_NULL, related_name="+")
    in_dispatch_queue = models.BooleanField(_("待人工派单"), default=False)
    deadline_rule = models.ForeignKey(DeadlineRule, verbose_name=_("时限规则"), null=True, blank=True,
                                      on_delete=models.SET_NULL, related_name="+")
    milestone = models.CharField(_("须完成"), max_length=16, choices=Milestone.choices, blank=True)
    started_at = models.DateTimeField(_("计时开始"), null=True, blank=True)
    due_at = models.DateTimeField(_("办理时限"), null=True, blank=True)
    yellow_at = models.DateTimeField(_("黄牌时点"), null=True, blank=True)
    red_at = models.DateTimeField(_("红牌时点"), null=True, blank=True)
    met_at = models.DateTimeField(_("按时完成时间"), null=True, blank=True)
    card = models.CharField(_("牌"), max_length=8, choices=Card.choices, blank=True, default=Card.NONE)
    carded_at = models.DateTimeField(_("亮牌时间"), null=True, blank=True)
    escalation_level = models.PositiveSmallIntegerField(_("升级次数"), default=0)
    escalated_to = models.ForeignKey(GridUnit, verbose_name=_("升级至网格"), null=True, blank=True,
                                     on_delete=models.SET_NULL, related_name="escalated_tickets")
    reply_text = models.TextField(_("书面答复"), blank=True)
    red_explanation = models.TextField(_("红牌书面说明"), blank=True)
    red_explained_by = models.ForeignKey(settings.AUTH_USER_MODEL, verbose_name=_("说明人"), null=True,
                                         blank=True, on_delete=models.PROTECT, related_name="+")
    red_explained_at = models.DateTimeField(_("说明时间"), null=True, blank=True)
    version = models.PositiveIntegerField(_("版本"), default=0)
    updated_at = models.DateTimeField(_("更新时间"), auto_now=True)

    class Meta:
        verbose_name = _("工单办理")
        verbose_name_plural = _("工单办理")
        indexes = [
            # The escalation pass scans open tickets by their thresholds.
            models.Index(fields=["due_at"], name="handling_due_open_idx", condition=models.Q(met_at__isnull=True)),
            models.Index(fields=["lead"], name="handling_lead_idx"),
        ]

    def __str__(self):
        return f"{self.ticket_id}"


class EventKind(models.TextChoices):
    TRANSITION = "transition", _("状态变更")
    ASSIGNMENT = "assignment", _("派单")
    ESCALATION = "escalation", _("超时升级")
    CARD = "card", _("亮牌")
    REPLY = "reply", _("书面答复")
    EXPLANATION = "explanation", _("红牌说明")
    NOTE = "note", _("备注")


class TicketEvent(models.Model):
    """One append-only entry of a ticket's history.

    ``actor`` is NULL for the system (dispatch rules, the escalation pass).
    ``from_status`` and ``to_status`` are equal for events that do not move
    the ticket (notes, replies, cards, escalations). Never updated or deleted:
    migration 0003 installs a trigger that raises on UPDATE and DELETE.
    """

    ticket = models.ForeignKey(Ticket, verbose_name=_("工单"), on_delete=models.PROTECT, related_name="events",
                               db_constraint=True)
    kind = models.CharField(_("事件类型"), max_length=16, choices=EventKind.choices)
    actor = models.ForeignKey(settings.AUTH_USER_MODEL, verbose_name=_("操作人"), null=True, blank=True,
                              on_delete=models.PROTECT, related_name="+")
    at = models.DateTimeField(_("时间"))
    from_status = models.CharField(_("原状态"), max_length=16, choices=TicketStatus.choices)
    to_status = models.CharField(_("新状态"), max_length=16, choices=TicketStatus.choices)
    note = models.TextField(_("说明"), blank=True)
    # Machine-readable details: card colour, escalation target, rule id...
    data = models.JSONField(_("附加信息"), default=dict, blank=True)

    class Meta:
        verbose_name = _("工单事件")
        verbose_name_plural = _("工单事件")
        ordering = ["at", "pk"]
        indexes = [models.Index(fields=["ticket", "at"], name="event_ticket_at_idx")]

    def __str__(self):
        return f"{self.ticket_id} {self.kind} {self.from_status}->{self.to_status}"

    def save(self, *args, **kwargs):
        if self.pk is not None and not kwargs.get("force_insert"):
            raise ValidationError(_("工单事件只能追加,不能修改。"))
        super().save(*args, **kwargs)

    def delete(self, *args, **kwargs):
        raise ValidationError(_("工单事件只能追加,不能删除。"))


class EventPhoto(models.Model):
    """A photo attached to an event (on site, rectified)."""

    event = models.ForeignKey(TicketEvent, verbose_name=_("事件"), on_delete=models.PROTECT,
                              related_name="photos")
    image = models.ImageField(_("照片"), upload_to="ticket_photos/%Y/%m/")

    class Meta:
        verbose_name = _("现场照片")
        verbose_name_plural = _("现场照片")


class RectificationStandard(models.Model):
    """Rectification standard of a category: what must be fixed, the rule that applies and the evidence that closes the ticket.

    Shown to the handler and on the citizen's lookup page.
    """

    category = models.CharField(_("问题类型"), max_length=32, choices=Category.choices, unique=True)
    title = models.CharField(_("标准名称"), max_length=200)
    requirements = models.TextField(_("整改要求"))
    regulation = models.TextField(_("依据"))
    evidence = models.TextField(_("办结所需证据"))
    updated_at = models.DateTimeField(_("更新时间"), auto_now=True)

    class Meta:
        verbose_name = _("整改标准")
        verbose_name_plural = _("整改标准")
        ordering = ["category"]

    def __str__(self):
        return self.title


class NotificationKind(models.TextChoices):
    ASSIGNMENT = "assignment", _("派单")
    ESCALATION = "escalation", _("超时升级")
    CARD = "card", _("亮牌")


class Notification(models.Model):
    """An in-app message to one user; ``emailed_at`` is set once it went out by e-mail."""

    user = models.ForeignKey(settings.AUTH_USER_MODEL, verbose_name=_("接收人"), on_delete=models.CASCADE,
                             related_name="notifications")
    ticket = models.ForeignKey(Ticket, verbose_name=_("工单"), on_delete=models.CASCADE, related_name="+")
    kind = models.CharField(_("类型"), max_length=16, choices=NotificationKind.choices)
    message = models.CharField(_("内容"), max_length=500)
    created_at = models.DateTimeField(_("时间"))
    read_at = models.DateTimeField(_("已读时间"), null=True, blank=True)
    emailed_at = models.DateTimeField(_("邮件发送时间"), null=True, blank=True)

    class Meta:
        verbose_name = _("通知")
        verbose_name_plural = _("通知")
        ordering = ["-created_at", "-pk"]
        indexes = [models.Index(fields=["user", "read_at"], name="notification_unread_idx")]


class Open311Key(models.Model):
    """An API key allowed to create requests through Open311."""

    key = models.CharField(_("API密钥"), max_length=64, unique=True)
    owner = models.CharField(_("使用方"), max_length=100)
    active = models.BooleanField(_("启用"), default=True)
    created_at = models.DateTimeField(_("创建时间"), auto_now_add=True)

    class Meta:
        verbose_name = _("Open311密钥")
        verbose_name_plural = _("Open311密钥")

    def __str__(self):
        return self.owner


class LookupAttempt(models.Model):
    """One citizen lookup, kept to rate-limit guessing by client address and by ticket number."""

    client = models.CharField(_("客户端地址"), max_length=64)
    number = models.CharField(_("工单编号"), max_length=64)
    at = models.DateTimeField(_("时间"), auto_now_add=True)
    success = models.BooleanField(_("成功"), default=False)

    class Meta:
        verbose_name = _("查询记录")
        verbose_name_plural = _("查询记录")
        indexes = [models.Index(fields=["client", "at"], name="lookup_client_idx"),
                   models.Index(fields=["number", "at"], name="lookup_number_idx")]


from gridmap import supervision  # noqa: E402,F401  registers the supervision models with this app
from gridmap import inspections  # noqa: E402,F401  registers the inspection models with this app
