"""Running the desk as real processes, and talking to it as its clients do (docs/protocol.md)."""

from __future__ import annotations

import asyncio
import http.cookiejar
import json
import os
import signal
import socket
import subprocess
import sys
import tempfile
import time
import urllib.parse
import urllib.request
import uuid
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import websockets
from django.db import connection

from chatdesk.conversations.tokens import public_id_from_token

ROOT = Path(__file__).resolve().parent.parent


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def wait_for_port(port: int, processes: list[subprocess.Popen[bytes]], timeout: float = 60.0) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        for process in processes:
            if process.poll() is not None:
                raise RuntimeError(f"{process.args} exited with {process.returncode}")
        try:
            socket.create_connection(("127.0.0.1", port), timeout=0.5).close()
            return
        except OSError:
            time.sleep(0.1)
    raise TimeoutError(f"nothing listened on port {port} within {timeout} s")


@dataclass
class LiveStack:
    base_url: str
    processes: list[subprocess.Popen[bytes]] = field(default_factory=list)
    log_dir: Path | None = None
    env: dict[str, str] = field(default_factory=dict)
    pool: list[str] = field(default_factory=list)
    workers: list[subprocess.Popen[bytes]] = field(default_factory=list)

    @property
    def ws_url(self) -> str:
        return self.base_url.replace("http://", "ws://")

    @property
    def worker(self) -> subprocess.Popen[bytes]:
        """The Celery worker started last."""
        return self.workers[-1]

    def worker_log(self, n: int = -1) -> str:
        assert self.log_dir is not None
        return (self.log_dir / f"worker-{len(self.workers) if n == -1 else n + 1}.log").read_text(errors="replace")

    def start_worker(self) -> subprocess.Popen[bytes]:
        """Start a Celery worker on the stack's settings (another one, after a test killed the last)."""
        assert self.log_dir is not None
        log = open(self.log_dir / f"worker-{len(self.workers) + 1}.log", "wb")
        worker = subprocess.Popen(
            [
                sys.executable, "-m", "celery", "-A", "chatdesk", "worker", "--queues", "drafts,celery", *self.pool,
                "--without-gossip", "--without-mingle", "--without-heartbeat", "--loglevel", "INFO",
            ],
            cwd=ROOT, env=self.env, stdout=log, stderr=subprocess.STDOUT,
        )  # fmt: skip
        self.workers.append(worker)
        self.processes.append(worker)
        return worker

    def stop(self) -> None:
        for process in self.processes:
            if process.poll() is None:
                process.send_signal(signal.SIGTERM)
        for process in self.processes:
            try:
                process.wait(timeout=15)
            except subprocess.TimeoutExpired:
                process.kill()
                process.wait()


def _test_database_url() -> str:
    s = connection.settings_dict
    return f"postgres://{s['USER']}@{s['HOST'] or '127.0.0.1'}:{s['PORT'] or 5432}/{s['NAME']}"


PREFORK = ["--pool", "prefork", "--concurrency", "1"]


def start_live_stack(env_overrides: dict[str, str] | None = None, pool: list[str] = PREFORK) -> LiveStack:
    """Daphne + one Celery worker process on the test database (call after the test database exists)."""
    env = {**os.environ, "DATABASE_URL": _test_database_url(), **(env_overrides or {})}
    log_dir = Path(tempfile.mkdtemp(prefix="chatdesk-live-"))
    port = free_port()
    stack = LiveStack(base_url=f"http://127.0.0.1:{port}", log_dir=log_dir, env=env, pool=pool)
    stack.start_worker()
    daphne = subprocess.Popen(
        [sys.executable, "-m", "chatdesk.serve", "--bind", "127.0.0.1", "--port", str(port)],
        cwd=ROOT, env=env, stdout=open(log_dir / "daphne.log", "wb"), stderr=subprocess.STDOUT,
    )  # fmt: skip
    stack.processes.insert(0, daphne)
    try:
        wait_for_port(port, stack.processes)
    except Exception:
        stack.stop()
        raise
    return stack


def login_session(base_url: str, username: str, password: str) -> str:
    """Sign in the way docs/protocol.md tells non-browser clients to; returns the sessionid cookie."""
    jar = http.cookiejar.CookieJar()
    opener = urllib.request.build_opener(urllib.request.HTTPCookieProcessor(jar))
    login_url = f"{base_url}/accounts/login/"
    opener.open(login_url).read()
    csrf = next(c.value for c in jar if c.name == "csrftoken")
    body = urllib.parse.urlencode({"username": username, "password": password, "csrfmiddlewaretoken": csrf})
    request = urllib.request.Request(login_url, data=body.encode(), headers={"Referer": login_url})
    opener.open(request).read()
    session = [c.value for c in jar if c.name == "sessionid"]
    if not session:
        raise AssertionError(f"login as {username} failed")
    return session[0]


class Client:
    """A websocket client that keeps every frame it received, for waiting on the one a test needs."""

    def __init__(self, ws: Any) -> None:
        self.ws = ws
        self.frames: list[dict[str, Any]] = []

    @classmethod
    async def connect(cls, url: str, origin: str, session: str | None = None) -> Client:
        headers = {"Cookie": f"sessionid={session}"} if session else None
        ws = await websockets.connect(url, origin=origin, additional_headers=headers)  # type: ignore[arg-type]
        return cls(ws)

    async def send(self, frame: dict[str, Any]) -> None:
        await self.ws.send(json.dumps(frame))

    async def wait_for(self, predicate: Any, timeout: float = 30.0) -> dict[str, Any]:
        """The first frame (already received or arriving within `timeout`) for which predicate(frame) is true."""
        for frame in self.frames:
            if predicate(frame):
                return frame
        deadline = time.monotonic() + timeout
        while True:
            remaining = deadline - time.monotonic()
            if remaining <= 0:
                raise TimeoutError(f"no matching frame within {timeout} s; got {self.frames[-5:]}")
            try:
                frame = json.loads(await asyncio.wait_for(self.ws.recv(), remaining))
            except TimeoutError:
                raise TimeoutError(f"no matching frame within {timeout} s; got {self.frames[-5:]}") from None
            self.frames.append(frame)
            if predicate(frame):
                return frame

    async def close(self) -> None:
        await self.ws.close()


def is_type(kind: str, **fields: object) -> Callable[[dict[str, Any]], bool]:
    return lambda frame: frame["type"] == kind and all(frame.get(k) == v for k, v in fields.items())


async def customer_connects(desk: LiveStack) -> tuple[Client, uuid.UUID]:
    """A new customer's chat socket, after hello; returns it and the conversation's public id."""
    customer = await Client.connect(f"{desk.ws_url}/ws/chat/", origin=desk.base_url)
    await customer.send({"type": "hello"})
    public_id = public_id_from_token((await customer.wait_for(is_type("welcome")))["token"])
    assert public_id is not None
    return customer, public_id


async def customer_says(customer: Client, text: str, client_id: str) -> int:
    """Send a chat message and wait for its ack; returns its seq."""
    await customer.send({"type": "message", "client_id": client_id, "text": text})
    return int((await customer.wait_for(is_type("ack", client_id=client_id)))["seq"])
