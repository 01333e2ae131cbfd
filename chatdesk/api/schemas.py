"""The JSON shapes of /api/v1/ (pydantic, through django-ninja): what the OpenAPI document describes."""

from __future__ import annotations

import uuid
from datetime import date, datetime
from typing import Annotated, Literal

from ninja import Field, Schema
from pydantic import AfterValidator, ConfigDict
from pydantic_core import PydanticCustomError

from chatdesk.conversations.errors import ServiceError
from chatdesk.conversations.inbound import normalise_text
from chatdesk.conversations.models import Conversation, Draft


def _storable(value: str) -> str:
    """NFC text; refused (code invalid_text, as on the websockets) when it holds NUL or an unpaired surrogate."""
    try:
        return normalise_text(value)
    except ServiceError as error:
        raise PydanticCustomError("invalid_text", error.message) from None


Text = Annotated[str, AfterValidator(_storable)]  # every string the API reads

ConversationStatus = Literal["open", "escalated", "taken_over", "closed"]
Reason = Literal[
    "customer_request",
    "low_confidence",
    "draft_failed",
    "out_of_scope",
    "negative_sentiment",
    "sensitive",
    "repeated_question",
    "injection",
    "sla_breach",
]
assert set(ConversationStatus.__args__) == set(Conversation.Status.values)  # type: ignore[attr-defined]
assert set(Reason.__args__) == set(Conversation.EscalationReason.values)  # type: ignore[attr-defined]


class Error(Schema):
    """Every error: a stable `code` for programs (docs/api.md) and a `message` for people; some codes
    add fields (`field`, `retry_after`, `by`, `seq`, `errors`)."""

    model_config = ConfigDict(extra="allow")
    code: str
    message: str


class Paging(Schema):
    limit: int = Field(50, ge=1, le=200, description="Items per page, 1 to 200.")
    offset: int = Field(0, ge=0, le=1_000_000, description="Items to skip.")


class ConversationFilters(Paging):
    status: ConversationStatus | None = None
    reason: Reason | None = Field(None, description="An escalation rule fired in it (any flag, active or not).")
    topic: Text | None = Field(None, max_length=80, description="Topic name.")
    team: Text | None = Field(None, max_length=80, description="Team name.")
    agent: Text | None = Field(None, max_length=150, description="Username of the agent responsible for it.")
    since: date | None = Field(None, description="Created on or after this day (the desk's TIME_ZONE, UTC by default).")
    until: date | None = Field(None, description="Created on or before this day (the desk's TIME_ZONE).")
    ordering: Literal["created_at", "-created_at", "updated_at", "-updated_at", "priority", "-priority"] = "-updated_at"


class ConversationOut(Schema):
    id: uuid.UUID
    status: ConversationStatus
    escalation_reason: Reason | None
    priority: int
    topic: str | None
    team: str | None
    assigned_agent: str | None = Field(description="Username.")
    language: str
    last_seq: int
    created_at: datetime
    updated_at: datetime
    closed_at: datetime | None


class ConversationPage(Schema):
    count: int
    items: list[ConversationOut]


class MessageOut(Schema):
    seq: int
    sender: Literal["customer", "agent", "bot"]
    text: str
    author: str | None = Field(description="Username of the agent who sent it.")
    draft_id: int | None
    created_at: datetime


class SourceIn(Schema):
    id: Text | None = Field(None, max_length=64, description='Your own id, or "article:<id>" for a desk article.')
    title: Text = Field(max_length=200)
    score: float = Field(0.0, ge=0, le=1)


class SourceOut(Schema):
    id: str
    title: str
    score: float


class DraftOut(Schema):
    id: int
    status: Literal[tuple(Draft.Status.values)]  # type: ignore[valid-type]
    engine: str
    text: str
    confidence: float | None
    sources: list[SourceOut]
    topic: str | None
    reply_to_seq: int
    error_code: str | None
    created_at: datetime
    ready_at: datetime | None
    decided_at: datetime | None
    decided_by: str | None = Field(description="Username.")


class FlagOut(Schema):
    reason: Reason
    detail: str
    active: bool
    created_at: datetime


class NoteOut(Schema):
    author: str | None = Field(description="Username of the agent who wrote it.")
    text: str
    created_at: datetime


class CustomerOut(Schema):
    """Who the customer is, as the host site's widget said (docs/identity.md)."""

    account_id: str | None = Field(description="The customer's account id on the host site.")
    name: str | None
    email: str | None
    verified: bool = Field(description="The host site signed account id, email and name; false: the customer's claim.")
    site: str | None = Field(description="The widget site's name.")
    page_url: str | None = Field(description="The page the customer was on at their latest hello.")


