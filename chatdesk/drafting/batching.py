"""One decoding loop per process that serves every concurrent draft (continuous batching).

Several Celery task threads of one worker process call `DynamicBatcher.generate` at once. Their
requests are queued; one background thread owns the model: when idle it waits `window_s` for a
burst to gather, then loops step by step — each new request is prefilled and joins the running
batch at the next step, every step runs all rows through the model at once with a KV cache and
picks one token per row, and rows leave as they finish (stop token, max_new_tokens, the model's
context), are cancelled, or fail. The batch stays full while requests keep coming.

Exactness. With `exact` (the default) a request's greedy output is the same, bit for bit, whether
it ran alone or batched with any other requests:
  * each prompt is prefilled on its own — prefilled together with others it would run through
    other matrix shapes;
  * the KV cache is "ragged": row b holds its own tokens in columns [0, length_b), and each row
    attends to its own n keys as it would alone. The usual left padding with a mask changes how
    attention's reductions are blocked, which in bfloat16 flipped near-tied tokens within a few
    dozen steps (measured). So a one-token step attends, alone or batched, over the same
    `_decode_width(n)` columns — whole blocks of 64, the extra ones masked out — in float32 (the
    model's own attention is switched to this for every one-token step, model.generate's too):
    each row's reductions then have the same shape either way. Rows of the same width share one
    call, and rows are kept in slots sorted by length so that they are neighbours — 3 or 4 calls
    per layer for 32 rows (the independence of a call's rows is checked bit for bit at start,
    falling back to one call per row);
  * every decode step runs the linear layers at one fixed batch size, `max_batch_size` rows, idle
    slots riding along as inert dummy rows. GEMM kernels are picked by shape, and a row's result
    changes with the number of rows (measured on this CPU: bfloat16 896x4864, the MLP of a 0.5B
    Qwen2, and float32 below 15 rows), but at a fixed number of rows it depends on that row alone,
    at any position, beside any neighbours (measured). The dummies cost a lone request 10–20% on
    CPU.
`exact=False` steps only the live rows and attends all rows in one masked call (about a quarter
faster per step for a tiny model on CPU); greedy output may then differ at near-ties.
An idle loop keeps its KV cache for `_KEEP_CACHE_S` so that the next burst need not allocate it.
Llama-family models prefill and step through `decode_step.LeanDecoder`, which skips transformers'
per-call machinery and gives its very bits (checked at start). Models whose attention does not take the
ragged path (sliding windows, or a self-check at start that fails) are served one request at a
time with the model's own cache instead.

Threads. The loop thread never runs callers' code: tokens go back through a per-request queue,
and the calling thread turns them into text, calls `on_text` and polls `cancelled()` (at most
every `cancel_poll_s`: it may hit a database). A cancelled request leaves the batch at the next
step and its caller gets DraftCancelled at once.
"""

from __future__ import annotations

import logging
import os
import queue
import threading
import time
from collections import deque
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any, Literal

from chatdesk.drafting.base import DraftCancelled, EngineError
from chatdesk.drafting.decode_step import Attend, LeanDecoder
from chatdesk.drafting.generation import LoadedModel, libraries

if TYPE_CHECKING:
    import torch

logger = logging.getLogger(__name__)

RAGGED_ATTENTION = "chatdesk_ragged"
_KEEP_CACHE_S = 60.0  # an idle loop keeps its KV cache this long: the next burst need not reallocate it
FinishReason = Literal["stop", "length"]


def _never() -> bool:
    return False


@dataclass(frozen=True)
class GenerationRequest:
    """What to generate. temperature 0 means greedy; stop_ids end the reply (and are not part of it)."""

    prompt_ids: tuple[int, ...]
    max_new_tokens: int
    stop_ids: frozenset[int]
    temperature: float = 0.0
    top_p: float = 1.0
    repetition_penalty: float = 1.0
    seed: int | None = None


@dataclass
class GenerationOutput:
    """token_ids exclude the stop token; text is exactly the concatenation of the pieces streamed;
    logprobs are the model's own (before temperature, top-p and penalties), one per token."""

    token_ids: list[int]
    text: str
    logprobs: list[float]
    finish_reason: FinishReason
    first_token_s: float | None

    @property
    def mean_logprob(self) -> float | None:
        return sum(self.logprobs) / len(self.logprobs) if self.logprobs else None


class _Job:
    """A request as both threads see it: the loop thread writes events, the caller reads them.

    `signal` wakes the caller on the first token, the end or an error (on every token only when
    it streams without an interval): 32 callers woken for every token would spend much of the
    loop thread's time slices just taking the GIL.
    """

    def __init__(self, request: GenerationRequest, max_new_tokens: int, *, wake_every_token: bool) -> None:
        self.request = request
        self.max_new_tokens = max_new_tokens
        self.events: queue.SimpleQueue[tuple[int, float] | str | BaseException] = queue.SimpleQueue()
        self.signal = threading.Event()
        self.cancel = threading.Event()
        self._wake_every_token = wake_every_token
        self._woken = False

    def push(self, token: int, logprob: float) -> None:
        self.events.put((token, logprob))
        if self._wake_every_token or not self._woken:
            self._woken = True
            self.signal.set()

    def end(self, outcome: str | BaseException) -> None:
        self.events.put(outcome)
        self.signal.set()


@dataclass
class _Row:
    job: _Job
    last_token: int = 0
    generated: int = 0
    seen: torch.Tensor | None = None  # vocabulary mask of tokens so far, for the repetition penalty
    generator: torch.Generator | None = None


@dataclass
class BatcherStats:
    """Counters for benchmarks and logs: steps run, rows stepped (their mean is the batch size),
    prefills, and the seconds spent in each."""

    steps: int = 0
    row_steps: int = 0
    prefills: int = 0
    failures: int = 0
    peak_batch: int = 0
    step_s: float = 0.0
    prefill_s: float = 0.0


