"""Internal notes, tags and typing indicators (docs/notes.md): the agents' socket actions, what reaches
whom, the limits, the searches, the transcript, the API and the customer's data."""

from __future__ import annotations

import json
from typing import Any

import pytest
from channels.testing import WebsocketCommunicator
from django.contrib.auth.models import User
from django.test import Client

from chatdesk.conversations import notes, privacy, selectors, services
from chatdesk.conversations.errors import ServiceError
from chatdesk.conversations.models import Conversation, ConversationTag, Note
from chatdesk.reports.selectors import transcript
from tests.agents.test_consumers import connect, customer_socket, session_cookie
from tests.conftest import say
from tests.conversations.test_consumers import connect as customer_connect
from tests.conversations.test_consumers import receive_until, run

pytestmark = pytest.mark.django_db(transaction=True)


@pytest.fixture
def chat(conversation: Conversation) -> Conversation:
    say(conversation, "My parcel 1182 never arrived")
    return conversation


async def agent_page(conversation: Conversation, cookie: tuple[bytes, bytes]) -> WebsocketCommunicator:
    """An agent's conversation socket (session_cookie), past its snapshot's tags frame."""
    socket = await connect(f"/ws/agents/conversations/{conversation.public_id}/", cookie)
    await receive_until(socket, "tags")
    return socket


async def frames_until_pong(socket: WebsocketCommunicator) -> list[dict[str, Any]]:
    """Every frame the socket gets before the answer to a ping sent now."""
    await socket.send_json_to({"type": "ping"})
    received = []
    while (frame := await socket.receive_json_from(timeout=5))["type"] != "pong":
        received.append(frame)
    return received


def test_the_snapshot_carries_notes_and_tags(chat: Conversation, agent: User) -> None:
    notes.note_add(public_id=chat.public_id, agent=agent, text="Called the courier")
    notes.tag_add(public_id=chat.public_id, agent=agent, tag="Courier")
    cookie = session_cookie(agent)

    async def scenario() -> None:
        socket = await connect(f"/ws/agents/conversations/{chat.public_id}/", cookie)
        snapshot = await receive_until(socket, "notes")
        assert snapshot["has_more"] is False
        [note] = snapshot["notes"]
        assert (note["author"], note["author_username"], note["text"]) == ("Alice Agent", "alice", "Called the courier")
        assert (await socket.receive_json_from(timeout=5)) == {"type": "tags", "tags": ["courier"]}
        await socket.disconnect()

    run(scenario)


def test_notes_and_tags_reach_every_agent_watching_and_never_the_customer(
    chat: Conversation, agent: User, other_agent: User
) -> None:
    alice_cookie = session_cookie(agent)
    bob_cookie = session_cookie(other_agent)

    async def scenario() -> None:
        customer = await customer_socket(chat)
        alice = await agent_page(chat, alice_cookie)
        bob = await agent_page(chat, bob_cookie)

        await alice.send_json_to({"type": "add_note", "text": "  Refund approved by finance  ", "request_id": "n-1"})
        assert (await receive_until(alice, "ack", request_id="n-1"))["action"] == "add_note"
        note = (await receive_until(bob, "note"))["note"]
        assert (note["text"], note["author_username"]) == ("Refund approved by finance", "alice")
        await alice.send_json_to({"type": "add_tag", "tag": "  Refund   Pending ", "request_id": "t-1"})
        assert (await receive_until(bob, "tags"))["tags"] == ["refund pending"]
        await bob.send_json_to({"type": "add_tag", "tag": "VIP", "request_id": "t-2"})
        await receive_until(alice, "tags", tags=["refund pending", "vip"])
        await bob.send_json_to({"type": "remove_tag", "tag": "Refund pending", "request_id": "t-3"})
        await receive_until(alice, "tags", tags=["vip"])

        sent_to_customer = await frames_until_pong(customer)
        assert sent_to_customer == []
        await customer.send_json_to({"type": "history", "before_seq": 100})
        assert "finance" not in json.dumps(await receive_until(customer, "history"))
        for socket in (customer, alice, bob):
            await socket.disconnect()

    run(scenario)
    assert list(Note.objects.values_list("text", flat=True)) == ["Refund approved by finance"]
    assert list(ConversationTag.objects.values_list("name", flat=True)) == ["vip"]


