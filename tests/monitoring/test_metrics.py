"""/metrics: who may read it, what a conversation adds to it, and the sum over several processes."""

from __future__ import annotations

import ipaddress
import os
import subprocess
import sys
import urllib.error
import urllib.request
from pathlib import Path
from typing import Any

import pytest
from celery.exceptions import Retry
from django.contrib.auth.models import User
from django.db import transaction
from django.test import Client

from chatdesk.celery import app
from chatdesk.conversations import services
from chatdesk.conversations.models import Conversation, Draft
from chatdesk.drafting.base import DraftContext, DraftEngine, DraftResult
from tests.conftest import UseEngine, draft_now, drafts_queued, say
from tests.live import ROOT, free_port, wait_for_port
from tests.monitoring.scrape import Samples, samples, value

pytestmark = pytest.mark.django_db

TOKEN = "metrics-test-token"


def scrape(**headers: str) -> Samples:
    response = Client().get("/metrics", headers={"Authorization": f"Bearer {TOKEN}", **headers})
    assert response.status_code == 200, response.content
    assert response["Content-Type"].startswith("text/plain; version=0.0.4")
    return samples(response.content.decode())


def test_metrics_are_off_until_a_token_or_a_network_is_set() -> None:
    assert Client().get("/metrics").status_code == 404


def test_only_the_token_or_an_allowed_network_reads_metrics(settings: Any) -> None:
    settings.METRICS_TOKEN = TOKEN
    client = Client()
    refused = client.get("/metrics")
    assert refused.status_code == 403 and b"Authorization: Bearer" in refused.content
    assert client.get("/metrics", headers={"Authorization": "Bearer not-the-token"}).status_code == 403
    assert client.get("/metrics", headers={"Authorization": f"Basic {TOKEN}"}).status_code == 403
    assert client.get("/metrics", headers={"Authorization": f"Bearer {TOKEN}"}).status_code == 200

    settings.METRICS_TOKEN = ""
    settings.METRICS_ALLOWED_NETWORKS = [ipaddress.ip_network("10.0.0.0/8"), ipaddress.ip_network("fd00::/8")]
    assert client.get("/metrics", REMOTE_ADDR="10.20.30.40").status_code == 200
    assert client.get("/metrics", REMOTE_ADDR="fd00::1").status_code == 200
    assert client.get("/metrics", REMOTE_ADDR="127.0.0.1").status_code == 403
    assert client.get("/metrics", REMOTE_ADDR="192.168.1.5").status_code == 403
    # Without METRICS_TOKEN no bearer token opens it, not even an empty one.
    assert client.get("/metrics", headers={"Authorization": "Bearer "}).status_code == 403


def test_allowed_networks_that_are_not_networks_stop_the_desk_from_starting() -> None:
    env = {**os.environ, "METRICS_ALLOWED_NETWORKS": "10.0.0.0/8, localhost"}
    started = subprocess.run(
        [sys.executable, "-c", "import django; django.setup()"], cwd=ROOT, env=env, capture_output=True, text=True
    )
    assert started.returncode != 0
    assert "METRICS_ALLOWED_NETWORKS must be CIDR networks" in started.stderr


class Answers(DraftEngine):
    name = "answers"

    def draft(self, context: DraftContext) -> DraftResult:
        return DraftResult(text="Here is how.", confidence=0.9, timings={"select_s": 0.01})


class Breaks(DraftEngine):
    name = "breaks"

    def draft(self, context: DraftContext) -> DraftResult:
        raise RuntimeError("model server away")


def test_a_conversation_adds_drafts_reviews_escalations_and_the_queue(
    settings: Any,
    conversation: Conversation,
    agent: User,
    use_engine: UseEngine,
    monkeypatch: pytest.MonkeyPatch,
    django_capture_on_commit_callbacks: Any,
) -> None:
    settings.METRICS_TOKEN = TOKEN
    drafts_queued(monkeypatch)
    use_engine(Answers())
    before = scrape()
    with django_capture_on_commit_callbacks(execute=True):
        say(conversation, "How do I reset my password?")
        ready = draft_now(conversation)
        services.draft_approve(public_id=conversation.public_id, draft_id=ready.pk, agent=agent)
    use_engine(Breaks())
    with django_capture_on_commit_callbacks(execute=True):
        say(conversation, "And my e-mail address?")
        failed = draft_now(conversation)
        say(conversation, "Hello?")  # its draft waits for a worker
        services.conversation_request_human(public_id=services.conversation_start().public_id)  # another customer
    assert (ready.status, failed.status) == (Draft.Status.READY, Draft.Status.FAILED)

    after = scrape()

    def added(name: str, **labels: str) -> float:
        return value(after, name, **labels) - value(before, name, **labels)

    answers, breaks = "test-answers", "test-breaks"
    assert added("chatdesk_drafts_total", engine=answers, outcome="ready") == 1
    assert added("chatdesk_drafts_total", engine=breaks, outcome="failed") == 1
    assert added("chatdesk_draft_failures_total", error_code="engine_error") == 1
    assert added("chatdesk_draft_reviews_total", decision="approved") == 1
    assert added("chatdesk_escalations_total", reason="draft_failed") == 1
    assert added("chatdesk_escalations_total", reason="customer_request") == 1
    assert added("chatdesk_time_to_draft_seconds_count", engine=answers) == 1
    assert added("chatdesk_time_to_draft_seconds_bucket", engine=answers, le="+Inf") == 1
    assert added("chatdesk_time_to_draft_seconds_sum", engine=answers) >= 0
    assert added("chatdesk_draft_engine_seconds_count", engine=answers) == 1
    # Computed from the database at scrape time: this test's conversations alone.
    assert value(after, "chatdesk_queue_conversations", status="escalated") == 2
    assert value(after, "chatdesk_queue_conversations", status="taken_over") == 0
    assert value(after, "chatdesk_queue_drafts", status="pending") == 1
    assert value(after, "chatdesk_queue_drafts", status="ready") == 0
    assert 0 <= value(after, "chatdesk_queue_oldest_pending_draft_seconds") < 60


