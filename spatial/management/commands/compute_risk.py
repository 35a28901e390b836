"""Build the risk map from the tickets, evaluate it on a temporal holdout and store the run."""
from django.core.management.base import BaseCommand, CommandError
from django.utils.translation import gettext as _
from django.utils.translation import gettext_lazy

from spatial.analysis import risk
from spatial.analysis.periods import AnalysisParameterError


class Command(BaseCommand):
    help = gettext_lazy(
        "用工单历史预测下一周期每个 H3 单元至少出现一张工单的概率,按时间留出法评估并与两个基线比较,"
        "保存为可在规划页面查看的风险图层。"
    )

    def create_parser(self, prog_name, subcommand, **kwargs):
        self.help = str(self.help)
        return super().create_parser(prog_name, subcommand, **kwargs)

    def add_arguments(self, parser):
        parser.add_argument("--period", choices=("week", "month"), default="month", help=_("预测周期,默认 month"))
        parser.add_argument("--resolution", type=int, help=_("H3 分辨率,默认细分辨率"))
        parser.add_argument("--test-periods", type=int, default=risk.DEFAULT_TEST_PERIODS,
                            help=_("留作测试的最近周期数,默认 6"))
        parser.add_argument("--alerts", type=int, default=risk.DEFAULT_ALERTS, help=_("每期预警单元数,默认 20"))
        parser.add_argument("--osm", help=_("OSM 文件(.osm/.pbf),用于建筑和兴趣点密度特征"))

    def handle(self, *args, **options):
        try:
            run = risk.run_risk(period=options["period"], resolution=options["resolution"],
                                test_periods=options["test_periods"], alerts=options["alerts"],
                                osm_path=options["osm"])
        except (risk.RiskError, AnalysisParameterError) as error:
            raise CommandError(str(error)) from error
        model = run.evaluation["model"]
        self.stdout.write(_("已保存风险预测 #%(id)s:预测周期自 %(start)s,%(cells)s 个单元;留出评估 AUC %(auc).3f,"
                            "前 10%% 命中率 %(hit).1f%%,PAI %(pai).2f,预警准确率 %(precision).1f%%。") % {
            "id": run.pk, "start": run.predicted_start, "cells": run.cell_count, "auc": model["auc"] or 0,
            "hit": model["hit_rate_top10"] * 100, "pai": model["pai_top10"], "precision": model["alert_precision"] * 100})
