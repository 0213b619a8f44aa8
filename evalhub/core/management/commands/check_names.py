"""``manage.py check_names [--fix]``: the names stored before the name rule
(core/limits.py ``name_text``) that it would refuse or change, and, with ``--fix``, those
names mended (core/names.py).

Without ``--fix`` it only reads: one line per name (object kind, id, project, the name with
control and format characters escaped, what is wrong) and exit status 1, or "all N names
follow the rule" and 0, so a deploy script can stop on it (docs/deployment.md, "Upgrading").
With ``--fix`` it stores each mended name and lists those a person has to rename (the mended
name is empty, too long, or another object's), exit status 1 while any remain. Running it
again is safe: names that follow the rule are never touched.
"""

from __future__ import annotations

from django.core.management.base import BaseCommand, CommandError, CommandParser

from evalhub.core.cli import reports_domain_errors
from evalhub.core.names import names_against_rule, names_mend
from evalhub.core.text import counted, terminal_text


class Command(BaseCommand):
    help = ("List the stored names that the name rule refuses or would change (exit status 1 "
            "when there are any); --fix mends them and lists those to rename by hand.")

    def add_arguments(self, parser: CommandParser) -> None:
        parser.add_argument("--fix", action="store_true",
                            help="mend each name (NFC, the refused characters removed, trimmed) "
                                 "unless it would be empty, too long or another's")

    @reports_domain_errors
    def handle(self, *args, fix: bool, **options) -> None:
        scan = names_against_rule()
        if not scan.findings:
            self.stdout.write(f"all {counted(scan.checked, 'name')} follow the rule")
            return
        if not fix:
            for finding in scan.findings:
                self.stdout.write(f"{finding.describe()}: {finding.problem}")
            raise CommandError(
                f"Names that do not follow the name rule: {len(scan.findings):,} of "
                f"{scan.checked:,}. Run check_names --fix, then rename what it lists.")
        left = mended = 0
        for mend in names_mend(scan.findings):
            if mend.mended is not None:
                mended += 1
                self.stdout.write(f'mended {mend.finding.describe()} -> '
                                  f'"{terminal_text(mend.mended)}"')
            else:
                left += 1
                self.stdout.write(f"not mended {mend.finding.describe()}: {mend.refusal}")
        if left:
            raise CommandError(f"{counted(left, 'name')} could not be mended: rename "
                               f"{'it' if left == 1 else 'them'} (listed above).")
        self.stdout.write(f"mended {counted(mended, 'name')}; all {counted(scan.checked, 'name')} "
                          "follow the rule")
