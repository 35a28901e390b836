"""The planner's map, built server-side with folium from the database.

build_planner_map() runs the queries in webmap.queries, adds the layers from
webmap.layers to one folium Map and returns the rendered header, body and
script to embed in a Django template, with the figures the page states.
"""
import logging
import time
from dataclasses import dataclass, field

import folium
from folium.map import FitBounds
from django.conf import settings
from django.core.exceptions import ImproperlyConfigured
from django.utils import timezone
from django.utils.translation import gettext

from iot.maplayer import sensor_layer
from spatial.analysis import gistar, hotspots
from spatial.leaflet import LEAFLET_CSS, LEAFLET_JS, check_local_assets, resolve_basemap, use_local_assets
from spatial.models import HotspotRun, TicketSource
from spatial.taxonomy import Category
from webmap import layers, queries

logger = logging.getLogger(__name__)

# Highest zoom level of the map: street level, about 0.55 m per pixel at 24 degrees N.
MAP_MAX_ZOOM = 18

# Above this many fine cells, a map whose filter leaves the resolution to
# the page draws coarse cells instead, because tens of thousands of SVG
# polygons make the page megabytes large and slow to pan.
MAX_AUTO_FINE_CELLS = 5000



@dataclass
class HotspotSummary:
    """Description of the hotspot layer: the run, its filter and statistics parameters, and its counts."""

    run_id: int
    created_at: str
    category: str
    source: str
    period: str
    resolution: object
    permutations: object
    seed: object
    p_method: str
    ticket_count: int
    cell_count: int
    hot_count: int
    cold_count: int
    matches_filter: bool


@dataclass
class PlannerMap:
    """Rendered map parts for the template and the figures the page states about them."""

    header_html: str
    body_html: str
    script_js: str
    resolution: int
    # True when the page chose the coarse resolution because fine cells exceeded MAX_AUTO_FINE_CELLS.
    resolution_coarsened: bool = False
    ticket_count: int = 0
    located_count: int = 0
    heat_point_count: int = 0
    cell_count: int = 0
    marker_count: int = 0
    max_markers: int = 0
    markers_capped: bool = False
    has_simulated_tickets: bool = False
    hotspot: HotspotSummary | None = None
    hotspot_cell_count: int = 0
    basemap_notice: str = ""
    # Overlay names in the layer control, bottom to top; empty layers are left out.
    layer_names: list = field(default_factory=list)

    @property
    def unlocated_count(self):
        """Number of matching tickets without a location, which no layer can show."""
        return self.ticket_count - self.located_count


def layer_names():
    """Return the display names of the overlay layers, in the current language."""
    return {
        "heat": gettext("工单热力图"),
        "cells": gettext("H3 六边形单元工单数"),
        "hotspots": gettext("Gi* 热点/冷点"),
        "markers": gettext("工单标记"),
    }


def study_area_bounds():
    """Return FIREGRID_STUDY_AREA as [[min_lat, min_lng], [max_lat, max_lng]], Leaflet's order."""
    try:
        min_lng, min_lat, max_lng, max_lat = (float(part) for part in settings.FIREGRID_STUDY_AREA.split(","))
    except ValueError:
        raise ImproperlyConfigured(
            f"FIREGRID_STUDY_AREA={settings.FIREGRID_STUDY_AREA!r} is invalid; "
            "expected four numbers min_lng,min_lat,max_lng,max_lat"
        ) from None
    return [[min_lat, min_lng], [max_lat, max_lng]]


