"""Writes for webhooks: managers' endpoints, sending deliveries, retries, disabling, replays.

A delivery is sent by `delivery_attempt` (the Celery task webhook_deliver, queued after the event's
commit). A failed attempt is retried after WEBHOOK_RETRY_BASE_S × 2^(attempt − 1) seconds, up to
WEBHOOK_MAX_ATTEMPTS attempts; the beat sweep `deliveries_requeue_due` queues deliveries whose next
attempt is due. An endpoint whose last WEBHOOK_DISABLE_AFTER_FAILURES attempts all failed is disabled,
and managers see a notice until one of them enables it again or keeps it off (docs/webhooks.md).
"""

from __future__ import annotations

import ipaddress
import logging
import time
import urllib.parse
from datetime import datetime, timedelta

import httpx
from django.conf import settings
from django.contrib.auth.models import User
from django.core.exceptions import ValidationError
from django.db import transaction
from django.db.models import F
from django.utils import timezone
from django.utils.translation import gettext as _
from django.utils.translation import ngettext

from chatdesk.conversations import jobs
from chatdesk.monitoring import metrics
from chatdesk.webhooks import events, signing
from chatdesk.webhooks.models import Attempt, Delivery, Endpoint

log = logging.getLogger(__name__)

# What the delivery log keeps of each response body, and of each error.
RESPONSE_EXCERPT_BYTES = 1024
USER_AGENT = "ChatDesk-Webhooks/1"


class ReplayRefused(Exception):
    """A delivery cannot be sent again now; the message says why, for the manager."""


# -- endpoints -------------------------------------------------------------------


def _is_loopback(host: str) -> bool:
    if host.lower() in ("localhost", "localhost."):
        return True
    try:
        return ipaddress.ip_address(host).is_loopback
    except ValueError:
        return False


def check_url(url: str) -> str:
    """The endpoint URL to store: https://, or http:// to a loopback host (localhost, 127.0.0.0/8, ::1)
    when WEBHOOK_ALLOW_HTTP_LOOPBACK is on (development). Raises ValidationError with the reason.
    Checked when an endpoint is saved: plain http:// never leaves the machine, whatever the setting is later."""
    parts = urllib.parse.urlsplit(url.strip())
    if not parts.hostname:
        raise ValidationError(_("Enter a full URL, such as https://example.com/chatdesk-events."))
    if parts.username or parts.password:
        raise ValidationError(_("Put no user name or password in the URL; deliveries are signed instead."))
    if parts.scheme == "https":
        return url.strip()
    if parts.scheme == "http" and _is_loopback(parts.hostname):
        if settings.WEBHOOK_ALLOW_HTTP_LOOPBACK:
            return url.strip()
        raise ValidationError(
            _(
                "Plain http:// is allowed only for this machine in development (WEBHOOK_ALLOW_HTTP_LOOPBACK); use https://."
            )
        )
    raise ValidationError(_("Webhook URLs must start with https:// (deliveries carry conversation data)."))


def check_events(chosen: list[str]) -> list[str]:
    """The chosen event types, known ones only, in the documented order; at least one."""
    unknown = sorted(set(chosen) - set(events.EVENTS))
    if unknown:
        raise ValidationError(_("Unknown events: %(events)s.") % {"events": ", ".join(unknown)})
    if not chosen:
        raise ValidationError(_("Pick at least one event."))
    return [name for name in events.EVENTS if name in chosen]


def endpoint_create(*, url: str, events: list[str], description: str = "", by: User | None) -> Endpoint:
    """A new active endpoint with a fresh secret. Raises ValidationError for a URL or events refused."""
    return Endpoint.objects.create(
        url=check_url(url), events=check_events(events), description=description.strip()[:200], created_by=by
    )


def endpoint_update(*, endpoint_id: int, url: str, events: list[str], description: str = "") -> Endpoint:
    """Change what an endpoint receives and where. Raises Endpoint.DoesNotExist, ValidationError."""
    endpoint = Endpoint.objects.get(pk=endpoint_id)
    endpoint.url, endpoint.events = check_url(url), check_events(events)
    endpoint.description = description.strip()[:200]
    endpoint.save(update_fields=["url", "events", "description", "updated_at"])
    return endpoint


