from typing import Any

from django.apps import AppConfig
from django.db.models.signals import post_migrate


class ConversationsConfig(AppConfig):
    name = "chatdesk.conversations"

    def ready(self) -> None:
        # After this app's migrations, when the knowledge and auth permissions exist already (both
        # come earlier in INSTALLED_APPS), so a production `migrate` gives the roles without seed_demo.
        post_migrate.connect(_roles_ensure, sender=self)
        from chatdesk.conversations import receivers

        receivers.connect()


def _roles_ensure(using: str, **kwargs: Any) -> None:
    from chatdesk.conversations.roles import groups_ensure

    if using == "default":
        groups_ensure()
