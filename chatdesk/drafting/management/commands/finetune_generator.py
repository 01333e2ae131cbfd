from pathlib import Path
from typing import Any

from django.conf import settings
from django.core.management.base import BaseCommand, CommandError, CommandParser

from chatdesk.drafting.base import EngineError
from chatdesk.drafting.finetune import FinetuneOptions, finetune_lora, read_chat_jsonl


class Command(BaseCommand):
    help = (
        "LoRA fine-tune the generative model on the chat examples that export_training_data wrote; the adapter "
        "folder it writes is what DRAFT_ADAPTER loads. Runs on the GPU when there is one."
    )

    def add_arguments(self, parser: CommandParser) -> None:
        parser.add_argument("--data", required=True, type=Path, help="chat.jsonl from export_training_data")
        parser.add_argument("--out", required=True, type=Path, help="Adapter folder to write.")
        parser.add_argument("--model", default=settings.DRAFT_MODEL, help="Base model (default: DRAFT_MODEL).")
        parser.add_argument("--device", default=settings.DRAFT_DEVICE or None)
        parser.add_argument("--steps", type=int, default=FinetuneOptions.steps)
        parser.add_argument("--learning-rate", type=float, default=FinetuneOptions.learning_rate)
        parser.add_argument("--rank", type=int, default=FinetuneOptions.rank)

    def handle(self, *args: Any, **options: Any) -> None:
        if not options["model"]:
            raise CommandError("no base model: pass --model or set DRAFT_MODEL")
        if options["steps"] < 1 or options["rank"] < 1 or options["learning_rate"] <= 0:
            raise CommandError("--steps and --rank must be at least 1 and --learning-rate above 0")
        try:
            chats = read_chat_jsonl(options["data"])
        except (OSError, ValueError) as error:
            raise CommandError(str(error)) from None
        every = max(1, options["steps"] // 20)

        def progress(step: int, total: int, loss: float) -> None:
            if step % every == 0 or step == total:
                self.stderr.write(f"  step {step}/{total}  loss {loss:.4f}")

        try:
            result = finetune_lora(
                model=options["model"],
                chats=chats,
                out=options["out"],
                options=FinetuneOptions(
                    steps=options["steps"], learning_rate=options["learning_rate"], rank=options["rank"]
                ),
                device=options["device"],
                progress=progress,
            )
        except EngineError as error:
            raise CommandError(str(error)) from None
        self.stdout.write(
            f"Adapter written to {result.adapter} ({result.examples} examples, {result.steps} steps, "
            f"loss {result.first_loss:.3f} → {result.last_loss:.3f}, {result.seconds:.0f} s). "
            f"Use it with DRAFT_ADAPTER={result.adapter}"
        )
