"""Leave the deletion of a sensor's readings to the trigger of migration 0003."""

import django.db.models.deletion
from django.db import migrations, models


class Migration(migrations.Migration):

    dependencies = [
        ('iot', '0004_sensor_grid_unit'),
    ]

    operations = [
        migrations.AlterField(
            model_name='reading',
            name='sensor',
            field=models.ForeignKey(db_constraint=False, db_index=False, on_delete=django.db.models.deletion.DO_NOTHING, related_name='readings', to='iot.sensor'),
        ),
    ]
