"""Conversations between a customer and the desk, the drafts written for them, and what agents did."""

from __future__ import annotations

import uuid

from django.conf import settings
from django.db import models
from django.db.models import Q
from django.utils.translation import gettext
from django.utils.translation import gettext_lazy as _


class Team(models.Model):
    """Agents who answer some topics. An escalated conversation on one of the team's topics waits in the
    team's queue and is assigned to one of its members; a conversation on no team's topic is everyone's."""

    name = models.CharField(max_length=80, unique=True)
    members = models.ManyToManyField(settings.AUTH_USER_MODEL, blank=True, related_name="teams")
    topics = models.ManyToManyField("knowledge.Topic", through="TeamTopic", blank=True, related_name="teams")

    class Meta:
        ordering = ["name"]

    def __str__(self) -> str:
        return self.name


class TeamTopic(models.Model):
    """A topic belongs to at most one team."""

    team = models.ForeignKey(Team, on_delete=models.CASCADE)
    topic = models.OneToOneField("knowledge.Topic", on_delete=models.CASCADE, related_name="team_topic")

    def __str__(self) -> str:
        return f"{self.topic} → {self.team}"


class Conversation(models.Model):
    """One customer's chat. Its status says who answers the customer next.

    open        every customer message is drafted by the model; an agent reviews each draft
    escalated   the model cannot handle it (see escalation_reason and flags); it waits for an agent
    taken_over  an agent (assigned_agent) answers directly; nothing is drafted
    closed      finished; a new customer message reopens it
    """

    class Status(models.TextChoices):
        OPEN = "open", _("Open")  # the model answers it; people read status_text
        ESCALATED = "escalated", _("Escalated")
        TAKEN_OVER = "taken_over", _("Taken over")
        CLOSED = "closed", _("Closed")

    class EscalationReason(models.TextChoices):
        """Why a conversation needs a person. Each rule that fires is stored as an EscalationFlag."""

        CUSTOMER_REQUEST = "customer_request", _("Customer asked for a person")
        LOW_CONFIDENCE = "low_confidence", _("Draft confidence too low")
        DRAFT_FAILED = "draft_failed", _("Drafting failed or timed out")
        OUT_OF_SCOPE = "out_of_scope", _("Something we don't answer")
        NEGATIVE_SENTIMENT = "negative_sentiment", _("Angry or distressed customer")
        SENSITIVE = "sensitive", _("Sensitive topic")
        REPEATED_QUESTION = "repeated_question", _("Customer repeated the question")
        INJECTION = "injection", _("Prompt injection or abuse")
        SLA_BREACH = "sla_breach", _("Waiting too long")

    class AnsweredBy(models.TextChoices):
        """Who answered the customer so far, the strongest that happened: a person (took over, or wrote a
        reply of their own) over edited drafts (a sent draft's text was changed) over drafts sent as is."""

        NONE = "none", _("No reply")
        AS_IS = "as_is", _("Drafts sent as is")
        EDITED = "edited", _("Edited drafts")
        PERSON = "person", _("A person (took over)")

    public_id = models.UUIDField(default=uuid.uuid4, unique=True, editable=False)
    status = models.CharField(max_length=16, choices=Status.choices, default=Status.OPEN, db_index=True)
    escalation_reason = models.CharField(
        max_length=32,
        choices=EscalationReason.choices,
        blank=True,
        help_text="The reason that escalated it; every reason that fired is in flags.",
    )
    priority = models.PositiveSmallIntegerField(
        default=0,
        db_index=True,
        help_text="Agents' queue order, highest first: the summed weights of its active flags' reasons.",
    )
    sentiment = models.FloatField(
        null=True, blank=True, help_text="Sentiment of the latest customer message, -1 (angry) to 1 (pleased)."
    )
    escalated_at = models.DateTimeField(null=True, blank=True)
    assigned_agent = models.ForeignKey(
        settings.AUTH_USER_MODEL,
        null=True,
        blank=True,
        on_delete=models.SET_NULL,
        related_name="assigned_conversations",
        help_text="The agent responsible for it: assigned or claimed while escalated, answering once taken over.",
    )
    team = models.ForeignKey(
        Team, null=True, blank=True, on_delete=models.SET_NULL, help_text="Whose queue it waits in; none: everyone's."
    )
    topic = models.ForeignKey(
        "knowledge.Topic", null=True, blank=True, on_delete=models.SET_NULL, help_text="Topic of the latest draft."
    )
    last_seq = models.PositiveIntegerField(default=0, help_text="Sequence number of the latest message.")
    contact_email = models.EmailField(
        blank=True, help_text="Where the customer asked to be answered when no agent was at the desk."
    )
    contact_email_at = models.DateTimeField(null=True, blank=True)
    handoff_summary = models.TextField(
        blank=True, help_text="What the customer wants and what was answered, written when it last reached a person."
    )
    handoff_summary_by = models.CharField(
        max_length=64,
        blank=True,
        help_text="Who wrote handoff_summary: \"extractive\" (the conversation's own words) or an engine's name.",
    )
    language = models.CharField(
        max_length=16,
        blank=True,
        help_text="The customer's language (a Django language code, e.g. en or zh-hans): what the widget said, "
        "else guessed from the customer's words. Chooses the customer notices' wording.",
    )
    # Who the customer is, as the host site said in the widget's hello (docs/identity.md).
    site = models.ForeignKey(
        "widget_sites.WidgetSite",
        null=True,
        blank=True,
        on_delete=models.SET_NULL,
        related_name="conversations",
        help_text="The host site whose widget the customer wrote from, when the widget named one.",
    )
    customer_account_id = models.CharField(
        max_length=200, blank=True, help_text="The customer's account id on the host site, as the widget said."
    )
    customer_name = models.CharField(max_length=200, blank=True, help_text="The customer's name, as the widget said.")
    customer_email = models.EmailField(
        max_length=254, blank=True, help_text="The customer's email address on the host site, as the widget said."
    )
    customer_verified = models.BooleanField(
        default=False,
        help_text="The host site signed the account id, email and name with its secret: they are who the site "
        "says. False: the customer's own claim (or nothing was said).",
    )
    page_url = models.URLField(
        max_length=2000, blank=True, help_text="The page the customer was on at their latest hello."
    )
    page_seen_at = models.DateTimeField(null=True, blank=True, help_text="When page_url was last reported.")
    # What the handoff reports aggregate, recorded as it happens (docs/reports.md).
    first_customer_at = models.DateTimeField(
        null=True, blank=True, db_index=True, help_text="When the customer's first message arrived."
    )
    first_response_at = models.DateTimeField(
        null=True, blank=True, help_text="When the customer first received a reply (agent's or autopilot's)."
    )
    closed_at = models.DateTimeField(null=True, blank=True, db_index=True, help_text="When it was last closed.")
    reopened_count = models.PositiveSmallIntegerField(
        default=0, help_text="How many times a customer message reopened it after a close."
    )
    answered_by = models.CharField(
        max_length=8,
        choices=AnsweredBy.choices,
        default=AnsweredBy.NONE,
        help_text="Who answered the customer so far (none < drafts as is < edited drafts < a person).",
    )
    taken_over_at = models.DateTimeField(null=True, blank=True, help_text="When an agent first took it over.")
    handed_off_at = models.DateTimeField(
        null=True,
        blank=True,
        help_text="When it first needed a person: an escalation rule fired or an agent took it over.",
    )
    awaiting_reply_since = models.DateTimeField(
        null=True, blank=True, db_index=True, help_text="When the oldest unanswered customer message arrived."
    )
    created_at = models.DateTimeField(auto_now_add=True)
    updated_at = models.DateTimeField(auto_now=True)

    class Meta:
        ordering = ["-updated_at"]
        indexes = [
            # The agents' queue order (selectors.agent_queue): its first screen reads the top rows of
            # this index instead of sorting every queued conversation (bench/dashboard.py).
            models.Index(fields=["-priority", "awaiting_reply_since", "-updated_at"], name="conversation_queue_order"),
            # A verified customer's conversations: resuming on another device, earlier conversations.
            models.Index(
                fields=["site", "customer_account_id", "-updated_at"],
                condition=Q(customer_verified=True),
                name="conversation_verified_customer",
            ),
        ]

    def __str__(self) -> str:
        # Never the customer's name: this is what logs and error reports show.
        return f"Visitor {str(self.public_id)[:8]}"

    @property
    def customer_label(self) -> str:
        """What agents call the customer: the name the widget gave, else "Visitor" and the id's start."""
        return self.customer_name or str(self)

    @property
    def status_text(self) -> str:
        """The status as people read it: an open conversation says whether a reply is owed to the customer
        ("Waiting for a reply") or not ("Answered"), never that it is drafting when nothing is."""
        if self.status == self.Status.OPEN:
            return gettext("Waiting for a reply") if self.awaiting_reply_since else gettext("Answered")
        return str(self.get_status_display())


