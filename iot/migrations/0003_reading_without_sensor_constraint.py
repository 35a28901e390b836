"""Drop the readings' foreign key and sensor-time index; delete a sensor's readings by trigger.

See the Reading model for why. The trigger takes the rules lock
(iot.models.RULES_LOCK_KEY), so it waits for an intake transaction that
may still be writing readings of the sensor, then deletes them.
"""
import django.db.models.deletion
from django.db import migrations, models


class Migration(migrations.Migration):

    dependencies = [
        ('iot', '0002_sensor_types'),
    ]

    operations = [
        migrations.RemoveIndex(
            model_name='reading',
            name='iot_reading_sensor_time',
        ),
        migrations.AlterField(
            model_name='reading',
            name='sensor',
            field=models.ForeignKey(db_constraint=False, db_index=False, on_delete=django.db.models.deletion.CASCADE, related_name='readings', to='iot.sensor'),
        ),
        migrations.RunSQL(
            sql="""
                CREATE FUNCTION iot_sensor_delete_readings() RETURNS trigger LANGUAGE plpgsql AS $$
                BEGIN
                    PERFORM pg_advisory_xact_lock(1768911921);
                    DELETE FROM iot_reading WHERE sensor_id = OLD.id;
                    RETURN OLD;
                END
                $$;
                CREATE TRIGGER iot_sensor_delete_readings AFTER DELETE ON iot_sensor
                    FOR EACH ROW EXECUTE FUNCTION iot_sensor_delete_readings();
            """,
            reverse_sql="""
                DROP TRIGGER iot_sensor_delete_readings ON iot_sensor;
                DROP FUNCTION iot_sensor_delete_readings();
            """,
        ),
    ]
