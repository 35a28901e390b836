"""Replace the sensor's free-text grid code with a foreign key to its grid unit.

Codes that name an existing unit keep it; the other sensors are placed in
the smallest unit that covers their location, or none.
"""
import django.db.models.deletion
from django.db import migrations, models


def codes_to_units(apps, schema_editor):
    Sensor = apps.get_model("iot", "Sensor")
    GridUnit = apps.get_model("gridmap", "GridUnit")
    by_code = dict(GridUnit.objects.values_list("code", "id"))
    for sensor in Sensor.objects.all():
        unit_id = by_code.get(sensor.grid_code)
        if unit_id is None:
            unit = GridUnit.objects.filter(geom__covers=sensor.location).order_by("-level", "id").first()
            unit_id = unit.id if unit else None
        if unit_id is not None:
            Sensor.objects.filter(pk=sensor.pk).update(grid_unit_id=unit_id)


def units_to_codes(apps, schema_editor):
    Sensor = apps.get_model("iot", "Sensor")
    for sensor in Sensor.objects.exclude(grid_unit=None).select_related("grid_unit"):
        Sensor.objects.filter(pk=sensor.pk).update(grid_code=sensor.grid_unit.code)


class Migration(migrations.Migration):

    dependencies = [
        ("gridmap", "0007_daily_inspections"),
        ("iot", "0003_reading_without_sensor_constraint"),
    ]

    operations = [
        migrations.AddField(
            model_name="sensor",
            name="grid_unit",
            field=models.ForeignKey(
                blank=True, help_text="留空时按位置自动归入包含该点的最小网格。", null=True,
                on_delete=django.db.models.deletion.SET_NULL, related_name="sensors", to="gridmap.gridunit",
                verbose_name="所属网格",
            ),
        ),
        migrations.RunPython(codes_to_units, units_to_codes),
        migrations.RemoveField(model_name="sensor", name="grid_code"),
    ]