class Message(models.Model):
    """A message shown to the customer. seq is gap-free within a conversation."""

    class Sender(models.TextChoices):
        CUSTOMER = "customer", _("Customer")
        AGENT = "agent", _("Agent")
        BOT = "bot", _("Autopilot")

    conversation = models.ForeignKey(Conversation, on_delete=models.CASCADE, related_name="messages")
    seq = models.PositiveIntegerField()
    sender = models.CharField(max_length=16, choices=Sender.choices)
    text = models.TextField()
    client_id = models.CharField(
        max_length=64, blank=True, help_text="The sending client's own id, so a resend is not stored twice."
    )
    author = models.ForeignKey(settings.AUTH_USER_MODEL, null=True, blank=True, on_delete=models.SET_NULL)
    draft = models.ForeignKey("Draft", null=True, blank=True, on_delete=models.SET_NULL, related_name="+")
    created_at = models.DateTimeField(auto_now_add=True)

    class Meta:
        ordering = ["conversation", "seq"]
        indexes = [
            # Reports: messages sent in a date range; which conversations a person replied to in their own words.
            models.Index(fields=["created_at", "sender"], name="message_created_sender"),
            models.Index(
                fields=["conversation"], condition=Q(sender="agent", draft__isnull=True), name="message_own_reply"
            ),
        ]
        constraints = [
            models.UniqueConstraint(fields=["conversation", "seq"], name="message_seq_unique"),
            models.UniqueConstraint(
                fields=["conversation", "client_id"], condition=~Q(client_id=""), name="message_client_id_unique"
            ),
        ]

    def __str__(self) -> str:
        return f"#{self.seq} {self.sender}: {self.text[:40]}"


