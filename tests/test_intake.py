"""Import of hotline exports through ``import_tickets``: encodings, Excel, row checks, mappings, COPY.

Every export here is written by the test itself, except the hand-made
``tests/data/tickets_12345.xls`` (see ``tests/data/make_tickets_xls.py``).
The 12345 profile reads coordinates as GCJ-02 and the default study area
is Xiangzhou County, Guangxi (109.40,23.70,110.10,24.33).
"""
import csv
import datetime
import io
import json

import h3
import openpyxl
import pandas as pd
import prcoords
import pytest
from django.conf import settings
from django.core.management import call_command
from django.core.management.base import CommandError
from django.db import connection

from spatial.exceptions import MappingError
from spatial.intake import import_file, loader
from spatial.models import ImportBatch, Ticket

pytestmark = pytest.mark.django_db

# Tolerance of the GCJ-02 and BD-09 inverses, in degrees (about 0.1 m).
INVERSE_TOLERANCE_DEG = 1e-6

HEADERS_12345 = ["工单编号", "受理时间", "办结时间", "诉求内容", "诉求地址", "经度", "纬度", "承办单位", "诉求类型",
                 "联系电话", "诉求人"]

# GCJ-02 points in Xiangzhou County, as written in the exports (lng, lat).
TOWN_GCJ = ("109.688876", "23.956606")
NEW_ROAD_GCJ = ("109.706110", "23.970530")
# The Forbidden City in GCJ-02: far outside the study area.
BEIJING_GCJ = ("116.397026", "39.918058")


def utc(text):
    return pd.Timestamp(text, tz="UTC").to_pydatetime()


def write_csv(path, headers, rows, encoding="utf-8"):
    """Write a CSV export in an encoding, with \\n line ends, and return its path."""
    buffer = io.StringIO()
    writer = csv.writer(buffer, lineterminator="\n")
    writer.writerow(headers)
    writer.writerows(rows)
    path.write_bytes(buffer.getvalue().encode(encoding))
    return path


def run_import(path, *options):
    """Run import_tickets without a progress bar and return its output lines."""
    output = io.StringIO()
    call_command("import_tickets", str(path), "--no-progress", *options, stdout=output)
    return output.getvalue().splitlines()


def import_error(path, *options):
    """Run import_tickets on a file that must fail and return the error text."""
    with pytest.raises(CommandError) as error:
        run_import(path, *options)
    return str(error.value)


def ticket(external_id, source_system="12345"):
    return Ticket.objects.get(source_system=source_system, external_id=external_id)


def assert_gcj02_converted(stored, gcj_lng, gcj_lat):
    """Check a ticket stored from a GCJ-02 pair: WGS84 location, original pair and datum kept."""
    assert stored.orig_crs == "gcj02"
    assert stored.orig_lng == float(gcj_lng)
    assert stored.orig_lat == float(gcj_lat)
    # Going back from the stored WGS84 point must give the exported pair.
    shifted = prcoords.wgs_gcj(prcoords.Coords(stored.location.y, stored.location.x), check_china=False)
    assert abs(shifted.lat - float(gcj_lat)) < INVERSE_TOLERANCE_DEG
    assert abs(shifted.lon - float(gcj_lng)) < INVERSE_TOLERANCE_DEG
    # And the conversion moved the point by the GCJ-02 offset (hundreds of metres).
    assert abs(stored.location.x - float(gcj_lng)) > 1e-3


def assert_cells_match_location(stored):
    fine = h3.latlng_to_cell(stored.location.y, stored.location.x, settings.FIREGRID_H3_RES_FINE)
    assert stored.h3_fine == h3.str_to_int(fine)
    assert stored.h3_coarse == h3.str_to_int(h3.cell_to_parent(fine, settings.FIREGRID_H3_RES_COARSE))


def assert_without_location(stored):
    assert stored.location is None
    assert stored.h3_fine is None
    assert stored.h3_coarse is None
    assert stored.orig_lng is None
    assert stored.orig_lat is None
    assert stored.orig_crs == ""


def ticket_indexes():
    with connection.cursor() as cursor:
        cursor.execute("SELECT indexname, indexdef FROM pg_indexes WHERE tablename = 'spatial_ticket' ORDER BY 1")
        return cursor.fetchall()


def invalid_ticket_indexes():
    with connection.cursor() as cursor:
        cursor.execute("SELECT count(*) FROM pg_index WHERE indrelid = 'spatial_ticket'::regclass AND NOT indisvalid")
        return cursor.fetchone()[0]


# --- Encodings ---------------------------------------------------------------
#
# The same three tickets in every encoding. '䶮' (U+4DAE) exists in GB18030
# but not in GBK, so the GBK file spells that name with '岩' instead.

def encoding_rows(name):
    return [
        ["XZ2024030001", "2024-03-05 14:30:00", "2024-03-06 09:15:00", "楼道内飞线充电，存在火灾隐患",
         "象州县象州镇人民路１２号", *TOWN_GCJ, "象州镇人民政府", "消防安全", "13800000001", "张三"],
        ["XZ2024030002", "2024年3月5日下午4点", "", "小区消防通道被堵，车辆无法通行", "象州县新兴路8号",
         *NEW_ROAD_GCJ, "县消防救援大队", "消防安全", "13800000002", name],
        ["XZ2024030003", "2024/3/6 8:05", "2024/3/7 17:20", "商场灭火器过期未更换", "象州县城南商场", "", "",
         "县市场监督管理局", "安全隐患", "", "王五"],
    ]


EXPECTED_TICKETS = [
    {"external_id": "XZ2024030001", "source": "hotline", "received_at": utc("2024-03-05 06:30"),
     "closed_at": utc("2024-03-06 01:15"), "status": "closed", "category": "ebike_charging", "raw_type": "消防安全",
     "description": "楼道内飞线充电,存在火灾隐患", "address": "象州县象州镇人民路12号",
     "address_normalized": "象州县象州镇人民路12号", "department": "象州镇人民政府", "complainant_name": "张三",
     "complainant_phone": "13800000001", "outside_study_area": False},
    {"external_id": "XZ2024030002", "source": "hotline", "received_at": utc("2024-03-05 08:00"),
     "closed_at": None, "status": "received", "category": "fire_lane", "raw_type": "消防安全",
     "description": "小区消防通道被堵,车辆无法通行", "address": "象州县新兴路8号",
     "address_normalized": "象州县新兴路8号", "department": "县消防救援大队", "complainant_name": "刘䶮",
     "complainant_phone": "13800000002", "outside_study_area": False},
    {"external_id": "XZ2024030003", "source": "hotline", "received_at": utc("2024-03-06 00:05"),
     "closed_at": utc("2024-03-07 09:20"), "status": "closed", "category": "facility_fault", "raw_type": "安全隐患",
     "description": "商场灭火器过期未更换", "address": "象州县城南商场", "address_normalized": "象州县城南商场",
     "department": "县市场监督管理局", "complainant_name": "王五", "complainant_phone": "",
     "outside_study_area": False},
]


def stored_fields():
    return list(Ticket.objects.filter(source_system="12345").order_by("external_id").values(*EXPECTED_TICKETS[0]))


@pytest.mark.parametrize(
    ("encoding", "name", "detected"),
    [
        ("utf-8", "刘䶮", "utf-8"),
        ("utf-8-sig", "刘䶮", "utf-8-sig"),
        ("gbk", "刘岩", "gbk"),
        ("gb18030", "刘䶮", "gb18030"),
    ],
)
def test_encoding_detected_and_imported(tmp_path, encoding, name, detected):
    path = write_csv(tmp_path / "tickets.csv", HEADERS_12345, encoding_rows(name), encoding)

    lines = run_import(path)

    assert lines[0] == f"文件:{path}(编码:{detected})"
    assert lines[1].startswith("读取 3 行,导入 3 行,拒绝 0 行,耗时 ")
    assert lines[2:] == ["  无可用位置(保留,不落图): 1"]
    expected = [dict(fields) for fields in EXPECTED_TICKETS]
    expected[1]["complainant_name"] = name
    assert stored_fields() == expected
    assert_gcj02_converted(ticket("XZ2024030001"), *TOWN_GCJ)
    assert_gcj02_converted(ticket("XZ2024030002"), *NEW_ROAD_GCJ)
    assert_cells_match_location(ticket("XZ2024030001"))
    assert_without_location(ticket("XZ2024030003"))
    assert ImportBatch.objects.get().encoding == detected


