from django.core.management.base import BaseCommand, CommandError, CommandParser

from evalhub.core.cli import (
    get_by_name,
    get_project,
    model_text,
    reports_domain_errors,
    seconds,
    wait_until,
)
from evalhub.core.text import counted
from evalhub.evaluation.cli import add_job_arguments, job_request, waiting_line
from evalhub.evaluation.definitions import REFERENCE_METRICS
from evalhub.evaluation.models import JobStatus, MetricJob
from evalhub.evaluation.services import metric_job_create, metric_job_process_inline
from evalhub.runs.models import GenerationRun, MediaKind

#: The exit status of a --wait or --inline that ends with a partial job: some metrics computed
#: (their values printed), others not. 1 is a failed job or refused input, 2 a usage error.
PARTIAL_EXIT_STATUS = 3
#: The exit status of an --inline interrupted by Ctrl-C (128 + SIGINT, as a shell reports it).
INTERRUPTED_EXIT_STATUS = 130


class Command(BaseCommand):
    help = ("Compute a run's automatic metrics (FID, KID, CLIP-score, CMMD, LPIPS diversity) on "
            "the gpu queue; values from random weights are marked uncalibrated. With --wait or "
            "--inline the exit status is 0 once every metric is computed, "
            f"{PARTIAL_EXIT_STATUS} when the job ends partial (its last line names the metrics "
            "not computed and why), 1 when it fails or the input is refused.")

    def add_arguments(self, parser: CommandParser) -> None:
        parser.add_argument("--project", required=True, help="project slug")
        parser.add_argument("--run", required=True, help="run name",
                            type=model_text(GenerationRun, "name"))
        add_job_arguments(parser, metrics_help=(
            "comma-separated (default: fid,kid,clip_score,cmmd,lpips_diversity with a reference "
            "set of images; clip_score,lpips_diversity,fvd with one of videos; else "
            "clip_score,lpips_diversity)"))
        parser.add_argument("--inline", action="store_true",
                            help="compute in this process instead of on workers (implies --wait)")
        self.add_wait_arguments(parser)

    @staticmethod
    def add_wait_arguments(parser: CommandParser) -> None:
        """``--wait`` and ``--timeout``, read by :meth:`_wait` (resume_metric_job too)."""
        parser.add_argument("--wait", action="store_true",
                            help="wait for the workers and print the values")
        parser.add_argument("--timeout", type=seconds, default=6 * 3600,
                            help="seconds --wait waits (default 6 hours)")

    @reports_domain_errors
    def handle(self, *args, **options) -> None:
        project = get_project(options["project"])
        run = get_by_name(GenerationRun, what="run", project=project, name=options["run"])
        asked = job_request(project=project, options=options)
        reference_set = asked.reference_set
        metrics = asked.metrics
        if metrics is None:
            metrics = ["fid", "kid", "clip_score", "cmmd", "lpips_diversity"]
            if reference_set is None:
                metrics = [m for m in metrics if m not in REFERENCE_METRICS]
            elif reference_set.media_kind == MediaKind.VIDEO:  # real videos: FVD instead
                metrics = [m for m in metrics if m not in REFERENCE_METRICS] + ["fvd"]
        job = metric_job_create(run=run, metrics=metrics, reference_set=reference_set,
                                options=asked.options, enqueue=not options["inline"])
        # A job whose shards the queue did not take never gets here: metric_job_create raised
        # QueueUnavailable, naming the job and how to resume it. An identical job already
        # being computed is the one returned; "queued" would not say so.
        if options["inline"]:
            where = " (computing here)."
        elif job.status == JobStatus.WAITING:
            self.stdout.write(waiting_line(job, run))
            if options["wait"]:
                self._report(self._wait(job, options["timeout"]))
            return
        elif job.status in (JobStatus.RUNNING, JobStatus.FINALIZING):
            where = (f": already being computed ({job.shards_done} of {job.shards_total} shards "
                     "done).")
        else:
            where = " queued on the gpu queue."
        self.stdout.write(f"Metric job {job.pk} for run {run.name!r}: {', '.join(job.metrics)}; "
                          f"{job.images_total} {run.media_kind}s in {job.shards_total} shards"
                          + where)
        if options["inline"]:
            job = self._process_inline(job)
        elif options["wait"]:
            job = self._wait(job, options["timeout"])
        else:
            return
        self._report(job)

    @staticmethod
    def _process_inline(job: MetricJob) -> MetricJob:
        """Compute the job here. An error that failed it (recorded on the job, its traceback
        logged by the service) is reported by :meth:`_report` as one line, not a traceback.

        Ctrl-C leaves the job running with its shards done kept and no worker holding it (the
        shard under way rolls back): the same command finds the same job and computes only the
        shards left; a resume hands them to the workers."""
        try:
            return metric_job_process_inline(job=job)
        except KeyboardInterrupt:
            job.refresh_from_db()
            raise CommandError(
                f"Interrupted: metric job {job.pk} keeps {job.shards_done} of "
                f"{counted(job.shards_total, 'shard')} done. Run the same command again to go "
                f"on here, or `manage.py resume_metric_job {job.pk}` to hand the rest to the "
                "workers.", returncode=INTERRUPTED_EXIT_STATUS) from None
        except Exception:
            job.refresh_from_db()
            if job.status != JobStatus.FAILED:
                raise
            return job

    def _wait(self, job: MetricJob, timeout: float) -> MetricJob:
        def finished() -> bool:
            job.refresh_from_db()
            return job.finished

        if not wait_until(finished, timeout=timeout):
            raise CommandError(f"Timed out; job {job.pk} is {job.status} "
                               f"({job.shards_done}/{job.shards_total} shards).")
        return job

    def _report(self, job: MetricJob) -> None:
        for metric in job.metrics:
            if metric in job.results:
                r = job.results[metric]
                std = f" ± {r['std']:.6g}" if r.get("std") is not None else ""
                flag = ("  [UNCALIBRATED: random weights, not comparable with published numbers]"
                        if not r["calibrated"] else "")
                self.stdout.write(f"{metric:16s} {r['value']:.6g}{std}  "
                                  f"({r['backbone_id']}, n={r['n_images']}){flag}")
            elif metric in job.metric_errors:
                self.stdout.write(self.style.WARNING(
                    f"{metric:16s} not computed: {job.metric_errors[metric]}"))
        end_check(job)
        self.stdout.write(self.style.SUCCESS(f"Job {job.pk} {job.status}."))


def end_check(job: MetricJob) -> None:
    """Refuse a job that did not end ``completed``, as the command's last line and exit
    status: ``failed`` exits 1 with the job's error, ``partial`` exits
    :data:`PARTIAL_EXIT_STATUS` naming each metric not computed and why. A partial job used to
    exit 0, so ``compute_metrics ... --wait && next-step`` went on without FID. compute_metrics
    and resume_metric_job both end through here (``Command._report``)."""
    if job.status == JobStatus.FAILED:
        raise CommandError(f"Job {job.pk} failed: {job.error}")
    if job.status == JobStatus.PARTIAL:
        missing = [m for m in job.metrics if m not in job.results]
        reasons = "; ".join(f"{m}: {job.metric_errors.get(m) or 'no value stored'}"
                            for m in missing)
        raise CommandError(f"Job {job.pk} partial: {len(missing)} of "
                           f"{counted(len(job.metrics), 'metric')} not computed ({reasons}).",
                           returncode=PARTIAL_EXIT_STATUS)
