import json
from pathlib import Path
from typing import Any

from django.core.management.base import BaseCommand, CommandParser

from chatdesk.conversations.training_data import training_examples


class Command(BaseCommand):
    help = (
        "Write agents' approved history as chat JSONL (conversation → the reply the customer got) and as "
        "preference pairs (draft = rejected, the agent's text = chosen), for fine-tuning the generative model."
    )

    def add_arguments(self, parser: CommandParser) -> None:
        parser.add_argument("--out", default="training-data", help="Output folder (created if missing).")

    def handle(self, *args: Any, **options: Any) -> None:
        out = Path(options["out"])
        out.mkdir(parents=True, exist_ok=True)
        chats = pairs = 0
        with open(out / "chat.jsonl", "w") as chat_file, open(out / "preferences.jsonl", "w") as pair_file:
            for chat, pair in training_examples():
                chat_file.write(json.dumps(chat, ensure_ascii=False) + "\n")
                chats += 1
                if pair is not None:
                    pair_file.write(json.dumps(pair, ensure_ascii=False) + "\n")
                    pairs += 1
        self.stdout.write(f"{chats} chat examples → {out / 'chat.jsonl'}")
        self.stdout.write(f"{pairs} preference pairs → {out / 'preferences.jsonl'}")
