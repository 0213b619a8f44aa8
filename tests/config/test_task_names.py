"""Background work is sent by task name: every name sent is registered, and no service imports
a tasks module (tasks import services, never the other way round)."""

from __future__ import annotations

import ast
from pathlib import Path

from evalhub.config.celery import app

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


def enqueued_task_names() -> dict[str, list[str]]:
    """Every task name passed to enqueue_on_commit in the code, with where it is sent from
    (a literal, a module constant, or a constant imported from another evalhub module)."""
    names: dict[str, list[str]] = {}
    modules = _modules()
    by_module = {_module_name(path): _constants(tree) for path, tree in modules}
    for path, tree in modules:
        constants = dict(_constants(tree))
        for node in tree.body:
            if isinstance(node, ast.ImportFrom) and node.module in by_module:
                constants.update({alias.asname or alias.name: by_module[node.module][alias.name]
                                  for alias in node.names
                                  if alias.name in by_module[node.module]})
        for node in ast.walk(tree):
            if not (isinstance(node, ast.Call) and getattr(node.func, "id", None)
                    == "enqueue_on_commit"):
                continue
            first = node.args[0]
            if isinstance(first, ast.Constant):
                name = first.value
            else:
                assert isinstance(first, ast.Name) and first.id in constants, (
                    f"{path}:{node.lineno}: the task name must be a literal or a module constant")
                name = constants[first.id]
            names.setdefault(name, []).append(f"{path.relative_to(SOURCE)}:{node.lineno}")
    return names


def test_every_enqueued_task_name_is_registered_as_the_worker_registers_them():
    app.loader.import_default_modules()  # what a worker does at start: autodiscover tasks
    names = enqueued_task_names()
    assert len(names) >= 8  # previews, tiles, generation, shards, finalize, builds, ...
    missing = {name: where for name, where in names.items() if name not in app.tasks}
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
