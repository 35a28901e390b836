"""Small builders shared by the gridmap, workflow, Open311 and lookup tests."""
import datetime
import importlib
from pathlib import Path
from zoneinfo import ZoneInfo

import pytest

from django.contrib.auth import get_user_model
from django.contrib.auth.models import Group
from django.contrib.gis.geos import Point

from gridmap.gridimport import import_grid
from gridmap.models import Department, GridLevel, GridUnit
from spatial.models import Ticket

FIXTURES = Path(__file__).resolve().parent / "data" / "gridmap"
SHANGHAI = ZoneInfo("Asia/Shanghai")


def at(*args):
    """Return an aware datetime in Asia/Shanghai."""
    return datetime.datetime(*args, tzinfo=SHANGHAI)


def make_user(username, *roles, email=""):
    user = get_user_model().objects.create_user(username=username, password="pw-" + username, email=email)
    for role in roles:
        # get_or_create: a transactional test elsewhere in the suite may have flushed the seeded groups.
        user.groups.add(Group.objects.get_or_create(name=str(role))[0])
    return user


def build_grid():
    """Import the hand-made county, communities and buildings; return units by code."""
    import_grid(FIXTURES / "county.geojson", GridLevel.COUNTY)
    import_grid(FIXTURES / "communities.geojson", GridLevel.COMMUNITY)
    import_grid(FIXTURES / "buildings.geojson", GridLevel.BUILDING)
    return {unit.code: unit for unit in GridUnit.objects.all()}


def make_ticket(number, *, lng=None, lat=None, category="other", received_at=None, phone="13812345678",
                name="张三丰", description="", status="received"):
    return Ticket.objects.create(
        source_system="test", external_id=number, received_at=received_at or at(2026, 9, 30, 15, 0),
        category=category, location=Point(lng, lat, srid=4326) if lng is not None else None,
        complainant_phone=phone, complainant_name=name, description=description, address="测试路1号",
        status=status)


def department(code):
    """Return a seeded department, seeding again when a transactional test flushed the tables."""
    if not Department.objects.exists():
        seed_defaults()
    return Department.objects.get(code=code)


def seed_defaults():
    from django.apps import apps
    seed = importlib.import_module("gridmap.migrations.0003_event_trigger_and_defaults").seed
    seed(apps, None)


@pytest.fixture
def gridmap_seed():
    """Restore the migration-seeded groups and configuration if a transactional test elsewhere flushed them."""
    if not Department.objects.exists():
        seed_defaults()
    for name in ("planner", "grid_head", "handler", "leader", "admin"):
        Group.objects.get_or_create(name=name)
