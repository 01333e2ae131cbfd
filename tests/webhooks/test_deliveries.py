"""Webhooks against a real HTTP receiver on loopback: signatures, retries, disabling, replay, the pages."""

from __future__ import annotations

import json
import uuid
from collections.abc import Iterator
from typing import Any

import pytest
from django.contrib.auth.models import User
from django.test import Client
from django.utils import timezone
from kombu.exceptions import OperationalError

from chatdesk.conversations import jobs, services
from chatdesk.conversations.models import Conversation
from chatdesk.conversations.privacy import customer_data_erase
from chatdesk.drafting.base import DraftContext, DraftEngine, DraftResult
from chatdesk.knowledge.models import Topic
from chatdesk.webhooks import events, tasks
from chatdesk.webhooks import services as webhooks
from chatdesk.webhooks.models import Attempt, Delivery, Endpoint
from tests.conftest import UseEngine, draft_now, say
from tests.webhooks.receiver import Receiver, documented_verify, receiving

pytestmark = pytest.mark.django_db

SIGNATURE = "X-ChatDesk-Signature"
DRAFTED = "Your parcel left our warehouse this morning and arrives tomorrow."


class Fixed(DraftEngine):
    def draft(self, context: DraftContext) -> DraftResult:
        return DraftResult(text=DRAFTED, confidence=0.95, topic="orders")


@pytest.fixture
def loopback(settings: Any) -> None:
    settings.WEBHOOK_ALLOW_HTTP_LOOPBACK = True


@pytest.fixture
def receiver() -> Iterator[Receiver]:
    with receiving() as running:
        yield running


def signed_in(user: User) -> Client:
    client = Client()
    client.force_login(user)
    return client


def tasks_sent(monkeypatch: pytest.MonkeyPatch) -> list[int]:
    """Delivery ids queued for webhook_deliver from now on, recorded instead of sent to the broker."""
    sent: list[int] = []

    def send_task(name: str, args: list[int], **_options: Any) -> None:
        if name == events.DELIVER:
            sent.append(args[0])

    monkeypatch.setattr(jobs.app, "send_task", send_task)
    return sent


def deliver_pending() -> None:
    """What workers would do with every delivery due now."""
    for pk in Delivery.objects.filter(status=Delivery.Status.PENDING).order_by("pk").values_list("pk", flat=True):
        webhooks.delivery_attempt(delivery_id=pk)


def test_a_manager_adds_an_endpoint_and_deliveries_verify_the_documented_way(
    manager: User,
    receiver: Receiver,
    loopback: None,
    monkeypatch: pytest.MonkeyPatch,
    django_capture_on_commit_callbacks: Any,
    settings: Any,
) -> None:
    client = signed_in(manager)
    page = client.post(
        "/webhooks/new/",
        {"url": receiver.url, "description": "CRM", "events": ["conversation.created", "conversation.escalated"]},
        follow=True,
    ).content.decode()
    endpoint = Endpoint.objects.get()
    assert "Endpoint added" in page and endpoint.secret in page and endpoint.secret.startswith("whsec_")

    sent = tasks_sent(monkeypatch)
    with django_capture_on_commit_callbacks(execute=True):
        conversation = services.conversation_request_human(public_id=uuid.uuid4())
    # Queued after commit, one task per delivery, on a queue of their own (never the drafting one).
    assert sent == list(Delivery.objects.order_by("pk").values_list("pk", flat=True)) and len(sent) == 2
    assert settings.CELERY_TASK_ROUTES[events.DELIVER] == {"queue": "webhooks"}
    for pk in sent:
        tasks.webhook_deliver(pk)

    verify = documented_verify()
    created, escalated = receiver.received
    for request in (created, escalated):
        header = request.headers[SIGNATURE]
        assert verify(endpoint.secret, header, request.body)
        assert not verify(endpoint.secret, header, request.body.replace(b"conversation.", b"conversation_"))
        assert not verify("whsec_someone-else", header, request.body)
        signed_at = int(header.split(",")[0].removeprefix("t="))
        assert not verify(endpoint.secret, header, request.body, now=signed_at + 301)  # a replay, later
        assert verify(endpoint.secret, header, request.body, now=signed_at + 299)
        assert request.headers["Content-Type"] == "application/json"
        assert request.headers["X-ChatDesk-Event"] == request.event["type"]
        assert request.headers["X-ChatDesk-Event-Id"] == request.event["id"]
    assert (created.event["type"], escalated.event["type"]) == ("conversation.created", "conversation.escalated")
    assert created.event["data"]["conversation"]["id"] == str(conversation.public_id)
    assert escalated.event["data"]["reason"] == "customer_request"
    assert escalated.event["data"]["reasons"] == ["customer_request"]
    assert escalated.event["data"]["conversation"]["status"] == "escalated"

    log = client.get(f"/webhooks/{endpoint.pk}/").content.decode()
    assert log.count("Delivered") == 2 and "conversation.escalated" in log and "<td>200</td>" in log


