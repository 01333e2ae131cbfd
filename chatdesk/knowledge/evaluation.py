"""Scoring topic classification on labelled intent data sets (BANKING77, CLINC150): loaders, metrics, thresholds.

Plain Python: `manage.py evaluate_drafts` feeds it the desk's own selection results.
"""

from __future__ import annotations

import csv
import json
from collections.abc import Sequence
from dataclasses import asdict, dataclass
from pathlib import Path

import numpy as np

OUT_OF_SCOPE = None  # the expected topic of an out-of-scope text


@dataclass(frozen=True)
class Example:
    text: str
    topic: str | None  # None: out of scope, should be escalated


@dataclass(frozen=True)
class Outcome:
    """What the desk chose for one test text."""

    expected: str | None
    chosen: str
    confidence: float
    out_of_scope: bool = False  # closer to a "we don't answer this" example than the rule allows: escalated

    @property
    def answered_at(self) -> float:
        """The lowest threshold at which it is answered (-inf: escalated at every threshold)."""
        return -np.inf if self.out_of_scope else self.confidence


@dataclass(frozen=True)
class Scores:
    threshold: float
    accuracy: float  # in-scope texts answered with the right topic / in-scope texts (escalations count wrong)
    coverage: float  # in-scope texts answered / in-scope texts
    answered_precision: float  # right answers / all answered texts (answered out-of-scope texts are wrong)
    oos_recall: float | None  # out-of-scope texts escalated / out-of-scope texts (None without any)
    n: int
    n_out_of_scope: int

    def as_dict(self) -> dict[str, float | int | None]:
        return {k: (round(v, 5) if isinstance(v, float) else v) for k, v in asdict(self).items()}


class DataError(Exception):
    """The file is not in the format it was said to be in."""


def load_banking77(path: Path) -> list[Example]:
    """CSV with a header `text,category` (quoted fields may hold commas and newlines)."""
    with open(path, newline="", encoding="utf-8") as handle:
        reader = csv.DictReader(handle)
        if reader.fieldnames is None or not {"text", "category"} <= set(reader.fieldnames):
            raise DataError(f"{path}: expected a CSV header with text,category; got {reader.fieldnames}")
        return [Example(row["text"].strip(), row["category"].strip()) for row in reader if row["text"].strip()]


def load_clinc150(path: Path) -> list[Example]:
    """JSON {"in_scope": [[text, intent], …], "out_of_scope": [text, …]}; out-of-scope texts get topic None."""
    try:
        data = json.loads(Path(path).read_text(encoding="utf-8"))
        in_scope = [Example(str(text), str(intent)) for text, intent in data["in_scope"]]
        out_of_scope = [
            Example(str(item[0] if isinstance(item, list) else item), OUT_OF_SCOPE)
            for item in data.get("out_of_scope", [])
        ]
    except (ValueError, KeyError, TypeError) as error:
        raise DataError(f"{path}: expected CLINC150 JSON with in_scope [[text, intent], …]: {error}") from None
    return in_scope + out_of_scope


LOADERS = {"banking77": load_banking77, "clinc150": load_clinc150}


def score(outcomes: Sequence[Outcome], threshold: float) -> Scores:
    """Texts whose confidence is below `threshold`, or with the out-of-scope signal, are escalated (not answered)."""
    in_scope = [o for o in outcomes if o.expected is not OUT_OF_SCOPE]
    out_of_scope = [o for o in outcomes if o.expected is OUT_OF_SCOPE]
    answered = [o for o in outcomes if o.answered_at >= threshold]
    right = [o for o in answered if o.chosen == o.expected]
    return Scores(
        threshold=threshold,
        accuracy=len(right) / len(in_scope) if in_scope else 0.0,
        coverage=sum(o.answered_at >= threshold for o in in_scope) / len(in_scope) if in_scope else 0.0,
        answered_precision=len(right) / len(answered) if answered else 1.0,
        oos_recall=sum(o.answered_at < threshold for o in out_of_scope) / len(out_of_scope) if out_of_scope else None,
        n=len(outcomes),
        n_out_of_scope=len(out_of_scope),
    )