class Draft(models.Model):
    """A reply the model proposed for the conversation's latest customer message.

    pending -> generating -> ready -> approved | edited | rejected | auto_sent
    Any unfinished draft can become superseded (a newer customer message), taken_over (an agent took
    the conversation over; the take-over AgentAction points at it), discarded (closed, handed to a
    person otherwise) or failed (error_code says why).

    Decided drafts record what the reports aggregate: edit_distance and chars_changed (draft text →
    text sent), review_seconds (ready → decided), draft_seconds (customer message → ready).
    """

    class Status(models.TextChoices):
        PENDING = "pending", _("Queued")
        GENERATING = "generating", _("Generating")
        READY = "ready", _("Awaiting review")
        APPROVED = "approved", _("Sent as drafted")
        EDITED = "edited", _("Sent after edit")
        REJECTED = "rejected", _("Rejected")
        AUTO_SENT = "auto_sent", _("Sent by autopilot")
        SUPERSEDED = "superseded", _("Superseded")
        TAKEN_OVER = "taken_over", _("Dropped: an agent took over")
        DISCARDED = "discarded", _("Discarded")
        FAILED = "failed", _("Failed")

    class ErrorCode(models.TextChoices):
        """Why a draft failed; `error` says it in words."""

        TIMED_OUT = "timed_out", _("Timed out")
        ENGINE_ERROR = "engine_error", _("Engine error")
        WORKER_LOST = "worker_lost", _("No worker finished it")
        TOO_MANY_ATTEMPTS = "too_many_attempts", _("Too many attempts")

    UNFINISHED = (Status.PENDING, Status.GENERATING, Status.READY)

    conversation = models.ForeignKey(Conversation, on_delete=models.CASCADE, related_name="drafts")
    reply_to = models.ForeignKey(
        Message, on_delete=models.CASCADE, related_name="+", help_text="The customer message this draft answers."
    )
    status = models.CharField(max_length=16, choices=Status.choices, default=Status.PENDING, db_index=True)
    engine = models.CharField(max_length=32, blank=True)
    text = models.TextField(blank=True)
    alternatives = models.JSONField(
        default=list, blank=True, help_text="Other wordings the engine proposed (beam search), best first."
    )
    sources = models.JSONField(default=list, blank=True)
    confidence = models.FloatField(null=True, blank=True)
    topic = models.ForeignKey("knowledge.Topic", null=True, blank=True, on_delete=models.SET_NULL)
    timings = models.JSONField(default=dict, blank=True, help_text="Seconds spent per drafting step.")
    tokens = models.PositiveIntegerField(default=0, help_text="Tokens the engine generated (0 for selection).")
    prompt_tokens = models.PositiveIntegerField(default=0, help_text="Tokens the engine read (0 for selection).")
    model_name = models.CharField(
        max_length=200, blank=True, help_text="The model behind the engine (a directory, HF id or served model name)."
    )
    error = models.TextField(blank=True)
    error_code = models.CharField(max_length=24, choices=ErrorCode.choices, blank=True)
    options = models.JSONField(
        default=dict, blank=True, help_text="Engine options, e.g. sources to avoid after a rejection."
    )
    attempts = models.PositiveSmallIntegerField(default=0, help_text="How many times a worker started it.")
    task_id = models.CharField(
        max_length=64, blank=True, help_text="The Celery task that claimed it last (its redelivery may claim it again)."
    )
    created_at = models.DateTimeField(auto_now_add=True)
    queued_at = models.DateTimeField(null=True, blank=True, help_text="When its task was last sent to the broker.")
    started_at = models.DateTimeField(null=True, blank=True)
    ready_at = models.DateTimeField(null=True, blank=True)
    decided_at = models.DateTimeField(null=True, blank=True)
    decided_by = models.ForeignKey(
        settings.AUTH_USER_MODEL, null=True, blank=True, on_delete=models.SET_NULL, related_name="+"
    )
    edit_distance = models.FloatField(
        null=True,
        blank=True,
        help_text="Sent drafts: normalised Levenshtein distance from the draft to the text sent, 0 (as is) to 1.",
    )
    chars_changed = models.PositiveIntegerField(
        null=True, blank=True, help_text="Sent drafts: Levenshtein distance in characters."
    )
    review_seconds = models.FloatField(null=True, blank=True, help_text="Decided drafts: ready → decided.")
    draft_seconds = models.FloatField(null=True, blank=True, help_text="Customer message → draft ready.")

    class Meta:
        ordering = ["-created_at"]
        indexes = [
            models.Index(fields=["created_at"], name="draft_created_at"),
            models.Index(fields=["decided_at"], name="draft_decided_at"),
            # Reports: the range's drafts read from the index alone (PostgreSQL; SQLite ignores include).
            models.Index(
                fields=["created_at"],
                include=[
                    "status",
                    "engine",
                    "topic",
                    "decided_by",
                    "conversation",
                    "tokens",
                    "prompt_tokens",
                    "draft_seconds",
                    "review_seconds",
                    "edit_distance",
                    "chars_changed",
                ],
                name="draft_report_cover",
            ),
            # Reports: percentiles of drafting and review times, read in order from the index (PostgreSQL
            # includes the filters' columns: no table reads).
            *(
                models.Index(
                    fields=[seconds, "created_at"],
                    include=["topic", "decided_by", "engine"],
                    name=f"draft_{seconds}",
                )
                for seconds in ("draft_seconds", "review_seconds")
            ),
            # Reports, per conversation: an edited draft (and by how much)? a draft the customer received?
            models.Index(
                fields=["conversation"], include=["edit_distance"], condition=Q(status="edited"), name="draft_edited"
            ),
            models.Index(
                fields=["conversation"],
                condition=Q(status__in=["approved", "edited", "auto_sent"]),
                name="draft_sent",
            ),
        ]
        constraints = [
            models.UniqueConstraint(
                fields=["conversation"], condition=Q(status="pending"), name="one_pending_draft_per_conversation"
            ),
        ]

    def __str__(self) -> str:
        return f"Draft {self.pk} ({self.status})"


