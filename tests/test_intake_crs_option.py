"""The --crs option of import_tickets overrides a profile's coordinate system."""
import pytest
from django.core.management import CommandError, call_command

from spatial.models import Ticket

HEADER = "工单编号,受理时间,诉求内容,经度,纬度\n"


@pytest.mark.django_db
def test_crs_option_keeps_wgs84(tmp_path):
    export = tmp_path / "wgs84.csv"
    export.write_text(HEADER + "W1,2024-03-05 14:30,楼道堆放杂物,109.68,23.96\n", encoding="utf-8")

    call_command("import_tickets", str(export), "--profile", "12345", "--crs", "wgs84", "--no-progress")

    ticket = Ticket.objects.get(external_id="W1")
    assert ticket.orig_crs == "wgs84"
    assert ticket.location.x == pytest.approx(109.68, abs=1e-9)
    assert ticket.location.y == pytest.approx(23.96, abs=1e-9)


@pytest.mark.django_db
def test_crs_default_converts_gcj02(tmp_path):
    export = tmp_path / "gcj.csv"
    export.write_text(HEADER + "G1,2024-03-05 14:30,楼道堆放杂物,109.68,23.96\n", encoding="utf-8")

    call_command("import_tickets", str(export), "--profile", "12345", "--no-progress")

    ticket = Ticket.objects.get(external_id="G1")
    assert ticket.orig_crs == "gcj02"
    # GCJ-02 lies 300 to 600 m off WGS84 here; the stored point moved.
    assert abs(ticket.location.x - 109.68) > 1e-3


@pytest.mark.django_db
def test_crs_option_rejects_unknown(tmp_path):
    export = tmp_path / "x.csv"
    export.write_text(HEADER + "X1,2024-03-05 14:30,楼道,109.68,23.96\n", encoding="utf-8")

    with pytest.raises(CommandError, match="未知坐标系 mercator"):
        call_command("import_tickets", str(export), "--crs", "mercator", "--no-progress")
    assert not Ticket.objects.exists()