def test_a_500_is_retried_after_the_documented_backoff_and_each_attempt_is_logged(
    manager: User, receiver: Receiver, loopback: None, monkeypatch: pytest.MonkeyPatch, settings: Any
) -> None:
    settings.WEBHOOK_RETRY_BASE_S = 30
    assert [webhooks.retry_delay_s(n) for n in (1, 2, 3, 7)] == [30, 60, 120, 1920]
    endpoint = webhooks.endpoint_create(url=receiver.url, events=["conversation.created"], by=manager)
    receiver.statuses = [500]
    services.conversation_start()
    delivery = Delivery.objects.get()

    first = webhooks.delivery_attempt(delivery_id=delivery.pk)
    assert first is not None and first.next_attempt_at is not None and first.finished_at is None
    assert (first.status, first.attempts, first.status_code, first.error) == ("pending", 1, 500, "HTTP 500")
    retry_at = first.next_attempt_at
    assert 29 <= (retry_at - timezone.now()).total_seconds() <= 30

    assert webhooks.delivery_attempt(delivery_id=delivery.pk) is None  # not due yet: nothing sent
    sent = tasks_sent(monkeypatch)
    assert webhooks.deliveries_requeue_due(timezone.now()) == 0
    assert webhooks.deliveries_requeue_due(retry_at) == 1 and sent == [delivery.pk]
    second = webhooks.delivery_attempt(delivery_id=delivery.pk, now=retry_at)
    assert second is not None
    assert (second.status, second.attempts, second.status_code, second.error) == ("succeeded", 2, 200, "")
    assert second.response_excerpt.startswith("status 200: xxx") and len(second.response_excerpt) == 1024

    assert [(a.number, a.status_code, a.succeeded) for a in Attempt.objects.order_by("number")] == [
        (1, 500, False),
        (2, 200, True),
    ]
    assert all(a.response_ms >= 0 for a in Attempt.objects.all())
    assert len(receiver.received) == 2 and receiver.received[0].body == receiver.received[1].body
    endpoint.refresh_from_db()
    assert endpoint.consecutive_failures == 0 and endpoint.active
    log = signed_in(manager).get(f"/webhooks/{endpoint.pk}/").content.decode()
    assert "Delivered" in log and ": 500," in log and ": 200," in log


def test_an_unreachable_endpoint_is_a_failed_attempt_with_the_reason(manager: User, loopback: None) -> None:
    with receiving() as gone:
        url = gone.url  # the server stops: nothing listens on this port any more
    webhooks.endpoint_create(url=url, events=["conversation.created"], by=manager)
    services.conversation_start()
    deliver_pending()
    delivery = Delivery.objects.get()
    assert (delivery.status, delivery.attempts, delivery.status_code) == ("pending", 1, None)
    assert delivery.error.startswith("ConnectError")


