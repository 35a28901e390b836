"""Road graphs from OSM files and the tour solver, on the hand-made town in tests/data/routing.

The town is a 3 x 3 block grid where 中山路 runs one way east from node 4
to node 6. The loader must drop a footway, a building outline, a service
area, a way whose nodes are all missing, a detached street, a one-way dead
end and the piece of 断头路 beyond a missing node.
"""
import bz2
import time

import numpy as np
import pytest
from django.core.management import call_command
from django.core.management.base import CommandError

from routing.exceptions import RoadFileError
from routing.network import node_path, path_matrix, snap_points
from routing.roads import LoadReport, load_road_graph, parse_maxspeed_kph, read_osm_roads
from routing.solver import heuristic_order, nearest_neighbour_order, solve_orienteering, tour_cost, tour_time


@pytest.fixture
def town_path(fixtures_dir):
    return fixtures_dir / "routing" / "town.osm"


@pytest.fixture(autouse=True)
def graph_cache_in_tmp(settings, tmp_path):
    settings.VAR_DIR = tmp_path / "var"


def test_town_report_counts(town_path):
    report = load_road_graph(town_path).report
    assert report.ways_read == 12
    assert report.ways_kept == 8
    assert report.ways_dropped_by_class == {"(none)": 1, "footway": 1}
    assert report.ways_dropped_area == 1
    assert report.ways_with_missing_nodes == 2
    assert report.missing_node_refs == 3
    assert report.ways_split_at_missing_nodes == 1
    assert report.ways_dropped_missing_nodes == 1
    assert report.components_dropped == 3
    assert report.nodes_dropped_disconnected == 5
    assert report.edges_dropped_disconnected == 5


def test_town_graph_shape(town_path):
    road_graph = load_road_graph(town_path)
    graph = road_graph.graph
    assert sorted(graph.nodes) == [4, 6, 9, 10]
    assert graph.number_of_edges() == 9
    assert road_graph.crs == "EPSG:32650"
    assert road_graph.report.oneway_edges == 1
    # Node 11 and 12 lie beyond the missing node 999, node 30 only on a one-way dead end.
    for dropped in (11, 12, 20, 21, 30):
        assert dropped not in graph


def test_lengths_and_times(town_path):
    graph = load_road_graph(town_path).graph
    oneway = next(data for u, v, data in graph.edges(data=True) if data.get("name") == "中山路")
    # 0.002 degrees of longitude at 22.691 N.
    assert oneway["length"] == pytest.approx(205.2, abs=0.1)
    assert oneway["speed_kph"] == 20.0
    assert oneway["travel_time"] == pytest.approx(205.2 / (20 / 3.6), abs=0.05)
    east = graph.get_edge_data(9, 6)[0]
    # 东路 is tertiary (30 km/h) with maxspeed 20.
    assert east["speed_kph"] == 20.0


def test_oneway_respected(town_path):
    road_graph = load_road_graph(town_path)
    matrix = path_matrix(road_graph, [4, 6])
    assert matrix.time_s[0][1] == pytest.approx(36.9, abs=0.1)
    # Back from 6 to 4 goes round the block because 中山路 is one way.
    assert matrix.time_s[1][0] == pytest.approx(77.0, abs=0.1)
    assert matrix.length_m[1][0] == pytest.approx(427.6, abs=0.1)
    # Round the south block (one merged edge) or the north block (via node 9), 77 s either way.
    assert node_path(road_graph, matrix, 1, 0) in ([6, 4], [6, 9, 4])
    assert matrix.time_s[1][0] > matrix.time_s[0][1]


def test_second_load_from_cache(town_path):
    first = load_road_graph(town_path)
    started = time.perf_counter()
    second = load_road_graph(town_path)
    elapsed = time.perf_counter() - started
    assert first.report.from_cache is False
    assert second.report.from_cache is True
    assert elapsed < 1.0
    assert sorted(second.graph.nodes) == sorted(first.graph.nodes)


def test_speed_setting_changes_cache(town_path, settings):
    load_road_graph(town_path)
    settings.FIREGRID_ROAD_SPEEDS_KPH = {**settings.FIREGRID_ROAD_SPEEDS_KPH, "residential": 10}
    slower = load_road_graph(town_path)
    assert slower.report.from_cache is False
    oneway = next(data for u, v, data in slower.graph.edges(data=True) if data.get("name") == "中山路")
    assert oneway["speed_kph"] == 10.0


