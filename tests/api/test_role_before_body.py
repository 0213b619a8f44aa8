"""A member whose role may not write is refused (403) before the body is validated, when the
body names its project: an annotator is told at once that the write is not theirs to make,
rather than what else is wrong with it. A body naming a model or a run is not looked at
first: to an annotator those do not exist (blind), and a 403 would tell them one does.
Non-members still get validation's "does not exist", which reveals nothing."""

import pytest

from evalhub.projects.models import Role
from tests.builders import build_campaign
from tests.factories import MembershipFactory, UserFactory

pytestmark = pytest.mark.django_db


def _bodies(world) -> dict[str, dict]:
    """Per endpoint, a body naming the project whose other fields are wrong."""
    return {
        "/api/v1/campaigns/": {"project": world.campaign.project_id, "name": "",
                               "runs": ["x"]},
        "/api/v1/models/": {"project": world.campaign.project_id, "name": ""},
        "/api/v1/prompt-sets/": {"project": world.campaign.project_id, "name": ""},
    }


def _hung_bodies(world) -> dict[str, dict]:
    """Bodies naming the model or checkpoint a new row hangs from, other fields wrong."""
    run = world.runs[0]
    return {"/api/v1/checkpoints/": {"model": run.checkpoint.model_id, "name": ""},
            "/api/v1/runs/": {"checkpoint": run.checkpoint_id, "prompt_set": "x"}}


@pytest.fixture
def world():
    return build_campaign(runs=2, prompts=1)


def test_an_annotator_is_refused_before_the_body_is_read(api, world):
    api.force_authenticate(world.annotator)
    for url, body in _bodies(world).items():
        response = api.post(url, body, format="json")
        assert response.status_code == 403, (url, response.content)
        assert "Your role in this project (annotator) does not allow this." in str(
            response.json()), url


def test_to_an_annotator_a_model_or_checkpoint_named_in_a_body_does_not_exist(api, world):
    api.force_authenticate(world.annotator)
    for url, body in _hung_bodies(world).items():
        response = api.post(url, body, format="json")
        assert response.status_code == 400, url
        assert "does not exist" in str(response.json()) or "no such object" in str(
            response.json()), (url, response.json())


def test_a_scientist_with_the_same_bodies_is_told_what_is_wrong(api, world):
    api.force_authenticate(world.scientist)
    for url, body in (_bodies(world) | _hung_bodies(world)).items():
        assert api.post(url, body, format="json").status_code == 400, url


def test_a_non_member_learns_nothing_more_than_before(api, world):
    api.force_authenticate(UserFactory())
    for url, body in _bodies(world).items():
        response = api.post(url, body, format="json")
        assert response.status_code == 400, url
        # As for an id never used: the project's (or its model's, run's) existence is not told.
        text = str(response.json())
        assert "does not exist" in text or "no such object" in text, (url, text)


def test_members_are_managed_by_owners_only_whatever_the_body(api, world):
    scientist = MembershipFactory(project=world.campaign.project, role=Role.SCIENTIST).user
    api.force_authenticate(scientist)
    response = api.post("/api/v1/memberships/", {"project": world.campaign.project_id,
                                                 "username": "", "role": "nope"},
                        format="json")
    assert response.status_code == 403
    api.force_authenticate(world.owner)
    assert api.post("/api/v1/memberships/", {"project": world.campaign.project_id,
                                             "username": "", "role": "nope"},
                    format="json").status_code == 400


@pytest.mark.parametrize("project", [True, "1", "1.0", "\u00b2", [1], {"id": 1}, None, "9" * 30])
def test_an_unreadable_project_goes_to_validation(api, world, project):
    api.force_authenticate(world.annotator)
    response = api.post("/api/v1/models/", {"project": project, "name": "m"}, format="json")
    assert response.status_code in (400, 403), project
    assert response.status_code != 500
