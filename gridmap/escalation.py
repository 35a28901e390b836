"""One escalation pass: overdue tickets climb the grid, late ones get yellow and red cards.

A ticket whose milestone is not met climbs one grid level when its
deadline passes, a second level and a yellow card at 30% of its promised
duration past the deadline, a third level and a red card at 50%
(thresholds stored on ``TicketHandling`` when the deadline is set). Each
step is one set-based UPDATE whose RETURNING rows feed the events and the
notifications in the same statement, so the pass costs a few statements
whatever the number of tickets. The UPDATEs only raise levels and cards,
so a second pass at the same moment changes nothing.

NOTE: a pass that must escalate a large backlog writes an event and a
notification for every ticket in it. Over 741,496 overdue tickets this took
157 to 186 s on 2 shared cores (bench/escalation.py), while a routine pass
over a million open tickets took 4 to 5 s.
"""
import logging
import time
from dataclasses import dataclass

from django.db import connection, transaction
from django.utils import timezone

from gridmap import notify

logger = logging.getLogger(__name__)

# Raw SQL: data-modifying CTEs (UPDATE ... RETURNING feeding INSERTs) have
# no ORM form. All values are bound parameters.
_ESCALATE_SQL = """
WITH target AS (
    SELECT h.ticket_id, t.status,
           CASE WHEN h.red_at <= %(now)s THEN 3 WHEN h.yellow_at <= %(now)s THEN 2 ELSE 1 END AS level,
           p.unit_id AS u0, g1.id AS g1, g2.id AS g2, g2.parent_id AS g3
    FROM gridmap_tickethandling h
    JOIN spatial_ticket t ON t.id = h.ticket_id
    LEFT JOIN gridmap_gridplacement p ON p.ticket_id = h.ticket_id
    LEFT JOIN gridmap_gridunit g0 ON g0.id = p.unit_id
    LEFT JOIN gridmap_gridunit g1 ON g1.id = g0.parent_id
    LEFT JOIN gridmap_gridunit g2 ON g2.id = g1.parent_id
    WHERE h.met_at IS NULL AND h.due_at <= %(now)s AND t.status <> 'closed'
      AND h.escalation_level < CASE WHEN h.red_at <= %(now)s THEN 3 WHEN h.yellow_at <= %(now)s THEN 2 ELSE 1 END
),
moved AS (
    UPDATE gridmap_tickethandling h
    SET escalation_level = target.level,
        escalated_to_id = CASE target.level
            WHEN 1 THEN COALESCE(target.g1, target.u0)
            WHEN 2 THEN COALESCE(target.g2, target.g1, target.u0)
            ELSE COALESCE(target.g3, target.g2, target.g1, target.u0) END,
        version = h.version + 1,
        updated_at = %(now)s
    FROM target
    WHERE h.ticket_id = target.ticket_id
    RETURNING h.ticket_id, h.escalation_level, h.escalated_to_id, target.status
),
events AS (
    INSERT INTO gridmap_ticketevent (ticket_id, kind, actor_id, at, from_status, to_status, note, data)
    SELECT ticket_id, 'escalation', NULL, %(now)s, status, status, %(escalation_note)s,
           jsonb_build_object('level', escalation_level, 'unit', escalated_to_id)
    FROM moved
 RETURNING 1
),
notes AS (
    INSERT INTO gridmap_notification (user_id, ticket_id, kind, message, created_at)
    SELECT g.head_id, moved.ticket_id, 'escalation', %(escalation_message)s || t.external_id, %(now)s
    FROM moved
    JOIN gridmap_gridunit g ON g.id = moved.escalated_to_id
    JOIN spatial_ticket t ON t.id = moved.ticket_id
    WHERE g.head_id IS NOT NULL
    RETURNING 1
)
SELECT (SELECT count(*) FROM moved), (SELECT count(*) FROM events), (SELECT count(*) FROM notes)
"""

