"""The campaign page's "Edit name and instructions" form: reached from the campaign's page, for
owners and scientists only (annotators 403, others 404, as every campaign page), the service's
refusals at their field, names isolated as every page prints them (docs/accessibility.md)."""

from __future__ import annotations

import re
import unicodedata

import pytest
from django.test import Client
from django.urls import reverse

from evalhub.campaigns.models import Campaign, CampaignStatus
from tests.builders import CampaignWorld, build_campaign, logged_in
from tests.campaigns.test_campaign_edit import _stored_text, study_world
from tests.core.test_user_text_direction import assert_isolated
from tests.factories import CampaignFactory, UserFactory

pytestmark = pytest.mark.django_db

RLO = "\u202e"


@pytest.fixture
def world() -> CampaignWorld:
    return study_world()


def _edit_url(campaign: Campaign) -> str:
    return reverse("campaign-manage-edit", kwargs={"campaign_id": campaign.pk})


def _detail_url(campaign: Campaign) -> str:
    return reverse("campaign-manage", kwargs={"campaign_id": campaign.pk})


def _field_errors(html: str, field: str) -> list[str]:
    """The errors shown inside ``field``'s own block of the form."""
    block = re.search(rf'<div class="field has-error" data-field-name="{field}">(.*?)</div>\s*'
                      rf'</div>', html, flags=re.S)
    assert block, f"no error at {field}"
    return re.findall(r'<p class="field-error">(.*?)</p>', block.group(1), flags=re.S)


@pytest.mark.parametrize("who", ["scientist", "owner"])
def test_the_campaign_page_links_to_the_form_which_shows_the_stored_values(world, who):
    client = logged_in(getattr(world, who))
    detail = client.get(_detail_url(world.campaign)).content.decode()
    assert f'href="{_edit_url(world.campaign)}"' in detail
    assert "Edit name and instructions" in detail
    page = client.get(_edit_url(world.campaign))
    assert page.status_code == 200
    html = page.content.decode()
    assert 'name="csrfmiddlewaretoken"' in html
    assert 'name="name"' in html and 'value="Study"' in html
    assert re.search(r'<textarea name="instructions"[^>]*dir="auto"[^>]*>\s*Pick the better '
                     r'image\.</textarea>', html)
    assert f'href="{_detail_url(world.campaign)}"' in html  # back without saving


def test_a_writer_saves_and_lands_on_the_campaign_page_which_says_so(world):
    client = logged_in(world.scientist)
    answer = client.post(_edit_url(world.campaign), {
        "name": unicodedata.normalize("NFD", " café study "),
        "instructions": "Pick the image closer to the prompt.\nTake your time."})
    assert answer.status_code == 302
    assert answer["Location"] == _detail_url(world.campaign) + "?edited=1#settings"
    assert _stored_text(world.campaign) == ("café study",
                                       "Pick the image closer to the prompt.\nTake your time.")
    detail = client.get(answer["Location"]).content.decode()
    assert 'id="edit-saved"' in detail and "Name and instructions saved" in detail
    assert "Take your time." in detail
    # Without the redirect's parameter the note is not shown again.
    assert 'id="edit-saved"' not in client.get(_detail_url(world.campaign)).content.decode()


def test_a_closed_campaign_is_still_renamed_from_its_page(world):
    Campaign.objects.filter(pk=world.campaign.pk).update(status=CampaignStatus.CLOSED)
    client = logged_in(world.owner)
    assert f'href="{_edit_url(world.campaign)}"' in client.get(
        _detail_url(world.campaign)).content.decode()
    answer = client.post(_edit_url(world.campaign), {"name": "Study (closed)",
                                                     "instructions": ""})
    assert answer.status_code == 302
    assert _stored_text(world.campaign) == ("Study (closed)", "")


def test_a_taken_name_is_refused_at_the_name_field_and_nothing_is_stored(world):
    CampaignFactory(project=world.campaign.project, name="Taken")
    answer = logged_in(world.scientist).post(_edit_url(world.campaign), {
        "name": "Taken", "instructions": "Changed too."})
    assert answer.status_code == 400
    html = answer.content.decode()
    assert _field_errors(html, "name") == [
        "The project already has a campaign named &#x27;Taken&#x27;."]
    assert 'value="Taken"' in html and "Changed too." in html  # what was typed stays
    assert _stored_text(world.campaign) == ("Study", "Pick the better image.")


