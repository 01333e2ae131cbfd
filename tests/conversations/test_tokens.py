from __future__ import annotations

import uuid

from chatdesk.conversations.tokens import conversation_token, public_id_from_token


def test_a_token_names_its_conversation() -> None:
    public_id = uuid.uuid4()
    assert public_id_from_token(conversation_token(public_id)) == public_id


def test_tokens_do_not_contain_the_database_id_and_cannot_be_forged() -> None:
    public_id, other = uuid.uuid4(), uuid.uuid4()
    token = conversation_token(public_id)
    assert public_id_from_token(token.replace(public_id.hex, other.hex)) is None
    assert public_id_from_token("garbage") is None
    assert public_id_from_token("") is None


def test_expired_tokens_are_refused(settings: object) -> None:
    settings.CHAT_TOKEN_MAX_AGE_DAYS = -1  # type: ignore[attr-defined]
    assert public_id_from_token(conversation_token(uuid.uuid4())) is None