def _sweep(outcomes: Sequence[Outcome]) -> tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray]:
    """For every candidate threshold (each distinct confidence, and 0), ascending: how many texts are
    answered, answered right, and how many out-of-scope texts are escalated (texts with the out-of-scope
    signal are escalated at every threshold)."""
    confidence = np.array([o.answered_at for o in outcomes], dtype=np.float64)
    right = np.array([o.expected is not OUT_OF_SCOPE and o.chosen == o.expected for o in outcomes])
    oos = np.array([o.expected is OUT_OF_SCOPE for o in outcomes])
    thresholds = np.unique(np.concatenate([[0.0], confidence[np.isfinite(confidence)]]))
    order = np.argsort(-confidence, kind="stable")
    sorted_conf = confidence[order]
    # answered at threshold t = texts with confidence >= t = a prefix of the descending order
    answered = np.searchsorted(-sorted_conf, -thresholds, side="right")
    right_prefix = np.concatenate([[0], np.cumsum(right[order])])
    oos_prefix = np.concatenate([[0], np.cumsum(oos[order])])
    oos_escalated = oos.sum() - oos_prefix[answered]
    return thresholds, answered, right_prefix[answered], oos_escalated


def threshold_larson(validation: Sequence[Outcome]) -> float:
    """Larson et al. 2019: the threshold maximising accuracy over the in-scope topics plus
    "out of scope" as one more class (an escalated out-of-scope text counts as right)."""
    thresholds, _answered, right, oos_escalated = _sweep(validation)
    accuracy = (right + oos_escalated) / len(validation)
    return float(thresholds[int(np.argmax(accuracy))])  # the lowest among equals: escalate no more than needed


def threshold_product(validation: Sequence[Outcome], precision: float = 0.97) -> float:
    """The product rule: the lowest threshold whose answered precision on validation is ≥ `precision`
    (if none reaches it, the highest confidence seen: only the surest answers go out)."""
    thresholds, answered, right, _ = _sweep(validation)
    with np.errstate(invalid="ignore", divide="ignore"):
        answered_precision = np.where(answered > 0, right / np.maximum(answered, 1), 1.0)
    good = np.flatnonzero(answered_precision >= precision)
    return float(thresholds[good[0]]) if good.size else float(thresholds[-1])


def threshold_each_class(validation: Sequence[Outcome], precision: float = 0.97) -> float:
    """The desk's rule, which needs no out-of-scope share: the lowest threshold at which, on validation,
    at least `precision` of the answered in-scope texts get the right topic AND at least `precision` of
    the out-of-scope texts are escalated (if none reaches both, the highest confidence seen). Answered
    precision on a traffic mix then stays near `precision` for out-of-scope shares up to about 20%
    (docs/escalation.md), where the product rule holds only for validation's own share."""
    thresholds, answered, right, oos_escalated = _sweep(validation)
    n_oos = sum(o.expected is OUT_OF_SCOPE for o in validation)
    answered_oos = n_oos - oos_escalated
    answered_in = answered - answered_oos
    with np.errstate(invalid="ignore", divide="ignore"):
        in_scope_precision = np.where(answered_in > 0, right / np.maximum(answered_in, 1), 1.0)
    oos_recall = oos_escalated / n_oos if n_oos else np.ones_like(in_scope_precision)
    good = np.flatnonzero((in_scope_precision >= precision) & (oos_recall >= precision))
    return float(thresholds[good[0]]) if good.size else float(thresholds[-1])


def hold_back_clinc150(
    source: Path, train_out: Path, test_out: Path, *, out_of_scope: int = 50, in_scope: int = 228, seed: int = 0
) -> None:
    """Split a CLINC150 file in two (same format): `out_of_scope` and `in_scope` texts drawn at random
    go to test_out (50 and 228: 18% out of scope, like the held-out test file), the rest to train_out."""
    data = json.loads(Path(source).read_text(encoding="utf-8"))
    rng = np.random.default_rng(seed)
    held_in = set(rng.choice(len(data["in_scope"]), size=in_scope, replace=False).tolist())
    held_oos = set(rng.choice(len(data["out_of_scope"]), size=out_of_scope, replace=False).tolist())

    def part(held: set[int], key: str, keep: bool) -> list[object]:
        return [item for i, item in enumerate(data[key]) if (i in held) != keep]

    for path, keep in ((train_out, True), (test_out, False)):
        split = {"in_scope": part(held_in, "in_scope", keep), "out_of_scope": part(held_oos, "out_of_scope", keep)}
        Path(path).write_text(json.dumps(split, ensure_ascii=False), encoding="utf-8")
