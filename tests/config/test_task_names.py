"""Background work is sent by task name: every name sent is registered in a worker, and no
service imports a tasks module (tasks import services, never the other way round).

The worker's real registry (``celery inspect registered`` of a running worker) is checked
against the same names in tests/integration/test_worker_registry.py."""

from __future__ import annotations

import ast
import importlib
import json
import subprocess
import sys
from pathlib import Path

SOURCE = Path(__file__).resolve().parents[2] / "evalhub"


def _modules() -> list[tuple[Path, ast.Module]]:
    return [(path, ast.parse(path.read_text(), str(path)))
            for path in sorted(SOURCE.rglob("*.py")) if "migrations" not in path.parts]


def _constants(tree: ast.Module) -> dict[str, str]:
    return {target.id: node.value.value
            for node in tree.body if isinstance(node, ast.Assign)
            and isinstance(node.value, ast.Constant) and isinstance(node.value.value, str)
            for target in node.targets if isinstance(target, ast.Name)}


def _module_name(path: Path) -> str:
    return ".".join(path.relative_to(SOURCE.parent).with_suffix("").parts)


# Calls that send a task by name (first argument), and methods that send a task object.
SEND_BY_NAME = {"enqueue_on_commit", "send_task", "signature"}
SEND_METHODS = {"delay", "apply_async", "s", "si", "signature"}
# The one place that forwards a name it was given (core/queueing.py: enqueue_on_commit).
FORWARDS_A_NAME = {("core/queueing.py", "task_name")}


def _called_name(func: ast.expr) -> str | None:
    if isinstance(func, ast.Name):
        return func.id
    if isinstance(func, ast.Attribute):
        return func.attr
    return None


def _task_object_name(module: str, receiver: ast.expr) -> str | None:
    """The registered name of ``receiver`` in ``.delay()`` / ``.apply_async()``, when it is a
    task object reachable from the module (``task.delay`` or ``module.task.delay``)."""
    from celery import Task

    target = importlib.import_module(module)
    for part in ast.unparse(receiver).split("."):
        target = getattr(target, part, None)
    return target.name if isinstance(target, Task) else None


def enqueued_task_names() -> dict[str, list[str]]:
    """Every task name the code sends, with where it is sent from: the first argument of
    ``enqueue_on_commit`` / ``send_task`` / ``signature`` (a literal, a module constant, or a
    constant imported from another evalhub module), and the task objects whose ``.delay``,
    ``.apply_async``, ``.s`` or ``.si`` is called."""
    names: dict[str, list[str]] = {}
    modules = _modules()
    by_module = {_module_name(path): _constants(tree) for path, tree in modules}
    for path, tree in modules:
        where = str(path.relative_to(SOURCE))
        constants = dict(_constants(tree))
        for node in tree.body:
            if isinstance(node, ast.ImportFrom) and node.module in by_module:
                constants.update({alias.asname or alias.name: by_module[node.module][alias.name]
                                  for alias in node.names
                                  if alias.name in by_module[node.module]})
        for node in ast.walk(tree):
            if not isinstance(node, ast.Call):
                continue
            called = _called_name(node.func)
            name = None
            if called in SEND_BY_NAME and node.args:
                first = node.args[0]
                if isinstance(first, ast.Constant) and isinstance(first.value, str):
                    name = first.value
                elif isinstance(first, ast.Name) and first.id in constants:
                    name = constants[first.id]
                else:
                    assert isinstance(first, ast.Name) and (where, first.id) in FORWARDS_A_NAME, (
                        f"{where}:{node.lineno}: the task name must be a literal or a module "
                        "constant")
            elif called in SEND_METHODS and isinstance(node.func, ast.Attribute):
                name = _task_object_name(_module_name(path), node.func.value)
            if name is not None:
                names.setdefault(name, []).append(f"{where}:{node.lineno}")
    return names


# What `celery -A evalhub worker` registers: the app, Django set up by Celery's Django fix-up,
# then the loader's autodiscovery; in a fresh interpreter, so that modules the test process
# happens to have imported (URLconfs, views) cannot register a task the worker would not.
WORKER_REGISTRY = """
import json
from evalhub import celery_app
celery_app.loader.init_worker()
celery_app.loader.import_default_modules()
print(json.dumps(sorted(celery_app.tasks)))
"""


def worker_registry() -> set[str]:
    out = subprocess.run([sys.executable, "-c", WORKER_REGISTRY], cwd=SOURCE.parent,
                         capture_output=True, text=True, check=True, timeout=120)
    return set(json.loads(out.stdout.strip().splitlines()[-1]))


def test_every_enqueued_task_name_is_registered_as_the_worker_registers_them():
    names = enqueued_task_names()
    assert len(names) >= 8  # previews, tiles, generation, shards, finalize, builds, ...
    assert "evalhub.blobs.build_tiles" in names
    registered = worker_registry()
    missing = {name: where for name, where in names.items() if name not in registered}
    assert missing == {}


def test_no_module_but_a_tasks_module_imports_a_tasks_module():
    offenders = []
    for path, tree in _modules():
        if path.name == "tasks.py":
            continue
        for node in ast.walk(tree):
            imported = []
            if isinstance(node, ast.ImportFrom) and node.module:
                imported = [node.module, *(f"{node.module}.{a.name}" for a in node.names)]
            elif isinstance(node, ast.Import):
                imported = [a.name for a in node.names]
            if any(name.startswith("evalhub.") and name.endswith(".tasks") for name in imported):
                offenders.append(f"{path.relative_to(SOURCE)}:{node.lineno}")
    assert offenders == []


def test_every_task_celery_beat_runs_is_registered_as_the_worker_registers_them():
    from django.conf import settings

    scheduled = {entry["task"] for entry in settings.CELERY_BEAT_SCHEDULE.values()}
    assert scheduled == {"evalhub.core.resume_stalled_work"}
    assert scheduled <= worker_registry()
