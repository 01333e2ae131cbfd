"""A real HTTP receiver on loopback for webhook tests, and the docs' verification function."""

from __future__ import annotations

import json
import re
import threading
import time
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any, Protocol

DOCS = Path(__file__).resolve().parent.parent.parent / "docs" / "webhooks.md"


class Verify(Protocol):
    def __call__(self, secret: str, header: str, body: bytes, now: float | None = None) -> bool: ...


def documented_verify() -> Verify:
    """verify_chatdesk_signature exactly as docs/webhooks.md prints it (its first Python block)."""
    code = re.search(r"```python\n(.*?)```", DOCS.read_text(), re.S)
    assert code is not None, "docs/webhooks.md has no Python example"
    namespace: dict[str, Any] = {}
    exec(compile(code.group(1), str(DOCS), "exec"), namespace)  # our own documentation, run as printed
    verify: Verify = namespace["verify_chatdesk_signature"]
    return verify


@dataclass
class Received:
    headers: dict[str, str]
    body: bytes

    @property
    def event(self) -> dict[str, Any]:
        parsed: dict[str, Any] = json.loads(self.body)
        return parsed


@dataclass
class Receiver:
    """Records every POST; answers each with the next of `statuses` (then 200)."""

    url: str = ""
    received: list[Received] = field(default_factory=list)
    statuses: list[int] = field(default_factory=list)
    lock: threading.Lock = field(default_factory=threading.Lock)

    def events(self) -> list[dict[str, Any]]:
        with self.lock:
            return [r.event for r in self.received]

    def wait_for(self, event_type: str, timeout_s: float = 60.0) -> Received:
        """The first request carrying `event_type`, waiting up to `timeout_s` for it."""
        deadline = time.monotonic() + timeout_s
        while time.monotonic() < deadline:
            with self.lock:
                for request in self.received:
                    if request.event["type"] == event_type:
                        return request
            time.sleep(0.05)
        raise AssertionError(f"no {event_type} delivery within {timeout_s} s; got {[e['type'] for e in self.events()]}")


@contextmanager
def receiving() -> Iterator[Receiver]:
    receiver = Receiver()

    class Handler(BaseHTTPRequestHandler):
        def do_POST(self) -> None:
            body = self.rfile.read(int(self.headers["Content-Length"]))
            with receiver.lock:
                receiver.received.append(Received(dict(self.headers.items()), body))
                status = receiver.statuses.pop(0) if receiver.statuses else 200
            answer = f"status {status}: {'x' * 2000}".encode()  # longer than the log keeps
            self.send_response(status)
            self.send_header("Content-Length", str(len(answer)))
            self.end_headers()
            self.wfile.write(answer)

        def log_message(self, *_args: object) -> None:
            pass

    server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
    receiver.url = f"http://127.0.0.1:{server.server_address[1]}/hooks"
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    try:
        yield receiver
    finally:
        server.shutdown()
        server.server_close()
