from django.urls import path

from routing import views

app_name = "routing"
urlpatterns = [
    path("patrol/", views.patrol_page, name="patrol"),
    path("coverage/", views.coverage_page, name="coverage"),
]
