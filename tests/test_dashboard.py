"""The leaders' dashboard: who may open it, what it shows, the drill-down and the targets form."""
import pytest
from django.test import Client

from gridmap import kpi, reinspection
from gridmap.models import Card, Department, TicketHandling
from gridmap.supervision import KpiTarget
from tests.test_gridmap_support import at, make_user
from tests.test_kpi_support import build_kpi_world
from webmap import dashboard


def logged_in(*roles, name="user"):
    client = Client()
    client.force_login(make_user(name, *roles))
    return client


@pytest.mark.django_db
def test_only_leaders_and_administrators_open_the_dashboard():
    build_kpi_world()
    assert Client().get("/dashboard/").status_code == 302
    for role in ("planner", "grid_head", "handler"):
        assert logged_in(role, name=role).get("/dashboard/?period=2026-03").status_code == 403, role
        assert logged_in(role, name=role + "2").get("/dashboard/report.xlsx?period=2026-03").status_code == 403
        assert logged_in(role, name=role + "3").get(
            "/supervision/kpi/repeat_rate/tickets/?period=2026-03").status_code == 403
    assert logged_in("leader").get("/dashboard/?period=2026-03").status_code == 200
    assert logged_in("admin", name="boss").get("/dashboard/").status_code == 200


@pytest.mark.django_db
def test_dashboard_shows_kpis_targets_rankings_overdue_and_charts():
    _units, tickets = build_kpi_world()
    TicketHandling.objects.filter(ticket=tickets["T6"]).update(card=Card.RED, carded_at=at(2026, 3, 20, 9, 0))
    Department.objects.filter(code="housing").update(name="住建<b>局</b>")
    page = logged_in("leader").get("/dashboard/?period=2026-03")
    html = page.content.decode()
    figures = page.context["figures"]
    by_code = {row["code"]: row for row in figures["kpis"]}
    assert by_code["mean_close_days"]["text"] == "4.29 天"
    assert by_code["repeat_rate"]["text"] == "22.2%"
    assert (by_code["proactive_rate"]["baseline"], by_code["proactive_rate"]["target"]) == (0.65, 0.90)
    # 4.29 days is (7.2 - 4.29) / (7.2 - 3.5) = 78.6% of the way to the target.
    assert by_code["mean_close_days"]["progress"] == pytest.approx((7.2 - 30 / 7) / 3.7)
    assert "领导驾驶舱 · 2026年3月" in html
    assert "口径" in html
    assert "本期受理的工单(不含重复登记)中,来自物联网告警和网格巡查的比例。" in html
    assert "/supervision/kpi/proactive_rate/tickets/?period=2026-03" in html
    # Ranked by on-time rate: housing 2/3, fire 3/6.
    assert [row["name"] for row in figures["departments"]] == ["住建<b>局</b>", "消防救援大队"]
    assert "住建&lt;b&gt;局&lt;/b&gt;" in html
    assert "住建<b>局</b>" not in html
    assert [row["name"] for row in figures["grid_units"]] == ["西社区", "东社区"]
    # T6 and H3 are open and past their deadlines (10 March and 27 April); T6 carries a red card.
    assert (figures["overdue"]["total"], figures["overdue"]["red"], figures["cards"]["red"]) == (2, 1, 1)
    assert [item["number"] for item in figures["overdue"]["items"]] == ["T6", "H3"]
    assert html.count('<svg class="chart line-chart"') == 5
    assert '<svg class="chart heatmap"' in html or "本期没有带坐标的工单" in html


@pytest.mark.django_db
def test_bad_period_is_a_clear_error():
    page = logged_in("leader").get("/dashboard/?period=2026-13")
    assert page.status_code == 400
    assert "周期 “2026-13” 无效" in page.content.decode()
    assert logged_in("leader", name="l2").get("/dashboard/?kind=decade").status_code == 400


