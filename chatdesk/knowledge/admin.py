from django.contrib import admin
from django.db.models import BooleanField, ExpressionWrapper, Q, QuerySet
from django.http import HttpRequest

from chatdesk.knowledge.models import (
    ApprovedReply,
    Article,
    ClassifierVersion,
    EscalationPolicy,
    EscalationThreshold,
    OutOfScopeExample,
    Topic,
)


@admin.register(Topic)
class TopicAdmin(admin.ModelAdmin):
    list_display = ("name", "autopilot", "autopilot_min_confidence")
    list_editable = ("autopilot", "autopilot_min_confidence")


@admin.register(Article)
class ArticleAdmin(admin.ModelAdmin):
    list_display = ("title", "topic", "language", "is_published", "updated_at")
    list_filter = ("topic", "language", "is_published")
    search_fields = ("title", "body", "questions")


@admin.register(ApprovedReply)
class ApprovedReplyAdmin(admin.ModelAdmin):
    list_display = ("customer_text", "topic", "agent", "created_at")
    list_filter = ("topic",)
    search_fields = ("customer_text", "reply_text")
    # what drafting matches against: its vector is stored once (ReplyVector), so the words stay as asked
    readonly_fields = ("customer_text",)


@admin.register(ClassifierVersion)
class ClassifierVersionAdmin(admin.ModelAdmin):
    """Read-only: versions come from train_classifier; managers see which one drafts and how it scored."""

    list_display = (
        "pk",
        "created_at",
        "is_active",
        "held_back_accuracy",
        "previous_accuracy",
        "examples",
        "topics",
        "fine_tuned_encoder",
    )
    list_filter = ("is_active",)
    fields = ("created_at", "is_active", "held_back_accuracy", "previous_accuracy", "examples", "topics", "meta")
    readonly_fields = fields

    def get_queryset(self, request: HttpRequest) -> QuerySet[ClassifierVersion]:
        # the arrays and encoder weights are megabytes per version: say whether there are weights, never load them
        has_encoder = ExpressionWrapper(Q(encoder__isnull=False), output_field=BooleanField())
        return super().get_queryset(request).defer("arrays", "encoder").annotate(has_encoder=has_encoder)

    @admin.display(boolean=True, description="fine-tuned encoder")
    def fine_tuned_encoder(self, version: ClassifierVersion) -> bool:
        return bool(version.has_encoder)  # type: ignore[attr-defined]

    def has_add_permission(self, request: HttpRequest) -> bool:
        return False

    def has_change_permission(self, request: HttpRequest, obj: ClassifierVersion | None = None) -> bool:
        return False

    def has_delete_permission(self, request: HttpRequest, obj: ClassifierVersion | None = None) -> bool:
        return False


@admin.register(OutOfScopeExample)
class OutOfScopeExampleAdmin(admin.ModelAdmin):
    """ "We don't answer this": agents mark them on customer messages; managers add, edit or remove them here."""

    list_display = ("text", "source", "marked_by", "created_at")
    list_filter = ("source",)
    search_fields = ("text",)
    fields = ("text", "source", "marked_by", "message", "created_at")
    readonly_fields = ("source", "marked_by", "message", "created_at")

    def save_model(self, request: HttpRequest, obj: OutOfScopeExample, form: object, change: bool) -> None:
        if not change:
            obj.source = OutOfScopeExample.Source.IMPORT
            obj.marked_by = request.user  # type: ignore[assignment]
        super().save_model(request, obj, form, change)


@admin.register(EscalationPolicy)
class EscalationPolicyAdmin(admin.ModelAdmin):
    """One row: the manager's target answered precision for calibrate_escalation."""

    list_display = ("__str__", "target_precision")

    def has_add_permission(self, request: HttpRequest) -> bool:
        return not EscalationPolicy.objects.exists() and super().has_add_permission(request)


@admin.register(EscalationThreshold)
class EscalationThresholdAdmin(admin.ModelAdmin):
    """Read-only: calibrate_escalation chooses them; managers see what each would have done on the history."""

    list_display = (
        "__str__",
        "threshold",
        "target_precision",
        "precision",
        "coverage",
        "answered",
        "escalated",
        "n",
        "computed_at",
    )

    def has_add_permission(self, request: HttpRequest) -> bool:
        return False

    def has_change_permission(self, request: HttpRequest, obj: EscalationThreshold | None = None) -> bool:
        return False

    def has_delete_permission(self, request: HttpRequest, obj: EscalationThreshold | None = None) -> bool:
        return False