class ConversationDetail(ConversationOut):
    customer: CustomerOut
    messages: list[MessageOut]
    drafts: list[DraftOut]
    flags: list[FlagOut]
    tags: list[str] = Field(description="Agents' tags (lower case, at most 40 characters each), sorted.")
    notes: list[NoteOut] = Field(description="Agents' internal notes, oldest first: never shown to the customer.")


class ReplyIn(Schema):
    text: Text = Field(description="At most CHAT_MAX_MESSAGE_CHARS characters after trimming.")
    client_id: Text | None = Field(
        None, description="Your id for this message (1-64 of A-Z a-z 0-9 . _ : -): a retry is not sent twice."
    )


class DraftIn(Schema):
    text: Text = Field(description="What the customer would receive.")
    confidence: float = Field(ge=0, le=1, description="Your engine's confidence, 0 to 1.")
    engine: Text = Field(
        min_length=1,
        max_length=23,
        pattern=r"^[A-Za-z0-9._-]+$",
        description='Your engine\'s name; drafts are reported as engine "external:<name>".',
    )
    sources: list[SourceIn] = Field(default_factory=list, max_length=10)
    topic: Text | None = Field(
        None, max_length=80, description="A desk topic name (autopilot and reports are per topic)."
    )
    reply_to_seq: int | None = Field(
        None,
        ge=1,
        le=2_147_483_647,
        description="The customer message you answer: refused (409) if it is no longer the latest.",
    )


class ArticleFilters(Paging):
    topic: Text | None = Field(None, max_length=80)
    published: bool | None = None
    search: Text | None = Field(None, max_length=200, description="Words in the title.")
    ordering: Literal["title", "-title", "updated_at", "-updated_at"] = "title"


class ArticleOut(Schema):
    id: int
    topic: str
    title: str
    body: str
    questions: list[str]
    is_published: bool
    weight: float
    updated_at: datetime


class ArticlePage(Schema):
    count: int
    items: list[ArticleOut]


class ArticleIn(Schema):
    topic: Text = Field(max_length=80, description="An existing topic's name.")
    title: Text = Field(max_length=200)
    body: Text = Field(max_length=20_000)
    questions: list[Text] = Field(default_factory=list, max_length=50, description="Example customer questions.")
    is_published: bool = True


class ArticlePatch(Schema):
    topic: Text | None = Field(None, max_length=80)
    title: Text | None = Field(None, max_length=200)
    body: Text | None = Field(None, max_length=20_000)
    questions: list[Text] | None = Field(None, max_length=50)
    is_published: bool | None = None


class TopicOut(Schema):
    id: int
    name: str
    team: str | None
    autopilot: bool
    autopilot_min_confidence: float


class TeamOut(Schema):
    id: int
    name: str
    members: list[str] = Field(description="Usernames.")
    topics: list[str]


DbId = Annotated[int, Field(ge=1, le=2_147_483_647)]  # a PostgreSQL integer


class TopicIn(Schema):
    name: Text = Field(max_length=80)
    autopilot: bool = False
    autopilot_min_confidence: float = Field(0.8, ge=0.0, le=1.0)
    team: DbId | Text | None = Field(
        None, description="The team (id or name) whose queue its escalations wait in; null: everyone's."
    )


class TopicPatch(Schema):
    name: Text | None = Field(None, max_length=80)
    autopilot: bool | None = None
    autopilot_min_confidence: float | None = Field(None, ge=0.0, le=1.0)
    team: DbId | Text | None = Field(None, description="Team id or name; null moves it to everyone's queue.")


class TeamIn(Schema):
    name: Text = Field(max_length=80)
    members: list[Text] = Field(default_factory=list, max_length=500, description="Active agents' usernames.")
    topics: list[Text] = Field(default_factory=list, max_length=500, description="Names of topics in no other team.")


class TeamPatch(Schema):
    name: Text | None = Field(None, max_length=80)
    members: list[Text] | None = Field(None, max_length=500, description="Replaces the members.")
    topics: list[Text] | None = Field(None, max_length=500, description="Replaces the topics.")


class AgentOut(Schema):
    username: str
    name: str
    is_manager: bool
    teams: list[str]


class TopicPage(Schema):
    count: int
    items: list[TopicOut]


class TeamPage(Schema):
    count: int
    items: list[TeamOut]


class AgentPage(Schema):
    count: int
    items: list[AgentOut]
