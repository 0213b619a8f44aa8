from datetime import timedelta

from django.conf import settings
from django.core.management.base import BaseCommand, CommandError, CommandParser
from kombu.exceptions import OperationalError as KombuOperationalError

from evalhub.core.recovery import resume_stalled_work


class Command(BaseCommand):
    help = ("Queue again the generation runs, metric jobs and campaign builds whose task "
            "messages were lost: unfinished, no progress for --quiet-for seconds, nothing "
            "waiting in their queue and no task of theirs in a worker's hands. What Celery beat "
            "runs every EVALHUB_STALL_SWEEP_SECONDS (docs/operations.md); safe to repeat.")

    def add_arguments(self, parser: CommandParser) -> None:
        parser.add_argument("--quiet-for", type=float,
                            default=settings.EVALHUB_STALLED_AFTER_SECONDS,
                            help="seconds without progress before an object counts as stalled "
                                 "(default: EVALHUB_STALLED_AFTER_SECONDS)")
        parser.add_argument("--timeout", type=float, default=2.0,
                            help="seconds to wait for the broker and the workers' replies")

    def handle(self, *args, **options) -> None:
        if options["quiet_for"] < 0 or options["timeout"] <= 0:
            raise CommandError("--quiet-for must be at least 0 and --timeout more than 0.")
        try:
            sweep = resume_stalled_work(quiet_for=timedelta(seconds=options["quiet_for"]),
                                        timeout_s=options["timeout"])
        except LookupError as exc:
            raise CommandError(
                f"The {exc} broker cannot say what its queues and workers hold (the sweep "
                "needs Redis): the embedded default resumes unfinished work when `make run` "
                "starts instead.") from exc
        except (OSError, KombuOperationalError) as exc:
            raise CommandError(f"The broker did not answer ({type(exc).__name__}): nothing "
                               "was resumed. Check it (/readyz, docs/operations.md).") from exc
        if not sweep.in_hand.workers:
            raise CommandError("No worker answered: nothing can tell which tasks they hold, "
                               "so nothing was resumed. Check the workers (/readyz).")
        for line in sweep.lines:
            self.stdout.write(line)
        waiting = ", ".join(f"{q} {n}" for q, n in sorted(sweep.in_hand.waiting.items()))
        self.stdout.write(f"{sweep.resumed} stalled object(s) resumed; "
                          f"{sweep.in_hand.workers} worker(s) answered, "
                          f"{len(sweep.in_hand.tasks)} task(s) in their hands; "
                          f"waiting: {waiting}.")
