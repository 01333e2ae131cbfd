"""How often a Chinese customer question gets the right Chinese demo article, per sentence encoder.

    .venv/bin/python bench/zh_retrieval.py [--encoders all-minilm-l6-v2,multilingual-e5-small] [--questions F]

The questions (bench/data/zh_questions.json) each name the Chinese demo article that answers them.
Every question goes through the retrieval engine's own `select()` (no trained classifier, as in the
demo) against three knowledge bases built from chatdesk/knowledge/demo_articles.json the way
drafting builds its index (each article keyed by its title and example questions, with its language):

zh_only        the Chinese articles alone
mixed          every demo article (English and Chinese), the customer's language preferred
               (OTHER_LANGUAGE_WEIGHT, as the desk drafts for a conversation whose language is zh-hans)
mixed_no_pref  every demo article, no language preference

Each line prints one encoder's accuracy (and the mean confidence of right and wrong choices); the
last line is every figure as JSON.
"""

from __future__ import annotations

import argparse
import json
import os
import sys
import time
from pathlib import Path
from typing import Any

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))
os.environ.setdefault("DJANGO_SETTINGS_MODULE", "chatdesk.settings")
os.environ.setdefault("SECRET_KEY", "bench-only-secret-key-not-for-production-use-0123456789")
os.environ.setdefault("DATABASE_URL", "sqlite://:memory:")

import django

django.setup()

from django.conf import settings  # noqa: E402
from django.test import override_settings  # noqa: E402

from chatdesk.drafting import encoder  # noqa: E402
from chatdesk.drafting.engines.retrieval import select  # noqa: E402
from chatdesk.drafting.index import KnowledgeIndex, Passage  # noqa: E402
from chatdesk.knowledge.services import DEMO_ARTICLES  # noqa: E402

QUESTIONS = Path(__file__).with_name("data") / "zh_questions.json"
CUSTOMER_LANGUAGE = "zh-hans"


def demo_passages() -> list[Passage]:
    """The demo articles as drafting indexes them (knowledge_passages), numbered in file order."""
    return [
        Passage(
            id=f"article:{number}",
            title=item["title"],
            text=item["body"],
            topic=item["topic"],
            keys=(item["title"], *item["questions"]),
            language=item.get("language", "en"),
        )
        for number, item in enumerate(json.loads(DEMO_ARTICLES.read_text(encoding="utf-8")), start=1)
    ]


def index_of(passages: list[Passage]) -> KnowledgeIndex:
    keys = [key for passage in passages for key in passage.keys]
    return KnowledgeIndex(passages, encoder.encode(keys), other_language_weight=settings.OTHER_LANGUAGE_WEIGHT)


def scored(index: KnowledgeIndex, questions: list[dict[str, str]], language: str | None) -> dict[str, Any]:
    right: list[float] = []
    wrong: list[dict[str, Any]] = []
    vectors = encoder.encode([q["text"] for q in questions])
    for question, vector in zip(questions, vectors, strict=True):
        choice = select(index, vector, language=language)
        chosen = choice.matches[0].passage.title
        if chosen == question["title"]:
            right.append(choice.confidence)
        else:
            wrong.append({"text": question["text"], "chose": chosen, "confidence": round(choice.confidence, 4)})
    return {
        "accuracy": round(len(right) / len(questions), 4),
        "right": len(right),
        "n": len(questions),
        "mean_confidence_right": round(float(np.mean(right)), 4) if right else None,
        "mean_confidence_wrong": round(float(np.mean([w["confidence"] for w in wrong])), 4) if wrong else None,
        "wrong": wrong,
    }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--encoders", default="all-minilm-l6-v2,multilingual-e5-small")
    parser.add_argument("--questions", type=Path, default=QUESTIONS)
    args = parser.parse_args()
    questions = json.loads(args.questions.read_text(encoding="utf-8"))["questions"]
    passages = demo_passages()
    chinese = [p for p in passages if p.language == CUSTOMER_LANGUAGE]
    missing = {q["title"] for q in questions} - {p.title for p in chinese}
    if missing:
        raise SystemExit(f"questions name articles that are not Chinese demo articles: {sorted(missing)}")
    results: dict[str, Any] = {"questions": len(questions), "other_language_weight": settings.OTHER_LANGUAGE_WEIGHT}
    for name in args.encoders.split(","):
        with override_settings(SENTENCE_ENCODER=name):
            started = time.perf_counter()
            encoder.warm_up()
            loaded = time.perf_counter()
            figures = {
                "zh_only": scored(index_of(chinese), questions, CUSTOMER_LANGUAGE),
                "mixed": scored(index_of(passages), questions, CUSTOMER_LANGUAGE),
                "mixed_no_pref": scored(index_of(passages), questions, None),
                "load_s": round(loaded - started, 2),
                "run_s": round(time.perf_counter() - loaded, 2),
            }
        results[name] = figures
        print(
            f"{name:24s} zh_only {figures['zh_only']['accuracy']:.2%}  mixed {figures['mixed']['accuracy']:.2%}  "
            f"mixed_no_pref {figures['mixed_no_pref']['accuracy']:.2%}  "
            f"(confidence right/wrong, mixed: {figures['mixed']['mean_confidence_right']}"
            f"/{figures['mixed']['mean_confidence_wrong']})",
            flush=True,
        )
    print(json.dumps(results, ensure_ascii=False))


if __name__ == "__main__":
    main()
