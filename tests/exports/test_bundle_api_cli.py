"""Bundles and the dataset card, the download API, the command and its bad inputs."""

from __future__ import annotations

import io
import json
import zipfile

import pandas as pd
import pyarrow.parquet as pq
import pytest
from django.core.management import CommandError, call_command

from evalhub.exports.formats import RAW_SCHEMA
from evalhub.exports.services import EMPTY_MESSAGE
from tests.exports.helpers import alias, export, read


@pytest.fixture
def voted(world):
    t0, t1, _, _ = world.tasks
    u0, u1, _ = world.annotators
    world.vote(t0, u0, "a")
    world.vote(t0, u1, "tie")
    world.vote(t1, u0, "b")
    world.vote(t1, u0, "a", criterion="aesthetics")
    return world


def test_zip_bundle_holds_data_card_and_exactly_the_referenced_images(voted, tmp_path):
    path, summary = export(voted, tmp_path, "dpo-jsonl", bundle="zip")
    t0, t1 = voted.tasks[:2]
    with zipfile.ZipFile(path) as archive:
        names = set(archive.namelist())
        lines = archive.read("preferences.jsonl").decode().splitlines()
        card = archive.read("README.md").decode()
        expected = {f"images/{t.image_a.blob.sha256}.png" for t in (t0, t1)} | {
            f"images/{t.image_b.blob.sha256}.png" for t in (t0, t1)}
        assert names == {"preferences.jsonl", "README.md"} | expected
        for line in map(json.loads, lines):
            assert archive.read(line["chosen"]) == archive.read(
                f"images/{line['chosen_sha256']}.png")
    assert len(lines) == summary.rows == 3  # the tie is not DPO data
    assert summary.images == 4
    assert "- rows: 3" in card and "- annotators: 1" in card
    assert "| overall | 2 | 1 | 1 | 0 | 0 |" in card
    assert "| aesthetics | 1 | 1 | 0 | 0 | 0 |" in card
    assert "Krippendorff" in card and '"format": "dpo-jsonl"' in card


def test_folder_bundle_and_card_counts(voted, tmp_path):
    out = tmp_path / "bundle"
    call_command("export_preferences", voted.campaign.pk, "--format", "raw-parquet",
                 "--output", str(out), "--bundle", "folder")
    frame = pd.read_parquet(out / "judgments.parquet")
    assert len(frame) == 4
    assert len(list((out / "images").iterdir())) == 4
    card = (out / "README.md").read_text()
    assert "| overall | 3 | 1 | 1 | 1 | 0 |" in card
    assert "- annotators: 2" in card
    # Replacing an earlier bundle is allowed with --overwrite.
    call_command("export_preferences", voted.campaign.pk, "--format", "raw-parquet",
                 "--output", str(out), "--bundle", "folder", "--overwrite")


def test_gold_accuracy_distribution_in_the_card(db, tmp_path):
    from tests.exports.conftest import build_world

    world = build_world(with_gold=True)
    good, bad, _ = world.annotators
    world.vote(world.gold, good, "a")
    world.vote(world.gold, bad, "b")
    world.vote(world.tasks[0], good, "a")
    path, _ = export(world, tmp_path, "raw-csv", bundle="zip")
    card = zipfile.ZipFile(path).read("README.md").decode()
    assert "- annotators with gold votes: 2" in card
    assert "- min / median / max: 0.000 / 0.500 / 1.000" in card
    assert "| [0.0, 0.5) | 1 |" in card and "| [0.9, 1.0] | 1 |" in card


# --- API -------------------------------------------------------------------------------


def url(world, **params):
    query = "&".join(f"{k}={v}" for k, v in params.items())
    return f"/api/v1/campaigns/{world.campaign.pk}/export/?{query}"


@pytest.mark.parametrize("role", ["owner", "scientist"])
def test_owners_and_scientists_download_a_stream(voted, api, role):
    api.force_authenticate(getattr(voted, role))
    response = api.get(url(voted, format="raw-parquet"))
    assert response.status_code == 200
    assert response.streaming
    assert "campaign-" in response["Content-Disposition"]
    body = b"".join(response.streaming_content)
    assert len(pd.read_parquet(io.BytesIO(body))) == 4


def test_api_jsonl_zip_and_filters(voted, api):
    api.force_authenticate(voted.scientist)
    response = api.get(url(voted, format="dpo-jsonl", criterion="overall"))
    lines = b"".join(response.streaming_content).decode().splitlines()
    assert response["Content-Type"] == "application/x-ndjson"
    assert [json.loads(line)["criterion"] for line in lines] == ["overall", "overall"]
    response = api.get(url(voted, format="pickapic-parquet", bundle="zip"))
    archive = zipfile.ZipFile(io.BytesIO(b"".join(response.streaming_content)))
    assert "preferences.parquet" in archive.namelist() and "README.md" in archive.namelist()


