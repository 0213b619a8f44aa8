"""Best-of-K votes in the pair exports (DPO, Pick-a-Pic, raw): each ranking as the preference
pairs it states (``implied.implied_pairs``, the rankings export's rule), marked with the K of
its screen, the pick that stated the pair and the pair's weight."""

from __future__ import annotations

import uuid

import pytest

from evalhub.campaigns.models import (
    AnnotatorFlag,
    Lease,
    Outcome,
    TaskImage,
    TaskKind,
)
from evalhub.campaigns.serving.rating import Vote, rate_next, rate_vote
from evalhub.exports import sources
from evalhub.exports.implied import implied_pairs
from evalhub.exports.screens import pairs_per_vote
from tests.builders import build_campaign
from tests.exports.helpers import alias, export, read
from tests.factories import JudgmentFactory

pytestmark = pytest.mark.django_db

NAMES = ["alpha", "beta", "gamma", "delta"]


def _screens(k: int = 4, *, rank_all: bool = False, annotators: int = 3, prompts: int = 2):
    return build_campaign(runs=k, prompts=prompts, annotators=annotators, run_names=NAMES[:k],
                          task_kind=TaskKind.BEST_OF_K, k=k, rank_all=rank_all)


def _rank(task, annotator, ranking, criterion="overall"):
    """A stored best-of-K vote: ``ranking`` lists canonical positions, best first."""
    return JudgmentFactory(task=task, annotator=annotator, outcome=Outcome.RANKED, a_side="",
                           ranking=ranking, shown_order=list(range(len(ranking))),
                           criterion=criterion)


def _members(task) -> dict[int, TaskImage]:
    return {m.position: m for m in TaskImage.objects.filter(task=task)
            .select_related("image__blob", "run")}


def test_dpo_rows_are_the_pairs_each_best_of_k_vote_states(tmp_path):
    world = _screens()
    task = world.tasks[0]
    judgment = _rank(task, world.annotators[0], [2])
    members = _members(task)

    frame = read(export(world, tmp_path, "dpo-jsonl")[0], "dpo-jsonl")

    stated = implied_pairs([2], 4)
    assert len(frame) == len(stated) == 3
    assert set(frame["chosen_sha256"]) == {members[2].image.blob.sha256}
    assert sorted(frame["rejected_run"]) == sorted(members[p].run.name for p in (0, 1, 3))
    assert set(frame["screen_k"]) == {4} and set(frame["screen_stage"]) == {0}
    assert list(frame["weight"]) == pytest.approx([p.weight for p in stated])
    assert set(frame["judgment_id"]) == {judgment.pk}
    assert frame["chosen_side"].isna().all()  # a grid has no left and right
    assert set(frame["annotator"]) == {alias(world, world.annotators[0])}


def test_a_ranked_vote_cast_on_the_page_reaches_every_pair_format(tmp_path):
    world = _screens(k=3, prompts=1)
    payload = rate_next(annotator=world.annotator, campaign_id=world.campaign.pk)
    lease = Lease.objects.get(pk=payload["lease"])
    rate_vote(annotator=world.annotator, campaign_id=world.campaign.pk,
              vote=Vote(uuid.uuid4(), lease.pk, {}, rankings={"overall": [1]}))
    picked = _members(lease.task)[lease.order[1]]

    dpo, pickapic, raw, csv = (
        read(export(world, tmp_path, fmt, name=f"{fmt}.out", **options)[0], fmt)
        for fmt, options in [("dpo-jsonl", {}), ("pickapic-parquet", {"image_bytes": False}),
                             ("raw-parquet", {}), ("raw-csv", {})])

    assert set(dpo["chosen_run_id"]) == {picked.run_id}
    assert set(pickapic["best_image_uid"]) == {picked.image.blob.sha256}
    for frame in (dpo, pickapic, raw, csv):
        assert len(frame) == 2
        assert list(frame["screen_k"]) == [3, 3]
        assert list(frame["weight"]) == pytest.approx([0.5, 0.5])


