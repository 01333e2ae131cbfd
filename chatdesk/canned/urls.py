from django.urls import path

from chatdesk.canned import views

app_name = "canned"
urlpatterns = [
    path("", views.canned_list, name="list"),
    path("<int:canned_id>/", views.canned_edit, name="edit"),
    path("<int:canned_id>/delete/", views.canned_delete, name="delete"),
]
