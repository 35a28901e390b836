"""The supervision figures of a period, and the weekly and monthly reports built from them.

``collect`` gathers everything the leaders' dashboard and the reports show
(KPIs against targets, department and grid rankings, trends, overdue
tickets and cards) as plain values. The dashboard renders that dict, and
``build_pdf`` and ``build_xlsx`` write it, so report and dashboard cannot
disagree. Chinese text in the PDF needs a CJK TrueType font:
``FIREGRID_REPORT_FONT`` (default WenQuanYi Zen Hei from Debian's
``fonts-wqy-zenhei``).
"""
import io
import logging
import time
from pathlib import Path

from django.conf import settings
from django.db.models import Count, Q
from django.utils import timezone
from django.utils.translation import gettext as _

from gridmap import kpi
from gridmap.models import Card, Department, GridUnit, TicketHandling
from gridmap.supervision import ReinspectionDraw, ReinspectionResult
from spatial.models import TicketStatus

logger = logging.getLogger(__name__)

OVERDUE_LIST_LENGTH = 20
TREND_PERIODS = 12
TREND_KPIS = ("mean_close_days", "on_time_rate", "repeat_rate", "satisfaction_rate", "proactive_rate")
RANK_KPIS = ("mean_close_days", "on_time_rate", "repeat_rate", "reinspection_pass_rate", "average_rating",
             "proactive_rate")


class ReportError(ValueError):
    """A report that cannot be built; the message gives the reason and what to do."""


def _kpi_rows(figures, targets):
    rows = []
    for definition in kpi.KPIS:
        figure = figures[definition.code]
        baseline, target = targets.get(definition.code, (None, None))
        share, met = (kpi.progress(definition.code, figure["value"], baseline, target)
                      if target is not None else (None, False))
        rows.append({
            "code": definition.code, "label": str(definition.label),
            "dimension": str(kpi.DIMENSIONS[definition.dimension]), "definition": str(definition.definition),
            "better": definition.better, "kind": definition.kind,
            "value": figure["value"], "base": figure["base"], "hits": figure["hits"],
            "text": kpi.format_value(definition.code, figure["value"]),
            "baseline": baseline, "target": target, "progress": share, "met": met,
            "baseline_text": kpi.format_value(definition.code, baseline) if baseline is not None else "",
            "target_text": kpi.format_value(definition.code, target) if target is not None else "",
        })
    return rows


def _ranking(grouped, names):
    """Rows of a ranking, best on-time rate first, then shortest mean time to close; unknown groups last."""
    rows = []
    for key, figures in grouped.items():
        rows.append({
            "key": key, "name": names.get(key, _("未落格/未派单")) if key is not None else _("未落格/未派单"),
            "tickets": figures["proactive_rate"]["base"], "closed": figures["mean_close_days"]["base"],
            **{code: figures[code]["value"] for code in RANK_KPIS},
            **{f"{code}_text": kpi.format_value(code, figures[code]["value"]) for code in RANK_KPIS},
        })

    def order(row):
        on_time = row["on_time_rate"]
        days = row["mean_close_days"]
        return (row["key"] is None, -(on_time if on_time is not None else -1),
                days if days is not None else float("inf"), row["name"])

    rows.sort(key=order)
    for rank, row in enumerate(rows, start=1):
        row["rank"] = rank
    return rows


def _overdue(now):
    open_overdue = TicketHandling.objects.filter(met_at__isnull=True, due_at__lt=now).exclude(
        ticket__status=TicketStatus.CLOSED)
    counts = open_overdue.aggregate(total=Count("pk"), yellow=Count("pk", filter=Q(card=Card.YELLOW)),
                                    red=Count("pk", filter=Q(card=Card.RED)),
                                    unexplained=Count("pk", filter=Q(card=Card.RED, red_explanation="")))
    items = []
    for handling in (open_overdue.select_related("ticket", "lead", "ticket__placement__unit")
                     .order_by("due_at", "pk")[:OVERDUE_LIST_LENGTH]):
        placement = getattr(handling.ticket, "placement", None)
        items.append({
            "ticket_id": handling.ticket_id, "number": handling.ticket.external_id,
            "category": handling.ticket.get_category_display(), "status": handling.ticket.get_status_display(),
            "lead": handling.lead.name if handling.lead else "", "unit": placement.unit.name if placement else "",
            "due_at": timezone.localtime(handling.due_at), "overdue_days": (now - handling.due_at).total_seconds() / 86400,
            "card": handling.card, "card_text": handling.get_card_display() if handling.card else "",
        })
    return counts, items