def test_gb18030_file_is_not_valid_gbk(tmp_path):
    # Guards the case above: the GB18030 file must fail as GBK, or detection was never tested.
    raw = write_csv(tmp_path / "tickets.csv", HEADERS_12345, encoding_rows("刘䶮"), "gb18030").read_bytes()
    with pytest.raises(UnicodeDecodeError):
        raw.decode("gbk")


def test_undecodable_bytes_name_file_and_offset(tmp_path):
    # A Big5 header (which GB18030 happens to decode as other characters)
    # and a Latin-1 row: 'é' followed by a comma is invalid in all three.
    prefix = "工單編號,受理時間\n".encode("big5") + b"1,caf"
    path = tmp_path / "mess.csv"
    path.write_bytes(prefix + b"\xe9,2024-03-05\n")

    message = import_error(path)

    assert message == (
        f"{path}:无法按 UTF-8、GBK 或 GB18030 解码(按 gb18030 解码时第一个无效字节位于偏移 {len(prefix)});"
        "请另存为 UTF-8,或用 --encoding 指定实际编码"
    )
    assert Ticket.objects.count() == 0
    assert ImportBatch.objects.count() == 0


def test_stray_byte_offset_in_large_gbk_file(tmp_path):
    # The offset counts from the start of a file far larger than one read
    # block, and comes from GBK, the encoding that read furthest, not from UTF-8.
    rows = [[f"XZ{number:06d}", "2024-03-05 14:30", "", "楼道堆放杂物", "象州县人民路", "", "", "", "", "", ""]
            for number in range(6000)]
    path = write_csv(tmp_path / "large.csv", HEADERS_12345, rows, "gbk")
    good = path.read_bytes()
    path.write_bytes(good + b"XZ9,\x80\n")

    message = import_error(path)

    assert len(good) > 300_000
    assert f"(按 gbk 解码时第一个无效字节位于偏移 {len(good) + 4})" in message


def test_bom_file_offset_counts_the_bom(tmp_path):
    path = write_csv(tmp_path / "tickets.csv", HEADERS_12345, encoding_rows("刘䶮"), "utf-8-sig")
    good = path.read_bytes()
    path.write_bytes(good + b"XZ9,\xff\n")

    assert "(按 utf-8-sig 解码时第一个无效字节位于偏移 " + str(len(good) + 4) + ")" in import_error(path)
    assert import_error(path, "--encoding", "utf-8-sig") == (
        f"{path}:第 {len(good) + 4} 字节不是有效的 utf-8-sig 编码;请检查 --encoding")


def test_wrong_encoding_override_reports_file_offset(tmp_path):
    rows = [[f"XZ{number:06d}", "2024-03-05 14:30", "", "", "", "", "", "", "", "", ""] for number in range(20000)]
    path = write_csv(tmp_path / "large.csv", HEADERS_12345, rows, "utf-8")
    good = path.read_bytes()
    path.write_bytes(good + "XZ9,消防\n".encode("gbk"))

    message = import_error(path, "--encoding", "utf-8")

    assert len(good) > 300_000
    assert message == f"{path}:第 {len(good) + 4} 字节不是有效的 utf-8 编码;请检查 --encoding"


def test_encoding_override_is_used(tmp_path):
    path = write_csv(tmp_path / "tickets.csv", HEADERS_12345, encoding_rows("刘岩"), "gbk")

    lines = run_import(path, "--encoding", "gb18030")

    assert lines[0] == f"文件:{path}(编码:gb18030)"
    assert Ticket.objects.get(external_id="XZ2024030002").complainant_name == "刘岩"


def test_big5_file_needs_override(tmp_path):
    # Big5 is never guessed: the override reads it correctly.
    headers = ["工單編號", "受理時間", "訴求內容"]
    path = write_csv(tmp_path / "big5.csv", headers, [["TW001", "2024-03-05 14:30", "消防通道堵塞"]], "big5")
    mapping = tmp_path / "big5.toml"
    mapping.write_text('source_system = "tw"\n[columns]\nexternal_id = "工單編號"\nreceived_at = "受理時間"\n'
                       'description = "訴求內容"\n', encoding="utf-8")

    lines = run_import(path, "--mapping", str(mapping), "--encoding", "big5")

    assert lines[0] == f"文件:{path}(编码:big5)"
    stored = ticket("TW001", "tw")
    assert stored.description == "消防通道堵塞"
    assert stored.category == "fire_lane"


def test_unknown_encoding_name(tmp_path):
    path = write_csv(tmp_path / "tickets.csv", HEADERS_12345, encoding_rows("刘䶮"))
    assert import_error(path, "--encoding", "gbk-2000") == "未知编码 gbk-2000;可用例如 utf-8、gbk、gb18030"


def test_utf8_override_on_bom_file(tmp_path):
    path = write_csv(tmp_path / "tickets.csv", HEADERS_12345, encoding_rows("刘䶮"), "utf-8-sig")
    run_import(path, "--encoding", "utf-8")
    assert Ticket.objects.count() == 3


# --- Excel ---------------------------------------------------------------------

def write_xlsx(path, sheets):
    """Write a workbook from {sheet title: rows}, in order."""
    workbook = openpyxl.Workbook()
    workbook.remove(workbook.active)
    for title, rows in sheets.items():
        sheet = workbook.create_sheet(title)
        for row in rows:
            sheet.append(row)
    workbook.save(path)
    return path


XLSX_ROWS = [
    HEADERS_12345,
    [202403050001, datetime.datetime(2024, 3, 5, 14, 30), datetime.datetime(2024, 3, 6, 9, 15, 30),
     "楼道内飞线充电", "象州县象州镇人民路12号", float(TOWN_GCJ[0]), float(TOWN_GCJ[1]), "象州镇人民政府",
     "消防安全", 13800000001, "张三"],
    [202403050002.0, datetime.datetime(2024, 3, 5, 16, 0), None, "消防通道被堵", "象州县新兴路8号",
     float(NEW_ROAD_GCJ[0]), float(NEW_ROAD_GCJ[1]), "县消防救援大队", "消防安全", None, "李四"],
    ["XZ-0003", "2024年3月6日 8时05分", "2024-03-07 17:20", "灭火器过期", "", None, None, "", "", "", ""],
]


def test_xlsx_numbers_and_datetime_cells(tmp_path):
    path = write_xlsx(tmp_path / "tickets.xlsx", {"工单": XLSX_ROWS})

    lines = run_import(path)

    assert lines[0] == f"文件:{path}(编码:Excel)"
    assert lines[1].startswith("读取 3 行,导入 3 行,拒绝 0 行")
    first = ticket("202403050001")
    assert first.received_at == utc("2024-03-05 06:30")
    assert first.closed_at == utc("2024-03-06 01:15:30")
    assert first.complainant_phone == "13800000001"
    assert first.category == "ebike_charging"
    assert_gcj02_converted(first, *TOWN_GCJ)
    second = ticket("202403050002")
    assert second.received_at == utc("2024-03-05 08:00")
    assert second.closed_at is None
    assert second.complainant_phone == ""
    assert second.category == "fire_lane"
    assert_gcj02_converted(second, *NEW_ROAD_GCJ)
    third = ticket("XZ-0003")
    assert third.received_at == utc("2024-03-06 00:05")
    assert third.category == "facility_fault"
    assert_without_location(third)
    assert ImportBatch.objects.get().encoding == ""


