"""Managers edit users and groups in the admin, but can never raise anyone's rights above their own."""

from __future__ import annotations

from typing import Any

import pytest
from django.contrib.auth.models import Group, Permission, User
from django.test import Client

from tests.conftest import PASSWORD

pytestmark = pytest.mark.django_db


def signed_in(user: User) -> Client:
    client = Client()
    client.force_login(user)
    return client


def permission(codename: str) -> Permission:
    return Permission.objects.get(codename=codename)


@pytest.fixture
def staff_manager(manager: User) -> User:
    manager.is_staff = True
    manager.save()
    return manager


@pytest.fixture
def superuser(db: Any) -> User:
    return User.objects.create_superuser("root", "root@example.com", PASSWORD)


def change_user(client: Client, user: User, **fields: Any) -> int:
    """POST the admin's change form for `user` as it is, with `fields` changed; the status code."""
    data: dict[str, Any] = {
        "username": user.username,
        "first_name": user.first_name,
        "last_name": user.last_name,
        "email": user.email,
        "is_active": "on" if user.is_active else "",
        "is_staff": "on" if user.is_staff else "",
        "is_superuser": "on" if user.is_superuser else "",
        "groups": [g.pk for g in user.groups.all()],
        "user_permissions": [p.pk for p in user.user_permissions.all()],
        "date_joined_0": user.date_joined.strftime("%Y-%m-%d"),
        "date_joined_1": user.date_joined.strftime("%H:%M:%S"),
        "last_login_0": "",
        "last_login_1": "",
    }
    data.update(fields)
    data = {k: v for k, v in data.items() if v != ""}
    return client.post(f"/admin/auth/user/{user.pk}/change/", data).status_code


def test_a_manager_cannot_make_themselves_superuser_or_give_themselves_permissions(staff_manager: User) -> None:
    client = signed_in(staff_manager)
    delete_conversations = permission("delete_conversation")
    admins = Group.objects.create(name="admins")
    admins.permissions.add(delete_conversations)

    change_user(client, staff_manager, is_superuser="on", first_name="Mona2")
    staff_manager.refresh_from_db()
    assert staff_manager.first_name == "Mona2"  # the form was accepted, without the superuser flag
    assert not staff_manager.is_superuser

    change_user(client, staff_manager, user_permissions=[delete_conversations.pk])
    change_user(client, staff_manager, groups=[g.pk for g in staff_manager.groups.all()] + [admins.pk])
    staff_manager.refresh_from_db()
    assert not staff_manager.has_perm("conversations.delete_conversation")
    assert list(staff_manager.groups.values_list("name", flat=True)) == ["managers"]

    page = client.get(f"/admin/auth/user/{staff_manager.pk}/change/").content.decode()
    assert 'name="is_superuser"' not in page and 'name="is_staff"' not in page
    assert f'value="{delete_conversations.pk}"' not in page
    assert f'value="{admins.pk}"' not in page


def test_a_manager_cannot_make_anyone_staff_or_superuser(staff_manager: User, agent: User) -> None:
    assert change_user(signed_in(staff_manager), agent, is_staff="on", is_superuser="on", last_name="Agentova") == 302
    agent.refresh_from_db()
    assert agent.last_name == "Agentova"
    assert not agent.is_staff and not agent.is_superuser


def test_a_manager_cannot_touch_a_superuser(staff_manager: User, superuser: User) -> None:
    client = signed_in(staff_manager)
    assert change_user(client, superuser, is_active="", first_name="Hacked") == 403
    assert client.post(f"/admin/auth/user/{superuser.pk}/password/", {}).status_code == 403
    assert client.post(f"/admin/auth/user/{superuser.pk}/delete/", {"post": "yes"}).status_code == 403
    superuser.refresh_from_db()
    assert superuser.is_active and superuser.first_name == ""


def test_a_manager_cannot_add_permissions_they_lack_to_a_group(staff_manager: User) -> None:
    managers = Group.objects.get(name="managers")
    before = set(managers.permissions.values_list("pk", flat=True))
    extra = permission("delete_conversation")
    response = signed_in(staff_manager).post(
        f"/admin/auth/group/{managers.pk}/change/", {"name": "managers", "permissions": [*before, extra.pk]}
    )
    assert response.status_code == 200  # refused: not a valid choice for them
    assert set(managers.permissions.values_list("pk", flat=True)) == before


def test_rights_a_manager_cannot_see_are_kept_when_they_edit(staff_manager: User, superuser: User, agent: User) -> None:
    agent.user_permissions.add(permission("delete_conversation"))
    assert change_user(signed_in(staff_manager), agent, user_permissions=[], first_name="Alicia") == 302
    agent = User.objects.get(pk=agent.pk)
    assert agent.first_name == "Alicia"
    assert agent.has_perm("conversations.delete_conversation")


def test_a_superuser_still_grants_staff_superuser_and_any_permission(superuser: User, agent: User) -> None:
    extra = permission("delete_conversation")
    client = signed_in(superuser)
    assert change_user(client, agent, is_staff="on", is_superuser="on", user_permissions=[extra.pk]) == 302
    agent.refresh_from_db()
    assert agent.is_staff and agent.is_superuser
    assert agent.user_permissions.filter(pk=extra.pk).exists()
