"""Knowledge-base article writes for integrations (the REST API; managers also use the admin).

Drafting picks a change up without a restart: every worker's index is rebuilt when the published
articles' count or latest `updated_at` changes (services.knowledge_index_current), which each of
these writes changes.
"""

from __future__ import annotations

from django.db import IntegrityError, transaction
from django.db.models import QuerySet

from chatdesk.conversations.errors import ServiceError
from chatdesk.knowledge.models import Article, Topic

TITLE_MAX = 200
BODY_MAX = 20_000
QUESTIONS_MAX = 50


def _topic(name: str) -> Topic:
    topic = Topic.objects.filter(name=name).first()
    if topic is None:
        raise ServiceError("invalid_request", f"There is no topic {name[:80]!r}.", field="topic")
    return topic


def _title(title: str) -> str:
    title = title.strip()
    if not title or len(title) > TITLE_MAX:
        raise ServiceError("invalid_request", f"title must be 1 to {TITLE_MAX} characters.", field="title")
    return title


def _body(body: str) -> str:
    body = body.strip()
    if not body or len(body) > BODY_MAX:
        raise ServiceError("invalid_request", f"body must be 1 to {BODY_MAX:,} characters.", field="body")
    return body


def _questions(questions: list[str]) -> str:
    lines = [" ".join(q.split()) for q in questions if q.strip()]
    if len(lines) > QUESTIONS_MAX or any(len(q) > TITLE_MAX for q in lines):
        raise ServiceError(
            "invalid_request",
            f"questions: at most {QUESTIONS_MAX}, each at most {TITLE_MAX} characters.",
            field="questions",
        )
    return "\n".join(lines)


def _save(article: Article) -> Article:
    try:
        with transaction.atomic():
            article.save()
    except IntegrityError:
        raise ServiceError(
            "conflict", f"An article titled {article.title[:80]!r} exists already.", field="title"
        ) from None
    return article


def article_create(*, topic: str, title: str, body: str, questions: list[str], is_published: bool) -> Article:
    """Store a new article. Raises ServiceError `invalid_request` (`field` names it) or `conflict` (the
    title is taken)."""
    article = Article(
        topic=_topic(topic),
        title=_title(title),
        body=_body(body),
        questions=_questions(questions),
        is_published=is_published,
    )
    return _save(article)


def article_update(
    *,
    article_id: int,
    topic: str | None = None,
    title: str | None = None,
    body: str | None = None,
    questions: list[str] | None = None,
    is_published: bool | None = None,
) -> Article:
    """Change the given fields of an article (None: unchanged). Raises ServiceError `not_found`,
    `invalid_request` or `conflict`."""
    article = Article.objects.filter(pk=article_id).first()
    if article is None:
        raise ServiceError("not_found", "That article does not exist.")
    if topic is not None:
        article.topic = _topic(topic)
    if title is not None:
        article.title = _title(title)
    if body is not None:
        article.body = _body(body)
    if questions is not None:
        article.questions = _questions(questions)
    if is_published is not None:
        article.is_published = is_published
    return _save(article)


def article_delete(*, article_id: int) -> None:
    """Delete an article; drafts that cited it keep their copy of the source. Raises `not_found`."""
    deleted, _ = Article.objects.filter(pk=article_id).delete()
    if not deleted:
        raise ServiceError("not_found", "That article does not exist.")


def articles(
    *, topic: str = "", published: bool | None = None, search: str = "", ordering: str = "title"
) -> QuerySet[Article]:
    """Articles filtered by topic name, publication and words in the title, in `ordering`."""
    found = Article.objects.select_related("topic")
    if topic:
        found = found.filter(topic__name=topic)
    if published is not None:
        found = found.filter(is_published=published)
    if search:
        found = found.filter(title__icontains=search)
    return found.order_by(ordering, "pk")
