"""The transformers engine end to end, on a tiny random model and a hashed-words encoder."""

from __future__ import annotations

import math
import threading
from collections.abc import Callable, Iterator
from dataclasses import replace
from pathlib import Path
from typing import Any

import pytest

from chatdesk.drafting.base import DraftCancelled, DraftContext, EngineError, Turn
from chatdesk.drafting.batching import GenerationOutput, GenerationRequest
from chatdesk.drafting.engines.generative import TransformersEngine
from chatdesk.drafting.generation import draft_confidence
from chatdesk.drafting.prompt import SUMMARY_MAX_NEW_TOKENS, summary_messages
from tests.drafting.conftest import fake_encode


@pytest.fixture
def engine(model_dir: Path) -> Iterator[TransformersEngine]:
    engine = TransformersEngine(
        model=str(model_dir),
        encode=fake_encode,
        max_new_tokens=24,
        batch_window_s=0.002,
        cancel_poll_s=0.005,
        stream_interval_s=0,
    )
    yield engine
    engine.batcher().close()


def test_a_draft_streams_and_reports_its_sources_and_timings(
    engine: TransformersEngine, draft_context: DraftContext
) -> None:
    pieces: list[str] = []
    result = engine.draft(replace(draft_context, on_text=pieces.append))
    assert result.text and "".join(pieces) == result.text
    assert result.text == result.text.strip()
    assert 0 < result.tokens <= 24
    assert result.model_name == engine.spec.model
    loaded = engine.batcher().loaded
    assert result.prompt_tokens > 0 and result.prompt_tokens < loaded.context_tokens
    assert result.topic == "shipping"  # the passage closest to "where is my order?"
    assert result.sources[0].id == "article:2"
    assert 0.0 <= result.confidence <= 1.0
    assert set(result.timings) == {"retrieve_s", "prompt_s", "generate_s", "first_token_s"}
    assert all(v >= 0 for v in result.timings.values())
    assert result.alternatives == []


def fake_generation(text_pieces: list[str], logprob: float = -0.5) -> Callable[..., GenerationOutput]:
    def generate(request: GenerationRequest, *, on_text: Any = None, cancelled: Any = None) -> GenerationOutput:
        for piece in text_pieces:
            if on_text is not None:
                on_text(piece)
        tokens = list(range(len(text_pieces)))
        return GenerationOutput(tokens, "".join(text_pieces), [logprob] * len(tokens), "stop", 0.01)

    return generate


