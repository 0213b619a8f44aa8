"""The web server's settings: one file, used wherever gunicorn starts."""

import gc
import runpy
from pathlib import Path
from types import SimpleNamespace

from gunicorn.config import Config, ControlSocket

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


def _started(*args: str) -> Config:
    cfg = Config()
    for name, value in runpy.run_path(str(CONFIG)).items():
        if name in cfg.settings:
            cfg.set(name, value)
    parsed = cfg.parser().parse_args(list(args))
    for name, value in vars(parsed).items():
        if value is not None and name in cfg.settings:
            cfg.set(name, value)
    runpy.run_path(str(CONFIG))["on_starting"](SimpleNamespace(cfg=cfg))
    return cfg


def test_two_servers_on_one_host_have_their_own_control_sockets():
    first = _started("--bind", "127.0.0.1:8000").control_socket
    second = _started("--bind", "127.0.0.1:8021").control_socket
    assert first != second and first != ControlSocket.default
    assert first.endswith("evalhub-127-0-0-1-8000.ctl")
    # An explicit path is the operator's choice.
    assert _started("--control-socket", "/run/web.ctl").control_socket == "/run/web.ctl"
