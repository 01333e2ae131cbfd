"""The seed's terminal chat loop (python -m chatdesk.chat) against the real desk: Daphne and a worker."""

from __future__ import annotations

import queue
import subprocess
import sys
import threading
import time
from collections.abc import Callable
from pathlib import Path

import pytest
from django.contrib.auth.models import User

from chatdesk.conversations import services
from chatdesk.conversations.models import Conversation, Draft
from tests.live import LiveStack

pytestmark = [pytest.mark.live, pytest.mark.django_db(transaction=True)]
ROOT = Path(__file__).resolve().parent.parent


class Terminal:
    """The client in a child process, typed into through a pipe; its printed lines collected as they come."""

    def __init__(self, url: str, token_file: Path) -> None:
        self.process = subprocess.Popen(
            [sys.executable, "-m", "chatdesk.chat", "--url", url, "--token-file", str(token_file)],
            cwd=ROOT, stdin=subprocess.PIPE, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True,
        )  # fmt: skip
        self.lines: queue.Queue[str] = queue.Queue()
        self.seen: list[str] = []
        threading.Thread(target=self._collect, daemon=True).start()

    def _collect(self) -> None:
        assert self.process.stdout is not None
        for line in self.process.stdout:
            self.lines.put(line.rstrip("\n"))

    def type(self, line: str) -> None:
        assert self.process.stdin is not None
        self.process.stdin.write(line + "\n")
        self.process.stdin.flush()

    def wait_for(self, wanted: Callable[[str], bool], timeout_s: float = 60) -> str:
        deadline = time.monotonic() + timeout_s
        while time.monotonic() < deadline:
            try:
                line = self.lines.get(timeout=0.2)
            except queue.Empty:
                continue
            self.seen.append(line)
            if wanted(line):
                return line
        raise AssertionError(f"not printed within {timeout_s} s; printed: {self.seen}")

    def finish(self) -> int:
        return self.process.wait(timeout=30)


def test_a_customer_chats_from_a_terminal_with_an_agent_in_the_loop_and_resumes(
    live_stack: LiveStack, knowledge: None, agent: User, tmp_path: Path
) -> None:
    token_file = tmp_path / "tokens.json"
    terminal = Terminal(live_stack.ws_url, token_file)
    terminal.type("How do I reset my password?")
    terminal.wait_for(lambda line: line == "[An agent is reviewing a reply…]")

    conversation = Conversation.objects.get()
    deadline = time.monotonic() + 120
    while not (draft := Draft.objects.filter(conversation=conversation, status=Draft.Status.READY).first()):
        assert time.monotonic() < deadline, "the worker wrote no draft"
        time.sleep(0.2)  # poll interval
    services.draft_approve(public_id=conversation.public_id, draft_id=draft.pk, agent=agent)
    answer = terminal.wait_for(lambda line: line.startswith("Desk (Alice Agent): "))
    assert "Account > Security" in answer

    terminal.type("/human")
    terminal.wait_for(lambda line: line.startswith("[No one is at the desk right now."))
    terminal.type("bye")
    terminal.wait_for(lambda line: line == "[chat ended]")
    assert terminal.finish() == 0
    conversation.refresh_from_db()
    assert conversation.status == Conversation.Status.CLOSED

    # The next run resumes the same conversation from the kept token and shows what was said.
    again = Terminal(live_stack.ws_url, token_file)
    again.wait_for(lambda line: line == "You: How do I reset my password?")
    again.wait_for(lambda line: line == answer)
    again.type("bye")
    again.wait_for(lambda line: line == "[chat ended]")
    assert again.finish() == 0
    assert Conversation.objects.count() == 1
