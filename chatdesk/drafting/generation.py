"""Causal language models for drafting: offline loading once per process, decoding options, beam search.

Loading. `load_model(ModelSpec(...))` reads a model folder, or a model name already in the local
Hugging Face cache, never downloading (`local_files_only=True`). The tokenizer must have a chat
template. Device: CUDA when available unless told otherwise. Precision ("auto"): bfloat16 on CUDA
(float16 where bfloat16 is missing); on CPU bfloat16 when the CPU computes it natively (AVX512-BF16
or AMX; about 2x faster than float32 for a 0.5B model on such a CPU), else float32. A LoRA adapter
folder, if given, is applied with `peft` and merged into the weights, so it costs nothing per token.
Models are cached per process and spec; torch and transformers are imported under one lock, since
two threads importing transformers lazily at once fail.

Diverse beam search. transformers 5 moved group ("diverse") beam search to a Hub repository that
cannot be downloaded here, so `beam_search` does it itself: the beams are split into groups run
one after the other with ordinary beam search; while group g runs, a logits processor subtracts
`diversity_penalty` x (how many beams of earlier groups chose token t at the same step) from the
log-probability of t — the Hamming diversity of Vijayakumar et al. (2016), as transformers 4 did,
except that groups run sequentially instead of interleaved step by step, so a group sees the
choices of all earlier groups' beams at each step, including beams those groups later pruned.

Confidence. `draft_confidence` is the geometric mean of
  * fluency: exp(mean log-probability of the generated tokens under the model, before temperature,
    top-p or penalties) — itself the geometric mean of the token probabilities, i.e. 1/perplexity;
  * grounding: the retrieval score (cosine similarity, clipped to [0, 1]) of the best passage the
    draft is built from (the cited ones, else all passages in the prompt; 0 without passages).
A product makes either weakness pull the draft down (a fluent answer on an unrelated passage, or a
hesitant model on a perfect one); the square root keeps it on the scale of its inputs, so the
threshold tuned for the retrieval engine's cosine scores (DRAFT_ESCALATE_BELOW) stays meaningful.
"""

from __future__ import annotations

import logging
import math
import threading
import time
from collections import Counter
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field, replace
from pathlib import Path
from types import ModuleType
from typing import TYPE_CHECKING, Any, Literal

from chatdesk.drafting.base import DraftCancelled, EngineError
from chatdesk.drafting.prompt import ChatMessage, fold_system_message

if TYPE_CHECKING:
    import torch

logger = logging.getLogger(__name__)

# No request may ask for more than this, whatever the settings say.
HARD_MAX_NEW_TOKENS = 1024
MAX_ALTERNATIVES = 3
MAX_BEAMS = 8
Strategy = Literal["greedy", "sample", "beam"]
STRATEGIES: tuple[Strategy, ...] = ("greedy", "sample", "beam")

_import_lock = threading.Lock()
_libraries: tuple[ModuleType, ModuleType] | None = None


def libraries() -> tuple[ModuleType, ModuleType]:
    """torch and transformers, imported once under a lock; progress bars off."""
    global _libraries
    if _libraries is not None:  # the loop thread calls this often; no lock once imported
        return _libraries
    with _import_lock:
        if _libraries is None:
            import torch
            import transformers
            import transformers.cache_utils
            import transformers.integrations.sdpa_attention
            import transformers.masking_utils

            transformers.utils.logging.disable_progress_bar()  # type: ignore[no-untyped-call]
            # Resolve, while holding the lock, the lazily imported names this package uses.
            _ = (
                transformers.AutoModelForCausalLM,
                transformers.AutoTokenizer,
                transformers.LogitsProcessorList,
                transformers.DynamicCache,
                transformers.AttentionInterface,
                transformers.AttentionMaskInterface,
            )
            _libraries = (torch, transformers)
        return _libraries


# ---------------------------------------------------------------------------------------------
# Decoding options


@dataclass(frozen=True)
class DecodingOptions:
    """How to pick tokens. temperature and top_p apply to "sample"; beams, groups and diversity
    to "beam"; repetition_penalty (1.0 = off) to all. seed makes "sample" reproducible."""

    strategy: Strategy = "greedy"
    max_new_tokens: int = 256
    temperature: float = 0.7
    top_p: float = 0.9
    num_beams: int = 4
    num_beam_groups: int = 2
    diversity_penalty: float = 0.5
    repetition_penalty: float = 1.0
    num_alternatives: int = 2
    seed: int | None = None


