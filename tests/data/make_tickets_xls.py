"""Write tickets_12345.xls, the Excel 97-2003 fixture of the intake tests.

xlwt is not a project dependency: it was installed by hand once to run
this script (xlwt 1.3.0, ``python tests/data/make_tickets_xls.py``), and
the .xls it wrote is committed beside it. The tests only read the file.
"""
import datetime
from pathlib import Path

import xlwt

HEADERS = ["工单编号", "受理时间", "办结时间", "诉求内容", "诉求地址", "经度", "纬度", "承办单位", "诉求类型", "联系电话", "诉求人"]
# Ticket numbers are number cells, as in exports whose number column was
# typed as numeric; the times are date cells; the location is GCJ-02.
ROWS = [
    [202403050001, datetime.datetime(2024, 3, 5, 14, 30), datetime.datetime(2024, 3, 6, 9, 15),
     "楼道内飞线充电,存在火灾隐患", "象州县象州镇人民路12号", 109.688875, 23.956606, "象州镇人民政府", "消防安全",
     "13800000001", "张三"],
    [202403050002, datetime.datetime(2024, 3, 5, 16, 0, 45), None,
     "小区消防通道被堵,车辆无法通行", "象州县新兴路8号", 109.706110, 23.970530, "县消防救援大队", "消防安全",
     "13800000002", "李四"],
]


def main():
    workbook = xlwt.Workbook(encoding="utf-8")
    sheet = workbook.add_sheet("工单")
    date_style = xlwt.easyxf(num_format_str="yyyy-mm-dd hh:mm:ss")
    for column, header in enumerate(HEADERS):
        sheet.write(0, column, header)
    for row_number, row in enumerate(ROWS, start=1):
        for column, value in enumerate(row):
            if isinstance(value, datetime.datetime):
                sheet.write(row_number, column, value, date_style)
            elif value is not None:
                sheet.write(row_number, column, value)
    workbook.save(str(Path(__file__).with_name("tickets_12345.xls")))


if __name__ == "__main__":
    main()
