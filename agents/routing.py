from channels.auth import AuthMiddlewareStack
from channels.security.websocket import AllowedHostsOriginValidator
from django.urls import path

from agents.consumers import AgentConversationConsumer, QueueConsumer

# Agents are signed in with the Django session; only the app's own pages may connect.
websocket_urlpatterns = [
    path("ws/agents/queue/", AllowedHostsOriginValidator(AuthMiddlewareStack(QueueConsumer.as_asgi()))),
    path(
        "ws/agents/conversations/<uuid:public_id>/",
        AllowedHostsOriginValidator(AuthMiddlewareStack(AgentConversationConsumer.as_asgi())),
    ),
]
