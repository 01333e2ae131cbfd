"""Each resource of /api/v1/ as an integration uses it: the same paging, filters, ordering and errors."""

from __future__ import annotations

import csv
import io
from typing import Any

import pytest
from django.contrib.auth.models import User

from chatdesk.conversations import services
from chatdesk.conversations.models import Conversation, Draft, Team, TeamTopic
from chatdesk.drafting import encoder
from chatdesk.knowledge.models import Article, Topic
from chatdesk.knowledge.services import knowledge_index_current
from chatdesk.widget_sites.models import WidgetSite
from tests.api.conftest import MakeClient
from tests.conftest import draft_now, drafts_queued, refreshed, say

pytestmark = pytest.mark.django_db


def conversation_with(text: str) -> Conversation:
    conversation = services.conversation_start()
    say(conversation, text)
    return refreshed(conversation)


def test_conversations_are_listed_filtered_ordered_and_paged(
    api_client: MakeClient, knowledge: None, agent: User, monkeypatch: pytest.MonkeyPatch
) -> None:
    drafts_queued(monkeypatch)
    first, second, third = (conversation_with(t) for t in ("Where is my order?", "I want a person", "Hello"))
    services.conversation_take_over(public_id=first.public_id, agent=agent)
    services.conversation_close(public_id=first.public_id, agent=agent)
    client = api_client("read")

    everything = client.get("/conversations", ordering="created_at").json()
    assert everything["count"] == 3
    assert [c["id"] for c in everything["items"]] == [str(c.public_id) for c in (first, second, third)]
    assert client.get("/conversations", ordering="-created_at", limit=1, offset=1).json() == {
        "count": 3,
        "items": [everything["items"][1]],
    }
    closed = client.get("/conversations", status="closed").json()
    assert [c["id"] for c in closed["items"]] == [str(first.public_id)]
    assert closed["items"][0]["assigned_agent"] == "alice"
    asked = client.get("/conversations", reason="customer_request").json()
    assert [c["id"] for c in asked["items"]] == [str(second.public_id)]
    assert client.get("/conversations", agent="alice").json()["count"] == 1
    assert client.get("/conversations", since="2000-01-01", until="2000-12-31").json()["count"] == 0

    wrong = client.get("/conversations", status="lost")
    assert wrong.status_code == 422
    assert wrong.json()["code"] == "invalid_request" and wrong.json()["field"] == "status"
    assert client.get("/conversations", limit=500).json()["field"] == "limit"
    assert client.get("/conversations", ordering="text").status_code == 422


def test_conversations_filter_by_topic_and_team(
    api_client: MakeClient, knowledge: None, monkeypatch: pytest.MonkeyPatch
) -> None:
    drafts_queued(monkeypatch)
    shipping = conversation_with("How long does shipping take?")
    draft_now(shipping)
    other = conversation_with("Hello there")
    team = Team.objects.create(name="Logistics")
    TeamTopic.objects.create(team=team, topic=Topic.objects.get(name="shipping"))
    Conversation.objects.filter(pk=shipping.pk).update(team=team)
    client = api_client("read")
    assert refreshed(shipping).topic is not None
    by_topic = client.get("/conversations", topic=refreshed(shipping).topic.name).json()  # type: ignore[union-attr]
    assert [c["id"] for c in by_topic["items"]] == [str(shipping.public_id)]
    assert [c["id"] for c in client.get("/conversations", team="Logistics").json()["items"]] == [
        str(shipping.public_id)
    ]
    assert str(other.public_id) not in {c["id"] for c in by_topic["items"]}


