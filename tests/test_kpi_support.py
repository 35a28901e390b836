"""A small world of closed and open tickets whose KPIs are worked out by hand in the tests."""
import datetime

from django.core.cache import cache

from gridmap.models import GridPlacement, TicketHandling
from gridmap.supervision import Callback, CitizenRating
from spatial.models import Ticket
from tests.test_gridmap_support import at, build_grid, department, make_user

DAY = datetime.timedelta(days=1)


def ticket(number, received, *, closed_days=None, source="hotline", lead="fire", unit=None, due_days=None,
           met_days=None, repeat_of=None, fake=False, duplicate_of=None, phone="13812345678"):
    """Create one ticket with its handling and placement; times in days after ``received``."""
    closed = received + closed_days * DAY if closed_days is not None else None
    created = Ticket.objects.create(
        source_system="test", external_id=number, received_at=received, closed_at=closed,
        status="closed" if closed else "dispatched", source=source, category="fire_lane", address="测试路1号",
        complainant_name="李四", complainant_phone=phone, repeat_of=repeat_of, duplicate_of=duplicate_of,
        suspected_fake_rectification=fake)
    TicketHandling.objects.create(
        ticket=created, lead=department(lead) if lead else None,
        due_at=received + due_days * DAY if due_days is not None else None,
        met_at=received + met_days * DAY if met_days is not None else None, milestone="rectified")
    if unit is not None:
        GridPlacement.objects.create(ticket=created, unit=unit, method="contained", distance_m=0)
    return created


def build_kpi_world():
    """March 2026: six fire tickets in community A (two in building A-1), three housing tickets in B.

    Closing times (days): T1 2, T2 4, T3 9, T4 1, T5 6, H1 3, H2 5; T6 and H3 open.
    """
    # The dashboard caches past trend points; each test builds its own world.
    cache.clear()
    units = build_grid()
    staff = make_user("callback_staff", "admin")
    march = at(2026, 3, 2, 9, 0)
    tickets = {
        "T1": ticket("T1", march, closed_days=2, unit=units["A"], due_days=3, met_days=2),
        "T2": ticket("T2", march + DAY, closed_days=4, unit=units["A-1"], due_days=3, met_days=4),
        "T3": ticket("T3", march + 2 * DAY, closed_days=9, unit=units["A"], source="iot", due_days=5, met_days=5),
        "T4": ticket("T4", march + 3 * DAY, closed_days=1, unit=units["A-1"], source="inspection", due_days=2,
                     met_days=1),
        "T5": ticket("T5", march + 4 * DAY, closed_days=6, unit=units["A"], due_days=5, met_days=6),
        "H1": ticket("H1", march, closed_days=3, lead="housing", unit=units["B"], due_days=5, met_days=3),
        "H2": ticket("H2", march + DAY, closed_days=5, lead="housing", unit=units["B"], source="inspection",
                     due_days=5, met_days=5),
    }
    tickets["T6"] = ticket("T6", march + 5 * DAY, unit=units["A"], repeat_of=tickets["T1"], fake=True,
                           due_days=3)
    tickets["H3"] = ticket("H3", march + 6 * DAY, lead="housing", unit=units["B"], repeat_of=tickets["H1"],
                           due_days=50)
    # A duplicate of T6, left out of the repeat and proactive rates.
    tickets["D1"] = ticket("D1", march + 5 * DAY, unit=units["A"], duplicate_of=tickets["T6"], source="iot")
    for number, score in (("T1", 5), ("T2", 3), ("T3", 4), ("H1", 2)):
        CitizenRating.objects.create(ticket=tickets[number], score=score, comment="")
    for number, outcome in (("T1", "positive"), ("T2", "negative"), ("T4", "unreached"), ("H1", "positive"),
                            ("H2", "neutral")):
        Callback.objects.create(ticket=tickets[number], staff=staff, called_at=at(2026, 3, 25, 10, 0),
                                outcome=outcome)
    return units, tickets
