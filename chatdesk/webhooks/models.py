"""Webhooks: the endpoints managers register, each event's delivery to one of them, and every attempt."""

from __future__ import annotations

import secrets
import uuid

from django.conf import settings
from django.db import models
from django.utils.translation import gettext_lazy as _


def new_secret() -> str:
    """A signing secret: "whsec_" and 43 URL-safe characters (256 random bits)."""
    return "whsec_" + secrets.token_urlsafe(32)


class Endpoint(models.Model):
    """A URL that receives the events it subscribed to as signed JSON POSTs (docs/webhooks.md).

    active=False: nothing is sent. `disabled_reason` says why the desk turned it off itself (too many
    failed attempts in a row; managers see a notice until one of them enables it again or keeps it off).
    """

    url = models.URLField(max_length=500)
    description = models.CharField(max_length=200, blank=True)
    events = models.JSONField(default=list, help_text="The event types (webhooks.events.EVENTS) it receives.")
    secret = models.CharField(max_length=80, default=new_secret, help_text="Signs each delivery (HMAC-SHA256).")
    active = models.BooleanField(default=True)
    consecutive_failures = models.PositiveIntegerField(
        default=0, help_text="Failed attempts since the last successful one."
    )
    disabled_reason = models.CharField(
        max_length=200, blank=True, help_text="Set when the desk disabled it after repeated failures."
    )
    disabled_at = models.DateTimeField(null=True, blank=True)
    created_by = models.ForeignKey(settings.AUTH_USER_MODEL, null=True, blank=True, on_delete=models.SET_NULL)
    created_at = models.DateTimeField(auto_now_add=True)
    updated_at = models.DateTimeField(auto_now=True)

    class Meta:
        ordering = ["created_at", "pk"]

    def __str__(self) -> str:
        return self.url


class Delivery(models.Model):
    """One event for one endpoint: the exact body sent on every attempt, and where it stands.

    pending    waiting for its next attempt at `next_attempt_at` (a worker sending it holds a lease:
               next_attempt_at is pushed past the attempt's time limit while it runs)
    succeeded  the endpoint answered 2xx
    failed     given up: WEBHOOK_MAX_ATTEMPTS attempts failed, or the endpoint was disabled
    """

    class Status(models.TextChoices):
        PENDING = "pending", _("Pending")
        SUCCEEDED = "succeeded", _("Delivered")
        FAILED = "failed", _("Failed")

    public_id = models.UUIDField(default=uuid.uuid4, unique=True, editable=False)
    endpoint = models.ForeignKey(Endpoint, on_delete=models.CASCADE, related_name="deliveries")
    event_id = models.UUIDField(help_text="The event's id: the same for every endpoint, retry and replay.")
    event_type = models.CharField(max_length=40)
    body = models.TextField(help_text="The JSON sent, byte for byte on every attempt.")
    status = models.CharField(max_length=16, choices=Status.choices, default=Status.PENDING, db_index=True)
    attempts = models.PositiveSmallIntegerField(default=0)
    next_attempt_at = models.DateTimeField(null=True, blank=True, db_index=True)
    replay_of = models.ForeignKey(
        "self", null=True, blank=True, on_delete=models.SET_NULL, related_name="replays", help_text="Sent again from"
    )
    replayed_by = models.ForeignKey(
        settings.AUTH_USER_MODEL, null=True, blank=True, on_delete=models.SET_NULL, related_name="+"
    )
    # The latest attempt, for the delivery log (every attempt is an Attempt).
    status_code = models.PositiveSmallIntegerField(null=True, blank=True)
    response_ms = models.PositiveIntegerField(null=True, blank=True)
    response_excerpt = models.TextField(blank=True)
    error = models.CharField(max_length=300, blank=True)
    created_at = models.DateTimeField(auto_now_add=True)
    finished_at = models.DateTimeField(null=True, blank=True)

    class Meta:
        ordering = ["-created_at", "-pk"]
        verbose_name_plural = "deliveries"

    def __str__(self) -> str:
        return f"{self.event_type} → {self.endpoint}"


class Attempt(models.Model):
    """One POST of a delivery: what came back (status code, time, the first bytes) or what went wrong."""

    delivery = models.ForeignKey(Delivery, on_delete=models.CASCADE, related_name="attempt_log")
    number = models.PositiveSmallIntegerField()
    started_at = models.DateTimeField()
    status_code = models.PositiveSmallIntegerField(null=True, blank=True, help_text="None: no HTTP answer.")
    response_ms = models.PositiveIntegerField(help_text="From sending to the end of what was read, milliseconds.")
    response_excerpt = models.TextField(blank=True, help_text="The first bytes of the response body.")
    error = models.CharField(max_length=300, blank=True)
    succeeded = models.BooleanField(default=False)

    class Meta:
        ordering = ["number"]
        constraints = [models.UniqueConstraint(fields=["delivery", "number"], name="one_attempt_per_number")]

    def __str__(self) -> str:
        return f"attempt {self.number} of {self.delivery_id}"
