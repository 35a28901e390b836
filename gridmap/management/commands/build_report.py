from django.core.management.base import BaseCommand, CommandError
from django.utils.translation import gettext as _

from gridmap import reports
from gridmap.kpi import KpiError, parse_period


class Command(BaseCommand):
    help = _("生成周报或月报(PDF 和 XLSX),数据与领导驾驶舱一致;可由 cron 每周一、每月 1 日运行")

    def add_arguments(self, parser):
        group = parser.add_mutually_exclusive_group(required=True)
        group.add_argument("--period", help=_("周期,如 2026-W09、2026-03、2026-Q1 或 2026"))
        group.add_argument("--last", choices=["week", "month"], help=_("上一个完整的周或月"))
        parser.add_argument("--format", default="pdf,xlsx", help=_("pdf、xlsx 或 pdf,xlsx(默认)"))
        parser.add_argument("--out", help=_("输出目录,默认 var/reports"))

    def handle(self, *args, **options):
        try:
            period = parse_period(options["period"]) if options["period"] else reports.previous_period(options["last"])
            formats = [item.strip().lower() for item in options["format"].split(",") if item.strip()]
            paths, _figures = reports.build_report(period, formats, options["out"])
        except (KpiError, reports.ReportError) as error:
            raise CommandError(str(error)) from error
        for path in paths.values():
            self.stdout.write(str(path))
