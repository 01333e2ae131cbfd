from django.urls import path

from agents import views

app_name = "agents"
urlpatterns = [
    path("", views.queue, name="home"),
    path("c/<uuid:public_id>/", views.conversation, name="conversation"),
    path("inbox/", views.inbox, name="inbox"),
    path("inbox/assign/", views.inbox_assign, name="inbox_assign"),
]
