"""A campaign's name and instructions change after it is created, and nothing else does: the
service (``campaign_update``), the API's ``PATCH /api/v1/campaigns/<id>/``, the ``campaign``
command's ``--rename`` and ``--instructions-file``, and what annotators and leaderboards show
afterwards. The campaign page's form: test_campaign_edit_page.py."""

from __future__ import annotations

import io
import unicodedata

import pytest
from django.core.management import CommandError, call_command

from evalhub.campaigns.management.commands.campaign import Command as CampaignCommand
from evalhub.campaigns.models import Campaign, CampaignStatus
from evalhub.campaigns.services import campaign_create, campaign_set_status, campaign_update
from evalhub.core.errors import NameTaken
from evalhub.core.limits import MAX_TEXT_CHARS
from evalhub.leaderboards.filters import LeaderboardFilters
from evalhub.leaderboards.services import campaign_leaderboards_refresh, leaderboard_get
from tests.builders import CampaignWorld, build_campaign, cast_vote, logged_in
from tests.factories import CampaignFactory, UserFactory

pytestmark = pytest.mark.django_db

CAFE_NFC = "caf\u00e9 study"
CAFE_NFD = unicodedata.normalize("NFD", CAFE_NFC)
RLO = "\u202e"


def study_world() -> CampaignWorld:
    """The campaign these tests edit, "Study" ("Pick the better image."): two runs, two
    prompts, one annotator. The campaign page's form tests (test_campaign_edit_page.py) edit
    it too."""
    return build_campaign(runs=2, prompts=2, annotators=1, name="Study",
                          instructions="Pick the better image.")


@pytest.fixture
def world() -> CampaignWorld:
    return study_world()


def _stored(campaign: Campaign) -> Campaign:
    """``campaign`` as the database holds it now."""
    return Campaign.objects.get(pk=campaign.pk)


def _stored_text(campaign: Campaign) -> tuple[str, str]:
    """``campaign``'s name and instructions as the database holds them now."""
    stored = _stored(campaign)
    return stored.name, stored.instructions


# --- the service ---------------------------------------------------------------------------


def test_the_service_renames_and_rewords_a_campaign_and_changes_nothing_else(world):
    campaign = world.campaign
    before = {field: getattr(_stored(campaign), field) for field in (
        "criteria", "judgments_per_pair", "gold_rate", "pair_policy", "task_kind", "k",
        "status", "lease_seconds", "prompt_category")}

    returned = campaign_update(campaign=campaign, name="Study (v2)",
                               instructions="Pick the image closer to the prompt.")

    stored = _stored(campaign)
    assert returned is campaign
    assert (campaign.name, campaign.instructions) == ("Study (v2)",
                                                      "Pick the image closer to the prompt.")
    assert (stored.name, stored.instructions) == (campaign.name, campaign.instructions)
    assert {field: getattr(stored, field) for field in before} == before
    assert stored.tasks.count() == 2  # its tasks stay as they were built


def test_each_field_changes_alone_and_empty_instructions_clear_them(world):
    campaign_update(campaign=world.campaign, name="Renamed")
    assert _stored_text(world.campaign) == ("Renamed", "Pick the better image.")
    campaign_update(campaign=world.campaign, instructions="")
    assert _stored_text(world.campaign) == ("Renamed", "")
    campaign_update(campaign=world.campaign)  # nothing asked, nothing changed
    assert _stored(world.campaign).name == "Renamed"


def test_a_name_another_campaign_of_the_project_has_is_taken(world):
    CampaignFactory(project=world.campaign.project, name="Taken")
    with pytest.raises(NameTaken) as taken:
        campaign_update(campaign=world.campaign, name="Taken", instructions="changed")
    assert taken.value.fields == {
        "name": ["The project already has a campaign named 'Taken'."]}
    assert taken.value.http_status == 409 and taken.value.code == "duplicate"
    stored = _stored(world.campaign)
    assert (stored.name, stored.instructions) == ("Study", "Pick the better image.")


def test_its_own_name_and_another_projects_campaigns_names_are_free(world):
    CampaignFactory(name="Elsewhere")  # another project
    campaign_update(campaign=world.campaign, name="Study")
    campaign_update(campaign=world.campaign, name="Elsewhere")
    assert _stored(world.campaign).name == "Elsewhere"


@pytest.mark.parametrize("status", [CampaignStatus.PAUSED, CampaignStatus.CLOSED,
                                    CampaignStatus.FAILED, CampaignStatus.BUILDING])
