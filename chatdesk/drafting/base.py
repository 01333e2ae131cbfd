"""The contract between the desk and any drafting engine."""

from __future__ import annotations

from abc import ABC, abstractmethod
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any, Literal

if TYPE_CHECKING:
    from chatdesk.drafting.index import KnowledgeIndex


class EngineError(Exception):
    """The engine could not draft; the message is shown to agents as the reason."""


class DraftCancelled(Exception):
    """The draft is no longer wanted (an agent took over, a newer customer message came); nothing is stored."""


def _never() -> bool:
    return False


@dataclass(frozen=True)
class Turn:
    role: Literal["customer", "agent"]
    text: str


@dataclass(frozen=True)
class Source:
    """A passage the draft was built from, as agents see it."""

    id: str
    title: str
    score: float

    def as_dict(self) -> dict[str, Any]:
        return {"id": self.id, "title": self.title, "score": round(self.score, 4)}


@dataclass
class DraftContext:
    """Everything an engine may use. turns end with the customer message to answer; engines prefer
    knowledge passages in the customer's `language`, and those that write answer in it.

    Engines that write text piece by piece call `on_text(piece)` for each new
    piece (the agents' dashboard shows the draft forming), and poll
    `cancelled()` between steps, raising DraftCancelled when it returns True.
    """

    turns: list[Turn]
    knowledge: KnowledgeIndex
    company_name: str = "our shop"
    options: dict[str, Any] = field(default_factory=dict)
    on_text: Callable[[str], None] | None = None
    cancelled: Callable[[], bool] = _never
    language: str = ""  # the customer's (a Django language code, e.g. "zh-hans"); "": not known

    @property
    def latest_customer_text(self) -> str:
        for turn in reversed(self.turns):
            if turn.role == "customer":
                return turn.text
        raise EngineError("the conversation has no customer message to answer")

    @property
    def avoided_sources(self) -> frozenset[str]:
        """Passage ids an agent rejected for this message (options["avoid_sources"])."""
        return frozenset(self.options.get("avoid_sources", ()))


@dataclass
class DraftResult:
    """text is what the customer would receive; confidence is in [0, 1] (see docs/architecture.md).

    out_of_scope, when set, is the "we don't answer this" example the customer message is closer to
    than the rule allows (KnowledgeIndex.out_of_scope_match): id "out_of_scope:<pk>", title its text,
    score its cosine similarity to the message. The desk escalates such a draft whatever its confidence.

    tokens: tokens the engine generated; prompt_tokens: tokens it read (0 for engines that select);
    model_name: the model behind it (a folder, a Hugging Face id, a served model's name, the encoder's
    name). What drafting costs is reported from these.
    """

    text: str
    confidence: float
    sources: list[Source] = field(default_factory=list)
    topic: str | None = None
    timings: dict[str, float] = field(default_factory=dict)
    tokens: int = 0
    prompt_tokens: int = 0
    model_name: str = ""
    alternatives: list[str] = field(default_factory=list)
    out_of_scope: Source | None = None


class DraftEngine(ABC):
    """Engines are created once per worker process and must be safe to reuse."""

    name: str = ""

    @classmethod
    def from_settings(cls) -> DraftEngine:
        """The engine as the desk's settings configure it (engines with options override this)."""
        return cls()

    def warm_up(self) -> None:  # noqa: B027  (optional hook; most engines have nothing to load)
        """Load models now, so the first customer does not wait for them."""

    @abstractmethod
    def draft(self, context: DraftContext) -> DraftResult: ...

    def summarise(self, turns: list[Turn]) -> str | None:
        """A short handoff summary of `turns` (oldest first) written by the engine's model, for an agent
        taking the conversation over; None for engines that write no text of their own (the desk then
        keeps its extractive summary). Raises EngineError when the model fails."""
        return None
