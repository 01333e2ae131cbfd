from django.contrib import admin

from chatdesk.conversations.models import (
    AgentAction,
    Conversation,
    ConversationTag,
    CustomerNotice,
    Draft,
    EscalationFlag,
    Message,
    Note,
    SensitiveRule,
    Team,
    TeamTopic,
)


class MessageInline(admin.TabularInline):
    model = Message
    extra = 0
    fields = ("seq", "sender", "author", "text", "created_at")
    readonly_fields = fields
    can_delete = False


class EscalationFlagInline(admin.TabularInline):
    model = EscalationFlag
    extra = 0
    fields = ("reason", "detail", "score", "message", "active", "created_at")
    readonly_fields = fields
    can_delete = False


class NoteInline(admin.TabularInline):
    """Agents' internal notes, read-only (docs/notes.md)."""

    model = Note
    extra = 0
    fields = ("author", "text", "created_at")
    readonly_fields = fields
    can_delete = False


class ConversationTagInline(admin.TabularInline):
    model = ConversationTag
    extra = 0
    fields = ("name", "added_by", "created_at")
    readonly_fields = fields
    can_delete = False


@admin.register(Conversation)
class ConversationAdmin(admin.ModelAdmin):
    list_display = ("customer_label", "status", "priority", "escalation_reason", "assigned_agent", "updated_at")
    list_filter = ("status", "escalation_reason", "topic")
    readonly_fields = ("public_id", "last_seq", "priority", "sentiment", "created_at", "updated_at")
    inlines = [EscalationFlagInline, MessageInline, ConversationTagInline, NoteInline]


@admin.register(Draft)
class DraftAdmin(admin.ModelAdmin):
    list_display = ("id", "conversation", "status", "engine", "confidence", "decided_by", "created_at")
    list_filter = ("status", "engine")


@admin.register(AgentAction)
class AgentActionAdmin(admin.ModelAdmin):
    list_display = ("created_at", "agent", "kind", "conversation", "draft")
    list_filter = ("kind", "agent")
    readonly_fields = ("conversation", "draft", "agent", "kind", "draft_text", "sent_text", "created_at")


@admin.register(SensitiveRule)
class SensitiveRuleAdmin(admin.ModelAdmin):
    """Managers mark phrases and topics the desk never handles alone (docs/escalation.md)."""

    list_display = ("__str__", "note", "active", "created_at")
    list_filter = ("active", "topic")
    search_fields = ("phrase", "note", "topic__name")
    fields = ("phrase", "amount_above", "topic", "note", "active")


class TeamTopicInline(admin.TabularInline):
    model = TeamTopic
    extra = 1
    verbose_name = "topic"
    verbose_name_plural = "topics (each topic belongs to one team at most)"


@admin.register(Team)
class TeamAdmin(admin.ModelAdmin):
    list_display = ("name",)
    filter_horizontal = ("members",)
    inlines = [TeamTopicInline]


@admin.register(CustomerNotice)
class CustomerNoticeAdmin(admin.ModelAdmin):
    """Managers word the handoff message and its kin per language (chatdesk.conversations.notices)."""

    list_display = ("code", "language", "text")
    list_filter = ("code", "language")
    fields = ("code", "language", "text")
