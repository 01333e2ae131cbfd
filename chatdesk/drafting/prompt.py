"""The prompt a generative engine sends, and how its answer is read back. Pure functions, no model.

`build_prompt` turns the conversation and the retrieved passages into chat messages for a model
with a chat template, within a token budget (the model's context minus the tokens it may write).
When they do not fit it drops, in this order: the oldest turns, then the least relevant passages,
then the beginning of the latest customer message (flagged); the latest customer message itself is
never dropped.

The model is asked to cite the passages it used as `[article:3]`. `DraftTextFilter` removes those
markers from the text the customer would receive, piece by piece while it streams, and collects the
ids; `extract_citations` reads them from finished text.
"""

from __future__ import annotations

import logging
import re
import time
from collections.abc import Callable, Collection, Sequence
from dataclasses import dataclass, field
from typing import Literal, TypedDict

from chatdesk.drafting.base import EngineError, Source, Turn
from chatdesk.drafting.index import Match

logger = logging.getLogger(__name__)

TRUNCATION_MARK = "… "


class ChatMessage(TypedDict):
    role: Literal["system", "user", "assistant"]
    content: str


@dataclass(frozen=True)
class Prompt:
    """Messages ready for a chat template, and what had to go to fit the budget.

    `passages` are the ones the messages list, best first; `tokens` is what `count_tokens`
    said for `messages`; `customer_text_truncated` is True when even the latest customer message
    alone did not fit and its beginning was cut.
    """

    messages: list[ChatMessage]
    passages: list[Match]
    tokens: int
    dropped_turns: int = 0
    dropped_passages: int = 0
    customer_text_truncated: bool = False


def log_prompt_fitting(prompt: Prompt) -> None:
    """Logs what had to go for the prompt to fit (DraftResult has no field for it)."""
    if prompt.customer_text_truncated:
        logger.warning("draft prompt: the latest customer message was cut to fit the model's context")
    elif prompt.dropped_turns or prompt.dropped_passages:
        logger.info(
            "draft prompt: %d older turn(s) and %d passage(s) left out to fit",
            prompt.dropped_turns,
            prompt.dropped_passages,
        )


# How the instruction names the desk's languages (settings.LANGUAGES codes) to a model.
LANGUAGE_NAMES = {"en": "English", "zh-hans": "Simplified Chinese (简体中文)"}


def reply_language(language: str) -> str:
    """The clause naming the language to answer in: the customer's when known (a Django language code),
    else "the customer's language"."""
    if not language:
        return "in the customer's language"
    name = LANGUAGE_NAMES.get(language, language)
    return f"in {name}, the customer's language, whatever language the passages are in"


def system_instruction(company_name: str, passages: Sequence[Match], language: str = "") -> str:
    """The instruction, with the passages listed under their ids; `language` is the customer's
    (a Django language code; "" when not known)."""
    lines = [
        f"You are a customer service agent at {company_name}. Write the next reply to the customer: "
        f"friendly, concise and professional, {reply_language(language)}.",
        "Answer only from the passages below. If they do not cover the question, say that you will "
        "check with a colleague and come back to the customer; never invent facts, prices, dates or policies.",
        "After each statement taken from a passage, cite that passage's id in square brackets, like [article:3].",
        "",
        "Passages:",
    ]
    if not passages:
        lines.append("(none)")
    for match in passages:
        lines += [f"[{match.passage.id}] {match.passage.title}", match.passage.text.strip(), ""]
    return "\n".join(lines).strip()


def conversation_messages(turns: Sequence[Turn]) -> list[ChatMessage]:
    """Customer turns become "user" messages and agent turns "assistant" ones.

    Consecutive turns of one side are merged (several chat templates insist on alternating
    roles) and leading agent turns are dropped (several insist the first one is the user's).
    """
    messages: list[ChatMessage] = []
    for turn in turns:
        role: Literal["user", "assistant"] = "user" if turn.role == "customer" else "assistant"
        if messages and messages[-1]["role"] == role:
            messages[-1] = {"role": role, "content": f"{messages[-1]['content']}\n{turn.text}"}
        elif messages or role == "user":
            messages.append({"role": role, "content": turn.text})
    return messages


