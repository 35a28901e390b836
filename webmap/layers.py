"""folium layers of the planner map: heatmap, H3 cell counts, Gi* hotspots, ticket markers, legend.

All text that reaches the browser as HTML (popups, tooltips, the legend) is
escaped here on the server, because Leaflet inserts it with innerHTML.
"""
import math
from collections import Counter

import h3
from django.template.loader import render_to_string
from django.utils import timezone
from django.utils.html import escape, format_html, format_html_join
from django.utils.text import Truncator
from django.utils.translation import gettext
from folium import FeatureGroup, GeoJson, GeoJsonTooltip
from folium.elements import MacroElement
from folium.plugins import HeatMap, MarkerCluster
from folium.template import Template

from spatial.leaflet import HEAT_JS, MARKER_CLUSTER_CSS, MARKER_CLUSTER_JS, use_local_assets
from spatial.models import HotspotLabel, TicketStatus
from spatial.taxonomy import Category
from spatial.privacy import mask_name, mask_personal_numbers, mask_phone
from webmap.queries import SHANGHAI

# Classic hot spot colours: reds for hot, blues for cold, darker at higher
# confidence (ColorBrewer RdYlBu ends), grey for cells that are not significant.
HOTSPOT_COLORS = {
    HotspotLabel.HOT_99: "#d7191c",
    HotspotLabel.HOT_95: "#f46d43",
    HotspotLabel.HOT_90: "#fdae61",
    HotspotLabel.NOT_SIGNIFICANT: "#bdbdbd",
    HotspotLabel.COLD_90: "#abd9e9",
    HotspotLabel.COLD_95: "#74add1",
    HotspotLabel.COLD_99: "#2c7bb6",
}

# ColorBrewer Purples, light to dark: a hue that the hotspot reds and blues do not use.
COUNT_COLORS = ["#dadaeb", "#bcbddc", "#9e9ac8", "#756bb1", "#54278f"]

# ColorBrewer Dark2, one colour per category, grey for "other".
CATEGORY_COLORS = {
    Category.FIRE_LANE: "#d95f02",
    Category.FACILITY_FAULT: "#7570b3",
    Category.EBIKE_CHARGING: "#e7298a",
    Category.SEPARATION: "#66a61e",
    Category.FLAMMABLE_STORAGE: "#e6ab02",
    Category.ELECTRICAL: "#1b9e77",
    Category.OTHER: "#666666",
}

# Longer descriptions are cut in the popup to keep the page small.
POPUP_DESCRIPTION_MAX_CHARS = 300

HEAT_RADIUS_PX = 16

# Map size assumed when estimating the zoom level the page opens at: a guess
# between the map area of a laptop screen and that of a desktop screen.
NOMINAL_MAP_WIDTH_PX = 1200
NOMINAL_MAP_HEIGHT_PX = 650

# Zoom level cap when fitting to the data, so one ticket or one cell is
# shown with its streets around it instead of at the maximum zoom.
FIT_MAX_ZOOM = 16


# --- heatmap ----------------------------------------------------------------

def estimate_fit_zoom(bounds, width_px=NOMINAL_MAP_WIDTH_PX, height_px=NOMINAL_MAP_HEIGHT_PX):
    """Estimate the Web Mercator zoom level at which Leaflet fits ``bounds`` [[lat, lng], [lat, lng]].

    NOTE: the map's real size is known only in the browser, so this assumes
    NOMINAL_MAP_WIDTH_PX x NOMINAL_MAP_HEIGHT_PX and may be one level off.
    """
    (min_lat, min_lng), (max_lat, max_lng) = bounds
    span_lng_deg = max(max_lng - min_lng, 1e-9)
    span_mercator = max(_mercator_y(max_lat) - _mercator_y(min_lat), 1e-9)
    zoom_for_width = math.log2(width_px * 360 / (256 * span_lng_deg))
    zoom_for_height = math.log2(height_px * 2 * math.pi / (256 * span_mercator))
    return max(0, min(FIT_MAX_ZOOM, math.floor(min(zoom_for_width, zoom_for_height))))


def _mercator_y(lat_deg):
    lat_rad = math.radians(lat_deg)
    return math.log(math.tan(math.pi / 4 + lat_rad / 2))


