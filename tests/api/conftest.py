"""API clients holding a token of each scope, owned by the manager persona."""

from __future__ import annotations

import json
from collections.abc import Callable
from typing import Any

import pytest
from django.contrib.auth.models import User
from django.test import Client

from chatdesk.api.tokens import token_create


class ApiClient:
    """Django's test client with `Authorization: Bearer <secret>` and JSON bodies."""

    def __init__(self, secret: str | None) -> None:
        self.client = Client()
        self.headers = {"Authorization": f"Bearer {secret}"} if secret else {}

    def get(self, path: str, **query: Any) -> Any:
        return self.client.get(f"/api/v1{path}", query, headers=self.headers)

    def send(self, method: str, path: str, body: object) -> Any:
        call = getattr(self.client, method)
        return call(f"/api/v1{path}", json.dumps(body), content_type="application/json", headers=self.headers)

    def post(self, path: str, body: object) -> Any:
        return self.send("post", path, body)

    def patch(self, path: str, body: object) -> Any:
        return self.send("patch", path, body)

    def delete(self, path: str) -> Any:
        return self.client.delete(f"/api/v1{path}", headers=self.headers)


MakeClient = Callable[..., ApiClient]


@pytest.fixture
def api_client(manager: User) -> MakeClient:
    """api_client("write") → a client with a new token of that scope, owned by `owner` (the manager)."""

    def make(scope: str = "read", owner: User | None = None) -> ApiClient:
        _token, secret = token_create(manager=owner or manager, name=f"test {scope}", scope=scope)
        return ApiClient(secret)

    return make
