from typing import Any

from django.core.management.base import BaseCommand, CommandError

from chatdesk.knowledge.classification import TrainingError
from chatdesk.knowledge.services import classifier_train_on_history


class Command(BaseCommand):
    help = (
        "Train a new topic classifier on the approved history (customer messages agents answered, and the knowledge "
        "base's example questions). It is stored as a new version and used for drafting only if its score on "
        "held-back examples is not worse than the active version's."
    )

    def handle(self, *args: Any, **options: Any) -> None:
        def progress(step: int, total: int, message: str) -> None:
            self.stderr.write(f"  ({step}/{total}) {message}")

        try:
            version = classifier_train_on_history(callback=progress)
        except TrainingError as error:
            raise CommandError(str(error)) from None
        verdict = "now active" if version.is_active else "kept inactive: it would not be better"
        self.stdout.write(
            f"Classifier v{version.pk}: {version.examples} examples, {version.topics} topics, held-back accuracy "
            f"{version.held_back_accuracy:.2%} (before: {version.previous_accuracy:.2%}); {verdict}."
        )