def _cards_in(period):
    carded = TicketHandling.objects.filter(carded_at__gte=period.start, carded_at__lt=period.end)
    return carded.aggregate(yellow=Count("pk", filter=Q(card=Card.YELLOW)), red=Count("pk", filter=Q(card=Card.RED)))


def _reinspection_summary(period):
    record = ReinspectionDraw.objects.filter(period=period.key).first()
    if record is None:
        return None
    counts = record.reinspections.aggregate(
        pending=Count("pk", filter=Q(result=ReinspectionResult.PENDING)),
        passed=Count("pk", filter=Q(result=ReinspectionResult.PASSED)),
        failed=Count("pk", filter=Q(result=ReinspectionResult.FAILED)),
        suspected=Count("pk", filter=Q(suspected_fake=True)))
    return {"period": record.period, "seed": record.seed, "population": record.population,
            "sample": record.sample, **counts}


def collect(period, now=None):
    """Return every figure of the dashboard and the reports for ``period`` (a ``gridmap.kpi.Period``)."""
    now = now or timezone.now()
    targets = kpi.targets()
    overall, by_department, by_grid = kpi.compute_breakdown(period)
    departments = dict(Department.objects.values_list("pk", "name"))
    units = dict(GridUnit.objects.filter(pk__in=[key for key in by_grid if key]).values_list("pk", "name"))
    overdue_counts, overdue_items = _overdue(now)
    trend = kpi.cached_trend(period, TREND_PERIODS, TREND_KPIS, overall)
    return {
        "period": {"key": period.key, "kind": period.kind, "label": str(period.label),
                   "start": period.start, "end": period.end},
        "generated_at": timezone.localtime(now),
        "kpis": _kpi_rows(overall, targets),
        "departments": _ranking(by_department, departments),
        "grid_units": _ranking(by_grid, units),
        "trend": {
            "periods": [item.key for item, _figures in trend],
            "series": {code: [figures[code]["value"] for _item, figures in trend] for code in TREND_KPIS},
        },
        "overdue": {**overdue_counts, "items": overdue_items},
        "cards": _cards_in(period),
        "reinspection": _reinspection_summary(period),
    }


# --- XLSX -----------------------------------------------------------------------

def build_xlsx(figures):
    """Return the report as XLSX bytes: one sheet each for KPIs, rankings, trends and overdue tickets."""
    from openpyxl import Workbook
    from openpyxl.styles import Font

    book = Workbook()
    sheet = book.active
    sheet.title = _("考核指标")
    title = _("消防安全工单督办报告 · %(period)s") % {"period": figures["period"]["label"]}
    sheet.append([title])
    sheet["A1"].font = Font(bold=True, size=14)
    sheet.append([_("生成时间"), figures["generated_at"].strftime("%Y-%m-%d %H:%M")])
    sheet.append([])
    sheet.append([_("维度"), _("指标"), _("数值"), _("显示值"), _("分子"), _("分母"), _("基线"), _("目标"),
                  _("完成进度"), _("达标"), _("口径")])
    for row in figures["kpis"]:
        sheet.append([row["dimension"], row["label"], row["value"], row["text"], row["hits"], row["base"],
                      row["baseline"], row["target"], row["progress"], _("是") if row["met"] else _("否"),
                      row["definition"]])
    for name, key in ((_("部门排名"), "departments"), (_("网格排名"), "grid_units")):
        ranking = book.create_sheet(name)
        ranking.append([_("名次"), _("名称"), _("受理工单"), _("办结工单")]
                       + [str(kpi.KPI_BY_CODE[code].label) for code in RANK_KPIS])
        for row in figures[key]:
            ranking.append([row["rank"], row["name"], row["tickets"], row["closed"]]
                           + [row[code] for code in RANK_KPIS])
    trend = book.create_sheet(_("趋势"))
    trend.append([_("周期")] + [str(kpi.KPI_BY_CODE[code].label) for code in TREND_KPIS])
    for index, key in enumerate(figures["trend"]["periods"]):
        trend.append([key] + [figures["trend"]["series"][code][index] for code in TREND_KPIS])
    overdue = book.create_sheet(_("超期工单"))
    counts = figures["overdue"]
    overdue.append([_("超期未办结"), counts["total"], _("黄牌"), counts["yellow"], _("红牌"), counts["red"],
                    _("红牌未说明"), counts["unexplained"]])
    overdue.append([_("工单编号"), _("问题类型"), _("状态"), _("牵头部门"), _("所属网格"), _("办理时限"),
                    _("超期天数"), _("牌")])
    for item in counts["items"]:
        overdue.append([item["number"], item["category"], item["status"], item["lead"], item["unit"],
                        item["due_at"].strftime("%Y-%m-%d %H:%M"), round(item["overdue_days"], 2), item["card_text"]])
    buffer = io.BytesIO()
    book.save(buffer)
    return buffer.getvalue()


