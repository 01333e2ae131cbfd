"""Out of scope ("we don't answer this") and the calibrated escalation threshold, through services and commands."""

from __future__ import annotations

import io
import json
from pathlib import Path
from typing import Any

import pytest
from django.contrib.auth.models import User
from django.core.management import call_command

from chatdesk.conversations import frames, services
from chatdesk.conversations.errors import ServiceError
from chatdesk.conversations.models import AgentAction, Conversation, Draft, EscalationFlag, Message
from chatdesk.drafting.base import DraftContext, DraftEngine, DraftResult
from chatdesk.knowledge import tasks
from chatdesk.knowledge.models import EscalationPolicy, EscalationThreshold, OutOfScopeExample, Topic
from chatdesk.knowledge.services import (
    drafts_labelled,
    escalation_calibrate,
    escalation_threshold,
    out_of_scope_mark,
)
from tests.conftest import UseEngine, say

pytestmark = pytest.mark.django_db

Reason = Conversation.EscalationReason


def drafted(text: str) -> tuple[Conversation, Draft]:
    """A new conversation whose customer wrote `text`, drafted as a worker would draft it."""
    conversation = services.conversation_start()
    say(conversation, text)
    pending = Draft.objects.get(conversation=conversation, status=Draft.Status.PENDING)
    services.draft_generate(draft_id=pending.pk)
    conversation.refresh_from_db()
    return conversation, Draft.objects.get(pk=pending.pk)


def active_reasons(conversation: Conversation) -> set[str]:
    return set(EscalationFlag.objects.filter(conversation=conversation, active=True).values_list("reason", flat=True))


class TestWeDontAnswerThis:
    def test_a_question_an_agent_marked_is_escalated_next_time_with_who_marked_it(
        self, knowledge: None, agent: User
    ) -> None:
        first, draft = drafted("Can I pay with bitcoin?")
        assert draft.sources[0]["title"] == "Accepted payment methods"  # the confident wrong answer of today
        assert Reason.OUT_OF_SCOPE not in active_reasons(first)

        out_of_scope_mark(public_id=first.public_id, seq=1, agent=agent)

        later, later_draft = drafted("do you take bitcoin")
        assert later.status == Conversation.Status.ESCALATED
        assert later.escalation_reason == Reason.OUT_OF_SCOPE
        flag = EscalationFlag.objects.get(conversation=later, reason=Reason.OUT_OF_SCOPE)
        assert "Can I pay with bitcoin?" in flag.detail and "marked by Alice Agent" in flag.detail
        assert flag.message is not None and flag.message.text == "do you take bitcoin"
        assert flag.score is not None and flag.score > 0.5
        assert later_draft.status == Draft.Status.READY  # the agent still sees the draft

    def test_questions_the_desk_answers_are_not_caught_by_a_mark(self, knowledge: None, agent: User) -> None:
        first, _ = drafted("Can I pay with bitcoin?")
        out_of_scope_mark(public_id=first.public_id, seq=1, agent=agent)
        for question in ("What payment methods do you accept?", "Can I pay with PayPal?", "Where is my order?"):
            conversation, _ = drafted(question)
            assert Reason.OUT_OF_SCOPE not in active_reasons(conversation), question

    def test_an_out_of_scope_draft_is_never_sent_by_autopilot(self, knowledge: None, agent: User) -> None:
        first, _ = drafted("Can I pay with bitcoin?")
        out_of_scope_mark(public_id=first.public_id, seq=1, agent=agent)
        Topic.objects.filter(name="payments").update(autopilot=True, autopilot_min_confidence=0.0)
        conversation, draft = drafted("can i pay using bitcoin")
        assert draft.status == Draft.Status.READY
        assert not conversation.messages.filter(sender=Message.Sender.BOT).exists()

    def test_marking_is_one_row_per_message_and_only_for_customer_messages(
        self, knowledge: None, agent: User, other_agent: User
    ) -> None:
        conversation, draft = drafted("Can I pay with bitcoin?")
        services.draft_approve(public_id=conversation.public_id, draft_id=draft.pk, agent=agent)
        out_of_scope_mark(public_id=conversation.public_id, seq=1, agent=agent)
        out_of_scope_mark(public_id=conversation.public_id, seq=1, agent=other_agent)
        example = OutOfScopeExample.objects.get()
        assert (example.text, example.source, example.marked_by) == ("Can I pay with bitcoin?", "agent", agent)
        with pytest.raises(ServiceError) as refused:
            out_of_scope_mark(public_id=conversation.public_id, seq=2, agent=agent)
        assert refused.value.code == "not_customer_message"
        with pytest.raises(ServiceError) as missing:
            out_of_scope_mark(public_id=conversation.public_id, seq=9, agent=agent)
        assert missing.value.code == "not_found"

    def test_only_agents_can_mark(self, knowledge: None, outsider: User) -> None:
        conversation, _ = drafted("Can I pay with bitcoin?")
        with pytest.raises(ServiceError) as refused:
            out_of_scope_mark(public_id=conversation.public_id, seq=1, agent=outsider)
        assert refused.value.code == "not_found"
        assert not OutOfScopeExample.objects.exists()

    def test_managers_import_lists_and_similar_questions_are_escalated(
        self, knowledge: None, manager: User, tmp_path: Path
    ) -> None:
        lines = tmp_path / "questions.txt"
        lines.write_text("Do you sell gift wrapping for weddings?\n\nCan I pay with bitcoin?\n", encoding="utf-8")
        table = tmp_path / "questions.csv"
        table.write_text('id,question\n1,"Can I pay with bitcoin?"\n2,"Will you buy my old phone?"\n', encoding="utf-8")
        out = io.StringIO()
        call_command("import_out_of_scope", str(lines), "--by", manager.username, stdout=out)
        assert "Imported 2 of 2" in out.getvalue()
        out = io.StringIO()
        call_command("import_out_of_scope", str(table), stdout=out)
        assert "Imported 1 of 2" in out.getvalue()
        assert set(OutOfScopeExample.objects.values_list("text", "source")) == {
            ("Do you sell gift wrapping for weddings?", "import"),
            ("Can I pay with bitcoin?", "import"),
            ("Will you buy my old phone?", "import"),
        }
        conversation, _ = drafted("can i pay in bitcoin please")
        assert conversation.escalation_reason == Reason.OUT_OF_SCOPE
        flag = EscalationFlag.objects.get(conversation=conversation, reason=Reason.OUT_OF_SCOPE)
        assert "marked by Mona Manager" in flag.detail

    def test_a_csv_without_a_text_column_is_refused(self, tmp_path: Path) -> None:
        table = tmp_path / "questions.csv"
        table.write_text("id,words\n1,hello\n", encoding="utf-8")
        with pytest.raises(Exception, match="text or question column"):
            call_command("import_out_of_scope", str(table))


