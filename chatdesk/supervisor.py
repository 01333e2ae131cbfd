"""One supervision policy for the child processes of `manage.py rundesk` (docs/operations.md).

- Every child is started in its own process group (Ctrl-C in a terminal reaches the supervisor only,
  which then stops the children in order) and dies with the supervisor, even if that is killed with
  SIGKILL (`die_with_parent`).
- A child that exits while the desk is not stopping has crashed: it is restarted after a delay that
  starts at `restart_delay_s` and doubles with each crash within `crash_window_s`, up to
  `restart_delay_max_s`. More than `max_crashes` crashes of one child within `crash_window_s`
  stop everything (`SupervisionError`): a child that cannot stay up is not retried forever.
- Stopping (SIGTERM, SIGINT, or an error) sends SIGTERM to the children in reverse start order, each
  given `stop_grace_s` before SIGKILL, and waits for every one of them.
"""

from __future__ import annotations

import ctypes
import functools
import os
import signal
import socket
import subprocess
import threading
import time
from collections import deque
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field
from datetime import datetime
from types import FrameType, TracebackType
from typing import Any

TICK_S = 0.2
PR_SET_PDEATHSIG = 1


@dataclass(frozen=True)
class ChildSpec:
    """A child process: its name in reports, its command line and environment, and whether it serves yet.

    `ready` is a cheap probe (e.g. "the port accepts connections"); without one a child counts as
    ready once started.
    """

    name: str
    argv: Sequence[str]
    env: Mapping[str, str] | None = None
    ready: Callable[[], bool] | None = None


class SupervisionError(Exception):
    """A child could not be kept running: it crashed too often, or never became ready."""


@dataclass
class _Child:
    spec: ChildSpec
    process: subprocess.Popen[bytes] | None = None
    ready: bool = False
    restarts: int = 0
    crashes: deque[float] = field(default_factory=deque)
    restart_at: float = 0.0


def die_with_parent(parent_pid: int) -> None:
    """preexec_fn for child processes: the kernel kills the child (SIGKILL) when its parent dies, even by SIGKILL.

    `parent_pid` is the parent's pid, taken in the parent before the fork: a parent that died before
    the signal was asked for is noticed here and the child ends at once. SIGKILL rather than SIGTERM:
    a child whose supervisor is gone must not linger in a graceful shutdown (a worker would finish
    its draft first); late acknowledgement hands an interrupted draft to the next worker.
    The signal follows the parent *thread*, so children are spawned from the main thread only.
    """
    ctypes.CDLL("libc.so.6", use_errno=True).prctl(PR_SET_PDEATHSIG, signal.SIGKILL)
    if os.getppid() != parent_pid:
        os.kill(os.getpid(), signal.SIGKILL)


def accepts_connections(host: str, port: int) -> Callable[[], bool]:
    """A readiness probe: something accepts TCP connections on host:port."""

    def probe() -> bool:
        try:
            socket.create_connection((host, port), timeout=0.5).close()
            return True
        except OSError:
            return False

    return probe


def port_is_free(host: str, port: int) -> bool:
    """Nothing listens on host:port, so a server may bind it (with SO_REUSEADDR, as Twisted and Valkey do)."""
    with socket.socket(socket.AF_INET6 if ":" in host else socket.AF_INET) as sock:
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        try:
            sock.bind((host, port))
            return True
        except OSError:
            return False


def describe_exit(returncode: int) -> str:
    """How a child ended, from Popen.returncode (negative: the signal that killed it)."""
    if returncode >= 0:
        return f"exited with status {returncode}"
    try:
        return f"was killed by {signal.Signals(-returncode).name}"
    except ValueError:
        return f"was killed by signal {-returncode}"


