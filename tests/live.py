"""Running the desk as real processes, and talking to it as its clients do (docs/protocol.md)."""

from __future__ import annotations

import asyncio
import contextlib
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
    port: int = 0
    daphne: subprocess.Popen[bytes] | None = None
    pool: list[str] = field(default_factory=list)
    workers: list[subprocess.Popen[bytes]] = field(default_factory=list)

    @property
    def ws_url(self) -> str:
        return self.base_url.replace("http://", "ws://")

    def start_daphne(self) -> None:
        """Start Daphne on this stack's port (again, after kill_daphne) and wait until it accepts connections."""
        assert self.log_dir is not None
        log = open(self.log_dir / "daphne.log", "ab")
        self.daphne = subprocess.Popen(
            [sys.executable, "-m", "chatdesk.serve", "--bind", "127.0.0.1", "--port", str(self.port)],
            cwd=ROOT, env=self.env, stdout=log, stderr=subprocess.STDOUT,
        )  # fmt: skip
        self.processes.append(self.daphne)
        wait_for_port(self.port, self.processes)

    def kill_daphne(self) -> None:
        """SIGKILL Daphne: no close frames, no cleanup; its sockets just drop."""
        assert self.daphne is not None
        self.daphne.send_signal(signal.SIGKILL)
        self.daphne.wait()
        self.processes.remove(self.daphne)
        self.daphne = None

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
                sys.executable, "-m", "celery", "-A", "chatdesk", "worker", "--queues", "drafts,celery,webhooks",
                *self.pool, "--without-gossip", "--without-mingle", "--without-heartbeat", "--loglevel", "INFO",
            ],
            cwd=ROOT, env=self.env, stdout=log, stderr=subprocess.STDOUT,
        )  # fmt: skip
        self.workers.append(worker)
        self.processes.append(worker)
        return worker

    def wait_worker_ready(self, timeout_s: float = 180.0) -> None:
        """Until the latest worker consumes tasks: it imports the engine first, which takes long on a busy
        machine, and a test's own waits should not have to include that."""
        assert self.log_dir is not None
        log, worker = self.log_dir / f"worker-{len(self.workers)}.log", self.workers[-1]

        def ready() -> bool:
            assert worker.poll() is None, f"the Celery worker exited; see {log}"
            return b" ready." in log.read_bytes()

        poll_until(ready, timeout_s, f"the Celery worker is ready; see {log}")

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


def start_live_stack(
    env_overrides: dict[str, str] | None = None, pool: list[str] = PREFORK, *, beat: bool = False
) -> LiveStack:
    """Daphne + one Celery worker process on the test database (call after the test database exists).

    With `beat`, the worker embeds celery beat, so the periodic sweeps (drafts_requeue_stale) run.
    """
    env = {**os.environ, "DATABASE_URL": _test_database_url(), **(env_overrides or {})}
    log_dir = Path(tempfile.mkdtemp(prefix="chatdesk-live-"))
    embedded_beat = ["--beat", "--schedule", str(log_dir / "beat-schedule")] if beat else []
    port = free_port()
    stack = LiveStack(
        base_url=f"http://127.0.0.1:{port}", log_dir=log_dir, env=env, port=port, pool=[*pool, *embedded_beat]
    )
    stack.start_worker()
    try:
        stack.start_daphne()
        stack.wait_worker_ready()
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


def _die_with_parent() -> None:
    """preexec_fn: the child gets SIGKILL when the test process dies, so no server outlives a run."""
    import ctypes

    ctypes.CDLL("libc.so.6", use_errno=True).prctl(1, signal.SIGKILL)  # PR_SET_PDEATHSIG


class RedisServer:
    """A Redis server of the test's own on a free port, without persistence, that the test may stop and start."""

    def __init__(self) -> None:
        self.port = free_port()
        self.url = f"redis://127.0.0.1:{self.port}/0"
        self.process: subprocess.Popen[bytes] | None = None

    def start(self) -> None:
        self.process = subprocess.Popen(
            ["redis-server", "--bind", "127.0.0.1", "--port", str(self.port), "--save", "", "--appendonly", "no"],
            stdout=subprocess.DEVNULL, preexec_fn=_die_with_parent,
        )  # fmt: skip
        wait_for_port(self.port, [self.process], timeout=10)

    def stop(self) -> None:
        if self.process is not None and self.process.poll() is None:
            self.process.send_signal(signal.SIGTERM)
            self.process.wait(timeout=10)
        self.process = None


