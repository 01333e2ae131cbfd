from django.urls import path

from chatdesk.widget_sites import views

app_name = "sites"
urlpatterns = [
    path("", views.site_list, name="sites"),
    path("<int:site_id>/", views.site_detail, name="site"),
    path("<int:site_id>/origins/", views.site_origins, name="origins"),
    path("<int:site_id>/rotate/", views.site_rotate, name="rotate"),
    path("<int:site_id>/delete/", views.site_remove, name="delete"),
]
