"""The side-by-side gallery and the image page: what they read, and who may open them.

Two runs of one model answer four prompts (categories alternate colour / counting); the
campaign over them holds one task per prompt. Votes are written as rows
(tests.leaderboards.helpers.cast) so outcomes and sides are exact.
"""

from __future__ import annotations

import uuid

import pytest
from django.db import connection
from django.test import Client
from django.test.utils import CaptureQueriesContext

from evalhub.campaigns.models import AnnotatorFlag, JudgeKind, Judgment, Lease, TaskImage, TaskKind
from evalhub.campaigns.serving.rating import Vote, rate_next, rate_vote
from evalhub.evaluation.models import MetricName, PairMetric
from evalhub.runs.gallery import selectors
from evalhub.runs.gallery.selectors import (
    GalleryQuery,
    RunOption,
    default_pair,
    gallery_page,
    gallery_pairs,
)
from evalhub.runs.models import MediaKind, RunStatus
from tests.builders import build_campaign, logged_in
from tests.core.test_security_headers import _inline_code
from tests.factories import GenerationRunFactory, ImageFactory, MembershipFactory, UserFactory
from tests.leaderboards.helpers import cast, set_image_metric

pytestmark = pytest.mark.django_db


@pytest.fixture
def world():
    return build_campaign(runs=2, prompts=4, annotators=3, name="Gallery study")


def _tasks_by_prompt(world):
    return {task.prompt_id: task for task in world.tasks}


def _lpips(image_a, image_b, value: float) -> PairMetric:
    return PairMetric.objects.create(image_a=image_a, image_b=image_b, metric=MetricName.LPIPS,
                                     value=value, backbone_id="lpips-test", weights_sha256="0",
                                     calibrated=True)


def _metric_judgment(task, outcome: str, *, calibrated: bool = True) -> Judgment:
    return Judgment.objects.create(task=task, campaign=task.campaign, criterion="overall",
                                   outcome=outcome, judge_kind=JudgeKind.METRIC,
                                   metric_name="clip_score", metric_calibrated=calibrated)


def _page(world, **kwargs) -> selectors.GalleryPage:
    left, right = kwargs.pop("runs", (world.runs[0], world.runs[1]))
    query = GalleryQuery(left=left.pk, right=right.pk, **kwargs)
    return gallery_page(project_id=world.campaign.project_id, query=query)


# ------------------------------------------------------------------------------ selectors


def test_pairs_are_the_same_prompt_and_seed_from_each_run(world):
    left, right = world.runs
    extra = ImageFactory(run=left, prompt=world.prompts[0], seed=7)  # no partner in the right run
    pairs = gallery_pairs(left=left.pk, right=right.pk)
    assert [p.prompt_id for p in pairs] == [p.pk for p in world.prompts]
    for pair in pairs:
        a, b = (left.images.get(pk=pair.left_id), right.images.get(pk=pair.right_id))
        assert (a.prompt_id, a.seed) == (b.prompt_id, b.seed) == (pair.prompt_id, pair.seed)
    assert extra.pk not in {p.left_id for p in pairs}
    counting = gallery_pairs(left=left.pk, right=right.pk, category="counting")
    assert [p.prompt_id for p in counting] == [world.prompts[1].pk, world.prompts[3].pk]


def test_votes_are_counted_from_the_left_runs_side_whichever_run_is_left(world):
    first = world.tasks[0]  # image A = runs[0]'s image
    a1, a2, a3 = world.annotators
    cast(first, a1, "a")
    cast(first, a2, "a")
    cast(first, a3, "tie")
    retracted = cast(first, world.scientist, "b")
    Judgment.objects.filter(pk=retracted.pk).update(retracted_at=first.created_at)
    page = _page(world)
    votes = page.items[0].votes
    assert (votes.left, votes.right, votes.tie, votes.both_bad) == (2, 0, 1, 0)
    assert votes.outcome == "left"
    swapped = _page(world, runs=(world.runs[1], world.runs[0])).items[0].votes
    assert (swapped.left, swapped.right, swapped.tie) == (0, 2, 1)
    assert swapped.outcome == "right"
    # An excluded annotator's votes are left out, as the leaderboards leave them out.
    AnnotatorFlag.objects.create(campaign=world.campaign, annotator=a1, excluded=True)
    votes = _page(world).items[0].votes
    assert (votes.left, votes.tie) == (1, 1)
    assert votes.outcome == "split"


