"""Category × zone type × time associations, tested against independence with FDR control.

For every zone type z and time slot s (hour of week in blocks of
``bin_hours``, hour of day, or month), the tickets there are split by
category. Under independence of category from place and time, the count of
category c in (z, s) is binomial with n(z, s) trials and the category's
overall share p(c), so the expected count is n(z, s) · p(c) and the lift is
observed / expected. The two-sided binomial p-values of all tested
combinations are corrected with Benjamini–Hochberg (false discovery rate),
and combinations above ``min_count`` tickets with a lift above 1 and a
q-value below ``alpha`` become findings, the largest excess counts first.
Findings are written as plain Chinese sentences for planners.

Duplicates are left out, and so are tickets without a zone type.
"""
import logging
import time

import numpy as np
import pandas as pd
from django.utils.translation import gettext as _
from django.utils.translation import gettext_lazy
from scipy import stats

from spatial.analysis.periods import AnalysisParameterError, filter_received, local_times
from spatial.models import AssociationRun, Ticket, ZoneType
from spatial.taxonomy import Category

logger = logging.getLogger(__name__)

SLOTS = ("hour_of_week", "hour_of_day", "month")
DEFAULT_BIN_HOURS = 2
DEFAULT_ALPHA = 0.05
DEFAULT_MIN_COUNT = 5
DEFAULT_FINDINGS = 10
WEEKDAYS = (gettext_lazy("周一"), gettext_lazy("周二"), gettext_lazy("周三"), gettext_lazy("周四"),
            gettext_lazy("周五"), gettext_lazy("周六"), gettext_lazy("周日"))


def _check(slot, bin_hours, alpha, min_count):
    if slot not in SLOTS:
        raise AnalysisParameterError(_("时间划分 “%(value)s” 无效,可选 %(allowed)s。")
                                     % {"value": slot, "allowed": ", ".join(SLOTS)})
    if isinstance(bin_hours, bool) or not isinstance(bin_hours, int) or bin_hours < 1 or 24 % bin_hours:
        raise AnalysisParameterError(_("时段长度 “%(value)s” 无效,应为能整除 24 的小时数(1、2、3、4、6、8、12、24)。")
                                     % {"value": bin_hours})
    if not 0 < alpha < 1:
        raise AnalysisParameterError(_("显著性水平 “%(value)s” 无效,应在 0 到 1 之间。") % {"value": alpha})
    if isinstance(min_count, bool) or not isinstance(min_count, int) or min_count < 1:
        raise AnalysisParameterError(_("最少工单数 “%(value)s” 无效,应为正整数。") % {"value": min_count})


