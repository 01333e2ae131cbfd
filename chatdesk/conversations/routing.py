from channels.security.websocket import OriginValidator
from django.conf import settings
from django.urls import path

from chatdesk.conversations.consumers import CustomerChatConsumer

# Customers are anonymous (their token is in the first frame); the widget may be
# embedded on the company's other sites, listed in WIDGET_ALLOWED_ORIGINS.
websocket_urlpatterns = [
    path(
        "ws/chat/",
        OriginValidator(CustomerChatConsumer.as_asgi(), [*settings.ALLOWED_HOSTS, *settings.WIDGET_ALLOWED_ORIGINS]),
    ),
]