@pytest.mark.parametrize(
    ("frame", "code", "field"),
    [
        ({"type": "add_note", "text": "   "}, "empty_message", "text"),
        ({"type": "add_note", "text": "x" * 4001}, "message_too_long", "text"),
        ({"type": "add_note", "text": 5}, "invalid_request", "text"),
        ({"type": "add_note"}, "invalid_request", "text"),
        ({"type": "add_note", "text": "bad \ud83d"}, "invalid_text", "text"),
        ({"type": "add_tag", "tag": "  "}, "invalid_tag", "tag"),
        ({"type": "add_tag", "tag": "x" * 41}, "invalid_tag", "tag"),
        ({"type": "add_tag", "tag": ["vip"]}, "invalid_request", "tag"),
        ({"type": "remove_tag", "tag": ""}, "invalid_tag", "tag"),
    ],
)
def test_bad_notes_and_tags_are_refused_and_store_nothing(
    chat: Conversation, agent: User, frame: dict[str, Any], code: str, field: str
) -> None:
    alice_cookie = session_cookie(agent)

    async def scenario() -> None:
        socket = await agent_page(chat, alice_cookie)
        raw = json.dumps({**frame, "request_id": "r-9"}).replace("\\\\ud83d", "\\ud83d")
        await socket.send_to(text_data=raw)
        error = await receive_until(socket, "error")
        assert (error["code"], error["field"], error["request_id"]) == (code, field, "r-9")
        await socket.send_json_to({"type": "ping"})
        await receive_until(socket, "pong")  # still open
        await socket.disconnect()

    run(scenario)
    assert not Note.objects.exists() and not ConversationTag.objects.exists()


def test_tags_are_normalised_idempotent_and_at_most_twenty(chat: Conversation, agent: User) -> None:
    assert notes.tag_add(public_id=chat.public_id, agent=agent, tag=" Late\tDelivery ") == ["late delivery"]
    assert notes.tag_add(public_id=chat.public_id, agent=agent, tag="LATE DELIVERY") == ["late delivery"]
    assert notes.tag_add(public_id=chat.public_id, agent=agent, tag="x" * 40)[1] == "x" * 40
    for n in range(18):
        notes.tag_add(public_id=chat.public_id, agent=agent, tag=f"t{n:02}")
    with pytest.raises(ServiceError) as refused:
        notes.tag_add(public_id=chat.public_id, agent=agent, tag="one too many")
    assert (refused.value.code, refused.value.details["limit"]) == ("too_many_tags", 20)
    assert notes.tag_add(public_id=chat.public_id, agent=agent, tag="T00")[0] == "late delivery"  # has it: fine
    assert notes.tag_remove(public_id=chat.public_id, agent=agent, tag="not there") == notes.conversation_tags(chat)
    assert len(notes.conversation_tags(chat)) == 20


def test_notes_are_allowed_on_closed_and_taken_over_conversations_but_not_for_outsiders(
    chat: Conversation, agent: User, other_agent: User, outsider: User
) -> None:
    services.conversation_take_over(public_id=chat.public_id, agent=agent)
    notes.note_add(public_id=chat.public_id, agent=other_agent, text="Bob: I know this customer")
    services.conversation_close(public_id=chat.public_id, agent=agent)
    notes.tag_add(public_id=chat.public_id, agent=other_agent, tag="resolved")
    with pytest.raises(ServiceError) as refused:
        notes.note_add(public_id=chat.public_id, agent=outsider, text="hello")
    assert refused.value.code == "not_found"
    assert [n.text for n in notes.conversation_notes(chat)] == ["Bob: I know this customer"]


def test_notes_never_reach_the_drafting_engine(chat: Conversation, agent: User) -> None:
    notes.note_add(public_id=chat.public_id, agent=agent, text="Secret: customer is a known fraudster")
    turns = selectors.conversation_turns_until(chat, seq=chat.messages.count(), limit=50)
    assert "fraudster" not in repr(turns)