# name: (kind, lowest, highest); numbers outside the range are clamped to it.
_LIMITS: dict[str, tuple[type, float, float]] = {
    "max_new_tokens": (int, 1, HARD_MAX_NEW_TOKENS),
    "temperature": (float, 0.01, 2.0),
    "top_p": (float, 0.01, 1.0),
    "num_beams": (int, 1, MAX_BEAMS),
    "num_beam_groups": (int, 1, MAX_BEAMS),
    "diversity_penalty": (float, 0.0, 10.0),
    "repetition_penalty": (float, 1.0, 2.0),
    "num_alternatives": (int, 0, MAX_ALTERNATIVES),
    "seed": (int, 0, 2**63 - 1),
}


def _number(name: str, value: object) -> float | int:
    kind, lowest, highest = _LIMITS[name]
    # bool is an int in Python; True is never a meaningful count or temperature.
    if isinstance(value, bool) or not isinstance(value, int | float):
        raise EngineError(f"decoding option {name} must be a number, not {value!r}")
    if kind is int and isinstance(value, float) and not value.is_integer():
        raise EngineError(f"decoding option {name} must be a whole number, not {value!r}")
    if not math.isfinite(value):
        raise EngineError(f"decoding option {name} must be finite, not {value!r}")
    clamped = min(max(value, lowest), highest)
    return int(clamped) if kind is int else float(clamped)


def resolve_decoding(defaults: DecodingOptions, overrides: object = None) -> DecodingOptions:
    """`defaults` with a request's overrides (context.options["decoding"]) validated and applied.

    Unknown names, wrong types, non-finite numbers, an unknown strategy and beams that do not
    split evenly into the groups asked for raise EngineError; numbers out of range are clamped,
    and max_new_tokens never exceeds the default's (the operator's cost cap).
    """
    if overrides is None:
        overrides = {}
    if not isinstance(overrides, Mapping):
        raise EngineError(f"decoding options must be a mapping of names to values, not {overrides!r}")
    unknown = sorted(set(map(str, overrides)) - {f for f in DecodingOptions.__dataclass_fields__})
    if unknown:
        raise EngineError(f"unknown decoding option(s): {', '.join(unknown)}")
    values: dict[str, Any] = {}
    for name, value in overrides.items():
        if name == "strategy":
            if value not in STRATEGIES:
                raise EngineError(f"decoding strategy must be one of {', '.join(STRATEGIES)}, not {value!r}")
            values[name] = value
        elif name == "seed" and value is None:
            values[name] = None
        else:
            values[name] = _number(name, value)
    if "num_beams" in values and "num_beam_groups" not in values:
        # Asking only for another number of beams keeps as many default groups as divide it.
        values["num_beam_groups"] = math.gcd(values["num_beams"], defaults.num_beam_groups)
    options = replace(defaults, **values)
    if "max_new_tokens" in values:
        options = replace(options, max_new_tokens=min(options.max_new_tokens, defaults.max_new_tokens))
    return check_decoding(options)


def check_decoding(options: DecodingOptions) -> DecodingOptions:
    """The options with numbers clamped; raises EngineError when they contradict each other."""
    if options.strategy not in STRATEGIES:
        raise EngineError(f"decoding strategy must be one of {', '.join(STRATEGIES)}, not {options.strategy!r}")
    clamped: dict[str, Any] = {
        name: _number(name, getattr(options, name)) for name in _LIMITS if getattr(options, name) is not None
    }
    options = replace(options, **clamped)
    if options.num_beam_groups > options.num_beams or options.num_beams % options.num_beam_groups:
        raise EngineError(
            f"num_beams ({options.num_beams}) must be a multiple of num_beam_groups ({options.num_beam_groups})"
        )
    return options


def draft_confidence(mean_logprob: float | None, passage_score: float | None) -> float:
    """sqrt(exp(mean_logprob) * clip(passage_score, 0, 1)), in [0, 1]; 0 when either is unknown."""
    if mean_logprob is None or passage_score is None or not math.isfinite(mean_logprob):
        return 0.0
    fluency = math.exp(min(mean_logprob, 0.0))
    grounding = min(max(passage_score, 0.0), 1.0)
    return math.sqrt(fluency * grounding)


# ---------------------------------------------------------------------------------------------
# Loading


@dataclass(frozen=True)
class ModelSpec:
    """model: a folder or a name in the local Hugging Face cache; adapter: a LoRA folder or None;
    device: "cpu", "cuda", "cuda:1"… or None for automatic; dtype: "auto", "float32", "bfloat16",
    "float16"; threads: torch intra-op threads to set at load, or None to leave them."""

    model: str
    adapter: str | None = None
    device: str | None = None
    dtype: str = "auto"
    threads: int | None = None


