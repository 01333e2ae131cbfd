"""The OpenAI-compatible engine: the generative engine's prompt, answered by a chat-completions server.

Any server speaking POST {base_url}/chat/completions with "stream": true (OpenAI, vLLM, llama.cpp,
Ollama, TGI…) will do. Pieces stream to on_text as server-sent events arrive; cancelled() is polled
between events (at most every cancel_poll_s) and closes the response. Connection errors, 429 and 5xx
answers are retried with exponential backoff (honouring Retry-After) as long as no text has arrived;
anything else becomes an EngineError that says what happened.

Confidence. Without log-probabilities it is the retrieval score of the best passage the draft is
built from, times CONFIDENCE_FACTOR (0.8): nothing is known about how sure the model was, so even a
perfect passage stays below the retrieval engine's confidence in a verbatim answer. With
DRAFT_OPENAI_LOGPROBS and a server that returns them, it is the generative engine's formula
(chatdesk.drafting.generation.draft_confidence).
"""

from __future__ import annotations

import json
import random
import threading
import time
from collections.abc import Callable, Generator, Iterator
from contextlib import closing
from typing import TYPE_CHECKING, Any

from chatdesk.drafting.base import DraftCancelled, DraftContext, DraftEngine, DraftResult, EngineError, Turn
from chatdesk.drafting.engines.grounded import Encode, grounded_prompt, retrieve, warm_up_encoder, written_result
from chatdesk.drafting.generation import (
    DecodingOptions,
    check_decoding,
    draft_confidence,
    resolve_decoding,
)
from chatdesk.drafting.pii import mask_pii, should_mask
from chatdesk.drafting.prompt import SUMMARY_MAX_NEW_TOKENS, ChatMessage, DraftWriter, summary_messages

if TYPE_CHECKING:
    import httpx

CONFIDENCE_FACTOR = 0.8
RETRY_STATUSES = frozenset({429, 500, 502, 503, 504})
MAX_BACKOFF_S = 8.0