def test_xlsx_sheet_option(tmp_path):
    notes = [["说明"], ["本表由区县12345平台导出"]]
    path = write_xlsx(tmp_path / "tickets.xlsx", {"说明": notes, "工单": XLSX_ROWS})

    message = import_error(path)
    assert message.startswith(f"{path}:映射方案 12345 找不到必需的列(")
    assert "文件表头为:说明。" in message

    run_import(path, "--sheet", "工单")
    assert Ticket.objects.count() == 3


def test_xlsx_missing_sheet(tmp_path):
    path = write_xlsx(tmp_path / "tickets.xlsx", {"工单": XLSX_ROWS})
    message = import_error(path, "--sheet", "第二页")
    assert message.startswith(f"{path}:无法读取工作表(")
    assert message.endswith(");请用 --sheet 指定名称")


def test_corrupt_xlsx(tmp_path):
    path = tmp_path / "tickets.xlsx"
    path.write_bytes(b"PK\x03\x04 not really a zip file")
    assert import_error(path).startswith(f"{path}:不是可读取的 .xlsx 工作簿(")


def test_xls_fixture(fixtures_dir):
    path = fixtures_dir / "tickets_12345.xls"

    lines = run_import(path)

    assert lines[0] == f"文件:{path}(编码:Excel)"
    assert lines[1].startswith("读取 2 行,导入 2 行,拒绝 0 行")
    first = ticket("202403050001")
    assert first.received_at == utc("2024-03-05 06:30")
    assert first.closed_at == utc("2024-03-06 01:15")
    assert first.complainant_phone == "13800000001"
    assert first.category == "ebike_charging"
    assert_gcj02_converted(first, "109.688875", "23.956606")
    second = ticket("202403050002")
    assert second.received_at == utc("2024-03-05 08:00:45")
    assert second.closed_at is None
    assert second.status == "received"
    assert second.category == "fire_lane"
    assert_gcj02_converted(second, "109.70611", "23.97053")


# --- Files that cannot be read ---------------------------------------------------

def test_missing_file(tmp_path):
    path = tmp_path / "absent.csv"
    assert import_error(path) == f"{path}:文件不存在"


def test_unsupported_file_type(tmp_path):
    path = tmp_path / "tickets.pdf"
    path.write_bytes(b"%PDF-1.4")
    assert import_error(path) == f"{path}:不支持的文件类型 .pdf;请使用 CSV、XLSX 或 XLS"


def test_empty_file(tmp_path):
    path = tmp_path / "tickets.csv"
    path.write_bytes(b"")
    assert import_error(path) == f"{path}:文件为空;导出文件需要表头行"


def test_malformed_csv(tmp_path):
    path = tmp_path / "tickets.csv"
    path.write_text("工单编号,受理时间\nXZ1,2024-03-05 14:30,多出的一列\n", encoding="utf-8")
    message = import_error(path)
    assert message.startswith(f"{path}:CSV 格式错误(")
    assert message.endswith(");请检查引号和列数")


def test_invalid_study_area_option(tmp_path):
    path = write_csv(tmp_path / "tickets.csv", HEADERS_12345, encoding_rows("刘䶮"))
    message = import_error(path, "--study-area", "109.4,23.7,110.1")
    assert message == "研究区 109.4,23.7,110.1 应为 4 个数:min_lng,min_lat,max_lng,max_lat"


def test_profile_and_mapping_exclusive(tmp_path):
    path = write_csv(tmp_path / "tickets.csv", HEADERS_12345, encoding_rows("刘䶮"))
    message = import_error(path, "--profile", "12345", "--mapping", str(tmp_path / "town.toml"))
    assert "--mapping" in message
    assert "--profile" in message


def test_profile_choice_checked(tmp_path):
    path = write_csv(tmp_path / "tickets.csv", HEADERS_12345, encoding_rows("刘䶮"))
    assert "invalid choice: 'beijing'" in import_error(path, "--profile", "beijing")


def test_tab_separated_file(tmp_path):
    path = tmp_path / "tickets.tsv"
    path.write_text("工单编号\t受理时间\t诉求内容\nXZ1\t2024-03-05 14:30\t楼道堆放杂物, 影响通行\n", encoding="gbk")

    lines = run_import(path)

    assert lines[0] == f"文件:{path}(编码:gbk)"
    assert ticket("XZ1").description == "楼道堆放杂物, 影响通行"


def test_unknown_profile_name():
    with pytest.raises(MappingError) as error:
        import_file("unused.csv", profile_name="beijing")
    assert str(error.value) == "未知的字段映射方案 beijing;可用:12345, sf311, sffd,或用 --mapping 指定映射文件"


# --- Row checks ------------------------------------------------------------------

def good_row(number, lng="", lat=""):
    return [number, "2024-03-05 14:30", "2024-03-05 18:00", "楼道堆放杂物", "象州县人民路12号", lng, lat,
            "象州镇人民政府", "消防安全", "13800000001", "张三"]


def bad_rows():
    """Rows 2-13 of an export: six rejects, then six kept rows with location problems."""
    rows = [
        good_row("XZ001", *TOWN_GCJ),
        ["XZ002", "2024-03-05 14:30", "2024-03-05 10:00", "", "", *TOWN_GCJ, "", "", "", ""],
        ["XZ003", "2024年13月45日", "", "", "", *TOWN_GCJ, "", "", "", ""],
        ["", "2024-03-05 14:30", "", "", "", *TOWN_GCJ, "", "", "", ""],
        ["XZ001", "2024-03-06 09:00", "", "", "", *TOWN_GCJ, "", "", "", ""],
        ["XZ006", "2024-03-05 14:30", "明天", "", "", *TOWN_GCJ, "", "", "", ""],
        ["XZ007", "", "", "", "", *TOWN_GCJ, "", "", "", ""],
        good_row("XZ008"),
        good_row("XZ009", "0", "0"),
        good_row("XZ010", *BEIJING_GCJ),
        good_row("XZ011", "abc", "23.956606"),
        good_row("XZ012", "109.688876", "95.5"),
    ]
    return rows


EXPECTED_PROBLEM_LINES = [
    "  第 3 行,列 办结时间:办结时间早于受理时间 (2024-03-05 10:00)",
    "  第 4 行,列 受理时间:受理时间无法识别 (2024年13月45日)",
    "  第 5 行,列 工单编号:缺少工单编号",
    "  第 6 行,列 工单编号:工单编号重复,首次出现在第 2 行 (XZ001)",
    "  第 7 行,列 办结时间:办结时间无法识别 (明天)",
    "  第 8 行,列 受理时间:缺少受理时间",
]


def test_invalid_rows_reject_whole_file(tmp_path):
    earlier = write_csv(tmp_path / "earlier.csv", HEADERS_12345, [good_row("XZ100", *TOWN_GCJ)])
    run_import(earlier)
    indexes_before = ticket_indexes()
    path = write_csv(tmp_path / "tickets.csv", HEADERS_12345, bad_rows())

    message = import_error(path)

    assert message.splitlines() == [
        f"{path}:6 行无效,未导入任何数据。修正这些行,或使用 --skip-invalid 文件名 导入有效行并把被拒绝的行写入该文件。",
        *EXPECTED_PROBLEM_LINES,
    ]
    assert list(Ticket.objects.values_list("external_id", flat=True)) == ["XZ100"]
    assert ImportBatch.objects.count() == 1
    assert ticket_indexes() == indexes_before


def test_problem_list_is_capped(tmp_path):
    rows = [[f"XZ{number:03d}", "不是时间", "", "", "", "", "", "", "", "", ""] for number in range(25)]
    path = write_csv(tmp_path / "tickets.csv", HEADERS_12345, rows)

    lines = import_error(path).splitlines()

    assert lines[0].startswith(f"{path}:25 行无效,")
    assert len(lines) == 1 + 20 + 1
    assert lines[20] == "  第 21 行,列 受理时间:受理时间无法识别 (不是时间)"
    assert lines[21] == "  ……另有 5 行"