def test_disagreement_formulas(world):
    first, second = world.tasks[:2]
    a1, a2, a3 = world.annotators
    for annotator, outcome in ((a1, "a"), (a2, "a"), (a3, "b")):
        cast(first, annotator, outcome)
    _metric_judgment(first, "b")  # the metric contradicts two of three votes
    cast(second, a1, "a")
    _metric_judgment(second, "a")
    items = _page(world).items
    assert items[0].annotator_disagreement == pytest.approx(1 - 2 / 3)
    assert items[0].metric_outcome == "right"
    assert items[0].metric_disagreement == pytest.approx(1 - 1 / 3)
    assert items[1].annotator_disagreement is None  # one vote cannot disagree
    assert items[1].metric_disagreement == 0.0
    assert items[2].metric_disagreement is None and items[2].votes.total == 0


def test_sorts_put_pairs_without_a_value_last_and_filters_by_outcome(world):
    tasks = world.tasks
    a1, a2, a3 = world.annotators
    cast(tasks[1], a1, "a")
    cast(tasks[1], a2, "b")  # annotators split
    for annotator in (a1, a2, a3):
        cast(tasks[2], annotator, "b")  # unanimous for the right run
    _metric_judgment(tasks[2], "a")  # and the metric says left
    for task, distance in zip(tasks, (0.4, 0.1, 0.7), strict=False):  # tasks[3] has none
        _lpips(task.image_b, task.image_a, distance)  # stored in either order
    prompt_of = {t.prompt_id: i for i, t in enumerate(tasks)}

    def order(**kwargs) -> list[int]:
        page = _page(world, **kwargs)
        return [prompt_of[world.runs[0].images.get(pk=item.left.id).prompt_id]
                for item in page.items]

    assert order() == [0, 1, 2, 3]
    assert order(sort="lpips") == [1, 0, 2, 3]
    assert order(sort="-lpips") == [2, 0, 1, 3]
    assert order(sort="annotator_disagreement") == [1, 2, 0, 3]
    assert order(sort="metric_disagreement")[0] == 2
    assert order(outcome="right") == [2]
    assert order(outcome="split") == [1]
    assert order(outcome="unvoted") == [0, 3]
    assert order(outcome="left") == []
    assert _page(world, sort="lpips").items[0].lpips.value == pytest.approx(0.1)


def test_clip_scores_and_pages(world, monkeypatch):
    left_image = world.tasks[2].image_a
    set_image_metric(left_image, "clip_score", 31.5, calibrated=False)
    monkeypatch.setattr(selectors, "PAGE_SIZE", 3)
    first, second = _page(world), _page(world, page=2)
    assert (first.total, first.pages, [i.number for i in first.items]) == (4, 2, [1, 2, 3])
    assert [i.number for i in second.items] == [4]
    assert first.items[2].left.clip.value == 31.5
    assert first.items[2].left.clip.calibrated is False
    assert first.items[2].right.clip is None
    assert _page(world, page=99).page == 2  # past the end: the last page
    assert _page(world, page=0).page == 1  # before the first: the first page


def test_a_page_costs_the_same_queries_whatever_the_number_of_pairs():
    def queries(prompts: int) -> int:
        world = build_campaign(runs=2, prompts=prompts, annotators=2)
        for task in world.tasks:
            cast(task, world.annotators[0], "a")
            _lpips(task.image_a, task.image_b, 0.3)
        with CaptureQueriesContext(connection) as captured:
            page = _page(world, sort="annotator_disagreement")
        assert len(page.items) == prompts
        return len(captured)

    assert queries(2) == queries(6)


# ------------------------------------------------------------------------------ pages


def _urls(world) -> list[str]:
    return [f"/gallery/{world.campaign.project_id}/",
            f"/gallery/images/{world.tasks[0].image_a_id}/"]