class AgentAction(models.Model):
    """Audit trail: who did what to which conversation and draft, and what the customer got."""

    class Kind(models.TextChoices):
        APPROVE = "approve", _("Approved")
        EDIT = "edit", _("Edited and sent")
        REJECT = "reject", _("Rejected")
        TAKE_OVER = "take_over", _("Took over")
        HAND_BACK = "hand_back", _("Handed back")
        REPLY = "reply", _("Replied")
        CLOSE = "close", _("Closed")
        ASSIGN = "assign", _("Assigned automatically")
        CLAIM = "claim", _("Claimed")
        RELEASE = "release", _("Released")
        TRANSFER = "transfer", _("Transferred")

    conversation = models.ForeignKey(Conversation, on_delete=models.CASCADE, related_name="actions")
    draft = models.ForeignKey(Draft, null=True, blank=True, on_delete=models.SET_NULL, related_name="actions")
    agent = models.ForeignKey(settings.AUTH_USER_MODEL, on_delete=models.PROTECT, related_name="+")
    kind = models.CharField(max_length=16, choices=Kind.choices)
    draft_text = models.TextField(blank=True)
    sent_text = models.TextField(blank=True)
    to_agent = models.ForeignKey(
        settings.AUTH_USER_MODEL,
        null=True,
        blank=True,
        on_delete=models.SET_NULL,
        related_name="assignments_received",
        help_text="Assign, claim, transfer: who became responsible.",
    )
    to_team = models.ForeignKey(Team, null=True, blank=True, on_delete=models.SET_NULL, related_name="+")
    note = models.TextField(blank=True, help_text="A transfer's note to whoever takes it.")
    created_at = models.DateTimeField(auto_now_add=True)

    class Meta:
        ordering = ["-created_at"]
        indexes = [
            # Reports: was a conversation taken over?
            models.Index(fields=["conversation"], condition=Q(kind="take_over"), name="action_take_over"),
        ]

    def __str__(self) -> str:
        return f"{self.agent} {self.kind} ({self.created_at:%Y-%m-%d %H:%M})"


