"""Scores and escalation thresholds, on outcomes small enough to check by hand."""

from __future__ import annotations

from pathlib import Path

import pytest

from chatdesk.knowledge.evaluation import (
    DataError,
    Outcome,
    load_banking77,
    load_clinc150,
    score,
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
