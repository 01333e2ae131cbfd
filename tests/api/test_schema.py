"""Schemathesis against the API's own OpenAPI document, backed by PostgreSQL: for a few generated
requests per operation the desk never fails (5xx), and answers only with documented status codes, content
types and shapes. Bounded: at most MAX_EXAMPLES requests per operation, well under a minute in all."""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

import pytest
import schemathesis
from django.contrib.auth.models import User
from django.core.signals import request_finished, request_started
from django.core.wsgi import get_wsgi_application
from django.db import close_old_connections
from hypothesis import HealthCheck, Phase, settings
from schemathesis import checks

from chatdesk.api.tokens import token_create
from chatdesk.conversations import services
from chatdesk.knowledge.models import Article, Topic
from tests.conftest import drafts_queued, say

MAX_EXAMPLES = 4

schema = schemathesis.openapi.from_wsgi("/api/v1/openapi.json", get_wsgi_application(), headers={"Host": "127.0.0.1"})


@pytest.fixture
def in_test_transaction() -> Iterator[None]:
    """Requests go straight to the WSGI handler, which closes the database connection after each one;
    keep it open, as Django's test client does, so they run inside the test's transaction."""
    request_started.disconnect(close_old_connections)
    request_finished.disconnect(close_old_connections)
    yield
    request_started.connect(close_old_connections)
    request_finished.connect(close_old_connections)


@pytest.fixture
def secret(in_test_transaction: None, manager: User, settings: Any, monkeypatch: pytest.MonkeyPatch) -> str:
    """An admin token (every operation is reachable), an article and a conversation to act on."""
    drafts_queued(monkeypatch)
    settings.API_RATE_LIMIT_PER_MINUTE = 0
    topic = Topic.objects.create(name="orders")
    Article.objects.create(topic=topic, title="Where is my order", body="Track it under Orders.")
    say(services.conversation_start(), "Where is my order?")
    return token_create(manager=manager, name="schemathesis", scope="admin")[1]


@pytest.mark.django_db
@schema.parametrize()
@settings(
    max_examples=MAX_EXAMPLES,
    deadline=None,
    phases=[Phase.explicit, Phase.generate],
    suppress_health_check=list(HealthCheck),
    derandomize=True,
)
def test_the_api_keeps_to_its_schema(case: Any, secret: str) -> None:
    case.call_and_validate(
        headers={"Authorization": f"Bearer {secret}", "Host": "127.0.0.1"},
        checks=[
            checks.not_a_server_error,
            checks.status_code_conformance,
            checks.content_type_conformance,
            checks.response_schema_conformance,
        ],
    )