def test_row_with_several_problems_counted_once(tmp_path):
    rows = [["", "不是时间", "也不是"], ["XZ2", "2024-03-05 14:30", ""], ["XZ3", "2024-03-05 14:30", ""]]
    path = write_csv(tmp_path / "tickets.csv", ["工单编号", "受理时间", "办结时间"], rows)

    assert import_error(path).splitlines() == [
        f"{path}:1 行无效,未导入任何数据。修正这些行,或使用 --skip-invalid 文件名 导入有效行并把被拒绝的行写入该文件。",
        "  第 2 行,列 办结时间:办结时间无法识别 (也不是)",
        "  第 2 行,列 受理时间:受理时间无法识别 (不是时间)",
        "  第 2 行,列 工单编号:缺少工单编号",
    ]

    lines = run_import(path, "--skip-invalid", str(tmp_path / "rejects.csv"))

    assert lines[1].startswith("读取 3 行,导入 2 行,拒绝 1 行")
    assert ImportBatch.objects.get().counts == {"bad_closed": 1, "bad_received": 1, "missing_id": 1, "no_location": 2}


def test_problem_list_counts_hidden_rows(tmp_path):
    # 15 rows with two problems each: 20 lines show rows 2-11, and rows 12-16 are not shown.
    rows = [[f"XZ{number:03d}", "不是时间", "也不是"] for number in range(15)]
    path = write_csv(tmp_path / "tickets.csv", ["工单编号", "受理时间", "办结时间"], rows)

    lines = import_error(path).splitlines()

    assert lines[0].startswith(f"{path}:15 行无效,")
    assert lines[20] == "  第 11 行,列 受理时间:受理时间无法识别 (不是时间)"
    assert lines[21:] == ["  ……另有 5 行"]


def test_empty_rows_skipped(tmp_path):
    rows = [["XZ2", "2024-03-05 14:30", ""], ["", "", ""], ["XZ3", "不是时间", ""], [" ", "", "　"], ["", "", ""]]
    path = write_csv(tmp_path / "tickets.csv", ["工单编号", "受理时间", "办结时间"], rows)

    # The blank rows are neither errors nor in the way of the row numbers.
    assert import_error(path).splitlines()[1:] == ["  第 4 行,列 受理时间:受理时间无法识别 (不是时间)"]

    lines = run_import(path, "--skip-invalid", str(tmp_path / "rejects.csv"))

    assert lines[1].startswith("读取 5 行,导入 1 行,拒绝 1 行")
    assert "  空行(跳过): 3" in lines
    assert ImportBatch.objects.get().counts == {"bad_received": 1, "empty_rows": 3, "no_location": 1}
    with (tmp_path / "rejects.csv").open(encoding="utf-8-sig", newline="") as handle:
        assert list(csv.reader(handle))[1] == ["4", "受理时间", "bad_received", "受理时间无法识别", "XZ3", "不是时间", ""]


def test_xlsx_empty_rows_skipped(tmp_path):
    sheet_rows = [["工单编号", "受理时间"], ["XZ1", "2024-03-05 14:30"], [None, None], ["XZ2", "2024-03-05 15:30"],
                  [None, None]]
    path = write_xlsx(tmp_path / "tickets.xlsx", {"工单": sheet_rows})

    run_import(path)

    assert sorted(Ticket.objects.values_list("external_id", flat=True)) == ["XZ1", "XZ2"]


def test_only_empty_rows(tmp_path):
    path = write_csv(tmp_path / "tickets.csv", ["工单编号", "受理时间"], [["", ""], ["", ""]])
    lines = run_import(path)
    assert lines[1].startswith("读取 2 行,导入 0 行,拒绝 0 行")
    assert Ticket.objects.count() == 0


def test_skip_invalid_writes_rejects(tmp_path):
    rows = bad_rows()
    path = write_csv(tmp_path / "tickets.csv", HEADERS_12345, rows)
    rejects = tmp_path / "out" / "rejects.csv"

    lines = run_import(path, "--skip-invalid", str(rejects))

    assert lines[1].startswith("读取 12 行,导入 6 行,拒绝 6 行")
    assert lines[2:] == [
        "  办结时间无法识别: 1",
        "  坐标无效(保留,不落图): 2",
        "  受理时间无法识别: 1",
        "  办结时间早于受理时间: 1",
        "  工单编号重复: 1",
        "  缺少工单编号: 1",
        "  缺少受理时间: 1",
        "  无可用位置(保留,不落图): 2",
        "  位置超出研究区(保留并标记): 1",
        f"被拒绝的行及原因已写入 {rejects}",
    ]
    assert sorted(Ticket.objects.values_list("external_id", flat=True)) == [
        "XZ001", "XZ008", "XZ009", "XZ010", "XZ011", "XZ012"]
    assert ImportBatch.objects.get().counts == {
        "bad_closed": 1, "bad_coordinates": 2, "bad_received": 1, "closed_before_received": 1, "duplicate_id": 1,
        "missing_id": 1, "missing_received": 1, "no_location": 2, "outside_study_area": 1,
    }
    with rejects.open(encoding="utf-8-sig", newline="") as handle:
        written = list(csv.reader(handle))
    assert written == [
        ["row", "column", "reason_code", "reason", *HEADERS_12345],
        ["3", "办结时间", "closed_before_received", "办结时间早于受理时间", *rows[1]],
        ["4", "受理时间", "bad_received", "受理时间无法识别", *rows[2]],
        ["5", "工单编号", "missing_id", "缺少工单编号", *rows[3]],
        ["6", "工单编号", "duplicate_id", "工单编号重复,首次出现在第 2 行", *rows[4]],
        ["7", "办结时间", "bad_closed", "办结时间无法识别", *rows[5]],
        ["8", "受理时间", "missing_received", "缺少受理时间", *rows[6]],
    ]


def test_unusable_locations_kept_without_geometry(tmp_path):
    path = write_csv(tmp_path / "tickets.csv", HEADERS_12345, bad_rows())
    run_import(path, "--skip-invalid", str(tmp_path / "rejects.csv"))

    for number in ("XZ008", "XZ009", "XZ011", "XZ012"):
        assert_without_location(ticket(number))
        assert not ticket(number).outside_study_area
    assert Ticket.objects.filter(location__isnull=True).count() == 4
    assert Ticket.objects.filter(h3_fine__isnull=True).count() == 4
    # Nothing was placed at 0,0 or anywhere else by default.
    assert not Ticket.objects.filter(location__isnull=False).exclude(external_id__in=["XZ001", "XZ010"]).exists()


def test_outside_study_area_flagged_and_kept(tmp_path):
    path = write_csv(tmp_path / "tickets.csv", HEADERS_12345, bad_rows())
    run_import(path, "--skip-invalid", str(tmp_path / "rejects.csv"))

    outside = ticket("XZ010")
    assert outside.outside_study_area
    assert_gcj02_converted(outside, *BEIJING_GCJ)
    assert_cells_match_location(outside)
    assert not ticket("XZ001").outside_study_area
    assert list(Ticket.objects.filter(outside_study_area=True).values_list("external_id", flat=True)) == ["XZ010"]


def test_study_area_option_overrides_setting(tmp_path):
    path = write_csv(tmp_path / "tickets.csv", HEADERS_12345, [good_row("XZ001", *TOWN_GCJ)])
    # A box around Beijing: the Xiangzhou ticket is now outside.
    lines = run_import(path, "--study-area", "116.0,39.6,116.8,40.2")
    assert ticket("XZ001").outside_study_area
    assert "  位置超出研究区(保留并标记): 1" in lines


def test_same_file_twice_adds_nothing(tmp_path):
    path = write_csv(tmp_path / "tickets.csv", HEADERS_12345, bad_rows())
    run_import(path, "--skip-invalid", str(tmp_path / "rejects.csv"))
    first = list(Ticket.objects.order_by("id").values())

    lines = run_import(path, "--skip-invalid", str(tmp_path / "rejects.csv"))

    assert list(Ticket.objects.order_by("id").values()) == first
    assert lines[1].startswith("读取 12 行,导入 0 行,拒绝 6 行")
    assert "  此前已导入(跳过): 6" in lines
    second = ImportBatch.objects.latest("id")
    assert second.rows_imported == 0
    # No location flags: the flagged rows were skipped, not written again.
    assert second.counts == {
        "already_imported": 6, "bad_closed": 1, "bad_received": 1, "closed_before_received": 1, "duplicate_id": 1,
        "missing_id": 1, "missing_received": 1,
    }