@pytest.mark.parametrize(("name", "said"), [
    (f"study{RLO}2v", "U+202E"),
    ("", "This field is required."),
    ("x" * 201, "at most 200 characters"),
])
def test_a_name_against_the_rule_is_refused_at_its_field(world, name, said):
    answer = logged_in(world.scientist).post(_edit_url(world.campaign),
                                             {"name": name, "instructions": ""})
    assert answer.status_code == 400
    assert any(said in error for error in _field_errors(answer.content.decode(), "name"))
    assert _stored_text(world.campaign) == ("Study", "Pick the better image.")


def test_instructions_too_long_are_refused_at_their_field(world):
    answer = logged_in(world.scientist).post(_edit_url(world.campaign),
                                             {"name": "Study", "instructions": "x" * 10_001})
    assert answer.status_code == 400
    assert _field_errors(answer.content.decode(), "instructions")
    assert _stored_text(world.campaign) == ("Study", "Pick the better image.")


def test_annotators_get_403_outsiders_and_other_projects_404_and_nothing_changes(world):
    other = build_campaign(runs=2, prompts=1, annotators=0, name="Elsewhere")
    cases = [(world.annotator, world.campaign, 403), (UserFactory(), world.campaign, 404),
             (other.scientist, world.campaign, 404)]
    for user, campaign, status in cases:
        client = logged_in(user)
        assert client.get(_edit_url(campaign)).status_code == status
        assert client.post(_edit_url(campaign), {"name": "Hijacked",
                                                 "instructions": ""}).status_code == status
    missing = reverse("campaign-manage-edit", kwargs={"campaign_id": 987654})
    assert logged_in(world.scientist).get(missing).status_code == 404
    anonymous = Client().get(_edit_url(world.campaign))
    assert anonymous.status_code == 302 and "login" in anonymous["Location"]
    assert _stored_text(world.campaign) == ("Study", "Pick the better image.")


def test_a_post_without_the_csrf_token_is_refused(world):
    client = Client(enforce_csrf_checks=True)
    client.force_login(world.scientist)
    answer = client.post(_edit_url(world.campaign), {"name": "Forged", "instructions": ""})
    assert answer.status_code == 403
    assert _stored_text(world.campaign) == ("Study", "Pick the better image.")


def test_the_page_isolates_the_campaign_and_project_names():
    name = f"قطة حمراء {RLO}"
    world = build_campaign(runs=2, prompts=1, annotators=0, name=name)
    html = logged_in(world.scientist).get(_edit_url(world.campaign)).content.decode()
    assert_isolated(html, name)
    title = re.search(r"<title>(.*?)</title>", html, flags=re.S).group(1)
    assert f"\u2068{name}\u2069" in title


def test_a_field_left_as_shown_keeps_a_change_made_since_the_page_was_opened(world):
    # The form sent both fields, so a rename reverted the instructions a colleague had
    # changed meanwhile (through the API or the command) to the page's stale copy.
    client = logged_in(world.scientist)
    shown = client.get(_edit_url(world.campaign)).content.decode()
    assert "Pick the better image." in shown
    assert 'name="initial-instructions"' in shown and 'name="initial-name"' in shown
    Campaign.objects.filter(pk=world.campaign.pk).update(instructions="A colleague's words.")
    client.post(_edit_url(world.campaign), {
        "name": "Study (v2)", "instructions": "Pick the better image.",
        # What the page showed, sent back with the form as it renders it.
        "initial-name": "Study", "initial-instructions": "Pick the better image."})
    assert _stored_text(world.campaign) == ("Study (v2)", "A colleague's words.")


def test_line_breaks_typed_in_the_box_are_stored_as_the_api_stores_them(world):
    client = logged_in(world.scientist)
    client.post(_edit_url(world.campaign), {"name": "Study",
                                            "instructions": "First line.\r\nSecond line."})
    assert _stored_text(world.campaign) == ("Study", "First line.\nSecond line.")