def heat_layer(points, name, fit_zoom, show=True):
    """Build a leaflet.heat layer from [lat, lng, ticket count] rows, wrapped in a FeatureGroup.

    leaflet.heat 0.2.0 sums the weights of the points in each square of
    radius/2 pixels, divides the sums by 2^(max_zoom - zoom) below max_zoom,
    and draws each square as a blurred disc whose opacity is sum / max. Here
    max_zoom is the zoom the page opens at, and max comes from
    heat_saturation() at that zoom, so the opening view uses the whole
    colour ramp.
    """
    heat = HeatMap(
        points,
        control=False,
        radius=HEAT_RADIUS_PX,
        blur=14,
        # leaflet.heat's own default. A higher floor turns every dense area red,
        # because a dozen overlapping discs add up to full opacity.
        min_opacity=0.05,
        max_zoom=fit_zoom,
        max=heat_saturation(points, fit_zoom),
    )
    use_local_assets(heat, js=HEAT_JS)
    # Leaflet's layer control reads the same maxZoom option as a visibility
    # limit and would grey out the heatmap's checkbox above it, so the
    # control lists this group instead of the heat layer itself.
    group = FeatureGroup(name=name, show=show)
    heat.add_to(group)
    return group


def heat_saturation(points, zoom):
    """Return leaflet.heat's ``max`` for ``points`` seen at ``zoom``, at least 1.

    Each pixel lies under the discs of the squares within one radius (two
    squares), and their opacities add up. The neighbourhood sum of a square
    is the weight of those squares. Half the 99th percentile of the
    neighbourhood sums lets the densest places reach red (opacities adding
    up to about 2) while isolated tickets stay faint, judged by eye on 42
    test tickets and on 200,000 synthetic ones.
    """
    if not points:
        return 1
    square_px = HEAT_RADIUS_PX / 2
    square_lng_deg = square_px * 360 / (256 * 2 ** zoom)
    mean_lat = sum(point[0] for point in points) / len(points)
    # A Web Mercator pixel spans cos(latitude) times as many degrees of latitude as of longitude.
    square_lat_deg = square_lng_deg * math.cos(math.radians(mean_lat))
    square_sums = Counter()
    for lat, lng, weight in points:
        square_sums[(math.floor(lat / square_lat_deg), math.floor(lng / square_lng_deg))] += weight

    neighbour_offsets = [(dy, dx) for dy in range(-2, 3) for dx in range(-2, 3) if dy * dy + dx * dx <= 4]
    neighbourhood_sums = sorted(
        sum(square_sums.get((row + dy, column + dx), 0) for dy, dx in neighbour_offsets)
        for row, column in square_sums
    )
    # Nearest-rank percentile, so with few squares it is the largest sum.
    percentile_99 = neighbourhood_sums[math.ceil(0.99 * len(neighbourhood_sums)) - 1]
    return max(1, percentile_99 / 2)


# --- H3 cells ---------------------------------------------------------------

def cell_polygon(cell):
    """Return the GeoJSON Polygon of an H3 cell given as int (h3 returns (lat, lng), GeoJSON wants [lng, lat])."""
    boundary = h3.cell_to_boundary(h3.int_to_str(cell))
    # Six decimals are 0.1 m, and shorter than h3's full floats in the page.
    ring = [[round(lng, 6), round(lat, 6)] for lat, lng in boundary]
    ring.append(ring[0])
    return {"type": "Polygon", "coordinates": [ring]}


def count_classes(counts, colors=COUNT_COLORS):
    """Split ticket counts into at most len(colors) quantile classes.

    Returns a list of (lowest count, highest count, colour) with integer,
    non-overlapping bounds. When the counts take fewer distinct values than
    there are colours, the darker colours are used.
    """
    values = sorted(counts)
    if not values:
        return []

    upper_bounds = []
    class_total = len(colors)
    for index in range(1, class_total + 1):
        position = math.ceil(index * len(values) / class_total) - 1
        upper = values[position]
        if not upper_bounds or upper > upper_bounds[-1]:
            upper_bounds.append(upper)

    palette = colors[class_total - len(upper_bounds):]
    classes = []
    lower = values[0]
    for upper, color in zip(upper_bounds, palette):
        classes.append((lower, upper, color))
        lower = upper + 1
    return classes


def _color_for_count(count, classes):
    for lower, upper, color in classes:
        if lower <= count <= upper:
            return color
    return classes[-1][2]