def test_bz2_and_pbf_load(town_path, tmp_path):
    osmium = pytest.importorskip("osmium", reason="PBF files need pyosmium (PyPI package osmium)")

    compressed = tmp_path / "town.osm.bz2"
    compressed.write_bytes(bz2.compress(town_path.read_bytes()))
    pbf = tmp_path / "town.osm.pbf"
    with osmium.SimpleWriter(str(pbf)) as writer:
        for element in osmium.FileProcessor(str(town_path)):
            if element.is_node():
                writer.add_node(element)
            elif element.is_way():
                writer.add_way(element)
    for path in (compressed, pbf):
        road_graph = load_road_graph(path)
        assert sorted(road_graph.graph.nodes) == [4, 6, 9, 10]
        assert road_graph.graph.number_of_edges() == 9


@pytest.mark.parametrize("compress", [False, True])
def test_xml_reader_matches_osmium(town_path, tmp_path, settings, compress):
    pytest.importorskip("osmium", reason="the comparison needs pyosmium (PyPI package osmium)")
    path = town_path
    if compress:
        path = tmp_path / "town.osm.bz2"
        path.write_bytes(bz2.compress(town_path.read_bytes()))
    speeds = settings.FIREGRID_ROAD_SPEEDS_KPH
    by_osmium, by_xml = LoadReport(path="", sha256=""), LoadReport(path="", sha256="")
    nodes_osmium, ways_osmium = read_osm_roads(path, speeds, by_osmium, reader="osmium")
    nodes_xml, ways_xml = read_osm_roads(path, speeds, by_xml, reader="xml")
    assert ways_xml == ways_osmium
    # pyosmium stores coordinates as integers of 1e-7 degrees.
    assert {key: (round(lat, 7), round(lng, 7)) for key, (lat, lng) in nodes_xml.items()} == \
        {key: (round(lat, 7), round(lng, 7)) for key, (lat, lng) in nodes_osmium.items()}
    assert by_xml == by_osmium


def test_xml_reader_rejects_pbf(tmp_path, settings):
    with pytest.raises(RoadFileError, match="需要 Python 包 osmium"):
        read_osm_roads(tmp_path / "roads.osm.pbf", settings.FIREGRID_ROAD_SPEEDS_KPH,
                       LoadReport(path="", sha256=""), reader="xml")


def test_xml_reader_rejects_broken_file(tmp_path, settings):
    path = tmp_path / "broken.osm"
    path.write_text('<osm version="0.6"><node id="1" lat="22.69"')
    with pytest.raises(RoadFileError, match="无法读取路网文件"):
        read_osm_roads(path, settings.FIREGRID_ROAD_SPEEDS_KPH, LoadReport(path="", sha256=""), reader="xml")


def test_missing_file_rejected(tmp_path):
    with pytest.raises(RoadFileError, match="不存在"):
        load_road_graph(tmp_path / "absent.osm")


def test_unknown_suffix_rejected(tmp_path):
    path = tmp_path / "roads.geojson"
    path.write_text("{}")
    with pytest.raises(RoadFileError, match=r"\.osm、\.osm\.bz2 或 \.osm\.pbf"):
        load_road_graph(path)


def test_broken_xml_rejected(tmp_path):
    path = tmp_path / "broken.osm"
    path.write_text('<osm version="0.6"><node id="1" lat="22.69"')
    with pytest.raises(RoadFileError, match="无法读取路网文件"):
        load_road_graph(path)


def test_file_without_roads_rejected(tmp_path):
    path = tmp_path / "paths.osm"
    path.write_text('<osm version="0.6"><node id="1" lat="22.69" lon="114.2"/><node id="2" lat="22.691" lon="114.2"/>'
                    '<way id="5"><nd ref="1"/><nd ref="2"/><tag k="highway" v="footway"/></way></osm>')
    with pytest.raises(RoadFileError, match="没有可用的道路"):
        load_road_graph(path)


def test_invalid_speed_setting(town_path, settings):
    settings.FIREGRID_ROAD_SPEEDS_KPH = {"residential": 0}
    with pytest.raises(RoadFileError, match="residential"):
        load_road_graph(town_path)


@pytest.mark.parametrize("value, expected", [
    ("50", 50.0), ("30 mph", 48.28032), ("CN:urban", None), ("none", None), (["40", "60"], 40.0), (None, None),
])
def test_maxspeed_parsing(value, expected):
    if expected is None:
        assert parse_maxspeed_kph(value) is None
    else:
        assert parse_maxspeed_kph(value) == pytest.approx(expected)