def build_planner_map(map_filter, reveal_personal_data=False):
    """Build the planner map for ``map_filter`` (a queries.MapFilter) and render it.

    Personal data in the marker popups is masked unless ``reveal_personal_data``
    is true, which gridmap.roles.can_see_personal_data decides. A filter
    without a resolution gets fine cells, or coarse ones above
    MAX_AUTO_FINE_CELLS fine cells.
    """
    started = time.perf_counter()
    max_markers = settings.FIREGRID_MAP_MAX_MARKERS
    names = layer_names()

    area = study_area_bounds()
    center = [(area[0][0] + area[1][0]) / 2, (area[0][1] + area[1][1]) / 2]
    planner_map = folium.Map(location=center, zoom_start=11, tiles=None, control_scale=True)
    # folium passes max_zoom only to a tile layer. Without a basemap the map
    # would have none, and leaflet.markercluster throws "Map has no maxZoom".
    planner_map.options["max_zoom"] = MAP_MAX_ZOOM
    use_local_assets(planner_map, js=LEAFLET_JS, css=LEAFLET_CSS)

    basemap = resolve_basemap()
    _add_basemap(planner_map, basemap)

    tickets = queries.filter_tickets(map_filter)
    ticket_count = tickets.count()
    located_count = tickets.filter(location__isnull=False).count()
    has_simulated_tickets = tickets.filter(batch__simulated=True).exists()

    # Layers are added bottom to top: hotspot cells, cell counts, heat. The
    # markers sit in Leaflet's marker pane, above all of them.
    run = queries.select_hotspot_run(map_filter)
    hotspot_cells = queries.hotspot_cells(run) if run else []
    drawn_layers = {}
    if hotspot_cells:
        layers.hotspot_layer(hotspot_cells, name=names["hotspots"]).add_to(planner_map)
        drawn_layers["hotspots"] = names["hotspots"]

    resolution, cell_counts, resolution_coarsened = _cell_counts_for_filter(tickets, map_filter)
    count_classes = []
    if cell_counts:
        # The counts start hidden because the heatmap, shown from the start,
        # draws the same tickets, and both at once are hard to read.
        cell_layer, count_classes = layers.h3_count_layer(cell_counts, resolution, name=names["cells"], show=False)
        cell_layer.add_to(planner_map)
        drawn_layers["cells"] = names["cells"]

    extent = queries.ticket_extent(tickets)
    bounds = _bounds_to_fit(extent, hotspot_cells, area)
    heat_points = queries.heat_points(tickets, queries.heat_snap_deg(extent))
    if heat_points:
        heat = layers.heat_layer(heat_points, name=names["heat"], fit_zoom=layers.estimate_fit_zoom(bounds))
        heat.add_to(planner_map)
        drawn_layers["heat"] = names["heat"]

    recent = queries.recent_tickets(tickets, max_markers)
    if recent:
        layers.ticket_marker_layer(recent, reveal_personal_data, name=names["markers"]).add_to(planner_map)
        drawn_layers["markers"] = names["markers"]

    # Sensors start hidden: they are a different kind of point from tickets,
    # and planners switch them on when they look at alarms.
    sensors, sensor_collection = sensor_layer(name=gettext("物联网传感器"), show=False)
    if sensor_collection["features"]:
        sensors.add_to(planner_map)

    folium.LayerControl(collapsed=False).add_to(planner_map)
    layers.MapLegend(layers.legend_html(drawn_layers.keys(), count_classes, resolution)).add_to(planner_map)
    fit = FitBounds(bounds, padding=(30, 30), max_zoom=layers.FIT_MAX_ZOOM)
    # The map is created at the study area's centre. An animated fit would
    # then zoom visibly on load, so the page jumps to the data at once.
    fit.options["animate"] = False
    fit.add_to(planner_map)

    header_html, body_html, script_js = _render_parts(planner_map)
    result = PlannerMap(
        header_html=header_html,
        body_html=body_html,
        script_js=script_js,
        resolution=resolution,
        resolution_coarsened=resolution_coarsened,
        ticket_count=ticket_count,
        located_count=located_count,
        heat_point_count=len(heat_points),
        cell_count=len(cell_counts),
        marker_count=len(recent),
        max_markers=max_markers,
        markers_capped=located_count > len(recent),
        has_simulated_tickets=has_simulated_tickets,
        hotspot=summarise_run(run, map_filter) if run else None,
        hotspot_cell_count=len(hotspot_cells),
        basemap_notice=basemap.notice,
        layer_names=list(drawn_layers.values()),
    )
    logger.info(
        "Built planner map: %d tickets (%d located), %d heat points, %d H3 cells at resolution %d, "
        "%d hotspot cells from run %s, %d markers in %.2f s",
        ticket_count, located_count, len(heat_points), len(cell_counts), resolution,
        len(hotspot_cells), run.pk if run else None, len(recent), time.perf_counter() - started,
    )
    return result


