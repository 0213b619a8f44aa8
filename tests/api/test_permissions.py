"""A user sees only projects where they hold a role; roles decide what they may change."""

import pytest

from evalhub.projects.models import Membership, Role
from tests.factories import (
    CheckpointFactory,
    GenerationRunFactory,
    GenModelFactory,
    ImageFactory,
    MembershipFactory,
    PromptSetFactory,
)

pytestmark = pytest.mark.django_db


@pytest.fixture
def catalog(project):
    """One of everything inside ``project``."""
    model = GenModelFactory(project=project)
    checkpoint = CheckpointFactory(model=model)
    prompt_set = PromptSetFactory(project=project)
    run = GenerationRunFactory(checkpoint=checkpoint, prompt_set=prompt_set)
    image = ImageFactory(run=run)
    return {
        "models": model.id,
        "checkpoints": checkpoint.id,
        "prompt-sets": prompt_set.id,
        "runs": run.id,
        "images": image.id,
        "prompts": image.prompt_id,
    }


ENDPOINTS = ["models", "checkpoints", "prompt-sets", "runs", "images", "prompts"]


@pytest.mark.parametrize("endpoint", ENDPOINTS)
def test_an_outsider_gets_an_empty_list_and_404_for_each_object(api, outsider, catalog,
                                                                endpoint):
    api.force_authenticate(outsider)
    listing = api.get(f"/api/v1/{endpoint}/")
    assert listing.status_code == 200
    assert listing.json()["count"] == 0
    assert api.get(f"/api/v1/{endpoint}/{catalog[endpoint]}/").status_code == 404


@pytest.mark.parametrize("endpoint", ENDPOINTS)
def test_a_scientist_sees_the_projects_objects(api, scientist, catalog, endpoint):
    api.force_authenticate(scientist)
    listing = api.get(f"/api/v1/{endpoint}/").json()
    assert [row["id"] for row in listing["results"]] == [catalog[endpoint]]
    assert api.get(f"/api/v1/{endpoint}/{catalog[endpoint]}/").status_code == 200


@pytest.mark.parametrize("endpoint", ENDPOINTS)
def test_annotators_cannot_see_runs_or_models_so_they_stay_blind(api, annotator, catalog,
                                                                 endpoint):
    api.force_authenticate(annotator)
    assert api.get(f"/api/v1/{endpoint}/").json()["count"] == 0
    assert api.get(f"/api/v1/{endpoint}/{catalog[endpoint]}/").status_code == 404


def test_anonymous_requests_are_refused(api, catalog):
    assert api.get("/api/v1/runs/").status_code in (401, 403)
    assert api.get("/api/v1/projects/").status_code in (401, 403)


def test_an_outsider_cannot_create_inside_a_project(api, outsider, project):
    api.force_authenticate(outsider)
    response = api.post("/api/v1/models/", {"project": project.id, "name": "sneaky"})
    # The same answer as for a project that does not exist: nothing about it leaks.
    missing = api.post("/api/v1/models/", {"project": 10**9, "name": "sneaky"})
    assert response.status_code == missing.status_code == 400
    assert response.json()["project"][0].replace(str(project.id), "ID") == \
        missing.json()["project"][0].replace(str(10**9), "ID")
    assert not project.models.exists()


def test_an_annotator_cannot_create_inside_their_project(api, annotator, project):
    api.force_authenticate(annotator)
    response = api.post("/api/v1/models/", {"project": project.id, "name": "sneaky"})
    assert response.status_code == 403
    assert not project.models.exists()


def test_an_outsider_cannot_change_or_delete_objects(api, outsider, catalog):
    api.force_authenticate(outsider)
    assert api.patch(f"/api/v1/models/{catalog['models']}/", {"name": "x"}).status_code == 404
    assert api.delete(f"/api/v1/models/{catalog['models']}/").status_code == 404


def test_a_scientist_cannot_move_an_object_into_a_project_they_are_not_in(
    api, scientist, catalog, outsider
):
    from tests.factories import ProjectFactory

    foreign = ProjectFactory()
    api.force_authenticate(scientist)
    response = api.patch(f"/api/v1/models/{catalog['models']}/", {"project": foreign.id})
    assert response.status_code == 400 and "does not exist" in response.json()["project"][0]


def test_projects_list_shows_only_memberships_with_the_callers_role(api, scientist, project):
    from tests.factories import ProjectFactory

    ProjectFactory()
    api.force_authenticate(scientist)
    listing = api.get("/api/v1/projects/").json()
    assert [(p["id"], p["my_role"]) for p in listing["results"]] == [(project.id, "scientist")]


def test_creating_a_project_makes_the_creator_its_owner(api, outsider):
    outsider.is_staff = True
    outsider.save(update_fields=["is_staff"])
    api.force_authenticate(outsider)
    response = api.post("/api/v1/projects/", {"name": "Diffusion 2027"})
    assert response.status_code == 201
    assert response.json()["slug"] == "diffusion-2027"
    assert Membership.objects.get(user=outsider).role == Role.OWNER


def test_only_owners_manage_members(api, owner, scientist, outsider, project):
    outsider = MembershipFactory(user=outsider, role=Role.ANNOTATOR,  # someone the owner knows
                                 project=MembershipFactory(user=owner).project).user
    api.force_authenticate(scientist)
    denied = api.post("/api/v1/memberships/", {
        "project": project.id, "username": outsider.username, "role": "annotator"})
    assert denied.status_code == 403
    api.force_authenticate(owner)
    added = api.post("/api/v1/memberships/", {
        "project": project.id, "username": outsider.username, "role": "annotator"})
    assert added.status_code == 201
    assert Membership.objects.get(user=outsider, project=project).role == Role.ANNOTATOR


def test_token_authentication_works(api, scientist, catalog):
    from rest_framework.authtoken.models import Token

    token = Token.objects.create(user=scientist)
    api.credentials(HTTP_AUTHORIZATION=f"Token {token.key}")
    assert api.get("/api/v1/runs/").json()["count"] == 1


def test_token_endpoint_exchanges_a_password_for_a_token(api, scientist):
    response = api.post("/api/v1/auth/token/", {"username": scientist.username, "password": "pw"})
    assert response.status_code == 200
    assert len(response.json()["token"]) == 40


def test_lists_are_paginated_and_filterable(api, scientist, project):
    for i in range(3):
        GenModelFactory(project=project, name=f"m{i}")
    api.force_authenticate(scientist)
    page = api.get("/api/v1/models/", {"page_size": 2}).json()
    assert page["count"] == 3 and len(page["results"]) == 2 and page["next"]
    only = api.get("/api/v1/models/", {"name": "m1"}).json()
    assert [m["name"] for m in only["results"]] == ["m1"]
