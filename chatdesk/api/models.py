"""API tokens: how integrations authenticate to /api/v1/ (docs/api.md)."""

from __future__ import annotations

from django.conf import settings
from django.db import models
from django.utils.translation import pgettext_lazy


class ApiToken(models.Model):
    """A manager's token for one integration. Only its SHA-256 is stored; `prefix` (the first characters
    of the secret) is what people see to tell tokens apart. The token acts as its owner: replies it
    posts are the owner's, and it stops working when the owner is deactivated or no longer an agent.

    read   read conversations, knowledge articles, topics, teams and agents
    write  read, and act in conversations: post replies and drafts
    admin  write, and change the knowledge base, read reports and their CSV exports
    """

    class Scope(models.TextChoices):
        READ = "read", pgettext_lazy("API token scope", "Read")
        WRITE = "write", pgettext_lazy("API token scope", "Read and write")
        ADMIN = "admin", pgettext_lazy("API token scope", "Admin")

    RANK = {Scope.READ: 0, Scope.WRITE: 1, Scope.ADMIN: 2}

    name = models.CharField(max_length=80, help_text="What the token is for, e.g. the integration's name.")
    owner = models.ForeignKey(settings.AUTH_USER_MODEL, on_delete=models.CASCADE, related_name="api_tokens")
    scope = models.CharField(max_length=8, choices=Scope.choices, default=Scope.READ)
    prefix = models.CharField(max_length=16, unique=True, help_text="The secret's first characters, shown to people.")
    key_hash = models.CharField(max_length=64, unique=True, help_text="SHA-256 of the whole secret, hex.")
    created_at = models.DateTimeField(auto_now_add=True)
    last_used_at = models.DateTimeField(null=True, blank=True)
    revoked_at = models.DateTimeField(null=True, blank=True, help_text="Once set, the token is refused.")
    revoked_by = models.ForeignKey(
        settings.AUTH_USER_MODEL, null=True, blank=True, on_delete=models.SET_NULL, related_name="+"
    )

    class Meta:
        ordering = ["-created_at"]

    def __str__(self) -> str:
        return f"{self.name} ({self.prefix}…)"

    def allows(self, scope: str) -> bool:
        """True when this token's scope includes `scope` (read ⊂ write ⊂ admin)."""
        return self.RANK[ApiToken.Scope(self.scope)] >= self.RANK[ApiToken.Scope(scope)]