def test_a_campaign_in_any_status_can_be_renamed(world, status):
    Campaign.objects.filter(pk=world.campaign.pk).update(status=status)
    world.campaign.refresh_from_db()
    campaign_update(campaign=world.campaign, name="After the fact", instructions="Noted.")
    stored = _stored(world.campaign)
    assert (stored.name, stored.instructions, stored.status) == ("After the fact", "Noted.",
                                                                  status)


def test_the_service_reads_the_row_it_locks_not_the_callers_copy(world):
    # A copy read before another change (a status change, say) does not write that field back.
    stale_copy = _stored(world.campaign)
    campaign_set_status(campaign=world.campaign, status=CampaignStatus.PAUSED)
    campaign_update(campaign=stale_copy, name="Renamed")
    stored = _stored(world.campaign)
    assert (stored.name, stored.status) == ("Renamed", CampaignStatus.PAUSED)


# --- what others show after a rename -------------------------------------------------------


def test_a_rename_makes_the_leaderboards_that_show_the_name_stale(world, sent_tasks):
    campaign = world.campaign
    cast_vote(campaign, world.annotator)
    other = campaign_create(project=campaign.project, name="Other", runs=world.runs,
                            build_now=True)
    pooled = LeaderboardFilters(pool=(campaign.pk,))
    leaderboard_get(campaign=campaign, filters=LeaderboardFilters())
    leaderboard_get(campaign=other, filters=pooled)
    elsewhere = build_campaign(runs=2, prompts=1, annotators=0, name="Study")
    leaderboard_get(campaign=elsewhere.campaign, filters=LeaderboardFilters())

    campaign_update(campaign=campaign, name="Study (v2)")

    # The board's own snapshot: served as stored, said stale, a refresh queued, as after a vote.
    snapshot, stale = leaderboard_get(campaign=campaign, filters=LeaderboardFilters())
    assert stale
    campaign_leaderboards_refresh(campaign=campaign)
    snapshot, stale = leaderboard_get(campaign=campaign, filters=LeaderboardFilters())
    assert not stale and snapshot.result.campaign.name == "Study (v2)"
    # A board of another campaign that pools it names it too: recomputed when read.
    snapshot, stale = leaderboard_get(campaign=other, filters=pooled)
    assert not stale and [p.name for p in snapshot.result.pooled] == ["Study (v2)"]
    # Another project's boards are not touched.
    assert not leaderboard_get(campaign=elsewhere.campaign, filters=LeaderboardFilters())[1]


def test_the_rating_page_shows_the_new_name_and_instructions_on_its_next_load(world):
    client = logged_in(world.annotator)
    assert "Pick the better image." in client.get(f"/rate/{world.campaign.pk}/").content.decode()
    campaign_update(campaign=world.campaign, name="Study (v2)",
                    instructions="Pick the image that follows the prompt.")
    html = client.get(f"/rate/{world.campaign.pk}/").content.decode()
    assert "Pick the image that follows the prompt." in html
    assert "Pick the better image." not in html
    assert '<span class="rate-campaign" dir="auto">Study (v2)</span>' in html
    # The annotator API's campaign answer too.
    about = client.get(f"/api/v1/rate/{world.campaign.pk}/").json()
    assert (about["name"], about["instructions"]) == (
        "Study (v2)", "Pick the image that follows the prompt.")


# --- the API -------------------------------------------------------------------------------


def _patch(api, campaign: Campaign, body: dict, *, user=None):
    if user is not None:
        api.force_authenticate(user)
    return api.patch(f"/api/v1/campaigns/{campaign.pk}/", body, format="json")


@pytest.mark.parametrize("who", ["scientist", "owner"])
def test_writers_rename_and_reword_through_the_api(api, world, who):
    answer = _patch(api, world.campaign, {"name": "Study (v2)", "instructions": "New words."},
                    user=getattr(world, who))
    assert answer.status_code == 200, answer.json()
    body = answer.json()
    assert (body["name"], body["instructions"]) == ("Study (v2)", "New words.")
    assert body["id"] == world.campaign.pk and body["status"] == CampaignStatus.ACTIVE
    assert "progress" in body  # the campaign as GET answers it
    stored = _stored(world.campaign)
    assert (stored.name, stored.instructions) == ("Study (v2)", "New words.")


