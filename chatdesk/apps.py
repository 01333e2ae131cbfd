from django.apps import AppConfig


class DeskConfig(AppConfig):
    """The desk as a whole: its `rundesk` command, which starts every process of the embedded default."""

    name = "chatdesk"
    label = "desk"
    verbose_name = "ChatDesk"
