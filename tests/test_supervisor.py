"""The supervision policy on its own, with tiny real children and short delays (rundesk's own children: see
tests/test_supervision.py)."""

from __future__ import annotations

import os
import signal
import time

import pytest

from chatdesk.supervisor import ChildSpec, SupervisionError, Supervisor
from tests.live import alive, poll_until

CRASHING = ChildSpec("crasher", ["sh", "-c", "exit 3"])
SLEEPING = ChildSpec("sleeper", ["sleep", "60"])


def test_a_crashing_child_is_restarted_with_doubling_delays_until_the_supervisor_gives_up() -> None:
    events: list[tuple[float, str]] = []
    policy = Supervisor(
        lambda line: events.append((time.monotonic(), line)),
        restart_delay_s=0.1, restart_delay_max_s=0.4, max_crashes=4, crash_window_s=60,
    )  # fmt: skip
    gives_up = r"crasher \(pid \d+\) exited with status 3: 5 crashes within 60 s; giving up"
    with pytest.raises(SupervisionError, match=gives_up), policy:
        policy.start(CRASHING)
        policy.run()
    crashes = [(at, line) for at, line in events if "crash " in line]
    restarts = [at for at, line in events if line.split()[1:3] == ["restarted", "crasher"]]
    assert [line.split(": ", 1)[1] for _, line in crashes] == [
        "crash 1 of 4 allowed within 60 s; restarting in 0.1 s",
        "crash 2 of 4 allowed within 60 s; restarting in 0.2 s",
        "crash 3 of 4 allowed within 60 s; restarting in 0.4 s",
        "crash 4 of 4 allowed within 60 s; restarting in 0.4 s",
    ]
    # Each restart waits its delay (less the moment between the crash being noticed and being reported).
    gaps = [restart - crashed for (crashed, _), restart in zip(crashes, restarts, strict=True)]
    assert all(gap >= delay - 0.02 for gap, delay in zip(gaps, [0.1, 0.2, 0.4, 0.4], strict=True)), gaps


def test_sigterm_stops_the_supervisor_and_its_children_and_a_killed_child_is_named_by_its_signal() -> None:
    lines: list[str] = []
    handler_before = signal.getsignal(signal.SIGTERM)
    with Supervisor(lines.append, restart_delay_s=0.05) as policy:
        policy.start(SLEEPING)
        first = policy.children[0].process
        assert first is not None
        first.kill()
        poll_until(lambda: (policy.tend(), any("restarted sleeper" in line for line in lines))[1], 5, "a restart")
        assert f"sleeper (pid {first.pid}) was killed by SIGKILL: crash 1 of 5" in "\n".join(lines)
        second = policy.children[0].process
        assert second is not None and second.pid != first.pid
        os.kill(os.getpid(), signal.SIGTERM)  # handled by the supervisor: a stop, not the end of pytest
        policy.run()
    assert second.returncode == -signal.SIGTERM
    assert not alive(second.pid)
    assert signal.getsignal(signal.SIGTERM) == handler_before
