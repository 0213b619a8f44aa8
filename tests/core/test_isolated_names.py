"""Names in plain text are isolated with Unicode's isolates (docs/accessibility.md, "User-written
text"): a page's ``<title>``, an ``<option>``'s label, an ``<optgroup>``'s label and a checkbox's
label cannot hold a ``<bdi>``, so each user-written name (project, model, checkpoint, run,
prompt set, reference set, campaign, prompt category) there is written between U+2068 FIRST
STRONG ISOLATE and U+2069 POP DIRECTIONAL ISOLATE: a Hebrew or Arabic name takes its
direction from its own first letter, and its trailing "!" or digits stay at its end instead
of joining the words beside it. What the forms send back (``value=``) is the name or id as
stored.

No script of static/js builds an option or a title from a name (they are all rendered here, by
the server), so there is no browser test: the pages are read through the test client.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from html.parser import HTMLParser

import pytest
from django.template import Context, Template
from django.utils.html import escape

from evalhub.core.text import isolated
from evalhub.projects.models import Project
from evalhub.prompts.models import Prompt, PromptSet
from evalhub.runs.models import ReferenceSet
from tests.builders import build_campaign, cast_vote, logged_in

pytestmark = pytest.mark.django_db

FSI, PDI = "\u2068", "\u2069"
RUN_NAMES = ["שלום עולם", "cats v2!"]  # Hebrew; Latin ending in "!"
MODEL_NAME = "نموذج 3"  # Arabic ending in a digit
CHECKPOINT_NAMES = ["step 1000!", "نقطة 2"]
PROMPT_SET_NAME = "מערך 12"
PROJECT_NAME = "مشروع 5!"
CAMPAIGN_NAME = "השוואה 7"
CATEGORY = "حيوانات 3!"
REFERENCE_SET_NAME = "تمثيل 1"


def fenced(name: str) -> str:
    return f"{FSI}{name}{PDI}"


# --- the function ----------------------------------------------------------------------------


def test_isolated_puts_a_name_between_first_strong_isolate_and_pop_directional_isolate():
    assert isolated("שלום 123!") == "\u2068" + "שלום 123!" + "\u2069"
    assert isolated("cats v2!") == "\u2068cats v2!\u2069"


def test_isolated_leaves_empty_text_empty():
    assert isolated("") == ""


def test_a_name_holding_isolates_cannot_close_the_isolate_around_it_or_leave_one_open():
    # A stray U+2069 would end the isolate before the name does: it is dropped.
    assert isolated("ab\u2069\u202ecd") == "\u2068ab\u202ecd\u2069"
    # An opener with no U+2069 of its own is closed before the isolate around it.
    assert isolated("ab\u2067cd") == "\u2068ab\u2067cd\u2069\u2069"
    # Balanced isolates are kept as they are.
    assert isolated("a\u2066b\u2069c") == "\u2068a\u2066b\u2069c\u2069"


def test_the_isolate_filter_isolates_and_still_escapes_the_name():
    template = Template("{% load text %}<title>{{ name|isolate }} - EvalHub</title>")
    html = template.render(Context({"name": "<b>שלום</b> & 2!"}))
    assert html == f"<title>{fenced('&lt;b&gt;שלום&lt;/b&gt; &amp; 2!')} - EvalHub</title>"


# --- the pages -------------------------------------------------------------------------------


@dataclass
class Plain:
    """A page's plain-text places: its title, its options (value, label, optgroup label) and
    its checkboxes (name, value, label text)."""

    title: str = ""
    options: dict[str, list[tuple[str, str, str | None]]] = field(default_factory=dict)
    checkboxes: dict[str, list[tuple[str, str]]] = field(default_factory=dict)


class _Reader(HTMLParser):
    def __init__(self) -> None:
        super().__init__(convert_charrefs=True)
        self.found = Plain()
        self.select: str | None = None
        self.group: str | None = None
        self.option: str | None = None
        self.checkbox: tuple[str, str] | None = None
        self.in_title = False
        self.text: list[str] = []

    def handle_starttag(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
        attributes = {key: value or "" for key, value in attrs}
        if tag == "title":
            self.in_title = True
        elif tag == "select":
            self.select = attributes.get("name", "")
            self.found.options.setdefault(self.select, [])
        elif tag == "optgroup":
            self.group = attributes.get("label")
        elif tag == "option":
            self.option, self.text = attributes.get("value", ""), []
        elif tag == "input" and attributes.get("type") == "checkbox":
            self.checkbox = (attributes.get("name", ""), attributes.get("value", ""))
            self.text = []

    def handle_endtag(self, tag: str) -> None:
        if tag == "title":
            self.in_title = False
        elif tag == "optgroup":
            self.group = None
        elif tag == "option" and self.select is not None and self.option is not None:
            self.found.options[self.select].append((self.option, "".join(self.text),
                                                    self.group))
            self.option = None
        elif tag == "label" and self.checkbox is not None:
            name, value = self.checkbox
            self.found.checkboxes.setdefault(name, []).append((value, "".join(self.text).strip()))
            self.checkbox = None

    def handle_data(self, data: str) -> None:
        if self.in_title:
            self.found.title += data
        elif self.option is not None or self.checkbox is not None:
            self.text.append(data)


def read(client, url: str) -> Plain:
    response = client.get(url)
    assert response.status_code == 200, url
    reader = _Reader()
    reader.feed(response.content.decode())
    return reader.found


@pytest.fixture
def world():
    world = build_campaign(runs=2, prompts=2, run_names=RUN_NAMES, model_name=MODEL_NAME,
                           checkpoint_names=CHECKPOINT_NAMES, name=CAMPAIGN_NAME)
    project = world.campaign.project
    Project.objects.filter(pk=project.pk).update(name=PROJECT_NAME)
    PromptSet.objects.filter(pk=world.prompts[0].prompt_set_id).update(name=PROMPT_SET_NAME)
    Prompt.objects.filter(pk__in=[p.pk for p in world.prompts]).update(category=CATEGORY)
    ReferenceSet.objects.create(project=project, name=REFERENCE_SET_NAME)
    return world


def test_a_run_page_title_isolates_the_run_and_project_names(world):
    run = world.runs[0]
    page = read(logged_in(world.scientist), f"/workspace/runs/{run.pk}/")
    assert page.title == f"{fenced(RUN_NAMES[0])} · {fenced(PROJECT_NAME)} - EvalHub"


def test_a_campaign_page_title_isolates_the_campaign_name(world):
    client = logged_in(world.scientist)
    detail = read(client, f"/campaigns/{world.campaign.pk}/manage/")
    assert detail.title == f"{fenced(CAMPAIGN_NAME)} · campaign - EvalHub"
    board = read(client, f"/dashboard/campaigns/{world.campaign.pk}/")
    assert board.title == f"{fenced(CAMPAIGN_NAME)} leaderboard - EvalHub"
    rate = read(logged_in(world.annotator), f"/rate/{world.campaign.pk}/")
    assert rate.title == f"Rate · {fenced(CAMPAIGN_NAME)}"


def test_the_leaderboards_run_and_category_pickers_isolate_their_labels_not_their_values(world):
    cast_vote(world.campaign, world.annotator)
    board = read(logged_in(world.scientist), f"/dashboard/campaigns/{world.campaign.pk}/")
    expected = sorted((str(run.pk), fenced(run.name), None) for run in world.runs)
    assert sorted(board.options["ab_a"]) == expected
    assert sorted(board.options["ab_b"]) == expected
    assert board.options["category"] == [("", "all", None), (CATEGORY, fenced(CATEGORY), None)]


def test_the_workspace_forms_isolate_each_name_in_their_choices(world):
    client = logged_in(world.scientist)
    project_id = world.campaign.project_id
    model = world.runs[0].checkpoint.model
    models = read(client, f"/workspace/{project_id}/models/")
    assert models.options["checkpoint-model"] == [(str(model.pk), fenced(MODEL_NAME), None)]

    runs = read(client, f"/workspace/{project_id}/runs/")
    prompt_set_id = str(world.prompts[0].prompt_set_id)
    for form in ("generated", "imported"):
        checkpoints = {value: label for value, label, _ in runs.options[f"{form}-checkpoint"]}
        for run, name in zip(world.runs, CHECKPOINT_NAMES, strict=True):
            step = run.checkpoint.training_step
            assert checkpoints[str(run.checkpoint_id)] == (
                f"{fenced(MODEL_NAME)} / {fenced(name)} (step {step}) · imported")
        assert runs.options[f"{form}-prompt_set"] == [
            (prompt_set_id, fenced(PROMPT_SET_NAME), None)]

    metrics = read(client, f"/workspace/{project_id}/metrics/")
    assert sorted(metrics.options["run"]) == sorted(
        (str(run.pk), fenced(run.name), None) for run in world.runs)
    reference = ReferenceSet.objects.get(name=REFERENCE_SET_NAME)
    assert metrics.options["reference_set"] == [
        ("", "none", None), (str(reference.pk), fenced(REFERENCE_SET_NAME), None)]


def test_the_new_campaign_form_isolates_each_name_of_a_runs_checkbox_and_the_categories(world):
    # A checkbox's label is HTML: each name in a <bdi>, so that no invisible isolate character
    # is copied with the label (a QA pass pasted one into a name field, which refused it).
    client = logged_in(world.scientist)
    url = f"/projects/{world.campaign.project_id}/campaigns/new/"
    page = read(client, url)
    html = client.get(url).content.decode()
    labels = dict(page.checkboxes["runs"])
    for run, checkpoint in zip(world.runs, CHECKPOINT_NAMES, strict=True):
        step = run.checkpoint.training_step
        assert labels[str(run.pk)] == (
            f"{MODEL_NAME} / {checkpoint} (step {step}) / {run.name} — {PROMPT_SET_NAME}")
        for name in (MODEL_NAME, checkpoint, run.name, PROMPT_SET_NAME):
            assert f"<bdi>{escape(name)}</bdi>" in html
    assert page.options["prompt_category"] == [("", "all prompts", None),
                                               (CATEGORY, fenced(CATEGORY), None)]


def test_the_gallery_pickers_isolate_names_in_options_and_groups(world):
    page = read(logged_in(world.scientist), f"/gallery/{world.campaign.project_id}/")
    model_id = str(world.runs[0].checkpoint.model_id)
    assert page.options["model"] == [("", "all models", None),
                                     (model_id, fenced(MODEL_NAME), None)]
    left = {value: (label, group) for value, label, group in page.options["a"]}
    run = world.runs[1]
    assert left[str(run.pk)] == (
        f"{fenced(MODEL_NAME)} / {fenced(CHECKPOINT_NAMES[1])} "
        f"(step {run.checkpoint.training_step}) / {fenced(run.name)} — {fenced(PROMPT_SET_NAME)}",
        fenced(MODEL_NAME))
    assert page.options["category"] == [("", "all", None), (CATEGORY, fenced(CATEGORY), None)]


def test_the_export_form_isolates_the_categories_it_offers(world):
    page = read(logged_in(world.owner), f"/campaigns/{world.campaign.pk}/export/")
    assert page.options["category"] == [("", "all", None), (CATEGORY, fenced(CATEGORY), None)]
