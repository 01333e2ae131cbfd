"""The knowledge index drafts are selected from."""

from __future__ import annotations

import pytest

from chatdesk.drafting import encoder
from chatdesk.knowledge.models import Article, Embedding
from chatdesk.knowledge.services import knowledge_index_current, knowledge_seed_demo

pytestmark = pytest.mark.django_db


def test_demo_seed_is_idempotent_and_covers_the_shop() -> None:
    assert knowledge_seed_demo() >= 30
    assert knowledge_seed_demo() == 0
    assert set(Article.objects.values_list("topic__name", flat=True)) >= {
        "orders", "shipping", "returns", "refunds", "payments", "account",
    }  # fmt: skip


def test_each_text_is_encoded_once_and_edits_are_picked_up(knowledge: None) -> None:
    index = knowledge_index_current()
    cached = Embedding.objects.count()
    assert knowledge_index_current() is index  # nothing changed: the same index
    article = Article.objects.get(title="Resetting your password")
    article.questions += "\nmy login doesnt work anymore"
    article.save()
    updated = knowledge_index_current()
    assert updated is not index
    assert Embedding.objects.count() == cached + 1
    best = updated.search(encoder.encode(["my login doesnt work anymore"])[0], limit=1)[0]
    assert best.passage.title == "Resetting your password"
    assert best.score > 0.99


def test_unpublished_articles_are_never_drafted(knowledge: None) -> None:
    Article.objects.filter(title="Resetting your password").update(is_published=False)
    titles = {p.title for p in knowledge_index_current().passages}
    assert "Resetting your password" not in titles