def endpoint_set_active(*, endpoint_id: int, active: bool) -> Endpoint:
    """A manager enables or disables an endpoint. Either way the desk's "disabled after failures" notice
    is settled: enabling starts counting failures afresh; disabling keeps it off by their choice.
    Raises Endpoint.DoesNotExist."""
    endpoint = Endpoint.objects.get(pk=endpoint_id)
    endpoint.active, endpoint.disabled_reason = active, ""
    endpoint.disabled_at = None if active else timezone.now()
    if active:
        endpoint.consecutive_failures = 0
    endpoint.save(update_fields=["active", "disabled_reason", "disabled_at", "consecutive_failures", "updated_at"])
    return endpoint


# -- deliveries ------------------------------------------------------------------


def retry_delay_s(attempts: int) -> float:
    """Seconds to wait after the `attempts`-th failed attempt: WEBHOOK_RETRY_BASE_S × 2^(attempts − 1)."""
    return float(settings.WEBHOOK_RETRY_BASE_S * 2 ** (attempts - 1))


def _lease_s() -> float:
    # A run cannot outlive the pool's hard time limit; after it the sweep may hand the delivery to another.
    return float(settings.CELERY_TASK_TIME_LIMIT + 10)


def _post(endpoint: Endpoint, delivery: Delivery) -> tuple[int | None, str, str]:
    """POST the delivery once: (status code or None, the first bytes of the body, error)."""
    body = delivery.body.encode()
    headers = {
        "Content-Type": "application/json",
        "User-Agent": USER_AGENT,
        signing.SIGNATURE_HEADER: signing.signature_header(endpoint.secret, int(time.time()), body),
        "X-ChatDesk-Event": delivery.event_type,
        "X-ChatDesk-Event-Id": str(delivery.event_id),
        "X-ChatDesk-Delivery": str(delivery.public_id),
    }
    timeout = httpx.Timeout(settings.WEBHOOK_TIMEOUT_S, connect=min(5.0, settings.WEBHOOK_TIMEOUT_S))
    try:
        with (
            httpx.Client(timeout=timeout, follow_redirects=False, trust_env=False) as client,
            client.stream("POST", endpoint.url, content=body, headers=headers) as response,
        ):
            read = b""
            for chunk in response.iter_bytes():
                read += chunk
                if len(read) >= RESPONSE_EXCERPT_BYTES:
                    break  # the rest is not kept: closing the stream drops it
            return response.status_code, read[:RESPONSE_EXCERPT_BYTES].decode(errors="replace"), ""
    except httpx.HTTPError as exc:
        return None, "", f"{type(exc).__name__}: {exc}"[:300]


def delivery_attempt(*, delivery_id: int, now: datetime | None = None) -> Delivery | None:
    """Send a due pending delivery once and record the attempt. Returns the delivery, or None when
    there was nothing to send (not pending, not due yet, or being sent by another run).

    The claim pushes next_attempt_at past this run's time limit with a conditional update, so duplicate
    tasks and the sweep never send it twice at once. Success (2xx) resets the endpoint's failure count;
    anything else (another status, a redirect, a time-out, no connection) is a failure: the delivery
    waits retry_delay_s(attempts) or, after WEBHOOK_MAX_ATTEMPTS, fails; the endpoint is disabled after
    WEBHOOK_DISABLE_AFTER_FAILURES failed attempts in a row, its pending deliveries failed with it.
    """
    now = now or timezone.now()
    claimed = Delivery.objects.filter(pk=delivery_id, status=Delivery.Status.PENDING, next_attempt_at__lte=now).update(
        next_attempt_at=now + timedelta(seconds=_lease_s())
    )
    if not claimed:
        return None
    delivery = Delivery.objects.select_related("endpoint").get(pk=delivery_id)
    endpoint = delivery.endpoint
    if not endpoint.active:
        return _give_up(delivery, _("The endpoint is disabled."))
    started_at, started = timezone.now(), time.perf_counter()
    status_code, excerpt, error = _post(endpoint, delivery)
    elapsed_ms = round((time.perf_counter() - started) * 1000)
    succeeded = status_code is not None and 200 <= status_code < 300
    if status_code is not None and not succeeded:
        error = f"HTTP {status_code}"
    return _record(delivery, started_at, status_code, elapsed_ms, excerpt, error, succeeded)


