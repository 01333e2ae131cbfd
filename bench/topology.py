"""What the loopback benches share: a PostgreSQL database and Redis keys of their own for one run, the
environment their processes get, and the clean-up at the end."""

from __future__ import annotations

import os
import time
import uuid
from dataclasses import dataclass

import psycopg
import redis


@dataclass(frozen=True)
class Run:
    """One bench run's own database (on `server`) and Redis key prefix, and its processes' environment."""

    server: str
    database: str
    redis_url: str
    prefix: str
    env: dict[str, str]


def isolated_run(kind: str, postgres: str, redis_url: str, **settings: str) -> Run:
    """Create the run's database, put its environment (DATABASE_URL, REDIS_URL, REDIS_PREFIX, a secret
    key, quiet logs, and `settings`) in os.environ for this process and return it for child processes."""
    run_id = f"{int(time.time())}_{os.getpid()}"
    server = postgres.rstrip("/")
    database, prefix = f"chatdesk_{kind}_{run_id}", f"chatdesk-{kind}-{run_id}"
    env = {k: v for k, v in os.environ.items() if k not in ("DATABASE_URL", "REDIS_URL", "CELERY_BROKER_URL")}
    env.update(
        DATABASE_URL=f"{server}/{database}",
        REDIS_URL=redis_url,
        REDIS_PREFIX=prefix,
        SECRET_KEY=env.get("SECRET_KEY") or f"bench-only-secret-key-{uuid.uuid4().hex}",
        DJANGO_SETTINGS_MODULE="chatdesk.settings",
        LOG_LEVEL="WARNING",
        **settings,
    )
    os.environ.update(env)
    with psycopg.connect(f"{server}/postgres", autocommit=True) as conn:
        conn.execute(f'CREATE DATABASE "{database}"')
    return Run(server=server, database=database, redis_url=redis_url, prefix=prefix, env=env)


def remove(run: Run) -> None:
    """Drop the run's database and delete its Redis keys (after closing this process's connections)."""
    from django.db import connections

    connections.close_all()
    with psycopg.connect(f"{run.server}/postgres", autocommit=True) as conn:
        conn.execute(f'DROP DATABASE IF EXISTS "{run.database}" WITH (FORCE)')
    client = redis.Redis.from_url(run.redis_url)
    for key in client.scan_iter(match=f"{run.prefix}*", count=1000):
        client.delete(key)
