"""Keep the device time a reading was sent with when the intake replaced it."""

from django.db import migrations, models


class Migration(migrations.Migration):

    dependencies = [
        ('iot', '0005_readings_deleted_by_trigger'),
    ]

    operations = [
        migrations.AddField(
            model_name='reading',
            name='sent_device_time',
            field=models.DateTimeField(blank=True, null=True, verbose_name='设备原报时间'),
        ),
    ]
