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


def test_a_body_key_that_names_no_field_is_refused_and_nothing_is_stored(api, world):
    # DRF dropped such keys: a misspelt latency_ms was stored as no latency, and 201.
    from evalhub.campaigns.models import Judgment, Lease

    api.force_login(world.annotators[0])
    response = api.post(_url(world, "next/"), {"foo": 1}, format="json")
    assert response.status_code == 400 and list(response.json()) == ["foo"]
    assert not Lease.objects.exists()
    lease = api.post(_url(world, "next/"), {}, format="json").json()["lease"]
    vote = {"client_id": str(uuid.uuid4()), "lease": lease, "answers": {"overall": "left"}}
    for extra, field in (({"lateny_ms": 900}, "lateny_ms"), ({"extra": 1}, "extra"),
                         ({"next": {"exclude": [], "foo": 1}}, "next")):
        response = api.post(_url(world, "votes/"), {**vote, **extra}, format="json")
        assert response.status_code == 400, extra
        assert list(response.json()) == [field]
        assert "Unknown field" in json.dumps(response.json())
    assert not Judgment.objects.exists()
    response = api.post(_url(world, f"leases/{lease}/report/"),
                        {"side": "left", "notes": "broken"}, format="json")
    assert response.status_code == 400 and list(response.json()) == ["notes"]
    response = api.post(_url(world, "votes/undo/"),
                        {"client_id": vote["client_id"], "lease": lease}, format="json")
    assert response.status_code == 400 and list(response.json()) == ["lease"]
    response = api.post(_url(world, f"leases/{lease}/skip/"), {"bogus": 1}, format="json")
    assert response.status_code == 400 and list(response.json()) == ["bogus"]
    assert Lease.objects.get(pk=lease).status == "active"  # not skipped


def test_the_bodies_the_rating_page_sends_are_accepted(api, world):
    # static/js/rate/api.js: next {exclude}; votes {client_id, lease, answers, latency_ms,
    # next: {exclude}}; report {side, note}; undo {client_id}.
    api.force_login(world.annotators[0])
    first = api.post(_url(world, "next/"), {"exclude": []}, format="json").json()
    vote = {"client_id": str(uuid.uuid4()), "lease": first["lease"],
            "answers": {"overall": "left"}, "latency_ms": 1200,
            "next": {"exclude": [first["lease"]]}}
    voted = api.post(_url(world, "votes/"), vote, format="json")
    assert voted.status_code == 201, voted.json()
    second = voted.json()["next"]["lease"]
    assert api.post(_url(world, "votes/undo/"), {"client_id": vote["client_id"]},
                    format="json").status_code in (200, 201)
    reported = api.post(_url(world, f"leases/{second}/report/"),
                        {"side": "left", "note": ""}, format="json")
    assert reported.status_code == 200, reported.json()
    third = api.post(_url(world, "next/"), {"exclude": []}, format="json").json()["lease"]
    skipped = api.post(_url(world, f"leases/{third}/skip/"), {}, format="json")
    assert skipped.status_code == 200, skipped.json()
    fourth = api.post(_url(world, "next/"), {"exclude": []}, format="json").json()["lease"]
    assert api.post(_url(world, f"leases/{fourth}/skip/")).status_code == 200  # no body
