"""An id in a request body is a whole number: a fraction is refused, never truncated to another
object, and a number too large for an id column is an id that names nothing.

Every writable relation field of the API is a ScopedPrimaryKeyRelatedField
(tests/api/test_foreign_references.py checks it), so the field's own rule covers them all; the
API cases below are the ones a client hit.
"""

from __future__ import annotations

import pytest
from rest_framework import serializers

from evalhub.projects.models import Project
from evalhub.projects.references import ScopedPrimaryKeyRelatedField
from evalhub.runs.models import Checkpoint, GenModel
from tests.builders import build_campaign

pytestmark = pytest.mark.django_db

INCORRECT_TYPE = "Incorrect type. Expected pk value, received {}."


@pytest.fixture
def world():
    return build_campaign(runs=2, prompts=1, annotators=0)


def _field(user) -> ScopedPrimaryKeyRelatedField:
    request = type("Request", (), {"user": user})()
    field = ScopedPrimaryKeyRelatedField(queryset=Project.objects.all())
    field.bind("project", serializers.Serializer(context={"request": request}))
    return field


@pytest.mark.parametrize("value", [1.5, 1.0, "1.5", "1e0", " 1_0 ", "\u0661", True, [1], {"id": 1}])
def test_a_value_that_is_not_a_whole_number_is_an_incorrect_type(world, value):
    with pytest.raises(serializers.ValidationError) as refused:
        _field(world.owner).run_validation(value)
    assert refused.value.detail == [INCORRECT_TYPE.format(type(value).__name__)]


@pytest.mark.parametrize("value", [2**63, 10**30, -(2**63) - 1, -1, 0])
def test_a_number_no_id_column_holds_names_nothing(world, value):
    with pytest.raises(serializers.ValidationError) as refused:
        _field(world.owner).run_validation(value)
    assert refused.value.detail == [f'Invalid pk "{value}" - object does not exist.']


def test_a_whole_number_or_its_digits_name_the_object(world):
    project = world.campaign.project
    field = _field(world.owner)
    assert field.run_validation(project.pk) == project
    assert field.run_validation(str(project.pk)) == project


def test_fractions_in_api_bodies_are_refused_not_truncated(api, world):
    project = world.campaign.project
    checkpoint = world.runs[0].checkpoint
    run_a, run_b = world.runs
    api.force_authenticate(world.owner)
    cases = [
        ("post", "/api/v1/models/", {"project": project.pk + 0.9, "name": "m"}, "project"),
        ("post", "/api/v1/checkpoints/", {"model": checkpoint.model_id + 0.999, "name": "c"},
         "model"),
        ("patch", f"/api/v1/checkpoints/{checkpoint.pk}/", {"model": checkpoint.model_id + 0.5},
         "model"),
        ("post", "/api/v1/metric-jobs/", {"run": run_a.pk + 0.5, "metrics": ["fid"]}, "run"),
    ]
    for method, url, body, field in cases:
        response = getattr(api, method)(url, body, format="json")
        assert response.status_code == 400, (url, response.content)
        assert response.json()[field] == [INCORRECT_TYPE.format("float")]
    response = api.post("/api/v1/campaigns/", {
        "project": project.pk, "name": "fractions", "runs": [run_a.pk + 0.2, run_b.pk + 0.7]},
        format="json")
    assert response.status_code == 400
    assert response.json()["runs"] == [INCORRECT_TYPE.format("float")]
    assert not GenModel.objects.filter(name="m").exists()
    assert not Checkpoint.objects.filter(name="c").exists()
    assert not project.campaigns.filter(name="fractions").exists()
    too_large = api.post("/api/v1/models/", {"project": 2**70, "name": "m"}, format="json")
    assert too_large.status_code == 400
    assert too_large.json()["project"] == [f'Invalid pk "{2**70}" - object does not exist.']
