"""The double random draw, its replay, results, reopening and the public page."""
import math
from io import StringIO

import numpy as np
import pytest
from django.core.files.uploadedfile import SimpleUploadedFile
from django.core.management import CommandError, call_command
from django.test import Client

from gridmap import kpi, reinspection
from gridmap.models import Department, TicketEvent
from gridmap.supervision import Reinspection, ReinspectionDraw
from spatial.models import Ticket
from tests.test_gridmap_support import make_user
from tests.test_kpi_support import build_kpi_world

PNG = (b"\x89PNG\r\n\x1a\n\x00\x00\x00\rIHDR\x00\x00\x00\x01\x00\x00\x00\x01\x08\x06\x00\x00\x00\x1f\x15\xc4\x89"
       b"\x00\x00\x00\rIDATx\x9cc\xf8\xff\xff?\x00\x05\xfe\x02\xfe\xa7V\xbd\xfa\x00\x00\x00\x00IEND\xaeB`\x82")
MARCH = kpi.parse_period("2026-03")


def photo(name="site.png"):
    return SimpleUploadedFile(name, PNG, content_type="image/png")


def build_staff(units):
    """Fire handler, housing handler, head of grid A and two independent inspectors."""
    fire_handler = make_user("fire_handler", "handler")
    Department.objects.get(code="fire").members.add(fire_handler)
    housing_handler = make_user("housing_handler", "handler")
    Department.objects.get(code="housing").members.add(housing_handler)
    head_a = make_user("head_a", "grid_head")
    units["A"].head = head_a
    units["A"].save()
    return {"fire": fire_handler, "housing": housing_handler, "head_a": head_a,
            "free1": make_user("free1", "handler"), "free2": make_user("free2", "grid_head")}


@pytest.mark.django_db
def test_draw_sample_size_and_inspectors():
    """The draw takes ten percent rounded up and never picks a handler as inspector."""
    units, tickets = build_kpi_world()
    staff = build_staff(units)
    record = reinspection.draw(MARCH, seed=11, rate=1.0)
    assert (record.population, record.sample) == (7, 7)
    by_ticket = {row.ticket.external_id: row for row in record.reinspections.select_related("ticket", "inspector")}
    assert set(by_ticket) == {"T1", "T2", "T3", "T4", "T5", "H1", "H2"}
    for number, row in by_ticket.items():
        forbidden = {"fire_handler", "head_a"} if number.startswith("T") else {"housing_handler"}
        assert row.inspector.username not in forbidden, number
    # Only T1 has a repeat within 30 days of its closure (T6).
    assert {number for number, row in by_ticket.items() if row.suspected_fake} == {"T1"}
    assert by_ticket["H1"].department.code == "housing"
    assert record.population_ids == [[tickets[n].pk, int(n == "T1")] for n in ("T1", "T2", "T3", "T4", "T5", "H1",
                                                                                "H2")]
    assert record.inspector_ids == sorted(user.pk for user in staff.values())


@pytest.mark.django_db
def test_draw_is_reproducible_and_matches_numpy_directly():
    units, tickets = build_kpi_world()
    build_staff(units)
    record = reinspection.draw(MARCH, seed=2026, rate=0.3, fake_weight=3.0)
    assert record.sample == math.ceil(0.3 * 7) == 3
    same, rows = reinspection.replay_draw(record)
    assert same and len(rows) == 3
    # The ticket choice computed independently with numpy from the stored inputs.
    weights = np.array([3.0 if fake else 1.0 for _pk, fake in record.population_ids])
    chosen = np.random.default_rng(2026).choice(7, size=3, replace=False, p=weights / weights.sum())
    assert [row[0] for row in rows] == [record.population_ids[i][0] for i in chosen]


@pytest.mark.django_db
def test_suspected_tickets_weigh_more():
    units, tickets = build_kpi_world()
    build_staff(units)
    hits = 0
    for seed in range(200):
        population = [(ticket_id, fake) for ticket_id, fake in
                      [(tickets[n].pk, int(n == "T1")) for n in ("T1", "T2", "T3", "T4", "T5", "H1", "H2")]]
        drawn = reinspection.run_algorithm(seed, population, 0.1, 5.0, [1], {})
        hits += drawn[0][0] == tickets["T1"].pk
    # Weight 5 among six weights of 1: P(T1) = 5/11, about 91 of 200 draws (binomial sd 7).
    assert 65 <= hits <= 117


@pytest.mark.django_db
def test_draw_once_rejects_bad_input():
    """A period is drawn once, and bad input is rejected."""
    units, _tickets = build_kpi_world()
    build_staff(units)
    reinspection.draw(MARCH, seed=1)
    with pytest.raises(reinspection.ReinspectionError, match=r"周期 2026-03 已于 .* 抽取过\(随机种子 1\),不能重抽"):
        reinspection.draw(MARCH, seed=2)
    with pytest.raises(reinspection.ReinspectionError, match="周期 2026-04 没有已办结的工单"):
        reinspection.draw(kpi.parse_period("2026-04"), seed=1)
    with pytest.raises(reinspection.ReinspectionError, match="抽取比例 1.5 无效"):
        reinspection.draw(kpi.parse_period("2026-05"), seed=1, rate=1.5)
    assert ReinspectionDraw.objects.count() == 1


