"""API tokens: managers create them (the secret shown once), list them by prefix, revoke them; each use is
recorded; scopes and the per-token rate limit hold."""

from __future__ import annotations

import re

import pytest
from django.contrib.auth.models import Group, User
from django.test import Client

from chatdesk.api.models import ApiToken
from tests.api.conftest import ApiClient, MakeClient

pytestmark = pytest.mark.django_db


def signed_in(user: User) -> Client:
    client = Client()
    client.force_login(user)
    return client


def test_a_manager_creates_a_token_sees_its_secret_once_and_revokes_it(manager: User) -> None:
    page = signed_in(manager)
    created = page.post("/api-tokens/", {"name": "Our drafting bot", "scope": "write"})
    assert created.status_code == 200
    assert "no-store" in created["Cache-Control"]
    secret = re.search(r'data-testid="token-secret">(cdk_[A-Za-z0-9_-]+)<', created.content.decode())
    assert secret is not None
    token = ApiToken.objects.get()
    assert (token.name, token.scope, token.owner) == ("Our drafting bot", "write", manager)
    assert secret.group(1) not in str(ApiToken.objects.values_list().get())  # only its hash is stored
    listing = page.get("/api-tokens/").content.decode()
    assert secret.group(1) not in listing
    assert f"{token.prefix}…" in listing and "never" in listing

    client = ApiClient(secret.group(1))
    assert client.get("/topics").status_code == 200
    token.refresh_from_db()
    assert token.last_used_at is not None
    assert "never" not in page.get("/api-tokens/").content.decode()

    revoked = page.post(f"/api-tokens/{token.pk}/revoke/", follow=True)
    assert "Revoked Our drafting bot" in revoked.content.decode()
    refused = client.get("/topics")
    assert refused.status_code == 401
    assert refused.json()["code"] == "invalid_token"


def test_a_token_needs_a_name_and_a_known_scope(manager: User) -> None:
    page = signed_in(manager)
    response = page.post("/api-tokens/", {"name": " ", "scope": "write"})
    assert response.status_code == 422
    assert "Give the token a name" in response.content.decode()
    assert page.post("/api-tokens/", {"name": "x", "scope": "root"}).status_code == 422
    assert not ApiToken.objects.exists()


def test_agents_cannot_manage_tokens(agent: User, manager: User, api_client: MakeClient) -> None:
    api_client("read")
    token = ApiToken.objects.get()
    assert signed_in(agent).get("/api-tokens/").status_code == 403
    assert signed_in(agent).post(f"/api-tokens/{token.pk}/revoke/").status_code == 403
    token.refresh_from_db()
    assert token.revoked_at is None


def test_requests_without_a_valid_token_are_refused(manager: User) -> None:
    missing = ApiClient(None).get("/conversations")
    assert missing.status_code == 401
    assert missing.json()["code"] == "not_authenticated"
    assert missing["WWW-Authenticate"] == "Bearer"
    assert ApiClient("cdk_forged").get("/conversations").json()["code"] == "invalid_token"
    # A session is not an API credential.
    assert signed_in(manager).get("/api/v1/conversations").status_code == 401


def test_scopes_read_cannot_write_write_cannot_administer(
    api_client: MakeClient, conversation: object, knowledge: None
) -> None:
    read, write = api_client("read"), api_client("write")
    reply = read.post(f"/conversations/{conversation.public_id}/messages", {"text": "Hello"})  # type: ignore[attr-defined]
    assert reply.status_code == 403
    assert reply.json()["code"] == "insufficient_scope"
    article = {"topic": "orders", "title": "New", "body": "Text"}
    assert read.post("/articles", article).status_code == 403
    assert write.post("/articles", article).json()["code"] == "insufficient_scope"
    assert write.get("/reports/metrics").status_code == 403
    assert api_client("admin").post("/articles", article).status_code == 201


def test_a_token_stops_working_with_its_owner(manager: User, api_client: MakeClient) -> None:
    admin = api_client("admin")
    assert admin.get("/reports/metrics").status_code == 200
    manager.groups.remove(Group.objects.get(name="managers"))
    manager.groups.add(Group.objects.get(name="agents"))
    assert admin.get("/reports/metrics").json()["code"] == "insufficient_scope"  # admin needs a manager
    assert admin.get("/topics").status_code == 200  # an agent may still read
    manager.is_active = False
    manager.save()
    assert admin.get("/topics").json()["code"] == "invalid_token"


def test_each_token_is_rate_limited(api_client: MakeClient, settings: object) -> None:
    settings.API_RATE_LIMIT_PER_MINUTE = 3  # type: ignore[attr-defined]
    first, second = api_client("read"), api_client("read")
    assert [first.get("/topics").status_code for _ in range(3)] == [200, 200, 200]
    limited = first.get("/topics")
    assert limited.status_code == 429
    body = limited.json()
    assert body["code"] == "rate_limited" and 1 <= body["retry_after"] <= 60
    assert limited["Retry-After"] == str(body["retry_after"])
    assert second.get("/topics").status_code == 200  # per token