def test_image_a_is_the_lower_canonical_position_and_the_outcome_names_the_pick(tmp_path):
    world = _screens()
    task = world.tasks[0]
    _rank(task, world.annotators[0], [1])
    members = _members(task)

    raw = read(export(world, tmp_path, "raw-parquet")[0], "raw-parquet")

    by_pair = {(row.image_a_id, row.image_b_id): row.outcome for row in raw.itertuples()}
    image = {p: m.image_id for p, m in members.items()}
    assert by_pair == {(image[0], image[1]): "b", (image[1], image[2]): "a",
                       (image[1], image[3]): "a"}
    assert list(raw["run_a_id"]) == [members[p].run_id for p in (0, 1, 1)]
    assert raw["a_side"].isna().all()


def test_pickapic_labels_follow_the_pick_and_leave_the_side_empty(tmp_path):
    world = _screens(k=3)
    task = world.tasks[0]
    _rank(task, world.annotators[0], [0])
    members = _members(task)

    frame = read(export(world, tmp_path, "pickapic-parquet", image_bytes=False)[0],
                 "pickapic-parquet")

    assert list(frame["label_0"]) == [1.0, 1.0] and list(frame["label_1"]) == [0.0, 0.0]
    assert set(frame["image_0_uid"]) == {members[0].image.blob.sha256}
    assert frame["image_0_side"].isna().all()
    assert set(frame["screen_k"]) == {3}


def test_a_full_ranking_gives_every_pair_with_its_pick(tmp_path):
    world = _screens(rank_all=True)
    _rank(world.tasks[0], world.annotators[0], [3, 0, 2, 1])

    frame = read(export(world, tmp_path, "dpo-jsonl")[0], "dpo-jsonl")

    stated = implied_pairs([3, 0, 2, 1], 4)
    assert len(frame) == 6
    assert sorted(frame["screen_stage"]) == sorted(p.stage for p in stated)
    assert frame["weight"].sum() == pytest.approx(1)


def test_a_batch_reads_as_many_votes_as_make_a_batch_of_pairs():
    assert pairs_per_vote(k=4, rank_all=False) == 3
    assert pairs_per_vote(k=4, rank_all=True) == 6
    assert pairs_per_vote(k=6, rank_all=True) == 15


def test_a_batch_size_smaller_than_a_vote_still_writes_every_pair(tmp_path):
    world = _screens(rank_all=True)
    _rank(world.tasks[0], world.annotators[0], [3, 0, 2, 1])
    _rank(world.tasks[1], world.annotators[0], [0, 1, 2, 3])

    frame = read(export(world, tmp_path, "raw-parquet", batch_size=4)[0], "raw-parquet")

    assert len(frame) == 12 and frame["weight"].sum() == pytest.approx(2)


def test_pairwise_votes_are_marked_as_no_screen_with_weight_one(tmp_path):
    world = build_campaign(runs=2, prompts=1, annotators=1)
    JudgmentFactory(task=world.tasks[0], annotator=world.annotator, outcome=Outcome.A)

    frame = read(export(world, tmp_path, "dpo-jsonl")[0], "dpo-jsonl")

    assert frame["screen_k"].isna().all() and frame["screen_stage"].isna().all()
    assert list(frame["weight"]) == [1.0]


def test_excluded_annotators_and_undone_votes_are_left_out(tmp_path):
    world = _screens(k=3)
    task = world.tasks[0]
    _rank(task, world.annotators[0], [0])
    _rank(task, world.annotators[1], [1])
    undone = _rank(world.tasks[1], world.annotators[0], [2])
    type(undone).objects.filter(pk=undone.pk).update(retracted_at=undone.created_at)
    AnnotatorFlag.objects.create(campaign=world.campaign, annotator=world.annotators[1],
                                 excluded=True)

    kept = read(export(world, tmp_path, "raw-parquet")[0], "raw-parquet")
    everyone = read(export(world, tmp_path, "raw-parquet", name="all.parquet",
                           include_excluded=True)[0], "raw-parquet")

    assert set(kept["annotator"]) == {alias(world, world.annotators[0])}
    assert len(kept) == 2 and len(everyone) == 4


