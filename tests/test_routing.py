"""Routing with several agents online through their websockets: assignment by load and cap, teams,
presence going offline, claim, release, transfer, and who is looking."""

from __future__ import annotations

import asyncio
from datetime import timedelta
from typing import Any

import pytest
from channels.db import database_sync_to_async
from channels.testing import WebsocketCommunicator
from django.contrib.auth.models import User
from django.utils import timezone

from chatdesk.conversations import assignment, frames, services
from chatdesk.conversations.models import AgentAction, Conversation, Team, TeamTopic
from chatdesk.conversations.roles import groups_ensure
from chatdesk.knowledge.models import Topic
from tests.agents.test_consumers import connect, session_cookie
from tests.conftest import say
from tests.conversations.test_consumers import receive_until, run

pytestmark = pytest.mark.django_db(transaction=True)


@pytest.fixture
def carol(db: Any) -> User:
    user = User.objects.create_user(username="carol", password="x", first_name="Carol", last_name="Agent")
    user.groups.add(groups_ensure()[0])
    return user


async def at_desk(*agents: User) -> list[WebsocketCommunicator]:
    """Each agent opens the dashboard's queue (which makes them online)."""
    sockets = []
    for agent in agents:
        socket = await connect("/ws/agents/queue/", await database_sync_to_async(session_cookie)(agent))
        await receive_until(socket, "queue")
        sockets.append(socket)
    return sockets


def escalated(topic: Topic | None = None) -> Conversation:
    conversation = services.conversation_start()
    if topic is not None:
        Conversation.objects.filter(pk=conversation.pk).update(topic=topic)
    services.conversation_request_human(public_id=conversation.public_id)
    return escalated_again(conversation)


def test_escalations_go_to_the_least_loaded_online_agent_under_the_cap(
    agent: User, other_agent: User, carol: User, settings: Any
) -> None:
    settings.AGENT_MAX_ASSIGNED = 2

    async def scenario() -> None:
        sockets = await at_desk(agent, other_agent)  # carol is not at the desk
        owners = [(await database_sync_to_async(escalated)()).assigned_agent for _ in range(5)]
        assert [o.username if o else None for o in owners] == ["alice", "bob", "alice", "bob", None]
        update = await receive_until(sockets[0], "queue.update")
        assert update["item"]["assigned_agent_username"] in ("alice", "bob")
        for socket in sockets:
            await socket.disconnect()

    run(scenario)
    assert AgentAction.objects.filter(kind="assign").count() == 4


def test_a_team_topic_waits_in_its_team_and_goes_to_a_member(agent: User, other_agent: User) -> None:
    billing = Topic.objects.create(name="billing")
    team = Team.objects.create(name="Billing")
    team.members.add(other_agent)
    TeamTopic.objects.create(team=team, topic=billing)

    async def scenario() -> None:
        sockets = await at_desk(agent, other_agent)
        first = await database_sync_to_async(escalated)(billing)
        second = await database_sync_to_async(escalated)(billing)
        general = await database_sync_to_async(escalated)()
        assert (first.team, first.assigned_agent) == (team, other_agent)
        assert second.assigned_agent == other_agent  # alice is idle but not in the team
        assert (general.team, general.assigned_agent) == (None, agent)
        for socket in sockets:
            await socket.disconnect()

    run(scenario)


def test_with_nobody_online_it_waits_and_goes_to_the_first_agent_who_arrives(agent: User) -> None:
    waiting = escalated()
    assert waiting.assigned_agent is None

    async def scenario() -> None:
        (socket,) = await at_desk(agent)
        await socket.disconnect()

    run(scenario)
    waiting.refresh_from_db()
    assert waiting.assigned_agent == agent


def test_an_agent_gone_offline_loses_what_they_had_not_taken_over(
    agent: User, other_agent: User, settings: Any
) -> None:
    after_grace = timezone.now() + timedelta(seconds=settings.AGENT_OFFLINE_GRACE_S + 1)

    async def scenario() -> None:
        sockets = await at_desk(agent, other_agent)
        conversation = await database_sync_to_async(escalated)()
        owner = conversation.assigned_agent
        assert owner is not None
        leaver, stayer = (0, 1) if owner == agent else (1, 0)
        await sockets[leaver].disconnect()  # closes the tab
        sweep = database_sync_to_async(assignment.assign_waiting)
        assert await sweep() == 0  # within the grace: a reload keeps it
        assert (await database_sync_to_async(escalated_again)(conversation)).assigned_agent == owner
        assert await sweep(now=after_grace) == 1
        taken = await database_sync_to_async(escalated_again)(conversation)
        assert taken.assigned_agent == (agent, other_agent)[stayer]
        await sockets[stayer].disconnect()

    run(scenario)


def escalated_again(conversation: Conversation) -> Conversation:
    return Conversation.objects.select_related("assigned_agent", "team").get(pk=conversation.pk)


