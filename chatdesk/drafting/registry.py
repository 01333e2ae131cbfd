"""Engine names to classes, imported on first use so workers load only what they run."""

from __future__ import annotations

import threading

from django.conf import settings
from django.utils.module_loading import import_string

from chatdesk.drafting.base import DraftEngine

ENGINES: dict[str, str] = {
    "retrieval": "chatdesk.drafting.engines.retrieval.RetrievalEngine",
    "transformers": "chatdesk.drafting.engines.generative.TransformersEngine",
    "openai": "chatdesk.drafting.engines.openai_engine.OpenAIEngine",
}

_lock = threading.Lock()
_instances: dict[str, DraftEngine] = {}


class UnknownEngine(Exception):
    pass


def engine_paths() -> dict[str, str]:
    """Every engine name and its class's dotted path: the built-in ones and DRAFT_EXTRA_ENGINES."""
    return {**ENGINES, **settings.DRAFT_EXTRA_ENGINES}


def get_engine(name: str | None = None) -> DraftEngine:
    """The process-wide instance of the named engine (default: the DRAFT_ENGINE setting)."""
    name = name or settings.DRAFT_ENGINE
    paths = engine_paths()
    with _lock:
        if name not in _instances:
            if name not in paths:
                raise UnknownEngine(f"unknown DRAFT_ENGINE {name!r}; choose one of {', '.join(sorted(paths))}")
            _instances[name] = import_string(paths[name]).from_settings()
        return _instances[name]


def engine_summarises(name: str | None = None) -> bool:
    """Whether the named engine (default: DRAFT_ENGINE) writes handoff summaries with its model: its class
    overrides DraftEngine.summarise. At most imports the class (no model is loaded)."""
    name = name or settings.DRAFT_ENGINE
    made = _instances.get(name)
    if made is not None:
        return type(made).summarise is not DraftEngine.summarise
    path = engine_paths().get(name)
    return path is not None and import_string(path).summarise is not DraftEngine.summarise


def warm_up() -> None:
    get_engine().warm_up()