def test_a_campaign_fetched_edited_and_sent_back_is_accepted(api, world):
    api.force_authenticate(world.scientist)
    body = api.get(f"/api/v1/campaigns/{world.campaign.pk}/").json()
    body["name"] = "Study (v2)"
    # The state the server keeps may have moved since the fetch: it is not compared.
    body["status"] = CampaignStatus.PAUSED
    body["progress"] = {}
    answer = _patch(api, world.campaign, body)
    assert answer.status_code == 200, answer.json()
    stored = _stored(world.campaign)
    assert (stored.name, stored.status) == ("Study (v2)", CampaignStatus.ACTIVE)


def test_a_name_taken_in_the_project_is_409_duplicate_even_as_its_nfd_twin(api, world):
    CampaignFactory(project=world.campaign.project, name=CAFE_NFC)
    for sent in (CAFE_NFC, CAFE_NFD):
        answer = _patch(api, world.campaign, {"name": sent}, user=world.scientist)
        assert answer.status_code == 409, answer.json()
        body = answer.json()
        assert body["code"] == "duplicate"
        assert len(body["errors"]) == 1 and body["errors"][0].startswith("name: ")
    assert _stored(world.campaign).name == "Study"


def test_a_name_typed_decomposed_is_stored_composed(api, world):
    answer = _patch(api, world.campaign, {"name": f"  {CAFE_NFD} "}, user=world.scientist)
    assert answer.status_code == 200, answer.json()
    assert _stored(world.campaign).name == CAFE_NFC


@pytest.mark.parametrize("name", [f"study{RLO}2v", "tab\there", "", " ", "x" * 201])
def test_a_name_against_the_rule_or_too_long_is_refused_under_name(api, world, name):
    answer = _patch(api, world.campaign, {"name": name}, user=world.scientist)
    assert answer.status_code == 400
    assert list(answer.json()) == ["name"]
    assert _stored(world.campaign).name == "Study"


def test_instructions_keep_what_free_text_keeps_within_its_limits(api, world):
    # Instructions are not a name: a bidi override or a newline is the writer's text.
    kept = f"Read the prompt.\n\u05e9\u05dc\u05d5\u05dd {RLO}then pick."  # Hebrew "shalom"
    assert _patch(api, world.campaign, {"instructions": kept},
                  user=world.scientist).status_code == 200
    assert _stored(world.campaign).instructions == kept
    url = f"/api/v1/campaigns/{world.campaign.pk}/"
    for refused in ('"' + "x" * (MAX_TEXT_CHARS + 1) + '"', '"nul\\u0000inside"',
                    '"\\ud800"'):  # JSON text: a lone surrogate has no UTF-8 form
        answer = api.patch(url, '{"instructions": ' + refused + "}",
                           content_type="application/json")
        assert answer.status_code == 400, refused
        assert list(answer.json()) == ["instructions"]
    assert _stored(world.campaign).instructions == kept


def test_annotators_outsiders_and_anonymous_callers_change_nothing(api, world):
    # The campaigns API shows campaigns to owners and scientists only (annotators rate blind):
    # to an annotator of the project the campaign does not exist, as to an outsider.
    for user, status in ((world.annotator, 404), (UserFactory(), 404)):
        answer = _patch(api, world.campaign, {"name": "Hijacked"}, user=user)
        assert answer.status_code == status
        assert answer.json() == {"detail": "Not found.", "code": "not_found"}
    api.force_authenticate(None)
    assert _patch(api, world.campaign, {"name": "Hijacked"}).status_code in (401, 403)
    assert _stored(world.campaign).name == "Study"


def test_another_projects_campaign_is_not_found(api, world):
    elsewhere = build_campaign(runs=2, prompts=1, annotators=0, name="Elsewhere")
    answer = _patch(api, elsewhere.campaign, {"name": "Mine now"}, user=world.scientist)
    assert answer.status_code == 404
    assert answer.json() == {"detail": "Not found.", "code": "not_found"}
    assert _stored(elsewhere.campaign).name == "Elsewhere"


def test_an_unknown_key_is_refused_naming_what_the_endpoint_takes(api, world):
    answer = _patch(api, world.campaign, {"name": "Study (v2)", "descripton": "typo"},
                    user=world.scientist)
    assert answer.status_code == 400
    assert list(answer.json()) == ["descripton"]
    assert answer.json()["descripton"] == [
        "Unknown field. This endpoint takes: name, instructions."]
    assert _stored(world.campaign).name == "Study"


