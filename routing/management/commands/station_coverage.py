from django.core.management.base import BaseCommand, CommandError
from django.utils.translation import gettext as _
from django.utils.translation import gettext_lazy

from routing.coverage import coverage_report
from routing.exceptions import RoutingError
from routing.models import FireStation
from routing.registry import load_and_register


class Command(BaseCommand):
    help = gettext_lazy("计算消防站的行驶时间等时圈,列出等时圈外的 H3 单元、工单和高风险单元。")

    def add_arguments(self, parser):
        parser.add_argument("--roads", required=True, help=gettext_lazy("OpenStreetMap 路网文件。"))
        parser.add_argument("--minutes", type=float, default=None,
                            help=gettext_lazy("等时圈的行驶时间(分钟),默认 FIREGRID_ISOCHRONE_MIN。"))

    def handle(self, *args, **options):
        try:
            road_graph, _network = load_and_register(options["roads"])
            report = coverage_report(road_graph, list(FireStation.objects.all()), minutes=options["minutes"])
        except RoutingError as error:
            raise CommandError(str(error)) from error
        write = self.stdout.write
        for reach in report.reaches:
            if reach.polygon is not None:
                write(_("%(station)s:%(minutes)g 分钟可达 %(area).2f 平方公里(距道路 %(snap).0f 米)") % {
                    "station": reach.station, "minutes": report.minutes, "area": reach.area_km2,
                    "snap": reach.snap_distance_m})
        outside_network = [reach for reach in report.reaches if reach.polygon is None]
        write(_("路网外或无法到达的消防站 %(count)d 个。") % {"count": len(outside_network)})
        write(_("路网范围 %(extent).2f 平方公里,%(minutes)g 分钟内覆盖 %(covered).2f 平方公里。") % {
            "extent": report.extent_km2, "minutes": report.minutes, "covered": report.covered_km2})
        cells_total = len(report.cells_inside) + len(report.cells_outside)
        write(_("有工单的 H3 单元 %(total)d 个,其中在等时圈外 %(outside)d 个;工单 %(tickets)d 件,在等时圈外 %(tickets_out)d 件。") % {
            "total": cells_total, "outside": len(report.cells_outside),
            "tickets": report.tickets_inside + len(report.tickets_outside), "tickets_out": len(report.tickets_outside)})
        write(_("高风险单元 %(total)d 个,其中无法按时到达 %(count)d 个:%(cells)s") % {
            "total": report.high_risk_total, "count": len(report.high_risk_unreachable),
            "cells": "、".join(candidate.key for candidate in report.high_risk_unreachable) or _("无")})
