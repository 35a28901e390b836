"""Received-date filters and calendar periods shared by the analytics modules.

Dates are calendar days of the hotline in Beijing time, and both ends of a
filter are included, as in the hotspot runs.
"""
import datetime
from zoneinfo import ZoneInfo

import numpy as np
import pandas as pd
from django.utils.translation import gettext as _

HOTLINE_TIME_ZONE = ZoneInfo("Asia/Shanghai")
PERIODS = ("week", "month")


class AnalysisParameterError(ValueError):
    """Invalid analysis parameter; the message names the value and what is allowed."""


def parse_date(name, value):
    """Return ``value`` as a date; it may be a date, None or a "YYYY-MM-DD" string."""
    if value is None or isinstance(value, datetime.date):
        return value
    try:
        return datetime.datetime.strptime(str(value), "%Y-%m-%d").date()
    except ValueError:
        raise AnalysisParameterError(
            _("%(name)s 的日期 “%(value)s” 无效,应为 YYYY-MM-DD 格式,例如 2024-03-01。")
            % {"name": name, "value": value}
        ) from None


def check_period(period):
    if period not in PERIODS:
        raise AnalysisParameterError(
            _("周期 “%(value)s” 无效,可选 %(allowed)s。") % {"value": period, "allowed": ", ".join(PERIODS)}
        )
    return period


def filter_received(tickets, received_from=None, received_to=None):
    """Filter a ticket queryset to a received period given as dates, both ends included."""
    received_from = parse_date("received_from", received_from)
    received_to = parse_date("received_to", received_to)
    if received_from and received_to and received_from > received_to:
        raise AnalysisParameterError(
            _("开始日期 %(start)s 晚于结束日期 %(end)s。") % {"start": received_from, "end": received_to}
        )
    if received_from is not None:
        start = datetime.datetime.combine(received_from, datetime.time.min, tzinfo=HOTLINE_TIME_ZONE)
        tickets = tickets.filter(received_at__gte=start)
    if received_to is not None:
        day_after = received_to + datetime.timedelta(days=1)
        end = datetime.datetime.combine(day_after, datetime.time.min, tzinfo=HOTLINE_TIME_ZONE)
        tickets = tickets.filter(received_at__lt=end)
    return tickets


def local_times(values):
    """Return timestamps (aware or UTC-naive) as a pandas DatetimeIndex in Beijing time."""
    index = pd.DatetimeIndex(pd.to_datetime(values, utc=True))
    return index.tz_convert(HOTLINE_TIME_ZONE)


def period_starts(times, period):
    """Return the first day (a numpy datetime64[D]) of the week (Monday) or month of each Beijing time."""
    check_period(period)
    days = times.tz_localize(None).normalize().values.astype("datetime64[D]")
    if period == "month":
        return days.astype("datetime64[M]").astype("datetime64[D]")
    # 1970-01-01 was a Thursday, so day numbers shifted by 3 start weeks on Monday.
    day_numbers = days.astype(np.int64)
    return (day_numbers - (day_numbers + 3) % 7).astype("datetime64[D]")


def next_period_start(start, period):
    """Return the first day of the period after the one starting at ``start`` (a date)."""
    check_period(period)
    if period == "week":
        return start + datetime.timedelta(days=7)
    if start.month == 12:
        return start.replace(year=start.year + 1, month=1, day=1)
    return start.replace(month=start.month + 1, day=1)
