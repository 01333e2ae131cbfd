"""ASGI entry point for Daphne: HTTP (Django) and websockets (Channels)."""

import os

from django.core.asgi import get_asgi_application

os.environ.setdefault("DJANGO_SETTINGS_MODULE", "chatdesk.settings")
django_http = get_asgi_application()

from channels.routing import ProtocolTypeRouter, URLRouter  # noqa: E402  (Django must be set up first)
from django.conf import settings  # noqa: E402
from django.contrib.staticfiles.handlers import ASGIStaticFilesHandler  # noqa: E402
from django.urls import re_path  # noqa: E402

from agents.routing import websocket_urlpatterns as agent_routes  # noqa: E402
from chatdesk.conversations.consumers import NotFoundConsumer  # noqa: E402
from chatdesk.conversations.routing import websocket_urlpatterns as customer_routes  # noqa: E402

application = ProtocolTypeRouter(
    {
        "http": ASGIStaticFilesHandler(django_http) if settings.SERVE_STATIC else django_http,
        # Any other path (a malformed conversation id included) gets not_found and 4404, never HTTP 500.
        "websocket": URLRouter([*customer_routes, *agent_routes, re_path(r"", NotFoundConsumer.as_asgi())]),
    }
)
