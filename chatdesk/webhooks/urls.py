from django.urls import path

from chatdesk.webhooks import views

app_name = "webhooks"
urlpatterns = [
    path("", views.endpoint_list, name="endpoints"),
    path("new/", views.endpoint_new, name="new"),
    path("<int:endpoint_id>/", views.endpoint_detail, name="endpoint"),
    path("<int:endpoint_id>/state/", views.endpoint_state, name="state"),
    path("deliveries/<int:delivery_id>/replay/", views.delivery_replay, name="replay"),
]
