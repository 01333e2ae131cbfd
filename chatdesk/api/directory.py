"""/api/v1/topics, /teams, /agents: who and what conversations are routed by. Topics and teams are
written through chatdesk.conversations.teams; agents are read only."""

from __future__ import annotations

from typing import Annotated, Any

from django.http import HttpRequest, HttpResponse
from django.utils.translation import gettext as _
from ninja import Path, Query, Router, Status

from chatdesk.api.auth import ADMIN, READ
from chatdesk.api.common import CONFLICT, ERRORS, NOT_FOUND, page
from chatdesk.api.schemas import (
    AgentPage,
    Paging,
    TeamIn,
    TeamOut,
    TeamPage,
    TeamPatch,
    TopicIn,
    TopicOut,
    TopicPage,
    TopicPatch,
)
from chatdesk.conversations import selectors, teams
from chatdesk.conversations.errors import ServiceError
from chatdesk.conversations.models import Team
from chatdesk.knowledge.models import Topic

router = Router(tags=["topics, teams and agents"])

TopicId = Annotated[int, Path(ge=1, le=2_147_483_647)]  # a PostgreSQL integer
TeamId = Annotated[int, Path(ge=1, le=2_147_483_647)]


def topic_out(t: Topic) -> dict[str, Any]:
    team_topic = getattr(t, "team_topic", None)
    return {
        "id": t.pk,
        "name": t.name,
        "team": team_topic.team.name if team_topic else None,
        "autopilot": t.autopilot,
        "autopilot_min_confidence": t.autopilot_min_confidence,
    }


def team_out(t: Team) -> dict[str, Any]:
    return {
        "id": t.pk,
        "name": t.name,
        "members": sorted(m.get_username() for m in t.members.all()),
        "topics": sorted(topic.name for topic in t.topics.all()),
    }


def _topic(topic_id: int) -> Topic:
    topic = Topic.objects.select_related("team_topic__team").filter(pk=topic_id).first()
    if topic is None:
        raise ServiceError("not_found", _("That topic does not exist."))
    return topic


def _team(team_id: int) -> Team:
    team = Team.objects.prefetch_related("members", "topics").filter(pk=team_id).first()
    if team is None:
        raise ServiceError("not_found", _("That team does not exist."))
    return team


@router.get("/topics", auth=READ, response={200: TopicPage, **ERRORS}, summary="List topics")
def topic_list(request: HttpRequest, paging: Query[Paging]) -> dict[str, Any]:
    """Topics by name, with the team whose queue their escalations wait in."""
    count, rows = page(Topic.objects.select_related("team_topic__team").order_by("name"), paging)
    return {"count": count, "items": [topic_out(t) for t in rows]}


@router.post("/topics", auth=ADMIN, response={201: TopicOut, **CONFLICT}, summary="Create a topic")
def topic_create(request: HttpRequest, body: TopicIn) -> Status[dict[str, Any]]:
    return Status(201, topic_out(_topic(teams.topic_create(**body.dict()).pk)))


@router.get("/topics/{int:topic_id}", auth=READ, response={200: TopicOut, **NOT_FOUND}, summary="Read a topic")
def topic_read(request: HttpRequest, topic_id: TopicId) -> dict[str, Any]:
    return topic_out(_topic(topic_id))


@router.patch("/topics/{int:topic_id}", auth=ADMIN, response={200: TopicOut, **CONFLICT}, summary="Change a topic")
def topic_update(request: HttpRequest, topic_id: TopicId, body: TopicPatch) -> dict[str, Any]:
    """Only the fields sent are changed; `"team": null` moves the topic to everyone's queue."""
    fields = body.dict(exclude_unset=True)
    changes = {k: v for k, v in fields.items() if v is not None or k == "team"}
    teams.topic_update(topic_id=topic_id, **changes)
    return topic_out(_topic(topic_id))


@router.delete("/topics/{int:topic_id}", auth=ADMIN, response={204: None, **CONFLICT}, summary="Delete a topic")
def topic_delete(request: HttpRequest, topic_id: TopicId) -> HttpResponse:
    """Conversations and drafts on it keep working without a topic; refused (409 `in_use`) while
    knowledge-base articles are filed under it."""
    teams.topic_delete(topic_id=topic_id)
    return HttpResponse(status=204)


@router.get("/teams", auth=READ, response={200: TeamPage, **ERRORS}, summary="List teams")
def team_list(request: HttpRequest, paging: Query[Paging]) -> dict[str, Any]:
    """Teams by name, with their members' usernames and their topics."""
    count, rows = page(Team.objects.prefetch_related("members", "topics").order_by("name"), paging)
    return {"count": count, "items": [team_out(t) for t in rows]}


@router.post("/teams", auth=ADMIN, response={201: TeamOut, **CONFLICT}, summary="Create a team")
def team_create(request: HttpRequest, body: TeamIn) -> Status[dict[str, Any]]:
    return Status(201, team_out(_team(teams.team_create(**body.dict()).pk)))


@router.get("/teams/{int:team_id}", auth=READ, response={200: TeamOut, **NOT_FOUND}, summary="Read a team")
def team_read(request: HttpRequest, team_id: TeamId) -> dict[str, Any]:
    return team_out(_team(team_id))


@router.patch("/teams/{int:team_id}", auth=ADMIN, response={200: TeamOut, **CONFLICT}, summary="Change a team")
def team_update(request: HttpRequest, team_id: TeamId, body: TeamPatch) -> dict[str, Any]:
    """Only the fields sent are changed; `members` and `topics` replace the old lists."""
    teams.team_update(team_id=team_id, **body.dict(exclude_unset=True, exclude_none=True))
    return team_out(_team(team_id))


@router.delete("/teams/{int:team_id}", auth=ADMIN, response={204: None, **NOT_FOUND}, summary="Delete a team")
def team_delete(request: HttpRequest, team_id: TeamId) -> HttpResponse:
    """Its conversations then wait in everyone's queue; its topics belong to no team."""
    teams.team_delete(team_id=team_id)
    return HttpResponse(status=204)


@router.get("/agents", auth=READ, response={200: AgentPage, **ERRORS}, summary="List agents")
def agent_list(request: HttpRequest, paging: Query[Paging]) -> dict[str, Any]:
    """Active agents and managers, by username."""
    people = selectors.agents_and_managers().prefetch_related("teams").order_by("username")
    count, rows = page(people, paging)
    items = [
        {
            "username": u.get_username(),
            "name": u.get_full_name(),
            "is_manager": u.is_manager,  # type: ignore[attr-defined]  # annotated by selectors.agents_and_managers
            "teams": sorted(t.name for t in u.teams.all()),
        }
        for u in rows
    ]
    return {"count": count, "items": items}
