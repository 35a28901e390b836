"""The "double random, one public" re-inspection (双随机、一公开).

Each period a share (10% by default) of the tickets closed in it is drawn
at random for an on-site re-inspection, and each drawn ticket gets an
inspector drawn at random among the staff who did not handle it. Tickets
suspected of fake rectification (a repeat complaint at the same place
within 30 days of their closure, found by ``spatial.analysis.repeats``)
weigh ``fake_weight`` times as much in the draw.

Reproducibility: the draw stores its seed, the algorithm name, the ordered
population (ticket id and suspicion flag) and the ordered inspector pool.
``replay_draw`` runs the same algorithm on the stored inputs and returns
the tickets and inspectors it draws, which must equal the stored ones.
The algorithm is numpy's PCG64 generator: ``choice`` without replacement
with probabilities proportional to the weights, then one ``integers`` call
per drawn ticket, in draw order, to pick its inspector among the eligible
staff (sorted by user id).

A failed re-inspection reopens the ticket through ``gridmap.workflow`` and
counts against the lead department in the re-inspection pass rate.
"""
import logging
import math

import numpy as np
from django.contrib.auth import get_user_model
from django.db import transaction
from django.db.models import Q
from django.utils import timezone
from django.utils.translation import gettext as _

from gridmap import workflow
from gridmap.models import Department, GridPlacement, TicketEvent, TicketHandling
from gridmap.roles import Role, has_role
from gridmap.supervision import Reinspection, ReinspectionDraw, ReinspectionPhoto, ReinspectionResult
from spatial.models import Ticket, TicketStatus

logger = logging.getLogger(__name__)

ALGORITHM = "numpy-pcg64-weighted-choice-v1"
DEFAULT_RATE = 0.10
DEFAULT_FAKE_WEIGHT = 3.0
# Staff who may be drawn as inspectors: department handlers and grid heads.
INSPECTOR_ROLES = (Role.HANDLER, Role.GRID_HEAD)


class ReinspectionError(ValueError):
    """A draw or a result that cannot be recorded; the message gives the reason and what to do."""


def suspected_fake_ids(ticket_ids):
    """Return the ids among ``ticket_ids`` that a later repeat marks as suspected fake rectification."""
    return set(Ticket.objects.filter(repeat_of__in=ticket_ids, suspected_fake_rectification=True)
               .values_list("repeat_of_id", flat=True))


def inspector_pool():
    """Return the ids of active users holding an inspector role, ascending."""
    users = get_user_model().objects.filter(is_active=True, groups__name__in=[str(role) for role in INSPECTOR_ROLES])
    return sorted(set(users.values_list("pk", flat=True)))


def handlers_of(ticket_ids):
    """Return {ticket id: set of user ids who handled it}.

    A handler is anyone who acted on the ticket (its events), a member or
    head of its lead or partner departments, or the head of its grid unit or of a
    unit above it.
    """
    handled = {ticket_id: set() for ticket_id in ticket_ids}
    for ticket_id, actor in (TicketEvent.objects.filter(ticket__in=ticket_ids, actor__isnull=False)
                             .values_list("ticket_id", "actor_id")):
        handled[ticket_id].add(actor)
    departments = {}
    for handling in TicketHandling.objects.filter(ticket__in=ticket_ids).prefetch_related("partners"):
        ids = [handling.lead_id] if handling.lead_id else []
        ids += [partner.pk for partner in handling.partners.all()]
        departments[handling.ticket_id] = ids
    staff = {}
    for department in Department.objects.filter(pk__in={d for ids in departments.values() for d in ids}):
        staff[department.pk] = set(department.members.values_list("pk", flat=True)) | (
            {department.head_id} if department.head_id else set())
    for ticket_id, ids in departments.items():
        for department_id in ids:
            handled[ticket_id] |= staff.get(department_id, set())
    # Heads of the ticket's unit and of the units above it are responsible for it too.
    placements = GridPlacement.objects.filter(ticket__in=ticket_ids).values_list(
        "ticket_id", "unit__head_id", "unit__parent__head_id", "unit__parent__parent__head_id")
    for ticket_id, *heads in placements:
        handled[ticket_id] |= {head for head in heads if head is not None}
    return handled