def test_a_setting_fixed_at_creation_is_read_only(api, world):
    # Another value of a setting, of the project or of the runs is refused, each key named, in
    # the words of every read-only key of the API; nothing is stored, the name neither.
    other = build_campaign(runs=2, prompts=1, annotators=0)
    answer = _patch(api, world.campaign, {
        "name": "Study (v2)", "judgments_per_pair": 9, "criteria": ["overall", "alignment"],
        "project": other.campaign.project_id, "runs": [world.runs[0].pk]},
        user=world.scientist)
    assert answer.status_code == 400
    body = answer.json()
    assert sorted(body) == ["criteria", "judgments_per_pair", "project", "runs"]
    assert body["judgments_per_pair"] == [
        "judgments_per_pair is read-only: this object's is 3, not 9. Leave it out, or send it "
        "as fetched."]
    assert body["project"][0].startswith("project is read-only: this object's is ")
    assert _stored(world.campaign).name == "Study"
    assert _stored(world.campaign).judgments_per_pair == 3


def test_a_setting_sent_with_its_own_value_is_accepted(api, world):
    answer = _patch(api, world.campaign, {
        "name": "Study (v2)", "judgments_per_pair": 3, "criteria": ["overall"],
        "gold_rate": 0, "min_lpips_distance": None, "task_kind": "pair", "k": 2},
        user=world.scientist)
    assert answer.status_code == 200, answer.json()
    assert _stored(world.campaign).name == "Study (v2)"


def test_put_is_not_offered(api, world):
    api.force_authenticate(world.scientist)
    body = api.get(f"/api/v1/campaigns/{world.campaign.pk}/").json()
    answer = api.put(f"/api/v1/campaigns/{world.campaign.pk}/", body, format="json")
    assert answer.status_code == 405
    assert "PUT" in answer.json()["detail"]
    assert "PATCH" in answer["Allow"] and "PUT" not in answer["Allow"]


def test_the_schema_documents_patch_with_the_two_fields_it_takes():
    from drf_spectacular.generators import SchemaGenerator

    schema = SchemaGenerator().get_schema(request=None, public=True)
    item = schema["paths"]["/api/v1/campaigns/{id}/"]
    assert "patch" in item and "put" not in item
    ref = item["patch"]["requestBody"]["content"]["application/json"]["schema"]["$ref"]
    body = schema["components"]["schemas"][ref.rsplit("/", 1)[1]]
    writable = {name for name, prop in body["properties"].items() if not prop.get("readOnly")}
    assert writable == {"name", "instructions"}
    assert {"200", "400", "404", "409"} <= set(item["patch"]["responses"])


# --- the command ---------------------------------------------------------------------------


def _campaign(*args: str) -> str:
    out = io.StringIO()
    call_command("campaign", *args, stdout=out)
    return out.getvalue()


def _exit_status(monkeypatch, capsys, *args: str) -> tuple[int, str]:
    """The exit status and stderr of ``manage.py campaign ARGS`` as a shell sees them
    (``run_from_argv``: argparse's usage errors exit 2, a ``CommandError`` 1). Its closing of
    the database connections at the end would end the test's transaction: left out."""
    monkeypatch.setattr("django.core.management.base.connections.close_all", lambda: None)
    try:
        CampaignCommand().run_from_argv(["manage.py", "campaign", *args, "--skip-checks"])
    except SystemExit as end:
        return int(end.code or 0), capsys.readouterr().err
    return 0, capsys.readouterr().err


def test_the_command_renames_a_campaign(world):
    text = _campaign(str(world.campaign.pk), "--rename", f" {CAFE_NFD} ")
    assert text.splitlines()[0] == (
        f"Campaign {world.campaign.pk}: renamed 'Study' -> '{CAFE_NFC}'.")
    assert f"Campaign {world.campaign.pk} '{CAFE_NFC}'" in text  # then its state, as always
    assert _stored(world.campaign).name == CAFE_NFC


def test_the_command_says_when_nothing_changed(world, tmp_path):
    # The name it has (also typed decomposed) and the text it has: nothing to report as done.
    world.campaign.name = CAFE_NFC
    world.campaign.save(update_fields=["name"])
    path = tmp_path / "same.txt"
    path.write_text("Pick the better image.", encoding="utf-8")
    text = _campaign(str(world.campaign.pk), "--rename", CAFE_NFD, "--instructions-file",
                     str(path))
    assert text.splitlines()[:2] == [
        f"Campaign {world.campaign.pk}: already named '{CAFE_NFC}'.",
        f"Campaign {world.campaign.pk}: instructions unchanged."]


