"""Live path: ChatDesk against a bare Channels relay on the same stack, side by side in one run.

Starts on loopback, on a PostgreSQL database and Redis keys of its own:
- the production topology: Daphne (`python -m chatdesk.serve`, one or more processes) and one prefork
  Celery worker drafting with the default engine;
- the bare relay (bench/relay_asgi.py) on the same launcher and channel layer: a socket's frame is
  forwarded through one group to the agents' sockets, nothing stored.

For each number of customers N (default 1, 50, 200) and each system, 5 agent dashboards watch (the
desk: `/ws/agents/queue/`, signed in; the relay: its agent sockets) and N customers each send a
message, wait until all 5 agents have it on screen (the desk: a `queue` or `queue.update` frame whose
`latest_customer_text` carries the message's marker), then send the next, for `--seconds`. It
prints messages/s and the p50/p99 of customer message -> visible on an agent's dashboard (one sample
per message and agent), errors (refusals, time-outs, dropped sockets), the desk/relay ratios, and
the last line JSON. With `--processes 1,2` the whole run is repeated with that many Daphne processes
per system, clients spread over them round-robin (the relay gets as many).

    .venv/bin/python bench/live_path.py [--customers 1,50,200] [--seconds 15] [--processes 1]
        [--postgres postgres://postgres@127.0.0.1:5432] [--redis redis://127.0.0.1:6379/14]

Traffic goes to 127.0.0.1 only; the database is dropped and the Redis keys deleted at the end.
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import json
import socket
import subprocess
import sys
import tempfile
import time
import uuid
from collections import Counter
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import websockets

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))
from bench.soak import free_port, login, prepare_database, stop_processes, unfinished_drafts  # noqa: E402
from bench.topology import isolated_run, remove  # noqa: E402

AGENTS = 5
SEEN_TIMEOUT_S = 30.0  # a message not on every dashboard by then counts as an error
CONNECT_TIMEOUT_S = 60.0


def percentile_ms(values: list[float], q: float) -> float | None:
    """Nearest rank, in milliseconds."""
    if not values:
        return None
    ordered = sorted(values)
    return round(1000 * ordered[min(len(ordered) - 1, max(0, int(q * len(ordered) + 0.5) - 1))], 1)


@dataclass
class Phase:
    """What one system did with N customers."""

    system: str
    customers: int
    seconds: float
    sent: int = 0
    delivered: int = 0  # messages every agent saw
    latencies: list[float] = field(default_factory=list)  # one per message and agent
    errors: Counter[str] = field(default_factory=Counter)
    tag: str = field(default_factory=lambda: uuid.uuid4().hex[:8])  # markers of earlier phases never match

    def figures(self) -> dict[str, Any]:
        return {
            "msgs_per_s": round(self.delivered / self.seconds, 1),
            "p50_ms": percentile_ms(self.latencies, 0.5),
            "p99_ms": percentile_ms(self.latencies, 0.99),
            "sent": self.sent,
            "delivered": self.delivered,
            "errors": sum(self.errors.values()),
            "error_kinds": dict(self.errors),
        }


class Board:
    """Which agent saw which marker when: a message counts as delivered once all agents saw it."""

    def __init__(self, agents: int) -> None:
        self.agents = agents
        self.seen: dict[str, dict[int, float]] = {}
        self.waiting: dict[str, asyncio.Event] = {}

    def expect(self, marker: str) -> asyncio.Event:
        event = self.waiting[marker] = asyncio.Event()
        return event

    def saw(self, agent: int, text: str) -> None:
        start = text.rfind("[m:")
        if start < 0:
            return
        marker = text[start + 3 : text.find("]", start)]
        seen = self.seen.setdefault(marker, {})
        if agent not in seen:
            seen[agent] = time.perf_counter()
            if len(seen) == self.agents and marker in self.waiting:
                self.waiting.pop(marker).set()


class System:
    """How clients talk to one system: the desk or the relay."""

    name = ""

    def __init__(self, ports: list[int]) -> None:
        self.ports = ports

    def url(self, n: int, path: str) -> str:
        return f"ws://127.0.0.1:{self.ports[n % len(self.ports)]}{path}"

    def origin(self, n: int) -> str:
        return f"http://127.0.0.1:{self.ports[n % len(self.ports)]}"

    async def agent(self, n: int, board: Board, ready: asyncio.Event, stop: asyncio.Event, phase: list[Phase]) -> None:
        raise NotImplementedError

    async def customer(self, n: int, board: Board, stop: asyncio.Event, phase: Phase) -> None:
        raise NotImplementedError


async def _read_until(ws: Any, kind: str) -> dict[str, Any]:
    while True:
        frame = json.loads(await asyncio.wait_for(ws.recv(), CONNECT_TIMEOUT_S))
        if frame.get("type") == kind:
            return frame
        if frame.get("type") == "error":
            raise RuntimeError(frame.get("code"))


async def _customer_loop(ws: Any, n: int, board: Board, stop: asyncio.Event, phase: Phase, frame: Any) -> None:
    """Send, wait until every agent saw it, send the next, until `stop`."""
    i = 0
    while not stop.is_set():
        marker = f"{phase.tag}-{n}-{i}"
        seen = board.expect(marker)
        sent_at = time.perf_counter()
        await ws.send(json.dumps(frame(marker, f"Where is my order? [m:{marker}]")))
        phase.sent += 1
        try:
            await asyncio.wait_for(seen.wait(), SEEN_TIMEOUT_S)
        except TimeoutError:
            phase.errors[f"seen_by_{len(board.seen.pop(marker, {}))}_of_{board.agents}_in_time"] += 1
            board.waiting.pop(marker, None)
            i += 1
            continue
        if stop.is_set():
            break  # finished after the clock stopped: not counted
        phase.delivered += 1
        phase.latencies += [at - sent_at for at in board.seen.pop(marker).values()]
        i += 1


class Desk(System):
    name = "chatdesk"

    def __init__(self, ports: list[int], sessions: list[str]) -> None:
        super().__init__(ports)
        self.sessions = sessions

    async def agent(self, n: int, board: Board, ready: asyncio.Event, stop: asyncio.Event, phase: list[Phase]) -> None:
        headers = {"Cookie": f"sessionid={self.sessions[n]}"}
        async with websockets.connect(
            self.url(n, "/ws/agents/queue/"),
            origin=self.origin(n),
            additional_headers=headers,
            max_size=None,  # type: ignore[arg-type]
        ) as ws:
            snapshot = await _read_until(ws, "queue")
            for item in snapshot["items"]:
                board.saw(n, item.get("latest_customer_text") or "")
            ready.set()
            while not stop.is_set():
                try:
                    frame = json.loads(await asyncio.wait_for(ws.recv(), 1.0))
                except TimeoutError:
                    continue
                if frame.get("type") == "queue.update" and frame.get("item"):
                    board.saw(n, frame["item"].get("latest_customer_text") or "")
                elif frame.get("type") == "error" and phase:
                    phase[-1].errors[f"agent_{frame.get('code')}"] += 1

    async def customer(self, n: int, board: Board, stop: asyncio.Event, phase: Phase) -> None:
        async with websockets.connect(self.url(n, "/ws/chat/"), origin=self.origin(n)) as ws:  # type: ignore[arg-type]
            await ws.send(json.dumps({"type": "hello"}))
            await _read_until(ws, "welcome")
            reader = asyncio.create_task(self._count_errors(ws, phase))
            try:
                await _customer_loop(
                    ws,
                    n,
                    board,
                    stop,
                    phase,
                    lambda marker, text: {"type": "message", "client_id": marker, "text": text},
                )
            finally:
                reader.cancel()

    @staticmethod
    async def _count_errors(ws: Any, phase: Phase) -> None:
        async for raw in ws:
            frame = json.loads(raw)
            if frame.get("type") == "error":
                phase.errors[frame.get("code", "?")] += 1


class Relay(System):
    name = "relay"

    async def agent(self, n: int, board: Board, ready: asyncio.Event, stop: asyncio.Event, phase: list[Phase]) -> None:
        async with websockets.connect(self.url(n, "/relay/agent/"), max_size=None) as ws:
            ready.set()
            while not stop.is_set():
                try:
                    board.saw(n, json.loads(await asyncio.wait_for(ws.recv(), 1.0)).get("text", ""))
                except TimeoutError:
                    continue

    async def customer(self, n: int, board: Board, stop: asyncio.Event, phase: Phase) -> None:
        async with websockets.connect(self.url(n, "/relay/customer/")) as ws:

            async def drain() -> None:
                async for _ack in ws:
                    pass

            reader = asyncio.create_task(drain())
            try:
                await _customer_loop(ws, n, board, stop, phase, lambda marker, text: {"type": "message", "text": text})
            finally:
                reader.cancel()


async def run_phase(system: System, customers: int, seconds: float) -> Phase:
    phase = Phase(system=system.name, customers=customers, seconds=seconds)
    board = Board(AGENTS)
    stop_agents, stop_customers = asyncio.Event(), asyncio.Event()
    ready = [asyncio.Event() for _ in range(AGENTS)]
    agents = [asyncio.create_task(system.agent(n, board, ready[n], stop_agents, [phase])) for n in range(AGENTS)]
    await asyncio.wait_for(asyncio.gather(*(event.wait() for event in ready)), CONNECT_TIMEOUT_S)

    async def one(n: int) -> None:
        try:
            await system.customer(n, board, stop_customers, phase)
        except (OSError, TimeoutError, websockets.InvalidHandshake, websockets.ConnectionClosed) as exc:
            phase.errors[f"customer_socket_{type(exc).__name__}"] += 1

    tasks = [asyncio.create_task(one(n)) for n in range(customers)]
    await asyncio.sleep(seconds)
    stop_customers.set()
    await asyncio.wait(tasks, timeout=SEEN_TIMEOUT_S + 5)
    stop_agents.set()
    await asyncio.gather(*agents, return_exceptions=True)
    for task in tasks:
        task.cancel()
    return phase


def start_servers(
    env: dict[str, str], work: Path, processes: int
) -> tuple[list[subprocess.Popen[bytes]], list[int], list[int]]:
    """The worker, `processes` Daphnes for the desk and as many for the relay."""
    started: list[subprocess.Popen[bytes]] = [
        subprocess.Popen(
            [
                sys.executable, "-m", "celery", "-A", "chatdesk", "worker", "--queues", "drafts,celery,webhooks",
                "--pool", "prefork", "--concurrency", "1", "--without-gossip", "--without-mingle",
                "--without-heartbeat", "--loglevel", "WARNING",
            ],
            cwd=ROOT, env=env, stdout=open(work / "worker.log", "wb"), stderr=subprocess.STDOUT,
        )
    ]  # fmt: skip
    desk_ports, relay_ports = [free_port() for _ in range(processes)], [free_port() for _ in range(processes)]
    for port, app in [
        *((p, "chatdesk.asgi:application") for p in desk_ports),
        *((p, "bench.relay_asgi:application") for p in relay_ports),
    ]:
        log = open(work / f"daphne-{port}.log", "wb")
        started.append(
            subprocess.Popen(
                [sys.executable, "-m", "chatdesk.serve", "--bind", "127.0.0.1", "--port", str(port), app],
                cwd=ROOT, env=env, stdout=log, stderr=subprocess.STDOUT,
            )
        )  # fmt: skip
    deadline = time.monotonic() + 60
    for port in [*desk_ports, *relay_ports]:
        while True:
            if any(p.poll() is not None for p in started) or time.monotonic() > deadline:
                stop_processes(started)
                raise SystemExit(f"the servers did not start; logs in {work}")
            with contextlib.suppress(OSError):
                socket.create_connection(("127.0.0.1", port), timeout=0.5).close()
                break
            time.sleep(0.1)
    return started, desk_ports, relay_ports


async def wait_for_drafts(limit_s: float = 120) -> None:
    """Let the worker finish the drafts of the previous phase, so they do not load the next one."""
    from asgiref.sync import sync_to_async

    deadline = time.monotonic() + limit_s
    while time.monotonic() < deadline:
        left = await sync_to_async(unfinished_drafts, thread_sensitive=False)()
        if not left["pending"] and not left["generating"]:
            return
        await asyncio.sleep(0.5)


async def drive(args: Any, desk_ports: list[int], relay_ports: list[int]) -> list[Phase]:
    sessions = [
        await asyncio.to_thread(login, f"http://127.0.0.1:{desk_ports[0]}", f"soak-agent-{n}") for n in range(AGENTS)
    ]
    desk, relay = Desk(desk_ports, sessions), Relay(relay_ports)
    # Warm-up: the worker child loads its encoder after the fork; the first draft waits for it.
    await run_phase(desk, 1, 3)
    await wait_for_drafts()
    phases: list[Phase] = []
    for customers in args.customers:
        for system in (relay, desk):
            phase = await run_phase(system, customers, args.seconds)
            phases.append(phase)
            figures = phase.figures()
            print(
                f"  {system.name:9s} N={customers:<4d} {figures['msgs_per_s']:7.1f} msgs/s  p50 {figures['p50_ms']} ms"
                f"  p99 {figures['p99_ms']} ms  errors {figures['errors']} {figures['error_kinds'] or ''}",
                flush=True,
            )
            await wait_for_drafts()
    return phases


def ratios(phases: list[Phase]) -> dict[str, dict[str, float | None]]:
    out: dict[str, dict[str, float | None]] = {}
    by = {(p.system, p.customers): p.figures() for p in phases}
    for (system, n), desk in by.items():
        if system != "chatdesk":
            continue
        relay = by[("relay", n)]
        out[str(n)] = {
            "throughput_desk_over_relay": round(desk["msgs_per_s"] / relay["msgs_per_s"], 3)
            if relay["msgs_per_s"]
            else None,
            "p50_desk_over_relay": round(desk["p50_ms"] / relay["p50_ms"], 2)
            if desk["p50_ms"] and relay["p50_ms"]
            else None,
        }
    return out


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--customers", default="1,50,200", help="numbers of customers, comma-separated")
    parser.add_argument("--seconds", type=float, default=15, help="how long each phase sends")
    parser.add_argument("--processes", default="1", help="Daphne processes per system, comma-separated runs (e.g. 1,2)")
    parser.add_argument("--postgres", default="postgres://postgres@127.0.0.1:5432", help="server (no database)")
    parser.add_argument("--redis", default="redis://127.0.0.1:6379/14")
    args = parser.parse_args()
    args.customers = [int(n) for n in args.customers.split(",")]
    process_counts = [int(n) for n in args.processes.split(",")]

    run = isolated_run(
        "live",
        args.postgres,
        args.redis,
        # Every simulated client comes from 127.0.0.1 and writes as fast as the desk answers: the
        # per-address and per-socket limits (which have tests of their own) would measure themselves.
        CHAT_HELLOS_PER_MINUTE_PER_ADDRESS="0",
        CHAT_MESSAGES_PER_MINUTE_PER_ADDRESS="0",
        CHAT_CONVERSATIONS_PER_HOUR_PER_ADDRESS="0",
        CHAT_RATE_LIMIT_MESSAGES="1000000",
        WS_FRAMES_PER_SOCKET="1000000",
        CLASSIFIER_TRAIN_EVERY_S="0",
    )
    env = run.env
    work = Path(tempfile.mkdtemp(prefix="chatdesk-live-"))
    runs: dict[str, Any] = {}
    servers: list[subprocess.Popen[bytes]] = []
    try:
        import django

        django.setup()
        prepare_database(AGENTS)
        for count in process_counts:
            servers, desk_ports, relay_ports = start_servers(env, work, count)
            print(f"{count} Daphne process(es) per system; {args.seconds:g} s per phase; logs in {work}", flush=True)
            phases = asyncio.run(drive(args, desk_ports, relay_ports))
            stop_processes(servers)
            runs[str(count)] = {
                "phases": {f"{p.system}_{p.customers}": p.figures() for p in phases},
                "ratios": ratios(phases),
            }
    finally:
        stop_processes(servers)
        remove(run)
    print()
    columns = (
        "processes",
        "N",
        "relay msgs/s",
        "desk msgs/s",
        "ratio",
        "relay p50 ms",
        "desk p50 ms",
        "ratio",
        "errors",
    )
    print(" ".join(f"{c:>12s}" for c in columns))
    for count, run in runs.items():
        for n in args.customers:
            relay, desk, ratio = run["phases"][f"relay_{n}"], run["phases"][f"chatdesk_{n}"], run["ratios"][str(n)]
            row = (count, n, relay["msgs_per_s"], desk["msgs_per_s"], ratio["throughput_desk_over_relay"])
            row += (relay["p50_ms"], desk["p50_ms"], ratio["p50_desk_over_relay"], desk["errors"])
            print(" ".join(f"{'-' if v is None else v!s:>12s}" for v in row))
    print(json.dumps({"seconds_per_phase": args.seconds, "runs": runs}))
    return 0


if __name__ == "__main__":
    sys.exit(main())
