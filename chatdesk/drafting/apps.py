from django.apps import AppConfig


class DraftingConfig(AppConfig):
    """Drafting has no models; it is an app for its `finetune_generator` command only."""

    name = "chatdesk.drafting"
