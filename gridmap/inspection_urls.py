from django.urls import path

from gridmap import inspection_views as views

app_name = "inspections"
urlpatterns = [
    path("inspections/", views.inspection_form, name="form"),
    path("inspections/submit/", views.submit, name="submit"),
    path("inspections/community/<str:code>/", views.community_day, name="community"),
    path("inspections/photos/<int:pk>/", views.photo, name="photo"),
]
