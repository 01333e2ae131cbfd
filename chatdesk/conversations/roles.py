"""The desk's two roles as groups: agents work conversations; managers also read reports and edit the
knowledge base, users, sensitive-topic rules and customer notices in the admin. `migrate` creates them
(apps.ConversationsConfig)."""

from __future__ import annotations

from django.contrib.auth.models import Group, Permission
from django.db import transaction

MANAGER_MODELS = (
    "article",
    "topic",
    "approvedreply",
    "classifierversion",
    "outofscopeexample",
    "escalationpolicy",
    "escalationthreshold",
    "user",
    "group",
    "sensitiverule",
    "customernotice",
    "team",
    "teamtopic",
)


@transaction.atomic
def groups_ensure() -> tuple[Group, Group]:
    """The agents and managers groups, managers with every permission on MANAGER_MODELS. Idempotent."""
    agents, _ = Group.objects.get_or_create(name="agents")
    managers, _ = Group.objects.get_or_create(name="managers")
    managers.permissions.set(Permission.objects.filter(content_type__model__in=MANAGER_MODELS))
    return agents, managers
