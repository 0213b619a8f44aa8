"""Best-of-K campaigns: K images of one prompt per task, stored as rankings in canonical
positions, with the pair tasks' guarantees (idempotent votes, undo, skip, report)."""

import uuid

import pytest

from evalhub.campaigns.building.pairs import campaign_build_tasks
from evalhub.campaigns.models import (
    CampaignStatus,
    ComparisonTask,
    ImageReport,
    Judgment,
    Lease,
    LeaseStatus,
    Outcome,
    TaskImage,
    TaskKind,
)
from evalhub.campaigns.serving.rating import Vote, rate_next, rate_undo, rate_vote, remaining
from evalhub.campaigns.serving.voting import UNDO_RETIRED, Undone
from evalhub.core.errors import EvalHubError
from tests.builders import build_campaign
from tests.factories import png_bytes

pytestmark = pytest.mark.django_db

SECRET_NAMES = ["sdxl-secret-finetune", "flux-hidden-ablation", "kandinsky-private",
                "pixart-internal"]


def _world(**kwargs):
    options = {"runs": 4, "prompts": 3, "task_kind": TaskKind.BEST_OF_K, "k": 4,
               "judgments_per_pair": 2, **kwargs}
    return build_campaign(**options)


def _url(world, suffix=""):
    return f"/api/v1/rate/{world.campaign.pk}/{suffix}"


def _vote(api, world, task, slots, client_id=None):
    return api.post(_url(world, "votes/"), {
        "client_id": str(client_id or uuid.uuid4()), "lease": task["lease"],
        "rankings": {"overall": slots}, "latency_ms": 900}, format="json")


# --- building -------------------------------------------------------------------------------


def test_a_best_of_4_campaign_over_4_runs_has_one_task_per_prompt_with_one_image_per_run():
    world = _world()
    tasks = world.tasks
    assert len(tasks) == 3
    for task in tasks:
        members = list(task.members.order_by("position"))
        assert [m.position for m in members] == [0, 1, 2, 3]
        # Canonical positions follow the run ids; every image answers the task's prompt.
        assert [m.run_id for m in members] == sorted(r.pk for r in world.runs)
        assert {m.image.prompt_id for m in members} == {task.prompt_id}
        assert (task.image_a_id, task.image_b_id) == (members[0].image_id, members[1].image_id)


def test_with_more_runs_than_k_every_run_is_shown_on_every_prompt():
    world = _world(runs=5, k=3, prompts=2)
    for prompt in world.prompts:
        tasks = [t for t in world.tasks if t.prompt_id == prompt.pk]
        assert len(tasks) == 2  # ceil(5 / 3)
        shown = {m.run_id for t in tasks for m in t.members.all()}
        assert shown == {r.pk for r in world.runs}
        assert all(t.members.count() == 3 for t in tasks)


def test_a_set_showing_one_file_twice_is_never_served():
    # Two checkpoints drew the very same picture: which of the two is better is no judgment.
    world = _world()
    first = world.tasks[0]
    members = list(first.members.order_by("position"))
    twin = members[1].image
    twin.blob = members[0].image.blob
    twin.save(update_fields=["blob"])
    world.campaign.tasks.all().delete()

    assert campaign_build_tasks(campaign=world.campaign) == 2
    assert not world.campaign.tasks.filter(prompt_id=first.prompt_id).exists()
    world.campaign.refresh_from_db()
    assert world.campaign.build_report["skipped_identical"] == 1
    assert world.campaign.build_report["k_sets"] == 3


def _show_one_file_twice_and_migrate(task):
    """Make two of the built task's runs the makers of one file, as before such sets were
    skipped, and run migration 0015 over it."""
    from importlib import import_module

    from django.apps import apps

    members = list(task.members.order_by("position"))
    twin = members[1].image
    twin.blob = members[0].image.blob
    twin.save(update_fields=["blob"])
    import_module("evalhub.campaigns.migrations.0015_retire_k_sets_showing_a_file_twice"
                  ).retire_sets_showing_a_file_twice(apps, None)