def test_rows_already_stored_are_skipped_not_rejected(tmp_path):
    run_import(write_csv(tmp_path / "march.csv", HEADERS_12345, [good_row("XZ001"), good_row("XZ002")]))

    lines = run_import(write_csv(tmp_path / "april.csv", HEADERS_12345, [good_row("XZ002"), good_row("XZ003")]))

    assert lines[1].startswith("读取 2 行,导入 1 行,拒绝 0 行")
    assert sorted(Ticket.objects.values_list("external_id", flat=True)) == ["XZ001", "XZ002", "XZ003"]
    batches = list(ImportBatch.objects.order_by("id"))
    assert ticket("XZ002").batch_id == batches[0].pk
    assert ticket("XZ003").batch_id == batches[1].pk
    assert batches[0].counts == {"no_location": 2}
    assert batches[1].counts == {"no_location": 1, "already_imported": 1}
    assert "  无可用位置(保留,不落图): 1" in lines


def test_rejects_file_replaced_when_clean(tmp_path):
    rejects = tmp_path / "rejects.csv"
    rejects.write_text("row,column,reason_code,reason\n3,办结时间,bad_closed,办结时间无法识别\n", encoding="utf-8")
    path = write_csv(tmp_path / "tickets.csv", HEADERS_12345, [good_row("XZ001")])

    lines = run_import(path, "--skip-invalid", str(rejects))

    with rejects.open(encoding="utf-8-sig", newline="") as handle:
        assert list(csv.reader(handle)) == [["row", "column", "reason_code", "reason", *HEADERS_12345]]
    assert not any("被拒绝的行" in line for line in lines)
    assert Ticket.objects.count() == 1


def test_batch_records_file_and_counts(tmp_path):
    path = write_csv(tmp_path / "tickets.csv", HEADERS_12345, encoding_rows("刘䶮"))
    run_import(path, "--simulated")

    batch = ImportBatch.objects.get()
    assert batch.file_name == "tickets.csv"
    assert len(batch.file_sha256) == 64
    assert batch.profile == "12345"
    assert batch.simulated
    assert batch.rows_read == 3
    assert batch.rows_imported == 3
    assert batch.counts == {"no_location": 1}
    assert batch.duration_s > 0
    assert set(Ticket.objects.values_list("batch_id", flat=True)) == {batch.pk}


def test_text_survives_copy(tmp_path):
    description = 'He said "fire", then left,\nback\\slash\tand tab; 末尾'
    rows = [["XZ001", "2024-03-05 14:30", "", description, "人民路'12'号", "", "", "", "", "", ""]]
    run_import(write_csv(tmp_path / "tickets.csv", HEADERS_12345, rows))

    stored = ticket("XZ001")
    assert stored.description == description
    assert stored.address == "人民路'12'号"


def test_nul_characters_removed(tmp_path, caplog):
    # PostgreSQL text cannot hold NUL, and some exporters pad fields with it.
    rows = [["XZ001\x00", "2024-03-05 14:30", "", "楼道\x00堆放杂物", "", "", "", "", "", "", ""]]
    path = write_csv(tmp_path / "tickets.csv", HEADERS_12345, rows, "gbk")

    run_import(path)

    assert ticket("XZ001").description == "楼道堆放杂物"
    assert f"Removed 2 NUL characters from {path}" in caplog.messages


def test_long_text_truncated_to_column_size(tmp_path):
    rows = [["XZ001", "2024-03-05 14:30", "", "", "路" * 600, "", "", "单位" * 150, "类" * 600, "1" * 50, "名" * 120]]
    run_import(write_csv(tmp_path / "tickets.csv", HEADERS_12345, rows))

    stored = ticket("XZ001")
    assert len(stored.address) == 500
    assert len(stored.raw_type) == 500
    assert len(stored.department) == 200
    assert len(stored.complainant_phone) == 40
    assert len(stored.complainant_name) == 100


# --- Coordinates, categories and other columns ----------------------------------

CRS_HEADERS = ["工单编号", "受理时间", "经度", "纬度", "坐标系"]


def test_coordinate_system_per_row(tmp_path):
    wgs_lat, wgs_lng = 23.9594, 109.6845
    gcj = prcoords.wgs_gcj(prcoords.Coords(wgs_lat, wgs_lng))
    bd = prcoords.wgs_bd(prcoords.Coords(wgs_lat, wgs_lng))
    rows = [
        ["C1", "2024-03-05 14:30", repr(wgs_lng), repr(wgs_lat), "WGS84"],
        ["C2", "2024-03-05 14:30", repr(gcj.lon), repr(gcj.lat), "GCJ-02"],
        ["C3", "2024-03-05 14:30", repr(bd.lon), repr(bd.lat), "百度"],
        ["C4", "2024-03-05 14:30", repr(gcj.lon), repr(gcj.lat), ""],  # the profile's datum, GCJ-02
        ["C5", "2024-03-05 14:30", repr(bd.lon), repr(bd.lat), "ＢＤ０９"],
        ["C6", "2024-03-05 14:30", repr(gcj.lon), repr(gcj.lat), "高德"],
    ]
    run_import(write_csv(tmp_path / "tickets.csv", CRS_HEADERS, rows))

    expected_crs = {"C1": "wgs84", "C2": "gcj02", "C3": "bd09", "C4": "gcj02", "C5": "bd09", "C6": "gcj02"}
    for number, row in zip(expected_crs, rows):
        stored = ticket(number)
        assert stored.orig_crs == expected_crs[number], number
        assert stored.orig_lng == float(row[2]), number
        assert stored.orig_lat == float(row[3]), number
        assert abs(stored.location.y - wgs_lat) < INVERSE_TOLERANCE_DEG, number
        assert abs(stored.location.x - wgs_lng) < INVERSE_TOLERANCE_DEG, number
        assert stored.location.srid == 4326
    assert ticket("C1").location.x == wgs_lng
    assert ticket("C1").location.y == wgs_lat


def test_unknown_coordinate_system_rejected(tmp_path):
    path = write_csv(tmp_path / "tickets.csv", CRS_HEADERS, [
        ["C1", "2024-03-05 14:30", *TOWN_GCJ, "GCJ-02"],
        ["C2", "2024-03-05 14:30", *TOWN_GCJ, "墨卡托"],
    ])
    assert import_error(path).splitlines()[1] == "  第 3 行,列 坐标系:坐标系无法识别,可用 WGS84、GCJ-02、BD-09 (墨卡托)"


@pytest.mark.parametrize(
    ("text", "category"),
    [
        ("楼道内飞线充电", "ebike_charging"),
        ("电动车在楼道充电", "ebike_charging"),
        ("消防通道被堵", "fire_lane"),
        ("安全出口上锁", "fire_lane"),
        ("灭火器过期", "facility_fault"),
        ("消火栓没水", "facility_fault"),
        ("厂房与仓库防火间距不足", "separation"),
        ("门口堆放液化气罐", "flammable_storage"),
        ("小区配电箱冒烟", "electrical"),
        ("噪音扰民", "other"),
        ("ＦＩＲＥ ＬＡＮＥ blocked", "fire_lane"),
        # The first matching rule wins: charging before wiring.
        ("私拉电线给电动车充电", "ebike_charging"),
    ],
)
def test_category_from_keywords(tmp_path, text, category):
    rows = [["K1", "2024-03-05 14:30", "", text, "", "", "", "", "", "", ""]]
    run_import(write_csv(tmp_path / "tickets.csv", HEADERS_12345, rows))
    assert ticket("K1").category == category
    assert ticket("K1").category_source == "keyword"