def _record(
    delivery: Delivery,
    started_at: datetime,
    status_code: int | None,
    elapsed_ms: int,
    excerpt: str,
    error: str,
    succeeded: bool,
) -> Delivery:
    finished_at = timezone.now()
    with transaction.atomic():
        delivery.attempts += 1
        Attempt.objects.create(
            delivery=delivery,
            number=delivery.attempts,
            started_at=started_at,
            status_code=status_code,
            response_ms=elapsed_ms,
            response_excerpt=excerpt,
            error=error,
            succeeded=succeeded,
        )
        delivery.status_code, delivery.response_ms = status_code, elapsed_ms
        delivery.response_excerpt, delivery.error = excerpt, error
        if succeeded:
            delivery.status, delivery.finished_at, delivery.next_attempt_at = (
                Delivery.Status.SUCCEEDED,
                finished_at,
                None,
            )
            Endpoint.objects.filter(pk=delivery.endpoint_id).update(consecutive_failures=0)
        elif delivery.attempts >= settings.WEBHOOK_MAX_ATTEMPTS:
            delivery.status, delivery.finished_at, delivery.next_attempt_at = Delivery.Status.FAILED, finished_at, None
        else:
            delivery.next_attempt_at = finished_at + timedelta(seconds=retry_delay_s(delivery.attempts))
        delivery.save()
        if not succeeded:
            _count_failure(delivery.endpoint_id)
    if succeeded:
        metrics.webhook_delivered("delivered")
    else:
        metrics.webhook_delivered("gave_up" if delivery.status == Delivery.Status.FAILED else "failed")
    return delivery


def _count_failure(endpoint_id: int) -> None:
    """One more failed attempt in a row; at WEBHOOK_DISABLE_AFTER_FAILURES the endpoint is disabled (once:
    a conditional update) and its pending deliveries fail."""
    Endpoint.objects.filter(pk=endpoint_id).update(consecutive_failures=F("consecutive_failures") + 1)
    limit = settings.WEBHOOK_DISABLE_AFTER_FAILURES
    # Stored once, in the site's language (a worker has no reader's language), like other broadcast texts.
    reason = ngettext(
        "Disabled after %(limit)d failed delivery attempt in a row.",
        "Disabled after %(limit)d failed delivery attempts in a row.",
        limit,
    ) % {"limit": limit}
    disabled = Endpoint.objects.filter(pk=endpoint_id, active=True, consecutive_failures__gte=limit).update(
        active=False, disabled_reason=reason, disabled_at=timezone.now()
    )
    if disabled:
        Delivery.objects.filter(endpoint_id=endpoint_id, status=Delivery.Status.PENDING).update(
            status=Delivery.Status.FAILED, error=_("The endpoint was disabled."), finished_at=timezone.now()
        )
        log.warning("webhook endpoint %s disabled after %s failed attempts in a row", endpoint_id, limit)


def _give_up(delivery: Delivery, error: str) -> Delivery:
    delivery.status, delivery.error = Delivery.Status.FAILED, error[:300]
    delivery.finished_at, delivery.next_attempt_at = timezone.now(), None
    delivery.save(update_fields=["status", "error", "finished_at", "next_attempt_at"])
    return delivery


def deliveries_requeue_due(now: datetime, *, limit: int = 500) -> int:
    """The beat sweep: queue pending deliveries whose next attempt is due (retries; first attempts whose
    task was lost to a broker outage or a dead worker). The task's claim drops duplicates. Returns how
    many were queued."""
    due = Delivery.objects.filter(status=Delivery.Status.PENDING, next_attempt_at__lte=now, endpoint__active=True)
    ids = list(due.order_by("next_attempt_at").values_list("pk", flat=True)[:limit])
    return sum(jobs.enqueue(events.DELIVER, pk) for pk in ids)


def delivery_replay(*, delivery_id: int, by: User) -> Delivery:
    """Send a delivery's event again to its endpoint, as a new delivery with the same body (the receiver
    sees the same event id) and a fresh signature. Raises Delivery.DoesNotExist; ReplayRefused while
    the endpoint is disabled."""
    original = Delivery.objects.select_related("endpoint").get(pk=delivery_id)
    if not original.endpoint.active:
        raise ReplayRefused(_("This endpoint is disabled: enable it first, then replay."))
    with transaction.atomic():
        replay = Delivery.objects.create(
            endpoint=original.endpoint,
            event_id=original.event_id,
            event_type=original.event_type,
            body=original.body,
            next_attempt_at=timezone.now(),
            replay_of=original,
            replayed_by=by,
        )
        transaction.on_commit(lambda: jobs.enqueue(events.DELIVER, replay.pk))
    return replay
