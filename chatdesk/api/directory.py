"""/api/v1/topics, /teams, /agents: who and what conversations are routed by (read only)."""

from __future__ import annotations

from typing import Any

from django.contrib.auth.models import User
from django.db.models import Q
from django.http import HttpRequest
from ninja import Query, Router

from chatdesk.api.auth import READ
from chatdesk.api.common import ERRORS, page
from chatdesk.api.schemas import AgentPage, Paging, TeamPage, TopicPage
from chatdesk.conversations.models import Team
from chatdesk.conversations.selectors import AGENT_GROUPS
from chatdesk.knowledge.models import Topic

router = Router(tags=["topics, teams and agents"])


@router.get("/topics", auth=READ, response={200: TopicPage, **ERRORS}, summary="List topics")
def topic_list(request: HttpRequest, paging: Query[Paging]) -> dict[str, Any]:
    """Topics by name, with the team whose queue their escalations wait in."""
    count, rows = page(Topic.objects.select_related("team_topic__team").order_by("name"), paging)
    items = []
    for t in rows:
        team_topic = getattr(t, "team_topic", None)
        items.append(
            {
                "id": t.pk,
                "name": t.name,
                "team": team_topic.team.name if team_topic else None,
                "autopilot": t.autopilot,
                "autopilot_min_confidence": t.autopilot_min_confidence,
            }
        )
    return {"count": count, "items": items}


@router.get("/teams", auth=READ, response={200: TeamPage, **ERRORS}, summary="List teams")
def team_list(request: HttpRequest, paging: Query[Paging]) -> dict[str, Any]:
    """Teams by name, with their members' usernames and their topics."""
    count, rows = page(Team.objects.prefetch_related("members", "topics").order_by("name"), paging)
    items = [
        {
            "id": t.pk,
            "name": t.name,
            "members": sorted(m.get_username() for m in t.members.all()),
            "topics": sorted(topic.name for topic in t.topics.all()),
        }
        for t in rows
    ]
    return {"count": count, "items": items}


@router.get("/agents", auth=READ, response={200: AgentPage, **ERRORS}, summary="List agents")
def agent_list(request: HttpRequest, paging: Query[Paging]) -> dict[str, Any]:
    """Active agents and managers, by username."""
    people = (
        User.objects.filter(is_active=True)
        .filter(Q(groups__name__in=AGENT_GROUPS) | Q(is_superuser=True))
        .distinct()
        .prefetch_related("groups", "teams")
        .order_by("username")
    )
    count, rows = page(people, paging)
    items = [
        {
            "username": u.get_username(),
            "name": u.get_full_name(),
            "is_manager": u.is_superuser or any(g.name == "managers" for g in u.groups.all()),
            "teams": sorted(t.name for t in u.teams.all()),
        }
        for u in rows
    ]
    return {"count": count, "items": items}
