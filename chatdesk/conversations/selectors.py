"""Reads: who may see what, and what the customer and agents are shown."""

from __future__ import annotations

import uuid
from dataclasses import dataclass
from datetime import date, timedelta
from typing import TYPE_CHECKING

from django.conf import settings
from django.contrib.auth.models import AbstractBaseUser, AnonymousUser, User
from django.core.exceptions import PermissionDenied
from django.db.models import BooleanField, Exists, ExpressionWrapper, F, OuterRef, Prefetch, Q, QuerySet, Subquery
from django.utils import timezone
from django.utils.translation import gettext, gettext_lazy

from chatdesk.conversations import notices, presence
from chatdesk.conversations.errors import ServiceError
from chatdesk.conversations.models import (
    AgentAction,
    Conversation,
    ConversationTag,
    Draft,
    EscalationFlag,
    Message,
    Note,
    Rating,
)
from chatdesk.drafting.base import Turn
from chatdesk.knowledge.models import Topic

if TYPE_CHECKING:
    from django_stubs_ext import StrOrPromise

AGENT_GROUPS = ("agents", "managers")
MANAGERS = "managers"


def user_is_agent(user: AbstractBaseUser | AnonymousUser) -> bool:
    """Agents and managers may work conversations; superusers may do anything."""
    if not isinstance(user, User) or not user.is_active:
        return False
    return user.is_superuser or user.groups.filter(name__in=AGENT_GROUPS).exists()


def user_is_manager(user: AbstractBaseUser | AnonymousUser) -> bool:
    if not isinstance(user, User) or not user.is_active:
        return False
    return user.is_superuser or user.groups.filter(name=MANAGERS).exists()


def agents_and_managers() -> QuerySet[User]:
    """Every active user user_is_agent admits (superusers included), each with `is_manager` as
    user_is_manager says, in one query."""
    in_managers = User.groups.through.objects.filter(user=OuterRef("pk"), group__name=MANAGERS)
    return (
        User.objects.filter(is_active=True)
        .filter(Q(groups__name__in=AGENT_GROUPS) | Q(is_superuser=True))
        .distinct()
        .annotate(is_manager=ExpressionWrapper(Q(is_superuser=True) | Q(Exists(in_managers)), BooleanField()))
    )


def agent_or_refuse(user: AbstractBaseUser | AnonymousUser) -> User:
    """The signed-in agent or manager a dashboard page serves; anyone else is refused (403, saying why:
    the 403 page shows the PermissionDenied's message)."""
    if not isinstance(user, User) or not user_is_agent(user):
        raise PermissionDenied(gettext("Only agents and managers can use the agents' dashboard."))
    return user


def manager_or_refuse(user: AbstractBaseUser | AnonymousUser, *, reason: StrOrPromise | None = None) -> User:
    """The signed-in manager a managers' page serves (reports, the knowledge pages); anyone else: 403,
    whose page says `reason` (a sentence for people, such as "Only managers can see reports.")."""
    if not isinstance(user, User) or not user_is_manager(user):
        raise PermissionDenied(str(reason) if reason else gettext("Only managers can use this page."))
    return user


def active_agent(username: object) -> User | None:
    """The active agent (or manager) with this username, or None."""
    if not isinstance(username, str):
        return None
    user = User.objects.filter(username=username, is_active=True).first()
    return user if user is not None and user_is_agent(user) else None


def agents_to_transfer_to(*, exclude: int | None) -> QuerySet[User]:
    """Active agents and managers but `exclude`, by name: who a conversation can be handed to."""
    people = User.objects.filter(is_active=True, groups__name__in=AGENT_GROUPS)
    if exclude is not None:
        people = people.exclude(pk=exclude)
    return people.distinct().order_by("first_name", "last_name", "username")


def agent_for_session(session_key: str | None) -> User | None:
    """The one rule for agent sockets: the agent signed in with this session, while the session is live
    (not logged out, not expired, password unchanged) and its user is an active agent; else None."""
    if not session_key:
        return None
    from django.contrib.auth import get_user
    from django.contrib.sessions.backends.base import SessionBase
    from django.utils.module_loading import import_string

    store: SessionBase = import_string(f"{settings.SESSION_ENGINE}.SessionStore")(session_key)

    class _Request:  # get_user reads request.session only
        session = store

    user = get_user(_Request())  # type: ignore[arg-type]
    return user if isinstance(user, User) and user_is_agent(user) else None


def conversation_for_agent(*, user: AbstractBaseUser | AnonymousUser, public_id: uuid.UUID) -> Conversation | None:
    """The one access check for agents: the conversation, or None when it does not exist or the user is no agent."""
    if not user_is_agent(user):
        return None
    return (
        Conversation.objects.select_related("assigned_agent", "topic", "team", "site")
        .filter(public_id=public_id)
        .first()
    )


