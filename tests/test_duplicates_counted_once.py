"""A duplicate report of one hazard counts once in hotspots and on the map."""
import datetime

import h3
import pytest
from django.contrib.gis.geos import Point

from spatial.analysis.hotspots import build_query, count_tickets_by_cell
from spatial.models import Ticket
from tests.test_webmap import page, planner_client  # noqa: F401

LAT, LNG = 23.96, 109.68
RECEIVED = datetime.datetime(2024, 3, 5, 6, 30, tzinfo=datetime.timezone.utc)


def make_ticket(number, duplicate_of=None):
    cell = h3.str_to_int(h3.latlng_to_cell(LAT, LNG, 9))
    return Ticket.objects.create(
        source_system="test", external_id=number, received_at=RECEIVED, location=Point(LNG, LAT, srid=4326),
        h3_fine=cell, h3_coarse=h3.str_to_int(h3.cell_to_parent(h3.int_to_str(cell), 7)),
        duplicate_of=duplicate_of,
    )


@pytest.mark.django_db
def test_hotspot_counts_skip_duplicates():
    first = make_ticket("D1")
    make_ticket("D2", duplicate_of=first)
    make_ticket("D3")

    counts, _without_cell = count_tickets_by_cell(build_query())

    assert list(counts.values()) == [2]


@pytest.mark.django_db
def test_map_summary_skips_duplicates(planner_client):  # noqa: F811
    first = make_ticket("D1")
    make_ticket("D2", duplicate_of=first)

    html = page(planner_client).content.decode()

    assert "符合条件的工单 1 件" in html