class ResyncingCustomer:
    """A customer client that follows docs/protocol.md to the letter, running in the background.

    - keeps one message per `seq`;
    - a `seq` (in a message or an ack) more than one above the highest it holds without gaps means
      something was missed: it sends `hello` with the token and `after_seq` (one at a time);
    - a dropped connection is reconnected with exponential backoff (`backoff_s` doubling up to
      `backoff_cap_s`), then `hello` with the token and `after_seq`;
    - messages not yet acknowledged are sent again after every welcome, with the same `client_id`.
    """

    def __init__(
        self, ws_url: str, origin: str, *, token: str | None = None, backoff_s: float = 0.1, backoff_cap_s: float = 2.0
    ) -> None:
        self.url, self.origin = f"{ws_url}/ws/chat/", origin
        self.backoff_s, self.backoff_cap_s = backoff_s, backoff_cap_s
        self.token = token
        self.messages: dict[int, dict[str, Any]] = {}
        self.acks: dict[str, list[int]] = {}
        self.errors: list[dict[str, Any]] = []
        self.outbox: dict[str, str] = {}  # client_id -> text, until acknowledged or refused
        self.connections = 0
        self.gap_resyncs = 0
        self.replayed = 0  # messages first received in a welcome after a reconnect or a resync
        self.ready = False
        self._ws: Any = None
        self._awaiting_welcome = False
        self._highest_seen = 0
        self._changed = asyncio.Event()
        self._task: asyncio.Task[None] | None = None

    def contiguous_seq(self) -> int:
        seq = 0
        while seq + 1 in self.messages:
            seq += 1
        return seq

    def start(self) -> None:
        self._task = asyncio.create_task(self._run())

    async def stop(self) -> None:
        if self._task is not None:
            self._task.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await self._task
        if self._ws is not None:
            await self._ws.close()

    async def send_message(self, client_id: str, text: str) -> None:
        """Queue a message; it is sent now if connected, else after the next welcome, until acknowledged."""
        self.outbox[client_id] = text
        if self.ready:
            await self._send({"type": "message", "client_id": client_id, "text": text})

    async def wait_until(self, predicate: Any, timeout: float) -> None:
        """Return once predicate(self) holds; TimeoutError after `timeout` seconds."""
        deadline = time.monotonic() + timeout
        while True:
            self._changed.clear()
            if self._task is not None and self._task.done():
                self._task.result()  # raises what stopped the client
                raise AssertionError("the client stopped")
            if predicate(self):
                return
            remaining = deadline - time.monotonic()
            if remaining <= 0:
                raise TimeoutError(
                    f"not reached within {timeout} s: seqs {sorted(self.messages)}, acks {self.acks}, "
                    f"errors {self.errors[-3:]}, connections {self.connections}"
                )
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(self._changed.wait(), remaining)

    async def _run(self) -> None:
        attempt = 0
        while True:
            try:
                async with websockets.connect(self.url, origin=self.origin) as ws:  # type: ignore[arg-type]
                    self._ws = ws
                    self.connections += 1
                    await self._hello()
                    async for raw in ws:
                        frame = json.loads(raw)
                        if frame.get("type") == "welcome":
                            attempt = 0
                        await self._handle(frame)
            except (OSError, TimeoutError, websockets.ConnectionClosed, websockets.InvalidHandshake):
                pass
            self._ws, self.ready, self._awaiting_welcome = None, False, False
            self._changed.set()
            await asyncio.sleep(min(self.backoff_s * 2**attempt, self.backoff_cap_s))  # the backoff itself
            attempt += 1

    async def _send(self, frame: dict[str, Any]) -> None:
        if self._ws is None:
            return
        with contextlib.suppress(websockets.ConnectionClosed):  # the reader notices and reconnects
            await self._ws.send(json.dumps(frame))

    async def _hello(self) -> None:
        self._awaiting_welcome = True
        hello: dict[str, Any] = {"type": "hello"}
        if self.token:
            hello.update(token=self.token, after_seq=self.contiguous_seq())
        await self._send(hello)

    async def _resync_if_missing(self) -> None:
        if self.ready and not self._awaiting_welcome and self._highest_seen > self.contiguous_seq():
            self.gap_resyncs += 1
            await self._hello()

    async def _handle(self, frame: dict[str, Any]) -> None:
        kind = frame.get("type")
        if kind == "welcome":
            self.token = frame["token"]
            if frame.get("reset"):
                self.messages.clear()
            for message in frame["messages"]:
                if message["seq"] not in self.messages:
                    self.replayed += 1 if self.connections > 1 or self.gap_resyncs else 0
                    self.messages[message["seq"]] = message
            self._highest_seen = max(self._highest_seen, frame["last_seq"])
            self.ready, self._awaiting_welcome = True, False
            for client_id, text in list(self.outbox.items()):
                await self._send({"type": "message", "client_id": client_id, "text": text})
            await self._resync_if_missing()
        elif kind == "message":
            self.messages.setdefault(frame["seq"], frame)
            self._highest_seen = max(self._highest_seen, frame["seq"])
            await self._resync_if_missing()
        elif kind == "ack":
            client_id, seq = frame["client_id"], frame["seq"]
            self.acks.setdefault(client_id, []).append(seq)
            text = self.outbox.pop(client_id, None)
            if text is not None:  # our own message is stored at seq (as the widget shows it; the echo may follow)
                self.messages.setdefault(seq, {"seq": seq, "client_id": client_id, "sender": "customer", "text": text})
            self._highest_seen = max(self._highest_seen, seq)
            await self._resync_if_missing()
        elif kind == "error":
            self.errors.append(frame)
            if frame.get("code") != "rate_limited":
                self.outbox.pop(str(frame.get("client_id")), None)
        self._changed.set()


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
