"""The approved history as training data for the generative model (read-only)."""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

from django.conf import settings

from chatdesk.conversations import selectors
from chatdesk.conversations.models import AgentAction

# What agents' decisions teach: the text the customer got, and (for edits and rejections) what it replaced.
SENT_KINDS = (AgentAction.Kind.APPROVE, AgentAction.Kind.EDIT, AgentAction.Kind.REJECT)

Example = dict[str, Any]


def _chat_messages(action: AgentAction) -> list[dict[str, str]]:
    """The conversation up to the customer message the draft answered, as chat messages."""
    assert action.draft is not None
    turns = selectors.conversation_turns_until(
        action.conversation, seq=action.draft.reply_to.seq, limit=settings.DRAFT_HISTORY_TURNS
    )
    return [{"role": "user" if t.role == "customer" else "assistant", "content": t.text} for t in turns]


def _decisions() -> Iterator[AgentAction]:
    return (
        AgentAction.objects.filter(kind__in=SENT_KINDS, draft__isnull=False)
        .exclude(sent_text="")
        .select_related("draft__reply_to", "draft__topic", "conversation")
        .order_by("created_at")
        .iterator()
    )


def training_examples() -> Iterator[tuple[Example, Example | None]]:
    """Per agent decision that reached a customer: (chat example, preference pair or None).

    The chat example ends with the text the customer got. A preference pair exists when the agent
    replaced the draft (edited, or rejected and wrote their own): chosen = agent's text, rejected = draft.
    """
    for action in _decisions():
        messages = _chat_messages(action)
        meta = {"topic": action.draft.topic.name if action.draft and action.draft.topic else None}
        chat = {"messages": [*messages, {"role": "assistant", "content": action.sent_text}], **meta}
        pair = None
        if action.draft_text and action.draft_text != action.sent_text:
            pair = {"prompt": messages, "chosen": action.sent_text, "rejected": action.draft_text, **meta}
        yield chat, pair
