"""Test category × zone type × time associations and print the strongest findings."""
from django.core.management.base import BaseCommand, CommandError
from django.utils.translation import gettext as _
from django.utils.translation import gettext_lazy

from spatial.analysis import associations
from spatial.analysis.periods import AnalysisParameterError


class Command(BaseCommand):
    help = gettext_lazy(
        "按问题类型 × 圈层 × 时段(一周中的时段、一天中的时段或月份)比较实际与预期工单数,"
        "做二项检验并按 FDR 校正,保存并以中文句子输出最强的关联。"
    )

    def create_parser(self, prog_name, subcommand, **kwargs):
        self.help = str(self.help)
        return super().create_parser(prog_name, subcommand, **kwargs)

    def add_arguments(self, parser):
        parser.add_argument("--slot", choices=associations.SLOTS, default="hour_of_week",
                            help=_("时间划分:hour_of_week(一周中的时段)、hour_of_day、month"))
        parser.add_argument("--bin-hours", type=int, default=associations.DEFAULT_BIN_HOURS,
                            help=_("时段长度(小时),默认 2"))
        parser.add_argument("--from", dest="received_from", help=_("受理日期自(YYYY-MM-DD)"))
        parser.add_argument("--to", dest="received_to", help=_("受理日期至(YYYY-MM-DD,含当天)"))
        parser.add_argument("--alpha", type=float, default=associations.DEFAULT_ALPHA,
                            help=_("FDR 校正后的显著性水平,默认 0.05"))
        parser.add_argument("--min-count", type=int, default=associations.DEFAULT_MIN_COUNT,
                            help=_("一条发现至少包含的工单数,默认 5"))

    def handle(self, *args, **options):
        try:
            run = associations.run_associations(
                slot=options["slot"], bin_hours=options["bin_hours"], received_from=options["received_from"],
                received_to=options["received_to"], alpha=options["alpha"], min_count=options["min_count"])
        except AnalysisParameterError as error:
            raise CommandError(str(error)) from error
        self.stdout.write(_("关联分析 #%(id)s:%(tickets)s 张有圈层的工单,检验 %(tested)s 个组合,显著发现 %(found)s 条。")
                          % {"id": run.pk, "tickets": run.ticket_count, "tested": run.params["tested"],
                             "found": len(run.findings)})
        for finding in run.findings:
            self.stdout.write(finding["sentence"])
