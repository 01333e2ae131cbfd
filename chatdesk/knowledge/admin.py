from django.contrib import admin
from django.db.models import BooleanField, ExpressionWrapper, Q, QuerySet
from django.http import HttpRequest

from chatdesk.knowledge.models import ApprovedReply, Article, SelectorVersion, Topic


@admin.register(Topic)
class TopicAdmin(admin.ModelAdmin):
    list_display = ("name", "autopilot", "autopilot_min_confidence")
    list_editable = ("autopilot", "autopilot_min_confidence")


@admin.register(Article)
class ArticleAdmin(admin.ModelAdmin):
    list_display = ("title", "topic", "is_published", "updated_at")
    list_filter = ("topic", "is_published")
    search_fields = ("title", "body", "questions")


@admin.register(ApprovedReply)
class ApprovedReplyAdmin(admin.ModelAdmin):
    list_display = ("customer_text", "topic", "agent", "created_at")
    list_filter = ("topic",)
    search_fields = ("customer_text", "reply_text")


@admin.register(SelectorVersion)
class SelectorVersionAdmin(admin.ModelAdmin):
    """Read-only: versions come from train_selector; managers see which one drafts and how it scored."""

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

    def get_queryset(self, request: HttpRequest) -> QuerySet[SelectorVersion]:
        # the arrays and encoder weights are megabytes per version: say whether there are weights, never load them
        has_encoder = ExpressionWrapper(Q(encoder__isnull=False), output_field=BooleanField())
        return super().get_queryset(request).defer("arrays", "encoder").annotate(has_encoder=has_encoder)

    @admin.display(boolean=True, description="fine-tuned encoder")
    def fine_tuned_encoder(self, version: SelectorVersion) -> bool:
        return bool(version.has_encoder)  # type: ignore[attr-defined]

    def has_add_permission(self, request: HttpRequest) -> bool:
        return False

    def has_change_permission(self, request: HttpRequest, obj: SelectorVersion | None = None) -> bool:
        return False

    def has_delete_permission(self, request: HttpRequest, obj: SelectorVersion | None = None) -> bool:
        return False
