"""Canned replies: who may create, change and delete which (agent vs manager, personal vs shared)."""

from __future__ import annotations

import pytest
from django.contrib.auth.models import User

from chatdesk.canned import selectors, services
from chatdesk.canned.models import CannedReply
from chatdesk.conversations.errors import ServiceError

pytestmark = pytest.mark.django_db


def personal(owner: User, shortcut: str = "hi", text: str = "Hello!") -> CannedReply:
    return services.canned_reply_create(by=owner, shortcut=shortcut, text=text, shared=False)


def shared(manager: User, shortcut: str = "refund", text: str = "Refunds take 5 days.") -> CannedReply:
    return services.canned_reply_create(by=manager, shortcut=shortcut, text=text, shared=True)


def test_an_agent_keeps_personal_replies_and_sees_the_shared_ones_but_not_others(
    agent: User, other_agent: User, manager: User
) -> None:
    mine = personal(agent, "thanks", "Thank you!")
    theirs = personal(other_agent, "bye", "Goodbye!")
    everyone = shared(manager)

    assert mine.owner == agent and not mine.shared
    assert everyone.owner is None and everyone.shared
    assert list(selectors.canned_replies_for(user=agent)) == [everyone, mine]
    assert theirs not in selectors.canned_replies_for(user=agent)
    assert selectors.canned_replies_data(user=agent) == [
        {"id": everyone.pk, "shortcut": "refund", "text": "Refunds take 5 days.", "shared": True},
        {"id": mine.pk, "shortcut": "thanks", "text": "Thank you!", "shared": False},
    ]


def test_only_managers_create_shared_replies(agent: User) -> None:
    with pytest.raises(ServiceError) as refused:
        shared(agent)
    assert refused.value.code == "forbidden"
    assert "Only managers" in refused.value.message
    assert not CannedReply.objects.exists()


def test_an_agent_cannot_change_or_delete_a_shared_reply_but_a_manager_can(agent: User, manager: User) -> None:
    reply = shared(manager)
    for attempt in (
        lambda: services.canned_reply_update(by=agent, reply=reply, shortcut="x", text="changed"),
        lambda: services.canned_reply_delete(by=agent, reply=reply),
    ):
        with pytest.raises(ServiceError) as refused:
            attempt()
        assert refused.value.code == "forbidden"
    assert CannedReply.objects.get().text == "Refunds take 5 days."

    services.canned_reply_update(by=manager, reply=reply, shortcut="refunds", text="Refunds take 3 days.")
    assert CannedReply.objects.get().shortcut == "refunds"
    services.canned_reply_delete(by=manager, reply=reply)
    assert not CannedReply.objects.exists()


def test_nobody_but_its_owner_changes_a_personal_reply_not_even_a_manager(
    agent: User, other_agent: User, manager: User
) -> None:
    reply = personal(agent)
    for someone in (other_agent, manager):
        with pytest.raises(ServiceError) as refused:
            services.canned_reply_update(by=someone, reply=reply, shortcut="hi", text="changed")
        assert refused.value.code == "forbidden"
    services.canned_reply_update(by=agent, reply=reply, shortcut="/hey", text="  Hey there!  ")
    reply.refresh_from_db()
    assert (reply.shortcut, reply.text) == ("hey", "Hey there!")  # the leading / and white space trimmed


def test_shortcuts_are_checked_and_unique_per_owner_and_among_shared(
    agent: User, other_agent: User, manager: User, settings: object
) -> None:
    personal(agent, "hi")
    with pytest.raises(ServiceError) as duplicate:
        personal(agent, "hi")
    assert duplicate.value.code == "duplicate_shortcut"
    personal(other_agent, "hi")  # another agent's personal shortcut is theirs
    shared(manager, "hi")  # and a shared one may have the same name
    with pytest.raises(ServiceError) as duplicate:
        shared(manager, "hi")
    assert duplicate.value.code == "duplicate_shortcut"

    for bad in ("", "two words", "x" * 41):
        with pytest.raises(ServiceError) as refused:
            personal(agent, bad)
        assert refused.value.code == "invalid_shortcut"
    with pytest.raises(ServiceError) as empty:
        personal(agent, "blank", "   ")
    assert empty.value.code == "invalid_request"
    with pytest.raises(ServiceError) as long:
        personal(agent, "long", "x" * 4001)
    assert long.value.code == "message_too_long"
    personal(agent, "退款", "中文快捷方式也可以。")  # shortcuts in any script


def test_a_refused_change_leaves_the_reply_as_stored(agent: User) -> None:
    personal(agent, "hi")
    reply = personal(agent, "bye", "Goodbye!")
    with pytest.raises(ServiceError):
        services.canned_reply_update(by=agent, reply=reply, shortcut="hi", text="Taken")
    assert (reply.shortcut, reply.text) == ("bye", "Goodbye!")
    reply.refresh_from_db()
    assert (reply.shortcut, reply.text) == ("bye", "Goodbye!")