def test_a_rolled_back_change_is_not_counted(
    settings: Any, conversation: Conversation, django_capture_on_commit_callbacks: Any
) -> None:
    settings.METRICS_TOKEN = TOKEN
    before = value(scrape(), "chatdesk_escalations_total", reason="customer_request")
    with (
        django_capture_on_commit_callbacks(execute=True) as callbacks,
        pytest.raises(RuntimeError),
        transaction.atomic(),
    ):
        services.conversation_request_human(public_id=conversation.public_id)
        raise RuntimeError("the request failed after the flag was stored")
    assert callbacks == []
    assert value(scrape(), "chatdesk_escalations_total", reason="customer_request") == before


@app.task(name="tests.monitoring.fails")
def fails() -> None:
    raise ValueError("a bug")


@app.task(name="tests.monitoring.asks_again")
def asks_again() -> None:
    raise Retry("the model server is busy", when=0)


def test_celery_task_failures_and_retries_are_counted_by_task(settings: Any) -> None:
    settings.METRICS_TOKEN = TOKEN
    before = scrape()
    assert fails.apply().state == "FAILURE"
    assert asks_again.apply().state == "RETRY"
    after = scrape()
    failures = ("chatdesk_celery_task_failures_total", "tests.monitoring.fails")
    retries = ("chatdesk_celery_task_retries_total", "tests.monitoring.asks_again")
    for name, task in (failures, retries):
        assert value(after, name, task=task) - value(before, name, task=task) == 1


WRITER = """
import sys
from chatdesk.monitoring import metrics
metrics.ESCALATIONS.labels(reason="customer_request").inc(int(sys.argv[1]))
metrics.TIME_TO_DRAFT.labels(engine="retrieval").observe(float(sys.argv[2]))
metrics.WEBSOCKET_CONNECTIONS.labels(kind="customer").inc()
metrics.webhook_delivered("delivered")
print("written", flush=True)
sys.stdin.readline()  # stays alive, with its socket open, until the test says so
"""


def test_multiprocess_mode_adds_up_what_several_processes_wrote(settings: Any, tmp_path: Path) -> None:
    settings.METRICS_TOKEN = TOKEN
    settings.PROMETHEUS_MULTIPROC_DIR = str(tmp_path)
    env = {**os.environ, "PROMETHEUS_MULTIPROC_DIR": str(tmp_path)}
    writers = [
        subprocess.Popen(
            [sys.executable, "-c", WRITER, count, seconds],
            cwd=ROOT,
            env=env,
            stdin=subprocess.PIPE,
            stdout=subprocess.PIPE,
            text=True,
        )
        for count, seconds in (("1", "0.3"), ("2", "7"))
    ]
    try:
        for writer in writers:
            assert writer.stdout is not None and writer.stdout.readline() == "written\n"
        both = scrape()
        assert value(both, "chatdesk_escalations_total", reason="customer_request") == 3
        assert value(both, "chatdesk_time_to_draft_seconds_count", engine="retrieval") == 2
        assert value(both, "chatdesk_time_to_draft_seconds_bucket", engine="retrieval", le="0.5") == 1
        assert value(both, "chatdesk_time_to_draft_seconds_bucket", engine="retrieval", le="10.0") == 2
        assert value(both, "chatdesk_time_to_draft_seconds_sum", engine="retrieval") == pytest.approx(7.3)
        assert value(both, "chatdesk_websocket_connections", kind="customer") == 2
        assert value(both, "chatdesk_webhook_deliveries_total", result="delivered") == 2

        writers[0].kill()  # like a Daphne killed with SIGKILL: its sockets are gone, its counts stay
        writers[0].wait()
        one_left = scrape()
        assert value(one_left, "chatdesk_websocket_connections", kind="customer") == 1
        assert value(one_left, "chatdesk_escalations_total", reason="customer_request") == 3
    finally:
        for writer in writers:
            writer.kill()
            writer.wait()


def test_a_worker_only_host_serves_its_folder_with_the_exporter(tmp_path: Path) -> None:
    env = {**os.environ, "PROMETHEUS_MULTIPROC_DIR": str(tmp_path), "METRICS_TOKEN": TOKEN}
    earlier = "from chatdesk.monitoring import metrics; metrics.DRAFT_FAILURES.labels(error_code='timed_out').inc(4)"
    subprocess.run([sys.executable, "-c", earlier], cwd=ROOT, env=env, check=True)
    port = free_port()
    exporter = subprocess.Popen(
        [sys.executable, "-m", "chatdesk.monitoring.exporter", "--port", str(port)], cwd=ROOT, env=env
    )
    try:
        wait_for_port(port, [exporter])
        url = f"http://127.0.0.1:{port}/metrics"
        with pytest.raises(urllib.error.HTTPError) as refused:
            urllib.request.urlopen(url, timeout=10)
        assert refused.value.code == 403
        request = urllib.request.Request(url, headers={"Authorization": f"Bearer {TOKEN}"})
        with urllib.request.urlopen(request, timeout=10) as response:
            scraped = samples(response.read().decode())
        assert value(scraped, "chatdesk_draft_failures_total", error_code="timed_out") == 4
        assert not any(name.startswith("chatdesk_queue") for name, _ in scraped)  # Daphne hosts report those
    finally:
        exporter.terminate()
        exporter.wait()
