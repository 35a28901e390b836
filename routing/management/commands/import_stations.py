from django.core.management.base import BaseCommand, CommandError
from django.utils.translation import gettext as _
from django.utils.translation import gettext_lazy

from routing.exceptions import RoutingError
from routing.stations import import_stations


class Command(BaseCommand):
    help = gettext_lazy("从 CSV 文件(lat/lng 两列,或一列“(纬度, 经度)”)或点图层(GeoJSON、GeoPackage、Shapefile)导入消防站;"
                        "再次导入同一站点会更新而不重复。")

    def add_arguments(self, parser):
        parser.add_argument("path", help=gettext_lazy("UTF-8 编码的消防站 CSV 文件,或 WGS84 点图层文件。"))

    def handle(self, *args, **options):
        try:
            result = import_stations(options["path"])
        except RoutingError as error:
            raise CommandError(str(error)) from error
        self.stdout.write(self.style.SUCCESS(_("读取消防站 %(rows)d 个:新建 %(created)d 个,更新 %(updated)d 个。") % {
            "rows": result.rows, "created": result.created, "updated": result.updated}))