def test_scientists_and_owners_open_both_pages_with_no_inline_code(world):
    for user in (world.scientist, world.owner):
        for url in _urls(world):
            response = logged_in(user).get(url)
            assert response.status_code == 200, url
            assert _inline_code(response.content.decode()) == [], url


def test_anonymous_users_are_sent_to_sign_in(world):
    for url in _urls(world):
        response = Client().get(url)
        assert response.status_code == 302
        assert response["Location"].startswith("/accounts/login/?next=")


def test_annotators_get_403_and_outsiders_404(world):
    outsider = UserFactory()
    other_project_owner = MembershipFactory(role="owner").user
    for url in _urls(world):
        assert logged_in(world.annotator).get(url).status_code == 403, url
        assert logged_in(outsider).get(url).status_code == 404, url
        assert logged_in(other_project_owner).get(url).status_code == 404, url
    assert logged_in(world.scientist).get("/gallery/999999999/").status_code == 404
    assert logged_in(world.scientist).get("/gallery/images/999999999/").status_code == 404
    assert logged_in(world.scientist).get("/gallery/123456789012345678901/").status_code == 404


def test_the_gallery_shows_both_runs_on_the_same_prompt(world):
    left, right = world.runs
    set_image_metric(world.tasks[0].image_a, "clip_score", 28.25)
    cast(world.tasks[0], world.annotator, "a")
    response = logged_in(world.scientist).get(
        f"/gallery/{world.campaign.project_id}/", {"a": left.pk, "b": right.pk})
    html = response.content.decode()
    assert response.status_code == 200
    assert f"Left: <bdi>{left.name}</bdi>" in html and f"Right: <bdi>{right.name}</bdi>" in html
    assert world.prompts[0].text in html
    assert "28.25" in html
    assert "left 1 · right 0 · tie 0 · both bad 0" in html
    assert response.context["form"].fields["category"].choices == [
        ("", "all"), ("colour", "\u2068colour\u2069"), ("counting", "\u2068counting\u2069")]
    config = response.context["config"]
    assert [item["prompt"] for item in config["items"]] == [p.text for p in world.prompts]
    assert all(item["left"]["url"].startswith("/media/display/") for item in config["items"])


def test_clip_scores_from_random_weights_say_uncalibrated_in_the_gallery(world):
    left, right = world.runs
    set_image_metric(world.tasks[0].image_a, "clip_score", 28.25, calibrated=False)
    set_image_metric(world.tasks[0].image_b, "clip_score", 27.5)
    html = logged_in(world.scientist).get(
        f"/gallery/{world.campaign.project_id}/", {"a": left.pk, "b": right.pk}).content.decode()
    caption = html[html.index('data-field="left-clip"'):]
    assert caption[:caption.index("</span>")].endswith("28.25 (uncalibrated)")
    right_caption = html[html.index('data-field="right-clip"'):]
    assert "uncalibrated" not in right_caption[:right_caption.index("</span>")]
    row = html[html.index('id="gallery-list"'):]
    assert '28.25 <span class="uncal">uncalibrated</span>' in row
    assert '27.50 <span class="uncal">' not in row


def test_no_runs_chosen_shows_the_two_last_runs_of_one_prompt_set(world):
    response = logged_in(world.scientist).get(f"/gallery/{world.campaign.project_id}/")
    assert response.status_code == 200
    assert response.context["left"].id == world.runs[0].pk
    assert response.context["right"].id == world.runs[1].pk
    model = world.runs[0].checkpoint.model_id
    by_model = logged_in(world.scientist).get(f"/gallery/{world.campaign.project_id}/",
                                              {"model": model})
    assert len(by_model.context["config"]["items"]) == 4
    # Choosing a model whose runs do not include the runs shown: that model's default pair.
    other = build_campaign(runs=2, prompts=1, annotators=0)
    switched = logged_in(world.scientist).get(f"/gallery/{world.campaign.project_id}/", {
        "model": model, "a": other.runs[0].pk, "b": other.runs[1].pk})
    assert (switched.context["left"].id, switched.context["right"].id) == (
        world.runs[0].pk, world.runs[1].pk)