def conversation_by_public_id(public_id: uuid.UUID) -> Conversation | None:
    return Conversation.objects.select_related("assigned_agent", "topic", "team").filter(public_id=public_id).first()


def verified_customer_conversation_to_resume(*, site_id: int, account_id: str) -> uuid.UUID | None:
    """The public id of the verified customer's most recent conversation on this site that changed within
    CHAT_TOKEN_MAX_AGE_DAYS (what their hello without a token resumes on any device), or None."""
    since = timezone.now() - timedelta(days=settings.CHAT_TOKEN_MAX_AGE_DAYS)
    return (
        Conversation.objects.filter(
            site_id=site_id, customer_account_id=account_id, customer_verified=True, updated_at__gte=since
        )
        .order_by("-updated_at")
        .values_list("public_id", flat=True)
        .first()
    )


EARLIER_CONVERSATIONS_SHOWN = 20


def customer_earlier_conversations(conversation: Conversation) -> list[Conversation]:
    """The same customer's other conversations, newest first (at most EARLIER_CONVERSATIONS_SHOWN), for
    agents. Only a verified customer has any: by site and account id, the conversations whose identity was
    verified too. What an unverified customer claims (an email, an id) finds nothing: anyone can type it."""
    if not conversation.customer_verified or conversation.site_id is None or not conversation.customer_account_id:
        return []
    return list(
        Conversation.objects.filter(
            site_id=conversation.site_id,
            customer_account_id=conversation.customer_account_id,
            customer_verified=True,
        )
        .exclude(pk=conversation.pk)
        .select_related("topic")
        .order_by("-created_at")[:EARLIER_CONVERSATIONS_SHOWN]
    )


def conversation_messages_newest_first(
    conversation: Conversation, *, after_seq: int = 0, before_seq: int | None = None
) -> list[Message]:
    """Messages with after_seq < seq < before_seq, newest first: at most one more than a replay carries,
    so the caller can tell whether it carried them all."""
    messages = conversation.messages.filter(seq__gt=after_seq)
    if before_seq is not None:
        messages = messages.filter(seq__lt=before_seq)
    return list(messages.select_related("author").order_by("-seq")[: settings.CHAT_REPLAY_MESSAGES + 1])


def conversation_turns_until(conversation: Conversation, *, seq: int, limit: int) -> list[Turn]:
    """The last `limit` messages up to and including `seq`, as engine turns, oldest first."""
    latest = list(conversation.messages.filter(seq__lte=seq).order_by("-seq").values_list("sender", "text")[:limit])
    return [
        Turn(role="customer" if sender == Message.Sender.CUSTOMER else "agent", text=text)
        for sender, text in reversed(latest)
    ]


def conversation_latest_draft(conversation: Conversation) -> Draft | None:
    """The draft agents should see: the unfinished one if any, else the most recent."""
    drafts = conversation.drafts.select_related("decided_by", "reply_to", "topic")
    return drafts.filter(status__in=Draft.UNFINISHED).order_by("-created_at").first() or drafts.first()


def customer_can_rate(conversation: Conversation | None) -> bool:
    """Whether the customer may rate (or re-rate) the conversation now: while it is closed."""
    return conversation is not None and conversation.status == Conversation.Status.CLOSED


def conversation_current_rating(conversation: Conversation | None) -> Rating | None:
    """The customer's rating of the conversation's current closing, while it is closed."""
    if not customer_can_rate(conversation):
        return None
    assert conversation is not None
    return conversation.ratings.filter(after_seq=conversation.last_seq).first()


def conversation_latest_rating(conversation: Conversation) -> Rating | None:
    """The newest rating of any of its closings (what agents see)."""
    return conversation.ratings.order_by("-after_seq").first()


def customer_status(conversation: Conversation) -> tuple[str, str]:
    """What the customer's widget shows under the chat: (code, sentence in the customer's language)."""
    code = _customer_status_code(conversation)
    if code == "idle":
        return code, ""
    return code, notices.notice_text(code, conversation.language, email=conversation.contact_email)


def _customer_status_code(conversation: Conversation) -> str:
    Code = notices.Code
    if conversation.status == Conversation.Status.TAKEN_OVER:
        return Code.AGENT_JOINED
    if conversation.status == Conversation.Status.ESCALATED:
        if conversation.contact_email:
            return Code.EMAIL_LEFT
        return Code.WAITING_FOR_AGENT if presence.anyone_online() else Code.NO_AGENT_ONLINE
    if conversation.status == Conversation.Status.CLOSED:
        return Code.CLOSED
    if conversation.awaiting_reply_since is not None:
        return Code.REVIEWING
    return "idle"


