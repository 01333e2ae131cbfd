"""Tiny chat models built once per test session, a small knowledge base and a fake sentence encoder."""

from __future__ import annotations

import re
import zlib
from collections.abc import Iterator
from pathlib import Path

import numpy as np
import pytest

from chatdesk.drafting.base import DraftContext, Turn
from chatdesk.drafting.generation import LoadedModel, ModelSpec, libraries, load_model
from chatdesk.drafting.index import KnowledgeIndex, Passage
from tests.drafting.tiny_models import build_chat_model


def fake_encode(texts: list[str]) -> np.ndarray:
    """Hashed bag of words, unit length: texts sharing words are close, as with a real encoder."""
    vectors = np.zeros((len(texts), 128), dtype=np.float32)
    for row, text in enumerate(texts):
        for word in re.findall(r"\w+", text.lower()):
            vectors[row, zlib.crc32(word.encode()) % 128] += 1.0
    norms = np.linalg.norm(vectors, axis=1, keepdims=True)
    return vectors / np.where(norms == 0, 1.0, norms)


PASSAGES = [
    Passage("article:1", "Returning an item", "You can return any item within 30 days.", "returns",
            ("how do I return a jacket", "return policy")),
    Passage("article:2", "Delivery times", "Parcels arrive within 3 to 5 business days.", "shipping",
            ("where is my order", "when will my parcel arrive")),
    Passage("article:3", "Resetting your password", "Use the reset link on the sign-in page.", "account",
            ("I forgot my password",)),
    Passage("reply:4", "Approved reply #4", "Refunds reach your card within 5 to 10 business days.", "refunds",
            ("how long does a refund take",)),
]  # fmt: skip


@pytest.fixture(scope="session", autouse=True)
def _one_torch_thread() -> None:
    """As in workers (TORCH_NUM_THREADS=1): tiny matrices gain nothing from more, and on a busy
    machine a second thread waiting for a core makes every operation many times slower."""
    torch, _ = libraries()
    torch.set_num_threads(1)


@pytest.fixture(scope="session")
def shop_knowledge() -> KnowledgeIndex:
    keys = [key for passage in PASSAGES for key in passage.keys]
    return KnowledgeIndex(PASSAGES, fake_encode(keys))


@pytest.fixture
def draft_context(shop_knowledge: KnowledgeIndex) -> DraftContext:
    return DraftContext(
        turns=[
            Turn("customer", "hi there"),
            Turn("agent", "Hello! How can I help?"),
            Turn("customer", "where is my order? I ordered a jacket last week"),
        ],
        knowledge=shop_knowledge,
        company_name="Northwind Goods",
    )


@pytest.fixture(scope="session")
def model_dir(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A random Llama-shaped chat model, 2 layers, hidden 64, byte-level BPE vocabulary of 512."""
    return build_chat_model(tmp_path_factory.mktemp("tiny-llama"))


@pytest.fixture(scope="session")
def qwen_dir(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return build_chat_model(tmp_path_factory.mktemp("tiny-qwen2"), arch="qwen2", seed=1)


@pytest.fixture(scope="session")
def loaded(model_dir: Path) -> LoadedModel:
    """The tiny model as the engine loads it: automatic precision (bfloat16 on CPUs that have it)."""
    return load_model(ModelSpec(model=str(model_dir)))


@pytest.fixture(scope="session")
def loaded_fp32(model_dir: Path) -> LoadedModel:
    return load_model(ModelSpec(model=str(model_dir), dtype="float32"))


@pytest.fixture(params=["auto", "float32"])
def any_loaded(request: pytest.FixtureRequest, loaded: LoadedModel, loaded_fp32: LoadedModel) -> Iterator[LoadedModel]:
    yield loaded if request.param == "auto" else loaded_fp32