def test_a_conversation_is_read_with_messages_drafts_and_flags(
    api_client: MakeClient, knowledge: None, monkeypatch: pytest.MonkeyPatch
) -> None:
    drafts_queued(monkeypatch)
    conversation = conversation_with("How do I reset my password?")
    draft = draft_now(conversation)
    client = api_client("read")
    body = client.get(f"/conversations/{conversation.public_id}").json()
    assert body["status"] == "open" and body["last_seq"] == 1
    assert body["messages"] == [
        {
            "seq": 1,
            "sender": "customer",
            "text": "How do I reset my password?",
            "author": None,
            "draft_id": None,
            "created_at": body["messages"][0]["created_at"],
        }
    ]
    assert [(d["id"], d["status"], d["engine"], d["reply_to_seq"]) for d in body["drafts"]] == [
        (draft.pk, "ready", "retrieval", 1)
    ]
    assert body["drafts"][0]["sources"][0]["title"] == "Resetting your password"
    assert body["customer"] == {
        "account_id": None, "name": None, "email": None, "verified": False, "site": None, "page_url": None,
    }  # fmt: skip
    Conversation.objects.filter(pk=conversation.pk).update(
        site=WidgetSite.objects.create(name="Shop"),
        customer_account_id="cust-1",
        customer_name="Ann Lee",
        customer_email="ann@example.com",
        customer_verified=True,
        page_url="https://shop.example.com/cart",
    )
    assert client.get(f"/conversations/{conversation.public_id}").json()["customer"] == {
        "account_id": "cust-1", "name": "Ann Lee", "email": "ann@example.com", "verified": True, "site": "Shop",
        "page_url": "https://shop.example.com/cart",
    }  # fmt: skip
    for missing in ("00000000-0000-0000-0000-000000000000", "not-a-uuid"):
        response = client.get(f"/conversations/{missing}")
        assert response.status_code == 404
        assert response.json() == {"code": "not_found", "message": "This conversation does not exist."}


def test_a_reply_is_posted_as_the_tokens_owner(
    api_client: MakeClient, manager: User, monkeypatch: pytest.MonkeyPatch
) -> None:
    drafts_queued(monkeypatch)
    conversation = conversation_with("Anyone there?")
    client = api_client("write")
    path = f"/conversations/{conversation.public_id}/messages"
    sent = client.post(path, {"text": "  Yes, Mona here.  ", "client_id": "crm-1"})
    assert sent.status_code == 201
    assert {k: sent.json()[k] for k in ("seq", "sender", "text", "author")} == {
        "seq": 2,
        "sender": "agent",
        "text": "Yes, Mona here.",
        "author": "mona",
    }
    assert refreshed(conversation).status == "taken_over"  # as an agent replying on the dashboard
    assert client.post(path, {"text": "Yes, Mona here.", "client_id": "crm-1"}).json()["seq"] == 2  # a retry
    empty = client.post(path, {"text": "   "})
    assert (empty.status_code, empty.json()["code"]) == (422, "empty_message")
    long = client.post(path, {"text": "x" * 5000})
    assert (long.status_code, long.json()["code"]) == (422, "message_too_long")
    services.conversation_close(public_id=conversation.public_id, agent=manager)
    closed = client.post(path, {"text": "Still there?"})
    assert (closed.status_code, closed.json()["code"]) == (409, "closed")
    assert client.post(path, {"txt": "typo"}).json() == {
        "code": "invalid_request",
        "message": "body.text: Field required",
        "field": "body.text",
        "errors": [{"field": "body.text", "message": "Field required"}],
    }


def test_an_external_draft_waits_for_review_and_replaces_the_desks(
    api_client: MakeClient, knowledge: None, agent: User, monkeypatch: pytest.MonkeyPatch
) -> None:
    drafts_queued(monkeypatch)
    conversation = conversation_with("Can I change my delivery address?")
    desk_draft = Draft.objects.get(conversation=conversation)
    client = api_client("write")
    path = f"/conversations/{conversation.public_id}/drafts"
    posted = client.post(
        path,
        {
            "text": "Yes: write to us with the new address before it ships.",
            "confidence": 0.9,
            "engine": "acme-llm",
            "sources": [{"id": "kb-17", "title": "Changing an address", "score": 0.8}],
            "topic": "shipping",
            "reply_to_seq": 1,
        },
    )
    assert posted.status_code == 201, posted.content
    draft = posted.json()
    assert (draft["status"], draft["engine"], draft["topic"], draft["reply_to_seq"]) == (
        "ready",
        "external:acme-llm",
        "shipping",
        1,
    )
    assert draft["sources"] == [{"id": "kb-17", "title": "Changing an address", "score": 0.8}]
    desk_draft.refresh_from_db()
    assert desk_draft.status == "superseded"
    message = services.draft_approve(public_id=conversation.public_id, draft_id=draft["id"], agent=agent)
    assert message.text == "Yes: write to us with the new address before it ships."
    assert Draft.objects.get(pk=draft["id"]).status == "approved"

    say(conversation, "Thanks! And the invoice?")
    stale = client.post(path, {"text": "Old answer", "confidence": 0.5, "engine": "acme-llm", "reply_to_seq": 1})
    assert stale.status_code == 409
    assert stale.json()["code"] == "superseded" and stale.json()["seq"] == 3
    bad_engine = client.post(path, {"text": "x", "confidence": 0.5, "engine": "no spaces"})
    assert (bad_engine.status_code, bad_engine.json()["field"]) == (422, "body.engine")
    assert client.post(path, {"text": "x", "confidence": 1.5, "engine": "e"}).json()["field"] == "body.confidence"
    unknown_topic = client.post(path, {"text": "x", "confidence": 0.5, "engine": "e", "topic": "astrology"})
    assert (unknown_topic.status_code, unknown_topic.json()["code"]) == (404, "not_found")


