"""Small builders shared by the gridmap, workflow, Open311 and lookup tests."""
import datetime
from pathlib import Path
from zoneinfo import ZoneInfo

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
        user.groups.add(Group.objects.get(name=str(role)))
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
    return Department.objects.get(code=code)