@pytest.mark.django_db
def test_draw_without_eligible_inspector():
    """No eligible inspector raises a clear error and stores nothing."""
    build_kpi_world()
    with pytest.raises(reinspection.ReinspectionError, match="没有可抽取的复查人员"):
        reinspection.draw(MARCH, seed=1)
    assert not ReinspectionDraw.objects.exists()


@pytest.mark.django_db
def test_command_draws_prints_and_replays():
    units, _tickets = build_kpi_world()
    build_staff(units)
    out = StringIO()
    call_command("draw_reinspections", "--period", "2026-03", "--seed", "42", stdout=out)
    assert "周期 2026-03:办结 7 件,抽取 1 件,随机种子 42。" in out.getvalue()
    replay = StringIO()
    call_command("draw_reinspections", "--period", "2026-03", "--replay", stdout=replay)
    assert "复现一致:周期 2026-03,随机种子 42,1 件。" in replay.getvalue()
    assert out.getvalue().splitlines()[0] == replay.getvalue().splitlines()[0]
    with pytest.raises(CommandError, match="周期 “2026-3X” 无效"):
        call_command("draw_reinspections", "--period", "2026-3x", "--seed", "1")


@pytest.mark.django_db
def test_failed_reinspection_reopens_ticket():
    """A failed reinspection reopens the ticket and counts against the department."""
    units, tickets = build_kpi_world()
    staff = build_staff(units)
    record = reinspection.draw(MARCH, seed=5, rate=1.0)
    t2 = record.reinspections.get(ticket=tickets["T2"])
    h1 = record.reinspections.get(ticket=tickets["H1"])
    with pytest.raises(reinspection.ReinspectionError, match="只有抽中的复查人员"):
        reinspection.record_result(t2, staff["fire"], "failed", "通道仍被堵", [photo()])
    with pytest.raises(reinspection.ReinspectionError, match="须上传至少一张现场照片"):
        reinspection.record_result(t2, t2.inspector, "failed", "通道仍被堵", [])
    with pytest.raises(reinspection.ReinspectionError, match="须填写说明"):
        reinspection.record_result(t2, t2.inspector, "failed", " ", [photo()])
    reinspection.record_result(t2, t2.inspector, "failed", "通道仍被堵", [photo()])
    reinspection.record_result(h1, h1.inspector, "passed", "", [photo()])
    t2.refresh_from_db()
    assert (t2.result, t2.reopened, t2.photos.count()) == ("failed", True, 1)
    ticket = Ticket.objects.get(pk=tickets["T2"].pk)
    assert (ticket.status, ticket.closed_at) == ("reopened", None)
    event = TicketEvent.objects.filter(ticket=ticket).latest("at")
    assert (event.from_status, event.to_status, event.data) == ("closed", "reopened", {"reinspection": t2.pk})
    with pytest.raises(reinspection.ReinspectionError, match="复查结果已于 .* 登记,不能修改"):
        reinspection.record_result(t2, t2.inspector, "passed", "", [photo()])
    # The reopened ticket still counts in March's pass rate, against fire.
    grouped = kpi.compute_grouped(MARCH, "department")
    fire, housing = Department.objects.get(code="fire").pk, Department.objects.get(code="housing").pk
    assert (grouped[fire]["reinspection_pass_rate"]["hits"], grouped[fire]["reinspection_pass_rate"]["base"]) == (0, 1)
    assert grouped[housing]["reinspection_pass_rate"]["value"] == 1.0
    assert kpi.compute(MARCH)["reinspection_pass_rate"]["value"] == 0.5


@pytest.mark.django_db
def test_public_page_shows_results_without_personal_data():
    units, tickets = build_kpi_world()
    build_staff(units)
    record = reinspection.draw(MARCH, seed=5, rate=1.0)
    row = record.reinspections.get(ticket=tickets["T1"])
    reinspection.record_result(row, row.inspector, "passed", "<b>已清理</b>", [photo()])
    page = Client().get("/public/reinspections/?period=2026-03")
    assert page.status_code == 200
    html = page.content.decode()
    assert "2026年3月" in html
    assert "T1" in html
    assert "整改属实" in html
    assert "疑似虚假整改" in html
    for secret in ("李四", "13812345678", "5678", row.inspector.username, "已清理"):
        assert secret not in html
    assert Client().get("/public/reinspections/?period=2026-13").status_code == 400
    assert "本周期尚无复查抽取" in Client().get("/public/reinspections/?period=2026-04").content.decode()


@pytest.mark.django_db
def test_inspector_records_a_result_through_the_page():
    units, tickets = build_kpi_world()
    staff = build_staff(units)
    record = reinspection.draw(MARCH, seed=5, rate=1.0)
    row = record.reinspections.get(ticket=tickets["T4"])
    inspector = Client()
    inspector.force_login(row.inspector)
    listing = inspector.get("/supervision/reinspections/")
    assert listing.status_code == 200
    assert "T4" in listing.content.decode()
    intruder = Client()
    intruder.force_login(staff["fire"])
    assert intruder.get(f"/supervision/reinspections/{row.pk}/").status_code == 404
    bad = inspector.post(f"/supervision/reinspections/{row.pk}/", {"result": "failed", "note": ""})
    assert bad.status_code == 400
    assert "须上传至少一张现场照片" in bad.content.decode()
    done = inspector.post(f"/supervision/reinspections/{row.pk}/",
                          {"result": "failed", "note": "仍有飞线充电", "photos": [photo()]})
    assert done.status_code == 302
    assert Ticket.objects.get(pk=tickets["T4"].pk).status == "reopened"
