"""Canned replies: reusable texts agents insert into a reply by typing `/` and their shortcut."""

from __future__ import annotations

from django.conf import settings
from django.db import models
from django.db.models import Q


class CannedReply(models.Model):
    """A personal reply (owner set: only its owner sees and changes it) or a shared one (owner empty:
    every agent sees it, only managers change it)."""

    owner = models.ForeignKey(
        settings.AUTH_USER_MODEL, null=True, blank=True, on_delete=models.CASCADE, related_name="canned_replies"
    )
    shortcut = models.CharField(max_length=40)
    text = models.TextField()
    created_by = models.ForeignKey(settings.AUTH_USER_MODEL, null=True, on_delete=models.SET_NULL, related_name="+")
    created_at = models.DateTimeField(auto_now_add=True)
    updated_at = models.DateTimeField(auto_now=True)

    class Meta:
        ordering = ["shortcut", "pk"]
        constraints = [
            models.UniqueConstraint(fields=["owner", "shortcut"], name="canned_personal_shortcut_unique"),
            models.UniqueConstraint(
                fields=["shortcut"], condition=Q(owner__isnull=True), name="canned_shared_shortcut_unique"
            ),
        ]

    def __str__(self) -> str:
        return f"/{self.shortcut}"

    @property
    def shared(self) -> bool:
        return self.owner_id is None
