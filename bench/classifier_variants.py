"""Variants of topic classification that were tried against issue 4's unmet goals, measured side by side.

    .venv/bin/python bench/classifier_variants.py SPLITS [--data ../shared/data] [--only clinc|few-shot|full]

SPLITS is the folder bench/selection_splits.py writes. Each line prints one variant's figures; the
desk's own method is marked "(the desk)". Minutes of CPU per part (each fine-tunes MiniLM); the
last line is every figure as JSON.

clinc     CLINC150, thresholds chosen on val half A, scored on half B (as evaluate_drafts does):
          out-of-scope train examples used as a penalty or as one more class, and an encoder tuned
          with them; after each, the out-of-scope recall the product rule would give at that
          accuracy if every out-of-scope text ranked lowest. The encoder here is tuned on every
          in-scope train text (the desk holds a fifth back: evaluate_drafts gives its figures).
few-shot  BANKING77 with 10 examples per intent: the encoder tuned on all examples instead of 80 %,
          longer, jointly with CLINC150's intents, or after tuning on CLINC150.
full      BANKING77 80/20: the encoder tuned on 80 % (the desk) or on all examples.
"""

from __future__ import annotations

import argparse
import json
import math
import os
import sys
import tempfile
import time
from collections.abc import Callable, Sequence
from pathlib import Path

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))
os.environ.setdefault("DJANGO_SETTINGS_MODULE", "chatdesk.settings")
os.environ.setdefault("SECRET_KEY", "bench-only-secret-key-not-for-production-use-0123456789")
os.environ.setdefault("DATABASE_URL", "sqlite://:memory:")

import django

django.setup()

from chatdesk.drafting import encoder  # noqa: E402
from chatdesk.drafting.classifier import TopicClassifier, load_encoder, tune_encoder  # noqa: E402
from chatdesk.knowledge.classification import (  # noqa: E402
    TUNED_KNN_WEIGHT,
    classification_accuracy,
    held_back_split,
    split_held_back,
)
from chatdesk.knowledge.evaluation import (  # noqa: E402
    Example,
    Outcome,
    load_banking77,
    load_clinc150,
    score,
    threshold_larson,
    threshold_product,
)

THREADS = os.cpu_count() or 1
OUT_OF_SCOPE = "(out of scope)"  # the extra class of the out-of-scope variants
PART = ""  # the part being measured
SCRATCH = tempfile.TemporaryDirectory(prefix="selection-variants-")  # tuned encoders, removed at exit
Encode = Callable[[list[str]], np.ndarray]


def tune(texts: Sequence[str], topics: Sequence[str], base: str | None = None, epochs: float = 1.0) -> str:
    """A copy of `base` (the shared encoder) tuned as the desk tunes it; returns its folder."""
    folder = tempfile.mkdtemp(dir=SCRATCH.name)
    tune_encoder(texts, topics, base or encoder.model_path(), folder, threads=THREADS, epochs=epochs)
    return folder


def tuned(texts: Sequence[str], topics: Sequence[str], base: str | None = None, epochs: float = 1.0) -> Encode:
    return load_encoder(tune(texts, topics, base, epochs), threads=THREADS)


def shared() -> Encode:
    return load_encoder(encoder.model_path(), threads=THREADS)


def accuracy(classifier: TopicClassifier, vectors: np.ndarray, examples: Sequence[Example]) -> float:
    return classification_accuracy(classifier, vectors, [e.topic for e in examples])


RESULTS: dict[str, str] = {}  # "part: variant" -> its figures, printed as JSON at the end


def line(name: str, started: float, figures: str) -> None:
    RESULTS[f"{PART}: {name}"] = figures
    print(f"{name:58s} {figures}  ({time.perf_counter() - started:.0f} s)", flush=True)


