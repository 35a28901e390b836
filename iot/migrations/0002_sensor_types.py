"""Create the four sensor types the alarm rules ship with; more can be added as rows."""
from django.db import migrations

TYPES = [
    # code, name, rule kind, value key, unit, default thresholds
    ("lane_radar", "毫米波通道雷达", "occupancy", "occupied", "",
     {"occupied_alarm_s": 300, "free_clear_s": 120}),
    # Outdoor hydrant static pressure must stay at or above 0.14 MPa (GB 50974);
    # above 1.2 MPa fittings are at risk.
    ("hydrant_pressure", "消火栓水压", "band", "pressure_mpa", "MPa",
     {"low": 0.14, "high": 1.2, "consecutive": 3, "hysteresis": 0.02}),
    # The green zone of a stored-pressure extinguisher gauge rated 1.2 MPa.
    ("extinguisher_pressure", "灭火器压力", "band", "pressure_mpa", "MPa",
     {"low": 1.0, "high": 1.4, "consecutive": 3, "hysteresis": 0.02}),
    ("smoke_detector", "独立式烟感探测器", "boolean_alarm", "smoke", "",
     {"clear_consecutive": 3}),
]


def create_types(apps, schema_editor):
    SensorType = apps.get_model("iot", "SensorType")
    for code, name, rule_kind, value_key, unit, thresholds in TYPES:
        SensorType.objects.update_or_create(code=code, defaults={
            "name": name, "rule_kind": rule_kind, "value_key": value_key, "unit": unit,
            "default_thresholds": thresholds,
        })


def delete_types(apps, schema_editor):
    apps.get_model("iot", "SensorType").objects.filter(code__in=[t[0] for t in TYPES], sensors__isnull=True).delete()


class Migration(migrations.Migration):
    dependencies = [("iot", "0001_initial")]
    operations = [migrations.RunPython(create_types, delete_types)]
