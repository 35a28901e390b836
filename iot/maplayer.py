"""The sensor map layer: status, last reading and open alarms of each sensor, as GeoJSON or folium.

A sensor silent for its offline interval count is shown as offline even
before the listener's offline check has run, and its last values are then
labelled as the last known ones, never as current.
"""
import json

from folium.map import Layer
from jinja2 import Template
from django.db.models import Exists, OuterRef, Q
from django.utils import timezone
from django.utils.html import escape
from django.utils.translation import gettext as _

from gridmap.models import GridUnit
from iot.models import Alarm, AlarmKind, Sensor, SensorStatus
from iot.rules import is_offline

STATUS_COLOURS = {
    SensorStatus.NORMAL: "#2e7d32",
    SensorStatus.ALARM: "#c62828",
    SensorStatus.OFFLINE: "#757575",
    SensorStatus.UNKNOWN: "#9e9e9e",
}


def in_units(sensors, unit_ids):
    """Limit the queryset ``sensors`` to the grid units ``unit_ids``.

    A sensor without a unit counts as inside the units that cover its
    location, so sensors installed before their grid was imported still
    show on their grid head's map.
    """
    covering = GridUnit.objects.filter(pk__in=unit_ids, geom__covers=OuterRef("location"))
    return sensors.filter(Q(grid_unit__in=unit_ids) | (Q(grid_unit__isnull=True) & Q(Exists(covering))))


def sensor_features(now=None, unit_ids=None):
    """Return a GeoJSON FeatureCollection of active sensors, limited to the grid units ``unit_ids`` when given."""
    now = now or timezone.now()
    sensors = Sensor.objects.filter(active=True).select_related("sensor_type", "grid_unit").order_by("code")
    if unit_ids is not None:
        sensors = in_units(sensors, unit_ids)
    sensors = list(sensors)
    alarms = {}
    for alarm in (Alarm.objects.filter(sensor__in=sensors, cleared_at__isnull=True)
                  .select_related("ticket").order_by("opened_at")):
        alarms.setdefault(alarm.sensor_id, []).append(alarm)

    features = []
    for sensor in sensors:
        offline = sensor.status == SensorStatus.OFFLINE or (sensor.last_seen_at is not None and
                                                            is_offline(sensor, now))
        # An open alarm outranks silence: a smoke detector that alarmed and
        # then fell silent is shown in alarm, with the silence in its label.
        in_alarm = any(alarm.kind != AlarmKind.OFFLINE for alarm in alarms.get(sensor.id, []))
        if in_alarm:
            status = SensorStatus.ALARM
        elif offline:
            status = SensorStatus.OFFLINE
        else:
            status = SensorStatus(sensor.status)
        status_label = str(status.label)
        if in_alarm and offline:
            status_label = _("%(status)s(设备已离线)") % {"status": status_label}
        features.append({
            "type": "Feature",
            "geometry": {"type": "Point", "coordinates": [sensor.location.x, sensor.location.y]},
            "properties": {
                "code": sensor.code,
                "type": sensor.sensor_type.name,
                "place": sensor.place,
                "grid_code": sensor.grid_unit.code if sensor.grid_unit else "",
                "status": status.value,
                "status_label": status_label,
                "offline": offline,
                "last_seen_at": sensor.last_seen_at.isoformat() if sensor.last_seen_at else None,
                # Offline sensors get no current reading; the last known one is kept apart.
                "current_values": None if offline else sensor.last_values,
                "last_known_values": sensor.last_values,
                "unit": sensor.sensor_type.unit,
                "value_key": sensor.sensor_type.value_key,
                "open_alarms": [
                    {"kind": alarm.kind, "label": str(alarm.get_kind_display()),
                     "severity": alarm.severity, "opened_at": alarm.opened_at.isoformat(),
                     "ticket": alarm.ticket.external_id if alarm.ticket else None}
                    for alarm in alarms.get(sensor.id, [])
                ],
            },
        })
    return {"type": "FeatureCollection", "features": features}


def _format_value(value):
    if value is True:
        return _("是")
    if value is False:
        return _("否")
    if isinstance(value, (dict, list)):
        return json.dumps(value, ensure_ascii=False)
    return str(value)


def _format_values(values, value_key="", unit=""):
    """Return escaped ``key=value`` pairs, with the unit after the value the sensor's rule reads."""
    pairs = []
    for key, value in (values or {}).items():
        text = _format_value(value)
        if key == value_key and unit:
            text = f"{text} {unit}"
        pairs.append(f"{escape(key)}={escape(text)}")
    # Translators: separator between the values of one reading.
    return _("、").join(pairs)


def _popup_html(properties):
    rows = [
        (_("编号"), escape(properties["code"])),
        (_("类型"), escape(properties["type"])),
        (_("守护场所"), escape(properties["place"])),
        (_("所属网格"), escape(properties["grid_code"]) or "—"),
        (_("状态"), escape(properties["status_label"])),
    ]
    last_seen = properties["last_seen_at"]
    rows.append((_("最近接收"), escape(timezone.localtime(
        timezone.datetime.fromisoformat(last_seen)).strftime("%Y-%m-%d %H:%M:%S")) if last_seen else _("从未上报")))
    if properties["current_values"] is not None:
        rows.append((_("当前读数"), _format_values(properties["current_values"], properties["value_key"],
                                                   properties["unit"])))
    elif properties["last_known_values"]:
        rows.append((_("离线前最后读数"), _format_values(properties["last_known_values"], properties["value_key"],
                                                      properties["unit"])))
    for alarm in properties["open_alarms"]:
        rows.append((_("未解除告警"), escape(f"{alarm['label']} {alarm['ticket'] or ''}")))
    return "<table class='sensor-popup'>" + "".join(
        f"<tr><th>{escape(label)}</th><td>{value}</td></tr>" for label, value in rows) + "</table>"


class SensorLayer(Layer):
    """A Leaflet GeoJSON layer of sensors drawn as circles; popups are pre-escaped HTML, so no jQuery is needed."""

    _template = Template("""
        {% macro script(this, kwargs) %}
        var {{ this.get_name() }} = L.geoJSON({{ this.data|tojson }}, {
            pointToLayer: function (feature, latlng) {
                var p = feature.properties;
                return L.circleMarker(latlng, {radius: p.open_alarms.length ? 9 : 6, color: p.colour,
                    fillColor: p.colour, fillOpacity: 0.85, weight: 2});
            },
            onEachFeature: function (feature, layer) {
                layer.bindPopup(feature.properties.popup_html, {maxWidth: 360});
                layer.bindTooltip(feature.properties.tooltip);
            }
        });
        {% if this.show %}{{ this.get_name() }}.addTo({{ this._parent.get_name() }});{% endif %}
        {% endmacro %}
    """)

    def __init__(self, data, name, show=True):
        super().__init__(name=name, overlay=True, control=True, show=show)
        self._name = "SensorLayer"
        self.data = data


def sensor_layer(now=None, unit_ids=None, name=None, show=True):
    """Return (folium layer, GeoJSON FeatureCollection) of the sensors, coloured by status.

    The layer can be added to any folium Map, the planner map included, and
    listed by folium.LayerControl under ``name``.
    """
    collection = sensor_features(now, unit_ids)
    for feature in collection["features"]:
        properties = feature["properties"]
        properties["colour"] = STATUS_COLOURS[SensorStatus(properties["status"])]
        properties["popup_html"] = _popup_html(properties)
        properties["tooltip"] = escape(f"{properties['code']} {properties['status_label']}")
    layer = SensorLayer(collection, name=name or _("物联网传感器"), show=show)
    return layer, collection
