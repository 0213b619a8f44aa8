"""The shared factories build consistent campaign rows and follow the voting service's
counter rule, so tests that write votes as rows see what the service would store."""

import pytest
from django.utils import timezone

from evalhub.campaigns.models import JudgeKind, LeaseStatus
from tests.factories import ComparisonTaskFactory, JudgmentFactory

pytestmark = pytest.mark.django_db


def test_a_task_pairs_two_runs_of_the_campaigns_project_on_one_prompt():
    task = ComparisonTaskFactory()
    project = task.campaign.project
    assert task.run_a != task.run_b
    assert {task.run_a.project, task.run_b.project} == {project}
    assert task.image_a.prompt == task.image_b.prompt == task.prompt
    assert task.judgments_needed == task.campaign.judgments_per_pair


def test_a_human_judgment_comes_with_its_completed_lease_and_counts_once():
    task = ComparisonTaskFactory(campaign__criteria=["overall", "aesthetics"])
    overall = JudgmentFactory(task=task)
    JudgmentFactory(task=task, annotator=overall.annotator, criterion="aesthetics",
                    lease=overall.lease, client_id=overall.client_id)
    assert overall.lease.status == LeaseStatus.COMPLETED
    assert overall.lease.annotator == overall.annotator
    task.refresh_from_db()
    assert task.judgments_count == 1


def test_metric_and_retracted_judgments_do_not_count():
    task = ComparisonTaskFactory()
    JudgmentFactory(task=task, judge_kind=JudgeKind.METRIC, annotator=None,
                    metric_name="clip_score")
    JudgmentFactory(task=task, retracted_at=timezone.now())
    task.refresh_from_db()
    assert task.judgments_count == 0
