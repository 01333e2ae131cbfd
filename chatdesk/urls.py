from django.contrib import admin
from django.contrib.auth import views as auth_views
from django.urls import include, path
from django.views.i18n import JavaScriptCatalog

from chatdesk import views
from chatdesk.api import api
from chatdesk.monitoring import views as monitoring_views

# The styled 403 page, saying why (chatdesk.views.forbidden).
handler403 = views.forbidden

urlpatterns = [
    path("", views.demo_shop, name="demo-shop"),
    path("healthz", views.healthz, name="healthz"),
    path("readyz", views.readyz, name="readyz"),
    path("metrics", monitoring_views.metrics, name="metrics"),
    path("agents/", include("agents.urls")),
    path("reports/", include("chatdesk.reports.urls")),
    path("knowledge/", include("chatdesk.knowledge.urls")),
    path("webhooks/", include("chatdesk.webhooks.urls")),
    path("sites/", include("chatdesk.widget_sites.urls")),
    path("api/v1/", api.urls()),
    path("api-tokens/", include("chatdesk.api.urls")),
    path("accounts/login/", auth_views.LoginView.as_view(), name="login"),
    path("accounts/logout/", auth_views.LogoutView.as_view(), name="logout"),
    path("accounts/", include("chatdesk.accounts.urls")),
    # The desk's JavaScript strings in the request's language; the widget's, in a language it names.
    path("jsi18n/", JavaScriptCatalog.as_view(), name="javascript-catalog"),
    path("jsi18n/widget/<str:language>.json", views.widget_catalog, name="widget-catalog"),
    path("admin/", admin.site.urls),
]
