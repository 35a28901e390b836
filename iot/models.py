"""Sensors, their readings and the alarms raised from them.

A sensor type is a row, not code: its rule kind (occupancy, band, boolean
alarm or none), the key of the value that rule reads and its default
thresholds are data, so a new kind of device needs a SensorType row and no
change to ingestion. Readings keep every value the device sent as JSON.
"""
from django.contrib.gis.db import models
from django.contrib.postgres.indexes import BrinIndex
from django.db import connection
from django.db.models.signals import pre_delete
from django.dispatch import receiver
from django.utils.translation import gettext_lazy as _

from gridmap.models import GridUnit
from spatial.models import Ticket

# Key of the transaction-level advisory lock ("iot1" in ASCII) held by every
# writer of readings and rule state; migration 0003's trigger repeats it.
RULES_LOCK_KEY = 0x696F7431


class RuleKind(models.TextChoices):
    OCCUPANCY = "occupancy", _("占用时长(如通道雷达)")
    BAND = "band", _("数值区间(如水压)")
    BOOLEAN_ALARM = "boolean_alarm", _("开关量报警(如烟感)")
    NONE = "none", _("不判定")


class SensorType(models.Model):
    """A kind of device and the rule its readings feed."""

    code = models.SlugField(_("类型代码"), max_length=32, unique=True)
    name = models.CharField(_("名称"), max_length=100)
    rule_kind = models.CharField(_("告警规则"), max_length=16, choices=RuleKind.choices, default=RuleKind.NONE)
    value_key = models.CharField(_("判定字段"), max_length=64, blank=True,
                                 help_text=_("规则读取的读数字段名,例如 occupied、pressure_mpa、smoke。"))
    unit = models.CharField(_("单位"), max_length=16, blank=True)
    default_thresholds = models.JSONField(
        _("默认阈值"), default=dict, blank=True,
        help_text=_("JSON 对象。占用:occupied_alarm_s、free_clear_s;区间:low、high、consecutive、hysteresis;"
                    "开关量:clear_consecutive。传感器上的阈值逐项覆盖这里的值。"),
    )

    class Meta:
        verbose_name = _("传感器类型")
        verbose_name_plural = _("传感器类型")
        ordering = ["code"]

    def __str__(self):
        return self.name


class Gateway(models.Model):
    """A site gateway that posts readings over HTTP with its own key."""

    code = models.SlugField(_("网关编号"), max_length=64, unique=True)
    name = models.CharField(_("名称"), max_length=100, blank=True)
    # SHA-256 of the key in hex; the key itself is shown once when it is made.
    key_sha256 = models.CharField(_("密钥摘要"), max_length=64)
    active = models.BooleanField(_("启用"), default=True)

    class Meta:
        verbose_name = _("网关")
        verbose_name_plural = _("网关")

    def __str__(self):
        return self.code


class SensorStatus(models.TextChoices):
    NORMAL = "normal", _("正常")
    ALARM = "alarm", _("告警")
    OFFLINE = "offline", _("离线")
    UNKNOWN = "unknown", _("未上报")


def smallest_unit_at(point):
    """Return the grid unit of the highest level (the smallest) that covers ``point``, or None."""
    return GridUnit.objects.filter(geom__covers=point).order_by("-level", "id").first()


class Sensor(models.Model):
    """One installed device: where it is, what it guards and how often it reports."""

    code = models.CharField(_("传感器编号"), max_length=64, unique=True)
    sensor_type = models.ForeignKey(SensorType, verbose_name=_("类型"), on_delete=models.PROTECT,
                                    related_name="sensors")
    gateway = models.ForeignKey(Gateway, verbose_name=_("所属网关"), null=True, blank=True,
                                on_delete=models.SET_NULL, related_name="sensors",
                                help_text=_("设定后,HTTP 批量接口只接受该网关上报此传感器的读数。"))
    location = models.PointField(_("位置(WGS84)"), srid=4326)
    grid_unit = models.ForeignKey(GridUnit, verbose_name=_("所属网格"), null=True, blank=True,
                                  on_delete=models.SET_NULL, related_name="sensors",
                                  help_text=_("留空时按位置自动归入包含该点的最小网格。"))
    place = models.CharField(_("守护场所"), max_length=200,
                             help_text=_("例如:万达广场B1东侧消防通道、3号楼1单元消火栓。"))
    address = models.CharField(_("地址"), max_length=500, blank=True)
    property_manager = models.CharField(_("物业单位"), max_length=200, blank=True)
    installed_at = models.DateTimeField(_("安装时间"))
    interval_s = models.PositiveIntegerField(_("上报间隔(秒)"), default=60)
    thresholds = models.JSONField(_("阈值"), default=dict, blank=True,
                                  help_text=_("覆盖类型默认阈值的 JSON 对象,留空则用类型默认值。"))
    active = models.BooleanField(_("启用"), default=True)

    # Live state, written by the rules after each batch.
    status = models.CharField(_("状态"), max_length=8, choices=SensorStatus.choices, default=SensorStatus.UNKNOWN)
    last_seen_at = models.DateTimeField(_("最近接收时间"), null=True, blank=True)
    last_device_time = models.DateTimeField(_("最近读数设备时间"), null=True, blank=True)
    last_values = models.JSONField(_("最近读数"), null=True, blank=True)
    # Rule state such as the start of an occupied spell or a run length.
    rule_state = models.JSONField(_("规则状态"), default=dict, blank=True)

    class Meta:
        verbose_name = _("传感器")
        verbose_name_plural = _("传感器")
        ordering = ["code"]

    def __str__(self):
        return f"{self.code} {self.place}"

    def save(self, *args, **kwargs):
        if self.grid_unit_id is None and self.location is not None:
            self.grid_unit = smallest_unit_at(self.location)
        super().save(*args, **kwargs)

    def effective_thresholds(self):
        """Return the type's default thresholds overlaid with this sensor's own."""
        merged = dict(self.sensor_type.default_thresholds or {})
        merged.update(self.thresholds or {})
        return merged