class FixedEngine(DraftEngine):
    """Drafts the same text with a given confidence and topic."""

    def __init__(self, confidence: float, topic: str) -> None:
        self.confidence, self.topic = confidence, topic

    def draft(self, context: DraftContext) -> DraftResult:
        return DraftResult(text="Here is what we know.", confidence=self.confidence, topic=self.topic)


def history(rows: list[tuple[float, bool]], topic: Topic | None = None) -> None:
    """Reviewed drafts: (confidence, approved as drafted?) each; the others were rejected."""
    conversation = services.conversation_start()
    message = Message.objects.create(conversation=conversation, seq=1, sender=Message.Sender.CUSTOMER, text="q")
    Draft.objects.bulk_create(
        Draft(
            conversation=conversation,
            reply_to=message,
            status=Draft.Status.APPROVED if right else Draft.Status.REJECTED,
            confidence=confidence,
            topic=topic,
            text="a reply",
        )
        for confidence, right in rows
    )


def calibrated_rows(n: int = 200, wrong_above: float = 1.0) -> list[tuple[float, bool]]:
    """Confidences spread over [0, 1], right about as often as they say; wrong above `wrong_above` every 5th."""
    rows = []
    for i in range(n):
        confidence = (i + 0.5) / n
        right = ((i * 37) % n) / n < confidence
        if confidence >= wrong_above and i % 5 == 0:
            right = False
        rows.append((confidence, right))
    return rows


def answered_precision(rows: list[tuple[float, bool]], threshold: float) -> float:
    answered = [right for confidence, right in rows if confidence >= threshold]
    return sum(answered) / len(answered)


