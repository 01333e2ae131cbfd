"""The managers' "we don't answer this" page."""

from __future__ import annotations

import pytest
from django.contrib.auth.models import User
from django.test import Client

from chatdesk.knowledge.models import OutOfScopeExample

pytestmark = pytest.mark.django_db


def signed_in(user: User) -> Client:
    client = Client()
    client.force_login(user)
    return client


def test_a_manager_imports_a_list_and_sees_it(manager: User) -> None:
    client = signed_in(manager)
    response = client.post(
        "/knowledge/out-of-scope/", {"questions": "Can I pay with bitcoin?\n\nDo you buy old phones?\n"}, follow=True
    )
    assert response.status_code == 200
    page = response.content.decode()
    assert "Imported 2 of 2 questions" in page
    assert "Can I pay with bitcoin?" in page and "Mona Manager" in page
    again = client.post("/knowledge/out-of-scope/", {"questions": "Can I pay with bitcoin?"}, follow=True)
    assert "Imported 0 of 1 questions" in again.content.decode()
    assert set(OutOfScopeExample.objects.values_list("source", "marked_by__username")) == {("import", "mona")}


def test_agents_cannot_import(agent: User) -> None:
    client = signed_in(agent)
    assert client.get("/knowledge/out-of-scope/").status_code == 403
    assert client.post("/knowledge/out-of-scope/", {"questions": "Can I pay with bitcoin?"}).status_code == 403
    assert not OutOfScopeExample.objects.exists()
