"""The README's commands work as written, pasted into a new shell after `make run`.

The commands are read from the README's ``bash`` blocks (continuation lines joined) and run in
subprocesses whose environment holds nothing but ``PATH`` (with the venv, as after ``source
.venv/bin/activate``), ``HOME`` and a fresh ``EVALHUB_VAR_DIR``: no ``DEBUG``, no
``SECRET_KEY``, no ``DATABASE_URL``. Before them, the setup ``make run`` does
(``run_embedded``: migrate, then the demo) runs the same way; then the commands see the same
database and the same ``var/secret_key``.

Three commands are run in their no-wait form, because waiting needs the worker ``make run``
starts, and the demo's own generation queue (612 images) would come first:

- ``generate ... --wait`` runs without ``--wait`` (the run is created and its images queued);
- ``compute_metrics --run my-run ... --wait`` runs without ``--wait`` on the imported run
  (``my-import``), the one whose images exist without a worker;
- ``create_campaign ... --wait`` runs without ``--wait``: its build is queued for the worker,
  which would wait for ``my-run``.

``fetch_weights`` (named in the prose, not in a block) needs the network and is not run.
"""

from __future__ import annotations

import os
import re
import shlex
import subprocess
import sys
import zipfile
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from pathlib import Path

import pytest
from PIL import Image

from tests.integration.workers import REPO_ROOT

README = REPO_ROOT / "README.md"
ACTIVATE = "source .venv/bin/activate"


def readme_command_lines() -> list[str]:
    """Every command line of the README's bash blocks, continuation lines joined, no comments."""
    lines: list[str] = []
    for block in re.findall(r"```bash\n(.*?)```", README.read_text(), flags=re.S):
        for line in block.replace("\\\n", " ").splitlines():
            line = line.split("  #", 1)[0].strip()
            if line:
                lines.append(re.sub(r"\s+", " ", line))
    return lines


@dataclass(frozen=True)
class Expected:
    """What the test runs for one README command and what its output must say."""

    stdout: str  # a regular expression searched in stdout
    drop: tuple[str, ...] = ()  # arguments left out (the --wait of the no-wait forms)
    replace: tuple[tuple[str, str], ...] = ()  # (README argument, argument run)
    after: str = ""  # the command (name) whose result this one needs


EXPECTED: dict[str, Expected] = {
    "import_prompts": Expected(r"Prompt set 'my-prompts' \(id \d+\): 3 prompts\."),
    "register_checkpoint": Expected(
        r"Model 'my-model' \(new\): checkpoint 'step-1000' \(id \d+, generator imported, "
        r"step 1000\)\.", after="import_prompts"),
    "import_images": Expected(r"Run 'my-import': 3 images imported",
                              after="register_checkpoint"),
    "generate": Expected(r"Run 'my-run': 204 items queued in \d+ batches", drop=("--wait",)),
    "compute_metrics": Expected(
        r"Metric job \d+ for run 'my-import': clip_score, lpips_diversity; 3 images",
        drop=("--wait",), replace=(("my-run", "my-import"),), after="import_images"),
    "create_campaign": Expected(
        r"Campaign \d+ 'my-run-vs-20k': 2 runs, pairs, uncertainty pair policy\.\n"
        r"Building: its tasks are queued for a worker\.",
        drop=("--wait",), after="generate"),
    "campaign": Expected(r"Campaign 1 'Which checkpoint draws the prompt\?': 6 runs, pairs, "
                         r"balanced pair policy\. Project demo\.\n"),
    "leaderboard": Expected(r"Campaign Which checkpoint draws the prompt\? \(#1\)"),
    "export_preferences": Expected(r"Wrote 0 rows \(0 votes, 0 annotators\) to prefs\.jsonl"),
}


def _environment(var_dir: Path) -> dict[str, str]:
    venv_bin = str(Path(sys.executable).parent)
    return {"PATH": f"{venv_bin}:/usr/local/bin:/usr/bin:/bin", "HOME": os.environ["HOME"],
            "EVALHUB_VAR_DIR": str(var_dir), "HF_HUB_OFFLINE": "1"}


def _manage(argv: list[str], env: dict[str, str], cwd: Path) -> subprocess.CompletedProcess:
    return subprocess.run([sys.executable, str(REPO_ROOT / "manage.py"), *argv], cwd=cwd,
                          env=env, capture_output=True, text=True, timeout=300)


