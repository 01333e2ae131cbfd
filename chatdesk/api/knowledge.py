"""/api/v1/articles: the knowledge base drafts are written from. Changes reach the next draft without
a restart (chatdesk.knowledge.articles)."""

from __future__ import annotations

from typing import Annotated, Any

from django.http import HttpRequest, HttpResponse
from django.utils.translation import gettext as _
from ninja import Path, Query, Router, Status

from chatdesk.api.auth import ADMIN, READ
from chatdesk.api.common import CONFLICT, NOT_FOUND, page
from chatdesk.api.schemas import ArticleFilters, ArticleIn, ArticleOut, ArticlePage, ArticlePatch
from chatdesk.conversations.errors import ServiceError
from chatdesk.knowledge import articles
from chatdesk.knowledge.models import Article

router = Router(tags=["knowledge base"])

ArticleId = Annotated[int, Path(ge=1, le=2_147_483_647)]  # a PostgreSQL integer


def article_out(a: Article) -> dict[str, Any]:
    return {
        "id": a.pk,
        "topic": a.topic.name,
        "title": a.title,
        "body": a.body,
        "questions": a.question_list,
        "is_published": a.is_published,
        "weight": a.weight,
        "updated_at": a.updated_at,
    }


@router.get("", auth=READ, response={200: ArticlePage, **NOT_FOUND}, summary="List articles")
def article_list(request: HttpRequest, filters: Query[ArticleFilters]) -> dict[str, Any]:
    found = articles.articles(
        topic=filters.topic or "", published=filters.published, search=filters.search or "", ordering=filters.ordering
    )
    count, rows = page(found, filters)
    return {"count": count, "items": [article_out(a) for a in rows]}


@router.post("", auth=ADMIN, response={201: ArticleOut, **CONFLICT}, summary="Create an article")
def article_create(request: HttpRequest, body: ArticleIn) -> Status[dict[str, Any]]:
    return Status(201, article_out(articles.article_create(**body.dict())))


def _article(article_id: int) -> Article:
    article = Article.objects.select_related("topic").filter(pk=article_id).first()
    if article is None:
        raise ServiceError("not_found", _("That article does not exist."))
    return article


@router.get("/{int:article_id}", auth=READ, response={200: ArticleOut, **NOT_FOUND}, summary="Read an article")
def article_read(request: HttpRequest, article_id: ArticleId) -> dict[str, Any]:
    return article_out(_article(article_id))


@router.patch("/{int:article_id}", auth=ADMIN, response={200: ArticleOut, **CONFLICT}, summary="Change an article")
def article_update(request: HttpRequest, article_id: ArticleId, body: ArticlePatch) -> dict[str, Any]:
    """Only the fields sent are changed."""
    articles.article_update(article_id=article_id, **body.dict(exclude_unset=True, exclude_none=True))
    return article_out(_article(article_id))


@router.delete("/{int:article_id}", auth=ADMIN, response={204: None, **NOT_FOUND}, summary="Delete an article")
def article_delete(request: HttpRequest, article_id: ArticleId) -> HttpResponse:
    articles.article_delete(article_id=article_id)
    return HttpResponse(status=204)
