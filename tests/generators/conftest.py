"""Fixtures for the generator tests. No Django, no network."""

from __future__ import annotations

import os
from pathlib import Path

import pytest

# Must be set before diffusers/huggingface_hub are imported anywhere.
os.environ.setdefault("HF_HUB_OFFLINE", "1")
os.environ.setdefault("TRANSFORMERS_OFFLINE", "1")
os.environ.setdefault("HF_HUB_DISABLE_PROGRESS_BARS", "1")


@pytest.fixture(scope="session")
def tiny_sd_path(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A tiny random Stable Diffusion pipeline saved on disk (built once per session)."""
    pytest.importorskip("diffusers")
    from generators.testing import build_tiny_sd_pipeline

    return build_tiny_sd_pipeline(tmp_path_factory.mktemp("tiny-sd"))


@pytest.fixture(scope="session")
def tiny_t2v_path(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A tiny random text-to-video pipeline (3D UNet) saved on disk, built once per session."""
    pytest.importorskip("diffusers")
    from generators.testing import build_tiny_t2v_pipeline

    return build_tiny_t2v_pipeline(tmp_path_factory.mktemp("tiny-t2v"))
