"""Annotators per campaign: a campaign may name the members of its project who rate it.

Left empty, every member rates (as before). Named, everyone else is neither served nor counted:
the rating API answers 403 with the reason, a vote on a pair leased before they were left out
is refused and not stored, the home page does not offer the campaign, and the rating page is a
403 that says why. Outsiders stay 404. Scientists choose the annotators on the creation form,
on the campaign page and through the API; a user outside the project is refused, nothing
changed.
"""

from __future__ import annotations

import uuid

import pytest
from django.test import Client
from django.urls import reverse

from evalhub.campaigns.models import Campaign, Judgment
from evalhub.campaigns.services import campaign_set_annotators
from evalhub.core.errors import EvalHubError
from evalhub.projects.models import Role
from tests.builders import build_campaign, cast_vote, logged_in
from tests.factories import MembershipFactory, UserFactory

pytestmark = pytest.mark.django_db


@pytest.fixture
def world():
    return build_campaign(runs=2, prompts=3, annotators=3, name="Named raters")


def _rate(world, suffix: str = "") -> str:
    return f"/api/v1/rate/{world.campaign.pk}/{suffix}"


def test_with_no_annotators_named_every_member_rates(api, world):
    for annotator in world.annotators:
        api.force_login(annotator)
        assert api.post(_rate(world, "next/"), {}, format="json").status_code == 201


def test_only_the_named_annotators_are_served(api, world):
    chosen, left_out, _ = world.annotators
    campaign_set_annotators(campaign=world.campaign, annotators=[chosen])
    api.force_login(chosen)
    assert api.post(_rate(world, "next/"), {}, format="json").status_code == 201
    api.force_login(left_out)
    refused = api.post(_rate(world, "next/"), {}, format="json")
    assert refused.status_code == 403
    assert "you are not one of them" in refused.json()["detail"]
    assert api.get(_rate(world)).status_code == 403
    assert api.get(_rate(world, "leases/")).status_code == 403
    api.force_login(UserFactory())
    assert api.post(_rate(world, "next/"), {}, format="json").status_code == 404


def test_a_vote_on_a_pair_leased_before_being_left_out_is_refused_and_not_stored(api, world):
    chosen, left_out, _ = world.annotators
    api.force_login(left_out)
    task = api.post(_rate(world, "next/"), {}, format="json").json()
    campaign_set_annotators(campaign=world.campaign, annotators=[chosen])
    vote = {"client_id": str(uuid.uuid4()), "lease": task["lease"],
            "answers": {"overall": "left"}}
    assert api.post(_rate(world, "votes/"), vote, format="json").status_code == 403
    assert not Judgment.objects.filter(annotator=left_out).exists()
    # Named again, the same vote goes through.
    campaign_set_annotators(campaign=world.campaign, annotators=[chosen, left_out])
    assert api.post(_rate(world, "votes/"), vote, format="json").status_code == 201


def test_the_home_page_and_the_rating_page_follow_the_same_rule(world):
    chosen, left_out, _ = world.annotators
    campaign_set_annotators(campaign=world.campaign, annotators=[chosen])
    rate_url = reverse("rate", kwargs={"campaign_id": world.campaign.pk})
    assert f'href="{rate_url}"' in logged_in(chosen).get("/").content.decode()
    assert f'href="{rate_url}"' not in logged_in(left_out).get("/").content.decode()
    assert logged_in(chosen).get(rate_url).status_code == 200
    page = logged_in(left_out).get(rate_url)
    assert page.status_code == 403 and "you are not one of them" in page.content.decode()
    assert logged_in(UserFactory()).get(rate_url).status_code == 404


def test_the_service_refuses_users_outside_the_project_and_changes_nothing(world):
    chosen = world.annotators[0]
    campaign_set_annotators(campaign=world.campaign, annotators=[chosen])
    outsider = UserFactory()
    with pytest.raises(EvalHubError, match=f"not members: user {outsider.pk}"):
        campaign_set_annotators(campaign=world.campaign, annotators=[chosen, outsider])
    assert list(world.campaign.annotators.all()) == [chosen]
    # The message names ids only: an outsider's name is not the scientist's to learn.
    with pytest.raises(EvalHubError) as refused:
        campaign_set_annotators(campaign=world.campaign, annotators=[outsider])
    assert outsider.username not in refused.value.message


