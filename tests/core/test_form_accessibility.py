"""Forms and headings as a screen reader meets them (WCAG 1.3.1, 3.3.1, 4.1.2).

A group of checkboxes or radio buttons (Django's ``use_fieldset`` widgets) is a ``<fieldset>``
named by its ``<legend>``, never a ``<label for="">`` that points at nothing; the group's help
text and errors are tied to it by ``aria-describedby`` (ids that exist on the page), and its
inputs are ``aria-invalid`` when refused. The login page's refusal is announced (``role=alert``)
and describes both fields; the home page has one ``<h1>``, its sections ``<h2>``.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from html.parser import HTMLParser

import pytest
from django.test import Client
from django.urls import reverse

from tests.builders import build_campaign, logged_in
from tests.factories import MembershipFactory, ProjectFactory, UserFactory

pytestmark = pytest.mark.django_db

PASSWORD = "pw"  # tests.factories.UserFactory's password


@dataclass
class Group:
    """A ``<fieldset>``: its legend's text, its attributes, the inputs inside it."""

    attrs: dict
    legend: str = ""
    inputs: list[dict] = field(default_factory=list)

    @property
    def described_by(self) -> list[str]:
        return (self.attrs.get("aria-describedby") or "").split()


class Page(HTMLParser):
    """What matters here of an HTML page: its ids, fieldsets, labels, headings and inputs."""

    def __init__(self, html: str) -> None:
        super().__init__()
        self.ids: set[str] = set()
        self.groups: list[Group] = []
        self.label_fors: list[str] = []
        self.headings: list[tuple[str, str]] = []  # (tag, text)
        self.inputs: list[dict] = []
        self.by_id: dict[str, dict] = {}
        self._open: list[Group] = []
        self._text: list[str] | None = None  # the text being read (a legend's, a heading's)
        self._reading: str | None = None
        self.feed(html)

    def handle_starttag(self, tag: str, attrs: list) -> None:
        found = {name: value or "" for name, value in attrs}
        found["_tag"] = tag
        if found.get("id"):
            self.ids.add(found["id"])
            self.by_id[found["id"]] = found
        if tag == "fieldset":
            self._open.append(Group(found))
            self.groups.append(self._open[-1])
        elif tag == "label" and "for" in found:
            self.label_fors.append(found["for"])
        elif tag == "input" and found.get("type") not in ("hidden", "submit"):
            self.inputs.append(found)
            if self._open:
                self._open[-1].inputs.append(found)
        if tag in ("legend", "h1", "h2", "h3") and self._reading is None:
            self._reading, self._text = tag, []
        found["_text"] = ""

    def handle_endtag(self, tag: str) -> None:
        if tag == "fieldset" and self._open:
            self._open.pop()
        if tag == self._reading:
            text = " ".join("".join(self._text or []).split())
            if tag == "legend" and self._open:
                self._open[-1].legend = text
            elif tag != "legend":
                self.headings.append((tag, text))
            self._reading, self._text = None, None

    def handle_data(self, data: str) -> None:
        if self._text is not None:
            self._text.append(data)

    def group(self, legend: str) -> Group:
        named = [g for g in self.groups if g.legend.rstrip(" *") == legend]
        assert len(named) == 1, [g.legend for g in self.groups]
        return named[0]


def _assert_grouped(page: Page, legend: str, *, name: str, described: set[str],
                    invalid: bool = False) -> Group:
    """The inputs ``name`` sit in one fieldset named ``legend``, described by ``described``
    (ids present on the page), and are ``aria-invalid`` exactly when ``invalid``."""
    group = page.group(legend)
    assert group.inputs and {i.get("name") for i in group.inputs} == {name}
    assert described <= set(group.described_by), group.described_by
    assert [i for i in group.described_by if i not in page.ids] == []
    assert all((i.get("aria-invalid") == "true") == invalid for i in group.inputs)
    return group


def _no_dangling_labels(page: Page) -> None:
    assert [f for f in page.label_fors if f not in page.ids] == []


@pytest.fixture
def world():
    return build_campaign(runs=2, prompts=2, annotators=1, name="Grouped")