class DynamicBatcher:
    """Serves `generate` calls from any number of threads through one decoding loop per process.

    Safe to share between threads; the loop thread starts on first use (and again in a forked
    child, which does not inherit it).
    """

    def __init__(
        self,
        loaded: LoadedModel,
        *,
        max_batch_size: int = 16,
        window_s: float = 0.01,
        cancel_poll_s: float = 0.1,
        stream_interval_s: float = 0.0,
        exact: bool = True,
    ) -> None:
        self.loaded = loaded
        self.exact = exact
        self.window_s = max(window_s, 0.0)
        self.cancel_poll_s = max(cancel_poll_s, 0.0)
        self.stream_interval_s = max(stream_interval_s, 0.0)
        self.ragged = max_batch_size > 1 and _enable_ragged(loaded)
        self.capacity = max(max_batch_size, 1) if self.ragged else 1
        self.stats = BatcherStats()
        self._lock = threading.Lock()
        self._wakeup = threading.Condition(self._lock)
        self._pending: deque[_Job] = deque()
        self._thread: threading.Thread | None = None
        self._pid = os.getpid()
        self._closed = False

    # -- the callers' side ---------------------------------------------------------------------

    def generate(
        self,
        request: GenerationRequest,
        *,
        on_text: Callable[[str], None] | None = None,
        cancelled: Callable[[], bool] = _never,
    ) -> GenerationOutput:
        """Blocks until the request is done, calling on_text(piece) in this thread as text forms.

        Raises DraftCancelled as soon as cancelled() returns True (the row is dropped and its
        partial text discarded), EngineError when generation fails.
        """
        room = self.loaded.context_tokens - len(request.prompt_ids)
        if not request.prompt_ids:
            raise EngineError("the prompt is empty")
        if room < 1:
            raise EngineError(f"the prompt ({len(request.prompt_ids)} tokens) fills the model's whole context")
        job = _Job(
            request,
            max_new_tokens=max(1, min(request.max_new_tokens, room)),
            wake_every_token=self.stream_interval_s == 0,
        )
        submitted = time.monotonic()
        self._submit(job)
        tokens: list[int] = []
        logprobs: list[float] = []
        stream = IncrementalText(self.loaded.decode)
        finish: FinishReason | None = None
        first_token_s: float | None = None
        last_check, last_flush = submitted, float("-inf")  # the first piece goes out at once
        flushed = 0
        try:
            while finish is None:
                now = time.monotonic()
                wait = self.cancel_poll_s - (now - last_check)
                if len(tokens) > flushed:
                    wait = min(wait, self.stream_interval_s - (now - last_flush))
                signalled = job.signal.wait(timeout=max(wait, 0.001))
                job.signal.clear()  # before draining: a token put after the drain sets it again
                event = _next_event(job)
                if event is None and not signalled:
                    self._check_alive()
                while event is not None:
                    if isinstance(event, tuple):
                        tokens.append(event[0])
                        logprobs.append(event[1])
                        if first_token_s is None:
                            first_token_s = time.monotonic() - submitted
                    elif isinstance(event, BaseException):
                        raise event
                    else:
                        finish = "stop" if event == "stop" else "length"
                    event = _next_event(job)
                now = time.monotonic()
                if now - last_check >= self.cancel_poll_s:
                    last_check = now
                    if cancelled():
                        raise DraftCancelled
                due = finish is not None or now - last_flush >= self.stream_interval_s
                if len(tokens) > flushed and due:
                    piece = stream.update(tokens, final=finish is not None)
                    flushed, last_flush = len(tokens), now
                    if piece and on_text is not None:
                        on_text(piece)
        except BaseException:
            job.cancel.set()  # whatever happened here, the loop stops spending steps on it
            raise
        return GenerationOutput(
            token_ids=tokens,
            text=stream.finish(tokens),
            logprobs=logprobs,
            finish_reason=finish,
            first_token_s=first_token_s,
        )

    def close(self) -> None:
        """Stops the loop thread; requests still waiting or running fail with EngineError."""
        with self._wakeup:
            self._closed = True
            self._wakeup.notify_all()
        if self._thread is not None and self._thread is not threading.current_thread():
            self._thread.join(timeout=10)

    def _submit(self, job: _Job) -> None:
        with self._wakeup:
            if self._closed:
                raise EngineError("the generation loop is closed")
            if self._pid != os.getpid():
                # A forked child inherits neither the thread nor the parent's queue contents.
                self._pid, self._thread, self._pending = os.getpid(), None, deque()
            if self._thread is None or not self._thread.is_alive():
                self._thread = threading.Thread(target=self._run, name="draft-batcher", daemon=True)
                self._thread.start()
            self._pending.append(job)
            self._wakeup.notify()

    def _check_alive(self) -> None:
        thread = self._thread
        if thread is None or not thread.is_alive():
            raise EngineError("the generation loop stopped")

    # -- the loop thread -----------------------------------------------------------------------

    def _run(self) -> None:
        torch, _ = libraries()
        kv: _KV | None = None
        rows: list[_Row] = []
        with torch.inference_mode():
            while True:
                with self._wakeup:
                    while not self._pending and not rows and not self._closed:
                        if kv is None:
                            self._wakeup.wait()
                        elif not self._wakeup.wait(_KEEP_CACHE_S):
                            kv = None  # give the cache's memory back once idle for a while
                    if not rows and not self._closed and self.window_s:
                        deadline = time.monotonic() + self.window_s
                        while len(self._pending) < self.capacity and not self._closed:
                            left = deadline - time.monotonic()
                            if left <= 0:
                                break
                            self._wakeup.wait(left)
                    if self._closed:
                        for job in [*self._pending, *(row.job for row in rows)]:
                            job.end(EngineError("the generation loop was closed"))
                        self._pending.clear()
                        return
                    admitted = [
                        self._pending.popleft() for _ in range(min(len(self._pending), self.capacity - len(rows)))
                    ]
                try:
                    while admitted:
                        job = admitted.pop(0)
                        if job.cancel.is_set():
                            continue
                        if kv is None:
                            kv = (
                                _RaggedKV(self.loaded, self.capacity, exact=self.exact)
                                if self.ragged
                                else _SingleKV(self.loaded)
                            )
                        try:
                            row = self._prefill(kv, job, len(rows))
                        except Exception as exc:  # this request's own problem: the batch goes on
                            logger.exception("draft prefill failed")
                            self.stats.failures += 1
                            kv.release(len(rows))
                            job.end(EngineError(f"generation failed: {type(exc).__name__}: {exc}"))
                            continue
                        if row is not None:
                            rows.append(row)
                    if rows and kv is not None:
                        self._step(kv, rows)
                except Exception as exc:
                    logger.exception("draft generation failed")
                    self.stats.failures += 1
                    error = EngineError(f"generation failed: {type(exc).__name__}: {exc}")
                    for job in [*admitted, *(row.job for row in rows)]:
                        job.end(error)
                    rows, kv = [], None

    def _prefill(self, kv: _KV, job: _Job, slot: int) -> _Row | None:
        torch, _ = libraries()
        request = job.request
        started = time.perf_counter()
        logits = kv.prefill(slot, request.prompt_ids, job.max_new_tokens)
        self.stats.prefills += 1
        self.stats.prefill_s += time.perf_counter() - started
        row = _Row(job=job)
        if request.repetition_penalty != 1.0:
            row.seen = torch.zeros(logits.shape[-1], dtype=torch.bool, device=logits.device)
            row.seen[torch.tensor(request.prompt_ids, device=logits.device)] = True
        if request.temperature > 0:
            row.generator = torch.Generator(device=logits.device)
            if request.seed is not None:
                row.generator.manual_seed(request.seed)
            else:
                row.generator.seed()
        token, logprob = self._choose([row], logits[None])[0]
        if not self._emit(row, token, logprob):
            kv.release(slot)
            return None
        kv.admit(slot)
        return row

    def _step(self, kv: _KV, rows: list[_Row]) -> None:
        for index in reversed(range(len(rows))):
            if rows[index].job.cancel.is_set():
                self._remove(kv, rows, index)
        if not rows:
            return
        started = time.perf_counter()
        logits, slots = kv.step([row.last_token for row in rows])
        self.stats.step_s += time.perf_counter() - started
        self.stats.steps += 1
        self.stats.row_steps += len(rows)
        self.stats.peak_batch = max(self.stats.peak_batch, len(rows))
        chosen = self._choose(rows, logits, slots)
        finished = [i for i, (row, (token, logprob)) in enumerate(zip(rows, chosen, strict=True))
                    if not self._emit(row, token, logprob)]  # fmt: skip
        for index in reversed(finished):
            self._remove(kv, rows, index)

    def _remove(self, kv: _KV, rows: list[_Row], index: int) -> None:
        last = len(rows) - 1
        kv.remove(index)  # the last row moves into the freed slot
        rows[index] = rows[last]
        rows.pop()

    def _emit(self, row: _Row, token: int, logprob: float) -> bool:
        """Sends the token to the caller; False when the row is finished."""
        job = row.job
        if token in job.request.stop_ids:
            job.end("stop")
            return False
        job.push(token, logprob)
        row.last_token = token
        row.generated += 1
        if row.seen is not None:
            row.seen[token] = True
        if row.generated >= job.max_new_tokens:
            job.end("length")
            return False
        return True

    def _choose(
        self, rows: Sequence[_Row], logits: torch.Tensor, slots: list[int] | None = None
    ) -> list[tuple[int, float]]:
        """The next token of each row and its log-probability under the model; row i's logits are
        logits[slots[i]] (logits[i] without slots)."""
        torch, _ = libraries()
        if slots is not None and 2 * len(slots) <= logits.shape[0]:  # mostly dummies: drop them
            logits, slots = logits[torch.tensor(slots, device=logits.device)], None
        where = slots if slots is not None else range(len(rows))
        scores = logits.to(torch.float32, copy=True)
        top, chosen = scores.max(dim=-1)  # the first maximum, as argmax (and generate) picks
        picks: list[tuple[int, int, float]] = []  # (row, token, score) of rows that do not take the top
        for index, row in enumerate(rows):
            if row.seen is not None or row.generator is not None:
                token = _pick(row, scores[where[index]])
                picks.append((index, token, float(scores[where[index], token])))
        # log softmax at the chosen token: (score - top) - log(sum(exp(scores - top)))
        log_total = scores.sub_(top[:, None]).exp_().sum(dim=-1).log_()
        if slots is not None:
            index_tensor = torch.tensor(slots, device=logits.device)
            chosen, top, log_total = chosen[index_tensor], top[index_tensor], log_total[index_tensor]
        tokens: list[int] = chosen.tolist()
        logprobs: list[float] = log_total.neg_().tolist()
        if picks:
            tops = top.tolist()
            for index, token, score in picks:
                tokens[index] = token
                logprobs[index] += score - tops[index]
        return list(zip(tokens, logprobs, strict=True))


