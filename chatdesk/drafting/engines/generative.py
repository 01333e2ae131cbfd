"""The generative engine: writes a draft with a local causal language model, from retrieved passages."""

from __future__ import annotations

import threading
import time
from typing import TYPE_CHECKING, Any

from chatdesk.drafting.base import DraftCancelled, DraftContext, DraftEngine, DraftResult, EngineError, Turn
from chatdesk.drafting.engines.grounded import Encode, grounded_prompt, retrieve, warm_up_encoder, written_result
from chatdesk.drafting.generation import (
    DecodingOptions,
    LoadedModel,
    ModelSpec,
    beam_search,
    check_decoding,
    draft_confidence,
    load_model,
    mean_logprob,
    resolve_decoding,
)
from chatdesk.drafting.prompt import SUMMARY_MAX_NEW_TOKENS, DraftWriter, filter_draft_text, summary_messages

if TYPE_CHECKING:
    from chatdesk.drafting.batching import DynamicBatcher


def _positive(name: str, value: float, lowest: float = 0) -> None:
    if isinstance(value, bool) or not isinstance(value, int | float) or value < lowest:
        raise EngineError(f"{name} must be a number of at least {lowest}, not {value!r}")


class TransformersEngine(DraftEngine):
    """Retrieves passages, asks a local chat model to answer from them, streams the draft.

    Greedy and sampled drafts go through the engine's DynamicBatcher (concurrent drafts share
    the model's steps); beam drafts run alone in the calling thread and are sent to on_text in
    one piece. Citation markers are removed from the text; sources are the cited passages (all
    passages in the prompt when none is cited); topic is the best retrieved passage's.
    Confidence: see chatdesk.drafting.generation. Timings: retrieve_s, prompt_s (includes loading
    the model if warm_up did not), generate_s, first_token_s (from the start of draft() to the
    first piece of text). Per-draft decoding overrides: options["decoding"] (see
    generation.resolve_decoding); options["avoid_sources"] as for the retrieval engine.
    """

    name = "transformers"

    def __init__(
        self,
        *,
        model: str,
        adapter: str | None = None,
        device: str | None = None,
        dtype: str = "auto",
        threads: int | None = None,
        max_new_tokens: int = 256,
        context_tokens: int = 0,
        strategy: str = "greedy",
        temperature: float = 0.7,
        top_p: float = 0.9,
        num_beams: int = 4,
        num_beam_groups: int = 2,
        diversity_penalty: float = 0.5,
        repetition_penalty: float = 1.0,
        num_alternatives: int = 2,
        seed: int | None = None,
        passages: int = 3,
        batch_size: int = 16,
        batch_window_s: float = 0.01,
        cancel_poll_s: float = 0.1,
        stream_interval_s: float = 0.05,
        batch_exact: bool = True,
        encode: Encode | None = None,
    ) -> None:
        """Validates the configuration (EngineError on a bad value); the model loads on first use."""
        _positive("max_new_tokens", max_new_tokens, 1)
        _positive("context_tokens", context_tokens)
        _positive("passages", passages)
        _positive("batch_size", batch_size, 1)
        for name, value in (("batch_window_s", batch_window_s), ("cancel_poll_s", cancel_poll_s)):
            _positive(name, value)
        _positive("stream_interval_s", stream_interval_s)
        self.spec = ModelSpec(model=model, adapter=adapter or None, device=device or None, dtype=dtype, threads=threads)
        self.defaults = check_decoding(
            DecodingOptions(
                strategy=strategy,  # type: ignore[arg-type]  # checked by check_decoding
                max_new_tokens=max_new_tokens,  # check_decoding caps it at HARD_MAX_NEW_TOKENS
                temperature=temperature,
                top_p=top_p,
                num_beams=num_beams,
                num_beam_groups=num_beam_groups,
                diversity_penalty=diversity_penalty,
                repetition_penalty=repetition_penalty,
                num_alternatives=num_alternatives,
                seed=seed,
            )
        )
        self.context_tokens = int(context_tokens)
        self.passages = int(passages)
        self.batch_size = int(batch_size)
        self.batch_window_s = float(batch_window_s)
        self.cancel_poll_s = float(cancel_poll_s)
        self.stream_interval_s = float(stream_interval_s)
        self.batch_exact = bool(batch_exact)
        self._encode = encode
        self._lock = threading.Lock()
        self._batcher: DynamicBatcher | None = None

    @classmethod
    def from_settings(cls) -> TransformersEngine:
        """The engine configured by the DRAFT_* settings (defaults where a setting is absent)."""
        from django.conf import settings as s

        return cls(
            model=s.DRAFT_MODEL,
            adapter=s.DRAFT_ADAPTER or None,
            device=s.DRAFT_DEVICE or None,
            dtype=s.DRAFT_DTYPE,
            threads=s.TORCH_NUM_THREADS,
            max_new_tokens=s.DRAFT_MAX_NEW_TOKENS,
            context_tokens=s.DRAFT_CONTEXT_TOKENS,
            strategy=s.DRAFT_DECODING,
            temperature=s.DRAFT_TEMPERATURE,
            top_p=s.DRAFT_TOP_P,
            num_beams=s.DRAFT_NUM_BEAMS,
            num_beam_groups=s.DRAFT_NUM_BEAM_GROUPS,
            diversity_penalty=s.DRAFT_DIVERSITY_PENALTY,
            repetition_penalty=s.DRAFT_REPETITION_PENALTY,
            num_alternatives=s.DRAFT_NUM_ALTERNATIVES,
            passages=s.DRAFT_PASSAGES,
            batch_size=s.DRAFT_BATCH_SIZE,
            batch_window_s=s.DRAFT_BATCH_WINDOW_MS / 1000,
            cancel_poll_s=s.DRAFT_CANCEL_POLL_MS / 1000,
            stream_interval_s=s.DRAFT_STREAM_INTERVAL_MS / 1000,
            batch_exact=s.DRAFT_BATCH_EXACT,
        )

    @property
    def model_name(self) -> str:
        """The model drafts are written with, as DraftResult.model_name: its folder or id (+ the adapter)."""
        return f"{self.spec.model} + {self.spec.adapter}" if self.spec.adapter else self.spec.model

    def warm_up(self) -> None:
        warm_up_encoder(self._encode, self.passages)  # first: it imports transformers too, under its own lock
        self.batcher()

    def batcher(self) -> DynamicBatcher:
        """The engine's batcher, with its model loaded (once per process)."""
        with self._lock:
            if self._batcher is None:
                from chatdesk.drafting.batching import DynamicBatcher

                loaded = load_model(self.spec)
                if self.prompt_budget(loaded, self.defaults) < 64:
                    raise EngineError(
                        f"the model's context ({self.context_limit(loaded)} tokens) leaves too little room for "
                        f"a prompt after {self.defaults.max_new_tokens} new tokens"
                    )
                self._batcher = DynamicBatcher(
                    loaded,
                    max_batch_size=self.batch_size,
                    window_s=self.batch_window_s,
                    cancel_poll_s=self.cancel_poll_s,
                    stream_interval_s=self.stream_interval_s,
                    exact=self.batch_exact,
                )
            return self._batcher

    def context_limit(self, loaded: LoadedModel) -> int:
        return min(loaded.context_tokens, self.context_tokens) if self.context_tokens else loaded.context_tokens

    def prompt_budget(self, loaded: LoadedModel, decoding: DecodingOptions) -> int:
        return self.context_limit(loaded) - decoding.max_new_tokens

    def draft(self, context: DraftContext) -> DraftResult:
        started = time.perf_counter()
        decoding = resolve_decoding(self.defaults, context.options.get("decoding"))
        if context.cancelled():
            raise DraftCancelled
        matches = retrieve(context, self.passages, self._encode)
        retrieved = time.perf_counter()
        batcher = self.batcher()
        loaded = batcher.loaded
        prompt = grounded_prompt(
            context, matches, count_tokens=loaded.count_tokens, budget=self.prompt_budget(loaded, decoding)
        )
        prompt_ids = loaded.chat_ids(prompt.messages)
        prompted = time.perf_counter()

        writer = DraftWriter(started=started, on_text=context.on_text)
        alternatives: list[str] = []
        if decoding.strategy == "beam":
            candidates = beam_search(
                loaded, prompt_ids, decoding, cancelled=context.cancelled, poll_s=self.cancel_poll_s
            )
            best = candidates[0]
            writer.feed(loaded.decode(best.token_ids))
            writer.finish()
            generated = list(best.token_ids)
            fluency = mean_logprob(loaded, prompt_ids, generated)
            first_token_s = time.perf_counter() - started
            alternatives = self._alternatives(loaded, candidates, writer.text, decoding.num_alternatives)
        else:
            from chatdesk.drafting.batching import GenerationRequest

            request = GenerationRequest(
                prompt_ids=tuple(prompt_ids),
                max_new_tokens=decoding.max_new_tokens,
                stop_ids=loaded.stop_ids,
                temperature=decoding.temperature if decoding.strategy == "sample" else 0.0,
                top_p=decoding.top_p,
                repetition_penalty=decoding.repetition_penalty,
                seed=decoding.seed,
            )
            output = batcher.generate(request, on_text=writer.feed, cancelled=context.cancelled)
            writer.finish()
            generated = output.token_ids
            fluency = output.mean_logprob
            first_token_s = (prompted - started) + (output.first_token_s or 0.0)
        return written_result(
            writer,
            prompt,
            matches,
            clock=(started, retrieved, prompted, time.perf_counter()),
            first_token_s=first_token_s,
            confidence=lambda best: draft_confidence(fluency, best),
            tokens=len(generated),
            prompt_tokens=len(prompt_ids),
            model_name=self.model_name,
            alternatives=alternatives,
            empty_error="the model wrote an empty draft",
        )

    def summarise(self, turns: list[Turn]) -> str | None:
        from chatdesk.drafting.batching import GenerationRequest

        loaded = self.batcher().loaded
        budget = self.context_limit(loaded) - SUMMARY_MAX_NEW_TOKENS
        messages = summary_messages(turns, lambda m: loaded.count_tokens(m) <= budget)
        request = GenerationRequest(
            prompt_ids=tuple(loaded.chat_ids(messages)),
            max_new_tokens=SUMMARY_MAX_NEW_TOKENS,
            stop_ids=loaded.stop_ids,
            temperature=0.0,
            top_p=1.0,
            repetition_penalty=self.defaults.repetition_penalty,
            seed=None,
        )
        text = " ".join(loaded.decode(self.batcher().generate(request).token_ids).split())
        if not text:
            raise EngineError("the model wrote an empty summary")
        return text

    @staticmethod
    def _alternatives(loaded: LoadedModel, candidates: list[Any], text: str, limit: int) -> list[str]:
        """Other distinct drafts: each group's best first (the most diverse), then runners-up."""
        others = sorted(candidates[1:], key=lambda c: (c.rank, c.group))
        seen, chosen = {text}, []
        for candidate in others:
            alternative, _ = filter_draft_text(loaded.decode(candidate.token_ids))
            if alternative and alternative not in seen:
                seen.add(alternative)
                chosen.append(alternative)
            if len(chosen) >= limit:
                break
        return chosen