def _option(run_id: int, *, kind: str = MediaKind.IMAGE, status: str = RunStatus.COMPLETED,
            outputs: bool = True, prompt_set: int = 1, step: int | None = None) -> RunOption:
    return RunOption(run_id, f"run-{run_id}", 1, "model", f"checkpoint-{run_id}", step,
                     prompt_set, kind, status, outputs)


def test_the_default_pair_is_two_runs_with_outputs_of_one_kind_never_a_failed_run():
    images = [_option(1), _option(2)]
    # The newest run is a video, a failed run, or a run with nothing to show: passed over.
    assert default_pair([*images, _option(3, kind=MediaKind.VIDEO)]) == (1, 2)
    assert default_pair([*images, _option(3, status=RunStatus.FAILED)]) == (1, 2)
    assert default_pair([*images, _option(3, outputs=False)]) == (1, 2)
    # Two videos make the pair when the images cannot.
    assert default_pair([_option(1), _option(2, kind=MediaKind.VIDEO),
                         _option(3, kind=MediaKind.VIDEO)]) == (2, 3)
    # Finished runs first; a run still under way, with outputs, when no finished pair exists.
    assert default_pair([_option(1), _option(2), _option(3, status=RunStatus.RUNNING)]) == (1, 2)
    assert default_pair([_option(1), _option(2, status=RunStatus.PARTIAL),
                         _option(3, status=RunStatus.RUNNING)]) == (1, 2)
    assert default_pair([_option(1), _option(2, status=RunStatus.RUNNING)]) == (1, 2)
    # Runs of one prompt set first (they have pairs to show), else the same kind still.
    assert default_pair([_option(1, prompt_set=7), _option(2), _option(3, prompt_set=7)]) == (1, 3)
    assert default_pair([_option(1, prompt_set=7), _option(2)]) == (1, 2)
    # Nothing to compare: no default rather than an image beside a video or a failed run.
    assert default_pair([_option(1), _option(2, kind=MediaKind.VIDEO)]) is None
    assert default_pair([_option(1), _option(2, status=RunStatus.FAILED)]) is None
    # A model's first and last checkpoint by training step, among the runs that qualify.
    by_step = [_option(4, step=0), _option(1, step=1, kind=MediaKind.VIDEO), _option(3, step=2),
               _option(2, step=3, status=RunStatus.FAILED)]
    assert default_pair(by_step, model_id=1) == (4, 3)


def test_no_runs_chosen_passes_over_newer_videos_failed_runs_and_empty_runs(world):
    left, right = world.runs
    checkpoint, prompts = left.checkpoint, left.prompt_set
    video = GenerationRunFactory(checkpoint=checkpoint, prompt_set=prompts,
                                 media_kind=MediaKind.VIDEO, status=RunStatus.COMPLETED)
    failed = GenerationRunFactory(checkpoint=checkpoint, prompt_set=prompts,
                                  status=RunStatus.FAILED)
    for run in (video, failed):
        ImageFactory(run=run, prompt=world.prompts[0], seed=0)
    GenerationRunFactory(checkpoint=checkpoint, prompt_set=prompts, status=RunStatus.COMPLETED)
    response = logged_in(world.scientist).get(f"/gallery/{world.campaign.project_id}/")
    assert response.status_code == 200
    assert (response.context["left"].id, response.context["right"].id) == (left.pk, right.pk)
    assert len(response.context["config"]["items"]) == 4


def test_a_project_without_two_runs_to_compare_says_so_instead_of_requiring_a_choice():
    world = build_campaign(runs=2, prompts=1, annotators=0)
    world.runs[1].status = RunStatus.FAILED
    world.runs[1].save(update_fields=["status"])
    response = logged_in(world.scientist).get(f"/gallery/{world.campaign.project_id}/")
    assert response.status_code == 200
    assert response.context["form"].errors == {} and response.context["page"] is None
    assert 'id="gallery-no-default"' in response.content.decode()
    # Chosen by hand, the failed run is still shown.
    chosen = logged_in(world.scientist).get(f"/gallery/{world.campaign.project_id}/",
                                            {"a": world.runs[0].pk, "b": world.runs[1].pk})
    assert len(chosen.context["config"]["items"]) == 1


