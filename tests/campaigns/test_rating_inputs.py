"""The rating API validates its inputs with serializers built once: every request gets its own
validated values, and a refusal is DRF's own error body for that input."""

import json
import threading
import uuid

import pytest

from evalhub.campaigns.serving.apis import (
    NextInputSerializer,
    ReportInputSerializer,
    UndoInputSerializer,
    VoteInputSerializer,
)
from tests.builders import build_campaign

pytestmark = pytest.mark.django_db


@pytest.fixture
def world():
    return build_campaign(prompts=3)


def _url(world, suffix=""):
    return f"/api/v1/rate/{world.campaign.pk}/{suffix}"


def _drf_errors(serializer_class, body) -> dict:
    """What a serializer instantiated for this body says about it."""
    form = serializer_class(data=body)
    assert not form.is_valid()
    return json.loads(json.dumps(form.errors))


LEASE = str(uuid.uuid4())
BAD_VOTES = [
    {"client_id": "nope", "lease": LEASE, "answers": {"overall": "up"}},
    {"lease": LEASE, "answers": {"overall": "left"}},
    {"client_id": str(uuid.uuid4()), "lease": LEASE, "rankings": {"overall": [-1]},
     "latency_ms": -5},
    {"client_id": str(uuid.uuid4()), "lease": LEASE, "answers": {"overall": "left"},
     "next": {"exclude": ["x"] * 11}},
    [1, 2],
]


@pytest.mark.parametrize("body", BAD_VOTES)
def test_a_malformed_vote_is_refused_with_drfs_errors(api, world, body):
    api.force_login(world.annotators[0])
    response = api.post(_url(world, "votes/"), body, format="json")
    assert response.status_code == 400
    assert response.json() == _drf_errors(VoteInputSerializer, body)


def test_a_null_body_is_refused_as_no_data(api, world):
    api.force_login(world.annotators[0])
    response = api.post(_url(world, "votes/"), "null", content_type="application/json")
    assert response.status_code == 400
    assert response.json() == _drf_errors(VoteInputSerializer, None)


def test_malformed_next_undo_and_report_bodies_are_refused_with_drfs_errors(api, world):
    api.force_login(world.annotators[0])
    next_body = {"exclude": ["not-a-uuid"]}
    response = api.post(_url(world, "next/"), next_body, format="json")
    assert (response.status_code, response.json()) == (
        400, _drf_errors(NextInputSerializer, next_body))
    undo_body = {"client_id": "x"}
    response = api.post(_url(world, "votes/undo/"), undo_body, format="json")
    assert (response.status_code, response.json()) == (
        400, _drf_errors(UndoInputSerializer, undo_body))
    lease = api.post(_url(world, "next/"), {}, format="json").json()["lease"]
    report_body = {"side": "middle"}
    response = api.post(_url(world, f"leases/{lease}/report/"), report_body, format="json")
    assert (response.status_code, response.json()) == (
        400, _drf_errors(ReportInputSerializer, report_body))


def test_defaults_are_fresh_for_every_request():
    from evalhub.campaigns.serving.apis import _NEXT_INPUT, _VOTE_INPUT, _validated

    first = _validated(_NEXT_INPUT, {})
    first["exclude"].append(uuid.uuid4())
    assert _validated(_NEXT_INPUT, {}) == {"exclude": []}
    vote = {"client_id": str(uuid.uuid4()), "lease": LEASE}
    _validated(_VOTE_INPUT, vote)["answers"]["overall"] = "left"
    assert _validated(_VOTE_INPUT, vote)["answers"] == {}


def test_concurrent_requests_each_get_their_own_values():
    from evalhub.campaigns.serving.apis import _VOTE_INPUT, _validated

    mismatches = []

    def validate(index: int) -> None:
        for _ in range(200):
            client_id = uuid.uuid4()
            answer = ("left", "right", "tie", "both_bad")[index]
            data = _validated(_VOTE_INPUT, {
                "client_id": str(client_id), "lease": LEASE, "answers": {"overall": answer},
                "latency_ms": index, "next": {"exclude": [LEASE] * index}})
            if (data["client_id"], data["answers"]["overall"], data["latency_ms"],
                    len(data["next"]["exclude"])) != (client_id, answer, index, index):
                mismatches.append(data)

    threads = [threading.Thread(target=validate, args=(i,)) for i in range(4)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    assert mismatches == []