class EscalationFlag(models.Model):
    """One escalation rule that fired in a conversation, with what fired it. A conversation can carry
    several; the active ones set its priority. Closing or handing back clears them (active=False);
    the rows stay, for reports."""

    Reason = Conversation.EscalationReason

    conversation = models.ForeignKey(Conversation, on_delete=models.CASCADE, related_name="flags")
    reason = models.CharField(max_length=32, choices=Reason.choices)
    message = models.ForeignKey(
        Message,
        null=True,
        blank=True,
        on_delete=models.SET_NULL,
        related_name="+",
        help_text="The customer message that fired it.",
    )
    detail = models.CharField(max_length=200, blank=True, help_text="What fired it, in words shown to agents.")
    score = models.FloatField(null=True, blank=True, help_text="The rule's measure, e.g. sentiment or similarity.")
    active = models.BooleanField(default=True)
    created_at = models.DateTimeField(auto_now_add=True)

    class Meta:
        ordering = ["created_at"]
        indexes = [models.Index(fields=["reason", "created_at"])]

    def __str__(self) -> str:
        return f"{self.get_reason_display()} ({self.created_at:%Y-%m-%d %H:%M})"


class SensitiveRule(models.Model):
    """Something the desk never handles alone: a customer phrase or a knowledge topic a manager marked
    sensitive (legal threats, account closure, safety, fraud). A message with the phrase, or a draft on
    the topic, flags the conversation `sensitive`: it goes to a person and is never auto-sent.

    phrase  matched in customers' messages ignoring case and width; Latin-script phrases as whole words
    topic   a draft on this topic is reviewed by a person
    """

    phrase = models.CharField(
        max_length=100,
        blank=True,
        help_text='Words a customer may write, e.g. "lawyer" or "注销账户" (case and width do not matter; '
        "Latin-script phrases match whole words only).",
    )
    topic = models.ForeignKey(
        "knowledge.Topic",
        null=True,
        blank=True,
        on_delete=models.CASCADE,
        related_name="sensitive_rules",
        help_text="Or a topic: drafts on it always go to a person.",
    )
    amount_above = models.DecimalField(
        max_digits=12,
        decimal_places=2,
        null=True,
        blank=True,
        help_text='With a phrase: fire only when the message also names an amount above this, e.g. phrase "refund" '
        'and 200 for "refunds above 200" ("$250", "250 dollars", "250元" count; the currency is not compared).',
    )
    note = models.CharField(max_length=200, blank=True, help_text="Why it is sensitive, shown to agents.")
    active = models.BooleanField(default=True)
    created_at = models.DateTimeField(auto_now_add=True)

    class Meta:
        ordering = ["phrase", "topic__name"]
        constraints = [
            models.CheckConstraint(
                condition=(Q(phrase="") & Q(topic__isnull=False)) | (~Q(phrase="") & Q(topic__isnull=True)),
                name="sensitive_rule_phrase_or_topic",
                violation_error_message="Give either a phrase or a topic, not both.",
            ),
            models.CheckConstraint(
                condition=Q(amount_above__isnull=True) | ~Q(phrase=""),
                name="sensitive_rule_amount_needs_phrase",
                violation_error_message="An amount goes with a phrase (e.g. refund), not with a topic.",
            ),
        ]

    def __str__(self) -> str:
        if self.amount_above is not None:
            return f'"{self.phrase}" above {float(self.amount_above):g}'
        return f'"{self.phrase}"' if self.phrase else f"topic {self.topic}"


