"""A customer's data on request: `customer_export` writes it all as JSON, `customer_erase` redacts it all,
and the managers' report counts the same before and after."""

from __future__ import annotations

import io
import json
from pathlib import Path
from typing import Any

import pytest
from django.contrib.auth.models import User
from django.core.management import CommandError, call_command
from django.utils import timezone

from chatdesk.conversations import services
from chatdesk.conversations.models import AgentAction, Conversation, Draft, Message
from chatdesk.conversations.tokens import conversation_token
from chatdesk.conversations.training_data import training_examples
from chatdesk.knowledge.models import ApprovedReply, ReplyVector
from chatdesk.reports.selectors import conversation_outcomes
from chatdesk.widget_sites.models import WidgetSite
from tests.conftest import say

pytestmark = pytest.mark.django_db

SECRET = "ann.lee@example.com"
REPORT_FIELDS = (
    "public_id", "status", "message_count", "drafts_approved", "drafts_edited", "drafts_rejected",
    "drafts_auto_sent", "drafts_failed", "take_overs",
)  # fmt: skip


def draft_now(conversation: Conversation) -> Draft:
    pending = Draft.objects.get(conversation=conversation, status=Draft.Status.PENDING)
    services.draft_generate(draft_id=pending.pk)
    return Draft.objects.get(pk=pending.pk)


@pytest.fixture
def history(knowledge: None, agent: User) -> tuple[Conversation, Conversation]:
    """Customer A: a draft edited, one rejected with the agent's own reply, then a take-over and a reply;
    customer B: one question, answered as drafted."""
    a, b = services.conversation_start(), services.conversation_start()
    say(a, f"How long does a refund take? I am {SECRET}")
    services.draft_edit(public_id=a.public_id, draft_id=draft_now(a).pk, agent=agent, text=f"Hi {SECRET}, 5 days.")
    say(a, "Can I pay with PayPal? Card 4111 1111 1111 1111")
    services.draft_reject(
        public_id=a.public_id, draft_id=draft_now(a).pk, agent=agent, reply_text="Yes, card 4111 ends fine."
    )
    services.agent_reply(public_id=a.public_id, agent=agent, text=f"Anything else, {SECRET}?")
    say(b, "Do you ship to Norway?")
    services.draft_approve(public_id=b.public_id, draft_id=draft_now(b).pk, agent=agent)
    return a, b


def texts_of(conversation: Conversation) -> list[str]:
    return [
        *Message.objects.filter(conversation=conversation).values_list("text", flat=True),
        *Draft.objects.filter(conversation=conversation).values_list("text", flat=True),
        *(t for d in Draft.objects.filter(conversation=conversation) for t in d.alternatives),
        *AgentAction.objects.filter(conversation=conversation).values_list("draft_text", flat=True),
        *AgentAction.objects.filter(conversation=conversation).values_list("sent_text", flat=True),
    ]


def report() -> list[dict[str, Any]]:
    return list(conversation_outcomes().order_by("public_id").values(*REPORT_FIELDS))


def export(*refs: str) -> dict[str, Any]:
    out = io.StringIO()
    call_command("customer_export", *refs, stdout=out)
    return json.loads(out.getvalue())


def test_export_by_token_or_id_holds_messages_drafts_and_actions(history: tuple[Conversation, Conversation]) -> None:
    a, b = history
    data = export(conversation_token(a.public_id), str(b.public_id), str(a.public_id))
    first, second = data["conversations"]  # A once, though named twice
    assert (first["id"], second["id"]) == (str(a.public_id), str(b.public_id))
    assert [m["text"] for m in first["messages"]] == list(a.messages.order_by("seq").values_list("text", flat=True))
    assert first["messages"][0]["text"].endswith(SECRET)
    assert {d["status"] for d in first["drafts"]} == {"edited", "rejected"}
    assert {x["kind"] for x in first["agent_actions"]} == {"edit", "reject", "take_over", "reply"}
    assert any(x["sent_text"] == f"Hi {SECRET}, 5 days." for x in first["agent_actions"])
    assert [m["sender"] for m in second["messages"]] == ["customer", "agent"]


def test_export_to_a_file(history: tuple[Conversation, Conversation], tmp_path: Path) -> None:
    a, _ = history
    target = tmp_path / "a.json"
    call_command("customer_export", str(a.public_id), "--output", str(target), stderr=io.StringIO())
    assert json.loads(target.read_text())["conversations"][0]["id"] == str(a.public_id)


def test_unknown_or_forged_references_are_refused() -> None:
    with pytest.raises(CommandError, match="00000000-0000-0000-0000-000000000000"):
        call_command("customer_export", "00000000-0000-0000-0000-000000000000")
    with pytest.raises(CommandError, match="not-a-token"):
        call_command("customer_erase", "not-a-token", "--no-input")


