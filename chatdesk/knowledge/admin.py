from django.contrib import admin

from chatdesk.knowledge.models import ApprovedReply, Article, Topic


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
