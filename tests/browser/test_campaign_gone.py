"""A campaign deleted while an annotator's rating page is open (or the annotator removed from
its project) stops that page, as a closed campaign does: the next key says the campaign is no
longer available instead of leaving the pair on screen and refusing every key with a 404.

The API's 404 carries ``code: "campaign_not_found"`` for the page to act on; it says nothing
more than that the campaign is not the annotator's (deleted or not a member: the same words).
"""

from __future__ import annotations

import pytest

from evalhub.projects.models import Membership
from evalhub.projects.services import membership_remove
from evalhub.workspace.deletion import object_delete
from tests.browser.conftest import login
from tests.browser.pages import script_errors, shown_lease
from tests.browser.world import build_world

pytestmark = [pytest.mark.browser, pytest.mark.django_db(transaction=True)]

STOPPED = "() => document.querySelector('#rate-app').dataset.done === '1'"


@pytest.mark.parametrize("how", ["campaign deleted", "annotator removed from the project"])
def test_the_page_stops_when_its_campaign_is_no_longer_the_annotators(context, errors, how):
    world = build_world(prompts=3, sizes=((320, 320), (320, 320)))
    page = context.new_page()
    login(page, world.annotator.username, f"/rate/{world.campaign.pk}/")
    shown_lease(page)

    if how == "campaign deleted":
        object_delete(kind="campaign", obj=world.campaign)  # no vote yet: it may go
    else:
        membership_remove(membership=Membership.objects.get(
            project=world.campaign.project, user=world.annotator))
    page.keyboard.press("1")

    page.wait_for_function(STOPPED)
    done = page.inner_text("#rate-done")
    assert "This campaign is no longer available" in done
    assert "deleted, or you are no longer a member of its project" in done
    assert not page.is_visible("#rate-stage")
    assert not page.locator(".answer-btn").first.is_visible()
    # Further keys send nothing: the page has stopped.
    sent: list[str] = []
    page.on("request", lambda request: sent.append(request.url)
            if "/api/v1/rate/" in request.url and request.method == "POST" else None)
    page.keyboard.press("2")
    page.keyboard.press("s")
    page.wait_for_timeout(300)
    assert sent == []
    assert script_errors(errors) == [] and page.evaluate("window.__violations") == []
