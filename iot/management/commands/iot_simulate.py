from django.conf import settings
from django.core.management.base import BaseCommand, CommandError

from iot import simulator


class Command(BaseCommand):
    help = ("Publish simulated sensor readings to the MQTT broker: lane radars, hydrant and extinguisher "
            "pressure, and smoke detectors replaying the real smoke data set.")

    def add_arguments(self, parser):
        parser.add_argument("--per-type", type=int, default=5, help="simulated sensors of each type (default 5)")
        parser.add_argument("--interval-s", type=int, default=30, help="reporting interval of new sensors, s")
        parser.add_argument("--duration-s", type=int, default=600, help="simulated seconds to publish (default 600)")
        parser.add_argument("--speed", type=float, default=1.0,
                            help="simulated seconds per real second; 1 is real time, 3600 plays an hour a second")
        parser.add_argument("--batch", type=int, default=1,
                            help="readings per message; above 1 they go to the gateway batch topic")
        parser.add_argument("--smoke-csv", default=None,
                            help="smoke data set to replay (default ../shared/data/iot/smoke_detection.csv)")
        parser.add_argument("--broker-url", default=None, help="MQTT broker (default: MQTT_URL)")
        parser.add_argument("--seed", type=int, default=7, help="random seed of the streams")

    def handle(self, *args, **options):
        if options["per_type"] < 1 or options["duration_s"] < 1 or options["speed"] <= 0:
            raise CommandError("--per-type and --duration-s must be at least 1 and --speed above 0")
        smoke_path = options["smoke_csv"] or simulator.smoke_csv_default()
        try:
            smoke_rows = simulator.read_smoke_rows(smoke_path)
        except FileNotFoundError:
            if options["smoke_csv"]:
                raise CommandError(f"smoke data set {smoke_path} not found") from None
            self.stderr.write(f"{smoke_path} not found; smoke detectors report no smoke")
            smoke_rows = []
        except (KeyError, ValueError) as error:
            raise CommandError(f"{smoke_path}: expected columns Temperature[C], Humidity[%], eCO2[ppm], "
                               f"Fire Alarm with numbers ({error})") from None
        sensors = simulator.ensure_sensors(options["per_type"], interval_s=options["interval_s"], seed=options["seed"])
        self.stdout.write(f"{len(sensors)} simulated sensors; publishing {options['duration_s']} s "
                          f"at {options['speed']}x to {options['broker_url'] or settings.MQTT_URL}")
        published = simulator.run_simulation(
            options["broker_url"] or settings.MQTT_URL, settings.FIREGRID_IOT_TOPIC_PREFIX, sensors,
            options["duration_s"], speed=options["speed"], batch_size=options["batch"], seed=options["seed"],
            smoke_rows=smoke_rows, log=self.stdout.write,
        )
        self.stdout.write(f"published {published} readings")
