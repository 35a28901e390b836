"""Print temporal-holdout figures of the risk model and both baselines for an event file or the tickets."""
import json
import time

import pandas as pd

from django.core.management.base import BaseCommand, CommandError
from django.utils.translation import gettext as _
from django.utils.translation import gettext_lazy

from spatial.analysis import risk
from spatial.analysis.periods import AnalysisParameterError

_METHOD_NAMES = {"model": gettext_lazy("风险模型"), "last_period": gettext_lazy("基线:上期计数"),
                 "kde": gettext_lazy("基线:核密度")}


class Command(BaseCommand):
    help = gettext_lazy(
        "按时间留出法评估风险预测(用较早的周期训练,逐期预测较晚的周期):输出 AUC、前 10% 单元的命中率和"
        " PAI、前 N 个预警的准确率,并与上期计数和核密度两个基线比较。"
    )

    def create_parser(self, prog_name, subcommand, **kwargs):
        self.help = str(self.help)
        return super().create_parser(prog_name, subcommand, **kwargs)

    def add_arguments(self, parser):
        parser.add_argument("--events", help=_("事件 CSV 文件(含时间、纬度、经度列);省略时使用库中的工单"))
        parser.add_argument("--period", choices=("week", "month"), default="month", help=_("预测周期,默认 month"))
        parser.add_argument("--resolution", type=int, default=8, help=_("H3 分辨率,默认 8"))
        parser.add_argument("--test-periods", type=int, default=risk.DEFAULT_TEST_PERIODS,
                            help=_("留作测试的最近周期数,默认 6"))
        parser.add_argument("--alerts", type=int, default=risk.DEFAULT_ALERTS,
                            help=_("每期预警单元数(用于预警准确率),默认 20"))
        parser.add_argument("--from", dest="received_from", help=_("只用此日期(YYYY-MM-DD,UTC)及以后的事件"))
        parser.add_argument("--to", dest="received_to", help=_("只用此日期(YYYY-MM-DD,UTC)以前的事件"))
        parser.add_argument("--osm", help=_("OSM 文件(.osm/.pbf),用于建筑和兴趣点密度特征"))
        parser.add_argument("--json", action="store_true", help=_("以 JSON 输出全部数字"))

    def handle(self, *args, **options):
        started = time.perf_counter()
        try:
            if options["events"]:
                events, dropped = risk.read_event_file(options["events"])
            else:
                events, dropped = risk.ticket_events(), 0
            if options["received_from"]:
                events = events[events["t"] >= pd.Timestamp(options["received_from"], tz="UTC")]
            if options["received_to"]:
                events = events[events["t"] < pd.Timestamp(options["received_to"], tz="UTC")]
            events = events.reset_index(drop=True)
            cells = risk.cells_of(events["lat"].to_numpy(), events["lng"].to_numpy(), options["resolution"])
            probe = risk.build_cube(events, options["period"], options["resolution"], cells=cells)
            cube = risk.build_cube(events, options["period"], options["resolution"],
                                   area_until=len(probe.starts) - options["test_periods"], cells=cells)
            if options["osm"]:
                risk.add_static_features(cube, osm_counts=risk.osm_density(options["osm"], options["resolution"]))
            result = risk.evaluate_holdout(cube, options["test_periods"], options["alerts"])
        except (risk.RiskError, AnalysisParameterError) as error:
            raise CommandError(str(error)) from error

        if options["json"]:
            self.stdout.write(json.dumps(result, ensure_ascii=False, indent=2))
            return
        split = result["split"]
        self.stdout.write(_("事件 %(events)s 条(丢弃无位置、无时间或同一事件重复的 %(dropped)s 条),H3 分辨率 %(res)s,%(cells)s 个单元")
                          % {"events": len(events), "dropped": dropped, "res": options["resolution"],
                             "cells": split["cells"]})
        self.stdout.write(_("训练期 %(a)s 至 %(b)s(%(n)s 期),测试期 %(c)s 至 %(d)s(%(m)s 期,%(e)s 个事件,"
                            "其中 %(o)s 个在研究区外)") % {
            "a": split["train_from"], "b": split["train_to"], "n": split["train_periods"], "c": split["test_from"],
            "d": split["test_to"], "m": split["test_periods"], "e": split["test_events"],
            "o": split["test_events_outside_area"]})
        self.stdout.write(_("方法\tAUC\t前10%%命中率\tPAI\t前%(n)s预警准确率") % {"n": split["alerts"]})
        for name, label in _METHOD_NAMES.items():
            figures = result[name]
            auc = f"{figures['auc']:.3f}" if figures["auc"] is not None else "-"
            self.stdout.write(f"{label}\t{auc}\t{figures['hit_rate_top10']:.1%}\t{figures['pai_top10']:.2f}\t"
                              f"{figures['alert_precision']:.1%}")
        self.stdout.write(_("耗时 %(seconds).1f 秒") % {"seconds": time.perf_counter() - started})