DTYPES = ("auto", "float32", "bfloat16", "float16")


@dataclass
class LoadedModel:
    """A model ready to generate, shared by every thread of the process (use it read-only).

    `stop_ids` end a reply (the tokenizer's and the generation config's end-of-sequence tokens);
    `context_tokens` is the longest prompt plus reply the model takes.
    """

    spec: ModelSpec
    model: Any
    tokenizer: Any
    device: torch.device
    dtype: torch.dtype
    stop_ids: frozenset[int]
    pad_id: int
    context_tokens: int
    _tokenizer_lock: threading.Lock = field(default_factory=threading.Lock, repr=False)
    _system_role: bool = True

    def chat_ids(self, messages: Sequence[ChatMessage]) -> list[int]:
        """Token ids of the messages in the chat template, ending with the assistant's turn opening."""
        chat = list(messages)
        if not self._system_role:
            chat = fold_system_message(chat)
        try:
            text = self.tokenizer.apply_chat_template(chat, add_generation_prompt=True, tokenize=False)
        except Exception as exc:
            # Some templates (Gemma, early Mistral) raise on a system message: fold it into the
            # first user message, and do so from now on.
            if not self._system_role or not chat or chat[0]["role"] != "system":
                raise EngineError(f"the model's chat template failed: {exc}") from None
            self._system_role = False
            return self.chat_ids(messages)
        # The rendered template already holds any BOS token.
        with self._tokenizer_lock:  # encoding mutates the Rust tokenizer's padding/truncation state
            return list(self.tokenizer(text, add_special_tokens=False)["input_ids"])

    def count_tokens(self, messages: list[ChatMessage]) -> int:
        return len(self.chat_ids(messages))

    def decode(self, ids: Sequence[int]) -> str:
        return str(self.tokenizer.decode(list(ids), skip_special_tokens=True))


_models: dict[ModelSpec, LoadedModel] = {}
_models_lock = threading.Lock()


def cpu_supports_bf16() -> bool:
    """True when this CPU computes bfloat16 natively (AVX512-BF16 or AMX), where it beats float32."""
    torch, _ = libraries()
    probes = ("_is_avx512_bf16_supported", "_is_amx_tile_supported")
    return any(bool(getattr(torch.cpu, probe, lambda: False)()) for probe in probes)


def choose_device(device: str | None) -> torch.device:
    torch, _ = libraries()
    if not device:
        return torch.device("cuda" if torch.cuda.is_available() else "cpu")
    try:
        chosen = torch.device(device)
    except RuntimeError:
        raise EngineError(f"unknown device {device!r}; use cpu, cuda or cuda:N") from None
    if chosen.type == "cuda" and not torch.cuda.is_available():
        raise EngineError(f"device {device!r} was asked for but CUDA is not available")
    return chosen


def choose_dtype(dtype: str, device: torch.device) -> torch.dtype:
    torch, _ = libraries()
    if dtype not in DTYPES:
        raise EngineError(f"dtype must be one of {', '.join(DTYPES)}, not {dtype!r}")
    if dtype != "auto":
        return getattr(torch, dtype)
    if device.type == "cuda":
        return torch.bfloat16 if torch.cuda.is_bf16_supported() else torch.float16
    return torch.bfloat16 if device.type == "cpu" and cpu_supports_bf16() else torch.float32


def _model_source(name: str) -> str:
    path = Path(name).expanduser()
    return str(path) if path.is_dir() else name


def load_model(spec: ModelSpec) -> LoadedModel:
    """The process-wide model for `spec`, loaded on first call. Raises EngineError with the reason."""
    with _models_lock:
        if spec not in _models:
            _models[spec] = _load(spec)
        return _models[spec]