def test_an_endpoint_failing_again_and_again_is_disabled_and_managers_are_told(
    manager: User, agent: User, receiver: Receiver, loopback: None, settings: Any
) -> None:
    settings.WEBHOOK_DISABLE_AFTER_FAILURES = 3
    receiver.statuses = [503] * 10
    endpoint = webhooks.endpoint_create(url=receiver.url, events=["conversation.created"], by=manager)
    services.conversation_start()
    services.conversation_start()
    first, second = Delivery.objects.order_by("pk")
    webhooks.delivery_attempt(delivery_id=first.pk)
    webhooks.delivery_attempt(delivery_id=second.pk)
    first.refresh_from_db()
    assert first.next_attempt_at is not None
    webhooks.delivery_attempt(delivery_id=first.pk, now=first.next_attempt_at)

    endpoint.refresh_from_db()
    assert not endpoint.active and endpoint.disabled_reason == "Disabled after 3 failed delivery attempts in a row."
    second.refresh_from_db()
    assert (second.status, second.error) == ("failed", "The endpoint was disabled.")
    assert webhooks.deliveries_requeue_due(timezone.now() + timezone.timedelta(days=1)) == 0
    services.conversation_start()  # a disabled endpoint gets nothing new
    assert Delivery.objects.count() == 2 and len(receiver.received) == 3

    manager_client = signed_in(manager)
    page = manager_client.get("/agents/").content.decode()
    assert 'data-testid="webhook-disabled-notice"' in page and receiver.url in page
    assert "Disabled after 3 failed delivery attempts in a row." in page
    assert "webhook-disabled-notice" not in signed_in(agent).get("/agents/").content.decode()

    page = manager_client.post(f"/webhooks/{endpoint.pk}/state/", {"active": "1"}, follow=True).content.decode()
    assert "Enabled: events are sent again." in page and "webhook-disabled-notice" not in page
    endpoint.refresh_from_db()
    assert endpoint.active and endpoint.consecutive_failures == 0


def test_a_manager_keeps_a_failing_endpoint_off_and_the_notice_goes(manager: User, settings: Any) -> None:
    endpoint = webhooks.endpoint_create(url="https://crm.example.com/in", events=["csat.received"], by=manager)
    Endpoint.objects.filter(pk=endpoint.pk).update(active=False, disabled_reason="Disabled after 20 failed ...")
    client = signed_in(manager)
    assert "webhook-disabled-notice" in client.get("/webhooks/").content.decode()
    page = client.post(f"/webhooks/{endpoint.pk}/state/", {"active": "0"}, follow=True).content.decode()
    assert "Disabled: nothing is sent." in page and "webhook-disabled-notice" not in page
    assert not Endpoint.objects.get().active


def test_a_manager_replays_a_delivery_from_the_log(
    manager: User,
    agent: User,
    receiver: Receiver,
    loopback: None,
    monkeypatch: pytest.MonkeyPatch,
    django_capture_on_commit_callbacks: Any,
) -> None:
    endpoint = webhooks.endpoint_create(url=receiver.url, events=["conversation.created"], by=manager)
    services.conversation_start()
    deliver_pending()
    original = Delivery.objects.get()
    assert original.status == "succeeded"

    assert signed_in(agent).post(f"/webhooks/deliveries/{original.pk}/replay/").status_code == 403
    client = signed_in(manager)
    sent = tasks_sent(monkeypatch)
    with django_capture_on_commit_callbacks(execute=True):
        page = client.post(f"/webhooks/deliveries/{original.pk}/replay/", follow=True).content.decode()
    assert "Replaying conversation.created" in page
    replay = Delivery.objects.exclude(pk=original.pk).get()
    assert sent == [replay.pk] and replay.replay_of == original
    tasks.webhook_deliver(replay.pk)

    first, again = receiver.received
    assert again.body == first.body and again.headers["X-ChatDesk-Event-Id"] == first.headers["X-ChatDesk-Event-Id"]
    assert again.headers["X-ChatDesk-Delivery"] != first.headers["X-ChatDesk-Delivery"]
    assert documented_verify()(endpoint.secret, again.headers[SIGNATURE], again.body)
    log = client.get(f"/webhooks/{endpoint.pk}/").content.decode()
    assert "replay by Mona Manager" in log and log.count("Delivered") == 2

    webhooks.endpoint_set_active(endpoint_id=endpoint.pk, active=False)
    page = client.post(f"/webhooks/deliveries/{original.pk}/replay/", follow=True).content.decode()
    assert "This endpoint is disabled: enable it first, then replay." in page
    assert Delivery.objects.count() == 2


