import socket

from django.core.management.base import BaseCommand, CommandError, CommandParser

from evalhub.core.cli import seconds
from metrics.weights import WeightsFetchError, fetch_all_weights


class Command(BaseCommand):
    help = ("Download the metric backbones' weights (FID InceptionV3, LPIPS AlexNet, CLIP) into "
            "the libraries' own caches. Needs internet access; fails fast without it.")

    def add_arguments(self, parser: CommandParser) -> None:
        parser.add_argument("--timeout", type=seconds, default=30,
                            help="seconds a connection may stay silent (default 30)")

    def handle(self, *args, **options) -> None:
        old = socket.getdefaulttimeout()
        # urllib (torch.hub) has no timeout of its own: without one an unreachable host that
        # drops packets would hang the command forever.
        socket.setdefaulttimeout(options["timeout"])
        try:
            paths = fetch_all_weights(progress=options["verbosity"] >= 1)
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
