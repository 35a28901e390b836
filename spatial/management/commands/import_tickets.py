from django.core.management.base import BaseCommand, CommandError
from django.utils.translation import gettext as _

from spatial.exceptions import IntakeError
from spatial.intake import import_file
from spatial.intake.profiles import PROFILES


class Command(BaseCommand):
    help = _("导入12345热线等工单导出文件(CSV、XLSX、XLS;UTF-8、GBK、GB18030)")

    def add_arguments(self, parser):
        parser.add_argument("path", help=_("导出文件路径"))
        source = parser.add_mutually_exclusive_group()
        source.add_argument("--profile", choices=sorted(PROFILES), help=_("内置字段映射方案,默认 12345"))
        source.add_argument("--mapping", metavar="FILE", help=_("自定义字段映射文件(TOML 或 JSON)"))
        parser.add_argument("--skip-invalid", metavar="REJECTS.csv",
                            help=_("导入有效行,并把被拒绝的行及原因写入此 CSV 文件"))
        parser.add_argument("--encoding", help=_("文本文件编码;默认自动识别 UTF-8、GBK、GB18030"))
        parser.add_argument("--sheet", help=_("Excel 工作表名称,默认第一个"))
        parser.add_argument("--study-area", metavar="MIN_LNG,MIN_LAT,MAX_LNG,MAX_LAT",
                            help=_("研究区范围(WGS84 度);范围外的工单保留并标记"))
        parser.add_argument("--crs", metavar="wgs84|gcj02|bd09",
                            help=_("文件没有坐标系列时使用的坐标系,覆盖映射方案的默认值(12345 方案默认 GCJ-02)"))
        parser.add_argument("--simulated", action="store_true", help=_("把本批数据标记为模拟数据"))
        parser.add_argument("--no-progress", action="store_true", help=_("不显示进度条"))

    def handle(self, *args, **options):
        try:
            result = import_file(
                options["path"], profile_name=options["profile"], mapping_path=options["mapping"],
                rejects_path=options["skip_invalid"], encoding=options["encoding"], sheet=options["sheet"],
                study_area=options["study_area"], crs=options["crs"], simulated=options["simulated"],
                progress=not options["no_progress"],
            )
        except IntakeError as error:
            raise CommandError(str(error)) from None
        for line in result.summary_lines():
            self.stdout.write(line)
