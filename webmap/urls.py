from django.urls import include, path

from webmap import views

app_name = "webmap"
urlpatterns = [
    path("map/", views.planner_map, name="planner-map"),
    path("", include("webmap.dashboard_views")),
    path("", include("webmap.analytics_urls")),
]
