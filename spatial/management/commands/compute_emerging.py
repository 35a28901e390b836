"""Run an emerging hot spot analysis on the tickets and store it."""
from django.core.management.base import BaseCommand, CommandError
from django.utils.translation import gettext as _
from django.utils.translation import gettext_lazy

from spatial.analysis import emerging
from spatial.analysis.periods import AnalysisParameterError
from spatial.models import EmergingLabel
from spatial.taxonomy import Category


class Command(BaseCommand):
    help = gettext_lazy(
        "在 H3 单元 × 时间切片的时空立方体上逐切片计算 Gi*,用 Mann-Kendall 检验趋势,"
        "把单元标为新增、连续、加强、持续、减弱、零星、振荡、历史热点(或冷点)并保存。"
    )

    def create_parser(self, prog_name, subcommand, **kwargs):
        self.help = str(self.help)
        return super().create_parser(prog_name, subcommand, **kwargs)

    def add_arguments(self, parser):
        parser.add_argument("--period", choices=("week", "month"), default="month", help=_("时间切片,默认 month"))
        parser.add_argument("--resolution", choices=("fine", "coarse"), default="fine", help=_("H3 分辨率"))
        parser.add_argument("--category", choices=Category.values, help=_("只分析一种问题类型"))
        parser.add_argument("--from", dest="received_from", help=_("受理日期自(YYYY-MM-DD)"))
        parser.add_argument("--to", dest="received_to", help=_("受理日期至(YYYY-MM-DD,含当天)"))
        parser.add_argument("--alpha", type=float, default=emerging.DEFAULT_ALPHA,
                            help=_("FDR 校正后的显著性水平,默认 0.10"))

    def handle(self, *args, **options):
        try:
            run = emerging.run_emerging(period=options["period"], resolution=options["resolution"],
                                        received_from=options["received_from"], received_to=options["received_to"],
                                        alpha=options["alpha"], category=options["category"])
        except AnalysisParameterError as error:
            raise CommandError(str(error)) from error
        self.stdout.write(_("时空热点分析 #%(id)s:%(cells)s 个单元,%(slices)s 个切片,%(tickets)s 张工单。")
                          % {"id": run.pk, "cells": run.cell_count, "slices": len(run.slice_starts),
                             "tickets": run.ticket_count})
        for label in EmergingLabel:
            if run.label_counts.get(label.value):
                self.stdout.write(f"{label.label}\t{run.label_counts[label.value]}")
