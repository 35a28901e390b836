"""Fire-safety ticket categories and the keyword rules that assign them.

The categories follow the fire tickets of a county 12345 hotline: blocked
fire lanes and escape routes, fire facility faults, e-bike charging
violations (including cables run from windows, 飞线充电), separation
distances, flammable storage and electrical hazards. The keyword rules are
the baseline classifier that works without labelled data; each rule lists
Chinese terms first and English terms for exports such as San Francisco's.
"""
from django.db import models
from django.utils.translation import gettext_lazy as _


class Category(models.TextChoices):
    FIRE_LANE = "fire_lane", _("消防通道/疏散通道堵塞")
    FACILITY_FAULT = "facility_fault", _("消防设施故障")
    EBIKE_CHARGING = "ebike_charging", _("电动车违规充电")
    SEPARATION = "separation", _("消防间距不足")
    FLAMMABLE_STORAGE = "flammable_storage", _("易燃物品堆放")
    ELECTRICAL = "electrical", _("电气线路隐患")
    OTHER = "other", _("其他")


# Order matters: the first rule with a matching keyword wins, so the more
# specific hazards come before the broad ones ("充电" before "电线").
KEYWORD_RULES = [
    (
        Category.EBIKE_CHARGING,
        ["电动车", "电瓶车", "电单车", "飞线充电", "私拉电线充电", "楼道充电", "充电桩", "e-bike", "ebike",
         "scooter charging", "battery charging"],
    ),
    (
        Category.FIRE_LANE,
        ["消防通道", "疏散通道", "安全出口", "楼梯间堆放", "楼道堆放", "堵塞通道", "占用通道", "占道", "违停",
         "fire lane", "blocked exit", "blocked driveway", "exit blocked", "egress"],
    ),
    (
        Category.FACILITY_FAULT,
        ["消防栓", "消火栓", "灭火器", "喷淋", "烟感", "火灾报警", "消防设施", "应急照明", "疏散指示", "消防水",
         "hydrant", "extinguisher", "sprinkler", "smoke detector", "fire alarm", "alarms"],
    ),
    (
        Category.SEPARATION,
        ["防火间距", "消防间距", "间距不足", "违章搭建", "违建", "防火分隔", "separation", "setback"],
    ),
    (
        Category.FLAMMABLE_STORAGE,
        ["易燃", "易爆", "液化气", "煤气罐", "油漆", "堆放杂物", "废品", "可燃物", "flammable", "gas leak",
         "propane", "hazardous material", "hazmat", "combustible"],
    ),
    (
        Category.ELECTRICAL,
        ["电线", "线路老化", "私拉乱接", "配电箱", "漏电", "短路", "electrical hazard", "electrical", "wires down",
         "power line", "transformer"],
    ),
]


def classify_by_keywords(*texts):
    """Return the first category whose keyword occurs in any of the texts, else OTHER."""
    haystack = " ".join(text for text in texts if text).lower()
    if not haystack:
        return Category.OTHER
    for category, keywords in KEYWORD_RULES:
        if any(keyword.lower() in haystack for keyword in keywords):
            return category
    return Category.OTHER


def resolve_category(raw_value):
    """Map a category value given in an export (code or Chinese label) to a Category, or None."""
    if raw_value is None:
        return None
    text = str(raw_value).strip()
    if not text:
        return None
    for category in Category:
        if text == category.value or text == str(category.label):
            return category
    return None