@receiver(pre_delete, sender=Sensor, dispatch_uid="iot_sensor_rules_lock")
def _lock_before_sensor_delete(sender, instance, **kwargs):
    """Take the rules lock before Django deletes a sensor's alarms and readings.

    The intake holds this lock while it writes readings and alarm rows.
    Taking it first makes a deletion wait for the intake instead of
    locking rows the intake then waits for, which would deadlock.
    """
    with connection.cursor() as cursor:
        cursor.execute("SELECT pg_advisory_xact_lock(%s)", [RULES_LOCK_KEY])


class Reading(models.Model):
    """One reading as the device sent it, keyed by sensor and sequence number.

    The composite primary key doubles as the redelivery check, so each
    insert maintains one index fewer than a surrogate id would need.

    The table carries what the intake rate allows: the primary key, which
    also serves one sensor's readings in sequence order, and a BRIN index
    for time ranges. The sensor column has no foreign-key constraint,
    whose per-row check cost a third of each insert. In its place the
    intake checks the batch's sensors under the rules lock before writing,
    and a trigger on ``iot_sensor`` takes the same lock and deletes the
    readings of every deleted sensor (migration 0003), so no reading
    outlives its sensor.
    """

    pk = models.CompositePrimaryKey("sensor", "seq")
    # DO_NOTHING: the trigger deletes a sensor's readings, so Django neither
    # loads them to delete them nor lists thousands on the admin's
    # confirmation page.
    sensor = models.ForeignKey(Sensor, on_delete=models.DO_NOTHING, related_name="readings", db_index=False,
                               db_constraint=False)
    seq = models.BigIntegerField(_("序号"))
    device_time = models.DateTimeField(_("设备时间"))
    received_at = models.DateTimeField(_("接收时间"))
    values = models.JSONField(_("读数"))
    # Set when the device time was in the future or before installation and
    # the receipt time was stored in its place.
    time_replaced = models.BooleanField(_("设备时间已替换"), default=False)
    # The device time as sent, kept when it was replaced.
    sent_device_time = models.DateTimeField(_("设备原报时间"), null=True, blank=True)
    retained = models.BooleanField(_("保留消息"), default=False)

    class Meta:
        verbose_name = _("读数")
        verbose_name_plural = _("读数")
        indexes = [
            # Readings arrive roughly in time order, so a BRIN index serves
            # time ranges over all sensors at a fraction of a B-tree's size
            # and insert cost.
            BrinIndex(fields=["device_time"], name="iot_reading_time_brin"),
        ]


class DeadLetter(models.Model):
    """A payload that could not be stored, kept with the reason for inspection."""

    received_at = models.DateTimeField(_("接收时间"), auto_now_add=True)
    channel = models.CharField(_("通道"), max_length=16)
    topic = models.CharField(_("主题或网关"), max_length=300, blank=True)
    sensor_code = models.CharField(_("传感器编号"), max_length=64, blank=True)
    reason = models.CharField(_("原因"), max_length=300)
    payload = models.TextField(_("原始内容"))

    class Meta:
        verbose_name = _("死信")
        verbose_name_plural = _("死信")
        ordering = ["-received_at"]
        indexes = [models.Index(fields=["received_at"], name="iot_deadletter_time")]


class AlarmKind(models.TextChoices):
    LANE_OCCUPIED = "lane_occupied", _("消防通道占用")
    OUT_OF_BAND = "out_of_band", _("数值越限")
    OFFLINE = "offline", _("设备离线")
    SMOKE = "smoke", _("烟感报警")


class AlarmSeverity(models.TextChoices):
    URGENT = "urgent", _("紧急")
    HIGH = "high", _("高")
    NORMAL = "normal", _("一般")


class Alarm(models.Model):
    """One alarm spell of a sensor and the ticket it opened."""

    sensor = models.ForeignKey(Sensor, on_delete=models.CASCADE, related_name="alarms")
    kind = models.CharField(_("告警类型"), max_length=16, choices=AlarmKind.choices)
    severity = models.CharField(_("级别"), max_length=8, choices=AlarmSeverity.choices, default=AlarmSeverity.NORMAL)
    opened_at = models.DateTimeField(_("告警时间"))
    cleared_at = models.DateTimeField(_("解除时间"), null=True, blank=True)
    last_reading_at = models.DateTimeField(_("最近相关读数时间"), null=True, blank=True)
    # The reading that crossed the threshold, and when it reached the server,
    # so that the threshold-to-ticket latency can be measured.
    trigger_received_at = models.DateTimeField(_("触发读数接收时间"), null=True, blank=True)
    detail = models.JSONField(_("详情"), default=dict, blank=True)
    ticket = models.OneToOneField(Ticket, verbose_name=_("工单"), null=True, blank=True,
                                  on_delete=models.SET_NULL, related_name="iot_alarm")

    class Meta:
        verbose_name = _("告警")
        verbose_name_plural = _("告警")
        ordering = ["-opened_at"]
        constraints = [
            # At most one open alarm of a kind per sensor: further readings
            # update it instead of opening another.
            models.UniqueConstraint(fields=["sensor", "kind"], condition=models.Q(cleared_at__isnull=True),
                                    name="iot_alarm_one_open"),
        ]

    def __str__(self):
        return f"{self.sensor.code} {self.get_kind_display()}"
