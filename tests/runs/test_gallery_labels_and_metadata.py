"""The gallery names runs as the campaign form does (model / checkpoint (step) / run — prompt
set), and the image page writes stored values (metadata, parameters) in words, never as Python
reprs."""

from __future__ import annotations

import html as html_lib
import re

import pytest

from evalhub.campaigns.manage.forms import RunChoiceField
from evalhub.core.text import isolated
from evalhub.runs.gallery.display import NO_VALUE as D
from evalhub.runs.gallery.display import readable_value
from evalhub.runs.labels import run_label
from evalhub.runs.models import GenerationRun
from tests.builders import build_campaign, logged_in
from tests.factories import (
    CheckpointFactory,
    GenerationRunFactory,
    GenModelFactory,
    MembershipFactory,
    ProjectFactory,
    PromptSetFactory,
)

pytestmark = pytest.mark.django_db


def test_the_gallery_pickers_name_runs_as_the_campaign_form_does():
    project = ProjectFactory()
    prompt_set = PromptSetFactory(project=project, name="shapes")
    runs = []
    # Checkpoint names repeat across models (run names are unique in a project).
    for model_name, run_name in (("m-one", "a1k"), ("m-two", "b1k")):
        checkpoint = CheckpointFactory(model=GenModelFactory(project=project, name=model_name),
                                       name="step-1k", training_step=1000)
        runs.append(GenerationRunFactory(checkpoint=checkpoint, prompt_set=prompt_set,
                                         name=run_name))
    scientist = MembershipFactory(project=project, role="scientist").user
    response = logged_in(scientist).get(f"/gallery/{project.pk}/",
                                        {"a": runs[0].pk, "b": runs[1].pk})
    assert response.status_code == 200
    picker = response.content.decode().split('id="id_a"')[1].split("</select>")[0]
    options = dict(re.findall(r'<option value="(\d+)"[^>]*>([^<]*)</option>', picker))
    field = RunChoiceField(queryset=GenerationRun.objects.all())
    for run in runs:
        label = html_lib.unescape(options[str(run.pk)])
        # The same words: the gallery's <option> isolates each name with U+2068/U+2069 (plain
        # text), the campaign form's checkbox puts each in a <bdi> (HTML).
        checkbox = field.label_from_instance(run)
        assert re.sub(r"</?bdi>", "", html_lib.unescape(checkbox)) == re.sub(
            "[\u2068\u2069]", "", label)
        assert label == run_label(model=isolated(run.checkpoint.model.name),
                                  checkpoint=isolated("step-1k"), step=1000,
                                  run=isolated(run.name), prompt_set=isolated("shapes"))
    first, second = (html_lib.unescape(options[str(run.pk)]) for run in runs)
    assert first == ("\u2068m-one\u2069 / \u2068step-1k\u2069 (step 1000) / \u2068a1k\u2069"
                     " \u2014 \u2068shapes\u2069")
    assert second == ("\u2068m-two\u2069 / \u2068step-1k\u2069 (step 1000) / \u2068b1k\u2069"
                      " \u2014 \u2068shapes\u2069")


def test_a_run_label_without_a_step_or_prompt_set():
    assert run_label(model="m", checkpoint="final", step=None, run="r") == "m / final / r"
    assert run_label(model="m", checkpoint="c", step=0, run="r", prompt_set="p") == \
        "m / c (step 0) / r — p"


def test_readable_values_have_no_python_reprs():
    assert readable_value(None) == D
    assert readable_value(True) == "yes" and readable_value(False) == "no"
    assert readable_value(0.3) == "0.3" and readable_value(7) == "7"
    assert readable_value("<b>") == "&lt;b&gt;"
    assert readable_value({"width": None, "height": None, "quality": 0.3}) == \
        f"width: {D}, height: {D}, quality: 0.3"
    assert readable_value(["x", 2, None]) == f"x, 2, {D}"
    assert readable_value({}) == D and readable_value([]) == D
    nested = readable_value({"resize": {"width": 512, "keep": False}, "mode": "lanczos"})
    assert nested == ('<ul class="nested"><li>resize: width: 512, keep: no</li>'
                      "<li>mode: lanczos</li></ul>")


def test_the_image_page_writes_metadata_and_parameters_readably():
    world = build_campaign(runs=2, prompts=1)
    image = world.tasks[0].image_a
    image.metadata = {"resize": {"width": None, "height": None, "quality": 0.3},
                      "upscaled": True, "pipeline": {"vae": {"tiled": False}, "steps": [1, 2]}}
    image.save(update_fields=["metadata"])
    run = image.run
    run.parameters = {"guidance_scale": 7.5, "scheduler": {"name": "ddim", "eta": None}}
    run.save(update_fields=["parameters"])
    response = logged_in(world.scientist).get(f"/gallery/images/{image.pk}/")
    assert response.status_code == 200
    html = response.content.decode()
    tables = "".join(re.findall(r'<table class="kv".*?</table>', html, re.S))
    for repr_text in ("{", "}", "None", "True", "False", "[", "&#x27;"):
        assert repr_text not in tables, repr_text
    assert f"<th>resize</th><td>width: {D}, height: {D}, quality: 0.3</td>" in tables
    assert "<th>upscaled</th><td>yes</td>" in tables
    assert ('<th>pipeline</th><td><ul class="nested"><li>vae: tiled: no</li>'
            "<li>steps: 1, 2</li></ul></td>") in tables
    # (jsonb keeps its own key order)
    assert re.search(
        rf"<th>scheduler</th><td>(name: ddim, eta: {D}|eta: {D}, name: ddim)</td>", tables)
    assert "<th>guidance_scale</th><td>7.5</td>" in tables
