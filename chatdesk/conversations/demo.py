"""Demo data for the embedded default: the shop's knowledge base and two logins, one per role."""

from __future__ import annotations

from django.contrib.auth.models import User
from django.db import transaction

from chatdesk.conversations.roles import groups_ensure
from chatdesk.knowledge.services import knowledge_seed_demo

# Demo-only credentials, printed by `manage.py rundesk`; the embedded default listens on 127.0.0.1.
DEMO_LOGINS = {"agent": ("agent", "agent-demo-pass"), "manager": ("manager", "manager-demo-pass")}


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