def _next_event(job: _Job) -> tuple[int, float] | str | BaseException | None:
    try:
        return job.events.get_nowait()
    except queue.Empty:
        return None


def _pick(row: _Row, scores: torch.Tensor) -> int:
    """Repetition penalty (as transformers applies it), then greedy or temperature + top-p sampling."""
    torch, _ = libraries()
    request = row.job.request
    if row.seen is not None:
        penalty = request.repetition_penalty
        penalised = torch.where(scores < 0, scores * penalty, scores / penalty)
        scores = torch.where(row.seen, penalised, scores)
    if row.generator is None:
        return int(scores.argmax())
    probs = torch.softmax(scores / request.temperature, dim=-1)
    if request.top_p < 1.0:
        ordered, order = probs.sort(descending=True)
        # Keep the smallest set of tokens whose probability reaches top_p (at least one).
        outside = ordered.cumsum(-1) - ordered > request.top_p
        ordered[outside] = 0.0
        probs = torch.zeros_like(probs).scatter_(0, order, ordered)
    return int(torch.multinomial(probs, 1, generator=row.generator))


class IncrementalText:
    """Token ids to text piece by piece, never emitting half a character.

    Decodes a short window of recent tokens and emits what it adds to the window's earlier
    text (so SentencePiece word starts and multi-byte characters split across tokens come out
    right); an incomplete UTF-8 sequence (U+FFFD at the end) waits for its next token.
    """

    def __init__(self, decode: Callable[[Sequence[int]], str]) -> None:
        self._decode = decode
        self._prefix = 0  # window start
        self._read = 0  # tokens already turned into text
        self.text = ""

    def update(self, ids: Sequence[int], *, final: bool = False) -> str:
        before = self._decode(ids[self._prefix : self._read])
        after = self._decode(ids[self._prefix :])
        if len(after) <= len(before) or (after.endswith("\ufffd") and not final):
            return ""
        piece = after[len(before) :]
        self._prefix, self._read = self._read, len(ids)
        self.text += piece
        return piece

    def finish(self, ids: Sequence[int]) -> str:
        """All the text: what was emitted and whatever was still held back."""
        self.update(ids, final=True)
        return self.text