def test_two_agents_claiming_at_once_one_wins_and_the_other_is_told_who(agent: User, other_agent: User) -> None:
    conversation = escalated()  # nobody online: unassigned
    path = f"/ws/agents/conversations/{conversation.public_id}/"

    async def scenario() -> None:
        alice = await connect(path, await database_sync_to_async(session_cookie)(agent))
        bob = await connect(path, await database_sync_to_async(session_cookie)(other_agent))
        for socket in (alice, bob):
            await receive_until(socket, "draft")
        await asyncio.gather(
            alice.send_json_to({"type": "claim", "request_id": 1}),
            bob.send_json_to({"type": "claim", "request_id": 1}),
        )
        answers = [await receive_until_any(s, ("ack", "error")) for s in (alice, bob)]
        kinds = sorted(a["type"] for a in answers)
        assert kinds == ["ack", "error"]
        refusal = next(a for a in answers if a["type"] == "error")
        assert refusal["code"] == "already_claimed" and refusal["by"] in ("Alice Agent", "Bob Agent")
        for socket in (alice, bob):
            await socket.disconnect()

    run(scenario)
    assert AgentAction.objects.filter(kind="claim").count() == 1


async def receive_until_any(socket: WebsocketCommunicator, types: tuple[str, ...]) -> dict[str, Any]:
    while True:
        frame = await socket.receive_json_from(timeout=5)
        if frame["type"] in types:
            return frame


def test_transfer_to_an_agent_or_a_team_with_a_note_and_release(agent: User, other_agent: User) -> None:
    team = Team.objects.create(name="Returns")
    team.members.add(other_agent)
    conversation = escalated()
    services.conversation_take_over(public_id=conversation.public_id, agent=agent)
    path = f"/ws/agents/conversations/{conversation.public_id}/"

    async def scenario() -> None:
        alice = await connect(path, await database_sync_to_async(session_cookie)(agent))
        await receive_until(alice, "draft")
        await alice.send_json_to({"type": "transfer", "to_agent": "nobody", "request_id": "t0"})
        assert (await receive_until(alice, "error"))["code"] == "not_found"
        await alice.send_json_to({"type": "transfer", "to_agent": "bob", "to_team": "Returns", "request_id": "t1"})
        assert (await receive_until(alice, "error"))["code"] == "invalid_request"
        await alice.send_json_to(
            {"type": "transfer", "to_agent": "bob", "note": "Wants a refund for order 1182", "request_id": "t2"}
        )
        await receive_until(alice, "ack", request_id="t2")
        frame = await receive_until(alice, "conversation")
        assert frame["assigned_agent_username"] == "bob" and frame["status"] == "taken_over"
        assert frame["last_transfer"]["note"] == "Wants a refund for order 1182"
        assert frame["last_transfer"]["to_agent"] == "Bob Agent"
        await alice.disconnect()

    run(scenario)

    services.conversation_transfer(public_id=conversation.public_id, agent=other_agent, to_team="Returns", note="")
    conversation.refresh_from_db()
    assert (conversation.status, conversation.team) == ("escalated", team)
    assert conversation.assigned_agent is None  # nobody of Returns is online
    services.conversation_claim(public_id=conversation.public_id, agent=other_agent)
    services.conversation_release(public_id=conversation.public_id, agent=other_agent)
    conversation.refresh_from_db()
    assert conversation.assigned_agent is None
    with pytest.raises(services.ServiceError) as refused:
        services.conversation_release(public_id=conversation.public_id, agent=other_agent)
    assert refused.value.code == "not_assigned"


def test_agents_see_who_else_has_the_conversation_open(agent: User, other_agent: User) -> None:
    conversation = escalated()
    path = f"/ws/agents/conversations/{conversation.public_id}/"

    async def scenario() -> None:
        alice = await connect(path, await database_sync_to_async(session_cookie)(agent))
        assert [a["username"] for a in (await receive_until(alice, "viewers"))["agents"]] == ["alice"]
        bob = await connect(path, await database_sync_to_async(session_cookie)(other_agent))
        both = await receive_until(alice, "viewers")
        assert sorted(a["name"] for a in both["agents"]) == ["Alice Agent", "Bob Agent"]
        await bob.disconnect()
        assert [a["username"] for a in (await receive_until(alice, "viewers"))["agents"]] == ["alice"]
        await alice.disconnect()

    run(scenario)


def test_the_agent_gets_a_summary_of_what_the_customer_wants_and_what_was_answered(agent: User) -> None:
    conversation = services.conversation_start()
    say(conversation, "hi")
    say(conversation, "My parcel never arrived at the depot")
    services.agent_reply(public_id=conversation.public_id, agent=agent, text="We resent it on Monday.")
    services.conversation_hand_back(public_id=conversation.public_id, agent=agent)
    say(conversation, "Still nothing. I want to talk to a person")
    conversation.refresh_from_db()
    assert conversation.status == "escalated"
    assert conversation.handoff_summary == (
        "Wants: “My parcel never arrived at the depot”. Latest: “Still nothing. I want to talk to a person”. "
        "Already answered (1 reply), last: “We resent it on Monday.”."
    )
    assert frames.conversation_frame(conversation)["handoff_summary"] == conversation.handoff_summary
