"""Demo data for the embedded default: the shop's knowledge base, groups with their permissions, two logins."""

from __future__ import annotations

from django.contrib.auth.models import Group, Permission, User
from django.db import transaction

from chatdesk.knowledge.services import knowledge_seed_demo

# Demo-only credentials, printed by `manage.py rundesk`; the embedded default listens on 127.0.0.1.
DEMO_LOGINS = {"agent": ("agent", "agent-demo-pass"), "manager": ("manager", "manager-demo-pass")}

MANAGER_MODELS = ("article", "topic", "approvedreply", "selectorversion", "user", "group")


@transaction.atomic
def groups_ensure() -> tuple[Group, Group]:
    """The two roles: agents work conversations; managers also read reports and edit the knowledge base and users."""
    agents, _ = Group.objects.get_or_create(name="agents")
    managers, _ = Group.objects.get_or_create(name="managers")
    managers.permissions.set(Permission.objects.filter(content_type__model__in=MANAGER_MODELS))
    return agents, managers


@transaction.atomic
def demo_seed() -> int:
    """Idempotent: returns how many articles were new."""
    agents, managers = groups_ensure()
    for role, group, is_staff in (("agent", agents, False), ("manager", managers, True)):
        username, password = DEMO_LOGINS[role]
        user, created = User.objects.get_or_create(
            username=username, defaults={"first_name": role.title(), "last_name": "Demo", "is_staff": is_staff}
        )
        if created:
            user.set_password(password)
            user.save()
        user.groups.add(group)
    return knowledge_seed_demo()