def test_a_run_chosen_alone_is_shown_beside_another_run_of_its_kind(world):
    # The run page's and the image page's "Gallery" links name the left run only.
    left, right = world.runs
    video = GenerationRunFactory(checkpoint=left.checkpoint, prompt_set=left.prompt_set,
                                 media_kind=MediaKind.VIDEO, status=RunStatus.COMPLETED)
    ImageFactory(run=video, prompt=world.prompts[0], seed=0)
    client = logged_in(world.scientist)
    response = client.get(f"/gallery/{world.campaign.project_id}/", {"a": right.pk})
    assert response.status_code == 200
    assert response.context["form"].errors == {}
    assert (response.context["left"].id, response.context["right"].id) == (right.pk, left.pk)
    assert len(response.context["config"]["items"]) == 4
    image_page = client.get(f"/gallery/images/{world.tasks[0].image_a_id}/").content.decode()
    assert f'?a={left.pk}"' in image_page


def test_a_run_with_no_other_run_of_its_kind_is_shown_alone_not_as_an_error():
    world = build_campaign(runs=2, prompts=3, annotators=0)
    video = GenerationRunFactory(checkpoint=world.runs[0].checkpoint,
                                 prompt_set=world.runs[0].prompt_set, name="the-only-video",
                                 media_kind=MediaKind.VIDEO, status=RunStatus.COMPLETED)
    outputs = [ImageFactory(run=video, prompt=prompt, seed=seed)
               for prompt in world.prompts for seed in (0, 1)]
    response = logged_in(world.scientist).get(f"/gallery/{world.campaign.project_id}/",
                                              {"a": video.pk})
    assert response.status_code == 200
    assert response.context["form"].errors == {} and response.context["page"] is None
    assert response.context["alone"].id == video.pk
    grid = response.context["outputs"]["page"]
    assert grid.total == 6
    assert [item.image.id for item in grid.items] == [image.pk for image in outputs]
    html = response.content.decode()
    assert 'id="gallery-alone"' in html and "This field is required" not in html
    assert f'href="/gallery/images/{outputs[0].pk}/"' in html


def test_partner_run_is_a_run_sharing_an_item_preferring_finished_runs_and_the_same_model():
    world = build_campaign(runs=2, prompts=2, annotators=0)
    first, finished = world.runs
    finished.status = RunStatus.COMPLETED
    finished.save(update_fields=["status"])
    prompts = first.prompt_set

    def run(**kwargs):
        made = GenerationRunFactory(checkpoint=first.checkpoint, prompt_set=prompts,
                                    status=kwargs.pop("status", RunStatus.COMPLETED), **kwargs)
        ImageFactory(run=made, prompt=world.prompts[0], seed=0)
        return made

    running = run(status=RunStatus.RUNNING)
    video = run(media_kind=MediaKind.VIDEO)
    failed = run(status=RunStatus.FAILED)
    other_seed = GenerationRunFactory(checkpoint=first.checkpoint, prompt_set=prompts,
                                      status=RunStatus.COMPLETED)
    ImageFactory(run=other_seed, prompt=world.prompts[0], seed=5)
    elsewhere = GenerationRunFactory(checkpoint=first.checkpoint, status=RunStatus.COMPLETED)
    ImageFactory(run=elsewhere, seed=0)
    options = selectors.gallery_run_options(project_id=first.project_id)
    assert selectors.partner_run(options, first.pk) == finished.pk  # finished first
    assert selectors.partner_run(options, running.pk) == finished.pk  # the newest finished
    assert selectors.partner_run(options, failed.pk) == finished.pk
    # A video, a run of another prompt set, a run of other seeds: nothing to pair them with.
    for alone in (video, elsewhere, other_seed):
        assert selectors.partner_run(options, alone.pk) is None
    assert selectors.partner_run(options, 99999999) is None


