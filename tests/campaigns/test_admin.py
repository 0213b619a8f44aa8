"""Campaigns, pairs and votes in Django's admin: read-only lists with filters, thumbnails
served by the access-checked media view."""

import re

import pytest

from evalhub.campaigns.models import Campaign
from tests.builders import build_campaign
from tests.factories import JudgmentFactory, UserFactory

pytestmark = pytest.mark.django_db


@pytest.fixture
def admin_client(client):
    client.force_login(UserFactory(is_staff=True, is_superuser=True))
    return client


@pytest.fixture
def world():
    world = build_campaign(prompts=2)
    task = world.campaign.tasks.first()
    JudgmentFactory(task=task, campaign=world.campaign, annotator=world.annotators[0])
    return world


CHANGELISTS = ["campaigns/campaign", "campaigns/comparisontask", "campaigns/judgment",
               "runs/image"]


@pytest.mark.parametrize("changelist", CHANGELISTS)
def test_the_changelists_load_for_a_superuser(admin_client, world, changelist):
    response = admin_client.get(f"/admin/{changelist}/")
    assert response.status_code == 200
    assert 'id="changelist-filter"' in response.content.decode()  # list filters shown


def test_the_filters_narrow_the_lists(admin_client, world):
    live = admin_client.get("/admin/campaigns/judgment/", {"retracted": "no"}).content.decode()
    retracted = admin_client.get("/admin/campaigns/judgment/",
                                 {"retracted": "yes"}).content.decode()
    assert "1 judgment" in live and "0 judgments" in retracted
    gold = admin_client.get("/admin/campaigns/comparisontask/", {"is_gold__exact": "1"})
    assert "0 comparison tasks" in gold.content.decode()


def test_nothing_can_be_added_changed_or_deleted(admin_client, world):
    task = world.campaign.tasks.first()
    assert admin_client.get("/admin/campaigns/campaign/add/").status_code == 403
    page = admin_client.get(f"/admin/campaigns/comparisontask/{task.pk}/change/")
    assert page.status_code == 200 and 'name="_save"' not in page.content.decode()
    assert admin_client.post(f"/admin/campaigns/campaign/{world.campaign.pk}/delete/",
                             {"post": "yes"}).status_code == 403
    assert Campaign.objects.filter(pk=world.campaign.pk).exists()


def test_task_thumbnails_are_display_copies_the_superuser_receives(admin_client, world):
    page = admin_client.get("/admin/campaigns/comparisontask/").content.decode()
    sources = re.findall(r'<img src="(/media/display/[0-9a-f]{64}\.webp)" alt="image \d+" '
                         r'height="64"', page)
    assert len(sources) == 2 * world.campaign.tasks.count()
    image = admin_client.get(sources[0])
    assert image.status_code == 200
    body = b"".join(image.streaming_content)
    assert body[:4] == b"RIFF" and body[8:12] == b"WEBP"
    # The superuser's pass is the derivative only: originals stay with project members.
    original = world.campaign.tasks.first().image_a.blob
    assert admin_client.get(f"/media/{original.file.name}").status_code == 404