def _served(api, world, annotator):
    """The tasks the annotator is served, walking the campaign by skipping each one."""
    api.force_login(annotator)
    served = set()
    while True:
        payload = api.post(_url(world, "next/"), {}, format="json").json()
        if payload.get("done") or "lease" not in payload:
            return served
        served.add(Lease.objects.get(pk=payload["lease"]).task_id)
        api.post(_url(world, f"leases/{payload['lease']}/skip/"), {}, format="json")


def test_a_set_built_before_with_one_file_twice_is_retired_by_the_migration(api):
    world = _world()
    first, other = world.tasks[0], world.tasks[1]
    _show_one_file_twice_and_migrate(first)
    first.refresh_from_db()
    other.refresh_from_db()
    assert (first.judgments_needed, other.judgments_needed) == (0, 2)
    assert _served(api, world, world.annotators[0]) == {task.pk for task in world.tasks[1:]}


def test_a_vote_undone_on_a_retired_set_leaves_it_retired(api):
    # A set showing one file twice held a vote when the migration retired it; its voter takes
    # the vote back. The set stays retired: asked of nobody, the voter included.
    world = _world(annotators=3)
    voter = world.annotators[0]
    api.force_login(voter)
    task = api.post(_url(world, "next/"), {}, format="json").json()
    client_id = uuid.uuid4()
    assert _vote(api, world, task, [0], client_id).status_code == 201
    retired = Lease.objects.get(pk=task["lease"]).task
    _show_one_file_twice_and_migrate(retired)
    retired.refresh_from_db()
    assert (retired.judgments_count, retired.judgments_needed) == (1, 1)

    undone = api.post(_url(world, "votes/undo/"), {"client_id": str(client_id)}, format="json")
    assert undone.status_code == 200, undone.content
    assert undone.json() == {"retracted": True, "detail": UNDO_RETIRED}
    assert Judgment.objects.get(client_id=client_id).retracted_at is not None
    retired.refresh_from_db()
    assert (retired.judgments_count, retired.judgments_needed) == (0, 0)
    assert not Lease.objects.filter(task=retired, status=LeaseStatus.ACTIVE).exists()
    for annotator in world.annotators:
        assert retired.pk not in _served(api, world, annotator)
    # The campaign no longer counts a judgment wanted on it.
    assert remaining(world.campaign.pk) == 2 * (len(world.tasks) - 1)


def _voted_then_undone(world) -> Undone:
    """The annotator's first set ranked (its slot 1 best) through the services, then undone."""
    payload = rate_next(annotator=world.annotator, campaign_id=world.campaign.pk)
    client_id = uuid.uuid4()
    rate_vote(annotator=world.annotator, campaign_id=world.campaign.pk,
              vote=Vote(client_id, uuid.UUID(payload["lease"]), {},
                        rankings={"overall": [1]}))
    return rate_undo(annotator=world.annotator, campaign=world.campaign, client_id=client_id)


def test_a_vote_undone_on_a_set_showing_distinct_files_makes_it_wanted_again():
    world = _world()
    undone = _voted_then_undone(world)
    task = ComparisonTask.objects.get(pk=undone.lease.task_id)
    assert (task.judgments_count, task.judgments_needed) == (0, 2)


def test_a_campaign_whose_every_set_holds_a_file_twice_is_not_opened_empty():
    # Two checkpoints with identical parameters drew byte-identical images for every prompt:
    # every K-set holds a file twice, so the build leaves nothing to ask.
    world = _world(image_bytes=lambda prompt, run: png_bytes(color=(40 * prompt, 60 * max(run, 1),
                                                                    0)))
    campaign = world.campaign
    campaign.refresh_from_db()
    assert campaign.tasks.count() == 0
    assert campaign.status == CampaignStatus.FAILED  # never "active" with nothing to rate
    assert campaign.build_report["skipped_identical"] == campaign.build_report["k_sets"] == 3
    assert campaign.build_report["error"] == (
        "Nothing to ask annotators, so the campaign was not opened. 3 sets not asked: two runs "
        "made the very same file.")