# ---------------------------------------------------------------------------------------------
# KV caches


class _KV:
    """A batch's KV cache: prefill a row into a slot, admit it, step all rows, remove one."""

    def prefill(self, slot: int, prompt: Sequence[int], max_new_tokens: int) -> torch.Tensor:
        raise NotImplementedError

    def admit(self, slot: int) -> None:
        raise NotImplementedError

    def release(self, slot: int) -> None:
        """Forget a prefilled slot that was never admitted."""

    def step(self, tokens: list[int]) -> tuple[torch.Tensor, list[int] | None]:
        """Logits [n, vocabulary] and, when row i's are not logits[i], the index of each row's."""
        raise NotImplementedError

    def remove(self, index: int) -> None:
        raise NotImplementedError


class _SingleKV(_KV):
    """One row at a time with the model's own cache: for models the ragged path does not fit."""

    def __init__(self, loaded: LoadedModel) -> None:
        self.loaded = loaded
        self.cache: Any = None

    def prefill(self, slot: int, prompt: Sequence[int], max_new_tokens: int) -> torch.Tensor:
        torch, transformers = libraries()
        self.cache = transformers.DynamicCache(config=self.loaded.model.config)
        ids = torch.tensor([list(prompt)], device=self.loaded.device)
        out = self.loaded.model(input_ids=ids, cache=self.cache, use_cache=True, logits_to_keep=1)
        return out.logits[0, -1]

    def admit(self, slot: int) -> None:
        pass

    def release(self, slot: int) -> None:
        self.cache = None

    def step(self, tokens: list[int]) -> tuple[torch.Tensor, list[int] | None]:
        torch, _ = libraries()
        ids = torch.tensor([tokens], device=self.loaded.device).T
        out = self.loaded.model(input_ids=ids, cache=self.cache, use_cache=True)
        return out.logits[:, -1], None

    def remove(self, index: int) -> None:
        self.cache = None


class _RaggedState:
    """Shared by the cache layers: which slot is being prefilled, the slots' lengths (0: free), and
    what the step under way writes and reads."""

    def __init__(self, capacity: int, device: torch.device) -> None:
        torch, _ = libraries()
        self.capacity = capacity
        self.device = device
        self.columns = 0  # columns the slabs must hold
        self.stepped = 0  # rows a decode step runs: the live rows, or every slot with dummies
        self.read_width = 0  # columns a decode step hands to attention
        self.prefill_slot: int | None = None
        self.lengths: list[int] = [0] * capacity
        self.lengths_tensor = torch.zeros(capacity, dtype=torch.long, device=device)
        self._write_index: dict[tuple[int, int], Any] = {}  # tensors, by (heads, columns)

    def set_lengths(self) -> None:
        torch, _ = libraries()
        self.lengths_tensor = torch.tensor(self.lengths, dtype=torch.long, device=self.device)
        self._write_index.clear()

    def write_index(self, heads: int, columns: int) -> torch.Tensor:
        """Where each stepped row's new key lands in a slab [capacity, heads, columns, dim] seen as
        [capacity * heads * columns, dim]: row b, head h at column length_b. Shared by the layers."""
        index = self._write_index.get((heads, columns))
        if index is None:
            torch, _ = libraries()
            rows = self.stepped
            base = torch.arange(rows * heads, device=self.device).view(rows, heads) * columns
            index = (base + self.lengths_tensor[:rows, None]).view(-1)
            self._write_index[(heads, columns)] = index
        return index


# A decode step attends over whole blocks of this many key columns (see _decode_width): rows whose
# lengths share a block count share one attention call. On this CPU, for 32 rows of 54 to 234
# tokens, 32, 64 and 128 columns gave steps within noise of each other (bench/generation.py).
_DECODE_BLOCK = 64
if TYPE_CHECKING:
    # A decode step's attention calls, (first slot, end slot, width), and the rows' additive masks.
    _Plan = tuple[list[tuple[int, int, int]], torch.Tensor]


