"""Deadlines from rules, counted in hours, calendar days or Chinese working days.

Working days follow the statutory holidays and the adjusted working
weekends (调休) of the ``chinesecalendar`` package, which is updated each
year when the State Council publishes the next year's schedule. The card
thresholds follow the study: yellow when a ticket runs 30% of its promised
duration past the deadline, red at 50%.
"""
import datetime
import logging
from zoneinfo import ZoneInfo

import chinese_calendar
from django.conf import settings

from gridmap.models import DeadlineRule, Milestone, TimeUnit, keywords_match

logger = logging.getLogger(__name__)

YELLOW_SHARE = 0.3
RED_SHARE = 0.5


def is_working_day(day):
    """Return True when ``day`` (a date) is a working day in mainland China.

    NOTE: outside the years chinesecalendar covers, Monday to Friday count
    as working days and a warning is logged; update the package yearly.
    """
    try:
        return chinese_calendar.is_workday(day)
    except NotImplementedError:
        logger.warning("chinesecalendar has no data for %s; counting Monday-Friday as working days", day.year)
        return day.weekday() < 5


def add_working_days(start, days):
    """Return the moment ``days`` working days after ``start``, at the same local clock time.

    A ticket received on Friday 15:00 before a normal weekend is due on
    Monday 15:00 for one working day; one received on a holiday counts from
    the next working day.
    """
    local = start.astimezone(ZoneInfo(settings.TIME_ZONE))
    day, counted = local.date(), 0
    while counted < days:
        day += datetime.timedelta(days=1)
        if is_working_day(day):
            counted += 1
    return local.replace(year=day.year, month=day.month, day=day.day)


def due_after(start, amount, unit):
    """Return the deadline ``amount`` ``unit`` (a TimeUnit) after ``start``."""
    if unit == TimeUnit.HOURS:
        return start + datetime.timedelta(hours=amount)
    if unit == TimeUnit.CALENDAR_DAYS:
        return start + datetime.timedelta(days=amount)
    if unit == TimeUnit.WORKING_DAYS:
        return add_working_days(start, amount)
    raise ValueError(f"unknown time unit {unit!r}")


def card_thresholds(start, due):
    """Return (yellow_at, red_at): 30% and 50% of the promised duration past ``due``."""
    promised = due - start
    return due + promised * YELLOW_SHARE, due + promised * RED_SHARE


def matching_rule(ticket, handling, rules=None):
    """Return the first active DeadlineRule for the ticket and its departments, or None."""
    if rules is None:
        rules = DeadlineRule.objects.filter(active=True)
    departments = [handling.lead] + list(handling.partners.all()) if handling.lead_id else []
    falls_to_property = any(department.handles_property for department in departments)
    text = ticket_text(ticket)
    for rule in rules:
        if rule.category and rule.category != ticket.category:
            continue
        if not keywords_match(rule.keywords, text):
            continue
        if rule.property_only and not falls_to_property:
            continue
        return rule
    return None


def ticket_text(ticket):
    """Return the lower-cased description, type and address of ``ticket``, where rules look for keywords."""
    return " ".join(filter(None, [ticket.description, ticket.raw_type, ticket.address])).lower()


def apply_deadline(handling, start):
    """Set the deadline fields of ``handling`` from the matching rule, counted from ``start``; save it."""
    rule = matching_rule(handling.ticket, handling)
    handling.deadline_rule = rule
    handling.started_at = start
    if rule is None:
        handling.milestone = ""
        handling.due_at = handling.yellow_at = handling.red_at = None
    else:
        handling.milestone = rule.milestone
        handling.due_at = due_after(start, rule.amount, rule.unit)
        handling.yellow_at, handling.red_at = card_thresholds(start, handling.due_at)
    handling.save()
    return handling


def milestone_reached(milestone, status=None, replied=False):
    """Return True when a ticket in ``status`` (or having replied) has reached ``milestone``."""
    order = ["dispatched", "accepted", "on_site", "rectified", "closed"]
    if milestone == Milestone.REPLY:
        return replied
    if status not in order:
        return False
    return order.index(status) >= order.index(milestone)
