"""The sensor map page and its GeoJSON feed."""
import folium
from django.http import JsonResponse
from django.shortcuts import render
from django.utils import timezone

from gridmap.dispatch import units_for_head
from gridmap.roles import Role, has_role, role_required
from iot.maplayer import in_units, sensor_layer
from iot.models import Alarm, Sensor
from spatial.leaflet import LEAFLET_CSS, LEAFLET_JS, check_local_assets, use_local_assets

SENSOR_MAP_ROLES = (Role.PLANNER, Role.GRID_HEAD, Role.LEADER, Role.ADMIN)
DEFAULT_CENTER = [23.75, 109.22]


def _visible_units(user):
    """Return the ids of the grid units whose sensors ``user`` may see, or None for all.

    Planners, leaders and administrators see every sensor. A grid head sees
    the sensors of the grid units they head and of the units below them.
    """
    if has_role(user, Role.PLANNER, Role.LEADER, Role.ADMIN):
        return None
    return units_for_head(user)


@role_required(*SENSOR_MAP_ROLES)
def sensor_map(request):
    """Show every visible sensor with its status, last reading and open alarms."""
    now = timezone.now()
    unit_ids = _visible_units(request.user)
    layer, collection = sensor_layer(now, unit_ids)
    features = collection["features"]
    if features:
        lngs = [f["geometry"]["coordinates"][0] for f in features]
        lats = [f["geometry"]["coordinates"][1] for f in features]
        center = [(min(lats) + max(lats)) / 2, (min(lngs) + max(lngs)) / 2]
    else:
        center = DEFAULT_CENTER
    sensor_map_figure = folium.Map(location=center, zoom_start=15, tiles=None, control_scale=True)
    use_local_assets(sensor_map_figure, js=LEAFLET_JS, css=LEAFLET_CSS)
    layer.add_to(sensor_map_figure)
    if len(features) > 1:
        sensor_map_figure.fit_bounds([[min(lats), min(lngs)], [max(lats), max(lngs)]], padding=(30, 30))
    figure = sensor_map_figure.get_root()
    figure.render()
    check_local_assets(figure)

    counts = {"total": len(features), "alarm": 0, "offline": 0}
    for feature in features:
        status = feature["properties"]["status"]
        if status in counts:
            counts[status] += 1
    open_alarms = Alarm.objects.filter(cleared_at__isnull=True, sensor__active=True)
    if unit_ids is not None:
        open_alarms = open_alarms.filter(sensor__in=in_units(Sensor.objects.all(), unit_ids))
    open_alarms = open_alarms.select_related("sensor", "ticket").order_by("-opened_at")[:50]
    return render(request, "iot/sensor_map.html", {
        "header_html": figure.header.render(), "body_html": figure.html.render(),
        "script_js": figure.script.render(), "counts": counts, "open_alarms": open_alarms,
    })


@role_required(*SENSOR_MAP_ROLES)
def sensor_geojson(request):
    """Return the visible sensors as GeoJSON for other maps."""
    _layer, collection = sensor_layer(timezone.now(), _visible_units(request.user))
    for feature in collection["features"]:
        feature["properties"].pop("popup_html", None)
    return JsonResponse(collection)
