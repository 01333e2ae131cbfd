from django.apps import AppConfig


class CannedConfig(AppConfig):
    name = "chatdesk.canned"
    verbose_name = "Canned replies"
