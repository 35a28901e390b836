"""Who sees a complainant's name and phone number, and the masks everyone else sees.

Only the handling (lead) department's handlers and administrators see them
in clear, ticket by ticket; every other role, the Open311 API and the
citizen lookup get masks.
"""
from gridmap.roles import Role, has_role
from spatial.privacy import mask_name, mask_personal_numbers, mask_phone


def may_see_personal_data(user, handling):
    """Return True when ``user`` is an administrator or a handler of the ticket's lead department."""
    if has_role(user, Role.ADMIN):
        return True
    if handling is None or not handling.lead_id or not has_role(user, Role.HANDLER):
        return False
    return handling.lead.members.filter(pk=user.pk).exists() or handling.lead.head_id == user.pk


def complainant(ticket, handling, user):
    """Return (name, phone, description) as ``user`` may see them."""
    if may_see_personal_data(user, handling):
        return ticket.complainant_name, ticket.complainant_phone, ticket.description
    return mask_name(ticket.complainant_name), mask_phone(ticket.complainant_phone), mask_personal_numbers(ticket.description)
