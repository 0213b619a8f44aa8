import time

from django.core.management.base import BaseCommand, CommandError, CommandParser
from django.db import transaction

from evalhub.core.cli import get_project, parse_key_values, reports_domain_errors
from evalhub.generation.services import generation_launch
from evalhub.runs.cli import add_run_arguments, run_from_options
from evalhub.runs.models import GenerationRun, RunSource, RunStatus

MAX_SEEDS = 100_000


def parse_seeds(text: str) -> list[int]:
    """``"0-3,10"`` -> ``[0, 1, 2, 3, 10]``; at most ``MAX_SEEDS`` seeds."""
    seeds: list[int] = []
    for part in text.split(","):
        part = part.strip()
        try:
            if "-" in part[1:]:
                low, high = (part.split("-", 1) if not part.startswith("-")
                             else part.rsplit("-", 1))
                count = int(high) - int(low) + 1
                if count > MAX_SEEDS - len(seeds):
                    raise CommandError(f"--seeds {text!r}: more than {MAX_SEEDS} seeds.")
                seeds.extend(range(int(low), int(high) + 1))
            elif part:
                seeds.append(int(part))
        except ValueError as exc:
            raise CommandError(f"--seeds {text!r}: {part!r} is not a seed or a range of "
                               "seeds (e.g. 0-3,10).") from exc
    if len(seeds) > MAX_SEEDS:
        raise CommandError(f"--seeds {text!r}: more than {MAX_SEEDS} seeds.")
    return seeds


class Command(BaseCommand):
    help = "Create (or resume) a generated run and queue its images on the gpu queue."

    def add_arguments(self, parser: CommandParser) -> None:
        parser.add_argument("--project", required=True, help="project slug")
        add_run_arguments(parser)
        parser.add_argument("--seeds", default="0-3", help="e.g. 0-3,10 (default 0-3)")
        parser.add_argument("--param", action="append", default=[],
                            help="generator parameter KEY=VALUE (JSON values), repeatable")
        parser.add_argument("--wait", action="store_true",
                            help="wait until the workers have finished the run")
        parser.add_argument("--timeout", type=float, default=3600)

    @reports_domain_errors
    def handle(self, *args, **options) -> None:
        project = get_project(options["project"])
        with transaction.atomic():  # a run whose launch is refused is not left behind
            run = run_from_options(project=project, options=options, create_kwargs=lambda: {
                "source": RunSource.GENERATED, "seeds": parse_seeds(options["seeds"]),
                "parameters": parse_key_values(options["param"], flag="--param"),
            })
            batches = generation_launch(run=run)
        self.stdout.write(f"Run {run.name!r}: {run.items_total} items queued in {batches} "
                          "batches on the gpu queue.")
        if options["wait"]:
            self._wait(run, options["timeout"])

    def _wait(self, run: GenerationRun, timeout: float) -> None:
        deadline = time.monotonic() + timeout
        finished = {RunStatus.COMPLETED, RunStatus.PARTIAL, RunStatus.FAILED}
        while time.monotonic() < deadline:
            run.refresh_from_db()
            if run.status in finished:
                ok = run.status == RunStatus.COMPLETED
                style = self.style.SUCCESS if ok else self.style.WARNING
                self.stdout.write(style(f"{run.status}: {run.items_done} done, "
                                        f"{run.items_failed} failed. {run.error}".strip()))
                return
            time.sleep(1)
        raise CommandError(f"Timed out; run is {run.status} ({run.items_done}/{run.items_total}).")
