import pytest

from evalhub.campaigns.building.gold import gold_task_add
from evalhub.campaigns.building.pairs import PairDistances
from evalhub.campaigns.models import CampaignStatus
from evalhub.campaigns.services import campaign_create
from evalhub.core.errors import EvalHubError, InvalidFields
from tests.builders import build_campaign
from tests.factories import GenerationRunFactory, ImageFactory, PromptFactory, png_bytes

pytestmark = pytest.mark.django_db


def test_balanced_policy_pairs_every_run_pair_on_every_prompt_and_seed():
    world = build_campaign(runs=3, prompts=4, seeds=2, judgments_per_pair=3)
    tasks = world.campaign.tasks.all()
    assert tasks.count() == 3 * 4 * 2  # C(3,2) run pairs x prompts x seeds
    assert world.campaign.status == CampaignStatus.ACTIVE
    for task in tasks:
        assert task.run_a_id < task.run_b_id
        assert task.image_a.prompt_id == task.image_b.prompt_id == task.prompt_id
        assert task.image_a.seed == task.image_b.seed
        assert task.judgments_needed == 3


def test_a_prompt_category_restricts_the_pairs():
    world = build_campaign(runs=2, prompts=4, prompt_category="counting")
    assert {t.prompt.category for t in world.campaign.tasks.all()} == {"counting"}
    assert world.campaign.tasks.count() == 2


def test_near_identical_pairs_are_skipped_when_a_distance_is_given():
    world = build_campaign(runs=2, prompts=4, min_lpips_distance=0.1)
    from evalhub.campaigns.building.pairs import campaign_build_tasks

    world.campaign.tasks.all().delete()
    created = campaign_build_tasks(campaign=world.campaign, pair_distance=lambda pairs: (
        PairDistances([0.05, 0.5, 0.01, 0.3], backbone_id="lpips:alex/v0.1", calibrated=True)))
    assert created == 2
    assert world.campaign.build_report["skipped_near_identical"] == 2
    assert (world.campaign.build_report["lpips_filter"],
            world.campaign.build_report["lpips_uncalibrated"]) == (True, False)
    assert sorted(world.campaign.tasks.values_list("lpips_distance", flat=True)) == [0.3, 0.5]


def test_a_pair_showing_the_same_file_twice_is_never_served():
    # Two checkpoints that drew the very same picture: an annotator could only answer "tie".
    world = build_campaign(runs=2, prompts=3)
    from evalhub.campaigns.building.pairs import campaign_build_tasks

    same = world.campaign.tasks.order_by("pk").first()
    same.image_b.blob = same.image_a.blob
    same.image_b.save(update_fields=["blob"])
    world.campaign.tasks.all().delete()

    assert campaign_build_tasks(campaign=world.campaign) == 2
    assert not world.campaign.tasks.filter(image_a=same.image_a, image_b=same.image_b).exists()
    assert world.campaign.build_report["skipped_identical"] == 1
    assert world.campaign.build_report["skipped_near_identical"] == 1


def test_a_pair_campaign_whose_every_pair_is_one_file_is_not_opened_empty():
    # Both runs drew the very same picture for every prompt: no pair is worth a vote.
    world = build_campaign(runs=2, prompts=3,
                           image_bytes=lambda prompt, run: png_bytes(color=(50 * prompt, 9, 9)))
    campaign = world.campaign
    assert campaign.tasks.count() == 0
    assert campaign.status == CampaignStatus.FAILED
    assert campaign.build_report["skipped_identical"] == 3
    assert campaign.build_report["error"] == (
        "Nothing to ask annotators, so the campaign was not opened. 3 pairs not asked: two runs "
        "made the very same file.")


def test_a_campaign_whose_pairs_are_all_too_alike_is_not_opened_empty():
    world = build_campaign(runs=2, prompts=2, min_lpips_distance=0.1)
    from evalhub.campaigns.building.pairs import campaign_build_tasks

    world.campaign.tasks.all().delete()
    world.campaign.status = CampaignStatus.BUILDING
    assert campaign_build_tasks(campaign=world.campaign, pair_distance=lambda pairs: (
        PairDistances([0.01, 0.02], backbone_id="lpips:alex/v0.1", calibrated=True))) == 0
    world.campaign.refresh_from_db()
    assert world.campaign.status == CampaignStatus.FAILED
    assert "2 pairs not asked: too alike to judge" in world.campaign.build_report["error"]


def test_building_twice_creates_no_duplicates():
    world = build_campaign(runs=2, prompts=2)
    from evalhub.campaigns.building.pairs import campaign_build_tasks

    assert campaign_build_tasks(campaign=world.campaign) == 0
    assert world.campaign.tasks.count() == 2
    # The report of the second build says what the campaign holds, not only what it added.
    world.campaign.refresh_from_db()
    assert (world.campaign.build_report["tasks_created"],
            world.campaign.build_report["tasks"]) == (0, 2)


