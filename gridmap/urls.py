from django.urls import path

from gridmap import lookup, open311, views

app_name = "gridmap"
urlpatterns = [
    path("tickets/", views.queue, name="queue"),
    path("tickets/dispatch/", views.dispatch_queue, name="dispatch-queue"),
    path("tickets/<int:pk>/", views.ticket_detail, name="ticket"),
    path("tickets/<int:pk>/assign/", views.assign_ticket, name="ticket-assign"),
    path("tickets/<int:pk>/act/<str:action>/", views.ticket_action, name="ticket-action"),
    path("tickets/<int:pk>/reply/", views.ticket_reply, name="ticket-reply"),
    path("tickets/<int:pk>/explain/", views.ticket_explain, name="ticket-explain"),
    path("tickets/<int:pk>/note/", views.ticket_note, name="ticket-note"),
    path("tickets/photos/<int:pk>/", views.event_photo, name="photo"),
    path("notifications/", views.notifications, name="notifications"),
    path("standards/", views.standards, name="standards"),
    path("lookup/", lookup.lookup, name="lookup"),
    path("open311/v2/discovery.<str:fmt>", open311.discovery, name="open311-discovery"),
    path("open311/v2/services.<str:fmt>", open311.services, name="open311-services"),
    path("open311/v2/services/<str:code>.<str:fmt>", open311.service_definition, name="open311-service"),
    path("open311/v2/requests.<str:fmt>", open311.requests, name="open311-requests"),
    path("open311/v2/requests/<str:request_id>.<str:fmt>", open311.single_request, name="open311-request"),
    path("open311/v2/tokens/<str:token>.<str:fmt>", open311.token, name="open311-token"),
]