def test_by_pair_the_rankings_that_state_a_pair_vote_on_it(tmp_path):
    """Two annotators pick image 0, one picks image 1: pair (0, 1) gets votes a, a, b; pair
    (0, 2) a, a (the third vote states 1 over 0 and 1 over 2 only); pair (1, 2) one a."""
    world = _screens(k=3)
    task = world.tasks[0]
    u0, u1, u2 = world.annotators
    _rank(task, u0, [0])
    _rank(task, u1, [0])
    _rank(task, u2, [1])
    frame = read(export(world, tmp_path, "pickapic-parquet", aggregate="pair",
                        image_bytes=False)[0], "pickapic-parquet")

    rows = {(r.image_0_uid, r.image_1_uid): r for r in frame.itertuples()}
    assert len(rows) == 3
    sha = {p: m.image.blob.sha256 for p, m in _members(task).items()}
    pair_01, pair_02, pair_12 = rows[sha[0], sha[1]], rows[sha[0], sha[2]], rows[sha[1], sha[2]]
    assert (pair_01.outcome, pair_01.votes, pair_01.agreement) == ("a", 3, pytest.approx(2 / 3))
    assert (pair_02.outcome, pair_02.votes, pair_02.agreement) == ("a", 2, 1.0)
    assert (pair_12.outcome, pair_12.votes) == ("a", 1)
    assert frame["user_id"].isna().all() and frame["ranking_id"].isna().all()
    assert set(frame["weight"]) == {0.5} and frame["screen_stage"].isna().all()


def test_by_pair_a_split_pair_is_a_tie_that_dpo_drops(tmp_path):
    world = _screens(k=3)
    task = world.tasks[0]
    _rank(task, world.annotators[0], [0])
    _rank(task, world.annotators[1], [1])

    dpo = read(export(world, tmp_path, "dpo-jsonl", aggregate="pair")[0], "dpo-jsonl")
    pickapic = read(export(world, tmp_path, "pickapic-parquet", aggregate="pair",
                           image_bytes=False, name="p.parquet")[0], "pickapic-parquet")

    assert "tie" not in set(dpo.get("outcome", []))
    assert len(dpo) == 2  # (0, 2) and (1, 2), each stated once; (0, 1) is split
    assert sorted(pickapic["outcome"]) == ["a", "a", "tie"]


def test_min_agreement_keeps_the_implied_pairs_of_agreed_pairs(tmp_path):
    world = _screens(k=3)
    task = world.tasks[0]
    _rank(task, world.annotators[0], [0])
    _rank(task, world.annotators[1], [1])

    frame = read(export(world, tmp_path, "raw-parquet", min_agreement=0.75)[0],
                 "raw-parquet")

    members = _members(task)
    assert len(frame) == 2  # the pairs with image 2; the split pair (0, 1) is left out
    assert set(frame["image_b_id"]) == {members[2].image_id}


def test_the_bundle_holds_the_images_of_every_position(tmp_path):
    world = _screens()
    task = world.tasks[0]
    _rank(task, world.annotators[0], [3])

    summary = export(world, tmp_path, "dpo-jsonl", bundle="zip")[1]

    assert summary.images == 4 and summary.rows == 3


@pytest.mark.parametrize(("fmt", "options"), [
    ("raw-parquet", {}),
    ("dpo-jsonl", {"batch_size": 2}),
    ("pickapic-parquet", {"aggregate": "pair", "image_bytes": False, "batch_size": 1}),
    ("raw-csv", {"min_agreement": 0.5, "batch_size": 2}),
])
def test_the_copy_and_portable_paths_write_the_same_pairs(tmp_path, monkeypatch, fmt,
                                                          options):
    world = _screens(rank_all=True)
    u0, u1, u2 = world.annotators
    first, second = world.tasks[:2]
    _rank(first, u0, [3, 0, 2, 1])
    _rank(first, u1, [0, 3, 1, 2])
    _rank(second, u2, [1, 2, 3, 0])
    _rank(second, u0, [1, 0, 3, 2])
    _rank(first, u2, [3, 1, 0, 2])

    fast, fast_summary = export(world, tmp_path, fmt, name=f"fast-{fmt}", **options)
    monkeypatch.setattr(sources, "USE_COPY", False)
    portable, portable_summary = export(world, tmp_path, fmt, name=f"orm-{fmt}", **options)

    assert fast_summary.rows > 0
    assert (fast_summary.rows, fast_summary.outcomes) == (portable_summary.rows,
                                                          portable_summary.outcomes)
    assert read(fast, fmt).equals(read(portable, fmt))