def test_annotators_get_403_and_outsiders_404(voted, api, outsider):
    api.force_authenticate(voted.annotators[0])
    assert api.get(url(voted, format="raw-csv")).status_code == 403
    api.force_authenticate(outsider)
    assert api.get(url(voted, format="raw-csv")).status_code == 404
    api.force_authenticate(None)
    assert api.get(url(voted, format="raw-csv")).status_code in (401, 403)


def test_only_owners_export_raw_usernames(voted, api):
    api.force_authenticate(voted.scientist)
    assert api.get(url(voted, format="raw-csv", raw_usernames="true")).status_code == 403
    api.force_authenticate(voted.owner)
    response = api.get(url(voted, format="raw-csv", raw_usernames="true"))
    frame = pd.read_csv(io.BytesIO(b"".join(response.streaming_content)))
    assert voted.annotators[0].username in set(frame["annotator"])


def test_api_bad_inputs(voted, api):
    api.force_authenticate(voted.owner)
    response = api.get(url(voted, format="excel"))
    assert response.status_code == 400 and "Unknown export format" in response.json()["detail"]
    assert api.get("/api/v1/campaigns/999999/export/?format=raw-csv").status_code == 404
    response = api.get(url(voted, format="raw-csv", aggregate="pair"))
    assert response.status_code == 400


def test_api_empty_selection_is_a_valid_empty_file_with_a_warning(voted, api):
    api.force_authenticate(voted.owner)
    response = api.get(url(voted, format="raw-parquet", category="nope"))
    assert response.status_code == 200 and response["X-Export-Warning"] == EMPTY_MESSAGE
    table = pq.read_table(io.BytesIO(b"".join(response.streaming_content)))
    assert table.num_rows == 0 and table.schema.remove_metadata() == RAW_SCHEMA


# --- command ---------------------------------------------------------------------------


def test_command_writes_and_refuses_to_overwrite(voted, tmp_path, capsys):
    out = tmp_path / "prefs.jsonl"
    call_command("export_preferences", voted.campaign.pk, "--format", "dpo-jsonl",
                 "--output", str(out))
    assert "Wrote 3 rows" in capsys.readouterr().out
    with pytest.raises(CommandError, match="already exists"):
        call_command("export_preferences", voted.campaign.pk, "--format", "dpo-jsonl",
                     "--output", str(out))
    call_command("export_preferences", voted.campaign.pk, "--format", "dpo-jsonl",
                 "--output", str(out), "--overwrite", "--criterion", "overall",
                 "--raw-usernames")
    lines = [json.loads(line) for line in out.read_text().splitlines()]
    assert {line["annotator"] for line in lines} == {voted.annotators[0].username}
    assert not list(tmp_path.glob(".*partial*"))


def test_command_bad_inputs(voted, tmp_path):
    with pytest.raises(CommandError, match="No campaign with id 999999"):
        call_command("export_preferences", 999999, "--format", "raw-csv",
                     "--output", str(tmp_path / "x.csv"))
    with pytest.raises(CommandError, match="invalid choice"):
        call_command("export_preferences", voted.campaign.pk, "--format", "excel",
                     "--output", str(tmp_path / "x.csv"))
    with pytest.raises(CommandError, match="does not exist"):
        call_command("export_preferences", voted.campaign.pk, "--format", "raw-csv",
                     "--output", str(tmp_path / "missing" / "x.csv"))
    with pytest.raises(CommandError, match="between 0 and 1"):
        call_command("export_preferences", voted.campaign.pk, "--format", "raw-csv",
                     "--output", str(tmp_path / "x.csv"), "--min-agreement", "2")


@pytest.mark.parametrize("bundle", [None, "folder"])
def test_a_card_that_cannot_be_written_leaves_nothing_behind(voted, tmp_path, bundle):
    out = tmp_path / ("prefs" if bundle == "folder" else "prefs.csv")
    how = ["--bundle", bundle] if bundle else []
    refused = {tmp_path / "missing" / "README.md": "does not exist",
               tmp_path: "is a folder", out: "is a folder or the export itself"}
    for card, message in refused.items():
        with pytest.raises(CommandError, match=message):
            call_command("export_preferences", voted.campaign.pk, "--format", "raw-csv",
                         "--output", str(out), *how, "--card", str(card))
        assert not out.exists() and not list(tmp_path.glob(".*partial*"))
    # The same command with a card it can write: both files, nothing refused as existing.
    card = tmp_path / "card.md"
    call_command("export_preferences", voted.campaign.pk, "--format", "raw-csv",
                 "--output", str(out), *how, "--card", str(card))
    assert out.exists() and "Exported by EvalHub" in card.read_text()


