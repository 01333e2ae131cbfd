from django.urls import path

from chatdesk.knowledge import views

app_name = "knowledge"
urlpatterns = [
    path("out-of-scope/", views.out_of_scope_examples, name="out-of-scope"),
    path("memory/", views.reply_memory, name="memory"),
    path("memory/<int:reply_id>/", views.reply_memory_review, name="memory-review"),
]
