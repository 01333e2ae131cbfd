from pathlib import Path
from typing import Any

from django.contrib.auth.models import User
from django.core.management.base import BaseCommand, CommandError, CommandParser

from chatdesk.knowledge.services import out_of_scope_import, out_of_scope_read


class Command(BaseCommand):
    help = (
        'Import questions the desk does not answer ("we don\'t answer this"): FILE has one question per line, or '
        "is a CSV with a text (or question) column. Similar customer messages are escalated as out of scope instead "
        "of drafted. Questions stored already are skipped."
    )

    def add_arguments(self, parser: CommandParser) -> None:
        parser.add_argument("file", type=Path)
        parser.add_argument("--by", help="Username of the manager the examples are recorded as imported by.")

    def handle(self, *args: Any, **options: Any) -> None:
        by = None
        if options["by"]:
            by = User.objects.filter(username=options["by"]).first()
            if by is None:
                raise CommandError(f"No user named {options['by']!r}.")
        try:
            texts = out_of_scope_read(options["file"])
        except (OSError, UnicodeDecodeError, ValueError) as error:
            raise CommandError(str(error)) from None
        added = out_of_scope_import(texts, by=by)
        self.stdout.write(f"Imported {added} of {len(texts)} questions ({len(texts) - added} were stored already).")