def test_rebuilding_creates_nothing_twice():
    world = _world(runs=5, k=3)
    before = (ComparisonTask.objects.count(), TaskImage.objects.count())
    assert campaign_build_tasks(campaign=world.campaign) == 0
    assert (ComparisonTask.objects.count(), TaskImage.objects.count()) == before


@pytest.mark.parametrize(("kwargs", "message"), [
    ({"k": 2}, "between 3 and 6"),
    ({"k": 7}, "between 3 and 6"),
    ({"k": 5}, "has 4 runs"),
    ({"gold_rate": 0.1}, "no gold tasks"),
    ({"criteria": ["overall", "aesthetics"]}, "one question"),
    ({"task_kind": TaskKind.PAIR, "rank_all": True}, "best-of-K tasks only"),
])
def test_creation_refuses_what_best_of_k_cannot_do(kwargs, message):
    with pytest.raises(EvalHubError, match=message):
        _world(**kwargs)


def test_the_campaign_api_creates_a_best_of_k_campaign(api):
    world = _world()
    api.force_login(world.scientist)
    response = api.post("/api/v1/campaigns/", {
        "project": world.campaign.project_id, "name": "bok via api",
        "runs": [r.pk for r in world.runs], "task_kind": "best_of_k", "k": 3,
        "rank_all": True}, format="json")
    assert response.status_code == 201, response.content
    body = response.json()
    assert (body["task_kind"], body["k"], body["rank_all"]) == ("best_of_k", 3, True)
    refused = api.post("/api/v1/campaigns/", {
        "project": world.campaign.project_id, "name": "too many",
        "runs": [r.pk for r in world.runs], "task_kind": "best_of_k", "k": 9}, format="json")
    assert refused.status_code == 400
    assert "between 3 and 6" in refused.json()["detail"]


# --- serving and votes ----------------------------------------------------------------------


def test_the_payload_lists_k_anonymous_images_in_the_leases_random_order(api):
    world = _world(run_names=SECRET_NAMES)
    api.force_login(world.annotator)
    info = api.get(_url(world)).json()
    assert (info["task_kind"], info["k"], info["rank_all"]) == ("best_of_k", 4, False)
    task = api.post(_url(world, "next/"), {}, format="json").json()
    assert task["kind"] == "best_of_k"
    assert "left" not in task and "right" not in task
    lease = Lease.objects.get(pk=task["lease"])
    assert sorted(lease.order) == [0, 1, 2, 3]
    members = {m.position: m.image for m in TaskImage.objects.filter(task_id=lease.task_id)
               .select_related("image__blob")}
    from evalhub.blobs.views import display_url
    assert [i["url"] for i in task["images"]] == [
        display_url(members[p].blob, world.campaign.project_id) for p in lease.order]


def test_orders_differ_between_leases():
    world = _world(prompts=12, judgments_per_pair=1)
    orders = {tuple(Lease.objects.get(pk=rate_next(annotator=world.annotator,
                                                  campaign_id=world.campaign.pk,
                                                  exclude=set(Lease.objects.values_list(
                                                      "pk", flat=True)))["lease"]).order)
              for _ in range(2)}
    # Two leases at most at once; vote them away and take more to see several orders.
    for _ in range(8):
        lease = Lease.objects.filter(annotator=world.annotator,
                                     status=LeaseStatus.ACTIVE).first()
        rate_vote(annotator=world.annotator, campaign_id=world.campaign.pk,
                  vote=Vote(uuid.uuid4(), lease.pk, {}, rankings={"overall": [0]}))
        payload = rate_next(annotator=world.annotator, campaign_id=world.campaign.pk)
        orders.add(tuple(Lease.objects.get(pk=payload["lease"]).order))
    assert len(orders) > 1  # 24 permutations: 10 leases all alike has probability ~1e-12


