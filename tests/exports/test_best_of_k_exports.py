"""Best-of-K exports: the rankings as stored, and the preference pairs they state for DPO."""

import io
import json
import uuid

import pyarrow as pa
import pytest
from django.core.management import CommandError, call_command

from evalhub.blobs.models import VideoBlob
from evalhub.blobs.tasks import blobs_make_video_renditions
from evalhub.blobs.video_services import video_inspect, video_store
from evalhub.campaigns.models import AnnotatorFlag, Judgment, Lease, TaskImage, TaskKind
from evalhub.campaigns.serving.rating import Vote, rate_next, rate_undo, rate_vote
from evalhub.exports.implied import implied_pairs
from evalhub.exports.jsonl import iso_utc
from evalhub.exports.options import pseudonym
from evalhub.leaderboards.quality_snapshot import current_reliability
from evalhub.runs.models import GenerationRun, Image, MediaKind
from tests.builders import build_campaign
from tests.videos import video_bytes

pytestmark = pytest.mark.django_db

NAMES = ["alpha", "beta", "gamma", "delta"]


def _vote(world, annotator, slots):
    payload = rate_next(annotator=annotator, campaign_id=world.campaign.pk)
    lease = Lease.objects.get(pk=payload["lease"])
    client_id = uuid.uuid4()
    rate_vote(annotator=annotator, campaign_id=world.campaign.pk,
              vote=Vote(client_id, lease.pk, {}, rankings={"overall": slots}))
    return lease, client_id


def _export(api, world, **params):
    api.force_login(world.scientist)
    response = api.get(f"/api/v1/campaigns/{world.campaign.pk}/export/rankings/", params)
    assert response.status_code == 200, response.content
    return [json.loads(line) for line in b"".join(response.streaming_content).splitlines()]


def test_best_of_k_pairs_are_the_pick_over_each_other_image_weighted_to_one():
    pairs = implied_pairs([2], 4)
    assert [(p.chosen, p.rejected) for p in pairs] == [(2, 0), (2, 1), (2, 3)]
    assert sum(p.weight for p in pairs) == pytest.approx(1)


def test_a_full_ranking_states_every_pair_in_its_order():
    pairs = implied_pairs([3, 0, 2, 1], 4)
    assert [(p.chosen, p.rejected, p.stage) for p in pairs] == [
        (3, 0, 0), (3, 1, 0), (3, 2, 0), (0, 1, 1), (0, 2, 1), (2, 1, 2)]
    assert all(p.weight == pytest.approx(1 / 6) for p in pairs)


def test_the_raw_export_lists_each_ranking_as_stored_with_its_images_and_runs(api):
    world = build_campaign(runs=4, prompts=2, run_names=NAMES, task_kind=TaskKind.BEST_OF_K,
                           k=4, rank_all=True)
    lease, _ = _vote(world, world.annotator, [1, 3, 0])
    _, undone = _vote(world, world.annotator, [0, 1, 2])
    rate_undo(annotator=world.annotator, campaign=world.campaign, client_id=undone)
    rows = _export(api, world, format="raw")
    assert len(rows) == 1  # the undone vote is not exported
    row = rows[0]
    members = list(TaskImage.objects.filter(task_id=lease.task_id).order_by("position"))
    assert row["ranking"] == [lease.order[s] for s in (1, 3, 0, 2)]
    assert row["shown_order"] == lease.order
    assert [i["image_id"] for i in row["images"]] == [m.image_id for m in members]
    assert [i["run"] for i in row["images"]] == [m.run.name for m in members]
    assert row["k"] == 4 and row["rank_all"] is True
    assert row["annotator"] == pseudonym(campaign_id=world.campaign.pk,
                                         user_id=world.annotator.pk)


