"""Weekly and monthly reports: the same figures as the dashboard, in PDF and XLSX."""
import io
from io import StringIO

import pytest
from django.core.management import CommandError, call_command
from django.test import Client
from openpyxl import load_workbook

from gridmap import kpi, reports
from tests.test_gridmap_support import make_user
from tests.test_kpi_support import build_kpi_world


def dashboard_figures(period_key):
    client = Client()
    client.force_login(make_user("leader_" + period_key.replace("-", ""), "leader"))
    return client, client.get(f"/dashboard/?period={period_key}").context["figures"]


@pytest.mark.django_db
def test_xlsx_report_has_the_dashboards_figures():
    build_kpi_world()
    client, figures = dashboard_figures("2026-03")
    response = client.get("/dashboard/report.xlsx?period=2026-03")
    assert response.status_code == 200
    assert response["Content-Disposition"] == 'attachment; filename="firegrid-report-2026-03.xlsx"'
    book = load_workbook(io.BytesIO(response.content))
    assert book.sheetnames == ["考核指标", "部门排名", "网格排名", "趋势", "超期工单"]
    sheet = book["考核指标"]
    assert sheet["A1"].value == "消防安全工单督办报告 · 2026年3月"
    kpi_rows = list(sheet.iter_rows(min_row=5, values_only=True))
    assert len(kpi_rows) == len(kpi.KPIS)
    for cells, row in zip(kpi_rows, figures["kpis"]):
        assert cells[1] == row["label"]
        assert cells[3] == row["text"]
        assert cells[10] == row["definition"]
        assert cells[2] == (pytest.approx(row["value"]) if row["value"] is not None else None)
        assert (cells[4], cells[5], cells[6], cells[7]) == (row["hits"], row["base"], row["baseline"], row["target"])
    ranking = list(book["部门排名"].iter_rows(min_row=2, values_only=True))
    assert [(cells[0], cells[1], cells[2]) for cells in ranking] == [
        (row["rank"], row["name"], row["tickets"]) for row in figures["departments"]]
    assert [cells[5] for cells in ranking] == [pytest.approx(row["on_time_rate"]) for row in figures["departments"]]
    trend = list(book["趋势"].iter_rows(min_row=2, values_only=True))
    assert [cells[0] for cells in trend] == figures["trend"]["periods"]
    assert trend[-1][1] == pytest.approx(figures["trend"]["series"]["mean_close_days"][-1])
    overdue = list(book["超期工单"].iter_rows(values_only=True))
    assert overdue[0][:2] == ("超期未办结", figures["overdue"]["total"])
    assert [cells[0] for cells in overdue[2:]] == [item["number"] for item in figures["overdue"]["items"]]


@pytest.mark.django_db
def test_pdf_report_a4_with_chinese_font():
    """The PDF report is an A4 document with the Chinese font embedded."""
    build_kpi_world()
    client, figures = dashboard_figures("2026-03")
    response = client.get("/dashboard/report.pdf?period=2026-03")
    assert response.status_code == 200
    assert response["Content-Type"] == "application/pdf"
    data = response.content
    assert data.startswith(b"%PDF-")
    assert data.rstrip().endswith(b"%%EOF")
    assert b"WenQuanYi" in data
    assert b"/MediaBox [ 0 0 595.2756 841.8898 ]" in data
    pypdf = pytest.importorskip("pypdf", reason="pypdf reads the PDF's text back; without it only the format is checked")
    text = "".join(page.extract_text() for page in pypdf.PdfReader(io.BytesIO(data)).pages)
    for row in figures["kpis"]:
        assert row["text"] in text


@pytest.mark.django_db
def test_build_report_command_writes_both_files(tmp_path):
    build_kpi_world()
    out = StringIO()
    call_command("build_report", "--period", "2026-03", "--out", str(tmp_path), stdout=out)
    assert out.getvalue().split() == [str(tmp_path / "firegrid-report-2026-03.pdf"),
                                      str(tmp_path / "firegrid-report-2026-03.xlsx")]
    assert (tmp_path / "firegrid-report-2026-03.pdf").read_bytes().startswith(b"%PDF-")
    assert not list(tmp_path.glob("*.part"))
    with pytest.raises(CommandError, match="报告格式 “doc” 无效"):
        call_command("build_report", "--period", "2026-03", "--format", "doc", "--out", str(tmp_path))
    with pytest.raises(CommandError, match="周期 “MARCH” 无效"):
        call_command("build_report", "--period", "march", "--out", str(tmp_path))


@pytest.mark.django_db
def test_missing_font_is_a_clear_error(settings, tmp_path):
    settings.FIREGRID_REPORT_FONT = str(tmp_path / "none.ttf")
    with pytest.raises(reports.ReportError, match="找不到中文字体"):
        reports.build_pdf(reports.collect(kpi.parse_period("2026-03")))


def test_previous_period_week_and_month():
    """The previous period is the last complete week or month."""
    import datetime
    from zoneinfo import ZoneInfo
    now = datetime.datetime(2026, 3, 4, 8, 0, tzinfo=ZoneInfo("Asia/Shanghai"))
    assert reports.previous_period("month", now).key == "2026-02"
    assert reports.previous_period("week", now).key == "2026-W09"