def test_a_run_whose_only_partner_shares_no_prompt_and_seed_is_shown_alone():
    # The run page's "Gallery" link of a run whose only other run answered another prompt
    # set: its outputs alone, never "0 pairs".
    world = build_campaign(runs=2, prompts=2, annotators=0)
    run, failed = world.runs
    failed.status = RunStatus.FAILED
    failed.save(update_fields=["status"])
    other = GenerationRunFactory(checkpoint=run.checkpoint, status=RunStatus.COMPLETED)
    ImageFactory(run=other, seed=0)
    response = logged_in(world.scientist).get(f"/gallery/{run.project_id}/", {"a": run.pk})
    assert response.status_code == 200
    assert response.context["page"] is None and response.context["alone"].id == run.pk
    assert response.context["outputs"]["page"].total == 2
    assert 'id="gallery-empty"' not in response.content.decode()


def test_a_run_shown_alone_is_paged_and_a_page_past_the_end_shows_the_last(world, monkeypatch):
    run, failed = world.runs
    failed.status = RunStatus.FAILED
    failed.save(update_fields=["status"])
    monkeypatch.setattr(selectors, "PAGE_SIZE", 3)
    client = logged_in(world.scientist)

    def outputs(page: str) -> dict:
        return client.get(f"/gallery/{run.project_id}/", {"a": run.pk, "page": page}
                          ).context["outputs"]

    first, second, past = outputs("1"), outputs("2"), outputs("99")
    assert (first["page"].total, first["page"].pages, len(first["page"].items)) == (4, 2, 3)
    assert first["prev"] is None and first["next"].endswith("page=2")
    assert len(second["page"].items) == 1 and second["next"] is None
    assert past["page"].page == 2 and past["page"].items == second["page"].items
    shown = [(o.prompt, o.seed) for o in first["page"].items + second["page"].items]
    assert len(set(shown)) == 4


def test_bad_parameters_are_shown_next_to_their_field_never_a_500(world):
    foreign = build_campaign(runs=2, prompts=1, annotators=0,
                             run_names=["foreign-zephyr", "foreign-2"]).runs[0]
    url = f"/gallery/{world.campaign.project_id}/"
    left = world.runs[0].pk
    client = logged_in(world.scientist)
    missing = client.get(url, {"a": left, "b": 999999})
    crossing = client.get(url, {"a": left, "b": foreign.pk})
    for response in (missing, crossing):
        assert response.status_code == 200
        assert "b" in response.context["form"].errors
        assert response.context["page"] is None
    assert missing.context["form"].errors == {
        "b": [e.replace(str(foreign.pk), "999999")
              for e in crossing.context["form"].errors["b"]]}
    assert foreign.name not in crossing.content.decode()
    same = client.get(url, {"a": left, "b": left})
    assert same.context["form"].errors == {"b": ["Pick a run other than the left one."]}
    for params in ({"a": "x", "b": "1e9"}, {"sort": "drop table"}, {"page": "-1"},
                   {"page": "9" * 30}, {"item": "abc"}, {"item": "99"}, {"model": "x"},
                   {"category": "\x00"}, {"outcome": "left", "criterion": "nope"},
                   # Digits int() refuses or reads as another script's: no run, no 500.
                   {"a": "\u00b2", "b": "\u0661"}, {"item": "\u00b2"}, {"model": "\u00b2"}):
        assert client.get(url, params).status_code == 200, params


def test_a_page_number_that_is_no_page_shows_page_one_and_says_so(world):
    url = f"/gallery/{world.campaign.project_id}/"
    client = logged_in(world.scientist)
    for raw in ("-1", "abc", "0", "9" * 30):
        response = client.get(url, {"a": world.runs[0].pk, "b": world.runs[1].pk, "page": raw})
        assert response.status_code == 200
        assert response.context["form"].errors == {}
        assert response.context["page"].page == 1 and len(response.context["page"].items) == 4
        html = response.content.decode()
        assert 'id="gallery-page-note"' in html and "showing page 1" in html
        assert 'name="page" value' not in html  # the next submission does not carry it
    # A run shown alone falls back the same way.
    world.runs[1].status = RunStatus.FAILED
    world.runs[1].save(update_fields=["status"])
    alone = client.get(url, {"a": world.runs[0].pk, "page": "abc"})
    assert alone.context["outputs"]["page"].page == 1
    assert 'id="gallery-page-note"' in alone.content.decode()
    plain = client.get(url, {"a": world.runs[0].pk, "b": world.runs[1].pk, "page": "1"})
    assert 'id="gallery-page-note"' not in plain.content.decode()


