"""Every metric the desk exports, and the few functions that record them (prometheus_client, pinned).

With PROMETHEUS_MULTIPROC_DIR set (it must be, before this module is imported, in every Daphne and
Celery process of one desk), each process writes its values to files in that folder and `/metrics`
adds them up: counters and histograms over every process that ran since the folder was emptied, the
websocket gauge over the processes still alive. Without it, each process keeps its own values and
`/metrics` shows only the process that answers. Names and labels: docs/operations.md ("Metrics").
"""

from __future__ import annotations

from prometheus_client import Counter, Gauge, Histogram

# Seconds: selection answers in well under a second, generation on a CPU in tens of seconds.
DRAFT_BUCKETS = (0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0, 20.0, 30.0, 60.0, 120.0)

TIME_TO_DRAFT = Histogram(
    "chatdesk_time_to_draft_seconds",
    "Customer message stored to its draft written (queueing included), by drafting engine.",
    ["engine"],
    buckets=DRAFT_BUCKETS,
)
DRAFT_ENGINE_TIME = Histogram(
    "chatdesk_draft_engine_seconds",
    "Time the drafting engine itself took for one draft, by drafting engine.",
    ["engine"],
    buckets=DRAFT_BUCKETS,
)
DRAFTS = Counter(
    "chatdesk_drafts",
    "Drafts finished by the workers, by engine and outcome: ready (for an agent), auto_sent, failed, "
    "superseded or discarded (a newer message or a closed conversation made it moot).",
    ["engine", "outcome"],
)
DRAFT_FAILURES = Counter("chatdesk_draft_failures", "Failed drafts by error code (Draft.ErrorCode).", ["error_code"])
DRAFT_REVIEWS = Counter(
    "chatdesk_draft_reviews", "Agents' decisions on ready drafts: approved, edited or rejected.", ["decision"]
)
ESCALATIONS = Counter(
    "chatdesk_escalations",
    "Escalation rules that fired, by reason (Conversation.EscalationReason); negative_sentiment and "
    "sla_breach may only raise a conversation's priority.",
    ["reason"],
)
WEBSOCKET_CONNECTIONS = Gauge(
    "chatdesk_websocket_connections",
    "Open websocket connections by kind: customer (/ws/chat/) or agent (/ws/agents/...).",
    ["kind"],
    multiprocess_mode="livesum",
)
CELERY_TASK_FAILURES = Counter("chatdesk_celery_task_failures", "Celery tasks that raised, by task name.", ["task"])
CELERY_TASK_RETRIES = Counter(
    "chatdesk_celery_task_retries", "Celery tasks that asked to be retried, by task name.", ["task"]
)
WEBHOOK_DELIVERIES = Counter(
    "chatdesk_webhook_deliveries",
    "Webhook delivery attempts by result: delivered (a 2xx answer), failed (any other answer or none; "
    "retried) or gave_up (the last retry failed).",
    ["result"],
)
WEBHOOK_RESULTS = ("delivered", "failed", "gave_up")


def draft_finished(*, engine: str, outcome: str, time_to_draft_s: float | None, engine_s: float | None) -> None:
    """A worker finished a draft (`outcome`: a Draft.Status); seconds are None when unknown."""
    engine = engine or "default"
    DRAFTS.labels(engine=engine, outcome=outcome).inc()
    if time_to_draft_s is not None:
        TIME_TO_DRAFT.labels(engine=engine).observe(time_to_draft_s)
    if engine_s is not None:
        DRAFT_ENGINE_TIME.labels(engine=engine).observe(engine_s)


def draft_failed(*, engine: str, error_code: str) -> None:
    """A draft failed for `error_code` (a Draft.ErrorCode)."""
    DRAFTS.labels(engine=engine or "default", outcome="failed").inc()
    DRAFT_FAILURES.labels(error_code=error_code or "unknown").inc()


def webhook_delivered(result: str) -> None:
    """One webhook delivery attempt ended with `result`, one of WEBHOOK_RESULTS (ValueError otherwise)."""
    if result not in WEBHOOK_RESULTS:
        raise ValueError(f"webhook delivery result must be one of {WEBHOOK_RESULTS}, not {result!r}")
    WEBHOOK_DELIVERIES.labels(result=result).inc()
