from django.apps import AppConfig


class WidgetSitesConfig(AppConfig):
    name = "chatdesk.widget_sites"
    verbose_name = "Widget sites"