def test_the_image_page_shows_prompt_seed_parameters_metrics_and_votes(world):
    task = world.tasks[0]
    run = world.runs[0]
    run.parameters = {"guidance_scale": 7.5}
    run.save(update_fields=["parameters"])
    set_image_metric(task.image_a, "clip_score", 27.125)
    _lpips(task.image_a, task.image_b, 0.4321)
    cast(task, world.annotators[0], "a")
    cast(task, world.annotators[1], "b")
    cast(task, world.annotators[2], "both_bad")
    _metric_judgment(task, "b")
    response = logged_in(world.scientist).get(f"/gallery/images/{task.image_a_id}/")
    html = response.content.decode()
    assert response.status_code == 200
    assert task.prompt.text in html
    assert f'<dd id="image-seed">{task.image_a.seed}</dd>' in html
    assert "guidance_scale" in html and "7.5" in html
    assert "27.1250" in html and "0.4321" in html
    (votes,) = response.context["detail"].votes
    assert (votes.won, votes.lost, votes.tie, votes.both_bad) == (1, 1, 0, 1)
    assert votes.metric_outcomes == {"clip_score": "lost"}
    assert votes.other_id == task.image_b_id and votes.campaign == "Gallery study"
    # The other side of the same task, seen from its own page.
    (theirs,) = logged_in(world.scientist).get(
        f"/gallery/images/{task.image_b_id}/").context["detail"].votes
    assert (theirs.won, theirs.lost) == (1, 1)
    assert theirs.metric_outcomes == {"clip_score": "won"}


def test_a_metric_judge_on_random_weights_says_uncalibrated_on_the_image_page(world):
    task = world.tasks[0]
    _metric_judgment(task, "a", calibrated=False)
    response = logged_in(world.scientist).get(f"/gallery/images/{task.image_a_id}/")
    (votes,) = response.context["detail"].votes
    assert votes.metric_outcomes == {"clip_score (uncalibrated)": "won"}
    assert "clip_score (uncalibrated): won" in response.content.decode()


def test_a_metric_judge_on_random_weights_says_uncalibrated_in_the_gallery(world):
    # The image page labels such a judge "clip_score (uncalibrated)"; the pair gallery showed
    # its outcome and its disagreement with the humans unlabelled.
    left, right = world.runs
    random_judge, real_judge = world.tasks[:2]
    _metric_judgment(random_judge, "a", calibrated=False)
    cast(random_judge, world.annotator, "b")
    _metric_judgment(real_judge, "a")
    cast(real_judge, world.annotator, "b")

    response = logged_in(world.scientist).get(
        f"/gallery/{world.campaign.project_id}/", {"a": left.pk, "b": right.pk})
    html = response.content.decode()

    values = html[html.index('class="pair-values"'):]
    assert '<dd data-field="metric_outcome">left (uncalibrated)</dd>' in values
    assert '<dd data-field="metric_disagreement">1.00 (uncalibrated)</dd>' in values
    rows = html[html.index('id="gallery-list"'):].split("<tr data-index=")[1:]
    assert '1.00 <span class="uncal">uncalibrated</span>' in rows[0]
    assert "1.00</td>" in rows[1] and "uncal" not in rows[1]
    items = response.context["config"]["items"]
    assert [(item["metric_outcome"], item["metric_calibrated"]) for item in items[:3]] == [
        ("left", False), ("left", True), (None, None)]
    (first, second, *_) = gallery_page(project_id=world.campaign.project_id,
                                       query=GalleryQuery(left=left.pk, right=right.pk)).items
    assert (first.metric_calibrated, second.metric_calibrated) == (False, True)


def _rank(world, annotator, *images) -> None:
    """``annotator`` ranks their next best-of-K task through the rating service: ``images``
    best first, as slots of the grid they were shown."""
    payload = rate_next(annotator=annotator, campaign_id=world.campaign.pk)
    lease = Lease.objects.get(pk=payload["lease"])
    position = dict(TaskImage.objects.filter(task_id=lease.task_id)
                    .values_list("image_id", "position"))
    slots = [lease.order.index(position[image.pk]) for image in images]
    rate_vote(annotator=annotator, campaign_id=world.campaign.pk,
              vote=Vote(uuid.uuid4(), lease.pk, {}, rankings={"overall": slots}))