def test_an_external_draft_needs_a_customer_message_to_answer(api_client: MakeClient) -> None:
    conversation = services.conversation_start()
    response = api_client("write").post(
        f"/conversations/{conversation.public_id}/drafts", {"text": "Hi", "confidence": 0.5, "engine": "bot"}
    )
    assert (response.status_code, response.json()["code"]) == (409, "no_customer_message")


def test_external_mode_waits_for_the_integration_and_escalates_when_none_arrives(
    api_client: MakeClient, knowledge: None, settings: Any, monkeypatch: pytest.MonkeyPatch
) -> None:
    from datetime import timedelta

    from django.utils import timezone

    from chatdesk.conversations.external_drafts import external_drafts_time_out

    settings.DRAFTS_SOURCE = "external"
    settings.EXTERNAL_DRAFT_TIMEOUT_S = 60
    queued = drafts_queued(monkeypatch)
    answered, forgotten = conversation_with("Where is my parcel?"), conversation_with("Do you sell gift cards?")
    assert queued == []  # the desk writes nothing itself
    waiting = Draft.objects.get(conversation=answered)
    assert (waiting.status, waiting.engine) == ("pending", "external")
    posted = api_client("write").post(
        f"/conversations/{answered.public_id}/drafts", {"text": "It ships today.", "confidence": 0.7, "engine": "bot"}
    )
    assert posted.json()["id"] == waiting.pk  # the waiting draft is the one filled in
    assert posted.json()["status"] == "ready"

    assert external_drafts_time_out(timezone.now()) == 0  # not late yet
    assert services.drafts_requeue_stale() == 0  # no worker is asked for it
    assert external_drafts_time_out(timezone.now() + timedelta(seconds=61)) == 1
    late = Draft.objects.get(conversation=forgotten)
    assert (late.status, late.error_code) == ("failed", "timed_out")
    forgotten = refreshed(forgotten)
    assert (forgotten.status, forgotten.escalation_reason) == ("escalated", "draft_failed")
    assert forgotten.flags.get().detail == "No external draft arrived within 60 s."
    assert refreshed(answered).status == "open"


