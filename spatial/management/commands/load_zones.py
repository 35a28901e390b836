"""Load three-ring zone polygons and give every ticket its zone type."""
from django.core.management.base import BaseCommand, CommandError
from django.utils.translation import gettext as _
from django.utils.translation import gettext_lazy

from spatial.analysis import zones
from spatial.analysis.periods import AnalysisParameterError
from spatial.models import ZoneSource, ZoneType


class Command(BaseCommand):
    help = gettext_lazy(
        "读取圈层区域(用户绘制的面、OSM 土地利用 .osm/.pbf,或带物业管理状态/建成年代的社区图层),"
        "保存后为每张工单标注圈层类型,并输出各圈层的工单占比。"
    )

    def create_parser(self, prog_name, subcommand, **kwargs):
        self.help = str(self.help)
        return super().create_parser(prog_name, subcommand, **kwargs)

    def add_arguments(self, parser):
        parser.add_argument("path", nargs="?", help=_("区域文件路径;省略时只重新标注工单"))
        parser.add_argument("--source", choices=ZoneSource.values, default=ZoneSource.USER,
                            help=_("区域来源:user(用户绘制)、osm(土地利用)、community(社区图层)"))
        parser.add_argument("--type-field", help=_("用户区域中写圈层类型的字段,默认 zone_type"))
        parser.add_argument("--name-field", help=_("用户区域中写名称的字段,默认 name"))
        parser.add_argument("--zone-type", choices=ZoneType.values, help=_("没有类型字段时所有要素的圈层类型"))
        parser.add_argument("--replace", action="store_true", help=_("先删除同一来源、同名文件以前载入的区域"))

    def handle(self, *args, **options):
        if options["path"]:
            extra = {key: options[option] for option, key in
                     (("type_field", "type_field"), ("name_field", "name_field"), ("zone_type", "default_type"))
                     if options[option] is not None}
            try:
                loaded = zones.read_zones(options["path"], options["source"], **extra)
            except zones.ZoneError as error:
                raise CommandError(str(error)) from error
            if not loaded:
                raise CommandError(_("文件 %(path)s 中没有可用的区域。") % {"path": options["path"]})
            zones.save_zones(loaded, replace_source=options["replace"])
            by_type = {}
            for zone in loaded:
                by_type[zone.zone_type] = by_type.get(zone.zone_type, 0) + 1
            self.stdout.write(_("已载入 %(count)s 个区域:%(types)s") % {
                "count": len(loaded),
                "types": ",".join(f"{ZoneType(t).label} {n}" for t, n in sorted(by_type.items())),
            })

        updated = zones.assign_ticket_zones()
        self.stdout.write(_("已为 %(count)s 张有位置的工单标注圈层类型。") % {"count": updated})
        try:
            table = zones.zone_shares()
        except AnalysisParameterError as error:
            raise CommandError(str(error)) from error
        for row in table.rows():
            self.stdout.write(f"{row['label']}\t{row['count']}\t{row['share']:.1%}")
