"""Pages of the routing app: a grid head's patrol route and the planners' station coverage.

Both pages draw with the locally served Leaflet files and the basemap that
spatial.leaflet resolves. Map data goes to the page through json_script and
is inserted as text, so user text never becomes HTML.
"""
import h3
from django.conf import settings
from django.http import HttpResponse
from django.shortcuts import render
from django.utils import timezone
from django.utils.translation import gettext as _

from gridmap.models import GridUnit
from gridmap.roles import Role, can_see_personal_data, has_role, role_required
from routing.coverage import coverage_report, to_wgs84_shape
from routing.exceptions import RoutingError
from routing.forms import CoverageForm, PatrolForm
from routing.gpx import patrol_gpx
from routing.models import FireStation
from routing.patrol import gather_candidates, graph_area, patrol_start, plan_patrol
from routing.registry import current_network
from spatial.leaflet import resolve_basemap
from spatial.privacy import mask_personal_numbers

PATROL_ROLES = (Role.GRID_HEAD, Role.ADMIN)
COVERAGE_ROLES = (Role.PLANNER, Role.LEADER, Role.ADMIN)
# Most outside-ticket points drawn on the coverage map; the table counts all.
MAX_TICKET_POINTS = 2000


def _tile_layers():
    basemap = resolve_basemap()
    layers = [{"name": source.name, "url": source.url, "attribution": source.attribution,
               "subdomains": source.subdomains, "overlay": source.overlay} for source in basemap.tile_sources]
    return layers, basemap.notice


def _grids_for(user):
    """Return the grid units whose patrols ``user`` may plan: all for administrators, their own for grid heads."""
    units = GridUnit.objects.order_by("level", "code")
    if has_role(user, Role.ADMIN):
        return list(units)
    return list(units.filter(head=user))


@role_required(*PATROL_ROLES)
def patrol_page(request):
    """Plan today's patrol for one of the user's grids and show it on a phone-sized map with the stop list."""
    grids = _grids_for(request.user)
    # A first visit without parameters plans with the defaults, shown in the form.
    data = request.GET.copy()
    defaults = {"grid": grids[0].code if grids else "", "date": timezone.localdate().isoformat(), "start_time": "09:00",
                "budget_min": f"{settings.FIREGRID_PATROL_BUDGET_MIN:g}",
                "service_min": f"{settings.FIREGRID_PATROL_SERVICE_MIN:g}"}
    for key, value in defaults.items():
        if not data.get(key):
            data[key] = value
    form = PatrolForm(data, grid_choices=[(unit.code, f"{unit.name}({unit.code})") for unit in grids])
    context = {"form": form, "grids": grids, "plan": None, "error": "", "map_data": None,
               "map_labels": {"start": _("起点")}}
    context["tile_layers"], context["basemap_notice"] = _tile_layers()
    if not grids:
        context["error"] = _("您还没有负责的网格,无法生成巡查路线。请联系管理员在网格中把您设为网格长。")
        return render(request, "routing/patrol.html", context)
    if not form.is_valid():
        return render(request, "routing/patrol.html", context)

    values = form.patrol_values()
    unit = next((grid for grid in grids if grid.code == values.get("grid")), grids[0])
    try:
        road_graph, network = current_network()
        start_lat, start_lng = values["start"] or (unit.geom.point_on_surface.y, unit.geom.point_on_surface.x)
        candidates = gather_candidates(unit.geom, values["date"])
        plan = plan_patrol(road_graph, start_lat, start_lng, candidates, patrol_start(values["date"], values["start_time"]),
                           budget_s=values["budget_min"] * 60, service_s=values["service_min"] * 60)
    except RoutingError as error:
        context["error"] = str(error)
        return render(request, "routing/patrol.html", context)

    if not can_see_personal_data(request.user):
        # Ticket addresses are free text and sometimes carry a caller's mobile number.
        for candidate in [stop.candidate for stop in plan.stops] + [
                skipped.candidate for skipped in plan.unreachable + plan.not_chosen]:
            candidate.label = mask_personal_numbers(candidate.label)

    if request.GET.get("format") == "gpx":
        name = _("%(grid)s 巡查路线 %(date)s") % {"grid": unit.name, "date": values["date"].isoformat()}
        response = HttpResponse(patrol_gpx(plan, name), content_type="application/gpx+xml")
        response["Content-Disposition"] = f'attachment; filename="patrol-{unit.code}-{values["date"].isoformat()}.gpx"'
        return response

    context.update({
        "plan": plan, "unit": unit, "network": network, "candidate_count": len(candidates),
        "gpx_query": _query_with(request, format="gpx"),
        "map_data": {
            "start": [plan.start_lat, plan.start_lng],
            "path": [[lat, lng] for lng, lat in plan.path_lnglat],
            "area": unit.geom.geojson,
            "stops": [{"sequence": stop.sequence, "lat": stop.candidate.lat, "lng": stop.candidate.lng,
                       "kind": stop.candidate.kind, "title": f"{stop.sequence}. {stop.candidate.kind_label}",
                       "text": f"{timezone.localtime(stop.arrival_at):%H:%M} {stop.candidate.label}"}
                      for stop in plan.stops],
            "unreachable": [{"lat": skipped.candidate.lat, "lng": skipped.candidate.lng,
                             "title": skipped.candidate.kind_label, "text": skipped.reason}
                            for skipped in plan.unreachable],
        },
    })
    return render(request, "routing/patrol.html", context)