def test_knowledge_articles_are_created_changed_listed_and_deleted(api_client: MakeClient, knowledge: None) -> None:
    admin, read = api_client("admin"), api_client("read")
    created = admin.post(
        "/articles",
        {
            "topic": "payments",
            "title": "Paying with vouchers",
            "body": "Enter the voucher code at checkout.",
            "questions": ["can i pay with a voucher", "  where do i enter my voucher code "],
        },
    )
    assert created.status_code == 201
    article = created.json()
    assert article["questions"] == ["can i pay with a voucher", "where do i enter my voucher code"]
    assert article["is_published"] is True

    titles = {p.title for p in knowledge_index_current().passages}
    assert "Paying with vouchers" in titles  # the next draft uses it: no restart
    best = knowledge_index_current().search(encoder.encode(["where do i enter my voucher code"])[0], limit=1)[0]
    assert best.passage.title == "Paying with vouchers"

    duplicate = admin.post("/articles", {"topic": "payments", "title": "Paying with vouchers", "body": "x"})
    assert (duplicate.status_code, duplicate.json()["code"]) == (409, "conflict")
    no_topic = admin.post("/articles", {"topic": "astrology", "title": "Stars", "body": "x"})
    assert (no_topic.status_code, no_topic.json()["field"]) == (422, "topic")

    changed = admin.patch(f"/articles/{article['id']}", {"body": "Type the code in the voucher box at checkout."})
    assert changed.json()["body"] == "Type the code in the voucher box at checkout."
    assert changed.json()["title"] == "Paying with vouchers"
    passage = next(p for p in knowledge_index_current().passages if p.title == "Paying with vouchers")
    assert passage.text == "Type the code in the voucher box at checkout."

    assert read.get(f"/articles/{article['id']}").json()["body"] == changed.json()["body"]
    listed = read.get("/articles", topic="payments", search="voucher").json()
    assert [a["title"] for a in listed["items"]] == ["Paying with vouchers"]
    total = Article.objects.count()
    assert read.get("/articles", limit=2).json()["count"] == total
    newest = read.get("/articles", ordering="-updated_at", limit=1).json()["items"][0]
    assert newest["title"] == "Paying with vouchers"

    unpublished = admin.patch(f"/articles/{article['id']}", {"is_published": False})
    assert unpublished.json()["is_published"] is False
    assert "Paying with vouchers" not in {p.title for p in knowledge_index_current().passages}
    assert read.get("/articles", published=False).json()["count"] == 1

    assert admin.delete(f"/articles/{article['id']}").status_code == 204
    gone = read.get(f"/articles/{article['id']}")
    assert (gone.status_code, gone.json()["code"]) == (404, "not_found")
    assert admin.delete(f"/articles/{article['id']}").status_code == 404
    assert admin.patch(f"/articles/{article['id']}", {"title": "x"}).status_code == 404


def test_topics_teams_and_agents(api_client: MakeClient, knowledge: None, agent: User, other_agent: User) -> None:
    team = Team.objects.create(name="Logistics")
    team.members.add(agent)
    TeamTopic.objects.create(team=team, topic=Topic.objects.get(name="shipping"))
    client = api_client("read")
    topics = client.get("/topics").json()
    assert topics["count"] == Topic.objects.count()
    shipping = next(t for t in topics["items"] if t["name"] == "shipping")
    assert shipping["team"] == "Logistics" and shipping["autopilot"] is False
    assert client.get("/teams").json() == {
        "count": 1,
        "items": [{"id": team.pk, "name": "Logistics", "members": ["alice"], "topics": ["shipping"]}],
    }
    agents = client.get("/agents").json()
    assert [(a["username"], a["is_manager"], a["teams"]) for a in agents["items"]] == [
        ("alice", False, ["Logistics"]),
        ("bob", False, []),
        ("mona", True, []),
    ]
    assert client.get("/agents", limit=1, offset=2).json()["items"][0]["name"] == "Mona Manager"


def test_reports_metrics_and_exports_count_external_drafts(
    api_client: MakeClient, knowledge: None, agent: User, monkeypatch: pytest.MonkeyPatch
) -> None:
    drafts_queued(monkeypatch)
    conversation = conversation_with("Do you ship to Norway?")
    writer, admin = api_client("write"), api_client("admin")
    draft = writer.post(
        f"/conversations/{conversation.public_id}/drafts", {"text": "Yes, we do.", "confidence": 0.8, "engine": "acme"}
    ).json()
    services.draft_approve(public_id=conversation.public_id, draft_id=draft["id"], agent=agent)

    report = admin.get("/reports/metrics").json()
    assert report["outcomes"]["by_engine"]["external:acme"]["approved"] == 1
    assert report["counts"]["total"] == 1
    only_external = admin.get("/reports/metrics", engine="external:acme").json()
    assert only_external["counts"]["total"] == 1

    exported = admin.get("/reports/drafts.csv")
    assert exported["Content-Type"] == "text/csv; charset=utf-8"
    rows = list(csv.DictReader(io.StringIO(b"".join(exported.streaming_content).decode())))
    engines = {(row["engine"], row["status"]) for row in rows}
    assert ("external:acme", "approved") in engines
    conversations = admin.get("/reports/conversations.csv")
    assert str(conversation.public_id) in b"".join(conversations.streaming_content).decode()

    bad = admin.get("/reports/metrics", **{"from": "2020-01-01", "to": "2026-01-01"})
    assert (bad.status_code, bad.json()["code"]) == (422, "invalid_request")
    assert bad.json()["message"].startswith("A report covers at most")