# --- PDF ------------------------------------------------------------------------

def _register_font():
    from reportlab.pdfbase import pdfmetrics
    from reportlab.pdfbase.ttfonts import TTFont

    path = settings.FIREGRID_REPORT_FONT
    if not Path(path).is_file():
        raise ReportError(_("找不到中文字体 %(path)s。请安装 fonts-wqy-zenhei,或用 FIREGRID_REPORT_FONT 指定一个 "
                            "TrueType 字体文件。") % {"path": path})
    # One registered name per font file, so a changed setting takes effect.
    name = f"FireGridCJK-{abs(hash(str(path))) % 10 ** 8}"
    if name not in pdfmetrics.getRegisteredFontNames():
        pdfmetrics.registerFont(TTFont(name, path, subfontIndex=0))
    return name


def build_pdf(figures):
    """Return the report as PDF bytes (A4), with the same figures as the XLSX and the dashboard."""
    from reportlab.lib import colors
    from reportlab.lib.pagesizes import A4
    from reportlab.lib.styles import ParagraphStyle
    from reportlab.lib.units import mm
    from reportlab.platypus import Paragraph, SimpleDocTemplate, Spacer, Table, TableStyle

    font = _register_font()
    title_style = ParagraphStyle("title", fontName=font, fontSize=16, leading=22, spaceAfter=6)
    heading = ParagraphStyle("heading", fontName=font, fontSize=12, leading=18, spaceBefore=8, spaceAfter=4)
    body = ParagraphStyle("body", fontName=font, fontSize=8, leading=11)
    table_style = TableStyle([
        ("FONTNAME", (0, 0), (-1, -1), font), ("FONTSIZE", (0, 0), (-1, -1), 8),
        ("GRID", (0, 0), (-1, -1), 0.3, colors.grey), ("BACKGROUND", (0, 0), (-1, 0), colors.HexColor("#e8eef5")),
        ("VALIGN", (0, 0), (-1, -1), "TOP"),
    ])

    def cell(text):
        return Paragraph(str(text), body)

    story = [Paragraph(_("消防安全工单督办报告 · %(period)s") % {"period": figures["period"]["label"]}, title_style),
             Paragraph(_("生成时间:%(at)s。各项指标的口径列于表中,数据与领导驾驶舱一致。") % {
                 "at": figures["generated_at"].strftime("%Y-%m-%d %H:%M")}, body)]
    story.append(Paragraph(_("考核指标"), heading))
    rows = [[_("维度"), _("指标"), _("数值"), _("基线 → 目标"), _("进度"), _("口径")]]
    for row in figures["kpis"]:
        progress = f"{row['progress'] * 100:.0f}%" if row["progress"] is not None else "—"
        goal = f"{row['baseline_text']} → {row['target_text']}" if row["target"] is not None else "—"
        rows.append([row["dimension"], cell(row["label"]), row["text"], goal, progress, cell(row["definition"])])
    story.append(Table(rows, colWidths=[16 * mm, 30 * mm, 20 * mm, 32 * mm, 14 * mm, 68 * mm], style=table_style,
                       repeatRows=1))
    for name, key in ((_("部门排名"), "departments"), (_("网格排名(社区级)"), "grid_units")):
        story.append(Paragraph(name, heading))
        rows = [[_("名次"), _("名称"), _("受理"), _("办结")] + [cell(kpi.KPI_BY_CODE[c].label) for c in RANK_KPIS]]
        for row in figures[key]:
            rows.append([row["rank"], cell(row["name"]), row["tickets"], row["closed"]]
                        + [row[f"{code}_text"] for code in RANK_KPIS])
        story.append(Table(rows, style=table_style, repeatRows=1))
    story.append(Paragraph(_("趋势"), heading))
    rows = [[_("周期")] + [cell(kpi.KPI_BY_CODE[c].label) for c in TREND_KPIS]]
    for index, key in enumerate(figures["trend"]["periods"]):
        rows.append([key] + [kpi.format_value(code, figures["trend"]["series"][code][index]) for code in TREND_KPIS])
    story.append(Table(rows, style=table_style, repeatRows=1))
    counts = figures["overdue"]
    story.append(Paragraph(_("超期工单与亮牌"), heading))
    story.append(Paragraph(_("当前超期未办结 %(total)s 件,其中黄牌 %(yellow)s 件、红牌 %(red)s 件(红牌未说明 "
                             "%(unexplained)s 件);本期新亮黄牌 %(new_yellow)s 件、红牌 %(new_red)s 件。") % {
        **{key: counts[key] for key in ("total", "yellow", "red", "unexplained")},
        "new_yellow": figures["cards"]["yellow"], "new_red": figures["cards"]["red"]}, body))
    if counts["items"]:
        rows = [[_("工单编号"), _("问题类型"), _("牵头部门"), _("所属网格"), _("办理时限"), _("超期天数"), _("牌")]]
        for item in counts["items"]:
            rows.append([item["number"], cell(item["category"]), cell(item["lead"]), cell(item["unit"]),
                         item["due_at"].strftime("%Y-%m-%d %H:%M"), f"{item['overdue_days']:.1f}", item["card_text"]])
        story.append(Spacer(1, 2 * mm))
        story.append(Table(rows, style=table_style, repeatRows=1))
    summary = figures["reinspection"]
    story.append(Paragraph(_("随机复查"), heading))
    if summary:
        story.append(Paragraph(_("本期办结 %(population)s 件,随机抽取 %(sample)s 件(其中疑似虚假整改加权抽中 "
                                 "%(suspected)s 件,随机种子 %(seed)s):整改属实 %(passed)s 件,整改不实 %(failed)s 件,"
                                 "待复查 %(pending)s 件。") % summary, body))
    else:
        story.append(Paragraph(_("本期尚未抽取。"), body))
    buffer = io.BytesIO()
    document = SimpleDocTemplate(buffer, pagesize=A4, leftMargin=12 * mm, rightMargin=12 * mm, topMargin=12 * mm,
                                 bottomMargin=12 * mm, title=figures["period"]["label"], author="FireGrid")
    document.build(story)
    return buffer.getvalue()