def slot_of(times, slot, bin_hours):
    """Return the slot number of each Beijing time: hour-of-week block, hour-of-day block or month (1-12)."""
    if slot == "month":
        return np.asarray(times.month)
    block = np.asarray(times.hour) // bin_hours
    if slot == "hour_of_day":
        return block
    return np.asarray(times.day_of_week) * (24 // bin_hours) + block


def slot_label(slot, number, bin_hours):
    """Return the Chinese label of a slot, such as "周五 18:00–20:00" or "7月"."""
    if slot == "month":
        return _("%(month)s月") % {"month": number}
    per_day = 24 // bin_hours
    hours = f"{(number % per_day) * bin_hours:02d}:00–{(number % per_day + 1) * bin_hours:02d}:00"
    if slot == "hour_of_day":
        return _("每天 %(hours)s") % {"hours": hours}
    return f"{WEEKDAYS[number // per_day]} {hours}"


def association_table(frame, slot="hour_of_week", bin_hours=DEFAULT_BIN_HOURS):
    """Return a frame of observed, expected, lift, p and q per category × zone type × slot.

    ``frame`` has columns ``category``, ``zone_type`` and ``received_at``.
    Only combinations whose zone type and slot have tickets are tested.
    """
    if frame.empty:
        return pd.DataFrame(columns=["category", "zone_type", "slot", "observed", "expected", "lift", "p", "q"])
    frame = frame.assign(slot=slot_of(local_times(frame["received_at"]), slot, bin_hours))
    observed = frame.groupby(["zone_type", "slot", "category"]).size().unstack(fill_value=0)
    categories = observed.columns
    share = frame["category"].value_counts(normalize=True).reindex(categories).to_numpy()
    trials = observed.sum(axis=1).to_numpy()[:, None]
    counts = observed.to_numpy()
    expected = trials * share[None, :]
    upper = stats.binom.sf(counts - 1, trials, share[None, :])
    lower = stats.binom.cdf(counts, trials, share[None, :])
    p_values = np.minimum(1.0, 2 * np.minimum(upper, lower))
    q_values = stats.false_discovery_control(p_values.ravel(), method="bh").reshape(p_values.shape)

    index = observed.index
    table = pd.DataFrame({
        "zone_type": np.repeat(index.get_level_values("zone_type"), len(categories)),
        "slot": np.repeat(index.get_level_values("slot"), len(categories)),
        "category": np.tile(categories, len(index)),
        "observed": counts.ravel(),
        "expected": expected.ravel(),
        "p": p_values.ravel(),
        "q": q_values.ravel(),
    })
    table["lift"] = table["observed"] / table["expected"]
    return table


def finding_sentence(row, slot, bin_hours):
    """Return one finding as a plain Chinese sentence."""
    return _(
        "%(zone)s %(slot)s:%(category)s工单 %(observed)s 件,按总体比例预期 %(expected).1f 件,"
        "是预期的 %(lift).1f 倍(FDR 校正后 q=%(q).2g)。"
    ) % {
        "zone": ZoneType(row["zone_type"]).label, "slot": slot_label(slot, int(row["slot"]), bin_hours),
        "category": Category(row["category"]).label if row["category"] in Category.values else row["category"],
        "observed": int(row["observed"]), "expected": row["expected"], "lift": row["lift"], "q": row["q"],
    }


def strongest_findings(table, slot, bin_hours, alpha=DEFAULT_ALPHA, min_count=DEFAULT_MIN_COUNT,
                       limit=DEFAULT_FINDINGS):
    """Return the significant over-represented combinations, largest excess first, as dicts with a sentence."""
    chosen = table[(table["q"] < alpha) & (table["lift"] > 1) & (table["observed"] >= min_count)]
    chosen = chosen.assign(excess=chosen["observed"] - chosen["expected"])
    chosen = chosen.sort_values(["excess", "lift"], ascending=False).head(limit)
    findings = []
    for row in chosen.to_dict("records"):
        findings.append({
            "category": row["category"], "zone_type": row["zone_type"], "slot": int(row["slot"]),
            "slot_label": slot_label(slot, int(row["slot"]), bin_hours), "observed": int(row["observed"]),
            "expected": float(row["expected"]), "lift": float(row["lift"]), "p_value": float(row["p"]),
            "q_value": float(row["q"]), "sentence": finding_sentence(row, slot, bin_hours),
        })
    return findings


def load_frame(received_from=None, received_to=None):
    tickets = filter_received(Ticket.objects.filter(duplicate_of__isnull=True).exclude(zone_type=""),
                              received_from, received_to)
    return pd.DataFrame(list(tickets.values_list("category", "zone_type", "received_at")),
                        columns=["category", "zone_type", "received_at"])


def run_associations(slot="hour_of_week", bin_hours=DEFAULT_BIN_HOURS, received_from=None, received_to=None,
                     alpha=DEFAULT_ALPHA, min_count=DEFAULT_MIN_COUNT, limit=DEFAULT_FINDINGS):
    """Test the tickets of a period and store an AssociationRun with its strongest findings."""
    _check(slot, bin_hours, alpha, min_count)
    started = time.perf_counter()
    frame = load_frame(received_from, received_to)
    table = association_table(frame, slot, bin_hours)
    findings = strongest_findings(table, slot, bin_hours, alpha, min_count, limit)
    run = AssociationRun.objects.create(
        params={"slot": slot, "bin_hours": bin_hours, "alpha": alpha, "min_count": min_count,
                "received_from": str(received_from) if received_from else None,
                "received_to": str(received_to) if received_to else None, "tested": len(table)},
        ticket_count=len(frame), findings=findings, duration_s=time.perf_counter() - started,
    )
    logger.info("Association run %d: %d tickets, %d combinations tested, %d findings in %.1f s",
                run.pk, len(frame), len(table), len(findings), run.duration_s)
    return run
