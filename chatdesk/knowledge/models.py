"""What drafts are selected from: published articles and replies agents approved."""

from __future__ import annotations

from django.conf import settings
from django.db import models
from django.utils.translation import gettext_lazy as _


class Topic(models.Model):
    """A subject customers ask about; reports and autopilot work per topic."""

    name = models.CharField(max_length=80, unique=True)
    autopilot = models.BooleanField(
        default=False,
        help_text="Send drafts on this topic to the customer without review when confident enough.",
    )
    autopilot_min_confidence = models.FloatField(
        default=0.8, help_text="Lowest draft confidence (0 to 1) that autopilot sends by itself."
    )

    class Meta:
        ordering = ["name"]

    def __str__(self) -> str:
        return self.name


class Article(models.Model):
    """A knowledge-base answer. Its title and example questions are what customers' words are matched against."""

    topic = models.ForeignKey(Topic, on_delete=models.PROTECT, related_name="articles")
    title = models.CharField(max_length=200, unique=True)
    body = models.TextField(help_text="The reply a customer receives.")
    questions = models.TextField(blank=True, help_text="Example customer questions, one per line.")
    language = models.CharField(
        max_length=16,
        choices=settings.LANGUAGES,
        default="en",
        help_text="The language it is written in; customers writing in it are answered from it first.",
    )
    is_published = models.BooleanField(default=True)
    weight = models.FloatField(
        default=1.0, help_text="Scales how strongly this article is preferred; lowered each time agents reject it."
    )
    updated_at = models.DateTimeField(auto_now=True)

    class Meta:
        ordering = ["topic__name", "title"]

    def __str__(self) -> str:
        return self.title

    @property
    def question_list(self) -> list[str]:
        return [line.strip() for line in self.questions.splitlines() if line.strip()]


class ApprovedReply(models.Model):
    """A customer message and the reply an agent sent to it: the desk's memory of what works.

    Only active entries are drafted from. An agent's own reply (not a draft they approved or edited)
    waits for a manager's approval first when MEMORY_AGENT_REPLIES is "review" (the default).
    """

    class Source(models.TextChoices):
        DRAFT = "draft", _("Approved or edited draft")
        AGENT = "agent", _("Written by the agent")

    class Status(models.TextChoices):
        ACTIVE = "active", _("In use")
        PENDING = "pending", _("Awaiting a manager's approval")

    customer_text = models.TextField()
    reply_text = models.TextField()
    topic = models.ForeignKey(Topic, null=True, blank=True, on_delete=models.SET_NULL)
    agent = models.ForeignKey(
        "auth.User", null=True, blank=True, on_delete=models.SET_NULL, help_text="Who taught it to the desk."
    )
    source = models.CharField(max_length=8, choices=Source.choices, default=Source.DRAFT)
    status = models.CharField(max_length=8, choices=Status.choices, default=Status.ACTIVE, db_index=True)
    reviewed_by = models.ForeignKey(
        "auth.User", null=True, blank=True, on_delete=models.SET_NULL, related_name="+", help_text="The manager."
    )
    reviewed_at = models.DateTimeField(null=True, blank=True)
    weight = models.FloatField(
        default=1.0, help_text="Scales how strongly this reply is preferred; lowered each time agents reject it."
    )
    created_at = models.DateTimeField(auto_now_add=True)
    updated_at = models.DateTimeField(auto_now=True)

    class Meta:
        ordering = ["-created_at"]
        verbose_name_plural = "approved replies"

    def __str__(self) -> str:
        return self.customer_text[:60]


class ReplyVector(models.Model):
    """The shared encoder's vector of a remembered reply's customer text, as float16 bytes (768 for 384
    dimensions): what a drafting worker loads instead of encoding every reply again. Written by the
    first worker that meets the reply; deleted with it."""

    reply = models.OneToOneField(
        ApprovedReply, primary_key=True, on_delete=models.CASCADE, related_name="memory_vector"
    )
    vector = models.BinaryField()

    def __str__(self) -> str:
        return f"vector of reply {self.reply_id}"


class ReplyMemoryChange(models.Model):
    """One row per write to an approved reply that drafting depends on: added, removed, or its status,
    weight or topic changed. Database triggers write them (migration 0008), so no write
    path — services, the admin, bulk updates, erasure — can skip one. Each drafting worker reads the rows
    after the last one it saw and updates its copy of the memory (knowledge/memory.py)."""

    id = models.BigAutoField(primary_key=True)
    reply_id = models.BigIntegerField(help_text="The reply that changed; it may be gone.")
    changed_at = models.DateTimeField()

    def __str__(self) -> str:
        return f"reply {self.reply_id} changed"


class Embedding(models.Model):
    """Content-addressed cache of encoder vectors, shared by all worker processes."""

    key = models.CharField(max_length=64, unique=True, help_text="sha256 of encoder name and text")
    vector = models.BinaryField()

    def __str__(self) -> str:
        return self.key


