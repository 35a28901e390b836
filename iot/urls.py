from django.urls import path

from iot import api, views

app_name = "iot"
urlpatterns = [
    path("sensors/", views.sensor_map, name="sensor-map"),
    path("sensors.geojson", views.sensor_geojson, name="sensor-geojson"),
    path("api/readings", api.gateway_readings, name="gateway-readings"),
]