def test_the_dpo_export_expands_each_pick_and_leaves_out_excluded_annotators(api):
    world = build_campaign(runs=4, prompts=2, annotators=2, run_names=NAMES,
                           task_kind=TaskKind.BEST_OF_K, k=4)
    lease, _ = _vote(world, world.annotators[0], [2])
    _vote(world, world.annotators[1], [0])
    AnnotatorFlag.objects.create(campaign=world.campaign, annotator=world.annotators[1],
                                 excluded=True)
    rows = _export(api, world, format="dpo")
    assert len(rows) == 3
    winner = TaskImage.objects.get(task_id=lease.task_id, position=lease.order[2])
    assert {r["chosen_image_id"] for r in rows} == {winner.image_id}
    assert {r["chosen_run"] for r in rows} == {winner.run.name}
    assert len({r["rejected_image_id"] for r in rows}) == 3
    assert sum(r["weight"] for r in rows) == pytest.approx(1)
    assert len(_export(api, world, format="dpo", include_excluded="true")) == 6


def test_annotators_may_not_export_rankings(api):
    world = build_campaign(runs=3, prompts=1, task_kind=TaskKind.BEST_OF_K, k=3)
    api.force_login(world.annotator)
    url = f"/api/v1/campaigns/{world.campaign.pk}/export/rankings/"
    assert api.get(url).status_code == 403
    api.force_login(world.scientist)
    assert api.get(url, {"format": "nope"}).status_code == 400


def test_the_export_page_of_a_best_of_k_campaign_links_its_rankings(client):
    world = build_campaign(runs=3, prompts=1, task_kind=TaskKind.BEST_OF_K, k=3)
    client.force_login(world.scientist)
    page = client.get(f"/campaigns/{world.campaign.pk}/export/").content.decode()
    url = f"/api/v1/campaigns/{world.campaign.pk}/export/rankings/"
    assert f"{url}?format=raw" in page and f"{url}?format=dpo" in page
    assert client.get(f"{url}?format=raw").status_code == 200  # the page's session suffices
    pairs = build_campaign(runs=2, prompts=1)
    client.force_login(pairs.scientist)
    refused = client.get(f"/api/v1/campaigns/{pairs.campaign.pk}/export/rankings/?format=raw")
    assert refused.status_code == 400  # not an empty 200: a pair campaign has no rankings
    assert "asks for pairs, not best of K" in refused.json()["detail"]


def test_a_video_campaigns_rankings_name_the_video_files(api):
    """A video output is named by its video file's sha256 (not its poster's) in DPO pairs; the
    raw rows list both."""
    world = build_campaign(runs=3, prompts=1, run_names=NAMES[:3],
                           task_kind=TaskKind.BEST_OF_K, k=3)
    GenerationRun.objects.filter(pk__in=[r.pk for r in world.runs]).update(
        media_kind=MediaKind.VIDEO)
    for number, image in enumerate(Image.objects.filter(run__in=world.runs).order_by("pk")):
        data = video_bytes(frames=6, seed=number)
        video = video_store(data=data, info=video_inspect(data, name=f"{number}.mp4"),
                            name=f"{number}.mp4")
        Image.objects.filter(pk=image.pk).update(blob=video.poster, video=video)
    assert blobs_make_video_renditions(list(VideoBlob.objects.values_list("pk", flat=True)))
    lease, _ = _vote(world, world.annotator, [1])
    members = {m.position: m.image for m in TaskImage.objects.filter(
        task_id=lease.task_id).select_related("image__video", "image__blob")}
    picked = members[lease.order[1]]

    pairs = _export(api, world, format="dpo")
    assert {p["chosen"] for p in pairs} == {picked.video.sha256}
    assert {p["rejected"] for p in pairs} == {m.video.sha256 for m in members.values()
                                             if m != picked}
    raw = _export(api, world, format="raw")[0]
    assert [(i["sha256"], i["video_sha256"]) for i in raw["images"]] == [
        (members[p].blob.sha256, members[p].video.sha256) for p in sorted(members)]


