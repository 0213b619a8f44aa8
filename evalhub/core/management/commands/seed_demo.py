from django.core.management.base import BaseCommand, CommandParser

from evalhub.core.cli import reports_domain_errors
from evalhub.core.demo import demo_logins, demo_seed


class Command(BaseCommand):
    help = "Create the demo project, users and runs (idempotent) and queue the runs' images."

    def add_arguments(self, parser: CommandParser) -> None:
        parser.add_argument("--no-generate", action="store_true",
                            help="create rows only; do not queue image generation")

    @reports_domain_errors
    def handle(self, *args, **options) -> None:
        project = demo_seed(generate=not options["no_generate"])
        self.stdout.write(self.style.SUCCESS(f"Demo project {project.name!r} is ready."))
        for login in demo_logins():
            self.stdout.write(f"  {login.role:<10} {login.username} / {login.password}")