def test_category_from_raw_type(tmp_path):
    rows = [["K1", "2024-03-05 14:30", "", "现场情况见附件", "", "", "", "", "消防通道占用", "", ""]]
    run_import(write_csv(tmp_path / "tickets.csv", HEADERS_12345, rows))
    assert ticket("K1").category == "fire_lane"


def test_category_column_wins_over_keywords(tmp_path):
    headers = ["工单编号", "受理时间", "诉求内容", "消防类别"]
    rows = [
        ["K1", "2024-03-05 14:30", "楼道飞线充电", "电气线路隐患"],
        ["K2", "2024-03-05 14:30", "楼道飞线充电", "separation"],
        ["K3", "2024-03-05 14:30", "楼道飞线充电", "不在分类表中"],
    ]
    run_import(write_csv(tmp_path / "tickets.csv", headers, rows))
    assert ticket("K1").category == "electrical"
    assert ticket("K2").category == "separation"
    assert ticket("K3").category == "ebike_charging"
    assert [ticket(number).category_source for number in ("K1", "K2", "K3")] == ["imported", "imported", "keyword"]


def test_status_and_source_columns(tmp_path):
    headers = ["工单编号", "受理时间", "办结时间", "工单状态", "工单来源"]
    rows = [
        ["S1", "2024-03-05 14:30", "", "办理中", "12345热线"],
        ["S2", "2024-03-05 14:30", "2024-03-06 10:00", "", "网格员巡查"],
        ["S3", "2024-03-05 14:30", "", "", "烟感物联网"],
        ["S4", "2024-03-05 14:30", "", "已整改", ""],
    ]
    run_import(write_csv(tmp_path / "tickets.csv", headers, rows))
    assert [(ticket(number).status, ticket(number).source) for number in ("S1", "S2", "S3", "S4")] == [
        ("accepted", "hotline"), ("closed", "inspection"), ("received", "iot"), ("rectified", "hotline")]


def test_spreadsheet_numbers_cleaned(tmp_path):
    rows = [["12345.0", "2024-03-05 14:30"], ["１２３４６", "2024-03-05 14:30"], [" 123 47 ", "2024-03-05 14:30"]]
    run_import(write_csv(tmp_path / "tickets.csv", ["工单编号", "受理时间"], rows))
    assert sorted(Ticket.objects.values_list("external_id", flat=True)) == ["12345", "12346", "12347"]


def test_scientific_notation_numbers_rejected(tmp_path):
    rows = [["2.02403E+12", "2024-03-05 14:30"], ["2.02403E+12", "2024-03-05 15:30"], ["2024030500013", "2024-03-05 16:30"],
            ["6E-05", "2024-03-05 17:30"], ["2024E0001", "2024-03-05 18:30"], ["1e5", "2024-03-05 19:30"]]
    path = write_csv(tmp_path / "tickets.csv", ["工单编号", "受理时间"], rows)

    # Numbers with letters in them, such as 2024E0001, stay valid.
    assert import_error(path).splitlines()[1:] == [
        "  第 2 行,列 工单编号:工单编号是科学计数法,位数已丢失;请把该列设为文本格式后重新导出 (2.02403E+12)",
        "  第 3 行,列 工单编号:工单编号是科学计数法,位数已丢失;请把该列设为文本格式后重新导出 (2.02403E+12)",
        "  第 5 行,列 工单编号:工单编号是科学计数法,位数已丢失;请把该列设为文本格式后重新导出 (6E-05)",
    ]


def test_cleaned_numbers_collide_as_duplicates(tmp_path):
    rows = [["12345", "2024-03-05 14:30"], ["12345.0", "2024-03-05 15:30"]]
    path = write_csv(tmp_path / "tickets.csv", ["工单编号", "受理时间"], rows)
    assert import_error(path).splitlines()[1] == "  第 3 行,列 工单编号:工单编号重复,首次出现在第 2 行 (12345)"


# --- Mapping files -----------------------------------------------------------------

CUSTOM_HEADERS = ["单号", "来电日期", "结案日期", "反映内容", "地点", "X", "Y"]
CUSTOM_ROWS = [
    ["A-1", "2024-03-05 14:30", "2024-03-05 20:00", "楼道飞线充电", "新兴路8号", "109.6845", "23.9594"],
    ["A-2", "2024-03-05T06:30:00Z", "", "商铺门口堆放液化气罐", "城南商场", "", ""],
]
MAPPING_TOML = """\
name = "象州镇导出"
source_system = "xz-town"
crs = "wgs84"
timezone = "Asia/Shanghai"

[columns]
external_id = ["单号", "编号"]
received_at = "来电日期"
closed_at = ["结案日期"]
description = ["反映内容"]
address = ["地点"]
lng = ["X"]
lat = ["Y"]
"""


def test_toml_mapping(tmp_path):
    path = write_csv(tmp_path / "town.csv", CUSTOM_HEADERS, CUSTOM_ROWS)
    mapping = tmp_path / "town.toml"
    mapping.write_text(MAPPING_TOML, encoding="utf-8")

    run_import(path, "--mapping", str(mapping))

    first = ticket("A-1", "xz-town")
    assert first.received_at == utc("2024-03-05 06:30")
    assert first.closed_at == utc("2024-03-05 12:00")
    assert first.category == "ebike_charging"
    assert first.orig_crs == "wgs84"
    assert (first.location.x, first.location.y) == (109.6845, 23.9594)
    second = ticket("A-2", "xz-town")
    assert second.received_at == utc("2024-03-05 06:30")
    assert second.category == "flammable_storage"
    assert_without_location(second)
    assert ImportBatch.objects.get().profile == "象州镇导出"


def test_json_mapping(tmp_path):
    headers = ["单号", "来电日期", "X", "Y"]
    bd = prcoords.wgs_bd(prcoords.Coords(23.9594, 109.6845))
    path = write_csv(tmp_path / "town.csv", headers, [["B-1", "2024-03-05 14:30", repr(bd.lon), repr(bd.lat)]])
    mapping = tmp_path / "baidu.json"
    mapping.write_text(json.dumps({
        "source_system": "xz-baidu", "crs": "百度", "source": "inspection",
        "columns": {"external_id": ["单号"], "received_at": ["来电日期"], "lng": ["X"], "lat": ["Y"]},
    }, ensure_ascii=False), encoding="utf-8")

    run_import(path, "--mapping", str(mapping))

    stored = ticket("B-1", "xz-baidu")
    assert stored.source == "inspection"
    assert stored.orig_crs == "bd09"
    assert abs(stored.location.y - 23.9594) < INVERSE_TOLERANCE_DEG
    assert abs(stored.location.x - 109.6845) < INVERSE_TOLERANCE_DEG
    assert ImportBatch.objects.get().profile == "baidu"


def test_mapping_headers_match_loosely(tmp_path):
    # Full-width letters, spaces and case do not matter in header names.
    path = write_csv(tmp_path / "town.csv", ["单 号", "来电日期", "ｘ", "y"],
                     [["A-1", "2024-03-05 14:30", "109.6845", "23.9594"]])
    mapping = tmp_path / "town.toml"
    mapping.write_text(MAPPING_TOML, encoding="utf-8")

    run_import(path, "--mapping", str(mapping))

    assert ticket("A-1", "xz-town").orig_lng == 109.6845


def test_mapping_timezone_applies(tmp_path):
    path = write_csv(tmp_path / "town.csv", CUSTOM_HEADERS, CUSTOM_ROWS[:1])
    mapping = tmp_path / "town.toml"
    mapping.write_text(MAPPING_TOML.replace("Asia/Shanghai", "Asia/Tokyo"), encoding="utf-8")
    run_import(path, "--mapping", str(mapping))
    assert ticket("A-1", "xz-town").received_at == utc("2024-03-05 05:30")


COLUMNS = '[columns]\nexternal_id = "单号"\nreceived_at = "来电日期"\n'


