from django.urls import path

from webmap import views

app_name = "webmap"
urlpatterns = [
    path("map/", views.planner_map, name="planner-map"),
]