def _load(spec: ModelSpec) -> LoadedModel:
    if not spec.model:
        raise EngineError("no model is configured (DRAFT_MODEL): give a model folder or a name in the local cache")
    torch, transformers = libraries()
    if spec.threads:
        torch.set_num_threads(spec.threads)
    device = choose_device(spec.device)
    dtype = choose_dtype(spec.dtype, device)
    source = _model_source(spec.model)
    started = time.perf_counter()
    with _import_lock:  # loading imports the model's modules lazily
        try:
            tokenizer = transformers.AutoTokenizer.from_pretrained(source, local_files_only=True)
            model = transformers.AutoModelForCausalLM.from_pretrained(source, dtype=dtype, local_files_only=True)
        except (OSError, ValueError) as exc:
            raise EngineError(
                f"cannot load model {spec.model!r}: it is neither a model folder nor in the local Hugging Face "
                f"cache (downloads are off): {exc}"
            ) from None
        if spec.adapter:
            model = _apply_adapter(model, spec.adapter)
    if not getattr(tokenizer, "chat_template", None):
        raise EngineError(f"the tokenizer of {spec.model!r} has no chat template; use an instruction-tuned model")
    model.to(device)
    model.eval()
    stop_ids = _stop_ids(model, tokenizer)
    if not stop_ids:
        raise EngineError(f"{spec.model!r} defines no end-of-sequence token; replies could not end")
    pad_id = tokenizer.pad_token_id if tokenizer.pad_token_id is not None else min(stop_ids)
    logger.info("loaded %s on %s as %s in %.1fs", spec.model, device, dtype, time.perf_counter() - started)
    return LoadedModel(
        spec=spec,
        model=model,
        tokenizer=tokenizer,
        device=device,
        dtype=dtype,
        stop_ids=stop_ids,
        pad_id=int(pad_id),
        context_tokens=_context_tokens(model, tokenizer),
    )


def _apply_adapter(model: Any, adapter: str) -> Any:
    try:
        import peft
    except ImportError:
        raise EngineError(
            f"a LoRA adapter is configured ({adapter!r}) but the peft package is not installed (pip install peft)"
        ) from None
    if not Path(adapter).expanduser().is_dir():
        raise EngineError(f"the adapter {adapter!r} is not a folder")
    try:
        with_adapter = peft.PeftModel.from_pretrained(model, str(Path(adapter).expanduser()), is_trainable=False)
    except (OSError, ValueError) as exc:
        raise EngineError(f"cannot apply the adapter {adapter!r}: {exc}") from None
    # Merged weights: no adapter arithmetic per token, and a plain model for the batcher.
    return with_adapter.merge_and_unload()


def _stop_ids(model: Any, tokenizer: Any) -> frozenset[int]:
    ids: set[int] = set()
    for source in (getattr(model, "generation_config", None), model.config, tokenizer):
        value = getattr(source, "eos_token_id", None)
        if isinstance(value, int):
            ids.add(value)
        elif isinstance(value, list | tuple):
            ids.update(int(v) for v in value if v is not None)
    return frozenset(ids)


def _context_tokens(model: Any, tokenizer: Any) -> int:
    config = model.config.get_text_config() if hasattr(model.config, "get_text_config") else model.config
    limits = [getattr(config, "max_position_embeddings", None)]
    # model_max_length is a huge placeholder when the tokenizer does not know it.
    limits.append(tokenizer.model_max_length if getattr(tokenizer, "model_max_length", 0) < 10**7 else None)
    known = [int(limit) for limit in limits if isinstance(limit, int) and limit > 0]
    return min(known) if known else 2048


# ---------------------------------------------------------------------------------------------
# Beam search (runs in the caller's thread, not through the batcher)


@dataclass(frozen=True)
class Candidate:
    """One finished beam: its tokens (without the stop token), group, rank in the group and score."""

    token_ids: tuple[int, ...]
    group: int
    rank: int
    score: float


class _Interrupted(Exception):
    pass


class _CancelCheck:
    """A logits processor that only polls cancelled() (at most every poll_s) and stops generate()."""

    def __init__(self, cancelled: Callable[[], bool], poll_s: float) -> None:
        self._cancelled = cancelled
        self._poll_s = poll_s
        self._checked = time.monotonic()

    def __call__(self, input_ids: torch.Tensor, scores: torch.Tensor) -> torch.Tensor:
        now = time.monotonic()
        if now - self._checked >= self._poll_s:
            self._checked = now
            if self._cancelled():
                raise _Interrupted
        return scores


class _StepRecorder:
    """Records, per generation step, how often each token was chosen by this group's beams."""

    def __init__(self, prompt_length: int) -> None:
        self.prompt_length = prompt_length
        self.steps: dict[int, Counter[int]] = {}

    def __call__(self, input_ids: torch.Tensor, scores: torch.Tensor) -> torch.Tensor:
        step = input_ids.shape[1] - self.prompt_length - 1  # the step that chose the last tokens
        if step >= 0:
            self.steps[step] = Counter(int(t) for t in input_ids[:, -1].tolist())
        return scores