def clinc(splits: Path, data: Path) -> None:
    train = load_clinc150(data / "clinc150" / "train.json")
    val, test = load_clinc150(splits / "clinc150_valA.json"), load_clinc150(splits / "clinc150_valB.json")
    in_scope = [e for e in train if e.topic is not None]
    print(f"CLINC150: {len(in_scope)} in-scope and {len(train) - len(in_scope)} out-of-scope train texts")

    def report(name: str, started: float, classifier: TopicClassifier, encode: Encode, penalty: float = 0.0) -> None:
        oos = encode([e.text for e in train if e.topic is None])

        def outcomes(examples: list[Example]) -> list[Outcome]:
            vectors = encode([e.text for e in examples])
            selections = classifier.predict(vectors, top_k=1)
            confidence = np.array([s.confidence for s in selections])
            if penalty:  # lower it as the message is closer to an out-of-scope example than to any topic's
                nearest = np.array([s.similarity for s in selections])
                confidence = confidence / (1 + np.exp(penalty * ((vectors @ oos.T).max(axis=1) - nearest)))
            confidence[[s.topic == OUT_OF_SCOPE for s in selections]] = 0.0
            return [
                Outcome(e.topic, s.topic, float(c)) for e, s, c in zip(examples, selections, confidence, strict=True)
            ]

        on_val, on_test = outcomes(val), outcomes(test)
        larson, product = score(on_test, threshold_larson(on_val)), score(on_test, threshold_product(on_val))
        line(
            name,
            started,
            f"Larson {larson.accuracy:.2%} oos {larson.oos_recall:.0%} | product precision "
            f"{product.answered_precision:.2%} coverage {product.coverage:.2%} oos {product.oos_recall:.0%}",
        )
        # The product rule stops escalating once validation's answered precision reaches 97 %: if every
        # out-of-scope text scored below every in-scope one, R / 0.97 - N of them (rounded down) stay answered.
        full = score(on_val, 0.0)
        n = sum(e.topic is not None for e in val)
        right, m = round(full.accuracy * n), full.n_out_of_scope
        bound = 1 - max(0, math.floor(right / 0.97 - n)) / m
        print(f"    validation top-1 {full.accuracy:.2%}; out-of-scope ranked lowest: product rule gets {bound:.0%}")

    topics = [str(e.topic) for e in in_scope]
    with_oos = [e.topic or OUT_OF_SCOPE for e in train]
    for name, is_tuned in (("shared encoder", False), ("tuned encoder", True)):
        started = time.perf_counter()
        encode = tuned([e.text for e in in_scope], topics) if is_tuned else shared()
        knn = TUNED_KNN_WEIGHT if is_tuned else None
        desk = TopicClassifier(seed=0, knn_weight=knn).fit(encode([e.text for e in in_scope]), topics)
        report(name, started, desk, encode)
        report(f"{name} + out-of-scope similarity penalty", started, desk, encode, penalty=10.0)
        extra = TopicClassifier(seed=0, knn_weight=knn).fit(encode([e.text for e in train]), with_oos)
        report(f"{name} + out-of-scope examples as a topic", started, extra, encode)
    started = time.perf_counter()
    encode = tuned([e.text for e in train], with_oos)
    classifier = TopicClassifier(seed=0, knn_weight=TUNED_KNN_WEIGHT).fit(encode([e.text for e in train]), with_oos)
    report("encoder and classifier tuned with out-of-scope as a topic", started, classifier, encode)


def banking(splits: Path, data: Path, train_file: str, few_shot: bool) -> None:
    train, test = load_banking77(splits / train_file), load_banking77(splits / "banking77_test.csv")
    texts, topics = [e.text for e in train], [str(e.topic) for e in train]
    print(f"BANKING77 {train_file}: {len(train)} train, {len(test)} test texts")
    held = held_back_split(topics)

    def report(name: str, started: float, encode: Encode) -> None:
        classifier = TopicClassifier(seed=0, knn_weight=TUNED_KNN_WEIGHT).fit(encode(texts), topics)
        line(name, started, f"accuracy {accuracy(classifier, encode([e.text for e in test]), test):.2%}")

    started = time.perf_counter()
    encode = shared()
    plain = TopicClassifier(seed=0).fit(encode(texts), topics)
    line("shared encoder", started, f"accuracy {accuracy(plain, encode([e.text for e in test]), test):.2%}")
    started = time.perf_counter()
    desk = tuned(split_held_back(texts, held)[0], split_held_back(topics, held)[0])
    report("encoder tuned on the 80 % not held back (the desk)", started, desk)
    started = time.perf_counter()
    report("encoder tuned on all examples", started, tuned(texts, topics))
    if not few_shot:
        return
    started = time.perf_counter()
    report("encoder tuned on all examples, 3 epochs", started, tuned(texts, topics, epochs=3.0))
    clinc_in = [e for e in load_clinc150(data / "clinc150" / "train.json") if e.topic is not None]
    started = time.perf_counter()
    joint = tuned(texts + [e.text for e in clinc_in], topics + [f"clinc150:{e.topic}" for e in clinc_in])
    report("encoder tuned jointly with CLINC150's 150 intents", started, joint)
    started = time.perf_counter()
    first = tune([e.text for e in clinc_in], [str(e.topic) for e in clinc_in])
    report("encoder tuned on CLINC150 first, then on these", started, tuned(texts, topics, base=first))


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("splits", type=Path)
    parser.add_argument("--data", type=Path, default=Path(__file__).resolve().parents[2] / "shared" / "data")
    parser.add_argument("--only", choices=("clinc", "few-shot", "full"))
    args = parser.parse_args()
    global PART
    for PART, run in (
        ("clinc", lambda: clinc(args.splits, args.data)),
        ("few-shot", lambda: banking(args.splits, args.data, "banking77_train10.csv", few_shot=True)),
        ("full", lambda: banking(args.splits, args.data, "banking77_train.csv", few_shot=False)),
    ):
        if args.only in (None, PART):
            run()
    print(json.dumps(RESULTS))


if __name__ == "__main__":
    main()
