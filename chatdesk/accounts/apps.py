from django.apps import AppConfig


class AccountsConfig(AppConfig):
    """The admin of users and groups: who may grant what (chatdesk.accounts.admin)."""

    name = "chatdesk.accounts"
