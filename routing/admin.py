from django.contrib import admin
from django.contrib.gis.admin import GISModelAdmin

from routing.models import FireStation, RoadNetwork


@admin.register(FireStation)
class FireStationAdmin(GISModelAdmin):
    list_display = ["code", "name", "address", "source_file", "imported_at"]
    search_fields = ["code", "name", "address"]


@admin.register(RoadNetwork)
class RoadNetworkAdmin(admin.ModelAdmin):
    """Loaded networks are written by load_roads only, so the admin shows them read-only."""

    list_display = ["name", "file_sha256", "crs", "node_count", "edge_count", "total_length_m", "loaded_at"]
    readonly_fields = [field.name for field in RoadNetwork._meta.fields]

    def has_add_permission(self, request):
        return False
