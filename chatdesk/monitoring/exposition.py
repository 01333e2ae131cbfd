"""What a scrape of `/metrics` reads, and who may read it.

The queue gauges are counted from the database at scrape time (two GROUP BY queries on indexed status
columns and one MIN), so every process agrees on them and nothing has to keep them up to date.
"""

from __future__ import annotations

import glob
import hmac
import ipaddress
import logging
import os
from collections.abc import Iterable, Iterator
from pathlib import Path

from django.conf import settings
from django.db import DatabaseError
from django.db.models import Count, Min
from django.http import HttpRequest
from django.utils import timezone
from prometheus_client import REGISTRY, CollectorRegistry, generate_latest, multiprocess
from prometheus_client.metrics_core import GaugeMetricFamily, Metric

from chatdesk.conversations.models import Conversation, Draft

log = logging.getLogger(__name__)

QUEUE_STATUSES = (Conversation.Status.ESCALATED, Conversation.Status.TAKEN_OVER)
WAITING_DRAFT_STATUSES = (Draft.Status.PENDING, Draft.Status.GENERATING, Draft.Status.READY)


class QueueCollector:
    """chatdesk_queue_conversations{status}, chatdesk_queue_drafts{status} and the oldest pending draft's age.

    A database that does not answer leaves these out of the scrape (logged) instead of failing it.
    """

    def describe(self) -> list[Metric]:
        return []  # computed at scrape time; nothing to check at registration

    def collect(self) -> Iterator[Metric]:
        try:
            in_queue = Conversation.objects.filter(status__in=QUEUE_STATUSES)
            conversations = dict(in_queue.values_list("status").annotate(n=Count("id")))
            waiting = Draft.objects.filter(status__in=WAITING_DRAFT_STATUSES)
            drafts = dict(waiting.values_list("status").annotate(n=Count("id")))
            oldest = Draft.objects.filter(status=Draft.Status.PENDING).aggregate(at=Min("queued_at"))["at"]
        except DatabaseError as exc:
            log.warning("queue metrics left out of the scrape: %s", exc)
            return
        family = GaugeMetricFamily(
            "chatdesk_queue_conversations",
            "Conversations on the agents' queue: escalated (waiting for a person) or taken over.",
            labels=["status"],
        )
        for status in QUEUE_STATUSES:
            family.add_metric([str(status)], conversations.get(status, 0))
        yield family
        family = GaugeMetricFamily(
            "chatdesk_queue_drafts",
            "Drafts waiting: pending (for a worker), generating, ready (for an agent's review).",
            labels=["status"],
        )
        for draft_status in WAITING_DRAFT_STATUSES:
            family.add_metric([str(draft_status)], drafts.get(draft_status, 0))
        yield family
        age = max((timezone.now() - oldest).total_seconds(), 0.0) if oldest else 0.0
        yield GaugeMetricFamily(
            "chatdesk_queue_oldest_pending_draft_seconds",
            "How long the oldest draft still waiting for a worker has waited since it was queued (0: none).",
            value=age,
        )


class _ThisProcess:
    """The default registry's metrics: this process's own values, when there is no multiprocess folder."""

    def collect(self) -> Iterable[Metric]:
        return REGISTRY.collect()


def forget_dead_processes(path: str) -> None:
    """Drop the live-gauge files of processes that are gone (a Daphne killed with SIGKILL never says so), so
    chatdesk_websocket_connections counts only sockets that still exist. Needs the processes that share the
    folder to share this process's pid namespace (one host or one container), as they do here."""
    for name in glob.glob(os.path.join(path, "gauge_live*_*.db")):
        pid = int(name.rsplit("_", 1)[1].removesuffix(".db"))
        try:
            os.kill(pid, 0)
        except ProcessLookupError:
            multiprocess.mark_process_dead(pid, path)  # type: ignore[no-untyped-call]
        except PermissionError:
            pass  # alive, someone else's


def multiprocess_dir_reset(path: Path) -> None:
    """Create the multiprocess folder, or empty it of the metric files of processes from before: call before
    the desk's processes start (a restarted desk's counters start again from 0, as Prometheus expects)."""
    path.mkdir(parents=True, exist_ok=True)
    for name in path.glob("*.db"):
        name.unlink(missing_ok=True)


def scrape() -> bytes:
    """The Prometheus text format of every metric: summed over the processes that wrote to
    PROMETHEUS_MULTIPROC_DIR when it is set, this process's own otherwise; plus the queue gauges."""
    registry = CollectorRegistry(auto_describe=False)
    path = settings.PROMETHEUS_MULTIPROC_DIR
    if path:
        forget_dead_processes(path)
        multiprocess.MultiProcessCollector(registry, path=path)  # type: ignore[no-untyped-call]
    else:
        registry.register(_ThisProcess())
    registry.register(QueueCollector())
    return generate_latest(registry)


REFUSED = "Send Authorization: Bearer <METRICS_TOKEN>, or scrape from METRICS_ALLOWED_NETWORKS.\n"


def may_read(request: HttpRequest) -> bool:
    """The request carries `Authorization: Bearer <METRICS_TOKEN>`, or comes from METRICS_ALLOWED_NETWORKS."""
    return may_read_from(request.headers.get("Authorization", ""), request.META.get("REMOTE_ADDR", ""))


def may_read_from(authorization: str, address: str) -> bool:
    """`authorization` is the Authorization header ("" when absent), `address` the client's IP address."""
    token = settings.METRICS_TOKEN
    scheme, _, given = authorization.partition(" ")
    if token and scheme.lower() == "bearer" and hmac.compare_digest(given.strip().encode(), token.encode()):
        return True
    try:
        client = ipaddress.ip_address(address)
    except ValueError:
        return False
    return any(client in network for network in settings.METRICS_ALLOWED_NETWORKS)


def metrics_enabled() -> bool:
    """Metrics are off (404) until METRICS_TOKEN or METRICS_ALLOWED_NETWORKS is set."""
    return bool(settings.METRICS_TOKEN or settings.METRICS_ALLOWED_NETWORKS)