def test_scientists_choose_annotators_on_the_campaign_page(world):
    chosen, left_out, third = world.annotators
    url = reverse("campaign-manage-annotators", kwargs={"campaign_id": world.campaign.pk})
    page = reverse("campaign-manage", kwargs={"campaign_id": world.campaign.pk})
    scientist = logged_in(world.scientist)
    assert "Every member of the project may rate." in scientist.get(page).content.decode()
    response = scientist.post(url, {"annotators": [chosen.pk, third.pk]})
    assert response.status_code == 302 and response["Location"].endswith("#who-rates")
    assert set(world.campaign.annotators.all()) == {chosen, third}
    html = scientist.get(page).content.decode()
    assert f"Only these members may rate: {chosen.username}" in html
    # Someone outside the project is not a choice: refused next to the field, nothing changed.
    outsider = UserFactory()
    refused = scientist.post(url, {"annotators": [chosen.pk, outsider.pk]})
    assert refused.status_code == 400
    assert 'id="id_annotators_error"' in refused.content.decode()
    assert set(world.campaign.annotators.all()) == {chosen, third}
    # None ticked: every member rates again.
    assert scientist.post(url, {}).status_code == 302
    assert not world.campaign.annotators.exists()
    # Annotators may not choose; outsiders do not learn the campaign exists.
    assert logged_in(left_out).post(url, {"annotators": [left_out.pk]}).status_code == 403
    assert logged_in(UserFactory()).post(url, {"annotators": []}).status_code == 404
    assert Client().post(url)["Location"].startswith("/accounts/login/")
    assert not world.campaign.annotators.exists()


def test_the_creation_form_names_the_annotators(world):
    chosen = world.annotators[1]
    scientist = logged_in(world.scientist)
    new = reverse("campaign-new", kwargs={"project_id": world.campaign.project_id})
    form = scientist.get(new).content.decode()
    assert f"{chosen.username} (annotator)" in form
    response = scientist.post(new, {
        "name": "Second look", "runs": [run.pk for run in world.runs], "criteria": ["overall"],
        "task_kind": "pair", "pair_policy": "balanced", "judgments_per_pair": 1,
        "gold_rate": 0, "lease_seconds": 180, "annotators": [chosen.pk]})
    assert response.status_code == 302, response.content.decode()[:3000]
    assert list(Campaign.objects.get(name="Second look").annotators.all()) == [chosen]


def test_the_api_creates_with_annotators_and_changes_them(api, world):
    chosen, other, _ = world.annotators
    api.force_login(world.scientist)
    # Named by username, as the memberships API names users.
    created = api.post("/api/v1/campaigns/", {
        "project": world.campaign.project_id, "name": "By API",
        "runs": [run.pk for run in world.runs], "annotators": [chosen.username]},
        format="json")
    assert created.status_code == 201 and created.json()["annotators"] == [chosen.username]
    url = f"/api/v1/campaigns/{created.json()['id']}/annotators/"
    changed = api.post(url, {"annotators": [chosen.username, other.username]}, format="json")
    assert changed.status_code == 200
    assert changed.json() == {"annotators": sorted([chosen.username, other.username])}
    # A user of no project and a name nobody has get the same answer.
    answers = [api.post(url, {"annotators": [name]}, format="json")
               for name in (UserFactory().username, "nobody-has-this-name")]
    assert [a.status_code for a in answers] == [400, 400]
    assert answers[0].json()["detail"].split(": ")[0] == answers[1].json()["detail"].split(
        ": ")[0]
    # The scientists' API does not show campaigns to annotators at all (ProjectScopedMixin).
    api.force_login(chosen)
    assert api.post(url, {"annotators": []}, format="json").status_code == 404
    assert sorted(Campaign.objects.get(name="By API").annotators.values_list(
        "pk", flat=True)) == sorted([chosen.pk, other.pk])


def test_a_scientist_named_as_annotator_rates_and_others_are_counted_out(world):
    # Any member may be named, a scientist too; votes of the named stay in the counts.
    extra = MembershipFactory(project=world.campaign.project, role=Role.SCIENTIST).user
    campaign_set_annotators(campaign=world.campaign, annotators=[extra])
    cast_vote(world.campaign, extra, "left")
    assert Judgment.objects.filter(campaign=world.campaign, annotator=extra).count() == 1
