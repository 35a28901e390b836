from django import template

from gridmap.roles import has_role

register = template.Library()


@register.filter
def has_any_role(user, roles):
    """True when ``user`` has one of the comma-separated role values (``user|has_any_role:"admin,leader"``)."""
    return has_role(user, *[role.strip() for role in str(roles).split(",") if role.strip()])
