"""Run the whole desk on one machine: (embedded Redis,) migrations, demo data, a Celery worker and Daphne."""

from __future__ import annotations

import io
import os
import signal
import socket
import subprocess
import sys
import time
from typing import Any

from django.conf import settings
from django.core.management import call_command
from django.core.management.base import BaseCommand, CommandError, CommandParser

from chatdesk.conversations.demo import DEMO_LOGINS
from chatdesk.embedded import die_with_parent

STOP_GRACE_S = 10


class Command(BaseCommand):
    help = (
        "Start everything ChatDesk needs and serve it until Ctrl-C or SIGTERM. With REDIS_URL unset it also "
        "starts the embedded Redis server, so nothing else has to be installed or running."
    )

    def add_arguments(self, parser: CommandParser) -> None:
        parser.add_argument("--host", default=os.environ.get("HOST", "127.0.0.1"))
        parser.add_argument("--port", type=int, default=int(os.environ.get("PORT", "8000")))
        parser.add_argument("--workers", type=int, default=1, help="Celery worker processes (default 1).")
        parser.add_argument("--no-demo", action="store_true", help="Do not seed the demo shop and logins.")

    def handle(self, *args: Any, **options: Any) -> None:
        self.children: list[tuple[str, subprocess.Popen[bytes]]] = []
        self.stopping = False
        signal.signal(signal.SIGTERM, self._request_stop)
        signal.signal(signal.SIGINT, self._request_stop)
        try:
            self._run(options)
        finally:
            self._stop_children()

    def _request_stop(self, *_: object) -> None:
        self.stopping = True

    def _spawn(self, name: str, argv: list[str], env: dict[str, str], **popen: Any) -> subprocess.Popen[bytes]:
        process = subprocess.Popen(argv, env=env, preexec_fn=die_with_parent, **popen)
        self.children.append((name, process))
        return process

    def _run(self, options: dict[str, Any]) -> None:
        env = {**os.environ, "DJANGO_SETTINGS_MODULE": "chatdesk.settings", "DATA_DIR": str(settings.DATA_DIR)}
        settings.DATA_DIR.mkdir(parents=True, exist_ok=True)
        if settings.EMBEDDED:
            redis = self._spawn(
                "embedded redis",
                [sys.executable, "-m", "chatdesk.embedded", str(settings.EMBEDDED_REDIS_PORT)],
                env,
                stdout=subprocess.PIPE,
            )
            assert redis.stdout is not None
            url = redis.stdout.readline().decode().strip()
            if not url.startswith("redis://"):
                raise CommandError("the embedded Redis server did not start; see the output above")
            env["REDIS_URL"] = f"{url}/0"
            self.stdout.write(f"Embedded Redis server at {url}")

        call_command("migrate", interactive=False, verbosity=0)
        if not options["no_demo"]:
            call_command("seed_demo", verbosity=0, stdout=io.StringIO())

        self._spawn(
            "celery worker",
            [
                sys.executable, "-m", "celery", "-A", "chatdesk", "worker",
                "--queues", "drafts,celery", "--pool", "prefork", "--concurrency", str(options["workers"]),
                "--beat", "--schedule", str(settings.DATA_DIR / "celerybeat-schedule"),
                "--without-gossip", "--without-mingle", "--without-heartbeat", "--loglevel", "WARNING",
            ],
            env,
        )  # fmt: skip
        host, port = options["host"], options["port"]
        self._spawn(
            "daphne",
            [sys.executable, "-m", "chatdesk.serve", "--bind", host, "--port", str(port)],
            env,
        )
        self._wait_for_port(host, port)
        base = f"http://{host}:{port}"
        self.stdout.write(
            self.style.SUCCESS(f"\nChatDesk is running at {base}/\n")
            + f"  Customer demo page   {base}/\n"
            + f"  Agents' dashboard    {base}/agents/   (login {' / '.join(DEMO_LOGINS['agent'])})\n"
            + f"  Manager reports      {base}/reports/  (login {' / '.join(DEMO_LOGINS['manager'])})\n"
            + f"  Admin                {base}/admin/    (manager login)\n"
            + "Press Ctrl-C to stop.\n"
        )
        while not self.stopping:
            for name, process in self.children:
                if process.poll() is not None:
                    raise CommandError(f"{name} exited with status {process.returncode}; stopping everything")
            time.sleep(0.5)
        self.stdout.write("Stopping…")

    def _wait_for_port(self, host: str, port: int, timeout: float = 60.0) -> None:
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline and not self.stopping:
            for name, process in self.children:
                if process.poll() is not None:
                    raise CommandError(f"{name} exited with status {process.returncode} while starting")
            try:
                socket.create_connection((host, port), timeout=0.5).close()
                return
            except OSError:
                time.sleep(0.2)
        if not self.stopping:
            raise CommandError(f"nothing answered on {host}:{port} within {timeout:.0f} s")

    def _stop_children(self) -> None:
        """Web server first, then the worker (it finishes its task), the embedded Redis server last."""
        for _name, process in reversed(self.children):
            if process.poll() is None:
                process.send_signal(signal.SIGTERM)
            try:
                process.wait(timeout=STOP_GRACE_S)
            except subprocess.TimeoutExpired:
                process.kill()
                process.wait()
