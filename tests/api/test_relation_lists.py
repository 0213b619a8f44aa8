"""A list of ids (a ``many=True`` relation field) costs one query, however long it is, and a
campaign's runs are capped (``MAX_CAMPAIGN_RUNS``, evalhub/core/limits.py).

Each id used to cost its own query: a 2.4 MB body listing 400,000 run ids held a web thread for
minutes before the answer. The answers themselves are unchanged: an id that does not exist, or
that the caller cannot see, is refused naming the field and the id, the first bad one in the
order sent, and the objects come back in the order sent.
"""

from __future__ import annotations

import pytest
from django.db import connection
from django.test.utils import CaptureQueriesContext
from rest_framework import serializers

from evalhub.campaigns.apis import CampaignCreateSerializer
from evalhub.campaigns.models import Campaign
from evalhub.core.limits import MAX_CAMPAIGN_RUNS
from evalhub.projects.references import ScopedManyRelatedField, ScopedPrimaryKeyRelatedField
from evalhub.runs.models import GenerationRun
from tests.builders import build_campaign

pytestmark = pytest.mark.django_db

URL = "/api/v1/campaigns/"
DOES_NOT_EXIST = 'Invalid pk "{}" - object does not exist.'
INCORRECT_TYPE = "Incorrect type. Expected pk value, received {}."


@pytest.fixture
def world():
    return build_campaign(runs=3, prompts=1, annotators=0)


def _body(world, runs: list) -> dict:
    return {"project": world.campaign.project_id, "name": "many-runs", "runs": runs}


def _runs_field(user) -> ScopedManyRelatedField:
    request = type("Request", (), {"user": user})()
    field = ScopedPrimaryKeyRelatedField(queryset=GenerationRun.objects.all(), many=True)
    field.bind("runs", serializers.Serializer(context={"request": request}))
    return field


def test_twenty_thousand_run_ids_are_refused_without_a_query_per_id(api, world):
    api.force_authenticate(world.owner)
    runs = [run.pk for run in world.runs]
    with CaptureQueriesContext(connection) as queries:
        response = api.post(URL, _body(world, runs * 7000), format="json")
    assert response.status_code == 400
    assert response.json()["runs"] == [
        f"Ensure this field has no more than {MAX_CAMPAIGN_RUNS} elements."]
    assert len(queries) <= 3  # the project field's one query, never one per run
    assert not Campaign.objects.filter(name="many-runs").exists()


def test_a_long_list_of_ids_is_resolved_with_one_query(api, world, django_assert_max_num_queries):
    """As many ids as a campaign may list, none of them existing: one query for all of them,
    answered for the first one, as before."""
    missing = GenerationRun.objects.order_by("-pk").first().pk + 1
    ids = list(range(missing, missing + MAX_CAMPAIGN_RUNS))
    field = _runs_field(world.owner)
    # One query: the runs, limited to the caller's projects by a subquery.
    with django_assert_max_num_queries(1), pytest.raises(serializers.ValidationError) as refused:
        field.run_validation(ids)
    assert refused.value.detail == [DOES_NOT_EXIST.format(missing)]


def test_the_campaign_form_takes_up_to_the_cap(world):
    request = type("Request", (), {"user": world.owner})()
    field = CampaignCreateSerializer(context={"request": request}).fields["runs"]
    runs = [run.pk for run in world.runs] * MAX_CAMPAIGN_RUNS
    with pytest.raises(serializers.ValidationError) as refused:
        field.run_validation(runs[:MAX_CAMPAIGN_RUNS + 1])
    assert refused.value.detail == [
        f"Ensure this field has no more than {MAX_CAMPAIGN_RUNS} elements."]
    assert len(field.run_validation(runs[:MAX_CAMPAIGN_RUNS])) == MAX_CAMPAIGN_RUNS


def test_the_objects_come_back_in_the_order_sent(world):
    first, second, third = world.runs
    field = _runs_field(world.owner)
    assert field.run_validation([third.pk, str(first.pk), second.pk]) == [third, first, second]
    # A repeated id is the same object twice (the campaign service refuses it by name).
    assert field.run_validation([second.pk, second.pk]) == [second, second]


def test_the_first_bad_id_in_the_order_sent_is_the_one_named(world):
    first = world.runs[0].pk
    missing = GenerationRun.objects.order_by("-pk").first().pk + 1
    field = _runs_field(world.owner)
    cases = [
        ([first, missing, "x"], DOES_NOT_EXIST.format(missing)),
        ([first, "x", missing], INCORRECT_TYPE.format("str")),
        ([first, 1.5, missing], INCORRECT_TYPE.format("float")),
        ([first, 2**70, missing], DOES_NOT_EXIST.format(2**70)),
        ([first, missing + 1, missing], DOES_NOT_EXIST.format(missing + 1)),
    ]
    for ids, message in cases:
        with pytest.raises(serializers.ValidationError) as refused:
            field.run_validation(ids)
        assert refused.value.detail == [message], ids
    with pytest.raises(serializers.ValidationError) as refused:
        field.run_validation("1,2")
    assert refused.value.detail == ['Expected a list of items but got type "str".']


def test_another_projects_run_in_a_list_is_answered_like_a_missing_one(api, world):
    theirs = build_campaign(runs=2, prompts=1, annotators=0).runs[0]
    missing = GenerationRun.objects.order_by("-pk").first().pk + 1
    api.force_authenticate(world.owner)
    mine = world.runs[0].pk
    to_foreign = api.post(URL, _body(world, [mine, theirs.pk]), format="json")
    to_missing = api.post(URL, _body(world, [mine, missing]), format="json")
    assert to_foreign.status_code == to_missing.status_code == 400
    assert to_foreign.json() == {"runs": [DOES_NOT_EXIST.format(theirs.pk)]}
    assert to_missing.json() == {"runs": [DOES_NOT_EXIST.format(missing)]}


def test_a_list_of_valid_runs_still_creates_the_campaign(api, world):
    api.force_authenticate(world.owner)
    runs = [world.runs[2].pk, world.runs[0].pk]
    response = api.post(URL, _body(world, runs), format="json")
    assert response.status_code == 201, response.content
    assert sorted(response.json()["runs"]) == sorted(runs)
    assert set(Campaign.objects.get(name="many-runs").runs.values_list("pk", flat=True)) == \
        set(runs)


def test_a_repeated_run_is_still_refused_by_name(api, world):
    api.force_authenticate(world.owner)
    run = world.runs[0].pk
    response = api.post(URL, _body(world, [run, run]), format="json")
    assert response.status_code == 400
    assert "A campaign lists each run once." in response.content.decode()
