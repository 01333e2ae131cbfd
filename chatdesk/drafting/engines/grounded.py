"""What the engines that write a draft from retrieved passages share (`transformers`, `openai`):
finding the passages, warming the encoder up, the prompt, and turning the written draft into a
DraftResult."""

from __future__ import annotations

from collections.abc import Callable
from typing import TYPE_CHECKING

from chatdesk.drafting.base import DraftContext, DraftResult, EngineError
from chatdesk.drafting.index import Match
from chatdesk.drafting.prompt import ChatMessage, DraftWriter, Prompt, build_prompt, log_prompt_fitting

if TYPE_CHECKING:
    import numpy as np

Encode = Callable[[list[str]], "np.ndarray"]


def retrieve(context: DraftContext, limit: int, encode: Encode | None = None) -> list[Match]:
    """The `limit` passages closest to the latest customer message, best first, without those an
    agent rejected for it (context.avoided_sources), those in the customer's language preferred."""
    if limit <= 0:
        return []
    if encode is None:
        from chatdesk.drafting import encoder

        encode = encoder.encode
    query = encode([context.latest_customer_text])[0]
    return context.knowledge.search(
        query, limit=limit, exclude=context.avoided_sources, language=context.language or None
    )


def grounded_prompt(
    context: DraftContext, matches: list[Match], *, count_tokens: Callable[[list[ChatMessage]], int], budget: int
) -> Prompt:
    """The prompt for the conversation and the passages, cut to `budget` tokens (what had to go
    is logged)."""
    prompt = build_prompt(
        context.turns,
        matches,
        company_name=context.company_name,
        count_tokens=count_tokens,
        budget=budget,
        language=context.language,
    )
    log_prompt_fitting(prompt)
    return prompt


def warm_up_encoder(encode: Encode | None, passages: int) -> None:
    """Load the shared encoder now if drafts will retrieve passages with it."""
    if encode is None and passages:
        from chatdesk.drafting import encoder

        encoder.warm_up()


def written_result(
    writer: DraftWriter,
    prompt: Prompt,
    matches: list[Match],
    *,
    clock: tuple[float, float, float, float],
    first_token_s: float,
    confidence: Callable[[float | None], float],
    tokens: int,
    prompt_tokens: int,
    model_name: str,
    alternatives: list[str] | None = None,
    empty_error: str,
) -> DraftResult:
    """The draft `writer` wrote from `prompt`. clock: perf_counter when the draft started and when
    retrieval, the prompt and the writing ended; first_token_s counts when no piece was streamed;
    confidence gets the best score of the passages the draft cites. EngineError(empty_error) when
    nothing but citations was written."""
    text = writer.text
    if not text:
        raise EngineError(empty_error)
    started, retrieved, prompted, finished = clock
    sources = writer.sources(prompt.passages)
    return DraftResult(
        text=text,
        confidence=confidence(max((s.score for s in sources), default=None)),
        sources=sources,
        topic=matches[0].passage.topic if matches else None,
        timings={
            "retrieve_s": retrieved - started,
            "prompt_s": prompted - retrieved,
            "generate_s": finished - prompted,
            "first_token_s": writer.first_piece_s if writer.first_piece_s is not None else first_token_s,
        },
        tokens=tokens,
        prompt_tokens=prompt_tokens,
        model_name=model_name,
        alternatives=alternatives or [],
    )
