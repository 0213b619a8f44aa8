"""The dataset card prints user-written text (the campaign's name, its project, criteria) as
Markdown text: on one line, its Markdown punctuation escaped, so that a name cannot make a
heading, a link, a list or a table cell of its own; and as written, without Python's repr()
escapes for characters that print (docs/exports.md, "Dataset card")."""

from __future__ import annotations

import zipfile

import pytest

from evalhub.campaigns.models import Campaign
from evalhub.exports.card import markdown_text
from tests.exports.conftest import build_world
from tests.exports.helpers import export

pytestmark = pytest.mark.django_db

INJECTED = "multi\n## Injected heading\n- [click](javascript:alert(1))"
FLAG = "🏳️‍🌈 قطة"  # a ZWJ sequence and right-to-left letters


def _card(tmp_path, *, name: str) -> str:
    world = build_world(annotators=1)
    Campaign.objects.filter(pk=world.campaign.pk).update(name=name)
    world.campaign.refresh_from_db()
    world.vote(world.tasks[0], world.annotators[0], "a")
    path, _ = export(world, tmp_path, "raw-csv", bundle="zip")
    return zipfile.ZipFile(path).read("README.md").decode()


def test_a_campaign_name_cannot_add_headings_links_or_table_cells(tmp_path):
    card = _card(tmp_path, name=INJECTED)
    lines = card.splitlines()
    assert [line for line in lines if line.startswith("#")] == [
        r"# Preference data: multi \#\# Injected heading \- \[click\]\(javascript:alert\(1\)\)",
        "## Files", "## Counts", "## Agreement between annotators", "## Annotator quality",
        "## Filters used", "## Labels"]
    assert not any(line.startswith("- [") for line in lines)
    assert "](javascript:" not in card
    assert "| overall | 1 | 1 | 0 | 0 | 0 |" in lines  # the table as it was


def test_characters_that_print_are_written_as_they_are(tmp_path):
    card = _card(tmp_path, name=FLAG)
    assert f"# Preference data: {FLAG}" in card
    assert f"(“{FLAG}”)" in card
    assert "\\u" not in card.split("```json")[0]  # no repr() escapes in the prose


@pytest.mark.parametrize(("text", "shown"), [
    ("plain words 12", "plain words 12"),
    ("a\r\nb\u2028c\td", "a b c d"),
    ("*_`[]()#+-.!|<>~&\\{}", r"\*\_\`\[\]\(\)\#\+\-\.\!\|\<\>\~\&\\\{\}"),
    ("é 漢字 🏳️‍🌈", "é 漢字 🏳️‍🌈"),
])
def test_markdown_text_keeps_one_line_of_literal_text(text, shown):
    assert markdown_text(text) == shown
