from django.conf import settings
from django.urls import path

from chatdesk.conversations.consumers import CustomerChatConsumer
from chatdesk.widget_sites.websocket import SiteOriginValidator

# Customers are anonymous (their token is in the first frame); the widget is embedded on the origins the
# widget sites list (/sites/), and on those in WIDGET_ALLOWED_ORIGINS.
websocket_urlpatterns = [
    path(
        "ws/chat/",
        SiteOriginValidator(
            CustomerChatConsumer.as_asgi(), [*settings.ALLOWED_HOSTS, *settings.WIDGET_ALLOWED_ORIGINS]
        ),
    ),
]