def _write_files(folder: Path) -> None:
    """The files the README's commands name: prompts.csv and run.zip (images + manifest)."""
    prompts = ["one red circle on white", "two blue squares", "a green triangle at the top"]
    (folder / "prompts.csv").write_text(
        "text,category\n" + "".join(f"{p},test\n" for p in prompts))
    with zipfile.ZipFile(folder / "run.zip", "w") as archive:
        manifest = "file,prompt,seed\n"
        for index, prompt in enumerate(prompts):
            image = folder / f"{index}.png"
            Image.new("RGB", (64, 64), (40 * index, 90, 200)).save(image)
            archive.write(image, f"images/{index}.png")
            manifest += f"images/{index}.png,{prompt},0\n"
        archive.writestr("manifest.csv", manifest)


@pytest.fixture(scope="module")
def embedded(tmp_path_factory) -> tuple[dict[str, str], Path]:
    """A new embedded default after `make run`'s setup; the working folder holds the files."""
    root = tmp_path_factory.mktemp("readme")
    env = _environment(root / "var")
    for argv in (["migrate", "--verbosity", "0"], ["seed_demo"]):
        result = _manage(argv, env, REPO_ROOT)
        assert result.returncode == 0, result.stderr
    work = root / "work"
    work.mkdir()
    _write_files(work)
    return env, work


def test_the_readme_commands_are_known_to_this_test():
    commands = [line for line in readme_command_lines() if "manage.py" in line]
    names = [shlex.split(line)[2] for line in commands]
    assert sorted(names) == sorted(EXPECTED), (
        "The README's manage.py commands changed: say in EXPECTED what each must print.")
    for line in commands:
        assert line.startswith("python manage.py "), line
    lines = readme_command_lines()
    for line in commands:  # `python` is the venv's: each block activates it first
        assert ACTIVATE in lines[:lines.index(line)], line


def test_the_embedded_default_keeps_one_secret_key_private_to_its_owner(embedded):
    env, _ = embedded
    key_file = Path(env["EVALHUB_VAR_DIR"]) / "secret_key"
    assert key_file.stat().st_mode & 0o777 == 0o600
    assert len(key_file.read_text().strip()) >= 50


def test_every_readme_command_runs_in_a_new_shell_after_make_run(embedded):
    env, work = embedded
    commands = {}
    for line in readme_command_lines():
        if "manage.py" not in line:
            continue
        argv = shlex.split(line)[2:]
        expected = EXPECTED[argv[0]]
        argv = [dict(expected.replace).get(arg, arg) for arg in argv if arg not in expected.drop]
        commands[argv[0]] = argv

    results: dict[str, subprocess.CompletedProcess] = {}

    def chain(names: list[str]) -> None:
        for name in names:
            results[name] = _manage(commands[name], env, work)

    # Independent chains run side by side; a command runs after the one it needs.
    roots = [name for name in commands if not EXPECTED[name].after]
    chains = []
    for root in roots:
        names = [root]
        while followers := [n for n in commands if EXPECTED[n].after == names[-1]]:
            names.append(followers[0])
        chains.append(names)
    with ThreadPoolExecutor(len(chains)) as pool:
        list(pool.map(chain, chains))

    assert set(results) == set(EXPECTED)
    for name, result in results.items():
        assert result.returncode == 0, f"{name}: {result.stderr}"
        assert "Traceback" not in result.stderr, f"{name}: {result.stderr}"
        assert re.search(EXPECTED[name].stdout, result.stdout), f"{name}: {result.stdout}"
    assert (work / "prefs.jsonl").exists()


def test_a_deployment_still_needs_its_own_secret_key_and_keeps_debug_off(embedded):
    env, _ = embedded  # the embedded default's var/secret_key exists: a deployment ignores it
    deployment = {**env, "DATABASE_URL": "postgres://evalhub@127.0.0.1:5432/evalhub"}
    refused = subprocess.run([sys.executable, "-c", "import evalhub.config.settings"],
                             cwd=REPO_ROOT, env=deployment, capture_output=True, text=True)
    assert refused.returncode != 0
    assert "SECRET_KEY is not set and DEBUG is off" in refused.stderr
    show = [sys.executable, "-c", "from evalhub.config import settings as s; "
            "print(s.DEBUG, s.ALLOWED_HOSTS, s.EVALHUB_RANDOM_WEIGHTS)"]
    no_hosts = subprocess.run(show, cwd=REPO_ROOT, env={**deployment, "SECRET_KEY": "k" * 50},
                              capture_output=True, text=True)
    assert no_hosts.returncode != 0  # nor the embedded default's host names
    assert "ALLOWED_HOSTS is not set and DEBUG is off" in no_hosts.stderr
    started = subprocess.run(show, cwd=REPO_ROOT, env={
        **deployment, "SECRET_KEY": "k" * 50, "ALLOWED_HOSTS": "evalhub.example.org"},
        capture_output=True, text=True)
    assert started.stdout.split("\n")[0] == "False ['evalhub.example.org'] False", \
        started.stderr
