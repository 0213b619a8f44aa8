from typing import Any

from django.core.management.base import BaseCommand, CommandError, CommandParser
from django.db import transaction

from evalhub.core.cli import (
    get_project,
    parse_key_values,
    reports_domain_errors,
    seconds,
    wait_until,
)
from evalhub.core.errors import EvalHubError
from evalhub.evaluation.cli import add_job_arguments, job_request, waiting_line
from evalhub.evaluation.models import JobStatus
from evalhub.evaluation.services import metric_job_create
from evalhub.generation.plan import parse_seeds
from evalhub.generation.services import generation_launch
from evalhub.runs.cli import add_run_arguments, run_from_options
from evalhub.runs.models import GenerationRun, RunSource, RunStatus

#: A new run's seeds when --seeds is left out.
DEFAULT_SEEDS = "0-3"


class Command(BaseCommand):
    help = "Create (or resume) a generated run and queue its images on the gpu queue."

    def add_arguments(self, parser: CommandParser) -> None:
        parser.add_argument("--project", required=True, help="project slug")
        add_run_arguments(parser)
        parser.add_argument("--seeds", help=f"e.g. 0-3,10 (a new run's default {DEFAULT_SEEDS}; "
                                             "an existing run's must be its own)")
        parser.add_argument("--param", action="append", default=[],
                            help="generator parameter KEY=VALUE (JSON values), repeatable (an "
                                 "existing run's must be all its own)")
        add_job_arguments(parser, metrics_help=(
            "comma-separated metrics to compute once the run has finished: a metric job that "
            "waits for the run (as compute_metrics makes for a run still generating); "
            "--reference-set and --option are its"))
        parser.add_argument("--wait", action="store_true",
                            help="wait until the workers have finished the run (not its "
                                 "metrics: `compute_metrics` with the same metrics and --wait "
                                 "waits for the job)")
        parser.add_argument("--timeout", type=seconds, default=3600,
                            help="seconds --wait waits (default 3600)")

    @reports_domain_errors
    def handle(self, *args, **options) -> None:
        project = get_project(options["project"])
        if not options["metrics"] and (options["reference_set"] or options["option"]):
            raise CommandError("--reference-set and --option are for --metrics: name the "
                               "metrics to compute once the run has finished.")
        asked = job_request(project=project, options=options)
        job = None
        # A run whose launch, or whose metrics, are refused is not left behind.
        with transaction.atomic():
            run = run_from_options(project=project, options=options, given=_given(options),
                                   new_run={"source": RunSource.GENERATED,
                                            "seeds": _seeds(DEFAULT_SEEDS)})
            batches = generation_launch(run=run)
            if asked.metrics is not None:
                job = metric_job_create(run=run, metrics=asked.metrics,
                                        reference_set=asked.reference_set,
                                        options=asked.options)
        if batches:
            self.stdout.write(f"Run {run.name!r}: {run.items_total} items queued in {batches} "
                              "batches on the gpu queue (those already made are skipped).")
        else:
            self.stdout.write(f"Run {run.name!r}: all {run.items_total} items are there; "
                              "nothing to queue.")
        if job is not None:
            self.stdout.write(waiting_line(job, run) if job.status == JobStatus.WAITING else
                              f"Metric job {job.pk} for run {run.name!r}: "
                              f"{', '.join(job.metrics)}; {job.get_status_display().lower()}.")
        if options["wait"]:
            self._wait(run, options["timeout"])

    def _wait(self, run: GenerationRun, timeout: float) -> None:
        finished = {RunStatus.COMPLETED, RunStatus.PARTIAL, RunStatus.FAILED}

        def done() -> bool:
            run.refresh_from_db()
            return run.status in finished

        if not wait_until(done, timeout=timeout):
            raise CommandError(f"Timed out; run is {run.status} "
                               f"({run.items_done}/{run.items_total}).")
        style = self.style.SUCCESS if run.status == RunStatus.COMPLETED else self.style.WARNING
        self.stdout.write(style(f"{run.status}: {run.items_done} done, "
                                f"{run.items_failed} failed. {run.error}".strip()))


def _given(options: dict[str, Any]) -> dict[str, Any]:
    """The run fields of the options given, parsed once: a new run is created with them, an
    existing run must have them (``run_from_options``)."""
    given: dict[str, Any] = {}
    if options["seeds"] is not None:
        given["seeds"] = _seeds(options["seeds"])
    if options["param"]:
        given["parameters"] = parse_key_values(options["param"], flag="--param")
    return given


def _seeds(text: str) -> list[int]:
    try:
        return parse_seeds(text)
    except EvalHubError as exc:
        raise CommandError(f"--seeds: {exc}") from exc
