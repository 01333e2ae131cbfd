"""Who takes an escalated conversation: its team, and the least-loaded online member of it.

A conversation on a topic that belongs to a team (TeamTopic) waits in that team's queue; any other
waits in everyone's. When it is escalated it is assigned at once to the online agent of that team
(every agent, for everyone's queue) who is responsible for the fewest conversations still needing a
person (escalated or taken over), under AGENT_MAX_ASSIGNED each; ties go to the agent assigned least
recently. With nobody online or everyone at the cap it stays unassigned, and `assign_waiting` (run
when an agent opens the dashboard and by the periodic sweep) hands it out later, oldest first.

Functions here expect the caller to hold the conversation's row lock (services do) and do not save
the conversation.
"""

from __future__ import annotations

from datetime import datetime

from django.conf import settings
from django.contrib.auth.models import User
from django.db import transaction
from django.db.models import Count, Max, Q
from django.utils import timezone

from chatdesk.conversations import presence, realtime
from chatdesk.conversations.models import AgentAction, Conversation, Team, TeamTopic
from chatdesk.webhooks import events as webhook_events

Status = Conversation.Status
NEEDS_PERSON = (Status.ESCALATED, Status.TAKEN_OVER)


def team_for(conversation: Conversation) -> Team | None:
    """The team whose topic the conversation is on, if any."""
    if conversation.topic_id is None:
        return None
    link = TeamTopic.objects.select_related("team").filter(topic_id=conversation.topic_id).first()
    return link.team if link else None


def agents_of(team: Team | None) -> list[User]:
    """Who answers the team's queue: its members, or every agent for everyone's queue."""
    people = team.members.all() if team is not None else User.objects.filter(groups__name="agents")
    return list(people.filter(is_active=True).distinct())


def least_loaded(team: Team | None, *, exclude: int | None = None, now: datetime | None = None) -> User | None:
    """The online agent of `team` with the fewest conversations needing a person, under the cap."""
    now = now or timezone.now()
    states = presence.agent_states(now=now)
    candidates = [a for a in agents_of(team) if states.get(a.pk) == presence.ONLINE and a.pk != exclude]
    if not candidates:
        return None
    loads = (
        User.objects.filter(pk__in=[a.pk for a in candidates])
        .annotate(
            load=Count(
                "assigned_conversations",
                filter=Q(assigned_conversations__status__in=NEEDS_PERSON),
            ),
            last_assigned=Max(
                "assignments_received__created_at",
                filter=Q(assignments_received__kind=AgentAction.Kind.ASSIGN),
            ),
        )
        .filter(load__lt=settings.AGENT_MAX_ASSIGNED)
    )
    # Fewest first; among equals, whoever was assigned least recently (never assigned: first of all).
    ranked = sorted(loads, key=lambda a: (a.load, a.last_assigned is not None, a.last_assigned or now, a.pk))
    return ranked[0] if ranked else None


def route(conversation: Conversation, *, exclude: int | None = None, now: datetime | None = None) -> User | None:
    """Put an escalated conversation in its team's queue and, if nobody is responsible for it yet,
    assign it (recorded as an `assign` action). Returns the agent assigned now, if any."""
    conversation.team = team_for(conversation) if conversation.team_id is None else conversation.team
    if conversation.assigned_agent_id is not None or conversation.status != Status.ESCALATED:
        return None
    agent = least_loaded(conversation.team, exclude=exclude, now=now)
    if agent is not None:
        conversation.assigned_agent = agent
        AgentAction.objects.create(
            conversation=conversation,
            agent=agent,
            kind=AgentAction.Kind.ASSIGN,
            to_agent=agent,
            to_team=conversation.team,
        )
        webhook_events.conversation_assigned(conversation, agent, how="automatic")
    return agent


def assign_waiting(*, now: datetime | None = None, limit: int = 500) -> int:
    """Take back escalated conversations whose agent went offline without taking them over, and hand
    out unassigned ones, oldest escalation first (at most `limit` per call). Returns how many were
    assigned."""
    states = presence.agent_states(now=now)
    escalated = Conversation.objects.filter(status=Status.ESCALATED)
    orphaned = escalated.filter(assigned_agent__isnull=False).exclude(assigned_agent__in=list(states))
    handing_out = settings.AGENT_MAX_ASSIGNED > 0 and presence.ONLINE in states.values()
    unassigned = escalated.filter(assigned_agent__isnull=True) if handing_out else None
    assigned = 0
    full: set[int | None] = set()  # teams (None: everyone's queue) with nobody online under the cap
    for query in (orphaned, unassigned):
        if query is None:
            continue
        for pk, team_id in query.order_by("escalated_at").values_list("pk", "team_id")[:limit]:
            if query is unassigned and team_id in full:
                continue  # nobody of its team can take one more: no lock, no write
            with transaction.atomic():
                conversation = Conversation.objects.select_for_update().get(pk=pk)
                if conversation.status != Status.ESCALATED:
                    continue
                released = conversation.assigned_agent_id is not None and conversation.assigned_agent_id not in states
                if released:
                    conversation.assigned_agent = None
                if conversation.assigned_agent_id is None and conversation.team_id not in full:
                    if route(conversation, now=now) is not None:
                        assigned += 1
                    elif not released:
                        full.add(conversation.team_id)
                        continue
                elif not released:
                    continue
                conversation.save()
                realtime.conversation_changed(conversation.pk)
    return assigned