@pytest.mark.parametrize(
    ("file_name", "text", "expected"),
    [
        ("bad.toml", "source_system = \n", "映射文件无效("),
        ("bad.json", "{\"source_system\": ", "映射文件无效("),
        ("bad.toml", 'source_system = "x"\n', "映射文件需要 columns 表,格式为 字段 = [表头名称]"),
        ("bad.json", "[1, 2]", "映射文件需要 columns 表,格式为 字段 = [表头名称]"),
        ("bad.toml", 'source_system = "x"\n' + COLUMNS + 'phone = "电话"\n',
         "未知字段 phone;可用字段:external_id, received_at, closed_at, status, raw_type, category, description, "
         "address, lat, lng, location, crs, department, complainant_name, complainant_phone, source"),
        ("bad.toml", 'source_system = "x"\n' + COLUMNS + "lat = [1]\n", "columns.lat 应为一个表头名称或名称列表"),
        ("bad.toml", 'source_system = "x"\nencoding = "gbk"\n' + COLUMNS,
         "未知配置项 encoding;可用:columns, crs, description, duplicates, name, raw_type_columns, source, "
         "source_system, status_values, study_area, timezone"),
        ("bad.toml", COLUMNS, "缺少 source_system;请填写工单编号所属的系统名"),
        ("bad.toml", 'source_system = "  "\n' + COLUMNS, "缺少 source_system;请填写工单编号所属的系统名"),
        ("bad.toml", 'source_system = "x"\ncrs = "mercator"\n' + COLUMNS, "未知坐标系 mercator;可用 wgs84、gcj02、bd09"),
        ("bad.toml", 'source_system = "x"\nduplicates = "keep"\n' + COLUMNS, "duplicates 只能是 reject 或 merge"),
        ("bad.toml", 'source_system = "x"\nsource = "phone"\n' + COLUMNS,
         "source 只能是 hotline, iot, inspection, other"),
        ("bad.toml", 'source_system = "x"\ntimezone = "Asia/Shangai"\n' + COLUMNS,
         "未知时区 Asia/Shangai;请填写 IANA 时区名,例如 Asia/Shanghai"),
        ("bad.toml", 'source_system = "x"\ntimezone = 8\n' + COLUMNS,
         "未知时区 8;请填写 IANA 时区名,例如 Asia/Shanghai"),
        ("bad.toml", 'source_system = "x"\nraw_type_columns = [1, 2]\n' + COLUMNS,
         "raw_type_columns 应为一个表头名称或名称列表"),
        ("bad.toml", 'source_system = "x"\nstatus_values = ["已办结"]\n' + COLUMNS,
         "status_values 应为 原状态 = 状态 的表,状态只能是 received, dispatched, accepted, on_site, rectified, "
         "closed, reopened"),
        ("bad.toml", 'source_system = "x"\nstatus_values = {"已办结" = "done"}\n' + COLUMNS,
         "status_values 应为 原状态 = 状态 的表,状态只能是 received, dispatched, accepted, on_site, rectified, "
         "closed, reopened"),
        ("bad.toml", 'source_system = "x"\nstudy_area = "109.4,23.7"\n' + COLUMNS,
         "研究区 109.4,23.7 应为 4 个数:min_lng,min_lat,max_lng,max_lat"),
    ],
)
def test_invalid_mapping_file(tmp_path, file_name, text, expected):
    path = write_csv(tmp_path / "town.csv", CUSTOM_HEADERS, CUSTOM_ROWS)
    mapping = tmp_path / file_name
    mapping.write_text(text, encoding="utf-8")

    message = import_error(path, "--mapping", str(mapping))

    assert message.startswith(f"{mapping}:{expected}")
    if not expected.endswith("("):
        assert message == f"{mapping}:{expected}"
    assert Ticket.objects.count() == 0


def test_mapping_optional_settings(tmp_path):
    headers = ["单号", "来电日期", "类别", "细类", "状态"]
    path = write_csv(tmp_path / "town.csv", headers, [["A-1", "2024-03-05 14:30", "消防", "消防通道占用", "已查看"]])
    mapping = tmp_path / "town.toml"
    mapping.write_text(
        'source_system = "x"\nraw_type_columns = ["类别", "细类"]\nstudy_area = "116.0,39.6,116.8,40.2"\n'
        'status_values = {"已查看" = "accepted"}\n'
        '[columns]\nexternal_id = "单号"\nreceived_at = "来电日期"\nstatus = "状态"\n', encoding="utf-8")

    run_import(path, "--mapping", str(mapping))

    stored = ticket("A-1", "x")
    assert stored.raw_type == "消防 / 消防通道占用"
    assert stored.category == "fire_lane"
    assert stored.status == "accepted"


def test_mapping_single_raw_type_column(tmp_path):
    path = write_csv(tmp_path / "town.csv", ["单号", "来电日期", "类别"], [["A-1", "2024-03-05 14:30", "灭火器过期"]])
    mapping = tmp_path / "town.toml"
    mapping.write_text('source_system = "x"\nraw_type_columns = "类别"\n' + COLUMNS, encoding="utf-8")

    run_import(path, "--mapping", str(mapping))

    assert ticket("A-1", "x").raw_type == "灭火器过期"
    assert ticket("A-1", "x").category == "facility_fault"


def test_mapping_file_not_found(tmp_path):
    path = write_csv(tmp_path / "town.csv", CUSTOM_HEADERS, CUSTOM_ROWS)
    mapping = tmp_path / "absent.toml"
    assert import_error(path, "--mapping", str(mapping)) == f"{mapping}:映射文件不存在"


def test_profile_without_required_columns(tmp_path):
    path = write_csv(tmp_path / "town.csv", CUSTOM_HEADERS, CUSTOM_ROWS)

    message = import_error(path)

    assert message == (
        f"{path}:映射方案 12345 找不到必需的列(external_id: 工单编号 / 工单号 / 受理编号 / 工单流水号 / 诉求编号 / 编号; "
        "received_at: 受理时间 / 来电时间 / 登记时间 / 创建时间 / 诉求时间 / 派单时间)。"
        "文件表头为:单号, 来电日期, 结案日期, 反映内容, 地点, X, Y。请换用其他 --profile,或用 --mapping 指定映射文件。"
    )


def test_other_profile_lists_its_own_columns(tmp_path):
    path = write_csv(tmp_path / "tickets.csv", HEADERS_12345, encoding_rows("刘䶮"))

    message = import_error(path, "--profile", "sf311")

    assert message == (
        f"{path}:映射方案 sf311 找不到必需的列(external_id: unique_key; received_at: created_date)。"
        f"文件表头为:{', '.join(HEADERS_12345)}。请换用其他 --profile,或用 --mapping 指定映射文件。"
    )


def test_only_missing_column_listed(tmp_path):
    path = write_csv(tmp_path / "tickets.csv", ["工单编号", "内容"], [["XZ1", "飞线充电"]])
    message = import_error(path)
    assert "(received_at: 受理时间 / 来电时间 / 登记时间 / 创建时间 / 诉求时间 / 派单时间)" in message
    assert "external_id" not in message


# --- Fire calls: one row per responding unit -----------------------------------------

SFFD_HEADERS = ["call_number", "unit_id", "call_type", "received_timestamp", "available_timestamp",
                "call_final_disposition", "address", "battalion", "location", "latitude", "longitude"]


