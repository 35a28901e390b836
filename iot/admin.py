from django.contrib.gis import admin

from iot.models import Alarm, DeadLetter, Gateway, Reading, Sensor, SensorType


@admin.register(SensorType)
class SensorTypeAdmin(admin.ModelAdmin):
    list_display = ["code", "name", "rule_kind", "value_key", "unit"]


@admin.register(Gateway)
class GatewayAdmin(admin.ModelAdmin):
    list_display = ["code", "name", "active"]
    # Keys are issued with `manage.py iot_gateway_key`, which shows the key once.
    readonly_fields = ["key_sha256"]


@admin.register(Sensor)
class SensorAdmin(admin.GISModelAdmin):
    list_display = ["code", "sensor_type", "place", "grid_code", "status", "last_seen_at", "active"]
    list_filter = ["sensor_type", "status", "active"]
    search_fields = ["code", "place", "address", "grid_code"]
    readonly_fields = ["status", "last_seen_at", "last_device_time", "last_values", "rule_state"]


@admin.register(Reading)
class ReadingAdmin(admin.ModelAdmin):
    list_display = ["sensor", "seq", "device_time", "received_at", "time_replaced", "retained"]
    list_filter = ["time_replaced", "retained"]
    raw_id_fields = ["sensor"]
    show_full_result_count = False


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
