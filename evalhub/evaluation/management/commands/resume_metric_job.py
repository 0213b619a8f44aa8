from django.core.management.base import CommandError, CommandParser

from evalhub.core.cli import reports_domain_errors
from evalhub.evaluation.management.commands.compute_metrics import (
    PARTIAL_EXIT_STATUS,
)
from evalhub.evaluation.management.commands.compute_metrics import Command as ComputeMetrics
from evalhub.evaluation.models import MetricJob
from evalhub.evaluation.services import metric_job_resume


class Command(ComputeMetrics):
    """``_wait`` and ``_report`` are compute_metrics' own: the same waiting, the same lines,
    the same exit status for a job that does not end completed."""

    help = ("Resume a metric job stuck queued or running (its task messages lost: a broker "
            "restart, a worker killed): queue again its shards not done yet, or its finalize "
            "step when all are done. Safe to repeat: a shard is stored once. With --wait it "
            "ends as compute_metrics does: exit status 0 once every metric is computed, "
            f"{PARTIAL_EXIT_STATUS} when the job ends partial, 1 when it fails.")

    def add_arguments(self, parser: CommandParser) -> None:
        parser.add_argument("job_id", type=int, help="metric job id")
        self.add_wait_arguments(parser)

    @reports_domain_errors
    def handle(self, *args, **options) -> None:
        job = (MetricJob.objects.select_related("run").filter(pk=options["job_id"]).first())
        if job is None:
            raise CommandError(f"No metric job {options['job_id']}.")
        queued = metric_job_resume(job=job)
        what = (f"{queued} shard(s) not done queued again" if job.shards_done < job.shards_total
                else "every shard is done: its finalize step queued again")
        self.stdout.write(f"Metric job {job.pk} for run {job.run.name!r} ({job.status}, "
                          f"{job.shards_done}/{job.shards_total} shards done): {what}.")
        if options["wait"]:
            self._report(self._wait(job, options["timeout"]))
