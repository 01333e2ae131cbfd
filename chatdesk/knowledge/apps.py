from django.apps import AppConfig


class KnowledgeConfig(AppConfig):
    name = "chatdesk.knowledge"
    verbose_name = "Knowledge base"