def test_only_https_or_allowed_loopback_http_is_accepted(manager: User, agent: User, settings: Any) -> None:
    client = signed_in(manager)

    def add(url: str, chosen: list[str] | None = None) -> str:
        data = {"url": url, "events": ["draft.ready"] if chosen is None else chosen}
        return client.post("/webhooks/new/", data, follow=True).content.decode()

    settings.WEBHOOK_ALLOW_HTTP_LOOPBACK = False
    assert "Plain http:// is allowed only for this machine in development" in add("http://127.0.0.1:9/in")
    assert "must start with https://" in add("http://example.com/in")
    assert "Put no user name or password in the URL" in add("https://me:pw@example.com/in")
    assert "Pick at least one event." in add("https://example.com/in", chosen=[])
    assert "Select a valid choice" in add("https://example.com/in", chosen=["draft.sneezed"])
    assert not Endpoint.objects.exists()

    settings.WEBHOOK_ALLOW_HTTP_LOOPBACK = True
    assert "Endpoint added" in add("http://localhost:9/in")
    assert "must start with https://" in add("http://example.com/in")
    assert "Endpoint added" in add("https://example.com/in")
    assert sorted(Endpoint.objects.values_list("url", flat=True)) == ["http://localhost:9/in", "https://example.com/in"]

    endpoint = Endpoint.objects.get(url="https://example.com/in")
    page = client.post(
        f"/webhooks/{endpoint.pk}/", {"url": "https://example.com/v2", "events": ["csat.received"]}, follow=True
    ).content.decode()
    assert "Saved." in page
    endpoint.refresh_from_db()
    assert (endpoint.url, endpoint.events) == ("https://example.com/v2", ["csat.received"])
    assert "https://example.com/v2" in client.get("/webhooks/").content.decode()

    agents_client = signed_in(agent)
    assert agents_client.get("/webhooks/").status_code == 403
    assert (
        agents_client.post("/webhooks/new/", {"url": "https://x.example/in", "events": ["draft.ready"]}).status_code
        == 403
    )
    assert agents_client.get(f"/webhooks/{endpoint.pk}/").status_code == 403


def test_a_conversations_events_carry_ids_states_and_reasons_not_the_customers_words(
    db: Any, use_engine: UseEngine, manager: User, agent: User, receiver: Receiver, loopback: None
) -> None:
    Topic.objects.get_or_create(name="orders")
    use_engine(Fixed())
    webhooks.endpoint_create(url=receiver.url, events=list(events.EVENTS), by=manager)
    conversation: Conversation = services.conversation_start()
    public_id = conversation.public_id
    say(conversation, "Where is my order? Write to jane@example.com")
    draft = draft_now(conversation)
    services.draft_approve(public_id=public_id, draft_id=draft.pk, agent=agent)
    say(conversation, "And the second parcel?")
    services.draft_edit(public_id=public_id, draft_id=draft_now(conversation).pk, agent=agent, text="Tomorrow too.")
    say(conversation, "Thanks")
    services.draft_reject(public_id=public_id, draft_id=draft_now(conversation).pk, agent=agent)
    services.conversation_take_over(public_id=public_id, agent=agent)
    services.conversation_close(public_id=public_id, agent=agent)
    services.conversation_rate(public_id=public_id, score=4, comment="Quick, thank you jane")
    deliver_pending()

    received = receiver.events()
    assert [e["type"] for e in received] == [
        "conversation.created",
        "draft.ready",
        "draft.approved",
        "message.sent",
        "draft.ready",
        "draft.edited",
        "message.sent",
        "draft.ready",
        "draft.rejected",
        "conversation.assigned",
        "conversation.closed",
        "csat.received",
    ]
    assert {e["data"]["conversation"]["id"] for e in received} == {str(public_id)}
    assert len({e["id"] for e in received}) == len(received)
    every_body = " ".join(r.body.decode() for r in receiver.received)
    for customer_words in ("jane", "Where is my order", "second parcel", "Quick, thank you"):
        assert customer_words not in every_body

    ready = received[1]["data"]["draft"]
    assert (ready["id"], ready["status"], ready["confidence"], ready["topic"]) == (draft.pk, "ready", 0.95, "orders")
    assert ready["reply_to_seq"] == 1 and ready["decided_by"] is None
    approved = received[2]["data"]["draft"]
    assert approved["decided_by"] == {"username": "alice", "name": "Alice Agent"}
    sent = received[3]["data"]["message"]
    assert (sent["seq"], sent["sender"], sent["text"], sent["draft_id"]) == (2, "agent", DRAFTED, draft.pk)
    assert received[6]["data"]["message"]["text"] == "Tomorrow too."
    assigned = received[9]["data"]
    assert (assigned["how"], assigned["agent"]["username"]) == ("taken_over", "alice")
    assert assigned["conversation"]["status"] == "taken_over"
    closed = received[10]["data"]
    assert (closed["closed_by"], closed["agent"]["username"], closed["conversation"]["status"]) == (
        "agent",
        "alice",
        "closed",
    )
    assert received[11]["data"]["rating"]["score"] == 4 and received[11]["data"]["rating"]["has_comment"] is True
    assert json.loads(receiver.received[0].body)["created_at"]


