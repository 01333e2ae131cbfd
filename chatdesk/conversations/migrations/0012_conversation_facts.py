"""Who answered each conversation, when it was first taken over and first handed to a person, kept on
the conversation (chatdesk/conversations/facts.py); filled here for conversations stored before, from
their take-over actions, messages, drafts and flags, by the same definition as facts.recompute."""

from typing import Any

from django.db import migrations, models
from django.db.models import Case, CharField, Exists, F, Min, OuterRef, Subquery, Value, When
from django.db.models.functions import Coalesce, Least

SENT = ("approved", "edited", "auto_sent")


def backfill(apps: Any, schema_editor: Any) -> None:
    Conversation = apps.get_model("conversations", "Conversation")
    AgentAction = apps.get_model("conversations", "AgentAction")
    Draft = apps.get_model("conversations", "Draft")
    EscalationFlag = apps.get_model("conversations", "EscalationFlag")
    Message = apps.get_model("conversations", "Message")
    take_overs = AgentAction.objects.filter(conversation=OuterRef("pk"), kind="take_over")
    person = Exists(take_overs) | Exists(
        Message.objects.filter(conversation=OuterRef("pk"), sender="agent", draft__isnull=True)
    )
    edited = Exists(Draft.objects.filter(conversation=OuterRef("pk"), status="edited").exclude(edit_distance=0))
    sent = Exists(Draft.objects.filter(conversation=OuterRef("pk"), status__in=SENT))
    answered = Case(
        When(person, then=Value("person")),
        When(edited, then=Value("edited")),
        When(sent, then=Value("as_is")),
        default=Value("none"),
        output_field=CharField(),
    )
    first_take_over = Subquery(take_overs.values("conversation").annotate(at=Min("created_at")).values("at"))
    first_flag = Subquery(
        EscalationFlag.objects.filter(conversation=OuterRef("pk"))
        .values("conversation")
        .annotate(at=Min("created_at"))
        .values("at")
    )
    Conversation.objects.update(answered_by=answered, taken_over_at=first_take_over)
    Conversation.objects.update(
        handed_off_at=Least(Coalesce(F("taken_over_at"), first_flag), Coalesce(first_flag, F("taken_over_at")))
    )


class Migration(migrations.Migration):
    dependencies = [
        ("conversations", "0011_queue_order_index"),
    ]

    operations = [
        migrations.AddField(
            model_name="conversation",
            name="answered_by",
            field=models.CharField(
                choices=[
                    ("none", "No reply"),
                    ("as_is", "Drafts sent as is"),
                    ("edited", "Edited drafts"),
                    ("person", "A person (took over)"),
                ],
                default="none",
                help_text="Who answered the customer so far (none < drafts as is < edited drafts < a person).",
                max_length=8,
            ),
        ),
        migrations.AddField(
            model_name="conversation",
            name="handed_off_at",
            field=models.DateTimeField(
                blank=True,
                help_text="When it first needed a person: an escalation rule fired or an agent took it over.",
                null=True,
            ),
        ),
        migrations.AddField(
            model_name="conversation",
            name="taken_over_at",
            field=models.DateTimeField(blank=True, help_text="When an agent first took it over.", null=True),
        ),
        migrations.RunPython(backfill, migrations.RunPython.noop),
    ]
