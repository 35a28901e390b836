from django.urls import path

from gridmap import supervision_views as views

app_name = "supervision"
urlpatterns = [
    path("supervision/reinspections/", views.reinspection_list, name="reinspections"),
    path("supervision/reinspections/<int:pk>/", views.reinspection_detail, name="reinspection"),
    path("supervision/tickets/<int:pk>/callback/", views.callback, name="callback"),
    path("supervision/kpi/<str:code>/tickets/", views.kpi_tickets, name="kpi-tickets"),
    path("public/reinspections/", views.public_reinspections, name="public-reinspections"),
    path("lookup/rate/", views.rate, name="rate"),
]
