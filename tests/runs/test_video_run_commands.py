"""The commands say videos where a run's outputs are videos (not "images")."""

from io import StringIO

import pytest
from django.core.management import call_command

from evalhub.blobs.video_services import video_inspect, video_store
from evalhub.runs.models import MediaKind
from tests.factories import GenerationRunFactory, ImageFactory, PromptFactory
from tests.videos import video_bytes

pytestmark = pytest.mark.django_db


def test_compute_metrics_counts_a_video_runs_outputs_as_videos(sent_tasks):
    run = GenerationRunFactory(media_kind=MediaKind.VIDEO)
    prompt = PromptFactory(prompt_set=run.prompt_set, text="a square moving right")
    for seed in range(3):
        data = video_bytes(frames=6, seed=seed)
        video = video_store(data=data, info=video_inspect(data, name=f"{seed}.mp4"),
                            name=f"{seed}.mp4")
        ImageFactory(run=run, prompt=prompt, seed=seed, blob=video.poster, video=video)
    out = StringIO()
    call_command("compute_metrics", "--project", run.project.slug, "--run", run.name,
                 "--metrics", "clip_score", stdout=out)
    assert "; 3 videos in 1 shards queued on the gpu queue." in out.getvalue()
