import json
from pathlib import Path
from typing import Any

from django.core.management.base import BaseCommand, CommandError, CommandParser

from chatdesk.conversations.privacy import UnknownConversation, conversations_find, customer_data_export


class Command(BaseCommand):
    help = (
        "Export everything stored about a customer's conversations (messages, drafts, agent actions) as JSON. "
        "Name each conversation by its id or by the customer's conversation token, or a verified customer's "
        "conversations by account:<site key>:<account id>."
    )

    def add_arguments(self, parser: CommandParser) -> None:
        parser.add_argument(
            "refs",
            nargs="+",
            metavar="ID_OR_TOKEN",
            help="Conversation ids or tokens, or account:<site key>:<account id> for a verified customer's all.",
        )
        parser.add_argument("--output", "-o", help="Write to this file instead of standard output.")

    def handle(self, *args: Any, **options: Any) -> None:
        try:
            conversations = conversations_find(options["refs"])
        except UnknownConversation as error:
            raise CommandError(str(error)) from None
        text = json.dumps(customer_data_export(conversations), ensure_ascii=False, indent=2)
        if options["output"]:
            Path(options["output"]).write_text(text + "\n", encoding="utf-8")
            self.stderr.write(f"{len(conversations)} conversation(s) → {options['output']}")
        else:
            self.stdout.write(text)
