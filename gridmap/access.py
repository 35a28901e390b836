"""Which tickets each role may see in the workflow pages.

- administrators and leaders: every ticket (leaders read only);
- department handlers: tickets their departments lead or partner;
- grid heads: tickets placed in their grid units or below, or escalated there;
- planners: none here (they use the maps).
"""
from django.db.models import Q

from gridmap.dispatch import units_for_head
from gridmap.roles import Role, has_role
from spatial.models import Ticket

WORKFLOW_ROLES = (Role.HANDLER, Role.GRID_HEAD, Role.LEADER, Role.ADMIN)


def visible_tickets(user):
    """Return the queryset of tickets ``user`` may open."""
    if has_role(user, Role.ADMIN, Role.LEADER):
        return Ticket.objects.all()
    condition = Q(pk__in=[])
    if has_role(user, Role.HANDLER):
        departments = list(user.departments.values_list("pk", flat=True)) + list(
            user.headed_departments.values_list("pk", flat=True))
        condition |= Q(handling__lead__in=departments) | Q(handling__partners__in=departments)
    if has_role(user, Role.GRID_HEAD):
        units = units_for_head(user)
        condition |= Q(placement__unit__in=units) | Q(handling__escalated_to__in=units)
    # A subquery instead of DISTINCT keeps any ORDER BY the caller adds valid.
    return Ticket.objects.filter(pk__in=Ticket.objects.filter(condition).values("pk"))
