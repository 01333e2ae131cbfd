"""Who is an agent or a manager has one answer (chatdesk.conversations.selectors), in views and templates alike."""

from __future__ import annotations

import pytest
from django.contrib.auth.models import Permission, User
from django.test import Client

pytestmark = pytest.mark.django_db


def navigation(user: User) -> str:
    client = Client()
    client.force_login(user)
    page = client.get("/accounts/login/").content.decode()
    return page.split('<nav class="topnav"', 1)[1].split("</nav>", 1)[0]


def test_managers_see_reports_in_the_menu_and_may_open_them(manager: User) -> None:
    assert 'href="/reports/"' in navigation(manager) and 'href="/agents/"' in navigation(manager)


def test_agents_see_the_queue_but_no_reports(agent: User) -> None:
    menu = navigation(agent)
    assert 'href="/agents/"' in menu and 'href="/reports/"' not in menu


def test_a_knowledge_editor_who_is_no_manager_sees_no_reports_link(outsider: User) -> None:
    """The menu used to ask for a knowledge-base permission; reports ask for the managers' group."""
    outsider.user_permissions.add(Permission.objects.get(codename="change_article"))
    menu = navigation(User.objects.get(pk=outsider.pk))
    assert 'href="/reports/"' not in menu and 'href="/agents/"' not in menu
    client = Client()
    client.force_login(outsider)
    assert client.get("/reports/").status_code == 403


def test_superusers_see_everything() -> None:
    root = User.objects.create_superuser("root", "root@example.com", "x-pass-123456")
    menu = navigation(root)
    assert 'href="/reports/"' in menu and 'href="/agents/"' in menu and 'href="/admin/"' in menu
