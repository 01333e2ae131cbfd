"""Two desks (or two test runs) on one Redis server and database never take each other's work."""

from __future__ import annotations

import redis
from django.conf import settings

from chatdesk.celery import app


def test_broker_and_channel_layer_keys_carry_the_runs_own_prefix() -> None:
    assert settings.CHANNEL_LAYERS["default"]["CONFIG"]["prefix"] == settings.REDIS_PREFIX
    assert app.conf.broker_transport_options["global_keyprefix"] == f"{settings.REDIS_PREFIX}:"


def test_a_queued_task_lands_under_this_runs_prefix_only() -> None:
    client = redis.Redis.from_url(settings.CELERY_BROKER_URL)
    with app.connection_for_write() as connection:
        app.send_task("chatdesk.tests.never_consumed", queue="isolation-probe", connection=connection)
    try:
        assert client.llen(f"{settings.REDIS_PREFIX}:isolation-probe") == 1
        assert client.llen("isolation-probe") == 0  # a worker of another run would read here
    finally:
        client.delete(f"{settings.REDIS_PREFIX}:isolation-probe")
