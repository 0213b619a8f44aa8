"""The web server's settings: one file, used wherever gunicorn starts."""

import gc
import runpy
from pathlib import Path

REPO = Path(__file__).resolve().parent.parent
CONFIG = REPO / "evalhub" / "config" / "gunicorn.conf.py"


def test_the_preloaded_app_is_frozen_out_of_the_workers_garbage_collections():
    config = runpy.run_path(str(CONFIG))
    assert config["preload_app"] is True
    garbage_tracked_before = len(gc.get_objects())
    try:
        config["pre_fork"](server=None, worker=None)
        # Everything alive now sits in the permanent generation: a worker's full collection
        # no longer walks it.
        assert gc.get_freeze_count() >= garbage_tracked_before * 0.9
    finally:
        gc.unfreeze()


def test_every_way_of_starting_the_web_server_uses_the_config_file():
    starters = [REPO / "Dockerfile", REPO / "docker-compose.yml", REPO / "bench" / "votes.py",
                REPO / "evalhub" / "core" / "management" / "commands" / "run_embedded.py"]
    for starter in starters:
        assert "gunicorn.conf.py" in starter.read_text(), starter.name
