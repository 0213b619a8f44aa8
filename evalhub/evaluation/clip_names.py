"""open_clip's model names and pretrained tags, read from the installed package without
importing it (open_clip imports torch, which web processes do not load), so that a job naming a
CLIP model or tag open_clip does not know is refused when it is created (400), not on the
worker.

Both tables are empty when open_clip is not installed here (or its files are not laid out as
this module reads them; a test holds them to ``open_clip.list_models()`` and
``open_clip.list_pretrained()``), and the worker then checks the names.
"""

from __future__ import annotations

import ast
import functools
import importlib.util
from pathlib import Path

#: The CLIP a job uses when it names none (``metrics.weights.DEFAULT_CLIP_MODEL`` and
#: ``DEFAULT_CLIP_PRETRAINED``, which a test holds these to: that module imports torch).
DEFAULT_CLIP_MODEL = "ViT-B-32"
DEFAULT_CLIP_PRETRAINED = "laion2b_s34b_b79k"
#: open_clip's prefix of a model named by its Hugging Face hub repository.
HF_HUB_PREFIX = "hf-hub:"
#: Endings of a weights file given as ``clip_pretrained`` instead of a tag.
_WEIGHTS_FILE_ENDINGS = (".pt", ".pth", ".bin", ".safetensors", ".ckpt")


def _open_clip_dirs() -> list[Path]:
    spec = importlib.util.find_spec("open_clip")
    if spec is None or not spec.submodule_search_locations:
        return []
    return [Path(location) for location in spec.submodule_search_locations]


@functools.cache
def clip_architectures() -> frozenset[str]:
    """open_clip's model names (its ``model_configs/*.json``); empty when open_clip is not
    installed here."""
    return frozenset(path.stem for location in _open_clip_dirs()
                     for path in (location / "model_configs").glob("*.json"))


def _tags_of(node: ast.expr, tables: dict[str, dict[str, bool]]) -> dict[str, bool] | None:
    """{tag: quick_gelu} of one architecture's entry in open_clip's ``pretrained.py``: a name
    bound earlier to ``dict(tag=_pcfg(...), ...)``, or such a call itself."""
    if isinstance(node, ast.Name):
        return tables.get(node.id)
    if (isinstance(node, ast.Call) and isinstance(node.func, ast.Name) and node.func.id == "dict"
            and not node.args and all(kw.arg for kw in node.keywords)):
        return {kw.arg: any(isinstance(k.value, ast.Constant) and k.arg == "quick_gelu"
                            and k.value.value is True
                            for k in getattr(kw.value, "keywords", ()))
                for kw in node.keywords if kw.arg}
    return None


def _pretrained_tags_of_source(source: str) -> dict[str, frozenset[str]]:
    """Architecture -> pretrained tags, as open_clip's ``pretrained.py`` builds ``_PRETRAINED``:
    the architectures' entries, plus ``<architecture>-quickgelu`` holding the tags trained with
    QuickGELU. Empty when the file is not laid out that way."""
    tables: dict[str, dict[str, bool]] = {}
    pretrained: dict[str, dict[str, bool]] = {}
    for statement in ast.parse(source).body:
        if not (isinstance(statement, ast.Assign) and len(statement.targets) == 1
                and isinstance(statement.targets[0], ast.Name)):
            continue
        name, value = statement.targets[0].id, statement.value
        if name == "_PRETRAINED" and isinstance(value, ast.Dict):
            for key, entry in zip(value.keys, value.values, strict=True):
                tags = _tags_of(entry, tables) if isinstance(key, ast.Constant) else None
                if tags is None:
                    return {}
                pretrained[key.value] = tags
        elif (tags := _tags_of(value, tables)) is not None:
            tables[name] = tags
    out = {model: frozenset(tags) for model, tags in pretrained.items()}
    out.update({f"{model}-quickgelu": frozenset(t for t, quick in tags.items() if quick)
                for model, tags in pretrained.items() if any(tags.values())})
    return out


@functools.cache
def clip_pretrained_tags() -> dict[str, frozenset[str]]:
    """open_clip's pretrained tags by architecture (``open_clip.list_pretrained()``); empty
    when open_clip is not installed here or its ``pretrained.py`` is not laid out as read."""
    for location in _open_clip_dirs():
        path = location / "pretrained.py"
        if path.is_file():
            try:
                return _pretrained_tags_of_source(path.read_text(encoding="utf-8"))
            except (SyntaxError, ValueError, AttributeError):
                return {}
    return {}


def canonical_tag(tag: str) -> str:
    """A tag as open_clip looks it up (``_clean_tag``: lower case, ``-`` as ``_``)."""
    return tag.lower().replace("-", "_")


def is_weights_file(pretrained: str) -> bool:
    """``clip_pretrained`` names a weights file (checked on the worker), not a tag."""
    return "/" in pretrained or "\\" in pretrained or pretrained.endswith(_WEIGHTS_FILE_ENDINGS)


def clip_model_problem(name: str) -> str | None:
    """Why ``name`` is not a CLIP model a job can use (None when it is, or cannot be told)."""
    known = clip_architectures()
    if not name.strip():
        return "clip_model must not be empty"
    if name.startswith(HF_HUB_PREFIX):
        return None if name.removeprefix(HF_HUB_PREFIX).strip() else (
            "clip_model 'hf-hub:' names no repository: write hf-hub:<organisation>/<model>")
    if not known or name in known:
        return None
    # open_clip's names are case-sensitive: the same letters in another case first.
    near = sorted(n for n in known if n.lower() == name.lower()) or sorted(
        n for n in known if n.lower().startswith(name.lower()[:5]))[:5]
    return (f"clip_model {name!r} is not an open_clip architecture (did you mean "
            f"{', '.join(near or ['ViT-B-32', 'ViT-L-14', 'ViT-H-14'])}? or an "
            "hf-hub:<repo> name)")


def clip_pretrained_problem(model: str, pretrained: str | None) -> str | None:
    """Why ``pretrained`` (None: not given, the default tag) does not go with CLIP ``model``
    (None when it does, or cannot be told here: a weights file, open_clip not installed)."""
    if model.startswith(HF_HUB_PREFIX):
        return None if pretrained is None else (
            f"clip_pretrained does not go with {model}: an hf-hub: model's repository holds "
            "its weights; leave clip_pretrained out")
    tag = DEFAULT_CLIP_PRETRAINED if pretrained is None else pretrained
    if not tag.strip():
        return "clip_pretrained must not be empty (an open_clip tag or a file path)"
    table = clip_pretrained_tags()
    if not table or model not in clip_architectures() or is_weights_file(tag):
        return None
    tags = sorted(table.get(model, ()))
    if canonical_tag(tag) in tags:
        return None
    offered = (f"its tags: {', '.join(tags)}" if tags
               else "it has no pretrained weights in open_clip: a local weights file path")
    if pretrained is None:
        return (f"clip_model {model} needs clip_pretrained: the default tag {tag!r} is "
                f"{DEFAULT_CLIP_MODEL}'s ({offered})")
    return f"clip_pretrained {tag!r} is not an open_clip pretrained tag of {model} ({offered})"
