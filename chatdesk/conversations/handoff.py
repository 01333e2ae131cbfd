"""The summary an agent reads when a conversation reaches a person: what the customer wants and what
was already answered. handoff_summary takes it from the conversation's own words (extractive: no model
runs while the customer's message is being stored); with a generative engine a worker then asks the
model for one (services.handoff_summary_generate), which replaces it."""

from __future__ import annotations

import re

from chatdesk.conversations.models import Conversation, Message

EXTRACTIVE = "extractive"  # Conversation.handoff_summary_by for the summary below
QUOTE_CHARS = 160
GENERATED_CHARS = 600  # a generated summary is cut here (a model that rambles)
# A customer message that says little ("hi", "hello?", "ok") does not say what they want.
MIN_WORDS = 3
_WORD = re.compile(r"\w+")


def _quote(text: str) -> str:
    text = " ".join(text.split())
    return f"“{text if len(text) <= QUOTE_CHARS else text[: QUOTE_CHARS - 1].rstrip() + '…'}”"


def _says_something(text: str) -> bool:
    words = _WORD.findall(text)
    # Chinese has no spaces: count characters there.
    return len(words) >= MIN_WORDS or (sum(len(w) for w in words) >= 6 and not text.isascii())


def handoff_summary(conversation: Conversation, *, limit: int = 50) -> str:
    """Two or three sentences, e.g.

    Wants: “My parcel never arrived”. Latest: “Still nothing, I want a person”. Already answered
    (2 replies), last: “We resent it on Monday…”.

    From the conversation's last `limit` messages; empty when the customer has written nothing.
    """
    messages = list(conversation.messages.order_by("-seq").values_list("sender", "text")[:limit])[::-1]
    asked = [text for sender, text in messages if sender == Message.Sender.CUSTOMER]
    if not asked:
        return ""
    replies = [text for sender, text in messages if sender != Message.Sender.CUSTOMER]
    first = next((text for text in asked if _says_something(text)), asked[0])
    parts = [f"Wants: {_quote(first)}."]
    if asked[-1] != first:
        parts.append(f"Latest: {_quote(asked[-1])}.")
    if replies:
        count = "1 reply" if len(replies) == 1 else f"{len(replies)} replies"
        parts.append(f"Already answered ({count}), last: {_quote(replies[-1])}.")
    else:
        parts.append("Nothing answered yet.")
    return " ".join(parts)
