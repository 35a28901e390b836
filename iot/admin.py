from django import forms
from django.contrib.gis import admin
from django.contrib.gis.db import models as gis_models

from iot.models import Alarm, DeadLetter, Gateway, Sensor, SensorType

# NOTE: readings are not in the admin, which does not support composite
# primary keys in Django 5.2. Query them by sensor (the primary key) and by
# device time (the BRIN index) instead.


@admin.register(SensorType)
class SensorTypeAdmin(admin.ModelAdmin):
    list_display = ["code", "name", "rule_kind", "value_key", "unit"]


@admin.register(Gateway)
class GatewayAdmin(admin.ModelAdmin):
    list_display = ["code", "name", "active"]
    # Keys are issued with `manage.py iot_gateway_key`, which shows the key once.
    readonly_fields = ["key_sha256"]


@admin.register(Sensor)
class SensorAdmin(admin.ModelAdmin):
    # The location as WKT or GeoJSON text, e.g. POINT(109.68 23.96): Django's
    # map widget loads OpenLayers from a CDN, which intranets cannot reach.
    formfield_overrides = {gis_models.PointField: {"widget": forms.TextInput(attrs={"size": 60})}}
    list_display = ["code", "sensor_type", "place", "grid_unit", "status", "last_seen_at", "active"]
    list_filter = ["sensor_type", "status", "active"]
    search_fields = ["code", "place", "address", "grid_unit__code", "grid_unit__name"]
    autocomplete_fields = ["grid_unit"]
    readonly_fields = ["status", "last_seen_at", "last_device_time", "last_values", "rule_state"]


@admin.register(DeadLetter)
class DeadLetterAdmin(admin.ModelAdmin):
    list_display = ["received_at", "channel", "sensor_code", "reason"]
    list_filter = ["channel"]
    search_fields = ["sensor_code", "reason"]


@admin.register(Alarm)
class AlarmAdmin(admin.ModelAdmin):
    list_display = ["sensor", "kind", "severity", "opened_at", "cleared_at", "ticket"]
    list_filter = ["kind", "severity"]
    raw_id_fields = ["sensor", "ticket"]