def test_the_schema_and_docs_are_served_by_the_desk(client: Any) -> None:
    schema = client.get("/api/v1/openapi.json").json()
    assert schema["openapi"].startswith("3.")
    assert "/api/v1/conversations/{public_id}/drafts" in schema["paths"]
    docs = client.get("/api/v1/docs").content.decode()
    assert "/static/ninja/swagger-ui-bundle.js" in docs  # the vendored copy, no CDN
    assert "cdn" not in docs.lower()


def test_topics_are_created_read_changed_and_deleted(api_client: MakeClient, knowledge: None) -> None:
    admin, read = api_client("admin"), api_client("read")
    logistics = Team.objects.create(name="Logistics")
    created = admin.post("/topics", {"name": " gift  cards ", "autopilot": True, "team": "Logistics"})
    assert created.status_code == 201
    topic = created.json()
    assert topic == {
        "id": topic["id"],
        "name": "gift cards",
        "team": "Logistics",
        "autopilot": True,
        "autopilot_min_confidence": 0.8,
    }
    assert read.get(f"/topics/{topic['id']}").json() == topic
    assert "gift cards" in {t["name"] for t in read.get("/topics").json()["items"]}

    returns = Team.objects.create(name="Returns")
    moved = admin.patch(f"/topics/{topic['id']}", {"team": returns.pk, "autopilot_min_confidence": 0.95})
    assert moved.status_code == 200
    assert (moved.json()["team"], moved.json()["autopilot_min_confidence"]) == ("Returns", 0.95)
    assert moved.json()["name"] == "gift cards" and moved.json()["autopilot"] is True
    assert list(logistics.topics.all()) == [] and [t.name for t in returns.topics.all()] == ["gift cards"]
    unassigned = admin.patch(f"/topics/{topic['id']}", {"team": None, "name": "vouchers"})
    assert (unassigned.json()["team"], unassigned.json()["name"]) == (None, "vouchers")

    duplicate = admin.post("/topics", {"name": "payments"})
    assert (duplicate.status_code, duplicate.json()["code"], duplicate.json()["field"]) == (409, "conflict", "name")
    renamed_onto = admin.patch(f"/topics/{topic['id']}", {"name": "shipping"})
    assert (renamed_onto.status_code, renamed_onto.json()["code"]) == (409, "conflict")
    no_team = admin.post("/topics", {"name": "stars", "team": "Astrology"})
    assert (no_team.status_code, no_team.json()["code"], no_team.json()["field"]) == (422, "invalid_request", "team")
    too_sure = admin.post("/topics", {"name": "stars", "autopilot_min_confidence": 1.5})
    assert (too_sure.status_code, too_sure.json()["field"]) == (422, "body.autopilot_min_confidence")
    blank = admin.post("/topics", {"name": "   "})
    assert (blank.status_code, blank.json()["field"]) == (422, "name")
    assert not Topic.objects.filter(name="stars").exists()

    refused = read.post("/topics", {"name": "stars"})
    assert (refused.status_code, refused.json()["code"]) == (403, "insufficient_scope")
    assert api_client("write").patch(f"/topics/{topic['id']}", {"autopilot": False}).status_code == 403
    assert read.delete(f"/topics/{topic['id']}").status_code == 403
    assert Topic.objects.get(pk=topic["id"]).autopilot is True

    # Articles are filed under a topic (on_delete PROTECT): deleting it is refused while they are.
    payments = Topic.objects.get(name="payments")
    in_use = admin.delete(f"/topics/{payments.pk}")
    assert (in_use.status_code, in_use.json()["code"]) == (409, "in_use")
    assert in_use.json()["articles"] == Article.objects.filter(topic=payments).count() > 0
    assert Topic.objects.filter(pk=payments.pk).exists()

    # Conversations and drafts on a deleted topic keep working, without a topic.
    conversation = services.conversation_start()
    Conversation.objects.filter(pk=conversation.pk).update(topic_id=topic["id"])
    assert admin.delete(f"/topics/{topic['id']}").status_code == 204
    assert refreshed(conversation).topic is None
    gone = read.get(f"/topics/{topic['id']}")
    assert (gone.status_code, gone.json()["code"]) == (404, "not_found")
    assert admin.patch(f"/topics/{topic['id']}", {"autopilot": False}).status_code == 404
    assert admin.delete(f"/topics/{topic['id']}").status_code == 404


