"""Run the whole desk on one machine: (embedded Redis,) migrations, demo data, a Celery worker, beat and Daphne."""

from __future__ import annotations

import io
import os
import sys
from pathlib import Path
from typing import Any

from django.conf import settings
from django.core.management import call_command
from django.core.management.base import BaseCommand, CommandError, CommandParser

from chatdesk.conversations.demo import DEMO_LOGINS
from chatdesk.embedded import answers_ping, first_free_port, redis_server_argv
from chatdesk.monitoring.exposition import multiprocess_dir_reset
from chatdesk.supervisor import ChildSpec, SupervisionError, Supervisor, accepts_connections, port_is_free


class Command(BaseCommand):
    help = (
        "Start everything ChatDesk needs and serve it until Ctrl-C or SIGTERM, restarting a child process "
        "that crashes. With REDIS_URL unset it also starts the embedded Redis server, so nothing else has "
        "to be installed or running."
    )

    def add_arguments(self, parser: CommandParser) -> None:
        parser.add_argument("--host", default=os.environ.get("HOST", "127.0.0.1"))
        parser.add_argument("--port", type=int, default=int(os.environ.get("PORT", "8000")))
        parser.add_argument("--workers", type=int, default=1, help="Celery worker processes (default 1).")
        parser.add_argument("--no-demo", action="store_true", help="Do not seed the demo shop and logins.")

    def handle(self, *args: Any, **options: Any) -> None:
        try:
            with Supervisor(report=self._report) as supervisor:
                self._run(supervisor, options)
                if supervisor.stopping:
                    self._report("Stopping…")
        except SupervisionError as error:
            raise CommandError(f"{error}; stopped everything") from error

    def _report(self, line: str) -> None:
        self.stdout.write(line)
        self.stdout.flush()  # a restart is news now, also when the output is a pipe or a file

    def _run(self, supervisor: Supervisor, options: dict[str, Any]) -> None:
        host, port = options["host"], options["port"]
        # Checked first: Daphne's readiness probe (the port accepts connections) would take another
        # server on this port for Daphne.
        if not port_is_free(host, port):
            raise CommandError(f"{host}:{port} is taken by another program; choose another with --port")
        env = {**os.environ, "DJANGO_SETTINGS_MODULE": "chatdesk.settings", "DATA_DIR": str(settings.DATA_DIR)}
        settings.DATA_DIR.mkdir(parents=True, exist_ok=True)
        # Every child writes its metrics there and Daphne's /metrics adds them up; emptied at each start.
        metrics_dir = Path(settings.PROMETHEUS_MULTIPROC_DIR or settings.DATA_DIR / "metrics")
        multiprocess_dir_reset(metrics_dir)
        env["PROMETHEUS_MULTIPROC_DIR"] = str(metrics_dir)
        if settings.EMBEDDED:
            # The configured port is where the search starts; restarts keep the port found here.
            redis_port = first_free_port(settings.EMBEDDED_REDIS_PORT)
            if redis_port != settings.EMBEDDED_REDIS_PORT:
                self._report(f"Port {settings.EMBEDDED_REDIS_PORT} is taken; using {redis_port}")
            supervisor.start(
                ChildSpec(
                    "embedded redis", redis_server_argv(redis_port, settings.DATA_DIR), ready=answers_ping(redis_port)
                )
            )
            env["REDIS_URL"] = f"redis://127.0.0.1:{redis_port}/0"
            self._report(f"Embedded Redis server at redis://127.0.0.1:{redis_port}")

        call_command("migrate", interactive=False, verbosity=0)
        if not options["no_demo"]:
            call_command("seed_demo", verbosity=0, stdout=io.StringIO())

        celery = [sys.executable, "-m", "celery", "-A", "chatdesk"]
        schedule = str(settings.DATA_DIR / "celerybeat-schedule")
        supervisor.start(
            ChildSpec(
                "celery worker",
                [
                    *celery, "worker", "--queues", "drafts,celery,webhooks", "--pool", "prefork",
                    "--concurrency", str(options["workers"]),
                    "--without-gossip", "--without-mingle", "--without-heartbeat", "--loglevel", "WARNING",
                ],
                env,
            )
        )  # fmt: skip
        # Beat is a child of its own rather than the worker's --beat: an embedded beat is a process the
        # worker neither watches nor takes down with it, so its crash went unnoticed (no requeue sweep)
        # and a killed worker left it orphaned. Production runs it on its own too.
        supervisor.start(
            ChildSpec(
                "celery beat",
                [*celery, "beat", "--schedule", schedule, "--loglevel", "WARNING"],
                env,
            )
        )
        supervisor.start(
            ChildSpec(
                "daphne",
                [sys.executable, "-m", "chatdesk.serve", "--bind", host, "--port", str(port)],
                env,
                ready=accepts_connections(host, port),
            )
        )
        if supervisor.stopping:
            return
        base = f"http://{host}:{port}"
        self._report(
            self.style.SUCCESS(f"\nChatDesk is running at {base}/\n")
            + f"  Customer demo page   {base}/\n"
            + f"  Agents' dashboard    {base}/agents/   (login {' / '.join(DEMO_LOGINS['agent'])})\n"
            + f"  Manager reports      {base}/reports/  (login {' / '.join(DEMO_LOGINS['manager'])})\n"
            + f"  Admin                {base}/admin/    (manager login)\n"
            + "Press Ctrl-C to stop.\n"
        )
        supervisor.run()
