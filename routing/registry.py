"""The road networks that pages use: recorded at load time, read back from the graph cache."""
from pathlib import Path

from django.conf import settings
from django.utils.translation import gettext as _

from routing.exceptions import RoadFileError
from routing.models import RoadNetwork
from routing.roads import cache_key, load_road_graph, report_as_dict, road_speeds_kph

# Graphs already read in this process, by cache key, so a page does not unpickle on every request.
_loaded = {}


def load_and_register(path, use_cache=True):
    """Load a road file (from the cache when possible) and record it as a RoadNetwork; return both."""
    road_graph = load_road_graph(path, use_cache=use_cache)
    report = road_graph.report
    network, _created = RoadNetwork.objects.update_or_create(
        cache_key=cache_key(report.sha256, road_speeds_kph()),
        defaults={
            "name": Path(path).name, "source_path": str(Path(path).resolve()), "file_sha256": report.sha256,
            "crs": road_graph.crs, "node_count": report.node_count, "edge_count": report.edge_count,
            "total_length_m": report.total_length_m, "report": report_as_dict(report),
        },
    )
    _loaded[network.cache_key] = road_graph
    return road_graph, network


def current_network():
    """Return (RoadGraph, RoadNetwork) for FIREGRID_ROAD_FILE, or the most recently loaded network.

    Raises RoadFileError with what to do when no network has been loaded.
    """
    configured = settings.FIREGRID_ROAD_FILE.strip()
    if configured:
        network = RoadNetwork.objects.filter(source_path=str(Path(configured).resolve())).first()
        if network is None:
            road_graph, network = load_and_register(configured)
            return road_graph, network
    else:
        network = RoadNetwork.objects.first()
        if network is None:
            raise RoadFileError(_("尚未加载路网。请先运行 python manage.py load_roads 路网文件.osm。"))
    road_graph = _loaded.get(network.cache_key)
    if road_graph is None:
        road_graph, network = load_and_register(network.source_path)
    return road_graph, network
