"""Charts of the leaders' dashboard, drawn as inline SVG on the server.

No chart library is loaded: the figures come from ``gridmap.reports.collect``
and each chart is a small SVG string built here, so the page works on an
intranet without a CDN and weighs a few kilobytes. Every label is escaped.
The ticket heatmap is a hexagon map of H3 cells coloured by ticket count.
"""
import math

import h3
from django.db.models import Count
from django.utils.html import escape, format_html
from django.utils.safestring import mark_safe
from django.utils.translation import gettext as _

from spatial.models import Ticket

HEAT_COLORS = ("#fff5eb", "#fdd0a2", "#fdae6b", "#fd8d3c", "#e6550d", "#a63603")
MAX_HEAT_CELLS = 1500
LINE_COLOR = "#2b6cb0"
TARGET_COLOR = "#c53030"


def _f(value):
    """Format a coordinate before format_html, which escapes its arguments into strings."""
    return f"{value:.1f}"


def _number(value, kind):
    if value is None:
        return "—"
    return f"{value * 100:.0f}%" if kind == "rate" else f"{value:.1f}"


def line_chart(title, periods, values, kind, target=None, width=320, height=150):
    """Draw one KPI over periods with the target as a dashed line, leaving gaps where a period has no value."""
    left, right, top, bottom = 40, 10, 22, 28
    known = [value for value in values if value is not None]
    ceiling = max(known + ([target] if target is not None else []) + [1e-9])
    ceiling = 1.0 if kind == "rate" and ceiling <= 1 else ceiling * 1.15
    plot_w, plot_h = width - left - right, height - top - bottom
    step = plot_w / max(len(periods) - 1, 1)

    def point(index, value):
        return left + index * step, top + plot_h * (1 - value / ceiling)

    parts = [format_html('<svg class="chart line-chart" viewBox="0 0 {} {}" role="img" aria-label="{}">', width,
                         height, title),
             format_html('<text x="{}" y="14" class="chart-title">{}</text>', left, title),
             format_html('<line x1="{}" y1="{}" x2="{}" y2="{}" class="axis"/>', left, top + plot_h, width - right,
                         top + plot_h),
             format_html('<text x="{}" y="{}" class="tick" text-anchor="end">{}</text>', left - 4, top + 8,
                         _number(ceiling, kind)),
             format_html('<text x="{}" y="{}" class="tick" text-anchor="end">0</text>', left - 4, top + plot_h)]
    if target is not None:
        _x, y = point(0, target)
        parts.append(format_html('<line x1="{}" y1="{}" x2="{}" y2="{}" stroke="{}" stroke-dasharray="4 3"/>'
                                 '<text x="{}" y="{}" class="tick target" text-anchor="end">{}</text>', left, _f(y), width - right,
                                 _f(y), TARGET_COLOR, width - right, _f(y - 3), _("目标")))
    segment = []
    for index, value in enumerate(values + [None]):
        if value is not None:
            segment.append(point(index, value))
            continue
        if segment:
            path = " ".join(f"{x:.1f},{y:.1f}" for x, y in segment)
            parts.append(format_html('<polyline points="{}" fill="none" stroke="{}" stroke-width="2"/>', path,
                                     LINE_COLOR))
        segment = []
    for index, value in enumerate(values):
        if value is not None:
            x, y = point(index, value)
            parts.append(format_html('<circle cx="{}" cy="{}" r="2.5" fill="{}"><title>{}: {}</title>'
                                     '</circle>', _f(x), _f(y), LINE_COLOR, periods[index], _number(value, kind)))
    for index, anchor in ((0, "start"), (len(periods) - 1, "end")):
        x, _y = point(index, 0)
        parts.append(format_html('<text x="{}" y="{}" class="tick" text-anchor="{}">{}</text>', _f(x),
                                 height - 8, anchor, periods[index]))
    parts.append(mark_safe("</svg>"))
    return mark_safe("".join(parts))