def test_a_card_inside_a_folder_bundle_is_written_into_it_new_or_replaced(voted, tmp_path):
    out = tmp_path / "bundle"
    for again in ([], ["--overwrite"]):
        call_command("export_preferences", voted.campaign.pk, "--format", "raw-csv",
                     "--output", str(out), "--bundle", "folder", "--card",
                     str(out / "cards" / "CARD.md"), *again)
        assert "Exported by EvalHub" in (out / "cards" / "CARD.md").read_text()
        assert (out / "judgments.csv").exists()
    assert not list(tmp_path.glob(".*partial*"))
    # A card path that is one of the export's own files would take its place: refused.
    data = (out / "judgments.csv").read_bytes()
    with pytest.raises(CommandError, match="is a file of the export itself"):
        call_command("export_preferences", voted.campaign.pk, "--format", "raw-csv",
                     "--output", str(out), "--bundle", "folder", "--card",
                     str(out / "judgments.csv"), "--overwrite")
    assert (out / "judgments.csv").read_bytes() == data


@pytest.mark.parametrize("fmt", ["raw-csv", "raw-parquet", "pickapic-parquet", "dpo-jsonl"])
def test_filters_that_select_nothing_give_an_empty_valid_file(voted, tmp_path, capsys, fmt):
    out = tmp_path / f"empty.{fmt}"
    call_command("export_preferences", voted.campaign.pk, "--format", fmt,
                 "--output", str(out), "--category", "no-such-category")
    assert EMPTY_MESSAGE in capsys.readouterr().err
    if fmt == "dpo-jsonl":
        assert out.read_bytes() == b""
    elif fmt == "raw-csv":
        frame = pd.read_csv(out)
        assert list(frame.columns) == RAW_SCHEMA.names and frame.empty
    else:
        table = pq.read_table(out)
        assert table.num_rows == 0
        assert "label_0" in table.schema.names if fmt == "pickapic-parquet" else (
            table.schema.remove_metadata() == RAW_SCHEMA)


def test_pseudonyms_are_stable_per_campaign(voted, tmp_path):
    a = read(export(voted, tmp_path, "raw-parquet", name="a.parquet")[0], "raw-parquet")
    b = read(export(voted, tmp_path, "raw-parquet", name="b.parquet")[0], "raw-parquet")
    assert list(a["annotator"]) == list(b["annotator"])
    assert alias(voted, voted.annotators[0]) in set(a["annotator"])


def test_until_a_date_includes_that_day_in_exports_as_in_the_leaderboard(world, api, tmp_path):
    # One reading of since/until (evalhub/core/when.py) for the export API, its command and
    # the leaderboard: the same filter keeps the same votes everywhere.
    from datetime import UTC, datetime

    from evalhub.leaderboards.filters import parse_filters

    t0 = world.tasks[0]
    at = datetime(2026, 12, 5, 15, 30, tzinfo=UTC)
    world.vote(t0, world.annotators[0], "a", at=at)
    api.force_authenticate(world.owner)

    def rows(until: str) -> int:
        answer = api.get(url(world, format="raw-csv", until=until))
        return len(pd.read_csv(io.BytesIO(b"".join(answer.streaming_content))))

    assert rows("2026-12-05") == 1
    assert rows("2026-12-05T15:00") == 0
    out = tmp_path / "day.csv"
    call_command("export_preferences", world.campaign.pk, "--format", "raw-csv", "--output",
                 str(out), "--until", "2026-12-05", stdout=io.StringIO())
    assert len(pd.read_csv(out)) == 1
    board = parse_filters(campaign=world.campaign, params={"until": "2026-12-05"})
    assert board.until == datetime(2026, 12, 6, tzinfo=UTC)
    with pytest.raises(CommandError, match="since must be an ISO date or datetime, got "
                                           "'2026-13-45'"):
        call_command("export_preferences", world.campaign.pk, "--format", "raw-csv",
                     "--output", str(out), "--since", "2026-13-45")
    bad = api.get(url(world, format="raw-csv", since="notadate"))
    assert bad.status_code == 400 and "since must be an ISO date" in str(bad.json())
