"""since / until at the calendar's limits (evalhub/core/when.py, the one reading of both).

A time can only be held between 0001-01-01 and 9999-12-31 (UTC). A bound past those limits
on the side that excludes nothing (``since`` before the first day, ``until`` after the last:
``until=9999-12-31`` means through that whole day) is no bound at all; one that would exclude
every vote (``since`` after the last moment, ``until`` before the first) is refused. Either
way no caller (export API and page, export command, leaderboard API, page and command) answers
a 500 or a traceback.
"""

from __future__ import annotations

import io
from datetime import UTC, datetime

import pandas as pd
import pytest
from django.core.management import CommandError, call_command
from django.test import Client

from evalhub.core.errors import EvalHubError
from evalhub.core.when import parse_when
from tests.builders import build_campaign
from tests.leaderboards.helpers import cast

# Past the end on the side that excludes nothing: read as "no bound".
OPEN_SINCE = ["0001-01-01T00:00:00+01:00", "0001-01-01T00:30:00+01:00"]
OPEN_UNTIL = ["9999-12-31", "9999-12-31T23:59:59-01:00", "9999-12-31T23:30:00-00:45"]
# Past the end on the side that excludes everything: refused.
CLOSED_SINCE = ["9999-12-31T23:59:59-01:00"]
CLOSED_UNTIL = ["0001-01-01T00:00:00+01:00"]


@pytest.mark.parametrize("raw", OPEN_SINCE)
def test_a_since_before_the_first_day_is_no_lower_bound(raw):
    assert parse_when(raw, name="since", end_of_day=False) is None


@pytest.mark.parametrize("raw", OPEN_UNTIL)
def test_an_until_after_the_last_day_is_no_upper_bound(raw):
    assert parse_when(raw, name="until", end_of_day=True) is None


@pytest.mark.parametrize(("raw", "name", "end_of_day"), [
    *((raw, "since", False) for raw in CLOSED_SINCE),
    *((raw, "until", True) for raw in CLOSED_UNTIL),
])
def test_a_bound_that_would_exclude_every_vote_is_refused(raw, name, end_of_day):
    with pytest.raises(EvalHubError, match=f"{name} .* cannot be"):
        parse_when(raw, name=name, end_of_day=end_of_day)


def test_bounds_inside_the_calendar_are_kept_exactly_and_in_utc():
    assert parse_when("0001-01-01", name="since", end_of_day=False) == datetime(
        1, 1, 1, tzinfo=UTC)
    assert parse_when("9999-12-30", name="until", end_of_day=True) == datetime(
        9999, 12, 31, tzinfo=UTC)
    last = parse_when("9999-12-31T23:59:59+00:00", name="until", end_of_day=True)
    assert last == datetime(9999, 12, 31, 23, 59, 59, tzinfo=UTC)
    shifted = parse_when("2026-12-05T10:00:00+02:00", name="since", end_of_day=False)
    assert shifted.utcoffset().total_seconds() == 0  # held in UTC, as the database reads it
    assert shifted == datetime(2026, 12, 5, 8, tzinfo=UTC)


@pytest.mark.parametrize("raw", ["2026-12-05", "20261205", "2026-W49-6", "2026W496"])
def test_every_iso_form_of_a_date_alone_is_that_whole_day(raw):
    assert parse_when(raw, name="since", end_of_day=False) == datetime(2026, 12, 5, tzinfo=UTC)
    assert parse_when(raw, name="until", end_of_day=True) == datetime(2026, 12, 6, tzinfo=UTC)


@pytest.mark.parametrize("raw", ["2026-13-01", "20261332", "2026-12-05T25:00", "yesterday", "",
                                 "2026-W49", "2026W49", "2026-W49T10:00", "2026W49T1000Z"])
def test_a_malformed_bound_is_refused_in_words(raw):
    with pytest.raises(EvalHubError, match="until must be an ISO date or datetime"):
        parse_when(raw, name="until", end_of_day=True)


# --- through every caller ----------------------------------------------------------------


