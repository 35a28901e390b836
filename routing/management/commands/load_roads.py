from django.core.management.base import BaseCommand, CommandError
from django.utils.translation import gettext as _
from django.utils.translation import gettext_lazy

from routing.exceptions import RoutingError
from routing.registry import load_and_register


class Command(BaseCommand):
    help = gettext_lazy("从 OpenStreetMap 文件(.osm、.osm.bz2、.osm.pbf)构建路网并缓存,报告舍弃的内容。")

    def add_arguments(self, parser):
        parser.add_argument("path", help=gettext_lazy("OpenStreetMap 路网文件路径。"))
        parser.add_argument("--rebuild", action="store_true", help=gettext_lazy("忽略缓存,重新构建路网。"))

    def handle(self, *args, **options):
        try:
            road_graph, network = load_and_register(options["path"], use_cache=not options["rebuild"])
        except RoutingError as error:
            raise CommandError(str(error)) from error
        for line in road_graph.report.summary_lines():
            self.stdout.write(line)
        self.stdout.write(self.style.SUCCESS(_("路网 #%(id)d 已就绪:%(name)s") % {"id": network.pk, "name": network.name}))