def test_the_command_replaces_the_instructions_from_a_utf8_file(world, tmp_path):
    path = tmp_path / "instructions.txt"
    written = "Lisez le prompt.\nPuis choisissez l'image la plus fidèle.\n"
    path.write_bytes(b"\xef\xbb\xbf" + written.encode("utf-8"))  # with a BOM, as Notepad saves
    text = _campaign(str(world.campaign.pk), "--instructions-file", str(path))
    assert f"Campaign {world.campaign.pk}: instructions replaced" in text
    assert _stored(world.campaign).instructions == written.strip()


def test_the_command_renames_and_rewords_a_closed_campaign_with_its_status(world, tmp_path):
    path = tmp_path / "instructions.md"
    path.write_text("Over: thank you.", encoding="utf-8")
    _campaign(str(world.campaign.pk), "--rename", "Study (closed)", "--instructions-file",
              str(path), "--set-status", "closed")
    stored = _stored(world.campaign)
    assert (stored.name, stored.instructions, stored.status) == (
        "Study (closed)", "Over: thank you.", CampaignStatus.CLOSED)
    _campaign(str(world.campaign.pk), "--rename", "Study (archived)")
    assert _stored(world.campaign).name == "Study (archived)"


def test_a_file_that_is_not_utf8_is_refused_in_words_and_nothing_changes(world, tmp_path):
    path = tmp_path / "latin1.txt"
    path.write_bytes("Choisissez l'image la plus fidèle.".encode("latin-1"))
    with pytest.raises(CommandError) as refused:
        _campaign(str(world.campaign.pk), "--rename", "Study (v2)", "--instructions-file",
                  str(path))
    message = str(refused.value)
    assert message.startswith(f"--instructions-file {path}: not UTF-8 text")
    assert "save it as UTF-8" in message
    stored = _stored(world.campaign)
    assert (stored.name, stored.instructions) == ("Study", "Pick the better image.")


@pytest.mark.parametrize(("content", "said"), [
    ("x" * (MAX_TEXT_CHARS + 1), f"longer than {MAX_TEXT_CHARS} characters"),
    ("nul\x00inside", "contains a NUL character"),
])
def test_instructions_past_the_limits_of_free_text_are_refused(world, tmp_path, content, said):
    path = tmp_path / "instructions.txt"
    path.write_text(content, encoding="utf-8")
    with pytest.raises(CommandError, match=said):
        _campaign(str(world.campaign.pk), "--instructions-file", str(path))
    assert _stored(world.campaign).instructions == "Pick the better image."


def test_a_missing_instructions_file_is_named_with_the_systems_reason(world, tmp_path):
    path = tmp_path / "nowhere.txt"
    with pytest.raises(CommandError, match=r"nowhere\.txt: No such file or directory"):
        _campaign(str(world.campaign.pk), "--instructions-file", str(path))


def test_a_taken_name_is_refused_on_one_line_and_a_refused_status_keeps_the_name(world):
    CampaignFactory(project=world.campaign.project, name="Taken")
    with pytest.raises(CommandError) as refused:
        _campaign(str(world.campaign.pk), "--rename", "Taken")
    assert str(refused.value) == "The project already has a campaign named 'Taken'."
    # All or nothing: a status change refused after the rename leaves the name as it was.
    with pytest.raises(CommandError, match="cannot become active"):
        _campaign(str(world.campaign.pk), "--rename", "Study (v2)", "--set-status", "active")
    assert _stored(world.campaign).name == "Study"


def test_the_commands_exit_statuses(world, tmp_path, monkeypatch, capsys):
    campaign = str(world.campaign.pk)
    assert _exit_status(monkeypatch, capsys, campaign, "--rename", "Study (v2)")[0] == 0
    CampaignFactory(project=world.campaign.project, name="Taken")
    status, err = _exit_status(monkeypatch, capsys, campaign, "--rename", "Taken")
    assert (status, err.strip()) == (
        1, "CommandError: The project already has a campaign named 'Taken'.")
    latin1 = tmp_path / "latin1.txt"
    latin1.write_bytes(b"caf\xe9")
    status, err = _exit_status(monkeypatch, capsys, campaign, "--instructions-file", str(latin1))
    assert status == 1 and "not UTF-8 text" in err
    # A name against the rule is a usage error, said by argparse naming the option.
    status, err = _exit_status(monkeypatch, capsys, campaign, "--rename", f"a{RLO}b")
    assert status == 2 and "argument --rename:" in err and "U+202E" in err
    assert _stored(world.campaign).name == "Study (v2)"


def test_the_help_names_the_new_options():
    parser = CampaignCommand().create_parser("manage.py", "campaign")
    text = parser.format_help()
    assert "--rename NAME" in text and "--instructions-file PATH" in text