def test_cited_passages_become_the_sources_and_markers_leave_the_text(
    engine: TransformersEngine, draft_context: DraftContext, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(
        engine.batcher(), "generate", fake_generation([" Parcels take 3", " to 5 days [arti", "cle:2][article:9]."])
    )
    pieces: list[str] = []
    result = engine.draft(replace(draft_context, on_text=pieces.append))
    assert result.text == "Parcels take 3 to 5 days." == "".join(pieces)
    assert [s.id for s in result.sources] == ["article:2"]  # article:9 is not a passage of the prompt
    assert result.confidence == pytest.approx(draft_confidence(-0.5, result.sources[0].score))
    assert result.tokens == 3


def test_an_empty_draft_is_an_engine_error(
    engine: TransformersEngine, draft_context: DraftContext, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(engine.batcher(), "generate", fake_generation(["  [article:2] "]))
    with pytest.raises(EngineError, match="empty draft"):
        engine.draft(draft_context)


def test_beam_drafts_offer_distinct_alternatives(engine: TransformersEngine, draft_context: DraftContext) -> None:
    pieces: list[str] = []
    options = {"decoding": {"strategy": "beam", "num_beams": 4, "num_beam_groups": 2, "num_alternatives": 3}}
    result = engine.draft(replace(draft_context, options=options, on_text=pieces.append))
    assert pieces == [result.text]
    assert 1 <= len(result.alternatives) <= 3
    assert len({result.text, *result.alternatives}) == len(result.alternatives) + 1
    assert 0.0 <= result.confidence <= 1.0 and result.tokens > 0


def test_cancelled_drafts_raise_and_stop(engine: TransformersEngine, draft_context: DraftContext) -> None:
    with pytest.raises(DraftCancelled):
        engine.draft(replace(draft_context, cancelled=lambda: True))
    pieces: list[str] = []
    with pytest.raises(DraftCancelled):
        engine.draft(replace(draft_context, on_text=pieces.append, cancelled=lambda: len(pieces) >= 2))
    assert 2 <= len(pieces) < 24


@pytest.mark.parametrize(
    ("decoding", "message"),
    [({"strategy": "telepathy"}, "strategy must be one of"), ({"temperature": "warm"}, "must be a number")],
)
def test_bad_decoding_options_are_refused(
    engine: TransformersEngine, draft_context: DraftContext, decoding: dict[str, object], message: str
) -> None:
    with pytest.raises(EngineError, match=message):
        engine.draft(replace(draft_context, options={"decoding": decoding}))


def test_rejected_sources_are_not_used_again(engine: TransformersEngine, draft_context: DraftContext) -> None:
    result = engine.draft(replace(draft_context, options={"avoid_sources": ["article:2"]}))
    assert "article:2" not in [s.id for s in result.sources]
    assert result.topic != "shipping"


def test_concurrent_drafts_equal_the_same_drafts_one_by_one(
    engine: TransformersEngine, draft_context: DraftContext
) -> None:
    questions = ["where is my order?", "how do I return a jacket", "I forgot my password", "refund?"]
    contexts = [replace(draft_context, turns=[Turn("customer", q)]) for q in questions]
    alone = [engine.draft(c).text for c in contexts]
    together: dict[int, str] = {}
    threads = [
        threading.Thread(target=lambda i=i: together.update({i: engine.draft(contexts[i]).text})) for i in range(4)
    ]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(timeout=60)
    assert [together[i] for i in range(4)] == alone


def test_long_conversations_are_fitted_to_a_small_context(model_dir: Path, draft_context: DraftContext) -> None:
    engine = TransformersEngine(model=str(model_dir), encode=fake_encode, max_new_tokens=16, context_tokens=400)
    try:
        turns = [Turn("customer" if i % 2 else "agent", f"message number {i} " * 8) for i in range(30)]
        result = engine.draft(replace(draft_context, turns=[*turns, Turn("customer", "where is my order?")]))
        assert result.text
    finally:
        engine.batcher().close()
    too_small = TransformersEngine(model=str(model_dir), encode=fake_encode, max_new_tokens=200, context_tokens=240)
    with pytest.raises(EngineError, match="too little room"):
        too_small.draft(draft_context)


@pytest.mark.parametrize(
    ("config", "message"),
    [
        ({"strategy": "beam", "num_beams": 3, "num_beam_groups": 2}, "multiple of num_beam_groups"),
        ({"strategy": "sampling"}, "strategy must be one of"),
        ({"batch_size": 0}, "batch_size must be"),
        ({"passages": -1}, "passages must be"),
    ],
)
def test_bad_configuration_is_refused_at_construction(config: dict[str, Any], message: str) -> None:
    with pytest.raises(EngineError, match=message):
        TransformersEngine(model="x", **config)


def test_from_settings_reads_the_draft_settings(settings: Any, model_dir: Path) -> None:
    settings.DRAFT_MODEL = str(model_dir)
    settings.DRAFT_DTYPE = "float32"
    settings.DRAFT_MAX_NEW_TOKENS = 5000
    settings.DRAFT_DECODING = "sample"
    settings.DRAFT_TEMPERATURE = 0.3
    settings.DRAFT_BATCH_SIZE = 4
    settings.DRAFT_BATCH_WINDOW_MS = 20
    settings.DRAFT_PASSAGES = 2
    engine = TransformersEngine.from_settings()
    assert engine.spec.model == str(model_dir) and engine.spec.dtype == "float32" and engine.spec.adapter is None
    assert engine.defaults.max_new_tokens == 1024  # the hard cap
    assert (engine.defaults.strategy, engine.defaults.temperature) == ("sample", 0.3)
    assert (engine.batch_size, engine.batch_window_s, engine.passages) == (4, 0.02, 2)
    assert math.isclose(engine.cancel_poll_s, 0.1)


def test_a_handoff_summary_is_written_by_the_model_from_a_transcript_that_fits(model_dir: Path) -> None:
    engine = TransformersEngine(
        model=str(model_dir), encode=fake_encode, context_tokens=160, max_new_tokens=24, batch_window_s=0.002
    )
    try:
        turns = [Turn("customer" if i % 2 == 0 else "agent", f"message number {i} about a parcel") for i in range(60)]
        summary = engine.summarise(turns)
        assert summary and summary == " ".join(summary.split())  # a random model's words, on one line
        loaded = engine.batcher().loaded
        kept = summary_messages(turns, lambda m: loaded.count_tokens(m) <= 160 - SUMMARY_MAX_NEW_TOKENS)
        assert kept[1]["content"].endswith("Agent: message number 59 about a parcel")  # the newest lines kept
        assert "message number 0 " not in kept[1]["content"]  # the oldest dropped to fit
    finally:
        engine.batcher().close()
