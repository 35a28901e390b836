"""Compute Getis-Ord Gi* hotspots of tickets per H3 cell and store the run."""
import datetime

from django.core.management.base import BaseCommand, CommandError
from django.utils.translation import gettext as _
from django.utils.translation import gettext_lazy

from spatial.analysis import gistar, hotspots
from spatial.models import HotspotLabel, HotspotRun


# Options that set a run's filter or statistics -> their key in ``options``.
_RUN_OPTIONS = {
    "--category": "category",
    "--source": "source",
    "--from": "received_from",
    "--to": "received_to",
    "--resolution": "resolution",
    "--permutations": "permutations",
    "--seed": "seed",
    "--p-method": "p_method",
    "--refinement-permutations": "refinement_permutations",
}

# p-value method -> its name in the summary.
# NOTE: locale/en has no English for the messages added with --p-method
# yet, so they show in Chinese under LANGUAGE_CODE "en".
_P_METHOD_NAMES = {
    gistar.P_METHOD_ADAPTIVE: gettext_lazy("自适应伪 p 值(adaptive)"),
    gistar.P_METHOD_PSEUDO: gettext_lazy("伪 p 值(pseudo)"),
    gistar.P_METHOD_Z_SIM: gettext_lazy("置换正态近似(z_sim)"),
}


def _parse_date(value):
    try:
        return datetime.datetime.strptime(value, "%Y-%m-%d").date()
    except ValueError:
        raise CommandError(
            _("日期 “%(value)s” 无效,应为 YYYY-MM-DD 格式,例如 2024-03-01。") % {"value": value}
        ) from None


def _parse_refinement_permutations(value):
    try:
        return [int(part) for part in value.split(",")]
    except ValueError:
        raise CommandError(
            _("--refinement-permutations “%(value)s” 无效,应为逗号分隔的整数,例如 9999,99999。") % {"value": value}
        ) from None


def _parse_resolution(value):
    if value in {"fine", "coarse"}:
        return value
    try:
        return int(value)
    except ValueError:
        raise CommandError(
            _("--resolution “%(value)s” 无效,应为 fine、coarse 或整数 H3 分辨率。") % {"value": value}
        ) from None


