import pytest

from tests.factories import CheckpointFactory, GenModelFactory, PromptFactory, PromptSetFactory


@pytest.fixture
def catalog(project):
    """A project's prompt set "shapes" (one prompt, "a red circle") and checkpoint
    "step-5000" of model "sdxl": what an import of a run names."""
    prompt_set = PromptSetFactory(project=project, name="shapes")
    PromptFactory(prompt_set=prompt_set, text="a red circle")
    checkpoint = CheckpointFactory(model=GenModelFactory(project=project, name="sdxl"),
                                   name="step-5000")
    return prompt_set, checkpoint
