"""Measure topic classification and escalation on a labelled intent data set, with the desk's own code."""

from __future__ import annotations

import json
import os
import time
from pathlib import Path
from typing import Any

import numpy as np
from django.conf import settings
from django.core.management.base import BaseCommand, CommandError, CommandParser
from django.db import transaction

from chatdesk.drafting import encoder
from chatdesk.drafting.engines.retrieval import select, selection_vectors
from chatdesk.drafting.index import KnowledgeIndex, OutOfScopeKey, Passage
from chatdesk.knowledge.classification import TrainingError, classifier_learn
from chatdesk.knowledge.evaluation import (
    LOADERS,
    OUT_OF_SCOPE,
    DataError,
    Example,
    Outcome,
    Scores,
    score,
    threshold_each_class,
    threshold_larson,
    threshold_product,
)
from chatdesk.knowledge.models import OutOfScopeExample
from chatdesk.knowledge.services import embeddings_for, out_of_scope_import, out_of_scope_keys

ENCODE_BATCH = 256


class Command(BaseCommand):
    help = (
        "Build a throw-away knowledge base from a train file (each intent a topic, each example a past approved "
        "customer message), run the desk's selection, confidence and learning code on every test text, and score "
        "the chosen topics. The train file's out-of-scope texts (CLINC150) are loaded as \"we don't answer this\" "
        "examples, as agents' marks are. With --val, escalation thresholds are chosen on it by Larson et al.'s rule, "
        "the product rule (answered precision ≥ 97%) and the each-class rule (≥ 97% of answered in-scope texts "
        "right and ≥ 97% of out-of-scope texts escalated)."
    )

    def add_arguments(self, parser: CommandParser) -> None:
        parser.add_argument("--format", required=True, choices=sorted(LOADERS))
        parser.add_argument("--train", required=True, type=Path)
        parser.add_argument("--test", required=True, type=Path)
        parser.add_argument("--val", type=Path)
        parser.add_argument("--json", action="store_true", help="Print one JSON object on the last line.")

    def progress(self, message: str) -> None:
        self.stderr.write(f"[{time.perf_counter() - self.started:6.1f} s] {message}")
        self.stderr.flush()

    def encode(self, label: str, texts: list[str]) -> np.ndarray:
        """Shared-encoder vectors; a text seen before in this run (in another file too) is not encoded again."""
        missing = list(dict.fromkeys(t for t in texts if t not in self.vectors))
        for start in range(0, len(missing), ENCODE_BATCH):
            batch = missing[start : start + ENCODE_BATCH]
            self.vectors.update(zip(batch, encoder.encode(batch), strict=True))
            done = min(start + ENCODE_BATCH, len(missing))
            if done == len(missing) or (start // ENCODE_BATCH) % 8 == 7:
                self.progress(f"encoding {label}: {done:,}/{len(missing):,}")
        return np.stack([self.vectors[t] for t in texts]) if texts else np.zeros((0, 384), dtype=np.float32)

    def outcomes(self, label: str, index: KnowledgeIndex, examples: list[Example]) -> list[Outcome]:
        texts = [e.text for e in examples]
        vectors = self.encode(label, texts)
        own = selection_vectors(index, texts, vectors)
        results = []
        for example, vector, own_vector in zip(examples, vectors, own, strict=True):
            choice = select(index, vector, selection_query=own_vector, limit=1)
            out_of_scope = index.out_of_scope_match(vector) is not None
            results.append(
                Outcome(
                    expected=example.topic,
                    chosen=choice.topic or "",
                    confidence=choice.confidence,
                    out_of_scope=out_of_scope,
                )
            )
        flagged = sum(o.out_of_scope for o in results)
        self.progress(f"selected topics for {len(examples):,} {label} texts ({flagged:,} near out-of-scope examples)")
        return results

    def out_of_scope_examples(self, texts: list[str]) -> tuple[list[OutOfScopeKey], np.ndarray]:
        """The train file's out-of-scope texts stored as "we don't answer this" examples and read back
        as drafting reads them (knowledge.services), in a transaction that is rolled back: the desk's
        own examples are neither used nor changed."""
        with transaction.atomic():
            out_of_scope_import(texts, source=OutOfScopeExample.Source.EVALUATION)
            keys = out_of_scope_keys(OutOfScopeExample.objects.filter(source=OutOfScopeExample.Source.EVALUATION))
            vectors = embeddings_for([key.text for key in keys])
            transaction.set_rollback(True)
        self.progress(f'{len(keys):,} out-of-scope train texts loaded as "we don\'t answer this" examples')
        return keys, vectors

    def handle(self, *args: Any, **options: Any) -> None:
        self.started = time.perf_counter()
        self.vectors: dict[str, np.ndarray] = {}
        load = LOADERS[options["format"]]
        try:
            train_file = load(options["train"])
            train = [e for e in train_file if e.topic is not OUT_OF_SCOPE]
            test = load(options["test"])
            validation = load(options["val"]) if options["val"] else None
        except (OSError, DataError) as error:
            raise CommandError(str(error)) from None
        if len({e.topic for e in train}) < 2:
            raise CommandError(f"{options['train']}: at least two intents are needed to train on")
        self.progress(f"{len(train):,} train, {len(test):,} test, {len(validation or []):,} validation texts")

        texts = [e.text for e in train]
        vectors = self.encode("train", texts)
        topics = [str(e.topic) for e in train]
        passages = [
            Passage(id=f"reply:{i}", title=t, text=t, topic=t, keys=(e.text,))
            for i, (e, t) in enumerate(zip(train, topics, strict=True))
        ]
        try:
            learned = classifier_learn(
                texts,
                vectors,
                topics,
                callback=lambda step, total, message: self.progress(f"learning ({step}/{total}): {message}"),
                threads=os.cpu_count(),  # a command of its own: all cores
            )
        except TrainingError as error:
            raise CommandError(str(error)) from None
        encoder_used = "shared" if learned.encode is None else "fine-tuned"
        self.progress(f"selecting on the {encoder_used} encoder (held-back accuracy {learned.held_back_accuracy:.2%})")
        out_of_scope, out_of_scope_vectors = self.out_of_scope_examples(
            [e.text for e in train_file if e.topic is OUT_OF_SCOPE]
        )
        index = KnowledgeIndex(
            passages,
            vectors,
            learned.classifier,
            classifier_encode=learned.encode,
            out_of_scope=out_of_scope,
            out_of_scope_vectors=out_of_scope_vectors,
            out_of_scope_margin=settings.OUT_OF_SCOPE_MARGIN,
        )

        test_outcomes = self.outcomes("test", index, test)
        results: dict[str, Any]
        if validation is None:
            plain = score(test_outcomes, 0.0)
            results = {**plain.as_dict()}
            self.table([("top-1 (nothing escalated)", plain)])
        else:
            validation_outcomes = self.outcomes("validation", index, validation)
            rules = {
                "larson": threshold_larson(validation_outcomes),
                "product": threshold_product(validation_outcomes),
                "each_class": threshold_each_class(validation_outcomes),
            }
            on_test = {rule: score(test_outcomes, threshold) for rule, threshold in rules.items()}
            # how each rule's threshold did on the validation texts it was chosen on, for comparison
            on_validation = {rule: score(validation_outcomes, threshold) for rule, threshold in rules.items()}
            results = {rule: scores.as_dict() for rule, scores in on_test.items()}
            results["validation"] = {rule: scores.as_dict() for rule, scores in on_validation.items()}
            names = {
                "larson": "Larson et al. 2019 rule",
                "product": "product rule (precision ≥ 97% on val)",
                "each_class": "each-class rule (both ≥ 97% on val)",
            }
            self.table(
                [(names[rule], on_test[rule]) for rule in rules]
                + [(f"  its threshold on val ({rule})", on_validation[rule]) for rule in rules]
            )
        results.update(
            format=options["format"],
            n=len(test),
            encoder=encoder_used,
            sentence_encoder=encoder.name(),
            seconds=round(time.perf_counter() - self.started, 1),
        )
        if options["json"]:
            self.stdout.write(json.dumps(results))

    def table(self, rows: list[tuple[str, Scores]]) -> None:
        header = ("rule", "threshold", "accuracy", "coverage", "precision", "oos_recall", "n")
        self.stdout.write("{:40s} {:>9s} {:>9s} {:>9s} {:>9s} {:>10s} {:>6s}".format(*header))
        for name, s in rows:
            oos = "—" if s.oos_recall is None else f"{s.oos_recall:.2%}"
            figures = f"{s.threshold:9.4f} {s.accuracy:9.2%} {s.coverage:9.2%} {s.answered_precision:9.2%}"
            self.stdout.write(f"{name:40s} {figures} {oos:>10s} {s.n:6d}")
