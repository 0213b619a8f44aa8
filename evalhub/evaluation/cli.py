"""Command-line helpers shared by the commands that ask for a run's metrics: compute_metrics,
and generate (a job asked for with the launch, which waits for the run)."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

from django.core.management.base import CommandParser

from evalhub.core.cli import get_by_name, model_text, parse_key_values
from evalhub.evaluation.models import MetricJob
from evalhub.projects.models import Project
from evalhub.runs.models import GenerationRun, ReferenceSet


@dataclass(frozen=True)
class JobRequest:
    """What ``--metrics``, ``--reference-set`` and ``--option`` ask for: ``metrics`` is None
    when ``--metrics`` was left out (each command has its own default)."""

    metrics: list[str] | None
    reference_set: ReferenceSet | None
    options: dict[str, Any] = field(default_factory=dict)


def add_job_arguments(parser: CommandParser, *, metrics_help: str) -> None:
    parser.add_argument("--metrics", default=None, help=metrics_help)
    parser.add_argument("--reference-set",
                        help="reference set name (images: FID, KID, CMMD; videos: FVD)",
                        type=model_text(ReferenceSet, "name"))
    parser.add_argument("--option", action="append", default=[],
                        help="job option KEY=VALUE (JSON values), e.g. antialias=false, "
                             "fid_feature=64, kid_subsets=50, shard_size=32; repeatable")


def job_request(*, project: Project, options: dict[str, Any]) -> JobRequest:
    """The options of :func:`add_job_arguments`, the reference set found in ``project``."""
    reference_set = None
    if options["reference_set"]:
        reference_set = get_by_name(ReferenceSet, what="reference set", project=project,
                                    name=options["reference_set"])
    metrics = None
    if options["metrics"]:
        metrics = [m.strip() for m in options["metrics"].split(",") if m.strip()]
    return JobRequest(metrics, reference_set,
                      parse_key_values(options["option"], flag="--option"))


def waiting_line(job: MetricJob, run: GenerationRun) -> str:
    """What a command says of a job created ``waiting`` for ``run``."""
    return (f"Metric job {job.pk} for run {run.name!r}: {', '.join(job.metrics)}; waits for the "
            f"run to finish generating ({run.items_done} of {run.items_total} items): its "
            "shards are made and queued then.")
