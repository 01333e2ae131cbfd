from django.apps import AppConfig


class WebhooksConfig(AppConfig):
    name = "chatdesk.webhooks"
    verbose_name = "Webhooks"
