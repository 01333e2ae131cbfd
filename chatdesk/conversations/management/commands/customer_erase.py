from dataclasses import asdict
from typing import Any

from django.core.management.base import BaseCommand, CommandError, CommandParser

from chatdesk.conversations.privacy import UnknownConversation, conversations_find, customer_data_erase


class Command(BaseCommand):
    help = (
        "Erase a customer's texts: every message, draft and agent action of the named conversations is "
        "redacted and the replies learned from them are forgotten; report counts stay as they were. "
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
        parser.add_argument("--no-input", action="store_false", dest="interactive", help="Do not ask for confirmation.")

    def handle(self, *args: Any, **options: Any) -> None:
        try:
            conversations = conversations_find(options["refs"])
        except UnknownConversation as error:
            raise CommandError(str(error)) from None
        labels = ", ".join(str(c.public_id) for c in conversations)
        if options["interactive"]:
            answer = input(f"Erase every text of {len(conversations)} conversation(s) ({labels})? Type 'yes': ")
            if answer.strip() != "yes":
                raise CommandError("Nothing erased.")
        erased = customer_data_erase(conversations)
        counts = ", ".join(f"{count} {name.replace('_', ' ')}" for name, count in asdict(erased).items())
        self.stdout.write(f"Erased {len(conversations)} conversation(s): {counts}.")