class ClassifierVersion(models.Model):
    """A topic classifier trained on the approved history (train_classifier). Drafting uses the active one.

    A new version becomes active only if its score on the held-back examples is not worse than the
    active version's on the same examples.
    """

    created_at = models.DateTimeField(auto_now_add=True)
    is_active = models.BooleanField(default=False, db_index=True)
    examples = models.PositiveIntegerField(help_text="Labelled customer messages it was trained on.")
    topics = models.PositiveIntegerField()
    held_back_accuracy = models.FloatField(help_text="Share of held-back examples whose topic it chose right.")
    previous_accuracy = models.FloatField(
        null=True,
        blank=True,
        help_text="The active version's (or plain nearest-neighbour's) score on the same examples.",
    )
    arrays = models.BinaryField(help_text="The classifier's numpy arrays (.npz).")
    meta = models.JSONField(help_text="The classifier's parameters, topics and fitting details.")
    encoder = models.BinaryField(
        null=True,
        blank=True,
        help_text="The weights of the fine-tuned sentence encoder it works on that differ from the shared "
        "encoder's (safetensors); empty: the shared encoder. Kept for the active and the latest versions only.",
    )

    class Meta:
        ordering = ["-created_at"]
        constraints = [
            models.UniqueConstraint(
                fields=["is_active"], condition=models.Q(is_active=True), name="one_active_classifier"
            )
        ]

    def __str__(self) -> str:
        return f"Classifier v{self.pk} ({self.held_back_accuracy:.1%}{', active' if self.is_active else ''})"


class OutOfScopeExample(models.Model):
    """A question the desk does not answer ("we don't answer this"): a negative example. A customer message
    closer to one of these than to anything the desk answers is escalated instead of drafted confidently."""

    class Source(models.TextChoices):
        AGENT = "agent", _("Marked by an agent")
        IMPORT = "import", _("Imported by a manager")
        EVALUATION = "evaluation", _("Loaded by evaluate_drafts")

    text = models.TextField()
    source = models.CharField(max_length=16, choices=Source.choices)
    marked_by = models.ForeignKey(
        "auth.User", null=True, blank=True, on_delete=models.SET_NULL, help_text="The agent or manager who added it."
    )
    message = models.ForeignKey(
        "conversations.Message",
        null=True,
        blank=True,
        on_delete=models.SET_NULL,
        related_name="+",
        help_text="The customer message it was marked on.",
    )
    created_at = models.DateTimeField(auto_now_add=True)
    updated_at = models.DateTimeField(auto_now=True)

    class Meta:
        ordering = ["-created_at"]
        constraints = [
            models.UniqueConstraint(
                fields=["message"], condition=models.Q(message__isnull=False), name="out_of_scope_once_per_message"
            )
        ]

    def __str__(self) -> str:
        return self.text[:60]


class EscalationPolicy(models.Model):
    """The desk's own escalation settings, changed by managers (one row; see escalation_policy())."""

    target_precision = models.FloatField(
        null=True,
        blank=True,
        help_text="Share of answered (not escalated) drafts that should be right, 0.5 to 1; empty: the "
        "ESCALATION_TARGET_PRECISION setting. calibrate_escalation chooses thresholds for it.",
    )

    class Meta:
        verbose_name_plural = "escalation policy"

    def __str__(self) -> str:
        return "Escalation policy"


class EscalationThreshold(models.Model):
    """A confidence threshold chosen by calibrate_escalation from the desk's labelled history: drafts below
    it are escalated. One per topic with enough history, and one global row (topic empty) for the rest."""

    topic = models.OneToOneField(
        Topic, null=True, blank=True, on_delete=models.CASCADE, related_name="escalation_threshold"
    )
    threshold = models.FloatField(help_text="Lowest draft confidence (0 to 1) answered without escalation.")
    target_precision = models.FloatField(help_text="The answered precision it was chosen for.")
    precision = models.FloatField(help_text="Share of the history's drafts at or above it that were right.")
    coverage = models.FloatField(help_text="Share of the history's right drafts at or above it.")
    answered = models.PositiveIntegerField(help_text="History drafts it would have answered.")
    escalated = models.PositiveIntegerField(help_text="History drafts it would have escalated.")
    n = models.PositiveIntegerField(help_text="Labelled drafts it was chosen on.")
    computed_at = models.DateTimeField()

    class Meta:
        ordering = ["topic__name"]
        constraints = [
            models.UniqueConstraint(
                fields=["topic"], condition=models.Q(topic__isnull=True), name="one_global_escalation_threshold"
            )
        ]

    def __str__(self) -> str:
        return f"{self.topic or 'global'}: {self.threshold:.3f}"
