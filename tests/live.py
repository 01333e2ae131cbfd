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
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import websockets
from django.db import connection

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

    @property
    def ws_url(self) -> str:
        return self.base_url.replace("http://", "ws://")

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
    worker = subprocess.Popen(
        [
            sys.executable, "-m", "celery", "-A", "chatdesk", "worker", "--queues", "drafts,celery", *pool,
            "--without-gossip", "--without-mingle", "--without-heartbeat", "--loglevel", "INFO",
        ],
        cwd=ROOT, env=env, stdout=open(log_dir / "worker.log", "wb"), stderr=subprocess.STDOUT,
    )  # fmt: skip
    daphne = subprocess.Popen(
        [sys.executable, "-m", "chatdesk.serve", "--bind", "127.0.0.1", "--port", str(port)],
        cwd=ROOT, env=env, stdout=open(log_dir / "daphne.log", "wb"), stderr=subprocess.STDOUT,
    )  # fmt: skip
    stack = LiveStack(base_url=f"http://127.0.0.1:{port}", processes=[daphne, worker], log_dir=log_dir)
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
            frame = json.loads(await asyncio.wait_for(self.ws.recv(), remaining))
            self.frames.append(frame)
            if predicate(frame):
                return frame

    async def close(self) -> None:
        await self.ws.close()


def logout_session(base_url: str, session: str) -> None:
    """Sign out the way a non-browser client does (docs/protocol.md): POST /accounts/logout/ with the
    session cookie and a CSRF token."""
    jar = http.cookiejar.CookieJar()
    opener = urllib.request.build_opener(urllib.request.HTTPCookieProcessor(jar))
    host = urllib.parse.urlsplit(base_url).hostname or "127.0.0.1"
    jar.set_cookie(
        http.cookiejar.Cookie(
            0, "sessionid", session, None, False, host, False, False, "/", True, False, None, True, None, None, {}
        )
    )
    opener.open(f"{base_url}/accounts/login/").read()
    csrf = next(c.value for c in jar if c.name == "csrftoken")
    logout_url = f"{base_url}/accounts/logout/"
    body = urllib.parse.urlencode({"csrfmiddlewaretoken": csrf}).encode()
    opener.open(urllib.request.Request(logout_url, data=body, headers={"Referer": logout_url})).read()


async def close_code(client: Client, timeout: float = 10.0) -> int | None:
    """Read until the server closes the socket; its close code."""
    deadline = time.monotonic() + timeout
    try:
        while True:
            client.frames.append(json.loads(await asyncio.wait_for(client.ws.recv(), deadline - time.monotonic())))
    except websockets.ConnectionClosed as closed:
        return closed.rcvd.code if closed.rcvd else None


def listening(port: int) -> bool:
    try:
        socket.create_connection(("127.0.0.1", port), timeout=0.5).close()
        return True
    except OSError:
        return False


def poll_until(condition: Any, timeout: float, what: str) -> None:
    """Wait, checking every 0.1 s, until condition() is true; fail with `what` after `timeout` seconds."""
    deadline = time.monotonic() + timeout
    while not condition():
        if time.monotonic() > deadline:
            raise AssertionError(f"not within {timeout:.0f} s: {what}")
        time.sleep(0.1)


# Processes, read from /proc (Linux, as PR_SET_PDEATHSIG is).


def _stat(pid: int) -> tuple[str, int] | None:
    """(state, parent pid) of a process, or None if it is gone."""
    try:
        text = Path(f"/proc/{pid}/stat").read_text()
    except OSError:
        return None
    state, ppid = text[text.rindex(")") + 2 :].split()[:2]
    return state, int(ppid)


def alive(pid: int) -> bool:
    """The process exists and is not a zombie (a dead child whose parent has not reaped it yet)."""
    stat = _stat(pid)
    return stat is not None and stat[0] not in ("Z", "X")