def h3_count_layer(cell_counts, resolution, name, show=True):
    """Build the choropleth of ticket counts per H3 cell; returns (layer, classes for the legend)."""
    classes = count_classes(cell_counts.values())
    tooltip_format = gettext("H3 单元 %(cell)s(分辨率 %(resolution)s):%(count)s 件工单")
    fill_colors = {}
    features = []
    for cell, ticket_count in sorted(cell_counts.items()):
        cell_id = h3.int_to_str(cell)
        fill_colors[cell_id] = _color_for_count(ticket_count, classes)
        tooltip = tooltip_format % {"cell": cell_id, "resolution": resolution, "count": ticket_count}
        features.append({
            "type": "Feature",
            "id": cell_id,
            "geometry": cell_polygon(cell),
            "properties": {"tooltip": escape(tooltip)},
        })

    def style(feature):
        return {
            "color": "#54278f",
            "weight": 0.6,
            "fillColor": fill_colors[feature["id"]],
            "fillOpacity": 0.6,
            "className": "firegrid-h3-cell",
        }

    layer = _cell_layer(features, style, name, show)
    return layer, classes


def hotspot_layer(cells, name, show=True):
    """Build the layer of Gi* cells coloured by their label; ``cells`` are HotspotCell value dicts.

    NOTE: every cell of the run is drawn at the run's own resolution. A
    fine-resolution run over a whole county can have tens of thousands of
    cells, which makes the page large; unlike the count layer there is no
    coarse fallback, because a run's labels exist only at its resolution.
    """
    detail_format = gettext("H3 单元 %(cell)s:%(count)s 件工单,z = %(z)s,p = %(p)s")
    labels = {}
    features = []
    for cell in cells:
        cell_id = h3.int_to_str(cell["h3_cell"])
        label = cell["label"]
        labels[cell_id] = label
        label_text = HotspotLabel(label).label if label in HotspotLabel.values else label
        detail = detail_format % {
            "cell": cell_id,
            "count": cell["ticket_count"],
            "z": _format_number(cell["z_score"], 2),
            "p": _format_number(cell["p_value"], 3),
        }
        features.append({
            "type": "Feature",
            "id": cell_id,
            "geometry": cell_polygon(cell["h3_cell"]),
            "properties": {"tooltip": format_html("<strong>{}</strong><br>{}", label_text, detail)},
        })

    def style(feature):
        label = labels[feature["id"]]
        significant = label != HotspotLabel.NOT_SIGNIFICANT
        return {
            "color": "#ffffff" if significant else "#9e9e9e",
            "weight": 0.8,
            "fillColor": HOTSPOT_COLORS.get(label, HOTSPOT_COLORS[HotspotLabel.NOT_SIGNIFICANT]),
            "fillOpacity": 0.7 if significant else 0.3,
            "className": "firegrid-hotspot-cell",
        }

    return _cell_layer(features, style, name, show)


def _cell_layer(features, style, name, show):
    # With a style function folium writes each distinct style once, with the
    # ids of its cells, instead of a style object in every feature.
    return GeoJson(
        {"type": "FeatureCollection", "features": features},
        name=name,
        show=show,
        style_function=style,
        tooltip=GeoJsonTooltip(fields=["tooltip"], labels=False),
    )


def _format_number(value, decimals):
    if value is None:
        return "–"
    return f"{value:.{decimals}f}"


# --- ticket markers ---------------------------------------------------------

class TicketMarkerCluster(MarkerCluster):
    """Marker cluster whose circle markers and popups are built in the browser from one JSON array.

    One array instead of a folium Marker and Popup per ticket keeps the page
    small, and avoids folium.Popup, which puts its HTML into a JavaScript
    template literal (where "${" in a ticket text would run as code) and
    needs jQuery.
    """

    _template = Template(
        """
        {% macro script(this, kwargs) %}
            var {{ this.get_name() }} = L.markerClusterGroup({{ this.options|tojavascript }});
            {{ this.get_name() }}.addLayers({{ this.tickets|tojson }}.map(function (ticket) {
                return L.circleMarker([ticket.lat, ticket.lng], {
                    pane: "markerPane",
                    radius: 7,
                    color: "#ffffff",
                    weight: 1.5,
                    fillColor: ticket.color,
                    fillOpacity: 0.9,
                    className: "firegrid-ticket-marker"
                }).bindPopup(ticket.popup, {maxWidth: 360});
            }));
        {% endmacro %}
        """
    )

    def __init__(self, tickets, name, show=True):
        super().__init__(name=name, show=show, show_coverage_on_hover=False, max_cluster_radius=50)
        self._name = "TicketMarkerCluster"
        self.tickets = tickets
        use_local_assets(self, js=MARKER_CLUSTER_JS, css=MARKER_CLUSTER_CSS)


