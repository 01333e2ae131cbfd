from django.apps import AppConfig


class MonitoringConfig(AppConfig):
    name = "chatdesk.monitoring"

    def ready(self) -> None:
        from chatdesk.monitoring import receivers

        receivers.connect()
