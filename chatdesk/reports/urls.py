from django.urls import path

from chatdesk.reports import views

app_name = "reports"
urlpatterns = [
    path("", views.report, name="report"),
    path("conversations/", views.conversations, name="conversations"),
    path("conversations/<uuid:public_id>/", views.conversation, name="conversation"),
    path("export/conversations.csv", views.export_conversations, name="export-conversations"),
    path("export/drafts.csv", views.export_drafts, name="export-drafts"),
    path("time-zone/", views.time_zone, name="time-zone"),
]