def bar_chart(title, rows, kind, width=420, bar_h=16, limit=12):
    """Horizontal bars of one KPI per named row (best first as given); rows are (name, value)."""
    rows = [(name, value) for name, value in rows if value is not None][:limit]
    label_w, top = 130, 22
    height = top + len(rows) * (bar_h + 6) + 6
    ceiling = max([value for _name, value in rows] + [1e-9])
    ceiling = 1.0 if kind == "rate" and ceiling <= 1 else ceiling
    parts = [format_html('<svg class="chart bar-chart" viewBox="0 0 {} {}" role="img" aria-label="{}">', width,
                         height, title),
             format_html('<text x="0" y="14" class="chart-title">{}</text>', title)]
    for index, (name, value) in enumerate(rows):
        y = top + index * (bar_h + 6)
        length = (width - label_w - 50) * value / ceiling
        short = name if len(name) <= 9 else name[:8] + "…"
        parts.append(format_html(
            '<text x="{}" y="{}" class="tick" text-anchor="end">{}</text>'
            '<rect x="{}" y="{}" width="{}" height="{}" fill="{}"><title>{}: {}</title></rect>'
            '<text x="{}" y="{}" class="tick">{}</text>',
            label_w - 6, y + bar_h - 4, short, label_w, y, _f(length), bar_h, LINE_COLOR, name, _number(value, kind),
            _f(label_w + length + 4), y + bar_h - 4, _number(value, kind)))
    if not rows:
        parts.append(format_html('<text x="0" y="{}" class="tick">{}</text>', top + 12, _("暂无数据")))
    parts.append(mark_safe("</svg>"))
    return mark_safe("".join(parts))


def progress_bar(share, met, width=160, height=10):
    """Draw a bar of the share of the way from baseline to target."""
    if share is None:
        return mark_safe("")
    color = "#2f855a" if met else "#d69e2e"
    return format_html('<svg class="progress" viewBox="0 0 {} {}" width="{}" height="{}" role="img" aria-label="{}">'
                       '<rect width="{}" height="{}" fill="#e2e8f0" rx="3"/>'
                       '<rect width="{}" height="{}" fill="{}" rx="3"/></svg>',
                       width, height, width, height, f"{share * 100:.0f}%", width, height, _f(width * share), height, color)


def heat_cells(period, max_cells=MAX_HEAT_CELLS):
    """Return ({H3 cell string: ticket count}, resolution) of tickets received in ``period``.

    Counts are grouped in the database by the fine H3 cell, then merged up
    to the finest parent resolution with at most ``max_cells`` cells.
    """
    rows = (Ticket.objects.filter(received_at__gte=period.start, received_at__lt=period.end, h3_fine__isnull=False)
            .values_list("h3_fine").annotate(n=Count("pk")).order_by())
    counts = {h3.int_to_str(cell): n for cell, n in rows}
    if not counts:
        return {}, None
    resolution = h3.get_resolution(next(iter(counts)))
    while len(counts) > max_cells and resolution > 0:
        resolution -= 1
        merged = {}
        for cell, n in counts.items():
            parent = h3.cell_to_parent(cell, resolution)
            merged[parent] = merged.get(parent, 0) + n
        counts = merged
    return counts, resolution


def heatmap_svg(counts, width=560, height=420):
    """Draw H3 cells as hexagons in an equirectangular view scaled to fit; the darkest colour is the top 1/6."""
    if not counts:
        return format_html('<p class="empty">{}</p>', _("本期没有带坐标的工单。"))
    boundaries = {cell: h3.cell_to_boundary(cell) for cell in counts}
    lats = [lat for ring in boundaries.values() for lat, _lng in ring]
    lngs = [lng for ring in boundaries.values() for _lat, lng in ring]
    shrink = math.cos(math.radians((min(lats) + max(lats)) / 2))
    span_x = max((max(lngs) - min(lngs)) * shrink, 1e-9)
    span_y = max(max(lats) - min(lats), 1e-9)
    scale = min((width - 20) / span_x, (height - 20) / span_y)
    ordered = sorted(counts.values())
    breaks = [ordered[min(len(ordered) - 1, int(len(ordered) * k / len(HEAT_COLORS)))] for k in range(1, len(HEAT_COLORS))]

    def color(n):
        return HEAT_COLORS[sum(1 for edge in breaks if n > edge)]

    parts = [format_html('<svg class="chart heatmap" viewBox="0 0 {} {}" role="img" aria-label="{}">', width, height,
                         _("工单热力图"))]
    west, south = min(lngs), min(lats)
    unit = escape(_("件"))
    # Plain f-strings: every value is a number or a colour constant, and
    # format_html's escaping of each argument cost seconds for 1,500 cells.
    for cell, n in sorted(counts.items(), key=lambda item: item[1]):
        points = " ".join(f"{10 + (lng - west) * shrink * scale:.1f},{height - 10 - (lat - south) * scale:.1f}"
                          for lat, lng in boundaries[cell])
        parts.append(f'<polygon points="{points}" fill="{color(n)}" stroke="#fff" stroke-width="0.5">'
                     f'<title>{int(n)} {unit}</title></polygon>')
    parts.append("</svg>")
    legend = "".join(format_html('<span class="swatch" style="background:{}"></span>', c) for c in HEAT_COLORS)
    return mark_safe("".join(parts) + format_html(
        '<p class="legend">{} {} {}</p>', _("少"), mark_safe(legend), _("多")))