def test_a_pick_is_stored_as_the_canonical_position_of_the_slot(api):
    world = _world()
    api.force_login(world.annotator)
    task = api.post(_url(world, "next/"), {}, format="json").json()
    lease = Lease.objects.get(pk=task["lease"])
    response = _vote(api, world, task, [2])
    assert response.status_code == 201, response.content
    judgment = Judgment.objects.get()
    assert judgment.outcome == Outcome.RANKED
    assert judgment.ranking == [lease.order[2]]
    assert judgment.shown_order == lease.order
    assert judgment.latency_ms == 900
    assert Lease.objects.get(pk=lease.pk).status == LeaseStatus.COMPLETED
    assert ComparisonTask.objects.get(pk=lease.task_id).judgments_count == 1


def test_rank_all_stores_the_full_ranking_and_fills_in_the_forced_last_pick(api):
    world = _world(rank_all=True)
    api.force_login(world.annotator)
    task = api.post(_url(world, "next/"), {}, format="json").json()
    lease = Lease.objects.get(pk=task["lease"])
    assert _vote(api, world, task, [3, 0, 2]).status_code == 201
    assert Judgment.objects.get().ranking == [lease.order[s] for s in (3, 0, 2, 1)]


@pytest.mark.parametrize(("rank_all", "slots"), [
    (False, [0, 1]), (False, [4]), (True, [0]), (True, [1, 1, 2]),
])
def test_malformed_rankings_are_refused_and_store_nothing(api, rank_all, slots):
    world = _world(rank_all=rank_all)
    api.force_login(world.annotator)
    task = api.post(_url(world, "next/"), {}, format="json").json()
    response = _vote(api, world, task, slots)
    assert response.status_code == 400
    assert Judgment.objects.count() == 0


def test_a_pair_answer_on_a_best_of_k_task_and_a_ranking_on_a_pair_are_refused(api):
    world = _world()
    api.force_login(world.annotator)
    task = api.post(_url(world, "next/"), {}, format="json").json()
    response = api.post(_url(world, "votes/"), {
        "client_id": str(uuid.uuid4()), "lease": task["lease"],
        "answers": {"overall": "left"}}, format="json")
    assert response.status_code == 400 and "rankings" in response.json()["detail"]
    pairs = build_campaign(runs=2)
    api.force_login(pairs.annotator)
    task = api.post(f"/api/v1/rate/{pairs.campaign.pk}/next/", {}, format="json").json()
    response = api.post(f"/api/v1/rate/{pairs.campaign.pk}/votes/", {
        "client_id": str(uuid.uuid4()), "lease": task["lease"],
        "rankings": {"overall": [0]}}, format="json")
    assert response.status_code == 400 and "answers" in response.json()["detail"]
    assert Judgment.objects.count() == 0


def test_a_resent_vote_is_stored_once_and_a_changed_one_under_the_same_id_refused(api):
    world = _world()
    api.force_login(world.annotator)
    task = api.post(_url(world, "next/"), {}, format="json").json()
    client_id = uuid.uuid4()
    first = _vote(api, world, task, [1], client_id)
    again = _vote(api, world, task, [1], client_id)
    changed = _vote(api, world, task, [2], client_id)
    assert (first.status_code, again.status_code, changed.status_code) == (201, 200, 409)
    assert Judgment.objects.count() == 1
    lease = Lease.objects.get(pk=task["lease"])
    assert ComparisonTask.objects.get(pk=lease.task_id).judgments_count == 1


def test_undo_retracts_the_ranking_and_leases_the_task_back_in_the_same_order(api):
    world = _world()
    api.force_login(world.annotator)
    task = api.post(_url(world, "next/"), {}, format="json").json()
    lease = Lease.objects.get(pk=task["lease"])
    client_id = uuid.uuid4()
    _vote(api, world, task, [0], client_id)
    undone = api.post(_url(world, "votes/undo/"), {"client_id": str(client_id)}, format="json")
    assert undone.status_code == 201, undone.content
    again = undone.json()
    # The same K images in the same places: the annotator sees what they voted on.
    assert [i["url"] for i in again["images"]] == [i["url"] for i in task["images"]]
    assert Judgment.objects.get().retracted_at is not None
    assert ComparisonTask.objects.get(pk=lease.task_id).judgments_count == 0
    assert _vote(api, world, again, [3]).status_code == 201
    live = Judgment.objects.get(retracted_at__isnull=True)
    assert live.ranking == [lease.order[3]]