class _HammingDiversity:
    """Subtracts penalty x (uses of a token by earlier groups at this step) from its log-probability."""

    def __init__(self, earlier: dict[int, Counter[int]], prompt_length: int, penalty: float) -> None:
        self._earlier = earlier
        self._prompt_length = prompt_length
        self._penalty = penalty

    def __call__(self, input_ids: torch.Tensor, scores: torch.Tensor) -> torch.Tensor:
        used = self._earlier.get(input_ids.shape[1] - self._prompt_length)
        if used:
            tokens = list(used)
            counts = scores.new_tensor([used[t] for t in tokens])
            scores[:, tokens] -= self._penalty * counts
        return scores


def beam_search(
    loaded: LoadedModel,
    prompt_ids: Sequence[int],
    options: DecodingOptions,
    *,
    cancelled: Callable[[], bool],
    poll_s: float = 0.1,
) -> list[Candidate]:
    """Diverse beam search (see the module docstring): every group's finished beams, best first
    within a group, groups in order. Raises DraftCancelled when cancelled() turns True."""
    torch, transformers = libraries()
    groups = options.num_beam_groups
    per_group = max(options.num_beams // groups, 1)
    prompt_length = len(prompt_ids)
    max_new_tokens = min(options.max_new_tokens, loaded.context_tokens - prompt_length)
    if max_new_tokens < 1:
        raise EngineError("the prompt fills the model's whole context")
    input_ids = torch.tensor([list(prompt_ids)], device=loaded.device)
    earlier: dict[int, Counter[int]] = {}
    candidates: list[Candidate] = []
    for group in range(groups):
        recorder = _StepRecorder(prompt_length)
        processors: list[Any] = [_CancelCheck(cancelled, poll_s)]
        if group and options.diversity_penalty > 0:
            processors.append(_HammingDiversity(earlier, prompt_length, options.diversity_penalty))
        processors.append(recorder)
        # A group of one beam is greedy decoding (whose processors see logits, not log-probabilities:
        # the same ranking, so the penalty works alike).
        beam_flags = {"early_stopping": True, "length_penalty": 1.0} if per_group > 1 else {}
        try:
            with torch.inference_mode():
                out = loaded.model.generate(
                    input_ids,
                    attention_mask=torch.ones_like(input_ids),
                    max_new_tokens=max_new_tokens,
                    do_sample=False,
                    num_beams=per_group,
                    num_return_sequences=per_group,
                    repetition_penalty=options.repetition_penalty,
                    **beam_flags,
                    eos_token_id=sorted(loaded.stop_ids),
                    pad_token_id=loaded.pad_id,
                    logits_processor=transformers.LogitsProcessorList(processors),
                    return_dict_in_generate=True,
                    output_scores=True,
                )
        except _Interrupted:
            raise DraftCancelled from None
        sequences = out.sequences[:, prompt_length:].tolist()
        sequence_scores = getattr(out, "sequences_scores", None)
        scores = sequence_scores.tolist() if sequence_scores is not None else [0.0] * len(sequences)
        for rank, (sequence, score) in enumerate(zip(sequences, scores, strict=True)):
            tokens = _until_stop(sequence, loaded.stop_ids)
            candidates.append(Candidate(token_ids=tuple(tokens), group=group, rank=rank, score=float(score)))
        # The last step's choices never reach the recorder; the returned beams hold them.
        last_step = len(sequences[0]) - 1 if sequences else -1
        if last_step >= 0 and last_step not in recorder.steps:
            recorder.steps[last_step] = Counter(s[last_step] for s in sequences if s[last_step] != loaded.pad_id)
        for step, counts in recorder.steps.items():
            earlier.setdefault(step, Counter()).update(counts)
    return candidates


def _until_stop(tokens: Sequence[int], stop_ids: frozenset[int]) -> list[int]:
    for index, token in enumerate(tokens):
        if token in stop_ids:
            return list(tokens[:index])
    return list(tokens)


def mean_logprob(loaded: LoadedModel, prompt_ids: Sequence[int], generated: Sequence[int]) -> float | None:
    """Mean log-probability of `generated` after `prompt_ids` under the model (one forward pass)."""
    if not generated:
        return None
    torch, _ = libraries()
    ids = torch.tensor([[*prompt_ids, *generated]], device=loaded.device)
    with torch.inference_mode():
        logits = loaded.model(input_ids=ids, use_cache=False, logits_to_keep=len(generated) + 1).logits
    logprobs = torch.log_softmax(logits[0, :-1].float(), dim=-1)
    chosen = logprobs.gather(1, torch.tensor(list(generated), device=logprobs.device)[:, None])
    return float(chosen.mean())