class _RaggedKV(_KV):
    """Rows in slots of slabs sized for `capacity` rows, row b's tokens in columns [0, length_b).

    With `exact`, every step runs all `capacity` slots (free ones as inert dummies) so the linear
    layers always see the same batch size, whose kernels then give each row the same bits whatever
    else is in the batch; the rows are kept in slots sorted by length, longest first, with free
    slots between them, so rows whose attention widths are the same are neighbours and attend in
    one call (see `_attention_plan`). Without it, rows sit in slots [0, batch) and attend in one
    masked call. Prompts and steps go through the model's lean forward where it has one
    (decode_step.py).
    """

    def __init__(
        self,
        loaded: LoadedModel,
        capacity: int,
        *,
        exact: bool = True,
        lean: LeanDecoder | Literal["auto"] | None = "auto",
    ) -> None:
        self.loaded = loaded
        self.exact = exact
        # transformers' forward when lean is None (and while the lean step is being checked)
        self.lean = _lean_decoder(loaded, capacity) if lean == "auto" else lean
        self.grouped = bool(getattr(loaded.model, "_chatdesk_grouped", False))
        self.state = _RaggedState(capacity, loaded.device)
        self.cache = _ragged_cache(self.state, _layer_count(loaded.model))
        self.order: list[int] = []  # the slot of each admitted row, in the batcher's row order
        self.pending: int | None = None  # the slot prefilled and not yet admitted

    def prefill(self, slot: int, prompt: Sequence[int], max_new_tokens: int) -> torch.Tensor:
        torch, _ = libraries()
        state = self.state
        assert slot == len(self.order) and self.pending is None, "rows are admitted one at a time, in order"
        target = self._place(len(prompt)) if self.exact else slot
        state.columns = max(state.columns, _decode_width(len(prompt) + max_new_tokens))
        state.prefill_slot = target
        try:
            ids = torch.tensor([list(prompt)], device=self.loaded.device)
            if self.lean is not None:
                logits = self.lean.prefill(ids, self.cache, _step_attention(None, None))
            else:
                out = self.loaded.model(input_ids=ids, cache=self.cache, use_cache=True, logits_to_keep=1)
                logits = out.logits[0, -1]
        finally:
            state.prefill_slot = None
        state.lengths[target] = len(prompt)
        state.set_lengths()
        self.pending = target
        return logits

    def admit(self, slot: int) -> None:
        assert slot == len(self.order) and self.pending is not None, "rows are admitted in order"
        self.order.append(self.pending)
        self.pending = None

    def release(self, slot: int) -> None:
        if self.pending is not None:
            self.state.lengths[self.pending] = 0
            self.state.set_lengths()
            self.pending = None

    def step(self, tokens: list[int]) -> tuple[torch.Tensor, list[int] | None]:
        torch, _ = libraries()
        state = self.state
        rows = len(tokens)
        lengths = state.lengths
        plan: _Plan | None = None
        if self.exact:
            # Dummy rows (free slots) feed the pad token at position 0; their key/value land in
            # column 0 of their own slot, which a prefill overwrites, and nothing reads their output.
            stepped = state.capacity
            ids_list = [self.loaded.pad_id] * stepped
            for token, slot in zip(tokens, self.order, strict=True):
                ids_list[slot] = token
            plan = _attention_plan([n + 1 if n else 0 for n in lengths], self.grouped, state.device)
            state.read_width = max(width for _, _, width in plan[0])
        else:
            stepped = rows
            ids_list = tokens
            state.read_width = max(lengths[:rows]) + 1
        state.stepped = stepped
        state._write_index.clear()
        ids = torch.tensor(ids_list, device=self.loaded.device)[:, None]
        positions = state.lengths_tensor[:stepped, None].clone()
        ragged_lengths = None if plan is not None else [n + 1 for n in lengths[:rows]]
        if self.lean is not None:
            logits = self.lean.step(ids, positions, self.cache, _step_attention(plan, ragged_lengths))
        else:
            out = self.loaded.model(
                input_ids=ids,
                position_ids=positions,
                cache=self.cache,
                use_cache=True,
                ragged_lengths=ragged_lengths,
                ragged_plan=plan,
            )
            logits = out.logits[:, -1]
        for slot in self.order:
            lengths[slot] += 1
        state.set_lengths()
        return logits, list(self.order) if self.exact else None

    def remove(self, index: int) -> None:
        state = self.state
        last = len(self.order) - 1
        if self.exact:  # the slot just becomes free; the last row takes the index
            state.lengths[self.order[index]] = 0
            self.order[index] = self.order[last]
        else:  # the last row moves into the freed slot
            if index != last:
                self._move(last, index)
            state.lengths[last] = 0
        self.order.pop()
        state.set_lengths()

    # -- slots sorted by length

    def _place(self, length: int) -> int:
        """A free slot for a row of `length` tokens that keeps the rows sorted by length (longest
        first), moving the fewest rows to the nearest free slot when the gap has none."""
        lengths = self.state.lengths
        capacity = len(lengths)
        after = max((s for s in range(capacity) if lengths[s] > length), default=-1)
        before = min((s for s in range(after + 1, capacity) if 0 < lengths[s] < length), default=capacity)
        free = [s for s in range(after + 1, before) if not lengths[s]]
        if free:  # the last one (fewest moves later, in a simulation of staggered arrivals)
            return free[-1]
        left = max((s for s in range(after + 1) if not lengths[s]), default=None)
        right = min((s for s in range(before, capacity) if not lengths[s]), default=None)
        assert left is not None or right is not None, "no free slot"
        if right is None or (left is not None and after - left <= right - before):
            assert left is not None
            for s in range(left + 1, after + 1):
                self._move(s, s - 1)
            return after
        for s in range(right - 1, before - 1, -1):
            self._move(s, s + 1)
        return before

    def _move(self, source: int, target: int) -> None:
        state = self.state
        length = state.lengths[source]
        for layer in self.cache.layers:
            layer.move_row(source, target, length)
        state.lengths[target], state.lengths[source] = length, 0
        if source in self.order:
            self.order[self.order.index(source)] = target
        state.set_lengths()


