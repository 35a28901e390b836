import signal

from django.conf import settings
from django.core.management.base import BaseCommand

from iot.listener import Listener


class Command(BaseCommand):
    help = "Run the MQTT listener that stores sensor readings and raises alarms; stop it with Ctrl+C or SIGTERM."

    def add_arguments(self, parser):
        parser.add_argument("--broker-url", default=None, help="MQTT broker, mqtt://host:port (default: MQTT_URL).")
        parser.add_argument("--client-id", default=None,
                            help="client id of the persistent session (default: FIREGRID_IOT_CLIENT_ID).")
        parser.add_argument("--batch-messages", type=int, default=None,
                            help="most messages written per transaction (default: FIREGRID_IOT_BATCH_MESSAGES).")
        parser.add_argument("--offline-check-s", type=int, default=None,
                            help="seconds between offline checks, 0 to turn them off "
                                 "(default: FIREGRID_IOT_OFFLINE_CHECK_S).")

    def handle(self, *args, **options):
        listener = Listener(
            url=options["broker_url"] or settings.MQTT_URL,
            client_id=options["client_id"] or settings.FIREGRID_IOT_CLIENT_ID,
            prefix=settings.FIREGRID_IOT_TOPIC_PREFIX,
            batch_messages=options["batch_messages"] or settings.FIREGRID_IOT_BATCH_MESSAGES,
            batch_wait_ms=settings.FIREGRID_IOT_BATCH_WAIT_MS,
            batch_bytes=settings.FIREGRID_IOT_BATCH_BYTES,
            offline_check_s=(settings.FIREGRID_IOT_OFFLINE_CHECK_S if options["offline_check_s"] is None
                             else options["offline_check_s"]),
        )
        for signal_number in (signal.SIGINT, signal.SIGTERM):
            signal.signal(signal_number, lambda *_args: listener.stop())
        listener.run()