def with_queue_details(conversations: QuerySet[Conversation]) -> QuerySet[Conversation]:
    """Annotate what a queue row shows: the latest customer words and the unfinished draft, in one query."""
    unfinished = Draft.objects.filter(conversation=OuterRef("pk"), status__in=Draft.UNFINISHED).order_by("-created_at")
    active_flags = Prefetch("flags", queryset=EscalationFlag.objects.filter(active=True), to_attr="active_flags")
    return (
        conversations.select_related("assigned_agent", "topic", "team", "site")
        .prefetch_related(active_flags)
        .annotate(
            latest_customer_text=Subquery(
                Message.objects.filter(conversation=OuterRef("pk"), sender=Message.Sender.CUSTOMER)
                .order_by("-seq")
                .values("text")[:1]
            ),
            draft_status=Subquery(unfinished.values("status")[:1]),
            draft_confidence=Subquery(unfinished.values("confidence")[:1]),
        )
    )


@dataclass(frozen=True)
class QueueFilter:
    """Which part of the queue an agent looks at; None (False for `mine_of`) means any.

    reason   an EscalationReason value the conversation has an active flag for
    topic    a Topic name
    mine_of  a username: only conversations assigned to that agent
    """

    reason: str | None = None
    topic: str | None = None
    mine_of: str | None = None

    def as_frame(self) -> dict[str, object]:
        return {"reason": self.reason, "topic": self.topic, "mine": self.mine_of is not None}


def queue_filter(*, reason: str | None, topic: str | None, mine: bool, agent: User) -> QueueFilter:
    """A checked QueueFilter; an unknown reason is refused (`invalid_request`), an unknown topic matches nothing."""
    if reason and reason not in Conversation.EscalationReason.values:
        raise ServiceError(
            "invalid_request", gettext("Unknown reason %(reason)r.") % {"reason": reason}, field="reason"
        )
    return QueueFilter(reason=reason or None, topic=topic or None, mine_of=agent.username if mine else None)


def agent_queue(queue_filter: QueueFilter | None = None) -> QuerySet[Conversation]:
    """Conversations that need a person: highest priority (summed weights of their active escalation
    reasons) first, then the longest-waiting customer; only those matching `queue_filter`, if given."""
    conversations = Conversation.objects.filter(
        Q(status__in=[Conversation.Status.ESCALATED, Conversation.Status.TAKEN_OVER])
        | Q(awaiting_reply_since__isnull=False)
    ).exclude(status=Conversation.Status.CLOSED)
    if queue_filter is not None:
        if queue_filter.reason:
            flagged = EscalationFlag.objects.filter(conversation=OuterRef("pk"), active=True)
            conversations = conversations.filter(Exists(flagged.filter(reason=queue_filter.reason)))
        if queue_filter.topic:
            conversations = conversations.filter(topic__name=queue_filter.topic)
        if queue_filter.mine_of:
            conversations = conversations.filter(assigned_agent__username=queue_filter.mine_of)
    return with_queue_details(conversations).order_by(
        "-priority", F("awaiting_reply_since").asc(nulls_last=True), "-updated_at"
    )


def queue_item_matches(item: dict[str, object], queue_filter: QueueFilter) -> bool:
    """Whether a queue row (frames.queue_item) passes `queue_filter`: the same test as agent_queue's, on the frame."""
    reasons = item.get("reasons")
    if queue_filter.reason and not (
        isinstance(reasons, list) and any(r.get("reason") == queue_filter.reason for r in reasons)
    ):
        return False
    if queue_filter.topic and item.get("topic") != queue_filter.topic:
        return False
    return not queue_filter.mine_of or item.get("assigned_agent_username") == queue_filter.mine_of


def topic_names() -> list[str]:
    """Every topic's name, for the queue's topic filter."""
    return list(Topic.objects.order_by("name").values_list("name", flat=True))


def conversation_active_flags(conversation: Conversation) -> list[EscalationFlag]:
    """Its active flags, oldest first (prefetched by with_queue_details, else read now)."""
    flags: list[EscalationFlag] | None = getattr(conversation, "active_flags", None)
    return list(flags) if flags is not None else list(conversation.flags.filter(active=True))


def conversation_reasons(conversation: Conversation) -> list[EscalationFlag]:
    """The latest active flag of each reason, the heaviest reason (ESCALATION_WEIGHTS) first."""
    latest = {flag.reason: flag for flag in sorted(conversation_active_flags(conversation), key=lambda f: f.created_at)}
    weights = settings.ESCALATION_WEIGHTS
    return sorted(latest.values(), key=lambda f: -weights.get(f.reason, 0))


