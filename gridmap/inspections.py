"""Daily building inspections by grid heads, recorded from a phone.

- ``Inspection``: one visit to one building-level grid unit, with a note.
  ``client_key`` is the UUID the phone generated when the form was filled;
  it is unique, so a form sent twice (the server's reply lost on a poor
  connection) is stored once and the second send gets the first inspection back.
- ``InspectionAnswer``: one checklist item, passed or failed. A failed item
  opens a ticket with source ``TicketSource.INSPECTION`` and keeps a link
  to it.
- ``InspectionPhoto``: a photo taken on site, served only through the
  permission-checked view in ``gridmap.inspection_views``.
"""
from django.conf import settings
from django.contrib.gis.db import models
from django.utils.translation import gettext_lazy as _

from spatial.models import Ticket
from spatial.taxonomy import Category


class CheckItem(models.TextChoices):
    """The daily checklist; each item names the ticket category a failure opens (see ``ITEM_CATEGORY``)."""

    ESCAPE_ROUTES = "escape_routes", _("疏散通道、安全出口和消防车通道畅通")
    EXTINGUISHERS = "extinguishers", _("灭火器、消火栓完好有效")
    EBIKE_CHARGING = "ebike_charging", _("无电动车入户、楼道充电或飞线充电")
    FLAMMABLE_STORAGE = "flammable_storage", _("无易燃可燃物品堆放")


ITEM_CATEGORY = {
    CheckItem.ESCAPE_ROUTES: Category.FIRE_LANE,
    CheckItem.EXTINGUISHERS: Category.FACILITY_FAULT,
    CheckItem.EBIKE_CHARGING: Category.EBIKE_CHARGING,
    CheckItem.FLAMMABLE_STORAGE: Category.FLAMMABLE_STORAGE,
}


class Inspection(models.Model):
    """One daily inspection of one building grid unit."""

    client_key = models.UUIDField(_("客户端提交编号"), unique=True)
    building = models.ForeignKey("gridmap.GridUnit", verbose_name=_("楼栋网格"), on_delete=models.PROTECT,
                                 related_name="inspections")
    inspector = models.ForeignKey(settings.AUTH_USER_MODEL, verbose_name=_("巡查人"), on_delete=models.PROTECT,
                                  related_name="inspections")
    # When the form was filled on the phone, which may be hours before it reached the server.
    inspected_at = models.DateTimeField(_("巡查时间"))
    # The Asia/Shanghai day of inspected_at, which the community pages count by.
    inspected_on = models.DateField(_("巡查日期"))
    received_at = models.DateTimeField(_("上传时间"), auto_now_add=True)
    note = models.TextField(_("备注"), blank=True)

    class Meta:
        verbose_name = _("日常巡查")
        verbose_name_plural = _("日常巡查")
        ordering = ["-inspected_at", "-pk"]
        indexes = [models.Index(fields=["inspected_on", "building"], name="inspection_day_building_idx")]

    def __str__(self):
        return f"{self.building_id} {self.inspected_on}"


class InspectionAnswer(models.Model):
    """One checklist item of an inspection and, when it failed, the ticket it opened."""

    inspection = models.ForeignKey(Inspection, verbose_name=_("巡查"), on_delete=models.CASCADE,
                                   related_name="answers")
    item = models.CharField(_("检查项"), max_length=32, choices=CheckItem.choices)
    passed = models.BooleanField(_("合格"))
    ticket = models.OneToOneField(Ticket, verbose_name=_("生成工单"), null=True, blank=True,
                                  on_delete=models.SET_NULL, related_name="inspection_answer")

    class Meta:
        verbose_name = _("巡查检查项")
        verbose_name_plural = _("巡查检查项")
        constraints = [models.UniqueConstraint(fields=["inspection", "item"], name="inspection_answer_unique_item")]

    def __str__(self):
        return f"{self.inspection_id} {self.item} {self.passed}"


class InspectionPhoto(models.Model):
    """A photo taken during an inspection (not a public file)."""

    inspection = models.ForeignKey(Inspection, verbose_name=_("巡查"), on_delete=models.CASCADE,
                                   related_name="photos")
    image = models.ImageField(_("照片"), upload_to="inspection_photos/%Y/%m/")

    class Meta:
        verbose_name = _("巡查照片")
        verbose_name_plural = _("巡查照片")
