"""Local Leaflet assets for folium elements, and the basemap tile layer.

folium points its elements at CDNs. Government intranets have none, so every
element used here gets Django static-file URLs instead; the files come from
node_modules/ through STATICFILES_DIRS. jQuery, Bootstrap and the awesome-
markers files that folium.Map lists are left out: folium needs jQuery only for
folium.Popup and Map.keep_in_front, which these maps do not use.

The module sits in spatial, the bottom layer, so that the pages of webmap,
routing and iot can all use it without importing upwards.
"""
import logging
from dataclasses import dataclass
from urllib.parse import urlsplit

from branca.element import CssLink, JavascriptLink
from django.conf import settings
from django.core.exceptions import ImproperlyConfigured
from django.templatetags.static import static
from django.utils.translation import gettext

logger = logging.getLogger(__name__)

# (name, static path) pairs. The names are folium's own, so that an element
# registering the same name replaces the entry instead of adding a second one.
LEAFLET_JS = [("leaflet", "vendor/leaflet/leaflet.js")]
LEAFLET_CSS = [("leaflet_css", "vendor/leaflet/leaflet.css")]
HEAT_JS = [("leaflet-heat.js", "vendor/leaflet.heat/leaflet-heat.js")]
MARKER_CLUSTER_JS = [("markerclusterjs", "vendor/leaflet.markercluster/leaflet.markercluster.js")]
MARKER_CLUSTER_CSS = [
    ("markerclustercss", "vendor/leaflet.markercluster/MarkerCluster.css"),
    ("markerclusterdefaultcss", "vendor/leaflet.markercluster/MarkerCluster.Default.css"),
]

OSM_TILES = "https://tile.openstreetmap.org/{z}/{x}/{y}.png"
OSM_ATTRIBUTION = '&copy; <a href="https://www.openstreetmap.org/copyright">OpenStreetMap</a> contributors'
# Tianditu's Web Mercator vector map and its Chinese annotation layer. Its
# CGCS2000 coordinates match WGS84 to within centimetres, so WGS84 tickets
# need no offset on it (unlike GCJ-02 basemaps).
TIANDITU_VECTOR_TILES = (
    "https://t{s}.tianditu.gov.cn/vec_w/wmts?SERVICE=WMTS&REQUEST=GetTile&VERSION=1.0.0"
    "&LAYER=vec&STYLE=default&TILEMATRIXSET=w&FORMAT=tiles&TILEMATRIX={z}&TILEROW={y}&TILECOL={x}&tk=%(key)s"
)
TIANDITU_LABEL_TILES = (
    "https://t{s}.tianditu.gov.cn/cva_w/wmts?SERVICE=WMTS&REQUEST=GetTile&VERSION=1.0.0"
    "&LAYER=cva&STYLE=default&TILEMATRIXSET=w&FORMAT=tiles&TILEMATRIX={z}&TILEROW={y}&TILECOL={x}&tk=%(key)s"
)
TIANDITU_ATTRIBUTION = "&copy; 天地图"
TIANDITU_SUBDOMAINS = "01234567"


def use_local_assets(element, js=(), css=()):
    """Point a folium element's script and stylesheet links at static files instead of CDNs."""
    element.default_js = [(name, static(path)) for name, path in js]
    element.default_css = [(name, static(path)) for name, path in css]
    return element


def check_local_assets(figure):
    """Raise ImproperlyConfigured when a rendered figure's header links to a file outside STATIC_URL.

    Call it after figure.render(), which fills the header. It catches a folium
    element added later whose CDN links were not replaced.
    """
    static_prefix = static("")
    for child in figure.header._children.values():
        if isinstance(child, (JavascriptLink, CssLink)) and not child.url.startswith(static_prefix):
            raise ImproperlyConfigured(
                f"map asset {child.url!r} is not served from {static_prefix!r}; "
                "give the folium element local files with spatial.leaflet.use_local_assets()"
            )


@dataclass(frozen=True)
class TileSource:
    """One tile layer: URL template, attribution HTML, Leaflet subdomains, and whether it is drawn over a base."""

    name: str
    url: str
    attribution: str
    subdomains: str = "abc"
    overlay: bool = False


@dataclass(frozen=True)
class Basemap:
    """Tile layers from FIREGRID_BASEMAP, and a notice for the page when the setting was unusable."""

    tile_sources: tuple
    notice: str = ""


def resolve_basemap():
    """Read FIREGRID_BASEMAP and return the tile layers to draw, none by default.

    A Tianditu basemap without FIREGRID_TIANDITU_KEY, or a value that is neither
    a known name nor a URL template, falls back to no basemap with a notice,
    so the page still shows the ticket layers.
    """
    setting = (settings.FIREGRID_BASEMAP or "none").strip()
    choice = setting.lower()

    if choice == "none":
        return Basemap(tile_sources=())

    if choice == "osm":
        source = TileSource(name="OpenStreetMap", url=OSM_TILES, attribution=OSM_ATTRIBUTION)
        return Basemap(tile_sources=(source,))

    if choice == "tianditu":
        key = settings.FIREGRID_TIANDITU_KEY.strip()
        if not key:
            logger.warning("FIREGRID_BASEMAP is tianditu but FIREGRID_TIANDITU_KEY is empty; drawing no basemap")
            return Basemap(
                tile_sources=(),
                notice=gettext("天地图底图需要密钥:请设置 FIREGRID_TIANDITU_KEY。当前不显示底图。"),
            )
        vector = TileSource(
            name=gettext("天地图矢量"),
            url=TIANDITU_VECTOR_TILES % {"key": key},
            attribution=TIANDITU_ATTRIBUTION,
            subdomains=TIANDITU_SUBDOMAINS,
        )
        labels = TileSource(
            name=gettext("天地图注记"),
            url=TIANDITU_LABEL_TILES % {"key": key},
            attribution=TIANDITU_ATTRIBUTION,
            subdomains=TIANDITU_SUBDOMAINS,
            overlay=True,
        )
        return Basemap(tile_sources=(vector, labels))

    if all(placeholder in setting for placeholder in ("{z}", "{x}", "{y}")):
        attribution = settings.FIREGRID_BASEMAP_ATTRIBUTION.strip() or urlsplit(setting).hostname or setting
        return Basemap(tile_sources=(TileSource(name=gettext("底图"), url=setting, attribution=attribution),))

    logger.warning("FIREGRID_BASEMAP=%r is not none, osm, tianditu or a {z}/{x}/{y} URL template; drawing no basemap",
                   setting)
    return Basemap(
        tile_sources=(),
        notice=gettext("底图设置 FIREGRID_BASEMAP 无效(应为 none、osm、tianditu 或含 {z}/{x}/{y} 的地址模板)。当前不显示底图。"),
    )