def test_the_snapshot_keeps_the_newest_notes_that_fit(chat: Conversation, agent: User, settings: Any) -> None:
    settings.WS_MAX_FRAME_BYTES = 20_000
    for n in range(6):
        notes.note_add(public_id=chat.public_id, agent=agent, text=f"{n} " + "y" * 3000)
    frame = notes.notes_frame(chat)
    assert frame["has_more"] is True
    assert [n["text"][0] for n in frame["notes"]] == ["3", "4", "5"]
    assert len(json.dumps(frame)) < settings.WS_MAX_FRAME_BYTES // 2


# -- typing --------------------------------------------------------------------------------


def test_typing_is_relayed_both_ways_and_throttled(chat: Conversation, agent: User, other_agent: User) -> None:
    alice_cookie = session_cookie(agent)
    bob_cookie = session_cookie(other_agent)

    async def scenario() -> None:
        customer = await customer_socket(chat)
        alice = await agent_page(chat, alice_cookie)
        bob = await agent_page(chat, bob_cookie)

        for _ in range(5):  # a burst: one is relayed, the rest dropped without an answer
            await customer.send_json_to({"type": "typing"})
        assert [f for f in await frames_until_pong(customer) if f["type"] != "status"] == []
        assert await receive_until(alice, "typing") == {"type": "typing", "who": "customer"}
        assert [f for f in await frames_until_pong(alice) if f["type"] == "typing"] == []
        assert [f for f in await frames_until_pong(bob) if f["type"] == "typing"] == [
            {"type": "typing", "who": "customer"}
        ]

        for _ in range(5):
            await alice.send_json_to({"type": "typing"})
        assert [
            f for f in await frames_until_pong(alice) if f["type"] != "viewers"
        ] == []  # no answer, not to the typist
        assert await receive_until(customer, "typing") == {"type": "typing", "who": "agent"}
        assert [f for f in await frames_until_pong(customer) if f["type"] == "typing"] == []
        assert [f for f in await frames_until_pong(bob) if f["type"] == "typing"] == []  # agents: customer only
        for socket in (customer, alice, bob):
            await socket.disconnect()

    run(scenario)


def test_typing_is_relayed_again_once_the_interval_passed(
    chat: Conversation, agent: User, monkeypatch: pytest.MonkeyPatch
) -> None:
    from chatdesk.conversations import consumers

    clock = [1000.0]
    monkeypatch.setattr(consumers.time, "monotonic", lambda: clock[0])

    alice_cookie = session_cookie(agent)

    async def scenario() -> None:
        customer = await customer_socket(chat)
        alice = await agent_page(chat, alice_cookie)
        await customer.send_json_to({"type": "typing"})
        await receive_until(alice, "typing")
        clock[0] += consumers.TYPING_EVERY_S - 0.1
        await customer.send_json_to({"type": "typing"})
        assert [f for f in await frames_until_pong(alice) if f["type"] == "typing"] == []
        clock[0] += 0.2
        await customer.send_json_to({"type": "typing"})
        await receive_until(alice, "typing")
        await customer.disconnect()
        await alice.disconnect()

    run(scenario)


def test_typing_before_hello_is_refused_and_nothing_is_stored(db: Any) -> None:
    async def scenario() -> None:
        socket = await customer_connect()
        await socket.send_json_to({"type": "typing"})
        assert (await receive_until(socket, "error"))["code"] == "hello_required"
        await socket.disconnect()

    run(scenario)
    assert not Conversation.objects.exists()


# -- searching, the transcript, the API, the customer's data --------------------------------


def test_search_by_tag_and_by_text_in_messages_or_notes(agent: User) -> None:
    parcel, refund, other = (services.conversation_start() for _ in range(3))
    say(parcel, "Where is my parcel?")
    say(refund, "I want my money back")
    say(other, "Hello")
    notes.tag_add(public_id=parcel.public_id, agent=agent, tag="Courier")
    notes.note_add(public_id=refund.public_id, agent=agent, text="Escalated to the FINANCE team")
    everything = Conversation.objects.all()

    def found(**search: str) -> set[int]:
        return set(selectors.conversations_matching(everything, **search).values_list("pk", flat=True))

    assert found(tag=" COURIER ") == {parcel.pk}
    assert found(tag="nothing") == set()
    assert found(text="finance") == {refund.pk}  # only in a note
    assert found(text="PARCEL") == {parcel.pk}  # in a message
    assert found(tag="courier", text="finance") == set()
    assert found() == {parcel.pk, refund.pk, other.pk}