class TestCalibratedThreshold:
    def test_without_history_the_setting_applies(self, settings: Any) -> None:
        settings.DRAFT_ESCALATE_BELOW = 0.45
        history(calibrated_rows(20))
        assert escalation_calibrate() == []
        assert escalation_threshold(None) == 0.45

    def test_the_threshold_meets_the_target_on_the_history_and_rises_with_it(self, settings: Any) -> None:
        rows = calibrated_rows()
        history(rows)
        chosen = {}
        for target in (0.8, 0.9, 0.97):
            settings.ESCALATION_TARGET_PRECISION = target
            (calibration,) = escalation_calibrate()
            assert calibration.precision >= target
            assert answered_precision(rows, calibration.threshold) >= target
            assert calibration.answered + calibration.escalated == calibration.n == 200
            assert escalation_threshold(None) == calibration.threshold
            chosen[target] = calibration.threshold
        assert chosen[0.8] < chosen[0.9] < chosen[0.97]
        # the lowest such threshold: one step lower would miss the target
        below = max(c for c, _ in rows if c < chosen[0.9])
        assert answered_precision(rows, below) < 0.9

    def test_confident_mistakes_raise_the_threshold(self, settings: Any) -> None:
        settings.ESCALATION_TARGET_PRECISION = 0.9
        history(calibrated_rows())
        (before,) = escalation_calibrate()
        history([(0.8 + i / 500, False) for i in range(20)])  # agents rejected confident drafts
        (after,) = escalation_calibrate()
        assert after.threshold > before.threshold
        assert after.precision >= 0.9

    def test_the_managers_target_overrides_the_setting(self, settings: Any) -> None:
        settings.ESCALATION_TARGET_PRECISION = 0.97
        history(calibrated_rows())
        (strict,) = escalation_calibrate()
        EscalationPolicy.objects.create(target_precision=0.8)
        (lenient,) = escalation_calibrate()
        assert lenient.target_precision == 0.8 and lenient.threshold < strict.threshold
        assert EscalationThreshold.objects.get(topic__isnull=True).target_precision == 0.8

    def test_topics_with_enough_history_get_their_own_threshold(
        self, knowledge: None, settings: Any, use_engine: UseEngine
    ) -> None:
        settings.ESCALATION_TARGET_PRECISION = 0.9
        settings.CALIBRATION_MIN_EXAMPLES = 50
        refunds, shipping = Topic.objects.get(name="refunds"), Topic.objects.get(name="shipping")
        history([(0.3 + i / 200, True) for i in range(60)], refunds)  # right even at low confidence
        history(calibrated_rows(100, wrong_above=0.5), shipping)
        history(calibrated_rows(10), Topic.objects.get(name="orders"))  # too little for a threshold of its own
        calibrations = {c.topic: c for c in escalation_calibrate()}
        assert set(calibrations) == {None, "refunds", "shipping"}
        assert calibrations["refunds"].threshold < calibrations["shipping"].threshold
        orders = Topic.objects.get(name="orders")
        assert escalation_threshold(orders) == calibrations[None].threshold

        # drafting uses the topic's threshold: the same confidence is escalated on one topic only
        confidence = (calibrations["refunds"].threshold + calibrations["shipping"].threshold) / 2
        use_engine(FixedEngine(confidence, "refunds"))
        on_refunds, _ = drafted("When do I get my money back?")
        assert on_refunds.status == Conversation.Status.OPEN
        use_engine(FixedEngine(confidence, "shipping"))
        on_shipping, _ = drafted("When does my parcel come?")
        assert on_shipping.escalation_reason == Reason.LOW_CONFIDENCE
        flag = EscalationFlag.objects.get(conversation=on_shipping)
        assert f"below {calibrations['shipping'].threshold:.0%}" in flag.detail

    def test_a_topic_that_loses_its_history_falls_back_to_the_global_threshold(self, knowledge: None) -> None:
        refunds = Topic.objects.get(name="refunds")
        history(calibrated_rows(), refunds)
        escalation_calibrate()
        assert EscalationThreshold.objects.filter(topic=refunds).exists()
        Draft.objects.filter(topic=refunds).update(topic=None)
        escalation_calibrate()
        assert not EscalationThreshold.objects.filter(topic=refunds).exists()
        assert escalation_threshold(refunds) == EscalationThreshold.objects.get(topic__isnull=True).threshold

    def test_what_agents_did_labels_the_drafts(self, knowledge: None, agent: User, settings: Any) -> None:
        settings.CALIBRATION_MAX_EDIT = 0.3
        approved_c, approved = drafted("How long does a refund take?")
        services.draft_approve(public_id=approved_c.public_id, draft_id=approved.pk, agent=agent)
        light_c, light = drafted("Where is my order?")
        services.draft_edit(public_id=light_c.public_id, draft_id=light.pk, agent=agent, text=light.text + " Thanks!")
        heavy_c, heavy = drafted("How do I return a jacket?")
        services.draft_edit(public_id=heavy_c.public_id, draft_id=heavy.pk, agent=agent, text="Let me check that.")
        rejected_c, rejected = drafted("Do you ship to Norway?")
        services.draft_reject(public_id=rejected_c.public_id, draft_id=rejected.pk, agent=agent)
        taken_c, _ = drafted("I forgot my password")
        services.conversation_take_over(public_id=taken_c.public_id, agent=agent)
        closed_c, _ = drafted("Can I change my address?")
        services.conversation_close(public_id=closed_c.public_id, agent=agent)
        assert AgentAction.objects.filter(kind=AgentAction.Kind.TAKE_OVER).count() == 1
        labels = sorted((d.confidence, d.right) for d in drafts_labelled())
        expected = sorted(
            (Draft.objects.get(pk=pk).confidence, right)
            for pk, right in [
                (approved.pk, True),
                (light.pk, True),
                (heavy.pk, False),
                (rejected.pk, False),
                (Draft.objects.get(conversation=taken_c).pk, False),
            ]
        )
        assert labels == expected  # the draft discarded by closing is no label

    def test_the_command_shows_what_the_thresholds_would_have_done(self, knowledge: None, settings: Any) -> None:
        settings.ESCALATION_TARGET_PRECISION = 0.9
        history(calibrated_rows(), Topic.objects.get(name="refunds"))
        out = io.StringIO()
        call_command("calibrate_escalation", stdout=out)
        text = out.getvalue()
        assert "Target answered precision 90.0%" in text
        global_row = next(line for line in text.splitlines() if line.startswith("(global)"))
        stored = EscalationThreshold.objects.get(topic__isnull=True)
        assert global_row.split()[1:4] == [f"{stored.threshold:.4f}", str(stored.answered), str(stored.escalated)]
        assert any(line.startswith("refunds") for line in text.splitlines())

    def test_the_periodic_task_calibrates_and_is_scheduled(self, settings: Any) -> None:
        history(calibrated_rows())
        assert tasks.calibrate_escalation() == 1
        assert EscalationThreshold.objects.filter(topic__isnull=True).exists()
        schedule = settings.CELERY_BEAT_SCHEDULE["calibrate-escalation"]
        assert schedule["task"] == tasks.calibrate_escalation.name


