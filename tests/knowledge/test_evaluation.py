"""Scores and escalation thresholds, on outcomes small enough to check by hand."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from chatdesk.knowledge.evaluation import (
    DataError,
    Outcome,
    hold_back_clinc150,
    load_banking77,
    load_clinc150,
    score,
    threshold_each_class,
    threshold_larson,
    threshold_product,
)

OUTCOMES = [
    Outcome(expected="refund", chosen="refund", confidence=0.9),
    Outcome(expected="refund", chosen="card", confidence=0.5),
    Outcome(expected="card", chosen="card", confidence=0.7),
    Outcome(expected="card", chosen="card", confidence=0.3),
    Outcome(expected=None, chosen="card", confidence=0.4),
    Outcome(expected=None, chosen="refund", confidence=0.6),
]


def test_without_a_threshold_everything_is_answered() -> None:
    scores = score(OUTCOMES, 0.0)
    assert (scores.accuracy, scores.coverage, scores.oos_recall) == (0.75, 1.0, 0.0)
    assert scores.answered_precision == pytest.approx(3 / 6)


def test_escalated_texts_count_as_wrong_for_accuracy_and_right_for_oos_recall() -> None:
    scores = score(OUTCOMES, 0.55)
    assert scores.accuracy == 0.5  # refund@0.9 and card@0.7 answered right; card@0.3 escalated
    assert scores.coverage == 0.5
    assert scores.oos_recall == 0.5
    assert scores.answered_precision == pytest.approx(2 / 3)


def test_larsons_threshold_maximises_accuracy_with_out_of_scope_as_a_class() -> None:
    # 0.7: right = refund@0.9, card@0.7 + both OOS escalated = 4/6, the best; lower ones tie at 0.61..0.7
    assert threshold_larson(OUTCOMES) == pytest.approx(0.7)


def test_the_product_rule_takes_the_lowest_threshold_reaching_the_precision() -> None:
    assert threshold_product(OUTCOMES, precision=0.97) == pytest.approx(0.7)
    assert threshold_product(OUTCOMES, precision=0.6) == pytest.approx(0.6)


def test_loaders_read_both_formats_and_refuse_others(tmp_path: Path) -> None:
    banking = tmp_path / "train.csv"
    banking.write_text('text,category\r\n"Where, exactly, is my card?",card_arrival\r\nhi there,greeting\r\n')
    assert [(e.text, e.topic) for e in load_banking77(banking)] == [
        ("Where, exactly, is my card?", "card_arrival"),
        ("hi there", "greeting"),
    ]
    clinc = tmp_path / "val.json"
    clinc.write_text('{"in_scope": [["book a flight", "book_flight"]], "out_of_scope": ["how tall is a giraffe"]}')
    assert [(e.text, e.topic) for e in load_clinc150(clinc)] == [
        ("book a flight", "book_flight"),
        ("how tall is a giraffe", None),
    ]
    with pytest.raises(DataError):
        load_banking77(clinc)
    with pytest.raises(DataError):
        load_clinc150(banking)


def test_texts_near_an_out_of_scope_example_are_escalated_at_every_threshold() -> None:
    flagged = [*OUTCOMES[:5], Outcome(expected=None, chosen="refund", confidence=0.6, out_of_scope=True)]
    scores = score(flagged, 0.0)
    assert scores.oos_recall == 0.5  # the flagged one is escalated even with nothing else escalated
    assert scores.answered_precision == pytest.approx(3 / 5)
    assert score(flagged, 0.55).answered_precision == 1.0  # refund@0.9, card@0.7; the flagged 0.6 is not answered
    # the flagged text no longer forces the product rule above its confidence
    assert threshold_product(OUTCOMES, precision=0.65) == pytest.approx(0.6)
    assert threshold_product(flagged, precision=0.65) == pytest.approx(0.5)


def test_the_each_class_rule_wants_both_in_scope_precision_and_oos_recall() -> None:
    # in-scope answered precision reaches 1.0 at 0.6 (refund@0.5 escalated); OOS recall reaches 1.0 above 0.6
    assert threshold_each_class(OUTCOMES, precision=0.97) == pytest.approx(0.7)
    only_in_scope = [o for o in OUTCOMES if o.expected is not None]
    assert threshold_each_class(only_in_scope, precision=0.97) == pytest.approx(0.7)
    # at 0.5: 2 of 3 answered in-scope texts right, OOS@0.4 escalated (1 of 2); below, no OOS is escalated
    assert threshold_each_class(OUTCOMES, precision=0.5) == pytest.approx(0.5)


def test_a_held_back_split_keeps_the_format_and_the_out_of_scope_share(tmp_path: Path) -> None:
    source = tmp_path / "train.json"
    in_scope = [[f"question {i}", f"intent{i % 3}"] for i in range(60)]
    source.write_text(json.dumps({"in_scope": in_scope, "out_of_scope": [f"other {i}" for i in range(20)]}))
    hold_back_clinc150(source, tmp_path / "rest.json", tmp_path / "held.json", out_of_scope=9, in_scope=41)
    rest, held = load_clinc150(tmp_path / "rest.json"), load_clinc150(tmp_path / "held.json")
    assert (len(held), sum(e.topic is None for e in held)) == (50, 9)
    assert (len(rest), sum(e.topic is None for e in rest)) == (30, 11)
    assert {e.text for e in rest}.isdisjoint({e.text for e in held})