def test_snap_picks_nearer_node(town_path):
    road_graph = load_road_graph(town_path)
    # 0.0002 degrees (22.2 m) north of node 10, where 断头路 ends, and a point 1 km away.
    near, far = snap_points(road_graph, [22.6932, 22.7000], [114.2020, 114.2100])
    assert near.node == 10
    assert near.distance_m == pytest.approx(22.2, abs=0.2)
    assert far.distance_m > 700


@pytest.mark.django_db
def test_load_roads_command(town_path, capsys):
    call_command("load_roads", str(town_path))
    output = capsys.readouterr().out
    assert "读取道路(way) 12 条,保留 8 条。" in output
    assert "因道路等级不在车速表中而舍弃:(none) 1, footway 1" in output
    assert "与主路网不连通(按单行道方向)而舍弃的部分 3 个:节点 5 个,路段 5 条" in output
    assert "来自缓存:否" in output
    call_command("load_roads", str(town_path))
    assert "来自缓存:是" in capsys.readouterr().out


@pytest.mark.django_db
def test_load_roads_command_error(tmp_path):
    with pytest.raises(CommandError, match="absent.osm 不存在"):
        call_command("load_roads", str(tmp_path / "absent.osm"))


# A 5-stop asymmetric instance: stops 1..5 on a line east of the start, 60 s apart.
LINE_TIMES = np.array([[abs(i - j) * 60.0 + (5.0 if j < i else 0.0) for j in range(6)] for i in range(6)])


def test_orienteering_visits_all_when_budget_allows():
    tour = solve_orienteering(LINE_TIMES, [0] + [60] * 5, [0] + [1] * 5, budget_s=3600, time_limit_s=0.5)
    assert sorted(tour.order) == [1, 2, 3, 4, 5]
    assert tour.order == [1, 2, 3, 4, 5]
    # 300 s out, 305 s back in one westward arc, 5 stops of 60 s.
    assert tour.time_s == pytest.approx(905.0)
    assert tour.value == 5


def test_orienteering_prefers_value_within_budget():
    values = [0, 1, 1, 1, 1, 10]
    # Going to stop 5 and back takes 605 s, and the stops on the way cost no extra
    # time because their service time is 0.
    tour = solve_orienteering(LINE_TIMES, [0] + [0] * 5, values, budget_s=700, time_limit_s=0.5)
    assert 5 in tour.order
    assert tour.value == 14
    assert tour.time_s <= 700


def test_orienteering_drops_low_value_when_tight():
    values = [0, 1, 1, 1, 1, 10]
    # Stop 5 with its 60 s of service takes 665 s; any stop on the way adds 60 s more.
    tour = solve_orienteering(LINE_TIMES, [0] + [60] * 5, values, budget_s=700, time_limit_s=0.5)
    assert tour.order == [5]
    assert tour.value == 10
    assert tour.time_s == pytest.approx(665.0)


def test_heuristic_matches_on_line():
    order = heuristic_order(LINE_TIMES, [0] + [60] * 5, [0] + [1] * 5, budget_s=3600)
    assert order == [1, 2, 3, 4, 5]


def test_heuristic_respects_budget():
    order = heuristic_order(LINE_TIMES, [0] + [60] * 5, [0] + [1] * 5, budget_s=400)
    assert tour_time(order, LINE_TIMES, [0] + [60] * 5) <= 400
    assert order == [1, 2]


def test_nearest_neighbour_baseline():
    cost = np.array([[0, 1, 5, 9], [1, 0, 1, 20], [5, 1, 0, 1], [9, 20, 1, 0]], dtype=float)
    order = nearest_neighbour_order(cost)
    assert order == [1, 2, 3]
    assert tour_cost(order, cost) == 12


def test_open_tour_ends_at_last_stop():
    tour = solve_orienteering(LINE_TIMES, [0] * 6, [0] + [1] * 5, budget_s=300, time_limit_s=0.5,
                              return_to_start=False)
    assert tour.order == [1, 2, 3, 4, 5]
    assert tour.time_s == pytest.approx(300.0)


def test_empty_instance():
    tour = solve_orienteering(np.zeros((1, 1)), [0], [0], budget_s=60)
    assert tour.order == []
    assert tour.solver == "none"