def _add_basemap(planner_map, basemap):
    for source in basemap.tile_sources:
        folium.TileLayer(
            tiles=source.url,
            attr=source.attribution,
            name=source.name,
            subdomains=source.subdomains,
            overlay=source.overlay,
            max_zoom=MAP_MAX_ZOOM,
        ).add_to(planner_map)


def _render_parts(planner_map):
    """Render the map's figure and return its (header HTML, body HTML, script) for a Django template."""
    figure = planner_map.get_root()
    # Rendering the figure once makes every element add its links, HTML and
    # script to the figure's three parts, which are then rendered on their own.
    figure.render()
    check_local_assets(figure)
    return figure.header.render(), figure.html.render(), figure.script.render()


def _cell_counts_for_filter(tickets, map_filter):
    """Return (resolution, {cell: ticket count}, whether the resolution was coarsened automatically)."""
    if map_filter.resolution is not None:
        return map_filter.resolution, queries.h3_cell_counts(tickets, map_filter.resolution), False

    fine = settings.FIREGRID_H3_RES_FINE
    cell_counts = queries.h3_cell_counts(tickets, fine)
    if len(cell_counts) <= MAX_AUTO_FINE_CELLS:
        return fine, cell_counts, False
    coarse = settings.FIREGRID_H3_RES_COARSE
    return coarse, queries.h3_cell_counts(tickets, coarse), True


def _bounds_to_fit(extent, hotspot_cells, study_area):
    """Return the tickets' extent, else the hotspot cells', else the study area, in Leaflet's order."""
    if extent:
        min_lng, min_lat, max_lng, max_lat = extent
        return [[min_lat, min_lng], [max_lat, max_lng]]
    if hotspot_cells:
        corners = [
            (lat, lng)
            for cell in hotspot_cells
            for lng, lat in layers.cell_polygon(cell["h3_cell"])["coordinates"][0]
        ]
        lats = [lat for lat, _ in corners]
        lngs = [lng for _, lng in corners]
        return [[min(lats), min(lngs)], [max(lats), max(lngs)]]
    return study_area


def summarise_run(run: HotspotRun, map_filter):
    """Describe a hotspot run's filter, parameters and counts for the page."""
    params = run.params or {}
    everything = gettext("全部")
    received_from = queries.normalise_date_param(params.get("received_from"))
    received_to = queries.normalise_date_param(params.get("received_to"))
    if received_from or received_to:
        period = f"{received_from or '…'} – {received_to or '…'}"
    else:
        period = everything
    return HotspotSummary(
        run_id=run.pk,
        created_at=timezone.localtime(run.created_at, queries.SHANGHAI).strftime("%Y-%m-%d %H:%M"),
        category=_choice_label(Category, params.get("category")) or everything,
        source=_choice_label(TicketSource, params.get("source")) or everything,
        period=period,
        resolution=params.get("resolution", "–"),
        permutations=params.get("permutations", "–"),
        seed=params.get("seed", "–"),
        p_method=_p_method_label(hotspots.get_p_method(params)),
        ticket_count=run.ticket_count,
        cell_count=run.cell_count,
        hot_count=run.hot_count,
        cold_count=run.cold_count,
        matches_filter=queries.run_matches_filter(run, map_filter),
    )


def _p_method_label(method):
    """Name the p-value method of a run as the page shows it."""
    labels = {
        gistar.P_METHOD_ADAPTIVE: gettext("置换伪 p 值(显著单元追加置换)"),
        gistar.P_METHOD_PSEUDO: gettext("置换伪 p 值"),
        gistar.P_METHOD_Z_SIM: gettext("置换分布正态近似 p 值"),
    }
    return labels.get(method, method)


def _choice_label(choices, value):
    if value in (None, ""):
        return ""
    if value in choices.values:
        return str(choices(value).label)
    return str(value)
