"""Who sees a complainant's name and phone number, and the masks everyone else sees.

Only the handling (lead) department's handlers and administrators see them
in clear, ticket by ticket; every other role, the Open311 API and the
citizen lookup get masks.

NOTE: webmap/privacy.py masks the same fields for the planner map; webmap
sits above gridmap in the layering, so gridmap cannot import it. The two
follow the same rules (first character of a name, 138****5678 for mobiles)
and should become one module here once webmap's owner moves it down.
"""
import re

from gridmap.roles import Role, has_role

_MOBILE = re.compile(r"(?<![0-9])(1[3-9][0-9])[\s-]?[0-9]{4}[\s-]?([0-9]{4})(?![0-9])")
_RESIDENT_ID = re.compile(r"(?<![0-9A-Za-z])([0-9]{6})[0-9]{8}([0-9]{3}[0-9Xx])(?![0-9A-Za-z])")


def mask_name(name):
    """Keep the first character and show two asterisks whatever the length (张三丰 -> 张**)."""
    name = (name or "").strip()
    if not name:
        return ""
    return name[0] + "**" if len(name) > 1 else "*"


def mask_phone(phone):
    """Show the first three and last four digits of a mobile, only the last four of other numbers."""
    phone = (phone or "").strip()
    digits = [character for character in phone if character.isdigit()]
    if not digits:
        return "*" * len(phone)
    if len(digits) == 11 and digits[0] == "1":
        return "".join(digits[:3]) + "****" + "".join(digits[-4:])
    return "*" * max(len(digits) - 4, 0) + "".join(digits[-4:])


def mask_text(text):
    """Mask mobile numbers and resident ID numbers inside free text."""
    if not text:
        return ""
    text = _MOBILE.sub(lambda match: f"{match.group(1)}****{match.group(2)}", text)
    return _RESIDENT_ID.sub(lambda match: f"{match.group(1)}********{match.group(2)}", text)


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
    return mask_name(ticket.complainant_name), mask_phone(ticket.complainant_phone), mask_text(ticket.description)
