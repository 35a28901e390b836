"""Site navigation: the pages each role may open, and the simulated-data notice.

The role tuples are the ones the views themselves check, imported from
their modules, so a link appears exactly when its page opens instead of returning 403.
"""
from django.contrib.auth.decorators import login_required
from django.core.exceptions import PermissionDenied
from django.shortcuts import redirect
from django.urls import reverse
from django.utils.functional import SimpleLazyObject
from django.utils.translation import gettext
from django.utils.translation import gettext_lazy as _

from gridmap.access import WORKFLOW_ROLES
from gridmap.roles import has_role
from gridmap.inspection_views import INSPECTION_ROLES
from gridmap.supervision_views import INSPECTOR_PAGE_ROLES
from iot.views import SENSOR_MAP_ROLES
from routing.views import COVERAGE_ROLES, PATROL_ROLES
from spatial.models import ImportBatch
from webmap.analytics_views import ANALYTICS_ROLES
from webmap.dashboard_views import DASHBOARD_ROLES
from webmap.views import PLANNER_MAP_ROLES

# (URL name, label, roles), in the order of the header; the first one a
# user may open is their home page.
NAV_ITEMS = (
    ("webmap:dashboard:home", _("领导驾驶舱"), DASHBOARD_ROLES),
    ("webmap:planner-map", _("规划分析地图"), PLANNER_MAP_ROLES),
    ("webmap:analytics", _("空间分析"), ANALYTICS_ROLES),
    ("gridmap:queue", _("工单办理"), WORKFLOW_ROLES),
    ("routing:patrol", _("巡查路线"), PATROL_ROLES),
    ("inspections:form", _("日常巡查"), INSPECTION_ROLES),
    ("routing:coverage", _("消防站覆盖"), COVERAGE_ROLES),
    ("iot:sensor-map", _("物联网传感器"), SENSOR_MAP_ROLES),
    ("supervision:reinspections", _("随机复查"), INSPECTOR_PAGE_ROLES),
)


def allowed_items(user):
    """Return (url, label, URL name) of the pages ``user`` may open, in header order."""
    return [(reverse(name), label, name) for name, label, roles in NAV_ITEMS if has_role(user, *roles)]


def site(request):
    """Template context for the base template: navigation and whether simulated data is stored."""
    return {
        "nav_items": SimpleLazyObject(lambda: allowed_items(request.user)),
        "simulated_data_stored": SimpleLazyObject(
            lambda: ImportBatch.objects.filter(simulated=True, rows_imported__gt=0).exists()
        ),
    }


@login_required
def home(request):
    """Send a signed-in user to the first page their roles open, in the header's order."""
    items = allowed_items(request.user)
    if not items:
        raise PermissionDenied(gettext("您的账号还没有分配角色,请联系管理员。"))
    return redirect(items[0][0])