def test_teams_are_created_read_changed_and_deleted(
    api_client: MakeClient, knowledge: None, agent: User, other_agent: User
) -> None:
    admin, read = api_client("admin"), api_client("read")
    created = admin.post("/teams", {"name": "Logistics", "members": ["alice"], "topics": ["shipping"]})
    assert created.status_code == 201
    team = created.json()
    assert team == {"id": team["id"], "name": "Logistics", "members": ["alice"], "topics": ["shipping"]}
    assert read.get(f"/teams/{team['id']}").json() == team
    assert next(t for t in read.get("/topics").json()["items"] if t["name"] == "shipping")["team"] == "Logistics"

    changed = admin.patch(f"/teams/{team['id']}", {"members": ["alice", "bob"], "topics": ["shipping", "payments"]})
    assert changed.status_code == 200
    assert changed.json() | {"id": 0} == {
        "id": 0,
        "name": "Logistics",
        "members": ["alice", "bob"],
        "topics": ["payments", "shipping"],
    }
    renamed = admin.patch(f"/teams/{team['id']}", {"name": "Delivery", "topics": ["payments"]})
    assert renamed.json() | {"id": 0} == {
        "id": 0,
        "name": "Delivery",
        "members": ["alice", "bob"],
        "topics": ["payments"],
    }
    assert read.get("/teams").json()["items"] == [renamed.json()]

    duplicate = admin.post("/teams", {"name": "Delivery"})
    assert (duplicate.status_code, duplicate.json()["code"], duplicate.json()["field"]) == (409, "conflict", "name")
    taken = admin.post("/teams", {"name": "Billing", "topics": ["payments"]})
    assert (taken.status_code, taken.json()["code"], taken.json()["field"]) == (409, "conflict", "topics")
    stranger = admin.post("/teams", {"name": "Billing", "members": ["nobody"]})
    assert (stranger.status_code, stranger.json()["code"], stranger.json()["field"]) == (
        422,
        "invalid_request",
        "members",
    )
    no_topic = admin.post("/teams", {"name": "Billing", "topics": ["astrology"]})
    assert (no_topic.status_code, no_topic.json()["field"]) == (422, "topics")
    not_a_list = admin.post("/teams", {"name": "Billing", "members": "alice"})
    assert (not_a_list.status_code, not_a_list.json()["field"]) == (422, "body.members")
    assert not Team.objects.filter(name="Billing").exists()

    refused = read.post("/teams", {"name": "Billing"})
    assert (refused.status_code, refused.json()["code"]) == (403, "insufficient_scope")
    assert api_client("write").delete(f"/teams/{team['id']}").status_code == 403
    assert read.patch(f"/teams/{team['id']}", {"name": "x"}).status_code == 403

    # A conversation waiting in the team's queue waits in everyone's once the team is gone.
    conversation = services.conversation_start()
    Conversation.objects.filter(pk=conversation.pk).update(team_id=team["id"])
    assert admin.delete(f"/teams/{team['id']}").status_code == 204
    assert refreshed(conversation).team is None
    assert next(t for t in read.get("/topics").json()["items"] if t["name"] == "payments")["team"] is None
    gone = read.get(f"/teams/{team['id']}")
    assert (gone.status_code, gone.json()["code"]) == (404, "not_found")
    assert admin.patch(f"/teams/{team['id']}", {"name": "x"}).status_code == 404
    assert admin.delete(f"/teams/{team['id']}").status_code == 404