def _decode_width(attended: int) -> int:
    """The key columns a decode step computes attention over for a row attending to `attended`
    keys, alone or batched: whole blocks of _DECODE_BLOCK, at least one column masked out."""
    return (attended // _DECODE_BLOCK + 1) * _DECODE_BLOCK


def _attention_plan(attended: list[int], grouped: bool, device: torch.device) -> _Plan:
    """The attention calls of an exact decode step, from each slot's attended length (0: free).

    Bit-exactness: a row's attention runs over `_decode_width(n)` columns, the last ones masked
    out, whether it is alone (`_decode_attention_alone`) or batched, so each of its reductions has
    the very same shape either way. Neighbouring slots whose rows have the same width share one
    call (the kernels treat the rows of a batch independently: checked at start by
    _grouping_is_exact; `grouped` False gives every row its own call). Free slots inside a run
    attend to their column 0 only. Returns ([(first slot, end slot, width)], masks [slots, columns]).
    """
    calls: list[tuple[int, int, int]] = []
    slots = len(attended)
    s = 0
    while s < slots:
        if not attended[s]:
            s += 1
            continue
        width, end, t = _decode_width(attended[s]), s + 1, s + 1
        while grouped and t < slots:
            if attended[t]:
                if _decode_width(attended[t]) != width:
                    break
                end = t + 1
            t += 1
        calls.append((s, end, width))
        s = t if grouped else s + 1
    columns = max((width for _, _, width in calls), default=1)
    return calls, _key_mask([n or 1 for n in attended], columns, device)


def _key_mask(attended: list[int], columns: int, device: torch.device) -> torch.Tensor:
    """Additive float32 mask [rows, columns]: 0 on each row's first n columns, -inf after."""
    torch, _ = libraries()
    limits = torch.tensor(attended, device=device)
    keep = torch.arange(columns, device=device)[None, :] < limits[:, None]
    return torch.zeros(keep.shape, dtype=torch.float32, device=device).masked_fill_(~keep, float("-inf"))


def _layer_count(model: Any) -> int:
    config = model.config.get_text_config() if hasattr(model.config, "get_text_config") else model.config
    return int(config.num_hidden_layers)


_ragged_classes: tuple[type, type] | None = None


def _ragged_cache(state: _RaggedState, layers: int) -> Any:
    global _ragged_classes
    if _ragged_classes is None:
        _ragged_classes = _define_ragged_classes()
    cache_class, layer_class = _ragged_classes
    return cache_class(layers=[layer_class(state) for _ in range(layers)])


def _define_ragged_classes() -> tuple[type, type]:
    """The cache classes subclass transformers' own, so they are defined after its import."""
    float32 = libraries()[0].float32
    from transformers.cache_utils import Cache, DynamicLayer

    class RaggedLayer(DynamicLayer):  # type: ignore[no-untyped-call]
        """Slabs [capacity, kv_heads, columns, head_dim]; row b's tokens sit in columns [0, length_b).

        Slabs are float32 whatever the model's dtype (an exact upcast): decode steps attend in
        float32, as `_decode_attention_alone` does. They start zeroed and only ever receive keys
        and values the model computed, so columns a row does not own hold finite numbers: masked
        out, they add exact zeros.
        """

        def __init__(self, state: _RaggedState) -> None:
            super().__init__()  # type: ignore[no-untyped-call]
            self.state = state
            self.key_slab: torch.Tensor | None = None
            self.value_slab: torch.Tensor | None = None

        def lazy_initialization(self, key_states: torch.Tensor, value_states: torch.Tensor) -> None:
            self.device = key_states.device
            self.is_initialized = True

        def _reserve(self, like: torch.Tensor) -> None:
            state = self.state
            have = 0 if self.key_slab is None else self.key_slab.shape[2]
            if have >= state.columns:
                return
            columns = -(-max(state.columns, 2 * have) // 128) * 128  # whole 128s: fewer regrowths
            shape = (state.capacity, like.shape[1], columns, like.shape[3])
            keys, values = like.new_zeros(shape, dtype=float32), like.new_zeros(shape, dtype=float32)
            if self.key_slab is not None and self.value_slab is not None:
                keys[:, :, :have] = self.key_slab
                values[:, :, :have] = self.value_slab
            self.key_slab, self.value_slab = keys, values

        def update(
            self, key_states: torch.Tensor, value_states: torch.Tensor, *args: Any, **kwargs: Any
        ) -> tuple[torch.Tensor, torch.Tensor]:
            if not self.is_initialized:
                self.lazy_initialization(key_states, value_states)
            self._reserve(key_states)
            assert self.key_slab is not None and self.value_slab is not None
            state = self.state
            if state.prefill_slot is not None:  # one row, columns [0, n): attend to exactly those
                length = key_states.shape[2]
                self.key_slab[state.prefill_slot, :, :length] = key_states[0]
                self.value_slab[state.prefill_slot, :, :length] = value_states[0]
                return key_states, value_states
            rows = state.stepped
            _, heads, columns, dim = self.key_slab.shape
            index = state.write_index(heads, columns)
            self.key_slab.view(-1, dim).index_copy_(0, index, key_states.reshape(rows * heads, dim).float())
            self.value_slab.view(-1, dim).index_copy_(0, index, value_states.reshape(rows * heads, dim).float())
            width = state.read_width
            return self.key_slab[:rows, :, :width], self.value_slab[:rows, :, :width]

        def move_row(self, source: int, target: int, length: int | None = None) -> None:
            if self.key_slab is not None and self.value_slab is not None:
                end = self.key_slab.shape[2] if length is None else length
                self.key_slab[target, :, :end] = self.key_slab[source, :, :end]
                self.value_slab[target, :, :end] = self.value_slab[source, :, :end]

        def get_seq_length(self) -> int:
            if self.state.prefill_slot is not None:
                return 0
            return max(self.state.lengths, default=0)

        def get_max_length(self) -> int:
            return -1

    class RaggedCache(Cache):
        pass

    return RaggedCache, RaggedLayer


def _ragged_attention(
    module: Any,
    query: torch.Tensor,
    key: torch.Tensor,
    value: torch.Tensor,
    attention_mask: torch.Tensor | None,
    ragged_lengths: list[int] | None = None,
    ragged_plan: _Plan | None = None,
    **kwargs: Any,
) -> tuple[torch.Tensor, None]:
    """The model's attention once the batcher has switched it: in the batcher's decode steps the
    exact plan's calls (`_attention_plan`) or, with lengths, one masked call for all rows (faster;
    the bits then depend on the longest row); any other one-token step (model.generate, beam
    search) `_decode_attention_alone`, so that a request gives the same bits alone and batched;
    transformers' SDPA attention for the rest (prompts)."""
    scale = kwargs.get("scaling") or query.shape[-1] ** -0.5
    if ragged_plan is not None:
        output = _attend_plan(query, key, value, ragged_plan, scale)
        return output.transpose(1, 2).contiguous(), None
    if ragged_lengths is not None:
        masked = _decode_attend(query, key, value, _key_mask(ragged_lengths, key.shape[2], key.device), scale)
        return masked.transpose(1, 2).contiguous(), None
    unpadded = attention_mask is None or bool(attention_mask.all())
    if query.shape[2] == 1 and unpadded and not kwargs.get("softcap") and kwargs.get("s_aux") is None:
        output = _decode_attention_alone(query, key, value, scale)
        return output.transpose(1, 2).contiguous(), None
    return _sdpa_attention()(module, query, key, value, attention_mask, **kwargs)


def _step_attention(plan: _Plan | None, lengths: list[int] | None) -> Attend:
    """Attention for the lean forward, as `_ragged_attention` computes it: a decode step's (plan or
    lengths), or a prompt's (neither)."""

    def attend(module: Any, query: torch.Tensor, key: torch.Tensor, value: torch.Tensor) -> torch.Tensor:
        kwargs = {"ragged_lengths": lengths, "ragged_plan": plan, "scaling": module.scaling}
        return _ragged_attention(module, query, key, value, None, **kwargs)[0]

    return attend


def _decode_attend(
    query: torch.Tensor, key: torch.Tensor, value: torch.Tensor, mask: torch.Tensor, scale: float
) -> torch.Tensor:
    """One-token attention in float32: query [rows, heads, 1, dim] (any dtype), keys and values
    [rows, kv_heads, width, dim] (float32), additive mask [rows, width]; returns [rows, heads, 1,
    dim] in the query's dtype. Float32 because the CPU attention kernel is several times faster
    in it than in bfloat16 for one query row (measured here)."""
    torch, _ = libraries()
    attend = torch.nn.functional.scaled_dot_product_attention
    gqa = key.shape[1] != query.shape[1]
    output = attend(query.float(), key, value, attn_mask=mask[:, None, None, :], scale=scale, enable_gqa=gqa)
    return output.to(query.dtype)


def _decode_attention_alone(query: torch.Tensor, key: torch.Tensor, value: torch.Tensor, scale: float) -> torch.Tensor:
    """A one-token step of rows that each attend to all n keys, computed the way the batcher
    computes a row of that length (over `_decode_width(n)` zero-padded columns)."""
    torch, _ = libraries()
    n = key.shape[2]
    width = _decode_width(n)
    padded_key = key.new_zeros((*key.shape[:2], width, key.shape[3]), dtype=torch.float32)
    padded_value = padded_key.clone()
    padded_key[:, :, :n] = key
    padded_value[:, :, :n] = value
    mask = _key_mask([n], width, key.device).expand(key.shape[0], width)
    return _decode_attend(query, padded_key, padded_value, mask, scale)


def _attend_plan(
    query: torch.Tensor, key: torch.Tensor, value: torch.Tensor, plan: _Plan, scale: float
) -> torch.Tensor:
    """Runs the calls of `_attention_plan`; rows no call covers (free slots) get zeros."""
    calls, masks = plan
    output = query.new_zeros((query.shape[0], query.shape[1], query.shape[2], value.shape[-1]))
    for start, end, width in calls:
        output[start:end] = _decode_attend(
            query[start:end], key[start:end, :, :width], value[start:end, :, :width], masks[start:end, :width], scale
        )
    return output


_sdpa_forward: Callable[..., Any] | None = None


def _sdpa_attention() -> Callable[..., Any]:
    global _sdpa_forward
    if _sdpa_forward is None:
        from transformers.integrations.sdpa_attention import sdpa_attention_forward

        _sdpa_forward = sdpa_attention_forward
    return _sdpa_forward


_enable_lock = threading.Lock()


def _enable_ragged(loaded: LoadedModel) -> bool:
    """Switches the model to ragged attention if it fits and passes a self-check; False otherwise."""
    torch, transformers = libraries()
    model = loaded.model
    with _enable_lock:
        if getattr(model, "_chatdesk_ragged", None) is not None:
            return bool(model._chatdesk_ragged)
        config = model.config.get_text_config() if hasattr(model.config, "get_text_config") else model.config
        layer_types = set(getattr(config, "layer_types", None) or ["full_attention"])
        sliding = getattr(config, "sliding_window", None) and getattr(config, "use_sliding_window", True)
        ok = config._attn_implementation == "sdpa" and layer_types == {"full_attention"} and not sliding
        if ok:
            from transformers.masking_utils import sdpa_mask

            _sdpa_attention()
            transformers.AttentionInterface.register(RAGGED_ATTENTION, _ragged_attention)
            transformers.AttentionMaskInterface.register(RAGGED_ATTENTION, sdpa_mask)
            try:
                with torch.inference_mode():
                    model._chatdesk_grouped = _grouping_is_exact(loaded)
                model.set_attn_implementation(RAGGED_ATTENTION)
                with torch.inference_mode():
                    ok = _ragged_self_check(loaded)
            except Exception:
                logger.exception("ragged batching self-check failed")
                ok = False
            if not ok:
                model.set_attn_implementation("sdpa")
        if not ok:
            logger.warning("%s cannot be batched exactly; drafts will run one at a time", loaded.spec.model)
        model._chatdesk_ragged = ok
        return ok


def _grouping_is_exact(loaded: LoadedModel) -> bool:
    """Whether rows attending in one grouped call get the very bits each gets alone
    (`_decode_attention_alone` on its own keys), measured on random queries and keys of the model's
    shape, rows of many lengths, free slots between them."""
    torch, _ = libraries()
    model = loaded.model
    config = model.config.get_text_config() if hasattr(model.config, "get_text_config") else model.config
    heads = int(config.num_attention_heads)
    kv_heads = int(getattr(config, "num_key_value_heads", None) or heads)
    head_dim = int(getattr(config, "head_dim", None) or config.hidden_size // heads)
    # Longest first as the batcher keeps them, with free slots (0) between, across blocks.
    attended = sorted([*range(1, 49), 63, 64, 65, 127, 129, 255, 256, 300, 511, 512, 513, 530], reverse=True)
    for slot in (3, 10, 30, 31, 45):
        attended.insert(slot, 0)
    generator = torch.Generator().manual_seed(0)
    columns = _decode_width(max(attended))
    device, dtype = loaded.device, loaded.dtype
    query = torch.randn((len(attended), heads, 1, head_dim), generator=generator).to(device, dtype)
    key = torch.randn((len(attended), kv_heads, columns, head_dim), generator=generator).to(device, dtype)
    value = torch.randn((len(attended), kv_heads, columns, head_dim), generator=generator).to(device, dtype)
    scale = head_dim**-0.5
    grouped = _attend_plan(query, key.float(), value.float(), _attention_plan(attended, True, device), scale)
    for row, n in enumerate(attended):
        if n:
            alone = _decode_attention_alone(
                query[row : row + 1], key[row : row + 1, :, :n], value[row : row + 1, :, :n], scale
            )
            if not torch.equal(grouped[row], alone[0]):
                return False
    return True


def _lean_decoder(loaded: LoadedModel, rows: int) -> LeanDecoder | None:
    """The model's lean forward for `rows` rows (see decode_step), once it has given the very bits
    transformers' forward gives on two prompts and two steps of them beside dummies; else None."""
    model = loaded.model
    with _enable_lock:
        decoders: dict[int, LeanDecoder | None] = getattr(model, "_chatdesk_lean", None) or {}
        if rows not in decoders:
            candidate = LeanDecoder.for_model(model, rows)
            if candidate is not None:
                torch, _ = libraries()
                with torch.inference_mode():
                    if not _steps_agree(loaded, rows, candidate):
                        logger.warning(
                            "%s: the lean decode step differs; using transformers' forward", loaded.spec.model
                        )
                        candidate = None
            decoders[rows] = candidate
            model._chatdesk_lean = decoders
        return decoders[rows]


def _probe_prompts(loaded: LoadedModel, lengths: tuple[int, ...]) -> list[list[int]]:
    """Fixed token ids for the self-checks, one prompt of each length."""
    vocabulary = int(loaded.model.get_output_embeddings().weight.shape[0])
    return [[(7 * i + 3) % vocabulary for i in range(n)] for n in lengths]


def _steps_agree(loaded: LoadedModel, rows: int, lean: LeanDecoder) -> bool:
    torch, _ = libraries()
    prompts = _probe_prompts(loaded, (1, 3, 70))
    batches = [_RaggedKV(loaded, max(rows, 4), lean=None), _RaggedKV(loaded, max(rows, 4), lean=lean)]
    for slot, prompt in enumerate(prompts):
        reference, candidate = (kv.prefill(slot, prompt, 4) for kv in batches)
        if not torch.equal(reference, candidate):
            return False
        for kv in batches:
            kv.admit(slot)
    for token in (5, 9):
        (reference, _), (candidate, _) = (kv.step([token] * len(prompts)) for kv in batches)
        if not torch.equal(reference, candidate):
            return False
    return True


def _ragged_self_check(loaded: LoadedModel) -> bool:
    """Two prompts of different lengths stepped together must give what a plain forward gives."""
    torch, _ = libraries()
    prompts = _probe_prompts(loaded, (3, 8))
    kv = _RaggedKV(loaded, 3, lean=None)  # one idle slot: a dummy row rides along
    for slot, prompt in enumerate(prompts):
        kv.prefill(slot, prompt, 2)
        kv.admit(slot)
    logits, slots = kv.step([prompt[0] for prompt in prompts])
    stepped = logits.float()[slots if slots is not None else slice(None)]
    for row, prompt in enumerate(prompts):
        ids = torch.tensor([[*prompt, prompt[0]]], device=loaded.device)
        plain = loaded.model(input_ids=ids, use_cache=False).logits[0, -1].float()
        tolerance = 5e-2 * float(plain.abs().max()) + 1e-3  # bfloat16: a few units in the last place
        if not torch.allclose(stepped[row], plain, rtol=0, atol=tolerance):
            return False
    return True