_CARD_SQL = """
WITH carded AS (
    UPDATE gridmap_tickethandling h
    SET card = CASE WHEN h.red_at <= %(now)s THEN 'red' ELSE 'yellow' END,
        carded_at = %(now)s, version = h.version + 1, updated_at = %(now)s
    WHERE h.met_at IS NULL
      AND ((h.red_at <= %(now)s AND h.card <> 'red') OR (h.yellow_at <= %(now)s AND h.card = ''))
      AND NOT EXISTS (SELECT 1 FROM spatial_ticket t WHERE t.id = h.ticket_id AND t.status = 'closed')
    RETURNING h.ticket_id, h.card, h.lead_id
),
events AS (
    INSERT INTO gridmap_ticketevent (ticket_id, kind, actor_id, at, from_status, to_status, note, data)
    SELECT carded.ticket_id, 'card', NULL, %(now)s, t.status, t.status,
           CASE carded.card WHEN 'red' THEN %(red_note)s ELSE %(yellow_note)s END,
           jsonb_build_object('card', carded.card)
    FROM carded JOIN spatial_ticket t ON t.id = carded.ticket_id
    RETURNING 1
),
notes AS (
    INSERT INTO gridmap_notification (user_id, ticket_id, kind, message, created_at)
    SELECT d.head_id, carded.ticket_id, 'card',
           CASE carded.card WHEN 'red' THEN %(red_message)s ELSE %(yellow_message)s END || t.external_id,
           %(now)s
    FROM carded
    JOIN gridmap_department d ON d.id = carded.lead_id
    JOIN spatial_ticket t ON t.id = carded.ticket_id
    WHERE d.head_id IS NOT NULL
    RETURNING 1
)
SELECT (SELECT count(*) FROM carded), (SELECT count(*) FROM events), (SELECT count(*) FROM notes)
"""


@dataclass
class EscalationResult:
    escalated: int
    carded: int
    emails: int
    duration_s: float


def run_escalation(now=None, *, send_email=True):
    """Run one pass at ``now`` (default: the clock); return counts of escalated and carded tickets."""
    from django.utils.translation import gettext as _

    now = now or timezone.now()
    started = time.perf_counter()
    params = {
        "now": now,
        "escalation_note": _("超过办理时限,自动升级至上级网格"),
        "escalation_message": _("超时升级:工单 "),
        "red_note": _("超过承诺时限50%,亮红牌;办结前须由部门负责人书面说明"),
        "yellow_note": _("超过承诺时限30%,亮黄牌"),
        "red_message": _("红牌:工单 "),
        "yellow_message": _("黄牌:工单 "),
    }
    with transaction.atomic(), connection.cursor() as cursor:
        # One pass at a time: a second scheduler waits instead of racing.
        cursor.execute("SELECT pg_advisory_xact_lock(hashtext('gridmap.escalation'))")
        # A pass usually changes a few hundred of a million open tickets. Hash
        # joins would scan every table in full to join those few rows (4 s of
        # a 7.8 s pass over a million tickets); index lookups keep it cheap.
        cursor.execute("SET LOCAL enable_hashjoin = off")
        cursor.execute("SET LOCAL enable_mergejoin = off")
        cursor.execute(_ESCALATE_SQL, params)
        escalated = cursor.fetchone()[0]
        escalate_s = time.perf_counter() - started
        cursor.execute(_CARD_SQL, params)
        carded = cursor.fetchone()[0]
        card_s = time.perf_counter() - started - escalate_s
    commit_s = time.perf_counter() - started - escalate_s - card_s
    logger.info("escalation statements took %.2f s, cards %.2f s, commit %.2f s", escalate_s, card_s, commit_s)
    emails = notify.send_pending_emails() if send_email and (escalated or carded) else 0
    duration = time.perf_counter() - started
    logger.info("escalation pass at %s: %s escalated, %s carded, %s e-mails in %.2f s",
                now.isoformat(), escalated, carded, emails, duration)
    return EscalationResult(escalated, carded, emails, duration)
