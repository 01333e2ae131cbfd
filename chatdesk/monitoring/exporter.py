"""`python -m chatdesk.monitoring.exporter [--bind 127.0.0.1] [--port 9101]`: /metrics for a host that runs
Celery workers and no Daphne.

Daphne's /metrics adds up the metrics files of its own host; a worker-only host's PROMETHEUS_MULTIPROC_DIR
is read by nobody else. This serves that folder alone (no queue gauges: the Daphne hosts report those
from the database), with the same access rule as Daphne's /metrics (METRICS_TOKEN or
METRICS_ALLOWED_NETWORKS; 404 while neither is set). docs/operations.md › Metrics.
"""

from __future__ import annotations

import argparse
import os
from collections.abc import Callable, Iterable
from typing import Any
from wsgiref.simple_server import WSGIRequestHandler, make_server

import django

StartResponse = Callable[..., Any]


def application(environ: dict[str, Any], start_response: StartResponse) -> Iterable[bytes]:
    """WSGI: GET /metrics → the folder's metrics summed; 403/404 as for Daphne's /metrics."""
    from django.conf import settings
    from prometheus_client import CONTENT_TYPE_PLAIN_0_0_4, CollectorRegistry, generate_latest, multiprocess

    from chatdesk.monitoring import exposition

    def answer(status: str, body: bytes, content_type: str = "text/plain; charset=utf-8") -> list[bytes]:
        start_response(status, [("Content-Type", content_type), ("Content-Length", str(len(body)))])
        return [body]

    if environ.get("PATH_INFO") != "/metrics" or not exposition.metrics_enabled():
        return answer("404 Not Found", b"Not found.\n")
    if not exposition.may_read_from(environ.get("HTTP_AUTHORIZATION", ""), environ.get("REMOTE_ADDR", "")):
        return answer("403 Forbidden", exposition.REFUSED.encode())
    path = settings.PROMETHEUS_MULTIPROC_DIR
    if not path:
        return answer("503 Service Unavailable", b"PROMETHEUS_MULTIPROC_DIR is not set: there is nothing to read.\n")
    exposition.forget_dead_processes(path)
    registry = CollectorRegistry(auto_describe=False)
    multiprocess.MultiProcessCollector(registry, path=path)  # type: ignore[no-untyped-call]
    return answer("200 OK", generate_latest(registry), CONTENT_TYPE_PLAIN_0_0_4)


class _QuietHandler(WSGIRequestHandler):
    def log_message(self, format: str, *args: Any) -> None:
        """Scrapes every few seconds are not news (errors still reach stderr)."""


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0] if __doc__ else None)
    parser.add_argument("--bind", default="127.0.0.1", help="address to listen on (default 127.0.0.1)")
    parser.add_argument("--port", type=int, default=9101, help="port to listen on (default 9101)")
    options = parser.parse_args(argv)
    os.environ.setdefault("DJANGO_SETTINGS_MODULE", "chatdesk.settings")
    django.setup()
    with make_server(options.bind, options.port, application, handler_class=_QuietHandler) as server:
        server.serve_forever()


if __name__ == "__main__":
    main()
