"""The systemd units of deploy/systemd/ run what docs/deployment.md's "Without docker" gives,
and keep it running.

A worker exits for good when its Redis connection drops while it holds an unacknowledged task
(kombu 5.7.0, docs/deployment.md), so each process runs under a supervisor that starts it
again (``Restart=always``) and stops it warm (SIGTERM to the main process only, with time to
finish the task in hand).
"""

from __future__ import annotations

import configparser
import re
import shlex
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parents[2]
UNITS = REPO / "deploy" / "systemd"
DEPLOYMENT = REPO / "docs" / "deployment.md"

# Unit file -> the program of docs/deployment.md's "Without docker" line it runs, and the queue
# a worker consumes ("beat": Celery beat; None: the web server).
EXPECTED = {
    "evalhub-web.service": ("gunicorn", None),
    "evalhub-worker.service": ("celery", "default"),
    "evalhub-gpu-worker.service": ("celery", "gpu"),
    "evalhub-beat.service": ("celery", "beat"),
}


def _documented_commands() -> list[list[str]]:
    """The gunicorn and celery command lines of the "Without docker" block, comments dropped."""
    text = DEPLOYMENT.read_text()
    section = text.split("## Without docker", 1)[1].split("\n## ", 1)[0]
    block = re.search(r"```sh\n(.*?)```", section, re.S).group(1)
    return [shlex.split(line, comments=True) for line in block.splitlines()
            if line.startswith(("gunicorn ", "celery "))]


def _documented(program: str, queue: str | None) -> list[str]:
    for argv in _documented_commands():
        if argv[0] != program:
            continue
        if queue is None or (argv[3] == "beat" if queue == "beat"
                             else "-Q" in argv and argv[argv.index("-Q") + 1] == queue):
            return argv
    raise AssertionError(f"docs/deployment.md gives no {program} command for {queue}")


def _service(name: str) -> configparser.SectionProxy:
    parser = configparser.ConfigParser(interpolation=None, strict=False)
    parser.optionxform = str  # systemd's keys are case-sensitive
    parser.read_string((UNITS / name).read_text())
    return parser["Service"]


def _exec_start(service: configparser.SectionProxy) -> list[str]:
    """ExecStart as the process receives it: systemd turns ``%%`` into ``%``; the program is
    named by its path in the virtual environment."""
    argv = shlex.split(service["ExecStart"].replace("%%", "%"))
    assert "%" not in service["ExecStart"].replace("%%", ""), "an unescaped systemd specifier"
    return [Path(argv[0]).name, *argv[1:]]


@pytest.mark.parametrize("unit", sorted(EXPECTED))
def test_each_unit_runs_the_documented_command(unit):
    program, queue = EXPECTED[unit]
    assert _exec_start(_service(unit)) == _documented(program, queue)


@pytest.mark.parametrize("unit", sorted(EXPECTED))
def test_each_unit_is_restarted_whenever_it_exits_and_stopped_warm(unit):
    service = _service(unit)
    assert service["Restart"] == "always"
    assert service["RestartSec"] == "5"
    assert service["KillSignal"] == "SIGTERM"
    # SIGTERM to the main process only: a worker's pool processes that got it would end the
    # tasks in hand at once instead of finishing them.
    assert service["KillMode"] == "mixed"


@pytest.mark.parametrize("unit", ["evalhub-worker.service", "evalhub-gpu-worker.service"])
def test_a_worker_has_ten_minutes_to_finish_its_task_before_it_is_killed(unit):
    assert int(_service(unit)["TimeoutStopSec"]) >= 600


def test_every_documented_server_command_has_its_unit():
    documented = _documented_commands()
    assert len(documented) == len(EXPECTED) == 4
    assert sorted(map(" ".join, documented)) == sorted(
        " ".join(_exec_start(_service(unit))) for unit in EXPECTED)


def test_the_deployment_guide_names_each_unit_file():
    text = DEPLOYMENT.read_text()
    assert "deploy/systemd/" in text
    for unit in EXPECTED:
        assert f"`{unit}`" in text