def build_report(period, formats=("pdf", "xlsx"), out_dir=None, now=None):
    """Collect the figures once and write the report in each format; return {format: path} and the figures."""
    started = time.perf_counter()
    unknown = set(formats) - {"pdf", "xlsx"}
    if unknown:
        raise ReportError(_("报告格式 “%(value)s” 无效,可选 pdf、xlsx。") % {"value": ", ".join(sorted(unknown))})
    out_dir = Path(out_dir or Path(settings.VAR_DIR) / "reports")
    out_dir.mkdir(parents=True, exist_ok=True)
    figures = collect(period, now)
    paths = {}
    for fmt in formats:
        data = build_pdf(figures) if fmt == "pdf" else build_xlsx(figures)
        path = out_dir / f"firegrid-report-{period.key}.{fmt}"
        # Write then rename, so a failed build never leaves half a report behind.
        partial = path.with_suffix(path.suffix + ".part")
        partial.write_bytes(data)
        partial.replace(path)
        paths[fmt] = path
    logger.info("Built the %s report in %.1f s: %s", period.key, time.perf_counter() - started,
                ", ".join(str(path) for path in paths.values()))
    return paths, figures


def previous_period(kind, now=None):
    """Return the last complete week or month before ``now``, for scheduled reports."""
    today = timezone.localtime(now or timezone.now()).date()
    return kpi.period_containing(kind, today).shifted(-1) if kind in ("week", "month") else None
