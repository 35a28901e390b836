"""Give deadline rules keywords, and route smoke alarms to the fire brigade within an hour.

A smoke detector's ticket is titled 【紧急】烟感火警 (iot.rules) and has
the category "other", which no routing rule covered, so it waited in the
dispatchers' queue with the five-day deadline of other tickets. The two
seeded rules, first by priority, send it to the fire brigade with the
property company and ask for someone on site within an hour.
"""
from django.db import migrations, models

SMOKE_KEYWORD = "烟感火警"
ROUTING_NAME = "烟感火警"
DEADLINE_NAME = "烟感火警1小时内到场处置"


def seed(apps, schema_editor):
    department_model = apps.get_model("gridmap", "Department")
    rule_model = apps.get_model("gridmap", "RoutingRule")
    deadline_model = apps.get_model("gridmap", "DeadlineRule")
    fire = department_model.objects.filter(code="fire").first()
    if fire is not None and not rule_model.objects.filter(name=ROUTING_NAME).exists():
        rule = rule_model.objects.create(name=ROUTING_NAME, priority=1, keywords=SMOKE_KEYWORD, lead=fire)
        rule.partners.set(department_model.objects.filter(code="property"))
    deadline_model.objects.get_or_create(name=DEADLINE_NAME, defaults={
        "priority": 1, "keywords": SMOKE_KEYWORD, "milestone": "on_site", "amount": 1, "unit": "hours"})


def unseed(apps, schema_editor):
    apps.get_model("gridmap", "RoutingRule").objects.filter(name=ROUTING_NAME).delete()
    apps.get_model("gridmap", "DeadlineRule").objects.filter(name=DEADLINE_NAME).delete()


class Migration(migrations.Migration):

    dependencies = [
        ("gridmap", "0007_daily_inspections"),
    ]

    operations = [
        migrations.AddField(
            model_name="deadlinerule",
            name="keywords",
            field=models.CharField(blank=True, help_text="用逗号或顿号分隔,命中任一即可", max_length=500,
                                   verbose_name="关键词"),
        ),
        migrations.RunPython(seed, unseed),
    ]