def test_undo_through_the_service_then_revote_counts_once():
    world = _world()
    lease = _voted_then_undone(world).lease
    rate_vote(annotator=world.annotator, campaign_id=world.campaign.pk,
              vote=Vote(uuid.uuid4(), lease.pk, {}, rankings={"overall": [2]}))
    task = ComparisonTask.objects.get(pk=lease.task_id)
    assert task.judgments_count == 1
    assert Judgment.objects.filter(task=task, retracted_at__isnull=True).count() == 1


def test_skip_and_report_by_slot(api):
    world = _world()
    api.force_login(world.annotator)
    first = api.post(_url(world, "next/"), {}, format="json").json()
    assert api.post(_url(world, f"leases/{first['lease']}/skip/")).status_code == 200
    second = api.post(_url(world, "next/"), {}, format="json").json()
    assert second["lease"] != first["lease"]
    reported = api.post(_url(world, f"leases/{second['lease']}/report/"),
                        {"side": "2", "note": "broken"}, format="json")
    assert reported.status_code == 200, reported.content
    lease = Lease.objects.get(pk=second["lease"])
    report = ImageReport.objects.get()
    assert report.image_id == TaskImage.objects.get(task_id=lease.task_id,
                                                    position=lease.order[2]).image_id
    third = api.post(_url(world, "next/"), {}, format="json").json()
    bad = api.post(_url(world, f"leases/{third['lease']}/report/"), {"side": "left"},
                   format="json")
    assert bad.status_code == 400


def test_each_task_collects_its_judgments_from_distinct_annotators():
    world = _world(annotators=3, prompts=2, judgments_per_pair=2)
    for annotator in world.annotators:
        while not (payload := rate_next(annotator=annotator,
                                        campaign_id=world.campaign.pk)).get("done"):
            rate_vote(annotator=annotator, campaign_id=world.campaign.pk,
                      vote=Vote(uuid.uuid4(), uuid.UUID(payload["lease"]), {},
                                rankings={"overall": [0]}))
    for task in world.tasks:
        voters = list(task.judgments.values_list("annotator_id", flat=True))
        assert len(voters) == 2 == len(set(voters)) == task.judgments_count


# --- the scientists' campaign form ----------------------------------------------------------


def _form_body(world, **changes):
    body = {"name": "Best of three", "runs": [r.pk for r in world.runs],
            "criteria": ["overall"], "pair_policy": "balanced", "judgments_per_pair": "2",
            "gold_rate": "0", "lease_seconds": "120", "open_when_built": "on",
            "task_kind": "best_of_k", "k": "3", "rank_all": "on"}
    body.update(changes)
    return body


def test_the_campaign_form_creates_a_best_of_k_campaign_and_its_page_says_so(client):
    world = _world()
    client.force_login(world.scientist)
    url = f"/projects/{world.campaign.project_id}/campaigns/new/"
    response = client.post(url, _form_body(world))
    assert response.status_code == 302, response.content.decode()[:2000]
    campaign = world.campaign.project.campaigns.get(name="Best of three")
    assert (campaign.task_kind, campaign.k, campaign.rank_all) == ("best_of_k", 3, True)
    page = client.get(response["Location"]).content.decode()
    assert "best of 3, rank all" in page


def test_the_campaign_form_puts_a_refused_k_next_to_its_field(client):
    world = _world()
    client.force_login(world.scientist)
    url = f"/projects/{world.campaign.project_id}/campaigns/new/"
    response = client.post(url, _form_body(world, k="", rank_all=""))
    assert response.status_code == 400
    assert "between 3 and 6" in " ".join(response.context["form"].errors["k"])
    response = client.post(url, _form_body(world, gold_rate="0.2"))
    assert response.status_code == 400
    assert "no gold tasks" in " ".join(response.context["form"].errors["gold_rate"])