@pytest.fixture
def world(db):
    world = build_campaign(runs=2, prompts=2, annotators=2)
    cast(world.tasks[0], world.annotators[0], "a")
    cast(world.tasks[1], world.annotators[1], "b")
    return world


def _export_api(world, **params):
    client = Client()
    client.force_login(world.scientist)
    return client.get(f"/api/v1/campaigns/{world.campaign.pk}/export/",
                      {"format": "raw-csv", **params})


def _rows(response) -> int:
    return len(pd.read_csv(io.BytesIO(b"".join(response.streaming_content))))


OPEN = [{"until": raw} for raw in OPEN_UNTIL] + [{"since": raw} for raw in OPEN_SINCE] + [
    {"since": "0001-01-01", "until": "9999-12-31"}]
CLOSED = [{"until": raw} for raw in CLOSED_UNTIL] + [{"since": raw} for raw in CLOSED_SINCE]


@pytest.mark.parametrize("params", OPEN)
@pytest.mark.parametrize("fmt", ["raw-csv", "dpo-jsonl"])
def test_the_export_api_reads_an_open_bound_as_no_bound(world, params, fmt):
    response = _export_api(world, **params, format=fmt)
    assert response.status_code == 200
    body = b"".join(response.streaming_content)
    rows = body.decode().splitlines()
    assert len(rows) == 2 + (fmt == "raw-csv")  # (a header)
    assert "X-Export-Warning" not in response


@pytest.mark.parametrize("params", CLOSED)
def test_the_export_api_refuses_a_bound_that_excludes_everything(world, params):
    response = _export_api(world, **params)
    assert response.status_code == 400
    [name] = params
    assert name in response.json() and "cannot be" in str(response.json()[name])


def test_the_export_page_reads_open_bounds_and_refuses_closed_ones(world):
    client = Client()
    client.force_login(world.scientist)
    url = f"/campaigns/{world.campaign.pk}/export/"
    for params in OPEN:
        response = client.get(url, {"download": "1", "format": "raw-csv", **params})
        assert response.status_code == 200, params
        assert _rows(response) == 2
    for params in CLOSED:
        response = client.get(url, {"download": "1", "format": "raw-csv", **params})
        assert response.status_code == 400, params
        [name] = params
        assert any("cannot be" in error for error in response.context["form"].errors[name])


def test_the_export_command_reads_open_bounds_and_refuses_closed_ones(world, tmp_path):
    out = tmp_path / "x.csv"
    for params in OPEN:
        flags = [part for name, raw in params.items() for part in (f"--{name}", raw)]
        call_command("export_preferences", world.campaign.pk, "--format", "raw-csv",
                     "--output", str(out), "--overwrite", *flags, stdout=io.StringIO())
        assert len(pd.read_csv(out)) == 2, params
    for params in CLOSED:
        [(name, raw)] = params.items()
        with pytest.raises(CommandError, match=f"{name} .* cannot be"):
            call_command("export_preferences", world.campaign.pk, "--format", "raw-csv",
                         "--output", str(out), "--overwrite", f"--{name}", raw)


def test_the_leaderboard_reads_open_bounds_and_refuses_closed_ones(world, api):
    api.force_authenticate(world.scientist)
    url = f"/api/v1/campaigns/{world.campaign.pk}/leaderboard/"
    for params in OPEN:
        response = api.get(url, params)
        assert response.status_code == 200, params
        assert response.json()["filters"]["until"] is None
    for params in CLOSED:
        response = api.get(url, params)
        assert response.status_code == 400, params
        assert "cannot be" in response.json()["detail"]
    page = Client()
    page.force_login(world.scientist)
    dashboard = f"/dashboard/campaigns/{world.campaign.pk}/"
    for params in OPEN:
        assert page.get(dashboard, params).status_code == 200, params
    for params in CLOSED:  # the page shows the refusal above the unfiltered board
        answer = page.get(dashboard, params)
        assert answer.status_code == 200 and "cannot be" in answer.content.decode(), params
    for params in CLOSED:
        [(name, raw)] = params.items()
        with pytest.raises(CommandError, match="cannot be"):
            call_command("leaderboard", world.campaign.pk, f"--{name}", raw,
                         stdout=io.StringIO())