def descendants(pid: int) -> dict[int, str]:
    """Every living process whose parent chain leads to pid, with its command line."""
    parents: dict[int, int] = {}
    for entry in Path("/proc").iterdir():
        if entry.name.isdigit() and (stat := _stat(int(entry.name))) and stat[0] not in ("Z", "X"):
            parents[int(entry.name)] = stat[1]
    found: dict[int, str] = {}
    frontier = [pid]
    while frontier:
        parent = frontier.pop()
        for child, its_parent in parents.items():
            if its_parent == parent and child not in found:
                try:
                    found[child] = Path(f"/proc/{child}/cmdline").read_bytes().replace(b"\0", b" ").decode()
                except OSError:
                    continue
                frontier.append(child)
    return found


# The desk as `manage.py rundesk` runs it on the embedded default, and what its children are called there.
CHILDREN = {
    "embedded redis": "valkey-server",
    "celery worker": "chatdesk worker",
    "celery beat": "chatdesk beat",
    "daphne": "chatdesk.serve",
}


class Desk:
    """`manage.py rundesk` on the embedded default, with free ports and its output in DATA_DIR/rundesk.log."""

    def __init__(self, data_dir: Path, *, redis_port: int | None = None, port: int | None = None) -> None:
        self.port, self.redis_port = port or free_port(), redis_port or free_port()
        env = {k: v for k, v in os.environ.items() if k not in ("DATABASE_URL", "REDIS_URL", "SECRET_KEY")}
        env.update(DATA_DIR=str(data_dir), EMBEDDED_REDIS_PORT=str(self.redis_port))
        self.log = data_dir / "rundesk.log"
        self.process = subprocess.Popen(
            [sys.executable, "manage.py", "rundesk", "--port", str(self.port)],
            cwd=ROOT, env=env, stdout=open(self.log, "wb"), stderr=subprocess.STDOUT,
        )  # fmt: skip
        self.base_url = f"http://127.0.0.1:{self.port}"

    @property
    def output(self) -> str:
        return self.log.read_text()

    def wait_until_running(self) -> Desk:
        def running() -> bool:
            assert self.process.poll() is None, self.output
            return "ChatDesk is running" in self.output

        poll_until(running, 120, "ChatDesk is running")
        return self

    def children(self, name: str) -> list[int]:
        """The pids of the desk's running child processes `name` (a key of CHILDREN)."""
        return [
            pid for pid, argv in descendants(self.process.pid).items()
            if CHILDREN[name] in argv and (stat := _stat(pid)) and stat[1] == self.process.pid
        ]  # fmt: skip

    def child(self, name: str) -> int:
        """The pid of the desk's child process `name`; fails unless exactly one runs."""
        pids = self.children(name)
        assert len(pids) == 1, (name, descendants(self.process.pid))
        return pids[0]

    def wait_for_output(self, text: str, timeout: float = 60) -> None:
        poll_until(lambda: text in self.output, timeout, f"{text!r} in the output:\n{self.output}")

    def stop(self) -> None:
        if self.process.poll() is None:
            self.process.kill()
            self.process.wait()


async def a_draft_reaches_an_agent(base_url: str, text: str, timeout: float = 90) -> dict[str, Any]:
    """A customer writes `text` on a new conversation; returns the queue item once its draft is ready."""
    from chatdesk.conversations.demo import DEMO_LOGINS

    session = login_session(base_url, *DEMO_LOGINS["agent"])
    ws = base_url.replace("http://", "ws://")
    customer = await Client.connect(f"{ws}/ws/chat/", origin=base_url)
    queue = await Client.connect(f"{ws}/ws/agents/queue/", origin=base_url, session=session)
    try:
        await customer.send({"type": "hello"})
        await customer.wait_for(lambda f: f["type"] == "welcome")
        await customer.send({"type": "message", "client_id": "m-1", "text": text})
        ready = await queue.wait_for(
            lambda f: f["type"] == "queue.update" and f["in_queue"]
            and f["item"]["latest_customer_text"] == text and f["item"]["draft_status"] == "ready",
            timeout,
        )  # fmt: skip
        item: dict[str, Any] = ready["item"]
        return item
    finally:
        await customer.close()
        await queue.close()