class Rating(models.Model):
    """The customer's satisfaction (CSAT) with one closing of a conversation: 1 (very unhappy) to 5
    (very happy), with an optional comment. One per closing (after_seq: the conversation's last message
    when it was closed); the customer may change it until they write again."""

    conversation = models.ForeignKey(Conversation, on_delete=models.CASCADE, related_name="ratings")
    after_seq = models.PositiveIntegerField(help_text="The conversation's last message when it was closed.")
    score = models.PositiveSmallIntegerField()
    comment = models.TextField(blank=True)
    created_at = models.DateTimeField(auto_now_add=True, db_index=True)
    updated_at = models.DateTimeField(auto_now=True)

    class Meta:
        ordering = ["-created_at"]
        constraints = [
            models.UniqueConstraint(fields=["conversation", "after_seq"], name="rating_one_per_closing"),
            models.CheckConstraint(condition=Q(score__gte=1) & Q(score__lte=5), name="rating_score_1_to_5"),
        ]

    def __str__(self) -> str:
        return f"{self.score}/5 for {self.conversation}"


class CustomerNotice(models.Model):
    """A manager's own wording, in one language, of what the widget tells the customer about who answers
    (handoff message, nobody online, agent joined...). Without one, the built-in wording is used
    (chatdesk.conversations.notices)."""

    class Code(models.TextChoices):
        WAITING_FOR_AGENT = "waiting_for_agent", _("Handed to a person, waiting for an agent")
        NO_AGENT_ONLINE = "no_agent_online", _("Handed to a person, nobody at the desk")
        EMAIL_LEFT = "email_left", _("The customer left an email address")
        AGENT_JOINED = "agent_joined", _("An agent took the conversation over")
        REVIEWING = "reviewing", _("A reply is being reviewed")
        CLOSED = "closed", _("The conversation was closed")

    code = models.CharField(max_length=32, choices=Code.choices)
    language = models.CharField(max_length=16, choices=settings.LANGUAGES)
    text = models.CharField(
        max_length=300, help_text="{email} is replaced by the customer's address where one was left."
    )

    class Meta:
        ordering = ["code", "language"]
        constraints = [models.UniqueConstraint(fields=["code", "language"], name="customer_notice_one_per_language")]

    def __str__(self) -> str:
        return f"{self.get_code_display()} ({self.language})"


