"""The web server's settings: one file, used wherever gunicorn starts."""

import gc
import json
import os
import runpy
import signal
import subprocess
import sys
import time
import urllib.error
import urllib.request
from pathlib import Path
from types import SimpleNamespace

from gunicorn.config import Config, ControlSocket

from tests.ports import free_port

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


def test_with_json_logs_gunicorn_writes_only_json_lines(tmp_path):
    port = free_port()
    out, err = tmp_path / "out", tmp_path / "err"
    with out.open("w") as stdout, err.open("w") as stderr:
        server = subprocess.Popen(
            [sys.executable, "-m", "gunicorn", "-c", str(CONFIG), "--bind", f"127.0.0.1:{port}",
             "--workers", "1"], cwd=REPO, stdout=stdout, stderr=stderr,
            env={**os.environ, "DEBUG": "1", "EVALHUB_LOG_JSON": "1"})
        try:
            deadline = time.monotonic() + 60
            while True:
                try:
                    with urllib.request.urlopen(f"http://127.0.0.1:{port}/healthz", timeout=5):
                        break
                except (urllib.error.URLError, ConnectionError):
                    assert time.monotonic() < deadline and server.poll() is None, err.read_text()
                    time.sleep(0.2)
        finally:
            server.send_signal(signal.SIGTERM)
            server.wait(timeout=30)
    errors = [json.loads(line) for line in err.read_text().splitlines()]
    access = [json.loads(line) for line in out.read_text().splitlines()]
    assert any(line["message"].startswith("Listening at:") for line in errors)
    assert any(line["message"].startswith("Shutting down") for line in errors)
    assert {line["logger"] for line in errors} >= {"gunicorn.error"}
    (served,) = [line for line in access if "/healthz" in line["message"]]
    assert served["logger"] == "gunicorn.access" and " 200 " in served["message"]
