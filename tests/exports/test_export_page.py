"""The export page: format, filters and a streamed download, with the export API's rules.

The parameters are validated by the API's serializer and become the same ExportOptions;
a refusal is shown next to its field; the download is the same stream as the API's.
"""

from __future__ import annotations

import io
import json

import pandas as pd
import pytest
from django.test import Client

from tests.builders import build_campaign, logged_in
from tests.core.test_security_headers import _inline_code
from tests.factories import MembershipFactory, UserFactory
from tests.leaderboards.helpers import cast

pytestmark = pytest.mark.django_db


@pytest.fixture
def world():
    world = build_campaign(runs=2, prompts=2, annotators=2, name="Exported",
                           criteria=["overall", "aesthetics"])
    cast(world.tasks[0], world.annotators[0], "a")
    cast(world.tasks[0], world.annotators[1], "b")
    cast(world.tasks[1], world.annotators[0], "tie")
    return world


def _url(world) -> str:
    return f"/campaigns/{world.campaign.pk}/export/"


def _download(response) -> bytes:
    return b"".join(response.streaming_content)


def test_who_may_open_the_page_and_download(world):
    url = _url(world)
    download = {"download": "1", "format": "raw-csv"}
    for params in ({}, download):
        anonymous = Client().get(url, params)
        assert anonymous.status_code == 302 and "/accounts/login/" in anonymous["Location"]
        assert logged_in(world.annotator).get(url, params).status_code == 403
        assert logged_in(UserFactory()).get(url, params).status_code == 404
        assert logged_in(MembershipFactory(role="owner").user).get(url, params
                                                                   ).status_code == 404
    for user in (world.scientist, world.owner):
        page = logged_in(user).get(url)
        assert page.status_code == 200
        assert _inline_code(page.content.decode()) == []
        assert logged_in(user).get(url, download).status_code == 200
    assert logged_in(world.scientist).get("/campaigns/999999999/export/").status_code == 404


def test_raw_usernames_are_for_owners_only(world):
    url = _url(world)
    params = {"download": "1", "format": "raw-csv", "raw_usernames": "on"}
    assert "raw_usernames" not in logged_in(world.scientist).get(url).content.decode()
    assert logged_in(world.scientist).get(url, params).status_code == 403
    response = logged_in(world.owner).get(url, params)
    frame = pd.read_csv(io.BytesIO(_download(response)))
    assert world.annotators[0].username in set(frame["annotator"])


def test_a_dpo_download_streams_the_services_file_with_the_chosen_filters(world):
    response = logged_in(world.scientist).get(_url(world), {
        "download": "1", "format": "dpo-jsonl", "criterion": ["overall"]})
    assert response.status_code == 200 and response.streaming
    assert response["Content-Disposition"] == (
        f'attachment; filename="campaign-{world.campaign.pk}-preferences.jsonl"')
    rows = [json.loads(line) for line in _download(response).decode().splitlines()]
    assert len(rows) == 2  # the tie is not a DPO row
    assert {row["criterion"] for row in rows} == {"overall"}


def test_a_pickapic_download_with_no_matching_votes_says_so(world):
    response = logged_in(world.scientist).get(_url(world), {
        "download": "1", "format": "pickapic-parquet", "until": "2001-01-01T00:00",
        "image_bytes": "on"})
    assert response.status_code == 200
    assert response["X-Export-Warning"].startswith("No judgments match")
    assert len(pd.read_parquet(io.BytesIO(_download(response)))) == 0


@pytest.mark.parametrize(("params", "field", "message"), [
    ({"format": "dpo-jsonl", "ties": "keep"}, "ties", "DPO rows need a chosen"),
    ({"format": "raw-csv", "aggregate": "pair"}, "aggregate", "Raw exports have one row"),
    ({"format": "raw-csv", "min_gold_accuracy": "1.5"}, "min_gold_accuracy", "1"),
    ({"format": "raw-csv", "since": "yesterday"}, "since", "since must be an ISO date"),
    ({"format": "raw-csv", "since": "2030-01-01T00:00", "until": "2020-01-01T00:00"},
     "until", "since must be before until"),
    ({"format": "xml"}, "format", "Select a valid choice"),
    ({"format": "raw-csv", "base_url": "ftp://x"}, "base_url", "valid URL"),
])
def test_bad_options_are_shown_next_to_their_field(world, params, field, message):
    response = logged_in(world.scientist).get(_url(world), {"download": "1", **params})
    assert response.status_code == 400
    assert not response.streaming
    errors = response.context["form"].errors.get(field, [])
    assert any(message in error for error in errors), response.context["form"].errors
    assert f'id="id_{field}_error"' in response.content.decode()


def test_the_filters_offer_what_this_campaign_asks_and_its_categories(world):
    from tests.factories import PromptFactory

    # A category of another prompt set of the project, which no task of this campaign has.
    PromptFactory(prompt_set__project=world.campaign.project, category="not-in-campaign")
    form = logged_in(world.scientist).get(_url(world)).context["form"]
    assert [value for value, _ in form.fields["criterion"].choices] == ["overall", "aesthetics"]
    categories = [value for value, _ in form.fields["category"].choices]
    used = sorted({task.prompt.category for task in world.tasks} - {""})
    assert categories == ["", *used] and "not-in-campaign" not in categories