# Reasons that say nothing about whether a draft's content is safe to send: low confidence is judged on
# the draft itself, a failed draft was an earlier one, and a breached SLA is about time.
NOT_A_DRAFT_RISK = frozenset(
    {
        Conversation.EscalationReason.LOW_CONFIDENCE,
        Conversation.EscalationReason.DRAFT_FAILED,
        Conversation.EscalationReason.SLA_BREACH,
    }
)


def draft_is_risky(draft: Draft, conversation: Conversation) -> list[str]:
    """Why an agent should not send this draft with one click, in sentences shown to agents: its
    confidence is below the escalation threshold, and each reason the conversation is flagged for
    (heaviest first) except those in NOT_A_DRAFT_RISK. An empty list: nothing speaks against it."""
    from chatdesk.knowledge.services import escalation_threshold  # knowledge.services imports this module

    threshold = escalation_threshold(draft.topic)  # the one place that says how confident a draft must be
    risks = []
    if draft.confidence is not None and draft.confidence < threshold:
        risks.append(f"Confidence {draft.confidence:.0%} is below the {threshold:.0%} a draft needs.")
    for flag in conversation_reasons(conversation):
        if flag.reason not in NOT_A_DRAFT_RISK:
            label = flag.get_reason_display()
            risks.append(f"{label}: {flag.detail}." if flag.detail else f"{label}.")
    return risks


def conversation_in_queue(conversation: Conversation) -> bool:
    return conversation.status != Conversation.Status.CLOSED and (
        conversation.status in (Conversation.Status.ESCALATED, Conversation.Status.TAKEN_OVER)
        or conversation.awaiting_reply_since is not None
    )


INBOX_VIEWS = {
    "all": gettext_lazy("All"),
    "mine": gettext_lazy("Mine"),
    "unassigned": gettext_lazy("Unassigned"),
    "closed": gettext_lazy("Closed"),
}


def conversations_matching(
    conversations: QuerySet[Conversation], *, tag: str = "", text: str = ""
) -> QuerySet[Conversation]:
    """`conversations` narrowed to those carrying `tag` (normalised as tags are; an impossible tag matches
    nothing) and those where `text` occurs, ignoring case, in a message or an internal note."""
    if tag:
        name = " ".join(tag.split()).lower()  # as notes.normalise_tag stores it
        conversations = conversations.filter(
            Exists(ConversationTag.objects.filter(conversation=OuterRef("pk"), name=name))
        )
    text = text.strip()
    if text:
        conversations = conversations.filter(
            Q(Exists(Message.objects.filter(conversation=OuterRef("pk"), text__icontains=text)))
            | Q(Exists(Note.objects.filter(conversation=OuterRef("pk"), text__icontains=text)))
        )
    return conversations


def inbox(
    *,
    user: User,
    view: str = "all",
    text: str = "",
    agent: str = "",
    topic: str = "",
    tag: str = "",
    since: date | None = None,
    until: date | None = None,
) -> QuerySet[Conversation]:
    """Conversations for the agents' inbox, most recently active first.

    view: all | mine (assigned to `user`) | unassigned (open ones nobody is responsible for) | closed.
    text: words in any of its messages or agents' notes (case-insensitive); agent: a username who was
    responsible for it or acted on it; topic: a topic name; tag: one of its tags; since/until: last
    activity between these dates (inclusive).
    """
    # A chat opened and left without a word is nobody's business; one that asked for a person (button only) is.
    found = Conversation.objects.select_related("assigned_agent", "topic", "team").exclude(
        last_seq=0, status=Conversation.Status.OPEN
    )
    if view == "mine":
        found = found.filter(assigned_agent=user)
    elif view == "unassigned":
        found = found.filter(assigned_agent__isnull=True).exclude(status=Conversation.Status.CLOSED)
    elif view == "closed":
        found = found.filter(status=Conversation.Status.CLOSED)
    found = conversations_matching(found, tag=tag, text=text)
    if agent:
        found = found.filter(
            Q(assigned_agent__username=agent)
            | Exists(AgentAction.objects.filter(conversation=OuterRef("pk"), agent__username=agent))
        )
    if topic:
        found = found.filter(topic__name=topic)
    if since:
        found = found.filter(updated_at__date__gte=since)
    if until:
        found = found.filter(updated_at__date__lte=until)
    return found.order_by("-updated_at")


def agent_next_conversation(*, agent: User, after: uuid.UUID | None) -> Conversation | None:
    """The conversation an agent should open next (the "next conversation" shortcut): the top of the
    queue among those assigned to `agent` or to nobody, leaving out `after` (the one they are on)."""
    mine_or_free = Q(assigned_agent=agent) | Q(assigned_agent__isnull=True)
    candidates = agent_queue().filter(mine_or_free)
    if after is not None:
        candidates = candidates.exclude(public_id=after)
    return candidates.first()
