from django.core.management.base import BaseCommand

from iot.gateways import issue_key


class Command(BaseCommand):
    help = "Create a gateway or give it a new key, and print the key once; the old key stops working."

    def add_arguments(self, parser):
        parser.add_argument("code", help="gateway code, letters, digits, - and _")
        parser.add_argument("--name", default="", help="display name of the gateway")

    def handle(self, *args, **options):
        gateway, key = issue_key(options["code"], options["name"])
        self.stdout.write(f"gateway {gateway.code}: key {key}")
        self.stdout.write("Send it in the X-Gateway-Key header of POST /iot/api/readings; it is not stored.")
