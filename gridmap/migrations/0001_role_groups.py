"""Create one auth group per user role.

The names are a copy of gridmap.roles.Role's values at the time of writing,
because a migration must not change when that module does.
"""
from django.db import migrations

ROLE_GROUP_NAMES = ["planner", "grid_head", "handler", "leader", "admin"]


def create_role_groups(apps, schema_editor):
    group_model = apps.get_model("auth", "Group")
    for name in ROLE_GROUP_NAMES:
        group_model.objects.get_or_create(name=name)


def delete_role_groups(apps, schema_editor):
    group_model = apps.get_model("auth", "Group")
    group_model.objects.filter(name__in=ROLE_GROUP_NAMES).delete()


class Migration(migrations.Migration):
    dependencies = [
        ("auth", "0012_alter_user_first_name_max_length"),
    ]

    operations = [
        migrations.RunPython(create_role_groups, delete_role_groups),
    ]
