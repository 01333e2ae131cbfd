"""Personas, data and the live stack shared by the whole suite."""

from __future__ import annotations

import itertools
import os
import tempfile
import time
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import pytest
import redis
from django.conf import settings as django_settings
from django.contrib.auth.models import User

from chatdesk.conversations import jobs, services
from chatdesk.conversations.models import Conversation, Draft, Message
from chatdesk.conversations.roles import groups_ensure
from chatdesk.drafting import registry
from chatdesk.drafting.base import DraftEngine
from chatdesk.knowledge.services import knowledge_seed_demo
from tests.live import LiveStack, start_live_stack

PASSWORD = "correct-horse-battery"


def pytest_configure() -> None:
    """In this process, close database connections after each use as Django did before DB_CONN_MAX_AGE:
    in-process sockets' database threads would otherwise keep connections that stop pytest-django from
    dropping the test database at the end. Live stacks' processes run with the desk's own setting."""
    django_settings.DATABASES["default"]["CONN_MAX_AGE"] = 0
    _flush_retries_deadlocks()


def _flush_retries_deadlocks() -> None:
    """A transactional test ends with `flush` (TRUNCATE, table after table) while a live stack's
    processes keep working on the same database; PostgreSQL may then pick the flush as a deadlock's
    victim. The flush is safe to run again: it does, a few times, before the test errors."""
    from django.core.management.base import CommandError
    from django.core.management.commands import flush

    handle = flush.Command.handle

    def handle_retrying(self: flush.Command, **options: Any) -> None:
        for attempt in range(5):
            try:
                return handle(self, **options)
            except CommandError as error:
                if attempt == 4 or "deadlock detected" not in str(error.__cause__):
                    raise
                time.sleep(0.2 * (attempt + 1))  # let the other transaction finish

    flush.Command.handle = handle_retrying  # type: ignore[method-assign]


def pytest_collection_modifyitems(items: list[pytest.Item]) -> None:
    """Browser tests run last: see _django_beside_playwright."""
    items.sort(key=lambda item: item.get_closest_marker("browser") is not None)


@pytest.fixture(autouse=True)
def _django_beside_playwright(request: pytest.FixtureRequest) -> None:
    """Playwright's sync API keeps an event loop running in the main thread for the rest of the session,
    which makes Django refuse the tests' own (synchronous) database calls. Django's documented way out
    is DJANGO_ALLOW_ASYNC_UNSAFE; it is set only once browser tests start, which run last, so every
    other test keeps Django's check against blocking calls in async code."""
    if request.node.get_closest_marker("browser"):
        os.environ["DJANGO_ALLOW_ASYNC_UNSAFE"] = "true"


@pytest.fixture(scope="session", autouse=True)
def _own_redis_keys() -> Iterator[None]:
    """This run's Redis keys (REDIS_PREFIX, unique per run in tests/run) start and end empty; other runs'
    keys in the same database are never touched."""
    client = redis.Redis.from_url(os.environ["REDIS_URL"])

    def clear() -> None:
        for key in client.scan_iter(match=f"{django_settings.REDIS_PREFIX}*", count=1000):
            client.delete(key)

    clear()
    yield
    clear()


@pytest.fixture(autouse=True)
def _fresh_rate_limits() -> None:
    """Per-address rate limits count in Redis across tests (one address: the test client's); each
    test starts with none counted."""
    client = redis.Redis.from_url(os.environ["REDIS_URL"])
    for key in client.scan_iter(match=f"{django_settings.REDIS_PREFIX}:*:throttle:*", count=1000):
        client.delete(key)


def _person(username: str, full_name: str, group: str | None) -> User:
    first, last = full_name.split(" ", 1)
    user = User.objects.create_user(username=username, password=PASSWORD, first_name=first, last_name=last)
    if group:
        agents, managers = groups_ensure()
        user.groups.add(agents if group == "agents" else managers)
    return user


@pytest.fixture
def agent(db: Any) -> User:
    return _person("alice", "Alice Agent", "agents")


@pytest.fixture
def other_agent(db: Any) -> User:
    return _person("bob", "Bob Agent", "agents")


@pytest.fixture
def manager(db: Any) -> User:
    return _person("mona", "Mona Manager", "managers")


@pytest.fixture
def outsider(db: Any) -> User:
    return _person("olga", "Olga Outsider", None)


@pytest.fixture
def knowledge(db: Any) -> None:
    """The demo shop's knowledge base."""
    knowledge_seed_demo()


UseEngine = Callable[[DraftEngine], None]


def drafts_queued(monkeypatch: pytest.MonkeyPatch) -> list[int]:
    """The draft ids whose draft_reply task the services queue from now on, recorded instead of sent."""
    queued: list[int] = []

    def send_task(name: str, args: list[int], **_options: Any) -> None:
        if name == jobs.DRAFT_REPLY:
            queued.append(args[0])

    monkeypatch.setattr(jobs.app, "send_task", send_task)
    return queued


@pytest.fixture
def use_engine(monkeypatch: pytest.MonkeyPatch, settings: Any) -> UseEngine:
    """Make drafts use the given engine instance for this test."""

    def install(engine: DraftEngine) -> None:
        name = f"test-{type(engine).__name__.lower()}"
        monkeypatch.setitem(registry._instances, name, engine)
        monkeypatch.setitem(registry.ENGINES, name, f"{type(engine).__module__}.{type(engine).__qualname__}")
        settings.DRAFT_ENGINE = name

    return install


@pytest.fixture
def conversation(db: Any) -> Conversation:
    return services.conversation_start()


_client_ids = itertools.count(1)


def draft_now(conversation: Conversation) -> Draft:
    """Run the pending draft as the worker would, and return it."""
    pending = Draft.objects.get(conversation=conversation, status=Draft.Status.PENDING)
    services.draft_generate(draft_id=pending.pk)
    return Draft.objects.get(pk=pending.pk)


def refreshed(conversation: Conversation) -> Conversation:
    conversation.refresh_from_db()
    return conversation


def say(conversation: Conversation, text: str, client_id: str | None = None) -> Message:
    """The customer sends `text` (a fresh client_id unless one is given)."""
    message, _ = services.customer_message_post(
        public_id=conversation.public_id, text=text, client_id=client_id or f"c-{next(_client_ids)}"
    )
    return message


@pytest.fixture(scope="session")
def live_stack(django_db_setup: Any, django_db_blocker: Any) -> Iterator[LiveStack]:
    """Daphne and a real Celery worker, as separate processes, on the test database and Redis."""
    with django_db_blocker.unblock():
        stack = start_live_stack()
    try:
        yield stack
    finally:
        stack.stop()


@pytest.fixture(scope="session")
def browser_type_launch_args(browser_type_launch_args: dict[str, Any]) -> dict[str, Any]:
    """Debian's Chromium binary, never a downloaded browser; its profile files stay in a temporary folder."""
    home = Path(tempfile.mkdtemp(prefix="chatdesk-chromium-"))
    return {
        **browser_type_launch_args,
        "executable_path": "/usr/lib/chromium/chromium",
        "args": [
            "--no-sandbox",
            "--disable-gpu",
            "--disable-background-networking",
            "--disable-component-update",
            "--disable-sync",
            "--no-first-run",
        ],
        "env": {**os.environ, "HOME": str(home), "TMPDIR": str(home)},
    }