def test_no_endpoint_means_nothing_stored(db: Any, manager: User) -> None:
    webhooks.endpoint_create(url="https://crm.example.com/in", events=["csat.received"], by=manager)
    services.conversation_start()
    assert not Delivery.objects.exists()


def test_escalation_claim_and_transfer_say_who_and_why(
    db: Any, manager: User, agent: User, other_agent: User, receiver: Receiver, loopback: None
) -> None:
    webhooks.endpoint_create(url=receiver.url, events=["conversation.escalated", "conversation.assigned"], by=manager)
    conversation = services.conversation_request_human(public_id=uuid.uuid4())  # nobody online: unassigned
    services.conversation_claim(public_id=conversation.public_id, agent=agent)
    services.conversation_transfer(public_id=conversation.public_id, agent=agent, to_agent="bob", note="VIP")
    deliver_pending()

    escalated, claimed, transferred = receiver.events()
    assert escalated["type"] == "conversation.escalated" and escalated["data"]["reason"] == "customer_request"
    assert escalated["data"]["conversation"]["assigned_agent"] is None
    assert (claimed["type"], claimed["data"]["how"], claimed["data"]["agent"]["username"]) == (
        "conversation.assigned",
        "claimed",
        "alice",
    )
    assert (transferred["data"]["how"], transferred["data"]["agent"]["username"]) == ("transferred", "bob")
    assert "VIP" not in receiver.received[2].body.decode()


def test_a_delivery_the_broker_could_not_take_is_queued_by_the_sweep(
    manager: User,
    receiver: Receiver,
    loopback: None,
    monkeypatch: pytest.MonkeyPatch,
    django_capture_on_commit_callbacks: Any,
) -> None:
    webhooks.endpoint_create(url=receiver.url, events=["conversation.created"], by=manager)

    def broker_down(*_args: Any, **_kwargs: Any) -> None:
        raise OperationalError("Error 111 connecting to 127.0.0.1:6379. Connection refused.")

    monkeypatch.setattr(jobs.app, "send_task", broker_down)
    with django_capture_on_commit_callbacks(execute=True):
        services.conversation_start()  # the change is kept; its delivery waits
    delivery = Delivery.objects.get()
    assert (delivery.status, delivery.attempts) == ("pending", 0)

    sent = tasks_sent(monkeypatch)  # the broker is back
    assert webhooks.deliveries_requeue_due(timezone.now()) == 1 and sent == [delivery.pk]
    tasks.webhook_deliver(delivery.pk)
    tasks.webhook_deliver(delivery.pk)  # a duplicate finds nothing to send
    assert len(receiver.received) == 1 and Delivery.objects.get().status == "succeeded"


def test_erasing_a_customers_data_deletes_the_deliveries_about_their_conversations(
    db: Any, use_engine: UseEngine, manager: User, agent: User
) -> None:
    Topic.objects.get_or_create(name="orders")
    use_engine(Fixed())
    webhooks.endpoint_create(url="https://crm.example.com/in", events=list(events.EVENTS), by=manager)
    erased, kept = services.conversation_start(), services.conversation_start()
    for conversation in (erased, kept):
        say(conversation, "Where is my order?")
        services.draft_approve(public_id=conversation.public_id, draft_id=draft_now(conversation).pk, agent=agent)
    per_conversation = Delivery.objects.count() // 2
    assert per_conversation == 4  # created, draft.ready, draft.approved, message.sent

    result = customer_data_erase([erased])
    assert result.webhook_deliveries == per_conversation
    assert Delivery.objects.count() == per_conversation
    assert all(str(kept.public_id) in body for body in Delivery.objects.values_list("body", flat=True))