def test_the_campaign_form_shows_every_refusal_next_to_its_field_in_one_answer(client, api):
    # One per submit before: gold rate, then the LPIPS filter, then the pair policy.
    world = _world()
    client.force_login(world.scientist)
    url = f"/projects/{world.campaign.project_id}/campaigns/new/"
    response = client.post(url, _form_body(world, gold_rate="0.2", min_lpips_distance="0.1",
                                           pair_policy="uncertainty"))
    assert response.status_code == 400
    errors = response.context["form"].errors
    assert "no gold tasks" in " ".join(errors["gold_rate"])
    assert "compares pairs" in " ".join(errors["min_lpips_distance"])
    assert "balanced pair policy" in " ".join(errors["pair_policy"])
    api.force_login(world.scientist)
    answer = api.post("/api/v1/campaigns/", {
        "project": world.campaign.project_id, "name": "x", "runs": [r.pk for r in world.runs],
        "task_kind": "best_of_k", "k": 3, "gold_rate": 0.2, "pair_policy": "uncertainty"},
        format="json")
    assert answer.status_code == 400
    assert [line.split(":")[0] for line in answer.json()["errors"]] == ["gold_rate",
                                                                        "pair_policy"]
    assert not world.campaign.project.campaigns.filter(name__in=["x", "Best of three"]).exists()


def test_every_page_and_report_of_a_best_of_k_campaign_with_votes_answers(client, api):
    world = _world(annotators=2, judgments_per_pair=2)
    for annotator in world.annotators:
        for slot in (0, 3):
            payload = rate_next(annotator=annotator, campaign_id=world.campaign.pk)
            rate_vote(annotator=annotator, campaign_id=world.campaign.pk,
                      vote=Vote(uuid.uuid4(), uuid.UUID(payload["lease"]), {},
                                rankings={"overall": [slot]}))
    campaign = world.campaign
    client.force_login(world.scientist)
    for url in (f"/campaigns/{campaign.pk}/manage/", f"/campaigns/{campaign.pk}/manage/progress/",
                f"/dashboard/campaigns/{campaign.pk}/", f"/campaigns/{campaign.pk}/export/",
                f"/gallery/{campaign.project_id}/"):
        assert client.get(url).status_code == 200, url
    api.force_login(world.scientist)
    for url in (f"/api/v1/campaigns/{campaign.pk}/", f"/api/v1/campaigns/{campaign.pk}/quality/",
                f"/api/v1/campaigns/{campaign.pk}/leaderboard/"):
        assert api.get(url).status_code == 200, url


def test_the_rating_page_of_a_best_of_k_campaign_is_the_grid_with_its_instructions(client):
    world = _world(k=3, runs=3, instructions="Pick the sharpest image.")
    client.force_login(world.annotator)
    page = client.get(f"/rate/{world.campaign.pk}/").content.decode()
    assert page.count('class="pane grid-pane"') == 3
    assert 'src="/static/js/rate.js"' in page and "rate_kwise" not in page  # one controller
    assert "Pick the sharpest image." in page
    pairs = build_campaign(runs=2)
    client.force_login(pairs.annotator)
    assert "js/rate.js" in client.get(f"/rate/{pairs.campaign.pk}/").content.decode()


def test_a_best_of_k_campaign_takes_no_gold_pair_from_the_api_or_its_page(api, client):
    world = _world()
    first, second = (world.runs[0].images.order_by("prompt__position").first(),
                     world.runs[1].images.order_by("prompt__position").first())
    before = ComparisonTask.objects.count()
    api.force_login(world.scientist)
    response = api.post(f"/api/v1/campaigns/{world.campaign.pk}/gold/",
                        {"image_a": first.pk, "image_b": second.pk, "answer": "a"},
                        format="json")
    assert response.status_code == 400
    assert "a best-of-K campaign has no gold tasks" in response.json()["detail"]
    assert ComparisonTask.objects.count() == before
    client.force_login(world.scientist)
    page = client.get(f"/campaigns/{world.campaign.pk}/manage/").content.decode()
    assert 'id="gold"' not in page and "Add a gold pair" not in page
    assert '<dt>Tasks</dt><dd><span data-field="tasks_complete">' in page
    assert "Judgments per task" in page