class Supervisor:
    """Starts children, restarts crashed ones with exponential backoff, stops them all on the way out.

    Use it as a context manager in the main thread: it handles SIGTERM and SIGINT inside (they
    request a stop) and stops every child on exit, whatever the reason. `report` receives one line
    per event (a start, a crash with its exit status or signal and crash count, a restart).
    """

    def __init__(
        self,
        report: Callable[[str], None],
        *,
        restart_delay_s: float = 0.5,
        restart_delay_max_s: float = 8.0,
        max_crashes: int = 5,
        crash_window_s: float = 60.0,
        stop_grace_s: float = 10.0,
    ) -> None:
        self.report = report
        self.restart_delay_s = restart_delay_s
        self.restart_delay_max_s = restart_delay_max_s
        self.max_crashes = max_crashes
        self.crash_window_s = crash_window_s
        self.stop_grace_s = stop_grace_s
        self.children: list[_Child] = []
        self._stop_requested = threading.Event()
        self._previous_handlers: dict[int, Any] = {}

    def __enter__(self) -> Supervisor:
        for signum in (signal.SIGTERM, signal.SIGINT):
            self._previous_handlers[signum] = signal.signal(signum, self._request_stop)
        return self

    def __exit__(self, *exc: type[BaseException] | BaseException | TracebackType | None) -> None:
        try:
            self.stop()
        finally:
            for signum, handler in self._previous_handlers.items():
                signal.signal(signum, handler)

    @property
    def stopping(self) -> bool:
        return self._stop_requested.is_set()

    def _request_stop(self, signum: int, _frame: FrameType | None) -> None:
        self._stop_requested.set()

    def start(self, spec: ChildSpec, timeout_s: float = 120.0) -> None:
        """Start a child and return once it is ready (other children stay supervised meanwhile).

        Returns early if a stop is requested. Raises SupervisionError if the child keeps crashing or is
        not ready within `timeout_s`.
        """
        if self.stopping:
            return
        child = _Child(spec)
        self.children.append(child)
        self._spawn(child)
        deadline = time.monotonic() + timeout_s
        while not child.ready and not self.stopping:
            if time.monotonic() > deadline:
                raise SupervisionError(f"{spec.name} was not ready within {timeout_s:.0f} s")
            self._stop_requested.wait(TICK_S)
            self.tend()

    def run(self) -> None:
        """Supervise until SIGTERM or SIGINT. Raises SupervisionError if a child crashes too often."""
        while not self.stopping:
            self._stop_requested.wait(TICK_S)
            self.tend()

    def tend(self) -> None:
        """One round of the policy: notice crashes, restart children whose delay is over, probe readiness."""
        now = time.monotonic()
        for child in self.children:
            if self.stopping:
                return
            if child.process is None:
                if now >= child.restart_at:
                    child.restarts += 1
                    self._spawn(child)
            elif child.process.poll() is not None:
                self._crashed(child, now)
            elif not child.ready:
                child.ready = child.spec.ready is None or child.spec.ready()
                if child.ready and child.restarts:
                    self.report(f"{self._now()} {child.spec.name} is up again")

    def _spawn(self, child: _Child) -> None:
        spec = child.spec
        child.process = subprocess.Popen(
            list(spec.argv),
            env=None if spec.env is None else dict(spec.env),
            preexec_fn=functools.partial(die_with_parent, os.getpid()),
            process_group=0,
        )
        child.ready = spec.ready is None
        verb = "restarted" if child.restarts else "started"
        self.report(f"{self._now()} {verb} {spec.name} (pid {child.process.pid})")

    def _crashed(self, child: _Child, now: float) -> None:
        assert child.process is not None
        how = describe_exit(child.process.returncode)
        name, pid = child.spec.name, child.process.pid
        child.process = None
        child.ready = False
        child.crashes.append(now)
        while child.crashes and child.crashes[0] < now - self.crash_window_s:
            child.crashes.popleft()
        crashes = len(child.crashes)
        window = f"{self.crash_window_s:.0f} s"
        if crashes > self.max_crashes:
            raise SupervisionError(f"{name} (pid {pid}) {how}: {crashes} crashes within {window}; giving up")
        delay = min(self.restart_delay_s * 2 ** (crashes - 1), self.restart_delay_max_s)
        child.restart_at = now + delay
        self.report(
            f"{self._now()} {name} (pid {pid}) {how}: crash {crashes} of {self.max_crashes} allowed within "
            f"{window}; restarting in {delay:g} s"
        )

    def stop(self) -> None:
        """SIGTERM to each running child, last started first; SIGKILL after `stop_grace_s`. Waits for all."""
        self._stop_requested.set()
        for child in reversed(self.children):
            process = child.process
            if process is None or process.poll() is not None:
                continue
            process.send_signal(signal.SIGTERM)
            asked = time.monotonic()
            try:
                process.wait(timeout=self.stop_grace_s)
                self.report(f"{self._now()} stopped {child.spec.name} in {time.monotonic() - asked:.1f} s")
            except subprocess.TimeoutExpired:
                self.report(f"{self._now()} {child.spec.name} did not stop within {self.stop_grace_s:g} s; killed")
                process.kill()
                process.wait()

    @staticmethod
    def _now() -> str:
        return datetime.now().strftime("%H:%M:%S")
