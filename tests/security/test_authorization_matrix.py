"""Every URL and websocket endpoint × every kind of visitor (tests/security/matrix.py): what they get."""

from __future__ import annotations

from typing import Any

import pytest
from channels.testing import WebsocketCommunicator
from django.http import HttpResponse
from django.test import Client

from chatdesk.asgi import application
from tests.conversations.test_consumers import run
from tests.security.matrix import (
    A_TEXT,
    ADMIN_LOGIN,
    B_TEXT,
    LOGIN,
    MATRIX,
    PERSONAS,
    WS_MATRIX,
    World,
    build_world,
    url_routes,
)


def client_for(world: World, persona: str) -> Client:
    """Customers hold their conversation token (in the widget) but never a session; the others sign in."""
    client = Client()
    if persona in world.users:
        client.force_login(world.users[persona])  # a deactivated agent: signed in before deactivation
    return client


def outcome(response: HttpResponse) -> str:
    if response.status_code == 302:
        location = response["Location"]
        if location.startswith("/accounts/login/?next="):
            return LOGIN
        if location.startswith("/admin/login/?next="):
            return ADMIN_LOGIN
    return str(response.status_code)


def test_every_url_is_in_the_matrix() -> None:
    routes = list(url_routes())
    assert len(routes) == len(set(routes))
    assert set(routes) == set(MATRIX), "add new URLs to tests/security/matrix.py with who may open them"


def test_every_websocket_endpoint_is_in_the_matrix() -> None:
    routes = {str(route.pattern) for route in application.application_mapping["websocket"].routes}
    assert routes == set(WS_MATRIX)


@pytest.mark.django_db
def test_who_gets_what_over_http() -> None:
    world = build_world()
    clients = {persona: client_for(world, persona) for persona in PERSONAS}
    wrong: dict[str, dict[str, tuple[str, str]]] = {}
    for route, expected in MATRIX.items():
        url = world.url(route)
        got = {persona: outcome(clients[persona].get(url)) for persona in PERSONAS}
        if got != expected:
            wrong[url] = {p: (got[p], expected[p]) for p in PERSONAS if got[p] != expected[p]}
    assert not wrong, f"(got, expected) per visitor: {wrong}"


@pytest.mark.django_db
def test_an_unknown_conversation_is_not_found_for_agents() -> None:
    world = build_world()
    url = "/agents/c/00000000-0000-0000-0000-000000000000/"
    for persona in ("agent", "manager", "superuser"):
        assert client_for(world, persona).get(url).status_code == 404


HOST = (b"host", b"127.0.0.1:8000")
ORIGIN = (b"origin", b"http://127.0.0.1:8000")


def session_header(world: World, persona: str) -> list[tuple[bytes, bytes]]:
    if persona not in world.users:
        return []
    return [(b"cookie", f"sessionid={client_for(world, persona).cookies['sessionid'].value}".encode())]


async def customer_hello(headers: list[tuple[bytes, bytes]], token: str | None) -> dict[str, Any]:
    socket = WebsocketCommunicator(application, "/ws/chat/", headers=[HOST, ORIGIN, *headers])
    connected, _ = await socket.connect()
    assert connected
    await socket.send_json_to({"type": "hello", **({"token": token} if token else {})})
    frame = await socket.receive_json_from(timeout=5)
    await socket.disconnect()
    return frame


async def agent_socket(path: str, headers: list[tuple[bytes, bytes]]) -> tuple[str, list[dict[str, Any]]]:
    """What the socket did ("4403", "4404" or "snapshot") and the frames it sent first."""
    socket = WebsocketCommunicator(application, path, headers=[HOST, ORIGIN, *headers])
    connected, _ = await socket.connect()
    assert connected
    frames = [await socket.receive_json_from(timeout=5)]
    if frames[0]["type"] == "error":
        closed = await socket.receive_output(timeout=5)
        assert closed["type"] == "websocket.close"
        await socket.disconnect()
        return str(closed["code"]), frames
    while True:  # the snapshot: a queue frame, or conversation + history + draft frames
        if frames[-1]["type"] in ("queue", "draft"):
            break
        frames.append(await socket.receive_json_from(timeout=5))
    await socket.disconnect()
    return "snapshot", frames


@pytest.mark.django_db(transaction=True)
def test_who_gets_what_over_websockets() -> None:
    world = build_world()
    a_path = f"/ws/agents/conversations/{world.a.public_id}/"
    unknown_path = "/ws/agents/conversations/00000000-0000-0000-0000-000000000000/"

    async def scenario() -> None:
        for persona in PERSONAS:
            headers = await _headers(world, persona)
            expected = {route: cells[persona] for route, cells in WS_MATRIX.items()}

            welcome = await customer_hello(headers, world.tokens.get(persona))
            assert welcome["type"] == "welcome", persona
            texts = [m["text"] for m in welcome["messages"]]
            assert expected["ws/chat/"] == "own"
            assert texts == {"customer_a": [A_TEXT], "customer_b": [B_TEXT]}.get(persona, []), persona
            # Nobody reads A with anything but A's token: not B's, not A's id, not an agent's session.
            forged = await customer_hello(headers, world.a.public_id.hex)
            assert (forged["type"], forged["code"]) == ("error", "invalid_token"), persona

            got, frames = await agent_socket("/ws/agents/queue/", headers)
            assert got == expected["ws/agents/queue/"], persona
            if got == "4403":
                assert frames[0]["code"] == "not_agent"
            else:
                assert frames[0]["type"] == "queue" and A_TEXT in str(frames)  # every waiting conversation

            got, frames = await agent_socket(a_path, headers)
            assert got == expected["ws/agents/conversations/<uuid:public_id>/"], persona
            if got == "snapshot":
                assert A_TEXT in str(frames) and B_TEXT not in str(frames)
            else:
                assert A_TEXT not in str(frames)

            got, frames = await agent_socket(unknown_path, headers)
            assert got == ("4404" if expected["ws/agents/queue/"] == "snapshot" else "4403"), persona

            for elsewhere in ("/ws/agents/conversations/not-a-uuid/", "/ws/nowhere/"):
                got, frames = await agent_socket(elsewhere, headers)
                assert (got, frames[0]["code"]) == (expected[""], "not_found"), persona

    run(scenario)


async def _headers(world: World, persona: str) -> list[tuple[bytes, bytes]]:
    from channels.db import database_sync_to_async

    return await database_sync_to_async(session_header)(world, persona)
