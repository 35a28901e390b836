"""Link repeat complaints, duplicates and suspected fake rectifications, and print the repeat rate."""
from django.core.management.base import BaseCommand, CommandError
from django.utils.translation import gettext as _
from django.utils.translation import gettext_lazy

from spatial.analysis import repeats
from spatial.analysis.periods import AnalysisParameterError


class Command(BaseCommand):
    help = gettext_lazy(
        "识别重复投诉(同一地点、同一问题类型、时间窗内)、数小时内的重复登记和疑似虚假整改"
        "(前一工单办结后 30 天内再次投诉),写入工单并输出重复投诉率。"
    )

    def create_parser(self, prog_name, subcommand, **kwargs):
        self.help = str(self.help)
        return super().create_parser(prog_name, subcommand, **kwargs)

    def add_arguments(self, parser):
        parser.add_argument("--window-days", type=float, default=repeats.DEFAULT_WINDOW_DAYS,
                            help=_("重复投诉时间窗(天),默认 180"))
        parser.add_argument("--distance-m", type=float, default=repeats.DEFAULT_DISTANCE_M,
                            help=_("视为同一地点的最大距离(米),默认 30;0 表示只比较规范化地址"))
        parser.add_argument("--duplicate-hours", type=float, default=repeats.DEFAULT_DUPLICATE_HOURS,
                            help=_("视为重复登记的时限(小时),默认 24"))
        parser.add_argument("--fake-days", type=float, default=repeats.DEFAULT_FAKE_RECTIFICATION_DAYS,
                            help=_("办结后多少天内再次投诉视为疑似虚假整改,默认 30"))
        parser.add_argument("--by", choices=repeats.GROUPINGS, default="period",
                            help=_("重复投诉率的分组:period(周期)、department(承办单位)、grid(粗 H3 单元)"))
        parser.add_argument("--period", choices=("week", "month"), default="month", help=_("按周期分组时的周期"))

    def handle(self, *args, **options):
        try:
            run = repeats.link_repeats(
                window_days=options["window_days"], distance_m=options["distance_m"],
                duplicate_hours=options["duplicate_hours"], fake_rectification_days=options["fake_days"],
            )
            rows = repeats.repeat_rates(options["by"], options["period"])
        except AnalysisParameterError as error:
            raise CommandError(str(error)) from error
        tickets, repeat_count, fake = repeats.overall_repeat_rate()
        rate = repeat_count / tickets if tickets else 0.0
        self.stdout.write(_(
            "共 %(tickets)s 张工单(不含 %(duplicates)s 张重复登记),重复投诉 %(repeats)s 张,"
            "重复投诉率 %(rate).1f%%,疑似虚假整改 %(fake)s 张。"
        ) % {"tickets": tickets, "duplicates": run.duplicate_count, "repeats": repeat_count,
             "rate": rate * 100, "fake": fake})
        for row in rows[:50]:
            self.stdout.write(f"{row['key'] or '-'}\t{row['tickets']}\t{row['repeats']}\t{row['rate']:.1%}\t{row['fake']}")