SUMMARY_MAX_NEW_TOKENS = 80  # two short sentences
SUMMARY_INSTRUCTION = (
    "You help a customer service agent who is taking over this chat. In at most two short sentences, say "
    "what the customer wants and what was already answered. Write in English, plainly, with no greeting."
)


def summary_messages(turns: Sequence[Turn], fits: Callable[[list[ChatMessage]], bool]) -> list[ChatMessage]:
    """The prompt asking for a handoff summary of `turns`: the instruction, then the chat as one transcript
    ("Customer: …" / "Agent: …" lines), dropping the oldest lines until `fits(messages)` says it fits."""
    lines = [f"{'Customer' if turn.role == 'customer' else 'Agent'}: {' '.join(turn.text.split())}" for turn in turns]
    while True:
        messages: list[ChatMessage] = [
            {"role": "system", "content": SUMMARY_INSTRUCTION},
            {"role": "user", "content": "\n".join(lines) or "(nothing yet)"},
        ]
        if len(lines) <= 1 or fits(messages):
            return messages
        lines = lines[1:]


def fold_system_message(messages: Sequence[ChatMessage]) -> list[ChatMessage]:
    """For chat templates without a system role: the instruction opens the first user message."""
    if not messages or messages[0]["role"] != "system":
        return list(messages)
    system, rest = messages[0]["content"], list(messages[1:])
    if rest and rest[0]["role"] == "user":
        return [{"role": "user", "content": f"{system}\n\n{rest[0]['content']}"}, *rest[1:]]
    return [{"role": "user", "content": system}, *rest]


def build_prompt(
    turns: Sequence[Turn],
    passages: Sequence[Match],
    *,
    company_name: str,
    count_tokens: Callable[[list[ChatMessage]], int],
    budget: int,
    language: str = "",
) -> Prompt:
    """The messages to send, fitted to `budget` tokens as counted by `count_tokens`; the model is told
    to answer in `language` (the customer's, a Django language code; "": the customer's, unnamed).

    Turns after the latest customer message are ignored (the contract says there are none).
    Raises EngineError when the instruction alone exceeds the budget.
    """
    latest_index = max((i for i, t in enumerate(turns) if t.role == "customer"), default=-1)
    if latest_index < 0:
        raise EngineError("the conversation has no customer message to answer")
    older = list(turns[:latest_index])
    latest = turns[latest_index]
    ranked = sorted(passages, key=lambda m: m.score, reverse=True)

    def render(kept_turns: list[Turn], kept_passages: list[Match], latest_text: str) -> list[ChatMessage]:
        system: ChatMessage = {"role": "system", "content": system_instruction(company_name, kept_passages, language)}
        return [system, *conversation_messages([*kept_turns, Turn(role="customer", text=latest_text)])]

    def attempt(kept_turns: list[Turn], kept_passages: list[Match], latest_text: str) -> Prompt | None:
        messages = render(kept_turns, kept_passages, latest_text)
        tokens = count_tokens(messages)
        if tokens > budget:
            return None
        return Prompt(
            messages=messages,
            passages=list(kept_passages),
            tokens=tokens,
            dropped_turns=len(older) - len(kept_turns),
            dropped_passages=len(ranked) - len(kept_passages),
            customer_text_truncated=latest_text != latest.text,
        )

    kept_turns, kept_passages = list(older), list(ranked)
    while True:
        fitted = attempt(kept_turns, kept_passages, latest.text)
        if fitted is not None:
            return fitted
        if kept_turns:
            kept_turns.pop(0)
        elif kept_passages:
            kept_passages.pop()
        else:
            break
    # Only the instruction and the latest customer message are left: keep the longest ending
    # of that message that fits (its end is usually the question).
    text = latest.text
    best: Prompt | None = attempt([], [], TRUNCATION_MARK)
    if best is None:
        raise EngineError(f"the model's context ({budget} tokens for the prompt) is too small for the instructions")
    low, high = 0, len(text)  # characters of the ending: `low` fits, `high` does not
    while high - low > 1:
        middle = (low + high) // 2
        fitted = attempt([], [], TRUNCATION_MARK + text[len(text) - middle :])
        if fitted is None:
            high = middle
        else:
            low, best = middle, fitted
    return best


