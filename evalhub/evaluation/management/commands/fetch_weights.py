import socket

from django.core.management.base import BaseCommand, CommandError, CommandParser

from evalhub.core.cli import seconds
from metrics.weights import (
    DEFAULT_CLIP_MODEL,
    DEFAULT_CLIP_PRETRAINED,
    WeightsFetchError,
    clip_pretrained_cfg,
    fetch_all_weights,
    is_hf_hub_name,
)


class Command(BaseCommand):
    help = ("Download the metric backbones' weights (FID InceptionV3, LPIPS AlexNet, FVD I3D, "
            "the default CLIP and any CLIP named by --clip-model/--clip-pretrained) into the "
            "libraries' own caches. Needs internet access; fails fast without it.")

    def add_arguments(self, parser: CommandParser) -> None:
        parser.add_argument("--timeout", type=seconds, default=30,
                            help="seconds a connection may stay silent (default 30)")
        parser.add_argument("--clip-model", default=None,
                            help="also fetch this open_clip model (a job's clip_model), e.g. "
                                 "ViT-L-14, or hf-hub:<organisation>/<repository>")
        parser.add_argument("--clip-pretrained", default=None,
                            help="its pretrained tag (a job's clip_pretrained), e.g. openai; "
                                 f"default {DEFAULT_CLIP_PRETRAINED}; not for hf-hub: models")

    def _clip_models(self, model: str | None, tag: str | None) -> tuple[tuple[str, str], ...]:
        """The default CLIP and the one asked for, checked before anything is downloaded."""
        wanted = [(DEFAULT_CLIP_MODEL, DEFAULT_CLIP_PRETRAINED)]
        if model is None and tag is None:
            return tuple(wanted)
        model = model or DEFAULT_CLIP_MODEL
        if is_hf_hub_name(model):
            if tag is not None:
                raise CommandError(f"{model} holds its own weights: leave --clip-pretrained out.")
            if not model.removeprefix("hf-hub:").strip():
                raise CommandError("--clip-model hf-hub: names no repository: write "
                                   "hf-hub:<organisation>/<repository>.")
            wanted.append((model, ""))
        else:
            tag = tag or DEFAULT_CLIP_PRETRAINED
            try:
                clip_pretrained_cfg(model, tag)
            except ValueError as exc:
                raise CommandError(str(exc)) from exc
            wanted.append((model, tag))
        return tuple(dict.fromkeys(wanted))

    def handle(self, *args, **options) -> None:
        clip_models = self._clip_models(options["clip_model"], options["clip_pretrained"])
        old = socket.getdefaulttimeout()
        # urllib (torch.hub) has no timeout of its own: without one an unreachable host that
        # drops packets would hang the command forever.
        socket.setdefaulttimeout(options["timeout"])
        try:
            paths = fetch_all_weights(clip_models=clip_models,
                                      progress=options["verbosity"] >= 1)
        except WeightsFetchError as exc:
            raise CommandError(
                f"{exc}\nfetch_weights needs internet access. On an offline machine, run it "
                "on a networked one and copy the cache directories (torch hub 'checkpoints', "
                "Hugging Face hub cache), or set EVALHUB_RANDOM_WEIGHTS=1 for tests "
                "(uncalibrated metrics).") from exc
        finally:
            socket.setdefaulttimeout(old)
        for name, path in paths.items():
            self.stdout.write(f"{name}: {path}")
        self.stdout.write(self.style.SUCCESS("All metric weights are in place."))
