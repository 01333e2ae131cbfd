from django.apps import AppConfig


class ConversationsConfig(AppConfig):
    name = "chatdesk.conversations"