def _query_with(request, **extra):
    query = request.GET.copy()
    for key, value in extra.items():
        query[key] = value
    return query.urlencode()


@role_required(*COVERAGE_ROLES)
def coverage_page(request):
    """Show station isochrones, the H3 cells and tickets outside them and the high-risk cells not reached in time."""
    form = CoverageForm(request.GET)
    context = {"form": form, "report": None, "error": "", "map_data": None,
               "map_labels": {"isochrones": _("等时圈"), "outside": _("圈外有工单的H3单元"),
                              "highRisk": _("无法按时到达的高风险单元"), "tickets": _("圈外工单"), "stations": _("消防站")}}
    context["tile_layers"], context["basemap_notice"] = _tile_layers()
    if not form.is_valid():
        return render(request, "routing/coverage.html", context)
    minutes = form.cleaned_data.get("minutes")
    stations = list(FireStation.objects.all())
    if not stations:
        context["error"] = _("尚未导入消防站。请先运行 python manage.py import_stations 消防站.csv。")
        return render(request, "routing/coverage.html", context)
    try:
        road_graph, network = current_network()
        report = coverage_report(road_graph, stations, minutes=minutes)
    except RoutingError as error:
        context["error"] = str(error)
        return render(request, "routing/coverage.html", context)

    isochrones = []
    for reach in report.reaches:
        if reach.polygon is not None:
            shape = to_wgs84_shape(road_graph, reach.polygon.simplify(5))
            isochrones.append({"geometry": shape.__geo_interface__, "title": str(reach.station),
                               "text": _("%(minutes)g 分钟可达 %(area).2f 平方公里") % {
                                   "minutes": report.minutes, "area": reach.area_km2}})
    context.update({
        "report": report, "network": network,
        "stations_in_network": [reach for reach in report.reaches if reach.polygon is not None],
        "stations_outside": [reach for reach in report.reaches if reach.polygon is None],
        "cells_outside_sorted": sorted(report.cells_outside.items(), key=lambda item: (-item[1], item[0])),
        "cell_total": len(report.cells_inside) + len(report.cells_outside),
        "ticket_total": report.tickets_inside + len(report.tickets_outside),
        "map_data": {
            "extent": to_wgs84_shape(road_graph, report.extent).__geo_interface__,
            "isochrones": isochrones,
            "stations": [{"lat": reach.lat, "lng": reach.lng, "title": str(reach.station),
                          "text": reach.reason or _("已覆盖")} for reach in report.reaches],
            "cells_outside": [{"boundary": [list(point) for point in h3.cell_to_boundary(cell)],
                               "text": _("H3单元 %(cell)s:工单 %(count)d 件") % {"cell": cell, "count": count}}
                              for cell, count in report.cells_outside.items()],
            "high_risk": [{"boundary": [list(point) for point in h3.cell_to_boundary(candidate.key)],
                           "text": f"{candidate.key} {candidate.label}"} for candidate in report.high_risk_unreachable],
            "tickets_outside": [[lat, lng] for _pk, lat, lng, _category in report.tickets_outside[:MAX_TICKET_POINTS]],
        },
    })
    return render(request, "routing/coverage.html", context)
