"""KPIs and a reproduced draw on the real San Francisco 311 sample (10,000 requests).

Deadline rule stated for this data, which has none of its own: every
request is due 3 calendar days after it was received, and the milestone is
met when it was closed. Each agency becomes a department. The figures are
printed (run with ``-s`` to see them) and checked against a Python loop
over the same rows.
"""
import datetime
import statistics
from io import StringIO

import pytest
from django.core.management import call_command
from django.db import connection
from django.utils import timezone
from django.utils.text import slugify

from gridmap import kpi, reinspection
from gridmap.models import Department
from spatial.intake import import_file
from spatial.models import Ticket
from tests.test_gridmap_support import make_user

DUE_DAYS = 3


def load_sf(shared_data, tmp_path):
    # 17 rows close before they open; the import rejects them into a file.
    import_file(shared_data / "sf" / "311_service_requests.csv", profile_name="sf311", progress=False,
                rejects_path=tmp_path / "rejects.csv")
    agencies = sorted(set(Ticket.objects.values_list("department", flat=True)) - {""})
    for index, agency in enumerate(agencies):
        department = Department.objects.create(code=f"sf-{index}-{slugify(agency)[:20]}", name=agency)
        department.members.add(make_user(f"sf_handler_{index}", "handler"))
    with connection.cursor() as cursor:
        cursor.execute("""
            INSERT INTO gridmap_tickethandling (ticket_id, lead_id, in_dispatch_queue, milestone, started_at, due_at,
                met_at, card, escalation_level, reply_text, red_explanation, version, updated_at)
            SELECT t.id, d.id, false, 'rectified', t.received_at, t.received_at + make_interval(days => %s),
                   t.closed_at, '', 0, '', '', 0, now()
            FROM spatial_ticket t LEFT JOIN gridmap_department d ON d.name = t.department
        """, [DUE_DAYS])


@pytest.mark.django_db
def test_kpis_on_the_sf_sample_match_a_python_loop(shared_data, tmp_path):
    load_sf(shared_data, tmp_path)
    years = [day.year for day in Ticket.objects.dates("received_at", "year")]
    due_after = datetime.timedelta(days=DUE_DAYS)
    now = timezone.now()
    print(f"\nSF 311 sample, deadline {DUE_DAYS} calendar days after receipt, met at closure:")
    for year in years:
        period = kpi.parse_period(str(year))
        figures = kpi.compute(period)
        closed = Ticket.objects.filter(closed_at__gte=period.start, closed_at__lt=period.end)
        days = [(c - r).total_seconds() / 86400 for r, c in closed.values_list("received_at", "closed_at")]
        received = Ticket.objects.filter(received_at__gte=period.start, received_at__lt=period.end)
        rows = received.values_list("received_at", "closed_at")
        counted = [(r, c) for r, c in rows if c is not None or r + due_after <= now]
        on_time = sum(1 for r, c in counted if c is not None and c <= r + due_after)
        if days:
            assert figures["mean_close_days"]["value"] == pytest.approx(statistics.fmean(days), rel=1e-9)
            assert figures["median_close_days"]["value"] == pytest.approx(statistics.median(days), rel=1e-9)
        assert (figures["on_time_rate"]["hits"], figures["on_time_rate"]["base"]) == (on_time, len(counted))
        print(f"  {period.key}: {figures['mean_close_days']['base']:>5} closed, mean "
              f"{kpi.format_value('mean_close_days', figures['mean_close_days']['value'])}, median "
              f"{kpi.format_value('median_close_days', figures['median_close_days']['value'])}; on time "
              f"{kpi.format_value('on_time_rate', figures['on_time_rate']['value'])} "
              f"({figures['on_time_rate']['hits']}/{figures['on_time_rate']['base']})")


@pytest.mark.django_db
def test_a_draw_on_the_sf_sample_is_reproduced(shared_data, tmp_path):
    load_sf(shared_data, tmp_path)
    make_user("sf_inspector_a", "grid_head")
    make_user("sf_inspector_b", "grid_head")
    busiest = (Ticket.objects.filter(closed_at__isnull=False).dates("closed_at", "year").order_by("-closed_at")
               .first())
    period_key = str(busiest.year)
    out = StringIO()
    call_command("draw_reinspections", "--period", period_key, "--seed", "20261204", stdout=out)
    replay = StringIO()
    call_command("draw_reinspections", "--period", period_key, "--replay", stdout=replay)
    record = reinspection.ReinspectionDraw.objects.get(period=period_key)
    assert record.sample == -(-record.population // 10)
    assert "复现一致" in replay.getvalue()
    print(f"\nSF draw {period_key}: {record.population} closed, {record.sample} drawn with seed {record.seed}; "
          f"first rows:\n" + "\n".join(out.getvalue().splitlines()[:5]))