def approximate_tokens(messages: list[ChatMessage]) -> int:
    """About four characters a token, plus a few per message for the chat format (no tokenizer here)."""
    return sum(len(m["content"]) // 4 + 4 for m in messages) + 3


class _Retry(Exception):
    def __init__(self, reason: str, delay_s: float | None = None) -> None:
        super().__init__(reason)
        self.delay_s = delay_s


class OpenAIEngine(DraftEngine):
    """Drafts with a remote or local OpenAI-compatible chat-completions server (see the module docstring).

    Decoding: "greedy" sends temperature 0, "sample" sends temperature, top_p and seed; "beam" is
    not available. Personal data in the whole prompt, the conversation and the knowledge passages
    alike (approved replies are agents' answers to customers), is masked per `pii_masking` before it
    leaves the host.
    """

    name = "openai"

    def __init__(
        self,
        *,
        base_url: str,
        model: str,
        api_key: str | None = None,
        timeout_s: float = 30.0,
        connect_timeout_s: float = 5.0,
        retries: int = 2,
        backoff_s: float = 0.5,
        max_new_tokens: int = 256,
        context_tokens: int = 8192,
        strategy: str = "greedy",
        temperature: float = 0.7,
        top_p: float = 0.9,
        seed: int | None = None,
        passages: int = 3,
        pii_masking: str = "auto",
        logprobs: bool = False,
        cancel_poll_s: float = 0.1,
        encode: Encode | None = None,
    ) -> None:
        """Validates the configuration (EngineError on a bad value); connects on first draft."""
        if not base_url.startswith(("http://", "https://")):
            raise EngineError(f"the OpenAI base URL must start with http:// or https://, not {base_url!r}")
        if not model:
            raise EngineError("no model name is configured for the OpenAI-compatible server (DRAFT_OPENAI_MODEL)")
        for name, value in (("timeout_s", timeout_s), ("connect_timeout_s", connect_timeout_s)):
            if not value > 0:
                raise EngineError(f"{name} must be positive, not {value!r}")
        if retries < 0 or backoff_s < 0 or passages < 0 or cancel_poll_s < 0:
            raise EngineError("retries, backoff_s, passages and cancel_poll_s must not be negative")
        try:
            self.mask = should_mask(pii_masking, base_url)
        except ValueError as exc:
            raise EngineError(str(exc)) from None
        self.base_url = base_url.rstrip("/")
        self.model = model
        self.api_key = api_key or None
        self.timeout_s = float(timeout_s)
        self.connect_timeout_s = float(connect_timeout_s)
        self.retries = int(retries)
        self.backoff_s = float(backoff_s)
        self.context_tokens = int(context_tokens)
        self.passages = int(passages)
        self.logprobs = bool(logprobs)
        self.cancel_poll_s = float(cancel_poll_s)
        self.defaults = check_decoding(
            DecodingOptions(
                strategy=strategy,  # type: ignore[arg-type]  # checked by check_decoding
                max_new_tokens=max_new_tokens,  # check_decoding caps it at HARD_MAX_NEW_TOKENS
                temperature=temperature,
                top_p=top_p,
                seed=seed,
            )
        )
        if self.defaults.strategy == "beam":
            raise EngineError("beam search is not available with the openai engine")
        if self.context_tokens - self.defaults.max_new_tokens < 64:
            raise EngineError(f"context_tokens ({context_tokens}) leaves too little room for a prompt")
        self._encode = encode
        self._client: httpx.Client | None = None
        self._client_lock = threading.Lock()

    @classmethod
    def from_settings(cls) -> OpenAIEngine:
        """The engine configured by the DRAFT_OPENAI_* and DRAFT_* settings."""
        from django.conf import settings as s

        return cls(
            base_url=s.DRAFT_OPENAI_BASE_URL,
            model=s.DRAFT_OPENAI_MODEL,
            api_key=s.DRAFT_OPENAI_API_KEY or None,
            timeout_s=s.DRAFT_OPENAI_TIMEOUT_S,
            connect_timeout_s=s.DRAFT_OPENAI_CONNECT_TIMEOUT_S,
            retries=s.DRAFT_OPENAI_RETRIES,
            logprobs=s.DRAFT_OPENAI_LOGPROBS,
            max_new_tokens=s.DRAFT_MAX_NEW_TOKENS,
            context_tokens=s.DRAFT_CONTEXT_TOKENS or 8192,
            strategy=s.DRAFT_DECODING,
            temperature=s.DRAFT_TEMPERATURE,
            top_p=s.DRAFT_TOP_P,
            passages=s.DRAFT_PASSAGES,
            pii_masking=s.DRAFT_PII_MASKING,
            cancel_poll_s=s.DRAFT_CANCEL_POLL_MS / 1000,
        )

    def warm_up(self) -> None:
        warm_up_encoder(self._encode, self.passages)

    def client(self) -> httpx.Client:
        """One connection pool per engine, shared by threads (httpx clients are thread-safe)."""
        with self._client_lock:
            if self._client is None:
                import httpx

                timeout = httpx.Timeout(self.timeout_s, connect=self.connect_timeout_s)
                self._client = httpx.Client(timeout=timeout, follow_redirects=False)
            return self._client

    def close(self) -> None:
        with self._client_lock:
            if self._client is not None:
                self._client.close()
                self._client = None

    def request_body(self, messages: list[ChatMessage], decoding: DecodingOptions) -> dict[str, Any]:
        body: dict[str, Any] = {
            "model": self.model,
            "messages": messages,
            "stream": True,
            "max_tokens": decoding.max_new_tokens,
        }
        if decoding.strategy == "sample":
            body.update(temperature=decoding.temperature, top_p=decoding.top_p)
            if decoding.seed is not None:
                body["seed"] = decoding.seed
        else:
            body["temperature"] = 0
        if self.logprobs:
            body["logprobs"] = True
        return body

    def draft(self, context: DraftContext) -> DraftResult:
        started = time.perf_counter()
        decoding = resolve_decoding(self.defaults, context.options.get("decoding"))
        if decoding.strategy == "beam":
            raise EngineError("beam search is not available with the openai engine")
        if context.cancelled():
            raise DraftCancelled
        matches = retrieve(context, self.passages, self._encode)
        retrieved = time.perf_counter()
        prompt = grounded_prompt(
            context, matches, count_tokens=approximate_tokens, budget=self.context_tokens - decoding.max_new_tokens
        )
        messages = prompt.messages
        if self.mask:
            # The passages too: approved replies are agents' answers to customers and may quote them.
            messages = [ChatMessage(role=m["role"], content=mask_pii(m["content"])) for m in messages]
        body = self.request_body(messages, decoding)
        prompted = time.perf_counter()

        writer = DraftWriter(started=started, on_text=context.on_text)
        logprobs: list[float] = []
        chunks = 0
        with closing(self._stream(body, context.cancelled)) as stream:  # closes the response on any exit
            for delta, delta_logprobs in stream:
                chunks += 1
                logprobs += delta_logprobs
                writer.feed(delta)
        writer.finish()
        finished = time.perf_counter()

        def confidence(best: float | None) -> float:
            if logprobs:
                return draft_confidence(sum(logprobs) / len(logprobs), best)
            return CONFIDENCE_FACTOR * min(max(best or 0.0, 0.0), 1.0)

        return written_result(
            writer,
            prompt,
            matches,
            clock=(started, retrieved, prompted, finished),
            first_token_s=finished - started,
            confidence=confidence,
            tokens=len(logprobs) or chunks,
            prompt_tokens=approximate_tokens(messages),  # an estimate: the stream reports no usage
            model_name=self.model,
            empty_error="the model server sent an empty draft",
        )

    def summarise(self, turns: list[Turn]) -> str | None:
        budget = self.context_tokens - SUMMARY_MAX_NEW_TOKENS
        messages = summary_messages(turns, lambda m: approximate_tokens(m) <= budget)
        if self.mask:
            messages = [ChatMessage(role=m["role"], content=mask_pii(m["content"])) for m in messages]
        body = self.request_body(messages, DecodingOptions(strategy="greedy", max_new_tokens=SUMMARY_MAX_NEW_TOKENS))
        body.pop("logprobs", None)
        with closing(self._stream(body, lambda: False)) as stream:
            text = " ".join("".join(delta for delta, _ in stream).split())
        if not text:
            raise EngineError("the model server sent an empty summary")
        return text

    def _stream(
        self, body: dict[str, Any], cancelled: Callable[[], bool]
    ) -> Generator[tuple[str, list[float]], None, None]:
        """(text, log-probabilities) per event, retrying while nothing has been received."""
        import httpx

        url = f"{self.base_url}/chat/completions"
        headers = {"Accept": "text/event-stream"}
        if self.api_key:
            headers["Authorization"] = f"Bearer {self.api_key}"
        attempt = 0
        while True:
            received = False
            try:
                with self.client().stream("POST", url, json=body, headers=headers) as response:
                    self._check_status(response)
                    for item in self._events(response, cancelled):
                        received = True
                        yield item
                return
            except _Retry as retry:
                reason, delay = str(retry), retry.delay_s
            except (httpx.ConnectError, httpx.ConnectTimeout, httpx.RemoteProtocolError, httpx.ReadError) as exc:
                if received:
                    raise EngineError(f"the model server's connection broke mid-draft: {exc}") from None
                reason, delay = f"cannot reach the model server at {self.base_url}: {exc}", None
            except httpx.TimeoutException:
                raise EngineError(f"the model server sent nothing for {self.timeout_s:g}s") from None
            except httpx.HTTPError as exc:
                raise EngineError(f"talking to the model server failed: {exc}") from None
            if attempt >= self.retries:
                raise EngineError(f"{reason} (after {attempt + 1} attempts)")
            backoff = self.backoff_s * 2**attempt * (1 + random.random() / 4)  # jitter spreads workers out
            self._sleep(min(delay if delay is not None else backoff, MAX_BACKOFF_S), cancelled)
            attempt += 1

    def _check_status(self, response: httpx.Response) -> None:
        if response.status_code < 400:
            return
        response.read()
        detail = _error_detail(response)
        if response.status_code in RETRY_STATUSES:
            raise _Retry(f"the model server answered {response.status_code}{detail}", _retry_after(response))
        raise EngineError(f"the model server answered {response.status_code}{detail}")

    def _events(self, response: httpx.Response, cancelled: Callable[[], bool]) -> Iterator[tuple[str, list[float]]]:
        checked = time.monotonic()
        finished = False
        for line in response.iter_lines():
            now = time.monotonic()
            if now - checked >= self.cancel_poll_s:
                checked = now
                if cancelled():
                    raise DraftCancelled  # leaving the `with` closes the response
            if not line.startswith("data:"):
                continue  # blank separators, ": keep-alive" comments, "event:" names
            data = line[5:].strip()
            if data == "[DONE]":
                return
            try:
                event = json.loads(data)
            except json.JSONDecodeError:
                raise EngineError(f"the model server sent an event that is not JSON: {data[:200]!r}") from None
            if not isinstance(event, dict):
                continue
            if "error" in event:
                error = event["error"]
                message = error.get("message") if isinstance(error, dict) else error
                raise EngineError(f"the model server reported an error: {message}")
            choices = event.get("choices") or []
            if not choices or not isinstance(choices[0], dict):
                continue
            choice = choices[0]
            finished = finished or choice.get("finish_reason") is not None
            content = (choice.get("delta") or {}).get("content") or ""
            logprobs = [
                float(item["logprob"])
                for item in ((choice.get("logprobs") or {}).get("content") or [])
                if isinstance(item, dict) and isinstance(item.get("logprob"), int | float)
            ]
            if content or logprobs:
                yield content, logprobs
        if not finished:
            raise EngineError("the model server closed the stream before the draft was finished")

    def _sleep(self, seconds: float, cancelled: Callable[[], bool]) -> None:
        deadline = time.monotonic() + seconds
        while (left := deadline - time.monotonic()) > 0:
            if cancelled():
                raise DraftCancelled
            time.sleep(min(left, max(self.cancel_poll_s, 0.01)))


def _retry_after(response: httpx.Response) -> float | None:
    try:
        return max(float(response.headers.get("Retry-After", "")), 0.0)
    except ValueError:
        return None


def _error_detail(response: httpx.Response) -> str:
    try:
        error = response.json().get("error")
        message = error.get("message") if isinstance(error, dict) else error
    except (ValueError, AttributeError):
        message = response.text
    return f": {str(message)[:300]}" if message else ""
