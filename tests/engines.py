"""A drafting engine for tests that run real workers: the customer's words choose what it does.

Workers load it by name with DRAFT_ENGINE=scripted and
DRAFT_EXTRA_ENGINES=scripted=tests.engines.ScriptedEngine; SCRIPTED_ENGINE_DIR is a folder the
test and the worker processes share.
"""

from __future__ import annotations

import os
import re
import signal
import time
from pathlib import Path

from chatdesk.drafting.base import DraftCancelled, DraftContext, DraftEngine, DraftResult

BLOCK = re.compile(r"\[block ([\w-]+)\]")
ANSWER_PREFIX = "Scripted answer to: "


def engine_dir() -> Path:
    return Path(os.environ["SCRIPTED_ENGINE_DIR"])


def pid_file(name: str) -> Path:
    """Where a `[block NAME]` draft writes the id of the process writing it."""
    return engine_dir() / f"{name}.pid"


def warm_up_file() -> Path:
    """Seconds written here make every later warm_up take that long (a slow model load)."""
    return engine_dir() / "warm_up_s"


class ScriptedEngine(DraftEngine):
    """What the latest customer message asks for:

    "[crash]"       the engine kills its own process with SIGKILL, on every attempt (a poison draft)
    "[hang]"        it sleeps and never checks cancelled() (a hung engine: only the time limit stops it)
    "[block NAME]"  the first time, it writes its process id to pid_file(NAME) and waits, checking
                    cancelled(), until the draft is no longer wanted; once that file exists it answers
    anything else   it answers at once: ANSWER_PREFIX + the text, confidence 0.9
    """

    name = "scripted"

    def warm_up(self) -> None:
        if warm_up_file().exists():
            time.sleep(float(warm_up_file().read_text()))

    def draft(self, context: DraftContext) -> DraftResult:
        text = context.latest_customer_text
        if "[crash]" in text:
            os.kill(os.getpid(), signal.SIGKILL)
        if "[hang]" in text:
            while True:
                time.sleep(3600)
        block = BLOCK.search(text)
        if block and not pid_file(block.group(1)).exists():
            written = pid_file(block.group(1)).with_suffix(".tmp")
            written.write_text(str(os.getpid()))
            written.rename(pid_file(block.group(1)))  # the test never reads a half-written file
            while not context.cancelled():
                time.sleep(0.02)
            raise DraftCancelled()
        return DraftResult(text=ANSWER_PREFIX + text, confidence=0.9)