@pytest.mark.django_db
def test_kpi_drill_down_lists_tickets():
    """The KPI drill-down lists the tickets behind a figure."""
    units, _tickets = build_kpi_world()
    client = logged_in("leader")
    page = client.get("/supervision/kpi/proactive_rate/tickets/?period=2026-03")
    assert page.status_code == 200
    rows = [(ticket.external_id, ticket.kpi_hit) for ticket in page.context["page"]]
    assert len(rows) == 9 and sum(hit for _n, hit in rows) == 3
    assert "33.3%" in page.content.decode()
    scoped = client.get(f"/supervision/kpi/on_time_rate/tickets/?period=2026-03&unit={units['B'].pk}")
    assert sorted(ticket.external_id for ticket in scoped.context["page"]) == ["H1", "H2", "H3"]
    assert client.get("/supervision/kpi/nope/tickets/?period=2026-03").status_code == 400
    assert client.get("/supervision/kpi/repeat_rate/tickets/?period=2026-03&unit=abc").status_code == 400
    assert client.get("/supervision/kpi/repeat_rate/tickets/?period=2026-03&department=99999").status_code == 400


@pytest.mark.django_db
def test_administrators_set_targets_and_leaders_cannot():
    admin = logged_in("admin", name="boss")
    response = admin.post("/dashboard/targets/", {"kpi": "repeat_rate", "baseline": "0.3", "target": "0.12"})
    assert response.status_code == 302
    assert kpi.targets()["repeat_rate"] == (0.3, 0.12)
    admin.post("/dashboard/targets/", {"kpi": "repeat_rate", "baseline": "30", "target": "12"})
    assert KpiTarget.objects.get(kpi="repeat_rate").baseline == 0.3
    assert logged_in("leader").post("/dashboard/targets/", {"kpi": "repeat_rate", "baseline": "0.5",
                                                            "target": "0.4"}).status_code == 403
    assert kpi.targets()["repeat_rate"] == (0.3, 0.12)


def test_charts_escape_labels_and_gaps():
    """Charts escape labels and leave gaps for missing values."""
    svg = dashboard.bar_chart("<t>", [("<script>", 0.5), ("无数据", None)], "rate")
    assert "<script>" not in svg
    assert "&lt;script&gt;" in svg
    assert "50%" in svg
    assert "无数据" not in svg
    line = dashboard.line_chart("趋势", ["1", "2", "3", "4"], [0.2, None, 0.4, 0.5], "rate", target=0.3)
    assert line.count("<polyline") == 2
    assert line.count("<circle") == 3
    assert "目标" in line


@pytest.mark.django_db
def test_heatmap_merges_cells_up_to_the_cell_limit():
    from gridmap.supervision import ReinspectionDraw  # noqa: F401  (models loaded)
    from spatial.models import Ticket
    import h3
    base = h3.latlng_to_cell(23.9, 109.6, 9)
    cells = list(h3.grid_disk(base, 3))
    for index, cell in enumerate(cells):
        Ticket.objects.create(source_system="test", external_id=f"H{index}", received_at=at(2026, 3, 5, 9, 0),
                              h3_fine=h3.str_to_int(cell))
    period = kpi.parse_period("2026-03")
    counts, resolution = dashboard.heat_cells(period)
    assert (len(counts), resolution, sum(counts.values())) == (len(cells), 9, len(cells))
    merged, coarser = dashboard.heat_cells(period, max_cells=5)
    assert coarser < 9
    assert len(merged) <= 5
    assert sum(merged.values()) == len(cells)
    assert dashboard.heatmap_svg(counts).count("<polygon") == len(cells)


@pytest.mark.django_db
def test_dashboard_shows_the_period_draw():
    units, _tickets = build_kpi_world()
    make_user("inspector", "grid_head")
    reinspection.draw(kpi.parse_period("2026-03"), seed=3, rate=0.5)
    html = logged_in("leader").get("/dashboard/?period=2026-03").content.decode()
    assert "随机种子 3" in html
    assert "随机抽取 4 件" in html
