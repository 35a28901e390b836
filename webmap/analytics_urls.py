from django.urls import path

from webmap import analytics_views

urlpatterns = [
    path("analytics/", analytics_views.analytics_index, name="analytics"),
    path("analytics/zones/", analytics_views.zones_page, name="analytics-zones"),
    path("analytics/repeats/", analytics_views.repeats_page, name="analytics-repeats"),
    path("analytics/associations/", analytics_views.associations_page, name="analytics-associations"),
    path("analytics/emerging/", analytics_views.emerging_page, name="analytics-emerging"),
    path("analytics/classification/", analytics_views.classification_page, name="analytics-classification"),
    path("analytics/risk/", analytics_views.risk_page, name="analytics-risk"),
]