class Command(BaseCommand):
    help = gettext_lazy(
        "按筛选条件统计每个 H3 六边形单元的工单数,计算 Getis-Ord Gi* 热点(条件置换检验,"
        "FDR 校正),并保存本次分析。"
    )

    def create_parser(self, prog_name, subcommand, **kwargs):
        # argparse needs a str description, not a lazy translation proxy.
        self.help = str(self.help)
        return super().create_parser(prog_name, subcommand, **kwargs)

    def add_arguments(self, parser):
        parser.add_argument("--category", help=gettext_lazy("只统计该问题类型的工单(类型代码,如 fire_lane)。"))
        parser.add_argument("--source", help=gettext_lazy("只统计该来源的工单(hotline、iot、inspection 或 other)。"))
        parser.add_argument(
            "--from", dest="received_from", metavar="YYYY-MM-DD",
            help=gettext_lazy("受理日期下限(含当日,北京时间)。"),
        )
        parser.add_argument(
            "--to", dest="received_to", metavar="YYYY-MM-DD",
            help=gettext_lazy("受理日期上限(含当日,北京时间)。"),
        )
        parser.add_argument(
            "--resolution", metavar="fine|coarse|N",
            help=gettext_lazy("H3 分辨率:fine(细)、coarse(粗)或不大于细分辨率的整数。默认 fine。"),
        )
        parser.add_argument(
            "--permutations", type=int, metavar="N",
            help=gettext_lazy(
                "每个单元的条件置换次数(adaptive 方法中为第一级),默认 %(default)s。使用 --p-method pseudo 时"
                "最小伪 p 值为 2/(N+1),单元多时宜用 9999。"
            )
            % {"default": hotspots.DEFAULT_PERMUTATIONS},
        )
        parser.add_argument(
            "--p-method", dest="p_method", metavar="adaptive|pseudo|z_sim",
            help=gettext_lazy(
                "用于 FDR 校正的 p 值方法。adaptive(默认)为自适应伪 p 值:先对每个单元置换 N 次,伪 p 值"
                "接近下限的单元再用新的独立抽样追加置换(默认 9999 次,再 99999 次),取最后一级的伪 p 值,"
                "单元多时也能判定热点。pseudo 为双侧伪 p 值:不作分布假定,最小值为 2/(N+1)。z_sim 为置换"
                "正态近似:p 值连续,但假定置换分布接近正态,工单数稀疏或偏态明显时 p 值偏小,会误判热点。"
            ),
        )
        parser.add_argument(
            "--refinement-permutations", dest="refinement_permutations", metavar="N1,N2",
            help=gettext_lazy(
                "adaptive 方法各级追加置换的次数,逗号分隔,逐级增大且大于 --permutations。"
                "默认 9999,99999 中大于 --permutations 的各级。"
            ),
        )
        parser.add_argument(
            "--seed", type=int, metavar="N",
            help=gettext_lazy("随机种子,默认 %(default)s。相同数据和种子得到相同结果。") % {"default": hotspots.DEFAULT_SEED},
        )
        parser.add_argument(
            "--rerun", type=int, metavar="RUN_ID",
            help=gettext_lazy("按已保存分析的参数重新计算,不能与其他筛选或参数选项同时使用。"),
        )

    def handle(self, *args, **options):
        if options["rerun"] is not None:
            run = self._rerun(options)
        else:
            run = self._run(options)
        self._print_summary(run)

    def _rerun(self, options):
        combined = []
        for option, key in _RUN_OPTIONS.items():
            if options[key] is not None:
                combined.append(option)
        if combined:
            raise CommandError(
                _("--rerun 不能与 %(options)s 同时使用,因为重新计算只使用原分析保存的参数。")
                % {"options": ", ".join(combined)}
            )
        try:
            original = HotspotRun.objects.get(pk=options["rerun"])
        except HotspotRun.DoesNotExist:
            raise CommandError(
                _("热点分析 #%(run_id)s 不存在,请使用已保存分析的编号。") % {"run_id": options["rerun"]}
            ) from None
        try:
            return hotspots.recompute(original)
        except hotspots.HotspotParameterError as error:
            raise CommandError(str(error)) from error

    def _run(self, options):
        params = {
            "category": options["category"],
            "source": options["source"],
            "resolution": _parse_resolution(options["resolution"] or "fine"),
        }
        if options["received_from"] is not None:
            params["received_from"] = _parse_date(options["received_from"])
        if options["received_to"] is not None:
            params["received_to"] = _parse_date(options["received_to"])
        if options["permutations"] is not None:
            params["permutations"] = options["permutations"]
        if options["seed"] is not None:
            params["seed"] = options["seed"]
        if options["p_method"] is not None:
            params["p_method"] = options["p_method"]
        if options["refinement_permutations"] is not None:
            params["refinement_permutations"] = _parse_refinement_permutations(options["refinement_permutations"])
        try:
            return hotspots.run_hotspots(**params)
        except hotspots.HotspotParameterError as error:
            raise CommandError(str(error)) from error

    def _print_summary(self, run):
        counts = hotspots.label_counts(run)
        write = self.stdout.write
        write(_("热点分析 #%(run_id)s 已保存。") % {"run_id": run.pk})
        write(
            _("工单:%(tickets)s 条计入,%(without)s 条无 H3 单元未计入。")
            % {"tickets": run.ticket_count, "without": run.tickets_without_cell}
        )
        write(
            _("H3 单元:%(cells)s 个(分辨率 %(resolution)s)。")
            % {"cells": run.cell_count, "resolution": run.params["resolution"]}
        )
        write(
            _("热点:%(total)s 个(99%% 置信 %(c99)s,95%% 置信 %(c95)s,90%% 置信 %(c90)s)。")
            % {
                "total": run.hot_count,
                "c99": counts[HotspotLabel.HOT_99],
                "c95": counts[HotspotLabel.HOT_95],
                "c90": counts[HotspotLabel.HOT_90],
            }
        )
        write(
            _("冷点:%(total)s 个(99%% 置信 %(c99)s,95%% 置信 %(c95)s,90%% 置信 %(c90)s)。")
            % {
                "total": run.cold_count,
                "c99": counts[HotspotLabel.COLD_99],
                "c95": counts[HotspotLabel.COLD_95],
                "c90": counts[HotspotLabel.COLD_90],
            }
        )
        p_method = hotspots.get_p_method(run.params)
        refinement = run.params.get("refinement_permutations")
        if p_method == gistar.P_METHOD_ADAPTIVE and refinement:
            write(
                _("p 值方法:%(method)s,置换 %(permutations)s 次,伪 p 值接近下限的单元追加 %(stages)s 次。")
                % {
                    "method": _P_METHOD_NAMES[p_method],
                    "permutations": run.params["permutations"],
                    "stages": "、".join(str(size) for size in refinement),
                }
            )
        else:
            write(
                _("p 值方法:%(method)s,置换 %(permutations)s 次。")
                % {"method": _P_METHOD_NAMES[p_method], "permutations": run.params["permutations"]}
            )
        write(_("耗时:%(seconds).2f 秒。") % {"seconds": run.duration_s})

        if p_method != gistar.P_METHOD_PSEUDO:
            return
        permutations = run.params["permutations"]
        needed = gistar.fdr_min_rejections(run.cell_count, permutations, gistar.CONFIDENCE_ALPHAS[90])
        if needed > 1:
            write(
                _(
                    "提示:%(permutations)s 次置换的最小伪 p 值为 %(floor).4f。FDR 校正下,至少 %(needed)s 个单元"
                    "达到该值才可能判定 90%% 置信的热点或冷点。如需更高灵敏度,请增加 --permutations。"
                )
                % {"permutations": permutations, "floor": 2 / (permutations + 1), "needed": needed}
            )