@pytest.mark.parametrize(("kwargs", "message"), [
    ({"criteria": ["beauty"]}, "Unknown criteria"),
    ({"gold_rate": 0.9}, "gold_rate"),
    ({"judgments_per_pair": 0}, "judgments_per_pair"),
    ({"gold_rate": float("nan")}, "gold_rate"),
    ({"lease_seconds": 9}, "lease_seconds must be between 10 and 86400"),
    ({"lease_seconds": 86401}, "lease_seconds must be between 10 and 86400"),
    ({"min_lpips_distance": -0.1}, "min_lpips_distance"),
    ({"min_lpips_distance": float("nan")}, "min_lpips_distance"),
    ({"min_lpips_distance": float("inf")}, "min_lpips_distance.*from 0 to 1"),
    ({"min_lpips_distance": 1e300}, "min_lpips_distance.*from 0 to 1"),
    ({"min_lpips_distance": 1.01}, "min_lpips_distance.*from 0 to 1"),
])
def test_invalid_campaign_settings_are_refused(kwargs, message):
    world = build_campaign(runs=2, prompts=1)
    with pytest.raises(EvalHubError, match=message):
        campaign_create(project=world.campaign.project, name="other", runs=world.runs, **kwargs)


def test_a_campaign_needs_two_runs_of_one_prompt_set():
    world = build_campaign(runs=2, prompts=1)
    with pytest.raises(EvalHubError, match="at least two runs"):
        campaign_create(project=world.campaign.project, name="x", runs=world.runs[:1])
    stranger = GenerationRunFactory(project=world.campaign.project,
                                    checkpoint=world.runs[0].checkpoint)
    with pytest.raises(EvalHubError, match="share one prompt set"):
        campaign_create(project=world.campaign.project, name="y", runs=[world.runs[0], stranger])


def test_overall_is_always_asked_first():
    world = build_campaign(runs=2, prompts=1, criteria=["artifacts"])
    assert world.campaign.criteria == ["overall", "artifacts"]


def test_gold_pairs_carry_a_known_answer_and_need_no_judgments():
    world = build_campaign(runs=2, prompts=1)
    task = world.campaign.tasks.get()
    gold = gold_task_add(campaign=world.campaign, image_a=task.image_a, image_b=task.image_b,
                         answer="a")
    assert gold.pk == task.pk and gold.is_gold and gold.gold_answer == "a"


def test_a_gold_pair_of_one_image_with_itself_is_refused_and_nothing_is_stored():
    world = build_campaign(runs=2, prompts=1)
    image = world.campaign.tasks.get().image_a
    with pytest.raises(EvalHubError, match="image_a and image_b are the same image"):
        gold_task_add(campaign=world.campaign, image_a=image, image_b=image, answer="tie")
    assert not world.campaign.tasks.filter(is_gold=True).exists()
    assert world.campaign.tasks.count() == 1


def test_lpips_distances_are_computed_with_the_metrics_package_and_stored(monkeypatch):
    monkeypatch.setenv("EVALHUB_RANDOM_WEIGHTS", "1")
    from evalhub.campaigns.building.similarity import lpips_pair_distances
    from evalhub.evaluation.models import PairMetric

    world = build_campaign(runs=2, prompts=2)
    pairs = [(t.image_a, t.image_b) for t in world.campaign.tasks.all()]
    first = lpips_pair_distances(pairs)
    assert len(first.values) == 2 and all(d > 0 for d in first.values)
    assert not first.calibrated
    assert PairMetric.objects.filter(calibrated=False).count() == 2
    assert lpips_pair_distances(pairs) == first  # served from the stored rows


def test_a_prompt_category_that_no_prompt_of_the_runs_has_is_refused_naming_the_ones_there():
    # "Café" for "café" used to be stored, and its build then failed on "no images on common
    # prompts" without a word about the category, the campaign's name taken.
    world = build_campaign(runs=2, prompts=2)
    project = world.campaign.project
    with pytest.raises(InvalidFields) as refused:
        campaign_create(project=project, name="x", runs=world.runs, prompt_category="Colour")
    assert refused.value.fields == {"prompt_category": [
        "No prompt of the runs' prompt set has the category 'Colour'; its categories: "
        "'colour', 'counting'."]}
    assert not project.campaigns.filter(name="x").exists()


def test_the_refusal_of_an_unknown_category_lists_at_most_twenty_categories():
    world = build_campaign(runs=2, prompts=1)
    for index in range(25):
        PromptFactory(prompt_set=world.runs[0].prompt_set, category=f"c{index:02}")
    with pytest.raises(EvalHubError) as refused:
        campaign_create(project=world.campaign.project, name="x", runs=world.runs,
                        prompt_category="nope")
    listed = ", ".join(repr(f"c{index:02}") for index in range(20))
    assert refused.value.message == (
        "No prompt of the runs' prompt set has the category 'nope'; its categories: "
        f"{listed} (the first 20 of 26).")


def test_a_category_on_a_prompt_set_without_categories_is_refused_saying_so():
    world = build_campaign(runs=2, prompts=1)
    world.runs[0].prompt_set.prompts.update(category="")
    with pytest.raises(EvalHubError, match="'colour'; its prompts have no category"):
        campaign_create(project=world.campaign.project, name="x", runs=world.runs,
                        prompt_category="colour")


def test_a_category_whose_prompts_the_runs_did_not_answer_fails_the_build_naming_it():
    world = build_campaign(runs=2, prompts=2)
    stray = GenerationRunFactory(checkpoint=world.runs[0].checkpoint,
                                 prompt_set=world.runs[0].prompt_set, name="stray")
    ImageFactory(run=stray, prompt=world.prompts[0], seed=0)  # a "colour" prompt only
    campaign = campaign_create(project=world.campaign.project, name="x",
                               runs=[world.runs[0], stray], prompt_category="counting",
                               build_now=True)
    campaign.refresh_from_db()
    assert campaign.status == CampaignStatus.FAILED
    assert campaign.build_report["error"] == (
        "The runs have no images on common prompts of the category 'counting'. No image on "
        "the campaign's prompts: 'stray'.")