def test_the_new_campaign_forms_choice_lists_are_named_groups(world):
    client = logged_in(world.scientist)
    url = f"/projects/{world.campaign.project_id}/campaigns/new/"
    page = Page(client.get(url).content.decode())
    _assert_grouped(page, "Runs", name="runs", described={"id_runs_helptext"})
    _assert_grouped(page, "Questions (criteria)", name="criteria",
                    described={"id_criteria_helptext"})
    _assert_grouped(page, "Annotators", name="annotators", described={"id_annotators_helptext"})
    _no_dangling_labels(page)

    # Refused for want of runs: the group names its error, its boxes are invalid.
    refused = client.post(url, {"name": "No runs", "pair_policy": "balanced",
                                "judgments_per_pair": 3, "gold_rate": "0",
                                "lease_seconds": 180})
    assert refused.status_code == 400
    page = Page(refused.content.decode())
    _assert_grouped(page, "Runs", name="runs", described={"id_runs_helptext", "id_runs_error"},
                    invalid=True)
    _assert_grouped(page, "Questions (criteria)", name="criteria",
                    described={"id_criteria_helptext"})
    _no_dangling_labels(page)


def test_the_campaign_pages_annotator_list_is_a_named_group(world):
    client = logged_in(world.scientist)
    page = Page(client.get(f"/campaigns/{world.campaign.pk}/manage/").content.decode())
    _assert_grouped(page, "Annotators", name="annotators", described={"id_annotators_helptext"})
    _no_dangling_labels(page)

    refused = client.post(f"/campaigns/{world.campaign.pk}/manage/annotators/",
                          {"annotators": ["999999"]})
    assert refused.status_code == 400
    page = Page(refused.content.decode())
    _assert_grouped(page, "Annotators", name="annotators",
                    described={"id_annotators_helptext", "id_annotators_error"}, invalid=True)


def test_the_export_forms_format_and_questions_are_named_groups(world):
    client = logged_in(world.scientist)
    url = f"/campaigns/{world.campaign.pk}/export/"
    page = Page(client.get(url).content.decode())
    _assert_grouped(page, "Format", name="format", described=set())
    _assert_grouped(page, "Questions", name="criterion", described={"id_criterion_helptext"})
    _no_dangling_labels(page)

    refused = client.get(url, {"download": "1", "format": "nonsense", "criterion": "overall"})
    assert refused.status_code == 400
    page = Page(refused.content.decode())
    _assert_grouped(page, "Format", name="format", described={"id_format_error"}, invalid=True)


def test_the_metric_job_forms_metrics_are_a_named_group():
    project = ProjectFactory()
    scientist = MembershipFactory(project=project).user
    url = reverse("workspace-metrics", kwargs={"project_id": project.pk})
    client = logged_in(scientist)
    page = Page(client.get(url).content.decode())
    _assert_grouped(page, "Metrics", name="metrics", described=set())
    _no_dangling_labels(page)

    refused = client.post(url, {"run": ""})
    assert refused.status_code == 400
    page = Page(refused.content.decode())
    _assert_grouped(page, "Metrics", name="metrics", described={"id_metrics_error"},
                    invalid=True)
    _no_dangling_labels(page)


def test_a_refused_login_is_announced_and_describes_both_fields():
    user = UserFactory()
    response = Client(REMOTE_ADDR="203.0.113.77").post(
        "/accounts/login/", {"username": user.username, "password": "wrong"})
    page = Page(response.content.decode())
    alerts = [element for element in page.by_id.values() if element.get("role") == "alert"]
    assert len(alerts) == 1
    assert "Wrong username or password." in response.content.decode()
    fields = [i for i in page.inputs if i.get("name") in ("username", "password")]
    assert len(fields) == 2
    for element in fields:
        assert element.get("aria-invalid") == "true"
        assert element.get("aria-describedby") == alerts[0]["id"]

    # Before any attempt: nothing invalid, nothing announced.
    page = Page(Client().get("/accounts/login/").content.decode())
    assert [i for i in page.inputs if "aria-invalid" in i or "aria-describedby" in i] == []


def test_the_home_page_has_one_h1_and_a_h2_per_section(world):
    page = Page(logged_in(world.scientist).get("/").content.decode())
    assert [tag for tag, _ in page.headings].count("h1") == 1
    sections = [text for tag, text in page.headings if tag == "h2"]
    assert sections == ["Campaigns to rate", "Analysis", "Projects"]
    # The cards (a campaign, a project) sit under their section.
    assert ("h3", world.campaign.name) in page.headings
    assert ("h3", world.campaign.project.name) in page.headings