def ticket_marker_layer(tickets, reveal_personal_data, name, show=True):
    """Build the clustered markers of ``tickets`` with popups; personal data masked unless revealed."""
    labels = _popup_labels()
    markers = [
        {
            "lat": ticket.location.y,
            "lng": ticket.location.x,
            "color": CATEGORY_COLORS.get(ticket.category, CATEGORY_COLORS[Category.OTHER]),
            "popup": ticket_popup_html(ticket, reveal_personal_data, labels),
        }
        for ticket in tickets
    ]
    return TicketMarkerCluster(markers, name=name, show=show)


def _popup_labels():
    return {
        "title": gettext("工单 %(number)s"),
        "category": gettext("问题类型"),
        "received_at": gettext("受理时间"),
        "status": gettext("状态"),
        "address": gettext("诉求地址"),
        "description": gettext("诉求内容"),
        "name": gettext("诉求人"),
        "phone": gettext("联系电话"),
        # Choice labels translated once per map: get_FOO_display() per ticket
        # costs a lazy translation lookup each time.
        "categories": {value: str(label) for value, label in Category.choices},
        "statuses": {value: str(label) for value, label in TicketStatus.choices},
    }


def ticket_popup_html(ticket, reveal_personal_data, labels=None):
    """Return the escaped popup HTML of one ticket.

    Unless ``reveal_personal_data`` is true, the complainant's name and phone
    are masked, and so are mobile and ID numbers inside the address and the
    description.
    """
    labels = labels or _popup_labels()
    address = ticket.address
    description = ticket.description
    name = ticket.complainant_name
    phone = ticket.complainant_phone
    if not reveal_personal_data:
        address = mask_personal_numbers(address)
        description = mask_personal_numbers(description)
        name = mask_name(name)
        phone = mask_phone(phone)
    # Cut after masking, so a cut never leaves part of a number unmasked.
    description = Truncator(description).chars(POPUP_DESCRIPTION_MAX_CHARS, truncate="…")

    received_at = timezone.localtime(ticket.received_at, SHANGHAI).strftime("%Y-%m-%d %H:%M")
    rows = [
        (labels["category"], labels["categories"].get(ticket.category, ticket.category)),
        (labels["received_at"], received_at),
        (labels["status"], labels["statuses"].get(ticket.status, ticket.status)),
        (labels["address"], address),
        (labels["description"], description),
    ]
    if name:
        rows.append((labels["name"], name))
    if phone:
        rows.append((labels["phone"], phone))

    title = labels["title"] % {"number": ticket.external_id}
    return format_html(
        '<div class="firegrid-popup"><div class="firegrid-popup-title">{}</div><table>{}</table></div>',
        title,
        format_html_join("", "<tr><th>{}</th><td>{}</td></tr>", rows),
    )


# --- legend -----------------------------------------------------------------

class MapLegend(MacroElement):
    """Leaflet control in the bottom-right corner showing server-rendered, escaped legend HTML."""

    _template = Template(
        """
        {% macro script(this, kwargs) %}
            var {{ this.get_name() }} = L.control({position: "bottomright"});
            {{ this.get_name() }}.onAdd = function () {
                var container = L.DomUtil.create("div", "firegrid-legend leaflet-bar");
                container.innerHTML = {{ this.html|tojson }};
                L.DomEvent.disableClickPropagation(container);
                L.DomEvent.disableScrollPropagation(container);
                return container;
            };
            {{ this.get_name() }}.addTo({{ this._parent.get_name() }});
        {% endmacro %}
        """
    )

    def __init__(self, html):
        super().__init__()
        self._name = "MapLegend"
        self.html = str(html)


def legend_html(shown_layers, count_classes_shown, resolution):
    """Render the legend's HTML for the layers drawn: keys "heat", "cells", "hotspots", "markers"."""
    context = {
        "heat_shown": "heat" in shown_layers,
        "count_classes": [
            {"lower": lower, "upper": upper, "color": color} for lower, upper, color in count_classes_shown
        ] if "cells" in shown_layers else [],
        "resolution": resolution,
        "hotspot_shown": "hotspots" in shown_layers,
        "hotspot_classes": [
            {"label": label.label, "color": HOTSPOT_COLORS[label]} for label in HotspotLabel
        ],
        "markers_shown": "markers" in shown_layers,
        "categories": [
            {"label": category.label, "color": CATEGORY_COLORS[category]} for category in Category
        ],
    }
    return render_to_string("webmap/map_legend.html", context)