# A citation marker holds one or more passage ids: [article:3], [article:3, reply:7].
_ID = r"[A-Za-z][\w-]*:[\w-]+"
_MARKER = re.compile(rf"\s*\[\s*({_ID}(?:\s*[,;]\s*{_ID})*)\s*\]")
_ID_RE = re.compile(_ID)
# What may follow "[" while a marker is still being written.
_OPEN_MARKER = re.compile(r"\[[\w:,;\s-]*$")
_MAX_MARKER_CHARS = 200


def extract_citations(text: str, known: Collection[str] | None = None) -> list[str]:
    """Passage ids cited in `text` as [id] markers, in order of first citation, without repeats.

    With `known`, ids not in it (the model made them up) are left out.
    """
    found: list[str] = []
    for marker in _MARKER.finditer(text):
        for passage_id in _ID_RE.findall(marker.group(1)):
            if passage_id not in found and (known is None or passage_id in known):
                found.append(passage_id)
    return found


@dataclass
class DraftTextFilter:
    """The model's raw text in, the draft text out, while it streams.

    Citation markers (and the space before them) are removed and their ids collected in `cited`;
    leading and trailing whitespace is trimmed. Text that might still become a marker or trailing
    whitespace is held back until it is known. The concatenation of everything `feed` and `finish`
    return is exactly the final draft text.
    """

    cited: list[str] = field(default_factory=list)
    _pending: str = field(default="", init=False)
    _started: bool = field(default=False, init=False)

    def feed(self, piece: str) -> str:
        self._pending += piece
        return self._drain(final=False)

    def finish(self) -> str:
        return self._drain(final=True)

    def _drain(self, *, final: bool) -> str:
        def collect(marker: re.Match[str]) -> str:
            for passage_id in _ID_RE.findall(marker.group(1)):
                if passage_id not in self.cited:
                    self.cited.append(passage_id)
            return ""

        text = _MARKER.sub(collect, self._pending)
        if final:
            ready, self._pending = text.rstrip(), ""
        else:
            hold = len(text.rstrip())
            opening = _OPEN_MARKER.search(text)
            if opening and len(text) - opening.start() <= _MAX_MARKER_CHARS:
                before = text[: opening.start()]
                hold = min(hold, len(before.rstrip()))
            ready, self._pending = text[:hold], text[hold:]
        if not self._started:
            ready = ready.lstrip()
            self._started = bool(ready)
        return ready


def filter_draft_text(raw: str) -> tuple[str, list[str]]:
    """The draft text and cited ids of finished raw text (what DraftTextFilter gives when streaming)."""
    text_filter = DraftTextFilter()
    text = text_filter.feed(raw) + text_filter.finish()
    return text, text_filter.cited


def draft_sources(used: Sequence[Match], cited: Collection[str]) -> list[Source]:
    """The passages the draft cites, best first; all passages of the prompt when it cites none of them."""
    chosen = [m for m in used if m.passage.id in cited] or list(used)
    return [Source(id=m.passage.id, title=m.passage.title, score=m.score) for m in chosen]


class DraftWriter:
    """Collects a draft as an engine writes it: citation markers filtered out (DraftTextFilter), each
    piece passed on to `on_text` (the agents' live view), and when the first piece came."""

    def __init__(self, *, started: float, on_text: Callable[[str], None] | None) -> None:
        self.started = started
        self.on_text = on_text
        self.pieces: list[str] = []
        self.first_piece_s: float | None = None
        self.filter = DraftTextFilter()

    def feed(self, raw: str) -> None:
        self._emit(self.filter.feed(raw))

    def finish(self) -> None:
        self._emit(self.filter.finish())

    def _emit(self, piece: str) -> None:
        if not piece:
            return
        if self.first_piece_s is None:
            self.first_piece_s = time.perf_counter() - self.started
        self.pieces.append(piece)
        if self.on_text is not None:
            self.on_text(piece)

    @property
    def text(self) -> str:
        return "".join(self.pieces)

    def sources(self, passages: Sequence[Match]) -> list[Source]:
        """The prompt's passages the draft cites (all of them when it cites none)."""
        known = {m.passage.id for m in passages}
        return draft_sources(passages, [c for c in self.filter.cited if c in known])