def run_algorithm(seed, population, rate, fake_weight, pool, handlers):
    """Draw tickets and inspectors; return [(ticket id, suspected, inspector id)] in draw order.

    Parameters
    ----------
    seed : int
    population : list of (ticket id, suspected fake 0/1), in the stored order
    rate : float
        Share of the population to draw; the sample is rounded up.
    fake_weight : float
        Weight of a suspected ticket relative to 1 for the others.
    pool : list of int
        Inspector user ids, ascending.
    handlers : dict
        Ticket id -> user ids who may not re-inspect it.
    """
    if not population:
        return []
    rng = np.random.default_rng(seed)
    weights = np.array([fake_weight if fake else 1.0 for _id, fake in population])
    size = min(len(population), math.ceil(rate * len(population)))
    chosen = rng.choice(len(population), size=size, replace=False, p=weights / weights.sum())
    drawn = []
    for index in chosen:
        ticket_id, fake = population[int(index)]
        eligible = [user for user in pool if user not in handlers.get(ticket_id, set())]
        if not eligible:
            raise ReinspectionError(_("工单 %(id)s 没有可抽取的复查人员:所有承办人和网格长都办理过它。请先增加复查人员。")
                                    % {"id": ticket_id})
        drawn.append((ticket_id, bool(fake), eligible[int(rng.integers(len(eligible)))]))
    return drawn


def draw(period, seed, rate=DEFAULT_RATE, fake_weight=DEFAULT_FAKE_WEIGHT, created_by=""):
    """Draw the re-inspections of ``period`` (a ``gridmap.kpi.Period``) and store them; return the draw."""
    if not 0 < rate <= 1:
        raise ReinspectionError(_("抽取比例 %(rate)s 无效,应在 0 到 1 之间(如 0.1 表示 10%%)。") % {"rate": rate})
    if fake_weight < 1:
        raise ReinspectionError(_("疑似虚假整改权重 %(weight)s 无效,应不小于 1。") % {"weight": fake_weight})
    existing = ReinspectionDraw.objects.filter(period=period.key).first()
    if existing is not None:
        raise ReinspectionError(_("周期 %(period)s 已于 %(at)s 抽取过(随机种子 %(seed)s),不能重抽;"
                                  "可用 --replay 复现核对。") % {
            "period": period.key, "at": timezone.localtime(existing.created_at).strftime("%Y-%m-%d %H:%M"),
            "seed": existing.seed})
    ticket_ids = list(Ticket.objects.filter(status=TicketStatus.CLOSED, closed_at__gte=period.start,
                                            closed_at__lt=period.end).order_by("pk").values_list("pk", flat=True))
    if not ticket_ids:
        raise ReinspectionError(_("周期 %(period)s 没有已办结的工单,无需抽取。") % {"period": period.key})
    fake = suspected_fake_ids(ticket_ids)
    population = [(ticket_id, int(ticket_id in fake)) for ticket_id in ticket_ids]
    pool = inspector_pool()
    handlers = handlers_of(ticket_ids)
    drawn = run_algorithm(seed, population, rate, fake_weight, pool, handlers)
    leads = dict(TicketHandling.objects.filter(ticket__in=[row[0] for row in drawn]).values_list("ticket_id",
                                                                                                  "lead_id"))
    with transaction.atomic():
        record = ReinspectionDraw.objects.create(
            period=period.key, period_kind=period.kind, period_start=period.start, period_end=period.end,
            seed=seed, rate=rate, fake_weight=fake_weight, algorithm=ALGORITHM, population=len(population),
            sample=len(drawn), population_ids=[list(row) for row in population], inspector_ids=pool,
            created_by=created_by)
        Reinspection.objects.bulk_create([
            Reinspection(draw=record, ticket_id=ticket_id, position=position, suspected_fake=suspected,
                         inspector_id=inspector, department_id=leads.get(ticket_id))
            for position, (ticket_id, suspected, inspector) in enumerate(drawn, start=1)])
    logger.info("Drew %d of %d closed tickets of %s with seed %s (%d suspected)", len(drawn), len(population),
                period.key, seed, sum(1 for row in drawn if row[1]))
    return record


