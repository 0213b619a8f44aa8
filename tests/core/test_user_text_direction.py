"""User-written text (prompts, and the names of runs, models, checkpoints, campaigns and prompt
sets) is printed in an element of its own that takes its direction from its first strong
character and is isolated from its neighbours: a ``<bdi>`` (inline) or an element with
``dir="auto"`` (a prompt's block). So an Arabic or Hebrew prompt keeps its full stop at its own
end, and a name holding an unterminated U+202E (right-to-left override) cannot reverse the
text printed after it in the same cell or heading (docs/accessibility.md).

Server-rendered pages only, through the test client: one project whose names mix scripts and
overrides, every page that lists them.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from html.parser import HTMLParser

import pytest

from evalhub.prompts.models import PromptSet
from tests.builders import CampaignWorld, build_campaign, logged_in

pytestmark = pytest.mark.django_db

RLO = "\u202e"  # right-to-left override, left open
RUN_NAMES = [f"rlo-{RLO}1k-pets", "שלום עולם 123."]
MODEL_NAME = f"abc{RLO}dcba"
CHECKPOINT_NAMES = [f"step-{RLO}k1", "نقطة-2"]
CAMPAIGN_NAME = f"قطة حمراء على كرسي! {RLO}"
PROMPT_SET_NAME = f"set-{RLO}tes"
PROMPT = "قطة حمراء على كرسي!"
NAMES = [*RUN_NAMES, MODEL_NAME, *CHECKPOINT_NAMES, CAMPAIGN_NAME, PROMPT_SET_NAME]
# Where an element can hold nothing but text (a document title, an option, a textarea) or is
# not shown (a script's JSON): the platform isolates it or there is nothing to isolate.
UNSHOWN = {"title", "option", "textarea", "script", "style"}
VOID = {"area", "base", "br", "col", "embed", "hr", "img", "input", "link", "meta", "source",
        "track", "wbr"}


@dataclass
class TextNode:
    text: str
    parent: str  # the innermost open element's tag
    isolated: bool  # that element is a <bdi> or has dir="auto"
    ancestors: list[str] = field(default_factory=list)
    in_isolate: bool = False  # it or an element around it is


class _Texts(HTMLParser):
    """Every text node of a page with the element that holds it."""

    def __init__(self) -> None:
        super().__init__(convert_charrefs=True)
        self.stack: list[tuple[str, bool]] = []
        self.nodes: list[TextNode] = []

    def handle_starttag(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
        if tag in VOID:
            return
        self.stack.append((tag, tag == "bdi" or dict(attrs).get("dir") == "auto"))

    def handle_endtag(self, tag: str) -> None:
        for index in range(len(self.stack) - 1, -1, -1):
            if self.stack[index][0] == tag:
                del self.stack[index:]
                return

    def handle_data(self, data: str) -> None:
        if data.strip() and self.stack:
            tag, isolated = self.stack[-1]
            self.nodes.append(TextNode(data, tag, isolated, [t for t, _ in self.stack],
                                       any(i for _, i in self.stack)))


def text_nodes(html: str) -> list[TextNode]:
    parser = _Texts()
    parser.feed(html)
    return parser.nodes


def assert_isolated(html: str, *strings: str, block: bool = False) -> None:
    """Each of ``strings`` is shown at least once, and wherever it is shown it is the whole
    text of an isolating element (nothing printed beside it inside the isolate); ``block``:
    text of its own paragraphs (a prompt, instructions) inside an isolating element."""
    nodes = [n for n in text_nodes(html) if not UNSHOWN & set(n.ancestors)]
    for string in strings:
        holders = [n for n in nodes if string in n.text]
        assert holders, f"{string!r} not shown"
        for node in holders:
            own = node.in_isolate if block else node.isolated
            assert own and node.text.strip() == string, (
                f"{string!r} printed in <{node.parent}> as {node.text!r} without isolation")


@pytest.fixture
def world() -> CampaignWorld:
    world = build_campaign(runs=2, prompts=1, run_names=RUN_NAMES, model_name=MODEL_NAME,
                           checkpoint_names=CHECKPOINT_NAMES, prompt_text=lambda _: PROMPT,
                           name=CAMPAIGN_NAME, instructions="اختر الصورة الأفضل.")
    PromptSet.objects.filter(pk=world.prompts[0].prompt_set_id).update(name=PROMPT_SET_NAME)
    return world


def test_the_home_and_export_pages_isolate_campaign_names(world):
    home = logged_in(world.annotator).get("/").content.decode()
    assert_isolated(home, CAMPAIGN_NAME)
    export = logged_in(world.owner).get(f"/campaigns/{world.campaign.pk}/export/")
    assert export.status_code == 200
    assert_isolated(export.content.decode(), CAMPAIGN_NAME)


def test_the_rating_page_isolates_its_prompt_campaign_name_and_instructions(world):
    html = logged_in(world.annotator).get(f"/rate/{world.campaign.pk}/").content.decode()
    assert_isolated(html, CAMPAIGN_NAME)
    assert_isolated(html, "اختر الصورة الأفضل.", block=True)
    # The prompt is written by static/js/rate.js into this element: its direction is its own.
    assert '<p class="rate-prompt" id="rate-prompt" dir="auto"' in html
    assert not any(name in html for name in [*RUN_NAMES, MODEL_NAME, *CHECKPOINT_NAMES])


@pytest.mark.parametrize("page", ["models", "prompts", "runs"])
def test_the_workspace_lists_isolate_every_name(world, page):
    project_id = world.campaign.project_id
    html = logged_in(world.scientist).get(f"/workspace/{project_id}/{page}/").content.decode()
    shown = {"models": [MODEL_NAME, *CHECKPOINT_NAMES], "prompts": [PROMPT_SET_NAME],
             "runs": [*RUN_NAMES, MODEL_NAME, *CHECKPOINT_NAMES, PROMPT_SET_NAME]}[page]
    assert_isolated(html, *shown)


def test_a_runs_page_isolates_its_heading_and_names(world):
    html = logged_in(world.scientist).get(f"/workspace/runs/{world.runs[0].pk}/").content.decode()
    assert_isolated(html, RUN_NAMES[0], MODEL_NAME, CHECKPOINT_NAMES[0], PROMPT_SET_NAME)


def test_the_dashboards_isolate_campaign_run_model_and_checkpoint_names(world):
    client = logged_in(world.scientist)
    assert_isolated(client.get("/dashboard/").content.decode(), CAMPAIGN_NAME, MODEL_NAME)
    board = client.get(f"/dashboard/campaigns/{world.campaign.pk}/").content.decode()
    assert_isolated(board, CAMPAIGN_NAME, *RUN_NAMES, MODEL_NAME, *CHECKPOINT_NAMES)
    model_id = world.runs[0].checkpoint.model_id
    assert_isolated(client.get(f"/dashboard/models/{model_id}/").content.decode(),
                    MODEL_NAME, *CHECKPOINT_NAMES, *RUN_NAMES)


def test_the_gallery_isolates_run_names_and_prompts(world):
    client = logged_in(world.scientist)
    html = client.get(f"/gallery/{world.campaign.project_id}/").content.decode()
    assert_isolated(html, PROMPT)
    image = world.runs[0].images.get()
    page = client.get(f"/gallery/images/{image.pk}/").content.decode()
    assert_isolated(page, PROMPT, RUN_NAMES[0], MODEL_NAME, CHECKPOINT_NAMES[0])