def test_erase_redacts_every_text_and_forgets_what_was_learned_with_report_totals_unchanged(
    history: tuple[Conversation, Conversation],
) -> None:
    a, b = history
    b_texts = texts_of(b)
    before = report()
    assert ApprovedReply.objects.count() == 3  # edit and reject-with-reply on A, approval on B
    cached = ReplyVector.objects.filter(reply__customer_text=f"How long does a refund take? I am {SECRET}")
    assert cached.exists()  # the reply memory's key, encoded when the next draft caught up with the memory
    vector_ids = set(cached.values_list("pk", flat=True))
    out = io.StringIO()
    call_command("customer_erase", conversation_token(a.public_id), "--no-input", stdout=out)
    assert "Erased 1 conversation(s)" in out.getvalue()

    assert report() == before
    assert Message.objects.filter(conversation=a).count() == 5
    assert set(Message.objects.filter(conversation=a).values_list("text", flat=True)) == {"[erased]"}
    assert all(text in ("[erased]", "") for text in texts_of(a))
    assert SECRET not in json.dumps(export(str(a.public_id))) and "4111" not in json.dumps(export(str(a.public_id)))
    remembered = list(ApprovedReply.objects.values_list("customer_text", flat=True))
    assert remembered == ["Do you ship to Norway?"]  # only B's is left
    assert not ReplyVector.objects.filter(pk__in=vector_ids).exists()
    assert texts_of(b) == b_texts
    assert all("[erased]" not in json.dumps(chat) for chat, _ in training_examples())

    call_command("customer_erase", str(a.public_id), "--no-input", stdout=io.StringIO())  # again: harmless
    assert report() == before


def test_erase_asks_first(history: tuple[Conversation, Conversation], monkeypatch: pytest.MonkeyPatch) -> None:
    a, _ = history
    monkeypatch.setattr("builtins.input", lambda prompt: "no")
    with pytest.raises(CommandError, match="Nothing erased"):
        call_command("customer_erase", str(a.public_id))
    assert a.messages.filter(text__contains=SECRET).exists()


def test_export_and_erase_cover_who_the_site_said_the_customer_is() -> None:
    site = WidgetSite.objects.create(name="Shop")
    conversation = services.conversation_start()
    Conversation.objects.filter(pk=conversation.pk).update(
        site=site,
        customer_account_id="cust-1",
        customer_name="Ann Lee",
        customer_email=SECRET,
        customer_verified=True,
        page_url="https://shop.example.com/account/ann-lee",
        page_seen_at=timezone.now(),
    )
    out = io.StringIO()
    call_command("customer_export", str(conversation.public_id), stdout=out)
    customer = json.loads(out.getvalue())["conversations"][0]["customer"]
    assert customer["site"] == "Shop" and customer["account_id"] == "cust-1" and customer["verified"] is True
    assert (customer["name"], customer["email"]) == ("Ann Lee", SECRET)
    assert customer["page_url"] == "https://shop.example.com/account/ann-lee" and customer["page_seen_at"]

    call_command("customer_erase", str(conversation.public_id), "--no-input", stdout=io.StringIO())
    conversation.refresh_from_db()
    assert (conversation.customer_account_id, conversation.customer_name, conversation.customer_email) == ("", "", "")
    assert (conversation.page_url, conversation.page_seen_at, conversation.customer_verified) == ("", None, False)
    assert conversation.customer_label.startswith("Visitor ")


def test_a_verified_customers_conversations_are_found_by_site_and_account() -> None:
    site = WidgetSite.objects.create(name="Shop")
    hers = [services.conversation_start() for _ in range(2)]
    claimed, elsewhere = services.conversation_start(), services.conversation_start()
    Conversation.objects.filter(pk__in=[c.pk for c in hers]).update(
        site=site, customer_account_id="cust:1", customer_verified=True
    )
    Conversation.objects.filter(pk=claimed.pk).update(site=site, customer_account_id="cust:1", customer_verified=False)
    Conversation.objects.filter(pk=elsewhere.pk).update(
        site=WidgetSite.objects.create(name="Blog"), customer_account_id="cust:1", customer_verified=True
    )
    out = io.StringIO()
    call_command("customer_export", f"account:{site.public_key}:cust:1", stdout=out)
    exported = [c["id"] for c in json.loads(out.getvalue())["conversations"]]
    assert exported == [str(c.public_id) for c in hers]
    with pytest.raises(CommandError, match="account:"):
        call_command("customer_erase", f"account:{site.public_key}:cust-2", "--no-input")