def test_the_reports_list_searches_and_the_transcript_shows_notes_and_tags_marked_internal(
    agent: User, manager: User
) -> None:
    parcel, refund = services.conversation_start(), services.conversation_start()
    say(parcel, "Where is my parcel?")
    say(refund, "I want my money back")
    notes.tag_add(public_id=parcel.public_id, agent=agent, tag="courier")
    notes.note_add(public_id=refund.public_id, agent=agent, text="Finance said yes <b>today</b>")
    client = Client()
    client.force_login(manager)

    def listed(query: str) -> set[str]:
        page = client.get(f"/reports/conversations/?{query}").content.decode()
        return {str(c.public_id) for c in (parcel, refund) if str(c.public_id) in page}

    assert listed("tag=courier") == {str(parcel.public_id)}
    assert listed("q=finance") == {str(refund.public_id)}
    assert listed("q=money") == {str(refund.public_id)}
    assert client.get("/reports/conversations/?q=" + "x" * 201).status_code == 400
    csv = client.get("/reports/export/conversations.csv?tag=courier")
    body = b"".join(csv.streaming_content).decode()  # type: ignore[attr-defined]
    assert str(parcel.public_id) in body and str(refund.public_id) not in body

    page = client.get(f"/reports/conversations/{refund.public_id}/").content.decode()
    assert "Internal notes" in page and "never shown to the customer" in page
    assert "Finance said yes &lt;b&gt;today&lt;/b&gt;" in page
    tagged = transcript(parcel)
    assert tagged["tags"] == ["courier"] and tagged["notes"] == []
    assert 'class="tag">courier<' in client.get(f"/reports/conversations/{parcel.public_id}/").content.decode()


def test_the_api_detail_has_tags_and_notes(agent: User, manager: User) -> None:
    from chatdesk.api.tokens import token_create

    chat = services.conversation_start()
    say(chat, "Where is my parcel?")
    notes.tag_add(public_id=chat.public_id, agent=agent, tag="courier")
    notes.note_add(public_id=chat.public_id, agent=agent, text="Courier called")
    secret = token_create(manager=manager, name="t", scope="read")[1]
    response = Client().get(f"/api/v1/conversations/{chat.public_id}", headers={"Authorization": f"Bearer {secret}"})
    body = response.json()
    assert body["tags"] == ["courier"]
    assert [(n["author"], n["text"]) for n in body["notes"]] == [("alice", "Courier called")]


def test_the_customers_export_holds_notes_and_tags_and_erasing_redacts_them(chat: Conversation, agent: User) -> None:
    notes.note_add(public_id=chat.public_id, agent=agent, text="Customer John Smith, parcel 1182")
    notes.tag_add(public_id=chat.public_id, agent=agent, tag="john smith")
    exported = privacy.conversation_export(chat)
    assert [n["text"] for n in exported["internal_notes"]] == ["Customer John Smith, parcel 1182"]
    assert exported["tags"] == ["john smith"]
    erased = privacy.customer_data_erase([chat])
    assert (erased.notes, erased.tags) == (1, 1)
    assert list(Note.objects.values_list("text", flat=True)) == [privacy.ERASED]
    assert not ConversationTag.objects.exists()


def test_the_admin_shows_notes_and_tags_read_only(chat: Conversation, agent: User) -> None:
    notes.note_add(public_id=chat.public_id, agent=agent, text="Courier called back")
    notes.tag_add(public_id=chat.public_id, agent=agent, tag="courier")
    admin = User.objects.create_superuser("root", "root@example.com", "x")
    client = Client()
    client.force_login(admin)
    page = client.get(f"/admin/conversations/conversation/{chat.pk}/change/")
    assert page.status_code == 200
    assert "Courier called back" in page.content.decode() and "courier" in page.content.decode()
