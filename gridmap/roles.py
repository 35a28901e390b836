"""User roles, stored as Django groups, and the checks built on them.

Each role is one auth group whose name is the role's value (``planner``,
``grid_head``...). Migration 0001_role_groups creates the groups. A user may
hold several roles, and superusers count as administrators.
"""
from functools import wraps

from django.contrib.auth.decorators import login_required
from django.core.exceptions import PermissionDenied
from django.db import models
from django.utils.translation import gettext
from django.utils.translation import gettext_lazy as _


class Role(models.TextChoices):
    PLANNER = "planner", _("规划分析人员")
    GRID_HEAD = "grid_head", _("网格长")
    HANDLER = "handler", _("部门承办人")
    LEADER = "leader", _("领导")
    ADMIN = "admin", _("管理员")


# Roles allowed to see complainants' names and phone numbers, and the phone
# and ID numbers inside ticket texts, unmasked. Only handlers call citizens back.
PERSONAL_DATA_ROLES = frozenset({Role.HANDLER})

# Cache attribute on the user object, in the manner of Django's permission
# cache, so that one request queries the groups once.
_ROLE_CACHE_ATTRIBUTE = "_firegrid_role_cache"


def user_roles(user):
    """Return the set of Role members of ``user``, which is empty for anonymous or inactive users."""
    if user is None or not user.is_authenticated or not user.is_active:
        return frozenset()
    cached = getattr(user, _ROLE_CACHE_ATTRIBUTE, None)
    if cached is not None:
        return cached

    valid_values = set(Role.values)
    group_names = user.groups.filter(name__in=valid_values).values_list("name", flat=True)
    roles = {Role(name) for name in group_names}
    if user.is_superuser:
        roles.add(Role.ADMIN)

    roles = frozenset(roles)
    setattr(user, _ROLE_CACHE_ATTRIBUTE, roles)
    return roles


def has_role(user, *roles):
    """Return True when ``user`` has at least one of ``roles``."""
    return not user_roles(user).isdisjoint(roles)


def can_see_personal_data(user):
    """Return True when ``user`` may see complainants' personal data unmasked."""
    return has_role(user, *PERSONAL_DATA_ROLES)


def role_required(*roles):
    """Decorate a view so that it requires a logged-in user with one of ``roles``.

    Anonymous users are redirected to the login page. Logged-in users without
    the role get a 403 response whose message names the roles that may enter.
    """
    if not roles:
        raise ValueError("role_required() needs at least one Role")

    def decorator(view):
        @wraps(view)
        def wrapped_view(request, *args, **kwargs):
            if not has_role(request.user, *roles):
                role_names = "、".join(str(Role(role).label) for role in roles)
                raise PermissionDenied(
                    gettext("您的账号没有访问此页面的权限。需要以下角色之一:%(roles)s。请联系管理员分配角色。")
                    % {"roles": role_names}
                )
            return view(request, *args, **kwargs)

        return login_required(wrapped_view)

    return decorator