def test_sffd_merges_unit_rows(tmp_path):
    location = "(37.7793747233139, -122.479242794814)"
    rows = [
        ["60100339", "E14", "Structure Fire", "2006-01-10 19:44:50+00:00", "2006-01-10 21:46:26+00:00", "Fire",
         "400 Block of 20TH AVE", "B07", location, "37.7793747233139", "-122.479242794814"],
        ["60100339", "B07", "Structure Fire", "2006-01-10 19:44:46+00:00", "2006-01-10 20:10:00+00:00", "Fire",
         "400 Block of 20TH AVE", "B08", location, "37.7793747233139", "-122.479242794814"],
        ["53360188", "B03", "Alarms", "2005-12-02 12:43:02+00:00", "2005-12-02 13:06:45+00:00", "Other",
         "400 Block of GEARY ST", "B01", "(37.7870986576237, -122.410705878297)", "", ""],
        ["60100339", "T05", "Structure Fire", "2006-01-10 19:45:10+00:00", "", "Fire",
         "400 Block of 20TH AVE", "B09", location, "37.7793747233139", "-122.479242794814"],
    ]
    path = write_csv(tmp_path / "fire_calls.csv", SFFD_HEADERS, rows)

    lines = run_import(path, "--profile", "sffd")

    assert lines[1].startswith("读取 4 行,导入 2 行,拒绝 0 行")
    assert "  同一警情的出动单位行(已合并): 2" in lines
    merged = ticket("60100339", "sffd")
    # The earliest unit row (the second one) is kept.
    assert merged.received_at == utc("2006-01-10 19:44:46")
    assert merged.closed_at == utc("2006-01-10 20:10:00")
    assert merged.department == "B08"
    assert merged.source == "other"
    assert merged.orig_crs == "wgs84"
    assert (merged.location.y, merged.location.x) == (37.7793747233139, -122.479242794814)
    # The other call's latitude and longitude cells are empty, so its "(lat, lng)" location text is used.
    other = ticket("53360188", "sffd")
    assert (other.location.y, other.location.x) == (37.7870986576237, -122.410705878297)
    assert other.category == "facility_fault"
    assert ImportBatch.objects.get().counts == {"merged_unit_rows": 2}


def test_duplicate_numbers_rejected_by_default_profile(tmp_path):
    rows = [good_row("XZ001"), good_row("XZ002"), good_row("XZ001"), good_row("XZ001")]
    path = write_csv(tmp_path / "tickets.csv", HEADERS_12345, rows)
    assert import_error(path).splitlines()[1:] == [
        "  第 4 行,列 工单编号:工单编号重复,首次出现在第 2 行 (XZ001)",
        "  第 5 行,列 工单编号:工单编号重复,首次出现在第 2 行 (XZ001)",
    ]


def test_rejected_first_row_does_not_hide_valid_repeat(tmp_path):
    # Row 2 is rejected for its date, so row 3 with the same number is the only valid one.
    rows = [["XZ001", "不是时间"], ["XZ001", "2024-03-05 14:30"]]
    path = write_csv(tmp_path / "tickets.csv", ["工单编号", "受理时间"], rows)

    run_import(path, "--skip-invalid", str(tmp_path / "rejects.csv"))

    assert ticket("XZ001").received_at == utc("2024-03-05 06:30")


# --- COPY and the index rebuild -----------------------------------------------------

def many_rows(count, prefix="XZ"):
    return [good_row(f"{prefix}{number:04d}", *TOWN_GCJ) for number in range(count)]


@pytest.mark.django_db(transaction=True)
def test_index_rebuild_keeps_indexes(tmp_path, monkeypatch):
    monkeypatch.setattr(loader, "INDEX_REBUILD_MIN_ROWS", 5)
    dropped = []
    secondary_indexes = loader._secondary_indexes

    def record_secondary_indexes(cursor):
        found = secondary_indexes(cursor)
        dropped.extend(found)
        return found

    monkeypatch.setattr(loader, "_secondary_indexes", record_secondary_indexes)
    before = ticket_indexes()

    run_import(write_csv(tmp_path / "tickets.csv", HEADERS_12345, many_rows(8)))

    # The branch ran: every index but the primary key and the unique number was dropped.
    assert sorted(name for name, _ in dropped) == sorted(
        name for name, _ in before if name not in {"spatial_ticket_pkey", "ticket_unique_number"})
    assert "ticket_h3_fine_idx" in {name for name, _ in dropped}
    assert ticket_indexes() == before
    assert invalid_ticket_indexes() == 0
    assert Ticket.objects.count() == 8
    assert Ticket.objects.filter(h3_fine=ticket("XZ0000").h3_fine).count() == 8


@pytest.mark.django_db(transaction=True)
def test_small_load_keeps_indexes_in_place(tmp_path, monkeypatch):
    run_import(write_csv(tmp_path / "first.csv", HEADERS_12345, many_rows(8, "A")))
    monkeypatch.setattr(loader, "INDEX_REBUILD_MIN_ROWS", 5)
    calls = []
    monkeypatch.setattr(loader, "_secondary_indexes", lambda cursor: calls.append(1) or [])

    # 6 rows into a table of 8: fewer than the rows already there, so no rebuild.
    run_import(write_csv(tmp_path / "second.csv", HEADERS_12345, many_rows(6, "B")))

    assert calls == []
    assert Ticket.objects.count() == 14


class FailAfterCopy:
    """Progress bar stand-in whose exit raises once the COPY block has finished."""

    def __init__(self, *args, **kwargs):
        self.rows = 0

    def __enter__(self):
        return self

    def update(self, rows):
        self.rows += rows

    def __exit__(self, exc_type, exc, traceback):
        if exc_type is None:
            raise RuntimeError(f"simulated failure after copying {self.rows} rows")
        return False


@pytest.mark.django_db(transaction=True)
def test_failure_after_copy_rolls_back_indexes(tmp_path, monkeypatch):
    run_import(write_csv(tmp_path / "first.csv", HEADERS_12345, many_rows(3, "A")))
    before = ticket_indexes()
    monkeypatch.setattr(loader, "INDEX_REBUILD_MIN_ROWS", 5)
    monkeypatch.setattr(loader, "tqdm", FailAfterCopy)

    with pytest.raises(RuntimeError, match="simulated failure after copying 8 rows"):
        run_import(write_csv(tmp_path / "second.csv", HEADERS_12345, many_rows(8, "B")))

    assert ticket_indexes() == before
    assert invalid_ticket_indexes() == 0
    assert sorted(Ticket.objects.values_list("external_id", flat=True)) == ["A0000", "A0001", "A0002"]
    assert ImportBatch.objects.count() == 1


@pytest.mark.django_db(transaction=True)
def test_failure_during_copy_rolls_back(tmp_path, monkeypatch):
    before = ticket_indexes()
    monkeypatch.setattr(loader, "INDEX_REBUILD_MIN_ROWS", 5)
    monkeypatch.setattr(loader, "COPY_CHUNK_ROWS", 3)
    chunks = []
    write_csv_chunk = loader.pa_csv.write_csv

    def fail_on_third_chunk(table, sink, options):
        chunks.append(table.num_rows)
        if len(chunks) == 3:
            raise OSError("simulated failure in the middle of COPY")
        write_csv_chunk(table, sink, options)

    monkeypatch.setattr(loader.pa_csv, "write_csv", fail_on_third_chunk)

    with pytest.raises(OSError, match="simulated failure in the middle of COPY"):
        run_import(write_csv(tmp_path / "tickets.csv", HEADERS_12345, many_rows(8)))

    assert chunks == [3, 3, 2]
    assert ticket_indexes() == before
    assert Ticket.objects.count() == 0
    assert ImportBatch.objects.count() == 0


@pytest.mark.django_db(transaction=True)
def test_failure_after_load_rolls_back_batch(tmp_path, monkeypatch):
    before = ticket_indexes()
    monkeypatch.setattr(loader, "INDEX_REBUILD_MIN_ROWS", 5)

    save = ImportBatch.save

    def fail_final_save(self, *args, **kwargs):
        # The batch is created before COPY and saved again with its counts after it.
        if kwargs.get("update_fields"):
            raise RuntimeError("simulated failure while closing the batch")
        return save(self, *args, **kwargs)

    monkeypatch.setattr(ImportBatch, "save", fail_final_save)

    with pytest.raises(RuntimeError, match="simulated failure while closing the batch"):
        run_import(write_csv(tmp_path / "tickets.csv", HEADERS_12345, many_rows(8)))

    assert ticket_indexes() == before
    assert Ticket.objects.count() == 0
    assert ImportBatch.objects.count() == 0
