"""The summary line of ``manage.py export_preferences`` names each count in the singular for
exactly one ("1 row (1 vote, 1 annotator)") and in the plural for any other number."""

from __future__ import annotations

import io

import pytest
from django.core.management import call_command

from tests.builders import build_campaign, cast_vote

pytestmark = pytest.mark.django_db


def test_one_vote_by_one_annotator_is_summed_up_in_the_singular(tmp_path):
    world = build_campaign(runs=2, prompts=1, annotators=1)
    cast_vote(world.campaign, world.annotator)
    out = io.StringIO()
    call_command("export_preferences", world.campaign.pk, "--format", "raw-csv",
                 "--output", str(tmp_path / "votes.csv"), stdout=out)
    assert "Wrote 1 row (1 vote, 1 annotator) to " in out.getvalue()
