"""Template filters for the FireGrid pages."""
from django import template

from gridmap.roles import Role, user_roles

register = template.Library()


@register.filter
def role_labels(user):
    """Return the user's role names joined by "、", in the order Role declares them."""
    roles = user_roles(user)
    return "、".join(str(role.label) for role in Role if role in roles)