def _images_by_position(world) -> list:
    (task,) = world.tasks
    return [member.image for member in task.members.select_related("image")]


def test_the_image_page_counts_best_of_k_picks_of_the_image():
    world = build_campaign(runs=3, prompts=1, annotators=4, task_kind=TaskKind.BEST_OF_K, k=3,
                           judgments_per_pair=4, name="Pick the best")
    first, _, last = _images_by_position(world)  # ``last`` is neither image A nor image B
    a1, a2, a3, excluded = world.annotators
    _rank(world, a1, last)
    _rank(world, a2, last)
    _rank(world, a3, first)
    _rank(world, excluded, first)
    AnnotatorFlag.objects.create(campaign=world.campaign, annotator=excluded, excluded=True)
    client = logged_in(world.scientist)
    response = client.get(f"/gallery/images/{last.pk}/")
    assert response.status_code == 200
    detail = response.context["detail"]
    assert detail.votes == []  # a best-of-K vote has no single opponent to have won against
    (picks,) = detail.rankings
    assert (picks.campaign, picks.criterion, picks.k) == ("Pick the best", "overall", 3)
    assert (picks.total, picks.best, picks.ranks, picks.unranked) == (3, 2, (2, 0, 0), 1)
    assert picks.mean_rank is None  # an image not picked has no known place
    html = response.content.decode()
    assert 'id="image-rankings"' in html and "2 (67%)" in html and "not placed: 1" in html
    assert "No votes on this image yet." not in html
    # Image A of the same task: the page that used to fail with KeyError: 'ranked'.
    theirs = client.get(f"/gallery/images/{first.pk}/")
    assert theirs.status_code == 200
    (picks,) = theirs.context["detail"].rankings
    assert (picks.total, picks.best, picks.unranked) == (3, 1, 2)


def test_the_image_page_gives_the_places_of_a_rank_all_campaign():
    world = build_campaign(runs=3, prompts=1, annotators=2, task_kind=TaskKind.BEST_OF_K, k=3,
                           rank_all=True)
    first, middle, last = _images_by_position(world)
    _rank(world, world.annotators[0], first, middle)  # the last place is forced: ``last``
    _rank(world, world.annotators[1], first, last, middle)
    response = logged_in(world.scientist).get(f"/gallery/images/{middle.pk}/")
    assert response.status_code == 200
    (places,) = response.context["detail"].rankings
    assert (places.ranks, places.unranked, places.best) == ((0, 1, 1), 0, 0)
    assert places.mean_rank == pytest.approx(2.5)
    assert "1: 0 · 2: 1 · 3: 1" in response.content.decode()


def test_the_image_page_links_the_original_for_scientists_only(world):
    task = world.tasks[0]
    page = logged_in(world.scientist).get(f"/gallery/images/{task.image_a_id}/")
    original = page.context["detail"].original_url
    assert original.startswith("/media/blobs/")
    assert logged_in(world.scientist).get(original).status_code == 200
    assert logged_in(world.annotator).get(original).status_code == 404
    assert Client().get(original).status_code == 404


def test_the_dashboards_link_to_the_gallery(world):
    gallery = f"/gallery/{world.campaign.project_id}/"
    model = world.runs[0].checkpoint.model_id
    client = logged_in(world.scientist)
    for url, link in (("/dashboard/", f"{gallery}?model={model}"),
                      (f"/dashboard/models/{model}/", f"{gallery}?model={model}"),
                      (f"/dashboard/campaigns/{world.campaign.pk}/", gallery)):
        assert f'href="{link}"' in client.get(url).content.decode(), url


def test_a_project_without_runs_says_so(project, scientist):
    response = logged_in(scientist).get(f"/gallery/{project.pk}/")
    assert response.status_code == 200
    assert "This project has no runs yet." in response.content.decode()
    assert response.context["form"].errors == {}
