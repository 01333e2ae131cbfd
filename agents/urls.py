from django.urls import include, path

from agents import views

app_name = "agents"
urlpatterns = [
    path("", views.queue, name="home"),
    path("c/<uuid:public_id>/", views.conversation, name="conversation"),
    path("inbox/", views.inbox, name="inbox"),
    path("inbox/assign/", views.inbox_assign, name="inbox_assign"),
    path("next/", views.next_conversation, name="next"),
    path("canned/", include("chatdesk.canned.urls")),
]