def test_evaluate_drafts_escalates_texts_like_the_train_files_out_of_scope_ones(tmp_path: Path) -> None:
    intents = {
        "weather": ["what is the weather like", "will it rain today", "is it sunny outside", "how cold is it"],
        "alarm": ["set an alarm for 7", "wake me up at six", "turn on my alarm", "alarm for tomorrow morning"],
        "music": ["play some jazz", "put on my playlist", "play a song", "start the music"],
    }
    in_scope = [[text + end, intent] for intent, texts in intents.items() for text in texts for end in ("", " please")]
    oos = ["can i pay with bitcoin", "what is the capital of peru"]
    (tmp_path / "train.json").write_text(json.dumps({"in_scope": in_scope, "out_of_scope": oos}))
    test = {"in_scope": [["will it rain tomorrow", "weather"]], "out_of_scope": ["pay in bitcoin?", "peru capital"]}
    (tmp_path / "test.json").write_text(json.dumps(test))
    out = io.StringIO()
    call_command(
        "evaluate_drafts",
        "--format=clinc150",
        f"--train={tmp_path / 'train.json'}",
        f"--test={tmp_path / 'test.json'}",
        f"--val={tmp_path / 'test.json'}",
        "--json",
        stdout=out,
        stderr=io.StringIO(),
    )
    results = json.loads(out.getvalue().splitlines()[-1])
    plain = results["larson"]  # whatever the threshold, both near-copies of marked texts are escalated
    assert plain["oos_recall"] == 1.0 and plain["n_out_of_scope"] == 2
    assert {"larson", "product", "each_class"} <= set(results["validation"])
    assert not OutOfScopeExample.objects.exists()  # the desk's own examples are untouched


def test_agents_see_a_draft_below_its_topics_calibrated_threshold_as_risky(
    knowledge: None, settings: Any, use_engine: UseEngine
) -> None:
    settings.DRAFT_ESCALATE_BELOW = 0.45
    history(calibrated_rows(100, wrong_above=0.5), Topic.objects.get(name="shipping"))
    (_, shipping) = escalation_calibrate()
    assert shipping.topic == "shipping" and shipping.threshold > 0.6
    use_engine(FixedEngine(0.6, "shipping"))
    _, draft = drafted("When does my parcel come?")
    shown = frames.draft_frame(draft)["draft"]
    assert shown["risky"] is True
    assert shown["risk_reasons"][0] == f"Confidence 60% is below the {shipping.threshold:.0%} a draft needs."
