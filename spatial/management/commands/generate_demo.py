from django.conf import settings
from django.core.management.base import BaseCommand, CommandError
from django.utils.translation import gettext as _

from spatial.demo import write_demo_export, write_demo_zones


class Command(BaseCommand):
    help = _("生成确定性的模拟12345工单导出文件(GBK 编码 CSV),用于演示")

    def add_arguments(self, parser):
        parser.add_argument("--out", default=str(settings.VAR_DIR / "demo" / "xiangzhou_12345_simulated.csv"),
                            help=_("输出文件路径"))
        parser.add_argument("--zones-out",
                            default=str(settings.VAR_DIR / "demo" / "xiangzhou_zones_simulated.geojson"),
                            help=_("三圈层区域面(GeoJSON)输出路径"))
        parser.add_argument("--rows", type=int, default=3000, help=_("工单行数"))
        parser.add_argument("--seed", type=int, default=12345, help=_("随机种子;相同种子生成相同数据"))

    def handle(self, *args, **options):
        if options["rows"] < 1:
            raise CommandError(_("--rows 必须是正整数,收到 %(rows)s") % {"rows": options["rows"]})
        path = write_demo_export(options["out"], options["rows"], options["seed"])
        self.stdout.write(_("已生成模拟数据 %(rows)s 行:%(path)s") % {"rows": options["rows"], "path": path})
        zones = write_demo_zones(options["zones_out"])
        self.stdout.write(_("已生成模拟三圈层区域:%(path)s") % {"path": zones})
