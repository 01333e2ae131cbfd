"""No e-mail address, phone number or card number of a customer ever reaches the logs."""

from __future__ import annotations

import io
import json
import logging

import pytest
from django.conf import settings
from django.contrib.auth.models import User
from django.utils.module_loading import import_string

from chatdesk.conversations import services
from chatdesk.conversations.models import Conversation, Draft
from chatdesk.drafting.base import DraftContext, DraftEngine, DraftResult, EngineError
from chatdesk.log_filters import MaskPersonalData
from tests.conftest import UseEngine, say

pytestmark = pytest.mark.django_db

EMAIL, PHONE, CARD = "ann.lee@example.com", "+44 20 7946 0958", "4111 1111 1111 1111"
PERSONAL = (EMAIL, PHONE, CARD, "7946", "4111 1111")
TEXT = f"I am {EMAIL}, call me on {PHONE}; my card {CARD} was charged twice for order 12345."


class EchoingEngine(DraftEngine):
    """Answers like a careless engine: quotes the customer back, and fails the first time with the text
    in its error (so the service logs a traceback holding it)."""

    def __init__(self) -> None:
        self.calls = 0

    def draft(self, context: DraftContext) -> DraftResult:
        self.calls += 1
        if self.calls == 1:
            raise EngineError(f"the model choked on {context.latest_customer_text!r}")
        return DraftResult(text=f"Noted: {context.latest_customer_text}", confidence=0.9, topic=None)


def test_the_console_handler_masks_every_record() -> None:
    handlers = settings.LOGGING["handlers"]
    assert all("mask_pii" in handler.get("filters", []) for handler in handlers.values())
    assert settings.LOGGING["root"]["handlers"] == ["console"]
    assert all(logger.get("handlers", []) == [] for name, logger in settings.LOGGING["loggers"].items())


def test_a_conversation_with_personal_data_leaves_none_in_the_logs(
    caplog: pytest.LogCaptureFixture, use_engine: UseEngine, conversation: Conversation, agent: User
) -> None:
    caplog.set_level(logging.DEBUG)
    use_engine(EchoingEngine())
    say(conversation, TEXT)
    failed = Draft.objects.get(conversation=conversation)
    services.draft_generate(draft_id=failed.pk)  # the engine's error, with the text, is logged
    assert Draft.objects.get(pk=failed.pk).status == Draft.Status.FAILED
    services.conversation_hand_back(public_id=conversation.public_id, agent=agent)
    say(conversation, f"Again: {TEXT}")
    draft = Draft.objects.get(conversation=conversation, status=Draft.Status.PENDING)
    services.draft_generate(draft_id=draft.pk)
    services.draft_approve(public_id=conversation.public_id, draft_id=draft.pk, agent=agent)
    logging.getLogger("chatdesk.anything").warning("customer wrote %s", TEXT)  # even a careless call

    logged = caplog.text
    assert "draft" in logged and "failed" in logged  # the flow did log, with its traceback
    assert "[email]" in logged and "[phone]" in logged and "[card]" in logged
    for personal in PERSONAL:
        assert personal not in logged
    for record in caplog.records:
        assert not any(personal in record.getMessage() for personal in PERSONAL)


def test_json_logs_are_one_masked_object_per_record() -> None:
    """LOG_FORMAT=json: what a log shipper reads, with the traceback masked like the message."""
    config = settings.LOGGING["formatters"]["json"]
    stream = io.StringIO()
    handler = logging.StreamHandler(stream)
    handler.setFormatter(import_string(config["()"])(fmt=config["fmt"], rename_fields=config["rename_fields"]))
    handler.addFilter(MaskPersonalData())
    logger = logging.getLogger("chatdesk.json-test")
    logger.addHandler(handler)
    logger.propagate = False
    try:
        try:
            raise EngineError(f"the model choked on {TEXT!r}")
        except EngineError:
            logger.exception("draft %s failed for %s", 42, TEXT)
    finally:
        logger.removeHandler(handler)
    [line] = stream.getvalue().splitlines()
    record = json.loads(line)
    assert (record["level"], record["logger"]) == ("ERROR", "chatdesk.json-test")
    assert record["message"].startswith("draft 42 failed for I am [email], call me on [phone]")
    assert "EngineError" in record["exc_info"] and "[card]" in record["exc_info"]
    assert record["time"]
    for personal in PERSONAL:
        assert personal not in line


def test_a_page_refused_on_purpose_is_one_line_in_the_log_without_a_traceback(agent: User) -> None:
    """An agent opening a manager's page is refused (403) and logged as such; nothing went wrong, so no
    traceback fills the log."""
    from django.test import Client

    stream = io.StringIO()
    handler = logging.StreamHandler(stream)
    handler.setFormatter(logging.Formatter("%(levelname)s %(message)s"))
    logging.getLogger().addHandler(handler)
    try:
        client = Client()
        client.force_login(agent)
        assert client.get("/reports/").status_code == 403
    finally:
        logging.getLogger().removeHandler(handler)
    written = stream.getvalue()
    assert "Forbidden (Permission denied): /reports/" in written
    assert "Traceback" not in written
