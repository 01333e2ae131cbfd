from typing import Any

from django.conf import settings
from django.core.management.base import BaseCommand

from chatdesk.knowledge.services import escalation_calibrate, escalation_target_precision


class Command(BaseCommand):
    help = (
        "Choose the draft-confidence thresholds below which conversations are escalated, from the desk's labelled "
        "history (approved drafts are right; rejected, heavily edited and taken-over ones are not), for the target "
        "answered precision; one per topic with enough history, one global. Prints what each would have done on "
        "that history."
    )

    def handle(self, *args: Any, **options: Any) -> None:
        chosen = escalation_calibrate()
        target = escalation_target_precision()
        if not chosen:
            self.stdout.write(
                f"Fewer than {settings.CALIBRATION_MIN_EXAMPLES} labelled drafts: nothing calibrated; drafts below "
                f"{settings.DRAFT_ESCALATE_BELOW:.2f} (DRAFT_ESCALATE_BELOW) are escalated."
            )
            return
        self.stdout.write(
            f"Target answered precision {target:.1%}; what each threshold would have done on the history:"
        )
        header = ("topic", "threshold", "answered", "escalated", "precision", "coverage", "n")
        self.stdout.write("{:30s} {:>9s} {:>9s} {:>9s} {:>9s} {:>9s} {:>6s}".format(*header))
        for c in chosen:
            name = "(global)" if c.topic is None else c.topic[:30]
            figures = f"{c.threshold:9.4f} {c.answered:9d} {c.escalated:9d} {c.precision:9.2%} {c.coverage:9.2%}"
            self.stdout.write(f"{name:30s} {figures} {c.n:6d}")
