from django.shortcuts import render

from gridmap.roles import Role, can_see_personal_data, role_required
from webmap.forms import MapFilterForm
from webmap.maps import build_planner_map

PLANNER_MAP_ROLES = (Role.PLANNER, Role.LEADER, Role.ADMIN)


@role_required(*PLANNER_MAP_ROLES)
def planner_map(request):
    """Show the planner map for the GET filter, or the form's errors when the filter is invalid."""
    form = MapFilterForm(request.GET)
    built_map = None
    if form.is_valid():
        built_map = build_planner_map(
            form.to_map_filter(), reveal_personal_data=can_see_personal_data(request.user)
        )
    return render(request, "webmap/planner_map.html", {"form": form, "planner_map": built_map})
