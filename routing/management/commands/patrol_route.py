from datetime import date as date_type
from datetime import datetime
from pathlib import Path

from django.conf import settings
from django.core.management.base import BaseCommand, CommandError
from django.utils import timezone
from django.utils.translation import gettext as _
from django.utils.translation import gettext_lazy

from gridmap.models import GridUnit
from routing.exceptions import RoutingError
from routing.gpx import patrol_gpx
from routing.patrol import (
    StopCandidate, gather_candidates, graph_area, parse_area, parse_lat_lng, patrol_start, plan_patrol,
)
from routing.registry import load_and_register


def _extra_stop(text, kind):
    """Parse "LAT,LNG[,VALUE[,LABEL]]" into a StopCandidate of ``kind``."""
    parts = [part.strip() for part in text.split(",", 3)]
    lat, lng = parse_lat_lng(",".join(parts[:2]))
    try:
        value = float(parts[2]) if len(parts) > 2 and parts[2] else None
    except ValueError:
        raise CommandError(_("点位 %(value)r 的价值 %(number)r 不是数字。") % {"value": text, "number": parts[2]}) from None
    label = parts[3] if len(parts) > 3 else ""
    return StopCandidate(kind=kind, key=f"{kind}:{lat:.6f},{lng:.6f}", lat=lat, lng=lng, value=value, label=label)


class Command(BaseCommand):
    help = gettext_lazy("为网格长规划巡查路线:从起点出发,在时间预算内访问价值最高的点位,打印路线并可保存为 GPX。")

    def add_arguments(self, parser):
        parser.add_argument("--roads", required=True, help=gettext_lazy("OpenStreetMap 路网文件(首次加载后使用缓存)。"))
        parser.add_argument("--start", required=True, help=gettext_lazy("起点“纬度,经度”(WGS84)。"))
        parser.add_argument("--budget-min", type=float, default=None,
                            help=gettext_lazy("时间预算(分钟,含停留),默认 FIREGRID_PATROL_BUDGET_MIN。"))
        parser.add_argument("--service-min", type=float, default=None,
                            help=gettext_lazy("每个点位的停留时间(分钟),默认 FIREGRID_PATROL_SERVICE_MIN。"))
        parser.add_argument("--date", default=None, help=gettext_lazy("巡查日期 YYYY-MM-DD,默认今天(北京时间)。"))
        parser.add_argument("--start-time", default="09:00", help=gettext_lazy("出发时间 HH:MM,默认 09:00。"))
        parser.add_argument("--grid", default=None, help=gettext_lazy("按该网格编码的范围选取点位(网格长的责任网格)。"))
        parser.add_argument("--area", default=None,
                            help=gettext_lazy("巡查范围“最小经度,最小纬度,最大经度,最大纬度”,默认整个路网范围。"))
        parser.add_argument("--alarm", action="append", default=[],
                            help=gettext_lazy("传感器告警点位“纬度,经度[,价值[,说明]]”,可重复。"))
        parser.add_argument("--reinspection", action="append", default=[],
                            help=gettext_lazy("复查点位“纬度,经度[,价值[,说明]]”,可重复。"))
        parser.add_argument("--open-end", action="store_true", help=gettext_lazy("路线在最后一个点位结束,不返回起点。"))
        parser.add_argument("--time-limit", type=float, default=None,
                            help=gettext_lazy("求解时间上限(秒),默认 FIREGRID_PATROL_SOLVER_TIME_LIMIT_S。"))
        parser.add_argument("--gpx", default=None, help=gettext_lazy("把路线保存为该 GPX 文件。"))

    def _area(self, options, road_graph):
        if options["grid"] and options["area"]:
            raise CommandError(_("--grid 与 --area 只能选一个。"))
        if options["grid"]:
            unit = GridUnit.objects.filter(code=options["grid"]).first()
            if unit is None:
                raise CommandError(_("网格 %(code)r 不存在。请用已导入的网格编码。") % {"code": options["grid"]})
            return unit.geom
        return parse_area(options["area"]) if options["area"] else graph_area(road_graph)

    def handle(self, *args, **options):
        try:
            on_date = date_type.fromisoformat(options["date"]) if options["date"] else timezone.localdate()
            start_time = datetime.strptime(options["start_time"], "%H:%M").time()
        except ValueError as error:
            raise CommandError(_("日期或出发时间无效:%(error)s。日期格式 YYYY-MM-DD,时间格式 HH:MM。") % {"error": error}) \
                from None
        try:
            start_lat, start_lng = parse_lat_lng(options["start"])
            road_graph, _network = load_and_register(options["roads"])
            area = self._area(options, road_graph)
            alarms = [_extra_stop(text, "alarm") for text in options["alarm"]]
            reinspections = [_extra_stop(text, "reinspection") for text in options["reinspection"]]
            candidates = gather_candidates(area, on_date, alarms=alarms, reinspections=reinspections)
            budget_s = (options["budget_min"] if options["budget_min"] is not None
                        else settings.FIREGRID_PATROL_BUDGET_MIN) * 60
            service_s = options["service_min"] * 60 if options["service_min"] is not None else None
            plan = plan_patrol(road_graph, start_lat, start_lng, candidates, patrol_start(on_date, start_time),
                               budget_s=budget_s, service_s=service_s, time_limit_s=options["time_limit"],
                               return_to_start=not options["open_end"])
        except RoutingError as error:
            raise CommandError(str(error)) from error

        write = self.stdout.write
        write(_("巡查路线 %(date)s,出发 %(start)s,预算 %(budget).0f 分钟,候选点位 %(count)d 个") % {
            "date": on_date.isoformat(), "start": timezone.localtime(plan.start_at).strftime("%H:%M"),
            "budget": plan.budget_s / 60, "count": len(candidates)})
        for stop in plan.stops:
            write(f"{stop.sequence:>3}. {timezone.localtime(stop.arrival_at):%H:%M}  {stop.candidate.kind_label}  "
                  f"{stop.candidate.key}  {stop.candidate.label}  "
                  + _("(本段 %(m).0f 米,%(min).1f 分钟)") % {"m": stop.leg_length_m, "min": stop.leg_time_s / 60})
        write(_("合计:点位 %(stops)d 个,里程 %(km).2f 公里,用时 %(minutes).1f 分钟(行驶 %(travel).1f,停留 %(service).1f),"
                "返回时间 %(end)s,总价值 %(value).2f,求解器 %(solver)s(%(seconds).2f 秒)") % {
            "stops": len(plan.stops), "km": plan.length_m / 1000, "minutes": plan.duration_s / 60,
            "travel": plan.travel_s / 60, "service": plan.service_s / 60,
            "end": timezone.localtime(plan.end_at).strftime("%H:%M"), "value": plan.value, "solver": plan.solver,
            "seconds": plan.solve_s})
        if plan.not_chosen:
            write(_("预算内未安排 %(count)d 个:") % {"count": len(plan.not_chosen)}
                  + "、".join(skipped.candidate.key for skipped in plan.not_chosen))
        for skipped in plan.unreachable:
            write(_("无法到达:%(kind)s %(key)s:%(reason)s") % {
                "kind": skipped.candidate.kind_label, "key": skipped.candidate.key, "reason": skipped.reason})
        if options["gpx"]:
            path = Path(options["gpx"])
            path.parent.mkdir(parents=True, exist_ok=True)
            path.write_bytes(patrol_gpx(plan, _("巡查路线 %(date)s") % {"date": on_date.isoformat()}))
            write(self.style.SUCCESS(_("GPX 已保存:%(path)s") % {"path": path}))
