"""Folium maps of H3 cells for the analytics pages: zones, emerging hot spots and risk.

Each map is rendered server-side with Leaflet from local static files, and
returned as the three parts a Django template embeds. Tooltip texts are
escaped here because GeoJsonTooltip inserts them as HTML.
"""
from dataclasses import dataclass

import folium
import h3
from folium import GeoJson, GeoJsonTooltip
from folium.map import FitBounds
from django.utils.html import escape
from django.utils.translation import gettext

from spatial.leaflet import LEAFLET_CSS, LEAFLET_JS, check_local_assets, resolve_basemap, use_local_assets
from spatial.models import EmergingLabel, ZoneType
from webmap.layers import cell_polygon

ZONE_COLORS = {
    ZoneType.CORE_COMMERCIAL: "#d7301f",
    ZoneType.OLD_RESIDENTIAL: "#fd8d3c",
    ZoneType.INDUSTRIAL_PARK: "#6a51a3",
    ZoneType.OTHER: "#9e9e9e",
}
EMERGING_COLORS = {
    "new_hot": "#fcbba1", "consecutive_hot": "#fc9272", "intensifying_hot": "#a50f15",
    "persistent_hot": "#de2d26", "diminishing_hot": "#fb6a4a", "sporadic_hot": "#fee0d2",
    "oscillating_hot": "#f768a1", "historical_hot": "#bdbdbd",
    "new_cold": "#c6dbef", "consecutive_cold": "#9ecae1", "intensifying_cold": "#08519c",
    "persistent_cold": "#3182bd", "diminishing_cold": "#6baed6", "sporadic_cold": "#deebf7",
    "oscillating_cold": "#807dba", "historical_cold": "#d9d9d9",
}
# Risk classes by probability: (lower bound, colour), highest first.
RISK_CLASSES = ((0.8, "#67000d"), (0.6, "#cb181d"), (0.4, "#fb6a4a"), (0.2, "#fcbba1"), (0.0, "#fff5f0"))
MAP_MAX_ZOOM = 19


@dataclass
class RenderedMap:
    header_html: str
    body_html: str
    script_js: str
    basemap_notice: str
    cell_count: int


def risk_color(probability):
    for lower, color in RISK_CLASSES:
        if probability >= lower:
            return color
    return RISK_CLASSES[-1][1]


def build_cell_map(cells, name):
    """Render a map of H3 cells; ``cells`` are (cell id as int, fill colour, tooltip text) tuples."""
    first_lat, first_lng = h3.cell_to_latlng(h3.int_to_str(cells[0][0])) if cells else (0.0, 0.0)
    cell_map = folium.Map(location=[first_lat, first_lng], zoom_start=12, tiles=None, control_scale=True)
    cell_map.options["max_zoom"] = MAP_MAX_ZOOM
    use_local_assets(cell_map, js=LEAFLET_JS, css=LEAFLET_CSS)
    basemap = resolve_basemap()
    for source in basemap.tile_sources:
        folium.TileLayer(tiles=source.url, attr=source.attribution, name=source.name, subdomains=source.subdomains,
                         overlay=source.overlay, max_zoom=MAP_MAX_ZOOM).add_to(cell_map)

    colors = {}
    features = []
    south, north = 90.0, -90.0
    west, east = 180.0, -180.0
    for cell, color, tooltip in cells:
        cell_id = h3.int_to_str(int(cell))
        colors[cell_id] = color
        polygon = cell_polygon(int(cell))
        for lng, lat in polygon["coordinates"][0]:
            south, north, west, east = min(south, lat), max(north, lat), min(west, lng), max(east, lng)
        features.append({"type": "Feature", "id": cell_id, "geometry": polygon,
                         "properties": {"tooltip": escape(tooltip)}})
    if features:
        GeoJson(
            {"type": "FeatureCollection", "features": features},
            name=name,
            style_function=lambda feature: {"color": "#555555", "weight": 0.5, "fillOpacity": 0.7,
                                            "fillColor": colors[feature["id"]]},
            tooltip=GeoJsonTooltip(fields=["tooltip"], labels=False),
        ).add_to(cell_map)
        fit = FitBounds([[south, west], [north, east]], padding=(20, 20))
        fit.options["animate"] = False
        fit.add_to(cell_map)
    folium.LayerControl(collapsed=True).add_to(cell_map)

    figure = cell_map.get_root()
    figure.render()
    check_local_assets(figure)
    return RenderedMap(figure.header.render(), figure.html.render(), figure.script.render(), basemap.notice,
                       len(features))


def zone_map(cell_zones):
    """Map cells coloured by the zone type of most of their tickets; ``cell_zones`` maps cell -> (type, count)."""
    text = gettext("H3 单元 %(cell)s:%(zone)s,%(count)s 件工单")
    cells = [(cell, ZONE_COLORS.get(zone_type, "#9e9e9e"),
              text % {"cell": h3.int_to_str(int(cell)), "zone": ZoneType(zone_type).label, "count": count})
             for cell, (zone_type, count) in sorted(cell_zones.items())]
    return build_cell_map(cells, gettext("圈层"))


def emerging_map(emerging_cells):
    """Map the labelled cells of an emerging hot spot run, leaving out cells without a pattern."""
    text = gettext("H3 单元 %(cell)s:%(label)s;%(count)s 件工单,热点切片 %(hot)s 个,冷点切片 %(cold)s 个,趋势 z=%(z).2f")
    cells = []
    for cell in emerging_cells:
        if cell.label == EmergingLabel.NO_PATTERN:
            continue
        cells.append((cell.h3_cell, EMERGING_COLORS.get(cell.label, "#bdbdbd"), text % {
            "cell": h3.int_to_str(cell.h3_cell), "label": cell.get_label_display(), "count": cell.ticket_count,
            "hot": cell.hot_slices, "cold": cell.cold_slices, "z": cell.trend_z or 0.0}))
    return build_cell_map(cells, gettext("时空热点"))


def risk_map(risk_cells):
    """Map the cells of a risk run coloured by predicted probability."""
    text = gettext("H3 单元 %(cell)s:风险概率 %(probability).0f%%,排名第 %(rank)s")
    cells = [(cell.h3_cell, risk_color(cell.probability),
              text % {"cell": h3.int_to_str(cell.h3_cell), "probability": cell.probability * 100, "rank": cell.rank})
             for cell in risk_cells]
    return build_cell_map(cells, gettext("风险预测"))