class AgentSocket(models.Model):
    """One open dashboard socket of an agent: what the desk knows of who is at the desk.

    An agent is online while one of their sockets is open, heard from within AGENT_PRESENCE_STALE_S
    (clients ping every 25 s; a server killed without closing its sockets leaves rows that stop
    counting), and not away (the tab is hidden); still online for AGENT_OFFLINE_GRACE_S after their
    last socket closed (a reload, a network blip); otherwise offline. Read it through
    chatdesk.conversations.presence.
    """

    agent = models.ForeignKey(settings.AUTH_USER_MODEL, on_delete=models.CASCADE, related_name="dashboard_sockets")
    channel_name = models.CharField(max_length=200, unique=True)
    conversation = models.ForeignKey(
        Conversation,
        null=True,
        blank=True,
        on_delete=models.CASCADE,
        related_name="viewers",
        help_text="The conversation this socket shows (none: the queue).",
    )
    away = models.BooleanField(default=False, help_text="The agent's tab is hidden.")
    opened_at = models.DateTimeField(auto_now_add=True)
    last_seen = models.DateTimeField(db_index=True)
    closed_at = models.DateTimeField(null=True, blank=True, db_index=True)

    def __str__(self) -> str:
        return f"{self.agent} socket {self.channel_name}"


class Note(models.Model):
    """An agent's internal note on a conversation: for agents and managers only. Never sent on the
    customer's socket, never in a drafting engine's context (docs/notes.md)."""

    conversation = models.ForeignKey(Conversation, on_delete=models.CASCADE, related_name="notes")
    author = models.ForeignKey(
        settings.AUTH_USER_MODEL, null=True, blank=True, on_delete=models.SET_NULL, related_name="+"
    )
    text = models.TextField()
    created_at = models.DateTimeField(auto_now_add=True)

    class Meta:
        ordering = ["created_at", "pk"]
        indexes = [models.Index(fields=["conversation", "created_at"])]

    def __str__(self) -> str:
        return f"Note {self.pk} ({self.created_at:%Y-%m-%d %H:%M})"


class ConversationTag(models.Model):
    """A short label agents put on a conversation (normalised: trimmed, lower-case, at most 40 characters;
    at most 20 per conversation), for finding it again."""

    conversation = models.ForeignKey(Conversation, on_delete=models.CASCADE, related_name="tags")
    name = models.CharField(max_length=40)
    added_by = models.ForeignKey(
        settings.AUTH_USER_MODEL, null=True, blank=True, on_delete=models.SET_NULL, related_name="+"
    )
    created_at = models.DateTimeField(auto_now_add=True)

    class Meta:
        ordering = ["name"]
        indexes = [models.Index(fields=["name"])]
        constraints = [models.UniqueConstraint(fields=["conversation", "name"], name="conversation_tag_once")]

    def __str__(self) -> str:
        return self.name
