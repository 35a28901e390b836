from django.core.management.base import BaseCommand, CommandError
from django.utils.translation import gettext as _

from gridmap.exceptions import GridImportError
from gridmap.gridimport import import_grid
from gridmap.models import GridLevel

LEVELS = {"county": GridLevel.COUNTY, "community": GridLevel.COMMUNITY, "building": GridLevel.BUILDING}


class Command(BaseCommand):
    help = _("导入一层责任网格(GeoJSON、GeoPackage 或 Shapefile),报告修复、拒绝和超出上级网格的要素")

    def add_arguments(self, parser):
        parser.add_argument("paths", nargs="+", metavar="PATH", help=_("图层文件,可给多个"))
        parser.add_argument("--level", required=True, choices=sorted(LEVELS), help=_("网格层级"))
        parser.add_argument("--crs", choices=["wgs84", "gcj02"], default="wgs84",
                            help=_("坐标系;高德/DataV 边界为 gcj02"))
        parser.add_argument("--code-field", help=_("编码字段名"))
        parser.add_argument("--name-field", help=_("名称字段名"))
        parser.add_argument("--parent-field", help=_("上级网格编码字段名"))

    def handle(self, *args, **options):
        for path in options["paths"]:
            try:
                report = import_grid(path, LEVELS[options["level"]], crs=options["crs"],
                                     code_field=options["code_field"], name_field=options["name_field"],
                                     parent_field=options["parent_field"])
            except GridImportError as error:
                raise CommandError(str(error)) from error
            self.stdout.write(_("%(path)s:读取 %(read)s,新建 %(created)s,更新 %(updated)s,修复 %(repaired)s,"
                                "拒绝 %(rejected)s,超出上级网格 %(outside)s") % {
                "path": path, "read": report.read, "created": report.created, "updated": report.updated,
                "repaired": len(report.repaired), "rejected": len(report.rejected),
                "outside": len(report.outside_parent)})
            for feature_id, reason in report.repaired:
                self.stdout.write(_("  已修复 %(id)s:%(reason)s") % {"id": feature_id, "reason": reason})
            for feature_id, reason in report.rejected:
                self.stdout.write(_("  已拒绝 %(id)s:%(reason)s") % {"id": feature_id, "reason": reason})
            for code, parent in report.outside_parent[:50]:
                self.stdout.write(_("  超出上级网格 %(code)s(上级:%(parent)s)") % {
                    "code": code, "parent": parent or _("无")})
            if len(report.outside_parent) > 50:
                self.stdout.write(_("  ……另有 %(n)s 个") % {"n": len(report.outside_parent) - 50})