def replay_draw(record):
    """Run the stored draw's algorithm again; return (same as stored, [(ticket id, suspected, inspector id)])."""
    if record.algorithm != ALGORITHM:
        raise ReinspectionError(_("抽取算法 %(name)s 与当前版本不同,无法复现。") % {"name": record.algorithm})
    population = [tuple(row) for row in record.population_ids]
    # NOTE: who handled a ticket is read again from today's data, so an event
    # appended after the draw (a late note by another user) can change a replay.
    handlers = handlers_of([row[0] for row in population])
    replayed = run_algorithm(record.seed, population, record.rate, record.fake_weight, record.inspector_ids,
                             handlers)
    stored = list(record.reinspections.order_by("position").values_list("ticket_id", "suspected_fake",
                                                                          "inspector_id"))
    return replayed == stored, replayed


def may_record(user, reinspection):
    return reinspection.inspector_id == user.pk or has_role(user, Role.ADMIN)


def record_result(reinspection, user, result, note="", photos=()):
    """Store the on-site result; a failure reopens the ticket. Return the re-inspection."""
    photos = list(photos)
    if result not in (ReinspectionResult.PASSED, ReinspectionResult.FAILED):
        raise ReinspectionError(_("复查结果只能是“整改属实”或“整改不实”。"))
    if not may_record(user, reinspection):
        raise ReinspectionError(_("只有抽中的复查人员可以登记该工单的复查结果。"))
    if not photos:
        raise ReinspectionError(_("登记复查结果须上传至少一张现场照片。"))
    if len(photos) > workflow.MAX_PHOTOS:
        raise ReinspectionError(_("每次最多上传 %(n)s 张照片。") % {"n": workflow.MAX_PHOTOS})
    note = (note or "").strip()
    if result == ReinspectionResult.FAILED and not note:
        raise ReinspectionError(_("复查认定整改不实时,须填写说明(现场发现的问题)。"))
    with transaction.atomic():
        locked = Reinspection.objects.select_for_update().get(pk=reinspection.pk)
        if locked.result != ReinspectionResult.PENDING:
            raise ReinspectionError(_("该工单的复查结果已于 %(at)s 登记,不能修改。") % {
                "at": timezone.localtime(locked.inspected_at).strftime("%Y-%m-%d %H:%M")})
        locked.result, locked.note, locked.inspected_at = result, note, timezone.now()
        if result == ReinspectionResult.FAILED:
            ticket = Ticket.objects.get(pk=locked.ticket_id)
            if ticket.status == TicketStatus.CLOSED:
                workflow.transition(ticket, TicketStatus.REOPENED, actor=user, system=True,
                                    note=_("随机复查认定整改不实,工单重开:%(note)s") % {"note": note},
                                    apply=lambda handling, now: {"reinspection": locked.pk})
                locked.reopened = True
        locked.save()
        for photo in photos:
            ReinspectionPhoto.objects.create(reinspection=locked, image=photo)
    logger.info("Re-inspection %s of ticket %s recorded as %s", locked.pk, locked.ticket_id, result)
    return locked


def public_rows(period_key=None):
    """Return the re-inspections of a draw for the public page: no names, phones or descriptions."""
    draws = ReinspectionDraw.objects.all()
    record = draws.filter(period=period_key).first() if period_key else draws.first()
    if record is None:
        return None, []
    rows = (record.reinspections.select_related("ticket", "department").order_by("position"))
    return record, [{
        "position": row.position, "number": row.ticket.external_id, "category": row.ticket.get_category_display(),
        "department": row.department.name if row.department else "", "suspected_fake": row.suspected_fake,
        "result": row.get_result_display(), "result_code": row.result, "inspected_at": row.inspected_at,
        "reopened": row.reopened,
    } for row in rows]


def pending_for(user):
    """Return the pending re-inspections assigned to ``user``, or all pending ones for administrators."""
    rows = Reinspection.objects.filter(result=ReinspectionResult.PENDING).select_related("ticket", "draw")
    if not has_role(user, Role.ADMIN):
        rows = rows.filter(Q(inspector=user))
    return rows.order_by("draw__period_start", "position")