def test_the_rankings_command_writes_the_apis_rows_to_a_file(api, tmp_path):
    world = build_campaign(runs=4, prompts=2, annotators=2, run_names=NAMES,
                           task_kind=TaskKind.BEST_OF_K, k=4)
    _vote(world, world.annotators[0], [2])
    _vote(world, world.annotators[1], [0])
    AnnotatorFlag.objects.create(campaign=world.campaign, annotator=world.annotators[1],
                                 excluded=True)
    for kind in ("raw", "dpo"):
        output = tmp_path / f"{kind}.jsonl"
        out = io.StringIO()
        call_command("export_rankings", str(world.campaign.pk), "--format", kind,
                     "--output", str(output), stdout=out)
        rows = [json.loads(line) for line in output.read_text().splitlines()]
        assert rows == _export(api, world, format=kind)
        assert f"Wrote {len(rows)} rows to {output}." in out.getvalue()
    call_command("export_rankings", str(world.campaign.pk), "--format", "dpo",
                 "--include-excluded", "--output", str(tmp_path / "dpo.jsonl"), "--overwrite",
                 stdout=io.StringIO())
    assert len((tmp_path / "dpo.jsonl").read_text().splitlines()) == 6


def test_the_rankings_command_keeps_an_existing_file_and_says_what_a_pair_campaign_has(
        tmp_path):
    world = build_campaign(runs=4, prompts=1, task_kind=TaskKind.BEST_OF_K, k=4)
    output = tmp_path / "rankings.jsonl"
    output.write_text("earlier export\n")
    with pytest.raises(CommandError, match="already exists; pass --overwrite"):
        call_command("export_rankings", str(world.campaign.pk), "--output", str(output))
    assert output.read_text() == "earlier export\n"
    with pytest.raises(CommandError, match="does not exist"):
        call_command("export_rankings", str(world.campaign.pk),
                     "--output", str(tmp_path / "missing" / "r.jsonl"))
    pairs = build_campaign(runs=2, prompts=1)
    with pytest.raises(CommandError, match="asks for pairs, not best of K"):
        call_command("export_rankings", str(pairs.campaign.pk), "--output",
                     str(tmp_path / "pairs.jsonl"))
    assert not (tmp_path / "pairs.jsonl").exists()
    assert not [p for p in tmp_path.iterdir() if ".partial-" in p.name]


def test_a_best_of_k_export_with_rows_carries_no_empty_file_warning(api, client):
    # The check looked at pairwise votes only: every best-of-K export said "the file is empty".
    world = build_campaign(runs=3, prompts=2, task_kind=TaskKind.BEST_OF_K, k=3)
    _vote(world, world.annotators[0], [1])
    api.force_login(world.scientist)
    client.force_login(world.scientist)
    url = f"/api/v1/campaigns/{world.campaign.pk}/export/"
    page = f"/campaigns/{world.campaign.pk}/export/"
    for get, path in ((api.get, url), (client.get, page)):
        params = {"format": "dpo-jsonl"} if get is api.get else {"format": "dpo-jsonl",
                                                                   "download": "1"}
        full = get(path, params)
        assert full.status_code == 200 and "X-Export-Warning" not in full
        assert len(b"".join(full.streaming_content).splitlines()) == 2  # the pick over 2
        empty = get(path, {**params, "until": "2000-01-01"})
        assert empty["X-Export-Warning"].startswith("No judgments match")


@pytest.mark.parametrize("fmt", ["raw", "dpo"])
def test_rankings_rows_carry_the_annotators_reliability_and_utc_times_as_the_pair_exports(
        api, fmt):
    """The same ``annotator_reliability`` as every pair export (the weight a weighted
    leaderboard gives the annotator's votes), and ``created_at`` written as theirs are."""
    world = build_campaign(runs=4, prompts=3, annotators=2, run_names=NAMES,
                           task_kind=TaskKind.BEST_OF_K, k=4)
    for annotator in world.annotators:
        _vote(world, annotator, [2])
    weights = current_reliability(campaign=world.campaign).weights()
    rows = _export(api, world, format=fmt)
    assert rows
    by_alias = {pseudonym(campaign_id=world.campaign.pk, user_id=user.pk): weights[user.pk]
                for user in world.annotators}
    for row in rows:
        assert row["annotator_reliability"] == pytest.approx(by_alias[row["annotator"]])
        judgment = Judgment.objects.get(pk=row["judgment_id"])
        assert row["created_at"] == iso_utc(pa.array([judgment.created_at],
                                                     pa.timestamp("us", "UTC")))[0].as_py()
        assert row["created_at"].endswith("Z")
